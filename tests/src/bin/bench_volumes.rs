//! `bench-volumes`: backup and restore throughput of one named volume
//! (DESIGN §12), measured in one run against the peer on the same engine:
//! `docker cp` of the same volume to a tar file and back.
//!
//! - backup: the `backup` job, publish → `succeeded` (volume → helper
//!   container's archive → object store), vs `docker cp <ctr>:/data/. -`
//!   into a file;
//! - restore: the `restore` job's write phase (the backup's object → the
//!   emptied volume, from its events) vs `docker cp - <ctr>:/data` from the
//!   file; and the whole restore (stop, copy aside, replace, start, health
//!   gate), publish → `succeeded`.
//!
//! ```sh
//! cargo build --release -p hostkit-tests --bin bench-volumes
//! target/release/bench-volumes [--mib 1024]
//! ```
//!
//! It starts its own nats-server, nginx and an in-process worker (the
//! harness's), uses the real Docker Engine, and removes what it made.

use std::process::{ExitCode, Stdio};
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail, ensure};
use async_nats::jetstream;
use hostkit_proto::control::{BackupsReply, BackupsRequest, ControlCall, Reply};
use hostkit_proto::job::{
    BackupPayload, ComposeSource, DeployOptions, DeployPayload, DeploySource, RestorePayload,
};
use hostkit_proto::{Domain, Event, EventKind, Job, JobSpec};
use hostkit_tests::worker::upload_tarball;
use hostkit_tests::{
    JobEvents, TarballBuilder, TestDocker, TestNats, TestNginx, TestWorker, fixtures, publish_job,
};
use tokio::time::Instant;

