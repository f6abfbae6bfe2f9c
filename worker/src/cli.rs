//! Command-line interface of `hostkit-worker`:
//!
//! ```text
//! hostkit-worker [--config PATH] [OVERRIDES] [run]
//! hostkit-worker [--config PATH] [OVERRIDES] check-config
//! ```
//!
//! Overrides win over the file; each has an environment variable:
//! `--node` (`HOSTKIT_NODE`), `--nats-url` (`NATS_URL`, comma-separated),
//! `--data-dir` (`HOSTKIT_DATA_DIR`), `--log-format` (`HOSTKIT_LOG_FORMAT`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{DEFAULT_CONFIG_PATH, Overrides};
use crate::logging::LogFormat;

/// HostKit worker: runs the deploy jobs of this node's domains.
#[derive(Debug, Parser)]
#[command(name = "hostkit-worker", version, about, long_about = None)]
pub struct Cli {
    /// Path to the worker's TOML configuration.
    #[arg(
        long,
        short,
        env = "HOSTKIT_WORKER_CONFIG",
        default_value = DEFAULT_CONFIG_PATH,
        global = true
    )]
    pub config: PathBuf,

    /// Settings that win over the file.
    #[command(flatten)]
    pub overrides: OverrideArgs,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Flags (and their environment variables) that override the file.
#[derive(Debug, Clone, Default, Args)]
pub struct OverrideArgs {
    /// This worker's node id (`node`).
    #[arg(long, env = "HOSTKIT_NODE", global = true, value_name = "ID")]
    pub node: Option<String>,

    /// NATS server URL(s) (`nats.urls`); repeat or separate with commas.
    #[arg(
        long = "nats-url",
        env = "NATS_URL",
        value_delimiter = ',',
        global = true,
        value_name = "URL"
    )]
    pub nats_urls: Vec<String>,

    /// State directory holding the SQLite database (`data_dir`).
    #[arg(long, env = "HOSTKIT_DATA_DIR", global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log output format (`log.format`).
    #[arg(
        long,
        env = "HOSTKIT_LOG_FORMAT",
        value_enum,
        global = true,
        value_name = "FORMAT"
    )]
    pub log_format: Option<LogFormat>,
}

impl OverrideArgs {
    /// The overrides to apply to the file.
    pub fn to_overrides(&self) -> Overrides {
        let urls: Vec<String> = self
            .nats_urls
            .iter()
            .map(|u| u.trim().to_owned())
            .filter(|u| !u.is_empty())
            .collect();
        Overrides {
            node: self.node.clone(),
            nats_urls: (!urls.is_empty()).then_some(urls),
            data_dir: self.data_dir.clone(),
            log_format: self.log_format,
        }
    }
}

/// What the worker should do; running the daemon is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Run the worker (the default).
    Run,
    /// Validate the configuration, print what it resolves to (secrets
    /// redacted) and exit: 0 valid, 64 invalid, 66 unreadable.
    CheckConfig,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("hostkit-worker").chain(args.iter().copied())).unwrap()
    }

    #[test]
    fn run_is_the_default_and_flags_go_before_or_after_the_command() {
        let cli = parse(&["--config", "/tmp/w.toml"]);
        assert_eq!(cli.command, None);
        assert_eq!(cli.config, PathBuf::from("/tmp/w.toml"));

        let cli = parse(&["check-config", "--node", "vps-9", "-c", "/x.toml"]);
        assert_eq!(cli.command, Some(Command::CheckConfig));
        assert_eq!(cli.overrides.node.as_deref(), Some("vps-9"));
        assert_eq!(cli.config, PathBuf::from("/x.toml"));

        let cli = parse(&["--log-format", "json", "run"]);
        assert_eq!(cli.command, Some(Command::Run));
        assert_eq!(cli.overrides.log_format, Some(LogFormat::Json));
    }

    #[test]
    fn nats_urls_split_on_commas_and_repeat() {
        let cli = parse(&[
            "--nats-url",
            "nats://a:4222,nats://b:4222",
            "--nats-url",
            "nats://c:4222",
        ]);
        let o = cli.overrides.to_overrides();
        assert_eq!(
            o.nats_urls.unwrap(),
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(parse(&[]).overrides.to_overrides().nats_urls, None);
    }

    #[test]
    fn a_bad_log_format_is_a_usage_error() {
        assert!(Cli::try_parse_from(["hostkit-worker", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn the_cli_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
