//! Getting the images a stack needs into the engine: streaming `docker save`
//! tarballs (from a file or any `AsyncRead`), pulling from registries, and
//! checking that every image is present before any container is touched.
//!
//! A tarball streams through in 1 MiB frames: memory does not grow with its
//! size, and the engine call has no timeout that could cut a big load short.

pub mod layered;
pub mod manifest;
pub mod split;
pub mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{CreateImageOptionsBuilder, ImportImageOptionsBuilder};
use futures_util::StreamExt;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

use crate::docker::{DockerError, is_not_found};
use crate::progress::{Progress, ProgressSink};

/// Frame size used to stream tarballs into the engine.
const FRAME: usize = 1 << 20;
/// How often byte progress is reported while a tarball streams.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// A load or pull may take as long as the bytes take; the engine's default
/// 120 s request timeout must not cut it short.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// Why images could not be made available.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The engine rejected the tarball (corrupt, truncated, not a `docker save`).
    #[error("the image tarball could not be loaded: {detail}")]
    LoadFailed {
        detail: String,
        #[source]
        source: Option<bollard::errors::Error>,
    },
    /// Reading the tarball failed before the engine saw all of it.
    #[error("reading the image tarball {path} failed")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Images the stack needs are neither loaded nor pullable.
    #[error("missing images: {}", images.join(", "))]
    Missing { images: Vec<String> },
    /// References that resolve to images this job may not run.
    #[error("[foreign-image] {} resolve(s) to an image that neither this job loaded nor a version of this domain recorded (another stack may have re-pointed the tag)", images.join(", "))]
    Foreign { images: Vec<String> },
    /// A registry pull failed.
    #[error("pulling {reference} failed: {detail}")]
    PullFailed { reference: String, detail: String },
    /// The engine itself failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

impl ImageError {
    /// Stable wire code of this error.
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        match self {
            ImageError::LoadFailed { .. } | ImageError::Read { .. } => {
                hostkit_proto::ErrorCode::ImageLoadFailed
            }
            ImageError::Missing { .. } => hostkit_proto::ErrorCode::ImageMissing,
            ImageError::PullFailed { .. } => hostkit_proto::ErrorCode::ImagePullFailed,
            ImageError::Foreign { .. } => hostkit_proto::ErrorCode::PolicyDenied,
            ImageError::Docker(e) => e.code(),
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ImageError::LoadFailed { .. } | ImageError::Read { .. } => {
                "check the tarball: it must be the output of `docker save` and arrive whole"
            }
            ImageError::Missing { .. } => {
                "ship the images with --images (docker save) or reference a reachable registry"
            }
            ImageError::PullFailed { .. } => {
                "the registry could not be reached or refused the pull: check the reference and the host's registry login, or ship the image with --images (docker save)"
            }
            ImageError::Foreign { .. } => {
                "ship the images with the deploy (--images): a domain runs only images it brought or ran before"
            }
            ImageError::Docker(_) => "is the Docker Engine running on this host?",
        }
    }
}

/// Whether a failed pull's message says the registry has no such image
/// (as opposed to it not answering, or refusing the client).
fn registry_lacks(detail: &str) -> bool {
    let detail = detail.to_ascii_lowercase();
    ["manifest unknown", "not found", "no such image"]
        .iter()
        .any(|phrase| detail.contains(phrase))
}

/// What a tarball load brought into the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// Tags (or `sha256:` ids for untagged images) the engine reported loading.
    pub references: Vec<String>,
    /// Each tag (or untagged id) → the image id, from the tarball's own
    /// `manifest.json`.
    pub images: BTreeMap<String, String>,
    /// Bytes streamed.
    pub bytes: u64,
}

/// Which images a job may run (DESIGN §6): those it loaded or pulled
/// itself, and those the domain's versions recorded. A tag that another
/// domain's tarball re-pointed on the shared engine therefore never changes
/// what a domain runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageScope {
    /// Reference → image id of every image this job loaded.
    pub loaded: BTreeMap<String, String>,
    /// Image ids the domain's versions recorded.
    pub recorded: BTreeSet<String>,
    /// Any image in the engine (a library caller on a host of one owner:
    /// tests, benchmarks).
    pub unrestricted: bool,
}

