//! `bench-deploy`: the deploy budgets of DESIGN §9, measured in one run on
//! one machine against the tools they are budgeted against.
//!
//! 1. No-op redeploy of a running 3-service stack: HostKit's
//!    `check + resolve + apply` vs `docker-compose up -d` on the same compose
//!    file (another project, same images). Budget: ≤ 1/10.
//! 2. Cold deploy of that stack from a `docker save` tarball:
//!    `images::load_file` + `check + resolve + apply` on a fresh domain vs
//!    `docker load -i` + `docker-compose up -d` on a fresh project. Budget: ≤.
//! 3. Loading a tarball of at least 500 MB: `images::load_file` (in a child
//!    process, so its peak RSS is the load's alone) vs `docker load -i`.
//!    Budgets: ≥ 0.9× the throughput, memory that does not grow with the tarball.
//!
//! ```sh
//! cargo build --release -p hostkit-tests --bin bench-deploy
//! target/release/bench-deploy [--runs 5] [--stack-pad-mib 32] [--big-mib 512]
//! ```
//!
//! Everything it creates (containers, networks, volumes, images, the
//! docker-compose projects) is removed at the end, also on error or Ctrl-C.
//! It never prunes: it removes only the images it loaded, and checks that the
//! engine really deleted their unique top layer, so each load is a first load.
//! `bench-deploy load-only <tarball>` is the child of measurement 3.
//!
//! What is compared: HostKit's side of 1 and 2 is a library call, as in the
//! worker (a daemon), while docker-compose and the docker CLI are processes
//! (their start-up is part of what they cost). In 2 the images share their
//! lower layers (busybox, the fixture files) with the `hostkit-test/*`
//! fixtures, which stay in the engine; each run's top layers and configs are
//! new, for both sides. docker-compose `up -d` waits for the health of the
//! services others depend on (`condition: service_healthy`) but not for the
//! last one's; HostKit's apply waits for all three and switches nginx, so the
//! report splits HostKit's time into started / healthy / nginx switched and
//! also times the peer until its web container is healthy. Each pair of
//! measurements alternates which side goes first.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use bollard::Docker;
use bollard::models::HealthStatusEnum;
use bollard::query_parameters::RemoveImageOptions;
use hostkit_deploy::engine::{Applied, Change, Engine, EngineOptions, StackSpec};
use hostkit_deploy::images;
use hostkit_deploy::ports::PortBlock;
use hostkit_deploy::progress::{NoProgress, Progress, ProgressSink, ServiceState};
use hostkit_deploy::proxy::Proxy;
use hostkit_proto::Domain;
use hostkit_tests::{ImageSpec, TarballBuilder, TestDocker, TestNginx, compose_project, fixtures};
use tokio::time::Instant;

const MIB: u64 = 1 << 20;
/// How often the peer's web container is polled for health, and a child's
/// `/proc/<pid>/status` for its peak RSS.
const POLL: Duration = Duration::from_millis(20);
/// Health gate deadline for HostKit's deploys (the machine is shared).
const HEALTH_TIMEOUT: Duration = Duration::from_secs(60);

