//! [`TestRegistry`]: a real Docker registry (Debian's `docker-registry`, the
//! CNCF distribution v2 server) for one test, on a free 127.0.0.1 port with
//! its own storage in a temporary directory, killed on drop.
//!
//! The Docker Engine trusts registries on loopback without TLS (its default
//! insecure registries include `127.0.0.0/8`), so tests can push to and pull
//! from `127.0.0.1:<port>/…` without configuring the engine.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tempfile::TempDir;
use tokio::time::Instant;

use crate::process::{ServerProcess, find_program, log_tail};
use crate::util::{free_port, http_get};

/// How long a start may take until `GET /v2/` answers.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

const INSTALL_HINT: &str = "the tests that pull images need a local registry: \
     `apt-get install docker-registry` (installs /usr/bin/docker-registry), \
     or set HOSTKIT_DOCKER_REGISTRY=/path/to/registry";

/// A registry process owned by one test. Its configuration, storage and log
/// live in a temporary directory; it listens on `127.0.0.1:<port>` only.
#[derive(Debug)]
pub struct TestRegistry {
    binary: PathBuf,
    dir: TempDir,
    port: u16,
    process: Option<ServerProcess>,
}

impl TestRegistry {
    /// Starts a registry and waits (bounded) until `GET /v2/` answers 200.
    /// Panics with an install hint when the binary is missing.
    pub async fn new() -> TestRegistry {
        let binary = find_program(
            "HOSTKIT_DOCKER_REGISTRY",
            "docker-registry",
            &["/usr/bin/docker-registry"],
        )
        .unwrap_or_else(|e| panic!("{e}; {INSTALL_HINT}"));
        let dir = tempfile::Builder::new()
            .prefix("hostkit-registry-")
            .tempdir()
            .expect("create a temporary directory for the registry");
        std::fs::create_dir(dir.path().join("storage")).expect("create the registry storage");
        let mut registry = TestRegistry {
            binary,
            dir,
            port: 0,
            process: None,
        };
        // A free port can be taken by another process before the registry
        // binds it: retry on fresh ports.
        for attempt in 1..=5 {
            registry.port = free_port();
            std::fs::write(registry.config_path(), registry.config())
                .expect("write the registry configuration");
            match registry.spawn_and_wait().await {
                Ok(()) => return registry,
                Err(log) if attempt < 5 && log.contains("address already in use") => continue,
                Err(log) => panic!(
                    "the registry did not start ({}):\n{log}",
                    registry.binary.display()
                ),
            }
        }
        unreachable!("the last attempt either returns or panics")
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("config.yml")
    }

    /// The registry's output (start-up, requests, errors).
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("registry.log")
    }

    fn config(&self) -> String {
        format!(
            "# Written by hostkit-tests (TestRegistry).
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
",
            storage = self.dir.path().join("storage").display(),
            port = self.port,
        )
    }

    async fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log = self.log_path();
        let _ = std::fs::remove_file(&log);
        let mut command = Command::new(&self.binary);
        command.arg("serve").arg(self.config_path());
        let process = ServerProcess::spawn("docker-registry", command, &log).unwrap_or_else(|e| {
            panic!("cannot run {}: {e}; {INSTALL_HINT}", self.binary.display())
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if process.has_exited() {
                drop(process);
                return Err(log_tail(&log, 4096));
            }
            let probe = http_get(("127.0.0.1", self.port), &self.host(), "/v2/").await;
            if matches!(probe, Ok((200, _))) {
                self.process = Some(process);
                return Ok(());
            }
            if Instant::now() >= deadline {
                drop(process);
                return Err(format!(
                    "GET /v2/ did not answer 200 after {READY_TIMEOUT:?} (last: {probe:?}); log:\n{}",
                    log_tail(&log, 4096)
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`: the registry part of image references.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:<port>/<name>`: a repository (or `name:tag` reference) in
    /// this registry.
    pub fn reference(&self, name: &str) -> String {
        format!("{}/{name}", self.host())
    }

    /// The tags the registry holds for `repository` (a path like
    /// `team/web`, without the host), from `GET /v2/<repository>/tags/list`;
    /// empty when it has none.
    pub async fn tags(&self, repository: &str) -> anyhow::Result<Vec<String>> {
        let path = format!("/v2/{repository}/tags/list");
        let (status, body) = http_get(("127.0.0.1", self.port), &self.host(), &path).await?;
        if status == 404 {
            return Ok(Vec::new());
        }
        anyhow::ensure!(status == 200, "GET {path} answered {status}: {body}");
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let list: TagList = serde_json::from_str(&body)?;
        Ok(list.tags.unwrap_or_default())
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.stop();
        }
    }
}
