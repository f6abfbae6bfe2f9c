//! Service `volumes:` (short `src:dst[:mode]` and long form) and `tmpfs:`.

use super::value::{boolean, expected, fields, items, non_empty, opt_string, size, string};
use crate::compose::error::ComposeError;
use crate::compose::keys::Scope;
use crate::compose::model::{Mount, MountSource};
use crate::compose::path::KeyPath;
use serde_yaml::Value;

/// Parses a service's `volumes:` list.
pub fn mounts(value: &Value, path: &KeyPath) -> Result<Vec<Mount>, ComposeError> {
    items(value, path)?
        .into_iter()
        .map(|(item, p)| match item {
            Value::String(s) => short(s, &p),
            Value::Mapping(_) => long(item, &p),
            _ => Err(expected("a volume string or mapping", item, &p)),
        })
        .collect()
}

/// True when a short-syntax source is a host path rather than a volume name.
fn is_host_path(source: &str) -> bool {
    source.starts_with('/') || source.starts_with('.') || source.starts_with('~')
}

fn check_target(target: &str, path: &KeyPath) -> Result<(), ComposeError> {
    if !target.starts_with('/') {
        return Err(ComposeError::invalid(
            path,
            format!("the container path `{target}` must be absolute"),
        ));
    }
    Ok(())
}

/// Checks a volume key / name (`[a-zA-Z0-9][a-zA-Z0-9_.-]*`).
pub fn check_name(name: &str, what: &str, path: &KeyPath) -> Result<(), ComposeError> {
    let mut bytes = name.bytes();
    let ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !ok {
        return Err(ComposeError::invalid(
            path,
            format!("invalid {what} name `{name}` (letters, digits, `_`, `.`, `-`)"),
        ));
    }
    Ok(())
}

fn short(spec: &str, path: &KeyPath) -> Result<Mount, ComposeError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, modes) = match parts.as_slice() {
        [target] => (None, *target, None),
        [source, target] => (Some(*source), *target, None),
        [source, target, modes] => (Some(*source), *target, Some(*modes)),
        _ => {
            return Err(ComposeError::invalid(
                path,
                format!("invalid volume `{spec}`"),
            ));
        }
    };
    check_target(target, path)?;
    let mut read_only = false;
    let mut nocopy = false;
    let mut selinux = None;
    let mut propagation = None;
    for mode in modes.into_iter().flat_map(|m| m.split(',')) {
        match mode {
            "ro" => read_only = true,
            "rw" => read_only = false,
            "nocopy" => nocopy = true,
            "z" | "Z" => selinux = Some(mode.to_owned()),
            "shared" | "rshared" | "slave" | "rslave" | "private" | "rprivate" => {
                propagation = Some(mode.to_owned());
            }
            "cached" | "delegated" | "consistent" => {}
            other => {
                return Err(ComposeError::invalid(
                    path,
                    format!("unknown volume option `{other}`"),
                ));
            }
        }
    }
    let source = match source {
        Some(src) if is_host_path(src) => {
            if nocopy {
                return Err(ComposeError::invalid(
                    path,
                    "`nocopy` applies to volumes, not bind mounts",
                ));
            }
            MountSource::Bind {
                path: src.to_owned(),
                create_host_path: true,
                propagation,
                selinux,
            }
        }
        name => {
            if selinux.is_some() || propagation.is_some() {
                return Err(ComposeError::invalid(
                    path,
                    "SELinux and propagation options apply to bind mounts",
                ));
            }
            if let Some(name) = name {
                check_name(name, "volume", path)?;
            }
            MountSource::Volume {
                name: name.map(str::to_owned),
                nocopy,
                subpath: None,
            }
        }
    };
    Ok(Mount {
        target: target.to_owned(),
        read_only,
        source,
    })
}

#[derive(Default)]
struct LongOptions {
    create_host_path: Option<bool>,
    propagation: Option<String>,
    selinux: Option<String>,
    nocopy: Option<bool>,
    subpath: Option<String>,
    size: Option<u64>,
    mode: Option<u32>,
}

