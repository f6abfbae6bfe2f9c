//! Following a job to its terminal event, and the exit code it ends with.
//!
//! A job's events are read with an ordered consumer on the events stream
//! filtered on the job's subject and delivering from the start: made before
//! the job is published, it misses nothing, and it survives reconnects (it
//! resumes after the last event it delivered); made later (`hostkit follow`),
//! it replays the job from its first event.
//!
//! While no event has arrived, the node's heartbeat is checked every few
//! seconds: a node without a live worker ends the wait (exit 4) instead of
//! leaving CI hanging.

use std::pin::Pin;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, push};
use chrono::{DateTime, Utc};
use futures_util::{Stream, StreamExt};
use hostkit_proto::{Event, EventKind, NodeId};
use tokio::time::Instant;

use crate::connect::Session;
use crate::error::{Error, Exit, is_missing_stream, not_set_up};
use crate::placement;
use crate::render::{self, Output};

/// How long to wait for a first event before asking whether the node's
/// worker is alive (and how often to ask again).
pub const START_GRACE: Duration = Duration::from_secs(5);

/// After this long without an event, [`subscribe`] reads through a new
/// consumer (a consumer whose server died may stop without an error).
pub const QUIET_RESUBSCRIBE: Duration = Duration::from_secs(15);

/// A stream of parsed events.
pub type Events = Pin<Box<dyn Stream<Item = Result<Event, String>> + Send>>;

/// Every event stored or to come on `subject` (a job's events), in order.
///
/// When the consumer fails (its server died, or the cluster moved the
/// events stream's leader and the consumer cannot be made again under its
/// name), or stays silent for [`QUIET_RESUBSCRIBE`], a new consumer, under
/// a new name, replays the job's events from the start; the events already
/// delivered are skipped (a job's events come from one node, numbered in
/// order), so nothing is lost or shown twice.
pub async fn subscribe(session: &Session, subject: String) -> Result<Events, Error> {
    let first = open(session, &subject).await?;
    let state = Resume {
        session: session.clone(),
        subject,
        current: Some(first),
        last_seq: None,
    };
    Ok(Box::pin(futures_util::stream::unfold(
        state,
        |mut state| async move {
            loop {
                let Some(current) = state.current.as_mut() else {
                    match open(&state.session, &state.subject).await {
                        Ok(fresh) => {
                            state.current = Some(fresh);
                            continue;
                        }
                        Err(error) => return Some((Err(error.to_string()), state)),
                    }
                };
                let Ok(next) = tokio::time::timeout(QUIET_RESUBSCRIBE, current.next()).await else {
                    // Silence: the job may just be quiet, or the consumer
                    // may be gone without a word (its server died while this
                    // client was reconnecting). A new one replays what was
                    // missed; what was shown is skipped.
                    state.current = None;
                    continue;
                };
                match next {
                    Some(Ok(event)) => {
                        if state.last_seq.is_some_and(|last| event.seq <= last) {
                            continue;
                        }
                        state.last_seq = Some(event.seq);
                        return Some((Ok(event), state));
                    }
                    Some(Err(Failure::Unreadable(error))) => return Some((Err(error), state)),
                    Some(Err(Failure::Consumer(error))) => {
                        state.current = None;
                        return Some((Err(error), state));
                    }
                    None => {
                        state.current = None;
                        return Some((Err("the event consumer ended".to_owned()), state));
                    }
                }
            }
        },
    )))
}

/// What [`subscribe`] keeps between events.
struct Resume {
    session: Session,
    subject: String,
    current: Option<Consumed>,
    /// The node sequence of the last event delivered.
    last_seq: Option<u64>,
}

/// The events one consumer delivers.
type Consumed = Pin<Box<dyn Stream<Item = Result<Event, Failure>> + Send>>;

/// Why a read failed: the consumer (make a new one) or one message.
enum Failure {
    Consumer(String),
    Unreadable(String),
}

