//! Service keys that tune what the kernel grants a container — `ulimits`,
//! `security_opt`, `sysctls` (`shm_size` is a plain size) — and the keys
//! accepted and ignored with a warning: `develop`, `platform`,
//! `pull_policy`.
//!
//! The loader checks only their form; the policy (rules `ulimits`,
//! `security-opt`, `sysctls`) decides which values a stack may use.

use super::value::{entries, expected, fields, int, key_values, non_empty, string_list};
use crate::compose::error::{ComposeError, Warning};
use crate::compose::keys::Scope;
use crate::compose::model::Ulimit;
use crate::compose::path::KeyPath;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// The resource names Docker accepts in `ulimits`.
pub const ULIMIT_NAMES: &[&str] = &[
    "core",
    "cpu",
    "data",
    "fsize",
    "locks",
    "memlock",
    "msgqueue",
    "nice",
    "nofile",
    "nproc",
    "rss",
    "rtprio",
    "rttime",
    "sigpending",
    "stack",
];

/// `ulimits:`: `name: N` (soft and hard) or `name: {soft: N, hard: M}`;
/// `-1` is unlimited.
pub fn ulimits(value: &Value, path: &KeyPath) -> Result<BTreeMap<String, Ulimit>, ComposeError> {
    let mut out = BTreeMap::new();
    if value.is_null() {
        return Ok(out);
    }
    for (name, v, p) in entries(value, path)? {
        if !ULIMIT_NAMES.contains(&name.as_str()) {
            return Err(ComposeError::invalid(
                &p,
                format!("unknown ulimit `{name}` ({})", ULIMIT_NAMES.join(", ")),
            ));
        }
        let limit = match v {
            Value::Mapping(_) => {
                let (mut soft, mut hard) = (None, None);
                for (key, fv, fp) in fields(v, Scope::Ulimit, &p)? {
                    match key.as_str() {
                        "soft" => soft = Some(limit_value(fv, &fp)?),
                        "hard" => hard = Some(limit_value(fv, &fp)?),
                        _ => return Err(ComposeError::unsupported_key(fp, None)),
                    }
                }
                match (soft, hard) {
                    (Some(soft), Some(hard)) => Ulimit { soft, hard },
                    _ => {
                        return Err(ComposeError::invalid(
                            &p,
                            "needs both `soft` and `hard` (or a single number for both)",
                        ));
                    }
                }
            }
            Value::Number(_) | Value::String(_) => {
                let n = limit_value(v, &p)?;
                Ulimit { soft: n, hard: n }
            }
            _ => return Err(expected("a number or a mapping", v, &p)),
        };
        let unlimited = |n: i64| n == -1;
        if !unlimited(limit.hard) && (unlimited(limit.soft) || limit.soft > limit.hard) {
            return Err(ComposeError::invalid(
                &p,
                format!(
                    "the soft limit ({}) is above the hard limit ({})",
                    limit.soft, limit.hard
                ),
            ));
        }
        out.insert(name, limit);
    }
    Ok(out)
}

/// A limit: a non-negative integer, or `-1` for unlimited.
fn limit_value(value: &Value, path: &KeyPath) -> Result<i64, ComposeError> {
    let n = int(value, path)?;
    if n < -1 {
        return Err(ComposeError::invalid(
            path,
            format!("expected a limit (a non-negative integer, or -1 for unlimited), found {n}"),
        ));
    }
    Ok(n)
}

/// `security_opt:`: a list of options, as written (trimmed).
pub fn security_opt(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    if value.is_null() {
        return Ok(Vec::new());
    }
    string_list(value, path)?
        .into_iter()
        .enumerate()
        .map(|(i, opt)| {
            let opt = opt.trim();
            if opt.is_empty() {
                return Err(ComposeError::invalid(&path.index(i), "must not be empty"));
            }
            Ok(opt.to_owned())
        })
        .collect()
}

