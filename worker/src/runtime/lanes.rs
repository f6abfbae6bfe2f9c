//! Per-domain lanes (DESIGN §4): jobs of one domain run one at a time, in
//! stream order; lanes of different domains run in parallel, at most
//! `max_lanes` at once. Waiting deploys of one domain coalesce: only the
//! newest runs, the older end `superseded`. Every message a lane holds
//! (running or waiting) gets in-progress acks, so none is redelivered while
//! it waits. A panic while a job runs never ends its lane (DESIGN §6): the
//! job's work is guarded by the runner (the job fails), the runner itself
//! here (the message is left unacked: its redelivery re-publishes the
//! outcome or resumes the job); and a lane that did end is replaced when its
//! domain's next job arrives.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::AckKind;
use futures_util::FutureExt;
use hostkit_proto::subjects::settings::JOBS_PROGRESS_INTERVAL;
use hostkit_proto::{Domain, EventKind, JobKind};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;

use super::Worker;
use super::job::{self, Delivery, Host};
use crate::shutdown::Shutdown;

/// The lanes of one worker (of another [`Host`] in tests).
pub struct Lanes<H: Host = Worker> {
    /// Jobs running now.
    pub busy: AtomicUsize,
    /// Jobs delivered and waiting in a lane.
    pub waiting: AtomicUsize,
    worker: Arc<H>,
    permits: Arc<Semaphore>,
    senders: Mutex<HashMap<Domain, mpsc::UnboundedSender<Delivery>>>,
    tasks: Mutex<JoinSet<()>>,
    shutdown: Shutdown,
}

impl<H: Host> std::fmt::Debug for Lanes<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("permits", &self.permits)
            .finish()
    }
}

impl<H: Host> Lanes<H> {
    /// Lanes for `worker`, at most `max_lanes` running at once.
    pub fn new(worker: Arc<H>, max_lanes: usize, shutdown: impl Into<Shutdown>) -> Arc<Lanes<H>> {
        let shutdown = shutdown.into();
        Arc::new(Lanes {
            busy: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
            worker,
            permits: Arc::new(Semaphore::new(max_lanes.max(1))),
            senders: Mutex::new(HashMap::new()),
            tasks: Mutex::new(JoinSet::new()),
            shutdown,
        })
    }

