//! A fleet on a clustered NATS (DESIGN §3, §4): three nats-servers clustered
//! on loopback with every stream and bucket at three replicas, two
//! `hostkit-worker` processes as two nodes, the `hostkit` CLI as CI runs
//! it, one Docker Engine and nginx. Servers are killed (SIGKILL) while jobs
//! run and restarted; every job must end exactly once, each job's events
//! arrive in order and none twice, and the stacks serve. A worker that disappears shows as
//! offline, and its domain's job waits for it instead of running elsewhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use hostkit_proto::{Event, EventKind, JobId, Names, NodeId};
use hostkit_tests::worker::{WorkerProcess, cli_binary};
use hostkit_tests::{TarballBuilder, TestDocker, TestNatsCluster, TestNginx, fixtures, wait_for};

/// How long one `hostkit` command may take (a failover costs seconds).
const CLI_TIMEOUT: Duration = Duration::from_secs(180);

/// What a `hostkit` run printed.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn hostkit(urls: &str, args: &[String]) -> Run {
    use tokio::io::AsyncReadExt as _;
    let mut command = tokio::process::Command::new(cli_binary());
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NATS_URL", urls)
        .env("HOSTKIT_REQUESTED_BY", "cluster-e2e")
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = command.spawn().expect("run hostkit");
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let stdout = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = out.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).into_owned()
    });
    let stderr = tokio::spawn(async move {
        let mut text = Vec::new();
        let _ = err.read_to_end(&mut text).await;
        String::from_utf8_lossy(&text).into_owned()
    });
    let status = tokio::time::timeout(CLI_TIMEOUT, child.wait()).await;
    if status.is_err() {
        let _ = child.kill().await;
    }
    let (stdout, stderr) = (stdout.await.unwrap(), stderr.await.unwrap());
    let Ok(status) = status else {
        panic!(
            "`hostkit {}` ran longer than {CLI_TIMEOUT:?}\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
            args.join(" ")
        )
    };
    Run {
        code: status.expect("wait for hostkit").code().unwrap_or(-1),
        stdout,
        stderr,
    }
}

fn web_compose(image: &str) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    ports: [\"8080\"]\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\n"
    )
}

