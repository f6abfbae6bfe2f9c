//! Where a host path written in a compose file really points: relative to
//! the domain directory, following symbolic links of the parts that exist
//! (a link planted in the domain directory by a container must not let a
//! later deploy mount `/`).

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
    let joined = if written.starts_with('/') {
        PathBuf::from(written)
    } else {
        domain_dir.join(written)
    };
    let real = real_path(&joined);
    let domain_real =
        real_path(&resolve_host_path(".", domain_dir).unwrap_or_else(|| domain_dir.to_owned()));
    let inside = real.starts_with(&domain_real) && lexical.starts_with(domain_dir);
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
    fn symlinks_out_of_the_domain_are_followed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let domain = dir.path().join("example.com");
        let outside = dir.path().join("secret");
        fs::create_dir_all(&domain).expect("mkdir");
        fs::create_dir_all(&outside).expect("mkdir");
        std::os::unix::fs::symlink(&outside, domain.join("link")).expect("symlink");
        std::os::unix::fs::symlink("/", domain.join("root")).expect("symlink");
        assert!(!check("./link", &domain).inside);
        assert!(!check("./link/sub/dir", &domain).inside);
        assert!(!check("./root/etc", &domain).inside);
        assert!(check("./root", &domain).socket);
        // `link/..` is the parent of the link's target, not the domain.
        assert!(!check("./link/../example.com/../secret", &domain).inside);
    }
}
