//! End-to-end tests of the real `hostkit` binary against a real
//! nats-server, a real worker runtime (in this process), the Docker Engine
//! and nginx: every command's output and exit code, the seed's forms,
//! `--json`, uploads that skip what is there, validation before publishing,
//! missing workers and NATS, `follow`, `logs -f`, `watch`, the GitHub job
//! summary and auto-rollback.
//!
//! Each test owns one environment (its own nats-server, nginx, worker and
//! unique domains, cleaned up on drop) and runs its commands in sequence;
//! the tests run in parallel. `HOSTKIT_CLI_TEST_SHOW=1` prints every
//! command with its output (run with `--no-capture`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use async_nats::jetstream;
use futures_util::StreamExt;
use hostkit_proto::{Event, EventKind};
use hostkit_tests::{
    ImageSpec, TarballBuilder, TestDocker, TestNats, TestNginx, TestWorker, fixtures,
};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Longest any one command may take before the test fails.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// Environment variables the CLI reads, removed from every child so that
/// the machine's settings cannot leak into a test.
const CLI_ENV: &[&str] = &[
    "NATS_URL",
    "NATS_CREDS",
    "NATS_USER",
    "NATS_PASSWORD",
    "NATS_TOKEN",
    "NATS_CA",
    "NATS_INBOX_PREFIX",
    "HOSTKIT_IMAGE_BUCKET",
    "HOSTKIT_SIGNING_KEY",
    "HOSTKIT_SUBJECT_ROOT",
    "HOSTKIT_REQUESTED_BY",
    "GITHUB_STEP_SUMMARY",
    "GITHUB_REPOSITORY",
    "GITHUB_RUN_ID",
    "GITHUB_ACTOR",
];

