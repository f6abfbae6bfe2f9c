//! One handler per job kind. A handler does the work through
//! `hostkit-deploy` and answers what to commit to SQLite; the runner
//! (`runtime::job`) commits it together with the job's terminal event.

mod backup;
mod deploy;
mod env;
mod exec;
mod import;
mod redirects;
mod remove;
mod restart;
mod restore;
mod rollback;
mod scale;
mod stack;
mod start_stop;
mod variables;
mod volume_copy;

use hostkit_deploy::error::DeployError;
use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::{ErrorCode, Job, JobSpec};

use crate::runtime::Worker;
use crate::store::{Change, StoreError};

pub use deploy::SINGLE_IMAGE_MARKER;
pub use stack::{domain_dir, spec_for_version};

/// A job that succeeded.
#[derive(Debug)]
pub struct Done {
    /// The stack version now current (if the job has one).
    pub version: Option<u32>,
    /// What to record, in the same transaction as the job's end.
    pub changes: Vec<Change>,
}

/// A job that failed, in the terms of the wire (code, safe message, hint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Stable error code.
    pub code: ErrorCode,
    /// Human message (never contains env values).
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The version serving again after an automatic rollback.
    pub rolled_back_to: Option<u32>,
    /// The exit status of a one-off command that failed.
    pub exit_code: Option<i64>,
}

impl Failure {
    /// A failure with `code`'s default hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Failure {
            code,
            message: message.into(),
            hint: code.hint().map(str::to_string),
            rolled_back_to: None,
            exit_code: None,
        }
    }
}

impl From<DeployError> for Failure {
    /// The event carries the error's safe message; the worker's log (the
    /// job's span) gets its whole cause chain (the engine's answer, the
    /// I/O error behind a read).
    fn from(e: DeployError) -> Self {
        let mut chain = e.to_string();
        let mut source = std::error::Error::source(&e);
        while let Some(cause) = source {
            chain.push_str(": ");
            chain.push_str(&cause.to_string());
            source = cause.source();
        }
        tracing::warn!(code = e.code().as_str(), error = %chain, "job step failed");
        Failure {
            code: e.code(),
            message: e.to_string(),
            hint: Some(e.hint()),
            rolled_back_to: None,
            exit_code: None,
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "state store failed");
        Failure::new(
            ErrorCode::Internal,
            "the worker's state store failed; see the worker's log",
        )
    }
}

/// Run blocking work of a job (file system walks, the compose check) off
/// the async executor; a panic there fails the job as `internal`, naming
/// `what`.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Failure::new(ErrorCode::Internal, format!("{what} panicked: {e}")))
}

/// Run `job` to its outcome.
pub async fn run(worker: &Worker, job: &Job, sink: &dyn ProgressSink) -> Result<Done, Failure> {
    match &job.spec {
        JobSpec::Deploy(payload) => deploy::run(worker, job, payload, sink).await,
        JobSpec::Rollback(payload) => {
            rollback::run(worker, job, payload.to_version, payload.with_data, sink).await
        }
        JobSpec::Scale(payload) => {
            scale::run(worker, job, &payload.service, payload.replicas, sink).await
        }
        JobSpec::Restart(payload) => {
            restart::run(worker, job, payload.service.as_deref(), sink).await
        }
        JobSpec::Stop(_) => start_stop::stop(worker, job, sink).await,
        JobSpec::Start(_) => start_stop::start(worker, job, sink).await,
        JobSpec::Remove(payload) => remove::run(worker, job, payload.purge_volumes, sink).await,
        JobSpec::Import(payload) => import::run(worker, job, payload, sink).await,
        JobSpec::Env(payload) => env::run(worker, job, payload, sink).await,
        JobSpec::Exec(payload) => exec::run(worker, job, payload, sink).await,
        JobSpec::Backup(payload) => backup::run(worker, job, payload, sink).await,
        JobSpec::Restore(payload) => restore::run(worker, job, payload, sink).await,
    }
}
