//! Uploading `docker save` tarballs to the `hostkit_images` object store
//! under their content name (`sha256-<hex>`).
//!
//! The file is read once to hash it (streaming), then `info(name)` tells
//! whether the object is already there (same size and recorded digest):
//! then nothing is sent, so a re-run
//! or a redeploy of the same images uploads 0 bytes. Otherwise `put`
//! streams the file in [`IMAGES_CHUNK_SIZE`] chunks. Memory stays flat
//! whatever the tarball's size. An object older than half the bucket's
//! age limit is sent again, so its chunks cannot expire under a job.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use async_nats::jetstream::object_store::{InfoErrorKind, ObjectMetadata, ObjectStore};
use hostkit_proto::ImageObjectName;
use hostkit_proto::event::ProgressUnit;
use hostkit_proto::job::ImageSource;
use hostkit_proto::subjects::settings::{IMAGES_CHUNK_SIZE, IMAGES_MAX_AGE};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

use crate::connect::Session;
use crate::error::{Error, is_missing_stream, not_set_up};
use crate::render::{self, Output};

/// Objects smaller than this are uploaded without a progress bar.
const PROGRESS_MIN: u64 = 4 << 20;
/// Read buffer for hashing.
const HASH_BUFFER: usize = 1 << 20;
/// Objects older than this are uploaded again (their chunks expire at
/// [`IMAGES_MAX_AGE`]).
const REUPLOAD_AFTER: Duration = Duration::from_secs(IMAGES_MAX_AGE.as_secs() / 2);

/// What an upload did.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The local file.
    pub path: PathBuf,
    /// The job's image source (`{"object": "sha256-…", "size": n}`).
    pub source: ImageSource,
    /// Bytes sent (0 when the object was already there).
    pub sent: u64,
}

/// The SHA-256 (lowercase hex) and size of a file, read once, streaming.
pub async fn hash_file(path: &Path) -> Result<(String, u64), Error> {
    let mut file = open(path).await?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    let mut size = 0u64;
    loop {
        let n = file
            .read(&mut buffer)
            .await
            .map_err(|e| Error::usage(format!("cannot read {}", path.display())).with_source(e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), size))
}

/// The image object store (exit 4 when no worker created it yet).
pub async fn images_store(session: &Session) -> Result<ObjectStore, Error> {
    let bucket = &session.images_bucket;
    match tokio::time::timeout(Duration::from_secs(10), session.js.get_object_store(bucket)).await {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(e)) if is_missing_stream(&e) => {
            Err(not_set_up(&format!("the object store {bucket}")))
        }
        Ok(Err(e)) => Err(Error::failed(format!(
            "cannot open the object store {bucket}: {e}"
        ))),
        Err(_) => Err(Error::unavailable(format!(
            "NATS at {} did not answer about the object store {bucket}",
            session.server
        ))),
    }
}

/// Uploads `path` unless its content is already in `store`.
pub async fn upload(store: &ObjectStore, path: &Path, out: &Output) -> Result<Uploaded, Error> {
    let name_of = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (hex, size) = hash_file(path).await?;
    let object = ImageObjectName::from_sha256_hex(&hex)
        .map_err(|e| Error::failed(format!("hashing {name_of} gave a bad digest: {e}")))?;
    let source = ImageSource::Object {
        object: object.clone(),
        size,
    };
    if already_there(store, &object, &hex, size).await? {
        out.line(format!(
            "{name_of}: already uploaded as {} ({}); 0 bytes sent",
            short(&object),
            render::bytes(size)
        ));
        return Ok(Uploaded {
            path: path.to_owned(),
            source,
            sent: 0,
        });
    }

    out.line(format!(
        "uploading {name_of} ({}) as {}",
        render::bytes(size),
        short(&object)
    ));
    let started = Instant::now();
    put_object(
        store,
        &object,
        &hex,
        size,
        open(path).await?,
        &format!("upload {name_of}"),
        out,
    )
    .await?;
    let took = started.elapsed();
    out.line(format!(
        "uploaded {name_of}: {} sent in {}",
        render::bytes(size),
        render::duration(took)
    ));
    Ok(Uploaded {
        path: path.to_owned(),
        source,
        sent: size,
    })
}

