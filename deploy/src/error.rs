//! The one error type of stack operations, with its stable wire code and hint.

use crate::cgroup::CgroupError;
use crate::compose::ComposeError;
use crate::convert::ConvertError;
use crate::docker::DockerError;
use crate::domain_dir::DomainDirError;
use crate::engine::health::NotReady;
use crate::engine::hooks::HookFailure;
use crate::images::ImageError;
use crate::policy::PolicyDenied;
use crate::proxy::ProxyError;

/// A service that did not become ready, with what it last printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceFailure {
    /// Service name.
    pub service: String,
    /// Why it is not ready.
    pub reason: FailureReason,
    /// Last log lines of the failing container (empty if it never started).
    pub log_tail: Vec<String>,
}

/// Why a service failed the gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureReason {
    /// A replica did not reach readiness.
    NotReady(NotReady),
    /// A service it depends on failed first.
    DependencyFailed { dependency: String },
}

impl std::fmt::Display for ServiceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.reason {
            FailureReason::NotReady(n) => write!(f, "{}: {n}", self.service),
            FailureReason::DependencyFailed { dependency } => {
                write!(
                    f,
                    "{}: not started, dependency {dependency} failed",
                    self.service
                )
            }
        }
    }
}

/// Why a stack operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The compose file cannot be deployed as written.
    #[error(transparent)]
    Compose(#[from] ComposeError),
    /// The compose file asks for something the host's policy denies.
    #[error(transparent)]
    Policy(#[from] PolicyDenied),
    /// Images could not be made available.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The engine failed.
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// nginx rejected or could not load the configuration.
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    /// Services did not become ready (healthy, running or completed) in time.
    #[error("health gate failed: {}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    HealthGate { failures: Vec<ServiceFailure> },
    /// A `pre_start` or `post_start` hook failed: the service's replica did
    /// not start.
    #[error(transparent)]
    Hook(#[from] HookFailure),
    /// The node's engine is too old for something the stack uses.
    #[error(
        "{what} needs Docker Engine {engine_needed} (API {api_needed}) or newer; this node's engine speaks API {api}"
    )]
    EngineTooOld {
        /// What needs it (`services.web.volumes[0]: a `type: image` mount`).
        what: String,
        /// The engine release that brought it.
        engine_needed: &'static str,
        /// The API version that brought it.
        api_needed: &'static str,
        /// The API version the node's engine speaks.
        api: String,
    },
    /// The domain's port block has no free port left.
    #[error("the port block {start}..{end} of {domain} has no free port left ({needed} needed)")]
    PortsExhausted {
        domain: String,
        start: u16,
        end: u32,
        needed: usize,
    },
    /// An operation named a service the stack does not have.
    #[error("the stack has no service {service}")]
    UnknownService { service: String },
    /// The stack's budget could not be applied to its parent cgroup.
    #[error(transparent)]
    Limits(#[from] CgroupError),
    /// A file in the domain directory could not be used.
    #[error(transparent)]
    DomainDir(#[from] DomainDirError),
    /// A bug in HostKit (a task panicked).
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl DeployError {
    /// Stable wire code of this error.
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        match self {
            DeployError::Compose(e) => e.code(),
            DeployError::Policy(e) => e.code(),
            DeployError::Image(e) => e.code(),
            DeployError::Docker(e) => e.code(),
            DeployError::Proxy(e) => e.code(),
            DeployError::HealthGate { .. } => hostkit_proto::ErrorCode::HealthTimeout,
            DeployError::Hook(_) => hostkit_proto::ErrorCode::HealthFailed,
            DeployError::EngineTooOld { .. } => hostkit_proto::ErrorCode::ComposeUnsupported,
            DeployError::PortsExhausted { .. } => hostkit_proto::ErrorCode::PortsExhausted,
            DeployError::UnknownService { .. } => hostkit_proto::ErrorCode::JobInvalid,
            DeployError::DomainDir(e) => match e {
                DomainDirError::Symlink { .. } | DomainDirError::Outside { .. } => {
                    hostkit_proto::ErrorCode::PolicyDenied
                }
                DomainDirError::Io { .. } => hostkit_proto::ErrorCode::Internal,
                _ => hostkit_proto::ErrorCode::ComposeInvalid,
            },
            DeployError::Limits(e) => e.code(),
            DeployError::Internal { .. } => hostkit_proto::ErrorCode::Internal,
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> String {
        match self {
            DeployError::Compose(e) => e
                .hint()
                .unwrap_or("fix the compose file; see the supported keys in the README")
                .into(),
            DeployError::Policy(_) => "each denial names its rule; change the compose file or the worker's policy".into(),
            DeployError::Image(e) => e.hint().into(),
            DeployError::Docker(_) => "is the Docker Engine running on this host?".into(),
            DeployError::Proxy(e) => e.hint().into(),
            DeployError::HealthGate { .. } => {
                "check the services' logs (hostkit compose logs) and their healthchecks; raise --health-timeout if they are just slow".into()
            }
            DeployError::Hook(_) => {
                "the hook's exit status and last output are in the message; fix its command (it runs with the service's user, working directory and environment unless it sets its own)".into()
            }
            DeployError::EngineTooOld { .. } => {
                "upgrade the node's Docker Engine, or do without the feature (for a `type: image` mount: copy the files into a named volume or the service's own image)".into()
            }
            DeployError::PortsExhausted { .. } => {
                "fewer replicas or published ports, or a larger port block in the worker config".into()
            }
            DeployError::UnknownService { .. } => "see `hostkit compose services` for the stack's services".into(),
            DeployError::DomainDir(_) => "files HostKit reads or mounts in the domain directory must be regular files or directories, not links, FIFOs or huge files".into(),
            DeployError::Limits(e) => e.hint().into(),
            DeployError::Internal { .. } => "see the worker's log on the node".into(),
        }
    }
}

impl From<ConvertError> for DeployError {
    fn from(e: ConvertError) -> Self {
        match e {
            ConvertError::Image(e) => DeployError::Image(e),
            ConvertError::Compose(e) => DeployError::Compose(e),
        }
    }
}
