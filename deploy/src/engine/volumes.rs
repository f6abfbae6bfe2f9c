//! A stack's named volumes as tar streams, through the Engine's archive
//! API: a helper container of one of the stack's own images (created, never
//! started: no pull, no process, no network) mounts the volume, and the
//! volume's content is read from it (`GET /containers/{id}/archive`) or
//! written into it (`PUT …/archive`, owners kept). Used by backups and
//! restores; [`recreate`] empties a volume by removing and creating it
//! again (no container of the stack may exist then).

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    DownloadFromContainerOptionsBuilder, ListContainersOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::container;
use super::labels;
use super::oneoff::RUN_LABEL;
use super::resources;
use super::spec::{StackSpec, VolumeSpec};
use crate::docker::{DockerError, is_not_found};
use crate::error::DeployError;

/// Where a helper container mounts the volume.
const MOUNT: &str = "/hostkit-volume";

/// A created (never started) container that mounts one volume.
#[derive(Debug)]
pub struct VolumeHelper {
    id: String,
    volume: String,
}

impl VolumeHelper {
    /// Create the helper of `volume` from `image_id` (one of the stack's
    /// images), labelled as the stack's one-off run `run_id`.
    pub async fn create(
        docker: &Docker,
        stack: &StackSpec,
        volume: &VolumeSpec,
        image_id: &str,
        run_id: &str,
    ) -> Result<VolumeHelper, DeployError> {
        let body = ContainerCreateBody {
            image: Some(image_id.to_owned()),
            // Never started; a command keeps images without one creatable.
            cmd: Some(vec!["true".to_owned()]),
            labels: Some(HashMap::from([
                (labels::PROJECT.to_owned(), stack.project.clone()),
                (labels::ONEOFF.to_owned(), "True".to_owned()),
                (labels::DOMAIN.to_owned(), stack.domain.to_string()),
                (RUN_LABEL.to_owned(), run_id.to_owned()),
            ])),
            host_config: Some(HostConfig {
                binds: Some(vec![format!("{}:{MOUNT}", volume.name)]),
                network_mode: Some("none".to_owned()),
                ..Default::default()
            }),
            network_disabled: Some(true),
            ..Default::default()
        };
        let created = docker.create_container(None, body).await.map_err(|e| {
            DockerError::call(
                format!("create the helper container of volume {}", volume.name),
                e,
            )
        })?;
        Ok(VolumeHelper {
            id: created.id,
            volume: volume.name.clone(),
        })
    }

    /// The volume's content as a tar (entries `./…`).
    pub fn download(
        &self,
        docker: &Docker,
    ) -> impl Stream<Item = Result<Bytes, DockerError>> + Send + 'static {
        let options = DownloadFromContainerOptionsBuilder::default()
            .path(&format!("{MOUNT}/."))
            .build();
        let what = format!("read volume {}", self.volume);
        docker
            .download_from_container(&self.id, Some(options))
            .map(move |chunk| chunk.map_err(|e| DockerError::call(what.clone(), e)))
    }

    /// Extract `tar` into the volume, keeping its owners. An error item
    /// aborts the request (the engine then reports a failure).
    pub async fn upload(
        &self,
        docker: &Docker,
        tar: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    ) -> Result<(), DockerError> {
        let options = UploadToContainerOptionsBuilder::default()
            .path(MOUNT)
            .copy_uidgid("true")
            .build();
        docker
            .upload_to_container(&self.id, Some(options), bollard::body_try_stream(tar))
            .await
            .map_err(|e| DockerError::call(format!("write volume {}", self.volume), e))
    }

    /// Remove the helper (the volume stays).
    pub async fn remove(self, docker: &Docker) -> Result<(), DockerError> {
        container::remove(docker, &self.id, Some(Duration::ZERO)).await
    }
}

/// Empty `volume` by removing it and creating it again with the same name,
/// driver and labels. No container may use it.
pub async fn recreate(
    docker: &Docker,
    stack: &StackSpec,
    volume: &VolumeSpec,
) -> Result<(), DeployError> {
    match docker
        .remove_volume(
            &volume.name,
            None::<bollard::query_parameters::RemoveVolumeOptions>,
        )
        .await
    {
        Ok(()) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => {
            return Err(DockerError::call(format!("remove volume {}", volume.name), e).into());
        }
    }
    resources::ensure_volumes(docker, &stack.project, std::slice::from_ref(volume)).await
}

/// Remove every container of the stack, one-off ones included (their
/// volumes stay): what a restore does before it empties volumes.
pub async fn remove_containers(docker: &Docker, stack: &StackSpec) -> Result<(), DeployError> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![labels::filter(labels::PROJECT, &stack.project)],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let all = docker
        .list_containers(Some(options))
        .await
        .map_err(|e| DockerError::call(format!("list the containers of {}", stack.project), e))?;
    for id in all.into_iter().filter_map(|c| c.id) {
        container::remove(docker, &id, None).await?;
    }
    Ok(())
}
