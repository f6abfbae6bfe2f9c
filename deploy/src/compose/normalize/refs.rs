//! Service keys that refer to other objects or hold small records:
//! `depends_on`, `networks`, `secrets`/`configs`, `env_file`, `extra_hosts`,
//! `logging`.

use super::value::{
    boolean, entries, expected, fields, items, non_empty, opt_string, string, string_map,
};
use crate::compose::error::ComposeError;
use crate::compose::keys::Scope;
use crate::compose::model::{
    Condition, Dependency, EnvFile, ExtraHost, FileRef, Logging, ServiceNetwork,
};
use crate::compose::path::KeyPath;
use serde_yaml::Value;
use std::collections::BTreeMap;

/// A dependency with its `required` flag and where it was written.
pub type DependsOn = BTreeMap<String, (Dependency, KeyPath)>;

/// Parses `depends_on:` (list or map).
pub fn depends_on(value: &Value, path: &KeyPath) -> Result<DependsOn, ComposeError> {
    let mut out = DependsOn::new();
    let started = Dependency {
        condition: Condition::ServiceStarted,
        restart: false,
        required: true,
    };
    match value {
        Value::Sequence(_) => {
            for (v, p) in items(value, path)? {
                let name = non_empty(v, &p)?;
                if out
                    .insert(name.clone(), (started.clone(), p.clone()))
                    .is_some()
                {
                    return Err(ComposeError::invalid(
                        &p,
                        format!("`{name}` is listed twice"),
                    ));
                }
            }
        }
        Value::Mapping(_) => {
            for (name, v, p) in entries(value, path)? {
                let mut dep = started.clone();
                if !v.is_null() {
                    for (key, fv, fp) in fields(v, Scope::DependsOn, &p)? {
                        match key.as_str() {
                            "condition" => dep.condition = condition(fv, &fp)?,
                            "restart" => dep.restart = boolean(fv, &fp)?,
                            "required" => dep.required = boolean(fv, &fp)?,
                            _ => return Err(ComposeError::unsupported_key(fp, None)),
                        }
                    }
                }
                out.insert(name, (dep, p));
            }
        }
        _ => return Err(expected("a list or a mapping", value, path)),
    }
    Ok(out)
}

fn condition(value: &Value, path: &KeyPath) -> Result<Condition, ComposeError> {
    match string(value, path)?.as_str() {
        "service_started" => Ok(Condition::ServiceStarted),
        "service_healthy" => Ok(Condition::ServiceHealthy),
        "service_completed_successfully" => Ok(Condition::ServiceCompletedSuccessfully),
        other => Err(ComposeError::invalid(
            path,
            format!(
                "unknown condition `{other}` (service_started, service_healthy, service_completed_successfully)"
            ),
        )),
    }
}

/// Parses a service's `networks:` (list or map with `aliases`), with the
/// path of each entry.
pub fn networks(
    value: &Value,
    path: &KeyPath,
) -> Result<Vec<(String, ServiceNetwork, KeyPath)>, ComposeError> {
    match value {
        Value::Sequence(_) => items(value, path)?
            .into_iter()
            .map(|(v, p)| Ok((non_empty(v, &p)?, ServiceNetwork::default(), p)))
            .collect(),
        Value::Mapping(_) => entries(value, path)?
            .into_iter()
            .map(|(name, v, p)| {
                let mut net = ServiceNetwork::default();
                if !v.is_null() {
                    for (key, fv, fp) in fields(v, Scope::ServiceNetwork, &p)? {
                        match key.as_str() {
                            "aliases" => net.aliases = super::value::string_list(fv, &fp)?,
                            // Accepted; the engine names interfaces itself.
                            "interface_name" => {
                                non_empty(fv, &fp)?;
                            }
                            _ => return Err(ComposeError::unsupported_key(fp, None)),
                        }
                    }
                }
                Ok((name, net, p))
            })
            .collect(),
        _ => Err(expected("a list or a mapping", value, path)),
    }
}

/// Parses a service's `secrets:` or `configs:` list, with each entry's path.
pub fn file_refs(value: &Value, path: &KeyPath) -> Result<Vec<(FileRef, KeyPath)>, ComposeError> {
    items(value, path)?
        .into_iter()
        .map(|(v, p)| {
            let mut r = FileRef {
                source: String::new(),
                target: None,
                uid: None,
                gid: None,
                mode: None,
            };
            match v {
                Value::Mapping(_) => {
                    for (key, fv, fp) in fields(v, Scope::FileRef, &p)? {
                        match key.as_str() {
                            "source" => r.source = non_empty(fv, &fp)?,
                            "target" => r.target = opt_string(fv, &fp)?,
                            "uid" => r.uid = opt_string(fv, &fp)?,
                            "gid" => r.gid = opt_string(fv, &fp)?,
                            "mode" => r.mode = Some(super::mounts::octal(fv, &fp)?),
                            _ => return Err(ComposeError::unsupported_key(fp, None)),
                        }
                    }
                    if r.source.is_empty() {
                        return Err(ComposeError::invalid(&p, "needs `source`"));
                    }
                }
                _ => r.source = non_empty(v, &p)?,
            }
            Ok((r, p))
        })
        .collect()
}

