//! [`TestDocker`]: the real Docker Engine for one test, with a per-test label
//! and unique names, and cleanup on drop (even when the test panics) of every
//! container, network and volume the test labelled or whose Compose project
//! it registered, and of every image tag it registered.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, HealthStatusEnum, HostConfig, NetworkDisconnectRequest, PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, ImportImageOptions, ListContainersOptions, ListImagesOptions,
    ListNetworksOptions, ListVolumesOptions, RemoveContainerOptions, RemoveImageOptions,
    RemoveVolumeOptions,
};
use futures_util::StreamExt as _;
use tokio_util::io::ReaderStream;

use crate::image::{TarballBuilder, TarballInfo};
use crate::util::wait_for;

/// The label every resource a test creates should carry: `hostkit.test=<id>`.
pub const TEST_LABEL: &str = "hostkit.test";
/// Docker Compose's project label, also used for cleanup.
pub const COMPOSE_PROJECT_LABEL: &str = "com.docker.compose.project";

/// Request timeout for image loads (the client's default 120 s also bounds
/// the wait for response headers, which a big load can exceed).
const LOAD_TIMEOUT: Duration = Duration::from_secs(3600);
/// Bound on the whole cleanup at drop.
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(180);

const ENGINE_HINT: &str = "the end-to-end tests need a running Docker Engine (API >= 1.41) on \
     /var/run/docker.sock (or DOCKER_HOST=unix://…): install it (`apt-get install docker.io`) and start it \
     (`systemctl start docker`, or `dockerd &`)";

/// Connects to the Docker Engine on `/var/run/docker.sock` (or the socket in
/// `DOCKER_HOST=unix://…`) and negotiates the API version (the engine may be
/// as old as 20.10 / API 1.41). Panics with an install hint when no engine
/// answers.
pub async fn connect_docker() -> Docker {
    try_connect()
        .await
        .unwrap_or_else(|e| panic!("{e:#}; {ENGINE_HINT}"))
}

async fn try_connect() -> anyhow::Result<Docker> {
    let socket = std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|host| host.strip_prefix("unix://").map(str::to_string))
        .unwrap_or_else(|| "/var/run/docker.sock".to_string());
    let docker = Docker::connect_with_socket(&socket, 120, bollard::API_DEFAULT_VERSION)
        .with_context(|| format!("cannot create a Docker client for {socket}"))?;
    docker
        .negotiate_version()
        .await
        .with_context(|| format!("no Docker Engine answered on {socket}"))
}

/// The Compose project name of a domain: `.` replaced by `_` (the design's
/// domain token).
pub fn compose_project(domain: &str) -> String {
    domain.replace('.', "_")
}

/// A short, unique, lowercase token (16 characters of a fresh ULID's random
/// part: letters and digits).
fn short_unique() -> String {
    let ulid = ulid::Ulid::new().to_string().to_lowercase();
    ulid[ulid.len() - 16..].to_string()
}

/// The Docker Engine for one test. Create with [`TestDocker::new`]; put
/// [`label`](Self::label) on everything the test creates directly; register
/// projects (via [`unique_domain`](Self::unique_domain) or
/// [`register_project`](Self::register_project)) and image tags
/// ([`register_image`](Self::register_image)) the code under test creates.
/// Dropping it removes all of them (on a separate thread with its own
/// runtime, so it works inside `#[tokio::test]` and while panicking); a
/// cleanup failure outside a panic fails the test.
#[derive(Debug)]
pub struct TestDocker {
    docker: Docker,
    id: String,
    projects: Mutex<BTreeSet<String>>,
    images: Mutex<BTreeSet<String>>,
    names: AtomicU32,
}

impl TestDocker {
    /// Connects (see [`connect_docker`]) and picks a fresh test id.
    pub async fn new() -> TestDocker {
        TestDocker {
            docker: connect_docker().await,
            id: ulid::Ulid::new().to_string().to_lowercase(),
            projects: Mutex::new(BTreeSet::new()),
            images: Mutex::new(BTreeSet::new()),
            names: AtomicU32::new(0),
        }
    }

