//! Values stored in the KV buckets: [`NodeInfo`] in `hostkit_nodes` (key =
//! node id) and [`Placement`] in `hostkit_placement` (key =
//! `<domain token>.<node>`).
//! Keys and bucket names come from [`Names`](crate::subjects::Names).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::name::{Domain, NodeId};
use crate::subjects::settings::NODE_STALE_AFTER;

/// A worker's entry in the node registry, refreshed with every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NodeInfo {
    /// The node id (also the key).
    pub node: NodeId,
    /// Worker version.
    pub version: String,
    /// Domains the worker hosts.
    pub domains: Vec<Domain>,
    /// How many lanes may run at once.
    pub capacity: u32,
    /// When the worker last reported.
    pub last_heartbeat: DateTime<Utc>,
    /// The worker's public curve key (`X…`): the CLI seals env values to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal_key: Option<String>,
    /// The worker loads layered image sources (DESIGN §11): the CLI then
    /// uploads a tarball blob by blob; to an older worker it sends it whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layered_images: bool,
}

impl NodeInfo {
    /// Whether the worker missed its heartbeats for longer than
    /// [`NODE_STALE_AFTER`] as of `now`.
    pub fn is_stale(&self, now: DateTime<Utc>) -> bool {
        now.signed_duration_since(self.last_heartbeat)
            .to_std()
            .is_ok_and(|age| age > NODE_STALE_AFTER)
    }
}

/// Which node hosts a domain. Written by the worker when it adopts the
/// domain (create-if-absent, so two nodes cannot both adopt it); read by the
/// CLI to route jobs and control requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Placement {
    /// The node that hosts the domain.
    pub node: NodeId,
    /// When it adopted the domain.
    pub adopted_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn round_trips_and_shapes() {
        let info = NodeInfo {
            node: fixtures::node(),
            version: "0.1.0".into(),
            domains: vec![fixtures::domain()],
            capacity: 4,
            last_heartbeat: fixtures::at(),
            seal_key: None,
            layered_images: false,
        };
        let json = serde_json::to_string(&info).unwrap();
        assert_eq!(
            json,
            r#"{"node":"vps-1","version":"0.1.0","domains":["example.com"],"capacity":4,"last_heartbeat":"2026-01-02T03:04:05Z"}"#
        );
        assert_eq!(serde_json::from_str::<NodeInfo>(&json).unwrap(), info);
        let placement = Placement {
            node: fixtures::node(),
            adopted_at: fixtures::at(),
        };
        let json = serde_json::to_string(&placement).unwrap();
        assert_eq!(
            json,
            r#"{"node":"vps-1","adopted_at":"2026-01-02T03:04:05Z"}"#
        );
        assert_eq!(serde_json::from_str::<Placement>(&json).unwrap(), placement);
        let extra: Placement = serde_json::from_str(
            r#"{"node":"vps-1","adopted_at":"2026-01-02T03:04:05Z","by":"x"}"#,
        )
        .unwrap();
        assert_eq!(extra, placement);
    }

    #[test]
    fn staleness() {
        let info = NodeInfo {
            node: fixtures::node(),
            version: "0.1.0".into(),
            domains: vec![],
            capacity: 1,
            last_heartbeat: fixtures::at(),
            seal_key: None,
            layered_images: false,
        };
        assert!(!info.is_stale(fixtures::at()));
        assert!(!info.is_stale(fixtures::at() - chrono::Duration::seconds(5)));
        assert!(info.is_stale(fixtures::at() + chrono::Duration::seconds(31)));
    }
}