/// Parses `env_file:` (a path, or a list of paths or `{path, required}`).
pub fn env_files(value: &Value, path: &KeyPath) -> Result<Vec<EnvFile>, ComposeError> {
    let one = |v: &Value, p: &KeyPath| -> Result<EnvFile, ComposeError> {
        if !matches!(v, Value::Mapping(_)) {
            return Ok(EnvFile {
                path: non_empty(v, p)?,
                required: true,
                raw: false,
            });
        }
        let mut file = EnvFile {
            path: String::new(),
            required: true,
            raw: false,
        };
        for (key, fv, fp) in fields(v, Scope::EnvFile, p)? {
            match key.as_str() {
                "path" => file.path = non_empty(fv, &fp)?,
                "required" => file.required = boolean(fv, &fp)?,
                "format" => match non_empty(fv, &fp)?.as_str() {
                    "raw" => file.raw = true,
                    "dotenv" => file.raw = false,
                    other => {
                        return Err(ComposeError::invalid(
                            &fp,
                            format!("unknown format `{other}` (`dotenv` or `raw`)"),
                        ));
                    }
                },
                _ => return Err(ComposeError::unsupported_key(fp, None)),
            }
        }
        if file.path.is_empty() {
            return Err(ComposeError::invalid(p, "needs `path`"));
        }
        Ok(file)
    };
    match value {
        Value::Sequence(_) => items(value, path)?
            .into_iter()
            .map(|(v, p)| one(v, &p))
            .collect(),
        _ => Ok(vec![one(value, path)?]),
    }
}

/// Parses `extra_hosts:` (list `host:ip` / `host=ip`, or map).
pub fn extra_hosts(value: &Value, path: &KeyPath) -> Result<Vec<ExtraHost>, ComposeError> {
    let pairs: Vec<(String, String, KeyPath)> = match value {
        Value::Sequence(_) => items(value, path)?
            .into_iter()
            .map(|(v, p)| {
                let text = string(v, &p)?;
                let split = if text.contains('=') {
                    text.split_once('=')
                } else {
                    text.split_once(':')
                };
                let (host, ip) = split.ok_or_else(|| {
                    ComposeError::invalid(&p, format!("expected `host:ip`, found `{text}`"))
                })?;
                Ok((host.trim().to_owned(), ip.trim().to_owned(), p))
            })
            .collect::<Result<_, ComposeError>>()?,
        Value::Mapping(_) => entries(value, path)?
            .into_iter()
            .map(|(host, v, p)| Ok((host, string(v, &p)?, p)))
            .collect::<Result<_, ComposeError>>()?,
        _ => return Err(expected("a list or a mapping", value, path)),
    };
    pairs
        .into_iter()
        .map(|(host, ip, p)| {
            let ip = ip.trim_start_matches('[').trim_end_matches(']').to_owned();
            if host.is_empty() || ip.is_empty() {
                return Err(ComposeError::invalid(&p, "expected `host:ip`"));
            }
            if ip != "host-gateway" && ip.parse::<std::net::IpAddr>().is_err() {
                return Err(ComposeError::invalid(
                    &p,
                    format!("invalid IP address `{ip}`"),
                ));
            }
            Ok(ExtraHost { host, ip })
        })
        .collect()
}

