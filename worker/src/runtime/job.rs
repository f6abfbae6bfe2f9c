//! Running one delivered job to exactly one outcome (DESIGN §4): record it
//! before acting, re-publish the outcome of a job that already finished,
//! resume one a crash interrupted, commit the outcome and the terminal
//! event in one SQLite transaction, and only then ack the message.
//!
//! A job is started at most [`JOBS_MAX_ATTEMPTS`] times (DESIGN §6): the
//! next start ends it `failed` (`internal`) instead, as does its message's
//! last delivery. A panic in the job's work fails that job only (`internal`,
//! "the job panicked: …"). The runner is generic over its [`Host`] (the
//! worker; a stand-in in tests).

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::Instant;

use async_nats::jetstream;
use futures_util::FutureExt;
use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::event::{MAX_EVENT_MESSAGE_BYTES, truncate_message};
use hostkit_proto::subjects::settings::{JOBS_MAX_ATTEMPTS, JOBS_MAX_DELIVER};
use hostkit_proto::{ErrorBody, ErrorCode, EventKind, Job};
use tracing::Instrument;

use super::Worker;
use super::events::Events;
use super::progress::job_progress;
use crate::handlers::{self, Done, Failure};
use crate::store::{Change, JobEnd, JobStart, JobState, NewJob, Store, StoreError};

/// What running a job needs: the store and the events, the job's work and
/// the housekeeping after its outcome. The [`Worker`] is the host; tests use
/// a stand-in whose work they choose.
pub trait Host: Send + Sync + 'static {
    /// The state store.
    fn store(&self) -> &Store;
    /// The event emitter.
    fn events(&self) -> &Events;
    /// The metrics jobs are counted in.
    fn metrics(&self) -> &std::sync::Arc<super::metrics::Metrics>;
    /// Do the job's work: the handler of its kind.
    fn work(
        &self,
        job: &Job,
        sink: &dyn ProgressSink,
    ) -> impl Future<Output = Result<Done, Failure>> + Send;
    /// Work that follows a committed outcome and may be redone safely.
    fn after_commit(&self, job: &Job) -> impl Future<Output = ()> + Send;
}

impl Host for Worker {
    fn store(&self) -> &Store {
        &self.store
    }

    fn events(&self) -> &Events {
        &self.events
    }

    fn metrics(&self) -> &std::sync::Arc<super::metrics::Metrics> {
        &self.metrics
    }

    fn work(
        &self,
        job: &Job,
        sink: &dyn ProgressSink,
    ) -> impl Future<Output = Result<Done, Failure>> + Send {
        handlers::run(self, job, sink)
    }

    /// Pruning old versions, the on-disk view, the placement record.
    async fn after_commit(&self, job: &Job) {
        if let Err(error) = super::aftercare::run(self, &job.domain).await {
            tracing::warn!(%error, "post-job housekeeping failed; it is retried after the next job");
        }
        self.tls_wake.notify_one();
    }
}

/// A job taken off the stream, with its message (for acks).
#[derive(Debug)]
pub struct Delivery {
    /// The validated job.
    pub job: Job,
    /// The raw JSON, as recorded.
    pub raw: Vec<u8>,
    /// Its position in the jobs stream.
    pub stream_seq: u64,
    /// The message, acked once the outcome is committed; `None` for a job
    /// resumed from the store at startup (its message, redelivered later,
    /// is answered from the store).
    pub message: Option<jetstream::Message>,
    /// How often the server delivered the message (0 for a resumed job).
    pub delivered: i64,
}

impl Delivery {
    /// Ack the message (if there is one) with `kind`.
    pub async fn ack_with(&self, kind: jetstream::AckKind) {
        if let Some(message) = &self.message {
            if let Err(error) = message.ack_with(kind).await {
                tracing::debug!(%error, "ack not sent");
            }
        }
    }
}

/// Run a delivered job; logs (never panics) when the store or NATS fail,
/// leaving the message unacked so it is redelivered and resumed.
pub async fn run<H: Host>(worker: &H, delivery: &Delivery) {
    let job = &delivery.job;
    let span = tracing::info_span!("job", domain = %job.domain, job_id = %job.id, kind = job.kind().as_str());
    async {
        match run_inner(worker, delivery).await {
            Ok(()) => delivery.ack_with(jetstream::AckKind::Ack).await,
            Err(error) => {
                tracing::error!(%error, "job left unacked; it will be redelivered and resumed")
            }
        }
    }
    .instrument(span)
    .await
}

