//! Lifecycle hooks, as Docker Compose runs them:
//! - `pre_start`: each hook, in order, in a container of its own (its image,
//!   or the service's; the service's environment, networks and — through
//!   `VolumesFrom` the replica about to start — volumes and bind mounts),
//!   run to completion before the service's first replica starts; a
//!   non-zero exit fails the service's start;
//! - `post_start`: an exec in each replica right after it started; a
//!   non-zero exit fails that replica's start;
//! - `pre_stop`: an exec in each running replica before HostKit stops it,
//!   bounded by the stop grace period; a failure is reported as a warning
//!   and the stop goes on.
//!
//! A failure carries the hook's exit code and the tail of its output.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::exec::StartExecResults;
use bollard::models::{ContainerCreateBody, ExecConfig, HostConfig};
use futures_util::StreamExt;
use tokio::time::Instant;

use super::container::{self, join_first_network, join_other_networks};
use super::health::{self, Readiness};
use super::labels;
use super::spec::{HookSpec, ServiceSpec, StackSpec};
use crate::docker::DockerError;
use crate::error::DeployError;
use crate::progress::{Progress, ProgressSink};

/// How many lines of a failing hook's output its error carries.
pub const OUTPUT_TAIL_LINES: usize = 10;
/// At most this many bytes of them.
pub const OUTPUT_TAIL_BYTES: usize = 2048;
/// The stop grace period when a service sets none (Docker's default).
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Which hook list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// `pre_start`.
    PreStart,
    /// `post_start`.
    PostStart,
    /// `pre_stop`.
    PreStop,
}

impl fmt::Display for HookKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PreStart => "pre_start",
            Self::PostStart => "post_start",
            Self::PreStop => "pre_stop",
        })
    }
}

/// A hook that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "service {service}: {kind}[{index}] hook in {container} {}{}",
    outcome(*exit_code, *timed_out),
    tail(output)
)]
pub struct HookFailure {
    /// The service.
    pub service: String,
    /// Which list.
    pub kind: HookKind,
    /// Its position in the list.
    pub index: usize,
    /// The container it ran in (the replica, or the `pre_start` container
    /// it ran for).
    pub container: String,
    /// Its exit code, when it exited.
    pub exit_code: Option<i64>,
    /// Whether it was cut short by its deadline.
    pub timed_out: bool,
    /// The last lines it printed (stdout and stderr).
    pub output: Vec<String>,
}

fn outcome(exit_code: Option<i64>, timed_out: bool) -> String {
    match (exit_code, timed_out) {
        (_, true) => "did not finish in time".to_owned(),
        (Some(code), false) => format!("exited with status {code}"),
        (None, false) => "could not run".to_owned(),
    }
}

fn tail(output: &[String]) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(": {}", output.join(" | "))
    }
}

/// The last lines of a stream of output, bounded in lines and bytes.
#[derive(Debug, Default)]
struct OutputTail {
    lines: Vec<String>,
    partial: Vec<u8>,
}

impl OutputTail {
    fn push(&mut self, bytes: &[u8]) {
        for chunk in bytes.split_inclusive(|b| *b == b'\n') {
            let room = OUTPUT_TAIL_BYTES.saturating_sub(self.partial.len());
            self.partial
                .extend_from_slice(&chunk[..chunk.len().min(room)]);
            if chunk.ends_with(b"\n") {
                let line = std::mem::take(&mut self.partial);
                self.lines.push(clean(&line));
                if self.lines.len() > OUTPUT_TAIL_LINES {
                    self.lines.remove(0);
                }
            }
        }
    }

    /// The kept lines (and the unfinished last one), at most
    /// [`OUTPUT_TAIL_BYTES`] of them from the end.
    fn finish(mut self) -> Vec<String> {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.lines.push(clean(&line));
            if self.lines.len() > OUTPUT_TAIL_LINES {
                self.lines.remove(0);
            }
        }
        let mut budget = OUTPUT_TAIL_BYTES;
        let mut kept: Vec<String> = self
            .lines
            .into_iter()
            .rev()
            .filter(|l| !l.is_empty())
            .take_while(|l| {
                let fits = l.len() <= budget;
                budget = budget.saturating_sub(l.len());
                fits
            })
            .collect();
        kept.reverse();
        kept
    }
}

/// A line as text: trailing line breaks gone, only the last of `\r`
/// segments (progress bars), invalid UTF-8 replaced.
fn clean(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    text.rsplit('\r').next().unwrap_or_default().to_owned()
}

