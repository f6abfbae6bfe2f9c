//! `Site`: one test domain with its own engine, nginx, domain directory and
//! port block, plus the compose files the stack tests deploy.

use std::collections::BTreeMap;
use std::time::Duration;

use hostkit_deploy::engine::inventory::Inventory;
use hostkit_deploy::engine::{Applied, Engine, EngineOptions, StackSpec};
use hostkit_deploy::error::DeployError;
use hostkit_deploy::ports::PortBlock;
use hostkit_deploy::progress::RecordingSink;
use hostkit_deploy::proxy::Proxy;
use hostkit_proto::Domain;
use hostkit_tests::{TestDocker, TestNginx, fixtures};

/// The three-service stack: web (main, behind nginx) → api → db (named volume).
pub fn three_service_stack(web: &str, db_env: &str) -> String {
    format!(
        r#"
x-health: &fast
  interval: 1s
  timeout: 3s
  retries: 3
services:
  web:
    image: hostkit-test/web:{web}
    ports: ["8080"]
    labels:
      hostkit.expose: "true"
    environment:
      API_URL: http://api:8081/
    depends_on:
      api:
        condition: service_healthy
    healthcheck: *fast
  api:
    image: hostkit-test/api:v1
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      <<: *fast
  db:
    image: hostkit-test/db:latest
    ports: ["5432"]
    environment:
      DB_MODE: {db_env}
    volumes:
      - data:/data
volumes:
  data: {{}}
"#
    )
}

/// A single web service.
pub fn web_only(version: &str, replicas: u32) -> String {
    format!(
        r#"
services:
  web:
    image: hostkit-test/web:{version}
    ports: ["8080"]
    deploy:
      replicas: {replicas}
    healthcheck:
      interval: 1s
      timeout: 3s
      retries: 3
"#
    )
}

/// Everything one test domain needs.
pub struct Site {
    pub docker: TestDocker,
    pub nginx: TestNginx,
    pub engine: Engine,
    pub domain: Domain,
    pub dir: tempfile::TempDir,
    pub ports: PortBlock,
    pub sink: RecordingSink,
}

impl Site {
    /// A fresh domain with the fixture images loaded.
    pub async fn new() -> Site {
        Self::with_domain(TestDocker::unique_domain).await
    }

    /// A site whose domain `name` picks (its Compose project is registered
    /// for cleanup).
    pub async fn with_domain(name: impl FnOnce(&TestDocker) -> String) -> Site {
        let docker = TestDocker::new().await;
        docker
            .load_images([
                fixtures::web("v1"),
                fixtures::web("v2"),
                fixtures::web_unhealthy("v3"),
                fixtures::api("v1"),
                fixtures::db(),
            ])
            .await;
        let nginx = TestNginx::new().await;
        let proxy = Proxy::new(nginx.proxy_config());
        let engine = Engine::new(
            docker.client().clone(),
            Some(proxy),
            EngineOptions {
                drain: Duration::from_millis(500),
                ..EngineOptions::default()
            },
        );
        let domain: Domain = name(&docker).parse().expect("valid test domain");
        docker.register_project(domain.token());
        Site {
            docker,
            nginx,
            engine,
            domain,
            dir: tempfile::tempdir().expect("domain dir"),
            ports: free_port_block(10),
            sink: RecordingSink::default(),
        }
    }

    /// Check, resolve and build the spec of `compose` (no container touched).
    pub async fn spec(&self, compose: &str) -> Result<StackSpec, DeployError> {
        hostkit_tests::deploy::stack_spec(
            self.docker.client(),
            &self.domain,
            self.dir.path(),
            self.ports,
            compose,
            Duration::from_secs(30),
            &self.sink,
        )
        .await
    }

    /// Deploy `compose`.
    pub async fn deploy(&self, compose: &str) -> Result<Applied, DeployError> {
        let spec = self.spec(compose).await?;
        self.engine.apply(&spec, &self.sink).await
    }

    /// GET `path` through nginx with the site's Host header.
    pub async fn get(&self, path: &str) -> anyhow::Result<(u16, String)> {
        self.nginx.get(self.domain.as_str(), path).await
    }

    /// Container name → id of every container of the project.
    pub async fn containers(&self) -> BTreeMap<String, String> {
        let inventory = Inventory::load(self.docker.client(), &self.domain.token())
            .await
            .expect("list the project's containers");
        inventory
            .all()
            .map(|c| (c.name.clone(), c.id.clone()))
            .collect()
    }

    /// Run `cmd` in `container`; answers (exit code, output).
    pub async fn exec(&self, container: &str, cmd: &[&str]) -> (i64, String) {
        self.docker.exec(container, cmd).await
    }
}

impl Site {
    /// Resolve `name` from inside `container` with busybox's own resolver
    /// (the static busybox's `wget` cannot use the libc resolver).
    pub async fn resolve(&self, container: &str, name: &str) -> Option<String> {
        let (code, out) = self.exec(container, &["nslookup", "-type=a", name]).await;
        if code != 0 {
            return None;
        }
        let after_name = out.split_once("Name:")?.1;
        after_name
            .lines()
            .find_map(|l| l.trim().strip_prefix("Address:"))
            .map(|a| a.trim().to_string())
    }

    /// GET `http://<name>:<port>/` from inside `container`, resolving `name` first.
    pub async fn wget(&self, container: &str, name: &str, port: u16) -> Result<String, String> {
        let ip = self
            .resolve(container, name)
            .await
            .ok_or_else(|| format!("{name} does not resolve"))?;
        self.wget_ip(container, &ip, port).await
    }

    /// GET `http://<ip>:<port>/` from inside `container` (3 s at most;
    /// busybox's `wget -T` crashes, so `timeout` bounds it).
    pub async fn wget_ip(&self, container: &str, ip: &str, port: u16) -> Result<String, String> {
        let url = format!("http://{ip}:{port}/");
        match self
            .exec(container, &["timeout", "3", "wget", "-q", "-O-", &url])
            .await
        {
            (0, body) => Ok(body),
            (code, out) => Err(format!("wget {url} exited {code}: {out}")),
        }
    }
}

/// A block of `len` free ports on 127.0.0.1.
pub fn free_port_block(len: u16) -> PortBlock {
    PortBlock {
        start: hostkit_tests::util::free_port_block(len),
        len,
    }
}
