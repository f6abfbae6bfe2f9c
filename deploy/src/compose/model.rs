//! The typed, normalized compose model.
//!
//! Short and long forms of the compose syntax load into one representation:
//! durations are [`Duration`]s (serialized as nanoseconds), sizes are bytes,
//! CPUs are nano-CPUs, maps are sorted. The model is `Serialize` +
//! `Deserialize` so a version can be stored and re-applied, and its canonical
//! JSON is what [`Service::config_hash`](super::Service::config_hash) hashes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// A loaded compose file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Top-level `name:` as written (informational: the project name used for
    /// Docker objects is the domain's token).
    pub name: Option<String>,
    /// Services by name.
    pub services: BTreeMap<String, Service>,
    /// Networks by key. `default` is present when a service uses it (every
    /// service without `networks:` and without `network_mode:` does).
    pub networks: BTreeMap<String, Network>,
    /// Named volumes by key.
    pub volumes: BTreeMap<String, Volume>,
    /// Secrets by name.
    pub secrets: BTreeMap<String, FileObject>,
    /// Configs by name.
    pub configs: BTreeMap<String, FileObject>,
}

/// One service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// `links:` (`service` or `service:alias`): the alias is added to the
    /// linked service on the networks both join; a link is a dependency.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// `mac_address:` of the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Image reference as written (after interpolation).
    pub image: String,
    /// Overrides the image's CMD; `Some(vec![])` clears it.
    pub command: Option<Vec<String>>,
    /// Overrides the image's ENTRYPOINT; `Some(vec![])` clears it.
    pub entrypoint: Option<Vec<String>>,
    /// Environment; `KEY` / `KEY: null` entries took their value from the
    /// load env or were dropped when unset there. `env_file` contents are not
    /// included until [`Project::apply_env_files`](super::Project::apply_env_files).
    pub environment: BTreeMap<String, String>,
    /// Env files, paths as written (relative to the domain directory).
    pub env_file: Vec<EnvFile>,
    /// Container labels.
    pub labels: BTreeMap<String, String>,
    /// Port mappings; ranges are expanded to one entry per port.
    pub ports: Vec<PortMapping>,
    /// `expose:` entries (`3000`, `8000-8010/udp`), validated.
    pub expose: Vec<String>,
    /// Volume, bind and tmpfs mounts (`volumes:`).
    pub volumes: Vec<Mount>,
    /// `tmpfs:` entries (`/path[:options]`).
    pub tmpfs: Vec<String>,
    /// Dependencies by service name (includes the implicit dependency of
    /// `network_mode/pid/ipc: service:<name>`).
    pub depends_on: BTreeMap<String, Dependency>,
    /// Networks to join, by network key. Empty only with `network_mode`.
    pub networks: BTreeMap<String, ServiceNetwork>,
    /// `network_mode` as written (`none`, `host`, `service:x`, …).
    pub network_mode: Option<String>,
    /// Healthcheck override; `None` keeps the image's.
    pub healthcheck: Option<Healthcheck>,
    /// Effective restart policy: `restart:`, else derived from
    /// `deploy.restart_policy`, else `no`.
    pub restart: Restart,
    /// `deploy:` settings, with `mem_limit`, `cpus` and `pids_limit` folded
    /// into `deploy.resources.limits`.
    pub deploy: Deploy,
    /// `user:`.
    pub user: Option<String>,
    /// `working_dir:`.
    pub working_dir: Option<String>,
    /// `stop_signal:`.
    pub stop_signal: Option<String>,
    /// `stop_grace_period:`.
    #[serde(with = "opt_duration_ns")]
    pub stop_grace_period: Option<Duration>,
    /// `init:`.
    pub init: Option<bool>,
    /// `read_only:` (root file system).
    pub read_only: bool,
    /// `extra_hosts:` in written order.
    pub extra_hosts: Vec<ExtraHost>,
    /// `hostname:`.
    pub hostname: Option<String>,
    /// Added capabilities, upper case without `CAP_`.
    pub cap_add: Vec<String>,
    /// Dropped capabilities, upper case without `CAP_`.
    pub cap_drop: Vec<String>,
    /// `logging:`.
    pub logging: Option<Logging>,
    /// `container_name:` as written.
    pub container_name: Option<String>,
    /// Secrets mounted into the service.
    pub secrets: Vec<FileRef>,
    /// Configs mounted into the service.
    pub configs: Vec<FileRef>,
    /// `privileged:` (the policy denies `true`).
    pub privileged: bool,
    /// `pid:` as written.
    pub pid: Option<String>,
    /// `ipc:` as written.
    pub ipc: Option<String>,
    /// `devices:` entries as written (`/dev/x[:/dev/y[:rwm]]`).
    pub devices: Vec<String>,
    /// `tty:`.
    pub tty: bool,
    /// `stdin_open:`.
    pub stdin_open: bool,
    // The keys below were added after versions were first recorded: they
    // are left out of the JSON when unset, so a stored version still
    // decodes and a service that does not use them keeps its config hash.
    /// `profiles:` the service belongs to. Informational once loaded (a
    /// service none of whose profiles is active is not in the project) and
    /// left out of the config hash.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// `shm_size:` in bytes (the size of `/dev/shm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<u64>,
    /// `ulimits:` by name (`nofile`, `nproc`, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub ulimits: BTreeMap<String, Ulimit>,
    /// `security_opt:` as written (the policy allows `no-new-privileges`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `sysctls:` by name (the policy allows the `net.*` namespace).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sysctls: BTreeMap<String, String>,
    /// `pre_start:` hooks: containers run to completion, in order, before
    /// the service's first replica starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_start: Vec<Hook>,
    /// `post_start:` hooks: commands run in each replica once it started.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<Hook>,
    /// `pre_stop:` hooks: commands run in each replica before HostKit stops it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<Hook>,
}

