//! `bench-worker`: the worker's budgets of DESIGN §9, measured in one run
//! against a real `hostkit-worker` process (use a release build), a
//! nats-server on loopback, the Docker Engine and nginx.
//!
//! 1. Job publish → `started` event latency (p50/p90/p99/max) over
//!    `--jobs` jobs across `--domains` domains. The jobs are `restart`s of
//!    domains with no stack: each still goes through intake, its lane, the
//!    store (recorded before it runs) and the event outbox, gets `started`,
//!    then fails `domain.not_found` without touching Docker, so the figure is
//!    the worker's own overhead. Domains are used round-robin and a domain
//!    gets its next job only after its previous one ended, so no job waits
//!    behind another in a lane; two passes: one job in flight (pure latency)
//!    and `--in-flight` jobs (default 4 = the worker's lanes, so none waits
//!    for a lane either). Budget: p50 < 5 ms. The split uses the `at` stamp
//!    the worker puts on `started` when it builds it (after the job is
//!    recorded in SQLite, before the event is written to the outbox).
//! 2. Jobs per second for no-op deploys: the fixture web stack is deployed
//!    to `--noop-domains` domains, then `--noop-jobs` deploys of the same
//!    compose file and image tarball run across them, one in flight per
//!    domain (so none is coalesced). Reports completed jobs per second (first
//!    publish → last terminal event), the `succeeded` events' `duration_ms`,
//!    and checks that no container was replaced.
//! 3. Worker RSS (`/proc/<pid>/status`): idle after start-up, idle after the
//!    work above, and during deploys whose image tarball (a fixture with a
//!    pseudo-random padding layer) is streamed from the object store:
//!    `--ref-mib` then `--big-mib` (default 1 GiB). `VmRSS` is sampled every
//!    100 ms while the job runs and the peak (`VmHWM`, reset before each
//!    load through `clear_refs`) read after. Budgets: idle < 20 MiB, and
//!    memory that does not grow with the tarball: the peak growth over the
//!    RSS before the load is, for the big tarball, no larger than for the
//!    small one plus 16 MiB of slack (the absolute growth is printed too).
//!    The tarballs are written and uploaded by this process, not the worker.
//!
//! ```sh
//! cargo build --release -p hostkit-worker --bin hostkit-worker -p hostkit-tests --bin bench-worker
//! target/release/bench-worker [--jobs 1000] [--domains 50] [--in-flight 4] \
//!     [--noop-domains 10] [--noop-jobs 200] [--ref-mib 128] [--big-mib 1024]
//! ```
//!
//! Everything it creates (nats-server, nginx, the worker, containers,
//! networks, images, objects, tarballs) is removed at the end, also on error
//! or Ctrl-C: the big images are removed by tag and checked gone, their
//! objects deleted from the bucket.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, anyhow, bail, ensure};
use async_nats::jetstream;
use bollard::query_parameters::{ListContainersOptions, RemoveImageOptions};
use futures_util::StreamExt as _;
use hostkit_proto::job::{
    ComposeSource, DeployOptions, DeployPayload, DeploySource, ImageSource, RemovePayload,
    RestartPayload,
};
use hostkit_proto::{Domain, ErrorCode, Event, EventKind, Job, JobId, JobSpec, Names, NodeId};
use hostkit_tests::worker::{WorkerProcess, upload_tarball};
use hostkit_tests::{TarballBuilder, TestDocker, TestNats, TestNginx, fixtures, publish_job};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

const MIB: u64 = 1 << 20;
/// How often the worker's `VmRSS` is sampled during a load.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);
/// How long the worker is left alone before an idle reading.
const SETTLE: Duration = Duration::from_secs(3);
/// Longest wait for the next job event before the run is declared stuck.
const EVENT_WAIT: Duration = Duration::from_secs(120);
/// Longest wait for the next event of a big load (progress comes often).
const BIG_EVENT_WAIT: Duration = Duration::from_secs(600);
/// Budgets of DESIGN §9.
const STARTED_P50_BUDGET: Duration = Duration::from_millis(5);
const IDLE_RSS_BUDGET_KIB: u64 = 20 * 1024;
/// Slack for "does not grow with the tarball": allocator and buffer noise.
const GROWTH_SLACK_KIB: u64 = 16 * 1024;
/// Domains with a stack at once: the harness's worker has a pool of 100
/// ports in blocks of 10.
const MAX_STACK_DOMAINS: usize = 10;
/// Who the jobs say requested them.
const REQUESTED_BY: &str = "bench-worker";

