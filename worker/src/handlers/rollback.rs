//! `rollback`: re-apply a recorded version (default: the one before the
//! current) with its exact normalized compose and image ids, whole stack at
//! once; that version becomes current again. With `with_data`, that
//! version's data comes back too: the newest backup of its volumes (a
//! `--snapshot` deploy's) is restored as `restore` does, the volumes as
//! they were kept aside.

use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::{ErrorCode, Job};

use super::restore::{Targets, restore_data};
use super::stack::{checked_spec_for_version, current};
use super::{Done, Failure, backup};
use crate::runtime::Worker;
use crate::store::Change;

pub async fn run(
    worker: &Worker,
    job: &Job,
    to: Option<u32>,
    with_data: bool,
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
    let mut changes = vec![Change::SetCurrent {
        domain: job.domain.clone(),
        version: target.version,
    }];
    if with_data {
        // Its data: the newest backup of its volumes, found before
        // anything is touched.
        let Some(data) = backup::data_of_version(worker, &job.domain, target.version).await? else {
            return Err(Failure::new(
                ErrorCode::BackupNotFound,
                format!(
                    "node {} keeps no backup of version {}'s data of {}: roll back without --with-data, or restore a backup (`hostkit backups {}`)",
                    worker.node, target.version, job.domain, job.domain
                ),
            ));
        };
        let running =
            checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?;
        let targets = Targets {
            running: &running,
            target: &spec,
            fallback: &running,
            version: current.version,
        };
        let aside = restore_data(worker, job, &targets, &data, sink).await?;
        changes.push(Change::RecordBackup(Box::new(aside)));
    } else {
        worker.engine.apply(&spec, sink).await?;
    }
    Ok(Done {
        version: Some(target.version),
        changes,
    })
}
