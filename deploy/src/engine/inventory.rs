//! What runs now: the containers of one project, found by their labels.

use std::collections::{BTreeMap, HashMap};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;

use super::labels;
use crate::docker::DockerError;

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
            let mut ports: Vec<(u16, u16)> = c
                .ports
                .unwrap_or_default()
                .into_iter()
                .filter_map(|p| Some((p.private_port, p.public_port?)))
                .collect();
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
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                host_ports,
                version: labels.get(labels::VERSION).and_then(|v| v.parse().ok()),
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
