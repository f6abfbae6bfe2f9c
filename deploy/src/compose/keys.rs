//! The one table of compose keys HostKit supports.
//!
//! The loader accepts a key only if this table lists it as supported for the
//! mapping it appears in; `x-*` extension keys are accepted (and ignored)
//! everywhere. A few common keys are listed as rejected, with a hint on how
//! to do without them. [`supported_keys_markdown`] renders the table for the
//! README.

use super::error::ComposeError;
use super::path::KeyPath;
use std::fmt::Write as _;

/// The kinds of mapping whose keys are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The top level of the file.
    Top,
    /// `services.<name>`.
    Service,
    /// `services.<name>.ports[]` (long form).
    Port,
    /// `services.<name>.volumes[]` (long form).
    Mount,
    /// `services.<name>.volumes[].bind`.
    MountBind,
    /// `services.<name>.volumes[].volume`.
    MountVolume,
    /// `services.<name>.volumes[].tmpfs`.
    MountTmpfs,
    /// `services.<name>.volumes[].image`.
    MountImage,
    /// `services.<name>.depends_on.<service>`.
    DependsOn,
    /// `services.<name>.networks.<network>`.
    ServiceNetwork,
    /// `services.<name>.healthcheck`.
    Healthcheck,
    /// `services.<name>.deploy`.
    Deploy,
    /// `services.<name>.deploy.resources`.
    Resources,
    /// `services.<name>.deploy.resources.limits` and `.reservations`.
    ResourceSpec,
    /// `services.<name>.deploy.update_config`.
    UpdateConfig,
    /// `services.<name>.deploy.restart_policy`.
    RestartPolicy,
    /// `services.<name>.logging`.
    Logging,
    /// `services.<name>.ulimits.<name>` (long form).
    Ulimit,
    /// `services.<name>.secrets[]` and `.configs[]` (long form).
    FileRef,
    /// `services.<name>.env_file[]` (long form).
    EnvFile,
    /// `services.<name>.{pre_start,post_start,pre_stop}[]`.
    Hook,
    /// `networks.<name>`.
    Network,
    /// `volumes.<name>`.
    Volume,
    /// `secrets.<name>` and `configs.<name>`.
    FileObject,
}

impl Scope {
    /// How the scope's keys are written in the table.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::Top => "",
            Self::Service => "services.<name>.",
            Self::Port => "services.<name>.ports[].",
            Self::Mount => "services.<name>.volumes[].",
            Self::MountBind => "services.<name>.volumes[].bind.",
            Self::MountVolume => "services.<name>.volumes[].volume.",
            Self::MountTmpfs => "services.<name>.volumes[].tmpfs.",
            Self::MountImage => "services.<name>.volumes[].image.",
            Self::DependsOn => "services.<name>.depends_on.<service>.",
            Self::ServiceNetwork => "services.<name>.networks.<network>.",
            Self::Healthcheck => "services.<name>.healthcheck.",
            Self::Deploy => "services.<name>.deploy.",
            Self::Resources => "services.<name>.deploy.resources.",
            Self::ResourceSpec => "services.<name>.deploy.resources.{limits,reservations}.",
            Self::UpdateConfig => "services.<name>.deploy.update_config.",
            Self::RestartPolicy => "services.<name>.deploy.restart_policy.",
            Self::Logging => "services.<name>.logging.",
            Self::Ulimit => "services.<name>.ulimits.<name>.",
            Self::FileRef => "services.<name>.{secrets,configs}[].",
            Self::EnvFile => "services.<name>.env_file[].",
            Self::Hook => "services.<name>.{pre_start,post_start,pre_stop}[].",
            Self::Network => "networks.<name>.",
            Self::Volume => "volumes.<name>.",
            Self::FileObject => "{secrets,configs}.<name>.",
        }
    }
}

/// Whether a listed key is accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// Parsed into the model (possibly for the policy to deny).
    Yes,
    /// Rejected with a hint.
    Rejected(&'static str),
}

/// One row of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeySpec {
    /// The mapping the key belongs to.
    pub scope: Scope,
    /// The key.
    pub key: &'static str,
    /// Supported or rejected.
    pub support: Support,
    /// What it does (supported) or why it is rejected.
    pub description: &'static str,
}

const fn yes(scope: Scope, key: &'static str, description: &'static str) -> KeySpec {
    KeySpec {
        scope,
        key,
        support: Support::Yes,
        description,
    }
}

