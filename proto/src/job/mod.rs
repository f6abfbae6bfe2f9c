//! [`Job`]: what CI and operators publish on `<root>.jobs.<node>.<dtoken>`.
//!
//! JSON shape (the kind and payload are top-level fields; `signature` only
//! when signed):
//!
//! ```json
//! {"schema":1,"id":"01J…","domain":"example.com","kind":"scale",
//!  "created_at":"2026-01-02T03:04:05Z","requested_by":"ci",
//!  "payload":{"service":"web","replicas":3}}
//! ```
//!
//! Unknown fields are ignored on read, at every level, so an older worker
//! reads a newer CLI's jobs (and rejects only a newer `schema`).

mod env;
mod id;
mod spec;
mod validate;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use env::Env;
pub use id::{InvalidJobId, JobId};
pub use spec::{
    BackupPayload, Blob, ComposeSource, DeployOptions, DeployPayload, DeploySource, EnvPayload,
    ExecPayload, ImageSource, ImportPayload, JobKind, JobSpec, LAYERED_FORMAT, LayerBlob,
    LayeredImage, LayeredImages, RemovePayload, RestartPayload, RestorePayload, RollbackPayload,
    ScalePayload, SingleImage, StartPayload, StopPayload,
};
pub use validate::{
    JobError, MAX_BACKUP_VOLUMES, MAX_COMPOSE_BYTES, MAX_ENV_VARS, MAX_EXEC_ARG_BYTES,
    MAX_EXEC_ARGS, MAX_EXEC_TIMEOUT_SECS, MAX_HEALTH_TIMEOUT_SECS, MAX_IMAGE_LAYERS,
    MAX_IMAGE_REFERENCE_LEN, MAX_LAYERED_IMAGES, MAX_PATH_LEN, MAX_REDIRECT_DOMAINS, MAX_REPLICAS,
    MAX_REQUESTED_BY_LEN, MAX_SERVICE_NAME_LEN, is_valid_env_key, is_valid_service_name,
};

use crate::name::Domain;

/// The job schema version this build writes and the newest it reads.
pub const JOB_SCHEMA: u32 = 1;

/// A job: one unit of work for the worker that hosts `domain`.
///
/// `Debug` never prints env values (see [`Env`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    description = "A HostKit job, published on <root>.jobs.<node>.<domain token> with Nats-Msg-Id = id. Readers ignore unknown fields and reject a schema newer than theirs."
)]
pub struct Job {
    /// Schema version (`JOB_SCHEMA` when written by this build).
    pub schema: u32,
    /// Unique id; also the message's `Nats-Msg-Id`.
    pub id: JobId,
    /// The domain the job acts on.
    pub domain: Domain,
    /// Kind (`kind`) and payload (`payload`), flattened into the job.
    #[serde(flatten)]
    pub spec: JobSpec,
    /// When the job was created (UTC, RFC 3339).
    pub created_at: DateTime<Utc>,
    /// Who asked for it (e.g. `github:org/repo@run-id`, `alice@laptop`). Informational.
    pub requested_by: String,
    /// The node the job is for. Set (and signed) by a signing CLI, so a
    /// signed job cannot be replayed on another node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<crate::name::NodeId>,
    /// When the job stops being valid (UTC). Set (and signed) by a signing
    /// CLI; a worker that requires signatures refuses a job without it or
    /// past it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// Optional nkey signature over the job's canonical bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<Signature>,
}

/// A job signature: the signer's public nkey and an ed25519 signature over
/// the job's canonical bytes (see [`crate::sign`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(
    description = "Signature: the signer's public nkey and a base64 ed25519 signature over the job's canonical bytes (the JSON without its top-level signature field, object keys sorted recursively, no whitespace)."
)]
pub struct Signature {
    /// The signer's public nkey (`U…` for a user key).
    pub key: String,
    /// Base64 (standard alphabet, padded) ed25519 signature.
    pub sig: String,
}

/// What can be read from a job that may not parse: enough to report a
/// `failed` event for a malformed job. Every field is best effort.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobPeek {
    /// The `id` field, if it is a valid job id.
    pub id: Option<JobId>,
    /// The `domain` field, if it is a valid domain.
    pub domain: Option<Domain>,
    /// The `kind` field, if it is a string.
    pub kind: Option<String>,
}

impl Job {
    /// A new, unsigned job with a fresh id, created now, at [`JOB_SCHEMA`].
    pub fn new(domain: Domain, spec: JobSpec, requested_by: impl Into<String>) -> Self {
        Job {
            schema: JOB_SCHEMA,
            id: JobId::new(),
            domain,
            spec,
            created_at: Utc::now(),
            requested_by: requested_by.into(),
            node: None,
            expires_at: None,
            signature: None,
        }
    }

    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        self.spec.kind()
    }

    /// Checks every rule a well-formed job must satisfy beyond its types:
    /// supported schema, non-empty `requested_by`, service names, replica
    /// bound, env variable names, compose size, image references and paths,
    /// health timeout range, version ≥ 1.
    pub fn validate(&self) -> Result<(), JobError> {
        validate::validate(self)
    }

    /// Parses a job from JSON and validates it. Does not check signatures
    /// (use [`crate::sign::verify_job_bytes`] when signing is on).
    pub fn from_slice(bytes: &[u8]) -> Result<Job, JobError> {
        let job: Job = serde_json::from_slice(bytes).map_err(|err| JobError::Malformed {
            reason: err.to_string(),
        })?;
        job.validate()?;
        Ok(job)
    }

    /// The job as compact JSON (what the CLI publishes).
    pub fn to_vec(&self) -> Vec<u8> {
        // Infallible: every map in a job has string keys and no type has a
        // failing `Serialize`.
        serde_json::to_vec(self).expect("a Job always serializes")
    }

    /// Reads whatever identifies a job from bytes that may not be a valid
    /// job, so a malformed job can still be answered with a `failed` event.
    pub fn peek(bytes: &[u8]) -> JobPeek {
        let Ok(serde_json::Value::Object(map)) = serde_json::from_slice::<serde_json::Value>(bytes)
        else {
            return JobPeek::default();
        };
        let text = |key: &str| map.get(key).and_then(|v| v.as_str());
        JobPeek {
            id: text("id").and_then(|s| s.parse().ok()),
            domain: text("domain").and_then(|s| s.parse().ok()),
            kind: text("kind").map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests;
