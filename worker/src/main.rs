//! Entry point of `hostkit-worker`: parse the command line, then check the
//! configuration (`check-config`) or run the daemon (`run`, the default).
//!
//! Exit codes: 0 success, 64 invalid configuration (EX_USAGE), 66
//! unreadable configuration file (EX_NOINPUT), 2 bad command line (clap),
//! 1 anything else.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use hostkit_worker::cli::{Cli, Command};
use hostkit_worker::config::{self, Config, ConfigError, Overrides};
use hostkit_worker::logging;
use hostkit_worker::run::RunError;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let overrides = cli.overrides.to_overrides();
    match cli.command.unwrap_or(Command::Run) {
        Command::CheckConfig => ExitCode::from(config::check::check_config(
            &cli.config,
            &overrides,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        )),
        Command::Run => match run(&cli.config, &overrides) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("hostkit-worker: {e:#}");
                ExitCode::from(exit_code(&e))
            }
        },
    }
}

/// 64/66 for configuration errors (so systemd's `RestartPreventExitStatus`
/// stops a restart loop on a broken file), also when one shows only while
/// connecting (a credentials file gone), 1 otherwise.
fn exit_code(e: &anyhow::Error) -> u8 {
    if let Some(config) = e.downcast_ref::<ConfigError>() {
        return config.exit_code();
    }
    match e.downcast_ref::<RunError>() {
        Some(RunError::Config(config)) => config.exit_code(),
        _ => 1,
    }
}

fn run(path: &Path, overrides: &Overrides) -> anyhow::Result<()> {
    let config = Config::load(path, overrides)?;
    logging::init(config.log.format, &config.log.filter)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutdown signal received: finishing running jobs");
            let _ = stop.send(true);
        });
        hostkit_worker::run(config, shutdown).await
    })?;
    Ok(())
}

/// SIGTERM (systemd) or SIGINT (Ctrl-C).
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(error) => {
            tracing::error!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