/// Run `hook` (a `post_start` or `pre_stop`) as an exec in the running
/// container `container` until it ends or `deadline` passes.
async fn exec(
    docker: &Docker,
    container: &str,
    hook: &HookSpec,
    deadline: Instant,
) -> Result<(Option<i64>, bool, Vec<String>), bollard::errors::Error> {
    let config = ExecConfig {
        cmd: Some(hook.command.clone()),
        user: hook.user.clone(),
        privileged: Some(hook.privileged),
        working_dir: hook.working_dir.clone(),
        env: (!hook.env.is_empty()).then(|| hook.env.clone()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        ..Default::default()
    };
    let created = docker.create_exec(container, config).await?;
    let mut tail = OutputTail::default();
    let mut timed_out = false;
    if let StartExecResults::Attached { mut output, .. } =
        docker.start_exec(&created.id, None).await?
    {
        loop {
            match tokio::time::timeout_at(deadline, output.next()).await {
                Err(_) => {
                    timed_out = true;
                    break;
                }
                Ok(None) => break,
                Ok(Some(chunk)) => match chunk? {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message } => tail.push(&message),
                    LogOutput::StdIn { .. } => {}
                },
            }
        }
    }
    let exit_code = if timed_out {
        None
    } else {
        docker.inspect_exec(&created.id).await?.exit_code
    };
    Ok((exit_code, timed_out, tail.finish()))
}

/// Run `service`'s `post_start` hooks in its replica `container` (id) named
/// `name`, in order, until `deadline`; the first that fails is the error.
pub async fn post_start(
    docker: &Docker,
    service: &ServiceSpec,
    container: &str,
    name: &str,
    deadline: Instant,
) -> Result<(), DeployError> {
    for (index, hook) in service.hooks.post_start.iter().enumerate() {
        let failure = |exit_code, timed_out, output| HookFailure {
            service: service.name.clone(),
            kind: HookKind::PostStart,
            index,
            container: name.to_owned(),
            exit_code,
            timed_out,
            output,
        };
        match exec(docker, container, hook, deadline).await {
            Ok((Some(0), false, _)) => {}
            Ok((code, timed_out, output)) => return Err(failure(code, timed_out, output).into()),
            Err(e) => {
                let output = vec![e.to_string()];
                return Err(failure(None, false, output).into());
            }
        }
    }
    Ok(())
}

/// Run `service`'s `pre_stop` hooks in its running replica `container`
/// (id) named `name`, all of them within the service's stop grace period.
/// A failing hook is reported as a warning; the caller stops the
/// container anyway. A container that is not running (any more) is skipped.
pub async fn pre_stop(
    docker: &Docker,
    service: &ServiceSpec,
    container: &str,
    name: &str,
    sink: &dyn ProgressSink,
) {
    let grace = service.stop_timeout.unwrap_or(DEFAULT_GRACE);
    let deadline = Instant::now() + grace;
    for (index, hook) in service.hooks.pre_stop.iter().enumerate() {
        let (exit_code, timed_out, output) = match exec(docker, container, hook, deadline).await {
            Ok((Some(0), false, _)) => continue,
            Ok(done) => done,
            // 409: not running; 404: gone. Nothing to run the hook in.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => return,
            Err(e) => (None, false, vec![e.to_string()]),
        };
        let failure = HookFailure {
            service: service.name.clone(),
            kind: HookKind::PreStop,
            index,
            container: name.to_owned(),
            exit_code,
            timed_out,
            output,
        };
        tracing::warn!(%failure, "pre_stop hook failed");
        sink.report(Progress::Warning {
            message: format!("{failure}; stopping it anyway"),
        });
        if timed_out {
            return;
        }
    }
}

/// Label of `pre_start` containers (value: `pre_start`), so a leftover one
/// is found and removed.
pub const HOOK_LABEL: &str = "hostkit.hook";

/// Run `service`'s `pre_start` hooks, in order, each in a container of its
/// own that shares the volumes of `replica` (created, not started), until
/// `deadline`. Every hook container is removed once it ran.
pub async fn pre_start(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
    replica: &str,
    deadline: Instant,
) -> Result<(), DeployError> {
    if service.hooks.pre_start.is_empty() {
        return Ok(());
    }
    remove_leftovers(docker, stack, service).await?;
    for (index, hook) in service.hooks.pre_start.iter().enumerate() {
        let id = create_pre_start(docker, stack, service, replica, hook).await?;
        let name = format!("{}-{}-pre_start-{index}", stack.project, service.name);
        let ran = run_to_completion(docker, &id, deadline).await;
        let output = health::log_tail(docker, &id, OUTPUT_TAIL_LINES).await;
        container::remove(docker, &id, Some(Duration::ZERO)).await?;
        let (exit_code, timed_out) = match ran? {
            Ok(()) => continue,
            Err(not_ready) => (not_ready.exit_code, not_ready.timed_out),
        };
        return Err(HookFailure {
            service: service.name.clone(),
            kind: HookKind::PreStart,
            index,
            container: name,
            exit_code,
            timed_out,
            output,
        }
        .into());
    }
    Ok(())
}

