//! What runs now: the containers of one project, found by their labels.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::labels;
use crate::docker::{DockerError, is_not_found};

/// One existing container of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Existing {
    /// Engine id.
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    /// Compose service.
    pub service: String,
    /// Replica number.
    pub number: u32,
    /// Config hash label.
    pub config_hash: String,
    /// Engine state (`running`, `exited`, `created`, …).
    pub state: String,
    /// Published ports: (container port, host port), sorted.
    pub ports: Vec<(u16, u16)>,
    /// Host ports, sorted.
    pub host_ports: Vec<u16>,
    /// Stack version label.
    pub version: Option<u32>,
    /// The image reference the service asked for.
    pub image: String,
    /// Health from the engine's status line (`healthy`, `unhealthy`,
    /// `starting`), when the container has a healthcheck.
    pub health: Option<String>,
    /// Exit code from the engine's status line, when it exited.
    pub exit_code: Option<i64>,
    /// Host paths it bind-mounts writable.
    pub writable_binds: Vec<std::path::PathBuf>,
}

impl Existing {
    /// Whether the container is running.
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }
}

/// All containers of a project, by service, sorted by replica number.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Containers per service.
    pub services: BTreeMap<String, Vec<Existing>>,
}

/// The host ports a container's configuration binds: (container port, host port).
async fn configured_ports(docker: &Docker, id: &str) -> Result<Vec<(u16, u16)>, DockerError> {
    let inspect = match docker.inspect_container(id, None).await {
        Ok(inspect) => inspect,
        // Removed since it was listed: it binds nothing.
        Err(e) if is_not_found(&e) => return Ok(Vec::new()),
        Err(e) => return Err(DockerError::call(format!("inspect container {id}"), e)),
    };
    let bindings = inspect
        .host_config
        .and_then(|h| h.port_bindings)
        .unwrap_or_default();
    let mut ports = Vec::new();
    for (key, bound) in bindings {
        let Some(target) = key.split('/').next().and_then(|p| p.parse().ok()) else {
            continue;
        };
        for binding in bound.unwrap_or_default() {
            if let Some(host) = binding.host_port.and_then(|p| p.parse().ok()) {
                ports.push((target, host));
            }
        }
    }
    Ok(ports)
}

impl Inventory {
    /// List the project's containers (running or not).
    pub async fn load(docker: &Docker, project: &str) -> Result<Inventory, DockerError> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![
                labels::filter(labels::PROJECT, project),
                labels::filter(labels::ONEOFF, "False"),
            ],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = docker
            .list_containers(Some(options))
            .await
            .map_err(|e| DockerError::call(format!("list containers of {project}"), e))?;
        let mut services: BTreeMap<String, Vec<Existing>> = BTreeMap::new();
        for c in containers {
            let labels = c.labels.unwrap_or_default();
            let (Some(id), Some(service)) = (c.id, labels.get(labels::SERVICE).cloned()) else {
                continue;
            };
            let name = c
                .names
                .and_then(|n| n.into_iter().next())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            let mut ports: Vec<(u16, u16)> = c
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some((p.private_port, p.public_port?)))
                .collect();
            if ports.is_empty() && state != "running" {
                // The listing shows no ports for a stopped container, yet
                // starting it binds its configured host ports again.
                ports = configured_ports(docker, &id).await?;
            }
            ports.sort_unstable();
            ports.dedup();
            let mut host_ports: Vec<u16> = ports.iter().map(|p| p.1).collect();
            host_ports.sort_unstable();
            services.entry(service.clone()).or_default().push(Existing {
                id,
                name,
                service,
                number: labels
                    .get(labels::CONTAINER_NUMBER)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0),
                config_hash: labels.get(labels::CONFIG_HASH).cloned().unwrap_or_default(),
                ports,
                state,
                host_ports,
                version: labels.get(labels::VERSION).and_then(|v| v.parse().ok()),
                image: labels.get(labels::IMAGE).cloned().unwrap_or_default(),
                health: c.status.as_deref().and_then(health_of_status),
                exit_code: c.status.as_deref().and_then(exit_code_of_status),
                writable_binds: c
                    .mounts
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|m| m.typ.as_deref() == Some("bind") && m.rw == Some(true))
                    .filter_map(|m| m.source.map(Into::into))
                    .collect(),
            });
        }
        for replicas in services.values_mut() {
            replicas.sort_by_key(|e| e.number);
        }
        Ok(Inventory { services })
    }

    /// Every host port any container of the project publishes.
    pub fn used_ports(&self) -> Vec<u16> {
        self.services
            .values()
            .flatten()
            .flat_map(|e| e.host_ports.iter().copied())
            .collect()
    }

    /// Every container, in service then replica order.
    pub fn all(&self) -> impl Iterator<Item = &Existing> {
        self.services.values().flatten()
    }
}

/// `Exited (3) 2 seconds ago` → 3.
fn exit_code_of_status(status: &str) -> Option<i64> {
    status
        .strip_prefix("Exited (")?
        .split_once(')')?
        .0
        .parse()
        .ok()
}

/// `Up 3 minutes (healthy)` → `healthy`; `(health: starting)` → `starting`.
fn health_of_status(status: &str) -> Option<String> {
    let inner = status.rsplit_once('(')?.1.strip_suffix(')')?;
    match inner {
        "healthy" | "unhealthy" => Some(inner.to_string()),
        "health: starting" => Some("starting".to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{exit_code_of_status, health_of_status};

    #[test]
    fn exit_codes_come_from_the_status_line() {
        assert_eq!(exit_code_of_status("Exited (0) 3 seconds ago"), Some(0));
        assert_eq!(exit_code_of_status("Exited (137) 1 minute ago"), Some(137));
        assert_eq!(exit_code_of_status("Up 5 seconds"), None);
    }

    #[test]
    fn health_comes_from_the_status_line() {
        assert_eq!(
            health_of_status("Up 3 minutes (healthy)").as_deref(),
            Some("healthy")
        );
        assert_eq!(
            health_of_status("Up 1 second (health: starting)").as_deref(),
            Some("starting")
        );
        assert_eq!(
            health_of_status("Up 2 hours (unhealthy)").as_deref(),
            Some("unhealthy")
        );
        assert_eq!(health_of_status("Exited (0) 3 seconds ago"), None);
        assert_eq!(health_of_status("Up 5 seconds"), None);
    }
}
