//! `stop` and `start`: stop every container of the stack (nothing removed),
//! and bring the current version back (an apply: stopped containers start).

use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::Job;

use super::stack::{checked_spec_for_version, current, spec_for_version};
use super::{Done, Failure};
use crate::runtime::Worker;

pub async fn stop(worker: &Worker, job: &Job, sink: &dyn ProgressSink) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let spec = spec_for_version(worker, &domain, &current, None, &job.id, None)?;
    worker.engine.stop(&spec, sink).await?;
    Ok(Done {
        version: Some(current.version),
        changes: Vec::new(),
    })
}

pub async fn start(worker: &Worker, job: &Job, sink: &dyn ProgressSink) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let spec = checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?;
    worker.engine.apply(&spec, sink).await?;
    Ok(Done {
        version: Some(current.version),
        changes: Vec::new(),
    })
}
