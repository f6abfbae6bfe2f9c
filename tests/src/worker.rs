//! `TestWorker`: a real `hostkit-worker` runtime (in this process) against a
//! [`TestNats`], the Docker Engine and a [`TestNginx`], with its own data
//! dir, domains root and port pool; plus helpers to publish jobs the way the
//! CLI does and to follow their events.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use futures_util::StreamExt;
use hostkit_deploy::policy::Policy;
use hostkit_deploy::proxy::ProxyConfig;
use hostkit_deploy::tls::AcmeConfig;
use hostkit_proto::subjects::settings::StreamBounds;
use hostkit_proto::{Event, Job, Names, NodeId};
use hostkit_worker::runtime::{Settings, Startup, serve};
use hostkit_worker::store::{PortPool, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{TestDocker, TestNats, TestNginx};

/// A worker runtime owned by one test; shut down (gracefully) on drop.
#[derive(Debug)]
pub struct TestWorker {
    /// The node id.
    pub node: NodeId,
    /// Subject names (root `hostkit`).
    pub names: Names,
    /// Its SQLite file's directory.
    pub data_dir: tempfile::TempDir,
    /// `<domains_root>/<domain>/` for each domain.
    pub domains_root: tempfile::TempDir,
    shutdown: watch::Sender<bool>,
    runtime: Option<tokio::runtime::Runtime>,
    task: Option<JoinHandle<()>>,
    settings: Settings,
    proxy: ProxyConfig,
    tls: Option<AcmeConfig>,
}

/// Settings for a test worker: a private port pool, short timeouts.
pub fn test_settings(domains_root: &std::path::Path) -> Settings {
    let start = crate::util::free_port_block(100);
    Settings {
        domains_root: domains_root.to_path_buf(),
        ports: PortPool {
            start,
            end: start + 99,
            block_len: 10,
        },
        retention: 5,
        health_timeout: Duration::from_secs(30),
        allow_pull: true,
        image_dir: None,
        exec_domains: Vec::new(),
        metrics_listen: None,
        image_buckets: Vec::new(),
        // The default image bucket bound (20 GiB) is reserved in the
        // server's JetStream store, whose own default is 75% of the free
        // disk: two such buckets would not fit a test machine with less
        // than ~55 GB free. Tests store a few MiB.
        stream_bounds: StreamBounds {
            images_max_bytes: 1 << 30,
            ..StreamBounds::default()
        },
        policy: Policy::default(),
        stack_limits: Default::default(),
        trusted_keys: Vec::new(),
        require_signed: false,
        max_lanes: 4,
        grace: Duration::from_secs(30),
        drain: Duration::from_millis(300),
        seal_key: Some(hostkit_proto::sign::seal::XKey::new()),
    }
}

impl TestWorker {
    /// Start a worker for a fresh node id.
    pub async fn start(nats: &TestNats, docker: &TestDocker, nginx: &TestNginx) -> TestWorker {
        Self::start_with(nats, docker, nginx, |_| {}).await
    }

    /// Start a worker whose settings `adjust` changes first.
    pub async fn start_with(
        nats: &TestNats,
        docker: &TestDocker,
        nginx: &TestNginx,
        adjust: impl FnOnce(&mut Settings),
    ) -> TestWorker {
        let node: NodeId = format!("node-{}", &docker.id()[..10])
            .parse()
            .expect("valid node id");
        let domains_root = tempfile::tempdir().expect("domains root");
        let mut settings = test_settings(domains_root.path());
        adjust(&mut settings);
        let proxy = nginx.proxy_config();
        let (shutdown, _) = watch::channel(false);
        let mut worker = TestWorker {
            node,
            names: Names::default(),
            data_dir: tempfile::tempdir().expect("data dir"),
            domains_root,
            shutdown,
            runtime: None,
            task: None,
            settings,
            proxy,
            tls: None,
        };
        worker.spawn(nats, docker).await;
        worker
    }

    /// Start a worker that obtains certificates from the ACME server at
    /// `directory_url` (whose HTTPS certificate chains to `ca_root`): its
    /// account in `<data_dir>/acme`, its certificates in `<data_dir>/certs`,
    /// challenge answers in `<data_dir>/acme-webroot`, served by `nginx`;
    /// `certbot_live` stands for `/etc/letsencrypt/live`.
    pub async fn start_with_acme(
        nats: &TestNats,
        docker: &TestDocker,
        nginx: &TestNginx,
        directory_url: String,
        ca_root: std::path::PathBuf,
        certbot_live: Option<std::path::PathBuf>,
    ) -> TestWorker {
        let node: NodeId = format!("node-{}", &docker.id()[..10])
            .parse()
            .expect("valid node id");
        let domains_root = tempfile::tempdir().expect("domains root");
        let data_dir = tempfile::tempdir().expect("data dir");
        let webroot = data_dir.path().join("acme-webroot");
        let proxy = ProxyConfig {
            own_certs_dir: Some(data_dir.path().join("certs")),
            acme_webroot: Some(webroot.clone()),
            certs_dir: certbot_live,
            ..nginx.proxy_config()
        };
        let tls = AcmeConfig {
            directory_url,
            contact_email: Some("ops@example.com".into()),
            ca_root: Some(ca_root),
            account_dir: data_dir.path().join("acme"),
            webroot,
        };
        let (shutdown, _) = watch::channel(false);
        let mut worker = TestWorker {
            node,
            names: Names::default(),
            settings: test_settings(domains_root.path()),
            data_dir,
            domains_root,
            shutdown,
            runtime: None,
            task: None,
            proxy,
            tls: Some(tls),
        };
        worker.spawn(nats, docker).await;
        worker
    }

    /// Run the worker on a runtime of its own (so a crash can take every
    /// task of it down at once, as a dying process would), with its own
    /// NATS connection.
    async fn spawn(&mut self, nats: &TestNats, docker: &TestDocker) {
        let store = Store::open(&self.data_dir.path().join("hostkit.db"))
            .await
            .expect("open the worker's store");
        let (tx, rx) = watch::channel(false);
        self.shutdown = tx;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("the worker's runtime");
        let (url, node, names, docker, proxy, settings, tls) = (
            nats.url(),
            self.node.clone(),
            self.names.clone(),
            docker.client().clone(),
            self.proxy.clone(),
            self.settings.clone(),
            self.tls.clone(),
        );
        self.task = Some(runtime.spawn(async move {
            let nats = async_nats::connect(url)
                .await
                .expect("the worker connects to NATS");
            let startup = Startup {
                node,
                names,
                nats,
                docker,
                store,
                proxy: Some(proxy),
                tls,
                settings,
            };
            if let Err(error) = serve(startup, rx).await {
                panic!("worker failed: {error:#}");
            }
        }));
        self.runtime = Some(runtime);
        let task = self
            .task
            .as_mut()
            .expect("the worker task was just spawned");
        crate::util::while_running(
            task,
            "the worker",
            wait_for_consumer(nats, &self.names, &self.node),
        )
        .await;
    }

    /// Graceful stop (as SIGTERM would), waiting for running jobs.
    pub async fn stop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.await.expect("worker task");
        }
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    /// Stop gracefully, change the settings with `adjust` (as an edited
    /// worker.toml would) and start again on the same store.
    pub async fn restart_with(
        &mut self,
        nats: &TestNats,
        docker: &TestDocker,
        adjust: impl FnOnce(&mut Settings),
    ) {
        self.stop().await;
        adjust(&mut self.settings);
        self.spawn(nats, docker).await;
    }

    /// Kill the worker's runtime at once, mid-job (every task of it stops
    /// where it is, as in a crash), then start it again on the same store.
    pub async fn crash_and_restart(&mut self, nats: &TestNats, docker: &TestDocker) {
        self.task = None;
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
        self.spawn(nats, docker).await;
    }
}