    /// The client (API version negotiated).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Run `cmd` in `container` (name or id); answers (exit code, output:
    /// stdout and stderr).
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> (i64, String) {
        let exec = self
            .docker
            .create_exec(
                container,
                bollard::models::ExecConfig {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .expect("create exec");
        let mut output = String::new();
        if let bollard::exec::StartExecResults::Attached {
            output: mut stream, ..
        } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .expect("start exec")
        {
            while let Some(Ok(chunk)) = stream.next().await {
                output.push_str(&chunk.to_string());
            }
        }
        let code = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .expect("inspect exec")
            .exit_code
            .unwrap_or(-1);
        (code, output)
    }

    /// This test's id (a lowercase ULID).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `("hostkit.test", <id>)`: the label to put on everything the test creates.
    pub fn label(&self) -> (&'static str, String) {
        (TEST_LABEL, self.id.clone())
    }

    /// [`label`](Self::label) as a map, ready for bollard create bodies.
    pub fn labels(&self) -> HashMap<String, String> {
        HashMap::from([(TEST_LABEL.to_string(), self.id.clone())])
    }

    /// A fresh valid domain `t<16 lowercase letters/digits>.test` whose
    /// Compose project (`t<…>_test`, see [`compose_project`]) is registered
    /// for cleanup.
    pub fn unique_domain(&self) -> String {
        let domain = format!("t{}.test", short_unique());
        self.register_project(compose_project(&domain));
        domain
    }

    /// A fresh name for a container, network or volume the test creates
    /// directly: `hktest-<prefix>-<16 chars>-<n>`.
    pub fn unique_name(&self, prefix: &str) -> String {
        let n = self.names.fetch_add(1, Ordering::Relaxed);
        format!("hktest-{prefix}-{}-{n}", short_unique())
    }

    /// Registers a Compose project: at drop, everything labelled
    /// `com.docker.compose.project=<project>` is removed, and so is every image
    /// tag `<project>/…` (HostKit's version tags) and the project's parent
    /// cgroup (stack budgets).
    pub fn register_project(&self, project: impl Into<String>) {
        lock(&self.projects).insert(project.into());
    }

    /// Registers an image tag (or id) to remove (forced) at drop. Register
    /// only tags unique to this test: fixture tags (`hostkit-test/…`) are
    /// shared by tests running in parallel.
    pub fn register_image(&self, tag: impl Into<String>) {
        lock(&self.images).insert(tag.into());
    }

    /// `docker load` of a tarball, streamed from the file in 1 MiB pieces
    /// (never read whole), with a one-hour request timeout. Returns what the
    /// engine reports as loaded (`repo:tag`, or `sha256:…` for untagged images).
    pub async fn load_tarball(&self, path: impl AsRef<Path>) -> anyhow::Result<Vec<String>> {
        let path = path.as_ref();
        let file = tokio::fs::File::open(path)
            .await
            .with_context(|| format!("open {}", path.display()))?;
        let body = ReaderStream::with_capacity(file, 1 << 20);
        let docker = self.docker.clone().with_timeout(LOAD_TIMEOUT);
        let mut progress = docker.import_image_stream(
            ImportImageOptions {
                quiet: true,
                platform: None,
            },
            body,
            None,
        );
        let mut loaded = Vec::new();
        while let Some(item) = progress.next().await {
            let info = item.with_context(|| format!("docker load of {}", path.display()))?;
            for line in info.stream.as_deref().unwrap_or_default().lines() {
                if let Some(name) = line.strip_prefix("Loaded image: ") {
                    loaded.push(name.trim().to_string());
                } else if let Some(id) = line.strip_prefix("Loaded image ID: ") {
                    loaded.push(id.trim().to_string());
                }
            }
        }
        if loaded.is_empty() {
            bail!("docker load of {} reported no loaded image", path.display());
        }
        Ok(loaded)
    }

    /// Writes `images` into one tarball in a temporary directory and loads
    /// it; returns what was written (tags, image ids). Panics on failure.
    pub async fn load_images(
        &self,
        images: impl IntoIterator<Item = crate::image::ImageSpec>,
    ) -> TarballInfo {
        let builder = images
            .into_iter()
            .fold(TarballBuilder::new(), TarballBuilder::image);
        let dir = tempfile::Builder::new()
            .prefix("hostkit-images-")
            .tempdir()
            .expect("temporary directory for a tarball");
        let path: PathBuf = dir.path().join("images.tar");
        let info = builder
            .write_to_async(path.clone())
            .await
            .expect("write the image tarball");
        let loaded = self
            .load_tarball(&path)
            .await
            .unwrap_or_else(|e| panic!("loading {:?} failed: {e:#}", info.tags()));
        for tag in info.tags() {
            assert!(
                loaded.contains(&tag),
                "docker load did not report {tag}; it reported {loaded:?}"
            );
        }
        info
    }

    /// Creates and starts a container from `image` with the test label and a
    /// [`unique_name`](Self::unique_name), publishing each
    /// `(container port, host port)` as TCP on 127.0.0.1. Returns its id.
    /// Panics on failure.
    pub async fn run_container(&self, image: &str, publish: &[(u16, u16)]) -> String {
        let port_bindings = publish
            .iter()
            .map(|(container, host)| {
                let binding = PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(host.to_string()),
                };
                (format!("{container}/tcp"), Some(vec![binding]))
            })
            .collect();
        self.run_container_with(ContainerCreateBody {
            image: Some(image.to_string()),
            exposed_ports: Some(
                publish
                    .iter()
                    .map(|(container, _)| format!("{container}/tcp"))
                    .collect(),
            ),
            host_config: Some(HostConfig {
                port_bindings: Some(port_bindings),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
    }

    /// Creates and starts a container from `body` (mounts, env, networks, …)
    /// after adding the test label and a [`unique_name`](Self::unique_name).
    /// Returns its id. Panics on failure.
    pub async fn run_container_with(&self, body: ContainerCreateBody) -> String {
        self.run_container_named(&self.unique_name("c"), body).await
    }

    /// [`run_container_with`](Self::run_container_with) under a name of the
    /// caller's choosing (e.g. HostKit v1's `example-com`); the test label
    /// still removes it when the test ends.
    pub async fn run_container_named(&self, name: &str, mut body: ContainerCreateBody) -> String {
        body.labels
            .get_or_insert_with(HashMap::new)
            .extend(self.labels());
        let image = body.image.clone().unwrap_or_default();
        let name = name.to_string();
        let options = CreateContainerOptions {
            name: Some(name.clone()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body)
            .await
            .unwrap_or_else(|e| panic!("create container {name} from {image:?}: {e}"));
        self.docker
            .start_container(&created.id, None)
            .await
            .unwrap_or_else(|e| panic!("start container {name} ({image:?}): {e}"));
        created.id
    }

    /// The container's health status (`none` when it has no healthcheck).
    pub async fn health_status(&self, container: &str) -> anyhow::Result<HealthStatusEnum> {
        let inspect = self.docker.inspect_container(container, None).await?;
        let health = inspect.state.and_then(|s| s.health);
        Ok(health
            .and_then(|h| h.status)
            .unwrap_or(HealthStatusEnum::NONE))
    }

    /// Polls inspect until the container's health status is `want`; panics
    /// after `timeout` with the current state and the last healthcheck output.
    pub async fn wait_health(&self, container: &str, want: HealthStatusEnum, timeout: Duration) {
        let description = format!("container {container} to become {want}");
        wait_for(timeout, &description, async || {
            let inspect = self
                .docker
                .inspect_container(container, None)
                .await
                .map_err(|e| e.to_string())?;
            let state = inspect.state.unwrap_or_default();
            let health = state.health.unwrap_or_default();
            if health.status == Some(want) {
                return Ok(());
            }
            let last_output = health
                .log
                .unwrap_or_default()
                .last()
                .and_then(|r| r.output.clone())
                .unwrap_or_default();
            Err(format!(
                "state {:?} (exit code {:?}), health {:?}, last check output {last_output:?}",
                state.status, state.exit_code, health.status
            ))
        })
        .await
    }
}

impl Drop for TestDocker {
    fn drop(&mut self) {
        let id = self.id.clone();
        let projects: Vec<String> = lock(&self.projects).iter().cloned().collect();
        let images: Vec<String> = lock(&self.images).iter().cloned().collect();
        let outcome = std::thread::Builder::new()
            .name("hostkit-test-docker-cleanup".into())
            .spawn(move || -> Vec<String> {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => return vec![format!("cannot build a runtime for cleanup: {e}")],
                };
                runtime.block_on(async {
                    match tokio::time::timeout(CLEANUP_TIMEOUT, cleanup(&id, &projects, &images))
                        .await
                    {
                        Ok(errors) => errors,
                        Err(_) => vec![format!("cleanup took longer than {CLEANUP_TIMEOUT:?}")],
                    }
                })
            })
            .map(|handle| handle.join());
        let errors = match outcome {
            Ok(Ok(errors)) => errors,
            Ok(Err(_)) => vec!["the cleanup thread panicked".to_string()],
            Err(e) => vec![format!("cannot spawn the cleanup thread: {e}")],
        };
        if errors.is_empty() {
            return;
        }
        let message = format!(
            "TestDocker {} cleanup failed:\n  {}",
            self.id,
            errors.join("\n  ")
        );
        if std::thread::panicking() {
            eprintln!("{message}");
        } else {
            panic!("{message}");
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether a Docker error just says the thing is already gone (or going).
fn is_gone(error: &DockerError) -> bool {
    match error {
        DockerError::DockerResponseServerError {
            status_code,
            message,
        } => {
            *status_code == 404 || (*status_code == 409 && message.contains("already in progress"))
        }
        _ => false,
    }
}

/// Removes, with a fresh client, everything labelled `hostkit.test=<id>` or
/// belonging to one of `projects`, and the `images`. Returns the errors.
async fn cleanup(id: &str, projects: &[String], images: &[String]) -> Vec<String> {
    let docker = match try_connect().await {
        Ok(docker) => docker,
        Err(e) => return vec![format!("{e:#}")],
    };
    let mut errors = Vec::new();
    let mut note = |what: String, result: Result<(), DockerError>| {
        if let Err(e) = result
            && !is_gone(&e)
        {
            errors.push(format!("{what}: {e}"));
        }
    };
    let label_filters: Vec<String> = std::iter::once(format!("{TEST_LABEL}={id}"))
        .chain(
            projects
                .iter()
                .map(|p| format!("{COMPOSE_PROJECT_LABEL}={p}")),
        )
        .collect();
    let filter = |label: &String| Some(HashMap::from([("label".to_string(), vec![label.clone()])]));

    for label in &label_filters {
        let options = ListContainersOptions {
            all: true,
            filters: filter(label),
            ..Default::default()
        };
        match docker.list_containers(Some(options)).await {
            Ok(containers) => {
                for container in containers.into_iter().filter_map(|c| c.id) {
                    let options = RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    };
                    note(
                        format!("remove container {container}"),
                        docker.remove_container(&container, Some(options)).await,
                    );
                }
            }
            Err(e) => note(format!("list containers {label}"), Err(e)),
        }
    }
    // Stack budgets: the projects' parent cgroups, now empty.
    let enforcement = hostkit_deploy::cgroup::Enforcement::detect(
        &docker,
        Path::new(hostkit_deploy::cgroup::DEFAULT_CGROUP_ROOT),
    )
    .await;
    let mut cgroup_errors = Vec::new();
    if let Some(tree) = enforcement.tree() {
        for project in projects {
            if let Err(e) = tree.remove(project, Duration::from_secs(3)).await {
                cgroup_errors.push(format!("remove the parent cgroup of {project}: {e}"));
            }
        }
    }
    for label in &label_filters {
        match docker
            .list_networks(Some(ListNetworksOptions {
                filters: filter(label),
            }))
            .await
        {
            Ok(networks) => {
                for network in networks.into_iter().filter_map(|n| n.id) {
                    let result = remove_network(&docker, &network).await;
                    note(format!("remove network {network}"), result);
                }
            }
            Err(e) => note(format!("list networks {label}"), Err(e)),
        }
    }
    for label in &label_filters {
        match docker
            .list_volumes(Some(ListVolumesOptions {
                filters: filter(label),
            }))
            .await
        {
            Ok(list) => {
                for volume in list.volumes.unwrap_or_default() {
                    let result = docker
                        .remove_volume(&volume.name, Some(RemoveVolumeOptions { force: true }))
                        .await;
                    note(format!("remove volume {}", volume.name), result);
                }
            }
            Err(e) => note(format!("list volumes {label}"), Err(e)),
        }
    }
    let mut tags: BTreeSet<String> = images.iter().cloned().collect();
    for project in projects {
        let filters = HashMap::from([("reference".to_string(), vec![format!("{project}/*")])]);
        match docker
            .list_images(Some(ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
        {
            Ok(found) => {
                let prefix = format!("{project}/");
                tags.extend(
                    found
                        .into_iter()
                        .flat_map(|i| i.repo_tags)
                        .filter(|t| t.starts_with(&prefix)),
                );
            }
            Err(e) => note(format!("list images {project}/*"), Err(e)),
        }
    }
    for tag in tags {
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
            ..Default::default()
        };
        let result = docker
            .remove_image(&tag, Some(options), None)
            .await
            .map(drop);
        note(format!("remove image {tag}"), result);
    }
    errors.extend(cgroup_errors);
    errors
}

/// Removes a network, first force-disconnecting whatever is still attached.
async fn remove_network(docker: &Docker, network: &str) -> Result<(), DockerError> {
    if let Ok(inspect) = docker.inspect_network(network, None).await {
        for container in inspect.containers.unwrap_or_default().into_keys() {
            let request = NetworkDisconnectRequest {
                container,
                force: Some(true),
            };
            let _ = docker.disconnect_network(network, request).await;
        }
    }
    docker.remove_network(network).await
}