const fn no(scope: Scope, key: &'static str, hint: &'static str) -> KeySpec {
    KeySpec {
        scope,
        key,
        support: Support::Rejected(hint),
        description: hint,
    }
}

use Scope as S;

/// Hint given for `build:`.
pub const BUILD_HINT: &str = "HostKit does not build images: build the image in CI and ship it with `hostkit deploy --images`";

/// The table.
pub static KEYS: &[KeySpec] = &[
    yes(S::Top, "version", "accepted and ignored (obsolete)"),
    yes(
        S::Top,
        "name",
        "accepted and ignored: the project name is the domain's token",
    ),
    yes(S::Top, "services", "the services of the stack"),
    yes(S::Top, "networks", "networks, scoped to the project"),
    yes(S::Top, "volumes", "named volumes, scoped to the project"),
    yes(
        S::Top,
        "secrets",
        "secrets from a `file:`, an `environment:` variable or inline `content:`",
    ),
    yes(
        S::Top,
        "configs",
        "configs from a `file:`, an `environment:` variable or inline `content:`",
    ),
    no(
        S::Top,
        "include",
        "not supported: inline the included files",
    ),
    yes(S::Service, "image", "image reference (required)"),
    yes(S::Service, "command", "string (split like a shell) or list"),
    yes(
        S::Service,
        "entrypoint",
        "string (split like a shell) or list",
    ),
    yes(
        S::Service,
        "environment",
        "map or list of `KEY=VALUE` / `KEY` (taken from the env)",
    ),
    yes(
        S::Service,
        "env_file",
        "path or list (relative to the domain directory)",
    ),
    yes(S::Service, "labels", "map or list of `KEY=VALUE`"),
    yes(
        S::Service,
        "ports",
        "short `[ip:][host:]container[/proto]` or long form; rebound to 127.0.0.1 in the domain's port block",
    ),
    yes(S::Service, "expose", "container ports (documentation only)"),
    yes(
        S::Service,
        "volumes",
        "short `src:dst[:mode]` or long form (volume, bind, tmpfs)",
    ),
    yes(S::Service, "tmpfs", "path or list of paths"),
    yes(
        S::Service,
        "depends_on",
        "list or map with `condition`, `restart`, `required`",
    ),
    yes(S::Service, "networks", "list or map with `aliases`"),
    yes(
        S::Service,
        "network_mode",
        "`none` or `service:<name>` (others denied by policy)",
    ),
    yes(
        S::Service,
        "healthcheck",
        "test, interval, timeout, retries, start_period, start_interval, disable",
    ),
    yes(
        S::Service,
        "restart",
        "`no`, `always`, `on-failure[:N]`, `unless-stopped`",
    ),
    yes(
        S::Service,
        "deploy",
        "replicas, resources, update_config, restart_policy",
    ),
    yes(
        S::Service,
        "mem_limit",
        "memory limit (`512m`, `1g`, bytes)",
    ),
    yes(S::Service, "cpus", "CPU limit (float)"),
    yes(S::Service, "pids_limit", "process limit"),
    yes(S::Service, "user", "user[:group]"),
    yes(S::Service, "working_dir", "working directory"),
    yes(
        S::Service,
        "stop_signal",
        "signal sent to stop the container",
    ),
    yes(
        S::Service,
        "stop_grace_period",
        "duration before the container is killed",
    ),
    yes(S::Service, "init", "run an init process"),
    yes(S::Service, "read_only", "read-only root file system"),
    yes(
        S::Service,
        "extra_hosts",
        "list `host:ip` / `host=ip` or map",
    ),
    yes(S::Service, "hostname", "container host name"),
    yes(
        S::Service,
        "cap_add",
        "added capabilities (policy allow-list)",
    ),
    yes(S::Service, "cap_drop", "dropped capabilities"),
    yes(S::Service, "logging", "log driver and options"),
    yes(
        S::Service,
        "container_name",
        "kept as a network alias; the container is named `<project>-<container_name>`",
    ),
    yes(S::Service, "secrets", "short `name` or long form"),
    yes(S::Service, "configs", "short `name` or long form"),
    yes(S::Service, "privileged", "parsed so the policy can deny it"),
    yes(S::Service, "pid", "parsed so the policy can deny `host`"),
    yes(S::Service, "ipc", "parsed so the policy can deny `host`"),
    yes(S::Service, "devices", "parsed so the policy can deny it"),
    yes(S::Service, "tty", "allocate a TTY"),
    yes(S::Service, "stdin_open", "keep stdin open"),
    yes(
        S::Service,
        "profiles",
        "the service is deployed only when one of its profiles is active (`COMPOSE_PROFILES`, `hostkit deploy --profile`)",
    ),
    yes(S::Service, "shm_size", "size of `/dev/shm` (`64m`, bytes)"),
    yes(
        S::Service,
        "ulimits",
        "`name: N` or `name: {soft, hard}` (policy: `nofile` up to `max_nofile`, no `memlock: -1`)",
    ),
    yes(
        S::Service,
        "security_opt",
        "`no-new-privileges[:true]`; other options are denied by policy",
    ),
    yes(
        S::Service,
        "sysctls",
        "map or list of `KEY=VALUE`; `net.*` only (others denied by policy)",
    ),
    yes(
        S::Service,
        "develop",
        "accepted and ignored with a warning (local development only)",
    ),
    yes(
        S::Service,
        "platform",
        "accepted and ignored with a warning: the image runs as loaded (HostKit resolves images by id)",
    ),
    yes(
        S::Service,
        "pull_policy",
        "accepted and ignored with a warning (`always`, `missing`, `never`, `build`, `if_not_present`, `daily`, `weekly`, `every_<duration>`): HostKit pulls only when the job allows it",
    ),
    no(S::Service, "build", BUILD_HINT),
    no(
        S::Service,
        "extends",
        "not supported: use YAML anchors and merge keys (`<<: *base`)",
    ),
    yes(
        S::Service,
        "links",
        "`service` or `service:alias`: a dependency; the alias is added to the linked service on the networks both join",
    ),
    yes(S::Service, "scale", "the legacy form of `deploy.replicas`"),
    yes(
        S::Service,
        "pre_start",
        "hooks run once, in order, in their own container (the service's image unless `image:`; its networks and volumes) before the service's first replica starts; a failure fails the service's start",
    ),
    yes(
        S::Service,
        "post_start",
        "hooks run in each replica right after it started (`docker exec`); a failure fails that replica's start",
    ),
    yes(
        S::Service,
        "pre_stop",
        "hooks run in each replica before HostKit stops it (replace, scale down, stop, restart, remove), within the stop grace period; a failure is a warning and the stop goes on",
    ),
    yes(
        S::Service,
        "mac_address",
        "MAC address on the first network",
    ),
    no(
        S::Service,
        "volumes_from",
        "not supported: mount the same named volume in both services",
    ),
    yes(S::Port, "target", "container port (required)"),
    yes(
        S::Port,
        "published",
        "requested host port (remapped into the domain's port block)",
    ),
    yes(
        S::Port,
        "host_ip",
        "host address (only loopback passes the policy)",
    ),
    yes(S::Port, "protocol", "`tcp`, `udp` or `sctp`"),
    yes(S::Port, "mode", "`ingress` or `host`"),
    yes(
        S::Mount,
        "type",
        "`volume`, `bind`, `tmpfs` or `image` (an image's files, read-only; the node's engine must be Docker Engine 28 / API 1.48 or newer)",
    ),
    yes(
        S::Mount,
        "source",
        "volume name, host path or image reference",
    ),
    yes(S::Mount, "target", "path in the container (required)"),
    yes(S::Mount, "read_only", "mount read-only"),
    yes(S::Mount, "bind", "bind options"),
    yes(S::Mount, "volume", "volume options"),
    yes(S::Mount, "tmpfs", "tmpfs options"),
    yes(S::Mount, "image", "image options"),
    yes(S::Mount, "consistency", "accepted and ignored (macOS only)"),
    yes(S::MountBind, "propagation", "mount propagation"),
    yes(
        S::MountBind,
        "create_host_path",
        "create the host directory if missing (default true)",
    ),
    yes(S::MountBind, "selinux", "`z` or `Z`"),
    yes(
        S::MountVolume,
        "nocopy",
        "do not copy image data into a new volume",
    ),
    yes(
        S::MountVolume,
        "subpath",
        "mount a sub-directory of the volume",
    ),
    yes(S::MountTmpfs, "size", "size limit (`64m`, bytes)"),
    yes(S::MountTmpfs, "mode", "file mode (octal)"),
    yes(
        S::MountImage,
        "subpath",
        "mount a sub-directory of the image",
    ),
    yes(
        S::DependsOn,
        "condition",
        "`service_started`, `service_healthy`, `service_completed_successfully`",
    ),
    yes(
        S::DependsOn,
        "restart",
        "restart this service when the dependency is updated",
    ),
    yes(
        S::DependsOn,
        "required",
        "default true; a missing optional dependency is dropped with a warning",
    ),
    yes(
        S::ServiceNetwork,
        "aliases",
        "extra DNS names on that network",
    ),
    yes(
        S::ServiceNetwork,
        "interface_name",
        "accepted; the engine names the interface",
    ),
    yes(
        S::Healthcheck,
        "test",
        "string (CMD-SHELL) or `[CMD, ...]`, `[CMD-SHELL, cmd]`, `[NONE]`",
    ),
    yes(
        S::Healthcheck,
        "interval",
        "duration (`1m30s`, `10s`, `500ms`)",
    ),
    yes(S::Healthcheck, "timeout", "duration"),
    yes(
        S::Healthcheck,
        "retries",
        "consecutive failures before unhealthy",
    ),
    yes(S::Healthcheck, "start_period", "duration"),
    yes(
        S::Healthcheck,
        "start_interval",
        "duration (ignored by engines before API 1.44)",
    ),
    yes(S::Healthcheck, "disable", "disable the image's healthcheck"),
    yes(S::Deploy, "mode", "`replicated` only"),
    yes(S::Deploy, "replicas", "number of containers (at most 100)"),
    yes(S::Deploy, "resources", "limits and reservations"),
    yes(
        S::Deploy,
        "update_config",
        "`order: stop-first | start-first`",
    ),
    yes(
        S::Deploy,
        "restart_policy",
        "used when `restart` is not set",
    ),
    yes(S::Resources, "limits", "cpus, memory, pids"),
    yes(S::Resources, "reservations", "cpus, memory"),
    yes(S::ResourceSpec, "cpus", "CPUs (float)"),
    yes(S::ResourceSpec, "memory", "bytes (`512m`, `1g`)"),
    yes(S::ResourceSpec, "pids", "process limit"),
    yes(S::UpdateConfig, "order", "`stop-first` or `start-first`"),
    yes(
        S::RestartPolicy,
        "condition",
        "`none`, `on-failure` or `any`",
    ),
    yes(S::RestartPolicy, "delay", "duration (informational)"),
    yes(S::RestartPolicy, "max_attempts", "retries for `on-failure`"),
    yes(S::RestartPolicy, "window", "duration (informational)"),
    yes(S::Logging, "driver", "log driver"),
    yes(S::Logging, "options", "driver options"),
    yes(S::Ulimit, "soft", "soft limit (`-1`: unlimited)"),
    yes(S::Ulimit, "hard", "hard limit (`-1`: unlimited)"),
    yes(S::FileRef, "source", "the secret or config (required)"),
    yes(S::FileRef, "target", "path or name in the container"),
    yes(
        S::FileRef,
        "uid",
        "owner (numeric) of an `environment:` or `content:` file",
    ),
    yes(
        S::FileRef,
        "gid",
        "group (numeric) of an `environment:` or `content:` file",
    ),
    yes(
        S::FileRef,
        "mode",
        "file mode of an `environment:` or `content:` file (default 0444)",
    ),
    yes(
        S::Hook,
        "command",
        "string (split like a shell) or list; required except for a `pre_start` hook with `image:`",
    ),
    yes(
        S::Hook,
        "image",
        "`pre_start` only: the image of the hook's container (shipped like the services' images)",
    ),
    yes(S::Hook, "user", "user[:group] (the service's when unset)"),
    yes(S::Hook, "privileged", "parsed so the policy can deny it"),
    yes(
        S::Hook,
        "working_dir",
        "working directory (the service's when unset)",
    ),
    yes(
        S::Hook,
        "environment",
        "map or list, added to the service's environment",
    ),
    yes(
        S::Hook,
        "per_replica",
        "`pre_start` only: `false` (once for the service, the default); `true` is not supported",
    ),
    yes(S::EnvFile, "path", "env file path"),
    yes(S::EnvFile, "required", "default true"),
    yes(
        S::EnvFile,
        "format",
        "`dotenv` (default) or `raw` (lines taken verbatim)",
    ),
    yes(
        S::Network,
        "driver",
        "network driver (policy allows `bridge`)",
    ),
    yes(
        S::Network,
        "name",
        "engine name instead of `<project>_<key>`: used when free or owned by this stack, refused naming the owner otherwise",
    ),
    yes(S::Network, "internal", "no outside connectivity"),
    yes(S::Network, "labels", "map or list"),
    yes(S::Network, "external", "parsed so the policy can deny it"),
    yes(
        S::Volume,
        "name",
        "engine name instead of `<project>_<key>`: used when free or owned by this stack, refused naming the owner otherwise",
    ),
    yes(S::Volume, "driver", "volume driver"),
    yes(
        S::Volume,
        "driver_opts",
        "a bind of a directory (`type: none`, `o: bind`, `device: ./dir`) is checked as a bind mount; `type: tmpfs`; other options are denied by policy (`volume-options`)",
    ),
    yes(S::Volume, "labels", "map or list"),
    yes(S::Volume, "external", "parsed so the policy can deny it"),
    yes(
        S::FileObject,
        "file",
        "path of the file (relative to the domain directory), bind-mounted read-only",
    ),
    yes(
        S::FileObject,
        "environment",
        "name of a variable of the job's env or the domain's `.env`; the worker writes its value to a file under the domain's `.hostkit/` and bind-mounts it read-only",
    ),
    yes(
        S::FileObject,
        "content",
        "inline text (interpolated), written and mounted like `environment:`",
    ),
    no(
        S::FileObject,
        "external",
        "not supported: a stack has no access to the node's Swarm secrets; use `file:`, `environment:` or `content:`",
    ),
];

