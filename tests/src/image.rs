//! Image builder: writes `docker save`-format tarballs (`manifest.json`,
//! `<config sha256>.json`, `<layer id>/layer.tar`, `repositories`) without a
//! registry or a Docker build, so tests can `docker load` their own images.
//!
//! Every image has a base layer with the host's static busybox
//! (`/bin/busybox`, or `HOSTKIT_BUSYBOX`) and a symlink in `/bin` for each of
//! its applets (`busybox --list`), a layer with the caller's files (if any),
//! and optionally large padding layers of pseudo-random data for load
//! benchmarks. Output is deterministic: the same inputs give the same bytes
//! (entries sorted, mtime 0, uid/gid 0, fixed timestamps in the config), so a
//! tag always names the same image id. Layers shared by several images of one
//! tarball are written once. Tarballs are streamed to a file; only the small
//! in-memory layers are ever held whole.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, BufWriter, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// `PATH` set in every image.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The fixed creation time written into image configs.
const CREATED: &str = "2024-01-01T00:00:00Z";

/// Size of the pieces in which padding data is generated.
const PADDING_CHUNK: usize = 1 << 20;

const BUSYBOX_HINT: &str = "the test images need a *static* busybox: `apt-get install busybox-static` \
     (it installs /bin/busybox), or set HOSTKIT_BUSYBOX=/path/to/static/busybox";

/// A container healthcheck in an image config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["CMD", args…]` or `["CMD-SHELL", command]` (or `["NONE"]`).
    pub test: Vec<String>,
    /// Time between checks (default 1 s; the first check runs one interval after start).
    pub interval: Duration,
    /// Time one check may take (default 5 s).
    pub timeout: Duration,
    /// Consecutive failures that make the container unhealthy (default 3).
    pub retries: u32,
    /// Grace period after start during which failures do not count (default 0).
    pub start_period: Duration,
}

impl Healthcheck {
    /// `["CMD", args…]`: run `args` directly (no shell), with the defaults.
    pub fn cmd<I, S>(args: I) -> Healthcheck
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let test = std::iter::once("CMD".to_string()).chain(args.into_iter().map(Into::into));
        Healthcheck::with_test(test.collect())
    }

    /// `["CMD-SHELL", command]`: run `command` with `/bin/sh -c`, with the defaults.
    pub fn shell(command: impl Into<String>) -> Healthcheck {
        Healthcheck::with_test(vec!["CMD-SHELL".into(), command.into()])
    }

    fn with_test(test: Vec<String>) -> Healthcheck {
        Healthcheck {
            test,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(5),
            retries: 3,
            start_period: Duration::ZERO,
        }
    }

    /// Sets the interval.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the retries.
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Sets the start period.
    pub fn start_period(mut self, start_period: Duration) -> Self {
        self.start_period = start_period;
        self
    }

    fn to_json(&self) -> Value {
        let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        json!({
            "Test": self.test,
            "Interval": nanos(self.interval),
            "Timeout": nanos(self.timeout),
            "Retries": self.retries,
            "StartPeriod": nanos(self.start_period),
        })
    }
}

/// What one image should contain and how containers from it run. Build
/// tarballs from specs with [`TarballBuilder`] (or [`ImageSpec::write_to`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    tags: Vec<String>,
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Vec<(String, String)>,
    exposed_ports: BTreeSet<String>,
    volumes: BTreeSet<String>,
    labels: BTreeMap<String, String>,
    healthcheck: Option<Healthcheck>,
    working_dir: String,
    user: String,
    stop_signal: Option<String>,
    files: BTreeMap<String, (Vec<u8>, u32)>,
    padding: Vec<(u64, u64)>,
}

impl ImageSpec {
    /// An image tagged `tag` (`repo:tag`; `:latest` when no tag is given)
    /// with only the busybox layer, `PATH` set, no command.
    pub fn new(tag: impl Into<String>) -> ImageSpec {
        ImageSpec {
            tags: vec![normalize_tag(tag.into())],
            entrypoint: None,
            cmd: None,
            env: vec![("PATH".into(), DEFAULT_PATH.into())],
            exposed_ports: BTreeSet::new(),
            volumes: BTreeSet::new(),
            labels: BTreeMap::new(),
            healthcheck: None,
            working_dir: String::new(),
            user: String::new(),
            stop_signal: None,
            files: BTreeMap::new(),
            padding: Vec::new(),
        }
    }

