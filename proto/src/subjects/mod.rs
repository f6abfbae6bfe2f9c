//! Every NATS subject, stream, consumer, bucket and KV key HostKit uses,
//! spelled in one place. Nothing else builds a subject string by hand.
//!
//! All names derive from a configurable root (default `hostkit`):
//!
//! | what | name (root `hostkit`) |
//! | --- | --- |
//! | jobs stream | `HOSTKIT_JOBS` over `hostkit.jobs.>` |
//! | one job | `hostkit.jobs.<node>.<dtoken>` |
//! | a worker's consumer | durable `worker-<node>`, filter `hostkit.jobs.<node>.>` |
//! | job events | `hostkit.events.<dtoken>.job.<job_id>` |
//! | health events | `hostkit.events.<dtoken>.health.<sanitized service>` |
//! | node events | `hostkit.nodes.<node>.heartbeat` / `.online` / `.offline` |
//! | events stream | `HOSTKIT_EVENTS` over `hostkit.events.>` and `hostkit.nodes.>` |
//! | control | `hostkit.ctl.<node>.<verb>`, and `hostkit.ctl.<node>.<verb>.<dtoken>` for a request about one domain (the payload must name it) |
//! | image blobs | object store `hostkit_images`, objects `sha256-<hex>` |
//! | placement | KV `hostkit_placement`, key `<dtoken>.<node>` (written by that node only), value [`Placement`](crate::Placement) |
//! | node registry | KV `hostkit_nodes`, key `<node>`, value [`NodeInfo`](crate::NodeInfo) |
//!
//! A root may have several tokens (`acme.hostkit`); stream names upper-case
//! it and buckets use it with `.` → `_` (`ACME_HOSTKIT_JOBS`,
//! `acme_hostkit_images`).

pub mod settings;

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::{Event, EventCategory};
use crate::job::JobId;
use crate::name::{
    Domain, ImageObjectName, NameError, NameKind, NodeId, ObjectNameError, sanitize_token,
};

/// The default subject root.
pub const DEFAULT_ROOT: &str = "hostkit";

/// Longest subject root.
const MAX_ROOT_LEN: usize = 64;

/// A control verb: the last token of `<root>.ctl.<node>.<verb>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlVerb {
    /// Overall state of the node's domains.
    Status,
    /// Services and replicas of one domain.
    Services,
    /// Log lines of one service (a stream of replies).
    Logs,
    /// Recorded versions of one domain.
    Versions,
    /// Liveness check.
    Ping,
    /// HostKit v1 sites the node could import.
    Imports,
    /// The names of a domain's stored variables.
    Env,
    /// The backups of a domain's volumes.
    Backups,
}

impl ControlVerb {
    /// Every verb.
    pub const ALL: &'static [ControlVerb] = &[
        ControlVerb::Status,
        ControlVerb::Services,
        ControlVerb::Logs,
        ControlVerb::Versions,
        ControlVerb::Ping,
        ControlVerb::Imports,
        ControlVerb::Env,
        ControlVerb::Backups,
    ];

    /// The subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            ControlVerb::Status => "status",
            ControlVerb::Services => "services",
            ControlVerb::Logs => "logs",
            ControlVerb::Versions => "versions",
            ControlVerb::Ping => "ping",
            ControlVerb::Imports => "imports",
            ControlVerb::Env => "env",
            ControlVerb::Backups => "backups",
        }
    }
}

impl fmt::Display for ControlVerb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not a [`ControlVerb`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown control verb {verb:?} (expected status, services, logs, versions, ping or imports)"
)]
pub struct UnknownVerb {
    /// The input.
    pub verb: String,
}

impl FromStr for ControlVerb {
    type Err = UnknownVerb;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ControlVerb::ALL
            .iter()
            .copied()
            .find(|verb| verb.as_str() == s)
            .ok_or_else(|| UnknownVerb { verb: s.to_owned() })
    }
}