const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mib = match parse(&args) {
        Ok(mib) => mib,
        Err(error) => {
            eprintln!("bench-volumes: {error:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(bench(mib)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("bench-volumes: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> anyhow::Result<u64> {
    match args {
        [] => Ok(1024),
        [flag, n] if flag == "--mib" => {
            let mib: u64 = n.parse().context("--mib needs a number")?;
            ensure!(mib >= 1, "--mib must be ≥ 1");
            Ok(mib)
        }
        _ => bail!("usage: bench-volumes [--mib N]"),
    }
}

const STACK: &str = "services:\n  db:\n    image: hostkit-test/db:latest\n    ports: [\"5432\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {}\n";

struct Rig {
    _nats: TestNats,
    docker: TestDocker,
    _nginx: TestNginx,
    worker: TestWorker,
    client: async_nats::Client,
    js: jetstream::Context,
    dir: tempfile::TempDir,
}

impl Rig {
    /// Publish `spec` for `domain`; answers its terminal event, all its
    /// events and the time from publishing to the terminal event.
    async fn run(
        &self,
        domain: &Domain,
        spec: JobSpec,
    ) -> anyhow::Result<(Event, Vec<Event>, Duration)> {
        let job = Job::new(domain.clone(), spec, "bench-volumes");
        let mut events = JobEvents::subscribe(&self.client, &self.worker.names, domain).await;
        let started = Instant::now();
        publish_job(&self.js, &self.worker.names, &self.worker.node, &job).await;
        let done = events.terminal(&job.id, Duration::from_secs(3600)).await;
        let elapsed = started.elapsed();
        let all = events.of(&job.id).into_iter().cloned().collect();
        ensure!(
            matches!(done.kind, EventKind::Succeeded { .. }),
            "{} failed: {:?}",
            job.kind(),
            done.kind
        );
        Ok((done, all, elapsed))
    }

    async fn backups(&self, domain: &Domain) -> anyhow::Result<BackupsReply> {
        let request = BackupsRequest {
            domain: domain.clone(),
        };
        let subject =
            self.worker
                .names
                .ctl_for(&self.worker.node, BackupsRequest::VERB, request.domain());
        let reply = self
            .client
            .request(subject, serde_json::to_vec(&request)?.into())
            .await?;
        serde_json::from_slice::<Reply<BackupsReply>>(&reply.payload)?
            .into_result()
            .map_err(|e| anyhow!("{}", e.message))
    }
}

/// Runs `docker args…` (the peer), feeding `stdin` and writing stdout to
/// `stdout` files when given; answers how long it took.
async fn docker(
    args: &[&str],
    stdin: Option<&std::path::Path>,
    stdout: Option<&std::path::Path>,
) -> anyhow::Result<Duration> {
    let mut command = tokio::process::Command::new("docker");
    command.args(args);
    if let Some(path) = stdin {
        command.stdin(std::fs::File::open(path)?);
    }
    match stdout {
        Some(path) => command.stdout(std::fs::File::create(path)?),
        None => command.stdout(Stdio::null()),
    };
    let started = Instant::now();
    let status = command.status().await.context("run docker")?;
    ensure!(
        status.success(),
        "docker {} failed: {status}",
        args.join(" ")
    );
    Ok(started.elapsed())
}

/// Time between the first and the last event of `events` matching `name`
/// and `contains`.
fn span(
    events: &[Event],
    from: impl Fn(&EventKind) -> bool,
    to: impl Fn(&EventKind) -> bool,
) -> Option<Duration> {
    let start = events.iter().find(|e| from(&e.kind))?.at;
    let end = events.iter().find(|e| to(&e.kind))?.at;
    (end - start).to_std().ok()
}

fn step(name: &'static str, contains: &'static str) -> impl Fn(&EventKind) -> bool {
    move |kind| matches!(kind, EventKind::Step { name: n, message } if n == name && message.contains(contains))
}

async fn bench(mib: u64) -> anyhow::Result<()> {
    let nats = TestNats::new().await;
    let docker_env = TestDocker::new().await;
    let nginx = TestNginx::new().await;
    let worker = TestWorker::start(&nats, &docker_env, &nginx).await;
    let client = nats.client().await;
    let rig = Rig {
        js: jetstream::new(client.clone()),
        client,
        worker,
        _nginx: nginx,
        docker: docker_env,
        _nats: nats,
        dir: tempfile::Builder::new()
            .prefix("bench-volumes-")
            .tempdir()?,
    };
    println!(
        "bench-volumes: {} cores, load average {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let domain: Domain = rig.docker.unique_domain().parse()?;
    let tarball = rig.dir.path().join("db.tar");
    TarballBuilder::new()
        .image(fixtures::db())
        .write_to(&tarball)
        .context("write the image tarball")?;
    let images = upload_tarball(&rig.js, &rig.worker.names, &tarball).await;
    let deploy = JobSpec::Deploy(DeployPayload {
        source: DeploySource::Compose(ComposeSource {
            text: STACK.into(),
            file_name: None,
        }),
        images: vec![images],
        env: Default::default(),
        sealed_env: None,
        options: DeployOptions::default(),
    });
    rig.run(&domain, deploy).await.context("deploy the stack")?;
    let container = format!("{}-db-1", hostkit_tests::compose_project(domain.as_str()));
    let fill = format!("dd if=/dev/urandom of=/data/blob bs=1048576 count={mib} 2>/dev/null");
    let (code, output) = rig.docker.exec(&container, &["sh", "-c", &fill]).await;
    ensure!(code == 0, "filling the volume failed: {output}");

    // Backup: ours, then the peer's `docker cp` out.
    let (_, _, backup_wall) = rig
        .run(&domain, JobSpec::Backup(BackupPayload::default()))
        .await?;
    let listed = rig.backups(&domain).await?;
    let backup = listed
        .backups
        .first()
        .ok_or_else(|| anyhow!("no backup listed"))?;
    let size = backup.volumes[0].size as f64;
    let copy = rig.dir.path().join("volume.tar");
    let peer_out = docker(
        &["cp", &format!("{container}:/data/."), "-"],
        None,
        Some(&copy),
    )
    .await?;

    // Restore: ours (write phase from its events, and the whole job), then
    // the peer's `docker cp` in.
    let (_, events, restore_wall) = rig
        .run(
            &domain,
            JobSpec::Restore(RestorePayload { backup: backup.id }),
        )
        .await?;
    let write = span(
        &events,
        step("backup", "copied"),
        step("restore", "written"),
    )
    .ok_or_else(|| anyhow!("the restore's events lack its steps"))?;
    let peer_in = docker(
        &["cp", "-", &format!("{container}:/data")],
        Some(&copy),
        None,
    )
    .await?;

    let rate = |d: Duration| size / MIB / d.as_secs_f64();
    println!(
        "volume: {:.0} MiB of random data (tar {:.0} MiB)",
        mib,
        size / MIB
    );
    println!(
        "backup : hostkit {:>7.2} s {:>7.1} MiB/s | docker cp out {:>6.2} s {:>7.1} MiB/s | ratio (hostkit/peer time) {:.2}",
        backup_wall.as_secs_f64(),
        rate(backup_wall),
        peer_out.as_secs_f64(),
        rate(peer_out),
        backup_wall.as_secs_f64() / peer_out.as_secs_f64()
    );
    println!(
        "restore: write   {:>7.2} s {:>7.1} MiB/s | docker cp in  {:>6.2} s {:>7.1} MiB/s | ratio (hostkit/peer time) {:.2}",
        write.as_secs_f64(),
        rate(write),
        peer_in.as_secs_f64(),
        rate(peer_in),
        write.as_secs_f64() / peer_in.as_secs_f64()
    );
    println!(
        "restore: whole job {:.2} s (stop, copy aside, empty, write, start, health gate)",
        restore_wall.as_secs_f64()
    );
    Ok(())
}
