//! The bind sources of a stack — its bind mounts, and the files of its
//! `file:` secrets and configs (mounted read-only) — and the rules that need all of
//! them at once: HostKit's own files are never bindable, and no source lies
//! inside another source that a container mounts writable (that container
//! could plant a symbolic link that Docker follows when it mounts the inner
//! one, at this start or any later restart).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{Rule, Violation};
use crate::compose::{MountSource, Project, resolve_host_path};

/// One host path a container of the stack mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindSource {
    /// The service that mounts it.
    pub service: String,
    /// The key path (`services.web.volumes[0]`, `services.web.secrets[1]`).
    pub key: String,
    /// The source as written.
    pub written: String,
    /// The source resolved lexically against the domain directory (`None`
    /// for `~` paths).
    pub path: Option<PathBuf>,
    /// Whether the container may write there.
    pub writable: bool,
}

/// Every bind source of `project`, with relative paths resolved against
/// `domain_dir` (absolute).
pub fn bind_sources(project: &Project, domain_dir: &Path) -> Vec<BindSource> {
    let mut out = Vec::new();
    for (name, service) in &project.services {
        for (i, mount) in service.volumes.iter().enumerate() {
            let written = match &mount.source {
                MountSource::Bind { path, .. } => Some(path.as_str()),
                // A named volume that binds a host directory.
                MountSource::Volume {
                    name: Some(volume), ..
                } => project.volumes.get(volume).and_then(|v| v.bind_device()),
                _ => None,
            };
            if let Some(written) = written {
                out.push(BindSource {
                    service: name.clone(),
                    key: format!("services.{name}.volumes[{i}]"),
                    written: written.to_owned(),
                    path: resolve_host_path(written, domain_dir),
                    writable: !mount.read_only,
                });
            }
        }
        for (kind, refs, objects) in [
            ("secrets", &service.secrets, &project.secrets),
            ("configs", &service.configs, &project.configs),
        ] {
            for (i, r) in refs.iter().enumerate() {
                // Only `file:` sources are the stack's; HostKit writes the
                // others itself under `.hostkit/`.
                if let Some(file) = objects.get(&r.source).and_then(|o| o.file()) {
                    out.push(BindSource {
                        service: name.clone(),
                        key: format!("services.{name}.{kind}[{i}]"),
                        written: file.to_owned(),
                        path: resolve_host_path(file, domain_dir),
                        writable: false,
                    });
                }
            }
        }
    }
    out
}

/// Whether a top-level name in a domain directory is one of HostKit's own
/// files: `config.json`, `docker-compose.yml` and its version files
/// (`docker-compose.v3.yml`), `.env`, `versions/`, and anything `.hostkit*`.
pub fn is_domain_file(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    matches!(
        name.as_ref(),
        "config.json" | "docker-compose.yml" | "docker-compose.yaml" | ".env" | "versions"
    ) || (name.starts_with("docker-compose.")
        && (name.ends_with(".yml") || name.ends_with(".yaml")))
        || name.starts_with(".hostkit")
}

/// The first of `writable` that `inner` lies strictly inside, if any.
pub fn nested_in<'a>(
    inner: &Path,
    writable: impl IntoIterator<Item = &'a Path>,
) -> Option<&'a Path> {
    writable
        .into_iter()
        .find(|outer| inner != *outer && inner.starts_with(outer))
}

/// The domain-files and nesting rules over every source of the stack.
pub(super) fn collect(sources: &[BindSource], domain_dir: &Path) -> Vec<Violation> {
    let mut out = Vec::new();
    for source in sources {
        let Some(path) = &source.path else { continue };
        if let Ok(rest) = path.strip_prefix(domain_dir) {
            let reserved = match rest.iter().next() {
                None => Some("the domain directory itself".to_owned()),
                Some(first) if is_domain_file(first) => {
                    Some(format!("HostKit's own `{}`", first.to_string_lossy()))
                }
                Some(_) => None,
            };
            if let Some(what) = reserved {
                out.push(Violation {
                    rule: Rule::BindDomainFiles,
                    service: Some(source.service.clone()),
                    path: source.key.clone(),
                    message: format!(
                        "`{}` is {what}: mount a subdirectory such as ./data instead",
                        source.written
                    ),
                });
                continue;
            }
        }
        let outer = sources.iter().find(|other| {
            other.writable
                && other
                    .path
                    .as_deref()
                    .is_some_and(|o| nested_in(path, [o]).is_some())
        });
        if let Some(outer) = outer {
            out.push(Violation {
                rule: Rule::BindNested,
                service: Some(source.service.clone()),
                path: source.key.clone(),
                message: format!(
                    "`{}` lies inside `{}`, which {} mounts writable: a container could replace it with a symbolic link; mount a separate directory",
                    source.written, outer.written, outer.key
                ),
            });
        }
    }
    out
}
