//! [`EventKind`]: the `kind` of an event and its kind-specific fields.
//!
//! Serialized internally tagged: `{"kind": "step", "name": "…", "message": "…"}`,
//! flattened into the [`Event`](super::Event). A kind this build does not know
//! deserializes as [`EventKind::Unknown`] with its fields preserved (and
//! serializes back unchanged), so a dashboard keeps working when workers are
//! newer than it.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::states::{ProgressUnit, ReplicaState};
use crate::error::{ErrorBody, ErrorCode};
use crate::job::{JobId, JobKind};
use crate::name::Domain;

/// Which family an event belongs to (and so which subject it is published on).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventCategory {
    /// About one job: `<root>.events.<dtoken>.job.<job_id>`.
    Job,
    /// About a service's containers: `<root>.events.<dtoken>.health.<service>`.
    Health,
    /// About a domain's TLS certificate: `<root>.events.<dtoken>.tls`.
    Tls,
    /// About a worker: `<root>.nodes.<node>.<kind>`.
    Node,
    /// A kind this build does not know.
    Unknown,
}

/// The kind-specific part of an [`Event`](super::Event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(remote = "Self", tag = "kind", rename_all = "snake_case")]
#[schemars(rename = "EventKind")]
#[non_exhaustive]
pub enum EventKind {
    // --- job events --------------------------------------------------------
    /// The job is recorded and waits for its domain's lane.
    Queued {
        /// Jobs ahead of it in the lane (0 = next).
        position: u32,
    },
    /// The job started running.
    Started {
        /// The job's kind.
        job_kind: JobKind,
    },
    /// A step of the job began or reported something.
    Step {
        /// Stable step name (`load_images`, `start_services`, `switch_proxy`, …).
        name: String,
        /// Human message (never contains secrets).
        message: String,
    },
    /// Progress of a long step.
    Progress {
        /// What is progressing (e.g. `image sha256-…`).
        what: String,
        /// Done so far.
        done: u64,
        /// Total, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        total: Option<u64>,
        /// Unit of `done` and `total`.
        unit: ProgressUnit,
    },
    /// A replica of a service changed state during the job.
    Service {
        /// The exact compose service name.
        service: String,
        /// Replica number (1-based, as in `<project>-<service>-<n>`).
        replica: u32,
        /// The new state.
        state: ReplicaState,
    },
    /// Something the operator should know that does not fail the job.
    Warning {
        /// Human message.
        message: String,
        /// Machine-readable warning code (e.g. `compose.container_name`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    /// Output of a one-off command (`exec`), a batch of lines.
    Output {
        /// `stdout` or `stderr`.
        stream: String,
        /// The lines, without their line ends (each at most 4 KiB).
        lines: Vec<String>,
    },
    /// Terminal: the job succeeded.
    Succeeded {
        /// The domain's current version after the job (absent when the domain
        /// has none, e.g. after `remove`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<u32>,
        /// How long the job ran, in milliseconds.
        duration_ms: u64,
    },
    /// Terminal: the job failed.
    Failed {
        /// Stable error code.
        code: ErrorCode,
        /// Human message (never contains secrets).
        message: String,
        /// What to do about it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        /// The version auto-rollback restored, if it did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rolled_back_to: Option<u32>,
        /// The exit status of a one-off command that failed (`exec.failed`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i64>,
    },
    /// Terminal: a newer deploy for the same domain replaced this job before it ran.
    Superseded {
        /// The job that replaced it.
        by: JobId,
    },

    // --- health events -----------------------------------------------------
    /// A container's healthcheck passes.
    Healthy {
        /// The exact compose service name.
        service: String,
        /// Replica number, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        /// Container name.
        container: String,
    },
    /// A container's healthcheck fails.
    Unhealthy {
        /// The exact compose service name.
        service: String,
        /// Replica number, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        /// Container name.
        container: String,
    },
    /// A container exited.
    Exited {
        /// The exact compose service name.
        service: String,
        /// Replica number, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        /// Container name.
        container: String,
        /// Exit code, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i64>,
    },
    /// A container was killed for running out of memory.
    Oom {
        /// The exact compose service name.
        service: String,
        /// Replica number, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        /// Container name.
        container: String,
    },
    /// Docker is restarting a container (restart policy).
    Restarting {
        /// The exact compose service name.
        service: String,
        /// Replica number, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        replica: Option<u32>,
        /// Container name.
        container: String,
    },

    // --- tls events --------------------------------------------------------
    /// The worker obtained (or renewed) the domain's certificate over ACME;
    /// nginx serves it from now on.
    CertificateIssued {
        /// The names it covers: the domain first, then its redirect domains.
        names: Vec<Domain>,
        /// When it expires (UTC).
        not_after: DateTime<Utc>,
        /// It replaces a certificate HostKit had obtained before.
        renewal: bool,
    },
    /// Obtaining or renewing the domain's certificate failed; plain HTTP
    /// (or the certificate in use) keeps serving and the worker tries again.
    CertificateFailed {
        /// Stable error code (`tls.challenge_failed`, `tls.rate_limited`, `tls.failed`).
        code: ErrorCode,
        /// Human message.
        message: String,
        /// What to do about it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hint: Option<String>,
        /// Seconds until the next attempt.
        retry_in_secs: u64,
    },

    // --- node events -------------------------------------------------------
    /// Periodic liveness and load report of a worker.
    Heartbeat {
        /// Worker version.
        version: String,
        /// Domains the worker hosts.
        domains: Vec<Domain>,
        /// Jobs running now.
        running_jobs: u32,
        /// Jobs delivered and waiting in lanes.
        queue_depth: u32,
        /// How many lanes may run at once.
        capacity: u32,
    },
    /// The worker connected and is taking jobs.
    Online {
        /// Worker version.
        version: String,
    },
    /// The worker is shutting down (published best effort).
    Offline {},

    /// A kind this build does not know (from a newer worker): its `kind` and
    /// its other fields, kept as they were. Never produced by this build.
    #[serde(skip)]
    Unknown {
        /// The `kind` string.
        kind: String,
        /// Every other field that was not one of [`Event`](super::Event)'s own.
        fields: Map<String, Value>,
    },
}

impl EventKind {
    /// Every kind string this build knows.
    pub const KINDS: &'static [&'static str] = &[
        "queued",
        "started",
        "step",
        "progress",
        "service",
        "warning",
        "output",
        "succeeded",
        "failed",
        "superseded",
        "healthy",
        "unhealthy",
        "exited",
        "oom",
        "restarting",
        "certificate_issued",
        "certificate_failed",
        "heartbeat",
        "online",
        "offline",
    ];