/// The kind of a node event: the last token of `<root>.nodes.<node>.<kind>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeEvent {
    /// `heartbeat`.
    Heartbeat,
    /// `online`.
    Online,
    /// `offline`.
    Offline,
}

impl NodeEvent {
    /// The subject token.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeEvent::Heartbeat => "heartbeat",
            NodeEvent::Online => "online",
            NodeEvent::Offline => "offline",
        }
    }
}

/// Names every subject, stream, consumer, bucket and key under one root.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Names {
    root: String,
}

impl Default for Names {
    /// Names under the root `hostkit`.
    fn default() -> Self {
        Names {
            root: DEFAULT_ROOT.to_owned(),
        }
    }
}

impl Names {
    /// Names under `root`: one or more `.`-separated tokens of `[a-z0-9_-]`,
    /// at most 64 characters.
    pub fn new(root: &str) -> Result<Self, NameError> {
        let kind = NameKind::SubjectRoot;
        let name = || root.to_owned();
        if root.is_empty() {
            return Err(NameError::Empty { kind });
        }
        for ch in root.chars() {
            match ch {
                'a'..='z' | '0'..='9' | '_' | '-' | '.' => {}
                '*' => return Err(NameError::Wildcard { kind, name: name() }),
                '/' | '\\' => {
                    return Err(NameError::PathSeparator {
                        kind,
                        name: name(),
                        ch,
                    });
                }
                c if c.is_whitespace() => return Err(NameError::Whitespace { kind, name: name() }),
                _ => {
                    return Err(NameError::BadChar {
                        kind,
                        name: name(),
                        ch,
                        allowed: "a-z 0-9 _ - and . between tokens",
                    });
                }
            }
        }
        if root.split('.').any(str::is_empty) {
            return Err(NameError::EmptyLabel { kind, name: name() });
        }
        if root.len() > MAX_ROOT_LEN {
            return Err(NameError::TooLong {
                kind,
                name: name(),
                len: root.len(),
                max: MAX_ROOT_LEN,
            });
        }
        Ok(Names {
            root: root.to_owned(),
        })
    }

    /// The root (`hostkit`).
    pub fn root(&self) -> &str {
        &self.root
    }

    fn stream_prefix(&self) -> String {
        self.root.replace('.', "_").to_ascii_uppercase()
    }

    fn bucket_prefix(&self) -> String {
        self.root.replace('.', "_")
    }

    // --- jobs ---------------------------------------------------------------

    /// The jobs stream: `HOSTKIT_JOBS` (work-queue retention, file storage,
    /// see [`settings`]).
    pub fn jobs_stream(&self) -> String {
        format!("{}_JOBS", self.stream_prefix())
    }

    /// The subject a job for `domain` on `node` is published on:
    /// `<root>.jobs.<node>.<dtoken>`.
    pub fn jobs_subject(&self, node: &NodeId, domain: &Domain) -> String {
        format!("{}.jobs.{node}.{}", self.root, domain.token())
    }

    /// Filter of a worker's consumer: every job for `node`:
    /// `<root>.jobs.<node>.>`.
    pub fn jobs_filter(&self, node: &NodeId) -> String {
        format!("{}.jobs.{node}.>", self.root)
    }

    /// Every job subject (the jobs stream's subjects): `<root>.jobs.>`.
    pub fn jobs_all(&self) -> String {
        format!("{}.jobs.>", self.root)
    }

    /// Durable name of `node`'s pull consumer on the jobs stream: `worker-<node>`.
    pub fn jobs_consumer(&self, node: &NodeId) -> String {
        format!("worker-{node}")
    }

