//! Entry point of `hostkit`.

use clap::Parser;
use hostkit::cli::Cli;

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    anyhow::bail!("no command given; see `hostkit --help`")
}
