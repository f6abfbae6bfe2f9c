//! `hostkit backup`, `hostkit backups`, `hostkit restore`: a domain's
//! volumes copied to and from its node's backup bucket. `backup` and
//! `restore` are jobs (serial with the domain's deploys); `backups` asks
//! the worker (control verb `backups`).

use hostkit_proto::control::BackupsRequest;
use hostkit_proto::job::{BackupPayload, RestorePayload};
use hostkit_proto::{Domain, JobId, JobSpec, NodeId};

use super::ops::send;
use crate::cli::{ConnectArgs, JobArgs};
use crate::control;
use crate::error::{Error, Exit};
use crate::render::{Output, ago, bytes, table};

/// `hostkit backup <domain> [volume…]`.
pub async fn backup(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    volumes: &[String],
    args: &JobArgs,
) -> Result<Exit, Error> {
    let spec = JobSpec::Backup(BackupPayload {
        volumes: volumes.to_vec(),
    });
    send(connect, out, domain, spec, args).await
}

/// `hostkit restore <domain> <backup>`.
pub async fn restore(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    backup: JobId,
    args: &JobArgs,
) -> Result<Exit, Error> {
    let spec = JobSpec::Restore(RestorePayload { backup });
    send(connect, out, domain, spec, args).await
}

/// `hostkit backups <domain>`: newest first.
pub async fn list(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let request = BackupsRequest {
        domain: domain.clone(),
    };
    let (node, reply) = control::ask_about(connect, domain, node, &request).await?;
    if out.json() {
        out.json_line(&reply);
        return Ok(Exit::Success);
    }
    if reply.backups.is_empty() {
        out.line(format!("node {node} keeps no backup of {domain}"));
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = reply
        .backups
        .iter()
        .map(|b| {
            vec![
                b.id.to_string(),
                format!("v{}", b.version),
                format!(
                    "{} ({})",
                    b.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    ago(b.created_at)
                ),
                b.reason.clone(),
                b.volumes
                    .iter()
                    .map(|v| format!("{}={}", v.volume, bytes(v.size)))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    out.line(table(
        &["BACKUP", "VERSION", "TAKEN", "REASON", "VOLUMES"],
        &rows,
    ));
    Ok(Exit::Success)
}
