//! `deploy`: images in, stack applied, health gated, version recorded. A
//! deploy that fails once it started changing containers restores the
//! previous version (auto-rollback) or, on a first deploy, removes what it
//! created; the job then ends `failed` with `rolled_back_to`. A deploy
//! with `snapshot` backs up the previous version's volumes first, and its
//! auto-rollback puts that data back too.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::object_store::{GetErrorKind, Object, ObjectStore};
use hostkit_deploy::domain_dir::{DomainDir, DomainDirError};
use hostkit_deploy::engine::files;
use hostkit_deploy::error::DeployError;
use hostkit_deploy::images::layered::{self, BlobError, BlobSource, LayeredError};
use hostkit_deploy::images::verify::{DigestCheck, Verdict};
use hostkit_deploy::images::{self, ImageError, ImageScope, PullPolicy};
use hostkit_deploy::policy::{PolicyDenied, Rule};
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_deploy::stack::{self, Placement};
use hostkit_proto::job::{DeployPayload, DeploySource, ImageSource};
use hostkit_proto::{ErrorCode, Job};

use super::restore::{Targets, restore_data};
use super::stack::{checked_spec_for_version, domain_dir, limits_for, version_labels};
use super::{Done, Failure, blocking, variables};
use crate::runtime::Worker;
use crate::store::{Change, NewVersion, VersionService};

/// A service label that makes a deploy take a snapshot (`--snapshot`).
pub const SNAPSHOT_LABEL: &str = "hostkit.snapshot";

/// Name of the one service of a single-image deploy.
pub const SINGLE_IMAGE_SERVICE: &str = "web";
/// First line of the compose file of a single-image deploy: how the on-disk
/// view tells `"type": "single"` sites from stacks.
pub const SINGLE_IMAGE_MARKER: &str = "# hostkit: single image\n";

/// Compose text for a deploy: inline, or a one-service stack for a single
/// image (so old single-container sites keep working).
pub fn compose_text(source: &DeploySource) -> String {
    match source {
        DeploySource::Compose(c) => c.text.clone(),
        DeploySource::Image(single) => {
            let ports = single
                .port
                .map(|p| format!("    ports: [\"{p}\"]\n"))
                .unwrap_or_default();
            format!(
                "{SINGLE_IMAGE_MARKER}services:\n  {SINGLE_IMAGE_SERVICE}:\n    image: \"{}\"\n    restart: unless-stopped\n{ports}",
                single.reference.replace('"', "")
            )
        }
    }
}

pub async fn run(
    worker: &Worker,
    job: &Job,
    payload: &DeployPayload,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    run_with_images(worker, job, payload, BTreeMap::new(), sink).await
}

