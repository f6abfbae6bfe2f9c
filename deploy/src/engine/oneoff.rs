//! One-off commands (`hostkit exec`, Compose's `run`): a new container of a
//! service's spec — its image, environment, user, mounts, networks, limits —
//! with another command, no published port and no restart policy; its
//! output is streamed as it comes, it is bounded in time, and it is removed
//! once it ended. It is not part of the stack: the inventory and the health
//! monitor ignore it (`com.docker.compose.oneoff=True`, no
//! `hostkit.managed`), and a leftover of a run that was cut short is
//! removed by the next run of the same service.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::RestartPolicy;
use bollard::query_parameters::{CreateContainerOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt;

use super::container::{self, join_first_network, join_other_networks};
use super::labels;
use super::spec::{ServiceSpec, StackSpec};
use crate::docker::DockerError;
use crate::error::DeployError;
use crate::progress::{OutputStream, Progress, ProgressSink};

/// Label of one-off containers; its value is the run's id (the job id).
pub const RUN_LABEL: &str = "hostkit.run";
/// Longest output line forwarded (longer ones are cut).
pub const LINE_MAX_BYTES: usize = 4096;
/// Lines sent in one report.
pub const BATCH_LINES: usize = 50;
/// Output forwarded per run; the rest is counted and dropped.
pub const OUTPUT_MAX_BYTES: usize = 1024 * 1024;

/// How a one-off command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// It exited with this status.
    Exited(i64),
    /// It was still running at its deadline and was killed.
    TimedOut,
}

/// Run `command` once in a new container of `service` (see the module
/// comment), reporting its output to `sink`, for at most `timeout`.
pub async fn run(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
    command: &[String],
    run_id: &str,
    timeout: Duration,
    sink: &dyn ProgressSink,
) -> Result<RunOutcome, DeployError> {
    remove_leftovers(docker, stack, service).await?;
    super::binds::guard(stack, service).await?;
    let id = create(docker, stack, service, command, run_id).await?;
    let ran = tokio::time::timeout(timeout, run_to_end(docker, &id, sink)).await;
    let outcome = match ran {
        Ok(Ok(code)) => Ok(RunOutcome::Exited(code)),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(RunOutcome::TimedOut),
    };
    container::remove(docker, &id, Some(Duration::ZERO)).await?;
    outcome
}

/// The container: the service's template with `command`, no ports, no
/// restart, the one-off labels.
async fn create(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
    command: &[String],
    run_id: &str,
) -> Result<String, DeployError> {
    let mut body = service.template.clone();
    body.image = Some(service.image_id.clone());
    body.cmd = Some(command.to_vec());
    body.healthcheck = None;
    body.exposed_ports = None;
    let mut all_labels = body.labels.take().unwrap_or_default();
    all_labels.extend(stack.labels.clone());
    all_labels.extend(HashMap::from([
        (labels::PROJECT.to_owned(), stack.project.clone()),
        (labels::SERVICE.to_owned(), service.name.clone()),
        (labels::ONEOFF.to_owned(), "True".to_owned()),
        (labels::DOMAIN.to_owned(), stack.domain.to_string()),
        (RUN_LABEL.to_owned(), run_id.to_owned()),
    ]));
    all_labels.remove(labels::MANAGED);
    body.labels = Some(all_labels);
    let host = body.host_config.get_or_insert_with(Default::default);
    host.port_bindings = None;
    host.restart_policy = Some(RestartPolicy::default());
    host.auto_remove = Some(false);
    join_first_network(&mut body, service, false);

    let short: String = run_id
        .chars()
        .rev()
        .take(8)
        .collect::<String>()
        .to_lowercase();
    let name = format!("{}-{}-run-{short}", stack.project, service.name);
    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = docker
        .create_container(Some(options), body)
        .await
        .map_err(|e| DockerError::call(format!("create the one-off container {name}"), e))?;
    join_other_networks(docker, &created.id, &name, service, false).await?;
    Ok(created.id)
}

/// Start the container, forward its output until it ends, and answer its
/// exit status.
async fn run_to_end(
    docker: &Docker,
    id: &str,
    sink: &dyn ProgressSink,
) -> Result<i64, DeployError> {
    container::start(docker, id).await?;
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut logs = docker.logs(id, Some(options));
    let mut out = Forwarder::new(sink);
    while let Some(chunk) = logs.next().await {
        match chunk {
            Ok(LogOutput::StdErr { message }) => out.push(OutputStream::Stderr, &message),
            Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                out.push(OutputStream::Stdout, &message)
            }
            Ok(LogOutput::StdIn { .. }) => {}
            // A logging driver without reads (`none`): no output to show.
            Err(_) => break,
        }
    }
    out.finish();
    let mut waits =
        docker.wait_container(id, None::<bollard::query_parameters::WaitContainerOptions>);
    let code = match waits.next().await {
        Some(Ok(response)) => response.status_code,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code,
        Some(Err(e)) => return Err(DockerError::call(format!("wait for container {id}"), e).into()),
        None => {
            let inspected = docker
                .inspect_container(id, None)
                .await
                .map_err(|e| DockerError::call(format!("inspect container {id}"), e))?;
            inspected.state.and_then(|s| s.exit_code).unwrap_or(-1)
        }
    };
    Ok(code)
}

