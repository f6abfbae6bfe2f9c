//! The compose policy: what a stack may not do on a shared host.
//!
//! [`Policy`] is read from the worker's TOML (every rule on by default, each
//! switchable, plus per-stack caps); [`Policy::check`] collects every
//! [`Violation`] of a loaded project, each naming its [`Rule`], service and
//! key path, and fails with [`PolicyDenied`] (`policy.denied`).

mod binds;
mod on_disk;
mod paths;
mod rules;

pub use binds::{BindSource, bind_sources, is_domain_file, nested_in};
pub use paths::{HostPath, check as check_host_path, real_path};

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::path::Path;

use crate::compose::Project;
use crate::domain_dir::DomainDir;

/// Error code of a denied stack.
pub const CODE_DENIED: hostkit_proto::ErrorCode = hostkit_proto::ErrorCode::PolicyDenied;

/// The rules, with stable ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// `privileged: true` (a service's or a lifecycle hook's).
    Privileged,
    /// `network_mode: host`.
    HostNetwork,
    /// `network_mode` other than `none` or `service:<name>` (`bridge`,
    /// `container:<id>`, …): it leaves the project's networks.
    NetworkMode,
    /// `pid: host` or `container:<id>`.
    HostPid,
    /// `ipc: host` or `container:<id>`.
    HostIpc,
    /// A `cap_add` capability outside the allow-list.
    CapAdd,
    /// `devices`.
    Devices,
    /// A `security_opt` other than `no-new-privileges`: the weakening ones
    /// (`seccomp=unconfined`, `apparmor=unconfined`, `label=disable`,
    /// `systempaths=unconfined`) and any profile or label HostKit cannot vet.
    SecurityOpt,
    /// A `sysctls` entry outside the `net.*` namespace.
    Sysctls,
    /// `ulimits` with `nofile` above `max_nofile` or `memlock: -1`.
    Ulimits,
    /// A bind mount whose source is outside the domain directory.
    BindOutsideDomain,
    /// A mount of the Docker (or containerd, podman) socket or a directory
    /// holding it.
    DockerSocket,
    /// An `env_file`, secret or config file outside the domain directory.
    FileOutsideDomain,
    /// A port published on a non-loopback host address.
    PublicPort,
    /// An `external: true` network.
    ExternalNetwork,
    /// An `external: true` volume.
    ExternalVolume,
    /// A network driver other than `bridge`.
    NetworkDriver,
    /// Memory over the stack's cap, or a service without a memory limit when
    /// a cap is set.
    MemoryLimit,
    /// CPUs over the stack's cap, or a service without a CPU limit when a
    /// cap is set.
    CpuLimit,
    /// Processes (pids limits) over the stack's cap, or a service without a
    /// pids limit when a cap is set.
    PidsLimit,
    /// More replicas than allowed.
    Replicas,
    /// A symbolic link on the way to a bind mount's source or a file HostKit
    /// reads (links in a domain directory are never followed). Always enforced.
    Symlink,
    /// A bind mount of the domain directory itself or of HostKit's own files
    /// in it (`config.json`, compose and version files, `.env`). Always enforced.
    BindDomainFiles,
    /// A bind mount whose source lies inside another bind source that a
    /// container of the stack mounts writable (it could plant a link there).
    /// Always enforced.
    BindNested,
    /// A volume, network or container name owned by another project. Always
    /// enforced.
    ResourceOwner,
    /// A logging driver outside the allow-list.
    LoggingDriver,
    /// Volume driver options other than a bind of a directory or a tmpfs.
    VolumeOptions,
    /// A job's image `path:` outside the worker's images directory.
    ImagePath,
    /// An image reference that resolves to an image neither this job loaded
    /// nor a version of this domain recorded. Always enforced.
    ForeignImage,
}