    /// Adds another tag for the same image.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        let tag = normalize_tag(tag.into());
        if !self.tags.contains(&tag) {
            self.tags.push(tag);
        }
        self
    }

    /// Replaces all tags with `tag` (e.g. a tag unique to one test, which it
    /// may then register for removal).
    pub fn retag(mut self, tag: impl Into<String>) -> Self {
        self.tags = vec![normalize_tag(tag.into())];
        self
    }

    /// The image's tags (`repo:tag`), the first one given to [`new`](Self::new) first.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Sets the entrypoint.
    pub fn entrypoint<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.entrypoint = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets the command.
    pub fn cmd<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.cmd = Some(args.into_iter().map(Into::into).collect());
        self
    }

    /// Sets an environment variable (replacing an earlier value of `key`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        let (key, value) = (key.into(), value.into());
        match self.env.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.env.push((key, value)),
        }
        self
    }

    /// Declares an exposed TCP port.
    pub fn expose(mut self, port: u16) -> Self {
        self.exposed_ports.insert(format!("{port}/tcp"));
        self
    }

    /// Declares a volume (`VOLUME` in a Dockerfile): a container started
    /// without a mount there gets an anonymous volume.
    pub fn volume(mut self, path: impl Into<String>) -> Self {
        self.volumes.insert(path.into());
        self
    }

    /// Sets a label (containers inherit image labels).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the healthcheck.
    pub fn healthcheck(mut self, healthcheck: Healthcheck) -> Self {
        self.healthcheck = Some(healthcheck);
        self
    }

    /// Sets the working directory.
    pub fn working_dir(mut self, dir: impl Into<String>) -> Self {
        self.working_dir = dir.into();
        self
    }

    /// Sets the user (`uid[:gid]` or a name from the image's `/etc/passwd`:
    /// `root`, `nobody`).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }

    /// Sets the stop signal (default: Docker's `SIGTERM`).
    pub fn stop_signal(mut self, signal: impl Into<String>) -> Self {
        self.stop_signal = Some(signal.into());
        self
    }

    /// Adds a file at absolute `path` with `contents` and permission `mode`
    /// (e.g. `0o644`, `0o755`); parent directories are created (`0o755`).
    /// Panics on a relative path or one with `..`.
    pub fn file(mut self, path: &str, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        self.files.insert(layer_path(path), (contents.into(), mode));
        self
    }

    /// Adds a layer holding one file of `bytes` bytes of deterministic
    /// pseudo-random data (generated in 1 MiB pieces while the tarball is
    /// written, never held whole): for load benchmarks. Equal padding layers
    /// (same size and seed) are shared like any other layer.
    pub fn with_padding_layer(self, bytes: u64) -> Self {
        self.with_padding_layer_seeded(bytes, 0)
    }

    /// Like [`with_padding_layer`](Self::with_padding_layer) with a seed, for
    /// padding layers of equal size but different content.
    pub fn with_padding_layer_seeded(mut self, bytes: u64, seed: u64) -> Self {
        self.padding.push((bytes, seed));
        self
    }

    /// Writes a tarball holding just this image; see [`TarballBuilder::write_to`].
    pub fn write_to(&self, path: impl AsRef<Path>) -> io::Result<TarballInfo> {
        TarballBuilder::new().image(self.clone()).write_to(path)
    }

    fn layers(&self) -> io::Result<Vec<Layer>> {
        let mut layers = vec![Layer::Memory(base_layer())];
        if !self.files.is_empty() {
            let mut nodes = BTreeMap::new();
            for (path, (contents, mode)) in &self.files {
                add_parents(&mut nodes, path);
                nodes.insert(path.clone(), Node::File(contents.clone(), *mode));
            }
            layers.push(Layer::Memory(Arc::new(MemoryLayer::new(&nodes)?)));
        }
        layers.extend(
            self.padding
                .iter()
                .map(|&(size, seed)| Layer::Padding { size, seed }),
        );
        Ok(layers)
    }

    fn config_json(&self, diff_ids: &[String]) -> Vec<u8> {
        let mut config = serde_json::Map::new();
        config.insert(
            "Env".into(),
            json!(
                self.env
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
            ),
        );
        if let Some(entrypoint) = &self.entrypoint {
            config.insert("Entrypoint".into(), json!(entrypoint));
        }
        if let Some(cmd) = &self.cmd {
            config.insert("Cmd".into(), json!(cmd));
        }
        let empty_objects = |keys: &BTreeSet<String>| -> Value {
            Value::Object(keys.iter().map(|k| (k.clone(), json!({}))).collect())
        };
        if !self.exposed_ports.is_empty() {
            config.insert("ExposedPorts".into(), empty_objects(&self.exposed_ports));
        }
        if !self.volumes.is_empty() {
            config.insert("Volumes".into(), empty_objects(&self.volumes));
        }
        if !self.labels.is_empty() {
            config.insert("Labels".into(), json!(self.labels));
        }
        if let Some(healthcheck) = &self.healthcheck {
            config.insert("Healthcheck".into(), healthcheck.to_json());
        }
        if let Some(signal) = &self.stop_signal {
            config.insert("StopSignal".into(), json!(signal));
        }
        config.insert("WorkingDir".into(), json!(self.working_dir));
        config.insert("User".into(), json!(self.user));
        let history: Vec<Value> = diff_ids
            .iter()
            .map(|_| json!({"created": CREATED, "created_by": "hostkit-tests image builder"}))
            .collect();
        let image = json!({
            "architecture": "amd64",
            "os": "linux",
            "created": CREATED,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history,
        });
        serde_json::to_vec(&image).expect("an image config serializes")
    }
}

