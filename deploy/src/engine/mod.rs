//! The orchestrator: converges a project's containers, networks and volumes
//! on a [`StackSpec`] through the Docker Engine API, health gated, with the
//! main service replaced start-first behind nginx.
//!
//! - `apply`: deploy, rollback, scale and start are all "apply this spec".
//! - `ops`: restart, stop, remove.
//! - `inventory`: what runs now, found by labels.
//! - `budget`: the stack's parent cgroup, limited before any container starts.
//! - `oneoff`: a command run once in a new container of a service's spec.
//! - `volumes`: named volumes as tar streams (backups, restores).

pub mod apply;
pub mod binds;
mod budget;
pub mod compat;
pub mod container;
pub mod files;
pub mod health;
pub mod hooks;
pub mod inventory;
pub mod labels;
pub mod observe;
pub mod oneoff;
pub mod ops;
pub mod resources;
pub mod spec;
pub mod volumes;

use std::time::Duration;

use bollard::Docker;

use crate::cgroup::CgroupTree;
use crate::proxy::Proxy;

pub use apply::{Applied, Change, ServiceOutcome};
pub use spec::{
    Dependency, Endpoint, HookSpec, Hooks, NetworkSpec, PortBlock, PublishedPort, ServiceSpec,
    StackSpec, VolumeSpec, WrittenFile,
};

/// Tunables of the orchestrator.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// How long an old replica keeps serving in-flight requests after nginx
    /// was switched away from it, before it is stopped.
    pub drain: Duration,
    /// Where stacks' parent cgroups are made (stack budgets); `None` when
    /// the engine's cgroup driver does not allow it.
    pub cgroups: Option<CgroupTree>,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            drain: Duration::from_secs(2),
            cgroups: None,
        }
    }
}

/// Applies stacks to one Docker Engine, fronting main services with nginx.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    proxy: Option<Proxy>,
    options: EngineOptions,
}

impl Engine {
    /// An engine on `docker`; `proxy` is `None` when nginx is not managed here.
    pub fn new(docker: Docker, proxy: Option<Proxy>, options: EngineOptions) -> Self {
        Engine {
            docker,
            proxy,
            options,
        }
    }

    /// The engine client.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// nginx, when this host manages it.
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }
}