/// Command-line options.
#[derive(Debug, Clone, Copy)]
struct Options {
    jobs: usize,
    domains: usize,
    in_flight: usize,
    noop_domains: usize,
    noop_jobs: usize,
    ref_mib: u64,
    big_mib: u64,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            jobs: 1000,
            domains: 50,
            in_flight: 4,
            noop_domains: 10,
            noop_jobs: 200,
            ref_mib: 128,
            big_mib: 1024,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> anyhow::Result<u64> {
                args.next()
                    .ok_or_else(|| anyhow!("{name} needs a value"))?
                    .parse()
                    .with_context(|| format!("{name} needs a number"))
            };
            let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
            match arg.as_str() {
                "--jobs" => options.jobs = as_usize(value(arg)?),
                "--domains" => options.domains = as_usize(value(arg)?),
                "--in-flight" => options.in_flight = as_usize(value(arg)?),
                "--noop-domains" => options.noop_domains = as_usize(value(arg)?),
                "--noop-jobs" => options.noop_jobs = as_usize(value(arg)?),
                "--ref-mib" => options.ref_mib = value(arg)?,
                "--big-mib" => options.big_mib = value(arg)?,
                "-h" | "--help" => bail!(
                    "usage: bench-worker [--jobs N] [--domains N] [--in-flight N] \
                     [--noop-domains N] [--noop-jobs N] [--ref-mib N] [--big-mib N]"
                ),
                other => bail!("unknown argument {other:?} (try --help)"),
            }
        }
        ensure!(
            options.jobs >= 1 && options.domains >= 1,
            "--jobs and --domains must be ≥ 1"
        );
        ensure!(
            (1..=options.domains).contains(&options.in_flight),
            "--in-flight must be between 1 and --domains"
        );
        ensure!(
            (1..=MAX_STACK_DOMAINS).contains(&options.noop_domains) && options.noop_jobs >= 1,
            "--noop-domains must be between 1 and {MAX_STACK_DOMAINS}, --noop-jobs ≥ 1"
        );
        ensure!(
            options.ref_mib >= 1 && options.big_mib > options.ref_mib,
            "--big-mib must be larger than --ref-mib (≥ 1)"
        );
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
            eprintln!("bench-worker: cannot start a runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = Options::parse(&args).and_then(|options| {
        runtime.block_on(async {
            // Ctrl-C drops the benchmark future, so every guard cleans up.
            tokio::select! {
                result = bench(options) => result,
                _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            }
        })
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-worker: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A job event as this process received it.
#[derive(Debug, Clone)]
struct Arrival {
    /// When it was received (monotonic).
    at: Instant,
    /// When it was received (wall clock, to compare with the event's `at`).
    wall: SystemTime,
    event: Event,
}

/// A job from publish to its terminal event.
#[derive(Debug)]
struct Finished {
    published: Instant,
    published_wall: SystemTime,
    started: Option<Arrival>,
    terminal: Arrival,
    /// Every event of the job but the terminal one, in arrival order.
    events: Vec<Arrival>,
}

impl Finished {
    /// Publish → `started` received.
    fn to_started(&self) -> Option<Duration> {
        self.started.as_ref().map(|s| s.at - self.published)
    }

    /// Publish → the worker stamps `started` (wall clocks, one machine).
    fn to_stamp(&self) -> Option<Duration> {
        let stamped = SystemTime::from(self.started.as_ref()?.event.at);
        Some(
            stamped
                .duration_since(self.published_wall)
                .unwrap_or_default(),
        )
    }

    /// The worker stamps `started` → it is received.
    fn stamp_to_received(&self) -> Option<Duration> {
        let started = self.started.as_ref()?;
        let stamped = SystemTime::from(started.event.at);
        Some(started.wall.duration_since(stamped).unwrap_or_default())
    }

    /// Publish → terminal event received.
    fn to_terminal(&self) -> Duration {
        self.terminal.at - self.published
    }

    /// The worker's stamp on the job's first `step` event named `name`.
    fn step_at(&self, name: &str) -> Option<SystemTime> {
        self.events.iter().find_map(|a| match &a.event.kind {
            EventKind::Step { name: n, .. } if n == name => Some(SystemTime::from(a.event.at)),
            _ => None,
        })
    }

    /// Where a deploy's time went, by the worker's stamps: (segment, time).
    fn segments(&self) -> Vec<(&'static str, Option<Duration>)> {
        let published = Some(self.published_wall);
        let started = self.started.as_ref().map(|s| SystemTime::from(s.event.at));
        let terminal = Some(SystemTime::from(self.terminal.event.at));
        let points = [
            published,
            started,
            self.step_at("check"),
            self.step_at("images"),
            self.step_at("apply"),
            terminal,
            Some(self.terminal.wall),
        ];
        const NAMES: [&str; 6] = [
            "publish → started (queue for a lane, record the job)",
            "started → check",
            "check → images (compose check, policy)",
            "images → apply (stream the tarball, docker load, resolve)",
            "apply → outcome (converge, version tag)",
            "outcome → received (commit, aftercare, publish)",
        ];
        NAMES
            .iter()
            .zip(points.windows(2))
            .map(|(name, w)| match (w[0], w[1]) {
                (Some(a), Some(b)) => (*name, Some(b.duration_since(a).unwrap_or_default())),
                _ => (*name, None),
            })
            .collect()
    }
}

/// A batch of jobs and the wall time from its first publish to its last
/// terminal event.
#[derive(Debug)]
struct Batch {
    jobs: Vec<Finished>,
    wall: Duration,
}

impl Batch {
    fn per_second(&self) -> f64 {
        self.jobs.len() as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// How many jobs ended otherwise than `ok` says, with an example.
    fn unexpected(&self, ok: impl Fn(&EventKind) -> bool) -> (usize, Option<String>) {
        let bad: Vec<&Finished> = self
            .jobs
            .iter()
            .filter(|j| !ok(&j.terminal.event.kind) || j.started.is_none())
            .collect();
        let example = bad.first().map(|j| format!("{:?}", j.terminal.event.kind));
        (bad.len(), example)
    }
}

/// Publishes jobs and follows them through one subscription to every job event.
struct Driver {
    js: jetstream::Context,
    names: Names,
    node: NodeId,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
}

impl Driver {
    /// Subscribe to `<root>.events.*.job.*` before any job is published.
    async fn new(client: async_nats::Client, names: Names, node: NodeId) -> anyhow::Result<Self> {
        let mut subscriber = client
            .subscribe(format!("{}.events.*.job.*", names.root()))
            .await
            .context("subscribe to job events")?;
        client.flush().await.context("flush the subscription")?;
        let (tx, arrivals) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let (at, wall) = (Instant::now(), SystemTime::now());
                if let Ok(event) = Event::from_slice(&message.payload) {
                    if tx.send(Arrival { at, wall, event }).is_err() {
                        return;
                    }
                }
            }
        });
        Ok(Driver {
            js: jetstream::new(client),
            names,
            node,
            arrivals,
        })
    }

    /// Run `total` jobs made by `make` over `domains`, at most `window` in
    /// flight and at most one per domain (least recently used domain first),
    /// each followed to its terminal event.
    async fn run(
        &mut self,
        domains: &[Domain],
        total: usize,
        window: usize,
        wait: Duration,
        make: &mut dyn FnMut(&Domain) -> Job,
    ) -> anyhow::Result<Batch> {
        struct Flight {
            domain: usize,
            published: Instant,
            published_wall: SystemTime,
            started: Option<Arrival>,
            events: Vec<Arrival>,
        }
        let window = window.clamp(1, domains.len());
        let mut free: VecDeque<usize> = (0..domains.len()).collect();
        let mut flights: HashMap<JobId, Flight> = HashMap::new();
        let mut jobs = Vec::with_capacity(total);
        let mut published = 0;
        let mut first = None;
        while jobs.len() < total {
            while flights.len() < window && published < total {
                let Some(domain) = free.pop_front() else {
                    break;
                };
                let job = make(&domains[domain]);
                let (at, wall) = (Instant::now(), SystemTime::now());
                first.get_or_insert(at);
                flights.insert(
                    job.id,
                    Flight {
                        domain,
                        published: at,
                        published_wall: wall,
                        started: None,
                        events: Vec::new(),
                    },
                );
                publish_job(&self.js, &self.names, &self.node, &job).await;
                published += 1;
            }
            let arrival = match tokio::time::timeout(wait, self.arrivals.recv()).await {
                Ok(Some(arrival)) => arrival,
                Ok(None) => bail!("the job event subscription ended"),
                Err(_) => bail!(
                    "no job event for {wait:?} with {} jobs in flight ({} of {total} done)",
                    flights.len(),
                    jobs.len()
                ),
            };
            let Some(flight) = arrival
                .event
                .job_id
                .and_then(|id| flights.get_mut(&id).map(|f| (id, f)))
            else {
                continue;
            };
            let (id, flight) = flight;
            if arrival.event.is_terminal() {
                let flight = flights.remove(&id).expect("the flight was just found");
                free.push_back(flight.domain);
                jobs.push(Finished {
                    published: flight.published,
                    published_wall: flight.published_wall,
                    started: flight.started,
                    terminal: arrival,
                    events: flight.events,
                });
            } else {
                if flight.started.is_none()
                    && matches!(arrival.event.kind, EventKind::Started { .. })
                {
                    flight.started = Some(arrival.clone());
                }
                flight.events.push(arrival);
            }
        }
        let last = jobs.iter().map(|j| j.terminal.at).max();
        let wall = match (first, last) {
            (Some(first), Some(last)) => last - first,
            _ => Duration::ZERO,
        };
        Ok(Batch { jobs, wall })
    }
}

