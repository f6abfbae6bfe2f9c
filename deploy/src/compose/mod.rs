//! The compose loader: from compose text and an env to a validated, typed,
//! normalized [`Project`].
//!
//! [`load`] runs these steps, each in its own module:
//! 1. [`yaml`]: parse one YAML document within [`MAX_INPUT_BYTES`] and
//!    [`MAX_NODES`] (alias bombs), then resolve merge keys (`<<`) recursively;
//! 2. [`interpolate`]: expand `$VAR`, `${VAR:-d}`, … in string values (never
//!    in keys nor in `x-*` subtrees); unset variables become warnings;
//! 3. `normalize`: check every key against the one table in [`keys`]
//!    (unknown keys are `compose.unsupported` errors) and convert short and
//!    long forms into the [`model`]; services none of whose [`profiles`]
//!    is active are dropped;
//! 4. `validate`: references, dependency cycles, replicas, container names.
//!
//! Errors name the key path and, found by [`locate`], the source line.
//! `env_file:` paths stay in the model; [`Project::apply_env_files`] reads
//! them relative to the domain directory when the caller is ready to.

pub mod duration;
pub mod envfile;
pub mod error;
mod hash;
pub mod hostpath;
pub mod interpolate;
pub mod keys;
pub mod locate;
mod main_service;
pub mod model;
mod normalize;
mod order;
pub mod path;
pub mod profiles;
pub mod shell;
pub mod size;
mod validate;
pub mod yaml;

pub use envfile::parse_env_file;
pub use error::{CODE_INVALID, CODE_UNSUPPORTED, ComposeError, Warning};
pub use hostpath::resolve_host_path;
pub use keys::supported_keys_markdown;
pub use main_service::{
    FRONT_END_NAMES, HTTP_PORTS, LABEL_EXPOSE, LABEL_PORT, MainChoice, MainService, PortReason,
    ServiceReason, TLS_PORTS,
};
pub use model::*;
pub use path::KeyPath;
pub use yaml::{MAX_INPUT_BYTES, MAX_NODES};

use crate::domain_dir::{DomainDir, READ_CAP};
use std::collections::BTreeMap;
use std::path::Path;

/// Variables for interpolation and for `environment` entries without a
/// value: the job's env over the domain's env file.
pub type Env = BTreeMap<String, String>;

/// A capability's canonical name: upper case, without `CAP_` (`cap_net_admin`
/// → `NET_ADMIN`), as the model and the policy compare them.
pub fn capability_name(written: &str) -> String {
    let upper = written.trim().to_ascii_uppercase();
    upper
        .strip_prefix("CAP_")
        .map(str::to_owned)
        .unwrap_or(upper)
}

/// Most replicas a service may have.
pub const MAX_REPLICAS: u32 = 100;

/// A loaded project and what the user should be told about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The validated, normalized project.
    pub project: Project,
    /// Unset variables, obsolete keys, dropped optional dependencies, …
    pub warnings: Vec<Warning>,
}

/// Loads compose `text` with `env`; see the module documentation.
pub fn load(text: &str, env: &Env) -> Result<Loaded, ComposeError> {
    load_unlocated(text, env).map_err(|e| e.located(|path| locate::locate(text, path)))
}

fn load_unlocated(text: &str, env: &Env) -> Result<Loaded, ComposeError> {
    let mut tree = yaml::parse(text)?;
    yaml::resolve_merges(&mut tree, &KeyPath::root())?;
    let mut warnings = Vec::new();
    let unset = interpolate::interpolate_tracking(&mut tree, env, &mut warnings)?;
    let (mut project, refs) =
        normalize::project(&tree, env, &mut warnings).map_err(|e| e.naming_unset(&unset))?;
    validate::validate(&mut project, &refs, &mut warnings).map_err(|e| e.naming_unset(&unset))?;
    for (name, service) in &project.services {
        if let Some(container_name) = &service.container_name {
            warnings.push(Warning {
                path: format!("services.{name}.container_name"),
                message: format!(
                    "the container is named `<project>-{container_name}`; `{container_name}` stays a network alias"
                ),
            });
        }
    }
    Ok(Loaded { project, warnings })
}

