//! `hostkit exec <domain> <service> -- CMD…`: an `exec` job. The command's
//! output arrives as `output` events (printed as written: stdout to stdout,
//! stderr to stderr) and the CLI exits with the command's status.

use hostkit_proto::JobSpec;
use hostkit_proto::job::{ExecPayload, MAX_EXEC_TIMEOUT_SECS};

use super::ops::send;
use crate::cli::{ConnectArgs, ExecArgs};
use crate::error::{Error, Exit};
use crate::render::Output;

/// `hostkit exec`.
pub async fn exec(connect: &ConnectArgs, out: &Output, args: &ExecArgs) -> Result<Exit, Error> {
    let timeout_secs = match args.run_timeout {
        None => None,
        Some(t) if t.as_secs() >= 1 && t.as_secs() <= u64::from(MAX_EXEC_TIMEOUT_SECS) => {
            Some(t.as_secs() as u32)
        }
        Some(_) => {
            return Err(Error::usage(format!(
                "--run-timeout must be between 1s and {}m",
                MAX_EXEC_TIMEOUT_SECS / 60
            )));
        }
    };
    let spec = JobSpec::Exec(ExecPayload {
        service: args.service.clone(),
        command: args.command.clone(),
        timeout_secs,
    });
    send(connect, out, &args.domain, spec, &args.job).await
}
