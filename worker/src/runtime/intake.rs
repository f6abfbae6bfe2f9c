//! Pulling jobs: the node's durable consumer delivers each job; it is
//! checked (shape, subject, signature) and handed to its domain's lane in
//! stream order. A malformed, misaddressed or unauthorized job ends with a
//! `failed` event and is terminated, never redelivered. A job on its last
//! delivery goes to its lane too, which ends it once (see `job::give_up`).

use std::sync::Arc;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use futures_util::StreamExt;
use hostkit_proto::subjects::settings::JOBS_MAX_DELIVER;
use hostkit_proto::{ErrorBody, ErrorCode, EventKind, Job};

use super::Worker;
use super::job::Delivery;
use super::lanes::Lanes;
use crate::shutdown::Shutdown;

/// Pull until `shutdown`; then stop pulling (lanes finish their jobs).
pub async fn run(
    worker: Arc<Worker>,
    consumer: PullConsumer,
    lanes: Arc<Lanes>,
    mut shutdown: Shutdown,
) {
    let mut backoff = std::time::Duration::from_millis(200);
    while !shutdown.is_shutdown() {
        let mut messages = match consumer.messages().await {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot pull jobs; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.recv() => {}
                }
                backoff = (backoff * 2).min(std::time::Duration::from_secs(5));
                continue;
            }
        };
        loop {
            tokio::select! {
                _ = shutdown.recv() => break,
                next = messages.next() => match next {
                    Some(Ok(message)) => {
                        backoff = std::time::Duration::from_millis(200);
                        accept(&worker, &lanes, message).await;
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "pulling jobs failed; re-subscribing");
                        break;
                    }
                    None => break,
                }
            }
        }
    }
}

async fn accept(worker: &Worker, lanes: &Arc<Lanes>, message: jetstream::Message) {
    let (stream_seq, delivered) = match message.info() {
        Ok(info) => (info.stream_sequence, info.delivered),
        Err(error) => {
            tracing::warn!(%error, "a job message without JetStream metadata; terminated");
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    let raw = message.payload.to_vec();
    let job = match check(worker, &message.subject, &raw) {
        Ok(job) => job,
        Err(error) => {
            reject(worker, &message.subject, &raw, error).await;
            let _ = message.ack_with(AckKind::Term).await;
            return;
        }
    };
    if delivered >= JOBS_MAX_DELIVER {
        // Not failed here: the job may be running right now (resumed at
        // startup) or may have ended already. Its lane decides, in order,
        // through the store (`job::give_up`).
        tracing::warn!(job_id = %job.id, delivered, "the job's last delivery");
    }
    lanes.dispatch(Delivery {
        job,
        raw,
        stream_seq,
        message: Some(message),
        delivered,
    });
}

/// Parse and validate a job, check it was addressed to this node and domain,
/// and its signature when signing is required.
fn check(worker: &Worker, subject: &str, raw: &[u8]) -> Result<Job, ErrorBody> {
    let settings = &worker.settings;
    let job = if settings.require_signed {
        let job = hostkit_proto::verify_job_bytes(raw, &settings.trusted_keys)
            .map_err(|e| ErrorBody::new(e.code(), e.to_string()))?;
        hostkit_proto::check_claims(
            &job,
            &settings.trusted_keys,
            &worker.node,
            chrono::Utc::now(),
        )
        .map_err(|e| ErrorBody::new(e.code(), e.to_string()))?;
        job.validate()
            .map_err(|e| ErrorBody::new(ErrorCode::JobInvalid, e.to_string()))?;
        job
    } else {
        Job::from_slice(raw).map_err(|e| ErrorBody::new(ErrorCode::JobInvalid, e.to_string()))?
    };
    match worker.names.parse_jobs_subject(subject) {
        Some((node, domain)) if node == worker.node && domain == job.domain => Ok(job),
        _ => Err(ErrorBody::new(
            ErrorCode::JobInvalid,
            format!(
                "job for {} arrived on {subject}, which is not its subject on node {}",
                job.domain, worker.node
            ),
        )),
    }
}

/// Tell whoever sent a refused job why, on the events of the domain whose
/// subject it arrived on (its sender could publish there, so it may read
/// there) — never on the domain the job claims, and never under the id of
/// a job this worker knows: a refusal must not read as the end of somebody
/// else's job.
async fn reject(worker: &Worker, subject: &str, raw: &[u8], error: ErrorBody) {
    let peek = Job::peek(raw);
    tracing::warn!(code = error.code.as_str(), message = %error.message, job_id = ?peek.id, subject, "job refused");
    let (Some((_, domain)), Some(id)) = (worker.names.parse_jobs_subject(subject), peek.id) else {
        return;
    };
    match worker.store.job(id).await {
        Ok(None) => {}
        Ok(Some(_)) => {
            tracing::warn!(job_id = %id, "a refused job reuses the id of a known job; no event");
            return;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot check a refused job's id; no event");
            return;
        }
    }
    let _ = worker
        .events
        .emit(Some(&domain), Some(&id), EventKind::failed(error, None))
        .await;
}

/// Jobs a crash interrupted (recorded, not finished) go back to their lanes
/// at once, in stream order, instead of waiting for the server to redeliver
/// them after the ack wait. Their messages, when redelivered, are answered
/// from the store. A resume is a start like a delivery: a job already
/// started `JOBS_MAX_ATTEMPTS` times is ended `failed` by its lane instead
/// (see `job::run`).
pub async fn resume_interrupted(worker: &Worker, lanes: &Arc<Lanes>) {
    let unfinished = match worker.store.unfinished_jobs().await {
        Ok(jobs) => jobs,
        Err(error) => {
            tracing::error!(%error, "cannot read interrupted jobs; they resume when redelivered");
            return;
        }
    };
    for record in unfinished {
        let Ok(Some(raw)) = worker.store.job_raw(record.job_id).await else {
            continue;
        };
        let Ok(job) = Job::from_slice(&raw) else {
            continue;
        };
        tracing::info!(job_id = %job.id, domain = %job.domain, "resuming an interrupted job");
        lanes.dispatch(Delivery {
            job,
            raw,
            stream_seq: record.stream_seq,
            message: None,
            delivered: 0,
        });
    }
}
