//! One service: checks its keys against the table and normalizes each value.

use super::deploy::{deploy, effective_restart, fold_limit, restart};
use super::health::healthcheck;
use super::hooks::{HookKind, hooks};
use super::kernel::{ignored, security_opt, sysctls, ulimits};
use super::mounts::{check_name, mounts, tmpfs};
use super::ports::{expose, ports};
use super::refs::{depends_on, env_files, extra_hosts, file_refs, logging, networks};
use super::value::{
    boolean, expected, fields, int, items, key_values, nano_cpus, non_empty, opt_string, size,
    string, string_list, string_map, uint,
};
use super::{RefKind, Reference};
use crate::compose::Env;
use crate::compose::error::{ComposeError, Warning};
use crate::compose::keys::Scope;
use crate::compose::model::{Condition, Dependency, MountSource, Service, ServiceNetwork};
use crate::compose::path::KeyPath;
use crate::compose::shell;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// Service-level limits, folded into `deploy.resources.limits` at the end.
#[derive(Default)]
struct Limits {
    memory: Option<(u64, KeyPath)>,
    cpus: Option<(u64, KeyPath)>,
    pids: Option<(i64, KeyPath)>,
}

/// Normalizes the service found at `path`; references to other
/// objects are appended to `refs` for validation, what the user should know
/// (ignored keys) to `warnings`.
pub fn service(
    value: &Value,
    path: &KeyPath,
    env: &Env,
    refs: &mut Vec<Reference>,
    warnings: &mut Vec<Warning>,
) -> Result<Service, ComposeError> {
    if !matches!(value, Value::Mapping(_)) {
        return Err(expected("a mapping", value, path));
    }
    let mut s = Service::default();
    let mut image = None;
    let mut restart_key = None;
    let mut limits = Limits::default();
    let mut networks_key = None;
    let mut scale = None;
    for (key, v, p) in fields(value, Scope::Service, path)? {
        match key.as_str() {
            "image" => image = Some(non_empty(v, &p)?),
            "command" => s.command = argv(v, &p)?,
            "entrypoint" => s.entrypoint = argv(v, &p)?,
            "environment" => s.environment = environment(v, &p, env)?,
            "env_file" => s.env_file = env_files(v, &p)?,
            "labels" => s.labels = string_map(v, &p)?,
            "ports" => s.ports = ports(v, &p)?,
            "expose" => s.expose = expose(v, &p)?,
            "volumes" => {
                s.volumes = mounts(v, &p)?;
                for (i, m) in s.volumes.iter().enumerate() {
                    if let MountSource::Volume {
                        name: Some(name), ..
                    } = &m.source
                    {
                        refs.push(Reference::new(RefKind::Volume, name, p.index(i)));
                    }
                }
            }
            "tmpfs" => s.tmpfs = tmpfs(v, &p)?,
            "depends_on" => {
                for (name, (dep, dp)) in depends_on(v, &p)? {
                    let mut reference = Reference::new(RefKind::Service, &name, dp);
                    reference.optional = !dep.required;
                    refs.push(reference);
                    s.depends_on.insert(name, dep);
                }
            }
            "networks" => {
                for (name, net, np) in networks(v, &p)? {
                    refs.push(Reference::new(RefKind::Network, &name, np.clone()));
                    if s.networks.insert(name.clone(), net).is_some() {
                        return Err(ComposeError::invalid(
                            &np,
                            format!("network `{name}` is listed twice"),
                        ));
                    }
                }
                networks_key = Some(p);
            }
            "network_mode" => s.network_mode = Some(namespace_mode(v, &p, refs)?),
            "pid" => s.pid = Some(namespace_mode(v, &p, refs)?),
            "ipc" => s.ipc = Some(namespace_mode(v, &p, refs)?),
            "healthcheck" => s.healthcheck = Some(healthcheck(v, &p)?),
            "restart" => restart_key = Some(restart(v, &p)?),
            "deploy" => s.deploy = deploy(v, &p)?,
            "mem_limit" => limits.memory = Some((size(v, &p)?, p)),
            "cpus" => limits.cpus = Some((nano_cpus(v, &p)?, p)),
            "pids_limit" => limits.pids = Some((int(v, &p)?, p)),
            "user" => s.user = opt_string(v, &p)?,
            "working_dir" => s.working_dir = opt_string(v, &p)?,
            "stop_signal" => s.stop_signal = opt_string(v, &p)?,
            "stop_grace_period" => s.stop_grace_period = Some(super::value::duration(v, &p)?),
            "init" => s.init = Some(boolean(v, &p)?),
            "read_only" => s.read_only = boolean(v, &p)?,
            "extra_hosts" => s.extra_hosts = extra_hosts(v, &p)?,
            "hostname" => s.hostname = opt_string(v, &p)?,
            "cap_add" => s.cap_add = capabilities(v, &p)?,
            "cap_drop" => s.cap_drop = capabilities(v, &p)?,
            "logging" => s.logging = Some(logging(v, &p)?),
            "container_name" => {
                let name = non_empty(v, &p)?;
                check_name(&name, "container", &p)?;
                s.container_name = Some(name);
            }
            "secrets" => s.secrets = file_refs_with(v, &p, RefKind::Secret, refs)?,
            "configs" => s.configs = file_refs_with(v, &p, RefKind::Config, refs)?,
            "privileged" => s.privileged = boolean(v, &p)?,
            "devices" => s.devices = devices(v, &p)?,
            "tty" => s.tty = boolean(v, &p)?,
            "stdin_open" => s.stdin_open = boolean(v, &p)?,
            "profiles" => s.profiles = crate::compose::profiles::parse(v, &p)?,
            "shm_size" => s.shm_size = Some(size(v, &p)?),
            "ulimits" => s.ulimits = ulimits(v, &p)?,
            "security_opt" => s.security_opt = security_opt(v, &p)?,
            "sysctls" => s.sysctls = sysctls(v, &p)?,
            "develop" | "platform" | "pull_policy" => ignored(&key, v, &p, warnings)?,
            "scale" => scale = Some(uint(v, &p)?),
            "pre_start" => s.pre_start = hooks(v, &p, env, HookKind::PreStart)?,
            "post_start" => s.post_start = hooks(v, &p, env, HookKind::PostStart)?,
            "pre_stop" => s.pre_stop = hooks(v, &p, env, HookKind::PreStop)?,
            "mac_address" => s.mac_address = opt_string(v, &p)?,
            "links" => {
                for (link, lp) in items(v, &p)? {
                    let link = non_empty(link, &lp)?;
                    let target = link.split(':').next().unwrap_or_default().to_owned();
                    refs.push(Reference::new(RefKind::Service, &target, lp));
                    s.depends_on.entry(target).or_insert(Dependency {
                        condition: Condition::ServiceStarted,
                        restart: false,
                        required: true,
                    });
                    s.links.push(link);
                }
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    s.image = image.ok_or_else(|| ComposeError::invalid(path, "every service needs `image`"))?;
    let l = &mut s.deploy.resources.limits;
    fold_limit(&mut l.memory, limits.memory, "memory")?;
    fold_limit(&mut l.nano_cpus, limits.cpus, "cpus")?;
    fold_limit(&mut l.pids, limits.pids, "pids")?;
    if let Some(scale) = scale {
        // The legacy `scale:` is `deploy.replicas`.
        s.deploy.replicas = scale;
    }
    s.restart = effective_restart(restart_key, &s.deploy);
    finish_networking(&mut s, networks_key)?;
    Ok(s)
}

/// Joins the default network when neither `networks` nor `network_mode` is
/// given (and no network for `networks: []`); rejects combining them; adds the implicit dependency of
/// `service:<name>` namespace modes.
fn finish_networking(s: &mut Service, networks_key: Option<KeyPath>) -> Result<(), ComposeError> {
    match (&s.network_mode, networks_key) {
        (Some(_), Some(np)) if !s.networks.is_empty() => {
            return Err(ComposeError::invalid(
                &np,
                "`networks` cannot be combined with `network_mode`",
            ));
        }
        (None, None) => {
            s.networks
                .insert("default".to_owned(), ServiceNetwork::default());
        }
        // `networks: []` means no network at all, never Docker's shared
        // default `bridge` (DESIGN §6).
        (None, Some(_)) if s.networks.is_empty() => s.network_mode = Some("none".to_owned()),
        _ => {}
    }
    let modes = [&s.network_mode, &s.pid, &s.ipc];
    let targets: Vec<String> = modes
        .iter()
        .filter_map(|m| m.as_deref()?.strip_prefix("service:").map(str::to_owned))
        .collect();
    for target in targets {
        s.depends_on.entry(target).or_insert(Dependency {
            condition: Condition::ServiceStarted,
            restart: false,
            required: true,
        });
    }
    Ok(())
}

/// `network_mode` / `pid` / `ipc`: a string; `service:<name>` is a reference.
fn namespace_mode(
    value: &Value,
    path: &KeyPath,
    refs: &mut Vec<Reference>,
) -> Result<String, ComposeError> {
    let mode = non_empty(value, path)?;
    if let Some(target) = mode.strip_prefix("service:") {
        refs.push(Reference::new(RefKind::Service, target, path.clone()));
    }
    Ok(mode)
}

/// `command` / `entrypoint`: a string split like a shell, or a list; null
/// means not set.
pub(super) fn argv(value: &Value, path: &KeyPath) -> Result<Option<Vec<String>>, ComposeError> {
    match value {
        Value::Null => Ok(None),
        Value::Sequence(_) => string_list(value, path).map(Some),
        _ => shell::split(&string(value, path)?)
            .map(Some)
            .map_err(|m| ComposeError::invalid(path, m)),
    }
}

/// `environment`: entries without a value take it from `env`, or are dropped.
pub(super) fn environment(
    value: &Value,
    path: &KeyPath,
    env: &Env,
) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, val, p) in key_values(value, path, '=')? {
        if out.contains_key(&key) {
            return Err(ComposeError::invalid(&p, format!("`{key}` is set twice")));
        }
        if let Some(val) = val.or_else(|| env.get(&key).cloned()) {
            out.insert(key, val);
        }
    }
    Ok(out)
}

/// Capabilities, upper case, without the `CAP_` prefix.
fn capabilities(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    Ok(string_list(value, path)?
        .into_iter()
        .map(|c| crate::compose::capability_name(&c))
        .collect())
}

/// `devices`: short strings only.
fn devices(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    items(value, path)?
        .into_iter()
        .map(|(v, p)| match v {
            Value::Mapping(_) => Err(ComposeError::unsupported_value(
                &p,
                "use the short `/dev/x:/dev/y` form",
            )),
            _ => non_empty(v, &p),
        })
        .collect()
}

fn file_refs_with(
    value: &Value,
    path: &KeyPath,
    kind: RefKind,
    refs: &mut Vec<Reference>,
) -> Result<Vec<crate::compose::model::FileRef>, ComposeError> {
    let parsed = file_refs(value, path)?;
    Ok(parsed
        .into_iter()
        .map(|(r, p)| {
            refs.push(Reference::new(kind, &r.source, p));
            r
        })
        .collect())
}
