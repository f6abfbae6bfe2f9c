//! `hostkit watch [domain]`: live events (`<root>.events.>` and
//! `<root>.nodes.>`, or one domain's `<root>.events.<dtoken>.>`), filtered
//! by kind and node, one line each (`--json`: the events as NDJSON), until
//! Ctrl-C. Heartbeats are shown only when asked for.

use futures_util::StreamExt;
use futures_util::stream::select_all;
use hostkit_proto::{Domain, Event, EventKind, NodeId};

use crate::cli::ConnectArgs;
use crate::connect;
use crate::error::{Error, Exit};
use crate::render::{Output, watch_line};

/// Which events to show.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only these kinds (empty: all but heartbeats).
    pub kinds: Vec<String>,
    /// Only from this node.
    pub node: Option<NodeId>,
    /// Show heartbeats too.
    pub heartbeats: bool,
}

impl Filter {
    /// Whether `event` passes.
    pub fn matches(&self, event: &Event) -> bool {
        let kind = event.kind.kind_str();
        if self.node.as_ref().is_some_and(|n| *n != event.node) {
            return false;
        }
        if !self.kinds.is_empty() {
            return self.kinds.iter().any(|k| k == kind);
        }
        self.heartbeats || !matches!(event.kind, EventKind::Heartbeat { .. })
    }
}

/// `hostkit watch`.
pub async fn watch(
    connect: &ConnectArgs,
    out: &Output,
    domain: Option<&Domain>,
    filter: Filter,
) -> Result<Exit, Error> {
    for kind in &filter.kinds {
        if !EventKind::KINDS.contains(&kind.as_str()) {
            return Err(Error::usage(format!(
                "--kind {kind}: not an event kind (one of {})",
                EventKind::KINDS.join(", ")
            )));
        }
    }
    let session = connect::connect(connect).await?;
    let subjects = match domain {
        Some(domain) => vec![session.names.domain_events(domain)],
        None => session.names.events_stream_subjects(),
    };
    let mut subscriptions = Vec::new();
    for subject in subjects {
        let subscriber = session
            .client
            .subscribe(subject.clone())
            .await
            .map_err(|e| Error::unavailable(format!("cannot subscribe to {subject}: {e}")))?;
        subscriptions.push(subscriber);
    }
    // Make sure the server has the subscriptions before saying so.
    let _ = session.client.flush().await;
    let scope = domain.map_or_else(|| "all domains and nodes".to_owned(), ToString::to_string);
    if out.json() {
        eprintln!("watching {scope} (Ctrl-C to stop)");
    } else {
        out.line(format!("watching {scope} (Ctrl-C to stop)"));
    }
    let mut messages = select_all(subscriptions);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let message = tokio::select! {
            next = messages.next() => match next {
                Some(message) => message,
                None => return Err(Error::unavailable("the connection to NATS ended")),
            },
            _ = &mut interrupted => return Ok(Exit::Success),
        };
        let event = match Event::from_slice(&message.payload) {
            Ok(event) => event,
            Err(e) => {
                out.warn(format!("an unreadable event on {}: {e}", message.subject));
                continue;
            }
        };
        if !filter.matches(&event) {
            continue;
        }
        if out.json() {
            out.json_line(&event);
        } else {
            out.line(watch_line(&event));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind) -> Event {
        Event::new("vps-1".parse().unwrap(), 1, kind)
    }

    #[test]
    fn heartbeats_only_when_asked() {
        let beat = event(EventKind::Heartbeat {
            version: "0.1.0".into(),
            domains: vec![],
            running_jobs: 0,
            queue_depth: 0,
            capacity: 4,
        });
        let online = event(EventKind::Online {
            version: "0.1.0".into(),
        });
        let all = Filter::default();
        assert!(!all.matches(&beat) && all.matches(&online));
        let beats = Filter {
            heartbeats: true,
            ..Filter::default()
        };
        assert!(beats.matches(&beat));
        let kinds = Filter {
            kinds: vec!["heartbeat".into()],
            ..Filter::default()
        };
        assert!(kinds.matches(&beat) && !kinds.matches(&online));
        let other_node = Filter {
            node: Some("vps-2".parse().unwrap()),
            ..Filter::default()
        };
        assert!(!other_node.matches(&online));
    }
}
