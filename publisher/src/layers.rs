//! A `docker save` tarball split into its blobs (DESIGN §11): every image
//! config and every layer becomes its own content-named object, so a
//! redeploy uploads only the blobs the bucket lacks — usually the one
//! layer the build changed.
//!
//! [`split`] reads the tarball once, streaming: each regular entry is
//! hashed (SHA-256) and its offset recorded; then `manifest.json` and the
//! image configs (small) are read back by offset. Both the classic layout
//! (`<id>/layer.tar`, `<hex>.json`) and the OCI layout current engines
//! write beside it (`blobs/sha256/<hex>`, with the classic names as links)
//! are understood. A tarball without `manifest.json` is not split (it is
//! uploaded whole). [`upload_blobs`] then asks the bucket about every blob
//! at once and sends only the missing ones, each a slice of the file.
//!
//! Blocking parts use std I/O: [`split`] runs on `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use async_nats::jetstream::object_store::ObjectStore;
use hostkit_proto::ImageObjectName;
use hostkit_proto::job::{Blob, LAYERED_FORMAT, LayerBlob, LayeredImage, LayeredImages};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::error::Error;
use crate::render::{self, Output};
use crate::upload;

/// Largest `manifest.json` or image config read into memory.
const MAX_JSON: u64 = 16 * 1024 * 1024;
/// Read buffer for hashing entries.
const HASH_BUFFER: usize = 1 << 20;

/// One regular file of the tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Where its bytes start in the file.
    offset: u64,
    /// How many.
    size: u64,
    /// Their SHA-256, lowercase hex.
    hex: String,
}

/// A tarball's images as blobs, and where each blob lies in the file.
#[derive(Debug, Clone)]
pub struct Split {
    /// The tarball.
    pub path: PathBuf,
    /// The job's image source.
    pub images: LayeredImages,
    /// Each distinct blob: hex → (offset, size).
    blobs: BTreeMap<String, (u64, u64)>,
}

