//! A domain's running v1 container, inspected into what its compose file
//! must say: image, port, memory limits, restart policy, the env it was
//! given (not its image's), and its bind mounts. v1 names the container
//! after the domain with dots turned into dashes and runs it with
//! `docker run` — a container of a Compose project is not a v1 site.

use std::collections::BTreeSet;
use std::path::Path;

use bollard::Docker;
use bollard::query_parameters::TagImageOptionsBuilder;
use serde_yaml::{Mapping, Value};

use crate::engine::labels;

/// v1's container name for `domain`: `example.com` → `example-com`.
pub fn container_name(domain: &str) -> String {
    domain.replace('.', "-")
}

/// What HostKit needs to run a v1 site as a one-service stack.
#[derive(Clone, PartialEq, Eq)]
pub struct V1Site {
    /// The container's name.
    pub container: String,
    /// The container's id.
    pub container_id: String,
    /// The image the container runs.
    pub image_id: String,
    /// A tag that names `image_id` now (v1's `<domain>:<version>` when it
    /// still does); empty when none does (see [`V1Site::name_image`]).
    pub image_reference: String,
    /// The container port v1 publishes (host port = container port in v1).
    pub port: u16,
    /// `--memory`, bytes.
    pub memory: Option<i64>,
    /// `--memory-reservation`, bytes.
    pub memory_reservation: Option<i64>,
    /// The restart policy's name (`unless-stopped`).
    pub restart: Option<String>,
    /// `KEY=value` entries the container was given beyond its image's.
    pub env: Vec<(String, String)>,
    /// Bind mounts as `source:target[:mode]`, sources inside the domain
    /// directory written relative to it (`./logs`).
    pub binds: Vec<String>,
}

impl std::fmt::Debug for V1Site {
    // The env may hold secrets: only its names are shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Site")
            .field("container", &self.container)
            .field("image_id", &self.image_id)
            .field("image_reference", &self.image_reference)
            .field("port", &self.port)
            .field("memory", &self.memory)
            .field("restart", &self.restart)
            .field(
                "env",
                &self.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
            )
            .field("binds", &self.binds)
            .finish()
    }
}

impl V1Site {
    /// Make sure a tag names the site's image: when none does, tag it
    /// `<domain>:v1-import`.
    pub async fn name_image(&mut self, docker: &Docker, domain: &str) -> Result<(), V1SiteError> {
        if !self.image_reference.is_empty() {
            return Ok(());
        }
        let tag = "v1-import";
        docker
            .tag_image(
                &self.image_id,
                Some(
                    TagImageOptionsBuilder::default()
                        .repo(domain)
                        .tag(tag)
                        .build(),
                ),
            )
            .await
            .map_err(|source| V1SiteError::Docker {
                name: self.container.clone(),
                source,
            })?;
        self.image_reference = format!("{domain}:{tag}");
        Ok(())
    }

    /// A compose file with the one service `name`, as v1 ran the container:
    /// image, port (published on the domain's block), memory limit and
    /// reservation, restart policy, its own env and bind mounts. `$` is
    /// escaped, so values reach the container literally.
    pub fn compose_service(&self, name: &str) -> String {
        let escape = |s: &str| Value::String(s.replace('$', "$$"));
        let mut service = Mapping::new();
        service.insert("image".into(), escape(&self.image_reference));
        service.insert(
            "restart".into(),
            Value::String(
                self.restart
                    .clone()
                    .unwrap_or_else(|| "unless-stopped".into()),
            ),
        );
        service.insert(
            "ports".into(),
            Value::Sequence(vec![Value::String(self.port.to_string())]),
        );
        if let Some(memory) = self.memory {
            service.insert("mem_limit".into(), Value::Number(memory.into()));
        }
        if let Some(reservation) = self.memory_reservation {
            let memory = Mapping::from_iter([("memory".into(), Value::Number(reservation.into()))]);
            let resources = Mapping::from_iter([("reservations".into(), Value::Mapping(memory))]);
            let deploy = Mapping::from_iter([("resources".into(), Value::Mapping(resources))]);
            service.insert("deploy".into(), Value::Mapping(deploy));
        }
        if !self.env.is_empty() {
            let env: Mapping = self
                .env
                .iter()
                .map(|(k, v)| (Value::String(k.clone()), escape(v)))
                .collect();
            service.insert("environment".into(), Value::Mapping(env));
        }
        if !self.binds.is_empty() {
            service.insert(
                "volumes".into(),
                Value::Sequence(self.binds.iter().map(|b| escape(b)).collect()),
            );
        }
        let services = Mapping::from_iter([(Value::String(name.into()), Value::Mapping(service))]);
        let file = Mapping::from_iter([("services".into(), Value::Mapping(services))]);
        serde_yaml::to_string(&Value::Mapping(file)).unwrap_or_default()
    }
}

