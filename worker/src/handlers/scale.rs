//! `scale`: one service of the current version to a replica count; the
//! count is recorded on the version, so later re-applies (start, rollback to
//! it) keep it.

use hostkit_deploy::progress::ProgressSink;
use hostkit_proto::{ErrorCode, Job};

use super::stack::{checked_spec_for_version, current, recorded_project};
use super::{Done, Failure};
use crate::runtime::Worker;
use crate::store::Change;

pub async fn run(
    worker: &Worker,
    job: &Job,
    service: &str,
    replicas: u32,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let (domain, current) = current(worker, &job.domain).await?;
    let (mut project, _) = recorded_project(worker, &current)?;
    let Some(definition) = project.services.get_mut(service) else {
        let known = project
            .services
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        return Err(Failure::new(
            ErrorCode::ServiceNotFound,
            format!(
                "{} has no service {service}; its services: {known}",
                job.domain
            ),
        ));
    };
    if definition.container_name.is_some() && replicas > 1 {
        return Err(Failure::new(
            ErrorCode::JobInvalid,
            format!("{service} has a fixed container_name and cannot run {replicas} replicas"),
        ));
    }
    definition.deploy.replicas = replicas;
    let spec =
        checked_spec_for_version(worker, &domain, &current, Some(&project), &job.id, None).await?;
    worker.engine.apply(&spec, sink).await?;
    Ok(Done {
        version: Some(current.version),
        changes: vec![Change::SetReplicas {
            domain: job.domain.clone(),
            version: current.version,
            service: service.to_string(),
            replicas,
        }],
    })
}
