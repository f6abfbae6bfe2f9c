//! Where a host path written in a compose file points, lexically: relative
//! to the domain directory, `.` and `..` resolved without touching the disk.
//! Links inside the domain directory are the business of
//! [`crate::domain_dir`], which never follows them; only the socket rule
//! looks at the real location of paths outside it.

use crate::compose::resolve_host_path;
use std::fs;
use std::path::{Component, Path, PathBuf};

/// Docker socket paths checked by the `docker-socket` rule.
const SOCKETS: &[&str] = &["/var/run/docker.sock", "/run/docker.sock"];
/// Socket file names denied wherever they are.
const SOCKET_NAMES: &[&str] = &["docker.sock", "containerd.sock", "podman.sock"];

/// The real location of `path` (absolute): the longest existing prefix is
/// canonicalized by the OS, the rest is appended lexically.
pub fn real_path(path: &Path) -> PathBuf {
    let components: Vec<Component<'_>> = path.components().collect();
    for cut in (1..=components.len()).rev() {
        let prefix: PathBuf = components[..cut].iter().collect();
        if let Ok(mut out) = fs::canonicalize(&prefix) {
            for component in &components[cut..] {
                match component {
                    Component::ParentDir => {
                        out.pop();
                    }
                    Component::Normal(part) => out.push(part),
                    _ => {}
                }
            }
            return out;
        }
    }
    resolve_host_path(&path.to_string_lossy(), Path::new("/")).unwrap_or_else(|| path.to_owned())
}

/// A host path as written, checked against the domain directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPath {
    /// The path after resolution (lexical for `~` paths: `None`).
    pub real: Option<PathBuf>,
    /// Inside the domain directory.
    pub inside: bool,
    /// The Docker (or another container runtime's) socket, or a directory
    /// that contains it.
    pub socket: bool,
}

/// Resolves `written` against `domain_dir` and classifies it.
pub fn check(written: &str, domain_dir: &Path) -> HostPath {
    let Some(lexical) = resolve_host_path(written, domain_dir) else {
        return HostPath {
            real: None,
            inside: false,
            socket: false,
        };
    };
    let inside = lexical.starts_with(domain_dir);
    let real = if inside {
        lexical.clone()
    } else {
        real_path(&lexical)
    };
    let socket = [&lexical, &real].iter().any(|p| is_socket(p));
    HostPath {
        real: Some(real),
        inside,
        socket,
    }
}

fn is_socket(path: &Path) -> bool {
    let named = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| SOCKET_NAMES.contains(&n));
    let holds = SOCKETS.iter().any(|s| {
        let socket = Path::new(s);
        socket.starts_with(path) || real_path(socket).starts_with(path)
    });
    named || holds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        let dir = tempfile::tempdir().expect("tempdir");
        let domain = dir.path().join("example.com");
        fs::create_dir_all(domain.join("data")).expect("mkdir");
        let c = |w: &str| check(w, &domain);
        assert!(c("./data").inside);
        assert!(c("./new/dir").inside);
        assert!(c(".").inside);
        assert!(c(&domain.join("data").to_string_lossy()).inside);
        assert!(!c("../other.com").inside);
        assert!(!c("./data/../../x").inside);
        assert!(!c("/etc").inside);
        assert!(!c("~/x").inside);
        assert!(c("/var/run/docker.sock").socket);
        assert!(c("/run/docker.sock").socket);
        assert!(c("/var/run").socket);
        assert!(c("/").socket);
        assert!(c("./docker.sock").socket);
        assert!(!c("./data").socket);
    }

    #[test]
    fn links_outside_the_domain_count_for_the_socket_rule() {
        let dir = tempfile::tempdir().expect("tempdir");
        let domain = dir.path().join("example.com");
        fs::create_dir_all(&domain).expect("mkdir");
        std::os::unix::fs::symlink("/var/run", dir.path().join("run")).expect("symlink");
        let via_link = dir.path().join("run").to_string_lossy().into_owned();
        let checked = check(&via_link, &domain);
        assert!(!checked.inside);
        assert!(checked.socket);
        // Inside the domain, the check is lexical; links there are refused
        // by the walk of `domain_dir`, not resolved here.
        assert!(check("./link/../data", &domain).inside);
        assert!(!check("./link/../../secret", &domain).inside);
    }
}
