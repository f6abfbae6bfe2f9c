//! Loading a layered image source (DESIGN §11): the images of a `docker
//! save` tarball stored blob by blob. The worker asks the engine which
//! layers it holds (the chain ids of every image's `RootFS.Layers`), then
//! streams into `POST /images/load` a tarball it builds on the fly: the
//! image configs, only the layers the engine lacks, and `manifest.json`
//! naming every layer. The classic image store takes such a partial
//! tarball when the missing layers' chains exist; on the containerd image
//! store, or when the engine refuses the partial tarball, every layer is
//! sent.
//!
//! Every blob is verified against its name while it streams
//! ([`DigestCheck`]). `manifest.json` comes last: a blob that fails its
//! check ends the stream before it, so the engine loads nothing.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use bollard::Docker;
use bollard::query_parameters::ListImagesOptions;
use futures_util::future::BoxFuture;
use hostkit_proto::ImageObjectName;
use hostkit_proto::job::LayeredImages;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use super::verify::{DigestCheck, Verdict};
use super::{ImageError, Loaded, load_reader};
use crate::docker::DockerError;
use crate::progress::{Progress, ProgressSink};

/// The pipe between the tar writer and the engine's load.
const PIPE: usize = 8 << 20;
/// How much of a blob is read and written at a time.
const COPY_BUFFER: usize = 1 << 20;

/// Where the blobs come from (the worker's image bucket).
pub trait BlobSource: Send + Sync {
    /// A reader of the object's bytes.
    fn open(
        &self,
        object: &ImageObjectName,
    ) -> BoxFuture<'_, Result<Box<dyn AsyncRead + Send + Unpin>, BlobError>>;
}

/// Why a blob could not be opened, with what the store said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobError {
    /// The store says it does not hold it.
    Missing(String),
    /// The store did not answer (or not in time).
    Unreadable(String),
}

/// Why a layered source could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LayeredError {
    /// A blob is not in the bucket.
    #[error("image blob {object} is not in the object store: {message}")]
    Missing {
        /// The object.
        object: ImageObjectName,
        /// What the store said.
        message: String,
    },
    /// The store did not answer for a blob.
    #[error("image blob {object} could not be read from the object store: {message}")]
    Unreadable {
        /// The object.
        object: ImageObjectName,
        /// What the store said.
        message: String,
    },
    /// A blob's bytes do not hash to its name.
    #[error(
        "image blob {object} does not hold what its name says (its bytes hash to sha256-{actual})"
    )]
    Mismatch {
        /// The object.
        object: ImageObjectName,
        /// What they hash to.
        actual: String,
    },
    /// The engine refused the tarball (after the full set was tried).
    #[error(transparent)]
    Load(#[from] ImageError),
    /// Asking the engine which layers it holds failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
}

/// What a layered load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayeredLoad {
    /// What the engine loaded.
    pub loaded: Loaded,
    /// Layers streamed, and their bytes.
    pub layers_sent: (usize, u64),
    /// Layers the engine already held, and their bytes.
    pub layers_skipped: (usize, u64),
    /// Whether the full set had to be sent after the engine refused a
    /// partial tarball.
    pub retried_full: bool,
}

/// Chain ids of a layer stack: the first layer's diff id, then
/// `sha256(chain(n-1) + " " + diff(n))` (what the engine stores layers by).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut chains: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let chain = match chains.last() {
            None => diff.clone(),
            Some(parent) => format!(
                "sha256:{}",
                hex::encode(Sha256::digest(format!("{parent} {diff}")))
            ),
        };
        chains.push(chain);
    }
    chains
}

/// The chain ids of every layer the engine holds (from each image's
/// `RootFS.Layers`).
pub async fn engine_chains(docker: &Docker) -> Result<HashSet<String>, DockerError> {
    let images = docker
        .list_images(Some(ListImagesOptions {
            all: false,
            ..Default::default()
        }))
        .await
        .map_err(|e| DockerError::call("list images", e))?;
    let mut chains = HashSet::new();
    for summary in images {
        let Ok(image) = docker.inspect_image(&summary.id).await else {
            continue; // removed meanwhile
        };
        let diff_ids = image.root_fs.and_then(|r| r.layers).unwrap_or_default();
        chains.extend(chain_ids(&diff_ids));
    }
    Ok(chains)
}

/// Whether the engine keeps images in the containerd image store, which
/// does not take a partial `docker save` tarball.
pub async fn uses_containerd_store(docker: &Docker) -> bool {
    docker.info().await.is_ok_and(|info| {
        info.driver_status
            .unwrap_or_default()
            .iter()
            .flatten()
            .any(|s| s.contains("io.containerd.snapshotter"))
    })
}