/// A single web service on 8080 running `image`, with a quick healthcheck.
fn web_compose(image: &str) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    ports: [\"8080\"]\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\n"
    )
}

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    args: Vec<String>,
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Asserts the exit code, showing everything the command printed.
    #[track_caller]
    fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            code,
            "`hostkit {}` exited {} (expected {code})\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stdout contains `needle`.
    #[track_caller]
    fn stdout_has(&self, needle: &str) -> &Self {
        assert!(
            self.stdout.contains(needle),
            "stdout of `hostkit {}` lacks {needle:?}:\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts that stderr contains `needle`.
    #[track_caller]
    fn stderr_has(&self, needle: &str) -> &Self {
        assert!(
            self.stderr.contains(needle),
            "stderr of `hostkit {}` lacks {needle:?}:\n{}\n--- stdout\n{}",
            self.args.join(" "),
            self.stderr,
            self.stdout
        );
        self
    }

    /// The stdout lines parsed as events (`--json`).
    #[track_caller]
    fn events(&self) -> Vec<Event> {
        self.stdout
            .lines()
            .map(|line| {
                Event::from_slice(line.as_bytes()).unwrap_or_else(|e| {
                    panic!("not an event ({e}): {line:?}\n--- stderr\n{}", self.stderr)
                })
            })
            .collect()
    }
}

/// A `hostkit` command line against `url` with a clean environment.
fn command(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hostkit"));
    for name in CLI_ENV {
        command.env_remove(name);
    }
    command
        .env("NATS_URL", url)
        .env("HOSTKIT_REQUESTED_BY", "cli-e2e")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Runs `command` to its end (bounded).
async fn run(mut command: Command, args: &[&str]) -> Run {
    let child = command.spawn().expect("start the hostkit binary");

    let output = tokio::time::timeout(COMMAND_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "`hostkit {}` ran longer than {COMMAND_TIMEOUT:?}",
                args.join(" ")
            )
        })
        .expect("wait for hostkit");
    if std::env::var_os("HOSTKIT_CLI_TEST_SHOW").is_some() {
        eprintln!(
            "$ hostkit {}\n{}{}[exit {:?}]\n",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            output.status.code()
        );
    }
    Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// nats-server, Docker, nginx and a worker for one test.
struct Env {
    nats: TestNats,
    docker: TestDocker,
    nginx: TestNginx,
    worker: TestWorker,
    dir: tempfile::TempDir,
}

impl Env {
    async fn new() -> Env {
        Self::with_settings(|_| {}).await
    }

    /// An environment whose worker runs with settings `adjust` changes.
    async fn with_settings(adjust: impl FnOnce(&mut hostkit_worker::runtime::Settings)) -> Env {
        let nats = TestNats::new().await;
        let docker = TestDocker::new().await;
        let nginx = TestNginx::new().await;
        let worker = TestWorker::start_with(&nats, &docker, &nginx, adjust).await;
        Env {
            nats,
            docker,
            nginx,
            worker,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh domain, cleaned up with the test.
    fn domain(&self) -> String {
        self.docker.unique_domain()
    }

    /// The worker's node id.
    fn node(&self) -> String {
        self.worker.node.to_string()
    }

    /// Runs `hostkit args…` against this environment's NATS.
    async fn hostkit(&self, args: &[&str]) -> Run {
        run(command(&self.nats.url(), args), args).await
    }

    /// Runs it with extra environment variables.
    async fn hostkit_with(&self, args: &[&str], vars: &[(&str, &Path)]) -> Run {
        let mut command = command(&self.nats.url(), args);
        for (name, value) in vars {
            command.env(name, value);
        }
        run(command, args).await
    }

    /// Starts `hostkit args…` without waiting (for `-f` and `watch`).
    fn spawn(&self, args: &[&str]) -> tokio::process::Child {
        command(&self.nats.url(), args)
            .spawn()
            .expect("start the hostkit binary")
    }

    /// A `docker save` tarball of `images` in the test's directory.
    fn tarball(&self, name: &str, images: Vec<ImageSpec>) -> PathBuf {
        let path = self.dir.path().join(name);
        images
            .into_iter()
            .fold(TarballBuilder::new(), TarballBuilder::image)
            .write_to(&path)
            .expect("write the tarball");
        path
    }

    /// A file in the test's directory.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(&path, text).expect("write the file");
        path
    }

    /// `GET /` through nginx for `domain`.
    async fn get(&self, domain: &str) -> (u16, String) {
        self.nginx
            .get(domain, "/")
            .await
            .expect("request through nginx")
    }

    async fn js(&self) -> jetstream::Context {
        jetstream::new(self.nats.client().await)
    }

    /// How many objects the image store holds.
    async fn objects(&self) -> usize {
        let store = self
            .js()
            .await
            .get_object_store(self.worker.names.images_bucket())
            .await
            .expect("the image store");
        let mut list = store.list().await.expect("list objects");
        let mut n = 0;
        while let Some(item) = list.next().await {
            item.expect("an object");
            n += 1;
        }
        n
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// The job id in a "follow it with `hostkit follow <id>`" message.
fn follow_hint(text: &str) -> String {
    let start = text
        .find("hostkit follow ")
        .unwrap_or_else(|| panic!("no follow hint in {text}"))
        + "hostkit follow ".len();
    text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

fn assert_no_control_characters(text: &str) {
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in non-terminal output:\n{text:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deploy_a_compose_file_redeploy_uploads_nothing_follow_replays_and_queries_answer() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file(
        "site/docker-compose.yml",
        &web_compose("hostkit-test/web:v1"),
    );
    let images = env.tarball("web-v1.tar", vec![fixtures::web("v1")]);
    let summary = env.dir.path().join("summary.md");

    // First deploy: human output, with the GitHub summary.
    let first = env
        .hostkit_with(
            &[
                "deploy",
                &domain,
                path_str(&compose),
                "--images",
                path_str(&images),
                "--node",
                &node,
            ],
            &[("GITHUB_STEP_SUMMARY", &summary)],
        )
        .await;
    first
        .expect(0)
        .stdout_has("docker-compose.yml: checked (1 service(s))")
        .stdout_has("web-v1.tar: 0 blob(s) already in the bucket (0 B skipped), 3 sent")
        .stdout_has("published deploy job")
        .stdout_has(&format!("to node {node}"))
        .stdout_has("▸ check:")
        .stdout_has("web#1 healthy")
        .stdout_has(&format!("✓ succeeded: v1 on {node}"));
    // The blobs: its config, the base layer and the web layer.
    let split = hostkit_deploy::images::split::split(&images)
        .unwrap()
        .expect("a docker save tarball");
    first.stdout_has(&format!("sent ({} bytes)", split.total_bytes()));
    assert_no_control_characters(&first.stdout);
    assert_eq!(env.get(&domain).await, (200, "web v1\n".to_owned()));
    let md = std::fs::read_to_string(&summary).expect("the job summary was written");
    for needle in [
        format!("HostKit deploy: {domain}"),
        "| Outcome | succeeded |".to_owned(),
        format!("| Node | {node} |"),
        "| Version | v1 |".to_owned(),
        "| Uploaded | ".to_owned(),
        "| web | `hostkit-test/web:v1` | 1 | 1: running (healthy) |".to_owned(),
    ] {
        assert!(
            md.contains(&needle),
            "{needle} missing from the summary:\n{md}"
        );
    }
    assert_eq!(env.objects().await, 3);

    // Second deploy of the same images: placement finds the node, nothing is
    // uploaded, and --json prints the events, the terminal one last.
    let second = env
        .hostkit(&[
            "--json",
            "deploy",
            &domain,
            path_str(&compose),
            "--images",
            path_str(&images),
        ])
        .await;
    second
        .expect(0)
        .stderr_has("3 blob(s) already in the bucket")
        .stderr_has("0 B sent (0 bytes)");
    let events = second.events();
    let last = events.last().expect("events");
    assert!(
        matches!(
            last.kind,
            EventKind::Succeeded {
                version: Some(2),
                ..
            }
        ),
        "{last:?}"
    );
    assert!(events[..events.len() - 1].iter().all(|e| !e.is_terminal()));
    assert!(
        matches!(events[0].kind, EventKind::Started { .. }),
        "{:?}",
        events[0]
    );
    let job = last.job_id.expect("a job id").to_string();
    assert!(
        events
            .iter()
            .all(|e| e.job_id.map(|j| j.to_string()) == Some(job.clone()))
    );
    assert_eq!(env.objects().await, 3);

    // follow replays the finished job from its start.
    let replay = env.hostkit(&["--json", "follow", &job]).await;
    replay.expect(0);
    assert_eq!(replay.events(), events);
    env.hostkit(&["follow", &job])
        .await
        .expect(0)
        .stdout_has(&format!("started deploy on {node}"))
        .stdout_has("✓ succeeded: v2");

    // Queries.
    env.hostkit(&["versions", &domain])
        .await
        .expect(0)
        .stdout_has("*v2")
        .stdout_has(" v1")
        .stdout_has("deployed");
    env.hostkit(&["status", &domain])
        .await
        .expect(0)
        .stdout_has(&format!("{domain} on node {node}: v2, healthy"))
        .stdout_has("last job: deploy succeeded");
    env.hostkit(&["status"])
        .await
        .expect(0)
        .stdout_has(&format!("{node}  online"))
        .stdout_has(&domain)
        .stdout_has("healthy");
    env.hostkit(&["nodes"])
        .await
        .expect(0)
        .stdout_has(&node)
        .stdout_has("online");
    let nodes = env.hostkit(&["--json", "nodes"]).await;
    nodes.expect(0);
    let list: serde_json::Value = serde_json::from_str(&nodes.stdout).expect("JSON");
    assert_eq!(list[0]["node"]["node"], node.as_str());
    assert_eq!(list[0]["alive"], true);
    env.hostkit(&["compose", "services", &domain])
        .await
        .expect(0)
        .stdout_has("SERVICE")
        .stdout_has("web")
        .stdout_has("running")
        .stdout_has("healthy")
        .stdout_has("hostkit-test/web:v1");
}

/// Another identity stored other bytes under the name of this tarball
/// (same size): the CLI does not trust name and size, it uploads its own
/// bytes again and the deploy succeeds with them (whole tarballs, as for a
/// worker before layered images; blobs go through the same check).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_object_stored_under_the_tarballs_name_by_someone_else_is_replaced() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file(
        "site/docker-compose.yml",
        &web_compose("hostkit-test/web:v1"),
    );
    let images = env.tarball("web-v1.tar", vec![fixtures::web("v1")]);
    let bytes = std::fs::read(&images).expect("tarball");
    let name = {
        use sha2::Digest;
        format!("sha256-{}", hex::encode(sha2::Sha256::digest(&bytes)))
    };
    let mut other = bytes.clone();
    let last = other.len() - 1;
    other[last] ^= 0xff;
    let store = env
        .js()
        .await
        .get_object_store(env.worker.names.images_bucket())
        .await
        .expect("the image store");
    store
        .put(name.as_str(), &mut other.as_slice())
        .await
        .expect("someone else's object under the name");

    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
        "--whole-tarballs",
        "--node",
        &node,
    ])
    .await
    .expect(0)
    .stdout_has("uploading web-v1.tar")
    .stdout_has("✓ succeeded: v1");
    assert_eq!(env.get(&domain).await, (200, "web v1\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operator_commands_and_their_exit_codes() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let images = env.tarball("web.tar", vec![fixtures::web("v1"), fixtures::web("v2")]);
    for version in ["v1", "v2"] {
        let compose = env.file(
            &format!("{version}/docker-compose.yml"),
            &web_compose(&format!("hostkit-test/web:{version}")),
        );
        env.hostkit(&[
            "deploy",
            &domain,
            path_str(&compose),
            "--images",
            path_str(&images),
            "--node",
            &node,
        ])
        .await
        .expect(0);
    }
    assert_eq!(env.get(&domain).await.1, "web v2\n");

    env.hostkit(&["scale", &domain, "web", "2"])
        .await
        .expect(0)
        .stdout_has("started scale")
        .stdout_has("web#2");
    let services = env
        .hostkit(&["--json", "compose", "services", &domain])
        .await;
    services.expect(0);
    let reply: serde_json::Value = serde_json::from_str(&services.stdout).expect("JSON");
    assert_eq!(
        reply["services"][0]["replicas"].as_array().map(Vec::len),
        Some(2)
    );
    env.hostkit(&["compose", "scale", &domain, "web", "1"])
        .await
        .expect(0);
    env.hostkit(&["restart", &domain])
        .await
        .expect(0)
        .stdout_has("started restart");
    env.hostkit(&["compose", "restart", &domain, "web"])
        .await
        .expect(0);
    env.hostkit(&["stop", &domain])
        .await
        .expect(0)
        .stdout_has("started stop");
    env.hostkit(&["status", &domain])
        .await
        .expect(0)
        .stdout_has("stopped");
    env.hostkit(&["start", &domain])
        .await
        .expect(0)
        .stdout_has("started start");
    env.hostkit(&["rollback", &domain, "--to", "v1"])
        .await
        .expect(0)
        .stdout_has("✓ succeeded: v1");
    assert_eq!(env.get(&domain).await.1, "web v1\n");

    // The worker refuses: exit 1 with its code, message and hint.
    env.hostkit(&["rollback", &domain, "--to", "v9"])
        .await
        .expect(1)
        .stdout_has("✗ failed (version.not_found)");
    env.hostkit(&["compose", "logs", &domain, "nope"])
        .await
        .expect(1)
        .stderr_has("service.not_found");

    // remove asks; without a terminal and without --yes it refuses (exit 2).
    env.hostkit(&["remove", &domain])
        .await
        .expect(2)
        .stderr_has("pass --yes");
    env.hostkit(&["remove", &domain, "--yes"])
        .await
        .expect(0)
        .stdout_has("started remove")
        .stdout_has("✓ succeeded");
    // The placement is gone with the stack: the CLI asks for --node.
    env.hostkit(&["status", &domain])
        .await
        .expect(2)
        .stderr_has("pass --node")
        .stderr_has(&format!("known nodes: {node} (online)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_seed_forms_single_image_tarball_and_compose_bundle() {
    let env = Env::new().await;
    let node = env.node();

    // `hostkit deploy <domain> <image.tar>`: the tarball's only image, its
    // only exposed port.
    let single = env.domain();
    let image = env.tarball("site.tar", vec![fixtures::web("v1")]);
    env.hostkit(&["deploy", &single, path_str(&image), "--node", &node])
        .await
        .expect(0)
        .stdout_has("site.tar: hostkit-test/web:v1, container port 8080")
        .stdout_has("✓ succeeded: v1");
    assert_eq!(env.get(&single).await, (200, "web v1\n".to_owned()));
    env.hostkit(&["compose", "services", &single])
        .await
        .expect(0)
        .stdout_has("hostkit-test/web:v1");

    // `hostkit deploy <domain> <bundle.tar> --compose`: docker-compose.yml
    // and the image tarballs in one tar (the same image: nothing to upload).
    let bundled = env.domain();
    let bundle = env.dir.path().join("bundle.tar");
    {
        let mut builder = tar::Builder::new(std::fs::File::create(&bundle).unwrap());
        let compose = web_compose("hostkit-test/web:v1");
        let mut header = tar::Header::new_ustar();
        header.set_size(compose.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(
                &mut header,
                "release/docker-compose.yml",
                compose.as_bytes(),
            )
            .unwrap();
        builder
            .append_path_with_name(&image, "release/images/site.tar")
            .unwrap();
        builder.finish().unwrap();
    }
    env.hostkit(&[
        "deploy",
        &bundled,
        path_str(&bundle),
        "--compose",
        "--node",
        &node,
    ])
    .await
    .expect(0)
    .stdout_has("1 image tarball(s)")
    .stdout_has("0 B sent (0 bytes)")
    .stdout_has("✓ succeeded: v1");
    assert_eq!(env.get(&bundled).await, (200, "web v1\n".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_rejected_before_anything_is_published() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let images = env.tarball("web.tar", vec![fixtures::web("v1")]);
    let client = env.nats.client().await;
    let mut jobs = client
        .subscribe(env.worker.names.jobs_all())
        .await
        .expect("watch the job subjects");
    client.flush().await.unwrap();

    // A typo in a key: exit 2, naming the key and its line, in milliseconds.
    let typo = env.file(
        "typo/docker-compose.yml",
        "services:\n  web:\n    image: hostkit-test/web:v1\n    prots: [\"8080\"]\n",
    );
    let started = std::time::Instant::now();
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&typo),
        "--images",
        path_str(&images),
        "--node",
        &node,
    ])
    .await
    .expect(2)
    .stderr_has("services.web.prots")
    .stderr_has("line 4");
    assert!(started.elapsed() < Duration::from_secs(10));

    // A policy denial: exit 2.
    let privileged = env.file(
        "privileged/docker-compose.yml",
        "services:\n  web:\n    image: hostkit-test/web:v1\n    privileged: true\n",
    );
    env.hostkit(&["deploy", &domain, path_str(&privileged), "--node", &node])
        .await
        .expect(2)
        .stderr_has("privileged");

    // Files that are not there or not `docker save` tarballs; bad --env.
    let good = env.file(
        "good/docker-compose.yml",
        &web_compose("hostkit-test/web:v1"),
    );
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&good),
        "--images",
        "/nonexistent.tar",
    ])
    .await
    .expect(2)
    .stderr_has("/nonexistent.tar: no such file");
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&good),
        "--images",
        path_str(&good),
    ])
    .await
    .expect(2)
    .stderr_has("is it a `docker save` tarball?");
    env.hostkit(&["deploy", &domain, path_str(&good), "--env", "1BAD=x"])
        .await
        .expect(2)
        .stderr_has("not a variable name");
    // Bad usage (clap): exit 2.
    env.hostkit(&["deploy", &domain]).await.expect(2);
    env.hostkit(&["deploy", "not a domain", path_str(&good)])
        .await
        .expect(2);
    env.hostkit(&["rollback", &domain, "--to", "latest"])
        .await
        .expect(2);

    // A domain no node hosts, without --node: the known nodes are listed.
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&good),
        "--images",
        path_str(&images),
    ])
    .await
    .expect(2)
    .stderr_has(&format!("no node hosts {domain} yet"))
    .stderr_has("pass --node")
    .stderr_has(&format!("known nodes: {node} (online)"));

    // Nothing reached NATS: no object, no job.
    assert_eq!(env.objects().await, 0);
    let published = tokio::time::timeout(Duration::from_millis(300), jobs.next()).await;
    assert!(published.is_err(), "a job was published: {published:?}");

    // `--help` documents the exit codes.
    env.hostkit(&["--help"])
        .await
        .expect(0)
        .stdout_has("3  failed, and the previous version was restored")
        .stdout_has("4  timed out, NATS unreachable, or no worker answering");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_worker_no_nats_and_timeouts_exit_4() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file("docker-compose.yml", &web_compose("hostkit-test/web:v1"));
    let images = env.tarball("web.tar", vec![fixtures::web("v1")]);

    // A node without a worker: the job is published, nothing answers, the
    // node has no heartbeat.
    let started = std::time::Instant::now();
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
        "--node",
        "vps-1",
    ])
    .await
    .expect(4)
    .stderr_has(
        "error: [node.offline] no worker is listening for node vps-1: is hostkit-worker running?",
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // NATS nobody set up: said so, before anything is sent.
    let bare = TestNats::new().await;
    let args = ["stop", "example.com", "--node", "vps-1"];
    run(command(&bare.url(), &args), &args)
        .await
        .expect(4)
        .stderr_has("no worker has set up this NATS yet");

    // NATS unreachable: a plain sentence, no debug dump.
    let url = format!("nats://127.0.0.1:{}", hostkit_tests::free_port());
    let args = ["status"];
    let unreachable = run(command(&url, &args), &args).await;
    unreachable.expect(4);
    assert_eq!(
        unreachable.stderr.trim(),
        format!("error: cannot reach NATS at {url}: connection refused")
    );

    // --timeout bounds the wait; the job goes on, and follow sees its end.
    let timed_out = env
        .hostkit(&[
            "deploy",
            &domain,
            path_str(&compose),
            "--images",
            path_str(&images),
            "--node",
            &node,
            "--timeout",
            "1s",
        ])
        .await;
    timed_out.expect(4).stderr_has("timed out after");
    let job = follow_hint(&timed_out.stderr);
    env.hostkit(&["follow", &job])
        .await
        .expect(0)
        .stdout_has("✓ succeeded: v1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_deploy_exits_3_when_rolled_back_and_1_when_not() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let images = env.tarball(
        "web.tar",
        vec![fixtures::web("v1"), fixtures::web_unhealthy("v3")],
    );
    let good = env.file(
        "good/docker-compose.yml",
        &web_compose("hostkit-test/web:v1"),
    );
    let bad = env.file(
        "bad/docker-compose.yml",
        &web_compose("hostkit-test/web-unhealthy:v3"),
    );
    let deploy = |compose: &Path, extra: &[&str]| {
        let mut args = vec![
            "deploy".to_owned(),
            domain.clone(),
            path_str(compose).to_owned(),
            "--images".to_owned(),
            path_str(&images).to_owned(),
            "--node".to_owned(),
            node.clone(),
            "--health-timeout".to_owned(),
            "20s".to_owned(),
        ];
        args.extend(extra.iter().map(|a| a.to_string()));
        args
    };
    let args = deploy(&good, &[]);
    env.hostkit(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await
        .expect(0);

    let summary = env.dir.path().join("summary.md");
    let args = deploy(&bad, &[]);
    env.hostkit_with(
        &args.iter().map(String::as_str).collect::<Vec<_>>(),
        &[("GITHUB_STEP_SUMMARY", &summary)],
    )
    .await
    .expect(3)
    .stdout_has("✗ failed (health.")
    .stdout_has("rolled back to v1");
    assert_eq!(env.get(&domain).await.1, "web v1\n");
    let md = std::fs::read_to_string(&summary).expect("the summary");
    assert!(md.contains("rolled back to v1"), "{md}");
    assert!(md.contains("| web | `hostkit-test/web:v1` |"), "{md}");

    let args = deploy(&bad, &["--no-rollback"]);
    let kept = env
        .hostkit(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    kept.expect(1).stdout_has("✗ failed (health.");
    assert!(!kept.stdout.contains("rolled back"), "{}", kept.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn logs_follow_and_watch_stream_until_killed() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file("docker-compose.yml", &web_compose("hostkit-test/web:v1"));
    let images = env.tarball("web.tar", vec![fixtures::web("v1")]);
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
        "--node",
        &node,
    ])
    .await
    .expect(0);

    env.hostkit(&["compose", "logs", &domain, "web", "--tail", "50"])
        .await
        .expect(0)
        .stdout_has("serving /www on port 8080");

    // -f streams: the healthcheck's requests keep producing lines.
    let mut follow = env.spawn(&["compose", "logs", &domain, "web", "-f", "--tail", "1"]);
    let mut lines = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), async {
        while seen.len() < 3 {
            match lines.next_line().await.expect("read a log line") {
                Some(line) => seen.push(line),
                None => panic!("logs -f ended after {seen:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("logs -f streamed only {seen:?} in 20s"));
    assert!(
        follow.try_wait().expect("poll").is_none(),
        "logs -f must keep running"
    );
    follow.kill().await.expect("kill logs -f");

    // watch prints the events of jobs as they happen (NDJSON with --json).
    let mut watch = env.spawn(&["--json", "watch", &domain]);
    let mut ready = BufReader::new(watch.stderr.take().expect("stderr")).lines();
    let banner = tokio::time::timeout(Duration::from_secs(10), ready.next_line())
        .await
        .expect("watch starts")
        .expect("read stderr");
    assert!(banner.is_some_and(|b| b.starts_with("watching")));
    let restart = env.hostkit(&["--json", "restart", &domain]).await;
    restart.expect(0);
    let job = restart
        .events()
        .last()
        .and_then(|e| e.job_id)
        .expect("job id");
    let mut watched = BufReader::new(watch.stdout.take().expect("stdout")).lines();
    let terminal = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let line = watched
                .next_line()
                .await
                .expect("read watch output")
                .expect("watch ended");
            let event = Event::from_slice(line.as_bytes()).expect("an event per line");
            assert_eq!(
                event.domain.as_ref().map(ToString::to_string),
                Some(domain.clone())
            );
            if event.job_id == Some(job) && event.is_terminal() {
                return event;
            }
        }
    })
    .await
    .expect("watch shows the restart's terminal event");
    assert!(matches!(terminal.kind, EventKind::Succeeded { .. }));
    watch.kill().await.expect("kill watch");
}

/// Peak resident memory (VmHWM, KiB) of a running process, if readable.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Runs `hostkit args…` while sampling its peak memory; answers the run and
/// the highest peak seen (KiB).
async fn run_measured(url: &str, args: &[&str]) -> (Run, u64) {
    let mut child = command(url, args)
        .spawn()
        .expect("start the hostkit binary");
    let pid = child.id().expect("a pid");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let read_out = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
            .await
            .ok();
        text
    });
    let read_err = tokio::spawn(async move {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text)
            .await
            .ok();
        text
    });
    let mut peak = 0;
    let status = tokio::time::timeout(COMMAND_TIMEOUT, async {
        loop {
            if let Some(kib) = peak_rss_kib(pid) {
                peak = peak.max(kib);
            }
            if let Some(status) = child.try_wait().expect("poll hostkit") {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("hostkit finishes");
    let run = Run {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: status.code().unwrap_or(-1),
        stdout: read_out.await.expect("stdout"),
        stderr: read_err.await.expect("stderr"),
    };
    (run, peak)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_tarball_streams_with_flat_memory() {
    const SIZE: u64 = 160 * 1024 * 1024;
    let env = Env::new().await;
    let domain = env.domain();
    let tag = format!("hktest-big-{}:v1", &env.docker.id()[..12]);
    let path = env.dir.path().join("big.tar");
    TarballBuilder::new()
        .image(
            fixtures::web("v1")
                .retag(tag.clone())
                .with_padding_layer(SIZE),
        )
        .write_to_async(path.clone())
        .await
        .expect("write the big tarball");
    let size = std::fs::metadata(&path).unwrap().len();
    let compose = env.file("docker-compose.yml", &web_compose(&tag));
    // A node without a worker and --no-wait: upload and publish only.
    let args = [
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&path),
        "--node",
        "ghost-1",
        "--no-wait",
    ];
    let (first, first_peak) = run_measured(&env.nats.url(), &args).await;
    first
        .expect(0)
        .stdout_has(&format!("sent ({size} bytes)"))
        .stdout_has("not waiting; follow it with `hostkit follow");
    let (second, second_peak) = run_measured(&env.nats.url(), &args).await;
    second.expect(0).stdout_has("0 B sent (0 bytes)");
    eprintln!(
        "peak RSS: {first_peak} KiB uploading, {second_peak} KiB skipping a {size}-byte tarball"
    );
    for peak in [first_peak, second_peak] {
        assert!(
            peak > 0 && peak < 48 * 1024,
            "hostkit's peak RSS was {peak} KiB for a {size}-byte tarball"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_cli_works_with_the_least_rights_of_the_shipped_ci_user() {
    use hostkit_worker::runtime::{Startup, serve};
    use hostkit_worker::store::Store;

    let server = hostkit_tests::ShippedNats::start().await;
    let nats = &server.nats;
    let docker = TestDocker::new().await;
    let nginx = TestNginx::new().await;
    let dir = tempfile::tempdir().expect("temp dir");

    // The worker of node vps-1, connected as the shipped `worker-vps-1`
    // with the client options of its worker.toml (TLS with the CA of
    // scripts/nats-tls.sh).
    let node: hostkit_proto::NodeId = "vps-1".parse().unwrap();
    let worker_toml = format!(
        "node = \"vps-1\"\n[nats]\nurls = [\"tls://127.0.0.1:{}\"]\nuser = \"worker-vps-1\"\npassword = \"{}\"\ntls_ca_file = \"{}\"\n",
        nats.port(),
        hostkit_tests::shipped::password("worker-vps-1"),
        server.ca().display()
    );
    let worker_config = hostkit_worker::config::Config::parse(
        &worker_toml,
        "worker.toml",
        &hostkit_worker::config::Overrides::default(),
    )
    .expect("a valid worker.toml");
    let worker_client = worker_config
        .connect_options()
        .expect("client options")
        .connect(worker_config.nats_servers())
        .await
        .expect("the worker connects");
    std::fs::create_dir_all(dir.path().join("domains")).unwrap();
    let startup = Startup {
        node: node.clone(),
        names: hostkit_proto::Names::default(),
        nats: worker_client,
        docker: docker.client().clone(),
        store: Store::open(&dir.path().join("hostkit.db"))
            .await
            .expect("the worker's store"),
        proxy: Some(hostkit_deploy::proxy::ProxyConfig {
            conf_dir: nginx.conf_dir(),
            test_command: nginx.test_command(),
            reload_command: nginx.reload_command(),
            listen: nginx.listen(),
            certs_dir: None,
            ..Default::default()
        }),
        tls: None,
        settings: hostkit_worker::runtime::Settings {
            // The shipped tenant's private image bucket.
            image_buckets: vec![hostkit_worker::runtime::image_stores::PrivateBucket {
                bucket: "hostkit_images_example_com".into(),
                domains: vec!["example.com".parse().unwrap()],
            }],
            ..hostkit_tests::worker::test_settings(&dir.path().join("domains"))
        },
    };
    let (shutdown, stop) = tokio::sync::watch::channel(false);
    let mut worker = tokio::spawn(async move {
        if let Err(error) = serve(startup, stop).await {
            panic!("worker failed: {error:#}");
        }
    });

    // The CLI as the shipped `ci` user, trusting the server's CA.
    let url = nats.url();
    let ca = server.ca();
    let ci = |args: &[&str]| {
        let mut command = command(&url, args);
        command
            .env("NATS_USER", "ci")
            .env("NATS_PASSWORD", "ci-test-password")
            .env("NATS_CA", &ca);
        command
    };
    let hostkit = async |args: &[&str]| run(ci(args), args).await;
    // Without the CA, the CLI refuses the server (and says why).
    let mut untrusting = ci(&["nodes"]);
    untrusting.env_remove("NATS_CA");
    let refused = run(untrusting, &["nodes"]).await;
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    assert!(
        refused.stderr.contains("cannot reach NATS") && refused.stderr.contains("certificate"),
        "{}",
        refused.stderr
    );
    hostkit_tests::util::while_running(
        &mut worker,
        "the worker of vps-1",
        hostkit_tests::wait_until(
            Duration::from_secs(60),
            "the worker registers",
            async || hostkit(&["nodes"]).await.stdout.contains("vps-1  online"),
        ),
    )
    .await;

    let domain = docker.unique_domain();
    let compose = dir.path().join("docker-compose.yml");
    std::fs::write(&compose, web_compose("hostkit-test/web:v1")).unwrap();
    let images = dir.path().join("web.tar");
    TarballBuilder::new()
        .image(fixtures::web("v1"))
        .write_to(&images)
        .expect("write the tarball");
    let deploy = [
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
    ];
    let mut first = deploy.to_vec();
    first.extend(["--node", "vps-1"]);
    hostkit(&first)
        .await
        .expect(0)
        .stdout_has("✓ succeeded: v1");
    let again = hostkit(&deploy).await;
    again
        .expect(0)
        .stdout_has("0 B sent (0 bytes)")
        .stdout_has("✓ succeeded: v2");
    let job = again
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("published deploy job "))
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the job id")
        .to_owned();
    hostkit(&["follow", &job])
        .await
        .expect(0)
        .stdout_has("✓ succeeded: v2");
    hostkit(&["status"]).await.expect(0).stdout_has(&domain);
    hostkit(&["versions", &domain])
        .await
        .expect(0)
        .stdout_has("*v2");
    hostkit(&["compose", "services", &domain])
        .await
        .expect(0)
        .stdout_has("healthy");
    hostkit(&["compose", "logs", &domain, "web", "--tail", "5"])
        .await
        .expect(0);
    hostkit(&["stop", &domain])
        .await
        .expect(0)
        .stdout_has("started stop")
        .stdout_has("✓ succeeded");
    hostkit(&["remove", &domain, "--yes"])
        .await
        .expect(0)
        .stdout_has("started remove")
        .stdout_has("✓ succeeded");
    // Gone: nginx answers the domain with its default 404.
    let (status, _) = nginx
        .get(&domain, "/")
        .await
        .expect("request through nginx");
    assert_eq!(status, 404, "{domain} still served after remove");

    // The tenant block (`hostkit admin nats-user --domain example.com
    // --image-bucket hostkit_images_example_com`, shipped as
    // `ci-example-com`): the whole deploy of its own domain, its images in
    // its own bucket, works; another domain's is refused.
    docker.register_project("example_com");
    let tenant = |args: &[&str]| {
        let mut command = command(&url, args);
        command
            .env("NATS_USER", "ci-example-com")
            .env("NATS_PASSWORD", "tenant-test-password")
            .env("NATS_CA", &ca)
            .env("HOSTKIT_IMAGE_BUCKET", "hostkit_images_example_com");
        command
    };
    let as_tenant = async |args: &[&str]| run(tenant(args), args).await;
    let mut own = vec![
        "deploy",
        "example.com",
        path_str(&compose),
        "--images",
        path_str(&images),
    ];
    own.extend(["--node", "vps-1"]);
    let deployed = as_tenant(&own).await;
    deployed.expect(0).stdout_has("✓ succeeded: v1");
    // The shared bucket holds the same tarball (ci's deploy above); the
    // tenant's own bucket did not, so it was sent there.
    assert!(
        !deployed.stdout.contains("0 B sent (0 bytes)"),
        "the tenant's tarball was not uploaded to its own bucket:\n{}",
        deployed.stdout
    );
    as_tenant(&["versions", "example.com"])
        .await
        .expect(0)
        .stdout_has("*v1");
    as_tenant(&["compose", "services", "example.com"])
        .await
        .expect(0)
        .stdout_has("healthy");
    let other = as_tenant(&["versions", &domain, "--node", "vps-1"]).await;
    assert_ne!(other.code, 0, "another domain's versions: {}", other.stdout);
    let mut foreign = vec![
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
    ];
    foreign.extend(["--node", "vps-1", "--timeout", "10s"]);
    let refused = as_tenant(&foreign).await;
    assert_ne!(
        refused.code, 0,
        "another domain's deploy: {}",
        refused.stdout
    );
    as_tenant(&["remove", "example.com", "--yes"])
        .await
        .expect(0);

    // The dashboard with the shipped read-only identity: it replays the
    // events and reads the node registry, and shows what happened.
    let port = hostkit_tests::util::free_port();
    let mut dashboard = command(
        &url,
        &["dashboard", "--listen", &format!("127.0.0.1:{port}")],
    );
    dashboard
        .env("NATS_USER", "dashboard")
        .env(
            "NATS_PASSWORD",
            hostkit_tests::shipped::password("dashboard"),
        )
        .env("NATS_CA", &ca)
        .env("NATS_INBOX_PREFIX", "_INBOX_dashboard");
    let dashboard_log = dir.path().join("dashboard.log");
    dashboard.stderr(std::fs::File::create(&dashboard_log).expect("a log file"));
    let mut dashboard = dashboard.spawn().expect("start the dashboard");
    let log = || std::fs::read_to_string(&dashboard_log).unwrap_or_default();
    hostkit_tests::wait_for(
        Duration::from_secs(30),
        "the dashboard shows the deploy and the node",
        async || {
            let (status, page) = tokio::time::timeout(
                Duration::from_secs(2),
                hostkit_tests::util::http_get(("127.0.0.1", port), "localhost", "/"),
            )
            .await
            .map_err(|_| anyhow::anyhow!("no answer in 2 s; stderr: {}", log()))?
            .map_err(|e| anyhow::anyhow!("{e}; stderr: {}", log()))?;
            // The tenant's domain: deployed (v1), then removed (no version).
            let card = page
                .split("class=\"card domain\"")
                .find(|c| c.contains("<span class=\"name\">example.com</span>"))
                .unwrap_or_default();
            let shown = card.contains("<span class=\"version\">no version</span>")
                && card.contains(
                    ">deploy</a></td><td><span class=\"pill succeeded\">succeeded</span> v1",
                )
                && card.contains(">remove</a>");
            if status == 200 && shown && page.contains("id=\"node-vps_1\"") {
                Ok(())
            } else {
                Err(anyhow::anyhow!("{status}: {page}\n--- stderr\n{}", log()))
            }
        },
    )
    .await;
    let _ = dashboard.kill().await;

    let _ = shutdown.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(30), worker).await;
}

/// `hostkit admin job-key`: its seed signs jobs the printed worker.toml
/// entry accepts, for the printed domains only.
#[tokio::test]
async fn admin_job_key_prints_a_seed_and_the_worker_entry_that_trusts_it() {
    let url = "nats://127.0.0.1:1".to_owned();
    let args = ["admin", "job-key", "--domain", "example.com"];
    let made = run(command(&url, &args), &args).await;
    made.expect(0);
    let seed = made
        .stdout
        .lines()
        .find(|l| l.starts_with("SU"))
        .expect("a seed line")
        .to_owned();
    let entry = made
        .stdout
        .split_once("[[security.job_keys]]")
        .map(|(_, rest)| format!("node = \"vps-1\"\n[[security.job_keys]]{rest}"))
        .expect("the worker.toml entry");
    let config = hostkit_worker::config::Config::parse(
        &entry,
        "worker.toml",
        &hostkit_worker::config::Overrides::default(),
    )
    .expect("the entry is valid worker.toml");
    let trusted = config.security.trusted_keys();
    let key = hostkit_proto::sign::KeyPair::from_seed(&seed).expect("a seed");
    let node: hostkit_proto::NodeId = "vps-1".parse().unwrap();
    let sign_for = |domain: &str| {
        let mut job = hostkit_proto::Job::new(
            domain.parse().unwrap(),
            hostkit_proto::JobSpec::Stop(hostkit_proto::job::StopPayload {}),
            "test",
        );
        job.node = Some(node.clone());
        job.expires_at = Some(job.created_at + hostkit_proto::sign::DEFAULT_JOB_TTL);
        hostkit_proto::sign_job(&mut job, &key).unwrap();
        job
    };
    let now = chrono::Utc::now();
    hostkit_proto::check_claims(&sign_for("example.com"), &trusted, &node, now)
        .expect("its own domain");
    assert!(hostkit_proto::check_claims(&sign_for("other.test"), &trusted, &node, now).is_err());
}

/// `--env` values are sealed to the node's published key: the job on the
/// wire holds ciphertext only, the worker opens it in memory and the
/// container gets the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn env_values_travel_sealed_to_the_node_and_reach_the_container() {
    use futures_util::StreamExt;
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file(
        "site/docker-compose.yml",
        "services:\n  web:\n    image: hostkit-test/web:v1\n    ports: [\"8080\"]\n    environment: [TOKEN]\n",
    );
    let images = env.tarball("web-v1.tar", vec![fixtures::web("v1")]);
    let secret = "s3aled-v4lue-of-the-token";
    let client = env.nats.client().await;
    let mut jobs = client
        .subscribe(env.worker.names.jobs_all())
        .await
        .expect("watch the jobs");
    client.flush().await.expect("flush");
    hostkit_tests::wait_until(
        Duration::from_secs(20),
        "the node publishes its sealing key",
        async || {
            env.hostkit(&["--json", "nodes"])
                .await
                .stdout
                .contains("seal_key")
        },
    )
    .await;

    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
        "--node",
        &node,
        "--env",
        &format!("TOKEN={secret}"),
    ])
    .await
    .expect(0)
    .stdout_has("✓ succeeded: v1");

    let published = tokio::time::timeout(Duration::from_secs(5), jobs.next())
        .await
        .expect("the job was seen")
        .expect("a message");
    let text = String::from_utf8_lossy(&published.payload);
    assert!(text.contains("sealed_env"), "{text}");
    assert!(
        !text.contains(secret),
        "the value crossed NATS in plain text: {text}"
    );
    let (status, body) = env
        .nginx
        .get(&domain, "/cgi-bin/env")
        .await
        .expect("request through nginx");
    assert_eq!(status, 200);
    assert!(body.contains(&format!("TOKEN={secret}")), "{body}");

    // Nothing on the node's disk holds it: not the raw job (dropped when
    // the job ended), not the recorded version (sealed), not the events.
    for entry in std::fs::read_dir(env.worker.data_dir.path()).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            let bytes = std::fs::read(&path).expect("read");
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{} holds the value",
                path.display()
            );
        }
    }
}

