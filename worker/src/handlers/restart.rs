//! `restart`: restart one service or all, then wait until they are ready.
//! When the domain's variables (stored ones, `.env`) changed since the
//! current version was recorded, the version's compose file is loaded
//! again with them first and the changed containers are replaced (health
//! gated; on failure the version as it was is applied again), so a restart
//! is how `hostkit env set` reaches running containers.

use std::collections::BTreeMap;

use hostkit_deploy::engine::StackSpec;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_deploy::stack;
use hostkit_proto::Job;

use super::stack::{checked_spec_for_version, current, domain_dir, limits_for};
use super::{Done, Failure, blocking, variables};
use crate::runtime::Worker;
use crate::store::{Change, DomainRecord, SealWith, VersionRecord};

pub async fn run(
    worker: &Worker,
    job: &Job,
    service: Option<&str>,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let mut changes = Vec::new();
    let spec = match reloaded(worker, job, &domain, &current, sink).await? {
        Some((spec, change)) => {
            sink.report(Progress::Step {
                name: "env",
                message: format!(
                    "the domain's variables changed since version {} was recorded: its compose file was loaded again with them",
                    current.version
                ),
            });
            if let Err(error) = worker.engine.apply(&spec, sink).await {
                let mut failure = Failure::from(error);
                let restore =
                    checked_spec_for_version(worker, &domain, &current, None, &job.id, None)
                        .await?;
                match worker.engine.apply(&restore, sink).await {
                    Ok(_) => failure.rolled_back_to = Some(current.version),
                    Err(e) => {
                        failure.message = format!(
                            "{}; applying version {} as it was failed too: {e}",
                            failure.message, current.version
                        )
                    }
                }
                return Err(failure);
            }
            changes.push(change);
            spec
        }
        None => checked_spec_for_version(worker, &domain, &current, None, &job.id, None).await?,
    };
    worker.engine.restart(&spec, service, sink).await?;
    Ok(Done {
        version: Some(current.version),
        changes,
    })
}

/// The current version's spec loaded again with the domain's variables as
/// they are now, and the change that records it; `None` when they are
/// what the version was loaded with.
async fn reloaded(
    worker: &Worker,
    job: &Job,
    domain: &DomainRecord,
    current: &VersionRecord,
    sink: &dyn ProgressSink,
) -> Result<Option<(StackSpec, Change)>, Failure> {
    let key = worker.settings.seal_key.clone();
    let unreadable = |e: serde_json::Error| {
        Failure::new(
            hostkit_proto::ErrorCode::Internal,
            format!("version {} is unreadable: {e}", current.version),
        )
    };
    let Some(job_env) = current.job_env(key.as_ref()).map_err(unreadable)? else {
        let stored = worker.store.domain_env(job.domain.clone(), key).await?;
        if !stored.env.is_empty() {
            sink.report(Progress::Warning {
                message: format!(
                    "version {} was recorded before stored variables were kept with it: deploy again to use them",
                    current.version
                ),
            });
        }
        return Ok(None);
    };
    let stored = worker.store.domain_env(job.domain.clone(), key).await?;
    let dir = domain_dir(worker, &job.domain);
    let env = variables::layered(&dir, &stored.env, &job_env).await?;
    let env_hash = variables::hash(&env);
    if env_hash == current.env_hash {
        return Ok(None);
    }
    let main = current
        .main_service()
        .map_err(unreadable)?
        .map(|m| m.service);
    let (policy, _) = limits_for(worker, &job.domain);
    let text = current.compose_text.clone();
    let mut project = blocking("the compose check", move || {
        stack::check(&text, &env, &dir, main.as_deref(), &policy)
    })
    .await??
    .project;
    for recorded in &current.services {
        if let Some(service) = project.services.get_mut(&recorded.service) {
            service.deploy.replicas = recorded.replicas;
        }
    }
    let spec =
        checked_spec_for_version(worker, domain, current, Some(&project), &job.id, None).await?;
    let config_hashes: BTreeMap<String, String> = spec
        .services
        .iter()
        .map(|s| (s.name.clone(), s.config_hash.clone()))
        .collect();
    let change = Change::ReloadProject {
        domain: job.domain.clone(),
        version: current.version,
        project: Box::new(project),
        env_hash,
        config_hashes,
        seal_key: SealWith(worker.settings.seal_key.clone()),
    };
    Ok(Some((spec, change)))
}
