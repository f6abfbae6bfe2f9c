//! Per-domain lanes (DESIGN §4): jobs of one domain run one at a time, in
//! stream order; lanes of different domains run in parallel, at most
//! `max_lanes` at once. Waiting deploys of one domain coalesce: only the
//! newest runs, the older end `superseded`. Every message a lane holds
//! (running or waiting) gets in-progress acks, so none is redelivered while
//! it waits.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_nats::jetstream::AckKind;
use hostkit_proto::subjects::settings::JOBS_PROGRESS_INTERVAL;
use hostkit_proto::{Domain, EventKind, JobKind};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::Worker;
use super::job::{self, Delivery};

/// The lanes of one worker.
pub struct Lanes {
    /// Jobs running now.
    pub busy: AtomicUsize,
    /// Jobs delivered and waiting in a lane.
    pub waiting: AtomicUsize,
    worker: Arc<Worker>,
    permits: Arc<Semaphore>,
    senders: Mutex<HashMap<Domain, mpsc::UnboundedSender<Delivery>>>,
    tasks: Mutex<JoinSet<()>>,
    shutdown: watch::Receiver<bool>,
}

impl std::fmt::Debug for Lanes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lanes")
            .field("permits", &self.permits)
            .finish()
    }
}

impl Lanes {
    /// Lanes for `worker`, at most `max_lanes` running at once.
    pub fn new(
        worker: Arc<Worker>,
        max_lanes: usize,
        shutdown: watch::Receiver<bool>,
    ) -> Arc<Lanes> {
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

    /// Hand a job to its domain's lane (created on first use).
    pub fn dispatch(self: &Arc<Self>, delivery: Delivery) {
        let domain = delivery.job.domain.clone();
        let mut senders = self.senders.lock().expect("lanes lock");
        let sender = senders.entry(domain.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let lanes = Arc::clone(self);
            self.tasks
                .lock()
                .expect("lanes lock")
                .spawn(async move { lanes.lane(domain, rx).await });
            tx
        });
        self.waiting.fetch_add(1, Ordering::Relaxed);
        if let Err(mpsc::error::SendError(delivery)) = sender.send(delivery) {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            tracing::error!(job_id = %delivery.job.id, "lane is gone; the job will be redelivered");
        }
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
            if *shutdown.borrow() {
                for waiting in queue.drain(..) {
                    self.waiting.fetch_sub(1, Ordering::Relaxed);
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
                    _ = shutdown.changed() => continue,
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
                if *self.shutdown.borrow() {
                    // It waited for a permit and never started: back to the
                    // stream for the next start, like the other waiting jobs.
                    current.ack_with(AckKind::Nak(None)).await;
                    return;
                }
                self.busy.fetch_add(1, Ordering::Relaxed);
                job::run(&self.worker, &current).await;
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
                        if let Err(error) = self.worker.events.emit(Some(&domain), Some(&delivery.job.id), event).await {
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
            .events
            .build(&old.job.domain, &old.job.id, kind)
            .await?;
        match worker
            .store
            .mark_superseded(job::new_job(old), *newest, event.to_vec())
            .await?
        {
            None => worker.events.republish(&event).await,
            Some(finished) => match hostkit_proto::Event::from_slice(&finished.terminal_event) {
                Ok(earlier) => worker.events.republish(&earlier).await,
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
            tracing::info!(job_id = %old.job.id, by = %newest, "deploy superseded");
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