/// Operator (JWT) mode: `hostkit admin nats-user --account-seed` prints a
/// credentials file whose user JWT, checked by a real nats-server that
/// trusts only the operator, carries the tenant's rights: its own
/// domain's job and event subjects, not another domain's.
#[tokio::test]
async fn admin_nats_user_prints_creds_a_jwt_server_enforces() {
    use nats_jwt::{KeyPair, Token};

    let operator = KeyPair::new_operator();
    let account = KeyPair::new_account();
    let account_jwt = Token::new_account(account.public_key())
        .name("HOSTKIT")
        .sign(&operator);
    // The harness runs JetStream, which needs a system account.
    let system = KeyPair::new_account();
    let system_jwt = Token::new_account(system.public_key())
        .name("SYS")
        .sign(&operator);
    let nats = TestNats::with_config(&format!(
        "trusted_keys: [\"{}\"]\nsystem_account: {sys}\nresolver: MEMORY\nresolver_preload: {{\n  {sys}: \"{system_jwt}\"\n  {}: \"{account_jwt}\"\n}}\n",
        operator.public_key(),
        account.public_key(),
        sys = system.public_key(),
    ))
    .await;

    let dir = tempfile::tempdir().unwrap();
    let seed_file = dir.path().join("account.nk");
    std::fs::write(&seed_file, account.seed().unwrap()).unwrap();
    let args = [
        "admin",
        "nats-user",
        "--domain",
        "example.com",
        "--account-seed",
        path_str(&seed_file),
    ];
    let made = run(command(&nats.url(), &args), &args).await;
    made.expect(0).stdout_has("-----BEGIN NATS USER JWT-----");
    assert!(
        !made.stdout.contains(&account.seed().unwrap()),
        "the account seed is never printed"
    );
    let creds = dir.path().join("ci-example-com.creds");
    std::fs::write(&creds, &made.stdout).unwrap();

    // An observer with every right, issued by the same account.
    let observer_key = KeyPair::new_user();
    let observer_jwt =
        Token::new_user(account.public_key(), observer_key.public_key()).sign(&account);
    let observer_creds = format!(
        "-----BEGIN NATS USER JWT-----\n{observer_jwt}\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{}\n------END USER NKEY SEED------\n",
        observer_key.seed().unwrap()
    );
    let observer = nats
        .connect_with(async_nats::ConnectOptions::with_credentials(&observer_creds).unwrap())
        .await
        .expect("the observer connects");

    let (errors_tx, mut errors) = tokio::sync::mpsc::unbounded_channel();
    let tenant = nats
        .connect_with(
            async_nats::ConnectOptions::with_credentials_file(&creds)
                .await
                .expect("a credentials file")
                .event_callback(move |event| {
                    let tx = errors_tx.clone();
                    async move {
                        if let async_nats::Event::ServerError(e) = event {
                            let _ = tx.send(e.to_string());
                        }
                    }
                }),
        )
        .await
        .expect("the tenant connects with its creds");

    // Its own job subject: delivered.
    let mut jobs = observer.subscribe("hostkit.jobs.>").await.unwrap();
    // A probe through its own subscription: the server has registered it.
    observer
        .publish("hostkit.jobs.probe.probe", "probe".into())
        .await
        .unwrap();
    let probe = tokio::time::timeout(Duration::from_secs(5), jobs.next())
        .await
        .expect("the observer's probe arrives")
        .unwrap();
    assert_eq!(probe.subject.as_str(), "hostkit.jobs.probe.probe");
    let own_events = tenant.subscribe("hostkit.events.example_com.>").await;
    assert!(own_events.is_ok());
    tenant
        .publish("hostkit.jobs.vps-1.example_com", "own".into())
        .await
        .unwrap();
    tenant.flush().await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), jobs.next())
        .await
        .expect("its own job arrives")
        .unwrap();
    assert_eq!(got.subject.as_str(), "hostkit.jobs.vps-1.example_com");

    // Another domain's job and events: refused by the server.
    tenant
        .publish("hostkit.jobs.vps-1.other_test", "foreign".into())
        .await
        .unwrap();
    let _foreign_events = tenant.subscribe("hostkit.events.other_test.>").await;
    tenant.flush().await.unwrap();
    let mut seen = Vec::new();
    let both = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(error) = errors.recv().await {
            seen.push(error);
            let joined = seen.join("\n");
            if joined
                .contains("Permissions Violation for Publish to \"hostkit.jobs.vps-1.other_test\"")
                && joined.contains(
                    "Permissions Violation for Subscription to \"hostkit.events.other_test.>\"",
                )
            {
                return;
            }
        }
    })
    .await;
    assert!(both.is_ok(), "the server allowed it: {seen:?}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), jobs.next())
            .await
            .is_err(),
        "another domain's job was delivered"
    );
}