impl ImageScope {
    /// Any image in the engine may run.
    pub fn unrestricted() -> Self {
        ImageScope {
            unrestricted: true,
            ..ImageScope::default()
        }
    }

    fn allows(&self, id: &str) -> bool {
        self.unrestricted || self.recorded.contains(id) || self.loaded.values().any(|l| l == id)
    }
}

/// Stream a `docker save` tarball file into the engine.
pub async fn load_file(
    docker: &Docker,
    path: &Path,
    sink: &dyn ProgressSink,
) -> Result<Loaded, ImageError> {
    let read_err = |source| ImageError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = tokio::fs::File::open(path).await.map_err(read_err)?;
    let total = file.metadata().await.map_err(read_err)?.len();
    load_reader(docker, file, Some(total), sink).await
}

/// Stream a `docker save` tarball from any reader into the engine, reporting
/// byte progress. `total` is the expected size when known.
pub async fn load_reader<R>(
    docker: &Docker,
    reader: R,
    total: Option<u64>,
    sink: &dyn ProgressSink,
) -> Result<Loaded, ImageError>
where
    R: AsyncRead + Send + 'static,
{
    let sent = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&sent);
    let tap = Arc::new(std::sync::Mutex::new(manifest::ManifestTap::default()));
    let watcher = Arc::clone(&tap);
    let body = ReaderStream::with_capacity(reader, FRAME).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            watcher.lock().expect("manifest tap").feed(bytes);
        }
        chunk
    });

    let docker = docker.clone().with_timeout(TRANSFER_TIMEOUT);
    let options = ImportImageOptionsBuilder::default().quiet(true).build();
    let mut answers = docker.import_image_stream(options, body, None);
    let mut ticker = tokio::time::interval(PROGRESS_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut references = Vec::new();
    let mut last_reported = u64::MAX;

    loop {
        tokio::select! {
            answer = answers.next() => match answer {
                None => break,
                Some(Ok(info)) => {
                    if let Some(reference) = info.stream.as_deref().and_then(loaded_reference) {
                        sink.report(Progress::ImageLoaded { reference: reference.clone() });
                        references.push(reference);
                    }
                }
                Some(Err(source)) => {
                    return Err(load_failed(source));
                }
            },
            _ = ticker.tick() => {
                let done = sent.load(Ordering::Relaxed);
                if done != last_reported {
                    sink.report(Progress::ImageBytes { done, total });
                    last_reported = done;
                }
            }
        }
    }

    let bytes = sent.load(Ordering::Relaxed);
    sink.report(Progress::ImageBytes { done: bytes, total });
    if references.is_empty() {
        return Err(ImageError::LoadFailed {
            detail: "the engine loaded no image from it".into(),
            source: None,
        });
    }
    let Some(images) = tap.lock().expect("manifest tap").images() else {
        return Err(ImageError::LoadFailed {
            detail:
                "the tarball has no readable manifest.json (is it the output of `docker save`?)"
                    .into(),
            source: None,
        });
    };
    Ok(Loaded {
        references,
        images,
        bytes,
    })
}

fn load_failed(source: bollard::errors::Error) -> ImageError {
    let detail = match &source {
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    };
    ImageError::LoadFailed {
        detail: detail.trim().to_string(),
        source: Some(source),
    }
}

/// Parse the engine's `Loaded image: web:v1` / `Loaded image ID: sha256:…` line.
fn loaded_reference(line: &str) -> Option<String> {
    let line = line.trim();
    line.strip_prefix("Loaded image ID: ")
        .or_else(|| line.strip_prefix("Loaded image: "))
        .map(str::to_string)
}

/// Split `registry:5000/name:tag` (or `name@sha256:…`) into repository and tag/digest.
pub fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((repo, digest)) = reference.split_once('@') {
        return (repo, digest);
    }
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            &reference[..last_slash + i],
            &reference[last_slash + i + 1..],
        ),
        None => (reference, "latest"),
    }
}