/// Percentiles of a sample (nearest rank).
#[derive(Debug, Clone, Copy)]
struct Stats {
    n: usize,
    mean: Duration,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
}

fn stats(mut sample: Vec<Duration>) -> Stats {
    sample.sort();
    let n = sample.len();
    let rank = |p: f64| {
        if n == 0 {
            return Duration::ZERO;
        }
        let index = ((p * n as f64).ceil() as usize).clamp(1, n) - 1;
        sample[index]
    };
    let total: Duration = sample.iter().sum();
    Stats {
        n,
        mean: total / u32::try_from(n.max(1)).unwrap_or(u32::MAX),
        p50: rank(0.50),
        p90: rank(0.90),
        p99: rank(0.99),
        max: sample.last().copied().unwrap_or_default(),
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn line(stats: &Stats) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  max {}  mean {}  (n={})",
        ms(stats.p50),
        ms(stats.p90),
        ms(stats.p99),
        ms(stats.max),
        ms(stats.mean),
        stats.n
    )
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// Memory figures of one process, in KiB.
#[derive(Debug, Clone, Copy)]
struct Memory {
    rss: u64,
    hwm: u64,
    anon: u64,
    file: u64,
}

fn memory(pid: u32) -> anyhow::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("read {path}"))?;
    let field = |name: &str| -> anyhow::Result<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow!("no {name} in {path}"))
    };
    Ok(Memory {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// Reset the process's peak RSS (`VmHWM`) to its current RSS.
fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn describe(memory: &Memory) -> String {
    format!(
        "VmRSS {} (anon {}, file {}), VmHWM {}",
        mib(memory.rss),
        mib(memory.anon),
        mib(memory.file),
        mib(memory.hwm)
    )
}

/// Bytes available on the file system holding `path` (`df`).
fn available(path: &Path) -> anyhow::Result<u64> {
    let output = std::process::Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()
        .context("run df")?;
    ensure!(
        output.status.success(),
        "df {}: {}",
        path.display(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow!("unexpected df output for {}", path.display()))
}

/// `fdatasync` latency of 4 KiB appends in `dir` (what a SQLite WAL commit
/// with `synchronous=FULL` waits for at least once).
fn fsync_probe(dir: &Path, count: usize) -> anyhow::Result<Stats> {
    let path = dir.join(format!("bench-worker-fsync-{}", std::process::id()));
    let mut file = std::fs::File::create(&path).context("create the fsync probe")?;
    let mut sample = Vec::with_capacity(count);
    for _ in 0..count {
        file.write_all(&[0u8; 4096])
            .context("write the fsync probe")?;
        let start = std::time::Instant::now();
        file.sync_data().context("fdatasync the fsync probe")?;
        sample.push(start.elapsed());
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(stats(sample))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The fixture web service on 8080, health-checked every second.
fn web_compose(image: &str) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    ports: [\"8080\"]\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\n"
    )
}

fn deploy_job(domain: &Domain, compose: &str, image: &ImageSource) -> Job {
    Job::new(
        domain.clone(),
        JobSpec::Deploy(DeployPayload {
            source: DeploySource::Compose(ComposeSource {
                text: compose.to_string(),
                file_name: None,
            }),
            images: vec![image.clone()],
            env: Default::default(),
            sealed_env: None,
            options: DeployOptions {
                health_timeout_secs: Some(120),
                ..DeployOptions::default()
            },
        }),
        REQUESTED_BY,
    )
}

/// Container ids of a domain's project.
async fn container_ids(docker: &TestDocker, domain: &Domain) -> anyhow::Result<Vec<String>> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("com.docker.compose.project={}", domain.token())],
    )]);
    let mut ids: Vec<String> = docker
        .client()
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        }))
        .await
        .context("list containers")?
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    ids.sort();
    Ok(ids)
}