/// One lifecycle hook (`pre_start`, `post_start`, `pre_stop`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// The command (exec form); empty only for a `pre_start` hook that runs
    /// its image's own command.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// `pre_start` only: the image of the hook's container (the service's
    /// image when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// User to run the command as (the service's user when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Run with extended privileges (the policy denies it, as for a service).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileged: bool,
    /// Working directory (the service's when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Variables added to (or overriding) the service's environment.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub environment: BTreeMap<String, String>,
}

/// One `ulimits` entry; `-1` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    /// Soft limit.
    pub soft: i64,
    /// Hard limit.
    pub hard: i64,
}

/// An env file reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFile {
    /// Path as written.
    pub path: String,
    /// A missing optional file is skipped.
    pub required: bool,
    /// `format: raw`: each line is `KEY=VALUE` taken verbatim (no quotes,
    /// escapes or comments after the value).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub raw: bool,
}

/// Transport protocol of a port.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// TCP (default).
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// `tcp`, `udp` or `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

/// Port publishing mode (`mode:`); only meaningful in Swarm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortMode {
    /// `ingress` (default).
    #[default]
    Ingress,
    /// `host`.
    Host,
}

/// One published container port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortMapping {
    /// Container port.
    pub target: u16,
    /// Host port requested in the file (HostKit assigns host ports from the
    /// domain's block, see [`crate::ports`]).
    pub published: Option<u16>,
    /// Host address requested in the file (the policy only allows loopback;
    /// HostKit binds 127.0.0.1 anyway).
    pub host_ip: Option<IpAddr>,
    /// Protocol.
    pub protocol: Protocol,
    /// Mode.
    pub mode: PortMode,
}

/// A mount from `volumes:`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mount {
    /// Absolute path in the container.
    pub target: String,
    /// Read-only mount.
    pub read_only: bool,
    /// What is mounted.
    pub source: MountSource,
}

/// The source of a [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MountSource {
    /// A named volume (a key of [`Project::volumes`]) or, with `name: None`,
    /// an anonymous volume.
    Volume {
        /// Volume key.
        name: Option<String>,
        /// Do not copy image data into a new volume.
        nocopy: bool,
        /// Sub-directory of the volume.
        subpath: Option<String>,
    },
    /// A host path, as written (relative paths are relative to the domain
    /// directory: resolve with [`Mount::host_path`](super::Mount::host_path)).
    Bind {
        /// Host path as written.
        path: String,
        /// Create the host directory if missing.
        create_host_path: bool,
        /// Mount propagation (`rprivate`, `shared`, …).
        propagation: Option<String>,
        /// SELinux relabeling (`z` or `Z`).
        selinux: Option<String>,
    },
    /// A tmpfs.
    Tmpfs {
        /// Size limit in bytes.
        size: Option<u64>,
        /// File mode.
        mode: Option<u32>,
    },
    /// The file system of an image (`type: image`), read-only; the engine
    /// needs API 1.48 (Docker Engine 28).
    Image {
        /// Image reference as written (resolved like a service's image).
        reference: String,
        /// Sub-directory of the image to mount.
        subpath: Option<String>,
    },
}

/// Condition of a dependency.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// The dependency is started.
    #[default]
    ServiceStarted,
    /// The dependency is healthy.
    ServiceHealthy,
    /// The dependency ran to completion with exit code 0.
    ServiceCompletedSuccessfully,
}

impl Condition {
    /// The compose spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ServiceStarted => "service_started",
            Self::ServiceHealthy => "service_healthy",
            Self::ServiceCompletedSuccessfully => "service_completed_successfully",
        }
    }
}

/// One `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dependency {
    /// What to wait for.
    pub condition: Condition,
    /// Restart the dependent service when the dependency is updated.
    pub restart: bool,
    /// `false`: the dependency is optional (a missing one was dropped at
    /// load with a warning; one that fails to start need not block).
    pub required: bool,
}

