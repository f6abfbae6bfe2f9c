//! Reading tar files without loading them: what a `docker save` tarball
//! holds (its `manifest.json` tags and the image config's exposed ports),
//! and unpacking a seed bundle (docker-compose.yml plus image tarballs) into
//! a temporary directory. Everything streams through the archive; entries
//! that are not needed are skipped by seeking.
//!
//! Blocking (std I/O): call from `spawn_blocking`.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::Error;

/// Largest `manifest.json` or image config read into memory.
const MAX_JSON: u64 = 16 * 1024 * 1024;

/// Compose file names looked for in a bundle, in order of preference.
pub const COMPOSE_NAMES: &[&str] = &[
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.yml",
    "compose.yaml",
];

/// One image of a `docker save` tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SavedImage {
    /// Its tags (`repo:tag`), possibly none.
    pub tags: Vec<String>,
    /// TCP ports its config exposes, sorted.
    pub exposed_tcp: Vec<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct ImageConfig {
    #[serde(default)]
    config: Option<ContainerConfig>,
}

#[derive(Debug, Default, Deserialize)]
struct ContainerConfig {
    #[serde(default, rename = "ExposedPorts")]
    exposed_ports: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// Whether `path` is a tar archive (POSIX `ustar` magic, or a GNU tar
/// header), judged from its first block.
pub fn is_tar(path: &Path) -> Result<bool, Error> {
    let mut file = open(path)?;
    let mut block = [0u8; 512];
    let mut filled = 0;
    while filled < block.len() {
        match file.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) => return Err(read_error(path, e)),
        }
    }
    Ok(filled == block.len() && &block[257..262] == b"ustar")
}

/// The images of a `docker save` tarball: `manifest.json` is found first,
/// then each image's config, both by seeking past the layers.
pub fn saved_images(path: &Path) -> Result<Vec<SavedImage>, Error> {
    let manifest: Vec<ManifestEntry> =
        read_json_entry(path, "manifest.json")?.ok_or_else(|| {
            Error::usage(format!(
                "{} has no manifest.json: is it a `docker save` tarball?",
                path.display()
            ))
        })?;
    let mut images = Vec::new();
    for entry in manifest {
        let config: ImageConfig = read_json_entry(path, &entry.config)?.unwrap_or_default();
        let mut exposed_tcp: Vec<u16> = config
            .config
            .and_then(|c| c.exposed_ports)
            .unwrap_or_default()
            .keys()
            .filter_map(|port| {
                let (number, proto) = port.split_once('/').unwrap_or((port, "tcp"));
                (proto == "tcp").then(|| number.parse().ok()).flatten()
            })
            .collect();
        exposed_tcp.sort_unstable();
        images.push(SavedImage {
            tags: entry.repo_tags.unwrap_or_default(),
            exposed_tcp,
        });
    }
    Ok(images)
}

/// Reads the JSON entry `name` of the archive at `path`, if present.
fn read_json_entry<T: serde::de::DeserializeOwned>(
    path: &Path,
    name: &str,
) -> Result<Option<T>, Error> {
    let mut archive = tar::Archive::new(BufReader::new(open(path)?));
    let wanted = Path::new(name.trim_start_matches("./"));
    let entries = archive
        .entries_with_seek()
        .map_err(|e| read_error(path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| read_error(path, e))?;
        let entry_path = entry.path().map_err(|e| read_error(path, e))?;
        if entry_path.as_ref() != wanted {
            continue;
        }
        if entry.size() > MAX_JSON {
            return Err(Error::usage(format!(
                "{name} in {} is larger than {MAX_JSON} bytes",
                path.display()
            )));
        }
        let value = serde_json::from_reader(entry.take(MAX_JSON)).map_err(|e| {
            Error::usage(format!("{name} in {} is not valid JSON", path.display())).with_source(e)
        })?;
        return Ok(Some(value));
    }
    Ok(None)
}

/// A seed bundle unpacked into a temporary directory (removed on drop).
#[derive(Debug)]
pub struct Bundle {
    /// The directory (kept alive as long as the bundle).
    pub dir: tempfile::TempDir,
    /// The compose file.
    pub compose: PathBuf,
    /// The image tarballs (`*.tar`), sorted.
    pub images: Vec<PathBuf>,
}