/// One image as written into a tarball.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltImage {
    /// Its tags (`repo:tag`).
    pub tags: Vec<String>,
    /// The image id Docker will report: `sha256:<hex of the config JSON>`.
    pub id: String,
    /// `sha256:<hex>` of each uncompressed layer tar, base layer first.
    pub diff_ids: Vec<String>,
}

/// What [`TarballBuilder::write_to`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TarballInfo {
    /// The tarball's path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// The images in it, in the order they were added.
    pub images: Vec<BuiltImage>,
}

impl TarballInfo {
    /// Every tag in the tarball.
    pub fn tags(&self) -> Vec<String> {
        self.images
            .iter()
            .flat_map(|i| i.tags.iter().cloned())
            .collect()
    }
}

/// Several images in one `docker save` tarball.
#[derive(Debug, Clone, Default)]
pub struct TarballBuilder {
    images: Vec<ImageSpec>,
}

impl TarballBuilder {
    /// An empty tarball.
    pub fn new() -> TarballBuilder {
        TarballBuilder::default()
    }

    /// Adds an image.
    pub fn image(mut self, spec: ImageSpec) -> Self {
        self.images.push(spec);
        self
    }

    /// Writes the tarball to `path` (created or truncated), streaming it.
    /// Blocking; for large tarballs inside async code use
    /// [`write_to_async`](Self::write_to_async).
    pub fn write_to(&self, path: impl AsRef<Path>) -> io::Result<TarballInfo> {
        let path = path.as_ref();
        let file = BufWriter::with_capacity(PADDING_CHUNK, File::create(path)?);
        let mut out = tar::Builder::new(file);
        let mut written_layers: BTreeMap<String, String> = BTreeMap::new();
        let mut written_configs: BTreeSet<String> = BTreeSet::new();
        let mut manifest = Vec::new();
        let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut images = Vec::new();
        for spec in &self.images {
            let mut diff_ids = Vec::new();
            let mut layer_paths = Vec::new();
            let mut top_layer = String::new();
            for layer in spec.layers()? {
                let id = layer.id();
                if !written_layers.contains_key(&id) {
                    let diff_id = write_layer(&mut out, &id, &layer)?;
                    written_layers.insert(id.clone(), diff_id);
                }
                diff_ids.push(written_layers[&id].clone());
                layer_paths.push(format!("{id}/layer.tar"));
                top_layer = id;
            }
            let config = spec.config_json(&diff_ids);
            let config_hex = hex::encode(Sha256::digest(&config));
            let config_name = format!("{config_hex}.json");
            if written_configs.insert(config_hex.clone()) {
                append_file(&mut out, &config_name, &config)?;
            }
            manifest
                .push(json!({"Config": config_name, "RepoTags": spec.tags, "Layers": layer_paths}));
            for tag in &spec.tags {
                let (repo, name) = split_tag(tag);
                repositories
                    .entry(repo.to_string())
                    .or_default()
                    .insert(name.to_string(), top_layer.clone());
            }
            images.push(BuiltImage {
                tags: spec.tags.clone(),
                id: format!("sha256:{config_hex}"),
                diff_ids,
            });
        }
        append_file(&mut out, "manifest.json", &serde_json::to_vec(&manifest)?)?;
        append_file(
            &mut out,
            "repositories",
            &serde_json::to_vec(&repositories)?,
        )?;
        let mut file = out.into_inner()?;
        file.flush()?;
        let file = file.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        Ok(TarballInfo {
            path: path.to_path_buf(),
            size: file.metadata()?.len(),
            images,
        })
    }