/// DESIGN §11 from the CLI: a redeploy whose build changed only the top
/// layer stores only that layer (and the new config) in the bucket — the
/// bucket's stream grows by about those bytes, far less than the base
/// layer — and the worker sends the engine only that layer.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_redeploy_uploads_only_the_layer_that_changed() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let tag = |v: &str| format!("hostkit-test/cli-layers-{}:{v}", domain.replace('.', "-"));
    let image = |v: &str| {
        env.docker.register_image(tag(v));
        fixtures::http_as(&tag(v), "web", v, 8080).file(
            "/etc/hostkit-cli-layer-test",
            format!("{domain} {v}\n"),
            0o644,
        )
    };
    let bucket_bytes = async || {
        env.js()
            .await
            .get_stream(format!("OBJ_{}", env.worker.names.images_bucket()))
            .await
            .expect("the image bucket's stream")
            .info()
            .await
            .expect("stream info")
            .state
            .bytes
    };
    let deploy = async |v: &str| {
        let compose = env.file(&format!("{v}/docker-compose.yml"), &web_compose(&tag(v)));
        let images = env.tarball(&format!("{v}.tar"), vec![image(v)]);
        let run = env
            .hostkit(&[
                "deploy",
                &domain,
                path_str(&compose),
                "--images",
                path_str(&images),
                "--node",
                &node,
            ])
            .await;
        (run, images)
    };

    let (first, _) = deploy("v1").await;
    first.expect(0).stdout_has("✓ succeeded: v1");
    let before = bucket_bytes().await;
    let (second, v2) = deploy("v2").await;
    second
        .expect(0)
        .stdout_has("v2.tar: 1 blob(s) already in the bucket")
        .stdout_has("2 sent")
        .stdout_has("layers: 1 sent")
        .stdout_has("✓ succeeded: v2");
    let grown = bucket_bytes().await - before;
    let split = hostkit_deploy::images::split::split(&v2)
        .unwrap()
        .expect("a docker save tarball");
    let v2_image = &split.images.images[0];
    let (base, top) = (&v2_image.layers[0], v2_image.layers.last().unwrap());
    let changed = top.size + v2_image.config.size;
    eprintln!(
        "bucket grew by {grown} bytes for a {changed}-byte change over a {}-byte base",
        base.size
    );
    // Chunk and metadata headers cost a little; the base never travels.
    assert!(grown >= changed, "{grown} < {changed}");
    assert!(grown < changed + 16 * 1024, "{grown} bytes stored");
    assert!(grown < base.size / 2, "the base layer was stored again");
    assert_eq!(env.get(&domain).await, (200, "web v2\n".to_owned()));
}

