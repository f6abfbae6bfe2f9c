//! Optional job signatures with NATS nkeys (ed25519).
//!
//! The signed bytes are the job's *canonical bytes*: the job JSON parsed as a
//! generic value, its top-level `signature` field removed, serialized with
//! object keys sorted recursively (byte order) and no whitespace (see
//! [`canonical_job_bytes`]). The signature is stored in the job as
//! `"signature": {"key": "<public nkey, U…>", "sig": "<base64 ed25519>"}`.
//!
//! A worker with signing on calls [`verify_job_bytes`] on the raw message
//! bytes, so fields this version does not know are covered by the signature
//! too. Replaying a signed job is harmless: its id is recorded and a known
//! job only has its terminal event re-published.

mod canonical;
mod scope;
pub mod seal;

pub use scope::{
    CLOCK_SKEW, DEFAULT_JOB_TTL, DomainPattern, MAX_JOB_TTL, TrustedKey, check_claims,
};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

pub use nkeys::KeyPair;

use crate::error::ErrorCode;
use crate::job::{Job, Signature};

/// A job signature is missing, untrusted, wrong, or cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The job has no `signature`.
    #[error("the job is not signed")]
    MissingSignature,
    /// The job is signed by a key that is not in the trusted list.
    #[error("the job is signed by {key}, which is not a trusted key")]
    UntrustedKey {
        /// The signer's public key.
        key: String,
    },
    /// The signature does not match the job's bytes.
    #[error(
        "the job's signature by {key} does not verify (the job was altered or signed by another key)"
    )]
    BadSignature {
        /// The claimed signer's public key.
        key: String,
    },
    /// The signer's key is trusted, but not for the job's domain.
    #[error("the job for {domain} is signed by {key}, which is not trusted for that domain")]
    OutOfScope {
        /// The signer's public key.
        key: String,
        /// The job's domain.
        domain: String,
    },
    /// The signed claims do not hold here and now (node, expiry).
    #[error("the signed job is not valid here: {reason}")]
    Claim {
        /// Which claim failed.
        reason: String,
    },
    /// The job or its signature is not well-formed.
    #[error("cannot check the job's signature: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// Signing failed (e.g. the key pair has no seed).
    #[error("cannot sign the job: {reason}")]
    Signing {
        /// What nkeys reported.
        reason: String,
    },
}

impl SignError {
    /// The wire error code: `job.unauthorized` for a missing, untrusted or
    /// bad signature, `job.invalid` for a malformed job, `internal` otherwise.
    pub fn code(&self) -> ErrorCode {
        match self {
            SignError::MissingSignature
            | SignError::UntrustedKey { .. }
            | SignError::BadSignature { .. }
            | SignError::OutOfScope { .. }
            | SignError::Claim { .. } => ErrorCode::JobUnauthorized,
            SignError::Malformed { .. } => ErrorCode::JobInvalid,
            SignError::Signing { .. } => ErrorCode::Internal,
        }
    }
}

fn malformed(reason: impl Into<String>) -> SignError {
    SignError::Malformed {
        reason: reason.into(),
    }
}

/// The canonical bytes of a job given as raw JSON: what is signed and
/// verified. The top-level `signature` field is excluded.
pub fn canonical_job_bytes(raw: &[u8]) -> Result<Vec<u8>, SignError> {
    let value: Value = serde_json::from_slice(raw).map_err(|err| malformed(err.to_string()))?;
    canonical_without_signature(value)
}

fn canonical_without_signature(value: Value) -> Result<Vec<u8>, SignError> {
    let Value::Object(mut map) = value else {
        return Err(malformed("a job must be a JSON object"));
    };
    map.remove("signature");
    let mut out = Vec::new();
    canonical::write_canonical(&Value::Object(map), &mut out);
    Ok(out)
}

/// Signs `job` with `key`: sets `job.signature` to the key's public nkey
/// and the base64 ed25519 signature of the job's canonical bytes.
pub fn sign_job(job: &mut Job, key: &KeyPair) -> Result<(), SignError> {
    job.signature = None;
    let value = serde_json::to_value(&*job).map_err(|err| malformed(err.to_string()))?;
    let bytes = canonical_without_signature(value)?;
    let sig = key.sign(&bytes).map_err(|err| SignError::Signing {
        reason: err.to_string(),
    })?;
    job.signature = Some(Signature {
        key: key.public_key(),
        sig: STANDARD.encode(sig),
    });
    Ok(())
}

/// Verifies the signature of a raw received job against its raw bytes and
/// the `trusted` public keys, then parses it. Does not run
/// [`Job::validate`] nor [`check_claims`] (what the key may sign).
///
/// Errors: [`SignError::MissingSignature`], [`SignError::UntrustedKey`],
/// [`SignError::BadSignature`], or [`SignError::Malformed`] (not JSON, bad
/// signature encoding, or not a job).
pub fn verify_job_bytes(raw: &[u8], trusted: &[TrustedKey]) -> Result<Job, SignError> {
    let value: Value = serde_json::from_slice(raw).map_err(|err| malformed(err.to_string()))?;
    let Value::Object(map) = &value else {
        return Err(malformed("a job must be a JSON object"));
    };
    let signature = match map.get("signature") {
        None | Some(Value::Null) => return Err(SignError::MissingSignature),
        Some(signature) => Signature::deserialize_value(signature.clone())?,
    };
    if !trusted.iter().any(|k| k.key == signature.key) {
        return Err(SignError::UntrustedKey { key: signature.key });
    }
    let public = KeyPair::from_public_key(&signature.key)
        .map_err(|err| malformed(format!("signature key {:?}: {err}", signature.key)))?;
    let sig = STANDARD
        .decode(&signature.sig)
        .map_err(|err| malformed(format!("signature is not base64: {err}")))?;
    let bytes = canonical_without_signature(value.clone())?;
    public
        .verify(&bytes, &sig)
        .map_err(|_| SignError::BadSignature { key: signature.key })?;
    serde_json::from_value(value).map_err(|err| malformed(err.to_string()))
}

impl Signature {
    fn deserialize_value(value: Value) -> Result<Signature, SignError> {
        serde_json::from_value(value).map_err(|err| malformed(format!("signature: {err}")))
    }
}

#[cfg(test)]
mod tests;
