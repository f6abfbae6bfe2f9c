//! `restore`: replace the stack's volumes with a backup's. The stack is
//! stopped (its `pre_stop` hooks run), the volumes as they are are copied
//! aside (a `pre_restore` backup, kept and listed), the stack's containers
//! are removed, each volume is emptied and filled from the backup (its
//! digest checked), and the current version is applied again, health
//! gated. If anything fails after the copy aside, the volumes are put back
//! from it the same way and the stack started again: nothing is lost.

use std::time::SystemTime;

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
    let volumes: Vec<(&VolumeSpec, &VolumeCopy)> = wanted
        .volumes
        .iter()
        .map(|copy| {
            spec.volumes
                .iter()
                .find(|v| v.key == copy.volume)
                .map(|v| (v, copy))
                .ok_or_else(|| {
                    Failure::new(
                        ErrorCode::BackupFailed,
                        format!(
                            "version {} of {} has no volume {:?} to restore into",
                            current.version, job.domain, copy.volume
                        ),
                    )
                })
        })
        .collect::<Result<_, _>>()?;

    sink.report(Progress::Step {
        name: "restore",
        message: format!(
            "stopping the stack to restore backup {} (version {}) into {}",
            wanted.id,
            wanted.version,
            volumes
                .iter()
                .map(|(v, _)| v.key.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    });
    worker.engine.stop(&spec, sink).await?;
    // The volumes as they are, aside: what a failure puts back.
    let aside_id = JobId::new();
    let targets: Vec<&VolumeSpec> = volumes.iter().map(|(v, _)| *v).collect();
    let aside = match copy_out(worker, &spec, &targets, aside_id, sink).await {
        Ok(aside) => aside,
        Err(failure) => {
            // Nothing was replaced: start the stack as it was.
            let _ = worker.engine.apply(&spec, sink).await;
            return Err(failure);
        }
    };
    let pairs: Vec<(&VolumeSpec, &VolumeCopy)> = volumes.clone();
    match replace(worker, &spec, &pairs, job, sink).await {
        Ok(()) => {}
        Err(mut failure) => {
            sink.report(Progress::Step {
                name: "restore",
                message: "putting the volumes back as they were".into(),
            });
            let back: Vec<(&VolumeSpec, &VolumeCopy)> =
                targets.iter().copied().zip(aside.iter()).collect();
            match replace(worker, &spec, &back, job, sink).await {
                Ok(()) => {
                    failure.message = format!(
                        "{}; the volumes were put back as they were and the stack runs again",
                        failure.message
                    );
                    delete_objects(worker, &aside).await;
                }
                Err(again) => {
                    failure.message = format!(
                        "{}; putting the volumes back failed too: {}; their copy is backup {aside_id} (`hostkit restore {} {aside_id}`)",
                        failure.message, again.message, job.domain
                    );
                    // Keep the copy aside recorded: it is the data.
                    let _ = worker
                        .store
                        .record_backup_now(aside_record(job, current.version, aside_id, aside))
                        .await;
                }
            }
            return Err(failure);
        }
    }
    sink.report(Progress::Step {
        name: "restore",
        message: format!(
            "restored backup {}; the volumes as they were are backup {aside_id}",
            wanted.id
        ),
    });
    let mut changes = vec![Change::RecordBackup(Box::new(aside_record(
        job,
        current.version,
        aside_id,
        aside,
    )))];
    changes.extend(backup::prune(worker, &job.domain, aside_id, sink).await?);
    Ok(Done {
        version: Some(current.version),
        changes,
    })
}

fn aside_record(job: &Job, version: u32, id: JobId, volumes: Vec<VolumeCopy>) -> BackupRecord {
    BackupRecord {
        id,
        domain: job.domain.clone(),
        version,
        reason: BackupReason::PreRestore,
        volumes,
        created_at: SystemTime::now(),
    }
}

/// Remove the stack's containers, empty each volume and fill it from its
/// copy, then apply the stack again (health gated).
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
