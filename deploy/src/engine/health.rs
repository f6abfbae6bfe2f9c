//! Waiting until a container is ready (started, healthy or completed) within
//! a deadline, and collecting the last log lines of one that is not.

use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::HealthStatusEnum;
use bollard::query_parameters::LogsOptionsBuilder;
use futures_util::StreamExt;
use hostkit_proto::control::{ContainerState, HealthState};
use tokio::time::Instant;

use crate::docker::DockerError;

/// How often a container's state is polled while waiting.
const POLL: Duration = Duration::from_millis(50);
/// How many log lines a failure report carries.
pub const LOG_TAIL_LINES: usize = 20;

/// What "ready" means for a container (compose's `depends_on` conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Readiness {
    /// Running.
    Started,
    /// Running and its healthcheck healthy (or running, without a healthcheck).
    Healthy,
    /// Exited with code 0.
    Completed,
}

/// Why a container did not become ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReady {
    /// Container name.
    pub container: String,
    /// Engine state when we gave up.
    pub state: ContainerState,
    /// Health status when we gave up, if it has a healthcheck.
    pub health: Option<HealthState>,
    /// Exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Whether it was killed for running out of memory.
    pub oom_killed: bool,
    /// Whether the deadline passed (rather than the container failing for sure).
    pub timed_out: bool,
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}", self.container, self.state.as_str())?;
        if let Some(health) = self.health {
            write!(f, " ({})", health.as_str())?;
        }
        if let Some(code) = self
            .exit_code
            .filter(|_| self.state == ContainerState::Exited)
        {
            write!(f, ", exit code {code}")?;
        }
        if self.oom_killed {
            write!(f, ", killed: out of memory")?;
        }
        Ok(())
    }
}

/// Poll `container` until it reaches `wanted` or `deadline` passes.
/// Fails early when it cannot get there any more (unhealthy, exited).
pub async fn wait_ready(
    docker: &Docker,
    container: &str,
    wanted: Readiness,
    deadline: Instant,
) -> Result<Result<(), NotReady>, DockerError> {
    loop {
        let inspect = docker
            .inspect_container(container, None)
            .await
            .map_err(|e| DockerError::call(format!("inspect container {container}"), e))?;
        let state = inspect.state.unwrap_or_default();
        let status = state.status.map(|s| s.to_string()).unwrap_or_default();
        let health = state.health.as_ref().and_then(|h| h.status);
        let running = state.running.unwrap_or(false) && !state.restarting.unwrap_or(false);
        let exit_code = state.exit_code;
        let exited = matches!(status.as_str(), "exited" | "dead");

        let ready = match wanted {
            Readiness::Started => running || (exited && exit_code == Some(0)),
            Readiness::Healthy => {
                running
                    && matches!(
                        health,
                        None | Some(
                            HealthStatusEnum::HEALTHY
                                | HealthStatusEnum::NONE
                                | HealthStatusEnum::EMPTY
                        )
                    )
            }
            Readiness::Completed => exited && exit_code == Some(0),
        };
        if ready {
            return Ok(Ok(()));
        }
        let hopeless = match wanted {
            Readiness::Completed => exited && exit_code != Some(0),
            _ => {
                (exited && !state.restarting.unwrap_or(false))
                    || health == Some(HealthStatusEnum::UNHEALTHY)
            }
        };
        let timed_out = Instant::now() >= deadline;
        if hopeless || timed_out {
            return Ok(Err(NotReady {
                container: container.to_string(),
                state: ContainerState::from_engine(&status),
                health: health
                    .map(|h| h.to_string())
                    .filter(|h| !h.is_empty())
                    .map(|h| HealthState::from_engine(&h)),
                exit_code,
                oom_killed: state.oom_killed.unwrap_or(false),
                timed_out: !hopeless,
            }));
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// The last `lines` lines a container wrote (stdout and stderr, in order).
pub async fn log_tail(docker: &Docker, container: &str, lines: usize) -> Vec<String> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .tail(&lines.to_string())
        .build();
    let mut stream = docker.logs(container, Some(options));
    let mut out = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        let bytes = match chunk {
            LogOutput::StdOut { message }
            | LogOutput::StdErr { message }
            | LogOutput::Console { message } => message,
            LogOutput::StdIn { .. } => continue,
        };
        out.extend(String::from_utf8_lossy(&bytes).lines().map(str::to_string));
    }
    let skip = out.len().saturating_sub(lines);
    out.split_off(skip)
}