/// One row of the summary table.
struct Row {
    what: String,
    figure: String,
    target: String,
    verdict: &'static str,
}

fn row(
    what: impl Into<String>,
    figure: impl Into<String>,
    target: &str,
    verdict: &'static str,
) -> Row {
    Row {
        what: what.into(),
        figure: figure.into(),
        target: target.into(),
        verdict,
    }
}

/// What one streamed load showed.
#[derive(Debug)]
struct LoadFigures {
    tarball: u64,
    before: Memory,
    /// Highest sampled `VmRSS` during the job.
    sampled_max: u64,
    samples: usize,
    /// Every tenth sample (one a second), in KiB.
    per_second: Vec<u64>,
    /// `VmHWM` after the job (reset just before it, if that worked).
    hwm: u64,
    peak_reset: bool,
    after: Memory,
    job: Duration,
    images: Option<Duration>,
    write: Duration,
    upload: Duration,
}

impl LoadFigures {
    /// The peak RSS during the load, in KiB: `VmHWM` when it could be reset
    /// before the load, else the highest sample.
    fn peak(&self) -> u64 {
        if self.peak_reset {
            self.hwm.max(self.sampled_max)
        } else {
            self.sampled_max
        }
    }

    /// Peak RSS growth over the RSS before the load, in KiB.
    fn growth(&self) -> u64 {
        self.peak().saturating_sub(self.before.rss)
    }
}

/// What every phase needs.
struct Rig {
    docker: TestDocker,
    js: jetstream::Context,
    names: Names,
    driver: Driver,
    pid: u32,
    rows: Vec<Row>,
}

