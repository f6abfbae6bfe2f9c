//! `restart`: restart one service or all, then wait until they are ready.

use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::Job;

use super::stack::{checked_spec_for_version, current};
use super::{Done, Failure};
use crate::runtime::Worker;

pub async fn run(
    worker: &Worker,
    job: &Job,
    service: Option<&str>,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let spec = checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?;
    worker.engine.restart(&spec, service, sink).await?;
    Ok(Done {
        version: Some(current.version),
        changes: Vec::new(),
    })
}
