//! `hostkit import`: adopt HostKit v1 sites. One domain is one `import`
//! job; `--all --node N` asks the node which v1 sites it has (`imports`
//! control request), imports each importable one in turn and names the
//! others with their reason.

use hostkit_proto::control::ImportsRequest;
use hostkit_proto::job::ImportPayload;
use hostkit_proto::{Domain, JobSpec, NodeId};
use tokio::time::Instant;

use super::job::{self, JobRequest};
use crate::cli::{ConnectArgs, ImportArgs};
use crate::error::{Error, Exit};
use crate::render::Output;
use crate::{connect, control, placement};

/// Runs `hostkit import`.
pub async fn import(connect: &ConnectArgs, out: &Output, args: &ImportArgs) -> Result<Exit, Error> {
    let started = Instant::now();
    let session = connect::connect(connect).await?;
    match (&args.domain, args.all) {
        (Some(domain), false) => {
            let node = placement::node_for(&session, domain, args.job.node.as_ref()).await?;
            one(connect, &session, out, args, domain, &node, started).await
        }
        (None, true) => {
            let Some(node) = args.job.node.as_ref() else {
                return Err(Error::usage(
                    "--all needs --node: the node whose v1 sites to import",
                ));
            };
            let found = control::request(&session, node, &ImportsRequest {}).await?;
            if found.sites.is_empty() {
                out.line(format!("node {node} has no HostKit v1 site left to import"));
                return Ok(Exit::Success);
            }
            let mut worst = Exit::Success;
            for site in &found.sites {
                if let Some(reason) = &site.blocked {
                    out.line(format!("{}: not imported: {reason}", site.domain));
                    worst = Exit::Failed;
                    continue;
                }
                let exit = one(
                    connect,
                    &session,
                    out,
                    args,
                    &site.domain,
                    node,
                    Instant::now(),
                )
                .await?;
                if exit != Exit::Success {
                    worst = exit;
                }
            }
            Ok(worst)
        }
        _ => Err(Error::usage("name one domain, or pass --all with --node")),
    }
}

async fn one(
    connect: &ConnectArgs,
    session: &connect::Session,
    out: &Output,
    args: &ImportArgs,
    domain: &Domain,
    node: &NodeId,
    started: Instant,
) -> Result<Exit, Error> {
    let spec = JobSpec::Import(ImportPayload {
        health_timeout_secs: args
            .health_timeout
            .map(|d| d.as_secs().clamp(1, u64::from(u32::MAX)) as u32),
    });
    let request = JobRequest {
        domain,
        node,
        spec,
        args: &args.job,
        started,
        uploaded: None,
    };
    job::run(connect, session, out, request).await
}