/// Why a v1 site cannot be taken over (it is then left as it was).
#[derive(Debug, thiserror::Error)]
pub enum V1SiteError {
    /// No container of that name.
    #[error(
        "no container `{name}`: HostKit v1 runs the site in a container named after the domain"
    )]
    NoContainer { name: String },
    /// The container exists but does not run: there is nothing to keep up.
    #[error("container `{name}` is not running (state {state})")]
    NotRunning { name: String, state: String },
    /// The container belongs to a Compose project (HostKit's or another's).
    #[error(
        "container `{name}` belongs to the Compose project `{project}`, not to a HostKit v1 site"
    )]
    ComposeProject { name: String, project: String },
    /// v1's port is not published by the container.
    #[error("container `{name}` does not publish {wanted}")]
    NoPort { name: String, wanted: String },
    /// The engine failed.
    #[error("the Docker Engine failed while inspecting `{name}`")]
    Docker {
        name: String,
        #[source]
        source: bollard::errors::Error,
    },
}

/// Inspect `domain`'s v1 container. `port` is v1's `config.json` port (the
/// container publishes it as `127.0.0.1:<port>:<port>`); `domain_dir` is
/// where its bind sources are made relative. With `must_run`, a stopped
/// container is [`V1SiteError::NotRunning`] (a resumed import passes
/// `false`: its first attempt stopped the container).
pub async fn inspect_site(
    docker: &Docker,
    domain: &str,
    port: Option<u16>,
    domain_dir: &Path,
    must_run: bool,
) -> Result<V1Site, V1SiteError> {
    let name = container_name(domain);
    let engine = |source| V1SiteError::Docker {
        name: name.clone(),
        source,
    };
    let inspect = match docker.inspect_container(&name, None).await {
        Ok(inspect) => inspect,
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => return Err(V1SiteError::NoContainer { name }),
        Err(e) => return Err(engine(e)),
    };
    let config = inspect.config.unwrap_or_default();
    if let Some(project) = config.labels.as_ref().and_then(|l| l.get(labels::PROJECT)) {
        return Err(V1SiteError::ComposeProject {
            name,
            project: project.clone(),
        });
    }
    let state = inspect.state.unwrap_or_default();
    if must_run && state.running != Some(true) {
        let state = state
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "unknown".into());
        return Err(V1SiteError::NotRunning { name, state });
    }
    let container_id = inspect.id.unwrap_or_default();
    let image_id = inspect.image.unwrap_or_default();
    let host = inspect.host_config.unwrap_or_default();

    let container_port =
        published_port(host.port_bindings.as_ref(), port).ok_or_else(|| V1SiteError::NoPort {
            name: name.clone(),
            wanted: port.map_or("a port".into(), |p| format!("port {p}")),
        })?;

    let image = docker.inspect_image(&image_id).await.map_err(engine)?;
    let image_env: BTreeSet<String> = image
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .collect();
    let env = config
        .env
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| !image_env.contains(entry))
        .filter_map(|entry| {
            let (k, v) = entry.split_once('=')?;
            Some((k.to_string(), v.to_string()))
        })
        .collect();

    // Nothing may name the image any more (v1 moved `latest` on); then
    // `name_image` tags it for the compose file.
    let image_reference = usable_tag(
        config.image.as_deref(),
        image.repo_tags.as_deref().unwrap_or_default(),
        domain,
        &image_id,
        docker,
    )
    .await
    .unwrap_or_default();

    let binds = host
        .binds
        .unwrap_or_default()
        .into_iter()
        .map(|bind| relative_bind(&bind, domain_dir))
        .collect();

    Ok(V1Site {
        container: name,
        container_id,
        image_id,
        image_reference,
        port: container_port,
        memory: host.memory.filter(|m| *m > 0),
        memory_reservation: host.memory_reservation.filter(|m| *m > 0),
        restart: host
            .restart_policy
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty() && n != "no"),
        env,
        binds,
    })
}

