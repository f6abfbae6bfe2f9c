//! [`Event`]: what workers publish on `<root>.events.…` and `<root>.nodes.…`
//! (progress and outcome of jobs, container health, worker liveness).
//!
//! JSON shape (the kind's fields are top-level; `domain` and `job_id` only
//! when they apply):
//!
//! ```json
//! {"schema":1,"seq":42,"at":"2026-01-02T03:04:05Z","node":"vps-1",
//!  "domain":"example.com","job_id":"01J…","kind":"step",
//!  "name":"load_images","message":"loading 2 images"}
//! ```
//!
//! Readers ignore fields they do not know and accept kinds they do not know
//! ([`EventKind::Unknown`]); `schema` tells them which version wrote it.

mod kind;
mod states;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use kind::{EventCategory, EventKind};
pub use states::{ProgressUnit, ReplicaState};

use crate::job::JobId;
use crate::name::{Domain, NodeId};

/// The event schema version this build writes.
pub const EVENT_SCHEMA: u32 = 1;

/// Longest `message` a worker should put in an event, in bytes (see
/// [`truncate_message`]).
pub const MAX_EVENT_MESSAGE_BYTES: usize = 4096;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    description = "A HostKit event, published on <root>.events.<domain token>.job.<job id>, <root>.events.<domain token>.health.<service token>, <root>.events.<domain token>.tls or <root>.nodes.<node>.<kind>. Readers must ignore unknown fields and accept kinds they do not know (newer workers may add kinds and values)."
)]
pub struct Event {
    /// Schema version (`EVENT_SCHEMA` when written by this build).
    pub schema: u32,
    /// Per-node sequence number: strictly increasing for each `node`, kept
    /// across worker restarts; with `node` it identifies the event (its
    /// `Nats-Msg-Id` is `<node>:<seq>`).
    pub seq: u64,
    /// When it happened (UTC, RFC 3339).
    pub at: DateTime<Utc>,
    /// The worker that published it.
    pub node: NodeId,
    /// The domain, for job and health events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
    /// The job, for job events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_id: Option<JobId>,
    /// `kind` and the kind's fields, flattened into the event.
    #[serde(flatten)]
    pub kind: EventKind,
}

impl Event {
    /// A node-level event (no domain, no job), stamped now.
    pub fn new(node: NodeId, seq: u64, kind: EventKind) -> Self {
        Event {
            schema: EVENT_SCHEMA,
            seq,
            at: Utc::now(),
            node,
            domain: None,
            job_id: None,
            kind,
        }
    }

    /// A job event, stamped now.
    pub fn for_job(node: NodeId, seq: u64, domain: Domain, job_id: JobId, kind: EventKind) -> Self {
        Event::new(node, seq, kind)
            .with_domain(domain)
            .with_job_id(job_id)
    }

    /// A health event, stamped now.
    pub fn for_health(node: NodeId, seq: u64, domain: Domain, kind: EventKind) -> Self {
        Event::new(node, seq, kind).with_domain(domain)
    }

    /// Sets the domain.
    pub fn with_domain(mut self, domain: Domain) -> Self {
        self.domain = Some(domain);
        self
    }

    /// Sets the job id.
    pub fn with_job_id(mut self, job_id: JobId) -> Self {
        self.job_id = Some(job_id);
        self
    }

    /// Sets the time.
    pub fn with_at(mut self, at: DateTime<Utc>) -> Self {
        self.at = at;
        self
    }

    /// Whether this ends a job (`succeeded`, `failed`, `superseded`).
    pub fn is_terminal(&self) -> bool {
        self.kind.is_terminal()
    }

    /// The `Nats-Msg-Id` to publish it with: `<node>:<seq>`, so an event
    /// re-published from the worker's outbox is de-duplicated by the stream.
    pub fn msg_id(&self) -> String {
        format!("{}:{}", self.node, self.seq)
    }

    /// The event as compact JSON.
    pub fn to_vec(&self) -> Vec<u8> {
        // Infallible: every map in an event has string keys.
        serde_json::to_vec(self).expect("an Event always serializes")
    }

    /// Parses an event (lenient: unknown kinds and fields are accepted).
    pub fn from_slice(bytes: &[u8]) -> Result<Event, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// Cuts `message` to at most `max` bytes on a character boundary, marking a
/// cut with `…`. Workers apply it with [`MAX_EVENT_MESSAGE_BYTES`] to every
/// message they put in an event.
pub fn truncate_message(message: &str, max: usize) -> String {
    if message.len() <= max {
        return message.to_owned();
    }
    const MARK: &str = "…";
    let mut end = max.saturating_sub(MARK.len());
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{MARK}", &message[..end])
}

#[cfg(test)]
mod tests;
