//! Entry point of `hostkit-worker`.

use clap::Parser;
use hostkit_worker::cli::Cli;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        None | Some(hostkit_worker::cli::Command::Run) => {
            anyhow::bail!(
                "the worker daemon is not built yet (config {})",
                cli.config.display()
            )
        }
    }
}