    /// [`write_to`](Self::write_to) on a blocking thread.
    pub async fn write_to_async(self, path: impl Into<PathBuf>) -> io::Result<TarballInfo> {
        let path = path.into();
        tokio::task::spawn_blocking(move || self.write_to(path))
            .await
            .map_err(io::Error::other)?
    }
}

/// `name` → `name:latest`; `repo:tag` unchanged.
fn normalize_tag(tag: String) -> String {
    let after_slash = tag.rsplit('/').next().unwrap_or(&tag);
    if after_slash.contains(':') {
        tag
    } else {
        format!("{tag}:latest")
    }
}

/// `repo:tag` → (`repo`, `tag`); the tag is after the last `:` following the last `/`.
fn split_tag(tag: &str) -> (&str, &str) {
    tag.rsplit_once(':').unwrap_or((tag, "latest"))
}

/// `/a/b` → `a/b`; panics on relative paths and `..`.
fn layer_path(path: &str) -> String {
    assert!(
        path.starts_with('/'),
        "image file paths must be absolute, got {path:?}"
    );
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    assert!(
        !parts.contains(&".."),
        "image file paths must not contain `..`, got {path:?}"
    );
    assert!(
        !parts.is_empty(),
        "an image file needs a name, got {path:?}"
    );
    parts.join("/")
}

/// An entry of an in-memory layer.
#[derive(Debug, Clone)]
enum Node {
    Dir(u32),
    File(Vec<u8>, u32),
    Symlink(String),
}

fn add_parents(nodes: &mut BTreeMap<String, Node>, path: &str) {
    let mut parent = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        if !parent.is_empty() {
            parent.push('/');
        }
        parent.push_str(part);
        nodes.entry(parent.clone()).or_insert(Node::Dir(0o755));
    }
}

/// A fresh tar header with the fixed metadata every entry gets.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header
}

fn append_file<W: io::Write>(out: &mut tar::Builder<W>, name: &str, data: &[u8]) -> io::Result<()> {
    let mut header = header(tar::EntryType::Regular, 0o644, data.len() as u64);
    out.append_data(&mut header, name, data)
}

/// A small layer built in memory; its id is its diff id's hex.
#[derive(Debug)]
struct MemoryLayer {
    tar: Vec<u8>,
    hex: String,
}

impl MemoryLayer {
    fn new(nodes: &BTreeMap<String, Node>) -> io::Result<MemoryLayer> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, node) in nodes {
            match node {
                Node::Dir(mode) => {
                    let mut h = header(tar::EntryType::Directory, *mode, 0);
                    builder.append_data(&mut h, format!("{path}/"), io::empty())?;
                }
                Node::File(contents, mode) => {
                    let mut h = header(tar::EntryType::Regular, *mode, contents.len() as u64);
                    builder.append_data(&mut h, path, contents.as_slice())?;
                }
                Node::Symlink(target) => {
                    let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                    builder.append_link(&mut h, path, target)?;
                }
            }
        }
        let tar = builder.into_inner()?;
        let hex = hex::encode(Sha256::digest(&tar));
        Ok(MemoryLayer { tar, hex })
    }
}

/// A layer of an image.
#[derive(Debug, Clone)]
enum Layer {
    Memory(Arc<MemoryLayer>),
    Padding { size: u64, seed: u64 },
}

impl Layer {
    /// The layer's directory name in the tarball: the diff id's hex for
    /// in-memory layers; for padding layers (whose hash is known only after
    /// streaming them) a hash of their parameters.
    fn id(&self) -> String {
        match self {
            Layer::Memory(layer) => layer.hex.clone(),
            Layer::Padding { size, seed } => hex::encode(Sha256::digest(format!(
                "hostkit-tests padding layer: {size} bytes, seed {seed}"
            ))),
        }
    }
}

