//! Tests of the job runner with a stand-in [`Host`]: the store and the
//! events are real (SQLite in memory), the job's work is chosen by the test
//! (it may panic). The lanes' tests (in `lanes`) use the same host.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::job::RestartPayload;
use hostkit_proto::subjects::settings::{JOBS_MAX_ATTEMPTS, JOBS_MAX_DELIVER};
use hostkit_proto::{Domain, ErrorCode, Event, EventKind, Job, JobId, JobSpec, Names, NodeId};

use super::events::Events;
use super::job::{self, Delivery, Host, panic_message, unpanicked};
use crate::handlers::{Done, Failure};
use crate::store::{JobRecord, JobStart, JobState, Store};

/// A host whose work succeeds at once, except for the jobs a test marks:
/// their work panics, or the housekeeping after their outcome panics (a
/// panic in the runner outside the job's work).
pub(super) struct TestHost {
    pub store: Store,
    pub events: Events,
    pub panic_in_work: HashSet<JobId>,
    pub panic_after_commit: HashSet<JobId>,
    /// The jobs whose work ran, in order.
    pub ran: Mutex<Vec<JobId>>,
    pub metrics: std::sync::Arc<super::metrics::Metrics>,
}

impl TestHost {
    pub async fn new() -> TestHost {
        let store = Store::open_in_memory().await.unwrap();
        let node = NodeId::parse("node-1").unwrap();
        TestHost {
            metrics: Default::default(),
            events: Events::new(node, Names::default(), store.clone()),
            store,
            panic_in_work: HashSet::new(),
            panic_after_commit: HashSet::new(),
            ran: Mutex::new(Vec::new()),
        }
    }

    pub fn ran(&self) -> Vec<JobId> {
        self.ran.lock().unwrap().clone()
    }

    pub async fn record(&self, job_id: JobId) -> JobRecord {
        self.store.job(job_id).await.unwrap().expect("job recorded")
    }

    /// The job's stored terminal event.
    pub async fn terminal(&self, job_id: JobId) -> EventKind {
        let record = self.record(job_id).await;
        let bytes = record.terminal_event.expect("job ended");
        Event::from_slice(&bytes).unwrap().kind
    }

    /// Waits until every job of `jobs` has ended.
    pub async fn until_ended(&self, jobs: &[JobId]) {
        let all_ended = async {
            loop {
                let mut ended = 0;
                for id in jobs {
                    if let Some(record) = self.store.job(*id).await.unwrap() {
                        ended += usize::from(record.state.is_terminal());
                    }
                }
                if ended == jobs.len() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(20), all_ended)
            .await
            .expect("jobs ended in time");
    }
}

impl Host for TestHost {
    fn store(&self) -> &Store {
        &self.store
    }

    fn events(&self) -> &Events {
        &self.events
    }

    fn metrics(&self) -> &std::sync::Arc<super::metrics::Metrics> {
        &self.metrics
    }

    async fn work(&self, job: &Job, _sink: &dyn ProgressSink) -> Result<Done, Failure> {
        self.ran.lock().unwrap().push(job.id);
        tokio::task::yield_now().await;
        if self.panic_in_work.contains(&job.id) {
            panic!("boom");
        }
        Ok(Done {
            version: None,
            changes: Vec::new(),
        })
    }

