//! `restore`, and putting a backup's data back for the jobs that need it
//! (`rollback --with-data`, the auto-rollback of a `--snapshot` deploy):
//! the running stack is stopped (its `pre_stop` hooks run), the volumes as
//! they are are copied aside (a `pre_restore` backup, kept and listed),
//! the stack's containers are removed, each volume is emptied and filled
//! from the backup (its digest checked), and the target spec is applied,
//! health gated. If anything fails after the copy aside, the volumes are
//! put back from it the same way and a fallback spec is applied: nothing
//! is lost.

use hostkit_deploy::engine::volumes;
use hostkit_deploy::engine::{StackSpec, VolumeSpec};
use hostkit_deploy::error::DeployError;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::job::RestorePayload;
use hostkit_proto::{ErrorCode, Job, JobId};

use super::stack::{checked_spec_for_version, current};
use super::volume_copy::{copy_in, copy_out};
use super::{Done, Failure, backup};
use crate::runtime::Worker;
use crate::store::{BackupReason, BackupRecord, Change, VolumeCopy};

pub async fn run(
    worker: &Worker,
    job: &Job,
    payload: &RestorePayload,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let Some(wanted) = worker
        .store
        .backup(job.domain.clone(), payload.backup)
        .await?
    else {
        return Err(Failure::new(
            ErrorCode::BackupNotFound,
            format!(
                "node {} keeps no backup {} of {}",
                worker.node, payload.backup, job.domain
            ),
        ));
    };
    let (domain, current) = current(worker, &job.domain).await?;
    let spec = checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?;
    let targets = Targets {
        running: &spec,
        target: &spec,
        fallback: &spec,
        version: current.version,
    };
    let aside = restore_data(worker, job, &targets, &wanted, sink).await?;
    let aside_id = aside.id;
    let mut changes = vec![Change::RecordBackup(Box::new(aside))];
    changes.extend(backup::prune(worker, &job.domain, aside_id, sink).await?);
    Ok(Done {
        version: Some(current.version),
        changes,
    })
}

/// The specs a data restore works with.
pub struct Targets<'a> {
    /// What runs now (stopped first).
    pub running: &'a StackSpec,
    /// What runs with the restored data.
    pub target: &'a StackSpec,
    /// What runs if the data has to be put back as it was.
    pub fallback: &'a StackSpec,
    /// The version whose data is set aside (the running one).
    pub version: u32,
}

/// Put `backup`'s volumes into the stack and start `targets.target` on
/// them; answers the record of the copy set aside (not yet committed).
pub async fn restore_data(
    worker: &Worker,
    job: &Job,
    targets: &Targets<'_>,
    backup: &BackupRecord,
    sink: &dyn ProgressSink,
) -> Result<BackupRecord, Failure> {
    let pairs: Vec<(&VolumeSpec, &VolumeCopy)> = backup
        .volumes
        .iter()
        .map(|copy| {
            targets
                .target
                .volumes
                .iter()
                .find(|v| v.key == copy.volume)
                .map(|v| (v, copy))
                .ok_or_else(|| {
                    Failure::new(
                        ErrorCode::BackupFailed,
                        format!(
                            "{} has no volume {:?} to restore backup {} into",
                            job.domain, copy.volume, backup.id
                        ),
                    )
                })
        })
        .collect::<Result<_, _>>()?;
    let keys: Vec<&VolumeSpec> = pairs.iter().map(|(v, _)| *v).collect();
    sink.report(Progress::Step {
        name: "restore",
        message: format!(
            "stopping the stack to restore backup {} (of version {}) into {}",
            backup.id,
            backup.version,
            keys.iter()
                .map(|v| v.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    worker.engine.stop(targets.running, sink).await?;
    let aside_id = JobId::new();
    let aside = match copy_out(worker, targets.target, &keys, aside_id, sink).await {
        Ok(aside) => aside,
        Err(failure) => {
            // Nothing was replaced: start what ran.
            let _ = worker.engine.apply(targets.running, sink).await;
            return Err(failure);
        }
    };
    let record = BackupRecord::new(
        aside_id,
        job.domain.clone(),
        targets.version,
        BackupReason::PreRestore,
        aside,
    );
    if let Err(mut failure) = replace(worker, targets.target, &pairs, job, sink).await {
        sink.report(Progress::Step {
            name: "restore",
            message: "putting the volumes back as they were".into(),
        });
        let back: Vec<(&VolumeSpec, &VolumeCopy)> =
            keys.iter().copied().zip(record.volumes.iter()).collect();
        match replace(worker, targets.fallback, &back, job, sink).await {
            Ok(()) => {
                failure.message = format!(
                    "{}; the volumes were put back as they were and the stack runs again",
                    failure.message
                );
                delete_objects(worker, &record.volumes).await;
            }
            Err(again) => {
                failure.message = format!(
                    "{}; putting the volumes back failed too: {}; their copy is backup {aside_id} (`hostkit restore {} {aside_id}`)",
                    failure.message, again.message, job.domain
                );
                // The copy aside is the data now: keep it listed.
                if let Err(error) = worker.store.record_backup_now(record).await {
                    tracing::error!(%error, %aside_id, "the copy aside was not recorded");
                }
            }
        }
        return Err(failure);
    }
    sink.report(Progress::Step {
        name: "restore",
        message: format!(
            "restored backup {}; the volumes as they were are backup {aside_id}",
            backup.id
        ),
    });
    Ok(record)
}

/// Remove the stack's containers, empty each volume and fill it from its
/// copy, then apply `spec` (health gated).
async fn replace(
    worker: &Worker,
    spec: &StackSpec,
    pairs: &[(&VolumeSpec, &VolumeCopy)],
    job: &Job,
    sink: &dyn ProgressSink,
) -> Result<(), Failure> {
    volumes::remove_containers(&worker.docker, spec).await?;
    for (volume, copy) in pairs {
        volumes::recreate(&worker.docker, spec, volume).await?;
        copy_in(worker, spec, volume, copy, &format!("restore-{}", job.id)).await?;
        sink.report(Progress::Step {
            name: "restore",
            message: format!(
                "volume {}: {} written",
                volume.key,
                hostkit_proto::units::bytes(copy.size)
            ),
        });
    }
    worker
        .engine
        .apply(spec, sink)
        .await
        .map_err(|e: DeployError| Failure::from(e))?;
    Ok(())
}

async fn delete_objects(worker: &Worker, copies: &[VolumeCopy]) {
    if let Ok(store) = worker.backups.get().await {
        for copy in copies {
            let _ = store.delete(&copy.object).await;
        }
    }
}