/// The layer objects to send: those of layers whose chain the engine does
/// not hold (a layer shared by two images is sent when either needs it).
pub fn layers_to_send(images: &LayeredImages, present: &HashSet<String>) -> BTreeSet<String> {
    let mut send = BTreeSet::new();
    for image in &images.images {
        let diff_ids: Vec<String> = image.layers.iter().map(|l| l.diff_id.clone()).collect();
        for (layer, chain) in image.layers.iter().zip(chain_ids(&diff_ids)) {
            if !present.contains(&chain) {
                send.insert(layer.object.as_str().to_owned());
            }
        }
    }
    send
}

/// Loads `images` into the engine, sending only the layers it lacks
/// (every layer when `full`), and retrying with every layer once when the
/// engine refuses a partial tarball.
pub async fn load(
    docker: &Docker,
    images: &LayeredImages,
    blobs: Arc<dyn BlobSource>,
    full: bool,
    sink: &dyn ProgressSink,
) -> Result<LayeredLoad, LayeredError> {
    let all: BTreeSet<String> = images
        .images
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| l.object.as_str().to_owned()))
        .collect();
    let send = if full {
        all.clone()
    } else {
        layers_to_send(images, &engine_chains(docker).await?)
    };
    match load_with(docker, images, Arc::clone(&blobs), &send, sink).await {
        Ok(loaded) => Ok(summarize(images, &send, loaded, false)),
        Err(LayeredError::Load(error)) if send != all => {
            sink.report(Progress::Step {
                name: "images",
                message: format!(
                    "the engine refused the partial tarball ({error}); sending every layer"
                ),
            });
            let loaded = load_with(docker, images, blobs, &all, sink).await?;
            Ok(summarize(images, &all, loaded, true))
        }
        Err(error) => Err(error),
    }
}

fn summarize(
    images: &LayeredImages,
    send: &BTreeSet<String>,
    loaded: Loaded,
    retried_full: bool,
) -> LayeredLoad {
    let mut seen = HashSet::new();
    let mut result = LayeredLoad {
        loaded,
        retried_full,
        ..LayeredLoad::default()
    };
    for layer in images.images.iter().flat_map(|i| &i.layers) {
        if !seen.insert(layer.object.as_str()) {
            continue;
        }
        let counter = if send.contains(layer.object.as_str()) {
            &mut result.layers_sent
        } else {
            &mut result.layers_skipped
        };
        counter.0 += 1;
        counter.1 += layer.size;
    }
    result
}

/// One load: the tar writer on its own task, the engine reading the pipe.
async fn load_with(
    docker: &Docker,
    images: &LayeredImages,
    blobs: Arc<dyn BlobSource>,
    send: &BTreeSet<String>,
    sink: &dyn ProgressSink,
) -> Result<Loaded, LayeredError> {
    let (reader, writer) = tokio::io::duplex(PIPE);
    let total = tar_size(images, send);
    let writer_task = {
        let (images, send) = (images.clone(), send.clone());
        tokio::spawn(async move { write_tar(writer, &images, &send, blobs.as_ref()).await })
    };
    let loaded = load_reader(docker, reader, Some(total), sink).await;
    let written = writer_task
        .await
        .unwrap_or_else(|e| Err(WriteError::Io(std::io::Error::other(e.to_string()))));
    match (written, loaded) {
        (Err(WriteError::Blob(error)), _) => Err(error),
        (_, Err(error)) => Err(LayeredError::Load(error)),
        (Err(WriteError::Io(error)), Ok(_)) => Err(LayeredError::Load(ImageError::LoadFailed {
            detail: format!("writing the tarball failed: {error}"),
            source: None,
        })),
        (Ok(()), Ok(loaded)) => Ok(loaded),
    }
}

/// Why the tar writer stopped.
#[derive(Debug)]
enum WriteError {
    /// A blob was missing or wrong.
    Blob(LayeredError),
    /// The pipe closed (the engine stopped reading).
    Io(std::io::Error),
}

/// The bytes of the tarball [`write_tar`] writes.
fn tar_size(images: &LayeredImages, send: &BTreeSet<String>) -> u64 {
    let padded = |n: u64| 512 + n.div_ceil(512) * 512;
    let mut seen = HashSet::new();
    let mut total = 1024;
    for image in &images.images {
        if seen.insert(image.config.object.as_str()) {
            total += padded(image.config.size);
        }
        for layer in &image.layers {
            if send.contains(layer.object.as_str()) && seen.insert(layer.object.as_str()) {
                total += padded(layer.size);
            }
        }
    }
    total + padded(manifest(images).len() as u64)
}

