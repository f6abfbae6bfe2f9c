//! Compose profiles: a service with `profiles: [debug]` is part of the
//! project only while one of its profiles is active; a service without
//! `profiles` always is.
//!
//! The active profiles are the comma-separated names in `COMPOSE_PROFILES`
//! of the load env (the job's env over the domain's `.env`; `hostkit deploy
//! --profile NAME` sets it), `*` activating every profile, as in Docker
//! Compose. Inactive services are removed from the project before
//! validation; an enabled service that depends on a disabled one (through
//! `depends_on` or `network_mode`/`pid`/`ipc: service:<name>`) is an error
//! naming both, unless the dependency is optional (`required: false`), which
//! is dropped with a warning.

use super::Env;
use super::error::{ComposeError, Warning};
use super::model::Project;
use super::normalize::value::{items, non_empty};
use super::normalize::{RefKind, Reference};
use super::path::{KeyPath, Segment};
use serde_yaml::Value;
use std::collections::BTreeSet;

/// The variable that lists the active profiles.
pub const COMPOSE_PROFILES: &str = "COMPOSE_PROFILES";

/// The profiles a load activates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// `COMPOSE_PROFILES=*`: every profile.
    All,
    /// The listed profiles (maybe none).
    Listed(BTreeSet<String>),
}

impl Active {
    /// The active profiles of `env` (`COMPOSE_PROFILES`, comma-separated,
    /// blanks ignored).
    pub fn from_env(env: &Env) -> Self {
        let mut listed = BTreeSet::new();
        for name in env
            .get(COMPOSE_PROFILES)
            .map(String::as_str)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            if name == "*" {
                return Self::All;
            }
            listed.insert(name.to_owned());
        }
        Self::Listed(listed)
    }

    /// Whether a service with `profiles` is enabled.
    pub fn enables(&self, profiles: &[String]) -> bool {
        match self {
            _ if profiles.is_empty() => true,
            Self::All => true,
            Self::Listed(active) => profiles.iter().any(|p| active.contains(p)),
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::All => "all".to_owned(),
            Self::Listed(active) if active.is_empty() => "none".to_owned(),
            Self::Listed(active) => quoted(active.iter()),
        }
    }
}

fn quoted<'a>(names: impl Iterator<Item = &'a String>) -> String {
    names
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `true` for a profile name as Compose allows it: `[a-zA-Z0-9][a-zA-Z0-9_.-]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A service's `profiles:` list.
pub(crate) fn parse(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    let mut out: Vec<String> = Vec::new();
    for (v, p) in items(value, path)? {
        let name = non_empty(v, &p)?;
        if !is_valid_name(&name) {
            return Err(ComposeError::invalid(
                &p,
                format!("invalid profile name `{name}` (letters, digits, `_`, `.`, `-`)"),
            ));
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

/// Removes the services no active profile enables (with a warning each)
/// and the references they made; fails when an enabled service depends on a
/// removed one. `services` is the path of the `services` key.
pub(crate) fn apply(
    project: &mut Project,
    refs: &mut Vec<Reference>,
    env: &Env,
    services: &KeyPath,
    warnings: &mut Vec<Warning>,
) -> Result<(), ComposeError> {
    let active = Active::from_env(env);
    let disabled: Vec<String> = project
        .services
        .iter()
        .filter(|(_, s)| !active.enables(&s.profiles))
        .map(|(name, _)| name.clone())
        .collect();
    if disabled.is_empty() {
        return Ok(());
    }
    if disabled.len() == project.services.len() {
        return Err(ComposeError::invalid(
            services,
            format!(
                "no service is enabled: every service is in a profile that is not active (active profiles: {}); set {COMPOSE_PROFILES} or use `hostkit deploy --profile`",
                active.describe()
            ),
        ));
    }
    let mut removed = Vec::new();
    for name in &disabled {
        if let Some(service) = project.services.remove(name) {
            warnings.push(Warning {
                path: services.key(name.as_str()).key("profiles").to_string(),
                message: format!(
                    "service `{name}` is not deployed: its profiles ({}) are not active (active profiles: {})",
                    quoted(service.profiles.iter()),
                    active.describe()
                ),
            });
            removed.push((name.clone(), service.profiles));
        }
    }
    refs.retain(|r| owner(&r.path).is_none_or(|o| !disabled.iter().any(|d| d == o)));
    let mut kept = Vec::with_capacity(refs.len());
    for r in refs.drain(..) {
        let target = match r.kind {
            RefKind::Service => removed.iter().find(|(name, _)| *name == r.name),
            _ => None,
        };
        let (Some((target, profiles)), Some(owner)) = (target, owner(&r.path)) else {
            kept.push(r);
            continue;
        };
        if r.optional {
            if let Some(service) = project.services.get_mut(owner) {
                service.depends_on.remove(target);
            }
            warnings.push(Warning {
                path: r.path.to_string(),
                message: format!(
                    "optional dependency `{target}` is not deployed (its profiles are not active); ignored"
                ),
            });
            continue;
        }
        return Err(ComposeError::invalid(
            &r.path,
            format!(
                "service `{owner}` depends on service `{target}`, which is not enabled: `{target}` is only in profile(s) {} (active profiles: {}); activate one with {COMPOSE_PROFILES} or `hostkit deploy --profile`",
                quoted(profiles.iter()),
                active.describe()
            ),
        ));
    }
    *refs = kept;
    Ok(())
}

/// The service a `services.<name>...` path belongs to.
fn owner(path: &KeyPath) -> Option<&str> {
    match path.segments() {
        [Segment::Key(top), Segment::Key(service), ..] if top == "services" => Some(service),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(profiles: &str) -> Env {
        Env::from([(COMPOSE_PROFILES.to_owned(), profiles.to_owned())])
    }

    #[test]
    fn active_profiles_come_from_the_env() {
        let none = Active::from_env(&Env::new());
        assert!(none.enables(&[]));
        assert!(!none.enables(&["debug".to_owned()]));
        let some = Active::from_env(&env(" debug , ,ops"));
        assert_eq!(
            some,
            Active::Listed(BTreeSet::from(["debug".to_owned(), "ops".to_owned()]))
        );
        assert!(some.enables(&["x".to_owned(), "ops".to_owned()]));
        assert!(!some.enables(&["x".to_owned()]));
        assert_eq!(Active::from_env(&env("a,*")), Active::All);
        assert!(Active::All.enables(&["anything".to_owned()]));
    }

    #[test]
    fn profile_names() {
        for ok in ["debug", "a", "web.v2", "x_y-z", "9"] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "-x", ".x", "a b", "a,b", "*"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }
}
