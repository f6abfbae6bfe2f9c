//! Watching what runs: the engine's container events for HostKit's stacks
//! (health changes, exits, OOM kills, restarts), and a container's logs.

use std::collections::HashMap;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::query_parameters::{EventsOptionsBuilder, LogsOptionsBuilder};
use futures_util::{Stream, StreamExt};

use super::labels;
use crate::docker::DockerError;

/// What happened to a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HealthChange {
    /// Its healthcheck passes.
    Healthy,
    /// Its healthcheck fails.
    Unhealthy,
    /// It exited.
    Exited { exit_code: Option<i64> },
    /// The kernel killed it for memory.
    Oom,
    /// The engine restarted it.
    Restarting,
}

/// One observed change of a HostKit container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The domain (exact name) from the container's labels.
    pub domain: String,
    /// The service.
    pub service: String,
    /// Replica number.
    pub replica: Option<u32>,
    /// Container name.
    pub container: String,
    /// What happened.
    pub change: HealthChange,
}

/// The engine's event stream, reduced to changes of HostKit containers.
/// Errors end the stream (the caller re-subscribes).
pub fn watch(docker: &Docker) -> impl Stream<Item = Result<Observed, DockerError>> + use<> {
    let filters = HashMap::from([
        ("type".to_string(), vec!["container".to_string()]),
        (
            "label".to_string(),
            vec![labels::filter(labels::MANAGED, "true")],
        ),
        (
            "event".to_string(),
            vec![
                "health_status".into(),
                "die".into(),
                "oom".into(),
                "restart".into(),
            ],
        ),
    ]);
    let options = EventsOptionsBuilder::default().filters(&filters).build();
    docker.events(Some(options)).filter_map(|item| async move {
        match item {
            Err(e) => Some(Err(DockerError::call("watch engine events", e))),
            Ok(event) => observed(event).map(Ok),
        }
    })
}

fn observed(event: bollard::models::EventMessage) -> Option<Observed> {
    let action = event.action?;
    let attributes = event.actor?.attributes.unwrap_or_default();
    let change = match action.as_str() {
        "health_status: healthy" => HealthChange::Healthy,
        "health_status: unhealthy" => HealthChange::Unhealthy,
        "die" => HealthChange::Exited {
            exit_code: attributes.get("exitCode").and_then(|c| c.parse().ok()),
        },
        "oom" => HealthChange::Oom,
        "restart" => HealthChange::Restarting,
        _ => return None,
    };
    Some(Observed {
        domain: attributes.get(labels::DOMAIN)?.clone(),
        service: attributes.get(labels::SERVICE)?.clone(),
        replica: attributes
            .get(labels::CONTAINER_NUMBER)
            .and_then(|n| n.parse().ok()),
        container: attributes.get("name").cloned().unwrap_or_default(),
        change,
    })
}

/// A line a container wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `true` for stderr.
    pub stderr: bool,
    /// The text, without its newline.
    pub text: String,
}

/// The last `tail` lines of a container and, with `follow`, what it writes
/// next, line by line (never buffering the whole log).
pub fn logs(
    docker: &Docker,
    container: &str,
    tail: u32,
    follow: bool,
) -> impl Stream<Item = LogLine> + use<> {
    let options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .follow(follow)
        .tail(&tail.to_string())
        .build();
    docker
        .logs(container, Some(options))
        .take_while(|item| std::future::ready(item.is_ok()))
        .filter_map(|item| async move {
            let (stderr, bytes) = match item.ok()? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => (false, message),
                LogOutput::StdErr { message } => (true, message),
                LogOutput::StdIn { .. } => return None,
            };
            let text = String::from_utf8_lossy(&bytes).into_owned();
            Some(futures_util::stream::iter(
                text.lines()
                    .map(|l| LogLine {
                        stderr,
                        text: l.to_string(),
                    })
                    .collect::<Vec<_>>(),
            ))
        })
        .flatten()
}