/// `hostkit deploy` of `version` of the web fixture to `domain` on `node`;
/// answers the run (its job id is on the events stream).
async fn deploy(urls: &str, dir: &Path, domain: &str, node: &NodeId, version: &str) -> Run {
    let compose = dir.join(format!("{domain}-{version}.yml"));
    std::fs::write(
        &compose,
        web_compose(&format!("hostkit-test/web:{version}")),
    )
    .unwrap();
    let images = dir.join(format!("web-{version}.tar"));
    let args: Vec<String> = [
        "deploy",
        domain,
        compose.to_str().unwrap(),
        "--images",
        images.to_str().unwrap(),
        "--node",
        node.as_str(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    hostkit(urls, &args).await
}

/// Every event of the events stream, in stream order (read message by
/// message, retrying while the cluster fails over).
async fn all_events(js: &jetstream::Context, names: &Names) -> Vec<Event> {
    wait_for(
        Duration::from_secs(60),
        "the events stream to be readable",
        async || -> anyhow::Result<Vec<Event>> {
            let mut stream = js.get_stream(names.events_stream()).await?;
            let state = stream.info().await?.state.clone();
            let mut events = Vec::new();
            if state.messages == 0 {
                return Ok(events);
            }
            for seq in state.first_sequence..=state.last_sequence {
                match stream.get_raw_message(seq).await {
                    Ok(message) => {
                        // Node-level events (heartbeats) are events too.
                        if let Ok(event) = serde_json::from_slice::<Event>(&message.payload) {
                            events.push(event);
                        }
                    }
                    Err(e) if e.to_string().contains("no message found") => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(events)
        },
    )
    .await
}

/// The terminal events of each job.
fn terminals(events: &[Event]) -> BTreeMap<JobId, Vec<&Event>> {
    let mut by_job: BTreeMap<JobId, Vec<&Event>> = BTreeMap::new();
    for event in events.iter().filter(|e| e.is_terminal()) {
        if let Some(job) = &event.job_id {
            by_job.entry(*job).or_default().push(event);
        }
    }
    by_job
}

/// The name of the server leading `stream`.
async fn leader(js: &jetstream::Context, stream: &str) -> String {
    wait_for(
        Duration::from_secs(30),
        "the stream to have a leader",
        async || -> anyhow::Result<String> {
            let mut stream = js.get_stream(stream).await?;
            let info = stream.info().await?;
            info.cluster
                .as_ref()
                .and_then(|c| c.leader.clone())
                .ok_or_else(|| anyhow::anyhow!("no leader yet"))
        },
    )
    .await
}

/// The index of server `name` (`n1` → 0).
fn index_of(name: &str) -> usize {
    name.trim_start_matches('n')
        .parse::<usize>()
        .expect("server name nN")
        - 1
}

/// Waits until a `started` event of the `count` newest deploys is on the
/// stream: the jobs are then running on the workers.
async fn wait_started(js: &jetstream::Context, names: &Names, before: usize, count: usize) {
    wait_for(
        Duration::from_secs(90),
        "the round's jobs to start",
        async || -> anyhow::Result<()> {
            let events = all_events(js, names).await;
            let started: BTreeSet<&JobId> = events[before.min(events.len())..]
                .iter()
                .filter(|e| matches!(e.kind, EventKind::Started { .. }))
                .filter_map(|e| e.job_id.as_ref())
                .collect();
            if started.len() >= count {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{} of {count} started", started.len()))
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_clustered_nats_loses_no_job_when_servers_die_and_a_lost_worker_keeps_its_domains() {
    let mut cluster = TestNatsCluster::start(3).await;
    let urls = cluster.urls();
    let docker = TestDocker::new().await;
    let nginx = TestNginx::new().await;
    let dir = tempfile::tempdir().unwrap();
    for version in ["v1", "v2"] {
        TarballBuilder::new()
            .image(fixtures::web(version))
            .write_to(dir.path().join(format!("web-{version}.tar")))
            .expect("write the tarball");
    }
    let names = Names::default();
    let replicated = "[streams]\nreplicas = 3\nimages_max_bytes = \"1g\"\n";
    let id = &docker.id()[..8];
    let node_a: NodeId = format!("ca-{id}").parse().unwrap();
    let node_b: NodeId = format!("cb-{id}").parse().unwrap();
    let mut a =
        WorkerProcess::start_node(&cluster.url_list(), node_a.clone(), &nginx, replicated).await;
    let mut b =
        WorkerProcess::start_node(&cluster.url_list(), node_b.clone(), &nginx, replicated).await;
    let client = cluster.client().await;
    let js = jetstream::new(client.clone());

    // Every stream and bucket the workers made is kept on three servers.
    for stream in [
        names.jobs_stream(),
        names.events_stream(),
        format!("OBJ_{}", names.images_bucket()),
        format!("KV_{}", names.placement_bucket()),
        format!("KV_{}", names.nodes_bucket()),
    ] {
        let info = js
            .get_stream(&stream)
            .await
            .unwrap_or_else(|e| panic!("{stream}: {e}"))
            .info()
            .await
            .unwrap()
            .clone();
        assert_eq!(info.config.num_replicas, 3, "{stream}");
        let peers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
        assert_eq!(peers, 2, "{stream}: {:?}", info.cluster);
    }

    // Two domains on each node.
    let domains: Vec<(String, NodeId)> = (0..4)
        .map(|i| {
            let node = if i % 2 == 0 { &node_a } else { &node_b };
            (docker.unique_domain(), node.clone())
        })
        .collect();
    let mut deploys = 0;

    // Round 1: v1 everywhere; the jobs stream's leader dies mid-round.
    // Round 2: v2 everywhere; the events stream's leader dies mid-round.
    for (version, stream) in [("v1", names.jobs_stream()), ("v2", names.events_stream())] {
        let before = all_events(&js, &names).await.len();
        let runs: Vec<_> = domains
            .iter()
            .map(|(domain, node)| {
                let (urls, dir, domain, node) = (
                    urls.clone(),
                    dir.path().to_owned(),
                    domain.clone(),
                    node.clone(),
                );
                tokio::spawn(async move { deploy(&urls, &dir, &domain, &node, version).await })
            })
            .collect();
        wait_started(&js, &names, before, domains.len()).await;
        let victim = index_of(&leader(&js, &stream).await);
        cluster.kill(victim);
        for ((domain, _), run) in domains.iter().zip(runs) {
            let run = run.await.expect("the CLI task");
            assert_eq!(
                run.code,
                0,
                "{version} to {domain} with server {} killed:\n{}\n{}\n{}",
                victim + 1,
                run.stdout,
                run.stderr,
                cluster.log_tails()
            );
            assert!(
                run.stdout.contains(&format!("succeeded: {version}")),
                "{}",
                run.stdout
            );
            deploys += 1;
        }
        for (domain, _) in &domains {
            let (status, body) = nginx.get(domain, "/").await.expect("GET through nginx");
            assert_eq!(
                (status, body.as_str()),
                (200, format!("web {version}\n").as_str()),
                "{domain}"
            );
        }
        cluster.restart(victim).await;
    }

    // A worker that disappears: node B is killed, shows offline, and a job
    // for its domain waits (the CLI says no worker listens, exit 4); node A
    // never runs it. When B is back, it runs the job once.
    b.kill();
    wait_for(
        Duration::from_secs(60),
        "node B to show offline",
        async || -> anyhow::Result<()> {
            let run = hostkit(&urls, &["nodes".to_string()]).await;
            let line = run
                .stdout
                .lines()
                .find(|l| l.starts_with(node_b.as_str()))
                .unwrap_or_default()
                .to_owned();
            if line.contains("offline") {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{}", run.stdout))
            }
        },
    )
    .await;
    let (b_domain, _) = &domains[1];
    let waiting = hostkit(
        &urls,
        &[
            "restart".to_string(),
            b_domain.clone(),
            "--node".into(),
            node_b.to_string(),
        ],
    )
    .await;
    assert_eq!(waiting.code, 4, "{}\n{}", waiting.stdout, waiting.stderr);
    assert!(
        waiting.stderr.contains(&format!(
            "[node.offline] no worker is listening for node {node_b}"
        )),
        "{}",
        waiting.stderr
    );
    let queued = all_events(&js, &names)
        .await
        .into_iter()
        .filter(|e| e.domain.as_ref().map(|d| d.as_str()) == Some(b_domain.as_str()))
        .filter(|e| matches!(e.kind, EventKind::Started { .. }))
        .count();
    assert_eq!(queued, 2, "only the two deploys started for {b_domain}");
    b.spawn().await;
    wait_for(
        Duration::from_secs(90),
        "node B to run the queued restart",
        async || -> anyhow::Result<()> {
            let events = all_events(&js, &names).await;
            let restarts: Vec<&Event> = events
                .iter()
                .filter(|e| e.domain.as_ref().map(|d| d.as_str()) == Some(b_domain.as_str()))
                .filter(|e| e.is_terminal())
                .collect();
            if restarts.len() == 3 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{} terminal events", restarts.len()))
            }
        },
    )
    .await;
    deploys += 1;

    // Every job ended exactly once, on its own node, and each node's events
    // arrived in order, none twice.
    let events = all_events(&js, &names).await;
    let ended = terminals(&events);
    assert_eq!(ended.len(), deploys, "{ended:#?}");
    for (job, ends) in &ended {
        assert_eq!(
            ends.len(),
            1,
            "job {job} ended {} times: {ends:#?}",
            ends.len()
        );
        assert!(
            matches!(ends[0].kind, EventKind::Succeeded { .. }),
            "{job}: {:?}",
            ends[0].kind
        );
        let domain = ends[0]
            .domain
            .as_ref()
            .expect("a job event names its domain");
        let (_, home) = domains
            .iter()
            .find(|(d, _)| d == domain.as_str())
            .expect("a test domain");
        assert_eq!(&ends[0].node, home, "{job} ran on another node");
    }
    // Each job's events arrive in the order its worker numbered them, and
    // no event of a node is stored twice. (Events of two jobs running at
    // once on one node interleave in the stream as their tasks queue them.)
    let mut last: BTreeMap<&JobId, u64> = BTreeMap::new();
    let mut seen: BTreeSet<(&NodeId, u64)> = BTreeSet::new();
    for event in &events {
        assert!(
            seen.insert((&event.node, event.seq)),
            "node {}: event {} stored twice",
            event.node,
            event.seq
        );
        let Some(job) = &event.job_id else { continue };
        if let Some(previous) = last.insert(job, event.seq) {
            assert!(
                event.seq > previous,
                "job {job}: event {} ({}) after {previous}",
                event.seq,
                event.kind.kind_str()
            );
        }
    }
    // Nothing is left in the jobs stream (work queue: acked jobs go), and
    // no consumer holds a job unacked.
    wait_for(
        Duration::from_secs(30),
        "the jobs stream to be empty and every job acked",
        async || -> anyhow::Result<()> {
            let mut jobs = js.get_stream(names.jobs_stream()).await?;
            let left = jobs.info().await?.state.messages;
            let mut unacked = 0;
            for node in [&node_a, &node_b] {
                let mut consumer: jetstream::consumer::PullConsumer = jobs
                    .get_consumer(&names.jobs_consumer(node))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let info = consumer.info().await?;
                unacked += info.num_ack_pending + info.num_pending as usize;
            }
            if left == 0 && unacked == 0 {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{left} jobs left, {unacked} unacked"))
            }
        },
    )
    .await;
    for (domain, _) in &domains {
        let (status, body) = nginx.get(domain, "/").await.expect("GET through nginx");
        assert_eq!((status, body.as_str()), (200, "web v2\n"), "{domain}");
    }
    a.terminate();
    b.terminate();
}