impl Rule {
    /// Every rule, in the README's order.
    pub const ALL: [Rule; 29] = [
        Rule::Privileged,
        Rule::HostNetwork,
        Rule::NetworkMode,
        Rule::HostPid,
        Rule::HostIpc,
        Rule::CapAdd,
        Rule::Devices,
        Rule::SecurityOpt,
        Rule::Sysctls,
        Rule::Ulimits,
        Rule::BindOutsideDomain,
        Rule::DockerSocket,
        Rule::FileOutsideDomain,
        Rule::Symlink,
        Rule::BindDomainFiles,
        Rule::BindNested,
        Rule::ResourceOwner,
        Rule::PublicPort,
        Rule::ExternalNetwork,
        Rule::ExternalVolume,
        Rule::VolumeOptions,
        Rule::NetworkDriver,
        Rule::LoggingDriver,
        Rule::ImagePath,
        Rule::ForeignImage,
        Rule::MemoryLimit,
        Rule::CpuLimit,
        Rule::PidsLimit,
        Rule::Replicas,
    ];

    /// What the rule denies, for the README.
    pub fn denies(self) -> &'static str {
        match self {
            Self::Privileged => {
                "`privileged: true` on a service or on one of its lifecycle hooks (`pre_start`, `post_start`, `pre_stop`)"
            }
            Self::HostNetwork => "`network_mode: host`",
            Self::NetworkMode => {
                "`network_mode` other than `none` or `service:<name>` (e.g. `bridge`, `container:<id>`)"
            }
            Self::HostPid => "`pid: host` or `container:<id>`",
            Self::HostIpc => "`ipc: host` or `container:<id>`",
            Self::CapAdd => "a `cap_add` capability outside `allowed_cap_add`",
            Self::Devices => "`devices`",
            Self::SecurityOpt => {
                "a `security_opt` other than `no-new-privileges[:true]`: `seccomp`/`apparmor`/`systempaths` `unconfined`, `label=disable`, a custom seccomp or AppArmor profile, SELinux labels"
            }
            Self::Sysctls => "a `sysctls` entry outside the `net.*` namespace",
            Self::Ulimits => {
                "`ulimits` with `nofile` above `max_nofile` (default 1048576) or `memlock: -1` (unlimited)"
            }
            Self::BindOutsideDomain => {
                "a bind mount whose source is outside `<domains_root>/<domain>/`"
            }
            Self::DockerSocket => {
                "a mount of the Docker, containerd or podman socket (or a directory holding it)"
            }
            Self::FileOutsideDomain => {
                "an `env_file`, secret or config file outside the domain directory"
            }
            Self::Symlink => {
                "a symbolic link on the way to a bind source, `env_file`, secret, config or `.env` (checked at deploy and before every container start)"
            }
            Self::BindDomainFiles => {
                "a bind mount of the domain directory itself or of HostKit's files in it (`config.json`, compose and version files, `.env`, `versions/`, `.hostkit/` where it writes `environment:` and `content:` secrets and configs)"
            }
            Self::BindNested => {
                "a bind source inside another source that a container of the stack (or a running one) mounts writable"
            }
            Self::ResourceOwner => {
                "reusing a volume, network or container name that another project owns"
            }
            Self::PublicPort => "a port published on a non-loopback address",
            Self::ExternalNetwork => "`external: true` networks",
            Self::ExternalVolume => "`external: true` volumes",
            Self::NetworkDriver => "network drivers other than `bridge`",
            Self::VolumeOptions => {
                "volume `driver_opts` other than a bind of a directory (checked as a bind mount) or a tmpfs — e.g. NFS or CIFS mounts, which the engine makes from the host's network"
            }
            Self::LoggingDriver => {
                "a logging driver outside `allowed_logging_drivers` (default `json-file`, `local`, `none`; json-file and local get `max-size: 10m`, `max-file: 3` unless set)"
            }
            Self::ImagePath => {
                "a job's image `path:` outside `security.image_dir` (or through a link)"
            }
            Self::ForeignImage => {
                "an image reference that resolves to an image neither the job loaded nor a version of the domain recorded"
            }
            Self::MemoryLimit => {
                "memory limits × replicas over `max_memory`, or a service without a limit when it is set"
            }
            Self::CpuLimit => {
                "CPU limits × replicas over `max_cpus`, or a service without a limit when it is set"
            }
            Self::PidsLimit => {
                "pids limits × replicas over `max_pids`, or a service without a limit when it is set"
            }
            Self::Replicas => {
                "more replicas of a service than `max_replicas` (deploy and scale jobs)"
            }
        }
    }

    /// The `[policy]` key that switches it off, or `None` for the rules of
    /// isolation between domains, which are always enforced.
    pub fn switch(self) -> Option<&'static str> {
        match self {
            Self::Privileged => Some("privileged"),
            Self::HostNetwork => Some("host_network"),
            Self::NetworkMode => Some("network_mode"),
            Self::HostPid => Some("host_pid"),
            Self::HostIpc => Some("host_ipc"),
            Self::CapAdd => Some("cap_add"),
            Self::Devices => Some("devices"),
            Self::SecurityOpt => Some("security_opt"),
            Self::Sysctls => Some("sysctls"),
            Self::Ulimits => Some("ulimits"),
            Self::BindOutsideDomain => Some("bind_outside_domain"),
            Self::DockerSocket => Some("docker_socket"),
            Self::FileOutsideDomain => Some("file_outside_domain"),
            Self::PublicPort => Some("public_port"),
            Self::ExternalNetwork => Some("external_network"),
            Self::ExternalVolume => Some("external_volume"),
            Self::NetworkDriver => Some("network_driver"),
            Self::VolumeOptions => Some("volume_options"),
            Self::LoggingDriver => Some("logging_driver"),
            Self::MemoryLimit => Some("max_memory"),
            Self::CpuLimit => Some("max_cpus"),
            Self::PidsLimit => Some("max_pids"),
            Self::Replicas => Some("max_replicas"),
            Self::Symlink
            | Self::BindDomainFiles
            | Self::BindNested
            | Self::ResourceOwner
            | Self::ImagePath
            | Self::ForeignImage => None,
        }
    }

    /// The README's table of rules.
    pub fn markdown_table() -> String {
        let mut out = String::from(
            "| Rule | Denies | Switched off by |
| --- | --- | --- |
",
        );
        for rule in Self::ALL {
            let switch = match rule.switch() {
                Some(key @ ("max_memory" | "max_cpus" | "max_pids" | "max_replicas")) => {
                    format!("enforced when `{key}` is set")
                }
                Some(key) => format!("`{key} = false`"),
                None => "always enforced".to_owned(),
            };
            out.push_str(&format!(
                "| `{}` | {} | {} |\n",
                rule.id(),
                rule.denies(),
                switch
            ));
        }
        out
    }

    /// The stable id (`privileged`, `host-network`, …).
    pub fn id(self) -> &'static str {
        match self {
            Self::Privileged => "privileged",
            Self::HostNetwork => "host-network",
            Self::NetworkMode => "network-mode",
            Self::HostPid => "host-pid",
            Self::HostIpc => "host-ipc",
            Self::CapAdd => "cap-add",
            Self::Devices => "devices",
            Self::SecurityOpt => "security-opt",
            Self::Sysctls => "sysctls",
            Self::Ulimits => "ulimits",
            Self::BindOutsideDomain => "bind-outside-domain",
            Self::DockerSocket => "docker-socket",
            Self::FileOutsideDomain => "file-outside-domain",
            Self::PublicPort => "public-port",
            Self::ExternalNetwork => "external-network",
            Self::ExternalVolume => "external-volume",
            Self::NetworkDriver => "network-driver",
            Self::MemoryLimit => "memory-limit",
            Self::CpuLimit => "cpu-limit",
            Self::PidsLimit => "pids-limit",
            Self::Replicas => "replicas",
            Self::Symlink => "symlink",
            Self::BindDomainFiles => "bind-domain-files",
            Self::BindNested => "bind-nested",
            Self::ResourceOwner => "resource-owner",
            Self::LoggingDriver => "logging-driver",
            Self::VolumeOptions => "volume-options",
            Self::ImagePath => "image-path",
            Self::ForeignImage => "foreign-image",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// Logging drivers a stack may use by default: those that write on the
/// host (others, like `syslog`, `gelf` or `awslogs`, run in the host's
/// network namespace).
pub const DEFAULT_ALLOWED_LOGGING_DRIVERS: &[&str] = &["json-file", "local", "none"];

/// Capabilities `cap_add` may name by default: Docker's default set (adding
/// them is a no-op) and a few harmless ones.
pub const DEFAULT_ALLOWED_CAPS: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "IPC_LOCK",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
    "SYS_NICE",
];

