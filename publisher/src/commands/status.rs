//! `hostkit status [domain]`, `hostkit versions <domain>`, `hostkit nodes`:
//! the node registry plus `status`, `services` and `versions` requests to
//! the live workers (in parallel, each bounded).

use futures_util::future::join_all;
use hostkit_proto::control::{
    DomainStatus, LastJob, ServicesRequest, StatusReply, StatusRequest, VersionsRequest,
};
use hostkit_proto::{Domain, NodeId, NodeInfo};
use serde_json::json;

use super::compose::services_table;
use crate::cli::ConnectArgs;
use crate::connect;
use crate::control;
use crate::error::{Error, Exit};
use crate::placement;
use crate::render::{Output, ago, table};

/// `hostkit status [domain]`.
pub async fn status(
    connect: &ConnectArgs,
    out: &Output,
    domain: Option<&Domain>,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let session = connect::connect(connect).await?;
    if let Some(domain) = domain {
        return domain_status(&session, out, domain, node).await;
    }
    let mut nodes = placement::nodes(&session).await?;
    if let Some(only) = node {
        nodes.retain(|info| info.node == *only);
    }
    if nodes.is_empty() {
        out.line("no worker node has registered yet: is hostkit-worker running?");
        return Ok(Exit::Success);
    }
    let answers = join_all(nodes.iter().map(|info| {
        let session = &session;
        async move {
            if !placement::is_alive(Some(info)) {
                return None;
            }
            Some(control::request(session, &info.node, &StatusRequest::default()).await)
        }
    }))
    .await;

    if out.json() {
        let nodes: Vec<_> = nodes
            .iter()
            .zip(&answers)
            .map(|(info, answer)| {
                let (status, error) = match answer {
                    Some(Ok(reply)) => (Some(reply), None),
                    Some(Err(e)) => (None, Some(e.to_string())),
                    None => (None, Some("offline".to_owned())),
                };
                json!({
                    "node": info,
                    "alive": placement::is_alive(Some(info)),
                    "status": status,
                    "error": error,
                })
            })
            .collect();
        out.json_line(&json!({ "nodes": nodes }));
        return Ok(Exit::Success);
    }

    let node_rows: Vec<Vec<String>> = nodes
        .iter()
        .zip(&answers)
        .map(|(info, answer)| {
            let (state, domains) = match answer {
                Some(Ok(reply)) => ("online", reply.domains.len()),
                Some(Err(_)) => ("no answer", info.domains.len()),
                None => ("offline", info.domains.len()),
            };
            vec![
                info.node.to_string(),
                state.to_owned(),
                info.version.clone(),
                ago(info.last_heartbeat),
                domains.to_string(),
            ]
        })
        .collect();
    out.line(table(
        &["NODE", "STATE", "WORKER", "HEARTBEAT", "DOMAINS"],
        &node_rows,
    ));

    let mut domain_rows = Vec::new();
    for (info, answer) in nodes.iter().zip(&answers) {
        match answer {
            Some(Ok(reply)) => {
                domain_rows.extend(reply.domains.iter().map(|d| domain_row(&info.node, d)));
            }
            Some(Err(e)) => {
                out.warn(format!("{e}"));
                domain_rows.extend(
                    info.domains
                        .iter()
                        .map(|d| unknown_row(d, &info.node, "no answer")),
                );
            }
            None => {
                domain_rows.extend(
                    info.domains
                        .iter()
                        .map(|d| unknown_row(d, &info.node, "node offline")),
                );
            }
        }
    }
    out.line("");
    if domain_rows.is_empty() {
        out.line("no domains deployed");
    } else {
        out.line(table(
            &["DOMAIN", "NODE", "VERSION", "HEALTH", "LAST JOB"],
            &domain_rows,
        ));
    }
    Ok(Exit::Success)
}