/// `manifest.json` naming every image's config and all its layers.
fn manifest(images: &LayeredImages) -> Vec<u8> {
    let entries: Vec<serde_json::Value> = images
        .images
        .iter()
        .map(|image| {
            serde_json::json!({
                "Config": config_path(&image.config.object),
                "RepoTags": image.repo_tags,
                "Layers": image.layers.iter().map(|l| layer_path(&l.object)).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::to_vec(&entries).unwrap_or_default()
}

fn config_path(object: &ImageObjectName) -> String {
    format!("{}.json", object.sha256_hex())
}

fn layer_path(object: &ImageObjectName) -> String {
    format!("{}/layer.tar", object.sha256_hex())
}

/// Writes the tarball: configs, the layers in `send`, `manifest.json`
/// last, the end-of-archive blocks.
async fn write_tar<W: AsyncWrite + Unpin>(
    mut out: W,
    images: &LayeredImages,
    send: &BTreeSet<String>,
    blobs: &dyn BlobSource,
) -> Result<(), WriteError> {
    let mut written = HashSet::new();
    for image in &images.images {
        let config = &image.config;
        if written.insert(config.object.as_str().to_owned()) {
            let path = config_path(&config.object);
            copy_blob(&mut out, &path, &config.object, config.size, blobs).await?;
        }
        for layer in &image.layers {
            if send.contains(layer.object.as_str())
                && written.insert(layer.object.as_str().to_owned())
            {
                let path = layer_path(&layer.object);
                copy_blob(&mut out, &path, &layer.object, layer.size, blobs).await?;
            }
        }
    }
    let manifest = manifest(images);
    write_header(&mut out, "manifest.json", manifest.len() as u64).await?;
    out.write_all(&manifest).await.map_err(WriteError::Io)?;
    pad(&mut out, manifest.len() as u64).await?;
    out.write_all(&[0; 1024]).await.map_err(WriteError::Io)?;
    out.shutdown().await.map_err(WriteError::Io)
}

/// One blob as a tar entry, verified while it streams.
async fn copy_blob<W: AsyncWrite + Unpin>(
    out: &mut W,
    path: &str,
    object: &ImageObjectName,
    size: u64,
    blobs: &dyn BlobSource,
) -> Result<(), WriteError> {
    let reader = blobs.open(object).await.map_err(|error| {
        let object = object.clone();
        WriteError::Blob(match error {
            BlobError::Missing(message) => LayeredError::Missing { object, message },
            BlobError::Unreadable(message) => LayeredError::Unreadable { object, message },
        })
    })?;
    write_header(out, path, size).await?;
    let (checked, verdict) = DigestCheck::new(reader, object.sha256_hex());
    // Whole frames, not `copy`'s 8 KiB: fewer wake-ups on a busy machine.
    let mut checked = tokio::io::BufReader::with_capacity(COPY_BUFFER, checked);
    let copied = tokio::io::copy_buf(&mut checked, out).await;
    if let Verdict::Mismatch(actual) = verdict.get() {
        return Err(WriteError::Blob(LayeredError::Mismatch {
            object: object.clone(),
            actual,
        }));
    }
    let copied = copied.map_err(WriteError::Io)?;
    if copied != size {
        // Same hash, other size cannot happen; a short read is an I/O fault.
        return Err(WriteError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("image blob {object} has {copied} bytes, the job says {size}"),
        )));
    }
    pad(out, size).await
}

async fn write_header<W: AsyncWrite + Unpin>(
    out: &mut W,
    path: &str,
    size: u64,
) -> Result<(), WriteError> {
    let mut header = tar::Header::new_ustar();
    header.set_path(path).map_err(WriteError::Io)?;
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    out.write_all(header.as_bytes())
        .await
        .map_err(WriteError::Io)
}

async fn pad<W: AsyncWrite + Unpin>(out: &mut W, size: u64) -> Result<(), WriteError> {
    let rest = (512 - size % 512) % 512;
    out.write_all(&vec![0; rest as usize])
        .await
        .map_err(WriteError::Io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostkit_proto::job::{Blob, LayerBlob, LayeredImage};

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    fn object(data: &[u8]) -> ImageObjectName {
        ImageObjectName::from_sha256_hex(&sha(data)).unwrap()
    }

    /// Blobs from memory; `swap` answers other bytes for one object.
    struct Memory {
        blobs: Vec<Vec<u8>>,
        swap: Option<(String, Vec<u8>)>,
    }

    impl BlobSource for Memory {
        fn open(
            &self,
            wanted: &ImageObjectName,
        ) -> BoxFuture<'_, Result<Box<dyn AsyncRead + Send + Unpin>, BlobError>> {
            let wanted = wanted.clone();
            Box::pin(async move {
                if let Some((name, bytes)) = &self.swap {
                    if name == wanted.as_str() {
                        return Ok(Box::new(std::io::Cursor::new(bytes.clone()))
                            as Box<dyn AsyncRead + Send + Unpin>);
                    }
                }
                self.blobs
                    .iter()
                    .find(|b| object(b) == wanted)
                    .map(|b| {
                        Box::new(std::io::Cursor::new(b.clone()))
                            as Box<dyn AsyncRead + Send + Unpin>
                    })
                    .ok_or_else(|| BlobError::Missing("not found".to_owned()))
            })
        }
    }

    fn two_layers() -> (LayeredImages, Memory) {
        let (base, top, config) = (
            b"base".to_vec(),
            b"top layer".to_vec(),
            b"{\"config\":1}".to_vec(),
        );
        let layer = |b: &[u8]| LayerBlob {
            object: object(b),
            size: b.len() as u64,
            diff_id: format!("sha256:{}", sha(b)),
        };
        let images = LayeredImages {
            format: 1,
            images: vec![LayeredImage {
                config: Blob {
                    object: object(&config),
                    size: config.len() as u64,
                },
                repo_tags: vec!["web:v2".into()],
                layers: vec![layer(&base), layer(&top)],
            }],
        };
        (
            images,
            Memory {
                blobs: vec![base, top, config],
                swap: None,
            },
        )
    }

    #[test]
    fn chain_ids_follow_the_engines_rule() {
        let diffs = vec!["sha256:aa".to_owned(), "sha256:bb".to_owned()];
        let chains = chain_ids(&diffs);
        assert_eq!(chains[0], "sha256:aa");
        assert_eq!(chains[1], format!("sha256:{}", sha(b"sha256:aa sha256:bb")));
    }

    #[test]
    fn only_layers_whose_chain_is_missing_are_sent() {
        let (images, _) = two_layers();
        let diffs: Vec<String> = images.images[0]
            .layers
            .iter()
            .map(|l| l.diff_id.clone())
            .collect();
        let chains = chain_ids(&diffs);
        let base_only: HashSet<String> = [chains[0].clone()].into();
        let send = layers_to_send(&images, &base_only);
        assert_eq!(
            send,
            BTreeSet::from([images.images[0].layers[1].object.as_str().to_owned()])
        );
        assert_eq!(
            layers_to_send(&images, &chains.into_iter().collect()).len(),
            0
        );
        assert_eq!(layers_to_send(&images, &HashSet::new()).len(), 2);
    }

    #[tokio::test]
    async fn the_tar_holds_configs_the_layers_to_send_and_the_manifest_last() {
        let (images, blobs) = two_layers();
        let send = BTreeSet::from([images.images[0].layers[1].object.as_str().to_owned()]);
        let mut out = Vec::new();
        write_tar(&mut out, &images, &send, &blobs).await.unwrap();
        assert_eq!(out.len() as u64, tar_size(&images, &send));
        let mut archive = tar::Archive::new(out.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        let top = images.images[0].layers[1].object.sha256_hex();
        assert_eq!(
            names,
            [
                format!("{}.json", images.images[0].config.object.sha256_hex()),
                format!("{top}/layer.tar"),
                "manifest.json".to_owned()
            ]
        );
        let manifest: serde_json::Value = serde_json::from_slice(&manifest(&images)).unwrap();
        assert_eq!(manifest[0]["Layers"].as_array().unwrap().len(), 2);
        assert_eq!(manifest[0]["RepoTags"][0], "web:v2");
    }

    #[tokio::test]
    async fn a_swapped_blob_stops_the_tar_before_the_manifest() {
        let (images, mut blobs) = two_layers();
        let top = images.images[0].layers[1].object.as_str().to_owned();
        blobs.swap = Some((top.clone(), b"evil!!!!!".to_vec()));
        let send = BTreeSet::from([top]);
        let mut out = Vec::new();
        let error = write_tar(&mut out, &images, &send, &blobs)
            .await
            .unwrap_err();
        assert!(
            matches!(error, WriteError::Blob(LayeredError::Mismatch { .. })),
            "{error:?}"
        );
        assert!(
            !String::from_utf8_lossy(&out).contains("manifest.json"),
            "the manifest was written"
        );
    }
}