/// The default of [`Policy::max_nofile`]: the kernel's default
/// `fs.nr_open`, the most a process can be granted anyway.
pub const DEFAULT_MAX_NOFILE: u64 = 1 << 20;

/// The policy, as the worker's TOML writes it (all fields optional):
///
/// ```toml
/// [policy]
/// privileged = true          # each rule: true = enforced (the default)
/// public_port = false        # switch one off
/// allowed_cap_add = ["NET_BIND_SERVICE", "SYS_NICE"]
/// max_memory = "4g"          # per stack: Σ memory limit × replicas
/// max_cpus = 2.0             # per stack: Σ cpus × replicas
/// max_pids = 512             # per stack: Σ pids limit × replicas
/// max_replicas = 10          # per service
/// max_nofile = 65536         # per service: ulimits.nofile (default 1048576)
/// ```
///
/// Rule switches are named like the rule ids, with `_` for `-`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Enforce [`Rule::Privileged`].
    pub privileged: bool,
    /// Enforce [`Rule::HostNetwork`].
    pub host_network: bool,
    /// Enforce [`Rule::NetworkMode`].
    pub network_mode: bool,
    /// Enforce [`Rule::HostPid`].
    pub host_pid: bool,
    /// Enforce [`Rule::HostIpc`].
    pub host_ipc: bool,
    /// Enforce [`Rule::CapAdd`].
    pub cap_add: bool,
    /// Enforce [`Rule::Devices`].
    pub devices: bool,
    /// Enforce [`Rule::BindOutsideDomain`].
    pub bind_outside_domain: bool,
    /// Enforce [`Rule::DockerSocket`].
    pub docker_socket: bool,
    /// Enforce [`Rule::FileOutsideDomain`].
    pub file_outside_domain: bool,
    /// Enforce [`Rule::PublicPort`].
    pub public_port: bool,
    /// Enforce [`Rule::ExternalNetwork`].
    pub external_network: bool,
    /// Enforce [`Rule::ExternalVolume`].
    pub external_volume: bool,
    /// Enforce [`Rule::NetworkDriver`].
    pub network_driver: bool,
    /// Enforce [`Rule::LoggingDriver`].
    pub logging_driver: bool,
    /// Enforce [`Rule::VolumeOptions`].
    pub volume_options: bool,
    /// Enforce [`Rule::SecurityOpt`].
    pub security_opt: bool,
    /// Enforce [`Rule::Sysctls`].
    pub sysctls: bool,
    /// Enforce [`Rule::Ulimits`].
    pub ulimits: bool,
    /// Highest `ulimits.nofile` (soft and hard) a service may set while
    /// [`Rule::Ulimits`] is enforced.
    pub max_nofile: u64,
    /// Capabilities `cap_add` may name (upper case, with or without `CAP_`).
    pub allowed_cap_add: Vec<String>,
    /// Logging drivers a service may use.
    pub allowed_logging_drivers: Vec<String>,
    /// Memory cap of a stack in bytes (TOML: bytes or `"4g"`); `None`: no cap.
    #[serde(deserialize_with = "deserialize_size")]
    pub max_memory: Option<u64>,
    /// CPU cap of a stack; `None`: no cap.
    pub max_cpus: Option<f64>,
    /// Process cap of a stack (Σ pids limit × replicas); `None`: no cap.
    pub max_pids: Option<u64>,
    /// Replica cap of a service; `None`: only the loader's limit of 100.
    pub max_replicas: Option<u32>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            privileged: true,
            host_network: true,
            network_mode: true,
            host_pid: true,
            host_ipc: true,
            cap_add: true,
            devices: true,
            bind_outside_domain: true,
            docker_socket: true,
            file_outside_domain: true,
            public_port: true,
            external_network: true,
            external_volume: true,
            network_driver: true,
            logging_driver: true,
            volume_options: true,
            security_opt: true,
            sysctls: true,
            ulimits: true,
            max_nofile: DEFAULT_MAX_NOFILE,
            allowed_cap_add: DEFAULT_ALLOWED_CAPS
                .iter()
                .map(|c| (*c).to_owned())
                .collect(),
            allowed_logging_drivers: DEFAULT_ALLOWED_LOGGING_DRIVERS
                .iter()
                .map(|d| (*d).to_owned())
                .collect(),
            max_memory: None,
            max_cpus: None,
            max_pids: None,
            max_replicas: None,
        }
    }
}

