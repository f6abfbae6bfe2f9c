//! Control requests to a node's worker (`<root>.ctl.<node>.<verb>`, plain
//! request/reply): one answer for status, services, versions and ping; a
//! stream of [`LogChunk`]s for logs.

use std::time::Duration;

use futures_util::StreamExt;
use hostkit_proto::control::{LogChunk, LogsRequest};
use hostkit_proto::subjects::settings::CONTROL_TIMEOUT;
use hostkit_proto::{ControlCall, ErrorBody, NodeId, Reply};

use crate::connect::Session;
use crate::error::Error;

/// How long to wait for a logs chunk when not following.
const LOGS_CHUNK_TIMEOUT: Duration = Duration::from_secs(15);

/// Connects, finds the node that hosts `domain` (or takes `node`) and asks
/// it `request`: every per-domain query command's first steps.
pub async fn ask_about<R: ControlCall>(
    connect: &crate::cli::ConnectArgs,
    domain: &hostkit_proto::Domain,
    node: Option<&NodeId>,
    call: &R,
) -> Result<(NodeId, R::Reply), Error> {
    let session = crate::connect::connect(connect).await?;
    let node = crate::placement::node_for(&session, domain, node).await?;
    let reply = request(&session, &node, call).await?;
    Ok((node, reply))
}

/// Sends `request` to `node` and waits (bounded) for its answer.
pub async fn request<R: ControlCall>(
    session: &Session,
    node: &NodeId,
    request: &R,
) -> Result<R::Reply, Error> {
    let subject = session.names.ctl_for(node, R::VERB, request.domain());
    let payload = serde_json::to_vec(request)
        .map_err(|e| Error::failed(format!("cannot encode the {} request: {e}", R::VERB)))?;
    let answer = tokio::time::timeout(
        CONTROL_TIMEOUT,
        session.client.request(subject, payload.into()),
    )
    .await
    .map_err(|_| silent(node, R::VERB.as_str()))?
    .map_err(|e| match e.kind() {
        async_nats::RequestErrorKind::NoResponders => no_worker(node),
        async_nats::RequestErrorKind::TimedOut => silent(node, R::VERB.as_str()),
        _ => Error::unavailable(format!(
            "the {} request to node {node} failed: {e}",
            R::VERB
        )),
    })?;
    decode::<R::Reply>(node, R::VERB.as_str(), &answer.payload)
}

/// Asks `node` for logs; answers a stream of chunks that ends after the
/// chunk with `end: true` (or with the first error).
pub async fn logs(
    session: &Session,
    node: &NodeId,
    request: &LogsRequest,
) -> Result<impl futures_util::Stream<Item = Result<LogChunk, Error>> + use<>, Error> {
    let subject = session.names.ctl_for(
        node,
        hostkit_proto::ControlVerb::Logs,
        Some(&request.domain),
    );
    let inbox = session.client.new_inbox();
    let mut replies = session
        .client
        .subscribe(inbox.clone())
        .await
        .map_err(|e| Error::unavailable(format!("cannot subscribe for log replies: {e}")))?;
    let payload = serde_json::to_vec(request)
        .map_err(|e| Error::failed(format!("cannot encode the logs request: {e}")))?;
    session
        .client
        .publish_with_reply(subject, inbox, payload.into())
        .await
        .map_err(|e| Error::unavailable(format!("cannot send the logs request: {e}")))?;
    let follow = request.follow;
    let node = node.clone();
    let stream = async_stream(move |tx| async move {
        let mut expected = 0u64;
        loop {
            let next = if follow {
                replies.next().await
            } else {
                match tokio::time::timeout(LOGS_CHUNK_TIMEOUT, replies.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let _ = tx.send(Err(silent(&node, "logs"))).await;
                        return;
                    }
                }
            };
            let Some(message) = next else { return };
            if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
                let _ = tx.send(Err(no_worker(&node))).await;
                return;
            }
            let chunk = match decode::<LogChunk>(&node, "logs", &message.payload) {
                Ok(chunk) => chunk,
                Err(error) => {
                    let _ = tx.send(Err(error)).await;
                    return;
                }
            };
            if chunk.seq > expected {
                eprintln!(
                    "warning: {} log message(s) lost on the way",
                    chunk.seq - expected
                );
            }
            expected = chunk.seq + 1;
            let end = chunk.end;
            if tx.send(Ok(chunk)).await.is_err() || end {
                return;
            }
        }
    });
    Ok(stream)
}

/// A stream fed by a task through a small channel.
fn async_stream<T, F, Fut>(body: F) -> impl futures_util::Stream<Item = T>
where
    T: Send + 'static,
    F: FnOnce(tokio::sync::mpsc::Sender<T>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(body(tx));
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}

fn decode<T: serde::de::DeserializeOwned>(
    node: &NodeId,
    verb: &str,
    payload: &[u8],
) -> Result<T, Error> {
    let reply: Reply<T> = serde_json::from_slice(payload).map_err(|e| {
        Error::failed(format!(
            "node {node} answered the {verb} request with something this hostkit cannot read ({e}); are the CLI and the worker of compatible versions?"
        ))
    })?;
    reply.into_result().map_err(refused)
}

/// A worker's error reply as an error (exit 1), with its code and hint.
pub fn refused(error: ErrorBody) -> Error {
    let mut text = format!("{} ({})", error.message, error.code);
    if let Some(hint) = &error.hint {
        text.push_str(&format!("\n  hint: {hint}"));
    }
    Error::failed(text)
}

/// Nobody subscribes to the node's control subjects.
pub fn no_worker(node: &NodeId) -> Error {
    Error::unavailable(format!(
        "[node.offline] no worker is listening for node {node}: is hostkit-worker running?"
    ))
}

fn silent(node: &NodeId, verb: &str) -> Error {
    Error::unavailable(format!(
        "node {node} did not answer the {verb} request in time: is its worker overloaded or cut off from NATS?"
    ))
}
