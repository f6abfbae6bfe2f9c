//! What the engine applies: a stack reduced to containers, networks and
//! volumes, with every compose detail already resolved. `convert` builds it
//! from the compose model; the engine never looks at YAML.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use hostkit_proto::Domain;

pub use super::files::WrittenFile;
use super::health::Readiness;
use crate::cgroup::Budget;
pub use crate::ports::PortBlock;

/// A whole stack, ready to apply.
#[derive(Debug, Clone)]
pub struct StackSpec {
    /// The domain the stack serves.
    pub domain: Domain,
    /// Compose project name (the domain token).
    pub project: String,
    /// Networks to create (full engine names), the domain's own network first.
    pub networks: Vec<NetworkSpec>,
    /// Named volumes to create (full engine names).
    pub volumes: Vec<VolumeSpec>,
    /// Services, in any order (dependencies are explicit).
    pub services: Vec<ServiceSpec>,
    /// The service nginx routes the domain to, if any.
    pub main_service: Option<String>,
    /// Names nginx answers with a 301 to the domain (the domain's redirect
    /// domains; not part of a version: they stay across deploys).
    pub redirects: Vec<Domain>,
    /// The domain's block of host ports.
    pub ports: PortBlock,
    /// How long every service may take to become ready.
    pub health_timeout: Duration,
    /// Labels put on every container (version, job).
    pub labels: HashMap<String, String>,
    /// The domain directory: bind sources beneath it are walked without
    /// following links before every container start.
    pub domain_dir: PathBuf,
    /// The stack's budget, enforced by its parent cgroup
    /// ([`crate::cgroup::parent_of`], every container's `CgroupParent`);
    /// `None`: no parent.
    pub budget: Option<Budget>,
}

impl StackSpec {
    /// The service named `name`.
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service named `name`, mutably (for scale).
    pub fn service_mut(&mut self, name: &str) -> Option<&mut ServiceSpec> {
        self.services.iter_mut().find(|s| s.name == name)
    }
}

/// A network of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    /// Key in the compose file (`default` for the domain's own network).
    pub key: String,
    /// Engine name (`<project>_<key>`).
    pub name: String,
    /// Driver (`bridge` when unset).
    pub driver: Option<String>,
    /// No outside connectivity.
    pub internal: bool,
    /// Labels from the compose file.
    pub labels: HashMap<String, String>,
}

/// A named volume of the project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeSpec {
    /// Key in the compose file.
    pub key: String,
    /// Engine name (`<project>_<key>`).
    pub name: String,
    /// Driver (`local` when unset).
    pub driver: Option<String>,
    /// Driver options.
    pub driver_opts: HashMap<String, String>,
    /// Labels from the compose file.
    pub labels: HashMap<String, String>,
}

/// One service: how to create each of its replicas.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// Service name (exact).
    pub name: String,
    /// Image reference as written in the compose file.
    pub image_reference: String,
    /// Resolved image id the containers are created from.
    pub image_id: String,
    /// The other images it runs (`pre_start` hooks, `type: image` mounts):
    /// reference as written → resolved id.
    pub other_images: BTreeMap<String, String>,
    /// Desired replica count.
    pub replicas: u32,
    /// Services this one waits for, with the condition.
    pub depends_on: Vec<Dependency>,
    /// Replace by starting the new replicas before stopping the old ones.
    pub start_first: bool,
    /// Container ports to publish on 127.0.0.1, each replica on its own host port.
    pub ports: Vec<PublishedPort>,
    /// Networks to join (engine names) with this service's aliases on each.
    pub networks: Vec<Endpoint>,
    /// Fixed container name suffix (`container_name:`); forces one replica and stop-first.
    pub container_name: Option<String>,
    /// Hash of everything that defines the containers (not the replica count).
    pub config_hash: String,
    /// What the health gate requires of this service.
    pub ready_when: Readiness,
    /// Grace period for stop.
    pub stop_timeout: Option<Duration>,
    /// `mac_address:` of its container on its first network.
    pub mac_address: Option<String>,
    /// Host paths its containers bind-mount (bind mounts, secret and config
    /// files, the files HostKit writes), resolved.
    pub bind_sources: Vec<PathBuf>,
    /// Files HostKit writes for it under the domain's `.hostkit/` (its
    /// `environment:` and `content:` secrets and configs), bind-mounted
    /// read-only by the template.
    pub files: Vec<WrittenFile>,
    /// Its lifecycle hooks.
    pub hooks: Hooks,
    /// Container template: image, env, command, healthcheck, resources, mounts,
    /// labels. Ports, networks and per-replica labels are added at create.
    pub template: ContainerCreateBody,
}

/// A `depends_on` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The service depended on.
    pub service: String,
    /// The condition it must reach.
    pub condition: Readiness,
}

/// A container port published to a host port of the domain's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// Port inside the container.
    pub target: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
}

/// Membership of one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Engine name of the network.
    pub network: String,
    /// Extra DNS names on that network (the service name is always one).
    pub aliases: Vec<String>,
}

/// The lifecycle hooks of a service, ready to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hooks {
    /// Containers run to completion before the service's first replica
    /// starts (once per creation of the service's replicas).
    pub pre_start: Vec<HookSpec>,
    /// Execs in each replica right after it started.
    pub post_start: Vec<HookSpec>,
    /// Execs in each replica before HostKit stops it.
    pub pre_stop: Vec<HookSpec>,
}

/// One hook. For an exec (`post_start`, `pre_stop`) unset fields are the
/// container's own; for a `pre_start` container they are already filled
/// with the service's (user, working directory, environment).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookSpec {
    /// The command; empty runs the image's own (a `pre_start` with `image:`).
    pub command: Vec<String>,
    /// `pre_start`: the image id of the hook's container.
    pub image_id: Option<String>,
    /// User to run as.
    pub user: Option<String>,
    /// Extended privileges (only when the policy allowed them).
    pub privileged: bool,
    /// Working directory.
    pub working_dir: Option<String>,
    /// `KEY=value` entries: the hook's own for an exec (the container's
    /// environment is inherited), the service's and the hook's for a
    /// `pre_start` container.
    pub env: Vec<String>,
}
