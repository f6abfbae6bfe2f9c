//! [`TestNginx`]: a real nginx for one test, run in the foreground with its
//! own prefix in a temporary directory (config, logs, pid, temp paths all
//! inside), a default server on a free 127.0.0.1 port answering 404, and an
//! `include <conf_dir>/*.conf;` for the per-domain server blocks under test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::Signal;
use tempfile::TempDir;
use tokio::time::Instant;

use crate::process::{ServerProcess, find_program, log_tail};
use crate::util::{free_port, http_get};

/// How long a start or a reload may take.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

const INSTALL_HINT: &str = "the end-to-end tests need nginx: `apt-get install nginx-light` \
     (installs /usr/sbin/nginx), or set HOSTKIT_NGINX=/path/to/nginx";

/// An nginx master process (plus one worker) owned by one test; stopped on drop.
///
/// Layout under [`prefix`](Self::prefix): `nginx.conf`, `conf.d/` (the
/// [`conf_dir`](Self::conf_dir)), `logs/error.log` (level `notice`),
/// `logs/access.log`, `nginx.pid`, `temp/…`.
#[derive(Debug)]
pub struct TestNginx {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    tls_port: u16,
    process: Option<ServerProcess>,
}

impl TestNginx {
    /// Writes the configuration, starts nginx and waits (bounded) until its
    /// default server answers 404. Panics with an install hint when nginx is
    /// missing.
    pub async fn new() -> TestNginx {
        let binary = nginx_binary().to_path_buf();
        let dir = tempfile::Builder::new()
            .prefix("hostkit-nginx-")
            .tempdir()
            .expect("create a temporary directory for nginx");
        for sub in ["conf.d", "logs", "temp", "sites-available", "sites-enabled"] {
            std::fs::create_dir(dir.path().join(sub)).expect("create nginx prefix directories");
        }
        let mut nginx = TestNginx {
            binary,
            dir,
            port: 0,
            tls_port: 0,
            process: None,
        };
        for attempt in 1..=5 {
            nginx.port = free_port();
            nginx.tls_port = free_port();
            std::fs::write(nginx.conf_path(), nginx.main_config()).expect("write nginx.conf");
            match nginx.spawn_and_wait().await {
                Ok(()) => return nginx,
                Err(log) if attempt < 5 && log.contains("Address already in use") => continue,
                Err(log) => panic!("nginx did not start ({}):\n{log}", nginx.binary.display()),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    fn main_config(&self) -> String {
        let prefix = self.prefix().display().to_string();
        let temp = |name: &str| format!("{prefix}/temp/{name}");
        // As root, nginx would run its worker as `nobody`, which cannot use
        // temp paths inside a root-owned temporary directory.
        let user = if rustix::process::geteuid().is_root() {
            "user root;\n"
        } else {
            ""
        };
        format!(
            "# Written by hostkit-tests (TestNginx).
{user}worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log notice;
worker_shutdown_timeout 5s;

events {{
    worker_connections 256;
}}

http {{
    access_log {prefix}/logs/access.log;
    client_body_temp_path {client};
    proxy_temp_path {proxy};
    fastcgi_temp_path {fastcgi};
    uwsgi_temp_path {uwsgi};
    scgi_temp_path {scgi};

    server {{
        listen 127.0.0.1:{port} default_server;
        server_name _;
        return 404;
    }}

    include {conf_dir}/*.conf;
    include {prefix}/sites-enabled/*;
}}
",
            client = temp("client_body"),
            proxy = temp("proxy"),
            fastcgi = temp("fastcgi"),
            uwsgi = temp("uwsgi"),
            scgi = temp("scgi"),
            port = self.port,
            conf_dir = self.conf_dir().display(),
        )
    }

    /// The argument list every nginx invocation of this instance uses:
    /// `-p <prefix>/ -c <prefix>/nginx.conf -e <prefix>/logs/error.log` (`-e`
    /// so that not even start-up messages go to the build's default log).
    fn base_args(&self) -> Vec<String> {
        vec![
            "-p".into(),
            format!("{}/", self.prefix().display()),
            "-c".into(),
            self.conf_path().display().to_string(),
            "-e".into(),
            self.error_log_path().display().to_string(),
        ]
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.error_log_path();
        let log_before = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let mut command = Command::new(&self.binary);
        command.args(self.base_args());
        let process =
            ServerProcess::spawn("nginx", command, &self.dir.path().join("logs/stderr.log"))
                .unwrap_or_else(|e| {
                    panic!("cannot run {}: {e}; {INSTALL_HINT}", self.binary.display())
                });
        let this_run = || {
            let text = std::fs::read(&log).unwrap_or_default();
            let start = usize::try_from(log_before).unwrap_or(0).min(text.len());
            String::from_utf8_lossy(&text[start..]).into_owned()
                + &log_tail(&self.dir.path().join("logs/stderr.log"), 4096)
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if process.has_exited() {
                drop(process);
                return Err(this_run());
            }
            let probe = http_get(("127.0.0.1", self.port), "default.invalid", "/").await;
            if matches!(probe, Ok((404, _))) {
                self.process = Some(process);
                return Ok(());
            }
            if Instant::now() >= deadline {
                drop(process);
                return Err(format!(
                    "no 404 from the default server after {READY_TIMEOUT:?} (last: {probe:?}); log:\n{}",
                    this_run()
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// HostKit v1's `sites-available` of this instance (a v1 site's file).
    pub fn v1_sites_available(&self) -> PathBuf {
        self.prefix().join("sites-available")
    }

    /// HostKit v1's `sites-enabled` of this instance (included by nginx).
    pub fn v1_sites_enabled(&self) -> PathBuf {
        self.prefix().join("sites-enabled")
    }

    /// The port (on 127.0.0.1) of the default server; per-domain server
    /// blocks should `listen 127.0.0.1:<listen_port>;` with their `server_name`.
    pub fn listen_port(&self) -> u16 {
        self.port
    }

    /// The port (on 127.0.0.1) TLS server blocks listen on (nginx opens it
    /// once a block uses it).
    pub fn tls_port(&self) -> u16 {
        self.tls_port
    }

    /// `127.0.0.1:<listen_port>`: the `listen` argument for server blocks.
    pub fn listen(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `GET path` through nginx with `Host: host` (see [`http_get`]).
    pub async fn get(&self, host: &str, path: &str) -> anyhow::Result<(u16, String)> {
        http_get(("127.0.0.1", self.port), host, path).await
    }

    /// The directory whose `*.conf` files are included inside `http {}`.
    pub fn conf_dir(&self) -> PathBuf {
        self.prefix().join("conf.d")
    }

    /// The nginx prefix (`-p`).
    pub fn prefix(&self) -> &Path {
        self.dir.path()
    }

    /// The main configuration file (`-c`).
    pub fn conf_path(&self) -> PathBuf {
        self.prefix().join("nginx.conf")
    }

    /// The pid file (what `nginx -s reload` reads).
    pub fn pid_path(&self) -> PathBuf {
        self.prefix().join("nginx.pid")
    }

    /// The error log (level `notice`, so it records reloads and workers).
    pub fn error_log_path(&self) -> PathBuf {
        self.prefix().join("logs/error.log")
    }

    /// The access log.
    pub fn access_log_path(&self) -> PathBuf {
        self.prefix().join("logs/access.log")
    }

    /// The nginx binary in use.
    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// How HostKit's proxy drives this instance (its conf dir, its `nginx -t`
    /// and reload commands, its listeners; no certbot certificates).
    pub fn proxy_config(&self) -> hostkit_deploy::proxy::ProxyConfig {
        hostkit_deploy::proxy::ProxyConfig {
            conf_dir: self.conf_dir(),
            test_command: self.test_command(),
            reload_command: self.reload_command(),
            listen: self.listen(),
            listen_tls: format!("127.0.0.1:{} ssl", self.tls_port),
            certs_dir: None,
            v1_sites_enabled: Some(self.v1_sites_enabled()),
            ..hostkit_deploy::proxy::ProxyConfig::default()
        }
    }

    /// The command (argv) that checks this instance's configuration:
    /// `nginx -p <prefix>/ -c <conf> -e <error log> -t`; for code under test that runs the check itself.
    pub fn test_command(&self) -> Vec<String> {
        let mut argv = vec![self.binary.display().to_string()];
        argv.extend(self.base_args());
        argv.push("-t".into());
        argv
    }

    /// The command (argv) that reloads this instance:
    /// `nginx -p <prefix>/ -c <conf> -e <error log> -s reload`. It returns
    /// at once; poll (e.g. [`get`](Self::get) in [`wait_for`](crate::wait_for))
    /// until the new configuration answers.
    pub fn reload_command(&self) -> Vec<String> {
        let mut argv = vec![self.binary.display().to_string()];
        argv.extend(self.base_args());
        argv.extend(["-s".into(), "reload".into()]);
        argv
    }

    /// `nginx -t` on this instance's configuration (including `conf_dir`):
    /// `Ok(output)` when valid, `Err(output)` (nginx's `[emerg]` message)
    /// when not.
    pub async fn check_config(&self) -> Result<String, String> {
        let argv = self.test_command();
        let output = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .await
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {INSTALL_HINT}", argv[0]));
        let text = String::from_utf8_lossy(&output.stderr).into_owned()
            + &String::from_utf8_lossy(&output.stdout);
        if output.status.success() {
            Ok(text)
        } else {
            Err(text)
        }
    }

    /// Reloads the configuration (SIGHUP to the master) and waits until it is
    /// in effect: a new worker started and the old one exited, so every new
    /// connection sees the new configuration. `Err(message)` when nginx
    /// rejected the new configuration (it keeps serving the old one). Panics
    /// when nginx is not running or the reload does not finish in time.
    pub async fn reload(&self) -> Result<(), String> {
        let process = self
            .process
            .as_ref()
            .expect("TestNginx::reload: nginx is not running");
        let log_path = self.error_log_path();
        let before = std::fs::read_to_string(&log_path).unwrap_or_default();
        let old_workers = worker_pids(&before);
        process.signal(Signal::HUP).expect("send SIGHUP to nginx");
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let new = log.get(before.len()..).unwrap_or_default();
            let reloaded = new.contains("start worker process");
            let old_gone = old_workers
                .iter()
                .all(|pid| new.contains(&format!("worker process {pid} exited")));
            if reloaded && old_gone {
                return Ok(());
            }
            if !reloaded
                && let Some(line) = new
                    .lines()
                    .find(|l| l.contains("[emerg]") || l.contains("[alert]"))
            {
                return Err(line.to_string());
            }
            if process.has_exited() {
                panic!(
                    "nginx exited during a reload; log:\n{}",
                    self.error_log_tail()
                );
            }
            if Instant::now() >= deadline {
                panic!(
                    "nginx reload did not finish within {READY_TIMEOUT:?}; log since the reload:\n{new}"
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last 8 KiB of the error log.
    pub fn error_log_tail(&self) -> String {
        log_tail(&self.error_log_path(), 8192)
    }
}

/// Pids of the workers the log says are running: started and not exited.
fn worker_pids(log: &str) -> Vec<u32> {
    let pid_after = |line: &str, marker: &str| -> Option<u32> {
        let rest = &line[line.find(marker)? + marker.len()..];
        rest.split_whitespace().next()?.parse().ok()
    };
    let mut running = Vec::new();
    for line in log.lines() {
        if let Some(pid) = pid_after(line, "start worker process ") {
            running.push(pid);
        } else if let Some(pid) = pid_after(line, "worker process ")
            && line.contains(" exited ")
        {
            running.retain(|p| *p != pid);
        }
    }
    running
}

/// The nginx binary: `HOSTKIT_NGINX`, else `nginx` on PATH, else `/usr/sbin/nginx`.
fn nginx_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        find_program("HOSTKIT_NGINX", "nginx", &["/usr/sbin/nginx"])
            .unwrap_or_else(|e| panic!("{e}: {INSTALL_HINT}"))
    })
}

#[cfg(test)]
mod tests {
    use super::worker_pids;

    #[test]
    fn tracks_worker_pids_from_the_error_log() {
        let log = "2026/01/01 [notice] 10#10: start worker processes\n\
                   2026/01/01 [notice] 10#10: start worker process 11\n\
                   2026/01/01 [notice] 10#10: signal 1 (SIGHUP) received from 5, reconfiguring\n\
                   2026/01/01 [notice] 10#10: start worker process 12\n\
                   2026/01/01 [notice] 10#10: worker process 11 exited with code 0\n";
        assert_eq!(worker_pids(log), vec![12]);
    }
}
