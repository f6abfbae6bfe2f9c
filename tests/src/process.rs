//! Server processes started by the harness (nats-server, nginx): found on
//! disk, spawned in their own process group with output in a log file, and
//! stopped (SIGTERM, then SIGKILL) as a group so no helper process survives.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group, waitid};

/// How long a server gets to exit after SIGTERM before it is killed.
const GRACE: Duration = Duration::from_secs(10);

/// Finds a program: the path in environment variable `env_var` if set (it
/// must be an executable file), else the first `name` on `PATH`, else the
/// first of `fallbacks` that exists. The error says where it looked.
pub(crate) fn find_program(
    env_var: &str,
    name: &str,
    fallbacks: &[&str],
) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env_var).filter(|v| !v.is_empty()) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(format!(
                "{env_var}={} is not an executable file",
                path.display()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join(name))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let fallbacks = fallbacks.iter().map(PathBuf::from);
    on_path
        .into_iter()
        .chain(fallbacks)
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| {
            format!("{name} not found ({env_var} unset, none on PATH or in the usual places)")
        })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// The last `max` bytes of a log file, for panic messages.
pub(crate) fn log_tail(path: &Path, max: usize) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = text.len().saturating_sub(max);
    String::from_utf8_lossy(&text[start..]).into_owned()
}

/// A running server process; stopped when dropped.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    child: Child,
    name: String,
    reaped: bool,
}

impl ServerProcess {
    /// Spawns `command` in a new process group, stdin closed, stdout and
    /// stderr appended to `log`.
    pub(crate) fn spawn(name: &str, mut command: Command, log: &Path) -> std::io::Result<Self> {
        let log_file = OpenOptions::new().create(true).append(true).open(log)?;
        let child = command
            .stdin(Stdio::null())
            .stdout(log_file.try_clone()?)
            .stderr(log_file)
            .process_group(0)
            .spawn()?;
        Ok(ServerProcess {
            child,
            name: name.to_string(),
            reaped: false,
        })
    }

    /// The process id (also its process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has ended. It is not reaped here: until
    /// [`stop`](Self::stop) reaps it, its pid (= the group id) cannot be
    /// reused, so signalling the group never hits a stranger.
    pub(crate) fn has_exited(&self) -> bool {
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
        match waitid(WaitId::Pid(Pid::from_child(&self.child)), options) {
            Ok(status) => status.is_some(),
            // Already reaped (ECHILD): certainly ended.
            Err(_) => true,
        }
    }

    /// Sends `signal` to the process.
    pub(crate) fn signal(&self, signal: Signal) -> std::io::Result<()> {
        if self.reaped {
            return Err(std::io::Error::other(format!(
                "{} was already stopped",
                self.name
            )));
        }
        rustix::process::kill_process(Pid::from_child(&self.child), signal).map_err(Into::into)
    }

    /// SIGTERM to the whole group, wait up to [`GRACE`], then SIGKILL to
    /// what is left of the group (helpers, workers), then reap. Blocks until
    /// the main process is gone. Idempotent.
    pub(crate) fn stop(&mut self) {
        if self.reaped {
            return;
        }
        let group = Pid::from_child(&self.child);
        if !self.has_exited() {
            let _ = kill_process_group(group, Signal::TERM);
            let deadline = Instant::now() + GRACE;
            while !self.has_exited() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if !self.has_exited() {
                eprintln!(
                    "{} (pid {}) ignored SIGTERM for {GRACE:?}; killing it",
                    self.name,
                    self.pid()
                );
            }
        }
        let _ = kill_process_group(group, Signal::KILL);
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