/// `hostkit gc`: blobs older than the grace period that no job in the jobs
/// stream names are deleted; a blob a waiting job names is kept, and so are
/// young blobs; `--dry-run` deletes nothing; the next deploy sends the
/// deleted blobs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gc_deletes_the_blobs_no_waiting_job_names() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file(
        "site/docker-compose.yml",
        &web_compose("hostkit-test/web:v1"),
    );
    let images = env.tarball("web-v1.tar", vec![fixtures::web("v1")]);
    let deploy = [
        "deploy",
        domain.as_str(),
        path_str(&compose),
        "--images",
        path_str(&images),
        "--node",
        node.as_str(),
    ];
    env.hostkit(&deploy)
        .await
        .expect(0)
        .stdout_has("✓ succeeded: v1");

    // A job for a node without a worker names another blob: it waits.
    let js = env.js().await;
    let waiting_tar = env.tarball("web-v2.tar", vec![fixtures::web("v2")]);
    let waiting = hostkit_tests::worker::upload_tarball(&js, &env.worker.names, &waiting_tar).await;
    let hostkit_proto::job::ImageSource::Object { object: kept, .. } = &waiting else {
        panic!("{waiting:?}")
    };
    let job = hostkit_proto::Job::new(
        domain.parse().unwrap(),
        hostkit_proto::JobSpec::Deploy(hostkit_proto::job::DeployPayload {
            source: hostkit_proto::job::DeploySource::Compose(hostkit_proto::job::ComposeSource {
                text: web_compose("hostkit-test/web:v2"),
                file_name: None,
            }),
            images: vec![waiting.clone()],
            env: Default::default(),
            sealed_env: None,
            options: Default::default(),
        }),
        "gc-test",
    );
    hostkit_tests::publish_job(&js, &env.worker.names, &"ghost".parse().unwrap(), &job).await;

    let live = async || {
        let store = js
            .get_object_store(env.worker.names.images_bucket())
            .await
            .expect("the image store");
        let mut list = store.list().await.expect("list");
        let mut names = Vec::new();
        while let Some(item) = list.next().await {
            let info = item.expect("an object");
            if !info.deleted {
                names.push(info.name);
            }
        }
        names.sort();
        names
    };
    assert_eq!(live().await.len(), 4, "3 blobs of v1 and v2's tarball");

    env.hostkit(&["gc"]).await.expect(0).stdout_has(
        "deleted 0 blob(s) (0 B); kept 1 named by a job that has not ended and 3 younger than",
    );
    env.hostkit(&["gc", "--older-than", "0s", "--dry-run"])
        .await
        .expect(0)
        .stdout_has("would delete 3 blob(s)");
    assert_eq!(live().await.len(), 4, "a dry run deletes nothing");
    env.hostkit(&["gc", "--older-than", "0s"])
        .await
        .expect(0)
        .stdout_has("deleted 3 blob(s)")
        .stdout_has("kept 1 named by a job that has not ended");
    assert_eq!(live().await, [kept.as_str().to_owned()]);

    // The next deploy sends what was collected, and succeeds.
    env.hostkit(&deploy)
        .await
        .expect(0)
        .stdout_has("0 blob(s) already in the bucket (0 B skipped), 3 sent")
        .stdout_has("✓ succeeded: v2");
}