/// Streams `reader` (`size` bytes hashing to `hex`) into `store` as
/// `object`, showing progress as `what`. The store's recorded size and
/// digest must be what was meant: otherwise the object is deleted and the
/// upload fails (the file changed while it was read). An interrupted put
/// leaves no object (the store writes its metadata last).
pub async fn put_object<R: AsyncRead + Unpin>(
    store: &ObjectStore,
    object: &ImageObjectName,
    hex: &str,
    size: u64,
    reader: R,
    what: &str,
    out: &Output,
) -> Result<(), Error> {
    let counter = Arc::new(AtomicU64::new(0));
    let mut reader = Counting {
        inner: reader,
        read: Arc::clone(&counter),
    };
    let meta = ObjectMetadata {
        name: object.as_str().to_owned(),
        chunk_size: Some(IMAGES_CHUNK_SIZE),
        ..Default::default()
    };
    let put = store.put(meta, &mut reader);
    tokio::pin!(put);
    // Small objects (most configs and top layers) go by without a bar.
    let show = size >= PROGRESS_MIN;
    let mut ticker = tokio::time::interval(Duration::from_millis(200));
    let info = loop {
        tokio::select! {
            result = &mut put => break result,
            _ = ticker.tick(), if show => {
                out.progress(what, counter.load(Ordering::Relaxed), Some(size), ProgressUnit::Bytes);
            }
        }
    }
    .map_err(|e| Error::failed(format!("{what} failed: {e}")))?;
    if show {
        out.progress(what, size, Some(size), ProgressUnit::Bytes);
    }
    if info.size as u64 != size || digest_hex(info.digest.as_deref()).as_deref() != Some(hex) {
        let _ = store.delete(object.as_str()).await;
        return Err(Error::failed(format!(
            "{what}: the bytes sent do not hash to {} (the file changed while it was uploaded, or a layer does not match the digest its image config gives it: try --whole-tarballs)",
            object.as_str()
        )));
    }
    Ok(())
}

/// Whether a complete, fresh object of this content exists: not only its
/// name and size but the digest the store recorded must be this file's
/// (an object someone else stored under the name is replaced). The worker
/// checks the bytes themselves while it loads them.
pub(crate) async fn already_there(
    store: &ObjectStore,
    object: &ImageObjectName,
    hex: &str,
    size: u64,
) -> Result<bool, Error> {
    match store.info(object.as_str()).await {
        Ok(info) => {
            let fresh = info.modified.is_some_and(|at| {
                async_nats::datetime::add_std_duration(at, REUPLOAD_AFTER)
                    .is_ok_and(|renew_at| renew_at > async_nats::datetime::now())
            });
            let same = digest_hex(info.digest.as_deref()).as_deref() == Some(hex);
            Ok(!info.deleted && info.size as u64 == size && same && fresh)
        }
        Err(e) if e.kind() == InfoErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::failed(format!(
            "cannot look up {} in the object store: {e}",
            object.as_str()
        ))),
    }
}

/// `SHA-256=<base64url>` (object store metadata) → lowercase hex.
fn digest_hex(digest: Option<&str>) -> Option<String> {
    hostkit_proto::name::object_digest_hex(digest?)
}

/// `sha256-0123456789ab…`.
fn short(object: &ImageObjectName) -> String {
    format!("sha256-{}…", &object.sha256_hex()[..12])
}

async fn open(path: &Path) -> Result<tokio::fs::File, Error> {
    tokio::fs::File::open(path)
        .await
        .map_err(|e| Error::usage(format!("cannot read {}", path.display())).with_source(e))
}

/// An `AsyncRead` that counts what passes through (for progress).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Counting<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        let added = buf.filled().len() - before;
        self.read.fetch_add(added as u64, Ordering::Relaxed);
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_convert() {
        // sha256("") in base64url, as the object store writes it.
        let hex = digest_hex(Some("SHA-256=47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=")).unwrap();
        assert_eq!(
            hex,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(digest_hex(Some("MD5=x")), None);
        assert_eq!(digest_hex(None), None);
    }

    #[tokio::test]
    async fn hashing_streams_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        std::fs::write(&path, vec![7u8; 3 * HASH_BUFFER + 5]).unwrap();
        let (hex, size) = hash_file(&path).await.unwrap();
        assert_eq!(size, 3 * HASH_BUFFER as u64 + 5);
        assert_eq!(
            hex,
            hex::encode(Sha256::digest(std::fs::read(&path).unwrap()))
        );
        let missing = hash_file(&dir.path().join("nope")).await.unwrap_err();
        assert_eq!(missing.exit(), crate::error::Exit::Usage);
    }
}
