//! Operator jobs: `rollback`, `scale`, `restart`, `stop`, `start`,
//! `remove` (and `compose restart|scale`, the seed's spellings).

use std::io::{BufRead, IsTerminal, Write};

use hostkit_proto::job::{
    RemovePayload, RestartPayload, RollbackPayload, ScalePayload, StartPayload, StopPayload,
};
use hostkit_proto::{Domain, JobSpec, NodeId};
use tokio::time::Instant;

use super::job::{self, JobRequest};
use crate::cli::{ConnectArgs, JobArgs, ScaleArgs};
use crate::connect;
use crate::error::{Error, Exit};
use crate::placement;
use crate::render::Output;

/// `hostkit rollback <domain> [--to vN] [--with-data]`.
pub async fn rollback(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    to: Option<u32>,
    with_data: bool,
    args: &JobArgs,
) -> Result<Exit, Error> {
    let spec = JobSpec::Rollback(RollbackPayload {
        to_version: to,
        with_data,
    });
    send(connect, out, domain, spec, args).await
}

/// `hostkit scale <domain> <service> <replicas>`.
pub async fn scale(connect: &ConnectArgs, out: &Output, args: &ScaleArgs) -> Result<Exit, Error> {
    let spec = JobSpec::Scale(ScalePayload {
        service: args.service.clone(),
        replicas: args.replicas,
    });
    send(connect, out, &args.domain, spec, &args.job).await
}

/// `hostkit restart <domain> [service]`.
pub async fn restart(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    service: Option<String>,
    args: &JobArgs,
) -> Result<Exit, Error> {
    let spec = JobSpec::Restart(RestartPayload { service });
    send(connect, out, domain, spec, args).await
}

/// `hostkit stop <domain>`.
pub async fn stop(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    args: &JobArgs,
) -> Result<Exit, Error> {
    send(connect, out, domain, JobSpec::Stop(StopPayload {}), args).await
}

/// `hostkit start <domain>`.
pub async fn start(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    args: &JobArgs,
) -> Result<Exit, Error> {
    send(connect, out, domain, JobSpec::Start(StartPayload {}), args).await
}

/// `hostkit remove <domain> [--purge-volumes] [--yes]`: asks first, unless
/// `--yes`; without a terminal to ask on, refuses (exit 2).
pub async fn remove(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    purge_volumes: bool,
    yes: bool,
    args: &JobArgs,
) -> Result<Exit, Error> {
    let interactive = std::io::stdin().is_terminal();
    if !yes && !interactive {
        return Err(Error::usage(format!(
            "refusing to remove {domain} without confirmation: no terminal to ask on; pass --yes"
        )));
    }
    let started = Instant::now();
    let session = connect::connect(connect).await?;
    let node = placement::node_for(&session, domain, args.node.as_ref()).await?;
    if !yes && !confirm(domain, &node, purge_volumes).await? {
        out.line("not removed");
        return Ok(Exit::Failed);
    }
    let spec = JobSpec::Remove(RemovePayload { purge_volumes });
    let request = JobRequest {
        domain,
        node: &node,
        spec,
        args,
        started,
        uploaded: None,
    };
    job::run(connect, &session, out, request).await
}

/// Connects, finds the node and runs the job.
pub async fn send(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    spec: JobSpec,
    args: &JobArgs,
) -> Result<Exit, Error> {
    let started = Instant::now();
    let session = connect::connect(connect).await?;
    let node = placement::node_for(&session, domain, args.node.as_ref()).await?;
    let request = JobRequest {
        domain,
        node: &node,
        spec,
        args,
        started,
        uploaded: None,
    };
    job::run(connect, &session, out, request).await
}

async fn confirm(domain: &Domain, node: &NodeId, purge: bool) -> Result<bool, Error> {
    let what = if purge {
        "its containers, networks, nginx config AND ITS VOLUMES (their data is lost)"
    } else {
        "its containers, networks and nginx config (volumes are kept)"
    };
    let question = format!("Remove {domain} from node {node}: {what}? [y/N] ");
    let answer = tokio::task::spawn_blocking(move || {
        let mut stderr = std::io::stderr();
        let _ = write!(stderr, "{question}");
        let _ = stderr.flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| Error::failed(format!("cannot ask for confirmation: {e}")))?
    .map_err(|e| Error::failed("cannot read the answer").with_source(e))?;
    Ok(matches!(answer.trim().to_lowercase().as_str(), "y" | "yes"))
}