/// `hostkit env set|unset|list`, a restart that hands the new values to the
/// running containers, and `hostkit exec` exiting with the command's status.
#[tokio::test]
async fn env_set_reaches_containers_on_restart_and_exec_exits_with_the_commands_status() {
    let env = Env::with_settings(|settings| {
        settings.exec_domains = vec!["*".parse().expect("a pattern")];
    })
    .await;
    let domain = env.domain();
    let node = env.node();
    hostkit_tests::wait_until(
        Duration::from_secs(20),
        "the node publishes its sealing key",
        async || {
            env.hostkit(&["--json", "nodes"])
                .await
                .stdout
                .contains("seal_key")
        },
    )
    .await;
    let secret = "gr33ting-fr0m-the-shell";
    // Set before the first deploy; GREETING's value comes from this shell.
    env.hostkit_with(
        &[
            "env",
            "set",
            &domain,
            "MODE=first",
            "GREETING",
            "--node",
            &node,
        ],
        &[("GREETING", Path::new(secret))],
    )
    .await
    .expect(0)
    .stdout_has("▸ env: set GREETING, MODE; unset nothing; 2 variables stored");

    let compose = env.file(
        "site/docker-compose.yml",
        "services:\n  web:\n    image: hostkit-test/web:v1\n    ports: [\"8080\"]\n    environment: [MODE, GREETING]\n",
    );
    let images = env.tarball("web-v1.tar", vec![fixtures::web("v1")]);
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
        "--node",
        &node,
    ])
    .await
    .expect(0)
    .stdout_has("✓ succeeded: v1");
    let container_env = async || {
        let (status, body) = env
            .nginx
            .get(&domain, "/cgi-bin/env")
            .await
            .expect("request through nginx");
        assert_eq!(status, 200);
        body
    };
    let body = container_env().await;
    assert!(body.contains("MODE=first"), "{body}");
    assert!(body.contains(&format!("GREETING={secret}")), "{body}");

    // A change waits for the next restart, which applies it.
    env.hostkit(&["env", "set", &domain, "MODE=second"])
        .await
        .expect(0);
    assert!(container_env().await.contains("MODE=first"));
    env.hostkit(&["restart", &domain])
        .await
        .expect(0)
        .stdout_has("loaded again");
    let body = container_env().await;
    assert!(body.contains("MODE=second"), "{body}");

    // Names only, never values.
    let list = env.hostkit(&["env", "list", &domain]).await;
    list.expect(0);
    assert_eq!(
        list.stdout.lines().collect::<Vec<_>>(),
        ["GREETING", "MODE"]
    );
    assert!(!list.stdout.contains(secret) && !list.stderr.contains(secret));
    let json = env.hostkit(&["--json", "env", "list", &domain]).await;
    json.expect(0);
    let reply: serde_json::Value = serde_json::from_str(&json.stdout).expect("JSON");
    assert_eq!(reply["keys"], serde_json::json!(["GREETING", "MODE"]));
    assert!(!json.stdout.contains("second"));

    env.hostkit(&["env", "unset", &domain, "MODE", "NEVER_SET"])
        .await
        .expect(0)
        .stdout_has("warning: NEVER_SET was not set");
    env.hostkit(&["restart", &domain]).await.expect(0);
    let body = container_env().await;
    assert!(!body.contains("MODE="), "{body}");
    assert!(body.contains("GREETING="), "{body}");

    // One-off commands: output as written, the command's status as the CLI's.
    let failing = env
        .hostkit(&[
            "exec",
            &domain,
            "web",
            "--",
            "sh",
            "-c",
            "echo out-$FIXTURE; echo oops >&2; exit 7",
        ])
        .await;
    failing.expect(7).stdout_has("out-web").stderr_has("oops");
    failing.stdout_has("✗ failed (exec.failed): sh exited with status 7");
    env.hostkit(&["exec", &domain, "web", "--", "cat", "/www/index.html"])
        .await
        .expect(0)
        .stdout_has("web v1");
    env.hostkit(&["exec", &domain, "nosuch", "--", "true"])
        .await
        .expect(1)
        .stdout_has("service.not_found");
    // The one-off containers are gone; the site still serves.
    let project = hostkit_tests::compose_project(&domain);
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![
            format!("com.docker.compose.project={project}"),
            "hostkit.run".to_string(),
        ],
    )]);
    let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let left = env
        .docker
        .client()
        .list_containers(Some(options))
        .await
        .expect("list containers");
    assert!(left.is_empty(), "one-off containers left: {left:?}");
    assert_eq!(env.get(&domain).await, (200, "web v1\n".to_string()));
}

