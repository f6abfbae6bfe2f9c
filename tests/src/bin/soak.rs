//! `soak`: a fleet under load for a long time (issue 16) — three clustered
//! nats-servers (every stream and bucket at three replicas), N
//! `hostkit-worker` processes as N nodes with M domains each, a mix of
//! deploy / no-op deploy / restart / scale jobs published serially per
//! domain and in parallel across domains, while a NATS server and now and
//! then a worker are killed (SIGKILL) at random and started again.
//!
//! It prints jobs published and ended, terminal events vs jobs (must be
//! equal, none twice), p50/p99 of publish → `started` and of job durations,
//! each worker's RSS over time (must stay flat), and the SQLite and stream
//! sizes (must stay bounded). A benchmark, not a test: bounded by
//! `--duration`.
//!
//! ```sh
//! cargo build -p hostkit-worker -p hostkit-tests --bin soak
//! target/debug/soak --duration 30m [--workers 2] [--domains 3] [--chaos-every 60s]
//! ```

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::{self, consumer::DeliverPolicy, consumer::push};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use hostkit_proto::job::{
    ComposeSource, DeployOptions, DeployPayload, DeploySource, ImageSource, RestartPayload,
    ScalePayload,
};
use hostkit_proto::{Domain, Event, EventKind, Job, JobId, JobSpec, Names, NodeId};
use hostkit_tests::worker::{WorkerProcess, upload_tarball};
use hostkit_tests::{TarballBuilder, TestDocker, TestNatsCluster, TestNginx, fixtures};
use tokio::time::Instant;