/// Pull one image from its registry, reporting progress.
pub async fn pull(
    docker: &Docker,
    reference: &str,
    sink: &dyn ProgressSink,
) -> Result<(), ImageError> {
    let (repository, tag) = split_reference(reference);
    let options = CreateImageOptionsBuilder::default()
        .from_image(repository)
        .tag(tag)
        .build();
    let docker = docker.clone().with_timeout(TRANSFER_TIMEOUT);
    let mut answers = docker.create_image(Some(options), None, None);
    let mut layers: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    let mut last = std::time::Instant::now();
    while let Some(answer) = answers.next().await {
        let info = answer.map_err(|e| ImageError::PullFailed {
            reference: reference.to_string(),
            detail: match e {
                bollard::errors::Error::DockerStreamError { error } => error,
                bollard::errors::Error::DockerResponseServerError { message, .. } => message,
                other => other.to_string(),
            },
        })?;
        if let (Some(id), Some(detail)) = (info.id, info.progress_detail) {
            let current = detail.current.unwrap_or(0).max(0) as u64;
            let total = detail.total.unwrap_or(0).max(0) as u64;
            layers.insert(id, (current, total));
            if last.elapsed() >= PROGRESS_EVERY {
                last = std::time::Instant::now();
                let done = layers.values().map(|l| l.0).sum();
                let total = layers.values().map(|l| l.1).sum::<u64>();
                sink.report(Progress::ImagePull {
                    reference: reference.to_string(),
                    done,
                    total: (total > 0).then_some(total),
                });
            }
        }
    }
    sink.report(Progress::ImageLoaded {
        reference: reference.to_string(),
    });
    Ok(())
}

/// Whether a missing image may be pulled from its registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Only images already in the engine (loaded or present) count.
    Never,
    /// Pull images that are not present.
    Missing,
}

/// Make sure every reference is present in the engine and in `scope`,
/// pulling the missing ones when the policy allows; answer each
/// reference's image id. A reference this job loaded resolves to the id
/// its tarball named, whatever the tag points to now.
///
/// Fails with [`ImageError::Missing`] listing *every* image that is not
/// there (or [`ImageError::Foreign`] for images out of scope), before any
/// container is touched.
pub async fn ensure_present(
    docker: &Docker,
    references: &[String],
    pull_policy: PullPolicy,
    scope: &ImageScope,
    sink: &dyn ProgressSink,
) -> Result<BTreeMap<String, String>, ImageError> {
    let mut ids = BTreeMap::new();
    let mut missing = Vec::new();
    let mut pull_failed = None;
    let mut foreign = Vec::new();
    for reference in references {
        if ids.contains_key(reference) {
            continue;
        }
        if let Some(id) = scope.loaded.get(reference) {
            match image_id(docker, id).await? {
                Some(_) => {
                    ids.insert(reference.clone(), id.clone());
                }
                None => missing.push(reference.clone()),
            }
            continue;
        }
        match image_id(docker, reference).await? {
            Some(id) if scope.allows(&id) => {
                ids.insert(reference.clone(), id);
            }
            Some(_) if pull_policy == PullPolicy::Never => foreign.push(reference.clone()),
            // Missing, or present but not this domain's: pulled by this job.
            _ if pull_policy == PullPolicy::Missing => match pull(docker, reference, sink).await {
                Ok(()) => match image_id(docker, reference).await? {
                    Some(id) => {
                        ids.insert(reference.clone(), id);
                    }
                    None => missing.push(reference.clone()),
                },
                // The registry answered that it has no such image: missing.
                Err(ImageError::PullFailed { detail, .. }) if registry_lacks(&detail) => {
                    missing.push(format!("{reference} (pull failed: {detail})"))
                }
                // It could not be asked (unreachable, refused, denied).
                Err(failed @ ImageError::PullFailed { .. }) => {
                    if pull_failed.is_none() {
                        pull_failed = Some(failed);
                    }
                }
                Err(other) => return Err(other),
            },
            _ => missing.push(reference.clone()),
        }
    }
    if let Some(failed) = pull_failed {
        Err(failed)
    } else if !missing.is_empty() {
        Err(ImageError::Missing { images: missing })
    } else if !foreign.is_empty() {
        Err(ImageError::Foreign { images: foreign })
    } else {
        Ok(ids)
    }
}

