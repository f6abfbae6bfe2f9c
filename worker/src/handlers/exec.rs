//! `exec`: a one-off command (a migration, a database shell command) in a
//! new container of a service's current spec, its output streamed as
//! `output` events, its exit status the job's outcome (`exec.failed` with
//! `exit_code` when not 0). Refused unless the worker's `exec_domains`
//! allow the domain; bounded in time. The stack itself is not changed.

use std::time::Duration;

use hostkit_deploy::engine::oneoff::{self, RunOutcome};
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::job::ExecPayload;
use hostkit_proto::{ErrorCode, Job};

use super::stack::{checked_spec_for_version, current};
use super::{Done, Failure};
use crate::runtime::Worker;

/// How long a command may run when its job does not say.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

pub async fn run(
    worker: &Worker,
    job: &Job,
    payload: &ExecPayload,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    if !worker
        .settings
        .exec_domains
        .iter()
        .any(|pattern| pattern.matches(&job.domain))
    {
        return Err(Failure::new(
            ErrorCode::ExecDenied,
            format!(
                "one-off commands are not allowed for {} on node {}",
                job.domain, worker.node
            ),
        ));
    }
    let (domain, current) = current(worker, &job.domain).await?;
    let spec = checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?;
    let Some(service) = spec.services.iter().find(|s| s.name == payload.service) else {
        return Err(Failure::new(
            ErrorCode::ServiceNotFound,
            format!(
                "{} has no service {:?} in version {} (services: {})",
                job.domain,
                payload.service,
                current.version,
                spec.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let timeout = payload
        .timeout_secs
        .map(|secs| Duration::from_secs(u64::from(secs)))
        .unwrap_or(DEFAULT_TIMEOUT);
    // The program's name only: arguments may hold secrets.
    sink.report(Progress::Step {
        name: "exec",
        message: format!(
            "running {} in a new container of {} (version {}), for at most {}s",
            payload.command[0],
            service.name,
            current.version,
            timeout.as_secs()
        ),
    });
    let outcome = oneoff::run(
        &worker.docker,
        &spec,
        service,
        &payload.command,
        &job.id.to_string(),
        timeout,
        sink,
    )
    .await?;
    match outcome {
        RunOutcome::Exited(0) => Ok(Done {
            version: Some(current.version),
            changes: Vec::new(),
        }),
        RunOutcome::Exited(code) => {
            let mut failure = Failure::new(
                ErrorCode::ExecFailed,
                format!("{} exited with status {code}", payload.command[0]),
            );
            failure.exit_code = Some(code);
            Err(failure)
        }
        RunOutcome::TimedOut => Err(Failure::new(
            ErrorCode::ExecFailed,
            format!(
                "{} did not finish within {}s and was killed",
                payload.command[0],
                timeout.as_secs()
            ),
        )),
    }
}
