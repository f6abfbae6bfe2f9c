//! `bench-layers`: image delivery by layer (DESIGN §11, §9), measured in one
//! run on one machine, from the CLI's start to its exit — what a user in CI
//! waits for — against `docker load -i` + `docker-compose up -d`.
//!
//! (a) First deploy of an image with a fresh `--first-mib` layer:
//!     `hostkit deploy` (split, upload, job, worker load, start, health gate,
//!     nginx) vs `docker load -i` + `docker-compose up -d` of the same
//!     tarball (the image removed in between, so both loads are cold).
//!     Budget ≤ 1.2×.
//! (b) Redeploy in which one `--changed-mib` layer over a `--base-mib` base
//!     changed: bytes uploaded and loaded vs that layer (budget ≤ 1.1×), and
//!     time vs the first deploy of that image (budget ≤ 0.2×).
//! (c) The worker's object store → engine stream (from its `images` step
//!     events) in MiB/s vs `docker load -i` of the same tarball.
//!
//! ```sh
//! cargo build --release -p hostkit --bin hostkit -p hostkit-tests --bin bench-layers
//! target/release/bench-layers [--first-mib 1024] [--base-mib 500] [--changed-mib 5]
//! ```
//!
//! It starts its own nats-server, nginx and an in-process worker (the
//! harness's), uses the real Docker Engine, and removes every stack, image
//! and project it made, also on error (the harness cleans up on drop).

use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use bollard::query_parameters::RemoveImageOptions;
use hostkit_proto::{Domain, EventKind};
use hostkit_tests::{
    ImageSpec, JobEvents, TarballBuilder, TestDocker, TestNats, TestNginx, TestWorker, fixtures,
};
use tokio::time::Instant;

const MIB: u64 = 1 << 20;

