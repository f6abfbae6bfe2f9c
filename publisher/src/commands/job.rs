//! What every job-publishing command shares: make the job, read its events
//! (subscribed before publishing), publish it, follow it to its end, write
//! the GitHub summary, answer the exit code.

use hostkit_proto::control::ServicesRequest;
use hostkit_proto::{Domain, EventKind, JobKind, JobSpec, NodeId};
use tokio::time::Instant;

use crate::cli::{ConnectArgs, JobArgs};
use crate::connect::Session;
use crate::error::{Error, Exit};
use crate::follow::{self, Ending, Expect};
use crate::render::Output;
use crate::{control, publish, summary};

/// One job to publish.
#[derive(Debug)]
pub struct JobRequest<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// The node it goes to.
    pub node: &'a NodeId,
    /// Kind and payload.
    pub spec: JobSpec,
    /// `--node`, `--timeout`, `--no-wait`.
    pub args: &'a JobArgs,
    /// When the command started (the timeout counts from here).
    pub started: Instant,
    /// Bytes uploaded for it (deploys), for the summary.
    pub uploaded: Option<u64>,
}

/// Publishes the job and, unless `--no-wait`, follows it to its end.
pub async fn run(
    connect: &ConnectArgs,
    session: &Session,
    out: &Output,
    request: JobRequest<'_>,
) -> Result<Exit, Error> {
    let JobRequest {
        domain,
        node,
        spec,
        args,
        started,
        uploaded,
    } = request;
    let job = publish::make_job(connect, domain, node, spec)?;
    let kind = job.kind();
    let events = if args.no_wait {
        None
    } else {
        Some(follow::subscribe(session, session.names.job_events(domain, &job.id)).await?)
    };
    publish::publish(session, node, &job).await?;
    out.line(format!(
        "published {kind} job {} for {domain} to node {node}",
        job.id
    ));
    let Some(events) = events else {
        if out.json() {
            out.json_line(&serde_json::json!({
                "job_id": job.id,
                "kind": kind,
                "domain": domain,
                "node": node,
            }));
        } else {
            out.line(format!(
                "not waiting; follow it with `hostkit follow {}`",
                job.id
            ));
        }
        return Ok(Exit::Success);
    };

    let expect = Expect {
        node: Some(node.clone()),
        deadline: started + args.timeout,
    };
    let ending = follow::follow(session, events, out, &expect).await;
    let error = follow::ending_error(&ending, &job.id, started.elapsed());
    let terminal = match &ending {
        Ending::Terminal(event) => Some(event),
        _ => None,
    };
    if let Some(path) = summary::target() {
        let services = match terminal.map(|e| &e.kind) {
            Some(
                EventKind::Succeeded { .. }
                | EventKind::Failed {
                    rolled_back_to: Some(_),
                    ..
                },
            ) if kind != JobKind::Remove => {
                let request = ServicesRequest {
                    domain: domain.clone(),
                };
                Some(
                    control::request(session, node, &request)
                        .await
                        .map_err(|e| e.to_string()),
                )
            }
            _ => None,
        };
        let report = summary::Report {
            kind,
            domain,
            node,
            job: &job.id,
            terminal,
            unfinished: error.as_ref().map(ToString::to_string),
            elapsed: started.elapsed(),
            uploaded,
            services,
        };
        if let Err(e) = summary::append(&path, &report) {
            out.warn(format!(
                "cannot write the job summary to {}: {e}",
                path.display()
            ));
        }
    }
    match (terminal, error) {
        (Some(event), _) => Ok(follow::exit_for(event)),
        (None, Some(error)) => Err(error),
        (None, None) => Ok(Exit::Failed),
    }
}