/// The id (`sha256:…`) of an image reference, or `None` when the engine does not have it.
pub async fn image_id(docker: &Docker, reference: &str) -> Result<Option<String>, ImageError> {
    match docker.inspect_image(reference).await {
        Ok(image) => Ok(image.id),
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(DockerError::call(format!("inspect image {reference}"), e).into()),
    }
}

/// `<project>/<service>:v<version>`: the tag that keeps a version's image
/// from being pruned while the version is retained.
pub fn version_tag(project: &str, service: &str, version: u32) -> String {
    format!("{project}/{}:v{version}", service.to_ascii_lowercase())
}

/// `<project>/image-<digest of the reference>:v<version>`: the tag that
/// keeps one of a version's other images (a `pre_start` hook's, a `type:
/// image` mount's source) while the version is retained.
pub fn other_image_tag(project: &str, reference: &str, version: u32) -> String {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(reference.as_bytes()));
    format!("{project}/image-{}:v{version}", &digest[..12])
}

/// Tag `image_id` as [`version_tag`].
pub async fn tag_version(
    docker: &Docker,
    image_id: &str,
    project: &str,
    service: &str,
    version: u32,
) -> Result<String, ImageError> {
    let tag = version_tag(project, service, version);
    tag_image(docker, image_id, &tag).await?;
    Ok(tag)
}

/// Tag `image_id` as `tag` (`repo:label`).
pub async fn tag_image(docker: &Docker, image_id: &str, tag: &str) -> Result<(), ImageError> {
    let (repo, label) = split_reference(tag);
    let options = bollard::query_parameters::TagImageOptionsBuilder::default()
        .repo(repo)
        .tag(label)
        .build();
    docker
        .tag_image(image_id, Some(options))
        .await
        .map_err(|e| DockerError::call(format!("tag {image_id} as {tag}"), e))?;
    Ok(())
}

/// Remove one tag (never the image by id: other tags may share it). The
/// image itself goes only when no tag and no container uses it any more.
pub async fn untag(docker: &Docker, tag: &str) -> Result<(), ImageError> {
    let options = bollard::query_parameters::RemoveImageOptionsBuilder::default()
        .noprune(false)
        .build();
    match docker.remove_image(tag, Some(options), None).await {
        Ok(_) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        // 409: a container still uses it; the tag stays until it is gone.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(DockerError::call(format!("remove tag {tag}"), e).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn other_image_tags_are_valid_and_stable() {
        let tag = other_image_tag("example-com", "Tools:1", 3);
        assert_eq!(tag, other_image_tag("example-com", "Tools:1", 3));
        assert!(
            tag.starts_with("example-com/image-") && tag.ends_with(":v3"),
            "{tag}"
        );
        assert_ne!(tag, other_image_tag("example-com", "tools:2", 3));
        let (repo, _) = split_reference(&tag);
        assert!(
            repo.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "/-".contains(c)),
            "{repo}"
        );
    }

    #[test]
    fn loaded_lines_are_parsed() {
        assert_eq!(
            loaded_reference("Loaded image: web:v1\n").as_deref(),
            Some("web:v1")
        );
        assert_eq!(
            loaded_reference("Loaded image ID: sha256:abc").as_deref(),
            Some("sha256:abc")
        );
        assert_eq!(loaded_reference("something else"), None);
    }

    #[test]
    fn references_split_into_repository_and_tag() {
        assert_eq!(split_reference("web"), ("web", "latest"));
        assert_eq!(split_reference("web:v1"), ("web", "v1"));
        assert_eq!(
            split_reference("127.0.0.1:5000/team/web"),
            ("127.0.0.1:5000/team/web", "latest")
        );
        assert_eq!(
            split_reference("127.0.0.1:5000/web:v2"),
            ("127.0.0.1:5000/web", "v2")
        );
        assert_eq!(split_reference("web@sha256:00ff"), ("web", "sha256:00ff"));
    }

    #[test]
    fn error_codes_are_stable() {
        let missing = ImageError::Missing {
            images: vec!["a".into()],
        };
        assert_eq!(missing.code(), "image.missing");
        let failed = ImageError::LoadFailed {
            detail: "x".into(),
            source: None,
        };
        assert_eq!(failed.code(), "image.load_failed");
    }
}
