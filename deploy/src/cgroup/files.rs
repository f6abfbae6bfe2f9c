//! The few file operations on a cgroup file system HostKit needs, each
//! failing with a [`CgroupError`] that names the path. They work the same
//! on a plain directory, which is how the unit tests fake a cgroup root
//! (a control file missing there is created; on a cgroup file system it
//! means the controller is not enabled).

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use super::CgroupError;

/// `mkdir`, where an existing directory is fine.
pub fn make_dir(path: &Path) -> Result<(), CgroupError> {
    match fs::create_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(source) => Err(CgroupError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Write `value` to the control file `path` (one `write`, as the kernel wants).
pub fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    let failed = |source| CgroupError::Write {
        path: path.to_path_buf(),
        value: value.to_owned(),
        source,
    };
    let mut file = match OpenOptions::new().write(true).truncate(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|_| CgroupError::NoControlFile {
                path: path.to_path_buf(),
            })?,
        Err(source) => return Err(failed(source)),
    };
    file.write_all(value.as_bytes()).map_err(failed)
}

/// The control file's content, trimmed; `None` when it cannot be read.
pub fn read(path: &Path) -> Option<String> {
    fs::read_to_string(path).ok().map(|s| s.trim().to_owned())
}

/// What became of a stack's parent cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    /// It was there and is gone.
    Gone,
    /// There was none.
    Absent,
    /// It still holds a container's cgroup, so it stays.
    Busy,
}

impl Removed {
    /// The outcome over several hierarchies: busy wins, then gone.
    pub fn and(self, other: Removed) -> Removed {
        match (self, other) {
            (Removed::Busy, _) | (_, Removed::Busy) => Removed::Busy,
            (Removed::Gone, _) | (_, Removed::Gone) => Removed::Gone,
            _ => Removed::Absent,
        }
    }
}

/// Remove the cgroup directory `dir` once it has no child cgroup (control
/// files do not count: a cgroup file system removes them with the
/// directory), waiting up to `wait` for children that are going away.
pub fn remove_when_empty(dir: &Path, wait: Duration) -> Result<Removed, CgroupError> {
    let deadline = Instant::now() + wait;
    loop {
        if !dir.is_dir() {
            return Ok(Removed::Absent);
        }
        let busy = has_children(dir)?;
        if !busy {
            match fs::remove_dir(dir) {
                Ok(()) => return Ok(Removed::Gone),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Removed::Absent),
                Err(e)
                    if !matches!(
                        e.kind(),
                        io::ErrorKind::ResourceBusy | io::ErrorKind::DirectoryNotEmpty
                    ) =>
                {
                    return Err(CgroupError::Remove {
                        path: dir.to_path_buf(),
                        source: e,
                    });
                }
                Err(_) => {}
            }
        }
        if Instant::now() >= deadline {
            return Ok(Removed::Busy);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_children(dir: &Path) -> Result<bool, CgroupError> {
    let entries = fs::read_dir(dir).map_err(|source| CgroupError::Remove {
        path: dir.to_path_buf(),
        source,
    })?;
    Ok(entries
        .filter_map(Result::ok)
        .any(|e| e.file_type().is_ok_and(|t| t.is_dir())))
}