impl Drop for TestWorker {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Wait (bounded) until `node`'s durable consumer exists.
pub async fn wait_for_consumer(nats: &TestNats, names: &Names, node: &NodeId) {
    wait_for_consumer_of(&nats.client().await, names, node).await;
}

/// Wait (bounded) until `node`'s durable consumer exists, asking through
/// `client`.
///
/// Then waits for the node's record in the nodes bucket too: the CLI reads
/// it to choose how to upload images (by layer, or whole tarballs for a
/// node it does not know yet), so a test that deploys before the record
/// exists would take the other path.
pub async fn wait_for_consumer_of(client: &async_nats::Client, names: &Names, node: &NodeId) {
    let js = jetstream::new(client.clone());
    let consumer = names.jobs_consumer(node);
    crate::wait_until(
        Duration::from_secs(30),
        "the worker's consumer exists",
        async || match js.get_stream(names.jobs_stream()).await {
            Ok(stream) => stream.consumer_info(&consumer).await.is_ok(),
            Err(_) => false,
        },
    )
    .await;
    crate::wait_until(
        Duration::from_secs(30),
        "the worker's node record exists",
        async || match js.get_key_value(names.nodes_bucket()).await {
            Ok(nodes) => matches!(nodes.get(names.node_key(node)).await, Ok(Some(_))),
            Err(_) => false,
        },
    )
    .await;
}

/// Publish `job` to `node` as the CLI does (msg id = job id); answers the
/// stream sequence and whether the server saw it as a duplicate.
pub async fn publish_job(
    js: &jetstream::Context,
    names: &Names,
    node: &NodeId,
    job: &Job,
) -> (u64, bool) {
    let subject = names.jobs_subject(node, &job.domain);
    let message = PublishMessage::build()
        .payload(job.to_vec().into())
        .message_id(job.id.to_string());
    let ack = js
        .send_publish(subject, message)
        .await
        .expect("publish the job")
        .await
        .expect("the jobs stream acks the job");
    (ack.sequence, ack.duplicate)
}

/// Events of one job, collected from a subscription made before publishing.
#[derive(Debug)]
pub struct JobEvents {
    subscriber: async_nats::Subscriber,
    /// Every event so far.
    pub events: Vec<Event>,
}

impl JobEvents {
    /// Subscribe to every job event of `domain` (before publishing).
    pub async fn subscribe(
        client: &async_nats::Client,
        names: &Names,
        domain: &hostkit_proto::Domain,
    ) -> JobEvents {
        let subscriber = client
            .subscribe(names.job_events_all(domain))
            .await
            .expect("subscribe to job events");
        JobEvents {
            subscriber,
            events: Vec::new(),
        }
    }