/// `sysctls:`: a `KEY: value` map or a `KEY=VALUE` list. Names are dotted
/// (`net.core.somaxconn`) or slashed (`net/ipv4/ip_forward`); every
/// component is made of letters, digits, `_` and `-`.
pub fn sysctls(value: &Value, path: &KeyPath) -> Result<BTreeMap<String, String>, ComposeError> {
    let mut out = BTreeMap::new();
    for (key, val, p) in key_values(value, path, '=')? {
        let valid = key.split(['.', '/']).all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        });
        if !valid {
            return Err(ComposeError::invalid(
                &p,
                format!("`{key}` is not a sysctl name (like `net.core.somaxconn`)"),
            ));
        }
        let Some(val) = val else {
            return Err(ComposeError::invalid(
                &p,
                format!("sysctl `{key}` needs a value"),
            ));
        };
        if out.insert(key.clone(), val).is_some() {
            return Err(ComposeError::invalid(&p, format!("`{key}` is set twice")));
        }
    }
    Ok(out)
}

/// Compose's `pull_policy` values (`every_<duration>` aside).
const PULL_POLICIES: &[&str] = &[
    "always",
    "missing",
    "never",
    "build",
    "if_not_present",
    "daily",
    "weekly",
];

/// `develop`, `platform` and `pull_policy`: checked for form, then ignored
/// with a warning.
pub fn ignored(
    key: &str,
    value: &Value,
    path: &KeyPath,
    warnings: &mut Vec<Warning>,
) -> Result<(), ComposeError> {
    let message = match key {
        "develop" => {
            if !matches!(value, Value::Mapping(_) | Value::Null) {
                return Err(expected("a mapping", value, path));
            }
            "`develop` is for local development (`docker compose watch`) and is ignored".to_owned()
        }
        "platform" => {
            // Ignored, so an empty one (an unset variable) is fine too.
            let platform = super::value::opt_string(value, path)?.unwrap_or_default();
            format!(
                "`platform: {platform}` is ignored: HostKit runs the image it loaded (by id), as built"
            )
        }
        "pull_policy" => {
            let policy = non_empty(value, path)?;
            let known = PULL_POLICIES.contains(&policy.as_str())
                || policy
                    .strip_prefix("every_")
                    .is_some_and(|d| crate::compose::duration::parse_duration(d).is_ok());
            if !known {
                return Err(ComposeError::invalid(
                    path,
                    format!(
                        "unknown pull_policy `{policy}` ({}, every_<duration>)",
                        PULL_POLICIES.join(", ")
                    ),
                ));
            }
            format!(
                "`pull_policy: {policy}` is ignored: HostKit runs the images the job ships and pulls only when the job allows it"
            )
        }
        _ => return Err(ComposeError::unsupported_key(path.clone(), None)),
    };
    warnings.push(Warning {
        path: path.to_string(),
        message,
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn ulimit_forms() {
        let p = KeyPath::from_keys(["services", "web", "ulimits"]);
        let got = ulimits(
            &v("{nofile: {soft: 1024, hard: 4096}, nproc: 512, memlock: '-1'}"),
            &p,
        )
        .expect("loads");
        assert_eq!(
            got["nofile"],
            Ulimit {
                soft: 1024,
                hard: 4096
            }
        );
        assert_eq!(
            got["nproc"],
            Ulimit {
                soft: 512,
                hard: 512
            }
        );
        assert_eq!(got["memlock"], Ulimit { soft: -1, hard: -1 });
        let soft_unlimited = ulimits(&v("{core: {soft: 0, hard: -1}}"), &p).expect("loads");
        assert_eq!(soft_unlimited["core"], Ulimit { soft: 0, hard: -1 });
        for bad in [
            "{nofile: {soft: 10, hard: 5}}",
            "{nofile: {soft: -1, hard: 5}}",
            "{nofile: {soft: 10}}",
            "{nofile: -2}",
            "{nofile: [1]}",
            "{files: 10}",
            "[nofile]",
        ] {
            assert!(ulimits(&v(bad), &p).is_err(), "{bad}");
        }
    }

    #[test]
    fn sysctl_names() {
        let p = KeyPath::from_keys(["services", "web", "sysctls"]);
        let got =
            sysctls(&v("[net.core.somaxconn=1024, 'net/ipv4/ip_forward=1']"), &p).expect("loads");
        assert_eq!(got["net.core.somaxconn"], "1024");
        assert_eq!(got["net/ipv4/ip_forward"], "1");
        for bad in [
            "[net..x=1]",
            "['net/../kernel/x=1']",
            "[net.core.somaxconn]",
            "{'net core': 1}",
            "{net.x: null}",
            "[a=1, a=2]",
        ] {
            assert!(sysctls(&v(bad), &p).is_err(), "{bad}");
        }
    }
}