/// An ordered consumer on the events stream for `subject`, from its start.
async fn open(session: &Session, subject: &str) -> Result<Consumed, Error> {
    let name = session.names.events_stream();
    let stream = match session.js.get_stream(&name).await {
        Ok(stream) => stream,
        Err(e) if is_missing_stream(&e) => return Err(not_set_up(&format!("the stream {name}"))),
        Err(e) => {
            return Err(Error::unavailable(format!(
                "cannot open the events stream {name}: {e}"
            )));
        }
    };
    let consumer = stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: session.client.new_inbox(),
            // A name puts the filter into the API subject
            // (`CONSUMER.CREATE.<stream>.<name>.<filter>`), which NATS
            // permissions can confine to a tenant's own domains.
            name: Some(format!("follow-{}", hostkit_proto::JobId::new())),
            filter_subject: subject.to_owned(),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        })
        .await
        .map_err(|e| {
            Error::unavailable(format!(
                "cannot read the events of {subject} from {name}: {e}"
            ))
        })?;
    let messages = consumer
        .messages()
        .await
        .map_err(|e| Error::unavailable(format!("cannot read the events of {subject}: {e}")))?;
    Ok(Box::pin(messages.map(|message| {
        let message = message.map_err(|e| Failure::Consumer(e.to_string()))?;
        Event::from_slice(&message.payload)
            .map_err(|e| Failure::Unreadable(format!("an unreadable event: {e}")))
    })))
}

/// How a wait for a job ended.
#[derive(Debug)]
pub enum Ending {
    /// The job's terminal event.
    Terminal(Event),
    /// The deadline passed first.
    TimedOut,
    /// No event came and the node has no live worker.
    NoWorker(NodeId),
    /// Ctrl-C.
    Interrupted,
}

/// What the follower knows before the first event.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The node the job was sent to (checked for a live worker while no
    /// event arrives); `None` when unknown (`hostkit follow`).
    pub node: Option<NodeId>,
    /// When to give up.
    pub deadline: Instant,
}

/// Reads `events` until the terminal one, drawing each (or printing it as
/// JSON), or until the deadline, a dead node or Ctrl-C.
pub async fn follow(
    session: &Session,
    mut events: Events,
    out: &Output,
    expect: &Expect,
) -> Ending {
    let mut origin = None;
    let mut seen_any = false;
    let mut told_waiting = false;
    let mut next_check = Instant::now() + START_GRACE;
    let mut last_error: Option<String> = None;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            next = events.next() => match next {
                Some(Ok(event)) => {
                    seen_any = true;
                    last_error = None;
                    let origin = *origin.get_or_insert(event.at);
                    show(out, &event, origin);
                    if event.is_terminal() {
                        out.finish_progress();
                        return Ending::Terminal(event);
                    }
                }
                Some(Err(error)) => {
                    if last_error.as_ref() != Some(&error) {
                        out.warn(format!("reading events: {error}; retrying"));
                        last_error = Some(error);
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                None => {
                    out.warn("the event stream ended before the job did");
                    return Ending::TimedOut;
                }
            },
            _ = tokio::time::sleep_until(expect.deadline) => {
                out.finish_progress();
                return Ending::TimedOut;
            }
            _ = tokio::time::sleep_until(next_check), if !seen_any && (expect.node.is_some() || !told_waiting) => {
                let Some(node) = &expect.node else {
                    out.line("no event of this job yet (is the id right? has it been published?); waiting");
                    told_waiting = true;
                    continue;
                };
                let info = placement::node_info(session, node).await.ok().flatten();
                if !placement::is_alive(info.as_ref()) {
                    return Ending::NoWorker(node.clone());
                }
                if !told_waiting {
                    out.line(format!("node {node} is alive; waiting for it to start the job (busy with other jobs?)"));
                    told_waiting = true;
                }
                next_check = Instant::now() + START_GRACE;
            }
            _ = &mut interrupted => {
                out.finish_progress();
                return Ending::Interrupted;
            }
        }
    }
}

