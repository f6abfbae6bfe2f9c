//! Control messages: request/reply on `<root>.ctl.<node>.<verb>` (plain NATS
//! request/reply, not queued), for answers in well under a second.
//!
//! | verb | request | reply (`ok` payload) |
//! | --- | --- | --- |
//! | `ping` | [`PingRequest`] `{}` | [`PingReply`] `{node, version, uptime_secs}` |
//! | `status` | [`StatusRequest`] `{domain?}` | [`StatusReply`] `{node, version, domains: [DomainStatus]}` |
//! | `services` | [`ServicesRequest`] `{domain}` | [`ServicesReply`] `{domain, services: [ServiceStatus]}` |
//! | `versions` | [`VersionsRequest`] `{domain}` | [`VersionsReply`] `{domain, versions: [VersionInfo]}` |
//! | `backups` | [`BackupsRequest`] `{domain}` | [`BackupsReply`] `{domain, backups: [BackupInfo]}` |
//! | `env` | [`EnvRequest`] `{domain}` | [`EnvReply`] `{domain, keys, updated_at?}` (names, never values) |
//! | `imports` | [`ImportsRequest`] `{}` | [`ImportsReply`] `{sites: [V1SiteInfo]}` |
//! | `logs` | [`LogsRequest`] `{domain, service, tail?, follow}` | a stream of [`LogChunk`] messages |
//!
//! Every reply message is a [`Reply`]: `{"ok": <payload>}` or
//! `{"error": {"code", "message", "hint?"}}`. A `logs` request is answered
//! with several messages on the request's reply subject, each a
//! `Reply<LogChunk>`; the stream ends with a chunk whose `end` is `true`, or
//! with an `error` reply.

mod backups;
mod env;
mod imports;
mod logs;
mod services;
mod status;
mod versions;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use backups::{BackupInfo, BackupsReply, BackupsRequest, VolumeBackup};
pub use env::{EnvReply, EnvRequest};
pub use imports::{ImportsReply, ImportsRequest, V1SiteInfo};
pub use logs::{
    LOG_CHUNK_MAX_BYTES, LOG_CHUNK_MAX_LINES, LOG_FOLLOW_MAX, LOG_FOLLOWS_PER_NODE,
    LOG_LINE_MAX_BYTES, LOG_TAIL_DEFAULT, LOG_TAIL_MAX, LogBatcher, LogChunk, LogLine, LogStream,
    LogsRequest,
};
pub use services::{
    ContainerState, HealthState, PortMapping, PortProtocol, ReplicaStatus, ServiceStatus,
    ServicesReply, ServicesRequest,
};
pub use status::{
    DomainHealth, DomainStatus, JobOutcome, LastJob, PingReply, PingRequest, StatusReply,
    StatusRequest,
};
pub use versions::{VersionInfo, VersionStatus, VersionsReply, VersionsRequest};

use crate::error::ErrorBody;
use crate::subjects::ControlVerb;

/// A control reply: the payload, or an error.
///
/// JSON: `{"ok": T}` or `{"error": {"code": "…", "message": "…", "hint": "…"}}`.
/// Readers accept extra top-level fields next to `ok` / `error` (a newer
/// worker may add some); `error` wins if both are present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Reply_{T}")]
pub enum Reply<T> {
    /// Success.
    Ok(T),
    /// Failure.
    Error(ErrorBody),
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Reply<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(bound = "T: Deserialize<'de>")]
        struct Raw<T> {
            ok: Option<T>,
            error: Option<ErrorBody>,
        }

        let raw = Raw::<T>::deserialize(deserializer)?;
        match (raw.ok, raw.error) {
            (_, Some(error)) => Ok(Reply::Error(error)),
            (Some(value), None) => Ok(Reply::Ok(value)),
            (None, None) => Err(serde::de::Error::custom("a reply needs `ok` or `error`")),
        }
    }
}

impl<T> Reply<T> {
    /// Converts to a `Result`.
    pub fn into_result(self) -> Result<T, ErrorBody> {
        match self {
            Reply::Ok(value) => Ok(value),
            Reply::Error(error) => Err(error),
        }
    }

    /// Whether this is `ok`.
    pub fn is_ok(&self) -> bool {
        matches!(self, Reply::Ok(_))
    }
}

impl<T> From<Result<T, ErrorBody>> for Reply<T> {
    fn from(result: Result<T, ErrorBody>) -> Self {
        match result {
            Ok(value) => Reply::Ok(value),
            Err(error) => Reply::Error(error),
        }
    }
}

/// Ties a request type to its verb (and so its subject) and its reply type,
/// so a client can write one generic `request::<R: ControlCall>(node, &req)`.
pub trait ControlCall: Serialize + DeserializeOwned {
    /// The verb, i.e. the last subject token.
    const VERB: ControlVerb;
    /// The `ok` payload of a reply message (for `logs`, of each message).
    type Reply: Serialize + DeserializeOwned;

    /// The domain the request is about: it is sent on the domain's own
    /// subject ([`crate::Names::ctl_for`]).
    fn domain(&self) -> Option<&crate::name::Domain> {
        None
    }
}

impl ControlCall for PingRequest {
    const VERB: ControlVerb = ControlVerb::Ping;
    type Reply = PingReply;
}

impl ControlCall for StatusRequest {
    const VERB: ControlVerb = ControlVerb::Status;
    type Reply = StatusReply;
    fn domain(&self) -> Option<&crate::name::Domain> {
        self.domain.as_ref()
    }
}

impl ControlCall for ServicesRequest {
    const VERB: ControlVerb = ControlVerb::Services;
    type Reply = ServicesReply;
    fn domain(&self) -> Option<&crate::name::Domain> {
        Some(&self.domain)
    }
}

impl ControlCall for VersionsRequest {
    const VERB: ControlVerb = ControlVerb::Versions;
    type Reply = VersionsReply;
    fn domain(&self) -> Option<&crate::name::Domain> {
        Some(&self.domain)
    }
}

impl ControlCall for BackupsRequest {
    const VERB: ControlVerb = ControlVerb::Backups;
    type Reply = BackupsReply;
    fn domain(&self) -> Option<&crate::name::Domain> {
        Some(&self.domain)
    }
}

impl ControlCall for EnvRequest {
    const VERB: ControlVerb = ControlVerb::Env;
    type Reply = EnvReply;
    fn domain(&self) -> Option<&crate::name::Domain> {
        Some(&self.domain)
    }
}

impl ControlCall for ImportsRequest {
    const VERB: ControlVerb = ControlVerb::Imports;
    type Reply = ImportsReply;
}

impl ControlCall for LogsRequest {
    const VERB: ControlVerb = ControlVerb::Logs;
    type Reply = LogChunk;
    fn domain(&self) -> Option<&crate::name::Domain> {
        Some(&self.domain)
    }
}

#[cfg(test)]
mod tests;