impl Rig {
    /// Settle, read the worker's memory, and add an idle row.
    async fn idle(&mut self, when: &str) -> anyhow::Result<Memory> {
        tokio::time::sleep(SETTLE).await;
        let idle = memory(self.pid)?;
        println!("\nidle {when}: {}", describe(&idle));
        self.rows.push(row(
            format!("worker idle RSS {when}"),
            format!("{} (VmHWM so far {})", mib(idle.rss), mib(idle.hwm)),
            "< 20 MiB",
            verdict(idle.rss < IDLE_RSS_BUDGET_KIB),
        ));
        Ok(idle)
    }

    fn domains(&self, count: usize) -> anyhow::Result<Vec<Domain>> {
        (0..count)
            .map(|_| self.docker.unique_domain().parse())
            .collect::<Result<_, _>>()
            .context("a unique domain")
    }
}

async fn bench(options: Options) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "bench-worker — {}, {cores} cores, load average {}",
        chrono::Utc::now(),
        load_average()
    );
    println!("options: {options:?}");

    // Declared first, dropped last: containers, networks and image tags.
    let docker = TestDocker::new().await;
    let nats = TestNats::new().await;
    let nginx = TestNginx::new().await;
    let worker = WorkerProcess::start(&nats, &docker, &nginx).await;
    let pid = worker
        .pid()
        .ok_or_else(|| anyhow!("the worker process has no pid"))?;
    println!(
        "worker: {} (pid {pid}), node {}",
        hostkit_tests::worker::worker_binary().display(),
        worker.node
    );
    let names = Names::default();
    let client = nats.client().await;
    let driver = Driver::new(client.clone(), names.clone(), worker.node.clone()).await?;
    let mut rig = Rig {
        docker,
        js: jetstream::new(client),
        names,
        driver,
        pid,
        rows: Vec::new(),
    };

    let result = async {
        rig.idle("after start-up").await?;
        let fsync = fsync_probe(&std::env::temp_dir(), 200)?;
        println!(
            "fdatasync of a 4 KiB append on the worker's file system: {}",
            line(&fsync)
        );
        started_latency(&mut rig, &options).await?;
        rig.idle("after 1").await?;
        noop_deploys(&mut rig, &options).await?;
        rig.idle("after 1 and 2").await?;
        streamed_loads(&mut rig, &options).await?;
        rig.idle("after 1, 2 and 3").await?;
        anyhow::Ok(())
    }
    .await;

    if let Err(error) = &result {
        let log = worker.log();
        let tail: Vec<&str> = log.lines().rev().take(30).collect();
        eprintln!("bench-worker: {error:#}\nworker log (last lines):");
        for l in tail.into_iter().rev() {
            eprintln!("  {l}");
        }
    }
    print_table(&rig.rows);
    println!("load average at the end: {}", load_average());
    drop(worker);
    drop(nginx);
    drop(nats);
    drop(rig);
    result
}

/// Measurement 1, publish → `started`: one job in flight, then `--in-flight`.
async fn started_latency(rig: &mut Rig, options: &Options) -> anyhow::Result<()> {
    println!(
        "\n1. publish → started: `restart` of {} domains with no stack \
         (started, then failed domain.not_found)",
        options.domains
    );
    let domains = rig.domains(options.domains)?;
    let mut restart = |d: &Domain| {
        Job::new(
            d.clone(),
            JobSpec::Restart(RestartPayload { service: None }),
            REQUESTED_BY,
        )
    };
    // Warm-up: every domain's lane exists, connections are warm.
    rig.driver
        .run(
            &domains,
            domains.len(),
            options.in_flight,
            EVENT_WAIT,
            &mut restart,
        )
        .await
        .context("warm-up")?;
    for window in [1, options.in_flight] {
        let batch = rig
            .driver
            .run(&domains, options.jobs, window, EVENT_WAIT, &mut restart)
            .await
            .with_context(|| format!("publish → started, {window} in flight"))?;
        let (bad, example) = batch.unexpected(|k| {
            matches!(
                k,
                EventKind::Failed {
                    code: ErrorCode::DomainNotFound,
                    ..
                }
            )
        });
        ensure!(
            bad == 0,
            "{bad} jobs did not end started + domain.not_found, e.g. {example:?}"
        );
        let sample =
            |f: fn(&Finished) -> Option<Duration>| stats(batch.jobs.iter().filter_map(f).collect());
        let started = sample(Finished::to_started);
        println!(
            "  {window} in flight, {} jobs in {:.1} s ({:.0} jobs/s):",
            batch.jobs.len(),
            batch.wall.as_secs_f64(),
            batch.per_second()
        );
        println!("    publish → started received      {}", line(&started));
        let stamp = sample(Finished::to_stamp);
        println!("    publish → worker stamps started {}", line(&stamp));
        let received = sample(Finished::stamp_to_received);
        println!("    stamped → started received      {}", line(&received));
        let terminal = sample(|j| Some(j.to_terminal()));
        println!("    publish → terminal received     {}", line(&terminal));
        rig.rows.push(row(
            format!("publish → started ({window} in flight)"),
            format!(
                "p50 {} (p90 {}, p99 {}, max {})",
                ms(started.p50),
                ms(started.p90),
                ms(started.p99),
                ms(started.max)
            ),
            "p50 < 5 ms",
            verdict(started.p50 < STARTED_P50_BUDGET),
        ));
    }
    Ok(())
}

