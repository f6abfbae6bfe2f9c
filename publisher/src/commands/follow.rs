//! `hostkit follow <job-id>`: replay a job's events from the events stream
//! (ordered consumer on `<root>.events.*.job.<id>`) and follow it to its
//! terminal event; the exit code is the job's, as for the command that
//! published it.

use std::time::Duration;

use hostkit_proto::JobId;
use tokio::time::Instant;

use crate::cli::ConnectArgs;
use crate::connect;
use crate::error::{Error, Exit};
use crate::follow::{self, Ending, Expect};
use crate::render::Output;

/// `hostkit follow <job-id> [--timeout D]`.
pub async fn follow_job(
    connect: &ConnectArgs,
    out: &Output,
    job: &JobId,
    timeout: Duration,
) -> Result<Exit, Error> {
    let started = Instant::now();
    let session = connect::connect(connect).await?;
    let subject = session.names.job_events_any_domain(job);
    let events = follow::subscribe(&session, subject).await?;
    let expect = Expect {
        node: None,
        deadline: started + timeout,
    };
    match follow::follow(&session, events, out, &expect).await {
        Ending::Terminal(event) => Ok(follow::exit_for(&event)),
        ending => Err(follow::ending_error(&ending, job, started.elapsed())
            .unwrap_or_else(|| Error::failed("the job ended without an outcome"))),
    }
}