/// Output → batches of lines per stream, each line at most
/// [`LINE_MAX_BYTES`], the whole at most [`OUTPUT_MAX_BYTES`].
struct Forwarder<'a> {
    sink: &'a dyn ProgressSink,
    stream: OutputStream,
    partial: Vec<u8>,
    lines: Vec<String>,
    sent: usize,
    dropped: usize,
}

impl<'a> Forwarder<'a> {
    fn new(sink: &'a dyn ProgressSink) -> Self {
        Forwarder {
            sink,
            stream: OutputStream::Stdout,
            partial: Vec::new(),
            lines: Vec::new(),
            sent: 0,
            dropped: 0,
        }
    }

    fn push(&mut self, stream: OutputStream, bytes: &[u8]) {
        if stream != self.stream {
            self.end_line();
            self.flush();
            self.stream = stream;
        }
        for &byte in bytes {
            if byte == b'\n' {
                self.end_line();
            } else if self.partial.len() < LINE_MAX_BYTES {
                self.partial.push(byte);
            }
        }
        if self.lines.len() >= BATCH_LINES {
            self.flush();
        }
    }

    fn end_line(&mut self) {
        if self.partial.is_empty() {
            return;
        }
        let line = String::from_utf8_lossy(&self.partial)
            .trim_end_matches('\r')
            .to_owned();
        self.partial.clear();
        if self.sent + line.len() > OUTPUT_MAX_BYTES {
            self.dropped += 1;
            return;
        }
        self.sent += line.len() + 1;
        self.lines.push(line);
    }

    fn flush(&mut self) {
        if self.lines.is_empty() {
            return;
        }
        self.sink.report(Progress::Output {
            stream: self.stream,
            lines: std::mem::take(&mut self.lines),
        });
    }

    fn finish(mut self) {
        self.end_line();
        self.flush();
        if self.dropped > 0 {
            self.sink.report(Progress::Warning {
                message: format!(
                    "{} more lines of output were not forwarded (at most {} KiB are)",
                    self.dropped,
                    OUTPUT_MAX_BYTES / 1024
                ),
            });
        }
    }
}

/// Remove one-off containers of `service` left by a run that was cut short.
async fn remove_leftovers(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
) -> Result<(), DeployError> {
    let labels = vec![
        labels::filter(labels::PROJECT, &stack.project),
        labels::filter(labels::SERVICE, &service.name),
        RUN_LABEL.to_owned(),
    ];
    container::remove_labelled(docker, labels, "one-off containers").await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::RecordingSink;

    #[test]
    fn output_is_forwarded_in_lines_per_stream_within_bounds() {
        let sink = RecordingSink::default();
        let mut out = Forwarder::new(&sink);
        out.push(OutputStream::Stdout, b"one\ntw");
        out.push(OutputStream::Stdout, b"o\r\n");
        out.push(OutputStream::Stderr, b"oops\n");
        out.push(OutputStream::Stdout, &vec![b'x'; 2 * LINE_MAX_BYTES]);
        out.finish();
        let reports = sink.reports();
        let lines: Vec<(OutputStream, Vec<String>)> = reports
            .into_iter()
            .filter_map(|p| match p {
                Progress::Output { stream, lines } => Some((stream, lines)),
                _ => None,
            })
            .collect();
        assert_eq!(
            lines[0],
            (OutputStream::Stdout, vec!["one".into(), "two".into()])
        );
        assert_eq!(lines[1], (OutputStream::Stderr, vec!["oops".into()]));
        assert_eq!(lines[2].1[0].len(), LINE_MAX_BYTES, "a long line is cut");

        let sink = RecordingSink::default();
        let mut out = Forwarder::new(&sink);
        let line = vec![b'y'; 1023];
        for _ in 0..2000 {
            out.push(OutputStream::Stdout, &line);
            out.push(OutputStream::Stdout, b"\n");
        }
        out.finish();
        let reports = sink.reports();
        let forwarded: usize = reports
            .iter()
            .map(|p| match p {
                Progress::Output { lines, .. } => lines.iter().map(|l| l.len() + 1).sum(),
                _ => 0,
            })
            .sum();
        assert!(forwarded <= OUTPUT_MAX_BYTES, "{forwarded}");
        assert!(
            matches!(reports.last(), Some(Progress::Warning { message }) if message.starts_with("976 more lines")),
            "{:?}",
            reports.last()
        );
    }
}
