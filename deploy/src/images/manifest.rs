//! What a `docker save` tarball holds, read from its own `manifest.json`
//! while the tarball streams into the engine: which image id (the config's
//! digest) each tag names. A job then runs exactly the images its tarball
//! brought, never whatever a tag points to after another domain's load
//! re-pointed it (DESIGN §6).
//!
//! [`ManifestTap`] watches the bytes go by (tar headers are parsed, member
//! data skipped) and keeps only `manifest.json`, capped; memory does not
//! grow with the tarball.

use std::collections::BTreeMap;

/// Largest `manifest.json` kept (a manifest lists tags and layer names).
const MANIFEST_CAP: u64 = 4 << 20;
/// Largest GNU long name or pax header kept.
const HEADER_CAP: u64 = 64 << 10;
const BLOCK: u64 = 512;

/// What the tap is in the middle of.
#[derive(Debug)]
enum State {
    /// Collecting the next 512-byte header.
    Header,
    /// Inside a member's data (and its padding): `left` bytes to go, kept
    /// into `keep` up to `size` when it is wanted.
    Data {
        left: u64,
        size: u64,
        keep: Option<Kept>,
    },
    /// Past the end-of-archive marker.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kept {
    Manifest,
    LongName,
    Pax,
}

/// Watches a tar stream and keeps its top-level `manifest.json`.
#[derive(Debug)]
pub struct ManifestTap {
    state: State,
    header: Vec<u8>,
    kept: Vec<u8>,
    next_name: Option<String>,
    manifest: Option<Vec<u8>>,
    broken: bool,
}

impl Default for ManifestTap {
    fn default() -> Self {
        ManifestTap {
            state: State::Header,
            header: Vec::with_capacity(BLOCK as usize),
            kept: Vec::new(),
            next_name: None,
            manifest: None,
            broken: false,
        }
    }
}

impl ManifestTap {
    /// Feed the next bytes of the stream.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && !self.broken {
            match &mut self.state {
                State::End => return,
                State::Header => {
                    let take = (BLOCK as usize - self.header.len()).min(bytes.len());
                    self.header.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.header.len() == BLOCK as usize {
                        let header = std::mem::take(&mut self.header);
                        self.on_header(&header);
                    }
                }
                State::Data { left, size, keep } => {
                    let take = (*left).min(bytes.len() as u64) as usize;
                    let position = *size + padding(*size) - *left;
                    if keep.is_some() && position < *size {
                        let useful = ((*size - position) as usize).min(take);
                        self.kept.extend_from_slice(&bytes[..useful]);
                    }
                    *left -= take as u64;
                    bytes = &bytes[take..];
                    if *left == 0 {
                        let keep = *keep;
                        self.state = State::Header;
                        self.on_member_end(keep);
                    }
                }
            }
        }
    }

    /// The image id of each tag (and of each untagged image, under its
    /// id), once the whole stream went by; `None` when the tarball had no
    /// readable `manifest.json`.
    pub fn images(&self) -> Option<BTreeMap<String, String>> {
        let bytes = self.manifest.as_ref()?;
        let entries: Vec<ManifestEntry> = serde_json::from_slice(bytes).ok()?;
        let mut out = BTreeMap::new();
        for entry in entries {
            let id = config_id(&entry.config)?;
            let tags = entry.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                out.insert(id.clone(), id.clone());
            }
            for tag in tags {
                out.insert(tag, id.clone());
            }
        }
        Some(out)
    }

    fn on_header(&mut self, header: &[u8]) {
        if header.iter().all(|b| *b == 0) {
            // End of archive (two zero blocks; one is enough to stop).
            self.state = State::End;
            return;
        }
        let Some(size) = octal(&header[124..136]) else {
            self.broken = true;
            return;
        };
        let name = self.next_name.take().unwrap_or_else(|| header_name(header));
        let keep = match header[156] {
            b'L' if size <= HEADER_CAP => Some(Kept::LongName),
            b'x' if size <= HEADER_CAP => Some(Kept::Pax),
            b'0' | 0
                if name.trim_start_matches("./") == "manifest.json" && size <= MANIFEST_CAP =>
            {
                Some(Kept::Manifest)
            }
            _ => None,
        };
        self.kept.clear();
        let left = size + padding(size);
        if left == 0 {
            self.on_member_end(keep);
        } else {
            self.state = State::Data { left, size, keep };
        }
    }

    fn on_member_end(&mut self, keep: Option<Kept>) {
        let kept = std::mem::take(&mut self.kept);
        match keep {
            Some(Kept::Manifest) => self.manifest = Some(kept),
            Some(Kept::LongName) => {
                let name = String::from_utf8_lossy(&kept);
                self.next_name = Some(name.trim_end_matches('\0').to_owned());
            }
            Some(Kept::Pax) => self.next_name = pax_path(&kept).or(self.next_name.take()),
            None => {}
        }
    }
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
}