impl Policy {
    /// Whether `rule` is enforced (the caps are enforced when set).
    pub fn enforces(&self, rule: Rule) -> bool {
        match rule {
            Rule::Privileged => self.privileged,
            Rule::HostNetwork => self.host_network,
            Rule::NetworkMode => self.network_mode,
            Rule::HostPid => self.host_pid,
            Rule::HostIpc => self.host_ipc,
            Rule::CapAdd => self.cap_add,
            Rule::Devices => self.devices,
            Rule::BindOutsideDomain => self.bind_outside_domain,
            Rule::DockerSocket => self.docker_socket,
            Rule::FileOutsideDomain => self.file_outside_domain,
            Rule::PublicPort => self.public_port,
            Rule::ExternalNetwork => self.external_network,
            Rule::ExternalVolume => self.external_volume,
            Rule::NetworkDriver => self.network_driver,
            Rule::MemoryLimit => self.max_memory.is_some(),
            Rule::CpuLimit => self.max_cpus.is_some(),
            Rule::PidsLimit => self.max_pids.is_some(),
            Rule::Replicas => self.max_replicas.is_some(),
            Rule::LoggingDriver => self.logging_driver,
            Rule::VolumeOptions => self.volume_options,
            Rule::SecurityOpt => self.security_opt,
            Rule::Sysctls => self.sysctls,
            Rule::Ulimits => self.ulimits,
            Rule::ImagePath => true,
            // Isolation between domains is not a setting.
            Rule::Symlink
            | Rule::BindDomainFiles
            | Rule::BindNested
            | Rule::ResourceOwner
            | Rule::ForeignImage => true,
        }
    }