impl Split {
    /// Bytes of every distinct blob.
    pub fn total_bytes(&self) -> u64 {
        self.blobs.values().map(|(_, size)| size).sum()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
    layers: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct ImageConfig {
    rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
struct RootFs {
    diff_ids: Vec<String>,
}

/// Splits the `docker save` tarball at `path`; `None` when it has no
/// `manifest.json` (not a `docker save` tarball: upload it whole).
pub fn split(path: &Path) -> Result<Option<Split>, Error> {
    let (entries, links) = scan(path)?;
    let Some(manifest) = entries.get("manifest.json") else {
        return Ok(None);
    };
    let manifest: Vec<ManifestEntry> = read_json(path, manifest, "manifest.json")?;
    let resolve = |name: &str| -> Result<&Entry, Error> {
        let mut name = normalize(name);
        for _ in 0..8 {
            match links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        entries.get(&name).ok_or_else(|| {
            Error::usage(format!(
                "{} lists {name}, which the tarball does not hold",
                path.display()
            ))
        })
    };
    let mut blobs = BTreeMap::new();
    let mut images = Vec::new();
    for item in manifest {
        let config_entry = resolve(&item.config)?;
        let config: ImageConfig = read_json(path, config_entry, &item.config)?;
        if config.rootfs.diff_ids.len() != item.layers.len() {
            return Err(Error::usage(format!(
                "{}: the image config {} lists {} layers, its manifest {}",
                path.display(),
                item.config,
                config.rootfs.diff_ids.len(),
                item.layers.len()
            )));
        }
        blobs.insert(
            config_entry.hex.clone(),
            (config_entry.offset, config_entry.size),
        );
        let mut layers = Vec::new();
        for (layer, diff_id) in item.layers.iter().zip(config.rootfs.diff_ids) {
            let entry = resolve(layer)?;
            blobs.insert(entry.hex.clone(), (entry.offset, entry.size));
            layers.push(LayerBlob {
                object: object_name(&entry.hex)?,
                size: entry.size,
                diff_id,
            });
        }
        images.push(LayeredImage {
            config: Blob {
                object: object_name(&config_entry.hex)?,
                size: config_entry.size,
            },
            repo_tags: item.repo_tags.unwrap_or_default(),
            layers,
        });
    }
    Ok(Some(Split {
        path: path.to_owned(),
        images: LayeredImages {
            format: LAYERED_FORMAT,
            images,
        },
        blobs,
    }))
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
        let object = object_name(hex)?;
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
        let object = object_name(hex)?;
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


/// Every regular entry (path → offset, size, hash) and every link (path →
/// target path) of the archive, reading it once.
fn scan(path: &Path) -> Result<(HashMap<String, Entry>, HashMap<String, String>), Error> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(HASH_BUFFER, file));
    let mut entries = HashMap::new();
    let mut links = HashMap::new();
    let mut buffer = vec![0u8; HASH_BUFFER];
    for entry in archive.entries().map_err(|e| read_error(path, e))? {
        let mut entry = entry.map_err(|e| read_error(path, e))?;
        let name = normalize(&entry.path().map_err(|e| read_error(path, e))?.to_string_lossy());
        let kind = entry.header().entry_type();
        if kind.is_symlink() || kind.is_hard_link() {
            if let Some(target) = entry.link_name().map_err(|e| read_error(path, e))? {
                let target = target.to_string_lossy().into_owned();
                let resolved = if kind.is_symlink() {
                    let parent = Path::new(&name).parent().unwrap_or(Path::new(""));
                    normalize(&parent.join(target).to_string_lossy())
                } else {
                    normalize(&target)
                };
                links.insert(name, resolved);
            }
            continue;
        }
        if !kind.is_file() {
            continue;
        }
        let offset = entry.raw_file_position();
        let size = entry.size();
        let mut hasher = Sha256::new();
        loop {
            let n = entry.read(&mut buffer).map_err(|e| read_error(path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buffer[..n]);
        }
        entries.insert(
            name,
            Entry {
                offset,
                size,
                hex: hex::encode(hasher.finalize()),
            },
        );
    }
    Ok((entries, links))
}

/// A path inside the archive without `./`, `..` resolved lexically.
fn normalize(name: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for component in Path::new(name).components() {
        match component {
            Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    parts.join("/")
}

fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    entry: &Entry,
    name: &str,
) -> Result<T, Error> {
    if entry.size > MAX_JSON {
        return Err(Error::usage(format!(
            "{name} in {} is larger than {MAX_JSON} bytes",
            path.display()
        )));
    }
    let mut file = File::open(path).map_err(|e| read_error(path, e))?;
    file.seek(SeekFrom::Start(entry.offset))
        .map_err(|e| read_error(path, e))?;
    serde_json::from_reader(file.take(entry.size)).map_err(|e| {
        Error::usage(format!("{name} in {} is not valid JSON", path.display())).with_source(e)
    })
}

fn object_name(hex: &str) -> Result<ImageObjectName, Error> {
    ImageObjectName::from_sha256_hex(hex)
        .map_err(|e| Error::failed(format!("hashing gave a bad digest: {e}")))
}

fn read_error(path: &Path, error: std::io::Error) -> Error {
    Error::usage(format!("cannot read {}", path.display())).with_source(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn append(builder: &mut tar::Builder<File>, name: &str, data: &[u8]) {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, data).unwrap();
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn a_classic_tarball_splits_into_configs_and_layers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.tar");
        let (base, top) = (b"base layer".as_slice(), b"top layer".as_slice());
        let config = format!(
            r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{}","sha256:{}"]}}}}"#,
            sha(base),
            sha(top)
        );
        let config_name = format!("{}.json", sha(config.as_bytes()));
        let manifest = format!(
            r#"[{{"Config":"{config_name}","RepoTags":["web:v1"],"Layers":["a/layer.tar","b/layer.tar"]}}]"#
        );
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        append(&mut builder, "a/layer.tar", base);
        append(&mut builder, "b/layer.tar", top);
        append(&mut builder, &config_name, config.as_bytes());
        append(&mut builder, "manifest.json", manifest.as_bytes());
        builder.into_inner().unwrap();

        let split = split(&path).unwrap().expect("a docker save tarball");
        let image = &split.images.images[0];
        assert_eq!(image.repo_tags, ["web:v1"]);
        assert_eq!(image.config.object.sha256_hex(), sha(config.as_bytes()));
        assert_eq!(image.layers[0].object.sha256_hex(), sha(base));
        assert_eq!(image.layers[1].diff_id, format!("sha256:{}", sha(top)));
        assert_eq!(
            split.total_bytes(),
            (base.len() + top.len() + config.len()) as u64
        );
        // Each blob's recorded slice of the file holds exactly its bytes.
        let bytes = std::fs::read(&path).unwrap();
        for (hex, &(offset, size)) in &split.blobs {
            let slice = &bytes[offset as usize..(offset + size) as usize];
            assert_eq!(&sha(slice), hex);
        }
    }

    #[test]
    fn an_oci_layout_with_classic_links_resolves_to_its_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("oci.tar");
        let layer = b"the only layer".as_slice();
        let config = format!(
            r#"{{"rootfs":{{"type":"layers","diff_ids":["sha256:{}"]}}}}"#,
            sha(layer)
        );
        let (layer_hex, config_hex) = (sha(layer), sha(config.as_bytes()));
        let manifest = format!(
            r#"[{{"Config":"blobs/sha256/{config_hex}","RepoTags":["app:1"],"Layers":["x/layer.tar"]}}]"#
        );
        let file = File::create(&path).unwrap();
        let mut builder = tar::Builder::new(file);
        append(&mut builder, &format!("blobs/sha256/{layer_hex}"), layer);
        append(
            &mut builder,
            &format!("blobs/sha256/{config_hex}"),
            config.as_bytes(),
        );
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        builder
            .append_link(
                &mut link,
                "x/layer.tar",
                format!("../blobs/sha256/{layer_hex}"),
            )
            .unwrap();
        append(&mut builder, "manifest.json", manifest.as_bytes());
        builder.into_inner().unwrap();

        let split = split(&path).unwrap().expect("a docker save tarball");
        assert_eq!(
            split.images.images[0].layers[0].object.sha256_hex(),
            layer_hex
        );
        assert_eq!(split.blobs.len(), 2);
    }

    #[test]
    fn a_tar_without_a_manifest_is_not_split() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        append(&mut builder, "file.txt", b"hello");
        builder.into_inner().unwrap();
        assert!(split(&path).unwrap().is_none());
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(normalize("./a/b.json"), "a/b.json");
        assert_eq!(normalize("x/../blobs/sha256/ab"), "blobs/sha256/ab");
    }
}
