//! `rollback`: re-apply a recorded version (default: the one before the
//! current) with its exact normalized compose and image ids, whole stack at
//! once; that version becomes current again.

use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::{ErrorCode, Job};

use super::stack::{checked_spec_for_version, current};
use super::{Done, Failure};
use crate::runtime::Worker;
use crate::store::Change;

pub async fn run(
    worker: &Worker,
    job: &Job,
    to: Option<u32>,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let target = match to {
        Some(n) => worker.store.version(job.domain.clone(), n).await?,
        None => worker.store.previous_version(job.domain.clone()).await?,
    }
    .ok_or_else(|| match to {
        Some(n) => Failure::new(
            ErrorCode::VersionNotFound,
            format!("{} has no version {n} to roll back to", job.domain),
        ),
        None => Failure::new(
            ErrorCode::VersionNotFound,
            format!(
                "{} has no version before {} to roll back to",
                job.domain, current.version
            ),
        ),
    })?;
    if !target.status.is_restorable() {
        return Err(Failure::new(
            ErrorCode::VersionNotFound,
            format!(
                "version {} of {} was pruned; its images are gone",
                target.version, job.domain
            ),
        ));
    }
    sink.report(Progress::Step {
        name: "rollback",
        message: format!(
            "applying version {} (current is {})",
            target.version, current.version
        ),
    });
    let spec = checked_spec_for_version(worker, &domain, &target, None, &job.id, None).await?;
    worker.engine.apply(&spec, sink).await?;
    Ok(Done {
        version: Some(target.version),
        changes: vec![Change::SetCurrent {
            domain: job.domain.clone(),
            version: target.version,
        }],
    })
}