struct Options {
    duration: Duration,
    workers: usize,
    domains: usize,
    chaos_every: Duration,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("soak: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(soak(options)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("soak: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> anyhow::Result<Options> {
    let mut options = Options {
        duration: Duration::from_secs(30 * 60),
        workers: 2,
        domains: 3,
        chaos_every: Duration::from_secs(60),
    };
    let mut rest = args.iter();
    while let Some(flag) = rest.next() {
        let value = rest
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--duration" => options.duration = duration(value)?,
            "--workers" => options.workers = value.parse().context("--workers")?,
            "--domains" => options.domains = value.parse().context("--domains")?,
            "--chaos-every" => options.chaos_every = duration(value)?,
            _ => bail!(
                "usage: soak [--duration 30m] [--workers 2] [--domains 3] [--chaos-every 60s]"
            ),
        }
    }
    if options.workers == 0 || options.domains == 0 {
        bail!("--workers and --domains must be at least 1");
    }
    Ok(options)
}

/// `90s`, `30m`, `1h`.
fn duration(text: &str) -> anyhow::Result<Duration> {
    let (number, unit) = text.split_at(text.trim_end_matches(char::is_alphabetic).len());
    let n: u64 = number
        .parse()
        .with_context(|| format!("{text}: not a duration"))?;
    Ok(Duration::from_secs(match unit {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => bail!("{text}: use s, m or h"),
    }))
}

/// One job as the soak saw it.
#[derive(Debug, Clone)]
struct Seen {
    kind: &'static str,
    published: DateTime<Utc>,
    started: Option<DateTime<Utc>>,
    ended: Option<DateTime<Utc>>,
    terminals: u32,
    outcome: Option<&'static str>,
}

type Ledger = Arc<Mutex<BTreeMap<JobId, Seen>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn web_compose(version: &str, replicas: u32) -> String {
    format!(
        "services:\n  web:\n    image: hostkit-test/web:{version}\n    ports: [\"8080\"]\n    deploy:\n      replicas: {replicas}\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\n"
    )
}

async fn soak(options: Options) -> anyhow::Result<bool> {
    let mut cluster = TestNatsCluster::start(3).await;
    let docker = TestDocker::new().await;
    let nginx = TestNginx::new().await;
    let names = Names::default();
    let replicated = "[streams]\nreplicas = 3\nimages_max_bytes = \"1g\"\n";
    let id = docker.id()[..8].to_owned();
    let mut workers = Vec::new();
    for i in 0..options.workers {
        let node: NodeId = format!("soak{i}-{id}").parse()?;
        workers
            .push(WorkerProcess::start_node(&cluster.url_list(), node, &nginx, replicated).await);
    }
    let client = cluster.client().await;
    let js = jetstream::new(client.clone());

    let dir = tempfile::tempdir()?;
    let mut images = BTreeMap::new();
    for version in ["v1", "v2"] {
        let path = dir.path().join(format!("web-{version}.tar"));
        TarballBuilder::new()
            .image(fixtures::web(version))
            .write_to(&path)?;
        images.insert(version, upload_tarball(&js, &names, &path).await);
    }

    let ledger: Ledger = Arc::default();
    let watcher = tokio::spawn(watch_events(js.clone(), names.clone(), ledger.clone()));
    let nodes: Vec<NodeId> = workers.iter().map(|w| w.node.clone()).collect();
    let stop_at = Instant::now() + options.duration;
    let mut drivers = Vec::new();
    for node in &nodes {
        for _ in 0..options.domains {
            let domain: Domain = docker.unique_domain().parse()?;
            drivers.push(tokio::spawn(drive(
                js.clone(),
                names.clone(),
                node.clone(),
                domain,
                images.clone(),
                ledger.clone(),
                stop_at,
            )));
        }
    }

    // Chaos and samples until the end.
    let started = Instant::now();
    let mut samples: Vec<Sample> = Vec::new();
    let mut next_sample = Instant::now();
    let mut next_chaos = Instant::now() + options.chaos_every;
    let mut chaos_round = 0u32;
    let mut chaos_log = Vec::new();
    while Instant::now() < stop_at {
        if Instant::now() >= next_sample {
            samples.push(sample(&js, &names, &workers, started.elapsed()).await);
            next_sample += Duration::from_secs(60);
        }
        if Instant::now() >= next_chaos {
            chaos_round += 1;
            let pick = (ulid::Ulid::new().random() % 1000) as usize;
            if chaos_round % 3 == 0 {
                let w = pick % workers.len();
                workers[w].kill();
                chaos_log.push(format!(
                    "{:>6.0}s kill worker {}",
                    started.elapsed().as_secs_f64(),
                    workers[w].node
                ));
                tokio::time::sleep(Duration::from_secs(10)).await;
                workers[w].spawn().await;
            } else {
                let s = pick % 3;
                cluster.kill(s);
                chaos_log.push(format!(
                    "{:>6.0}s kill nats-server n{}",
                    started.elapsed().as_secs_f64(),
                    s + 1
                ));
                tokio::time::sleep(Duration::from_secs(15)).await;
                cluster.restart(s).await;
            }
            next_chaos = Instant::now() + options.chaos_every;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for driver in drivers {
        driver.await??;
    }
    // Let the last terminal events arrive.
    let settle = Instant::now() + Duration::from_secs(300);
    while Instant::now() < settle && lock(&ledger).values().any(|s| s.terminals == 0) {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    samples.push(sample(&js, &names, &workers, started.elapsed()).await);
    watcher.abort();
    Ok(report(&options, &lock(&ledger), &samples, &chaos_log))
}

/// Publishes jobs for one domain, one at a time, each after the last ended.
async fn drive(
    js: jetstream::Context,
    names: Names,
    node: NodeId,
    domain: Domain,
    images: BTreeMap<&'static str, ImageSource>,
    ledger: Ledger,
    stop_at: Instant,
) -> anyhow::Result<()> {
    let (mut version, mut replicas) = ("v1", 1u32);
    let mut first = true;
    while Instant::now() < stop_at {
        let roll = (ulid::Ulid::new().random() % 100) as u32;
        let (kind, spec) = match roll {
            _ if first => ("deploy", None),
            0..40 => {
                version = if version == "v1" { "v2" } else { "v1" };
                ("deploy", None)
            }
            40..60 => ("deploy (no-op)", None),
            60..80 => (
                "restart",
                Some(JobSpec::Restart(RestartPayload { service: None })),
            ),
            _ => {
                replicas = 3 - replicas;
                (
                    "scale",
                    Some(JobSpec::Scale(ScalePayload {
                        service: "web".into(),
                        replicas,
                    })),
                )
            }
        };
        first = false;
        let spec = spec.unwrap_or_else(|| {
            JobSpec::Deploy(DeployPayload {
                source: DeploySource::Compose(ComposeSource {
                    text: web_compose(version, replicas),
                    file_name: None,
                }),
                images: vec![images[version].clone()],
                env: Default::default(),
                sealed_env: None,
                options: DeployOptions {
                    health_timeout_secs: Some(30),
                    ..DeployOptions::default()
                },
            })
        });
        let job = Job::new(domain.clone(), spec, "soak");
        publish(&js, &names, &node, &job).await?;
        lock(&ledger).insert(
            job.id,
            Seen {
                kind,
                published: Utc::now(),
                started: None,
                ended: None,
                terminals: 0,
                outcome: None,
            },
        );
        // Wait for its end (a lost worker's jobs wait for it to return).
        let deadline = Instant::now() + Duration::from_secs(300);
        while Instant::now() < deadline
            && lock(&ledger).get(&job.id).is_some_and(|s| s.terminals == 0)
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Publishes `job` as the CLI does: same msg id on every try, until the
/// stream acknowledges it (a cluster may be failing over).
async fn publish(
    js: &jetstream::Context,
    names: &Names,
    node: &NodeId,
    job: &Job,
) -> anyhow::Result<()> {
    let subject = names.jobs_subject(node, &job.domain);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let message = jetstream::message::PublishMessage::build()
            .payload(job.to_vec().into())
            .message_id(job.id.to_string());
        let sent = async { js.send_publish(subject.clone(), message).await?.await };
        match tokio::time::timeout(Duration::from_secs(5), sent).await {
            Ok(Ok(_)) => return Ok(()),
            _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(250)).await,
            Ok(Err(e)) => bail!("publish {}: {e}", job.id),
            Err(_) => bail!("publish {}: no acknowledgement", job.id),
        }
    }
}

/// Records every job event of the events stream in the ledger; a new
/// ordered consumer after the last sequence seen when one fails.
async fn watch_events(js: jetstream::Context, names: Names, ledger: Ledger) {
    let mut next = 1u64;
    loop {
        let consumer = async {
            let stream = js.get_stream(names.events_stream()).await?;
            let consumer = stream
                .create_consumer(push::OrderedConfig {
                    deliver_subject: js.client().new_inbox(),
                    deliver_policy: DeliverPolicy::ByStartSequence {
                        start_sequence: next,
                    },
                    ..Default::default()
                })
                .await?;
            anyhow::Ok(consumer.messages().await?)
        };
        let Ok(mut messages) = consumer.await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        while let Some(Ok(message)) = messages.next().await {
            if let Ok(info) = message.info() {
                next = info.stream_sequence + 1;
            }
            let Ok(event) = Event::from_slice(&message.payload) else {
                continue;
            };
            let Some(job) = event.job_id else { continue };
            let mut ledger = lock(&ledger);
            let Some(seen) = ledger.get_mut(&job) else {
                continue;
            };
            match &event.kind {
                EventKind::Started { .. } => {
                    seen.started.get_or_insert(event.at);
                }
                kind if event.is_terminal() => {
                    seen.terminals += 1;
                    seen.ended = Some(event.at);
                    seen.outcome = Some(match kind {
                        EventKind::Succeeded { .. } => "succeeded",
                        EventKind::Failed { .. } => "failed",
                        _ => "superseded",
                    });
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What one sample saw.
struct Sample {
    at: Duration,
    rss_kib: Vec<Option<u64>>,
    sqlite_bytes: Vec<u64>,
    events_bytes: u64,
    events_messages: u64,
    jobs_messages: u64,
}

async fn sample(
    js: &jetstream::Context,
    names: &Names,
    workers: &[WorkerProcess],
    at: Duration,
) -> Sample {
    let rss_kib = workers
        .iter()
        .map(|w| {
            let status = std::fs::read_to_string(format!("/proc/{}/status", w.pid()?)).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .collect();
    let sqlite_bytes = workers
        .iter()
        .map(|w| {
            let db = hostkit_worker::config::DATABASE_FILE;
            [db.to_owned(), format!("{db}-wal")]
                .iter()
                .filter_map(|f| std::fs::metadata(w.data_dir().join(f)).ok())
                .map(|m| m.len())
                .sum()
        })
        .collect();
    let state = async |name: String| {
        let mut stream = js.get_stream(name).await.ok()?;
        Some(stream.info().await.ok()?.state.clone())
    };
    let events = state(names.events_stream()).await;
    let jobs = state(names.jobs_stream()).await;
    Sample {
        at,
        rss_kib,
        sqlite_bytes,
        events_bytes: events.as_ref().map_or(0, |s| s.bytes),
        events_messages: events.as_ref().map_or(0, |s| s.messages),
        jobs_messages: jobs.as_ref().map_or(0, |s| s.messages),
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn seconds(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_milliseconds() as f64 / 1000.0
}

/// Prints the figures; answers whether the fleet kept its promises.
fn report(
    options: &Options,
    ledger: &BTreeMap<JobId, Seen>,
    samples: &[Sample],
    chaos: &[String],
) -> bool {
    let published = ledger.len();
    let ended = ledger.values().filter(|s| s.terminals > 0).count();
    let twice = ledger.values().filter(|s| s.terminals > 1).count();
    let terminal_events: u32 = ledger.values().map(|s| s.terminals).sum();
    println!(
        "soak: {} workers x {} domains, {:?}, a kill every {:?} (every third a worker)",
        options.workers, options.domains, options.duration, options.chaos_every
    );
    println!("chaos:");
    for line in chaos {
        println!("  {line}");
    }
    println!(
        "jobs published {published}, ended {ended}, terminal events {terminal_events}, ended twice {twice}, not ended {}",
        published - ended
    );
    let mut by_kind: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for seen in ledger.values() {
        *by_kind
            .entry((seen.kind, seen.outcome.unwrap_or("not ended")))
            .or_default() += 1;
    }
    for ((kind, outcome), n) in &by_kind {
        println!("  {kind:<15} {outcome:<10} {n}");
    }
    let mut waits: Vec<f64> = ledger
        .values()
        .filter_map(|s| Some(seconds(s.published, s.started?)))
        .collect();
    let mut runs: Vec<f64> = ledger
        .values()
        .filter_map(|s| Some(seconds(s.started?, s.ended?)))
        .collect();
    waits.sort_by(f64::total_cmp);
    runs.sort_by(f64::total_cmp);
    println!(
        "publish -> started: p50 {:.2}s  p99 {:.2}s  max {:.2}s",
        percentile(&waits, 50.0),
        percentile(&waits, 99.0),
        waits.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "job duration:       p50 {:.2}s  p99 {:.2}s  max {:.2}s",
        percentile(&runs, 50.0),
        percentile(&runs, 99.0),
        runs.last().copied().unwrap_or(f64::NAN)
    );
    println!("samples (RSS MiB per worker; SQLite KiB per worker; events stream; jobs stream):");
    for s in samples {
        let rss: Vec<String> = s
            .rss_kib
            .iter()
            .map(|r| r.map_or("-".into(), |k| format!("{:.1}", k as f64 / 1024.0)))
            .collect();
        let db: Vec<String> = s
            .sqlite_bytes
            .iter()
            .map(|b| format!("{}", b / 1024))
            .collect();
        println!(
            "  {:>6.0}s  rss [{}]  sqlite [{}]  events {} msgs {:.1} MiB  jobs {} msgs",
            s.at.as_secs_f64(),
            rss.join(", "),
            db.join(", "),
            s.events_messages,
            s.events_bytes as f64 / 1048576.0,
            s.jobs_messages
        );
    }
    let kept = ended == published && twice == 0;
    println!(
        "{}",
        if kept {
            "OK: every job published ended exactly once"
        } else {
            "FAILED: jobs lost or doubled"
        }
    );
    kept
}