/// `hostkit backup`, `hostkit backups` and `hostkit restore` as a user
/// runs them: the id printed by `backup` is the one `restore` takes.
#[tokio::test]
async fn backup_lists_and_restores_a_volume_through_the_cli() {
    let env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let compose = env.file(
        "site/docker-compose.yml",
        "services:\n  db:\n    image: hostkit-test/db:latest\n    ports: [\"5432\"]\n    volumes: [\"data:/data\"]\nvolumes:\n  data: {}\n",
    );
    let images = env.tarball("db.tar", vec![fixtures::db()]);
    env.hostkit(&[
        "deploy",
        &domain,
        path_str(&compose),
        "--images",
        path_str(&images),
        "--node",
        &node,
    ])
    .await
    .expect(0);
    let created = || async {
        env.nginx
            .get(&domain, "/created")
            .await
            .expect("through nginx")
            .1
    };
    let before = created().await;

    let backup = env.hostkit(&["--json", "backup", &domain]).await;
    backup.expect(0);
    let id = backup.events()[0].job_id.expect("a job event").to_string();
    assert!(
        backup.events().iter().any(|e| matches!(&e.kind,
            EventKind::Step { name, message } if name == "backup" && message.contains(&id))),
        "{}",
        backup.stdout
    );
    env.hostkit(&["backups", &domain])
        .await
        .expect(0)
        .stdout_has(&id)
        .stdout_has("data=");
    env.hostkit(&["backup", &domain, "nosuch"])
        .await
        .expect(1)
        .stdout_has("backup.failed")
        .stdout_has("no named volume \"nosuch\" (volumes: data)");

    // Wipe the volume's state, then restore it.
    let container = format!("{}-db-1", hostkit_tests::compose_project(&domain));
    let (code, _) = env
        .docker
        .exec(&container, &["sh", "-c", "rm -f /data/created"])
        .await;
    assert_eq!(code, 0);
    env.hostkit(&["restart", &domain]).await.expect(0);
    assert_ne!(created().await, before);
    env.hostkit(&["restore", &domain, &id])
        .await
        .expect(0)
        .stdout_has(&format!("restored backup {id}"));
    assert_eq!(created().await, before);
    env.hostkit(&["restore", &domain, "01JB9Q4T8V3C5X7N2M6K1R0A9D"])
        .await
        .expect(1)
        .stdout_has("backup.not_found");
}