/// The row for `key` in `scope`, if listed.
pub fn lookup(scope: Scope, key: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|k| k.scope == scope && k.key == key)
}

/// Checks one key of a mapping of `scope` found at `path` (the key's own
/// path). `x-*` keys pass; unlisted or rejected keys are
/// `compose.unsupported` errors.
pub fn check(scope: Scope, key: &str, path: &KeyPath) -> Result<(), ComposeError> {
    if is_extension(key) {
        return Ok(());
    }
    match lookup(scope, key) {
        Some(KeySpec {
            support: Support::Yes,
            ..
        }) => Ok(()),
        Some(KeySpec {
            support: Support::Rejected(hint),
            ..
        }) => Err(ComposeError::unsupported_key(path.clone(), Some(hint))),
        None => Err(ComposeError::unsupported_key(path.clone(), None)),
    }
}

/// True for `x-*` extension keys.
pub fn is_extension(key: &str) -> bool {
    key.starts_with("x-")
}

/// The table as Markdown: supported keys, then rejected keys with hints.
pub fn supported_keys_markdown() -> String {
    let mut out = String::from("| Key | Notes |\n| --- | --- |\n");
    for spec in KEYS.iter().filter(|k| k.support == Support::Yes) {
        let _ = writeln!(
            out,
            "| `{}{}` | {} |",
            spec.scope.prefix(),
            spec.key,
            spec.description
        );
    }
    out.push_str("\nRejected keys (a `compose.unsupported` error with a hint):\n\n");
    out.push_str("| Key | Hint |\n| --- | --- |\n");
    for spec in KEYS.iter().filter(|k| k.support != Support::Yes) {
        let _ = writeln!(
            out,
            "| `{}{}` | {} |",
            spec.scope.prefix(),
            spec.key,
            spec.description
        );
    }
    out.push_str(
        "\nAny other key is a `compose.unsupported` error naming the key and its line; \
         `x-*` extension keys are accepted and ignored everywhere.\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_no_duplicates() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(
                KEYS[i + 1..]
                    .iter()
                    .all(|b| (a.scope, a.key) != (b.scope, b.key)),
                "duplicate {}{}",
                a.scope.prefix(),
                a.key
            );
        }
    }

    #[test]
    fn check_accepts_supported_and_extensions() {
        let p = KeyPath::from_keys(["services", "web", "image"]);
        assert!(check(Scope::Service, "image", &p).is_ok());
        assert!(check(Scope::Service, "x-anything", &p).is_ok());
        let e = check(Scope::Service, "build", &p).expect_err("rejected");
        assert_eq!(e.hint(), Some(BUILD_HINT));
        let e = check(Scope::Service, "userns_mode", &p).expect_err("unknown");
        assert_eq!(e.code(), "compose.unsupported");
    }

    #[test]
    fn markdown_lists_every_key() {
        let md = supported_keys_markdown();
        assert!(md.starts_with("| Key | Notes |"));
        assert!(md.contains("| `services.<name>.healthcheck.interval` |"));
        assert!(md.contains("| `services.<name>.build` | HostKit does not build images"));
        assert_eq!(md.matches("\n| `").count(), KEYS.len());
    }
}