/// The container port bound to host port `wanted` (v1: the same number),
/// or the only bound port when `wanted` is unknown.
fn published_port(
    bindings: Option<&std::collections::HashMap<String, Option<Vec<bollard::models::PortBinding>>>>,
    wanted: Option<u16>,
) -> Option<u16> {
    let mut found = Vec::new();
    for (key, hosts) in bindings? {
        let Some(container) = key.strip_suffix("/tcp").and_then(|p| p.parse::<u16>().ok()) else {
            continue;
        };
        let host_ports: Vec<u16> = hosts
            .iter()
            .flatten()
            .filter_map(|b| b.host_port.as_deref()?.parse().ok())
            .collect();
        found.push((container, host_ports));
    }
    match wanted {
        Some(port) => found
            .iter()
            .find(|(_, hosts)| hosts.contains(&port))
            .map(|(c, _)| *c),
        None if found.len() == 1 => Some(found[0].0),
        None => None,
    }
}

/// A reference naming `image_id` now: v1's `<domain>:<version>` first (it
/// stays when v1 moves `latest` on), then the one the container was run
/// with, then any other tag of the image.
async fn usable_tag(
    run_with: Option<&str>,
    repo_tags: &[String],
    domain: &str,
    image_id: &str,
    docker: &Docker,
) -> Option<String> {
    let own = format!("{domain}:");
    let versioned = repo_tags
        .iter()
        .filter(|t| t.starts_with(&own) && !t.ends_with(":latest"))
        .map(String::as_str);
    let candidates = versioned
        .chain(run_with.filter(|r| !r.starts_with("sha256:")))
        .chain(repo_tags.iter().map(String::as_str));
    for candidate in candidates {
        if let Ok(found) = docker.inspect_image(candidate).await
            && found.id.as_deref() == Some(image_id)
        {
            return Some(candidate.to_string());
        }
    }
    None
}

/// `source:target[:mode]` with a source inside `domain_dir` made relative.
fn relative_bind(bind: &str, domain_dir: &Path) -> String {
    let Some((source, rest)) = bind.split_once(':') else {
        return bind.to_string();
    };
    match Path::new(source).strip_prefix(domain_dir) {
        Ok(rel) if rel.as_os_str().is_empty() => format!(".:{rest}"),
        Ok(rel) => format!("./{}:{rest}", rel.display()),
        Err(_) => bind.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use bollard::models::PortBinding;

    use super::*;

    fn binding(host: &str) -> Option<Vec<PortBinding>> {
        Some(vec![PortBinding {
            host_ip: Some("127.0.0.1".into()),
            host_port: Some(host.into()),
        }])
    }

    #[test]
    fn names_the_container_as_v1_does() {
        assert_eq!(container_name("example.com"), "example-com");
        assert_eq!(container_name("a.b.example"), "a-b-example");
    }

    #[test]
    fn finds_the_port_v1_published() {
        let bindings = HashMap::from([
            ("3000/tcp".to_string(), binding("3000")),
            ("9000/tcp".to_string(), binding("9100")),
        ]);
        assert_eq!(published_port(Some(&bindings), Some(3000)), Some(3000));
        assert_eq!(published_port(Some(&bindings), Some(9100)), Some(9000));
        assert_eq!(published_port(Some(&bindings), Some(4000)), None);
        assert_eq!(
            published_port(Some(&bindings), None),
            None,
            "two candidates"
        );
        let one = HashMap::from([("8080/tcp".to_string(), binding("3001"))]);
        assert_eq!(published_port(Some(&one), None), Some(8080));
        assert_eq!(published_port(None, Some(3000)), None);
    }

    #[test]
    fn makes_bind_sources_in_the_domain_directory_relative() {
        let dir = Path::new("/opt/domains/example.com");
        assert_eq!(
            relative_bind("/opt/domains/example.com/logs:/app/logs", dir),
            "./logs:/app/logs"
        );
        assert_eq!(
            relative_bind("/opt/domains/example.com/data:/d:ro", dir),
            "./data:/d:ro"
        );
        assert_eq!(relative_bind("/srv/x:/x", dir), "/srv/x:/x");
    }
}