async fn domain_status(
    session: &connect::Session,
    out: &Output,
    domain: &Domain,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let node = placement::node_for(session, domain, node).await?;
    let status_request = StatusRequest {
        domain: Some(domain.clone()),
    };
    let services_request = ServicesRequest {
        domain: domain.clone(),
    };
    let (status, services) = tokio::join!(
        control::request(session, &node, &status_request),
        control::request(session, &node, &services_request),
    );
    let status: StatusReply = status?;
    let Some(state) = status.domains.into_iter().find(|d| d.domain == *domain) else {
        return Err(Error::failed(format!(
            "node {node} did not report {domain}"
        )));
    };
    let services = services?;
    if out.json() {
        out.json_line(&json!({ "node": node, "status": state, "services": services }));
        return Ok(Exit::Success);
    }
    let version = state
        .version
        .map_or_else(|| "not deployed".to_owned(), |v| format!("v{v}"));
    out.line(format!(
        "{domain} on node {node}: {version}, {}",
        state.health.as_str()
    ));
    if let Some(last) = &state.last_job {
        out.line(format!("last job: {} ({})", last_job(last), last.id));
    }
    out.line("");
    out.line(services_table(&services));
    Ok(Exit::Success)
}

fn domain_row(node: &NodeId, d: &DomainStatus) -> Vec<String> {
    vec![
        d.domain.to_string(),
        node.to_string(),
        d.version
            .map_or_else(|| "-".to_owned(), |v| format!("v{v}")),
        d.health.as_str().to_owned(),
        d.last_job.as_ref().map_or_else(|| "-".to_owned(), last_job),
    ]
}

fn unknown_row(domain: &Domain, node: &NodeId, why: &str) -> Vec<String> {
    vec![
        domain.to_string(),
        node.to_string(),
        "?".into(),
        format!("unknown ({why})"),
        "?".into(),
    ]
}

fn last_job(job: &LastJob) -> String {
    let when = job
        .finished_at
        .map(|at| format!(" {}", ago(at)))
        .unwrap_or_default();
    format!("{} {}{when}", job.kind, job.outcome.as_str())
}

/// `hostkit versions <domain>`.
pub async fn versions(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let request = VersionsRequest {
        domain: domain.clone(),
    };
    let (_, reply) = control::ask_about(connect, domain, node, &request).await?;
    if out.json() {
        out.json_line(&reply);
        return Ok(Exit::Success);
    }
    if reply.versions.is_empty() {
        out.line(format!("{domain} has no recorded versions"));
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = reply
        .versions
        .iter()
        .map(|v| {
            let images = v
                .images
                .iter()
                .map(|(service, id)| {
                    let short = id.strip_prefix("sha256:").unwrap_or(id);
                    format!("{service}={}", &short[..short.len().min(12)])
                })
                .collect::<Vec<_>>()
                .join(" ");
            vec![
                format!("{}v{}", if v.current { "*" } else { " " }, v.version),
                format!(
                    "{} ({})",
                    v.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    ago(v.created_at)
                ),
                v.status.as_str().to_owned(),
                v.job_id.to_string(),
                images,
            ]
        })
        .collect();
    out.line(table(
        &[" VERSION", "CREATED", "STATUS", "JOB", "IMAGES"],
        &rows,
    ));
    Ok(Exit::Success)
}

/// `hostkit nodes`.
pub async fn nodes(connect: &ConnectArgs, out: &Output) -> Result<Exit, Error> {
    let session = connect::connect(connect).await?;
    let nodes = placement::nodes(&session).await?;
    if out.json() {
        let list: Vec<_> = nodes
            .iter()
            .map(|info| json!({ "node": info, "alive": placement::is_alive(Some(info)) }))
            .collect();
        out.json_line(&list);
        return Ok(Exit::Success);
    }
    if nodes.is_empty() {
        out.line("no worker node has registered yet: is hostkit-worker running?");
        return Ok(Exit::Success);
    }
    let rows: Vec<Vec<String>> = nodes.iter().map(node_row).collect();
    out.line(table(
        &[
            "NODE",
            "STATE",
            "WORKER",
            "HEARTBEAT",
            "CAPACITY",
            "DOMAINS",
        ],
        &rows,
    ));
    Ok(Exit::Success)
}

fn node_row(info: &NodeInfo) -> Vec<String> {
    let state = if placement::is_alive(Some(info)) {
        "online"
    } else {
        "offline"
    };
    let domains = if info.domains.is_empty() {
        "-".to_owned()
    } else {
        info.domains
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    vec![
        info.node.to_string(),
        state.to_owned(),
        info.version.clone(),
        ago(info.last_heartbeat),
        info.capacity.to_string(),
        domains,
    ]
}