/// Writes `<id>/` and `<id>/layer.tar`; returns the diff id (`sha256:<hex>`).
fn write_layer<W: io::Write>(
    out: &mut tar::Builder<W>,
    id: &str,
    layer: &Layer,
) -> io::Result<String> {
    let mut dir = header(tar::EntryType::Directory, 0o755, 0);
    out.append_data(&mut dir, format!("{id}/"), io::empty())?;
    let name = format!("{id}/layer.tar");
    match layer {
        Layer::Memory(layer) => {
            append_file(out, &name, &layer.tar)?;
            Ok(format!("sha256:{}", layer.hex))
        }
        Layer::Padding { size, seed } => {
            let mut reader = PaddingLayerReader::new(*size, *seed);
            let mut h = header(tar::EntryType::Regular, 0o644, reader.total);
            out.append_data(&mut h, name, &mut reader)?;
            if reader.pos != reader.total {
                return Err(io::Error::other("padding layer stream ended early"));
            }
            Ok(format!("sha256:{}", hex::encode(reader.hasher.finalize())))
        }
    }
}

/// Produces the bytes of a padding layer's tar (one header, the data, zero
/// padding, the end-of-archive blocks) on the fly, hashing them as they go.
struct PaddingLayerReader {
    header: [u8; 512],
    size: u64,
    seed: u64,
    total: u64,
    pos: u64,
    chunk: Vec<u8>,
    chunk_index: Option<u64>,
    hasher: Sha256,
}

impl PaddingLayerReader {
    fn new(size: u64, seed: u64) -> PaddingLayerReader {
        let mut h = header(tar::EntryType::Regular, 0o644, size);
        h.set_path(format!("padding/{seed:016x}-{size}.bin"))
            .expect("a short ASCII path");
        h.set_cksum();
        PaddingLayerReader {
            header: *h.as_bytes(),
            size,
            seed,
            total: 512 + size.div_ceil(512) * 512 + 1024,
            pos: 0,
            chunk: Vec::with_capacity(PADDING_CHUNK),
            chunk_index: None,
            hasher: Sha256::new(),
        }
    }

    /// Fills `self.chunk` with piece `index` of the data (splitmix64, seeded
    /// per piece so any piece can be produced on its own).
    fn load_chunk(&mut self, index: u64) {
        let start = index * PADDING_CHUNK as u64;
        let len = usize::try_from((self.size - start).min(PADDING_CHUNK as u64)).expect("≤ 1 MiB");
        self.chunk.clear();
        self.chunk.resize(len, 0);
        let mut state =
            self.seed ^ index.wrapping_mul(0xA076_1D64_78BD_642F) ^ 0xE703_7ED1_A0B4_28DB;
        for word in self.chunk.chunks_mut(8) {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            word.copy_from_slice(&z.to_le_bytes()[..word.len()]);
        }
        self.chunk_index = Some(index);
    }
}