/// Command-line options.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Timed repetitions of each measurement (after one warm-up where useful).
    runs: usize,
    /// Size of the unique padding layer on top of each cold-deploy image.
    stack_pad_mib: u64,
    /// Size of the padding layer of the throughput image.
    big_mib: u64,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            runs: 5,
            stack_pad_mib: 32,
            big_mib: 512,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> anyhow::Result<u64> {
                let v = args.next().ok_or_else(|| anyhow!("{name} needs a value"))?;
                v.parse()
                    .with_context(|| format!("{name} {v}: not a number"))
            };
            match arg.as_str() {
                "--runs" => options.runs = usize::try_from(value("--runs")?)?,
                "--stack-pad-mib" => options.stack_pad_mib = value("--stack-pad-mib")?,
                "--big-mib" => options.big_mib = value("--big-mib")?,
                "-h" | "--help" => bail!(
                    "usage: bench-deploy [--runs N] [--stack-pad-mib M] [--big-mib M]\n       \
                     bench-deploy load-only <docker-save tarball>"
                ),
                other => bail!("unknown argument {other:?} (try --help)"),
            }
        }
        ensure!(options.runs >= 1, "--runs must be at least 1");
        ensure!(options.big_mib >= 1, "--big-mib must be at least 1");
        Ok(options)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench-deploy: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = if args.first().map(String::as_str) == Some("load-only") {
        match args.get(1) {
            Some(path) => runtime.block_on(load_only(Path::new(path))),
            None => Err(anyhow!("usage: bench-deploy load-only <tarball>")),
        }
    } else {
        Options::parse(&args).and_then(|options| {
            runtime.block_on(async {
                // Ctrl-C drops the benchmark future, so every guard cleans up.
                tokio::select! {
                    result = bench(options) => result,
                    _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
                }
            })
        })
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-deploy: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The child of measurement 3: load one tarball with the product's code and
/// print `key=value` pairs (time, bytes, peak RSS before and after the load).
async fn load_only(path: &Path) -> anyhow::Result<()> {
    let docker = hostkit_deploy::docker::connect().await?;
    let hwm_before = vm_hwm_kib(Path::new("/proc/self/status"))?;
    let started = Instant::now();
    let loaded = images::load_file(&docker, path, &NoProgress).await?;
    let secs = started.elapsed().as_secs_f64();
    let hwm_after = vm_hwm_kib(Path::new("/proc/self/status"))?;
    println!(
        "secs={secs} bytes={} hwm_before_kib={hwm_before} hwm_kib={hwm_after} refs={}",
        loaded.bytes,
        loaded.references.join(",")
    );
    Ok(())
}

/// `VmHWM` (peak resident set size) in KiB from a `/proc/<pid>/status` file.
fn vm_hwm_kib(status: &Path) -> anyhow::Result<u64> {
    let text =
        std::fs::read_to_string(status).with_context(|| format!("read {}", status.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no VmHWM in {}", status.display()))
}

async fn bench(options: Options) -> anyhow::Result<()> {
    // Declared first, dropped last: removes whatever the guards below miss.
    let docker = TestDocker::new().await;
    let env = Environment::probe(&docker).await?;
    println!("{}", env.describe(options));

    let host = Host::new(&docker).await?;
    let run_id = docker.id()[docker.id().len() - 10..].to_string();
    let mut seeds = Seeds::new();

    eprintln!("[1/3] no-op redeploy");
    let noop = noop_redeploy(&host, options).await?;
    eprintln!("[2/3] cold deploy");
    let cold = cold_deploy(&host, options, &run_id, &mut seeds).await?;
    eprintln!("[3/3] tarball loading");
    let load = load_throughput(&docker, options, &run_id, &mut seeds).await?;

    let mut out = String::new();
    report_noop(&mut out, &noop);
    report_cold(&mut out, &cold, options);
    report_load(&mut out, &load, options);
    let _ = writeln!(out, "load average at the end: {}", load_average());
    println!("{out}");
    Ok(())
}

/// What the run is measured on.
#[derive(Debug)]
struct Environment {
    date: String,
    cores: usize,
    engine: String,
    api: String,
    driver: String,
    cli: String,
    compose: String,
    load_average: String,
}

impl Environment {
    async fn probe(docker: &TestDocker) -> anyhow::Result<Environment> {
        let version = docker.client().version().await.context("docker version")?;
        let info = docker.client().info().await.context("docker info")?;
        Ok(Environment {
            date: command_line("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).await?,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            engine: version.version.unwrap_or_default(),
            api: version.api_version.unwrap_or_default(),
            driver: info.driver.unwrap_or_default(),
            cli: command_line("docker", &["version", "--format", "{{.Client.Version}}"]).await?,
            compose: command_line("docker-compose", &["version", "--short"]).await?,
            load_average: load_average(),
        })
    }

    fn describe(&self, options: Options) -> String {
        format!(
            "bench-deploy {date}: {cores} cores; Docker Engine {engine} (API {api}, storage \
             driver {driver}); docker CLI {cli}; docker-compose {compose}\n\
             runs: {runs} (medians below), cold-deploy padding {pad} MiB per image, \
             throughput padding {big} MiB; load average at the start: {load}\n",
            date = self.date,
            cores = self.cores,
            engine = self.engine,
            api = self.api,
            driver = self.driver,
            cli = self.cli,
            compose = self.compose,
            runs = options.runs,
            pad = options.stack_pad_mib,
            big = options.big_mib,
            load = self.load_average,
        )
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Runs `program args`, answers its trimmed stdout; fails on a non-zero exit.
async fn command_line(program: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("run {program}"))?;
    ensure!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

// ───────────────────────────── HostKit side ─────────────────────────────

/// The product as the worker drives it: one engine with a real nginx.
struct Host<'a> {
    docker: &'a TestDocker,
    nginx: TestNginx,
    engine: Engine,
}

/// One HostKit domain: its directory and port block.
struct Site {
    domain: Domain,
    dir: tempfile::TempDir,
    ports: PortBlock,
}

impl<'a> Host<'a> {
    async fn new(docker: &'a TestDocker) -> anyhow::Result<Host<'a>> {
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
        Ok(Host {
            docker,
            nginx,
            engine,
        })
    }

    fn client(&self) -> &Docker {
        self.docker.client()
    }

    /// A fresh domain (its Compose project registered for cleanup).
    fn site(&self) -> anyhow::Result<Site> {
        Ok(Site {
            domain: self.docker.unique_domain().parse()?,
            dir: tempfile::tempdir().context("domain directory")?,
            ports: PortBlock {
                start: hostkit_tests::util::free_port_block(10),
                len: 10,
            },
        })
    }

    /// `stack::check` + `stack::resolve`, as the worker runs them for a job.
    async fn spec(
        &self,
        site: &Site,
        compose: &str,
        sink: &dyn ProgressSink,
    ) -> anyhow::Result<StackSpec> {
        Ok(hostkit_tests::deploy::stack_spec(
            self.client(),
            &site.domain,
            site.dir.path(),
            site.ports,
            compose,
            HEALTH_TIMEOUT,
            sink,
        )
        .await?)
    }

    /// check + resolve + apply.
    async fn deploy(
        &self,
        site: &Site,
        compose: &str,
        sink: &dyn ProgressSink,
    ) -> anyhow::Result<Applied> {
        let spec = self.spec(site, compose, sink).await?;
        Ok(self.engine.apply(&spec, sink).await?)
    }

    /// Checks that nginx serves the site's web service.
    async fn check_serves(&self, site: &Site) -> anyhow::Result<()> {
        let (status, body) = self.nginx.get(site.domain.as_str(), "/").await?;
        ensure!(
            status == 200 && body == "web v1\n",
            "nginx answered {status} {body:?} for {}",
            site.domain
        );
        Ok(())
    }

    /// Removes the site's stack (containers, networks, volumes, nginx file).
    async fn remove(&self, site: &Site) -> anyhow::Result<()> {
        self.engine
            .remove(&site.domain, &site.domain.token(), true, &NoProgress)
            .await?;
        Ok(())
    }
}

/// Records when each replica started and became healthy and when nginx was
/// switched, to split a deploy into "all containers started", "health gate
/// passed" and "nginx serves it".
#[derive(Debug, Default)]
struct Timeline {
    events: Mutex<Timestamps>,
}

#[derive(Debug, Default, Clone)]
struct Timestamps {
    started: Vec<Instant>,
    healthy: Vec<Instant>,
    switched: Option<Instant>,
}

impl Timeline {
    fn get(&self) -> Timestamps {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl ProgressSink for Timeline {
    fn report(&self, progress: Progress) {
        let now = Instant::now();
        let mut events = self.events.lock().unwrap_or_else(|e| e.into_inner());
        match progress {
            Progress::Service {
                state: ServiceState::Started,
                ..
            } => events.started.push(now),
            Progress::Service {
                state: ServiceState::Healthy,
                ..
            } => events.healthy.push(now),
            Progress::ProxySwitched { .. } => events.switched = Some(now),
            _ => {}
        }
    }
}

// ─────────────────────────── docker-compose side ───────────────────────────

/// A docker-compose v1 project with its compose file in a temporary
/// directory; `down -v` on drop if it may still be up.
struct ComposeProject {
    name: String,
    dir: tempfile::TempDir,
    up: bool,
}

impl ComposeProject {
    fn new(name: String, compose: &str) -> anyhow::Result<ComposeProject> {
        let dir = tempfile::Builder::new()
            .prefix("hostkit-bench-compose-")
            .tempdir()?;
        std::fs::write(dir.path().join("docker-compose.yml"), compose)?;
        Ok(ComposeProject {
            name,
            dir,
            up: false,
        })
    }

    fn args(&self, rest: &[&str]) -> Vec<String> {
        let file = self.dir.path().join("docker-compose.yml");
        let mut args = vec![
            "--ansi".to_string(),
            "never".into(),
            "-p".into(),
            self.name.clone(),
            "-f".into(),
            file.display().to_string(),
        ];
        args.extend(rest.iter().map(|s| s.to_string()));
        args
    }

    /// `docker-compose up -d`; answers its stderr (where it reports).
    async fn up(&mut self) -> anyhow::Result<String> {
        self.up = true;
        let output = tokio::process::Command::new("docker-compose")
            .args(self.args(&["up", "-d"]))
            .stdin(Stdio::null())
            .output()
            .await
            .context("run docker-compose (v1.29 at /usr/bin/docker-compose)")?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        ensure!(
            output.status.success(),
            "docker-compose -p {} up -d failed: {stderr}",
            self.name
        );
        Ok(stderr)
    }

    /// Name of the first container of `service` (docker-compose v1 naming).
    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.name)
    }

    /// `docker-compose down -v`.
    async fn down(&mut self) -> anyhow::Result<()> {
        let output = tokio::process::Command::new("docker-compose")
            .args(self.args(&["down", "-v", "--timeout", "5"]))
            .stdin(Stdio::null())
            .output()
            .await
            .context("run docker-compose down")?;
        ensure!(
            output.status.success(),
            "docker-compose -p {} down -v failed: {}",
            self.name,
            String::from_utf8_lossy(&output.stderr)
        );
        self.up = false;
        Ok(())
    }
}

impl Drop for ComposeProject {
    fn drop(&mut self) {
        if !self.up {
            return;
        }
        let status = std::process::Command::new("docker-compose")
            .args(self.args(&["down", "-v", "--timeout", "5"]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!(
                "bench-deploy: docker-compose -p {} down -v failed ({status:?}); \
                 the Docker cleanup removes its containers by project label",
                self.name
            );
        }
    }
}

/// Polls until `container` is healthy.
async fn wait_healthy(docker: &Docker, container: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + HEALTH_TIMEOUT;
    loop {
        let inspect = docker.inspect_container(container, None).await?;
        let health = inspect.state.and_then(|s| s.health).and_then(|h| h.status);
        if health == Some(HealthStatusEnum::HEALTHY) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{container} not healthy after {HEALTH_TIMEOUT:?} ({health:?})"
        );
        tokio::time::sleep(POLL).await;
    }
}

// ─────────────────────────────── the stack ───────────────────────────────

/// Image references of the three services.
#[derive(Debug, Clone)]
struct StackImages {
    web: String,
    api: String,
    db: String,
}

impl StackImages {
    fn fixtures() -> StackImages {
        StackImages {
            web: "hostkit-test/web:v1".into(),
            api: "hostkit-test/api:v1".into(),
            db: "hostkit-test/db:latest".into(),
        }
    }
}

/// How a service publishes its port: HostKit takes a container port and
/// assigns a host port from the domain's block (on 127.0.0.1); the peer gets
/// an ephemeral host port on 127.0.0.1 from the engine.
#[derive(Debug, Clone, Copy)]
enum Publish {
    HostKit,
    Compose,
}

impl Publish {
    fn port(self, port: u16) -> String {
        match self {
            Publish::HostKit => format!("\"{port}\""),
            Publish::Compose => format!("\"127.0.0.1::{port}\""),
        }
    }
}

/// The e2e suite's three-service stack (web → api → db, healthchecks every
/// second, a named volume) with the given images.
fn three_service_stack(images: &StackImages, publish: Publish) -> String {
    format!(
        r#"
x-health: &fast
  interval: 1s
  timeout: 3s
  retries: 3
services:
  web:
    image: {web}
    ports: [{web_port}]
    labels:
      hostkit.expose: "true"
    environment:
      API_URL: http://api:8081/
    depends_on:
      api:
        condition: service_healthy
    healthcheck: *fast
  api:
    image: {api}
    depends_on:
      db:
        condition: service_healthy
    healthcheck:
      <<: *fast
  db:
    image: {db}
    ports: [{db_port}]
    environment:
      DB_MODE: a
    volumes:
      - data:/data
volumes:
  data: {{}}
"#,
        web = images.web,
        api = images.api,
        db = images.db,
        web_port = publish.port(fixtures::WEB_PORT),
        db_port = publish.port(fixtures::DB_PORT),
    )
}

// ───────────────────────────── 1. no-op redeploy ─────────────────────────────

#[derive(Debug)]
struct NoopResult {
    hostkit: Vec<Duration>,
    compose: Vec<Duration>,
}

async fn noop_redeploy(host: &Host<'_>, options: Options) -> anyhow::Result<NoopResult> {
    host.docker
        .load_images([fixtures::web("v1"), fixtures::api("v1"), fixtures::db()])
        .await;
    let images = StackImages::fixtures();

    let site = host.site()?;
    let hk_compose = three_service_stack(&images, Publish::HostKit);
    let applied = host.deploy(&site, &hk_compose, &NoProgress).await?;
    ensure!(
        applied
            .services
            .values()
            .all(|s| s.change == Change::Created)
    );
    host.check_serves(&site).await?;

    let mut peer = ComposeProject::new(
        compose_project(&host.docker.unique_domain()),
        &three_service_stack(&images, Publish::Compose),
    )?;
    peer.up().await?;
    wait_healthy(host.client(), &peer.container("web")).await?;

    let hostkit_noop = async || -> anyhow::Result<Duration> {
        let started = Instant::now();
        let applied = host.deploy(&site, &hk_compose, &NoProgress).await?;
        let took = started.elapsed();
        ensure!(
            !applied.touched_anything(),
            "the no-op redeploy touched something"
        );
        Ok(took)
    };
    // Warm-up of both (page cache, Python imports), not counted.
    hostkit_noop().await?;
    compose_noop(&mut peer).await?;

    let mut result = NoopResult {
        hostkit: Vec::new(),
        compose: Vec::new(),
    };
    for run in 0..options.runs {
        // Alternate who goes first.
        if run % 2 == 0 {
            result.hostkit.push(hostkit_noop().await?);
            result.compose.push(compose_noop(&mut peer).await?);
        } else {
            result.compose.push(compose_noop(&mut peer).await?);
            result.hostkit.push(hostkit_noop().await?);
        }
        eprintln!(
            "  run {}: HostKit {}, docker-compose {}",
            run + 1,
            ms(result.hostkit[run]),
            ms(result.compose[run])
        );
    }
    peer.down().await?;
    host.remove(&site).await?;
    Ok(result)
}

/// `docker-compose up -d` on the running stack; fails unless it reports all
/// three services up to date.
async fn compose_noop(peer: &mut ComposeProject) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let stderr = peer.up().await?;
    let took = started.elapsed();
    ensure!(
        stderr.matches("is up-to-date").count() == 3,
        "docker-compose up -d on the running stack did not report 3 services up to date:\n{stderr}"
    );
    Ok(took)
}

// ───────────────────────────── 2. cold deploy ─────────────────────────────

#[derive(Debug, Default)]
struct ColdResult {
    tarball_bytes: u64,
    hk_load: Vec<Duration>,
    hk_started: Vec<Duration>,
    hk_healthy: Vec<Duration>,
    hk_switched: Vec<Duration>,
    hk_total: Vec<Duration>,
    peer_load: Vec<Duration>,
    peer_up: Vec<Duration>,
    peer_healthy: Vec<Duration>,
}

/// Fresh seeds for padding layers no other image in the engine has.
#[derive(Debug)]
struct Seeds(u64);

impl Seeds {
    fn new() -> Seeds {
        Seeds(ulid::Ulid::new().random() as u64)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        self.0
    }
}

/// One side's images for one cold run: the fixtures with a unique tag and a
/// unique padding layer on top.
#[derive(Debug)]
struct ColdTarball {
    images: StackImages,
    path: PathBuf,
    size: u64,
    /// (tag, chain id of its unique top layer) per image.
    removals: Vec<(String, String)>,
}

async fn cold_tarball(
    dir: &Path,
    name: &str,
    pad: u64,
    seeds: &mut Seeds,
    docker: &TestDocker,
) -> anyhow::Result<ColdTarball> {
    let images = StackImages {
        web: format!("hostkit-bench/web:{name}"),
        api: format!("hostkit-bench/api:{name}"),
        db: format!("hostkit-bench/db:{name}"),
    };
    let specs = [
        fixtures::web("v1").retag(&images.web),
        fixtures::api("v1").retag(&images.api),
        fixtures::db().retag(&images.db),
    ];
    let mut builder = TarballBuilder::new();
    for spec in specs {
        builder = builder.image(spec.with_padding_layer_seeded(pad, seeds.next()));
    }
    let path = dir.join(format!("{name}.tar"));
    let info = builder.write_to_async(path.clone()).await?;
    let mut removals = Vec::new();
    for built in &info.images {
        docker.register_image(built.tags[0].clone());
        removals.push((built.tags[0].clone(), chain_id(&built.diff_ids)));
    }
    Ok(ColdTarball {
        images,
        path,
        size: info.size,
        removals,
    })
}

async fn cold_deploy(
    host: &Host<'_>,
    options: Options,
    run_id: &str,
    seeds: &mut Seeds,
) -> anyhow::Result<ColdResult> {
    let dir = tempfile::Builder::new()
        .prefix("hostkit-bench-cold-")
        .tempdir()?;
    let pad = options.stack_pad_mib * MIB;
    let mut result = ColdResult::default();
    for run in 0..options.runs {
        let hk = cold_tarball(
            dir.path(),
            &format!("{run_id}-hk{run}"),
            pad,
            seeds,
            host.docker,
        )
        .await?;
        let peer = cold_tarball(
            dir.path(),
            &format!("{run_id}-dc{run}"),
            pad,
            seeds,
            host.docker,
        )
        .await?;
        result.tarball_bytes = hk.size;
        if run % 2 == 0 {
            cold_hostkit(host, &hk, &mut result).await?;
            cold_compose(host, &peer, &mut result).await?;
        } else {
            cold_compose(host, &peer, &mut result).await?;
            cold_hostkit(host, &hk, &mut result).await?;
        }
        eprintln!(
            "  run {}: HostKit load {} / all started {} / all healthy {} / total {}; docker load {} / + up -d {} / + web healthy {}",
            run + 1,
            ms(result.hk_load[run]),
            ms(result.hk_started[run]),
            ms(result.hk_healthy[run]),
            ms(result.hk_total[run]),
            ms(result.peer_load[run]),
            ms(result.peer_up[run]),
            ms(result.peer_healthy[run]),
        );
        for tarball in [hk, peer] {
            std::fs::remove_file(&tarball.path)?;
        }
    }
    Ok(result)
}

async fn cold_hostkit(
    host: &Host<'_>,
    tarball: &ColdTarball,
    result: &mut ColdResult,
) -> anyhow::Result<()> {
    let site = host.site()?;
    let compose = three_service_stack(&tarball.images, Publish::HostKit);
    let sink = Timeline::default();
    let t0 = Instant::now();
    images::load_file(host.client(), &tarball.path, &NoProgress).await?;
    let loaded = t0.elapsed();
    let applied = host.deploy(&site, &compose, &sink).await?;
    let total = t0.elapsed();
    let events = sink.get();
    let since = |at: Option<&Instant>| at.map_or(total, |t| *t - t0);
    ensure!(
        events.started.len() == 3
            && events.healthy.len() == 3
            && events.switched.is_some()
            && applied
                .services
                .values()
                .all(|s| s.change == Change::Created),
        "the cold deploy did not create, start and gate 3 containers and switch nginx"
    );
    host.check_serves(&site).await?;
    result.hk_load.push(loaded);
    result.hk_started.push(since(events.started.iter().max()));
    result.hk_healthy.push(since(events.healthy.iter().max()));
    result.hk_switched.push(since(events.switched.as_ref()));
    result.hk_total.push(total);
    host.remove(&site).await?;
    remove_images(host.client(), &tarball.removals).await
}

async fn cold_compose(
    host: &Host<'_>,
    tarball: &ColdTarball,
    result: &mut ColdResult,
) -> anyhow::Result<()> {
    let mut peer = ComposeProject::new(
        compose_project(&host.docker.unique_domain()),
        &three_service_stack(&tarball.images, Publish::Compose),
    )?;
    let t0 = Instant::now();
    docker_load(&tarball.path).await?;
    let loaded = t0.elapsed();
    let stderr = peer.up().await?;
    let up = t0.elapsed();
    wait_healthy(host.client(), &peer.container("web")).await?;
    let healthy = t0.elapsed();
    ensure!(
        stderr.matches("Creating").count() >= 3,
        "docker-compose up -d did not create the 3 containers:\n{stderr}"
    );
    result.peer_load.push(loaded);
    result.peer_up.push(up);
    result.peer_healthy.push(healthy);
    peer.down().await?;
    remove_images(host.client(), &tarball.removals).await
}

/// `docker load -i path` with the docker CLI.
async fn docker_load(path: &Path) -> anyhow::Result<()> {
    let output = tokio::process::Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .await
        .context("run docker load")?;
    ensure!(
        output.status.success(),
        "docker load -i {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// The chain id of an image's top layer (what `docker rmi` reports deleting).
fn chain_id(diff_ids: &[String]) -> String {
    images::layered::chain_ids(diff_ids)
        .pop()
        .unwrap_or_default()
}

/// Removes each image by tag and checks that the engine deleted its unique
/// top layer (so the next load of that content is a first load).
async fn remove_images(docker: &Docker, images: &[(String, String)]) -> anyhow::Result<()> {
    for (tag, top_layer) in images {
        let items = docker
            .remove_image(
                tag,
                Some(RemoveImageOptions {
                    force: true,
                    noprune: false,
                    platforms: None,
                }),
                None,
            )
            .await
            .with_context(|| format!("remove image {tag}"))?;
        let deleted: Vec<&str> = items.iter().filter_map(|i| i.deleted.as_deref()).collect();
        ensure!(
            deleted.contains(&top_layer.as_str()),
            "removing {tag} did not delete its top layer {top_layer} (deleted: {deleted:?})"
        );
    }
    Ok(())
}

// ───────────────────────────── 3. loading throughput ─────────────────────────────

#[derive(Debug, Default)]
struct LoadResult {
    tarball_bytes: u64,
    /// Wall time of the HostKit child (spawn to exit).
    hk_wall: Vec<Duration>,
    /// `images::load_file` alone, as timed inside the child.
    hk_inner: Vec<Duration>,
    /// Peak RSS of the child before the load began and at its end (KiB).
    hk_hwm_before: Vec<u64>,
    hk_hwm: Vec<u64>,
    /// Wall time of `docker load -i`.
    cli_wall: Vec<Duration>,
    /// The docker CLI's peak RSS, sampled from /proc while it ran (KiB).
    cli_hwm: Vec<u64>,
    /// The same two loads of a small tarball: (bytes, HostKit KiB, CLI KiB).
    small: Option<(u64, u64, u64)>,
}

/// A finished child: stdout, wall time, peak RSS sampled from /proc (KiB).
#[derive(Debug)]
struct Finished {
    stdout: String,
    wall: Duration,
    sampled_hwm: u64,
}

/// Runs `command` to completion, sampling its `VmHWM` every [`POLL`].
async fn run_sampled(mut command: tokio::process::Command) -> anyhow::Result<Finished> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let child = command.spawn().context("spawn")?;
    let status_file = PathBuf::from(format!("/proc/{}/status", child.id().unwrap_or(0)));
    let output = child.wait_with_output();
    tokio::pin!(output);
    let mut hwm = 0;
    let output = loop {
        tokio::select! {
            output = &mut output => break output?,
            _ = tokio::time::sleep(POLL) => {
                if let Ok(kib) = vm_hwm_kib(&status_file) {
                    hwm = hwm.max(kib);
                }
            }
        }
    };
    let wall = started.elapsed();
    ensure!(
        output.status.success(),
        "{:?} failed ({}): {}",
        command.as_std().get_program(),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(Finished {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        wall,
        sampled_hwm: hwm,
    })
}

/// What the `load-only` child printed.
#[derive(Debug)]
struct ChildReport {
    secs: f64,
    bytes: u64,
    hwm_before_kib: u64,
    hwm_kib: u64,
}

fn parse_child(stdout: &str) -> anyhow::Result<ChildReport> {
    let fields: HashMap<&str, &str> = stdout
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let get = |key: &str| {
        fields
            .get(key)
            .copied()
            .ok_or_else(|| anyhow!("the load-only child printed no {key}: {stdout:?}"))
    };
    Ok(ChildReport {
        secs: get("secs")?.parse()?,
        bytes: get("bytes")?.parse()?,
        hwm_before_kib: get("hwm_before_kib")?.parse()?,
        hwm_kib: get("hwm_kib")?.parse()?,
    })
}

/// One image with one padding layer, written once; loaded and removed again
/// by each side in turn.
struct BigImage {
    tag: String,
    id: String,
    path: PathBuf,
    size: u64,
    top_layer: String,
}

async fn big_image(
    docker: &TestDocker,
    dir: &Path,
    name: &str,
    pad: u64,
    seeds: &mut Seeds,
) -> anyhow::Result<BigImage> {
    let tag = format!("hostkit-bench/big:{name}");
    docker.register_image(tag.clone());
    let path = dir.join(format!("{name}.tar"));
    let info = TarballBuilder::new()
        .image(ImageSpec::new(&tag).with_padding_layer_seeded(pad, seeds.next()))
        .write_to_async(path.clone())
        .await?;
    let built = &info.images[0];
    Ok(BigImage {
        tag,
        id: built.id.clone(),
        path,
        size: info.size,
        top_layer: chain_id(&built.diff_ids),
    })
}

impl BigImage {
    async fn ensure_absent(&self, docker: &Docker) -> anyhow::Result<()> {
        match docker.inspect_image(&self.id).await {
            Err(e) if hostkit_deploy::docker::is_not_found(&e) => Ok(()),
            Err(e) => Err(e.into()),
            Ok(_) => bail!("{} ({}) is still in the engine", self.tag, self.id),
        }
    }

    async fn remove(&self, docker: &Docker) -> anyhow::Result<()> {
        remove_images(docker, &[(self.tag.clone(), self.top_layer.clone())]).await
    }

    /// HostKit's load in a child process.
    async fn load_hostkit(&self, docker: &Docker) -> anyhow::Result<(Finished, ChildReport)> {
        self.ensure_absent(docker).await?;
        let mut command = tokio::process::Command::new(std::env::current_exe()?);
        command.arg("load-only").arg(&self.path);
        let finished = run_sampled(command)
            .await
            .context("bench-deploy load-only")?;
        let report = parse_child(&finished.stdout)?;
        ensure!(
            report.bytes == self.size,
            "the child streamed {} of {} bytes",
            report.bytes,
            self.size
        );
        self.remove(docker).await?;
        Ok((finished, report))
    }

    /// `docker load -i` with the docker CLI.
    async fn load_cli(&self, docker: &Docker) -> anyhow::Result<Finished> {
        self.ensure_absent(docker).await?;
        let mut command = tokio::process::Command::new("docker");
        command.arg("load").arg("-i").arg(&self.path);
        let finished = run_sampled(command).await.context("docker load -i")?;
        self.remove(docker).await?;
        Ok(finished)
    }
}

async fn load_throughput(
    docker: &TestDocker,
    options: Options,
    run_id: &str,
    seeds: &mut Seeds,
) -> anyhow::Result<LoadResult> {
    let dir = tempfile::Builder::new()
        .prefix("hostkit-bench-load-")
        .tempdir()?;
    let client = docker.client();
    let big = big_image(
        docker,
        dir.path(),
        &format!("{run_id}-big"),
        options.big_mib * MIB,
        seeds,
    )
    .await?;
    let mut result = LoadResult {
        tarball_bytes: big.size,
        ..LoadResult::default()
    };
    for run in 0..options.runs {
        let (hk, cli) = if run % 2 == 0 {
            let hk = big.load_hostkit(client).await?;
            (hk, big.load_cli(client).await?)
        } else {
            let cli = big.load_cli(client).await?;
            (big.load_hostkit(client).await?, cli)
        };
        let (hk, report) = hk;
        eprintln!(
            "  run {}: HostKit {} ({:.0} MB/s, load_file {:.2} s, peak RSS {} MiB); docker load -i {} ({:.0} MB/s, sampled peak RSS {} MiB)",
            run + 1,
            secs(hk.wall),
            mb_per_s(big.size, hk.wall),
            report.secs,
            report.hwm_kib / 1024,
            secs(cli.wall),
            mb_per_s(big.size, cli.wall),
            cli.sampled_hwm / 1024,
        );
        result.hk_wall.push(hk.wall);
        result.hk_inner.push(Duration::from_secs_f64(report.secs));
        result.hk_hwm_before.push(report.hwm_before_kib);
        result.hk_hwm.push(report.hwm_kib);
        result.cli_wall.push(cli.wall);
        result.cli_hwm.push(cli.sampled_hwm);
    }
    std::fs::remove_file(&big.path)?;

    // The same with a small tarball: does the peak grow with the tarball?
    let small = big_image(
        docker,
        dir.path(),
        &format!("{run_id}-small"),
        16 * MIB,
        seeds,
    )
    .await?;
    let (_, report) = small.load_hostkit(client).await?;
    let cli = small.load_cli(client).await?;
    result.small = Some((small.size, report.hwm_kib, cli.sampled_hwm));
    Ok(result)
}

// ─────────────────────────────── reporting ───────────────────────────────

fn median(values: &[Duration]) -> Duration {
    let mut sorted = values.to_vec();
    sorted.sort();
    let n = sorted.len();
    if n == 0 {
        Duration::ZERO
    } else if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}

fn median_u64(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted.get(sorted.len() / 2).copied().unwrap_or(0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// Throughput in MB/s (10^6 bytes per second).
fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "meets the budget"
    } else {
        "MISSES the budget"
    }
}

/// `label  median  (min … max)` of one series.
fn row(out: &mut String, label: &str, values: &[Duration]) {
    let min = values.iter().min().copied().unwrap_or_default();
    let max = values.iter().max().copied().unwrap_or_default();
    let _ = writeln!(
        out,
        "  {label:<58} {:>11}   ({} … {})",
        ms(median(values)),
        ms(min),
        ms(max)
    );
}

fn report_noop(out: &mut String, r: &NoopResult) {
    let _ = writeln!(
        out,
        "1. No-op redeploy of the running 3-service stack (median, (min … max))"
    );
    row(
        out,
        "HostKit check + resolve + apply (in process)",
        &r.hostkit,
    );
    row(out, "docker-compose up -d (process)", &r.compose);
    let q = ratio(median(&r.hostkit), median(&r.compose));
    let _ = writeln!(
        out,
        "  ratio HostKit / docker-compose: {q:.3} (1/{:.0}); budget ≤ 0.100: {}\n",
        1.0 / q,
        verdict(q <= 0.1)
    );
}

fn report_cold(out: &mut String, r: &ColdResult, options: Options) {
    let _ = writeln!(
        out,
        "2. Cold deploy of the 3-service stack from a {:.1} MB tarball \
         (3 images, a fresh {} MiB top layer each; median, (min … max))",
        r.tarball_bytes as f64 / 1e6,
        options.stack_pad_mib
    );
    row(out, "HostKit images::load_file", &r.hk_load);
    row(
        out,
        "HostKit load + until all 3 containers started",
        &r.hk_started,
    );
    row(out, "HostKit load + until all 3 healthy", &r.hk_healthy);
    row(out, "HostKit load + until nginx switched", &r.hk_switched);
    row(out, "HostKit load + apply (returned)", &r.hk_total);
    row(out, "docker load -i", &r.peer_load);
    row(out, "docker load -i + docker-compose up -d", &r.peer_up);
    row(
        out,
        "docker load -i + up -d + until web healthy (20 ms polls)",
        &r.peer_healthy,
    );
    let peer = median(&r.peer_up);
    let total = ratio(median(&r.hk_total), peer);
    let started = ratio(median(&r.hk_started), peer);
    let healthy = ratio(median(&r.hk_healthy), median(&r.peer_healthy));
    let load = ratio(median(&r.hk_load), median(&r.peer_load));
    let _ = writeln!(
        out,
        "  ratio HostKit total / (docker load + up -d): {total:.2}; budget ≤ 1.00: {}",
        verdict(total <= 1.0)
    );
    let _ = writeln!(
        out,
        "  ratio HostKit all started / (docker load + up -d): {started:.2}"
    );
    let _ = writeln!(
        out,
        "  ratio HostKit all healthy / (docker load + up -d + web healthy): {healthy:.2}"
    );
    let _ = writeln!(out, "  ratio HostKit load / docker load: {load:.2}\n");
}

fn report_load(out: &mut String, r: &LoadResult, options: Options) {
    let bytes = r.tarball_bytes;
    let _ = writeln!(
        out,
        "3. Loading a {:.1} MB tarball (one image, one {} MiB layer), each load a first load \
         (median, (min … max))",
        bytes as f64 / 1e6,
        options.big_mib
    );
    let speed = |values: &[Duration]| {
        let mut speeds: Vec<f64> = values.iter().map(|d| mb_per_s(bytes, *d)).collect();
        speeds.sort_by(f64::total_cmp);
        speeds
    };
    for (label, values) in [
        ("HostKit child process (spawn to exit)", &r.hk_wall),
        ("  of which images::load_file", &r.hk_inner),
        ("docker load -i (spawn to exit)", &r.cli_wall),
    ] {
        let s = speed(values);
        let _ = writeln!(
            out,
            "  {label:<58} {:>11}   {:>6.1} MB/s  ({:.1} … {:.1})",
            secs(median(values)),
            mb_per_s(bytes, median(values)),
            s.first().copied().unwrap_or_default(),
            s.last().copied().unwrap_or_default(),
        );
    }
    let q = ratio(median(&r.cli_wall), median(&r.hk_wall));
    let _ = writeln!(
        out,
        "  throughput ratio HostKit / docker load (of the medians): {q:.2}×; budget ≥ 0.90×: {}",
        verdict(q >= 0.9)
    );
    // Each pair ran back to back: their ratio is less exposed to the
    // machine's background load drifting between runs.
    let mut paired: Vec<f64> = r
        .cli_wall
        .iter()
        .zip(&r.hk_wall)
        .map(|(cli, hk)| ratio(*cli, *hk))
        .collect();
    paired.sort_by(f64::total_cmp);
    let _ = writeln!(
        out,
        "  per-run ratios (each pair back to back): {}; median {:.2}×",
        paired
            .iter()
            .map(|q| format!("{q:.2}"))
            .collect::<Vec<_>>()
            .join(" "),
        paired.get(paired.len() / 2).copied().unwrap_or_default()
    );
    let _ = writeln!(
        out,
        "  peak RSS (VmHWM) of the HostKit child: {} MiB before the load, {} MiB after \
         (median; max {} MiB)",
        mib(median_u64(&r.hk_hwm_before)),
        mib(median_u64(&r.hk_hwm)),
        mib(r.hk_hwm.iter().max().copied().unwrap_or(0)),
    );
    let _ = writeln!(
        out,
        "  peak RSS of the docker CLI (sampled every {} ms): {} MiB (median)",
        POLL.as_millis(),
        mib(median_u64(&r.cli_hwm))
    );
    if let Some((small, hk, cli)) = r.small {
        let _ = writeln!(
            out,
            "  for comparison, a {:.1} MB tarball: HostKit child {} MiB, docker CLI {} MiB",
            small as f64 / 1e6,
            mib(hk),
            mib(cli)
        );
    }
    let grows = r
        .small
        .is_some_and(|(_, small_hk, _)| median_u64(&r.hk_hwm) > small_hk + 16 * 1024);
    let _ = writeln!(
        out,
        "  memory that does not grow with the tarball: {}",
        verdict(!grows)
    );
}

fn mib(kib: u64) -> String {
    format!("{:.1}", kib as f64 / 1024.0)
}