/// Measurement 2, no-op deploys per second; the domains are removed
/// afterwards (the worker's port pool holds ten blocks).
async fn noop_deploys(rig: &mut Rig, options: &Options) -> anyhow::Result<()> {
    println!(
        "\n2. no-op deploys: fixture web stack on {} domains, then {} deploys \
         of the same compose + tarball",
        options.noop_domains, options.noop_jobs
    );
    let dir = tempfile::Builder::new()
        .prefix("bench-worker-")
        .tempdir()
        .context("a temporary directory")?;
    let tag = format!("hostkit-bench/web:{}", &rig.docker.id()[..16]);
    rig.docker.register_image(tag.clone());
    let web_tar = dir.path().join("web.tar");
    let web_info = TarballBuilder::new()
        .image(fixtures::web("v1").retag(tag.clone()))
        .write_to(&web_tar)
        .context("write the web tarball")?;
    let source = upload_tarball(&rig.js, &rig.names, &web_tar).await;
    println!(
        "  tarball {} bytes (streamed once; later deploys find its images loaded)",
        web_info.size
    );
    let compose = web_compose(&tag);
    let mut deploy = |d: &Domain| deploy_job(d, &compose, &source);
    let domains = rig.domains(options.noop_domains)?;
    let all = domains.len();
    let first = rig
        .driver
        .run(&domains, all, all, EVENT_WAIT, &mut deploy)
        .await
        .context("first deploys")?;
    let (bad, example) = first.unexpected(|k| matches!(k, EventKind::Succeeded { .. }));
    ensure!(
        bad == 0,
        "{bad} first deploys did not succeed, e.g. {example:?}"
    );
    println!(
        "  first deploys: {all} in {:.1} s (p50 {} each)",
        first.wall.as_secs_f64(),
        ms(stats(first.jobs.iter().map(Finished::to_terminal).collect()).p50)
    );
    let mut before = Vec::new();
    for domain in &domains {
        before.push(container_ids(&rig.docker, domain).await?);
    }
    let batch = rig
        .driver
        .run(&domains, options.noop_jobs, all, EVENT_WAIT, &mut deploy)
        .await
        .context("no-op deploys")?;
    let (bad, example) = batch.unexpected(|k| matches!(k, EventKind::Succeeded { .. }));
    ensure!(
        bad == 0,
        "{bad} no-op deploys did not succeed, e.g. {example:?}"
    );
    let mut replaced = 0;
    for (domain, before) in domains.iter().zip(&before) {
        let after = container_ids(&rig.docker, domain).await?;
        replaced += before.iter().filter(|id| !after.contains(id)).count();
    }
    let durations = stats(
        batch
            .jobs
            .iter()
            .filter_map(|j| match j.terminal.event.kind {
                EventKind::Succeeded { duration_ms, .. } => {
                    Some(Duration::from_millis(duration_ms))
                }
                _ => None,
            })
            .collect(),
    );
    let started = stats(batch.jobs.iter().filter_map(Finished::to_started).collect());
    let terminal = stats(batch.jobs.iter().map(Finished::to_terminal).collect());
    println!(
        "  {} no-op deploys in {:.1} s: {:.1} jobs/s ({all} in flight, one per domain; \
         the worker runs 4 lanes)",
        batch.jobs.len(),
        batch.wall.as_secs_f64(),
        batch.per_second(),
    );
    println!("    succeeded.duration_ms         {}", line(&durations));
    println!("    publish → started received    {}", line(&started));
    println!("    publish → terminal received   {}", line(&terminal));
    println!("    where a no-op deploy's time goes (worker's stamps), p50 / p90:");
    let segments: Vec<_> = batch.jobs.iter().map(Finished::segments).collect();
    for (i, (name, _)) in segments[0].iter().enumerate() {
        let sample = stats(segments.iter().filter_map(|s| s[i].1).collect());
        println!("      {name:<58} {} / {}", ms(sample.p50), ms(sample.p90));
    }
    let containers: usize = before.iter().map(Vec::len).sum();
    println!("    containers replaced: {replaced} of {containers}");
    rig.rows.push(row(
        "no-op deploys per second",
        format!(
            "{:.1} jobs/s (duration_ms p50 {}, p99 {})",
            batch.per_second(),
            ms(durations.p50),
            ms(durations.p99)
        ),
        "—",
        "—",
    ));
    rig.rows.push(row(
        "containers replaced by no-op deploys",
        format!("{replaced} of {containers}"),
        "0",
        verdict(replaced == 0),
    ));

    let removed = rig
        .driver
        .run(&domains, all, all, EVENT_WAIT, &mut remove_job)
        .await
        .context("remove the no-op domains")?;
    let (bad, example) = removed.unexpected(|k| matches!(k, EventKind::Succeeded { .. }));
    ensure!(bad == 0, "{bad} removes did not succeed, e.g. {example:?}");
    js_delete(&rig.js, &rig.names, &source).await
}

