//! Semantic validation of a normalized project: references, dependency
//! cycles, replicas, container names and the owners of the files HostKit
//! writes for `environment:`/`content:` secrets and configs.

use super::error::{ComposeError, Warning};
use super::model::Project;
use super::normalize::{RefKind, Reference};
use super::order::find_cycle;
use super::path::{KeyPath, Segment};
use std::collections::BTreeMap;

/// Checks the references collected by normalization and the project's
/// invariants; a missing optional dependency is dropped with a warning.
pub fn validate(
    project: &mut Project,
    refs: &[Reference],
    warnings: &mut Vec<Warning>,
) -> Result<(), ComposeError> {
    for r in refs {
        let defined = match r.kind {
            RefKind::Service => project.services.contains_key(&r.name),
            RefKind::Network => project.networks.contains_key(&r.name),
            RefKind::Volume => project.volumes.contains_key(&r.name),
            RefKind::Secret => project.secrets.contains_key(&r.name),
            RefKind::Config => project.configs.contains_key(&r.name),
        };
        if defined {
            continue;
        }
        if r.optional {
            if let Some(service) = owner(&r.path).and_then(|s| project.services.get_mut(s)) {
                service.depends_on.remove(&r.name);
            }
            warnings.push(Warning {
                path: r.path.to_string(),
                message: format!("optional dependency `{}` is not defined; ignored", r.name),
            });
            continue;
        }
        return Err(ComposeError::undefined(r.kind.noun(), &r.name, &r.path));
    }
    if let Some(cycle) = find_cycle(project) {
        return Err(ComposeError::Cycle { cycle });
    }
    written_file_owners(project)?;
    let mut container_names: BTreeMap<&str, &str> = BTreeMap::new();
    for (name, service) in &project.services {
        let Some(container_name) = service.container_name.as_deref() else {
            continue;
        };
        let path = KeyPath::from_keys(["services", name.as_str(), "container_name"]);
        if service.deploy.replicas > 1 {
            return Err(ComposeError::invalid(
                &path,
                format!(
                    "a service with `container_name` cannot have {} replicas",
                    service.deploy.replicas
                ),
            ));
        }
        if let Some(other) = container_names.insert(container_name, name) {
            return Err(ComposeError::invalid(
                &path,
                format!("container name `{container_name}` is also used by service `{other}`"),
            ));
        }
    }
    Ok(())
}

/// The `uid`/`gid` of a secret or config HostKit writes itself must be
/// numeric (it owns the file on the host; as in Docker Compose, which
/// writes them into the container). For a `file:` source they are ignored.
fn written_file_owners(project: &Project) -> Result<(), ComposeError> {
    for (name, service) in &project.services {
        for (kind, refs, objects) in [
            ("secrets", &service.secrets, &project.secrets),
            ("configs", &service.configs, &project.configs),
        ] {
            for (i, r) in refs.iter().enumerate() {
                if objects.get(&r.source).is_none_or(|o| o.file().is_some()) {
                    continue;
                }
                for (key, id) in [("uid", &r.uid), ("gid", &r.gid)] {
                    if let Some(id) = id.as_deref().filter(|id| id.parse::<u32>().is_err()) {
                        let path = KeyPath::from_keys(["services", name.as_str(), kind])
                            .index(i)
                            .key(key);
                        return Err(ComposeError::invalid(
                            &path,
                            format!("`{id}` is not a numeric id"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The service a `services.<name>...` path belongs to.
fn owner(path: &KeyPath) -> Option<&str> {
    match path.segments() {
        [Segment::Key(top), Segment::Key(service), ..] if top == "services" => Some(service),
        _ => None,
    }
}