    /// Wait (bounded) for `job_id`'s terminal event; answers it.
    pub async fn terminal(&mut self, job_id: &hostkit_proto::JobId, timeout: Duration) -> Event {
        if let Some(done) = self
            .events
            .iter()
            .find(|e| e.job_id.as_ref() == Some(job_id) && e.is_terminal())
        {
            return done.clone();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.subscriber.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no terminal event for {job_id} within {timeout:?}; got {:#?}",
                        self.events
                    )
                })
                .expect("event subscription ended");
            let event = Event::from_slice(&message.payload).expect("events parse");
            let done = event.job_id.as_ref() == Some(job_id) && event.is_terminal();
            self.events.push(event.clone());
            if done {
                return event;
            }
        }
    }

    /// Wait (bounded) until `job_id` reports `started`.
    pub async fn started(&mut self, job_id: &hostkit_proto::JobId, timeout: Duration) {
        let is_start = |e: &Event| {
            e.job_id.as_ref() == Some(job_id)
                && matches!(e.kind, hostkit_proto::EventKind::Started { .. })
        };
        if self.events.iter().any(is_start) {
            return;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let message = tokio::time::timeout_at(deadline, self.subscriber.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "{job_id} did not start within {timeout:?}; got {:#?}",
                        self.events
                    )
                })
                .expect("event subscription ended");
            let event = Event::from_slice(&message.payload).expect("events parse");
            let started = is_start(&event);
            self.events.push(event);
            if started {
                return;
            }
        }
    }

    /// Collect whatever arrives during `period`.
    pub async fn collect_for(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(Some(message)) =
            tokio::time::timeout_at(deadline, self.subscriber.next()).await
        {
            self.events
                .push(Event::from_slice(&message.payload).expect("events parse"));
        }
    }

    /// The events of `job_id` received so far, in order.
    pub fn of(&self, job_id: &hostkit_proto::JobId) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|e| e.job_id.as_ref() == Some(job_id))
            .collect()
    }
}