impl Read for PaddingLayerReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let remaining = self.total - self.pos;
        if remaining == 0 || buf.is_empty() {
            return Ok(0);
        }
        let limit = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = if self.pos < 512 {
            let offset = self.pos as usize;
            let n = limit.min(512 - offset);
            buf[..n].copy_from_slice(&self.header[offset..offset + n]);
            n
        } else if self.pos - 512 < self.size {
            let data_pos = self.pos - 512;
            let index = data_pos / PADDING_CHUNK as u64;
            if self.chunk_index != Some(index) {
                self.load_chunk(index);
            }
            let offset = (data_pos % PADDING_CHUNK as u64) as usize;
            let n = limit.min(self.chunk.len() - offset);
            buf[..n].copy_from_slice(&self.chunk[offset..offset + n]);
            n
        } else {
            buf[..limit].fill(0);
            limit
        };
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// The base layer (busybox and its applets, a minimal `/etc`), built once
/// per process. Panics with an install hint when no static busybox exists.
fn base_layer() -> Arc<MemoryLayer> {
    static BASE: OnceLock<Arc<MemoryLayer>> = OnceLock::new();
    BASE.get_or_init(|| {
        let busybox = busybox_path();
        let binary = std::fs::read(&busybox)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}; {BUSYBOX_HINT}", busybox.display()));
        match elf_is_static(&binary) {
            Some(true) => {}
            Some(false) => panic!(
                "{} is dynamically linked and cannot run in a scratch image; {BUSYBOX_HINT}",
                busybox.display()
            ),
            None => panic!(
                "{} is not a 64-bit ELF executable; {BUSYBOX_HINT}",
                busybox.display()
            ),
        }
        let list = Command::new(&busybox)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} --list: {e}; {BUSYBOX_HINT}",
                    busybox.display()
                )
            });
        let applets: BTreeSet<String> = String::from_utf8_lossy(&list.stdout)
            .lines()
            .map(str::trim)
            .filter(|name| !name.is_empty() && *name != "busybox" && !name.contains('/'))
            .map(str::to_string)
            .collect();
        for needed in ["sh", "httpd", "wget", "sleep", "nc", "cat", "kill"] {
            assert!(
                applets.contains(needed),
                "{} has no `{needed}` applet; {BUSYBOX_HINT}",
                busybox.display()
            );
        }
        let mut nodes = BTreeMap::new();
        for (dir, mode) in [
            ("bin", 0o755),
            ("dev", 0o755),
            ("etc", 0o755),
            ("proc", 0o555),
            ("root", 0o700),
            ("sbin", 0o755),
            ("sys", 0o555),
            ("tmp", 0o1777),
            ("usr", 0o755),
            ("usr/bin", 0o755),
            ("usr/local", 0o755),
            ("usr/local/bin", 0o755),
            ("usr/sbin", 0o755),
            ("var", 0o755),
            ("var/tmp", 0o1777),
        ] {
            nodes.insert(dir.to_string(), Node::Dir(mode));
        }
        nodes.insert("bin/busybox".into(), Node::File(binary, 0o755));
        for applet in applets {
            nodes.insert(format!("bin/{applet}"), Node::Symlink("busybox".into()));
        }
        let passwd =
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
        nodes.insert("etc/passwd".into(), Node::File(passwd.into(), 0o644));
        nodes.insert(
            "etc/group".into(),
            Node::File("root:x:0:\nnogroup:x:65534:\n".into(), 0o644),
        );
        Arc::new(MemoryLayer::new(&nodes).expect("build the busybox layer in memory"))
    })
    .clone()
}

fn busybox_path() -> PathBuf {
    std::env::var_os("HOSTKIT_BUSYBOX")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/bin/busybox"), PathBuf::from)
}

