//! `remove`: containers (after their `pre_stop` hooks), networks, the nginx
//! file and the files HostKit wrote under the domain's `.hostkit/` go;
//! named volumes stay unless `purge_volumes`. The image tags of the
//! domain's versions go too; its record and port block are released.

use hostkit_deploy::engine::files;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::{ErrorCode, Job};

use super::stack::{domain_dir, spec_for_version};
use super::{Done, Failure};
use crate::runtime::Worker;
use crate::runtime::aftercare;
use crate::store::{Change, VersionStatus};

pub async fn run(
    worker: &Worker,
    job: &Job,
    purge_volumes: bool,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let Some(domain) = worker.store.domain(job.domain.clone()).await? else {
        return Err(Failure::new(
            ErrorCode::DomainNotFound,
            format!("{} has no stack on node {}", job.domain, worker.node),
        ));
    };
    // The current version knows the services' `pre_stop` hooks; a version
    // that cannot be read must not keep the stack from going.
    let spec = match worker.store.current_version(job.domain.clone()).await? {
        Some(current) => match spec_for_version(worker, &domain, &current, None, &job.id, None) {
            Ok(spec) => Some(spec),
            Err(failure) => {
                sink.report(Progress::Warning {
                    message: format!(
                        "{}; removing the stack without its pre_stop hooks",
                        failure.message
                    ),
                });
                None
            }
        },
        None => None,
    };
    match spec {
        Some(spec) => {
            worker
                .engine
                .remove_stack(&spec, purge_volumes, sink)
                .await?;
        }
        None => {
            worker
                .engine
                .remove(&job.domain, &job.domain.token(), purge_volumes, sink)
                .await?;
            files::remove_all(&domain_dir(worker, &job.domain)).await?;
        }
    }
    // The containers are gone: so go the image tags of every version kept
    // (untagging is idempotent, should this job run again after a crash).
    for version in worker.store.versions(job.domain.clone()).await? {
        if version.status != VersionStatus::Pruned {
            aftercare::untag_version(worker, &job.domain, &version).await;
        }
    }
    Ok(Done {
        version: None,
        changes: vec![Change::RemoveDomain(job.domain.clone())],
    })
}
