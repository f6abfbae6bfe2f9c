//! From the merged, interpolated YAML tree to the typed [`Project`]: every
//! mapping's keys are checked against the key table and every value is
//! converted to its one normalized form.

mod deploy;
mod health;
mod hooks;
mod kernel;
mod mounts;
mod ports;
mod refs;
mod service;
pub(crate) mod value;

use self::mounts::check_name;
use self::value::{boolean, entries, expected, fields, non_empty, opt_string, string, string_map};
use super::Env;
use super::error::{ComposeError, Warning};
use super::keys::{self, Scope};
use super::model::{FileObject, Network, Project, SecretText, Volume};
use super::path::KeyPath;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// What a [`Reference`] points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    /// A service (`depends_on`, `network_mode: service:x`, …).
    Service,
    /// A top-level network.
    Network,
    /// A top-level volume.
    Volume,
    /// A top-level secret.
    Secret,
    /// A top-level config.
    Config,
}

impl RefKind {
    /// The word used in errors.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Network => "network",
            Self::Volume => "volume",
            Self::Secret => "secret",
            Self::Config => "config",
        }
    }
}

/// A reference from a service to another object, kept for validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// What it points at.
    pub kind: RefKind,
    /// The name it points at.
    pub name: String,
    /// Where it is written.
    pub path: KeyPath,
    /// `depends_on` with `required: false`.
    pub optional: bool,
}

impl Reference {
    fn new(kind: RefKind, name: &str, path: KeyPath) -> Self {
        Self {
            kind,
            name: name.to_owned(),
            path,
            optional: false,
        }
    }
}

