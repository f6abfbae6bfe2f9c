//! The domain directory as HostKit touches it (DESIGN §6 "On the node").
//!
//! Containers may write into the parts of a domain directory they bind-mount,
//! so anything in there may be a symbolic link a container planted. Every
//! path beneath the directory is therefore opened component by component
//! with `O_NOFOLLOW` (an `openat` walk from the directory itself): a link on
//! the way is an error, never followed, whether the worker reads a file
//! (`.env`, `env_file`), writes one (the on-disk view) or checks a bind
//! mount's source before a container starts. Files are read only when they
//! are regular files, with a size cap, so a FIFO or a huge file cannot block
//! or flood the worker. The directory itself (`domains_root/<domain>`) is
//! the operator's and is opened normally. The worker's image directory
//! (tarballs a job may name by path) is walked the same way.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, FileType, Mode, OFlags};
use rustix::io::Errno;

/// The largest file HostKit reads from a domain directory (`.env`, `env_file`).
pub const READ_CAP: u64 = 1 << 20;

/// Why a path beneath a domain directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DomainDirError {
    /// A component of the path is a symbolic link.
    #[error(
        "[symlink] `{path}` is a symbolic link: links inside the domain directory are never followed"
    )]
    Symlink {
        /// The path (relative to the domain directory) up to the link.
        path: String,
    },
    /// The path leaves the domain directory.
    #[error("`{path}` is outside the domain directory")]
    Outside {
        /// The path as given.
        path: String,
    },
    /// The file is not a regular file (a FIFO, a device, a directory, …).
    #[error("`{path}` is not a regular file")]
    NotRegular {
        /// The path, relative to the domain directory.
        path: String,
    },
    /// A component that must be a directory is not one.
    #[error("`{path}` is not a directory")]
    NotDirectory {
        /// The path, relative to the domain directory.
        path: String,
    },
    /// The file is larger than the cap.
    #[error("`{path}` is larger than {cap} bytes")]
    TooLarge {
        /// The path, relative to the domain directory.
        path: String,
        /// The cap in bytes.
        cap: u64,
    },
    /// Any other failure of the file system.
    #[error("{action} `{path}` failed")]
    Io {
        /// What was done (`reading`, `writing`, …).
        action: &'static str,
        /// The path, relative to the domain directory.
        path: String,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// What a path beneath the domain directory is, found without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// Nothing is there (yet).
    Missing,
    /// A directory.
    Directory,
    /// A regular file.
    File,
    /// Something else (a FIFO, a socket, a device).
    Other,
}

/// A domain's directory: every path beneath it is reached without
/// following symbolic links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDir {
    root: PathBuf,
}

