//! The files HostKit writes for a stack: the content of its `environment:`
//! and `content:` secrets and configs. Each lives under the domain's
//! `.hostkit/files/` (a directory only the worker's user can enter, which
//! the policy never lets a container mount), is named after what it holds
//! (content, mode, owner), is written through [`DomainDir`] (no link
//! followed, atomic, mode and owner set before it appears) right before a
//! container that mounts it is created or started, and is bind-mounted
//! read-only at its target. After a successful apply the files no service of
//! the spec names are removed; removing the stack removes them all. Their
//! content is never logged: [`WrittenFile`]'s `Debug` shows only its name.

use std::ffi::OsString;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::spec::StackSpec;
use crate::compose::SecretText;
use crate::domain_dir::{DomainDir, DomainDirError};
use crate::error::DeployError;

/// HostKit's own directory in a domain directory (never bindable).
pub const HOSTKIT_DIR: &str = ".hostkit";
/// Where the written files live, relative to the domain directory.
pub const FILES_DIR: &str = ".hostkit/files";
/// The mode of a secret or config without `mode:` (as in Docker Compose).
pub const DEFAULT_MODE: u32 = 0o444;

/// One file HostKit writes for a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenFile {
    /// The file name under [`FILES_DIR`]: a digest of everything below.
    name: String,
    /// What it holds (redacted in `Debug`).
    content: SecretText,
    /// Its mode.
    mode: u32,
    /// Its owner, when the compose file gave `uid` or `gid` (the other one
    /// is 0, as in Docker Compose).
    owner: Option<(u32, u32)>,
}

impl WrittenFile {
    /// The file of `content` with `mode` (default [`DEFAULT_MODE`]) and
    /// owner for `project`. Two domains holding the same value get
    /// different names.
    pub fn new(
        project: &str,
        content: &SecretText,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
    ) -> Self {
        let mode = mode.unwrap_or(DEFAULT_MODE);
        let owner = (uid.is_some() || gid.is_some()).then(|| (uid.unwrap_or(0), gid.unwrap_or(0)));
        let mut hasher = Sha256::new();
        hasher.update(b"hostkit.file.v1\0");
        hasher.update(project.as_bytes());
        hasher.update(format!("\0{mode:o}\0{owner:?}\0").as_bytes());
        hasher.update(content.expose().as_bytes());
        WrittenFile {
            name: hex::encode(hasher.finalize()),
            content: content.clone(),
            mode,
            owner,
        }
    }

    /// Its name under [`FILES_DIR`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its path relative to the domain directory.
    pub fn relative_path(&self) -> PathBuf {
        Path::new(FILES_DIR).join(&self.name)
    }

    /// Whether the file at `path` already is this one (same bytes, mode
    /// and owner): then it is left as it is.
    fn is_at(&self, dir: &DomainDir, path: &Path) -> Result<bool, DomainDirError> {
        let Some((file, len)) = dir.open_file(path)? else {
            return Ok(false);
        };
        let meta = file.metadata().map_err(|source| DomainDirError::Io {
            action: "inspecting",
            path: dir.describe(path),
            source,
        })?;
        let owner_matches = self
            .owner
            .is_none_or(|(uid, gid)| (meta.uid(), meta.gid()) == (uid, gid));
        if len != self.content.expose().len() as u64
            || meta.permissions().mode() & 0o7777 != self.mode
            || !owner_matches
        {
            return Ok(false);
        }
        let mut bytes = Vec::with_capacity(len as usize);
        file.take(len)
            .read_to_end(&mut bytes)
            .map_err(|source| DomainDirError::Io {
                action: "reading",
                path: dir.describe(path),
                source,
            })?;
        Ok(bytes == self.content.expose().as_bytes())
    }
}

/// Write each of `files` that is not already in place (blocking).
pub(crate) fn write_missing(dir: &DomainDir, files: &[WrittenFile]) -> Result<(), DomainDirError> {
    if files.is_empty() {
        return Ok(());
    }
    dir.make_dir(Path::new(HOSTKIT_DIR), 0o700)?;
    for file in files {
        let path = file.relative_path();
        if !file.is_at(dir, &path)? {
            dir.write_atomic_as(
                &path,
                file.content.expose().as_bytes(),
                file.mode,
                file.owner,
            )?;
        }
    }
    Ok(())
}

/// Remove the written files that no service of `stack` names (after a
/// successful apply: every container that runs now is one of `stack`'s).
pub async fn retain(stack: &StackSpec) -> Result<(), DeployError> {
    let dir = DomainDir::new(&stack.domain_dir);
    let keep: Vec<OsString> = stack
        .services
        .iter()
        .flat_map(|s| s.files.iter().map(|f| OsString::from(f.name())))
        .collect();
    blocking(move || {
        for name in dir.list_dir(Path::new(FILES_DIR))? {
            if !keep.contains(&name) {
                dir.remove_file(&Path::new(FILES_DIR).join(&name))?;
            }
        }
        Ok(())
    })
    .await
}

/// Remove every written file of the domain at `domain_dir` (the stack is
/// gone).
pub async fn remove_all(domain_dir: &Path) -> Result<(), DeployError> {
    let dir = DomainDir::new(domain_dir);
    blocking(move || dir.remove_dir_all(Path::new(FILES_DIR))).await
}

async fn blocking(
    work: impl FnOnce() -> Result<(), DomainDirError> + Send + 'static,
) -> Result<(), DeployError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(DeployError::from),
        Err(e) => Err(DeployError::Internal {
            message: format!("cleaning up HostKit's files panicked: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(content: &str, mode: Option<u32>, uid: Option<u32>) -> WrittenFile {
        WrittenFile::new("example-com", &SecretText::new(content), mode, uid, None)
    }

    #[test]
    fn the_name_follows_content_mode_owner_and_project() {
        let a = file("v", None, None);
        assert_eq!(a.name().len(), 64);
        assert_eq!(a, file("v", None, None));
        assert_ne!(a.name(), file("w", None, None).name());
        assert_ne!(a.name(), file("v", Some(0o400), None).name());
        assert_ne!(a.name(), file("v", None, Some(1000)).name());
        let other = WrittenFile::new("other-com", &SecretText::new("v"), None, None, None);
        assert_ne!(a.name(), other.name());
        assert!(!format!("{a:?}").contains("\"v\""), "{a:?}");
    }

    #[test]
    fn files_are_written_once_and_rewritten_when_changed() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = DomainDir::new(tmp.path());
        let f = file("token", Some(0o400), Some(1234));
        write_missing(&dir, std::slice::from_ref(&f)).expect("written");
        let path = tmp.path().join(f.relative_path());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "token");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o400);
        assert_eq!((meta.uid(), meta.gid()), (1234, 0));
        let hostkit = std::fs::metadata(tmp.path().join(HOSTKIT_DIR)).expect("dir");
        assert_eq!(hostkit.permissions().mode() & 0o777, 0o700);
        // In place: untouched (same inode).
        let inode = meta.ino();
        write_missing(&dir, std::slice::from_ref(&f)).expect("again");
        assert_eq!(std::fs::metadata(&path).expect("meta").ino(), inode);
        // Tampered with: written again.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        write_missing(&dir, std::slice::from_ref(&f)).expect("again");
        let meta = std::fs::metadata(&path).expect("meta");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o400);
        assert_ne!(meta.ino(), inode);
    }
}
