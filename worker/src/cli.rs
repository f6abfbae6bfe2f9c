//! Command-line interface of `hostkit-worker`.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// HostKit worker: runs the deploy jobs of this node's domains.
#[derive(Debug, Parser)]
#[command(name = "hostkit-worker", version, about, long_about = None)]
pub struct Cli {
    /// Path to the worker's TOML configuration.
    #[arg(
        long,
        short,
        env = "HOSTKIT_WORKER_CONFIG",
        default_value = "/etc/hostkit/worker.toml"
    )]
    pub config: PathBuf,

    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What the worker should do; running the daemon is the default.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the worker (the default).
    Run,
}
