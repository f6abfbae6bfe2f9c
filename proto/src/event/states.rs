//! Small vocabularies used inside events: [`ProgressUnit`] and [`ReplicaState`].
//!
//! Both deserialize values they do not know as `Unknown`, so an older reader
//! still accepts a newer worker's events.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What a `progress` event counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProgressUnit {
    /// Bytes (e.g. an image upload or load).
    Bytes,
    /// Items (e.g. services started, layers loaded).
    Items,
    /// A unit this build does not know.
    #[serde(other)]
    Unknown,
}

/// The lifecycle state of one replica, as reported by `service` events
/// during a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReplicaState {
    /// The container is being created.
    Creating,
    /// The container exists but has not been started.
    Created,
    /// The container has been started; health not yet known.
    Starting,
    /// Running (no healthcheck, or health not required yet).
    Running,
    /// Running and its healthcheck passes.
    Healthy,
    /// Running but its healthcheck fails.
    Unhealthy,
    /// Taken out of the proxy; finishing in-flight requests before removal.
    Draining,
    /// Being stopped.
    Stopping,
    /// Stopped (container kept).
    Stopped,
    /// Being removed.
    Removing,
    /// Removed.
    Removed,
    /// Exited on its own.
    Exited,
    /// A state this build does not know.
    #[serde(other)]
    Unknown,
}

impl ReplicaState {
    /// The wire string (`"healthy"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ReplicaState::Creating => "creating",
            ReplicaState::Created => "created",
            ReplicaState::Starting => "starting",
            ReplicaState::Running => "running",
            ReplicaState::Healthy => "healthy",
            ReplicaState::Unhealthy => "unhealthy",
            ReplicaState::Draining => "draining",
            ReplicaState::Stopping => "stopping",
            ReplicaState::Stopped => "stopped",
            ReplicaState::Removing => "removing",
            ReplicaState::Removed => "removed",
            ReplicaState::Exited => "exited",
            ReplicaState::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ReplicaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_tolerated() {
        assert_eq!(
            serde_json::from_str::<ReplicaState>("\"paused\"").unwrap(),
            ReplicaState::Unknown
        );
        assert_eq!(
            serde_json::from_str::<ProgressUnit>("\"seconds\"").unwrap(),
            ProgressUnit::Unknown
        );
        assert_eq!(
            serde_json::to_string(&ProgressUnit::Bytes).unwrap(),
            "\"bytes\""
        );
        let state = ReplicaState::Draining;
        assert_eq!(
            serde_json::to_string(&state).unwrap(),
            format!("\"{state}\"")
        );
    }
}
