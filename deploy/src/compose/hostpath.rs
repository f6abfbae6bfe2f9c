//! Host paths written in a compose file (bind sources, `env_file`, secret
//! files), resolved against the domain directory.

use super::model::{Mount, MountSource};
use std::path::{Component, Path, PathBuf};

/// Resolves a host path as written: relative paths are joined to `base`, and
/// `.` / `..` are normalized lexically (`..` never climbs above `/`). A path
/// starting with `~` is `None`: home directories are never part of a domain.
/// Symbolic links are not followed (the policy does that).
pub fn resolve_host_path(written: &str, base: &Path) -> Option<PathBuf> {
    if written.starts_with('~') {
        return None;
    }
    let joined = base.join(written);
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::Prefix(p) => out.push(p.as_os_str()),
            Component::RootDir => out.push(Component::RootDir.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
        }
    }
    Some(out)
}

impl Mount {
    /// For a bind mount, its host path resolved against `base` (see
    /// [`resolve_host_path`]); `None` for other mounts and for `~` paths.
    pub fn host_path(&self, base: &Path) -> Option<PathBuf> {
        match &self.source {
            MountSource::Bind { path, .. } => resolve_host_path(path, base),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_lexically() {
        let base = Path::new("/srv/hostkit/example.com");
        let r = |p: &str| resolve_host_path(p, base);
        assert_eq!(
            r("./data"),
            Some(PathBuf::from("/srv/hostkit/example.com/data"))
        );
        assert_eq!(
            r("data/../conf/./x"),
            Some(PathBuf::from("/srv/hostkit/example.com/conf/x"))
        );
        assert_eq!(
            r("../other.com/data"),
            Some(PathBuf::from("/srv/hostkit/other.com/data"))
        );
        assert_eq!(r("/etc/passwd"), Some(PathBuf::from("/etc/passwd")));
        assert_eq!(r("/../../etc"), Some(PathBuf::from("/etc")));
        assert_eq!(r("."), Some(PathBuf::from("/srv/hostkit/example.com")));
        assert_eq!(r("~/x"), None);
    }
}
