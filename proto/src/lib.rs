//! The HostKit wire contract: every type that crosses NATS (jobs, events,
//! control requests and replies), every subject/stream/bucket name, and the
//! validated names (`Domain`, `NodeId`) they are built from.
//!
//! This crate does no I/O and has no async runtime: the worker, the CLI and
//! dashboards all depend on it, and it is the only wire boundary.
//!
//! Map of the crate:
//!
//! - [`name`]: validated names ([`Domain`], [`NodeId`], [`ImageObjectName`])
//!   and [`sanitize_token`] for any other name placed in a subject.
//! - [`subjects`]: [`Names`], the one place that spells every subject, stream,
//!   consumer, bucket and key, plus the stream/bucket [`settings`](subjects::settings).
//! - [`job`]: [`Job`] (what CI publishes), its kinds and payloads, validation.
//! - [`sign`]: optional nkey (ed25519) signatures over canonical job bytes.
//! - [`event`]: [`Event`] (what workers publish): job, health and node events.
//! - [`error`]: stable [`ErrorCode`]s and the [`ErrorBody`] that crosses the wire.
//! - [`control`]: request/reply messages for `<root>.ctl.<node>.<verb>`.
//! - [`registry`]: KV values ([`NodeInfo`], [`Placement`]).
//! - [`view`]: the on-disk view's `config.json` ([`view::DomainConfig`]), in
//!   the seed's schema with HostKit v1's fields.
//! - [`units`]: human-readable sizes for messages.
//! - [`schema`]: JSON Schemas generated from these types (checked in under `proto/schema/`).

pub mod control;
pub mod error;
pub mod event;
#[cfg(test)]
mod fixtures;
pub mod job;
pub mod name;
pub mod registry;
pub mod schema;
pub mod sign;
pub mod subjects;
pub mod units;
pub mod view;

pub use control::{ControlCall, Reply};
pub use error::{ErrorBody, ErrorCode};
pub use event::{EVENT_SCHEMA, Event, EventKind};
pub use job::{JOB_SCHEMA, Job, JobError, JobId, JobKind, JobSpec};
pub use name::{Domain, ImageObjectName, NameError, NodeId, ObjectNameError, sanitize_token};
pub use registry::{NodeInfo, Placement};
pub use sign::{SignError, TrustedKey, check_claims, sign_job, verify_job_bytes};
pub use subjects::{ControlVerb, Names};