fn remove_job(domain: &Domain) -> Job {
    Job::new(
        domain.clone(),
        JobSpec::Remove(RemovePayload {
            purge_volumes: true,
        }),
        REQUESTED_BY,
    )
}

/// Delete an uploaded tarball from the image bucket.
async fn js_delete(
    js: &jetstream::Context,
    names: &Names,
    source: &ImageSource,
) -> anyhow::Result<()> {
    let ImageSource::Object { object, .. } = source else {
        bail!("not an object: {source:?}");
    };
    js.get_object_store(names.images_bucket())
        .await
        .context("the image bucket")?
        .delete(object.as_str())
        .await
        .with_context(|| format!("delete object {object}"))
}

/// Measurement 3, memory while tarballs of `--ref-mib` and `--big-mib` are
/// streamed.
async fn streamed_loads(rig: &mut Rig, options: &Options) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("bench-worker-")
        .tempdir()
        .context("a temporary directory")?;
    let need = 3 * options.big_mib * MIB + 512 * MIB;
    let tmp_free = available(dir.path())?;
    let docker_root = rig
        .docker
        .client()
        .info()
        .await
        .ok()
        .and_then(|i| i.docker_root_dir);
    let docker_free = match &docker_root {
        Some(root) => available(Path::new(root)).ok(),
        None => None,
    };
    println!(
        "\n3. streamed loads: free {} GiB in {} (tarball + object store), {} in the engine's {}",
        tmp_free >> 30,
        dir.path().display(),
        docker_free.map_or("?".into(), |b| format!("{} GiB", b >> 30)),
        docker_root.as_deref().unwrap_or("root")
    );
    ensure!(
        tmp_free >= need && docker_free.is_none_or(|b| b >= need),
        "not enough disk for a {} MiB tarball: need {} MiB free on each file system",
        options.big_mib,
        need / MIB
    );
    let mut loads = Vec::new();
    for (index, size_mib) in [options.ref_mib, options.big_mib].into_iter().enumerate() {
        let figures = streamed_load(rig, dir.path(), size_mib, index)
            .await
            .with_context(|| format!("streamed load of {size_mib} MiB"))?;
        let images = figures.images.map_or("?".into(), |d| {
            let rate = figures.tarball as f64 / MIB as f64 / d.as_secs_f64().max(1e-9);
            format!("{:.1} s ({rate:.0} MiB/s)", d.as_secs_f64())
        });
        println!(
            "  {size_mib} MiB tarball ({} bytes): written in {:.1} s, uploaded in {:.1} s; \
             deploy {:.1} s, images step {images}",
            figures.tarball,
            figures.write.as_secs_f64(),
            figures.upload.as_secs_f64(),
            figures.job.as_secs_f64(),
        );
        println!("    before: {}", describe(&figures.before));
        println!(
            "    during: VmRSS max {} over {} samples; VmHWM {}{}",
            mib(figures.sampled_max),
            figures.samples,
            mib(figures.hwm),
            if figures.peak_reset {
                " (reset before the load)"
            } else {
                " (not reset: since start)"
            },
        );
        let series: Vec<String> = figures
            .per_second
            .iter()
            .map(|kib| format!("{:.0}", *kib as f64 / 1024.0))
            .collect();
        println!("    VmRSS each second (MiB): {}", series.join(" "));
        println!("    after:  {}", describe(&figures.after));
        println!(
            "    peak growth over the RSS before: {}",
            mib(figures.growth())
        );
        loads.push(figures);
    }
    let (small, big) = (&loads[0], &loads[1]);
    let flat = big.growth() <= small.growth() + GROWTH_SLACK_KIB;
    rig.rows.push(row(
        format!(
            "worker RSS growth streaming {} MiB vs {} MiB",
            options.big_mib, options.ref_mib
        ),
        format!(
            "+{} vs +{} (peak {}; {:.1} % of the tarball)",
            mib(big.growth()),
            mib(small.growth()),
            mib(big.peak()),
            (big.growth() * 1024) as f64 * 100.0 / big.tarball as f64
        ),
        "no growth with the tarball (≤ small's + 16 MiB)",
        verdict(flat),
    ));
    Ok(())
}