/// `sha256:<hex>` from `<hex>.json` (classic) or `blobs/sha256/<hex>` (OCI).
fn config_id(config: &str) -> Option<String> {
    let hex = config
        .strip_prefix("blobs/sha256/")
        .or_else(|| config.strip_suffix(".json"))?;
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| format!("sha256:{}", hex.to_ascii_lowercase()))
}

fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// A numeric header field: octal text, or base-256 when the high bit is set.
fn octal(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        return field[1..]
            .iter()
            .try_fold(u64::from(field[0] & 0x7f), |acc, b| {
                acc.checked_mul(256)?.checked_add(u64::from(*b))
            });
    }
    let text: String = field
        .iter()
        .take_while(|b| **b != 0)
        .map(|b| *b as char)
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(text, 8).ok()
}

/// The member name: `name`, with the ustar `prefix` when there is one.
fn header_name(header: &[u8]) -> String {
    let field = |range: std::ops::Range<usize>| {
        let bytes = &header[range];
        let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).into_owned()
    };
    let name = field(0..100);
    if &header[257..262] == b"ustar" {
        let prefix = field(345..500);
        if !prefix.is_empty() {
            return format!("{prefix}/{name}");
        }
    }
    name
}

/// The `path` record of a pax extended header (`<len> path=<value>\n`).
fn pax_path(records: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(records);
    text.lines().find_map(|line| {
        let (_, record) = line.split_once(' ')?;
        record.strip_prefix("path=").map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tarball(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in members {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, name, data.as_slice())
                .expect("append");
        }
        builder.into_inner().expect("finish")
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn finds_the_manifest_in_any_chunking() {
        let manifest = format!(
            r#"[{{"Config":"{ID}.json","RepoTags":["web:v1","web:latest"],"Layers":["a/layer.tar"]}},
                {{"Config":"blobs/sha256/{}","RepoTags":null,"Layers":[]}}]"#,
            "f".repeat(64)
        );
        let long = format!("{}/layer.tar", "d".repeat(150));
        let bytes = tarball(&[
            ("a/layer.tar", vec![7u8; 3000]),
            (&long, vec![1u8; 10]),
            ("manifest.json", manifest.into_bytes()),
            ("repositories", b"{}".to_vec()),
        ]);
        for chunk in [1, 7, 511, 512, 513, 4096, bytes.len()] {
            let mut tap = ManifestTap::default();
            for piece in bytes.chunks(chunk) {
                tap.feed(piece);
            }
            let images = tap.images().expect("manifest found");
            assert_eq!(images["web:v1"], format!("sha256:{ID}"), "chunk {chunk}");
            assert_eq!(images["web:latest"], format!("sha256:{ID}"));
            let untagged = format!("sha256:{}", "f".repeat(64));
            assert_eq!(images[&untagged], untagged);
        }
    }

    #[test]
    fn a_tarball_without_a_manifest_has_no_images() {
        let mut tap = ManifestTap::default();
        tap.feed(&tarball(&[("sub/manifest.json", b"[]".to_vec())]));
        assert_eq!(tap.images(), None);
        let mut garbage = ManifestTap::default();
        garbage.feed(&[b'z'; 2000]);
        assert_eq!(garbage.images(), None);
    }
}
