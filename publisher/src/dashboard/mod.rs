//! `hostkit dashboard`: a live web view of the fleet (DESIGN §12) in one
//! process. The node registry seeds the nodes; an ordered consumer on the
//! events stream replays its history and then follows it live, folding
//! every event into [`state::Fleet`] (bounded: per node and per domain).
//! `GET /` renders the current state; `GET /events` is a server-sent-events
//! feed of the cards each event changed (and the event itself); `GET
//! /jobs/<id>` replays one job's events from the stream. Reads only: it
//! works with the read-only `dashboard` identity of dist/nats-server.conf.

pub mod page;
pub mod state;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use chrono::Utc;
use futures_util::{Stream, StreamExt};
use hostkit_proto::{Event, JobId, NodeInfo};
use serde_json::json;
use tokio::sync::broadcast;

use crate::cli::ConnectArgs;
use crate::connect::{self, Session};
use crate::error::{Error, Exit};
use crate::render::Output;
use state::{Changed, Fleet};

/// Lines kept in the page's event log.
const LOG_KEPT: usize = 100;
/// Updates buffered per browser before it is told to reload.
const FEED_BUFFER: usize = 512;
/// How often node cards are redrawn (online → offline needs no event).
const NODE_REFRESH: Duration = Duration::from_secs(10);

struct Shared {
    session: Session,
    fleet: Mutex<Fleet>,
    log: Mutex<VecDeque<String>>,
    feed: broadcast::Sender<String>,
}

/// `hostkit dashboard [--listen ADDR]`: serves until Ctrl-C.
pub async fn dashboard(
    connect: &ConnectArgs,
    out: &Output,
    listen: SocketAddr,
) -> Result<Exit, Error> {
    let session = connect::connect(connect).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| Error::usage(format!("cannot listen on {listen}")).with_source(e))?;
    let (feed, _) = broadcast::channel(FEED_BUFFER);
    let shared = Arc::new(Shared {
        session,
        fleet: Mutex::new(Fleet::default()),
        log: Mutex::new(VecDeque::new()),
        feed,
    });
    {
        // Bounded: the page serves meanwhile; heartbeats add nodes anyway.
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            if tokio::time::timeout(Duration::from_secs(10), seed_nodes(&shared))
                .await
                .is_err()
            {
                eprintln!("warning: the node registry did not answer in 10 s");
            }
        });
    }
    tokio::spawn(follow_events(Arc::clone(&shared)));
    tokio::spawn(refresh_nodes(Arc::clone(&shared)));
    let app = Router::new()
        .route("/", get(index))
        .route("/events", get(events))
        .route("/jobs/{id}", get(job))
        .with_state(shared);
    out.line(format!(
        "dashboard on http://{} (Ctrl-C to stop)",
        listener.local_addr().unwrap_or(listen)
    ));
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| Error::failed("the dashboard's server failed").with_source(e))?;
    Ok(Exit::Success)
}

/// Nodes from the registry (each worker's last `NodeInfo`).
async fn seed_nodes(shared: &Shared) {
    let names = &shared.session.names;
    let Ok(store) = shared.session.js.get_key_value(names.nodes_bucket()).await else {
        return;
    };
    let Ok(mut keys) = store.keys().await else {
        return;
    };
    while let Some(Ok(key)) = keys.next().await {
        if let Ok(Some(value)) = store.get(&key).await
            && let Ok(info) = serde_json::from_slice::<NodeInfo>(&value)
        {
            shared.fleet.lock().expect("fleet lock").node_info(&info);
        }
    }
}