/// Draws one event; human lines carry the time since the job's first event.
fn show(out: &Output, event: &Event, origin: DateTime<Utc>) {
    if out.json() {
        out.json_line(event);
        return;
    }
    if let EventKind::Progress {
        what,
        done,
        total,
        unit,
    } = &event.kind
    {
        out.progress(what, *done, *total, *unit);
        return;
    }
    if let EventKind::Output { stream, lines } = &event.kind {
        // A command's output as it wrote it: stdout to stdout, stderr to stderr.
        for line in lines {
            match stream.as_str() {
                "stderr" => out.stderr_line(line),
                _ => out.line(line),
            }
        }
        return;
    }
    if event.is_terminal() {
        out.finish_progress();
    }
    if let Some(line) = render::job_line(event) {
        let secs = event.at.signed_duration_since(origin).num_milliseconds() as f64 / 1000.0;
        out.line(format!("[{secs:>6.1}s] {line}"));
    }
}

/// The exit code of a terminal event: 0 succeeded, 3 failed and rolled
/// back, a one-off command's own status, 1 failed or superseded.
pub fn exit_for(event: &Event) -> Exit {
    match &event.kind {
        EventKind::Succeeded { .. } => Exit::Success,
        EventKind::Failed {
            exit_code: Some(code),
            ..
        } => Exit::Status((code & 0xff) as u8),
        EventKind::Failed {
            rolled_back_to: Some(_),
            ..
        } => Exit::RolledBack,
        _ => Exit::Failed,
    }
}

/// The error (exit 4 / 130) for an ending without a terminal event, or
/// `None` for a terminal one.
pub fn ending_error(
    ending: &Ending,
    job: &hostkit_proto::JobId,
    waited: Duration,
) -> Option<Error> {
    let resume = format!("follow it with `hostkit follow {job}`");
    match ending {
        Ending::Terminal(_) => None,
        Ending::TimedOut => Some(Error::unavailable(format!(
            "timed out after {} waiting for job {job} to finish; it may still run: {resume}",
            render::duration(waited)
        ))),
        Ending::NoWorker(node) => Some(Error::unavailable(format!(
            "[node.offline] no worker is listening for node {node}: is hostkit-worker running? (job {job} stays queued for it and runs when the node is back, never elsewhere; {resume})"
        ))),
        Ending::Interrupted => Some(Error::new(
            Exit::Interrupted,
            format!("interrupted; job {job} keeps running on the node: {resume}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostkit_proto::ErrorCode;

    fn terminal(kind: EventKind) -> Event {
        Event::for_job(
            "vps-1".parse().unwrap(),
            9,
            "example.com".parse().unwrap(),
            hostkit_proto::JobId::new(),
            kind,
        )
    }

    #[test]
    fn exit_codes_follow_the_outcome() {
        let ok = terminal(EventKind::Succeeded {
            version: Some(2),
            duration_ms: 10,
        });
        assert_eq!(exit_for(&ok), Exit::Success);
        let failed = |rolled_back_to| {
            terminal(EventKind::Failed {
                code: ErrorCode::HealthTimeout,
                message: "x".into(),
                hint: None,
                rolled_back_to,
                exit_code: None,
            })
        };
        assert_eq!(exit_for(&failed(None)), Exit::Failed);
        assert_eq!(exit_for(&failed(Some(1))), Exit::RolledBack);
        let command_failed = terminal(EventKind::Failed {
            code: ErrorCode::ExecFailed,
            message: "sh exited with status 3".into(),
            hint: None,
            rolled_back_to: None,
            exit_code: Some(3),
        });
        assert_eq!(exit_for(&command_failed).code(), 3);
        let superseded = terminal(EventKind::Superseded {
            by: hostkit_proto::JobId::new(),
        });
        assert_eq!(exit_for(&superseded), Exit::Failed);
    }

    #[test]
    fn no_worker_reads_plainly() {
        let job = hostkit_proto::JobId::new();
        let error = ending_error(
            &Ending::NoWorker("vps-1".parse().unwrap()),
            &job,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(error.exit(), Exit::Unavailable);
        assert!(error.to_string().starts_with(
            "[node.offline] no worker is listening for node vps-1: is hostkit-worker running?"
        ));
    }
}
