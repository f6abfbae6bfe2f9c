//! Shared by the handlers: the domain directory, and the engine's spec of a
//! recorded version (its exact normalized compose and image ids).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use hostkit_deploy::cgroup::Budget;
use hostkit_deploy::compose::{MainService, Project};
use hostkit_deploy::convert::{self, StackInput};
use hostkit_deploy::domain_dir::DomainDir;
use hostkit_deploy::engine::StackSpec;
use hostkit_deploy::engine::labels;
use hostkit_deploy::policy::Policy;
use hostkit_proto::{Domain, ErrorCode, JobId};

use super::{Failure, blocking};
use crate::runtime::Worker;
use crate::store::{DomainRecord, VersionRecord};

/// `<domains_root>/<domain>`: bind mounts, env files, the on-disk view.
pub fn domain_dir(worker: &Worker, domain: &Domain) -> PathBuf {
    worker.settings.domains_root.join(domain.as_str())
}

/// How `domain`'s budget is enforced: the policy its stacks are checked
/// against, and the budget its parent cgroup gets. Under a parent cgroup
/// the policy is the node's; without one (the systemd driver) the budget
/// lowers the policy's per-stack caps instead.
pub fn limits_for(worker: &Worker, domain: &Domain) -> (Policy, Option<Budget>) {
    let budget = worker.settings.stack_limits.budget_for(domain);
    worker.enforcement.limits(&worker.settings.policy, budget)
}

/// Labels every container of a version carries.
pub fn version_labels(version: u32, job: &JobId) -> HashMap<String, String> {
    HashMap::from([
        (labels::VERSION.to_string(), version.to_string()),
        (labels::JOB.to_string(), job.to_string()),
    ])
}

/// The project and main service recorded with a version, with the replica
/// counts the version has now (a scale changes them after the fact).
pub fn recorded_project(
    worker: &Worker,
    record: &VersionRecord,
) -> Result<(Project, Option<MainService>), Failure> {
    let unreadable = |e: serde_json::Error| {
        Failure::new(
            ErrorCode::Internal,
            format!("version {} is unreadable: {e}", record.version),
        )
    };
    let mut project = record
        .project(worker.settings.seal_key.as_ref())
        .map_err(unreadable)?;
    let main = record.main_service().map_err(unreadable)?;
    for recorded in &record.services {
        if let Some(service) = project.services.get_mut(&recorded.service) {
            service.deploy.replicas = recorded.replicas;
        }
    }
    Ok((project, main))
}

/// The spec that re-applies `record` exactly (its normalized compose and
/// its image ids), optionally with `project` changed (scale).
pub fn spec_for_version(
    worker: &Worker,
    domain: &DomainRecord,
    record: &VersionRecord,
    project: Option<&Project>,
    job: &JobId,
    health_timeout: Option<Duration>,
) -> Result<StackSpec, Failure> {
    let (recorded, main) = recorded_project(worker, record)?;
    let project = project.unwrap_or(&recorded);
    let mut image_ids = BTreeMap::new();
    for (service, definition) in &project.services {
        let Some(id) = record.images.get(service) else {
            return Err(Failure::new(
                ErrorCode::Internal,
                format!(
                    "version {} has no image id for service {service}",
                    record.version
                ),
            ));
        };
        image_ids.insert(definition.image.clone(), id.clone());
    }
    image_ids.extend(record.other_images.clone());
    let dir = domain_dir(worker, &domain.domain);
    let input = StackInput {
        domain: &domain.domain,
        project,
        image_ids: &image_ids,
        main: main.as_ref(),
        ports: domain.ports,
        health_timeout: health_timeout.unwrap_or(worker.settings.health_timeout),
        domain_dir: &dir,
        labels: version_labels(record.version, job),
        budget: limits_for(worker, &domain.domain).1,
    };
    let mut spec = convert::stack_spec(&input)
        .map_err(|e| Failure::from(hostkit_deploy::error::DeployError::from(e)))?;
    spec.redirects = domain.redirects.clone();
    Ok(spec)
}

/// [`spec_for_version`] for a job that starts containers (rollback, scale,
/// start, restart, the auto-rollback of a deploy): the version's project —
/// with `project`'s changes, e.g. a scale's replica count — must pass the
/// worker's *current* policy, on disk too (DESIGN §6: the policy runs on
/// every job that applies a spec, so a scale cannot exceed `max_replicas`
/// and a link planted since the deploy is refused).
pub async fn checked_spec_for_version(
    worker: &Worker,
    domain: &DomainRecord,
    record: &VersionRecord,
    project: Option<&Project>,
    job: &JobId,
    health_timeout: Option<Duration>,
) -> Result<StackSpec, Failure> {
    let checked = match project {
        Some(project) => project.clone(),
        None => recorded_project(worker, record)?.0,
    };
    let (policy, _) = limits_for(worker, &domain.domain);
    let dir = DomainDir::new(domain_dir(worker, &domain.domain));
    blocking("the policy check", move || {
        policy.check_on_disk(&checked, &dir)
    })
    .await?
    .map_err(|denied| Failure::from(hostkit_deploy::error::DeployError::from(denied)))?;
    spec_for_version(worker, domain, record, project, job, health_timeout)
}

/// The domain's record and current version, or a clear failure.
pub async fn current(
    worker: &Worker,
    domain: &Domain,
) -> Result<(DomainRecord, VersionRecord), Failure> {
    let record = worker.store.domain(domain.clone()).await?.ok_or_else(|| {
        Failure::new(
            ErrorCode::DomainNotFound,
            format!("{domain} has no stack on node {}", worker.node),
        )
    })?;
    let version = worker
        .store
        .current_version(domain.clone())
        .await?
        .ok_or_else(|| {
            Failure::new(
                ErrorCode::VersionNotFound,
                format!("{domain} has no deployed version"),
            )
        })?;
    Ok((record, version))
}
