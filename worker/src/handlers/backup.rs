//! `backup`: copy the stack's named volumes (all, or the ones asked for)
//! into the node's backup bucket, recorded in SQLite under the job's id.
//! Services labelled `hostkit.backup.stop=true` (a database that must not
//! write during the copy) are stopped first and started again afterwards,
//! also when the copy fails. Backups beyond retention are pruned.

use hostkit_deploy::engine::health::{self, Readiness};
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_deploy::engine::{StackSpec, container};
use hostkit_deploy::error::DeployError;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::job::BackupPayload;
use hostkit_proto::{Domain, Job, JobId};

use super::stack::{checked_spec_for_version, current};
use super::volume_copy::{copy_out, select};
use super::{Done, Failure};
use crate::runtime::Worker;
use crate::store::{BackupReason, BackupRecord, Change};

/// The label that stops a service for the copy.
pub const STOP_LABEL: &str = "hostkit.backup.stop";

pub async fn run(
    worker: &Worker,
    job: &Job,
    payload: &BackupPayload,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let spec = checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?;
    let volumes = select(&spec, &payload.volumes)?;
    let copies = take(worker, &spec, &volumes, job.id, sink).await?;
    let total: u64 = copies.iter().map(|c| c.size).sum();
    sink.report(Progress::Step {
        name: "backup",
        message: format!(
            "backup {} of version {}: {} volume(s), {}",
            job.id,
            current.version,
            copies.len(),
            hostkit_proto::units::bytes(total)
        ),
    });
    let mut changes = vec![Change::RecordBackup(Box::new(BackupRecord::new(
        job.id,
        job.domain.clone(),
        current.version,
        BackupReason::Backup,
        copies,
    )))];
    changes.extend(prune(worker, &job.domain, job.id, sink).await?);
    Ok(Done {
        version: Some(current.version),
        changes,
    })
}

/// Copy `volumes` as backup `id`, the services labelled [`STOP_LABEL`]
/// stopped meanwhile (and started again, also when the copy fails).
pub async fn take(
    worker: &Worker,
    spec: &StackSpec,
    volumes: &[&hostkit_deploy::engine::VolumeSpec],
    id: JobId,
    sink: &dyn ProgressSink,
) -> Result<Vec<crate::store::VolumeCopy>, Failure> {
    let stopped = stop_labelled(worker, spec, sink).await?;
    let copied = copy_out(worker, spec, volumes, id, sink).await;
    let started = start_again(worker, &stopped, sink).await;
    let copies = copied?;
    started?;
    Ok(copies)
}

/// The newest backup holding `version`'s data (asked for, or a deploy's
/// snapshot; not a copy set aside by a restore).
pub async fn data_of_version(
    worker: &Worker,
    domain: &Domain,
    version: u32,
) -> Result<Option<BackupRecord>, Failure> {
    Ok(worker
        .store
        .backups(domain.clone())
        .await?
        .into_iter()
        .find(|b| b.version == version && b.reason != BackupReason::PreRestore))
}

/// Stop the running replicas of the services labelled [`STOP_LABEL`];
/// answers their ids.
async fn stop_labelled(
    worker: &Worker,
    spec: &StackSpec,
    sink: &dyn ProgressSink,
) -> Result<Vec<String>, Failure> {
    let labelled: Vec<&str> = spec
        .services
        .iter()
        .filter(|s| {
            s.template
                .labels
                .as_ref()
                .and_then(|l| l.get(STOP_LABEL))
                .is_some_and(|v| v == "true")
        })
        .map(|s| s.name.as_str())
        .collect();
    if labelled.is_empty() {
        return Ok(Vec::new());
    }
    let inventory = Inventory::load(&worker.docker, &spec.project)
        .await
        .map_err(DeployError::from)?;
    let mut stopped = Vec::new();
    for c in inventory
        .all()
        .filter(|c| c.is_running() && labelled.contains(&c.service.as_str()))
    {
        let grace = spec.service(&c.service).and_then(|s| s.stop_timeout);
        container::stop(&worker.docker, &c.id, grace)
            .await
            .map_err(DeployError::from)?;
        sink.report(Progress::Service {
            service: c.service.clone(),
            replica: c.number,
            state: hostkit_deploy::progress::ServiceState::Stopped,
        });
        stopped.push(c.id.clone());
    }
    Ok(stopped)
}

/// Start the stopped replicas again and wait until they are ready.
async fn start_again(
    worker: &Worker,
    stopped: &[String],
    sink: &dyn ProgressSink,
) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + worker.settings.health_timeout;
    for id in stopped {
        container::start(&worker.docker, id)
            .await
            .map_err(DeployError::from)?;
        if let Err(not_ready) = health::wait_ready(&worker.docker, id, Readiness::Healthy, deadline)
            .await
            .map_err(DeployError::from)?
        {
            sink.report(Progress::Warning {
                message: format!("after the copy: {not_ready}"),
            });
        }
    }
    Ok(())
}

/// Delete the domain's backups beyond retention (keeping `new`), objects
/// first; answers the change that drops their rows.
pub async fn prune(
    worker: &Worker,
    domain: &Domain,
    new: JobId,
    sink: &dyn ProgressSink,
) -> Result<Option<Change>, Failure> {
    let keep = worker.settings.retention.max(1);
    let older: Vec<BackupRecord> = worker
        .store
        .backups(domain.clone())
        .await?
        .into_iter()
        .filter(|b| b.id != new)
        .skip(keep - 1)
        .collect();
    if older.is_empty() {
        return Ok(None);
    }
    let store = worker
        .backups
        .get()
        .await
        .map_err(|m| Failure::new(hostkit_proto::ErrorCode::BackupFailed, m))?;
    for backup in &older {
        for copy in &backup.volumes {
            if let Err(error) = store.delete(&copy.object).await {
                tracing::warn!(%error, object = copy.object, "pruned backup object not deleted");
            }
        }
    }
    sink.report(Progress::Step {
        name: "backup",
        message: format!(
            "pruned {} older backup(s) beyond the {keep} kept",
            older.len()
        ),
    });
    Ok(Some(Change::ForgetBackups(
        older.into_iter().map(|b| b.id).collect(),
    )))
}
