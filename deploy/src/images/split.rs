//! A `docker save` tarball split into its blobs (DESIGN §11): every image
//! config and every layer becomes its own content-named object, so a
//! redeploy uploads only the blobs the bucket lacks — usually the one
//! layer the build changed.
//!
//! [`split`] reads only the tar headers (seeking past the data), then
//! `manifest.json` and the image configs (small). A blob's name is the
//! digest its tarball gives it: the OCI layout names blobs
//! `blobs/sha256/<hex>`, the classic layout names configs `<hex>.json` and
//! lists each layer's digest in the config's `rootfs.diff_ids` (`docker
//! save` writes layers uncompressed, so that is the digest of their
//! bytes). Nothing is hashed here: the upload checks that the bytes it
//! sends hash to the name (the store records their digest), and the
//! worker checks again while it loads. A 500 MiB tarball whose blobs are
//! all in the bucket therefore costs a few reads, not a pass over 500 MiB.
//! A tarball without `manifest.json` is not split.
//!
//! Blocking (std I/O): call from `spawn_blocking`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use hostkit_proto::ImageObjectName;
use hostkit_proto::job::{Blob, LAYERED_FORMAT, LayerBlob, LayeredImage, LayeredImages};
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Largest `manifest.json` or image config read into memory.
const MAX_JSON: u64 = 16 * 1024 * 1024;
/// Read buffer for the tar headers.
const HEADER_BUFFER: usize = 64 * 1024;

/// Why a tarball could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// Reading the file failed.
    #[error("cannot read {path}")]
    Read {
        /// The tarball.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The tarball is not what `docker save` writes.
    #[error("{path}: {reason}")]
    Invalid {
        /// The tarball.
        path: String,
        /// What is wrong.
        reason: String,
    },
}

/// One regular file of the tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// Its path in the archive.
    name: String,
    /// Where its bytes start in the file.
    offset: u64,
    /// How many.
    size: u64,
}

/// A tarball's images as blobs, and where each blob lies in the file.
#[derive(Debug, Clone)]
pub struct Split {
    /// The tarball.
    pub path: PathBuf,
    /// The job's image source.
    pub images: LayeredImages,
    /// Each distinct blob: sha256 hex → (offset, size) in the file.
    pub blobs: BTreeMap<String, (u64, u64)>,
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
pub fn split(path: &Path) -> Result<Option<Split>, SplitError> {
    let (entries, links) = scan(path)?;
    let Some(manifest) = entries.get("manifest.json") else {
        return Ok(None);
    };
    let manifest: Vec<ManifestEntry> = read_json(path, manifest, "manifest.json")?;
    let resolve = |name: &str| -> Result<&Entry, SplitError> {
        let mut name = normalize(name);
        for _ in 0..8 {
            match links.get(&name) {
                Some(target) => name = target.clone(),
                None => break,
            }
        }
        entries
            .get(&name)
            .ok_or_else(|| invalid(path, format!("it lists {name}, which it does not hold")))
    };
    let mut blobs = BTreeMap::new();
    let mut images = Vec::new();
    for item in manifest {
        let config_entry = resolve(&item.config)?;
        let config: ImageConfig = read_json(path, config_entry, &item.config)?;
        if config.rootfs.diff_ids.len() != item.layers.len() {
            return Err(invalid(
                path,
                format!(
                    "the image config {} lists {} layers, its manifest {}",
                    item.config,
                    config.rootfs.diff_ids.len(),
                    item.layers.len()
                ),
            ));
        }
        let config_hex = match named_digest(&config_entry.name) {
            Some(hex) => hex,
            None => hash_entry(path, config_entry)?,
        };
        blobs.insert(config_hex.clone(), (config_entry.offset, config_entry.size));
        let mut layers = Vec::new();
        for (layer, diff_id) in item.layers.iter().zip(config.rootfs.diff_ids) {
            let entry = resolve(layer)?;
            let hex = named_digest(&entry.name)
                .or_else(|| digest_hex(&diff_id))
                .ok_or_else(|| invalid(path, format!("{diff_id:?} is not a sha256 diff id")))?;
            blobs.insert(hex.clone(), (entry.offset, entry.size));
            layers.push(LayerBlob {
                object: object_name(&hex),
                size: entry.size,
                diff_id,
            });
        }
        images.push(LayeredImage {
            config: Blob {
                object: object_name(&config_hex),
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

/// Every regular entry (path → offset, size, hash) and every link (path →
/// target path) of the archive, reading it once.
type Scanned = (HashMap<String, Entry>, HashMap<String, String>);

/// Every regular entry (path → offset, size) and every link (path →
/// target path) of the archive, from its headers alone.
fn scan(path: &Path) -> Result<Scanned, SplitError> {
    let file = File::open(path).map_err(|e| read_error(path, e))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(HEADER_BUFFER, file));
    let mut entries = HashMap::new();
    let mut links = HashMap::new();
    for entry in archive
        .entries_with_seek()
        .map_err(|e| read_error(path, e))?
    {
        let entry = entry.map_err(|e| read_error(path, e))?;
        let name = normalize(
            &entry
                .path()
                .map_err(|e| read_error(path, e))?
                .to_string_lossy(),
        );
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
        if kind.is_file() {
            let (offset, size) = (entry.raw_file_position(), entry.size());
            entries.insert(name.clone(), Entry { name, offset, size });
        }
    }
    Ok((entries, links))
}

/// The digest a blob's path gives: `blobs/sha256/<hex>` or `<hex>.json`.
fn named_digest(name: &str) -> Option<String> {
    let file = name.rsplit('/').next()?;
    let hex = if name.starts_with("blobs/sha256/") {
        file
    } else {
        file.strip_suffix(".json")?
    };
    is_hex_digest(hex).then(|| hex.to_owned())
}

/// `sha256:<hex>` → `<hex>`.
fn digest_hex(digest: &str) -> Option<String> {
    let hex = digest.strip_prefix("sha256:")?;
    is_hex_digest(hex).then(|| hex.to_owned())
}

fn is_hex_digest(hex: &str) -> bool {
    hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The SHA-256 of one entry's bytes (a config whose name is no digest).
fn hash_entry(path: &Path, entry: &Entry) -> Result<String, SplitError> {
    let mut file = File::open(path).map_err(|e| read_error(path, e))?;
    file.seek(SeekFrom::Start(entry.offset))
        .map_err(|e| read_error(path, e))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file.take(entry.size), &mut hasher).map_err(|e| read_error(path, e))?;
    Ok(hex::encode(hasher.finalize()))
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
) -> Result<T, SplitError> {
    if entry.size > MAX_JSON {
        return Err(invalid(
            path,
            format!("{name} is larger than {MAX_JSON} bytes"),
        ));
    }
    let mut file = File::open(path).map_err(|e| read_error(path, e))?;
    file.seek(SeekFrom::Start(entry.offset))
        .map_err(|e| read_error(path, e))?;
    serde_json::from_reader(file.take(entry.size))
        .map_err(|e| invalid(path, format!("{name} is not valid JSON: {e}")))
}

/// The object name of a blob hashed here (always 64 hex digits).
pub fn object_name(hex: &str) -> ImageObjectName {
    ImageObjectName::from_sha256_hex(hex).expect("a SHA-256 digest in hex")
}

fn read_error(path: &Path, source: std::io::Error) -> SplitError {
    SplitError::Read {
        path: path.display().to_string(),
        source,
    }
}

fn invalid(path: &Path, reason: String) -> SplitError {
    SplitError::Invalid {
        path: path.display().to_string(),
        reason,
    }
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