impl DomainDir {
    /// The domain directory at `root` (made absolute against the current
    /// directory, `.` and `..` resolved lexically).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        let root = std::path::absolute(&root).unwrap_or(root);
        let root = crate::compose::resolve_host_path(".", &root).unwrap_or(root);
        DomainDir { root }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The components of `path` beneath the directory: `path` is absolute
    /// (inside the directory) or relative to it; `.` and `..` are resolved
    /// lexically. `None` when it leaves the directory. The directory itself
    /// has no components.
    pub fn components(&self, path: &Path) -> Option<Vec<OsString>> {
        let joined = if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.root.join(path)
        };
        let mut lexical = PathBuf::new();
        for component in joined.components() {
            match component {
                Component::ParentDir => {
                    lexical.pop();
                }
                Component::CurDir => {}
                other => lexical.push(other.as_os_str()),
            }
        }
        let rest = lexical.strip_prefix(&self.root).ok()?;
        Some(rest.iter().map(OsStr::to_os_string).collect())
    }

    /// `./data/x` for a path beneath the directory (for messages that must
    /// not reveal the node's layout), the path itself otherwise.
    pub fn describe(&self, path: &Path) -> String {
        match self.components(path) {
            Some(parts) => display(&parts),
            None => path.display().to_string(),
        }
    }

    /// What `path` is, walking every component without following links; a
    /// link anywhere on the way is [`DomainDirError::Symlink`].
    pub fn entry(&self, path: &Path) -> Result<Entry, DomainDirError> {
        let parts = self.parts(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(Entry::Directory);
        };
        let Some(parent) = self.open_dirs(dirs, false)? else {
            return Ok(Entry::Missing);
        };
        match rustix::fs::statat(&parent, last.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => match FileType::from_raw_mode(stat.st_mode) {
                FileType::Symlink => Err(DomainDirError::Symlink {
                    path: display(&parts),
                }),
                FileType::Directory => Ok(Entry::Directory),
                FileType::RegularFile => Ok(Entry::File),
                _ => Ok(Entry::Other),
            },
            Err(Errno::NOENT) => Ok(Entry::Missing),
            Err(e) => Err(io_error("inspecting", &parts, e)),
        }
    }

    /// Check a bind mount's source right before a container starts: no
    /// component is a link, and missing directories are created here (as
    /// Docker would create them, but without following links).
    pub fn prepare_bind_source(&self, path: &Path) -> Result<(), DomainDirError> {
        match self.entry(path)? {
            Entry::Missing => {
                let parts = self.parts(path)?;
                self.open_dirs(&parts, true).map(drop)
            }
            _ => Ok(()),
        }
    }

    /// Read a regular file of at most `cap` bytes; `None` when it is missing.
    pub fn read_to_string(&self, path: &Path, cap: u64) -> Result<Option<String>, DomainDirError> {
        let Some((file, parts)) = self.open_regular(path)? else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        file.take(cap + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| DomainDirError::Io {
                action: "reading",
                path: display(&parts),
                source,
            })?;
        if bytes.len() as u64 > cap {
            return Err(DomainDirError::TooLarge {
                path: display(&parts),
                cap,
            });
        }
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| DomainDirError::Io {
                action: "reading",
                path: display(&parts),
                source: io::Error::new(io::ErrorKind::InvalidData, "not UTF-8 text"),
            })
    }

    /// Open a regular file for streaming (any size) with its length; `None`
    /// when it is missing.
    pub fn open_file(&self, path: &Path) -> Result<Option<(File, u64)>, DomainDirError> {
        let Some((file, parts)) = self.open_regular(path)? else {
            return Ok(None);
        };
        let len = file
            .metadata()
            .map_err(|source| DomainDirError::Io {
                action: "inspecting",
                path: display(&parts),
                source,
            })?
            .len();
        Ok(Some((file, len)))
    }

    /// Open the regular file at `path` without following links (and
    /// without blocking on a FIFO).
    fn open_regular(&self, path: &Path) -> Result<Option<(File, Vec<OsString>)>, DomainDirError> {
        let parts = self.parts(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(DomainDirError::NotRegular {
                path: display(&parts),
            });
        };
        let Some(parent) = self.open_dirs(dirs, false)? else {
            return Ok(None);
        };
        let flags =
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let fd = match rustix::fs::openat(&parent, last.as_os_str(), flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(Errno::LOOP) => {
                return Err(DomainDirError::Symlink {
                    path: display(&parts),
                });
            }
            Err(e) => return Err(io_error("opening", &parts, e)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| io_error("inspecting", &parts, e))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(DomainDirError::NotRegular {
                path: display(&parts),
            });
        }
        Ok(Some((File::from(fd), parts)))
    }

    /// Replace `path` with `contents` atomically (a new file renamed over
    /// it); missing directories are created, links are never followed (a
    /// link at `path` itself is replaced, not written through).
    pub fn write_atomic(&self, path: &Path, contents: &[u8]) -> Result<(), DomainDirError> {
        self.write_atomic_as(path, contents, 0o644, None)
    }

    /// [`write_atomic`](Self::write_atomic) with the file's `mode` (exactly,
    /// whatever the umask) and, when given, its owner `(uid, gid)`: the file
    /// has both before it appears at `path`.
    pub fn write_atomic_as(
        &self,
        path: &Path,
        contents: &[u8],
        mode: u32,
        owner: Option<(u32, u32)>,
    ) -> Result<(), DomainDirError> {
        let parts = self.parts(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Err(DomainDirError::NotRegular {
                path: display(&parts),
            });
        };
        let parent = self
            .open_dirs(dirs, true)?
            .expect("directories are created");
        let mut tmp = OsString::from(".");
        tmp.push(last);
        tmp.push(".hostkit-tmp");
        let _ = rustix::fs::unlinkat(&parent, tmp.as_os_str(), AtFlags::empty());
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let write_err = |source: io::Error| DomainDirError::Io {
            action: "writing",
            path: display(&parts),
            source,
        };
        let fd = rustix::fs::openat(&parent, tmp.as_os_str(), flags, Mode::from_raw_mode(0o600))
            .map_err(|e| write_err(e.into()))?;
        if let Some((uid, gid)) = owner {
            let ids = (
                rustix::fs::Uid::from_raw(uid),
                rustix::fs::Gid::from_raw(gid),
            );
            rustix::fs::fchown(&fd, Some(ids.0), Some(ids.1)).map_err(|e| write_err(e.into()))?;
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(|e| write_err(e.into()))?;
        let mut file = File::from(fd);
        file.write_all(contents).map_err(write_err)?;
        file.sync_data().map_err(write_err)?;
        rustix::fs::renameat(&parent, tmp.as_os_str(), &parent, last.as_os_str())
            .map_err(|e| write_err(e.into()))
    }

    /// Make the directory `path` (and the missing ones on the way) and give
    /// it `mode`; a link on the way is [`DomainDirError::Symlink`].
    pub fn make_dir(&self, path: &Path, mode: u32) -> Result<(), DomainDirError> {
        let parts = self.parts(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(());
        };
        let parent = self
            .open_dirs(dirs, true)?
            .expect("directories are created");
        match rustix::fs::mkdirat(&parent, last.as_os_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(io_error("creating", &parts, e)),
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&parent, last.as_os_str(), flags, Mode::empty())
            .map_err(|e| classify(&parent, last, &parts, e))?;
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
            .map_err(|e| io_error("changing", &parts, e))
    }

    /// The names in the directory `path` (empty when it is missing), found
    /// without following links.
    pub fn list_dir(&self, path: &Path) -> Result<Vec<OsString>, DomainDirError> {
        let parts = self.parts(path)?;
        let Some(dir) = self.open_dirs(&parts, false)? else {
            return Ok(Vec::new());
        };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&dir, ".", flags, Mode::empty())
            .map_err(|e| io_error("listing", &parts, e))?;
        let mut names = Vec::new();
        let entries = rustix::fs::Dir::new(fd).map_err(|e| io_error("listing", &parts, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error("listing", &parts, e))?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsStr::from_bytes(name).to_os_string());
            }
        }
        Ok(names)
    }

    /// Remove the file (or link) at `path`; a missing one is fine.
    pub fn remove_file(&self, path: &Path) -> Result<(), DomainDirError> {
        let parts = self.parts(path)?;
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(());
        };
        let Some(parent) = self.open_dirs(dirs, false)? else {
            return Ok(());
        };
        match rustix::fs::unlinkat(&parent, last.as_os_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_error("removing", &parts, e)),
        }
    }

    /// Remove the directory at `path` and everything in it (links inside are
    /// removed, not followed); a link at `path` itself is removed as a file.
    pub fn remove_dir_all(&self, path: &Path) -> Result<(), DomainDirError> {
        let parts = self.parts(path)?;
        match self.entry(path) {
            Ok(Entry::Missing) => Ok(()),
            Ok(Entry::Directory) if !parts.is_empty() => {
                std::fs::remove_dir_all(self.root.join(path_of(&parts))).map_err(|source| {
                    DomainDirError::Io {
                        action: "removing",
                        path: display(&parts),
                        source,
                    }
                })
            }
            Ok(Entry::Directory) => Ok(()),
            Ok(_) | Err(DomainDirError::Symlink { .. }) => self.remove_file(path),
            Err(e) => Err(e),
        }
    }

    fn parts(&self, path: &Path) -> Result<Vec<OsString>, DomainDirError> {
        self.components(path)
            .ok_or_else(|| DomainDirError::Outside {
                path: path.display().to_string(),
            })
    }

    /// Open the directory `dirs` beneath the root, one component at a time
    /// without following links; `None` when one is missing (unless
    /// `create`, which makes it).
    fn open_dirs(
        &self,
        dirs: &[OsString],
        create: bool,
    ) -> Result<Option<OwnedFd>, DomainDirError> {
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC;
        if create {
            std::fs::create_dir_all(&self.root).map_err(|source| DomainDirError::Io {
                action: "creating",
                path: ".".into(),
                source,
            })?;
        }
        let mut fd = match rustix::fs::openat(CWD, &self.root, flags, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(e) => return Err(io_error("opening", &[], e)),
        };
        for (i, name) in dirs.iter().enumerate() {
            let here = &dirs[..=i];
            let opened = rustix::fs::openat(
                &fd,
                name.as_os_str(),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            );
            fd = match opened {
                Ok(next) => next,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&fd, name.as_os_str(), Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(io_error("creating", here, e)),
                    }
                    rustix::fs::openat(
                        &fd,
                        name.as_os_str(),
                        flags | OFlags::NOFOLLOW,
                        Mode::empty(),
                    )
                    .map_err(|e| classify(&fd, name, here, e))?
                }
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(classify(&fd, name, here, e)),
            };
        }
        Ok(Some(fd))
    }
}