/// Put a tarball into the image object store under its content name
/// (`sha256-<hex>`), streaming it; answers the job's image source.
pub async fn upload_tarball(
    js: &jetstream::Context,
    names: &Names,
    path: &std::path::Path,
) -> hostkit_proto::job::ImageSource {
    upload_tarball_to(js, &names.images_bucket(), path).await
}

/// [`upload_tarball`] into `bucket` (a tenant's private image bucket).
pub async fn upload_tarball_to(
    js: &jetstream::Context,
    bucket: &str,
    path: &std::path::Path,
) -> hostkit_proto::job::ImageSource {
    use sha2::Digest;
    use tokio::io::AsyncReadExt;
    let mut file = tokio::fs::File::open(path).await.expect("open the tarball");
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buffer).await.expect("read the tarball");
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        size += n as u64;
    }
    let object = hostkit_proto::ImageObjectName::from_sha256_hex(&hex::encode(hasher.finalize()))
        .expect("a sha256 object name");
    let store = js
        .get_object_store(bucket)
        .await
        .expect("the image bucket exists (the worker creates it)");
    let mut file = tokio::fs::File::open(path).await.expect("open the tarball");
    store
        .put(object.as_str(), &mut file)
        .await
        .expect("upload the tarball");
    hostkit_proto::job::ImageSource::Object { object, size }
}

/// Put a `docker save` tarball into `bucket` blob by blob, as the CLI
/// does (DESIGN §11): only blobs the bucket lacks are stored. Answers the
/// job's layered image source and the bytes stored.
pub async fn upload_layers(
    js: &jetstream::Context,
    bucket: &str,
    path: &std::path::Path,
) -> (hostkit_proto::job::ImageSource, u64) {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let owned = path.to_owned();
    let split = tokio::task::spawn_blocking(move || hostkit_deploy::images::split::split(&owned))
        .await
        .expect("split task")
        .expect("read the tarball")
        .expect("a docker save tarball");
    let store = js
        .get_object_store(bucket)
        .await
        .expect("the image bucket exists (the worker creates it)");
    let mut stored = 0;
    for (hex, &(offset, size)) in &split.blobs {
        let name = hostkit_deploy::images::split::object_name(hex);
        if store.info(name.as_str()).await.is_ok() {
            continue;
        }
        let mut file = tokio::fs::File::open(path).await.expect("open the tarball");
        file.seek(std::io::SeekFrom::Start(offset))
            .await
            .expect("seek");
        store
            .put(name.as_str(), &mut file.take(size))
            .await
            .expect("upload a blob");
        stored += size;
    }
    (
        hostkit_proto::job::ImageSource::Layers {
            layers: split.images,
        },
        stored,
    )
}

/// The `hostkit-worker` binary next to the test binary (built by
/// `cargo nextest run --workspace` / `cargo build -p hostkit-worker`): in
/// `target/<profile>/`, the parent of a test binary's `deps/`, or the
/// directory of a binary target such as `bench-worker`.
pub fn worker_binary() -> std::path::PathBuf {
    workspace_binary("hostkit-worker")
}

/// The `hostkit` CLI binary, found as [`worker_binary`] is.
pub fn cli_binary() -> std::path::PathBuf {
    workspace_binary("hostkit")
}