/// Per-network settings of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceNetwork {
    /// Extra DNS aliases on that network.
    pub aliases: Vec<String>,
}

/// The test of a healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthTest {
    /// `["CMD", args...]`: exec form.
    Cmd(Vec<String>),
    /// `"cmd"` or `["CMD-SHELL", "cmd"]`: run by `/bin/sh -c`.
    CmdShell(String),
    /// `["NONE"]` or `disable: true`: no healthcheck.
    None,
}

impl HealthTest {
    /// The Docker API form (`["CMD", ...]`, `["CMD-SHELL", cmd]`, `["NONE"]`).
    pub fn to_docker(&self) -> Vec<String> {
        match self {
            Self::Cmd(args) => std::iter::once("CMD".to_owned())
                .chain(args.iter().cloned())
                .collect(),
            Self::CmdShell(cmd) => vec!["CMD-SHELL".to_owned(), cmd.clone()],
            Self::None => vec!["NONE".to_owned()],
        }
    }
}

/// A healthcheck override.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Healthcheck {
    /// The test; `None` keeps the image's test (only timings change).
    pub test: Option<HealthTest>,
    /// Time between checks.
    #[serde(with = "opt_duration_ns")]
    pub interval: Option<Duration>,
    /// Time a check may take.
    #[serde(with = "opt_duration_ns")]
    pub timeout: Option<Duration>,
    /// Consecutive failures before unhealthy.
    pub retries: Option<u32>,
    /// Grace period after start.
    #[serde(with = "opt_duration_ns")]
    pub start_period: Option<Duration>,
    /// Interval during the start period.
    #[serde(with = "opt_duration_ns")]
    pub start_interval: Option<Duration>,
}

impl Healthcheck {
    /// True when the healthcheck is disabled (`disable: true` / `["NONE"]`).
    pub fn is_disabled(&self) -> bool {
        self.test == Some(HealthTest::None)
    }
}

/// The container restart policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "kebab-case")]
pub enum Restart {
    /// Never restart (default).
    #[default]
    No,
    /// Always restart.
    Always,
    /// Restart on non-zero exit.
    OnFailure {
        /// Maximum retries (`on-failure:N`).
        max_retries: Option<u32>,
    },
    /// Restart unless stopped by the user.
    UnlessStopped,
}

impl Restart {
    /// The Docker policy name (`no`, `always`, `on-failure`, `unless-stopped`).
    pub fn docker_name(self) -> &'static str {
        match self {
            Self::No => "no",
            Self::Always => "always",
            Self::OnFailure { .. } => "on-failure",
            Self::UnlessStopped => "unless-stopped",
        }
    }
}

/// `deploy:` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deploy {
    /// Number of containers (default 1, at most [`MAX_REPLICAS`](super::MAX_REPLICAS)).
    pub replicas: u32,
    /// Limits and reservations.
    pub resources: Resources,
    /// `update_config.order`, if written (the orchestrator decides the
    /// default: start-first for the main service, stop-first otherwise).
    pub update_order: Option<UpdateOrder>,
    /// `restart_policy`, if written.
    pub restart_policy: Option<DeployRestartPolicy>,
}

impl Default for Deploy {
    fn default() -> Self {
        Self {
            replicas: 1,
            resources: Resources::default(),
            update_order: None,
            restart_policy: None,
        }
    }
}

/// Resource limits and reservations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Hard limits (`Memory`, `NanoCpus`, `PidsLimit`).
    pub limits: ResourceSpec,
    /// Reservations (`MemoryReservation`; CPU reservations have no Docker
    /// equivalent on a single host and are informational).
    pub reservations: ResourceSpec,
}

/// A set of resource amounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceSpec {
    /// CPUs × 10⁹.
    pub nano_cpus: Option<u64>,
    /// Memory in bytes.
    pub memory: Option<u64>,
    /// Process count.
    pub pids: Option<i64>,
}

/// Order of replacement on update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpdateOrder {
    /// Stop the old container, then start the new one.
    StopFirst,
    /// Start the new container, then stop the old one.
    StartFirst,
}

/// Condition of `deploy.restart_policy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCondition {
    /// `none`.
    None,
    /// `on-failure`.
    OnFailure,
    /// `any` (default).
    Any,
}

/// `deploy.restart_policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployRestartPolicy {
    /// When to restart.
    pub condition: RestartCondition,
    /// Delay between restarts (informational).
    #[serde(with = "opt_duration_ns")]
    pub delay: Option<Duration>,
    /// Retries.
    pub max_attempts: Option<u32>,
    /// Window (informational).
    #[serde(with = "opt_duration_ns")]
    pub window: Option<Duration>,
}