/// `hostkit dashboard`: a deploy reaches its live feed with its steps and
/// its end; the page (server-rendered, read by a real headless Chromium)
/// shows the domain, its version and its service; the job's history
/// replays from the stream. A screenshot is kept under the target dir.
#[tokio::test]
async fn the_dashboard_shows_a_deploy_live_and_in_a_real_browser() {
    use tokio::io::AsyncWriteExt as _;

    let mut env = Env::new().await;
    let domain = env.domain();
    let node = env.node();
    let port = hostkit_tests::util::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut dashboard = env.spawn(&["dashboard", "--listen", &listen]);
    let get = async |path: &str| {
        hostkit_tests::util::http_get(("127.0.0.1", port), "localhost", path).await
    };
    hostkit_tests::wait_until(
        Duration::from_secs(30),
        "the dashboard answers",
        async || get("/").await.is_ok_and(|(status, _)| status == 200),
    )
    .await;

    // The live feed, read raw while the deploy runs.
    let feed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let reader = {
        let feed = std::sync::Arc::clone(&feed);
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to the dashboard");
        stream
            .write_all(
                b"GET /events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n",
            )
            .await
            .expect("ask for the feed");
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt as _;
            let mut buffer = vec![0u8; 64 * 1024];
            while let Ok(n) = stream.read(&mut buffer).await {
                if n == 0 {
                    break;
                }
                feed.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        })
    };

    let compose = env.file(
        "site/docker-compose.yml",
        &web_compose("hostkit-test/web:v1"),
    );
    let images = env.tarball("web-v1.tar", vec![fixtures::web("v1")]);
    let deploy = env
        .hostkit(&[
            "--json",
            "deploy",
            &domain,
            path_str(&compose),
            "--images",
            path_str(&images),
            "--node",
            &node,
        ])
        .await;
    deploy.expect(0);
    let job = deploy.events()[0].job_id.expect("a job event").to_string();
    hostkit_tests::wait_until(
        Duration::from_secs(20),
        "the feed carries the job's steps and its end",
        async || {
            let feed = feed.lock().unwrap();
            feed.contains("event: hostkit")
                && feed.contains(&format!("\"job_id\":\"{job}\""))
                && feed.contains("\"kind\":\"step\"")
                && feed.contains("\"kind\":\"succeeded\"")
        },
    )
    .await;
    reader.abort();

    // The page, as a browser sees it.
    let url = format!("http://{listen}/");
    let dom = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--dump-dom",
            &url,
        ])
        .output()
        .await
        .expect("run chromium (apt-get install chromium; scripts/setup.sh does)");
    assert!(
        dom.status.success(),
        "chromium: {}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    let card = dom
        .split("class=\"card domain\"")
        .find(|c| c.contains(&domain))
        .unwrap_or_else(|| panic!("no card for {domain} in the DOM:\n{dom}"));
    assert!(card.contains("<span class=\"version\">v1</span>"), "{card}");
    assert!(
        card.contains("<tr class=\"service\"><td>web</td>"),
        "{card}"
    );
    assert!(card.contains("succeeded"), "{card}");
    assert!(
        dom.contains(&format!("id=\"node-{}\"", node.replace('-', "_"))),
        "{dom}"
    );
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    let status = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
            &format!("--screenshot={}", shot.display()),
            &url,
        ])
        .output()
        .await
        .expect("run chromium");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000),
        "a screenshot at {}",
        shot.display()
    );

    // The job's history, replayed from the stream.
    let (status, history) = get(&format!("/jobs/{job}")).await.expect("the job page");
    assert_eq!(status, 200);
    assert!(
        history.contains("started") && history.contains("succeeded"),
        "{history}"
    );

    // NATS goes away and comes back: the dashboard follows on, and a job
    // run afterwards shows up on the page.
    env.nats.stop();
    tokio::time::sleep(Duration::from_secs(2)).await;
    env.nats.start().await;
    let restart = env
        .hostkit(&["--json", "restart", &domain, "--node", &node])
        .await;
    restart.expect(0);
    let restarted = restart.events()[0].job_id.expect("a job event").to_string();
    let shown =
        format!("href=\"/jobs/{restarted}\">restart</a></td><td><span class=\"pill succeeded\">");
    hostkit_tests::wait_until(
        Duration::from_secs(60),
        "the dashboard shows the job run after NATS came back",
        async || get("/").await.is_ok_and(|(_, page)| page.contains(&shown)),
    )
    .await;
    let _ = dashboard.kill().await;
}