/// Normalizes the whole document.
pub fn project(
    root: &Value,
    env: &Env,
    warnings: &mut Vec<Warning>,
) -> Result<(Project, Vec<Reference>), ComposeError> {
    let top = KeyPath::root();
    if root.is_null() {
        return Err(ComposeError::invalid(&top, "the compose file is empty"));
    }
    if !matches!(root, Value::Mapping(_)) {
        return Err(expected("a mapping at the top level", root, &top));
    }
    let mut project = Project::default();
    let mut refs = Vec::new();
    let mut has_services = false;
    for (key, v, p) in fields(root, Scope::Top, &top)? {
        match key.as_str() {
            "version" => warnings.push(Warning {
                path: p.to_string(),
                message: "`version` is obsolete and ignored".to_owned(),
            }),
            "name" => {
                project.name = opt_string(v, &p)?;
                warnings.push(Warning {
                    path: p.to_string(),
                    message: "`name` is ignored: the project name is the domain's token".to_owned(),
                });
            }
            "services" => {
                for (name, sv, sp) in entries(v, &p)? {
                    if keys::is_extension(&name) {
                        continue;
                    }
                    check_service_name(&name, &sp)?;
                    project
                        .services
                        .insert(name, service::service(sv, &sp, env, &mut refs, warnings)?);
                    has_services = true;
                }
                super::profiles::apply(&mut project, &mut refs, env, &p, warnings)?;
                apply_links(&mut project);
            }
            "networks" => project.networks = named(v, &p, "network", network)?,
            "volumes" => project.volumes = named(v, &p, "volume", volume)?,
            "secrets" => {
                project.secrets = named(v, &p, "secret", |v, p| file_object(v, p, env, warnings))?;
            }
            "configs" => {
                project.configs = named(v, &p, "config", |v, p| file_object(v, p, env, warnings))?;
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    if !has_services {
        return Err(ComposeError::invalid(
            &top.key("services"),
            "the compose file defines no service",
        ));
    }
    let uses_default = project
        .services
        .values()
        .any(|s| s.networks.contains_key("default"));
    if uses_default {
        project.networks.entry("default".to_owned()).or_default();
    }
    Ok((project, refs))
}

/// `[a-zA-Z0-9._-]+`.
fn check_service_name(name: &str, path: &KeyPath) -> Result<(), ComposeError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(ComposeError::invalid(
            path,
            format!("invalid service name `{name}` (letters, digits, `.`, `_`, `-`)"),
        ));
    }
    Ok(())
}

/// A top-level map of named objects (`x-*` entries skipped).
fn named<T>(
    value: &Value,
    path: &KeyPath,
    noun: &str,
    mut parse: impl FnMut(&Value, &KeyPath) -> Result<T, ComposeError>,
) -> Result<BTreeMap<String, T>, ComposeError> {
    if value.is_null() {
        return Ok(BTreeMap::new());
    }
    let mut out = BTreeMap::new();
    for (name, v, p) in entries(value, path)? {
        if keys::is_extension(&name) {
            continue;
        }
        check_name(&name, noun, &p)?;
        out.insert(name, parse(v, &p)?);
    }
    Ok(out)
}

/// `links: [db:database]` on `web`: `database` becomes an alias of `db` on
/// every network both services join (a plain `db` link adds nothing:
/// services reach each other by name).
fn apply_links(project: &mut Project) {
    let mut aliases: Vec<(String, String, String)> = Vec::new();
    for service in project.services.values() {
        for link in &service.links {
            let Some((target, alias)) = link.split_once(':') else {
                continue;
            };
            for network in service.networks.keys() {
                aliases.push((target.to_owned(), network.clone(), alias.to_owned()));
            }
        }
    }
    for (target, network, alias) in aliases {
        if let Some(joined) = project
            .services
            .get_mut(&target)
            .and_then(|t| t.networks.get_mut(&network))
            && !joined.aliases.contains(&alias)
        {
            joined.aliases.push(alias);
        }
    }
}

fn network(value: &Value, path: &KeyPath) -> Result<Network, ComposeError> {
    let mut n = Network::default();
    if value.is_null() {
        return Ok(n);
    }
    for (key, v, p) in fields(value, Scope::Network, path)? {
        match key.as_str() {
            "name" => n.name = Some(engine_name(v, &p)?),
            "driver" => n.driver = opt_string(v, &p)?,
            "internal" => n.internal = boolean(v, &p)?,
            "labels" => n.labels = string_map(v, &p)?,
            "external" => n.external = external(v, &p)?,
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(n)
}

fn volume(value: &Value, path: &KeyPath) -> Result<Volume, ComposeError> {
    let mut vol = Volume::default();
    if value.is_null() {
        return Ok(vol);
    }
    for (key, v, p) in fields(value, Scope::Volume, path)? {
        match key.as_str() {
            "name" => vol.name = Some(engine_name(v, &p)?),
            "driver" => vol.driver = opt_string(v, &p)?,
            "driver_opts" => vol.driver_opts = string_map(v, &p)?,
            "labels" => vol.labels = string_map(v, &p)?,
            "external" => vol.external = external(v, &p)?,
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(vol)
}

/// A `name:` as the engine accepts it: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`, at most
/// 255 characters.
fn engine_name(value: &Value, path: &KeyPath) -> Result<String, ComposeError> {
    let name = opt_string(value, path)?.unwrap_or_default();
    let valid = name.len() <= 255
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if valid {
        Ok(name)
    } else if name.is_empty() {
        Err(ComposeError::invalid(
            path,
            "the name is empty (an unset variable?)",
        ))
    } else {
        Err(ComposeError::invalid(
            path,
            "not a valid engine name: letters, digits, `_`, `.` and `-`, starting with a letter or digit",
        ))
    }
}

/// `external: true`, or the legacy `external: {name: x}` (external all the same).
fn external(value: &Value, path: &KeyPath) -> Result<bool, ComposeError> {
    match value {
        Value::Mapping(_) => Ok(true),
        _ => boolean(value, path),
    }
}

/// A top-level secret or config: exactly one of `file:`, `environment:`
/// (the variable's value from `env`; unset is a warning here, the deploy
/// refuses it) and `content:` (already interpolated, `$$` escapes).
fn file_object(
    value: &Value,
    path: &KeyPath,
    env: &Env,
    warnings: &mut Vec<Warning>,
) -> Result<FileObject, ComposeError> {
    let mut found: Vec<(FileObject, KeyPath)> = Vec::new();
    for (key, v, p) in fields(value, Scope::FileObject, path)? {
        let object = match key.as_str() {
            "file" => FileObject::File(non_empty(v, &p)?),
            "environment" => {
                let variable = non_empty(v, &p)?;
                let value = env.get(&variable).cloned().map(SecretText::new);
                if value.is_none() {
                    warnings.push(Warning {
                        path: p.to_string(),
                        message: format!(
                            "{variable} is not set here; the job's env or the domain's .env must set it, or the deploy fails"
                        ),
                    });
                }
                FileObject::Environment { variable, value }
            }
            "content" => FileObject::Content(SecretText::new(string(v, &p)?)),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        };
        found.push((object, p));
    }
    match found.len() {
        1 => Ok(found.remove(0).0),
        0 => Err(ComposeError::invalid(
            path,
            "needs one of `file`, `environment` or `content`",
        )),
        _ => Err(ComposeError::invalid(
            &found[1].1,
            "give only one of `file`, `environment` or `content`",
        )),
    }
}