/// Start the hook container `id` and wait until it exited 0, failed or
/// `deadline` passed.
async fn run_to_completion(
    docker: &Docker,
    id: &str,
    deadline: Instant,
) -> Result<Result<(), health::NotReady>, DeployError> {
    if let Err(e) = docker.start_container(id, None).await {
        return Err(DockerError::call(format!("start the pre_start container {id}"), e).into());
    }
    Ok(health::wait_ready(docker, id, Readiness::Completed, deadline).await?)
}

/// Create the container of one `pre_start` hook: the hook's image, command,
/// user, directory and environment; the replica's volumes; the service's
/// networks (without its names), resource limits and log settings; no
/// added capability, and privileges only when the hook asks (and the
/// policy allowed it).
async fn create_pre_start(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
    replica: &str,
    hook: &HookSpec,
) -> Result<String, DeployError> {
    let service_host = service.template.host_config.clone().unwrap_or_default();
    let host_config = HostConfig {
        volumes_from: Some(vec![replica.to_owned()]),
        privileged: Some(hook.privileged),
        network_mode: service_host.network_mode.filter(|mode| mode == "none"),
        memory: service_host.memory,
        nano_cpus: service_host.nano_cpus,
        pids_limit: service_host.pids_limit,
        cap_drop: service_host.cap_drop,
        security_opt: service_host.security_opt,
        ulimits: service_host.ulimits,
        log_config: service_host.log_config,
        ..Default::default()
    };
    let mut body = ContainerCreateBody {
        image: hook.image_id.clone(),
        cmd: (!hook.command.is_empty()).then(|| hook.command.clone()),
        user: hook.user.clone(),
        working_dir: hook.working_dir.clone(),
        env: Some(hook.env.clone()),
        labels: Some(HashMap::from([
            (labels::PROJECT.to_owned(), stack.project.clone()),
            (labels::SERVICE.to_owned(), service.name.clone()),
            (labels::ONEOFF.to_owned(), "True".to_owned()),
            (labels::DOMAIN.to_owned(), stack.domain.to_string()),
            (HOOK_LABEL.to_owned(), HookKind::PreStart.to_string()),
        ])),
        host_config: Some(host_config),
        ..Default::default()
    };
    join_first_network(&mut body, service, false);
    let created = docker.create_container(None, body).await.map_err(|e| {
        DockerError::call(
            format!("create the pre_start container of {}", service.name),
            e,
        )
    })?;
    let name = format!("the pre_start container of {}", service.name);
    join_other_networks(docker, &created.id, &name, service, false).await?;
    Ok(created.id)
}

/// Remove `pre_start` containers of `service` left by a run that was cut
/// short (a worker that died while a hook ran).
async fn remove_leftovers(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
) -> Result<(), DeployError> {
    let labels = vec![
        labels::filter(labels::PROJECT, &stack.project),
        labels::filter(labels::SERVICE, &service.name),
        labels::filter(HOOK_LABEL, "pre_start"),
    ];
    let what = format!("the pre_start containers of {}", service.name);
    container::remove_labelled(docker, labels, &what).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_output_tail_keeps_the_last_lines_within_bounds() {
        let mut tail = OutputTail::default();
        for i in 0..30 {
            tail.push(format!("line {i}\n").as_bytes());
        }
        tail.push(b"progress 10%\rprogress 100%");
        let kept = tail.finish();
        assert_eq!(kept.len(), OUTPUT_TAIL_LINES);
        assert_eq!(kept.first().map(String::as_str), Some("line 21"));
        assert_eq!(kept.last().map(String::as_str), Some("progress 100%"));

        let mut long = OutputTail::default();
        long.push(&vec![b'x'; 10 * OUTPUT_TAIL_BYTES]);
        long.push(b"\nend\n");
        let kept = long.finish();
        assert_eq!(kept, ["end"], "a line past the byte budget is left out");
    }

    #[test]
    fn a_failure_names_the_hook_its_status_and_output() {
        let failure = HookFailure {
            service: "web".into(),
            kind: HookKind::PostStart,
            index: 1,
            container: "example-com-web-2".into(),
            exit_code: Some(3),
            timed_out: false,
            output: vec!["no such file".into(), "giving up".into()],
        };
        assert_eq!(
            failure.to_string(),
            "service web: post_start[1] hook in example-com-web-2 exited with status 3: no such file | giving up"
        );
        let slow = HookFailure {
            timed_out: true,
            exit_code: None,
            output: Vec::new(),
            ..failure
        };
        assert!(
            slow.to_string().ends_with("did not finish in time"),
            "{slow}"
        );
    }
}