    async fn after_commit(&self, job: &Job) {
        if self.panic_after_commit.contains(&job.id) {
            panic!("housekeeping boom");
        }
    }
}

/// A restart job of `domain`, delivered once.
pub(super) fn delivery(domain: &str, stream_seq: u64) -> Delivery {
    let job = Job::new(
        Domain::parse(domain).unwrap(),
        JobSpec::Restart(RestartPayload::default()),
        "test",
    );
    Delivery {
        raw: job.to_vec(),
        job,
        stream_seq,
        message: None,
        delivered: 1,
    }
}

/// Whether `kind` is `failed` with `code` and `message`.
pub(super) fn is_failed(kind: &EventKind, code: ErrorCode, message: &str) -> bool {
    matches!(kind, EventKind::Failed { code: c, message: m, .. } if *c == code && m == message)
}

#[tokio::test]
async fn a_job_whose_work_panics_fails_with_internal() {
    let mut host = TestHost::new().await;
    let d = delivery("example.com", 1);
    host.panic_in_work.insert(d.job.id);

    job::run(&host, &d).await;
    let record = host.record(d.job.id).await;
    assert_eq!((record.state, record.attempts), (JobState::Failed, 1));
    let kind = host.terminal(d.job.id).await;
    let message = "the job panicked: boom";
    assert!(is_failed(&kind, ErrorCode::Internal, message), "{kind:?}");

    // A redelivery is answered from the store; the work never runs again.
    job::run(&host, &d).await;
    assert_eq!(host.ran(), vec![d.job.id]);
    assert_eq!(host.record(d.job.id).await.state, JobState::Failed);
}

#[tokio::test]
async fn a_job_started_three_times_ends_failed_without_running() {
    let host = TestHost::new().await;
    let d = delivery("example.com", 1);
    // Three starts, each interrupted by a crash (deliveries or resumes).
    for _ in 0..JOBS_MAX_ATTEMPTS {
        host.store.begin_job(job::new_job(&d)).await.unwrap();
    }
    // The fourth start: resumed at startup (no message), or redelivered.
    let resumed = Delivery {
        message: None,
        delivered: 0,
        ..delivery_of(&d)
    };
    job::run(&host, &resumed).await;
    assert!(host.ran().is_empty(), "the job ran a fourth time");
    let record = host.record(d.job.id).await;
    assert_eq!((record.state, record.attempts), (JobState::Failed, 3));
    let kind = host.terminal(d.job.id).await;
    let reason = "the job was attempted 3 times without finishing \
                  (the worker crashed or was killed during it)";
    assert!(is_failed(&kind, ErrorCode::Internal, reason), "{kind:?}");

    // Never run again, whatever delivers it.
    job::run(&host, &d).await;
    assert!(host.ran().is_empty());
    assert!(matches!(
        host.store.begin_job(job::new_job(&d)).await.unwrap(),
        JobStart::Finished(_)
    ));
    assert!(host.store.unfinished_jobs().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_job_started_twice_runs_its_third_attempt() {
    let host = TestHost::new().await;
    let d = delivery("example.com", 1);
    for _ in 0..JOBS_MAX_ATTEMPTS - 1 {
        host.store.begin_job(job::new_job(&d)).await.unwrap();
    }
    job::run(&host, &d).await;
    assert_eq!(host.ran(), vec![d.job.id]);
    let record = host.record(d.job.id).await;
    assert_eq!((record.state, record.attempts), (JobState::Succeeded, 3));
}

#[tokio::test]
async fn the_last_delivery_ends_the_job_without_running_it() {
    let host = TestHost::new().await;
    let d = Delivery {
        delivered: JOBS_MAX_DELIVER,
        ..delivery("example.com", 1)
    };
    job::run(&host, &d).await;
    assert!(host.ran().is_empty());
    let kind = host.terminal(d.job.id).await;
    let reason = format!("the job was delivered {JOBS_MAX_DELIVER} times without finishing");
    assert!(is_failed(&kind, ErrorCode::Internal, &reason), "{kind:?}");
}

#[tokio::test]
async fn unpanicked_turns_a_panic_into_an_internal_failure() {
    let ok = unpanicked(async { Ok::<_, Failure>(7) }).await;
    assert_eq!(ok, Ok(7));
    let failure = Failure::new(ErrorCode::ImageMissing, "no image");
    let err = unpanicked(async { Err::<(), _>(failure.clone()) }).await;
    assert_eq!(err, Err(failure));

    let name = "web";
    let err = unpanicked(async move {
        tokio::task::yield_now().await;
        panic!("no service {name}");
        #[allow(unreachable_code)]
        Ok::<(), Failure>(())
    })
    .await
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Internal);
    assert_eq!(err.message, "the job panicked: no service web");

    let err = unpanicked(async {
        std::panic::panic_any(42_u8);
        #[allow(unreachable_code)]
        Ok::<(), Failure>(())
    })
    .await
    .unwrap_err();
    assert_eq!(err.message, "the job panicked: no message");

    let long = "x".repeat(10_000);
    let err = unpanicked(async move {
        panic!("{long}");
        #[allow(unreachable_code)]
        Ok::<(), Failure>(())
    })
    .await
    .unwrap_err();
    assert!(err.message.len() <= hostkit_proto::event::MAX_EVENT_MESSAGE_BYTES);
    assert!(err.message.starts_with("the job panicked: xxx"));
}

#[test]
fn panic_messages_are_read_from_str_and_string_payloads() {
    let payload: Box<dyn std::any::Any + Send> = Box::new("static");
    assert_eq!(panic_message(payload.as_ref()), "static");
    let payload: Box<dyn std::any::Any + Send> = Box::new(String::from("owned"));
    assert_eq!(panic_message(payload.as_ref()), "owned");
}

/// Another delivery of the same job.
fn delivery_of(d: &Delivery) -> Delivery {
    Delivery {
        job: d.job.clone(),
        raw: d.raw.clone(),
        stream_seq: d.stream_seq,
        message: None,
        delivered: d.delivered,
    }
}