    /// Splits a job subject back into node and domain. `None` if `subject`
    /// is not `<root>.jobs.<node>.<dtoken>` with a valid node and token.
    pub fn parse_jobs_subject(&self, subject: &str) -> Option<(NodeId, Domain)> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix(".jobs.")?;
        let (node, token) = rest.split_once('.')?;
        Some((node.parse().ok()?, Domain::from_token(token).ok()?))
    }

    // --- events -------------------------------------------------------------

    /// The events stream: `HOSTKIT_EVENTS` (limits retention, see [`settings`]).
    pub fn events_stream(&self) -> String {
        format!("{}_EVENTS", self.stream_prefix())
    }

    /// The events stream's subjects: `<root>.events.>` and `<root>.nodes.>`.
    pub fn events_stream_subjects(&self) -> Vec<String> {
        vec![self.events_all(), self.nodes_all()]
    }

    /// Events of one job: `<root>.events.<dtoken>.job.<job_id>`.
    pub fn job_events(&self, domain: &Domain, job_id: &JobId) -> String {
        format!("{}.events.{}.job.{job_id}", self.root, domain.token())
    }

    /// Events of every job of a domain: `<root>.events.<dtoken>.job.*`.
    pub fn job_events_all(&self, domain: &Domain) -> String {
        format!("{}.events.{}.job.*", self.root, domain.token())
    }

    /// Events of one job whatever its domain: `<root>.events.*.job.<job_id>`.
    pub fn job_events_any_domain(&self, job_id: &JobId) -> String {
        format!("{}.events.*.job.{job_id}", self.root)
    }

    /// Health events of one service: `<root>.events.<dtoken>.health.<token>`,
    /// where the token is [`sanitize_token`] of the exact service name (the
    /// payload carries the exact name).
    pub fn health_events(&self, domain: &Domain, service: &str) -> String {
        format!(
            "{}.events.{}.health.{}",
            self.root,
            domain.token(),
            sanitize_token(service)
        )
    }

    /// Health events of every service of a domain: `<root>.events.<dtoken>.health.*`.
    pub fn health_events_all(&self, domain: &Domain) -> String {
        format!("{}.events.{}.health.*", self.root, domain.token())
    }

    /// TLS events of a domain (certificates issued, failures): `<root>.events.<dtoken>.tls`.
    pub fn tls_events(&self, domain: &Domain) -> String {
        format!("{}.events.{}.tls", self.root, domain.token())
    }

    /// Every event of a domain (jobs, health, TLS): `<root>.events.<dtoken>.>`.
    pub fn domain_events(&self, domain: &Domain) -> String {
        format!("{}.events.{}.>", self.root, domain.token())
    }

    /// Every job and health event: `<root>.events.>`.
    pub fn events_all(&self) -> String {
        format!("{}.events.>", self.root)
    }

    /// One node event: `<root>.nodes.<node>.heartbeat|online|offline`.
    pub fn node_event(&self, node: &NodeId, event: NodeEvent) -> String {
        format!("{}.nodes.{node}.{}", self.root, event.as_str())
    }

    /// Every event of one node: `<root>.nodes.<node>.*`.
    pub fn node_events(&self, node: &NodeId) -> String {
        format!("{}.nodes.{node}.*", self.root)
    }

    /// Every node event: `<root>.nodes.>`.
    pub fn nodes_all(&self) -> String {
        format!("{}.nodes.>", self.root)
    }

    /// The subject `event` must be published on, from its kind, domain and
    /// job id. `None` for an unknown kind, or when a job event lacks its
    /// domain or job id, or a health event its domain.
    pub fn event_subject(&self, event: &Event) -> Option<String> {
        match event.kind.category() {
            EventCategory::Job => {
                Some(self.job_events(event.domain.as_ref()?, event.job_id.as_ref()?))
            }
            EventCategory::Health => {
                Some(self.health_events(event.domain.as_ref()?, event.kind.health_service()?))
            }
            EventCategory::Tls => Some(self.tls_events(event.domain.as_ref()?)),
            EventCategory::Node => {
                let which = match event.kind.kind_str() {
                    "heartbeat" => NodeEvent::Heartbeat,
                    "online" => NodeEvent::Online,
                    _ => NodeEvent::Offline,
                };
                Some(self.node_event(&event.node, which))
            }
            EventCategory::Unknown => None,
        }
    }

    // --- control ------------------------------------------------------------

    /// A control request subject: `<root>.ctl.<node>.<verb>`.
    pub fn ctl(&self, node: &NodeId, verb: ControlVerb) -> String {
        format!("{}.ctl.{node}.{verb}", self.root)
    }

    /// The subject of a request about one domain:
    /// `<root>.ctl.<node>.<verb>.<dtoken>`, so NATS permissions can confine
    /// an identity to its own domains' requests; without a domain,
    /// [`Names::ctl`].
    pub fn ctl_for(&self, node: &NodeId, verb: ControlVerb, domain: Option<&Domain>) -> String {
        match domain {
            Some(domain) => format!("{}.ctl.{node}.{verb}.{}", self.root, domain.token()),
            None => self.ctl(node, verb),
        }
    }

    /// Every control subject of a node (what its worker subscribes to):
    /// `<root>.ctl.<node>.>`.
    pub fn ctl_filter(&self, node: &NodeId) -> String {
        format!("{}.ctl.{node}.>", self.root)
    }

    /// Splits a control subject into node, verb and, for a request about
    /// one domain, that domain's token.
    pub fn parse_ctl_subject(
        &self,
        subject: &str,
    ) -> Option<(NodeId, ControlVerb, Option<String>)> {
        let rest = subject.strip_prefix(&self.root)?.strip_prefix(".ctl.")?;
        let mut tokens = rest.split('.');
        let node = tokens.next()?.parse().ok()?;
        let verb = tokens.next()?.parse().ok()?;
        let domain = tokens.next().map(str::to_owned);
        if tokens.next().is_some() || domain.as_deref() == Some("") {
            return None;
        }
        Some((node, verb, domain))
    }

    // --- object store and KV ------------------------------------------------

    /// The image blob object store bucket: `hostkit_images`.
    pub fn images_bucket(&self) -> String {
        format!("{}_images", self.bucket_prefix())
    }

    /// The object name for a blob with this SHA-256 (64 lowercase hex):
    /// `sha256-<hex>`. Parse one back with [`ImageObjectName::parse`].
    pub fn image_object_name(&self, sha256_hex: &str) -> Result<ImageObjectName, ObjectNameError> {
        ImageObjectName::from_sha256_hex(sha256_hex)
    }

    /// The placement KV bucket: `hostkit_placement` (key =
    /// `<dtoken>.<node>`, value [`Placement`](crate::Placement)).
    pub fn placement_bucket(&self) -> String {
        format!("{}_placement", self.bucket_prefix())
    }

    /// The key under which `node` records that it hosts `domain`:
    /// `<dtoken>.<node>`. Each node writes only keys ending in its own id,
    /// so NATS permissions (`$KV.hostkit_placement.*.<node>`) stop one
    /// worker from re-pointing another node's domains to itself.
    pub fn placement_key(&self, domain: &Domain, node: &NodeId) -> String {
        format!("{}.{node}", domain.token())
    }

    /// The key workers before per-node placement keys wrote: the domain's
    /// token alone. Read only when no node's key names the domain.
    pub fn legacy_placement_key(&self, domain: &Domain) -> String {
        domain.token()
    }

    /// The KV subject a node's worker may write placement on:
    /// `$KV.hostkit_placement.*.<node>` (for the server's permissions).
    pub fn placement_write_subject(&self, node: &NodeId) -> String {
        format!("$KV.{}.*.{node}", self.placement_bucket())
    }

    /// A node's backup bucket, `<root>_backups_<node>` (DESIGN §12): its
    /// worker alone writes and reads it.
    pub fn backups_bucket(&self, node: &NodeId) -> String {
        format!("{}_backups_{node}", self.bucket_prefix())
    }

    /// The node registry KV bucket: `hostkit_nodes` (key = node id, value =
    /// [`NodeInfo`](crate::NodeInfo)).
    pub fn nodes_bucket(&self) -> String {
        format!("{}_nodes", self.bucket_prefix())
    }

    /// The node registry key of a node: its id.
    pub fn node_key(&self, node: &NodeId) -> String {
        node.to_string()
    }
}

#[cfg(test)]
mod tests;
