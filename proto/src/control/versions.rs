//! `versions`: the recorded versions of a domain's stack.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::JobId;
use crate::name::Domain;

/// `versions` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionsRequest {
    /// The domain.
    pub domain: Domain,
}

/// `versions` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionsReply {
    /// The domain.
    pub domain: Domain,
    /// Its versions, newest first.
    pub versions: Vec<VersionInfo>,
}

/// One recorded version of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VersionInfo {
    /// Version number (1, 2, …).
    pub version: u32,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
    /// The job that created it.
    pub job_id: JobId,
    /// Resolved image id (`sha256:…`) per service name.
    pub images: BTreeMap<String, String>,
    /// Whether it can still be rolled back to.
    pub status: VersionStatus,
    /// Whether it is the version running now.
    pub current: bool,
}

/// The state of a recorded version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VersionStatus {
    /// Deployed successfully; its images are kept, so it can be rolled back to.
    Deployed,
    /// Its deploy failed the health gate (kept for inspection; not a rollback target).
    Failed,
    /// Beyond retention: its record is kept, its images are gone.
    Pruned,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

impl VersionStatus {
    /// The wire string (`"deployed"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Deployed => "deployed",
            VersionStatus::Failed => "failed",
            VersionStatus::Pruned => "pruned",
            VersionStatus::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_string() {
        use VersionStatus as V;
        for status in [V::Deployed, V::Failed, V::Pruned, V::Unknown] {
            assert_eq!(serde_json::json!(status), status.as_str());
        }
    }
}