/// Binary `name` (built by the package of the same name), next to the
/// running test binary.
fn workspace_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let exe_dir = exe.parent().expect("the test binary's directory");
    let beside = exe_dir.join(name);
    if beside.exists() {
        return beside;
    }
    let profile_dir = exe_dir
        .parent()
        .expect("target/<profile>/deps/<test binary>");
    let binary = profile_dir.join(name);
    assert!(
        binary.exists(),
        "{} is missing: build it first (`cargo build -p {name}`; `cargo nextest run --workspace` does)",
        binary.display()
    );
    binary
}

/// A `hostkit-worker` process with its own config file: for what only a
/// real process shows (SIGKILL, SIGTERM).
#[derive(Debug)]
pub struct WorkerProcess {
    /// The node id.
    pub node: NodeId,
    /// The config file.
    pub config: std::path::PathBuf,
    dir: tempfile::TempDir,
    urls: Vec<String>,
    child: Option<std::process::Child>,
}

impl WorkerProcess {
    /// Write a config for `nats` and `nginx` and start the binary.
    pub async fn start(nats: &TestNats, docker: &TestDocker, nginx: &TestNginx) -> WorkerProcess {
        let node: NodeId = format!("proc-{}", &docker.id()[..10])
            .parse()
            .expect("valid node id");
        Self::start_node(&[nats.url()], node, nginx, "").await
    }

    /// Write a config for node `node` on the NATS servers `urls` (all of a
    /// cluster's) and `nginx`, with `extra` TOML appended (e.g. a
    /// `[streams]` section), and start the binary.
    pub async fn start_node(
        urls: &[String],
        node: NodeId,
        nginx: &TestNginx,
        extra: &str,
    ) -> WorkerProcess {
        let dir = tempfile::tempdir().expect("worker dir");
        let start = crate::util::free_port_block(100);
        let quote = |argv: Vec<String>| {
            argv.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let text = format!(
            r#"node = "{node}"
data_dir = "{data}"
domains_root = "{domains}"

[nats]
urls = [{urls}]

[proxy]
enabled = true
conf_dir = "{conf_dir}"
test_command = [{test}]
reload_command = [{reload}]
listen = "{listen}"

[ports]
start = {start}
end = {end}
block_size = 10

[jobs]
health_timeout = "30s"
drain_time = "300ms"
shutdown_grace = "30s"
{extra}
"#,
            data = dir.path().join("data").display(),
            domains = dir.path().join("domains").display(),
            urls = quote(urls.to_vec()),
            conf_dir = nginx.conf_dir().display(),
            test = quote(nginx.test_command()),
            reload = quote(nginx.reload_command()),
            listen = nginx.listen(),
            end = start + 99,
        );
        let config = dir.path().join("worker.toml");
        std::fs::write(&config, text).expect("write worker.toml");
        let mut worker = WorkerProcess {
            node,
            config,
            dir,
            urls: urls.to_vec(),
            child: None,
        };
        worker.spawn().await;
        worker
    }

    /// Start the process (again) and wait until its consumer exists.
    pub async fn spawn(&mut self) {
        let log = std::fs::File::create(self.dir.path().join("worker.log")).expect("worker log");
        let child = std::process::Command::new(worker_binary())
            .arg("--config")
            .arg(&self.config)
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .expect("start hostkit-worker");
        self.child = Some(child);
        let client = async_nats::connect(self.urls.clone())
            .await
            .expect("connect to NATS to watch the worker start");
        wait_for_consumer_of(&client, &Names::default(), &self.node).await;
        let log_path = self.dir.path().join("worker.log");
        crate::wait_until(
            Duration::from_secs(30),
            "the worker process says it is online",
            async || {
                std::fs::read_to_string(&log_path).is_ok_and(|log| log.contains("worker online"))
            },
        )
        .await;
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then wait for the exit; answers the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let pid = rustix::process::Pid::from_child(&child);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        child.wait().ok()
    }

    /// The process id of the running worker (`None` once it was killed or
    /// terminated): for reading `/proc/<pid>/status`.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// The worker's `data_dir` (its SQLite database lives there).
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    /// What the process logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("worker.log")).unwrap_or_default()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