/// Why `name` (in `dir`) could not be opened as a directory.
fn classify(dir: &OwnedFd, name: &OsStr, parts: &[OsString], error: Errno) -> DomainDirError {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
            DomainDirError::Symlink {
                path: display(parts),
            }
        }
        Ok(stat) if FileType::from_raw_mode(stat.st_mode) != FileType::Directory => {
            DomainDirError::NotDirectory {
                path: display(parts),
            }
        }
        _ => io_error("opening", parts, error),
    }
}

fn io_error(action: &'static str, parts: &[OsString], error: Errno) -> DomainDirError {
    DomainDirError::Io {
        action,
        path: display(parts),
        source: error.into(),
    }
}

fn path_of(parts: &[OsString]) -> PathBuf {
    parts.iter().collect()
}

/// `./a/b` for messages (paths relative to the domain directory).
fn display(parts: &[OsString]) -> String {
    let mut out = String::from(".");
    for part in parts {
        out.push('/');
        out.push_str(&part.to_string_lossy());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn setup() -> (tempfile::TempDir, DomainDir, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("example.com");
        std::fs::create_dir_all(root.join("data/sub")).expect("mkdir");
        let outside = tmp.path().join("other.com");
        std::fs::create_dir_all(&outside).expect("mkdir");
        std::fs::write(outside.join(".env"), "SECRET=other\n").expect("write");
        (tmp, DomainDir::new(&root), outside)
    }

    fn is_symlink<T: std::fmt::Debug>(r: Result<T, DomainDirError>) -> bool {
        matches!(r, Err(DomainDirError::Symlink { .. }))
    }

    #[test]
    fn files_are_written_with_their_mode_and_owner_and_listed() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let (_tmp, dir, outside) = setup();
        let root = dir.root().to_path_buf();
        dir.make_dir(Path::new(".hostkit"), 0o700)
            .expect("private dir");
        let owner = Some((4242, 4343));
        dir.write_atomic_as(Path::new(".hostkit/files/a"), b"value", 0o440, owner)
            .expect("write");
        let meta = std::fs::metadata(root.join(".hostkit/files/a")).expect("written");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o440);
        assert_eq!((meta.uid(), meta.gid()), (4242, 4343));
        let private = std::fs::metadata(root.join(".hostkit")).expect("dir");
        assert_eq!(private.permissions().mode() & 0o7777, 0o700);
        dir.write_atomic(Path::new(".hostkit/files/b"), b"x")
            .expect("write");
        let mut names = dir.list_dir(Path::new(".hostkit/files")).expect("list");
        names.sort();
        assert_eq!(names, [OsString::from("a"), OsString::from("b")]);
        assert!(dir.list_dir(Path::new("missing")).expect("list").is_empty());
        symlink(&outside, root.join("data/out")).expect("symlink");
        assert!(is_symlink(dir.list_dir(Path::new("data/out"))));
        assert!(is_symlink(dir.make_dir(Path::new("data/out"), 0o700)));
        assert!(is_symlink(dir.make_dir(Path::new("data/out/x"), 0o700)));
    }

    #[test]
    fn components_are_lexical_and_stay_beneath() {
        let (_tmp, dir, _) = setup();
        let c = |p: &str| dir.components(Path::new(p));
        assert_eq!(c("./data/x"), Some(vec!["data".into(), "x".into()]));
        assert_eq!(c("data/../conf"), Some(vec!["conf".into()]));
        assert_eq!(c("."), Some(vec![]));
        assert_eq!(c("../other.com/.env"), None);
        assert_eq!(c("/etc/passwd"), None);
        let absolute = dir.root().join("data");
        assert_eq!(
            dir.components(&absolute),
            Some(vec![OsString::from("data")])
        );
    }

    #[test]
    fn a_link_at_any_component_is_refused() {
        let (_tmp, dir, outside) = setup();
        let root = dir.root().to_path_buf();
        symlink("/", root.join("data/sub/root")).expect("symlink");
        symlink(&outside, root.join("data/other")).expect("symlink");
        symlink(outside.join(".env"), root.join(".env")).expect("symlink");
        symlink("sub", root.join("data/inside")).expect("symlink");

        // The link as the last component, in the middle, and a relative link
        // that stays inside (still refused: nothing is followed).
        assert!(is_symlink(dir.entry(Path::new("data/sub/root"))));
        assert!(is_symlink(dir.entry(Path::new("data/sub/root/etc"))));
        assert!(is_symlink(dir.entry(Path::new("data/other/.env"))));
        assert!(is_symlink(dir.entry(Path::new("data/inside"))));
        assert!(is_symlink(dir.read_to_string(Path::new(".env"), READ_CAP)));
        assert!(is_symlink(
            dir.read_to_string(Path::new("data/other/.env"), READ_CAP)
        ));
        assert!(is_symlink(
            dir.prepare_bind_source(Path::new("data/sub/root/new"))
        ));
        assert!(is_symlink(
            dir.write_atomic(Path::new("data/other/x"), b"x")
        ));
        assert!(
            !outside.join("x").exists(),
            "nothing written through the link"
        );
        // `..` is lexical: it never climbs out through a link.
        assert!(matches!(
            dir.entry(Path::new("data/../../other.com/.env")),
            Err(DomainDirError::Outside { .. })
        ));
        // Plain paths work.
        assert_eq!(dir.entry(Path::new("data/sub")).unwrap(), Entry::Directory);
        assert_eq!(dir.entry(Path::new("data/none")).unwrap(), Entry::Missing);
        assert_eq!(dir.entry(Path::new("none/deeper")).unwrap(), Entry::Missing);
        assert_eq!(dir.entry(Path::new(".")).unwrap(), Entry::Directory);
    }

    #[test]
    fn reads_are_capped_and_only_of_regular_files() {
        let (_tmp, dir, _) = setup();
        let root = dir.root().to_path_buf();
        std::fs::write(root.join("small.env"), "A=1\n").expect("write");
        std::fs::write(root.join("big.env"), vec![b'x'; 2048]).expect("write");
        let status = std::process::Command::new("mkfifo")
            .arg(root.join("fifo"))
            .status()
            .expect("mkfifo");
        assert!(status.success());
        assert_eq!(
            dir.read_to_string(Path::new("small.env"), 1024)
                .unwrap()
                .as_deref(),
            Some("A=1\n")
        );
        assert!(matches!(
            dir.read_to_string(Path::new("big.env"), 1024),
            Err(DomainDirError::TooLarge { cap: 1024, .. })
        ));
        // A FIFO neither blocks nor is read.
        assert!(matches!(
            dir.read_to_string(Path::new("fifo"), 1024),
            Err(DomainDirError::NotRegular { .. })
        ));
        assert!(matches!(
            dir.read_to_string(Path::new("data"), 1024),
            Err(DomainDirError::NotRegular { .. })
        ));
        assert_eq!(
            dir.read_to_string(Path::new("none.env"), 1024).unwrap(),
            None
        );
    }

    #[test]
    fn writes_replace_links_instead_of_following_them() {
        let (_tmp, dir, outside) = setup();
        let root = dir.root().to_path_buf();
        symlink(outside.join(".env"), root.join("config.json")).expect("symlink");
        dir.write_atomic(Path::new("config.json"), b"{}")
            .expect("write");
        assert_eq!(
            std::fs::read_to_string(outside.join(".env")).unwrap(),
            "SECRET=other\n"
        );
        assert_eq!(
            std::fs::read_to_string(root.join("config.json")).unwrap(),
            "{}"
        );
        assert!(
            !std::fs::symlink_metadata(root.join("config.json"))
                .unwrap()
                .is_symlink()
        );

        dir.write_atomic(Path::new("versions/v1.yml"), b"x")
            .expect("write");
        assert_eq!(
            std::fs::read_to_string(root.join("versions/v1.yml")).unwrap(),
            "x"
        );

        // A link in place of a directory is removed, its target kept.
        symlink(&outside, root.join("old")).expect("symlink");
        dir.remove_dir_all(Path::new("old")).expect("remove");
        assert!(outside.join(".env").exists());
        dir.remove_dir_all(Path::new("versions")).expect("remove");
        assert!(!root.join("versions").exists());
    }

    #[test]
    fn bind_sources_are_created_without_following_links() {
        let (_tmp, dir, _) = setup();
        dir.prepare_bind_source(Path::new("new/deep/dir"))
            .expect("create");
        assert!(dir.root().join("new/deep/dir").is_dir());
        dir.prepare_bind_source(Path::new("data")).expect("exists");
    }
}