    /// Checks `project` for a domain whose directory is `domain_dir`
    /// (relative host paths are resolved against it, a relative
    /// `domain_dir` against the current directory); every violation is
    /// reported, not only the first. Lexical: nothing on disk is read.
    pub fn check(&self, project: &Project, domain_dir: &Path) -> Result<(), PolicyDenied> {
        PolicyDenied::from_violations(self.violations(project, domain_dir))
    }

    /// Every violation of `project`, in a stable order.
    pub fn violations(&self, project: &Project, domain_dir: &Path) -> Vec<Violation> {
        let domain_dir = DomainDir::new(domain_dir);
        let domain_dir = domain_dir.root();
        let mut found = rules::collect(self, project, domain_dir);
        found.retain(|v| self.enforces(v.rule));
        found
    }

    /// [`Policy::check`], then the domain directory itself: no symbolic link
    /// on the way to any bind source, `env_file`, secret or config file (the
    /// worker runs this; the CLI, which has no domain directory, does not).
    pub fn check_on_disk(&self, project: &Project, dir: &DomainDir) -> Result<(), PolicyDenied> {
        let mut violations = self.violations(project, dir.root());
        if violations.is_empty() {
            violations = on_disk::collect(project, dir);
        }
        PolicyDenied::from_violations(violations)
    }
}

/// A size in bytes, written as a number or as compose does (`"4g"`).
pub fn deserialize_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Bytes(u64),
        Text(String),
    }
    match Option::<Size>::deserialize(d)? {
        None => Ok(None),
        Some(Size::Bytes(n)) => Ok(Some(n)),
        Some(Size::Text(s)) => crate::compose::size::parse_size(&s)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// The rule.
    pub rule: Rule,
    /// The service, when the violation is in one.
    pub service: Option<String>,
    /// The key path (`services.web.privileged`).
    pub path: String,
    /// What is wrong, for humans.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}: {}", self.rule, self.path, self.message)
    }
}

/// A stack the policy denies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("denied by policy: {}", .violations.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct PolicyDenied {
    /// Every violation found.
    pub violations: Vec<Violation>,
}

impl PolicyDenied {
    /// `Ok` without violations, the denial otherwise.
    pub fn from_violations(violations: Vec<Violation>) -> Result<(), PolicyDenied> {
        if violations.is_empty() {
            Ok(())
        } else {
            Err(PolicyDenied { violations })
        }
    }

    /// A denial of one rule.
    pub fn one(
        rule: Rule,
        service: Option<&str>,
        path: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        PolicyDenied {
            violations: vec![Violation {
                rule,
                service: service.map(str::to_owned),
                path: path.into(),
                message: message.into(),
            }],
        }
    }

    /// The stable error code (`policy.denied`).
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        CODE_DENIED
    }
}

#[cfg(test)]
mod tests;
