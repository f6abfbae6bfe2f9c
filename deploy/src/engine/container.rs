//! Creating, starting, stopping and removing one replica of a service, and
//! joining a container to the service's networks.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, NetworkConnectRequest, NetworkingConfig, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RestartContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};

use super::labels;
use super::resources::{Found, require_owner};
use super::spec::{ServiceSpec, StackSpec};
use crate::docker::{DockerError, is_not_found};
use crate::error::DeployError;

/// A replica the engine created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    /// Engine id.
    pub id: String,
    /// Container name.
    pub name: String,
    /// Replica number.
    pub number: u32,
    /// Host ports, in the order of the service's published ports.
    pub host_ports: Vec<u16>,
}

/// The container name of replica `number` of `service`.
pub fn container_name(project: &str, service: &ServiceSpec, number: u32) -> String {
    match &service.container_name {
        Some(fixed) => format!("{project}-{fixed}"),
        None => format!("{project}-{}-{number}", service.name),
    }
}

/// Create replica `number` of `service` with `host_ports` (one per published
/// port) and join its networks; it is not started yet (see [`start`]).
pub async fn create(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
    number: u32,
    host_ports: Vec<u16>,
) -> Result<Replica, DeployError> {
    let name = container_name(&stack.project, service, number);
    let mut body = service.template.clone();
    body.image = Some(service.image_id.clone());

    let mut all_labels = body.labels.take().unwrap_or_default();
    all_labels.extend(stack.labels.clone());
    all_labels.insert(labels::PROJECT.into(), stack.project.clone());
    all_labels.insert(labels::SERVICE.into(), service.name.clone());
    all_labels.insert(labels::CONTAINER_NUMBER.into(), number.to_string());
    all_labels.insert(labels::ONEOFF.into(), "False".into());
    all_labels.insert(labels::CONFIG_HASH.into(), service.config_hash.clone());
    all_labels.insert(
        labels::COMPOSE_VERSION.into(),
        labels::COMPOSE_VERSION_VALUE.into(),
    );
    all_labels.insert(labels::IMAGE.into(), service.image_reference.clone());
    all_labels.insert(labels::DOMAIN.into(), stack.domain.to_string());
    all_labels.insert(labels::MANAGED.into(), "true".into());
    body.labels = Some(all_labels);

    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    let mut exposed = body.exposed_ports.take().unwrap_or_default();
    for (port, host) in service.ports.iter().zip(&host_ports) {
        let key = format!("{}/{}", port.target, port.protocol);
        bindings.insert(
            key.clone(),
            Some(vec![PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some(host.to_string()),
            }]),
        );
        if !exposed.contains(&key) {
            exposed.push(key);
        }
    }
    body.exposed_ports = Some(exposed);
    body.host_config
        .get_or_insert_with(Default::default)
        .port_bindings = Some(bindings);
    join_first_network(&mut body, service, true);

    let options = CreateContainerOptionsBuilder::default().name(&name).build();
    let created = match docker.create_container(Some(options), body).await {
        Ok(created) => created,
        Err(
            e @ bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            },
        ) => {
            return Err(name_taken(docker, stack, service, &name, e).await);
        }
        Err(e) => return Err(DockerError::call(format!("create container {name}"), e).into()),
    };
    let id = created.id;
    join_other_networks(docker, &id, &name, service, true).await?;
    Ok(Replica {
        id,
        name,
        number,
        host_ports,
    })
}

/// The service's names on a network: the service, its extra aliases and
/// its `container_name`.
fn aliases(service: &ServiceSpec, extra: &[String]) -> Vec<String> {
    let mut all = vec![service.name.clone()];
    all.extend(extra.iter().cloned());
    if let Some(fixed) = &service.container_name {
        all.push(fixed.clone());
    }
    all
}

/// Put `body` on the service's first network (with the service's names
/// when `named`), or on none: never Docker's shared default bridge. Engines
/// before API 1.44 take one endpoint at create; the rest are joined by
/// [`join_other_networks`] before start, as compose does.
pub(crate) fn join_first_network(
    body: &mut ContainerCreateBody,
    service: &ServiceSpec,
    named: bool,
) {
    let host_config = body.host_config.get_or_insert_with(Default::default);
    if let Some(first) = service.networks.first() {
        host_config.network_mode = Some(first.network.clone());
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                first.network.clone(),
                EndpointSettings {
                    aliases: named.then(|| aliases(service, &first.aliases)),
                    mac_address: service.mac_address.clone().filter(|_| named),
                    ..Default::default()
                },
            )])),
        });
    } else if host_config.network_mode.is_none() {
        host_config.network_mode = Some("none".into());
    }
}

