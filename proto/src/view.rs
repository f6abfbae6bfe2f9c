//! The on-disk view's `config.json` (DESIGN §5, §10): the seed's schema —
//! `domain`, `type`, `compose_file`, `services`, `main_service`, `network`,
//! `current_version` (`"v3"`), `versions` (`["v1", …]`) — plus HostKit v1's
//! own fields for every site (`redirect_domains`, `all_domains`, `port`,
//! `memory_limit`, `memory_reservation`, `created`), so v1 tools keep
//! reading it. HostKit-only data lives under `hostkit`; fields are added,
//! never renamed. The worker writes it from SQLite (the source of truth);
//! it reads back only what v1 wrote there: `redirect_domains` on a
//! domain's first deploy, `created` and `username` to keep them
//! (`hostkit_deploy::v1::V1Config`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// `<domains_root>/<domain>/config.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainConfig {
    /// The domain.
    pub domain: String,
    /// `compose` (a stack) or `single` (a one-image site).
    #[serde(rename = "type")]
    pub kind: SiteKind,
    /// The current compose file (absolute path).
    pub compose_file: String,
    /// Every service of the current version.
    pub services: BTreeMap<String, ServiceView>,
    /// The service nginx fronts, if any.
    pub main_service: Option<String>,
    /// The engine name of the stack's default network.
    pub network: String,
    /// The current version (`"v3"`), `null` before the first deploy.
    pub current_version: Option<String>,
    /// The kept versions, oldest first (`["v1", "v2"]`); each has its
    /// `docker-compose.v<N>.yml` beside this file.
    pub versions: Vec<String>,
    /// HostKit v1: the domains that redirect to this one (301).
    pub redirect_domains: Vec<String>,
    /// HostKit v1: this domain and its redirects.
    pub all_domains: Vec<String>,
    /// HostKit v1: the host port nginx proxies to (the main service's).
    pub port: Option<u16>,
    /// HostKit v1: the main service's memory limit (`"512m"`).
    pub memory_limit: Option<String>,
    /// HostKit v1: the main service's memory reservation (`"256m"`).
    pub memory_reservation: Option<String>,
    /// HostKit v1: when the domain was registered (RFC 3339); an imported
    /// site keeps v1's.
    pub created: String,
    /// HostKit v1: the site's deploy user (kept from v1's file on import).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// What only HostKit (v2) uses.
    pub hostkit: HostkitView,
}

/// A site's mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SiteKind {
    /// A compose stack.
    Compose,
    /// A single image (HostKit v1's mode).
    Single,
}

/// One service, as the seed describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceView {
    /// Whether nginx fronts it.
    pub exposed: bool,
    /// Its container port (the main port, else its first published or
    /// exposed port), if it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub internal_port: Option<u16>,
    /// The host port (127.0.0.1) of its first replica, if it publishes one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_port: Option<u16>,
    /// Desired replicas.
    pub replicas: u32,
    /// The image reference as written.
    pub image: String,
}

/// HostKit-only fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostkitView {
    /// The Compose project (the domain's token).
    pub project: String,
    /// The node that runs the domain.
    pub node: String,
    /// The domain's block of host ports.
    pub ports: PortsView,
    /// Every recorded version, oldest first.
    pub versions: Vec<VersionView>,
}

/// A block of host ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortsView {
    /// First port.
    pub start: u16,
    /// Number of ports.
    pub len: u16,
}

/// One recorded version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionView {
    /// `"v3"`.
    pub version: String,
    /// `active`, `kept`, `rolled_back`, `pruned`, …
    pub status: String,
    /// The job that made it.
    pub job_id: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// Image id per service.
    pub images: BTreeMap<String, String>,
}

/// `"v3"` for version 3.
pub fn version_name(version: u32) -> String {
    format!("v{version}")
}

/// `512m` for 512 MiB (HostKit v1's format); bytes that are not whole
/// mebibytes are written as bytes.
pub fn memory_text(bytes: u64) -> String {
    if bytes % (1 << 20) == 0 {
        format!("{}m", bytes >> 20)
    } else {
        bytes.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seeds_example_parses() {
        // The seed's config.json, with v1's fields and HostKit's block.
        let text = r#"{
            "domain": "example.com",
            "type": "compose",
            "compose_file": "/opt/domains/example.com/docker-compose.yml",
            "services": {
                "web": {"exposed": true, "internal_port": 3000, "external_port": 3000, "replicas": 1, "image": "example.com-web:latest"},
                "api": {"exposed": false, "internal_port": 8080, "replicas": 1, "image": "example.com-api:latest"},
                "db": {"exposed": false, "internal_port": 5432, "replicas": 1, "image": "postgres:15"}
            },
            "main_service": "web",
            "network": "example-com-network",
            "current_version": "v1",
            "versions": ["v1"],
            "redirect_domains": [], "all_domains": ["example.com"], "port": 3000,
            "memory_limit": null, "memory_reservation": null,
            "created": "2026-12-02T10:00:00+00:00",
            "hostkit": {"project": "example_com", "node": "vps-1", "ports": {"start": 20000, "len": 10},
                        "versions": [{"version": "v1", "status": "active", "job_id": "01J", "created_at": "2026-12-02T10:00:00+00:00", "images": {}}]}
        }"#;
        let config: DomainConfig = serde_json::from_str(text).expect("parses");
        assert_eq!(config.kind, SiteKind::Compose);
        assert_eq!(config.current_version.as_deref(), Some("v1"));
        assert_eq!(config.services["web"].internal_port, Some(3000));
        assert_eq!(memory_text(512 << 20), "512m");
        assert_eq!(memory_text(1000), "1000");
    }
}
