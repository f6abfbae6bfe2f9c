//! The front door of the crate: from compose text to a checked project
//! (no engine needed: the CLI runs this before it uploads anything), and
//! from a checked project and the engine's images to a [`StackSpec`].

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use hostkit_proto::Domain;

use crate::cgroup::Budget;
use crate::compose::{self, Env, MainService, Project, Warning};
use crate::convert::{self, StackInput};
use crate::domain_dir::DomainDir;
use crate::engine::StackSpec;
use crate::error::DeployError;
use crate::images::{self, ImageScope, PullPolicy};
use crate::policy::Policy;
use crate::ports::PortBlock;
use crate::progress::ProgressSink;

/// A compose file that loaded, passed the policy and has a main service
/// decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Checked {
    /// The normalized project (env files applied).
    pub project: Project,
    /// What the user should be told.
    pub warnings: Vec<Warning>,
    /// The service nginx fronts, if any.
    pub main: Option<MainService>,
    /// Why that service and port (for the user: "main service `web` (…)").
    pub main_reason: Option<String>,
}

impl Checked {
    /// Every image reference the project needs (services, `pre_start`
    /// hooks, `type: image` mounts), once each, sorted.
    pub fn image_references(&self) -> Vec<String> {
        self.project.image_references()
    }
}

/// Load `compose` with `env` (every secret and config a service uses must
/// then have its content), check the policy (also on disk: no link on
/// the way to anything the stack mounts or HostKit reads), apply env files
/// from `domain_dir` and decide the main service. Reads only env files, and
/// only after the policy passed. Blocking: run it off the async executor.
pub fn check(
    compose: &str,
    env: &Env,
    domain_dir: &Path,
    main_service: Option<&str>,
    policy: &Policy,
) -> Result<Checked, DeployError> {
    let compose::Loaded {
        mut project,
        warnings,
    } = compose::load(compose, env)?;
    project.require_file_values()?;
    let dir = DomainDir::new(domain_dir);
    policy.check_on_disk(&project, &dir)?;
    project.apply_env_files(&dir)?;
    let choice = project.main_choice(main_service)?;
    if let Some(choice) = &choice {
        project.publish_main_port(&choice.main);
    }
    Ok(Checked {
        project,
        warnings,
        main_reason: choice.as_ref().map(ToString::to_string),
        main: choice.map(|c| c.main),
    })
}

/// Where and how a checked project is to run.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// The domain directory (bind mounts, secrets, env files).
    pub domain_dir: &'a Path,
    /// The domain's host ports.
    pub ports: PortBlock,
    /// Deadline of the health gate.
    pub health_timeout: Duration,
    /// Labels for every container (version, job).
    pub labels: HashMap<String, String>,
    /// The stack's budget, when a parent cgroup enforces it.
    pub budget: Option<Budget>,
}

/// Make sure every image is in the engine and in `scope` (pulling when
/// allowed; failing with `image.missing` or `policy.denied` before any
/// container is touched) and build the spec.
pub async fn resolve(
    docker: &Docker,
    checked: &Checked,
    placement: &Placement<'_>,
    pull: PullPolicy,
    scope: &ImageScope,
    sink: &dyn ProgressSink,
) -> Result<StackSpec, DeployError> {
    let image_ids =
        images::ensure_present(docker, &checked.image_references(), pull, scope, sink).await?;
    let input = StackInput {
        domain: placement.domain,
        project: &checked.project,
        image_ids: &image_ids,
        main: checked.main.as_ref(),
        ports: placement.ports,
        health_timeout: placement.health_timeout,
        domain_dir: placement.domain_dir,
        labels: placement.labels.clone(),
        budget: placement.budget,
    };
    Ok(convert::stack_spec(&input)?)
}
