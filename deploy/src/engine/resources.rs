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

/// Create each network that does not exist yet.
pub async fn ensure_networks(
    docker: &Docker,
    project: &str,
    networks: &[NetworkSpec],
) -> Result<(), DockerError> {
    for network in networks {
        match docker.inspect_network(&network.name, None).await {
            Ok(_) => continue,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(DockerError::call(
                    format!("inspect network {}", network.name),
                    e,
                ));
            }
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
            // Another job of the same project created it meanwhile: fine.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => {
                return Err(DockerError::call(
                    format!("create network {}", network.name),
                    e,
                ));
            }
        }
    }
    Ok(())
}

/// Create each named volume that does not exist yet (existing data is kept).
pub async fn ensure_volumes(
    docker: &Docker,
    project: &str,
    volumes: &[VolumeSpec],
) -> Result<(), DockerError> {
    for volume in volumes {
        match docker.inspect_volume(&volume.name).await {
            Ok(_) => continue,
            Err(e) if is_not_found(&e) => {}
            Err(e) => {
                return Err(DockerError::call(
                    format!("inspect volume {}", volume.name),
                    e,
                ));
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
        docker
            .create_volume(request)
            .await
            .map_err(|e| DockerError::call(format!("create volume {}", volume.name), e))?;
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
