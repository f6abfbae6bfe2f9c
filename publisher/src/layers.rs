//! Uploading a `docker save` tarball blob by blob (DESIGN §11): the
//! tarball is split ([`hostkit_deploy::images::split`]) into its configs
//! and layers, the bucket is asked about every blob at once, and only the
//! missing ones are sent, each a slice of the file. A redeploy whose build
//! changed one layer sends about that layer.

use std::collections::HashMap;
use std::io::SeekFrom;

use async_nats::jetstream::object_store::ObjectStore;
use hostkit_deploy::images::split::{Split, object_name};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::Error;
use crate::render::{self, Output};
use crate::upload;

/// Splits the tarball at `path` on a blocking thread; `None` when it is
/// not a `docker save` tarball.
pub async fn split(path: &std::path::Path) -> Result<Option<Split>, Error> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || hostkit_deploy::images::split::split(&owned))
        .await
        .map_err(|e| Error::failed(format!("reading {} failed: {e}", path.display())))?
        .map_err(|e| Error::usage(e.to_string()).with_source(e))
}

/// What [`upload_blobs`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobsSent {
    /// Blobs sent, and their bytes.
    pub sent: (usize, u64),
    /// Blobs the bucket had, and their bytes.
    pub skipped: (usize, u64),
}

/// Uploads the blobs of `split` that `store` lacks: one round of lookups
/// for all of them, then each missing blob as a slice of the file.
pub async fn upload_blobs(
    store: &ObjectStore,
    split: &Split,
    out: &Output,
) -> Result<BlobsSent, Error> {
    let lookups = split.blobs.iter().map(|(hex, &(_, size))| async move {
        let object = object_name(hex);
        let there = upload::already_there(store, &object, hex, size).await?;
        Ok::<_, Error>((hex.clone(), there))
    });
    let found: HashMap<String, bool> = futures_util::future::try_join_all(lookups)
        .await?
        .into_iter()
        .collect();
    let name_of = split.path.file_name().map_or_else(
        || split.path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut result = BlobsSent::default();
    for (hex, &(offset, size)) in &split.blobs {
        if found.get(hex).copied().unwrap_or(false) {
            result.skipped.0 += 1;
            result.skipped.1 += size;
            continue;
        }
        let object = object_name(hex);
        let mut file = tokio::fs::File::open(&split.path).await.map_err(|e| {
            Error::usage(format!("cannot read {}", split.path.display())).with_source(e)
        })?;
        file.seek(SeekFrom::Start(offset)).await.map_err(|e| {
            Error::usage(format!("cannot read {}", split.path.display())).with_source(e)
        })?;
        let label = format!("{name_of}: blob sha256-{}…", &hex[..12]);
        upload::put_object(store, &object, hex, size, file.take(size), &label, out).await?;
        result.sent.0 += 1;
        result.sent.1 += size;
    }
    out.line(format!(
        "{name_of}: {} blob(s) already in the bucket ({} skipped), {} sent ({})",
        result.skipped.0,
        render::bytes(result.skipped.1),
        result.sent.0,
        render::bytes(result.sent.1)
    ));
    Ok(result)
}
