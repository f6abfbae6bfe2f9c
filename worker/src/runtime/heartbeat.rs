//! Heartbeats: every few seconds a `heartbeat` node event and the node's
//! record in the `hostkit_nodes` KV bucket (version, domains, capacity).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use hostkit_proto::EventKind;
use hostkit_proto::registry::NodeInfo;
use hostkit_proto::subjects::settings::HEARTBEAT_INTERVAL;

use super::Worker;
use super::lanes::Lanes;
use crate::shutdown::Shutdown;

/// Beat until `shutdown` (the first beat is [`beat`] at startup: this
/// starts one interval later).
pub async fn run(worker: Arc<Worker>, lanes: Arc<Lanes>, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(HEARTBEAT_INTERVAL);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = ticker.tick() => beat(&worker, &lanes).await,
            _ = shutdown.recv() => return,
        }
    }
}

/// One beat: the `heartbeat` event and the node's record. The worker beats
/// once before it takes jobs, so the CLI finds the node's record (and what
/// it can load) from the first job on.
pub async fn beat(worker: &Worker, lanes: &Lanes) {
    let domains: Vec<_> = match worker.store.domains().await {
        Ok(records) => records.into_iter().map(|r| r.domain).collect(),
        Err(error) => {
            tracing::warn!(%error, "heartbeat without domains: store unreadable");
            Vec::new()
        }
    };
    let version = env!("CARGO_PKG_VERSION").to_string();
    let capacity = worker.settings.max_lanes as u32;
    let kind = EventKind::Heartbeat {
        version: version.clone(),
        domains: domains.clone(),
        running_jobs: lanes.busy.load(Ordering::Relaxed) as u32,
        queue_depth: lanes.waiting.load(Ordering::Relaxed) as u32,
        capacity,
    };
    if let Err(error) = worker.events.emit(None, None, kind).await {
        tracing::warn!(%error, "heartbeat not recorded");
    }
    let info = NodeInfo {
        node: worker.node.clone(),
        version,
        domains,
        capacity,
        last_heartbeat: chrono::Utc::now(),
        seal_key: worker.settings.seal_key.as_ref().map(|k| k.public_key()),
        layered_images: true,
    };
    if let Ok(value) = serde_json::to_vec(&info) {
        if let Err(error) = worker
            .nodes
            .put(worker.names.node_key(&worker.node), value.into())
            .await
        {
            tracing::debug!(%error, "node record not updated (NATS away?)");
        }
    }
}
