//! What a job signature may authorize: each trusted key is bound to domain
//! patterns (`example.com`, `*.example.com`, `*`), and a signed job names
//! its node and expiry, so it cannot act on another tenant's domain, be
//! replayed on another node, or be replayed later (DESIGN §6).

use chrono::{DateTime, Duration, Utc};

use super::SignError;
use crate::job::Job;
pub use crate::name::DomainPattern;
use crate::name::{Domain, NodeId};

/// How long a job signed by the CLI is valid by default.
pub const DEFAULT_JOB_TTL: Duration = Duration::minutes(15);
/// The longest validity a worker accepts (`expires_at - created_at`).
pub const MAX_JOB_TTL: Duration = Duration::hours(24);
/// Clock difference tolerated between the signer and the worker.
pub const CLOCK_SKEW: Duration = Duration::minutes(2);

/// A public key a worker trusts, and the domains it may sign jobs for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedKey {
    /// The public nkey (`U…`).
    pub key: String,
    /// The domains it covers.
    pub domains: Vec<DomainPattern>,
}

impl TrustedKey {
    /// A key trusted for every domain.
    pub fn any_domain(key: impl Into<String>) -> Self {
        TrustedKey {
            key: key.into(),
            domains: vec![DomainPattern::Any],
        }
    }

    /// Whether the key may sign jobs for `domain`.
    pub fn covers(&self, domain: &Domain) -> bool {
        self.domains.iter().any(|p| p.matches(domain))
    }
}

/// Checks what a verified signature authorizes: the signer's key covers
/// the job's domain, the job names this node, and it is within its
/// validity (`created_at` not in the future, `expires_at` not past and at
/// most [`MAX_JOB_TTL`] after `created_at`, with [`CLOCK_SKEW`] of slack).
pub fn check_claims(
    job: &Job,
    trusted: &[TrustedKey],
    node: &NodeId,
    now: DateTime<Utc>,
) -> Result<(), SignError> {
    let Some(signature) = &job.signature else {
        return Err(SignError::MissingSignature);
    };
    let key = trusted
        .iter()
        .find(|k| k.key == signature.key)
        .ok_or_else(|| SignError::UntrustedKey {
            key: signature.key.clone(),
        })?;
    if !key.covers(&job.domain) {
        return Err(SignError::OutOfScope {
            key: key.key.clone(),
            domain: job.domain.to_string(),
        });
    }
    match &job.node {
        Some(n) if n == node => {}
        Some(n) => {
            return Err(SignError::Claim {
                reason: format!("it was signed for node {n}, not this node {node}"),
            });
        }
        None => {
            return Err(SignError::Claim {
                reason: "it names no node (sign it with a current hostkit CLI)".into(),
            });
        }
    }
    let Some(expires_at) = job.expires_at else {
        return Err(SignError::Claim {
            reason: "it has no expiry (sign it with a current hostkit CLI)".into(),
        });
    };
    if job.created_at > now + CLOCK_SKEW {
        return Err(SignError::Claim {
            reason: format!(
                "it was issued in the future ({})",
                job.created_at.to_rfc3339()
            ),
        });
    }
    if expires_at - job.created_at > MAX_JOB_TTL {
        return Err(SignError::Claim {
            reason: format!(
                "it is valid for longer than {} hours",
                MAX_JOB_TTL.num_hours()
            ),
        });
    }
    if now > expires_at + CLOCK_SKEW {
        return Err(SignError::Claim {
            reason: format!("it expired at {}", expires_at.to_rfc3339()),
        });
    }
    Ok(())
}