    /// The `kind` string.
    pub fn kind_str(&self) -> &str {
        match self {
            EventKind::Queued { .. } => "queued",
            EventKind::Started { .. } => "started",
            EventKind::Step { .. } => "step",
            EventKind::Progress { .. } => "progress",
            EventKind::Service { .. } => "service",
            EventKind::Warning { .. } => "warning",
            EventKind::Output { .. } => "output",
            EventKind::Succeeded { .. } => "succeeded",
            EventKind::Failed { .. } => "failed",
            EventKind::Superseded { .. } => "superseded",
            EventKind::Healthy { .. } => "healthy",
            EventKind::Unhealthy { .. } => "unhealthy",
            EventKind::Exited { .. } => "exited",
            EventKind::Oom { .. } => "oom",
            EventKind::Restarting { .. } => "restarting",
            EventKind::CertificateIssued { .. } => "certificate_issued",
            EventKind::CertificateFailed { .. } => "certificate_failed",
            EventKind::Heartbeat { .. } => "heartbeat",
            EventKind::Online { .. } => "online",
            EventKind::Offline {} => "offline",
            EventKind::Unknown { kind, .. } => kind,
        }
    }

    /// The family of this kind.
    pub fn category(&self) -> EventCategory {
        match self {
            EventKind::Queued { .. }
            | EventKind::Started { .. }
            | EventKind::Step { .. }
            | EventKind::Progress { .. }
            | EventKind::Service { .. }
            | EventKind::Warning { .. }
            | EventKind::Output { .. }
            | EventKind::Succeeded { .. }
            | EventKind::Failed { .. }
            | EventKind::Superseded { .. } => EventCategory::Job,
            EventKind::Healthy { .. }
            | EventKind::Unhealthy { .. }
            | EventKind::Exited { .. }
            | EventKind::Oom { .. }
            | EventKind::Restarting { .. } => EventCategory::Health,
            EventKind::CertificateIssued { .. } | EventKind::CertificateFailed { .. } => {
                EventCategory::Tls
            }
            EventKind::Heartbeat { .. } | EventKind::Online { .. } | EventKind::Offline {} => {
                EventCategory::Node
            }
            EventKind::Unknown { .. } => EventCategory::Unknown,
        }
    }

    /// Whether this ends a job: `succeeded`, `failed` or `superseded`. Every
    /// job ends in exactly one terminal event.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            EventKind::Succeeded { .. } | EventKind::Failed { .. } | EventKind::Superseded { .. }
        )
    }

    /// The service a health event is about (used for its subject).
    pub fn health_service(&self) -> Option<&str> {
        match self {
            EventKind::Healthy { service, .. }
            | EventKind::Unhealthy { service, .. }
            | EventKind::Exited { service, .. }
            | EventKind::Oom { service, .. }
            | EventKind::Restarting { service, .. } => Some(service),
            _ => None,
        }
    }

    /// A `failed` event from an error body.
    pub fn failed(error: ErrorBody, rolled_back_to: Option<u32>) -> Self {
        EventKind::Failed {
            code: error.code,
            message: error.message,
            hint: error.hint,
            rolled_back_to,
            exit_code: None,
        }
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            EventKind::Unknown { kind, fields } => {
                let mut map = serializer.serialize_map(None)?;
                map.serialize_entry("kind", kind)?;
                for (key, value) in fields.iter().filter(|(key, _)| *key != "kind") {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            // The inherent function generated by `#[serde(remote = "Self")]`.
            known => EventKind::serialize(known, serializer),
        }
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut fields = Map::<String, Value>::deserialize(deserializer)?;
        let kind = match fields.get("kind") {
            Some(Value::String(kind)) => kind.clone(),
            Some(_) => return Err(D::Error::custom("event `kind` must be a string")),
            None => return Err(D::Error::missing_field("kind")),
        };
        if EventKind::KINDS.contains(&kind.as_str()) {
            // The inherent function generated by `#[serde(remote = "Self")]`.
            EventKind::deserialize(Value::Object(fields)).map_err(D::Error::custom)
        } else {
            fields.remove("kind");
            Ok(EventKind::Unknown { kind, fields })
        }
    }
}
