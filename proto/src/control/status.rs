//! `ping` and `status`: is the worker there, and how are its domains.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::{JobId, JobKind};
use crate::name::{Domain, NodeId};

/// `ping` request (empty object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PingRequest {}

/// `ping` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PingReply {
    /// The worker's node id.
    pub node: NodeId,
    /// The worker's version.
    pub version: String,
    /// Seconds since the worker started.
    pub uptime_secs: u64,
}

/// `status` request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusRequest {
    /// Only this domain; absent = every domain on the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<Domain>,
}

/// `status` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StatusReply {
    /// The worker's node id.
    pub node: NodeId,
    /// The worker's version.
    pub version: String,
    /// One entry per domain (sorted by domain).
    pub domains: Vec<DomainStatus>,
}

/// The state of one domain on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DomainStatus {
    /// The domain.
    pub domain: Domain,
    /// Its current version, if it has been deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Overall health of its stack.
    pub health: DomainHealth,
    /// The most recent job for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_job: Option<LastJob>,
}

/// Overall health of a domain's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DomainHealth {
    /// Every replica runs and is healthy.
    Healthy,
    /// Some replicas are unhealthy or not running.
    Degraded,
    /// No replica of the main service is healthy.
    Unhealthy,
    /// Containers are starting (health not yet known).
    Starting,
    /// The stack is stopped.
    Stopped,
    /// No stack is deployed (never deployed, or removed).
    NotDeployed,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

impl DomainHealth {
    /// The wire string (`"healthy"`, `"not_deployed"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            DomainHealth::Healthy => "healthy",
            DomainHealth::Degraded => "degraded",
            DomainHealth::Unhealthy => "unhealthy",
            DomainHealth::Starting => "starting",
            DomainHealth::Stopped => "stopped",
            DomainHealth::NotDeployed => "not_deployed",
            DomainHealth::Unknown => "unknown",
        }
    }
}

/// The most recent job of a domain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LastJob {
    /// Its id.
    pub id: JobId,
    /// Its kind.
    pub kind: JobKind,
    /// Where it stands.
    pub outcome: JobOutcome,
    /// When it ended (absent while queued or running).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobOutcome {
    /// Recorded, waiting for its lane.
    Queued,
    /// Running.
    Running,
    /// Ended with `succeeded`.
    Succeeded,
    /// Ended with `failed`.
    Failed,
    /// Ended with `superseded`.
    Superseded,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

impl JobOutcome {
    /// The wire string (`"succeeded"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobOutcome::Queued => "queued",
            JobOutcome::Running => "running",
            JobOutcome::Succeeded => "succeeded",
            JobOutcome::Failed => "failed",
            JobOutcome::Superseded => "superseded",
            JobOutcome::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_string() {
        use DomainHealth as D;
        for health in [
            D::Healthy,
            D::Degraded,
            D::Unhealthy,
            D::Starting,
            D::Stopped,
            D::NotDeployed,
            D::Unknown,
        ] {
            assert_eq!(serde_json::json!(health), health.as_str());
        }
        use JobOutcome as J;
        for outcome in [
            J::Queued,
            J::Running,
            J::Succeeded,
            J::Failed,
            J::Superseded,
            J::Unknown,
        ] {
            assert_eq!(serde_json::json!(outcome), outcome.as_str());
        }
    }
}