/// Replay the events stream, then follow it; on a broken stream, resume
/// after the last event seen.
async fn follow_events(shared: Arc<Shared>) {
    let mut next_seq = 1u64;
    loop {
        match consume(&shared, next_seq).await {
            Ok(seq) => next_seq = seq,
            Err(error) => eprintln!("warning: the events stream broke ({error}); resuming"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Read events from stream sequence `from`; answers the sequence to resume at.
async fn consume(shared: &Shared, from: u64) -> Result<u64, String> {
    let session = &shared.session;
    let stream = session
        .js
        .get_stream(session.names.events_stream())
        .await
        .map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: session.client.new_inbox(),
            deliver_policy: if from <= 1 {
                DeliverPolicy::All
            } else {
                DeliverPolicy::ByStartSequence {
                    start_sequence: from,
                }
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    let mut messages = consumer.messages().await.map_err(|e| e.to_string())?;
    let mut next = from;
    while let Some(message) = messages.next().await {
        let message = message.map_err(|e| e.to_string())?;
        if let Ok(info) = message.info() {
            next = info.stream_sequence + 1;
        }
        if let Ok(event) = Event::from_slice(&message.payload) {
            apply(shared, &event);
        }
    }
    Ok(next)
}

/// Fold `event` into the fleet and tell the browsers what changed.
fn apply(shared: &Shared, event: &Event) {
    let now = Utc::now();
    let cards = {
        let mut fleet = shared.fleet.lock().expect("fleet lock");
        let changed = fleet.apply(event);
        changed
            .into_iter()
            .filter_map(|c| card(&fleet, &c, now))
            .collect::<Vec<_>>()
    };
    let line = (!matches!(event.kind, hostkit_proto::EventKind::Heartbeat { .. }))
        .then(|| page::log_line(event));
    if let Some(line) = &line {
        let mut log = shared.log.lock().expect("log lock");
        log.push_back(line.clone());
        if log.len() > LOG_KEPT {
            log.pop_front();
        }
    }
    let update = json!({ "event": event, "cards": cards, "line": line });
    // Nobody listening is fine.
    let _ = shared.feed.send(update.to_string());
}

/// A card's id, list and HTML.
fn card(fleet: &Fleet, changed: &Changed, now: chrono::DateTime<Utc>) -> Option<serde_json::Value> {
    match changed {
        Changed::Node(id) => fleet.nodes.get(id).map(|n| {
            json!({ "id": page::card_id("node", id), "list": "nodes", "html": page::node_card(n, now) })
        }),
        Changed::Domain(id) => fleet.domains.get(id).map(|d| {
            json!({ "id": page::card_id("domain", id), "list": "domains", "html": page::domain_card(d) })
        }),
    }
}

/// Redraw node cards now and then: a silent node turns offline.
async fn refresh_nodes(shared: Arc<Shared>) {
    let mut ticker = tokio::time::interval(NODE_REFRESH);
    loop {
        ticker.tick().await;
        let now = Utc::now();
        let cards: Vec<serde_json::Value> = {
            let fleet = shared.fleet.lock().expect("fleet lock");
            fleet
                .nodes
                .keys()
                .filter_map(|id| card(&fleet, &Changed::Node(id.clone()), now))
                .collect()
        };
        let _ = shared
            .feed
            .send(json!({ "cards": cards, "line": null }).to_string());
    }
}

async fn index(State(shared): State<Arc<Shared>>) -> Html<String> {
    let fleet = shared.fleet.lock().expect("fleet lock");
    let log: Vec<String> = shared
        .log
        .lock()
        .expect("log lock")
        .iter()
        .cloned()
        .collect();
    Html(page::page(&fleet, Utc::now(), &log))
}

async fn events(
    State(shared): State<Arc<Shared>>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    let updates = shared.feed.subscribe();
    let stream = futures_util::stream::unfold(updates, |mut updates| async move {
        let event = match updates.recv().await {
            Ok(data) => SseEvent::default().event("hostkit").data(data),
            // Too slow a reader: it reloads the page (the current state).
            Err(broadcast::error::RecvError::Lagged(_)) => {
                SseEvent::default().event("reload").data("lagged")
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok(event), updates))
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// One job's events, replayed from the stream.
async fn job(State(shared): State<Arc<Shared>>, Path(id): Path<String>) -> impl IntoResponse {
    let Ok(job) = id.parse::<JobId>() else {
        return (
            axum::http::StatusCode::NOT_FOUND,
            Html("no such job".to_owned()),
        );
    };
    let subject = shared.session.names.job_events_any_domain(&job);
    let mut history = Vec::new();
    if let Ok(mut events) = crate::follow::subscribe(&shared.session, subject).await {
        // The stored events arrive at once; a short silence ends the replay.
        while let Ok(Some(Ok(event))) =
            tokio::time::timeout(Duration::from_millis(300), events.next()).await
        {
            let terminal = event.is_terminal();
            history.push(event);
            if terminal {
                break;
            }
        }
    }
    (
        axum::http::StatusCode::OK,
        Html(page::job_page(&job.to_string(), &history)),
    )
}
