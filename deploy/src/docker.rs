//! Connecting to the Docker Engine, and the error every engine call maps to.

use std::time::Duration;

use bollard::Docker;

/// How long an ordinary engine call may take before it is abandoned.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// The Docker Engine could not be reached or refused a call.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    /// No engine answered at the socket.
    #[error("the Docker Engine at {socket} is not answering")]
    Unavailable {
        socket: String,
        #[source]
        source: bollard::errors::Error,
    },
    /// The engine answered with an error for an operation.
    #[error("Docker Engine call failed: {operation}")]
    Call {
        operation: String,
        #[source]
        source: bollard::errors::Error,
    },
}

impl DockerError {
    /// Stable wire code (`docker.unavailable`).
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        hostkit_proto::ErrorCode::DockerUnavailable
    }

    /// Wrap an engine error with the operation that failed.
    pub fn call(operation: impl Into<String>, source: bollard::errors::Error) -> Self {
        DockerError::Call {
            operation: operation.into(),
            source,
        }
    }
}

/// Connect to the local engine (`DOCKER_HOST` or `/var/run/docker.sock`) and
/// negotiate the API version, so engines as old as API 1.41 work.
pub async fn connect() -> Result<Docker, DockerError> {
    let socket =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let unavailable = |source| DockerError::Unavailable {
        socket: socket.clone(),
        source,
    };
    let docker = Docker::connect_with_socket_defaults().map_err(unavailable)?;
    let docker = docker.negotiate_version().await.map_err(unavailable)?;
    docker.ping().await.map_err(unavailable)?;
    Ok(docker)
}

/// Whether an engine error means "no such object" (HTTP 404).
pub fn is_not_found(error: &bollard::errors::Error) -> bool {
    matches!(
        error,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
