//! The bind-mount guard of DESIGN §6: right before the containers of a
//! service start (created, started again, restarted), the files HostKit
//! writes for it are put in place and every bind source beneath the
//! domain directory is walked without following links, and a missing one
//! is created as a plain directory, so Docker never resolves a link a
//! container planted. Between this walk and Docker's own resolution no
//! container of the stack can plant one: no source lies inside another that
//! a container mounts writable ([`crate::policy`] for the spec,
//! [`nested_in_running`] for the containers that run now).

use std::path::Path;

use super::inventory::Inventory;
use super::spec::{ServiceSpec, StackSpec};
use crate::domain_dir::{DomainDir, DomainDirError};
use crate::error::DeployError;
use crate::policy::{PolicyDenied, Rule, nested_in};

/// Write the files HostKit writes for `service` (its `environment:` and
/// `content:` secrets and configs, so none is mistaken for a missing
/// directory), then walk its bind sources beneath the domain directory.
pub async fn guard(stack: &StackSpec, service: &ServiceSpec) -> Result<(), DeployError> {
    if service.bind_sources.is_empty() {
        return Ok(());
    }
    let dir = DomainDir::new(&stack.domain_dir);
    let sources = service.bind_sources.clone();
    let files = service.files.clone();
    let name = service.name.clone();
    tokio::task::spawn_blocking(move || {
        super::files::write_missing(&dir, &files)?;
        for source in &sources {
            if dir.components(source).is_none() {
                continue; // outside the domain directory: the policy decided
            }
            match dir.prepare_bind_source(source) {
                Ok(()) => {}
                Err(DomainDirError::Symlink { path }) => {
                    return Err(PolicyDenied::one(
                        Rule::Symlink,
                        Some(&name),
                        format!("services.{name}.volumes"),
                        format!("the bind source `{}` goes through the symbolic link `{path}`, which is never followed; the container was not started", dir.describe(source)),
                    )
                    .into());
                }
                Err(other) => return Err(other.into()),
            }
        }
        Ok(())
    })
    .await
    .unwrap_or_else(|e| Err(DeployError::Internal { message: format!("the bind-mount check panicked: {e}") }))
}

/// A bind source of the spec that lies inside a source a running container
/// of the project mounts writable (an old replica during a start-first
/// replacement, or a service this deploy changes): refused, since that
/// container could plant a link on its way at any moment.
pub fn nested_in_running(stack: &StackSpec, inventory: &Inventory) -> Result<(), DeployError> {
    let writable: Vec<(&str, &Path)> = inventory
        .services
        .values()
        .flatten()
        .flat_map(|c| {
            c.writable_binds
                .iter()
                .map(|b| (c.name.as_str(), b.as_path()))
        })
        .collect();
    let dir = DomainDir::new(&stack.domain_dir);
    for service in &stack.services {
        for source in &service.bind_sources {
            if let Some((container, outer)) = writable
                .iter()
                .find(|(_, outer)| nested_in(source, [*outer]).is_some())
            {
                return Err(PolicyDenied::one(
                    Rule::BindNested,
                    Some(&service.name),
                    format!("services.{}.volumes", service.name),
                    format!(
                        "`{}` lies inside `{}`, which the running container {container} mounts writable; remove that service first or mount a separate directory",
                        dir.describe(source),
                        dir.describe(outer)
                    ),
                )
                .into());
            }
        }
    }
    Ok(())
}
