//! Entry point of `hostkit`: parse, run, print the error chain (`{:#}`) and
//! exit with the documented code.

use std::process::ExitCode;

use clap::Parser;
use hostkit::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match hostkit::run(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(error) => {
            let code = error.exit().code();
            eprintln!("error: {:#}", anyhow::Error::from(error));
            ExitCode::from(code)
        }
    }
}