/// Parses `logging:`.
pub fn logging(value: &Value, path: &KeyPath) -> Result<Logging, ComposeError> {
    let mut out = Logging::default();
    for (key, v, p) in fields(value, Scope::Logging, path)? {
        match key.as_str() {
            "driver" => out.driver = opt_string(v, &p)?,
            "options" => out.options = string_map(v, &p)?,
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        serde_yaml::from_str(text).expect("yaml")
    }

    #[test]
    fn depends_on_forms() {
        let p = KeyPath::from_keys(["depends_on"]);
        let list = depends_on(&v("[db, cache]"), &p).expect("list");
        assert_eq!(
            list["db"].0,
            Dependency {
                condition: Condition::ServiceStarted,
                restart: false,
                required: true
            }
        );
        assert_eq!(list["cache"].1.to_string(), "depends_on[1]");
        let map = depends_on(
            &v("db: {condition: service_healthy, restart: true}\nmig: {condition: service_completed_successfully, required: false}\nc:\n"),
            &p,
        )
        .expect("map");
        assert_eq!(
            map["db"].0,
            Dependency {
                condition: Condition::ServiceHealthy,
                restart: true,
                required: true
            }
        );
        assert_eq!(
            map["mig"].0,
            Dependency {
                condition: Condition::ServiceCompletedSuccessfully,
                restart: false,
                required: false
            }
        );
        assert_eq!(map["c"].0.condition, Condition::ServiceStarted);
        assert!(depends_on(&v("[db, db]"), &p).is_err());
        assert!(depends_on(&v("{db: {condition: service_ready}}"), &p).is_err());
        assert_eq!(
            depends_on(&v("{db: {timeout: 1}}"), &p)
                .expect_err("x")
                .code(),
            "compose.unsupported"
        );
    }

    #[test]
    fn network_forms() {
        let p = KeyPath::from_keys(["networks"]);
        let list = networks(&v("[front, back]"), &p).expect("list");
        assert_eq!(list[0].0, "front");
        let map = networks(&v("{front: {aliases: [web, www]}, back: null}"), &p).expect("map");
        assert_eq!(map[0].1.aliases, ["web", "www"]);
        assert!(map[1].1.aliases.is_empty());
        assert_eq!(
            networks(&v("{front: {ipv4_address: 1.2.3.4}}"), &p)
                .expect_err("x")
                .code(),
            "compose.unsupported"
        );
    }

    #[test]
    fn file_ref_forms() {
        let p = KeyPath::from_keys(["secrets"]);
        let refs = file_refs(
            &v("[db_pw, {source: api_key, target: /run/key, uid: '103', gid: '103', mode: 0440}]"),
            &p,
        )
        .expect("refs");
        assert_eq!(refs[0].0.source, "db_pw");
        assert_eq!(refs[0].0.target, None);
        assert_eq!(refs[1].0.target.as_deref(), Some("/run/key"));
        assert_eq!(refs[1].0.uid.as_deref(), Some("103"));
        assert_eq!(refs[1].0.mode, Some(0o440));
        assert!(file_refs(&v("[{target: x}]"), &p).is_err());
    }

    #[test]
    fn env_file_forms() {
        let p = KeyPath::from_keys(["env_file"]);
        assert_eq!(
            env_files(&v(".env"), &p).expect("one"),
            [EnvFile {
                path: ".env".into(),
                required: true,
                raw: false
            }]
        );
        let list = env_files(&v("[a.env, {path: b.env, required: false}]"), &p).expect("list");
        assert_eq!(
            list[1],
            EnvFile {
                path: "b.env".into(),
                required: false,
                raw: false
            }
        );
        assert!(env_files(&v("[{required: false}]"), &p).is_err());
    }

    #[test]
    fn extra_host_forms() {
        let p = KeyPath::from_keys(["extra_hosts"]);
        let list = extra_hosts(
            &v("[\"db:10.0.0.2\", \"gw=host-gateway\", \"v6:::1\", \"b6=[::2]\"]"),
            &p,
        )
        .expect("list");
        assert_eq!(
            list[0],
            ExtraHost {
                host: "db".into(),
                ip: "10.0.0.2".into()
            }
        );
        assert_eq!(
            list[1],
            ExtraHost {
                host: "gw".into(),
                ip: "host-gateway".into()
            }
        );
        assert_eq!(
            list[2],
            ExtraHost {
                host: "v6".into(),
                ip: "::1".into()
            }
        );
        assert_eq!(
            list[3],
            ExtraHost {
                host: "b6".into(),
                ip: "::2".into()
            }
        );
        let map = extra_hosts(&v("{db: 10.0.0.2}"), &p).expect("map");
        assert_eq!(
            map[0],
            ExtraHost {
                host: "db".into(),
                ip: "10.0.0.2".into()
            }
        );
        assert!(extra_hosts(&v("[db]"), &p).is_err());
        assert!(extra_hosts(&v("[\"db:notanip\"]"), &p).is_err());
    }

    #[test]
    fn logging_form() {
        let p = KeyPath::from_keys(["logging"]);
        let l = logging(
            &v("{driver: json-file, options: {max-size: 10m, max-file: 3}}"),
            &p,
        )
        .expect("logging");
        assert_eq!(l.driver.as_deref(), Some("json-file"));
        assert_eq!(l.options["max-file"], "3");
    }
}