fn long(value: &Value, path: &KeyPath) -> Result<Mount, ComposeError> {
    let mut kind = None;
    let mut source = None;
    let mut target = None;
    let mut read_only = false;
    let mut options = LongOptions::default();
    let mut option_keys: Vec<(&'static str, KeyPath)> = Vec::new();
    for (key, v, p) in fields(value, Scope::Mount, path)? {
        match key.as_str() {
            "type" => kind = Some((string(v, &p)?, p)),
            "source" => source = opt_string(v, &p)?,
            "target" => target = Some(non_empty(v, &p)?),
            "read_only" => read_only = boolean(v, &p)?,
            "bind" => {
                bind_options(v, &p, &mut options)?;
                option_keys.push(("bind", p));
            }
            "volume" => {
                volume_options(v, &p, &mut options)?;
                option_keys.push(("volume", p));
            }
            "tmpfs" => {
                tmpfs_options(v, &p, &mut options)?;
                option_keys.push(("tmpfs", p));
            }
            "image" => {
                image_options(v, &p, &mut options)?;
                option_keys.push(("image", p));
            }
            "consistency" => {
                string(v, &p)?;
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    let (kind, kind_path) =
        kind.ok_or_else(|| ComposeError::invalid(path, "a volume needs `type`"))?;
    let target = target.ok_or_else(|| ComposeError::invalid(path, "a volume needs `target`"))?;
    check_target(&target, &path.key("target"))?;
    if let Some((_, p)) = option_keys.iter().find(|(k, _)| *k != kind) {
        return Err(ComposeError::invalid(
            p,
            format!("these options do not apply to a `{kind}` mount"),
        ));
    }
    let source = match kind.as_str() {
        "bind" => {
            let path_text = source
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ComposeError::invalid(path, "a bind mount needs `source`"))?;
            MountSource::Bind {
                path: path_text,
                create_host_path: options.create_host_path.unwrap_or(true),
                propagation: options.propagation,
                selinux: options.selinux,
            }
        }
        "volume" => {
            let name = source.filter(|s| !s.is_empty());
            if let Some(name) = &name {
                check_name(name, "volume", &path.key("source"))?;
            }
            MountSource::Volume {
                name,
                nocopy: options.nocopy.unwrap_or(false),
                subpath: options.subpath,
            }
        }
        "tmpfs" => {
            if source.is_some_and(|s| !s.is_empty()) {
                return Err(ComposeError::invalid(path, "a tmpfs mount has no `source`"));
            }
            MountSource::Tmpfs {
                size: options.size,
                mode: options.mode,
            }
        }
        "image" => {
            let reference = source
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ComposeError::invalid(path, "an image mount needs `source`"))?;
            // The engine mounts an image read-only whatever the file says.
            return Ok(Mount {
                target,
                read_only: true,
                source: MountSource::Image {
                    reference,
                    subpath: options.subpath,
                },
            });
        }
        "npipe" | "cluster" => {
            return Err(ComposeError::unsupported_value(
                &kind_path,
                format!("mount type `{kind}` is not supported"),
            ));
        }
        other => {
            return Err(ComposeError::invalid(
                &kind_path,
                format!("unknown mount type `{other}` (volume, bind, tmpfs, image)"),
            ));
        }
    };
    Ok(Mount {
        target,
        read_only,
        source,
    })
}

fn bind_options(
    value: &Value,
    path: &KeyPath,
    options: &mut LongOptions,
) -> Result<(), ComposeError> {
    for (key, v, p) in fields(value, Scope::MountBind, path)? {
        match key.as_str() {
            "propagation" => options.propagation = Some(non_empty(v, &p)?),
            "create_host_path" => options.create_host_path = Some(boolean(v, &p)?),
            "selinux" => {
                let s = string(v, &p)?;
                if s != "z" && s != "Z" {
                    return Err(ComposeError::invalid(&p, "expected `z` or `Z`"));
                }
                options.selinux = Some(s);
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(())
}

fn volume_options(
    value: &Value,
    path: &KeyPath,
    options: &mut LongOptions,
) -> Result<(), ComposeError> {
    for (key, v, p) in fields(value, Scope::MountVolume, path)? {
        match key.as_str() {
            "nocopy" => options.nocopy = Some(boolean(v, &p)?),
            "subpath" => options.subpath = Some(non_empty(v, &p)?),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(())
}

fn image_options(
    value: &Value,
    path: &KeyPath,
    options: &mut LongOptions,
) -> Result<(), ComposeError> {
    for (key, v, p) in fields(value, Scope::MountImage, path)? {
        match key.as_str() {
            "subpath" => options.subpath = Some(non_empty(v, &p)?),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(())
}

fn tmpfs_options(
    value: &Value,
    path: &KeyPath,
    options: &mut LongOptions,
) -> Result<(), ComposeError> {
    for (key, v, p) in fields(value, Scope::MountTmpfs, path)? {
        match key.as_str() {
            "size" => options.size = Some(size(v, &p)?),
            "mode" => options.mode = Some(octal(v, &p)?),
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    Ok(())
}

/// A file mode written in octal digits (`1777`, `"0o755"`, `"0644"`).
pub fn octal(value: &Value, path: &KeyPath) -> Result<u32, ComposeError> {
    let text = string(value, path)?;
    let digits = text.trim().trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| ComposeError::invalid(path, format!("invalid file mode `{text}` (octal)")))
}

/// Parses `tmpfs:` (a path or a list of `path[:options]`).
pub fn tmpfs(value: &Value, path: &KeyPath) -> Result<Vec<String>, ComposeError> {
    let list = super::value::string_or_list(value, path)?;
    for (i, entry) in list.iter().enumerate() {
        let target = entry.split(':').next().unwrap_or_default();
        let p = if matches!(value, Value::Sequence(_)) {
            path.index(i)
        } else {
            path.clone()
        };
        check_target(target, &p)?;
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Mount>, ComposeError> {
        let v: Value = serde_yaml::from_str(text).expect("yaml");
        mounts(&v, &KeyPath::from_keys(["volumes"]))
    }

    fn volume(name: Option<&str>, nocopy: bool) -> MountSource {
        MountSource::Volume {
            name: name.map(str::to_owned),
            nocopy,
            subpath: None,
        }
    }

    fn bind(path: &str) -> MountSource {
        MountSource::Bind {
            path: path.into(),
            create_host_path: true,
            propagation: None,
            selinux: None,
        }
    }

    #[test]
    fn short_forms() {
        let got = parse(
            "[\"db:/var/lib/db:ro\", \"./rel:/app\", \"/abs:/data:rw\", \"/anon\", \"~/home:/h\", \"v:/n:nocopy\", \"../up:/u:z,rshared\"]",
        )
        .expect("mounts");
        assert_eq!(
            got[0],
            Mount {
                target: "/var/lib/db".into(),
                read_only: true,
                source: volume(Some("db"), false)
            }
        );
        assert_eq!(
            got[1],
            Mount {
                target: "/app".into(),
                read_only: false,
                source: bind("./rel")
            }
        );
        assert_eq!(
            got[2],
            Mount {
                target: "/data".into(),
                read_only: false,
                source: bind("/abs")
            }
        );
        assert_eq!(
            got[3],
            Mount {
                target: "/anon".into(),
                read_only: false,
                source: volume(None, false)
            }
        );
        assert_eq!(got[4].source, bind("~/home"));
        assert_eq!(got[5].source, volume(Some("v"), true));
        assert_eq!(
            got[6].source,
            MountSource::Bind {
                path: "../up".into(),
                create_host_path: true,
                propagation: Some("rshared".into()),
                selinux: Some("z".into()),
            }
        );
    }

    #[test]
    fn long_forms() {
        let got = parse(
            "- {type: volume, source: db, target: /data, read_only: true, volume: {nocopy: true, subpath: sub}}\n\
             - {type: bind, source: ./conf, target: /etc/conf, bind: {create_host_path: false, propagation: rprivate, selinux: Z}}\n\
             - {type: tmpfs, target: /tmp, tmpfs: {size: 64m, mode: 1777}}\n\
             - {type: volume, target: /anon}\n",
        )
        .expect("mounts");
        assert_eq!(
            got[0],
            Mount {
                target: "/data".into(),
                read_only: true,
                source: MountSource::Volume {
                    name: Some("db".into()),
                    nocopy: true,
                    subpath: Some("sub".into())
                },
            }
        );
        assert_eq!(
            got[1].source,
            MountSource::Bind {
                path: "./conf".into(),
                create_host_path: false,
                propagation: Some("rprivate".into()),
                selinux: Some("Z".into()),
            }
        );
        assert_eq!(
            got[2].source,
            MountSource::Tmpfs {
                size: Some(64 * 1024 * 1024),
                mode: Some(0o1777)
            }
        );
        assert_eq!(got[3].source, volume(None, false));
    }

    #[test]
    fn image_mounts() {
        let got = parse(
            "- {type: image, source: 'nginx:alpine', target: /mnt, image: {subpath: usr/share}}\n\
             - {type: image, source: app, target: /app, read_only: false}\n",
        )
        .expect("mounts");
        assert_eq!(
            got[0],
            Mount {
                target: "/mnt".into(),
                read_only: true,
                source: MountSource::Image {
                    reference: "nginx:alpine".into(),
                    subpath: Some("usr/share".into())
                },
            }
        );
        assert!(got[1].read_only, "an image is always mounted read-only");
        assert!(parse("- {type: image, target: /x}").is_err());
        assert!(parse("- {type: image, source: x, target: /x, volume: {nocopy: true}}").is_err());
        assert!(parse("- {type: volume, source: x, target: /x, image: {subpath: a}}").is_err());
    }

    #[test]
    fn invalid_mounts() {
        for bad in [
            "[\"db:relative\"]",
            "[\"a:/b:c:d\"]",
            "[\"db:/x:bogus\"]",
            "[\"./x:/y:nocopy\"]",
            "[\"bad name!:/x\"]",
            "- {type: bind, target: /x}",
            "- {type: volume, source: db}",
            "- {source: db, target: /x}",
            "- {type: volume, source: db, target: /x, bind: {propagation: shared}}",
            "- {type: weird, target: /x}",
            "- {type: tmpfs, source: x, target: /x}",
            "- {type: tmpfs, target: /x, tmpfs: {mode: 999}}",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let e = parse("- {type: npipe, source: x, target: /x}").expect_err("npipe");
        assert_eq!(e.code(), "compose.unsupported");
    }

    #[test]
    fn tmpfs_entries() {
        let p = KeyPath::root();
        let v: Value = serde_yaml::from_str("/run").expect("yaml");
        assert_eq!(tmpfs(&v, &p).expect("one"), ["/run"]);
        let v: Value = serde_yaml::from_str("[/run, \"/tmp:size=64m\"]").expect("yaml");
        assert_eq!(tmpfs(&v, &p).expect("list"), ["/run", "/tmp:size=64m"]);
        let v: Value = serde_yaml::from_str("[tmp]").expect("yaml");
        assert!(tmpfs(&v, &p).is_err());
    }
}
