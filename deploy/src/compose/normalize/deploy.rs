//! `deploy:`, `restart:` and the service-level resource keys.

use super::value::{duration, fields, int, nano_cpus, size, string, uint};
use crate::compose::MAX_REPLICAS;
use crate::compose::error::ComposeError;
use crate::compose::keys::Scope;
use crate::compose::model::{
    Deploy, DeployRestartPolicy, ResourceSpec, Resources, Restart, RestartCondition, UpdateOrder,
};
use crate::compose::path::KeyPath;
use serde_yaml::Value;

/// Parses a `deploy:` mapping.
pub fn deploy(value: &Value, path: &KeyPath) -> Result<Deploy, ComposeError> {
    let mut deploy = Deploy::default();
    for (key, v, p) in fields(value, Scope::Deploy, path)? {
        match key.as_str() {
            "mode" => {
                let mode = string(v, &p)?;
                if mode != "replicated" {
                    return Err(ComposeError::unsupported_value(
                        &p,
                        format!("mode `{mode}`: only `replicated`"),
                    ));
                }
            }
            "replicas" => {
                let replicas: u32 = uint(v, &p)?;
                if replicas > MAX_REPLICAS {
                    return Err(ComposeError::invalid(
                        &p,
                        format!("at most {MAX_REPLICAS} replicas"),
                    ));
                }
                deploy.replicas = replicas;
            }
            "resources" => deploy.resources = resources(v, &p)?,
            "update_config" => deploy.update_order = update_order(v, &p)?,
            "restart_policy" => deploy.restart_policy = Some(restart_policy(v, &p)?),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(deploy)
}

fn resources(value: &Value, path: &KeyPath) -> Result<Resources, ComposeError> {
    let mut out = Resources::default();
    for (key, v, p) in fields(value, Scope::Resources, path)? {
        match key.as_str() {
            "limits" => out.limits = resource_spec(v, &p)?,
            "reservations" => out.reservations = resource_spec(v, &p)?,
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(out)
}

fn resource_spec(value: &Value, path: &KeyPath) -> Result<ResourceSpec, ComposeError> {
    let mut out = ResourceSpec::default();
    for (key, v, p) in fields(value, Scope::ResourceSpec, path)? {
        match key.as_str() {
            "cpus" => out.nano_cpus = Some(nano_cpus(v, &p)?),
            "memory" => out.memory = Some(size(v, &p)?),
            "pids" => out.pids = Some(int(v, &p)?),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(out)
}

fn update_order(value: &Value, path: &KeyPath) -> Result<Option<UpdateOrder>, ComposeError> {
    let mut order = None;
    for (key, v, p) in fields(value, Scope::UpdateConfig, path)? {
        match key.as_str() {
            "order" => {
                order = Some(match string(v, &p)?.as_str() {
                    "stop-first" => UpdateOrder::StopFirst,
                    "start-first" => UpdateOrder::StartFirst,
                    other => {
                        return Err(ComposeError::invalid(
                            &p,
                            format!("unknown order `{other}` (stop-first, start-first)"),
                        ));
                    }
                });
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(order)
}

fn restart_policy(value: &Value, path: &KeyPath) -> Result<DeployRestartPolicy, ComposeError> {
    let mut policy = DeployRestartPolicy {
        condition: RestartCondition::Any,
        delay: None,
        max_attempts: None,
        window: None,
    };
    for (key, v, p) in fields(value, Scope::RestartPolicy, path)? {
        match key.as_str() {
            "condition" => {
                policy.condition = match string(v, &p)?.as_str() {
                    "none" => RestartCondition::None,
                    "on-failure" => RestartCondition::OnFailure,
                    "any" => RestartCondition::Any,
                    other => {
                        return Err(ComposeError::invalid(
                            &p,
                            format!("unknown condition `{other}` (none, on-failure, any)"),
                        ));
                    }
                };
            }
            "delay" => policy.delay = Some(duration(v, &p)?),
            "max_attempts" => policy.max_attempts = Some(uint(v, &p)?),
            "window" => policy.window = Some(duration(v, &p)?),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(policy)
}

/// Parses `restart:` (`no`, `always`, `on-failure[:N]`, `unless-stopped`).
pub fn restart(value: &Value, path: &KeyPath) -> Result<Restart, ComposeError> {
    if *value == Value::Bool(false) {
        return Ok(Restart::No);
    }
    let text = string(value, path)?;
    match text.as_str() {
        "no" => Ok(Restart::No),
        "always" => Ok(Restart::Always),
        "unless-stopped" => Ok(Restart::UnlessStopped),
        "on-failure" => Ok(Restart::OnFailure { max_retries: None }),
        other => match other.strip_prefix("on-failure:").map(str::parse::<u32>) {
            Some(Ok(n)) => Ok(Restart::OnFailure {
                max_retries: Some(n),
            }),
            _ => Err(ComposeError::invalid(
                path,
                format!(
                    "unknown restart policy `{other}` (no, always, on-failure[:N], unless-stopped)"
                ),
            )),
        },
    }
}

/// The restart policy Docker applies: `restart:` if written, else derived
/// from `deploy.restart_policy`, else `no`.
pub fn effective_restart(restart: Option<Restart>, deploy: &Deploy) -> Restart {
    if let Some(restart) = restart {
        return restart;
    }
    match &deploy.restart_policy {
        None => Restart::No,
        Some(p) => match p.condition {
            RestartCondition::None => Restart::No,
            RestartCondition::Any => Restart::Always,
            RestartCondition::OnFailure => Restart::OnFailure {
                max_retries: p.max_attempts,
            },
        },
    }
}

/// Folds a service-level limit (`mem_limit`, `cpus`, `pids_limit`) into the
/// `deploy.resources.limits` field; both set and different is an error.
pub fn fold_limit<T: PartialEq + Copy + std::fmt::Debug>(
    slot: &mut Option<T>,
    service_level: Option<(T, KeyPath)>,
    deploy_key: &str,
) -> Result<(), ComposeError> {
    let Some((value, path)) = service_level else {
        return Ok(());
    };
    match slot {
        Some(existing) if *existing != value => Err(ComposeError::invalid(
            &path,
            format!(
                "conflicts with deploy.resources.limits.{deploy_key} ({existing:?} vs {value:?})"
            ),
        )),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn parse(text: &str) -> Result<Deploy, ComposeError> {
        let v: Value = serde_yaml::from_str(text).expect("yaml");
        deploy(&v, &KeyPath::from_keys(["deploy"]))
    }

    #[test]
    fn full_deploy() {
        let d = parse(
            "mode: replicated\nreplicas: 3\nresources:\n  limits: {cpus: '0.5', memory: 512m, pids: 100}\n  reservations: {cpus: 0.25, memory: 128m}\nupdate_config: {order: start-first}\nrestart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 2m}\n",
        )
        .expect("parses");
        assert_eq!(d.replicas, 3);
        assert_eq!(
            d.resources.limits,
            ResourceSpec {
                nano_cpus: Some(500_000_000),
                memory: Some(512 << 20),
                pids: Some(100)
            }
        );
        assert_eq!(d.resources.reservations.nano_cpus, Some(250_000_000));
        assert_eq!(d.resources.reservations.memory, Some(128 << 20));
        assert_eq!(d.update_order, Some(UpdateOrder::StartFirst));
        let rp = d.restart_policy.clone().expect("policy");
        assert_eq!(rp.condition, RestartCondition::OnFailure);
        assert_eq!(rp.delay, Some(Duration::from_secs(5)));
        assert_eq!(rp.max_attempts, Some(3));
        assert_eq!(rp.window, Some(Duration::from_secs(120)));
        assert_eq!(
            effective_restart(None, &d),
            Restart::OnFailure {
                max_retries: Some(3)
            }
        );
        assert_eq!(
            effective_restart(Some(Restart::Always), &d),
            Restart::Always
        );
        assert_eq!(
            parse("update_config: {order: stop-first}")
                .expect("ok")
                .update_order,
            Some(UpdateOrder::StopFirst)
        );
    }

    #[test]
    fn deploy_errors() {
        assert_eq!(
            parse("mode: global").expect_err("global").code(),
            "compose.unsupported"
        );
        assert!(parse("replicas: 101").is_err());
        assert!(parse("replicas: -1").is_err());
        assert_eq!(
            parse("placement: {}").expect_err("placement").code(),
            "compose.unsupported"
        );
        assert!(parse("update_config: {order: sideways}").is_err());
        assert_eq!(
            parse("update_config: {parallelism: 2}")
                .expect_err("x")
                .code(),
            "compose.unsupported"
        );
        assert!(parse("restart_policy: {condition: sometimes}").is_err());
        assert_eq!(
            parse("resources: {limits: {devices: []}}")
                .expect_err("x")
                .code(),
            "compose.unsupported"
        );
    }

    #[test]
    fn restart_values() {
        let p = KeyPath::root();
        let r = |t: &str| restart(&serde_yaml::from_str(t).expect("yaml"), &p);
        assert_eq!(r("\"no\"").expect("no"), Restart::No);
        assert_eq!(r("no").expect("no"), Restart::No);
        assert_eq!(r("false").expect("false"), Restart::No);
        assert_eq!(r("always").expect("always"), Restart::Always);
        assert_eq!(r("unless-stopped").expect("us"), Restart::UnlessStopped);
        assert_eq!(
            r("on-failure").expect("of"),
            Restart::OnFailure { max_retries: None }
        );
        assert_eq!(
            r("on-failure:5").expect("of5"),
            Restart::OnFailure {
                max_retries: Some(5)
            }
        );
        assert!(r("sometimes").is_err());
        assert!(r("on-failure:x").is_err());
        let d = Deploy::default();
        assert_eq!(effective_restart(None, &d), Restart::No);
    }
}
