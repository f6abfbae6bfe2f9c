//! `services`: the services of a domain's stack and their replicas.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::name::Domain;

/// `services` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServicesRequest {
    /// The domain.
    pub domain: Domain,
}

/// `services` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServicesReply {
    /// The domain.
    pub domain: Domain,
    /// One entry per service (sorted by name).
    pub services: Vec<ServiceStatus>,
}

/// One service of a stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServiceStatus {
    /// The exact compose service name.
    pub service: String,
    /// The image reference the service runs.
    pub image: String,
    /// The stack version its containers belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<u32>,
    /// Its replicas (sorted by number).
    pub replicas: Vec<ReplicaStatus>,
}

/// One replica (container) of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReplicaStatus {
    /// Replica number (`<project>-<service>-<number>`).
    pub number: u32,
    /// Container name.
    pub container: String,
    /// Docker container state.
    pub state: ContainerState,
    /// Healthcheck state, when the container has a healthcheck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthState>,
    /// Published ports.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

/// Docker container state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContainerState {
    /// Created, never started.
    Created,
    /// Running.
    Running,
    /// Paused.
    Paused,
    /// Being restarted by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Exited.
    Exited,
    /// Dead (failed removal).
    Dead,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

impl ContainerState {
    /// The state of Docker's word for it (`State.Status`); a word this build
    /// does not know is [`ContainerState::Unknown`].
    pub fn from_engine(word: &str) -> ContainerState {
        match word {
            "created" => ContainerState::Created,
            "running" => ContainerState::Running,
            "paused" => ContainerState::Paused,
            "restarting" => ContainerState::Restarting,
            "removing" => ContainerState::Removing,
            "exited" => ContainerState::Exited,
            "dead" => ContainerState::Dead,
            _ => ContainerState::Unknown,
        }
    }

    /// The wire string (`"running"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Paused => "paused",
            ContainerState::Restarting => "restarting",
            ContainerState::Removing => "removing",
            ContainerState::Exited => "exited",
            ContainerState::Dead => "dead",
            ContainerState::Unknown => "unknown",
        }
    }
}

/// Docker healthcheck state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum HealthState {
    /// Within the start period, not yet healthy.
    Starting,
    /// Healthy.
    Healthy,
    /// Unhealthy.
    Unhealthy,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

impl HealthState {
    /// The state of Docker's word for it (`State.Health.Status`); a word
    /// this build does not know is [`HealthState::Unknown`].
    pub fn from_engine(word: &str) -> HealthState {
        match word {
            "starting" => HealthState::Starting,
            "healthy" => HealthState::Healthy,
            "unhealthy" => HealthState::Unhealthy,
            _ => HealthState::Unknown,
        }
    }

    /// The wire string (`"healthy"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Starting => "starting",
            HealthState::Healthy => "healthy",
            HealthState::Unhealthy => "unhealthy",
            HealthState::Unknown => "unknown",
        }
    }
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PortMapping {
    /// Port inside the container.
    pub container_port: u16,
    /// Protocol.
    #[serde(default)]
    pub protocol: PortProtocol,
    /// Host address it is bound to (normally `127.0.0.1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// Host port, when published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_port: Option<u16>,
}

/// A port's protocol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PortProtocol {
    /// TCP (the default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
    /// A value this build does not know.
    #[serde(other)]
    Unknown,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_str_is_the_wire_string() {
        use ContainerState as C;
        for state in [
            C::Created,
            C::Running,
            C::Paused,
            C::Restarting,
            C::Removing,
            C::Exited,
            C::Dead,
            C::Unknown,
        ] {
            assert_eq!(serde_json::json!(state), state.as_str());
            assert_eq!(ContainerState::from_engine(state.as_str()), state);
        }
        use HealthState as H;
        for health in [H::Starting, H::Healthy, H::Unhealthy, H::Unknown] {
            assert_eq!(serde_json::json!(health), health.as_str());
            assert_eq!(HealthState::from_engine(health.as_str()), health);
        }
    }
}
