//! Turning the engine's progress reports into job events, in order, without
//! blocking the engine: reports go through a channel to one forwarding
//! task, which the runner drains before it emits the job's terminal event.

use std::sync::Arc;
use std::time::Instant;

use hostkit_deploy::progress::{Progress, ProgressSink, ServiceState};
use hostkit_proto::event::{ProgressUnit, ReplicaState};
use hostkit_proto::{Domain, EventKind, JobId};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::Events;
use super::metrics::Metrics;

/// A [`ProgressSink`] for one job.
#[derive(Debug)]
pub struct JobProgress {
    tx: mpsc::UnboundedSender<Progress>,
}

impl ProgressSink for JobProgress {
    fn report(&self, progress: Progress) {
        let _ = self.tx.send(progress);
    }
}

/// The forwarding task of a [`JobProgress`].
#[derive(Debug)]
pub struct Forwarder {
    task: JoinHandle<()>,
}

impl Forwarder {
    /// Wait until every report sent so far is an event (drop the sink first).
    pub async fn finish(self) {
        let _ = self.task.await;
    }
}

/// A sink for `job_id` of `domain` and the task that forwards it (and
/// times its steps and counts its image bytes in `metrics`).
pub fn job_progress(
    events: Events,
    metrics: Arc<Metrics>,
    domain: Domain,
    job_id: JobId,
) -> (JobProgress, Forwarder) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let mut step: Option<(&'static str, Instant)> = None;
        let mut image_done = 0u64;
        while let Some(progress) = rx.recv().await {
            match &progress {
                Progress::Step { name, .. } if step.is_none_or(|(s, _)| s != *name) => {
                    if let Some((previous, since)) = step.replace((name, Instant::now())) {
                        metrics.step_took(previous, since.elapsed());
                    }
                }
                Progress::ImageBytes { done, .. } => {
                    // A smaller count is the next blob's.
                    let added = if *done >= image_done {
                        done - image_done
                    } else {
                        *done
                    };
                    metrics.image_bytes(added);
                    image_done = *done;
                }
                _ => {}
            }
            let kind = event_of(progress);
            if let Err(error) = events.emit(Some(&domain), Some(&job_id), kind).await {
                tracing::error!(%error, "recording a progress event failed");
            }
        }
        if let Some((last, since)) = step {
            metrics.step_took(last, since.elapsed());
        }
    });
    (JobProgress { tx }, Forwarder { task })
}

/// The event a progress report becomes.
pub fn event_of(progress: Progress) -> EventKind {
    match progress {
        Progress::Step { name, message } => EventKind::Step {
            name: name.to_string(),
            message,
        },
        Progress::ImageBytes { done, total } => EventKind::Progress {
            what: "image".into(),
            done,
            total,
            unit: ProgressUnit::Bytes,
        },
        Progress::ImageLoaded { reference } => EventKind::Step {
            name: "images".into(),
            message: format!("loaded {reference}"),
        },
        Progress::ImagePull {
            reference,
            done,
            total,
        } => EventKind::Progress {
            what: format!("pull {reference}"),
            done,
            total,
            unit: ProgressUnit::Bytes,
        },
        Progress::Service {
            service,
            replica,
            state,
        } => EventKind::Service {
            service,
            replica,
            state: replica_state(state),
        },
        Progress::ProxySwitched { upstreams } => EventKind::Step {
            name: "proxy".into(),
            message: format!("nginx routes to {}", upstreams.join(", ")),
        },
        Progress::Warning { message } => EventKind::Warning {
            message,
            code: None,
        },
        Progress::Output { stream, lines } => EventKind::Output {
            stream: stream.as_str().to_owned(),
            lines,
        },
    }
}

fn replica_state(state: ServiceState) -> ReplicaState {
    match state {
        ServiceState::Created => ReplicaState::Created,
        ServiceState::Started | ServiceState::Restarted | ServiceState::Unchanged => {
            ReplicaState::Running
        }
        ServiceState::Healthy => ReplicaState::Healthy,
        ServiceState::Completed => ReplicaState::Exited,
        ServiceState::Stopped => ReplicaState::Stopped,
        ServiceState::Replaced | ServiceState::Removed => ReplicaState::Removed,
    }
}
