//! v1's `config.json`, read leniently: v1 writes it from a heredoc and
//! rewrites it through `jq`, so fields may be missing (configs older than
//! v1.3 have no memory fields), `redirect_domains` is `[""]` when there are
//! none, and `type` is missing for single-container sites.

use std::path::Path;

use serde::Deserialize;

use crate::domain_dir::{DomainDir, DomainDirError, READ_CAP};

/// The fields of v1's `config.json` HostKit uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct V1Config {
    /// The domain.
    #[serde(default)]
    pub domain: String,
    /// Domains that redirect (301) to this one; v1's `[""]` is read as none.
    #[serde(default, deserialize_with = "non_empty_strings")]
    pub redirect_domains: Vec<String>,
    /// The host port (= container port in v1).
    #[serde(default)]
    pub port: Option<u16>,
    /// v1's deploy user (`deploy-example-com`, or `none`).
    #[serde(default)]
    pub username: Option<String>,
    /// `512m`.
    #[serde(default)]
    pub memory_limit: Option<String>,
    /// `256m`.
    #[serde(default)]
    pub memory_reservation: Option<String>,
    /// When v1 registered the site (`date -Iseconds`).
    #[serde(default)]
    pub created: Option<String>,
    /// v1's version stamp (`20251008-143015`), `null` before a deploy.
    #[serde(default)]
    pub current_version: Option<String>,
    /// `compose` for v1's compose sites; missing means `single`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Present only in HostKit's own view of a domain.
    #[serde(default)]
    pub hostkit: Option<serde_json::Value>,
}

impl V1Config {
    /// Parse v1's file (`None` when it is not JSON of that shape).
    pub fn parse(text: &str) -> Result<V1Config, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Whether HostKit (v2) wrote this file: it has a `hostkit` section.
    pub fn written_by_hostkit(&self) -> bool {
        self.hostkit.is_some()
    }

    /// Whether v1 ran this site as a compose stack.
    pub fn is_compose(&self) -> bool {
        self.kind.as_deref() == Some("compose")
    }
}

/// Why a domain's `config.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum V1ConfigError {
    /// The file could not be read (a link, not a regular file, too large…).
    #[error("config.json cannot be read: {0}")]
    Read(#[source] DomainDirError),
    /// It is not JSON of the shape v1 or HostKit writes.
    #[error("config.json is not v1's or HostKit's JSON: {0}")]
    Parse(#[source] serde_json::Error),
}

/// The `config.json` of the domain directory `dir`, read leniently
/// (`None`: there is none). Blocking; through [`DomainDir`] (no links,
/// size capped). Whoever wrote it, v1 or HostKit, its shared fields read.
pub fn read(dir: &DomainDir) -> Result<Option<V1Config>, V1ConfigError> {
    match dir.read_to_string(Path::new("config.json"), READ_CAP) {
        Ok(Some(text)) => V1Config::parse(&text)
            .map(Some)
            .map_err(V1ConfigError::Parse),
        Ok(None) => Ok(None),
        Err(e) => Err(V1ConfigError::Read(e)),
    }
}

/// Every v1 site under `domains_root` (v1's `/opt/domains`): directories
/// holding a `config.json` that v1, not HostKit, wrote. Blocking; files are
/// read through [`DomainDir`] (no links, size capped).
pub fn find_sites(domains_root: &Path) -> std::io::Result<Vec<(String, V1Config)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(domains_root)? {
        let entry = entry?;
        if !entry.file_type()?.is_dir() {
            continue;
        }
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Ok(Some(config)) = read(&DomainDir::new(entry.path()))
            && !config.written_by_hostkit()
        {
            found.push((name, config));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

fn non_empty_strings<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list: Option<Vec<String>> = Option::deserialize(d)?;
    Ok(list
        .unwrap_or_default()
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_v1s_file_with_its_quirks() {
        // As `register` writes it, with no redirects (`[""]`).
        let text = r#"{
    "domain": "example.com",
    "redirect_domains": [""],
    "all_domains": ["example.com"],
    "port": 3000,
    "username": "deploy-example-com",
    "memory_limit": "512m",
    "memory_reservation": "256m",
    "created": "2025-10-08T14:30:15+02:00",
    "current_version": null
}"#;
        let config = V1Config::parse(text).expect("v1 config");
        assert_eq!(config.domain, "example.com");
        assert!(config.redirect_domains.is_empty());
        assert_eq!(config.port, Some(3000));
        assert_eq!(config.memory_limit.as_deref(), Some("512m"));
        assert_eq!(config.current_version, None);
        assert!(!config.is_compose());
        assert!(!config.written_by_hostkit());
    }

    #[test]
    fn finds_v1_sites_but_not_hostkits_own() {
        let root = tempfile::tempdir().expect("root");
        let site = |name: &str, text: &str| {
            std::fs::create_dir_all(root.path().join(name)).expect("dir");
            std::fs::write(root.path().join(name).join("config.json"), text).expect("config");
        };
        site("b.example", r#"{"domain":"b.example","port":3001}"#);
        site("a.example", r#"{"domain":"a.example","port":3000}"#);
        site("ours.example", r#"{"domain":"ours.example","hostkit":{}}"#);
        site("broken.example", "not json");
        std::fs::create_dir_all(root.path().join("empty.example")).expect("dir");
        let found = find_sites(root.path()).expect("scan");
        let names: Vec<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["a.example", "b.example"]);
        assert_eq!(found[1].1.port, Some(3001));
    }

    #[test]
    fn reads_an_old_file_and_a_compose_site() {
        let old = r#"{"domain":"a.example","redirect_domains":["www.a.example"],"port":3001,"current_version":"20251008-143015"}"#;
        let config = V1Config::parse(old).expect("old v1 config");
        assert_eq!(config.redirect_domains, ["www.a.example"]);
        assert_eq!(config.memory_limit, None);
        let compose = r#"{"domain":"b.example","type":"compose","main_service":"web","port":3002}"#;
        assert!(V1Config::parse(compose).expect("compose").is_compose());
        let ours = r#"{"domain":"c.example","hostkit":{"project":"c_example"}}"#;
        assert!(V1Config::parse(ours).expect("ours").written_by_hostkit());
    }
}