    /// Hand a job to its domain's lane (created on first use, and again
    /// should the lane have ended: a dead lane never keeps its domain).
    pub fn dispatch(self: &Arc<Self>, delivery: Delivery) {
        let domain = delivery.job.domain.clone();
        let mut senders = self.senders.lock().expect("lanes lock");
        let sender = match senders.entry(domain.clone()) {
            Entry::Occupied(entry) if !entry.get().is_closed() => entry.into_mut(),
            entry => {
                if matches!(entry, Entry::Occupied(_)) {
                    tracing::error!(%domain, "the domain's lane had ended; starting a new one");
                }
                let (tx, rx) = mpsc::unbounded_channel();
                let lanes = Arc::clone(self);
                self.tasks
                    .lock()
                    .expect("lanes lock")
                    .spawn(async move { lanes.lane(domain, rx).await });
                entry.insert_entry(tx).into_mut()
            }
        };
        self.waiting.fetch_add(1, Ordering::Relaxed);
        self.report_waiting();
        if let Err(mpsc::error::SendError(delivery)) = sender.send(delivery) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            self.report_waiting();
            tracing::error!(job_id = %delivery.job.id, "lane is gone; the job will be redelivered");
        }
    }

    /// The lane queue depth metric follows [`Lanes::waiting`].
    fn report_waiting(&self) {
        self.worker
            .metrics()
            .lane_waiting(self.waiting.load(Ordering::Relaxed));
    }

    /// Wait for every lane to end its current job (lanes stop taking new
    /// ones once shutdown is signalled).
    pub async fn drain(&self) {
        self.senders.lock().expect("lanes lock").clear();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().expect("lanes lock"));
        while tasks.join_next().await.is_some() {}
    }

    async fn lane(self: Arc<Self>, domain: Domain, mut rx: mpsc::UnboundedReceiver<Delivery>) {
        let mut queue: VecDeque<Delivery> = VecDeque::new();
        let mut ticker = tokio::time::interval(JOBS_PROGRESS_INTERVAL);
        let mut shutdown = self.shutdown.clone();
        loop {
            if shutdown.is_shutdown() {
                for waiting in queue.drain(..) {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
                    self.report_waiting();
                    waiting.ack_with(AckKind::Nak(None)).await;
                }
                return;
            }
            if queue.is_empty() {
                tokio::select! {
                    next = rx.recv() => match next {
                        Some(delivery) => queue.push_back(delivery),
                        None => return,
                    },
                    _ = shutdown.recv() => continue,
                }
            }
            while let Ok(delivery) = rx.try_recv() {
                queue.push_back(delivery);
            }
            self.coalesce(&mut queue).await;
            let Some(current) = queue.pop_front() else {
                continue;
            };

            let run = async {
                let _permit = self.permits.acquire().await;
                self.waiting.fetch_sub(1, Ordering::Relaxed);
                self.report_waiting();
                if self.shutdown.is_shutdown() {
                    // It waited for a permit and never started: back to the
                    // stream for the next start, like the other waiting jobs.
                    current.ack_with(AckKind::Nak(None)).await;
                    return;
                }
                self.busy.fetch_add(1, Ordering::Relaxed);
                // The job's work is guarded in `job::run` (a panic there
                // fails the job); this guards the rest of the runner.
                let run = AssertUnwindSafe(job::run(&*self.worker, &current));
                if let Err(payload) = run.catch_unwind().await {
                    tracing::error!(
                        job_id = %current.job.id,
                        panic = job::panic_message(payload.as_ref()),
                        "the job's runner panicked; its message is left unacked: the redelivery re-publishes the outcome or resumes the job"
                    );
                }
                self.busy.fetch_sub(1, Ordering::Relaxed);
            };
            tokio::pin!(run);
            // `drain` drops the senders while jobs run: a closed channel
            // answers `None` at once, so stop polling it (or this loop spins).
            let mut open = true;
            loop {
                tokio::select! {
                    _ = &mut run => break,
                    next = rx.recv(), if open => if let Some(delivery) = next {
                        let position = queue.len() as u32 + 1;
                        let event = EventKind::Queued { position };
                        if let Err(error) = self.worker.events().emit(Some(&domain), Some(&delivery.job.id), event).await {
                            tracing::warn!(%error, "queued event not recorded");
                        }
                        queue.push_back(delivery);
                    } else {
                        open = false;
                    },
                    _ = ticker.tick() => {
                        current.ack_with(AckKind::Progress).await;
                        for waiting in &queue {
                            waiting.ack_with(AckKind::Progress).await;
                        }
                    }
                }
            }
        }
    }

    /// End `old` as superseded by `newest` (or, if it had already ended,
    /// re-publish how it ended).
    async fn supersede(
        &self,
        old: &Delivery,
        newest: &hostkit_proto::JobId,
    ) -> Result<(), crate::store::StoreError> {
        let worker = &self.worker;
        let kind = EventKind::Superseded { by: *newest };
        let event = worker
            .events()
            .build(&old.job.domain, &old.job.id, kind)
            .await?;
        match worker
            .store()
            .mark_superseded(job::new_job(old), *newest, event.to_vec())
            .await?
        {
            None => worker.events().republish(&event).await,
            Some(finished) => match hostkit_proto::Event::from_slice(&finished.terminal_event) {
                Ok(earlier) => worker.events().republish(&earlier).await,
                Err(_) => Ok(()),
            },
        }
    }

    /// Of the deploys at the front of the queue, only the newest runs.
    ///
    /// "Newest" is by stream order, not arrival: a redelivered message (or
    /// a job resumed from the store) may arrive after newer jobs. Other
    /// deliveries of the newest job itself are not superseded (that would
    /// end it without running it): they stay behind it and are answered
    /// from the store once it has run.
    async fn coalesce(&self, queue: &mut VecDeque<Delivery>) {
        let deploys = queue
            .iter()
            .take_while(|d| d.job.kind() == JobKind::Deploy)
            .count();
        if deploys < 2 {
            return;
        }
        let Some(keep) = (0..deploys).max_by_key(|&i| (queue[i].stream_seq, i)) else {
            return;
        };
        let newest = queue[keep].job.id;
        let front: Vec<Delivery> = queue.drain(..deploys).collect();
        let mut kept = Vec::new();
        for (i, old) in front.into_iter().enumerate() {
            if old.job.id == newest {
                if i == keep {
                    kept.insert(0, old);
                } else {
                    kept.push(old);
                }
                continue;
            }
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            self.report_waiting();
            tracing::info!(job_id = %old.job.id, by = %newest, "deploy superseded");
            self.worker
                .metrics()
                .job_superseded(old.job.kind().as_str());
            match self.supersede(&old, &newest).await {
                Ok(()) => {
                    old.ack_with(AckKind::Ack).await;
                }
                Err(error) => {
                    tracing::error!(%error, "superseding failed; the job will be redelivered")
                }
            }
        }
        for delivery in kept.into_iter().rev() {
            queue.push_front(delivery);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hostkit_proto::ErrorCode;
    use tokio::sync::{mpsc, watch};

    use super::super::tests::{TestHost, delivery, is_failed};
    use super::*;
    use crate::store::JobState;

    #[tokio::test]
    async fn a_panic_fails_its_job_only_and_the_lane_runs_on() {
        let mut host = TestHost::new().await;
        let (a1, a2, a3) = (
            delivery("a.example", 1),
            delivery("a.example", 2),
            delivery("a.example", 3),
        );
        let b1 = delivery("b.example", 4);
        // a1's work panics; a2's runner panics after its outcome (in the
        // housekeeping, outside the work).
        host.panic_in_work.insert(a1.job.id);
        host.panic_after_commit.insert(a2.job.id);
        let ids = [a1.job.id, a2.job.id, a3.job.id, b1.job.id];
        let host = Arc::new(host);
        let (_stop, shutdown) = watch::channel(false);
        let lanes = Lanes::new(Arc::clone(&host), 2, shutdown);
        for d in [a1, a2, a3, b1] {
            lanes.dispatch(d);
        }
        host.until_ended(&ids).await;

        let kind = host.terminal(ids[0]).await;
        let message = "the job panicked: boom";
        assert!(is_failed(&kind, ErrorCode::Internal, message), "{kind:?}");
        for id in &ids[1..] {
            assert_eq!(host.record(*id).await.state, JobState::Succeeded);
            let kind = host.terminal(*id).await;
            assert!(matches!(kind, EventKind::Succeeded { .. }), "{kind:?}");
        }
        let ran = host.ran();
        let in_a: Vec<_> = ran.iter().filter(|id| ids[..3].contains(id)).collect();
        assert_eq!(in_a, ids[..3].iter().collect::<Vec<_>>());
        assert!(ran.contains(&ids[3]));

        // Still one live lane per domain, which takes the next job.
        let a4 = delivery("a.example", 5);
        let id = a4.job.id;
        lanes.dispatch(a4);
        host.until_ended(&[id]).await;
        assert_eq!(host.record(id).await.state, JobState::Succeeded);
        assert_eq!(lanes.senders.lock().unwrap().len(), 2);
        tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while lanes.busy.load(Ordering::Relaxed) + lanes.waiting.load(Ordering::Relaxed) > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("no job left running or waiting");
    }

    #[tokio::test]
    async fn a_lane_that_ended_is_replaced() {
        let host = Arc::new(TestHost::new().await);
        let (_stop, shutdown) = watch::channel(false);
        let lanes = Lanes::new(Arc::clone(&host), 2, shutdown);
        // The lane of a.example has ended: its receiver is gone.
        let (tx, rx) = mpsc::unbounded_channel();
        drop(rx);
        let domain = Domain::parse("a.example").unwrap();
        lanes.senders.lock().unwrap().insert(domain, tx);

        let d = delivery("a.example", 1);
        let id = d.job.id;
        lanes.dispatch(d);
        host.until_ended(&[id]).await;
        assert_eq!(host.record(id).await.state, JobState::Succeeded);
        assert_eq!(host.ran(), vec![id]);
    }
}
