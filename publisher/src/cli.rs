//! Command-line interface of `hostkit`.

use clap::Parser;

/// HostKit: deploy Docker Compose stacks to VPS workers over NATS.
#[derive(Debug, Parser)]
#[command(name = "hostkit", version, about, long_about = None)]
pub struct Cli {
    /// NATS server URL.
    #[arg(
        long,
        global = true,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222"
    )]
    pub server: String,
}
