//! v1's nginx site for a domain: `sites-enabled/<domain>` (a link to
//! `sites-available/<domain>`; some v1 tools look for `<domain>.conf`).
//! When HostKit's own file starts serving the domain, v1's entry is retired
//! in the same `nginx -t` and reload — otherwise nginx would hold two
//! server blocks with the same `server_name` — and put back when that check
//! fails or an import is undone. `sites-available` is never touched, so v1's
//! tools still read the site.

use std::io;
use std::path::{Path, PathBuf};

/// A v1 entry taken out of `sites-enabled`, and how to put it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retired {
    /// The entry's path in `sites-enabled`.
    pub path: PathBuf,
    /// What it was.
    pub was: Entry,
}

/// A `sites-enabled` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A symbolic link (v1's form) to this target.
    Link(PathBuf),
    /// A regular file, moved here meanwhile (outside `sites-enabled`, so
    /// nginx's `include sites-enabled/*` no longer reads it).
    File(PathBuf),
}

/// `domain`'s entry in `sites_enabled`, if v1 left one.
pub async fn enabled_site(sites_enabled: &Path, domain: &str) -> io::Result<Option<PathBuf>> {
    for name in [domain.to_string(), format!("{domain}.conf")] {
        let path = sites_enabled.join(name);
        match tokio::fs::symlink_metadata(&path).await {
            Ok(_) => return Ok(Some(path)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// What retiring `path` would do (so a caller can undo it later, even
/// when the retiring happened elsewhere).
pub async fn describe(path: &Path) -> io::Result<Retired> {
    let meta = tokio::fs::symlink_metadata(path).await?;
    let was = if meta.file_type().is_symlink() {
        Entry::Link(tokio::fs::read_link(path).await?)
    } else {
        let parent = path
            .parent()
            .and_then(Path::parent)
            .unwrap_or_else(|| Path::new("/"));
        Entry::File(
            parent
                .join("hostkit-retired-sites")
                .join(path.file_name().unwrap_or_default()),
        )
    };
    Ok(Retired {
        path: path.to_path_buf(),
        was,
    })
}

/// Take `path` out of `sites-enabled`: a link is removed (its target stays),
/// a regular file is moved beside `sites-enabled` into
/// `hostkit-retired-sites/`.
pub async fn retire(path: &Path) -> io::Result<Retired> {
    let retired = describe(path).await?;
    match &retired.was {
        Entry::Link(_) => tokio::fs::remove_file(path).await?,
        Entry::File(to) => {
            if let Some(dir) = to.parent() {
                tokio::fs::create_dir_all(dir).await?;
            }
            tokio::fs::rename(path, to).await?;
        }
    }
    Ok(retired)
}

/// Whether `retired` is out of `sites-enabled` now.
pub async fn is_retired(retired: &Retired) -> bool {
    tokio::fs::symlink_metadata(&retired.path).await.is_err()
}

/// Put a retired entry back as it was.
pub async fn restore(retired: &Retired) -> io::Result<()> {
    match &retired.was {
        Entry::Link(target) => tokio::fs::symlink(target, &retired.path).await,
        Entry::File(moved) => tokio::fs::rename(moved, &retired.path).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn retires_and_restores_v1s_link_and_a_plain_file() {
        let root = tempfile::tempdir().expect("dir");
        let available = root.path().join("sites-available");
        let enabled = root.path().join("sites-enabled");
        std::fs::create_dir_all(&available).expect("available");
        std::fs::create_dir_all(&enabled).expect("enabled");
        std::fs::write(available.join("a.example"), "server {}").expect("site");
        std::os::unix::fs::symlink(available.join("a.example"), enabled.join("a.example"))
            .expect("link");
        std::fs::write(enabled.join("b.example.conf"), "server {}").expect("file");

        let a = enabled_site(&enabled, "a.example").await.expect("look");
        assert_eq!(a.as_deref(), Some(enabled.join("a.example").as_path()));
        let retired = retire(&a.expect("a")).await.expect("retire a");
        assert!(
            enabled_site(&enabled, "a.example")
                .await
                .expect("look")
                .is_none()
        );
        assert!(available.join("a.example").is_file(), "v1's file is kept");
        restore(&retired).await.expect("restore a");
        assert_eq!(
            std::fs::read_link(enabled.join("a.example")).expect("link back"),
            available.join("a.example")
        );

        let b = enabled_site(&enabled, "b.example")
            .await
            .expect("look")
            .expect("b");
        let retired = retire(&b).await.expect("retire b");
        assert!(!b.exists());
        restore(&retired).await.expect("restore b");
        assert_eq!(std::fs::read_to_string(&b).expect("back"), "server {}");
        assert!(
            enabled_site(&enabled, "c.example")
                .await
                .expect("look")
                .is_none()
        );
    }
}
