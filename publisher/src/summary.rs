//! The GitHub Actions job summary: when `GITHUB_STEP_SUMMARY` names a file,
//! a Markdown section about the job is appended to it (domain, node,
//! version, duration, outcome and, once the stack runs, its services).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostkit_proto::control::ServicesReply;
use hostkit_proto::{Domain, Event, EventKind, JobId, JobKind, NodeId};

use crate::render;

/// The summary file GitHub Actions gives the step, if any.
pub fn target() -> Option<PathBuf> {
    std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

/// What the summary reports.
#[derive(Debug)]
pub struct Report<'a> {
    /// The job's kind.
    pub kind: JobKind,
    /// The domain.
    pub domain: &'a Domain,
    /// The node.
    pub node: &'a NodeId,
    /// The job.
    pub job: &'a JobId,
    /// The terminal event, or `None` when the wait ended without one.
    pub terminal: Option<&'a Event>,
    /// How the wait ended, when there is no terminal event.
    pub unfinished: Option<String>,
    /// Wall time of the command.
    pub elapsed: Duration,
    /// Bytes uploaded (deploys).
    pub uploaded: Option<u64>,
    /// The stack's services after the job, or why they are unknown.
    pub services: Option<Result<ServicesReply, String>>,
}

/// Appends `report` as Markdown to `path`.
pub fn append(path: &Path, report: &Report<'_>) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(markdown(report).as_bytes())
}

/// The Markdown of one report.
pub fn markdown(report: &Report<'_>) -> String {
    let (icon, outcome, version, worker_time) = match report.terminal.map(|e| &e.kind) {
        Some(EventKind::Succeeded {
            version,
            duration_ms,
        }) => (
            "✅",
            "succeeded".to_owned(),
            *version,
            Some(Duration::from_millis(*duration_ms)),
        ),
        Some(EventKind::Failed {
            code,
            message,
            rolled_back_to,
            ..
        }) => {
            let outcome = match rolled_back_to {
                Some(v) => format!("failed (`{code}`), rolled back to v{v}: {}", cell(message)),
                None => format!("failed (`{code}`): {}", cell(message)),
            };
            ("❌", outcome, *rolled_back_to, None)
        }
        Some(EventKind::Superseded { by }) => {
            ("⏭️", format!("superseded by job `{by}`"), None, None)
        }
        _ => (
            "⚠️",
            report
                .unfinished
                .as_deref()
                .map(cell)
                .unwrap_or_else(|| "unknown".to_owned()),
            None,
            None,
        ),
    };
    let mut md = format!(
        "### {icon} HostKit {kind}: {domain}\n\n| | |\n| --- | --- |\n",
        kind = report.kind,
        domain = report.domain
    );
    let mut row = |key: &str, value: String| md.push_str(&format!("| {key} | {value} |\n"));
    row("Outcome", outcome);
    row("Domain", report.domain.to_string());
    row("Node", report.node.to_string());
    row(
        "Version",
        version.map_or_else(|| "–".to_owned(), |v| format!("v{v}")),
    );
    row("Duration", render::duration(report.elapsed));
    if let Some(took) = worker_time {
        row("On the node", render::duration(took));
    }
    if let Some(sent) = report.uploaded {
        row("Uploaded", render::bytes(sent));
    }
    row("Job", format!("`{}`", report.job));
    md.push('\n');
    match &report.services {
        Some(Ok(reply)) if !reply.services.is_empty() => {
            md.push_str("| Service | Image | Replicas | State |\n| --- | --- | --- | --- |\n");
            for service in &reply.services {
                let states: Vec<String> = service
                    .replicas
                    .iter()
                    .map(|r| match r.health {
                        Some(health) => {
                            format!("{}: {} ({})", r.number, r.state.as_str(), health.as_str())
                        }
                        None => format!("{}: {}", r.number, r.state.as_str()),
                    })
                    .collect();
                md.push_str(&format!(
                    "| {} | `{}` | {} | {} |\n",
                    cell(&service.service),
                    cell(&service.image),
                    service.replicas.len(),
                    states.join(", ")
                ));
            }
            md.push('\n');
        }
        Some(Err(why)) => md.push_str(&format!("Services: unavailable ({}).\n\n", cell(why))),
        _ => {}
    }
    md
}

/// Text safe inside one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostkit_proto::control::{ContainerState, HealthState, ReplicaStatus, ServiceStatus};

    #[test]
    fn a_success_with_services() {
        let domain: Domain = "example.com".parse().unwrap();
        let node: NodeId = "vps-1".parse().unwrap();
        let job = JobId::new();
        let event = Event::for_job(
            node.clone(),
            3,
            domain.clone(),
            job,
            EventKind::Succeeded {
                version: Some(4),
                duration_ms: 2500,
            },
        );
        let services = ServicesReply {
            domain: domain.clone(),
            services: vec![ServiceStatus {
                service: "web".into(),
                image: "app:1".into(),
                version: Some(4),
                replicas: vec![ReplicaStatus {
                    number: 1,
                    container: "example_com-web-1".into(),
                    state: ContainerState::Running,
                    health: Some(HealthState::Healthy),
                    ports: vec![],
                }],
            }],
        };
        let md = markdown(&Report {
            kind: JobKind::Deploy,
            domain: &domain,
            node: &node,
            job: &job,
            terminal: Some(&event),
            unfinished: None,
            elapsed: Duration::from_secs(3),
            uploaded: Some(0),
            services: Some(Ok(services)),
        });
        for needle in [
            "### ✅ HostKit deploy: example.com",
            "| Outcome | succeeded |",
            "| Node | vps-1 |",
            "| Version | v4 |",
            "| Uploaded | 0 B |",
            "| web | `app:1` | 1 | 1: running (healthy) |",
        ] {
            assert!(md.contains(needle), "{needle} missing from\n{md}");
        }
    }
}