/// A deploy that may also run `vouched` images (reference → image id)
/// besides those it loads: ones the worker itself found to be the domain's
/// (an imported v1 site's container image).
pub async fn run_with_images(
    worker: &Worker,
    job: &Job,
    payload: &DeployPayload,
    vouched: BTreeMap<String, String>,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let domain = &job.domain;
    let dir = domain_dir(worker, domain);
    tokio::fs::create_dir_all(&dir).await.map_err(|e| {
        Failure::new(
            ErrorCode::Internal,
            format!("cannot create {}: {e}", dir.display()),
        )
    })?;

    // 1. Check before anything is loaded or touched.
    sink.report(Progress::Step {
        name: "check",
        message: "loading the compose file and checking the policy".into(),
    });
    let known = worker.store.domain(domain.clone()).await?;
    let redirects =
        super::redirects::resolve(worker, domain, known.as_ref(), &payload.options, &dir, sink)
            .await?;
    let job_env = variables::open(worker, &payload.env, payload.sealed_env.as_ref())?;
    let stored = worker
        .store
        .domain_env(domain.clone(), worker.settings.seal_key.clone())
        .await?;
    let env = variables::layered(&dir, &stored.env, &job_env).await?;
    let text = compose_text(&payload.source);
    let (policy, budget) = limits_for(worker, domain);
    let checked = {
        let (text, env, dir) = (text.clone(), env.clone(), dir.clone());
        let main = payload.options.main_service.clone();
        blocking("the compose check", move || {
            stack::check(&text, &env, &dir, main.as_deref(), &policy)
        })
        .await??
    };
    for warning in &checked.warnings {
        sink.report(Progress::Warning {
            message: format!("{}: {}", warning.path, warning.message),
        });
    }
    if let Some(reason) = &checked.main_reason {
        sink.report(Progress::Step {
            name: "check",
            message: reason.clone(),
        });
    }

    // 2. Images: stream blobs and files into the engine; pulls happen in resolve.
    let (pull, mut loaded) = load_images(worker, &job.domain, &payload.images, sink).await?;
    loaded.extend(vouched);
    let scope = image_scope(worker, domain, loaded).await?;

    // 3. Resolve and apply.
    let record = worker
        .store
        .ensure_domain(domain.clone(), worker.settings.ports)
        .await?;
    let previous = worker.store.current_version(domain.clone()).await?;
    let version = worker.store.next_version(domain.clone()).await?;
    let timeout = payload
        .options
        .health_timeout_secs
        .map(|s| Duration::from_secs(u64::from(s)))
        .unwrap_or(worker.settings.health_timeout);
    let placement = Placement {
        domain,
        domain_dir: &dir,
        ports: record.ports,
        health_timeout: timeout,
        labels: version_labels(version, &job.id),
        budget,
    };
    let mut spec = stack::resolve(&worker.docker, &checked, &placement, pull, &scope, sink).await?;
    spec.redirects = redirects.clone();

    // 4. Data-safe deploys: the current version's volumes, before the new
    // version touches anything.
    let wants_snapshot = payload.options.snapshot
        || checked
            .project
            .services
            .values()
            .any(|s| s.labels.get(SNAPSHOT_LABEL).is_some_and(|v| v == "true"));
    let snapshot = match (&previous, wants_snapshot) {
        (Some(previous), true) => snapshot(worker, &record, previous, job, timeout, sink).await?,
        (None, true) => {
            sink.report(Progress::Step {
                name: "snapshot",
                message: "a first deploy: no data to snapshot".into(),
            });
            None
        }
        (_, false) => None,
    };

    let started = Instant::now();
    match worker.engine.apply(&spec, sink).await {
        Ok(applied) => {
            tracing::info!(version, touched = applied.touched_anything(), elapsed = ?started.elapsed(), "stack applied");
            // The stack runs: a missing tag only exposes this version's
            // images to pruning, so it is a warning, not a failed deploy.
            let other_images: BTreeMap<String, String> = spec
                .services
                .iter()
                .flat_map(|s| s.other_images.clone())
                .collect();
            for service in &spec.services {
                let tagged = images::tag_version(
                    &worker.docker,
                    &service.image_id,
                    &spec.project,
                    &service.name,
                    version,
                )
                .await;
                if let Err(error) = tagged {
                    tracing::warn!(%error, service = service.name, "version tag not set");
                    sink.report(Progress::Warning {
                        message: format!("{}: version tag not set ({error}); its image is not protected from pruning", service.name),
                    });
                }
            }
            for (reference, id) in &other_images {
                let tag = images::other_image_tag(&spec.project, reference, version);
                if let Err(error) = images::tag_image(&worker.docker, id, &tag).await {
                    tracing::warn!(%error, reference, "version tag not set");
                    sink.report(Progress::Warning {
                        message: format!("{reference}: version tag not set ({error}); the image is not protected from pruning"),
                    });
                }
            }
            let services = spec
                .services
                .iter()
                .map(|s| VersionService {
                    service: s.name.clone(),
                    image_ref: s.image_reference.clone(),
                    image_id: s.image_id.clone(),
                    replicas: s.replicas,
                    config_hash: s.config_hash.clone(),
                })
                .collect();
            let new = NewVersion {
                domain: job.domain.clone(),
                version,
                compose_text: text,
                project: checked.project,
                main_service: checked.main,
                services,
                other_images,
                env_hash: variables::hash(&env),
                job_env,
                job_id: job.id,
                seal_key: crate::store::SealWith(worker.settings.seal_key.clone()),
            };
            Ok(Done {
                version: Some(version),
                changes: vec![
                    Change::RecordDeployed(Box::new(new)),
                    Change::SetRedirects {
                        domain: job.domain.clone(),
                        redirects,
                    },
                ],
            })
        }
        Err(error) if !payload.options.auto_rollback => Err(error.into()),
        // A budget that cannot be written stops the apply before it changes
        // anything (and would stop a rollback the same way).
        Err(error @ DeployError::Limits(_)) => Err(error.into()),
        Err(error) => {
            let mut failure = Failure::from(error);
            match previous {
                Some(previous) => {
                    sink.report(Progress::Step {
                        name: "rollback",
                        message: format!("restoring version {}", previous.version),
                    });
                    let restore = checked_spec_for_version(
                        worker,
                        &record,
                        &previous,
                        None,
                        &job.id,
                        Some(timeout),
                    )
                    .await?;
                    // With a snapshot, its data comes back with the code
                    // (`restore_data` applies the previous version itself);
                    // without one, or if that fails, the code alone.
                    let mut restored = false;
                    if let Some(data) = &snapshot {
                        let targets = Targets {
                            running: &spec,
                            target: &restore,
                            fallback: &restore,
                            version,
                        };
                        match restore_data(worker, job, &targets, data, sink).await {
                            Ok(aside) => {
                                failure.message = format!(
                                    "{}; version {}'s data was restored from snapshot {} (the failed version's is backup {})",
                                    failure.message, previous.version, data.id, aside.id
                                );
                                if let Err(error) = worker.store.record_backup_now(aside).await {
                                    tracing::warn!(%error, "the failed version's data was not recorded");
                                }
                                restored = true;
                            }
                            Err(e) => {
                                failure.message = format!(
                                    "{}; restoring the snapshot's data failed: {}",
                                    failure.message, e.message
                                )
                            }
                        }
                    }
                    if restored {
                        failure.rolled_back_to = Some(previous.version);
                    } else {
                        match worker.engine.apply(&restore, sink).await {
                            Ok(_) => failure.rolled_back_to = Some(previous.version),
                            Err(e) => {
                                failure.message = format!(
                                    "{}; restoring version {} failed too: {e}",
                                    failure.message, previous.version
                                )
                            }
                        }
                    }
                }
                None => {
                    sink.report(Progress::Step {
                        name: "rollback",
                        message: "first deploy failed: removing what it created".into(),
                    });
                    let removed = match worker
                        .engine
                        .remove(domain, &spec.project, false, sink)
                        .await
                    {
                        Ok(()) => files::remove_all(&spec.domain_dir).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = removed {
                        failure.message =
                            format!("{}; cleaning up failed too: {e}", failure.message);
                    }
                }
            }
            Err(failure)
        }
    }
}

/// Back up `previous`'s named volumes (its labelled services stopped for
/// the copy) and record the backup at once, so that it outlives whatever
/// the new version does; `None` when it has no named volume.
async fn snapshot(
    worker: &Worker,
    record: &crate::store::DomainRecord,
    previous: &crate::store::VersionRecord,
    job: &Job,
    timeout: Duration,
    sink: &dyn ProgressSink,
) -> Result<Option<crate::store::BackupRecord>, Failure> {
    let running =
        checked_spec_for_version(worker, record, previous, None, &job.id, Some(timeout)).await?;
    if running.volumes.is_empty() {
        sink.report(Progress::Warning {
            message: format!(
                "--snapshot: version {} has no named volume; nothing to snapshot",
                previous.version
            ),
        });
        return Ok(None);
    }
    let volumes: Vec<_> = running.volumes.iter().collect();
    let id = hostkit_proto::JobId::new();
    let copies = super::backup::take(worker, &running, &volumes, id, sink).await?;
    let backup = crate::store::BackupRecord::new(
        id,
        job.domain.clone(),
        previous.version,
        crate::store::BackupReason::Snapshot,
        copies,
    );
    worker.store.record_backup_now(backup.clone()).await?;
    sink.report(Progress::Step {
        name: "snapshot",
        message: format!(
            "version {}'s volumes are backup {id}: an auto-rollback, or `rollback --with-data`, puts them back",
            previous.version
        ),
    });
    Ok(Some(backup))
}

/// Stream every blob and file into the engine; answers whether registry
/// pulls are wanted (and allowed) and what each loaded reference's image
/// id is (from the tarballs' own manifests).
async fn load_images(
    worker: &Worker,
    domain: &hostkit_proto::Domain,
    sources: &[ImageSource],
    sink: &dyn ProgressSink,
) -> Result<(PullPolicy, BTreeMap<String, String>), Failure> {
    let mut pull = PullPolicy::Never;
    let mut loaded = BTreeMap::new();
    let (bucket, store) = worker.images.for_domain(domain);
    for source in sources {
        match source {
            ImageSource::Object { object, size } => {
                // Blobs are remembered per bucket: a name seen in another
                // tenant's bucket says nothing about this one's.
                let loaded_key = format!("{bucket}/{object}");
                if let Some(images) = already_loaded(worker, &loaded_key).await {
                    sink.report(Progress::Step {
                        name: "images",
                        message: format!("{object} is already loaded; its images are unchanged"),
                    });
                    loaded.extend(images);
                    continue;
                }
                sink.report(Progress::Step {
                    name: "images",
                    message: format!("loading {object} ({size} bytes) from {bucket}"),
                });
                let reader = get_blob(store, object.as_str())
                    .await
                    .map_err(|e| match e {
                        BlobError::Missing(message) => {
                            missing_blob(worker, domain, bucket, object, &message)
                        }
                        BlobError::Unreadable(message) => unreadable_blob(bucket, object, &message),
                    })?;
                // The bytes must hash to the object's name; the engine never
                // sees the end of a blob that does not.
                let (reader, verdict) = DigestCheck::new(reader, object.sha256_hex());
                let result = images::load_reader(&worker.docker, reader, Some(*size), sink).await;
                if let Verdict::Mismatch(actual) = verdict.get() {
                    return Err(swapped_blob(store, object, &actual).await);
                }
                let images = result
                    .map_err(|e| Failure::from(DeployError::from(e)))?
                    .images;
                if verdict.get() != Verdict::Verified {
                    return Err(Failure::new(
                        ErrorCode::ImageLoadFailed,
                        format!("image blob {object} was loaded before it was verified; not used"),
                    ));
                }
                remember_loaded(worker, &loaded_key, &images);
                loaded.extend(images);
            }
            ImageSource::Path { path } => {
                sink.report(Progress::Step {
                    name: "images",
                    message: format!("loading {path}"),
                });
                let (file, size) = open_image_path(worker, path).await?;
                let images = images::load_reader(
                    &worker.docker,
                    tokio::fs::File::from_std(file),
                    Some(size),
                    sink,
                )
                .await
                .map_err(|e| Failure::from(DeployError::from(e)))?
                .images;
                loaded.extend(images);
            }
            ImageSource::Layers { layers } => {
                sink.report(Progress::Step {
                    name: "images",
                    message: format!(
                        "loading {} image(s) ({} in blobs) from {bucket}",
                        layers.images.len(),
                        hostkit_proto::units::bytes(layers.total_bytes())
                    ),
                });
                let blobs: Arc<dyn BlobSource> = Arc::new(BucketBlobs(store.clone()));
                let full = layered::uses_containerd_store(&worker.docker).await;
                let done = match layered::load(&worker.docker, layers, blobs, full, sink).await {
                    Ok(done) => done,
                    Err(LayeredError::Missing { object, message }) => {
                        return Err(missing_blob(worker, domain, bucket, &object, &message));
                    }
                    Err(LayeredError::Unreadable { object, message }) => {
                        return Err(unreadable_blob(bucket, &object, &message));
                    }
                    Err(LayeredError::Mismatch { object, actual }) => {
                        return Err(swapped_blob(store, &object, &actual).await);
                    }
                    Err(LayeredError::Load(e)) => return Err(Failure::from(DeployError::from(e))),
                    Err(LayeredError::Docker(e)) => {
                        return Err(Failure::from(DeployError::from(ImageError::Docker(e))));
                    }
                };
                sink.report(Progress::Step {
                    name: "images",
                    message: format!(
                        "layers: {} sent ({}), {} already in the engine ({}){}",
                        done.layers_sent.0,
                        hostkit_proto::units::bytes(done.layers_sent.1),
                        done.layers_skipped.0,
                        hostkit_proto::units::bytes(done.layers_skipped.1),
                        if done.retried_full {
                            "; the engine refused a partial tarball, so every layer was sent"
                        } else {
                            ""
                        }
                    ),
                });
                loaded.extend(done.loaded.images);
            }
            ImageSource::Registry { registry } => {
                if !worker.settings.allow_pull {
                    return Err(Failure::new(
                        ErrorCode::PolicyDenied,
                        format!("registry pulls are disabled on this node (asked for {registry})"),
                    ));
                }
                pull = PullPolicy::Missing;
            }
        }
    }
    Ok((pull, loaded))
}

/// A blob the job names is not in the domain's bucket.
fn missing_blob(
    worker: &Worker,
    domain: &hostkit_proto::Domain,
    bucket: &str,
    object: &hostkit_proto::ImageObjectName,
    message: &str,
) -> Failure {
    let mut failure = Failure::new(
        ErrorCode::ImageMissing,
        format!("image blob {object} is not in the object store {bucket}: {message}"),
    );
    if bucket != worker.names.images_bucket() {
        failure.hint = Some(format!(
            "{domain}'s images come from its own bucket: upload with `hostkit deploy --image-bucket {bucket}`"
        ));
    }
    failure
}

/// How long a blob the object store does not answer for (a server of a
/// cluster dying, its stream electing a new leader) is asked for again
/// before the job fails. A blob the store says it lacks fails at once.
const BLOB_PATIENCE: Duration = Duration::from_secs(60);

/// A blob the object store did not answer for within [`BLOB_PATIENCE`].
fn unreadable_blob(
    bucket: &str,
    object: &hostkit_proto::ImageObjectName,
    message: &str,
) -> Failure {
    Failure::new(
        ErrorCode::ImageLoadFailed,
        format!(
            "image blob {object} could not be read from the object store {bucket} within {}s: {message}",
            BLOB_PATIENCE.as_secs()
        ),
    )
}

/// Opens blob `name`, asking again while the store does not answer.
async fn get_blob(store: &ObjectStore, name: &str) -> Result<Object, BlobError> {
    let deadline = Instant::now() + BLOB_PATIENCE;
    loop {
        match store.get(name).await {
            Ok(object) => return Ok(object),
            Err(error) if error.kind() == GetErrorKind::NotFound => {
                return Err(BlobError::Missing(error.to_string()));
            }
            Err(error) if Instant::now() >= deadline => {
                return Err(BlobError::Unreadable(error.to_string()));
            }
            Err(error) => {
                tracing::warn!(object = name, %error, "image blob not readable yet; asking again");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// The image bucket as the source of a layered load's blobs.
struct BucketBlobs(ObjectStore);

impl BlobSource for BucketBlobs {
    fn open(
        &self,
        object: &hostkit_proto::ImageObjectName,
    ) -> futures_util::future::BoxFuture<
        '_,
        Result<Box<dyn tokio::io::AsyncRead + Send + Unpin>, BlobError>,
    > {
        let name = object.as_str().to_owned();
        Box::pin(async move {
            get_blob(&self.0, &name)
                .await
                .map(|o| Box::new(o) as Box<dyn tokio::io::AsyncRead + Send + Unpin>)
        })
    }
}

/// A blob whose bytes do not hash to its name: someone stored other bytes
/// under it. It is deleted (the next upload stores the real one) and the
/// job fails; the engine loaded nothing of it.
async fn swapped_blob(
    store: &ObjectStore,
    object: &hostkit_proto::ImageObjectName,
    actual: &str,
) -> Failure {
    let deleted = match store.delete(object.as_str()).await {
        Ok(()) => "it was deleted from the object store".to_string(),
        Err(e) => format!("deleting it failed: {e}"),
    };
    tracing::warn!(%object, actual, "image blob does not match its name");
    let mut failure = Failure::new(
        ErrorCode::ImageLoadFailed,
        format!(
            "image blob {object} does not hold what its name says (its bytes hash to sha256-{actual}); {deleted}; nothing of it was loaded"
        ),
    );
    failure.hint = Some(
        "deploy again: the CLI uploads the tarball anew. If it happens again, another identity with write access to the images bucket is tampering with it".into(),
    );
    failure
}

/// Open a job's image `path:`: it must lie under the worker's `image_dir`
/// and is reached without following links (rule `image-path`).
async fn open_image_path(worker: &Worker, path: &str) -> Result<(std::fs::File, u64), Failure> {
    let denied = |message: String| {
        Failure::from(DeployError::from(PolicyDenied::one(
            Rule::ImagePath,
            None,
            "images[].path",
            message,
        )))
    };
    let Some(image_dir) = worker.settings.image_dir.clone() else {
        return Err(denied(format!(
            "`{path}`: this node loads no image files (set security.image_dir in its worker.toml)"
        )));
    };
    let dir = DomainDir::new(&image_dir);
    let written = std::path::PathBuf::from(path);
    if !written.is_absolute() || dir.components(&written).is_none() {
        return Err(denied(format!(
            "`{path}` is not under the node's image directory {}",
            image_dir.display()
        )));
    }
    let opened = blocking("opening an image file", move || dir.open_file(&written)).await?;
    match opened {
        Ok(Some(found)) => Ok(found),
        Ok(None) => Err(Failure::new(
            ErrorCode::ImageMissing,
            format!("image file {path} does not exist on this node"),
        )),
        Err(DomainDirError::Symlink { .. }) => Err(denied(format!(
            "`{path}` goes through a symbolic link, which is never followed"
        ))),
        Err(e) => Err(Failure::new(ErrorCode::ImageLoadFailed, e.to_string())),
    }
}

/// The images a blob brought in last time, when every one of them is still
/// in the engine (then loading it again would change nothing).
async fn already_loaded(worker: &Worker, key: &str) -> Option<BTreeMap<String, String>> {
    let known = worker
        .loaded_blobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(key)
        .cloned()?;
    for id in known.values() {
        match images::image_id(&worker.docker, id).await {
            Ok(Some(_)) => {}
            _ => return None,
        }
    }
    Some(known)
}

/// Record what a blob brought in (reference → image id).
fn remember_loaded(worker: &Worker, key: &str, images: &BTreeMap<String, String>) {
    worker
        .loaded_blobs
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key.to_string(), images.clone());
}

/// The images this job may run: those it loaded, and those the domain's
/// versions recorded.
async fn image_scope(
    worker: &Worker,
    domain: &hostkit_proto::Domain,
    loaded: BTreeMap<String, String>,
) -> Result<ImageScope, Failure> {
    let recorded = worker
        .store
        .versions(domain.clone())
        .await?
        .into_iter()
        .flat_map(|v| v.images.into_values().chain(v.other_images.into_values()))
        .collect();
    Ok(ImageScope {
        loaded,
        recorded,
        unrestricted: false,
    })
}