async fn run_inner<H: Host>(worker: &H, delivery: &Delivery) -> Result<(), StoreError> {
    let job = &delivery.job;
    if delivery.delivered >= JOBS_MAX_DELIVER {
        let reason = format!(
            "the job was delivered {} times without finishing",
            delivery.delivered
        );
        return give_up(worker, delivery, reason).await;
    }
    match worker.store().begin_job(new_job(delivery)).await? {
        JobStart::Finished(finished) => {
            tracing::info!(
                state = finished.state.as_str(),
                "already finished; re-publishing its outcome"
            );
            if let Ok(event) = hostkit_proto::Event::from_slice(&finished.terminal_event) {
                worker.events().republish(&event).await?;
            }
            return Ok(());
        }
        JobStart::Exhausted { attempts } => {
            debug_assert!(attempts >= JOBS_MAX_ATTEMPTS);
            let reason = format!(
                "the job was attempted {attempts} times without finishing \
                 (the worker crashed or was killed during it)"
            );
            return give_up(worker, delivery, reason).await;
        }
        JobStart::Resume { attempts } => {
            tracing::warn!(attempts, "resuming a job a restart interrupted")
        }
        JobStart::New => {}
    }
    worker
        .events()
        .emit(
            Some(&job.domain),
            Some(&job.id),
            EventKind::Started {
                job_kind: job.kind(),
            },
        )
        .await?;

    let started = Instant::now();
    let (sink, forwarder) = job_progress(
        worker.events().clone(),
        std::sync::Arc::clone(worker.metrics()),
        job.domain.clone(),
        job.id,
    );
    let outcome = unpanicked(worker.work(job, &sink)).await;
    drop(sink);
    forwarder.finish().await;
    let took = started.elapsed();
    let duration_ms = took.as_millis() as u64;

    let (end, kind, changes) = match outcome {
        Ok(Done { version, changes }) => {
            tracing::info!(?version, duration_ms, "job succeeded");
            (
                JobEnd::Succeeded,
                EventKind::Succeeded {
                    version,
                    duration_ms,
                },
                changes,
            )
        }
        Err(Failure {
            code,
            message,
            hint,
            rolled_back_to,
            exit_code,
        }) => {
            tracing::warn!(code = code.as_str(), %message, ?rolled_back_to, ?exit_code, "job failed");
            let kind = EventKind::Failed {
                code,
                message,
                hint,
                rolled_back_to,
                exit_code,
            };
            (JobEnd::Failed, kind, Vec::new())
        }
    };
    worker
        .metrics()
        .job_ended(job.kind().as_str(), JobState::from(end).as_str(), took);
    let terminal = finish(worker, job, end, kind, changes).await?;
    // The on-disk view is current before the outcome goes out. Should the
    // worker die right here, the job is recorded as finished with this
    // event, and the redelivered message publishes it.
    worker.after_commit(job).await;
    worker.events().republish(&terminal).await?;
    Ok(())
}

/// Await a job's work, turning a panic in it into the job's failure
/// (`internal`), so that a bug hit by one job ends that job only.
pub async fn unpanicked<T>(work: impl Future<Output = Result<T, Failure>>) -> Result<T, Failure> {
    match AssertUnwindSafe(work).catch_unwind().await {
        Ok(outcome) => outcome,
        Err(payload) => {
            let message = format!("the job panicked: {}", panic_message(payload.as_ref()));
            tracing::error!(%message, "job panicked");
            Err(Failure::new(
                ErrorCode::Internal,
                truncate_message(&message, MAX_EVENT_MESSAGE_BYTES),
            ))
        }
    }
}

/// The text a panic was raised with (`panic!("…")`, `expect("…")`).
pub fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text
    } else {
        "no message"
    }
}

/// Ends the job `failed` (`internal`, `reason`) without running it, unless
/// it already ended (then its outcome is re-published): on its message's
/// last delivery, or when it was started too often. It reaches the front
/// of its lane only after any run of the same job (resumed at startup, or
/// an earlier delivery) ended, and the store records the failure, so the
/// job has exactly one terminal event and is not resumed after a restart.
async fn give_up<H: Host>(
    worker: &H,
    delivery: &Delivery,
    reason: String,
) -> Result<(), StoreError> {
    let job = &delivery.job;
    let body = ErrorBody::new(ErrorCode::Internal, reason);
    let event = worker
        .events()
        .build(&job.domain, &job.id, EventKind::failed(body, None))
        .await?;
    match worker
        .store()
        .give_up_job(new_job(delivery), event.to_vec())
        .await?
    {
        None => {
            tracing::error!(
                delivered = delivery.delivered,
                "job delivered or started too often; giving up"
            );
            worker.events().republish(&event).await
        }
        Some(finished) => {
            tracing::info!(
                state = finished.state.as_str(),
                "already finished; re-publishing its outcome"
            );
            match hostkit_proto::Event::from_slice(&finished.terminal_event) {
                Ok(earlier) => worker.events().republish(&earlier).await,
                Err(_) => Ok(()),
            }
        }
    }
}

/// The store's record of a delivered job.
pub fn new_job(delivery: &Delivery) -> NewJob {
    NewJob {
        job_id: delivery.job.id,
        domain: delivery.job.domain.clone(),
        kind: delivery.job.kind(),
        stream_seq: delivery.stream_seq,
        raw: delivery.raw.clone(),
    }
}

/// Commit the outcome and its changes in one transaction, with the
/// terminal event recorded on the job; answers that event (the caller
/// publishes it).
async fn finish<H: Host>(
    worker: &H,
    job: &Job,
    end: JobEnd,
    kind: EventKind,
    changes: Vec<Change>,
) -> Result<hostkit_proto::Event, StoreError> {
    let event = worker.events().build(&job.domain, &job.id, kind).await?;
    worker
        .store()
        .finish_job_with(job.id, end, event.to_vec(), changes)
        .await?;
    Ok(event)
}
