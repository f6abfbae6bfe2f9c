//! The placement records this node writes: `<dtoken>.<node>` in the
//! placement bucket says "this node hosts that domain". A node writes and
//! deletes only keys that end in its own id, which is what the sample
//! server configuration grants it (`$KV.hostkit_placement.*.<node>`), so a
//! worker can never re-point another node's domain to itself.

use hostkit_proto::{Domain, Placement};

use super::Worker;

/// Records that this node hosts `domain` (now).
pub async fn record(worker: &Worker, domain: &Domain) -> Result<(), String> {
    let placement = Placement {
        node: worker.node.clone(),
        adopted_at: chrono::Utc::now(),
    };
    let value = serde_json::to_vec(&placement).unwrap_or_default();
    worker
        .placement
        .put(
            worker.names.placement_key(domain, &worker.node),
            value.into(),
        )
        .await
        .map(drop)
        .map_err(|e| e.to_string())
}

/// Releases `domain` (removed from this node).
pub async fn release(worker: &Worker, domain: &Domain) {
    if let Err(error) = worker
        .placement
        .delete(worker.names.placement_key(domain, &worker.node))
        .await
    {
        tracing::warn!(%error, %domain, "could not release the domain's placement record");
    }
}

/// At startup: every domain this node hosts has its record, and a record
/// in the key layout of earlier workers (the domain's token alone) that
/// names this node is replaced by it. Deleting the old key needs the
/// earlier, wider write permission; where the server refuses it the old
/// key stays and is only read when no node's key names the domain.
pub async fn adopt_hosted(worker: &Worker) {
    let domains = match worker.store.domains().await {
        Ok(domains) => domains,
        Err(error) => {
            tracing::warn!(%error, "cannot list the hosted domains to record their placement");
            return;
        }
    };
    for record in domains {
        let domain = &record.domain;
        let key = worker.names.placement_key(domain, &worker.node);
        if !matches!(worker.placement.get(&key).await, Ok(Some(_))) {
            if let Err(error) = self::record(worker, domain).await {
                tracing::warn!(%error, %domain, "could not record the domain's placement");
                continue;
            }
        }
        let legacy = worker.names.legacy_placement_key(domain);
        let Ok(Some(value)) = worker.placement.get(&legacy).await else {
            continue;
        };
        let ours = serde_json::from_slice::<Placement>(&value)
            .is_ok_and(|placed| placed.node == worker.node);
        if ours {
            if let Err(error) = worker.placement.delete(&legacy).await {
                tracing::warn!(%error, %domain, key = legacy, "could not remove the domain's placement record of the earlier key layout");
            }
        }
    }
}