/// Command-line options.
#[derive(Debug, Clone, Copy)]
struct Options {
    first_mib: u64,
    base_mib: u64,
    changed_mib: u64,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            first_mib: 1024,
            base_mib: 500,
            changed_mib: 5,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| -> anyhow::Result<u64> {
                args.next()
                    .ok_or_else(|| anyhow!("{name} needs a value"))?
                    .parse()
                    .with_context(|| format!("{name} needs a number"))
            };
            match arg.as_str() {
                "--first-mib" => options.first_mib = value(arg)?,
                "--base-mib" => options.base_mib = value(arg)?,
                "--changed-mib" => options.changed_mib = value(arg)?,
                "-h" | "--help" => {
                    bail!("usage: bench-layers [--first-mib N] [--base-mib N] [--changed-mib N]")
                }
                other => bail!("unknown argument {other:?} (try --help)"),
            }
        }
        ensure!(
            options.first_mib >= 1 && options.changed_mib >= 1 && options.base_mib >= 1,
            "sizes must be ≥ 1 MiB"
        );
        Ok(options)
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match Options::parse(&args) {
        Ok(options) => options,
        Err(error) => {
            eprintln!("bench-layers: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(bench(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-layers: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Everything one run needs.
struct Rig {
    nats: TestNats,
    docker: TestDocker,
    nginx: TestNginx,
    worker: TestWorker,
    client: async_nats::Client,
    dir: tempfile::TempDir,
    hostkit: PathBuf,
}

/// What one `hostkit deploy` did.
struct Deployed {
    wall: Duration,
    uploaded: u64,
    /// The worker's `images` step: bytes of layers streamed, and how long
    /// from its first to its last `images` step event.
    layers_sent: u64,
    load: Duration,
    /// Each job event: time since `started`, kind and message.
    timeline: Vec<(Duration, String)>,
}

/// Reads the tarball's largest layer object from the bucket into nothing,
/// plainly and through the worker's digest check: the store's own rate.
async fn read_biggest_layer(
    rig: &Rig,
    tarball: &Path,
) -> anyhow::Result<(Duration, Duration, u64)> {
    let split = hostkit_deploy::images::split::split(tarball)?
        .ok_or_else(|| anyhow!("not a docker save tarball"))?;
    let layer = split.images.images[0]
        .layers
        .iter()
        .max_by_key(|l| l.size)
        .ok_or_else(|| anyhow!("no layer"))?
        .clone();
    let js = async_nats::jetstream::new(rig.client.clone());
    let store = js
        .get_object_store(rig.worker.names.images_bucket())
        .await?;
    let started = Instant::now();
    let mut object = store.get(layer.object.as_str()).await?;
    let read = tokio::io::copy(&mut object, &mut tokio::io::sink()).await?;
    let plain = started.elapsed();
    ensure!(read == layer.size, "read {read} of {} bytes", layer.size);
    let started = Instant::now();
    let object = store.get(layer.object.as_str()).await?;
    let (mut checked, verdict) =
        hostkit_deploy::images::verify::DigestCheck::new(object, layer.object.sha256_hex());
    tokio::io::copy(&mut checked, &mut tokio::io::sink()).await?;
    let with_check = started.elapsed();
    ensure!(
        verdict.get() == hostkit_deploy::images::verify::Verdict::Verified,
        "the layer did not verify"
    );
    Ok((plain, with_check, layer.size))
}

async fn bench(options: Options) -> anyhow::Result<()> {
    let hostkit = std::env::current_exe()?
        .parent()
        .map(|dir| dir.join("hostkit"))
        .filter(|path| path.is_file())
        .ok_or_else(|| {
            anyhow!(
                "no `hostkit` next to this binary: cargo build --release -p hostkit --bin hostkit"
            )
        })?;
    let nats = TestNats::new().await;
    let docker = TestDocker::new().await;
    let nginx = TestNginx::new().await;
    let worker = TestWorker::start(&nats, &docker, &nginx).await;
    let client = nats.client().await;
    let rig = Rig {
        nats,
        docker,
        nginx,
        worker,
        client,
        dir: tempfile::Builder::new()
            .prefix("bench-layers-")
            .tempdir_in(std::env::temp_dir())?,
        hostkit,
    };
    println!(
        "bench-layers: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );

    // (a) and (c): a first deploy of a fresh big layer, then the peer.
    let tag = unique_tag(&rig.docker, "first");
    let first = rig.dir.path().join("first.tar");
    TarballBuilder::new()
        .image(web(&tag).with_padding_layer_seeded(options.first_mib * MIB, seed()))
        .write_to_async(first.clone())
        .await?;
    let size = std::fs::metadata(&first)?.len();
    let domain = unique_domain(&rig.docker);
    // The worker runs in this process: its peak RSS over the load.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let rss_before = status_kib("VmRSS:")?;
    let ours = deploy(&rig, &domain, &tag, &first).await?;
    let rss_peak = status_kib("VmHWM:")?;
    let (read_plain, read_checked, biggest) = read_biggest_layer(&rig, &first).await?;
    remove_stack(&rig, &domain).await?;
    remove_image(&rig, &tag).await?;
    let (peer_load, peer_up) = peer(&rig, &tag, &first).await?;
    remove_image(&rig, &tag).await?;
    let peer_total = peer_load + peer_up;

    // (b): v1 (base + changed layer), then v2 with another changed layer.
    let (tag1, tag2) = (unique_tag(&rig.docker, "v1"), unique_tag(&rig.docker, "v2"));
    let base_seed = seed();
    let layered = |tag: &str| {
        web(tag)
            .with_padding_layer_seeded(options.base_mib * MIB, base_seed)
            .with_padding_layer_seeded(options.changed_mib * MIB, seed())
    };
    let (v1, v2) = (rig.dir.path().join("v1.tar"), rig.dir.path().join("v2.tar"));
    TarballBuilder::new()
        .image(layered(&tag1))
        .write_to_async(v1.clone())
        .await?;
    TarballBuilder::new()
        .image(layered(&tag2))
        .write_to_async(v2.clone())
        .await?;
    let domain = unique_domain(&rig.docker);
    std::fs::write("/proc/self/clear_refs", "5").ok();
    let rss_before_half = status_kib("VmRSS:")?;
    let base_deploy = deploy(&rig, &domain, &tag1, &v1).await?;
    let rss_peak_half = status_kib("VmHWM:")?;
    let redeploy = deploy(&rig, &domain, &tag2, &v2).await?;
    remove_stack(&rig, &domain).await?;
    remove_image(&rig, &tag1).await?;
    remove_image(&rig, &tag2).await?;
    std::fs::remove_file(&first).ok();

    let changed = options.changed_mib * MIB;
    let secs = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let mibs = |bytes: u64, d: Duration| bytes as f64 / MIB as f64 / d.as_secs_f64().max(1e-6);
    let ratio_a = ours.wall.as_secs_f64() / peer_total.as_secs_f64();
    let (ours_rate, peer_rate) = (mibs(ours.layers_sent, ours.load), mibs(size, peer_load));
    let ratio_c = ours_rate / peer_rate;
    let up_ratio = redeploy.uploaded as f64 / changed as f64;
    let load_ratio = redeploy.layers_sent as f64 / changed as f64;
    let time_ratio = redeploy.wall.as_secs_f64() / base_deploy.wall.as_secs_f64();
    println!();
    println!("| Measurement | HostKit | Peer | Ratio | Budget |");
    println!("|---|---|---|---|---|");
    println!(
        "| (a) First deploy, {} MiB tarball, CLI start → succeeded | {} (uploaded {:.0} MiB) | `docker load -i` {} + `up -d` {} = {} | {ratio_a:.2} | ≤ 1.2: {} |",
        size / MIB,
        secs(ours.wall),
        ours.uploaded as f64 / MIB as f64,
        secs(peer_load),
        secs(peer_up),
        secs(peer_total),
        verdict(ratio_a <= 1.2)
    );
    println!(
        "| (b) Redeploy, one {} MiB layer changed over {} MiB: bytes uploaded | {} | the layer: {changed} | {up_ratio:.3} | ≤ 1.1: {} |",
        options.changed_mib,
        options.base_mib,
        redeploy.uploaded,
        verdict(up_ratio <= 1.1)
    );
    println!(
        "| (b) … bytes loaded into the engine | {} | {changed} | {load_ratio:.3} | ≤ 1.1: {} |",
        redeploy.layers_sent,
        verdict(load_ratio <= 1.1)
    );
    println!(
        "| (b) … time, CLI start → succeeded | {} | first deploy of that image: {} | {time_ratio:.3} | ≤ 0.2: {} |",
        secs(redeploy.wall),
        secs(base_deploy.wall),
        verdict(time_ratio <= 0.2)
    );
    println!(
        "| (c) Object store → engine, first load | {ours_rate:.0} MiB/s ({} MiB in {}) | `docker load -i`: {peer_rate:.0} MiB/s | {ratio_c:.2}× | ≥ 0.9×: {} |",
        ours.layers_sent / MIB,
        secs(ours.load),
        verdict(ratio_c >= 0.9)
    );
    println!(
        "| (c) … where the time goes: reading the {} MiB layer object from the store alone | {:.0} MiB/s; with its SHA-256 check {:.0} MiB/s | | | |",
        biggest / MIB,
        mibs(biggest, read_plain),
        mibs(biggest, read_checked)
    );
    let (grow_big, grow_half) = (
        rss_peak.saturating_sub(rss_before),
        rss_peak_half.saturating_sub(rss_before_half),
    );
    println!(
        "| Memory of the worker's process while loading | {} MiB tarball: peak {:.1} MiB (+{:.1}); {} MiB: peak {:.1} MiB (+{:.1}){} | | | does not grow with the tarball: {} |",
        size / MIB,
        rss_peak as f64 / 1024.0,
        grow_big as f64 / 1024.0,
        (options.base_mib + options.changed_mib),
        rss_peak_half as f64 / 1024.0,
        grow_half as f64 / 1024.0,
        if reset { "" } else { " (peaks not reset)" },
        verdict(grow_big <= grow_half + grow_half / 2 + 16 * 1024)
    );
    println!();
    println!("Timeline of the redeploy (b), the worker's events from `started`:");
    for (offset, what) in &redeploy.timeline {
        println!("  {:>7.3} s  {what}", offset.as_secs_f64());
    }
    drop(rig.client);
    drop(rig.worker);
    drop(rig.nginx);
    drop(rig.nats);
    Ok(())
}

/// A `kB` field of `/proc/self/status`.
fn status_kib(field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow!("no {field} in /proc/self/status"))
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The fixture web service answering `web bench`, under `tag`.
fn web(tag: &str) -> ImageSpec {
    fixtures::http_as(tag, "web", "bench", 8080)
}

fn seed() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
}

fn unique_tag(docker: &TestDocker, what: &str) -> String {
    let tag = format!(
        "hostkit-bench/layers-{what}-{}:1",
        &docker.unique_domain()[1..9]
    );
    docker.register_image(tag.clone());
    tag
}

fn unique_domain(docker: &TestDocker) -> Domain {
    docker.unique_domain().parse().expect("a domain")
}

fn compose(tag: &str, publish: &str) -> String {
    format!(
        "services:\n  web:\n    image: {tag}\n    ports: [\"{publish}\"]\n    healthcheck:\n      test: [\"CMD\", \"wget\", \"-q\", \"-O-\", \"http://127.0.0.1:8080/\"]\n      interval: 1s\n      timeout: 3s\n      retries: 3\n"
    )
}

/// `hostkit deploy` from process start to exit, with what the worker's
/// `images` steps said.
async fn deploy(rig: &Rig, domain: &Domain, tag: &str, tarball: &Path) -> anyhow::Result<Deployed> {
    let file = rig.dir.path().join(format!("{}.yml", domain.token()));
    std::fs::write(&file, compose(tag, "8080"))?;
    let mut events = JobEvents::subscribe(&rig.client, &rig.worker.names, domain).await;
    let started = Instant::now();
    let output = tokio::process::Command::new(&rig.hostkit)
        .args(["deploy", domain.as_str()])
        .arg(&file)
        .arg("--images")
        .arg(tarball)
        .args(["--node", rig.worker.node.as_str(), "--timeout", "15m"])
        .env("NATS_URL", rig.nats.url())
        .env("HOSTKIT_REQUESTED_BY", "bench-layers")
        .stdin(Stdio::null())
        .output()
        .await
        .context("run hostkit")?;
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&output.stdout);
    ensure!(
        output.status.success(),
        "hostkit deploy failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let uploaded = stdout
        .lines()
        .find_map(|l| {
            let (_, rest) = l.split_once(" sent (")?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| anyhow!("no `sent (N bytes)` line in:\n{stdout}"))?;
    events.collect_for(Duration::from_millis(300)).await;
    let steps: Vec<(chrono::DateTime<chrono::Utc>, String)> = events
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Step { name, message } if name == "images" => Some((e.at, message.clone())),
            _ => None,
        })
        .collect();
    let (first, last) = (steps.first(), steps.last());
    let (Some((from, _)), Some((to, summary))) = (first, last) else {
        bail!("no `images` steps among the job's events");
    };
    ensure!(
        summary.starts_with("layers: ") && !summary.contains("refused"),
        "unexpected load summary: {summary}"
    );
    let layers_sent = parse_layer_bytes(summary, tarball)?;
    let start = events.events.first().map(|e| e.at);
    let timeline = events
        .events
        .iter()
        .map(|e| {
            let offset = start
                .and_then(|s| (e.at - s).to_std().ok())
                .unwrap_or_default();
            let what = match &e.kind {
                EventKind::Step { name, message } => format!("{name}: {message}"),
                other => format!("{other:?}").chars().take(100).collect(),
            };
            (offset, what)
        })
        .filter(|(_, what)| !what.starts_with("Progress"))
        .collect();
    Ok(Deployed {
        wall,
        uploaded,
        layers_sent,
        load: (*to - *from).to_std().unwrap_or_default(),
        timeline,
    })
}

/// The bytes of the layers the worker streamed: the `layers: N sent (…)`
/// step gives a rounded size, so the exact figure comes from the tarball's
/// blobs the step counted (the `N` largest new ones are the sent ones).
fn parse_layer_bytes(summary: &str, tarball: &Path) -> anyhow::Result<u64> {
    let sent: usize = summary
        .strip_prefix("layers: ")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow!("cannot read {summary:?}"))?;
    let split = hostkit_deploy::images::split::split(tarball)?
        .ok_or_else(|| anyhow!("{} is not a docker save tarball", tarball.display()))?;
    // The sent layers are the top ones (a changed layer invalidates all
    // above it): the last `sent` layers of the image.
    let layers = &split.images.images[0].layers;
    Ok(layers.iter().rev().take(sent).map(|l| l.size).sum())
}

async fn remove_stack(rig: &Rig, domain: &Domain) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(&rig.hostkit)
        .args(["remove", domain.as_str(), "--yes", "--node"])
        .arg(rig.worker.node.as_str())
        .env("NATS_URL", rig.nats.url())
        .stdin(Stdio::null())
        .output()
        .await?;
    ensure!(
        output.status.success(),
        "hostkit remove failed: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(())
}

/// Removes an image with every tag (so the next load of it is cold).
async fn remove_image(rig: &Rig, tag: &str) -> anyhow::Result<()> {
    let docker = rig.docker.client();
    let Ok(image) = docker.inspect_image(tag).await else {
        return Ok(());
    };
    let id = image.id.unwrap_or_default();
    docker
        .remove_image(
            &id,
            Some(RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await
        .with_context(|| format!("remove {tag}"))?;
    Ok(())
}

/// `docker load -i` and `docker-compose up -d` (which returns once the
/// container runs) of the same tarball, in a project of its own.
async fn peer(rig: &Rig, tag: &str, tarball: &Path) -> anyhow::Result<(Duration, Duration)> {
    let started = Instant::now();
    let load = tokio::process::Command::new("docker")
        .arg("load")
        .arg("-i")
        .arg(tarball)
        .stdin(Stdio::null())
        .output()
        .await
        .context("run docker load")?;
    ensure!(
        load.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    let loaded = started.elapsed();
    let project = format!("benchlayers{}", &rig.docker.unique_domain()[1..9]);
    rig.docker.register_project(&project);
    let dir = rig.dir.path().join(&project);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(
        dir.join("docker-compose.yml"),
        compose(tag, "127.0.0.1::8080"),
    )?;
    let started = Instant::now();
    let up = tokio::process::Command::new("docker-compose")
        .args(["-p", &project, "up", "-d"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .await
        .context("run docker-compose (v1)")?;
    let upped = started.elapsed();
    ensure!(
        up.status.success(),
        "docker-compose up -d: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let down = tokio::process::Command::new("docker-compose")
        .args(["-p", &project, "down", "-v"])
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .await?;
    ensure!(down.status.success(), "docker-compose down failed");
    Ok((loaded, upped))
}