/// Write a tarball of `size_mib` (fixture web + padding), upload it, deploy
/// it to a fresh domain while sampling the worker's memory, then remove the
/// domain, the image (by tag, checked gone) and the object.
async fn streamed_load(
    rig: &mut Rig,
    dir: &Path,
    size_mib: u64,
    index: usize,
) -> anyhow::Result<LoadFigures> {
    let domain: Domain = rig
        .docker
        .unique_domain()
        .parse()
        .context("a unique domain")?;
    let tag = format!("hostkit-bench/big:{}-{index}", &rig.docker.id()[..16]);
    rig.docker.register_image(tag.clone());
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let tarball = dir.join(format!("big-{index}.tar"));
    let write_start = Instant::now();
    let info = {
        let spec = fixtures::web("big")
            .retag(tag.clone())
            .with_padding_layer_seeded(size_mib * MIB, seed);
        let path = tarball.clone();
        tokio::task::spawn_blocking(move || TarballBuilder::new().image(spec).write_to(&path))
            .await
            .context("the tarball writer panicked")?
            .context("write the tarball")?
    };
    let write = write_start.elapsed();
    let image_id = info.images[0].id.clone();
    let upload_start = Instant::now();
    let source = upload_tarball(&rig.js, &rig.names, &tarball).await;
    let upload = upload_start.elapsed();
    std::fs::remove_file(&tarball).context("remove the local tarball")?;

    let pid = rig.pid;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = memory(pid)?;
    let peak_reset = reset_peak(pid);
    let (stop, mut stopped) = watch::channel(false);
    let sampler = tokio::spawn(async move {
        let mut samples = Vec::new();
        loop {
            if let Ok(m) = memory(pid) {
                samples.push(m.rss);
            }
            tokio::select! {
                _ = tokio::time::sleep(SAMPLE_EVERY) => {}
                _ = stopped.changed() => return samples,
            }
        }
    });
    let compose = web_compose(&tag);
    let one = std::slice::from_ref(&domain);
    let mut deploy = |d: &Domain| deploy_job(d, &compose, &source);
    let batch = rig.driver.run(one, 1, 1, BIG_EVENT_WAIT, &mut deploy).await;
    let _ = stop.send(true);
    let samples = sampler.await.context("the sampler panicked")?;
    let after = memory(pid)?;
    let batch = batch?;
    let job = &batch.jobs[0];
    ensure!(
        matches!(job.terminal.event.kind, EventKind::Succeeded { .. }),
        "the deploy ended {:?}",
        job.terminal.event.kind
    );
    let images = match (job.step_at("images"), job.step_at("apply")) {
        (Some(from), Some(to)) => to.duration_since(from).ok(),
        _ => None,
    };

    // Clean up now: the next load needs the disk.
    let removed = rig
        .driver
        .run(one, 1, 1, EVENT_WAIT, &mut remove_job)
        .await?;
    ensure!(
        matches!(
            removed.jobs[0].terminal.event.kind,
            EventKind::Succeeded { .. }
        ),
        "removing {domain} ended {:?}",
        removed.jobs[0].terminal.event.kind
    );
    let version_tag = hostkit_deploy::images::version_tag(&domain.token(), "web", 1);
    for tag in [&tag, &version_tag] {
        let options = RemoveImageOptions {
            force: true,
            noprune: false,
            ..Default::default()
        };
        let _ = rig
            .docker
            .client()
            .remove_image(tag, Some(options), None)
            .await;
    }
    ensure!(
        rig.docker.client().inspect_image(&image_id).await.is_err(),
        "image {image_id} is still in the engine after its tags were removed"
    );
    js_delete(&rig.js, &rig.names, &source).await?;

    Ok(LoadFigures {
        tarball: info.size,
        before,
        sampled_max: samples.iter().copied().max().unwrap_or(0),
        per_second: samples.iter().step_by(10).copied().collect(),
        samples: samples.len(),
        hwm: after.hwm,
        peak_reset,
        after,
        job: job.to_terminal(),
        images,
        write,
        upload,
    })
}

fn print_table(rows: &[Row]) {
    if rows.is_empty() {
        return;
    }
    let width = |f: fn(&Row) -> &str| rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0);
    let (w1, w2, w3) = (
        width(|r| &r.what).max(7),
        width(|r| &r.figure).max(8),
        width(|r| &r.target).max(6),
    );
    let mut out = String::new();
    let pad = |s: &str, w: usize| format!("{s}{}", " ".repeat(w.saturating_sub(s.chars().count())));
    let _ = writeln!(
        out,
        "\n{} | {} | {} | verdict",
        pad("measure", w1),
        pad("measured", w2),
        pad("target", w3)
    );
    let _ = writeln!(
        out,
        "{}-+-{}-+-{}-+--------",
        "-".repeat(w1),
        "-".repeat(w2),
        "-".repeat(w3)
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{} | {} | {} | {}",
            pad(&r.what, w1),
            pad(&r.figure, w2),
            pad(&r.target, w3),
            r.verdict
        );
    }
    print!("{out}");
}