/// An `extra_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    /// Host name.
    pub host: String,
    /// Address (as written: `host-gateway` is allowed).
    pub ip: String,
}

/// `logging:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logging {
    /// Driver.
    pub driver: Option<String>,
    /// Driver options.
    pub options: BTreeMap<String, String>,
}

/// A service's use of a secret or config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Name of the top-level secret / config.
    pub source: String,
    /// Target path or name (default: `/run/secrets/<source>` for secrets,
    /// `/<source>` for configs).
    pub target: Option<String>,
    /// Owner.
    pub uid: Option<String>,
    /// Group.
    pub gid: Option<String>,
    /// File mode.
    pub mode: Option<u32>,
}

/// A top-level network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// `name:`: the engine name instead of `<project>_<key>` (reused only
    /// when this stack owns it, DESIGN §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver (default bridge).
    pub driver: Option<String>,
    /// No outside connectivity.
    pub internal: bool,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Declared `external: true` (the policy denies it).
    pub external: bool,
}

/// A top-level named volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// `name:`: the engine name instead of `<project>_<key>` (reused only
    /// when this stack owns it, DESIGN §6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Driver (default local).
    pub driver: Option<String>,
    /// Driver options (`type: none, o: bind, device: ./dir` is a bind mount
    /// in disguise, checked as one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub driver_opts: BTreeMap<String, String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Declared `external: true` (the policy denies it).
    pub external: bool,
}

impl Volume {
    /// The host directory of a local volume that binds one (`o: bind`).
    pub fn bind_device(&self) -> Option<&str> {
        let binds = self.driver_opts.get("o").is_some_and(|o| {
            o.split(',')
                .any(|opt| matches!(opt.trim(), "bind" | "rbind"))
        });
        binds
            .then(|| self.driver_opts.get("device").map(String::as_str))
            .flatten()
    }

    /// Whether its driver options only make a tmpfs (`type: tmpfs`).
    pub fn is_tmpfs(&self) -> bool {
        self.driver_opts.get("type").map(String::as_str) == Some("tmpfs")
    }
}

/// A top-level secret or config: where its content comes from. Serialized
/// externally tagged, so a `file:` source reads `{"file": "./x"}` as it did
/// before the other sources existed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileObject {
    /// `file:`: a file of the domain directory, bind-mounted read-only.
    File(String),
    /// `environment:`: the value of a variable of the project's env (the
    /// job's env over the domain's `.env`); `value` is `None` when it was
    /// not set at load (a warning; the deploy refuses it).
    Environment {
        /// The variable's name.
        variable: String,
        /// Its value at load.
        value: Option<SecretText>,
    },
    /// `content:`: inline text (interpolated).
    Content(SecretText),
}

impl FileObject {
    /// The host path as written, for a `file:` source.
    pub fn file(&self) -> Option<&str> {
        match self {
            Self::File(path) => Some(path),
            _ => None,
        }
    }

    /// The content HostKit writes itself (`environment:`, `content:`), if
    /// known; `None` for a `file:` source or an unset variable.
    pub fn inline_value(&self) -> Option<&SecretText> {
        match self {
            Self::File(_) => None,
            Self::Environment { value, .. } => value.as_ref(),
            Self::Content(text) => Some(text),
        }
    }
}

/// Text that must never be printed: a secret's or config's content. Its
/// `Debug` names only its length; it serializes as the plain string (a
/// recorded version must re-apply it exactly, like env values).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretText(String);

impl SecretText {
    /// Wrap `text`.
    pub fn new(text: impl Into<String>) -> Self {
        SecretText(text.into())
    }

    /// The text itself (write it to a file; never print it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<redacted {} bytes>", self.0.len())
    }
}

/// Serializes `Option<Duration>` as nanoseconds.
mod opt_duration_ns {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        value
            .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_text_never_prints_its_value() {
        let object = FileObject::Environment {
            variable: "TOKEN".into(),
            value: Some(SecretText::new("hunter2")),
        };
        let debug = format!(
            "{object:?} {:?}",
            FileObject::Content(SecretText::new("abc"))
        );
        assert!(
            !debug.contains("hunter2") && !debug.contains("abc"),
            "{debug}"
        );
        assert!(debug.contains("<redacted 7 bytes>"), "{debug}");
    }

    #[test]
    fn a_file_source_serializes_as_it_did_before_the_other_sources() {
        let json = serde_json::to_string(&FileObject::File("./key.pem".into())).expect("json");
        assert_eq!(json, r#"{"file":"./key.pem"}"#);
        let back: FileObject = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back.file(), Some("./key.pem"));
        let content = FileObject::Content(SecretText::new("x"));
        let json = serde_json::to_string(&content).expect("json");
        assert_eq!(json, r#"{"content":"x"}"#);
        assert_eq!(
            serde_json::from_str::<FileObject>(&json).expect("decodes"),
            content
        );
    }
}
