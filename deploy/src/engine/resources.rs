//! Networks and volumes of a project: created when missing (labelled as
//! Docker Compose does), removed with the stack.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{NetworkCreateRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    ListNetworksOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder,
};

use super::labels;
use super::spec::{NetworkSpec, VolumeSpec};
use crate::docker::{DockerError, is_not_found};
use crate::error::DeployError;
use crate::policy::{PolicyDenied, Rule};

fn owned_labels(
    project: &str,
    kind_key: &str,
    key: &str,
    extra: &HashMap<String, String>,
) -> HashMap<String, String> {
    let mut all = extra.clone();
    all.insert(labels::PROJECT.into(), project.into());
    all.insert(kind_key.into(), key.into());
    all.insert(
        labels::COMPOSE_VERSION.into(),
        labels::COMPOSE_VERSION_VALUE.into(),
    );
    all.insert(labels::MANAGED.into(), "true".into());
    all
}

/// An engine object found under a name this stack wants.
pub(super) struct Found<'a> {
    /// `volume`, `network` or `container`.
    pub kind: &'static str,
    /// Its engine name.
    pub name: &'a str,
    /// Its labels, when it has any.
    pub labels: Option<&'a HashMap<String, String>>,
}

/// Refuse to reuse an engine object whose `com.docker.compose.project`
/// label is not `project` (DESIGN §6: `<project>_<key>` names of two
/// domains can collide, and a name may be taken by anything on the host);
/// the denial names the owner, the key path and what to do.
pub(super) fn require_owner(
    project: &str,
    found: Found<'_>,
    service: Option<&str>,
    path: String,
    remedy: &str,
) -> Result<(), DeployError> {
    let owner = found.labels.and_then(|l| l.get(labels::PROJECT));
    if owner.map(String::as_str) == Some(project) {
        return Ok(());
    }
    let who = match owner {
        Some(other) => format!("the stack `{other}`"),
        None => "something outside HostKit".to_owned(),
    };
    let Found { kind, name, .. } = found;
    Err(PolicyDenied::one(
        Rule::ResourceOwner,
        service,
        path,
        format!("the {kind} `{name}` already exists and belongs to {who}; {remedy}"),
    )
    .into())
}

/// [`require_owner`] for a top-level network or volume `key`.
fn owned_by(
    project: &str,
    kind: &'static str,
    key: &str,
    name: &str,
    labels: Option<&HashMap<String, String>>,
) -> Result<(), DeployError> {
    let found = Found { kind, name, labels };
    let remedy = format!("use another {kind} key or `name:`");
    require_owner(project, found, None, format!("{kind}s.{key}"), &remedy)
}

/// Whether the network exists; an existing one must be this project's.
async fn existing_network(
    docker: &Docker,
    project: &str,
    network: &NetworkSpec,
) -> Result<bool, DeployError> {
    match docker.inspect_network(&network.name, None).await {
        Ok(found) => {
            let labels = found.labels.as_ref();
            owned_by(project, "network", &network.key, &network.name, labels)?;
            Ok(true)
        }
        Err(e) if is_not_found(&e) => Ok(false),
        Err(e) => Err(DockerError::call(format!("inspect network {}", network.name), e).into()),
    }
}

/// Create each network that does not exist yet; an existing one is reused
/// only when this project owns it.
pub async fn ensure_networks(
    docker: &Docker,
    project: &str,
    networks: &[NetworkSpec],
) -> Result<(), DeployError> {
    for network in networks {
        if existing_network(docker, project, network).await? {
            continue;
        }
        let request = NetworkCreateRequest {
            name: network.name.clone(),
            driver: Some(network.driver.clone().unwrap_or_else(|| "bridge".into())),
            internal: Some(network.internal),
            attachable: Some(true),
            labels: Some(owned_labels(
                project,
                labels::NETWORK,
                &network.key,
                &network.labels,
            )),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => {}
            // Created meanwhile: reused only if it is ours.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {
                existing_network(docker, project, network).await?;
            }
            Err(e) => {
                return Err(
                    DockerError::call(format!("create network {}", network.name), e).into(),
                );
            }
        }
    }
    Ok(())
}

/// Create each named volume that does not exist yet (existing data is
/// kept); an existing one is reused only when this project owns it.
pub async fn ensure_volumes(
    docker: &Docker,
    project: &str,
    volumes: &[VolumeSpec],
) -> Result<(), DeployError> {
    for volume in volumes {
        match docker.inspect_volume(&volume.name).await {
            Ok(found) => {
                owned_by(
                    project,
                    "volume",
                    &volume.key,
                    &volume.name,
                    Some(&found.labels),
                )?;
                continue;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(DockerError::call(format!("inspect volume {}", volume.name), e).into());
            }
        }
        let request = VolumeCreateRequest {
            name: Some(volume.name.clone()),
            driver: Some(volume.driver.clone().unwrap_or_else(|| "local".into())),
            driver_opts: Some(volume.driver_opts.clone()),
            labels: Some(owned_labels(
                project,
                labels::VOLUME,
                &volume.key,
                &volume.labels,
            )),
            ..Default::default()
        };
        // Volume creation is idempotent in the engine: check who owns what
        // it answers (another stack may have created the name meanwhile).
        let created = docker
            .create_volume(request)
            .await
            .map_err(|e| DockerError::call(format!("create volume {}", volume.name), e))?;
        owned_by(
            project,
            "volume",
            &volume.key,
            &volume.name,
            Some(&created.labels),
        )?;
    }
    Ok(())
}

fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_string(),
        vec![labels::filter(labels::PROJECT, project)],
    )])
}

/// Remove every network of the project.
pub async fn remove_networks(docker: &Docker, project: &str) -> Result<(), DockerError> {
    let options = ListNetworksOptionsBuilder::default()
        .filters(&project_filter(project))
        .build();
    let networks = docker
        .list_networks(Some(options))
        .await
        .map_err(|e| DockerError::call(format!("list networks of {project}"), e))?;
    for network in networks {
        let Some(name) = network.name else { continue };
        match docker.remove_network(&name).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(DockerError::call(format!("remove network {name}"), e)),
        }
    }
    Ok(())
}

/// Remove every named volume of the project (only on an explicit purge).
pub async fn remove_volumes(docker: &Docker, project: &str) -> Result<(), DockerError> {
    let options = ListVolumesOptionsBuilder::default()
        .filters(&project_filter(project))
        .build();
    let listed = docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| DockerError::call(format!("list volumes of {project}"), e))?;
    for volume in listed.volumes.unwrap_or_default() {
        let options = RemoveVolumeOptionsBuilder::default().force(true).build();
        match docker.remove_volume(&volume.name, Some(options)).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(DockerError::call(
                    format!("remove volume {}", volume.name),
                    e,
                ));
            }
        }
    }
    Ok(())
}
