//! Which node hosts a domain (`--node`, else the `hostkit_placement` KV
//! bucket the workers write), and what the node registry (`hostkit_nodes`)
//! knows about the fleet.

use std::time::Duration;

use chrono::Utc;
use futures_util::TryStreamExt;
use hostkit_proto::{Domain, NodeId, NodeInfo, Placement};

use crate::connect::Session;
use crate::error::{Error, is_missing_stream, not_set_up};
use crate::render::ago;

/// How long a KV read may take.
const KV_TIMEOUT: Duration = Duration::from_secs(5);

/// The node for `domain`: `explicit` when given (with a warning on stderr
/// when placement names another node), else the placement record. When
/// neither knows the domain, the error lists the known nodes (exit 2).
pub async fn node_for(
    session: &Session,
    domain: &Domain,
    explicit: Option<&NodeId>,
) -> Result<NodeId, Error> {
    let placed = match placement(session, domain).await {
        Ok(placed) => placed,
        // With --node, a missing or unreadable bucket does not matter.
        Err(_) if explicit.is_some() => None,
        Err(error) => return Err(error),
    };
    match (explicit, placed) {
        (Some(node), Some(placed)) if placed.node != *node => {
            eprintln!(
                "warning: {domain} is placed on node {} (since {}); sending to node {node} as --node asks",
                placed.node,
                placed.adopted_at.format("%Y-%m-%d %H:%M UTC")
            );
            Ok(node.clone())
        }
        (Some(node), _) => Ok(node.clone()),
        (None, Some(placed)) => Ok(placed.node),
        (None, None) => Err(unplaced(session, domain).await),
    }
}

/// The placement record of `domain`, if any: each node of the registry
/// records the domains it hosts under `<dtoken>.<node>`; the newest record
/// wins (a warning names the others). Without one, the key of earlier
/// workers (`<dtoken>`) is read.
pub async fn placement(session: &Session, domain: &Domain) -> Result<Option<Placement>, Error> {
    let bucket = session.names.placement_bucket();
    let store = kv_bucket(session, &bucket).await?;
    let get = async |key: String| {
        let value = tokio::time::timeout(KV_TIMEOUT, store.get(&key))
            .await
            .map_err(|_| Error::unavailable(format!("reading {bucket} timed out")))?
            .map_err(|e| Error::failed(format!("cannot read {bucket}/{key}: {e}")))?;
        let Some(value) = value else { return Ok(None) };
        serde_json::from_slice::<Placement>(&value)
            .map(Some)
            .map_err(|e| Error::failed(format!("{bucket}/{key} holds an unreadable record: {e}")))
    };
    let registry = nodes(session).await?;
    let keys = registry
        .iter()
        .map(|info| get(session.names.placement_key(domain, &info.node)));
    let mut found: Vec<Placement> = futures_util::future::try_join_all(keys)
        .await?
        .into_iter()
        .flatten()
        .collect();
    found.sort_by_key(|placed| std::cmp::Reverse(placed.adopted_at));
    if let [newest, others @ ..] = found.as_slice() {
        if !others.is_empty() {
            let names: Vec<String> = others.iter().map(|p| p.node.to_string()).collect();
            eprintln!(
                "warning: {domain} is also recorded on node(s) {}; using {}, which adopted it last",
                names.join(", "),
                newest.node
            );
        }
        return Ok(Some(newest.clone()));
    }
    get(session.names.legacy_placement_key(domain)).await
}

/// Every node in the registry, sorted by id.
pub async fn nodes(session: &Session) -> Result<Vec<NodeInfo>, Error> {
    let bucket = session.names.nodes_bucket();
    let store = kv_bucket(session, &bucket).await?;
    let read = async {
        let keys: Vec<String> = store
            .keys()
            .await
            .map_err(|e| Error::failed(format!("cannot list {bucket}: {e}")))?
            .try_collect()
            .await
            .map_err(|e| Error::failed(format!("cannot list {bucket}: {e}")))?;
        let mut nodes = Vec::new();
        for key in keys {
            let Some(value) = store
                .get(&key)
                .await
                .map_err(|e| Error::failed(format!("cannot read {bucket}/{key}: {e}")))?
            else {
                continue;
            };
            match serde_json::from_slice::<NodeInfo>(&value) {
                Ok(info) => nodes.push(info),
                Err(e) => eprintln!("warning: {bucket}/{key} holds an unreadable record: {e}"),
            }
        }
        Ok::<_, Error>(nodes)
    };
    let mut nodes = tokio::time::timeout(KV_TIMEOUT, read)
        .await
        .map_err(|_| Error::unavailable(format!("reading {bucket} timed out")))??;
    nodes.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(nodes)
}

/// The registry record of one node, if any.
pub async fn node_info(session: &Session, node: &NodeId) -> Result<Option<NodeInfo>, Error> {
    let bucket = session.names.nodes_bucket();
    let store = kv_bucket(session, &bucket).await?;
    let value = tokio::time::timeout(KV_TIMEOUT, store.get(session.names.node_key(node)))
        .await
        .map_err(|_| Error::unavailable(format!("reading {bucket} timed out")))?
        .map_err(|e| Error::failed(format!("cannot read {bucket}/{node}: {e}")))?;
    Ok(value.and_then(|v| serde_json::from_slice(&v).ok()))
}

/// Whether `info` reports a live worker: present, heartbeat fresh.
pub fn is_alive(info: Option<&NodeInfo>) -> bool {
    info.is_some_and(|info| !info.is_stale(Utc::now()))
}

/// `vps-1 (online)`, `vps-2 (offline, last heartbeat 3h ago)`.
pub fn describe_node(info: &NodeInfo) -> String {
    if is_alive(Some(info)) {
        format!("{} (online)", info.node)
    } else {
        format!(
            "{} (offline, last heartbeat {})",
            info.node,
            ago(info.last_heartbeat)
        )
    }
}

async fn unplaced(session: &Session, domain: &Domain) -> Error {
    let known = match nodes(session).await {
        Ok(nodes) if nodes.is_empty() => {
            "no node has registered yet: is hostkit-worker running?".to_owned()
        }
        Ok(nodes) => format!(
            "known nodes: {}",
            nodes
                .iter()
                .map(describe_node)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(error) => format!("the node list is unavailable: {error}"),
    };
    Error::usage(format!(
        "no node hosts {domain} yet (it was never deployed, or was removed): pass --node <node>; {known}"
    ))
}

async fn kv_bucket(
    session: &Session,
    bucket: &str,
) -> Result<async_nats::jetstream::kv::Store, Error> {
    match tokio::time::timeout(KV_TIMEOUT, session.js.get_key_value(bucket)).await {
        Ok(Ok(store)) => Ok(store),
        Ok(Err(e)) if is_missing_stream(&e) => Err(not_set_up(&format!("the KV bucket {bucket}"))),
        Ok(Err(e)) => Err(Error::failed(format!(
            "cannot open the KV bucket {bucket}: {e}"
        ))),
        Err(_) => Err(Error::unavailable(format!(
            "NATS at {} did not answer about the KV bucket {bucket}",
            session.server
        ))),
    }
}