/// Unpacks `path` entry by entry (never outside the temporary directory)
/// and finds the compose file (top level, or the shallowest one) and the
/// `*.tar` image tarballs.
pub fn unpack_bundle(path: &Path) -> Result<Bundle, Error> {
    let dir = tempfile::Builder::new()
        .prefix("hostkit-bundle-")
        .tempdir()
        .map_err(|e| Error::failed("cannot create a temporary directory").with_source(e))?;
    let mut archive = tar::Archive::new(BufReader::new(open(path)?));
    archive.set_preserve_permissions(false);
    let entries = archive.entries().map_err(|e| read_error(path, e))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| read_error(path, e))?;
        let kind = entry.header().entry_type();
        if !(kind.is_file() || kind.is_dir()) {
            continue;
        }
        entry.unpack_in(dir.path()).map_err(|e| {
            Error::usage(format!("cannot unpack {}", path.display())).with_source(e)
        })?;
    }
    let mut files = Vec::new();
    collect_files(dir.path(), 0, &mut files)
        .map_err(|e| Error::failed("cannot list the unpacked bundle").with_source(e))?;
    let compose = files
        .iter()
        .filter_map(|(depth, file)| {
            let name = file.file_name()?.to_str()?;
            let rank = COMPOSE_NAMES.iter().position(|n| *n == name)?;
            Some(((*depth, rank), file.clone()))
        })
        .min_by_key(|(key, _)| *key)
        .map(|(_, file)| file)
        .ok_or_else(|| {
            Error::usage(format!(
                "{} holds no compose file ({})",
                path.display(),
                COMPOSE_NAMES.join(", ")
            ))
        })?;
    let mut images: Vec<PathBuf> = files
        .into_iter()
        .map(|(_, file)| file)
        .filter(|file| file.extension().is_some_and(|ext| ext == "tar"))
        .collect();
    images.sort();
    Ok(Bundle {
        dir,
        compose,
        images,
    })
}

fn collect_files(dir: &Path, depth: usize, out: &mut Vec<(usize, PathBuf)>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            collect_files(&entry.path(), depth + 1, out)?;
        } else if kind.is_file() {
            out.push((depth, entry.path()));
        }
    }
    Ok(())
}

fn open(path: &Path) -> Result<File, Error> {
    File::open(path).map_err(|e| read_error(path, e))
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

    fn saved(dir: &Path, manifest: &str, config: &str) -> PathBuf {
        let path = dir.join("image.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        append(&mut builder, "abc/layer.tar", &[0u8; 4096]);
        append(&mut builder, "cfg.json", config.as_bytes());
        append(&mut builder, "manifest.json", manifest.as_bytes());
        builder.finish().unwrap();
        path
    }

    #[test]
    fn reads_tags_and_exposed_ports() {
        let dir = tempfile::tempdir().unwrap();
        let path = saved(
            dir.path(),
            r#"[{"Config":"cfg.json","RepoTags":["app:1","app:latest"],"Layers":["abc/layer.tar"]}]"#,
            r#"{"config":{"ExposedPorts":{"8080/tcp":{},"53/udp":{}}}}"#,
        );
        assert!(is_tar(&path).unwrap());
        let images = saved_images(&path).unwrap();
        assert_eq!(
            images,
            [SavedImage {
                tags: vec!["app:1".into(), "app:latest".into()],
                exposed_tcp: vec![8080],
            }]
        );
        let yaml = dir.path().join("compose.yml");
        std::fs::write(&yaml, "services: {}\n").unwrap();
        assert!(!is_tar(&yaml).unwrap());
    }

    #[test]
    fn not_a_docker_save_tarball() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        append(&mut builder, "readme.txt", b"hello");
        builder.finish().unwrap();
        let error = saved_images(&path).unwrap_err();
        assert!(error.to_string().contains("no manifest.json"), "{error}");
    }

    #[test]
    fn unpacks_a_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bundle.tar");
        let mut builder = tar::Builder::new(File::create(&path).unwrap());
        append(
            &mut builder,
            "release/docker-compose.yml",
            b"services: {}\n",
        );
        append(&mut builder, "release/images/web.tar", b"x");
        append(&mut builder, "release/images/db.tar", b"y");
        append(&mut builder, "release/notes.md", b"z");
        builder.finish().unwrap();
        let bundle = unpack_bundle(&path).unwrap();
        assert!(bundle.compose.ends_with("release/docker-compose.yml"));
        let names: Vec<_> = bundle
            .images
            .iter()
            .map(|p| p.file_name().unwrap().to_str().unwrap().to_owned())
            .collect();
        assert_eq!(names, ["db.tar", "web.tar"]);
    }
}
