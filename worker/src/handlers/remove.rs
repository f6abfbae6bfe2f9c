//! `remove`: containers, networks and the nginx file go; named volumes stay
//! unless `purge_volumes`. The domain's record and port block are released.

use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::{ErrorCode, Job};

use super::{Done, Failure};
use crate::runtime::Worker;
use crate::store::Change;

pub async fn run(
    worker: &Worker,
    job: &Job,
    purge_volumes: bool,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    if worker.store.domain(job.domain.clone()).await?.is_none() {
        return Err(Failure::new(
            ErrorCode::DomainNotFound,
            format!("{} has no stack on node {}", job.domain, worker.node),
        ));
    }
    worker
        .engine
        .remove(&job.domain, &job.domain.token(), purge_volumes, sink)
        .await?;
    Ok(Done {
        version: None,
        changes: vec![Change::RemoveDomain(job.domain.clone())],
    })
}
