//! Label keys HostKit puts on containers, networks and volumes: Docker
//! Compose's own (so `docker-compose -p <project> ps` lists the stack) and
//! `hostkit.*` ones.

/// Compose project (= the domain token).
pub const PROJECT: &str = "com.docker.compose.project";
/// Compose service name.
pub const SERVICE: &str = "com.docker.compose.service";
/// Replica number, from 1.
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
/// `False` for service containers (compose v1 and v2 list only those).
pub const ONEOFF: &str = "com.docker.compose.oneoff";
/// Hash of the service's effective configuration (ours, not compose's).
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
/// Compose version that "created" the object; compose v1 reads it.
pub const COMPOSE_VERSION: &str = "com.docker.compose.version";
/// The project's working directory (the domain directory).
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
/// The compose file(s) of the project.
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
/// `svc:condition:restart` list of the service's dependencies.
pub const DEPENDS_ON: &str = "com.docker.compose.depends_on";
/// The image reference the service asked for.
pub const IMAGE: &str = "com.docker.compose.image";
/// Network key in the compose file.
pub const NETWORK: &str = "com.docker.compose.network";
/// Volume key in the compose file.
pub const VOLUME: &str = "com.docker.compose.volume";

/// The domain (exact name, not the token).
pub const DOMAIN: &str = "hostkit.domain";
/// Stack version that created the container.
pub const VERSION: &str = "hostkit.version";
/// Job that created the container.
pub const JOB: &str = "hostkit.job";
/// Marks everything HostKit manages.
pub const MANAGED: &str = "hostkit.managed";

/// The compose version we claim; v1.29 accepts it and v2 ignores it.
pub const COMPOSE_VERSION_VALUE: &str = "1.29.2";

/// A `label=key=value` filter value for the engine's list calls.
pub fn filter(key: &str, value: &str) -> String {
    format!("{key}={value}")
}