/// Whether a 64-bit little-endian ELF file has no program interpreter
/// (`PT_INTERP`), i.e. is statically linked. `None` if it is not such an ELF.
fn elf_is_static(binary: &[u8]) -> Option<bool> {
    if binary.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let u16_at = |at: usize| Some(u16::from_le_bytes(binary.get(at..at + 2)?.try_into().ok()?));
    let u32_at = |at: usize| Some(u32::from_le_bytes(binary.get(at..at + 4)?.try_into().ok()?));
    let u64_at = |at: usize| Some(u64::from_le_bytes(binary.get(at..at + 8)?.try_into().ok()?));
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        if u32_at(phoff + i * phentsize)? == PT_INTERP {
            return Some(false);
        }
    }
    Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(path: &Path) -> BTreeMap<String, Vec<u8>> {
        let mut archive = tar::Archive::new(File::open(path).unwrap());
        let mut out = BTreeMap::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            out.insert(name, data);
        }
        out
    }

    fn sample() -> TarballBuilder {
        TarballBuilder::new()
            .image(crate::fixtures::web("v1"))
            .image(crate::fixtures::api("v1"))
            .image(crate::fixtures::db())
    }

    #[test]
    fn same_inputs_give_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
        let info_a = sample().write_to(&a).unwrap();
        let info_b = sample().write_to(&b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(info_a.images, info_b.images);

        let c = dir.path().join("c.tar");
        let info_c = crate::fixtures::web("v2").write_to(&c).unwrap();
        assert_ne!(
            info_c.images[0].id, info_a.images[0].id,
            "another version is another image"
        );
    }

    #[test]
    fn tarball_is_consistent_docker_save_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stack.tar");
        let spec = ImageSpec::new("hostkit-test/big:v1").with_padding_layer(3 * 1024 * 1024 + 7);
        let info = sample().image(spec).write_to(&path).unwrap();
        assert_eq!(info.size, std::fs::metadata(&path).unwrap().len());
        let files = entries(&path);

        let manifest: Vec<Value> = serde_json::from_slice(&files["manifest.json"]).unwrap();
        assert_eq!(manifest.len(), 4);
        let layer_tars = files.keys().filter(|k| k.ends_with("/layer.tar")).count();
        // One shared busybox layer, one files layer per fixture, one padding layer.
        assert_eq!(layer_tars, 1 + 3 + 1);
        for (entry, built) in manifest.iter().zip(&info.images) {
            let config_name = entry["Config"].as_str().unwrap();
            let config_bytes = &files[config_name];
            assert_eq!(
                format!("sha256:{}", hex::encode(Sha256::digest(config_bytes))),
                built.id
            );
            assert_eq!(config_name, format!("{}.json", &built.id[7..]));
            let config: Value = serde_json::from_slice(config_bytes).unwrap();
            assert_eq!(config["architecture"], "amd64");
            assert_eq!(config["os"], "linux");
            let diff_ids: Vec<String> =
                serde_json::from_value(config["rootfs"]["diff_ids"].clone()).unwrap();
            assert_eq!(diff_ids, built.diff_ids);
            let layers = entry["Layers"].as_array().unwrap();
            assert_eq!(layers.len(), diff_ids.len());
            for (layer, diff_id) in layers.iter().zip(&diff_ids) {
                let data = &files[layer.as_str().unwrap()];
                assert_eq!(
                    &format!("sha256:{}", hex::encode(Sha256::digest(data))),
                    diff_id
                );
            }
            assert_eq!(entry["RepoTags"], json!(built.tags));
        }
        let repositories: Value = serde_json::from_slice(&files["repositories"]).unwrap();
        assert!(repositories["hostkit-test/web"]["v1"].is_string());

        // The padding layer is a tar with one file of exactly the asked size.
        let padding_layer = manifest[3]["Layers"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .as_str()
            .unwrap();
        let mut inner = tar::Archive::new(files[padding_layer].as_slice());
        let mut inner_entries = inner.entries().unwrap();
        let mut file = inner_entries.next().unwrap().unwrap();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        assert_eq!(data.len(), 3 * 1024 * 1024 + 7);
        assert!(
            data.iter().filter(|&&b| b == 0).count() < data.len() / 100,
            "padding is not zeros"
        );
        drop(file);
        assert!(inner_entries.next().is_none());

        // The base layer has busybox, the applet links and the fixture files.
        let base = manifest[0]["Layers"][0].as_str().unwrap();
        let mut base = tar::Archive::new(files[base].as_slice());
        let mut links = BTreeMap::new();
        for entry in base.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(
                (
                    header.mtime().unwrap(),
                    header.uid().unwrap(),
                    header.gid().unwrap()
                ),
                (0, 0, 0)
            );
            let name = entry.path().unwrap().to_string_lossy().into_owned();
            if let Some(target) = entry.link_name().unwrap() {
                links.insert(name, target.to_string_lossy().into_owned());
            }
        }
        for applet in [
            "sh", "httpd", "nc", "sleep", "wget", "cat", "echo", "mkdir", "test", "date", "ls",
            "env", "printf", "kill", "true", "false", "grep", "ps",
        ] {
            assert_eq!(
                links.get(&format!("bin/{applet}")).map(String::as_str),
                Some("busybox"),
                "{applet}"
            );
        }
    }

    #[test]
    fn padding_reader_matches_declared_length_for_odd_sizes() {
        for size in [0, 1, 511, 512, 513, PADDING_CHUNK as u64 + 3] {
            let mut reader = PaddingLayerReader::new(size, 9);
            let mut all = Vec::new();
            reader.read_to_end(&mut all).unwrap();
            assert_eq!(all.len() as u64, reader.total, "size {size}");
            assert_eq!(all.len() % 512, 0);
        }
    }

    #[test]
    fn tags_and_paths_are_normalized() {
        assert_eq!(ImageSpec::new("a/b").tags(), ["a/b:latest"]);
        assert_eq!(
            ImageSpec::new("localhost:5000/a").tags(),
            ["localhost:5000/a:latest"]
        );
        assert_eq!(
            ImageSpec::new("a/b:v1").tag("a/c:v1").tags(),
            ["a/b:v1", "a/c:v1"]
        );
        assert_eq!(layer_path("/www//x/./index.html"), "www/x/index.html");
        assert_eq!(split_tag("localhost:5000/a:v2"), ("localhost:5000/a", "v2"));
    }

    #[test]
    fn elf_check_tells_static_from_dynamic() {
        assert_eq!(
            elf_is_static(&std::fs::read(busybox_path()).unwrap()),
            Some(true)
        );
        assert_eq!(
            elf_is_static(&std::fs::read("/bin/sh").unwrap()),
            Some(false)
        );
        assert_eq!(elf_is_static(b"#!/bin/sh\n"), None);
    }
}