/// Join the service's networks after the first; on failure the container
/// `id` is removed.
pub(crate) async fn join_other_networks(
    docker: &Docker,
    id: &str,
    name: &str,
    service: &ServiceSpec,
    named: bool,
) -> Result<(), DeployError> {
    for endpoint in service.networks.iter().skip(1) {
        let request = NetworkConnectRequest {
            container: id.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: named.then(|| aliases(service, &endpoint.aliases)),
                ..Default::default()
            }),
        };
        if let Err(e) = docker.connect_network(&endpoint.network, request).await {
            let _ = remove(docker, id, Some(Duration::ZERO)).await;
            return Err(
                DockerError::call(format!("connect {name} to {}", endpoint.network), e).into(),
            );
        }
    }
    Ok(())
}

/// Why a container name is taken: by another project (refused, naming it:
/// HostKit never touches another stack's container), or by a container of
/// this one (an engine conflict).
async fn name_taken(
    docker: &Docker,
    stack: &StackSpec,
    service: &ServiceSpec,
    name: &str,
    conflict: bollard::errors::Error,
) -> DeployError {
    let labels = docker
        .inspect_container(name, None)
        .await
        .ok()
        .and_then(|c| c.config?.labels);
    let found = Found {
        kind: "container",
        name,
        labels: labels.as_ref(),
    };
    let path = format!("services.{}", service.name);
    let remedy = "rename the service or its container_name";
    match require_owner(&stack.project, found, Some(&service.name), path, remedy) {
        Ok(()) => DockerError::call(format!("create container {name}"), conflict).into(),
        Err(denied) => denied,
    }
}

/// Start a stopped container.
pub async fn start(docker: &Docker, id: &str) -> Result<(), DockerError> {
    match docker.start_container(id, None).await {
        Ok(()) => Ok(()),
        // 304: already running.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(DockerError::call(format!("start container {id}"), e)),
    }
}

/// Stop a container (SIGTERM, then SIGKILL after `timeout`).
pub async fn stop(docker: &Docker, id: &str, timeout: Option<Duration>) -> Result<(), DockerError> {
    let secs = timeout.map_or(10, |t| t.as_secs() as i32);
    let options = StopContainerOptionsBuilder::default().t(secs).build();
    match docker.stop_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        Err(e) => Err(DockerError::call(format!("stop container {id}"), e)),
    }
}

/// Restart a container.
pub async fn restart(
    docker: &Docker,
    id: &str,
    timeout: Option<Duration>,
) -> Result<(), DockerError> {
    let secs = timeout.map_or(10, |t| t.as_secs() as i32);
    let options = RestartContainerOptionsBuilder::default().t(secs).build();
    docker
        .restart_container(id, Some(options))
        .await
        .map_err(|e| DockerError::call(format!("restart container {id}"), e))
}

/// Stop then remove a container (anonymous volumes go with it; named ones stay).
pub async fn remove(
    docker: &Docker,
    id: &str,
    timeout: Option<Duration>,
) -> Result<(), DockerError> {
    stop(docker, id, timeout).await?;
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(id, Some(options)).await {
        Ok(()) => Ok(()),
        Err(e) if is_not_found(&e) => Ok(()),
        // 409: removal already in progress.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409, ..
        }) => Ok(()),
        Err(e) => Err(DockerError::call(format!("remove container {id}"), e)),
    }
}

/// Remove every container (running or not) carrying all of `labels`
/// (`key=value` or `key` filters): leftovers of one-off runs and hooks
/// that were cut short. `what` names them in errors.
pub(crate) async fn remove_labelled(
    docker: &Docker,
    labels: Vec<String>,
    what: &str,
) -> Result<(), DeployError> {
    let filters = HashMap::from([("label".to_string(), labels)]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let leftovers = match docker.list_containers(Some(options)).await {
        Ok(list) => list,
        Err(e) if is_not_found(&e) => Vec::new(),
        Err(e) => return Err(DockerError::call(format!("list {what}"), e).into()),
    };
    for id in leftovers.into_iter().filter_map(|c| c.id) {
        remove(docker, &id, Some(Duration::ZERO)).await?;
    }
    Ok(())
}