/// An env file in `format: raw`: `KEY=VALUE` lines taken verbatim; blank
/// lines and lines starting with `#` are skipped.
fn raw_env_lines(text: &str) -> Env {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.to_owned()))
        .collect()
}

/// The env for [`load`]: the domain's env file overlaid by the job's env.
pub fn merge_env(domain: &Env, job: &Env) -> Env {
    let mut env = domain.clone();
    env.extend(job.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

impl Service {
    /// The images a service uses besides its own: its `pre_start` hooks'
    /// and its `type: image` mounts' sources, in written order.
    pub fn other_images(&self) -> Vec<String> {
        let hooks = self.pre_start.iter().filter_map(|h| h.image.clone());
        let mounts = self.volumes.iter().filter_map(|m| match &m.source {
            MountSource::Image { reference, .. } => Some(reference.clone()),
            _ => None,
        });
        hooks.chain(mounts).collect()
    }
}

impl Project {
    /// Services in dependency waves: every service's dependencies are in
    /// earlier waves, names are sorted within a wave, and the services of one wave do not depend on each other and can start in
    /// parallel once the previous waves meet their conditions.
    pub fn start_order(&self) -> Result<Vec<Vec<String>>, ComposeError> {
        order::start_order(self)
    }

    /// Every image reference the project runs, once each, sorted: the
    /// services' images, the images of `pre_start` hooks and the sources of
    /// `type: image` mounts.
    pub fn image_references(&self) -> Vec<String> {
        let mut refs: Vec<String> = self
            .services
            .values()
            .flat_map(|s| std::iter::once(s.image.clone()).chain(s.other_images()))
            .collect();
        refs.sort();
        refs.dedup();
        refs
    }

    /// Every secret and config a service uses has its content: an
    /// `environment:` source whose variable was unset at load (a warning
    /// there, since the CLI's check has no node env) is an error naming the
    /// variable. The deploy calls this; the CLI does not.
    pub fn require_file_values(&self) -> Result<(), ComposeError> {
        for service in self.services.values() {
            for (kind, refs, objects) in [
                ("secrets", &service.secrets, &self.secrets),
                ("configs", &service.configs, &self.configs),
            ] {
                for r in refs {
                    if let Some(FileObject::Environment {
                        variable,
                        value: None,
                    }) = objects.get(&r.source)
                    {
                        return Err(ComposeError::MissingVariable {
                            variable: variable.clone(),
                            message: String::new(),
                            path: KeyPath::from_keys([kind, r.source.as_str(), "environment"]),
                            line: None,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    /// Every published port, by service (sorted by service name).
    pub fn published_ports(&self) -> Vec<(&str, &PortMapping)> {
        self.services
            .iter()
            .flat_map(|(name, s)| s.ports.iter().map(move |p| (name.as_str(), p)))
            .collect()
    }

    /// Reads each service's `env_file`s (beneath the domain directory
    /// `dir`, never through a symbolic link, at most
    /// [`READ_CAP`] bytes each) and adds their
    /// variables to its `environment`; variables written in `environment`
    /// win, later files win over earlier ones. A missing optional file is
    /// skipped.
    pub fn apply_env_files(&mut self, dir: &DomainDir) -> Result<(), ComposeError> {
        for (name, service) in &mut self.services {
            let path = KeyPath::from_keys(["services", name.as_str(), "env_file"]);
            let mut from_files = Env::new();
            for file in &service.env_file {
                let text = match dir.read_to_string(Path::new(&file.path), READ_CAP) {
                    Ok(Some(text)) => text,
                    Ok(None) if !file.required => continue,
                    Ok(None) => {
                        return Err(ComposeError::invalid(
                            &path,
                            format!("`{}` does not exist in the domain directory", file.path),
                        ));
                    }
                    Err(e) => return Err(ComposeError::invalid(&path, e.to_string())),
                };
                if file.raw {
                    from_files.extend(raw_env_lines(&text));
                } else {
                    from_files.extend(parse_env_file(&file.path, &text)?);
                }
            }
            for (key, value) in from_files {
                service.environment.entry(key).or_insert(value);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
