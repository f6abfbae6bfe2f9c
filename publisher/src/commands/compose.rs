//! `hostkit compose services|logs` (control requests); `compose restart`
//! and `compose scale` are jobs (see [`super::ops`]).

use futures_util::StreamExt;
use hostkit_proto::control::{LogsRequest, ServicesReply, ServicesRequest};
use hostkit_proto::{Domain, NodeId};

use crate::cli::ConnectArgs;
use crate::connect;
use crate::control;
use crate::error::{Error, Exit};
use crate::placement;
use crate::render::{Output, table};

/// `hostkit compose services <domain>`.
pub async fn services(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let request = ServicesRequest {
        domain: domain.clone(),
    };
    let (_, reply) = control::ask_about(connect, domain, node, &request).await?;
    if out.json() {
        out.json_line(&reply);
    } else {
        out.line(services_table(&reply));
    }
    Ok(Exit::Success)
}

/// The services of a stack as a table, one row per replica.
pub fn services_table(reply: &ServicesReply) -> String {
    if reply.services.is_empty() {
        return format!("{} has no containers", reply.domain);
    }
    let mut rows = Vec::new();
    for service in &reply.services {
        let version = service
            .version
            .map_or_else(|| "-".to_owned(), |v| format!("v{v}"));
        if service.replicas.is_empty() {
            rows.push(vec![
                service.service.clone(),
                "-".into(),
                "no replicas".into(),
                "-".into(),
                version.clone(),
                service.image.clone(),
                String::new(),
            ]);
        }
        for replica in &service.replicas {
            let ports = replica
                .ports
                .iter()
                .map(|p| match (&p.host_ip, p.host_port) {
                    (Some(ip), Some(port)) => format!("{ip}:{port}->{}", p.container_port),
                    (None, Some(port)) => format!("{port}->{}", p.container_port),
                    _ => p.container_port.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            rows.push(vec![
                service.service.clone(),
                replica.number.to_string(),
                replica.state.as_str().to_owned(),
                replica
                    .health
                    .map_or_else(|| "-".to_owned(), |h| h.as_str().to_owned()),
                version.clone(),
                service.image.clone(),
                ports,
            ]);
        }
    }
    table(
        &[
            "SERVICE", "#", "STATE", "HEALTH", "VERSION", "IMAGE", "PORTS",
        ],
        &rows,
    )
}

/// `hostkit compose logs <domain> <service> [-f] [--tail N]`: the lines on
/// stdout (`--json`: one `{"stream", "line"}` object per line).
pub async fn logs(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    service: &str,
    follow: bool,
    tail: Option<u32>,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let session = connect::connect(connect).await?;
    let node = placement::node_for(&session, domain, node).await?;
    let request = LogsRequest {
        domain: domain.clone(),
        service: service.to_owned(),
        tail,
        follow,
    };
    let chunks = control::logs(&session, &node, &request).await?;
    tokio::pin!(chunks);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let chunk = tokio::select! {
            next = chunks.next() => match next {
                Some(chunk) => chunk?,
                None => return Ok(Exit::Success),
            },
            _ = &mut interrupted => return Ok(Exit::Success),
        };
        for line in &chunk.lines {
            if out.json() {
                out.json_line(line);
            } else {
                // stdout and stderr of the container interleaved, as
                // `docker compose logs` prints them (`--json` tells them apart).
                out.line(&line.line);
            }
        }
        if chunk.end {
            return Ok(Exit::Success);
        }
    }
}
