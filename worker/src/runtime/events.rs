//! Publishing events: every event is numbered (a per-node sequence that
//! survives restarts), written to the SQLite outbox, then published to
//! JetStream by one task, in order, with `Nats-Msg-Id = <node>:<seq>` so a
//! re-publish after a crash is de-duplicated by the server. While NATS is
//! away the outbox grows; once it is back, everything goes out in order.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use hostkit_proto::{Domain, Event, EventKind, JobId, Names, NodeId};
use tokio::sync::Notify;

use crate::shutdown::Shutdown;
use crate::store::{OutboxEntry, Store, StoreError};

/// How many outbox entries are published per batch.
const BATCH: usize = 256;
/// How long to wait for the server's ack of one event.
const ACK_TIMEOUT: Duration = Duration::from_secs(5);

/// Emits events; cheap to clone.
#[derive(Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

struct Inner {
    node: NodeId,
    names: Names,
    store: Store,
    wake: Notify,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("node", &self.inner.node)
            .finish()
    }
}

impl Events {
    /// Events of `node`, queued through `store`.
    pub fn new(node: NodeId, names: Names, store: Store) -> Self {
        Events {
            inner: Arc::new(Inner {
                node,
                names,
                store,
                wake: Notify::new(),
            }),
        }
    }

    /// Number, persist and queue an event; answers it as published.
    pub async fn emit(
        &self,
        domain: Option<&Domain>,
        job_id: Option<&JobId>,
        kind: EventKind,
    ) -> Result<Event, StoreError> {
        let seq = self.inner.store.next_event_seq().await?;
        let mut event = Event::new(self.inner.node.clone(), seq, kind);
        if let Some(domain) = domain {
            event = event.with_domain(domain.clone());
        }
        if let Some(job_id) = job_id {
            event = event.with_job_id(*job_id);
        }
        self.enqueue(&event).await?;
        Ok(event)
    }

    /// Number an event without queuing it: for the terminal event, which the
    /// store records with the job's outcome before it is published.
    pub async fn build(
        &self,
        domain: &Domain,
        job_id: &JobId,
        kind: EventKind,
    ) -> Result<Event, StoreError> {
        let seq = self.inner.store.next_event_seq().await?;
        Ok(Event::for_job(
            self.inner.node.clone(),
            seq,
            domain.clone(),
            *job_id,
            kind,
        ))
    }

    /// Queue an already-built event again (the terminal event of a job that
    /// was redelivered after it finished). Same msg id: NATS de-duplicates.
    pub async fn republish(&self, event: &Event) -> Result<(), StoreError> {
        self.enqueue(event).await
    }

    async fn enqueue(&self, event: &Event) -> Result<(), StoreError> {
        let Some(subject) = self.inner.names.event_subject(event) else {
            tracing::warn!(
                kind = event.kind.kind_str(),
                "event has no subject; dropped"
            );
            return Ok(());
        };
        self.inner
            .store
            .outbox_push(subject, event.msg_id(), event.to_vec())
            .await?;
        self.inner.wake.notify_one();
        Ok(())
    }

    /// Publish the outbox to JetStream until `shutdown` turns true and the
    /// outbox is empty (or the server stays away past the shutdown).
    pub async fn publish_loop(&self, js: jetstream::Context, mut shutdown: Shutdown) {
        let mut backoff = Duration::from_millis(100);
        loop {
            let pending = match self.inner.store.outbox_pending(BATCH).await {
                Ok(pending) => pending,
                Err(error) => {
                    tracing::error!(%error, "reading the event outbox failed");
                    Vec::new()
                }
            };
            if pending.is_empty() {
                if shutdown.is_shutdown() {
                    return;
                }
                tokio::select! {
                    _ = self.inner.wake.notified() => {}
                    _ = shutdown.recv() => {}
                }
                continue;
            }
            match self.publish_batch(&js, pending).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(reason) => {
                    if shutdown.is_shutdown() {
                        tracing::warn!(%reason, "shutting down with events still in the outbox; they go out after the restart");
                        return;
                    }
                    tracing::warn!(%reason, retry_in = ?backoff, "publishing events failed; they wait in the outbox");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.recv() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Publish a batch in order, each message acknowledged before the next
    /// is sent, and the delivered prefix leaves the outbox in one commit.
    /// Not pipelined, on purpose: when a server dies with messages in
    /// flight, a later one may be stored while an earlier one is lost, and
    /// the retry would then store them out of order (the cluster test saw
    /// it). One round trip per event is cheap next to a job's work.
    async fn publish_batch(
        &self,
        js: &jetstream::Context,
        pending: Vec<OutboxEntry>,
    ) -> Result<(), String> {
        let mut failure = None;
        let mut delivered = None;
        for entry in &pending {
            let message = PublishMessage::build()
                .payload(entry.payload.clone().into())
                .message_id(&entry.msg_id);
            let sent = async {
                js.send_publish(entry.subject.clone(), message)
                    .await
                    .map_err(|e| format!("publish to {}: {e}", entry.subject))?
                    .await
                    .map_err(|e| format!("ack for {}: {e}", entry.subject))
            };
            match tokio::time::timeout(ACK_TIMEOUT, sent).await {
                Ok(Ok(_)) => delivered = Some(entry.id),
                Ok(Err(error)) => {
                    failure = Some(error);
                    break;
                }
                Err(_) => {
                    failure = Some(format!(
                        "no ack for {} within {ACK_TIMEOUT:?}",
                        entry.subject
                    ));
                    break;
                }
            }
        }
        if let Some(id) = delivered {
            self.inner
                .store
                .outbox_delete_through(id)
                .await
                .map_err(|e| format!("outbox delete: {e}"))?;
        }
        failure.map_or(Ok(()), Err)
    }
}
