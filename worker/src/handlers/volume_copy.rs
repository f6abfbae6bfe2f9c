//! Volumes to and from the node's backup bucket, shared by `backup` and
//! `restore`: each volume's tar streams from the engine into an object
//! (`<dtoken>.<backup id>.<volume>`) while it is hashed and counted, and
//! back from the object into a fresh volume, its digest checked. Nothing
//! is held in memory beyond a chunk.

use std::sync::{Arc, Mutex};

use async_nats::jetstream::object_store::ObjectMetadata;
use futures_util::StreamExt;
use hostkit_deploy::engine::volumes::VolumeHelper;
use hostkit_deploy::engine::{StackSpec, VolumeSpec};
use hostkit_deploy::error::DeployError;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::subjects::settings::IMAGES_CHUNK_SIZE;
use hostkit_proto::{ErrorCode, JobId};
use sha2::{Digest, Sha256};
use tokio_util::io::{ReaderStream, StreamReader};

use super::Failure;
use crate::runtime::Worker;
use crate::store::VolumeCopy;

/// Read size from the object store.
const CHUNK: usize = 1024 * 1024;

/// The volumes of `spec` a backup takes: the named ones, or all.
pub fn select<'a>(spec: &'a StackSpec, names: &[String]) -> Result<Vec<&'a VolumeSpec>, Failure> {
    if names.is_empty() {
        if spec.volumes.is_empty() {
            return Err(Failure::new(
                ErrorCode::BackupFailed,
                format!("{} has no named volume to back up", spec.domain),
            ));
        }
        return Ok(spec.volumes.iter().collect());
    }
    names
        .iter()
        .map(|name| {
            spec.volumes.iter().find(|v| &v.key == name).ok_or_else(|| {
                Failure::new(
                    ErrorCode::BackupFailed,
                    format!(
                        "{} has no named volume {name:?} (volumes: {})",
                        spec.domain,
                        spec.volumes
                            .iter()
                            .map(|v| v.key.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
        })
        .collect()
}

fn failed(message: String) -> Failure {
    Failure::new(ErrorCode::BackupFailed, message)
}

/// The image helper containers are made from: the stack's first service's.
fn helper_image(spec: &StackSpec) -> Result<&str, Failure> {
    spec.services
        .first()
        .map(|s| s.image_id.as_str())
        .ok_or_else(|| failed(format!("{} has no service", spec.domain)))
}

/// Copy each of `volumes` into the backup bucket as backup `id`.
pub async fn copy_out(
    worker: &Worker,
    spec: &StackSpec,
    volumes: &[&VolumeSpec],
    id: JobId,
    sink: &dyn ProgressSink,
) -> Result<Vec<VolumeCopy>, Failure> {
    let store = worker.backups.get().await.map_err(failed)?;
    let image = helper_image(spec)?;
    let mut copies = Vec::new();
    for volume in volumes {
        let helper =
            VolumeHelper::create(&worker.docker, spec, volume, image, &format!("backup-{id}"))
                .await?;
        let object = format!("{}.{id}.{}", spec.domain.token(), volume.key);
        let copied = copy_one_out(worker, store, &helper, &object).await;
        let removed = helper.remove(&worker.docker).await;
        let (size, digest) = match copied {
            Ok(done) => done,
            Err(message) => {
                let _ = store.delete(&object).await;
                return Err(failed(format!("volume {}: {message}", volume.key)));
            }
        };
        removed.map_err(DeployError::from)?;
        sink.report(Progress::Step {
            name: "backup",
            message: format!(
                "volume {}: {} copied",
                volume.key,
                hostkit_proto::units::bytes(size)
            ),
        });
        copies.push(VolumeCopy {
            volume: volume.key.clone(),
            object,
            size,
            digest,
        });
    }
    Ok(copies)
}

async fn copy_one_out(
    worker: &Worker,
    store: &async_nats::jetstream::object_store::ObjectStore,
    helper: &VolumeHelper,
    object: &str,
) -> Result<(u64, String), String> {
    let stream = helper
        .download(&worker.docker)
        .map(|chunk| chunk.map_err(|e| std::io::Error::other(e.to_string())));
    let mut reader = StreamReader::new(Box::pin(stream));
    // The store hashes what it writes: its digest is the copy's.
    let meta = ObjectMetadata {
        name: object.to_owned(),
        chunk_size: Some(IMAGES_CHUNK_SIZE),
        ..Default::default()
    };
    let info = store
        .put(meta, &mut reader)
        .await
        .map_err(|e| e.to_string())?;
    let hex = info
        .digest
        .as_deref()
        .and_then(hostkit_proto::name::object_digest_hex)
        .ok_or_else(|| format!("the object store recorded no SHA-256 for {object}"))?;
    Ok((info.size as u64, format!("sha256:{hex}")))
}

/// Fill `volume` (empty) from `copy`'s object; its digest must match.
pub async fn copy_in(
    worker: &Worker,
    spec: &StackSpec,
    volume: &VolumeSpec,
    copy: &VolumeCopy,
    run: &str,
) -> Result<(), Failure> {
    let store = worker.backups.get().await.map_err(failed)?;
    let object = store.get(&copy.object).await.map_err(|e| {
        failed(format!(
            "volume {}: its copy {} cannot be read from {}: {e}",
            copy.volume,
            copy.object,
            worker.backups.bucket()
        ))
    })?;
    let image = helper_image(spec)?;
    let helper = VolumeHelper::create(&worker.docker, spec, volume, image, run).await?;
    let seen = Arc::new(Mutex::new((Sha256::new(), 0u64, None::<String>)));
    let counter = Arc::clone(&seen);
    let at_end = Arc::clone(&seen);
    let expected = (copy.size, copy.digest.clone());
    let stream = ReaderStream::with_capacity(object, CHUNK)
        .map(move |chunk| {
            let mut seen = counter.lock().expect("hash lock");
            match &chunk {
                Ok(bytes) => {
                    seen.0.update(bytes);
                    seen.1 += bytes.len() as u64;
                }
                Err(e) => seen.2 = Some(e.to_string()),
            }
            Some(chunk)
        })
        // At the end, a copy that is not what was backed up aborts the
        // request before the engine could take it for complete.
        .chain(futures_util::stream::once(async move {
            let mut seen = at_end.lock().expect("hash lock");
            let digest = format!("sha256:{}", hex::encode(seen.0.clone().finalize()));
            if (seen.1, digest.clone()) == expected {
                None
            } else {
                let why = format!("{} bytes with {digest}", seen.1);
                seen.2.get_or_insert(why.clone());
                Some(Err(std::io::Error::other(why)))
            }
        }))
        .filter_map(std::future::ready);
    let uploaded = helper.upload(&worker.docker, stream).await;
    let removed = helper.remove(&worker.docker).await;
    let (hasher, size, error) = std::mem::take(&mut *seen.lock().expect("hash lock"));
    let digest = format!("sha256:{}", hex::encode(hasher.finalize()));
    if let Some(error) = error {
        return Err(failed(format!(
            "volume {}: its copy could not be read whole or does not hold what was backed up ({error}; recorded {} bytes with {})",
            copy.volume, copy.size, copy.digest
        )));
    }
    uploaded.map_err(|e| failed(format!("volume {}: {e}", copy.volume)))?;
    removed.map_err(DeployError::from)?;
    if digest != copy.digest || size != copy.size {
        return Err(failed(format!(
            "volume {}: its copy does not hold what was backed up ({} bytes with {digest}, recorded {} bytes with {})",
            copy.volume, size, copy.size, copy.digest
        )));
    }
    Ok(())
}
