//! The shipped NATS server configuration (`dist/nats-server.conf`, loaded
//! as is, with test passwords for its variables and the TLS files of
//! `scripts/nats-tls.sh`) against a real nats-server: every role can do its
//! job, every denial of DESIGN §6 holds, and no client gets in without TLS
//! and the server's CA.
//!
//! A denial is proven twice: the server answers the client with a
//! `Permissions Violation for Publish/Subscription to "<subject>"` error,
//! and the message never arrives (an `admin` observer subscribed to the
//! subject sees nothing, a denied subscriber receives nothing, a denied
//! JetStream API request gets no answer and changes nothing). Each
//! assertion waits for the violation, so it fails if the permission were
//! granted.

use std::time::Duration;

use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::stream::{self, RetentionPolicy, StorageType};
use async_nats::jetstream::{self, AckKind, kv, object_store};
use async_nats::{Client, ConnectOptions, Event, Subscriber};
use futures_util::StreamExt as _;
use hostkit_proto::subjects::settings;
use hostkit_proto::{ControlVerb, Domain, JobId, Names, NodeId};
use hostkit_tests::shipped::{ShippedNats, password};
use tokio::io::AsyncReadExt as _;
use tokio::sync::{Mutex, mpsc};
use tokio::time::timeout;

/// The private image bucket of the shipped tenant `ci-example-com`.
const TENANT_BUCKET: &str = "hostkit_images_example_com";

/// How long to wait for something that must happen.
const WAIT: Duration = Duration::from_secs(5);
/// How long to watch for something that must not happen.
const SILENCE: Duration = Duration::from_millis(300);

/// The inbox prefix each role uses (see the head of the shipped file);
/// the workers' is hostkit-worker's default `_INBOX_worker_<node>`.
fn inbox_prefix(user: &str) -> Option<String> {
    match user {
        "dashboard" => Some("_INBOX_dashboard".to_owned()),
        // Not CI's `_INBOX.`, so that CI's inboxes carry only CI's traffic.
        "admin" => Some("_INBOX_admin".to_owned()),
        worker if worker.starts_with("worker-") => Some(format!(
            "_INBOX_worker_{}",
            worker.trim_start_matches("worker-")
        )),
        _ => None,
    }
}

/// One client connection, with the server errors it was sent.
struct Conn {
    user: &'static str,
    client: Client,
    errors: Mutex<mpsc::UnboundedReceiver<String>>,
}

impl Conn {
    async fn connect(server: &ShippedNats, user: &'static str) -> Conn {
        let nats = &server.nats;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut options = server
            .options(user)
            .request_timeout(Some(Duration::from_secs(2)))
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    if let Event::ServerError(e) = event {
                        let _ = tx.send(e.to_string());
                    }
                }
            });
        if let Some(prefix) = inbox_prefix(user) {
            options = options.custom_inbox_prefix(prefix);
        }
        let client = nats
            .connect_with(options)
            .await
            .unwrap_or_else(|e| panic!("{user} cannot connect: {e}\n{}", nats.log_tail()));
        Conn {
            user,
            client,
            errors: Mutex::new(rx),
        }
    }

    /// A round trip to the server: everything this connection sent before
    /// (subscriptions above all) has been processed when it returns.
    /// (`flush` only empties the client's write buffer.)
    async fn sync(&self) {
        self.js()
            .query_account()
            .await
            .unwrap_or_else(|e| panic!("{}: account info: {e}", self.user));
    }

    fn js(&self) -> jetstream::Context {
        let mut js = jetstream::new(self.client.clone());
        js.set_timeout(Duration::from_secs(2));
        js
    }

    /// Waits for the server's permission violation for `op` on `subject`.
    async fn violation(&self, op: &str, subject: &str) {
        let want = format!("Permissions Violation for {op} to \"{subject}\"");
        let mut errors = self.errors.lock().await;
        let mut seen = Vec::new();
        let found = timeout(WAIT, async {
            while let Some(error) = errors.recv().await {
                if error.contains(&want) {
                    return true;
                }
                seen.push(error);
            }
            false
        })
        .await;
        assert!(
            matches!(found, Ok(true)),
            "{}: expected `{want}`, but the server allowed it (other errors: {seen:?})",
            self.user
        );
    }

    /// Asserts the server reported no violation to this client so far.
    async fn no_violation(&self) {
        self.sync().await;
        tokio::time::sleep(SILENCE).await;
        let mut errors = self.errors.lock().await;
        let mut seen = Vec::new();
        while let Ok(error) = errors.try_recv() {
            seen.push(error);
        }
        assert!(seen.is_empty(), "{}: unexpected errors {seen:?}", self.user);
    }

    /// Publishes `subject` and asserts it is denied and not delivered.
    async fn denied_publish(&self, observer: &Conn, subject: &str) {
        let mut watch = observer.client.subscribe(subject.to_owned()).await.unwrap();
        observer.sync().await;
        self.client
            .publish(subject.to_owned(), "denied?".into())
            .await
            .unwrap();
        self.sync().await;
        self.violation("Publish", subject).await;
        nothing_arrives(&mut watch, &format!("{} publishing {subject}", self.user)).await;
    }

    /// Sends a request to `subject` and asserts it is denied and unanswered.
    async fn denied_request(&self, subject: &str, payload: &'static str) {
        let request = async_nats::Request::new()
            .payload(payload.into())
            .timeout(Some(SILENCE));
        let answer = self.client.send_request(subject.to_owned(), request).await;
        self.violation("Publish", subject).await;
        assert!(
            answer.is_err(),
            "{}: request to {subject} was answered: {:?}",
            self.user,
            answer.map(|m| m.payload)
        );
    }

    /// Subscribes `subject`; asserts it is denied and that a message
    /// `observer` publishes there does not arrive.
    async fn denied_subscribe(&self, observer: &Conn, subject: &str, publish_on: &str) {
        let mut sub = self.client.subscribe(subject.to_owned()).await.unwrap();
        self.sync().await;
        self.violation("Subscription", subject).await;
        // A probe on a job subject lands in the jobs stream: publish it
        // through JetStream and remove it again afterwards.
        let names = Names::default();
        let probe = if publish_on.starts_with(&format!("{}.jobs.", names.root())) {
            let ack = observer
                .js()
                .publish(publish_on.to_owned(), "probe".into())
                .await
                .unwrap()
                .await
                .unwrap();
            Some(ack.sequence)
        } else {
            observer
                .client
                .publish(publish_on.to_owned(), "secret".into())
                .await
                .unwrap();
            observer.sync().await;
            None
        };
        nothing_arrives(&mut sub, &format!("{} subscribed to {subject}", self.user)).await;
        if let Some(sequence) = probe {
            let deleted = observer
                .js()
                .get_stream(names.jobs_stream())
                .await
                .unwrap()
                .delete_message(sequence)
                .await
                .unwrap();
            assert!(deleted, "the probe job is removed");
        }
    }
}

async fn nothing_arrives(sub: &mut Subscriber, what: &str) {
    if let Ok(Some(message)) = timeout(SILENCE, sub.next()).await {
        panic!("{what}: {} arrived", message.subject);
    }
}

async fn next_message(sub: &mut Subscriber, what: &str) -> async_nats::Message {
    match timeout(WAIT, sub.next()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("{what}: the subscription closed"),
        Err(_) => panic!("{what}: nothing arrived within {WAIT:?}"),
    }
}

/// A server with the shipped configuration whose streams, buckets and
/// consumers were set up by the workers themselves (proving that their
/// rights suffice for the startup hostkit-worker does).
struct Fleet {
    nats: ShippedNats,
    names: Names,
    vps1: NodeId,
    vps2: NodeId,
    domain: Domain,
    admin: Conn,
}

impl Fleet {
    async fn start() -> Fleet {
        let nats = ShippedNats::start().await;
        let admin = Conn::connect(&nats, "admin").await;
        let fleet = Fleet {
            names: Names::default(),
            vps1: "vps-1".parse().unwrap(),
            vps2: "vps-2".parse().unwrap(),
            domain: Domain::parse("example.com").unwrap(),
            admin,
            nats,
        };
        let w1 = fleet.conn("worker-vps-1").await;
        fleet.setup_as_worker(&w1, &fleet.vps1).await;
        let w2 = fleet.conn("worker-vps-2").await;
        fleet.setup_as_worker(&w2, &fleet.vps2).await;
        w1.no_violation().await;
        w2.no_violation().await;
        fleet
    }

    async fn conn(&self, user: &'static str) -> Conn {
        Conn::connect(&self.nats, user).await
    }

    /// What a worker does at startup: create (or find) the streams, the
    /// image store, the KV buckets and its own durable consumer.
    async fn setup_as_worker(&self, worker: &Conn, node: &NodeId) {
        let js = worker.js();
        let names = &self.names;
        let what = |w: &str| format!("{} creating {w}", worker.user);
        js.get_or_create_stream(stream::Config {
            name: names.jobs_stream(),
            subjects: vec![names.jobs_all()],
            retention: RetentionPolicy::WorkQueue,
            storage: StorageType::File,
            duplicate_window: settings::JOBS_DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", what("the jobs stream")));
        js.get_or_create_stream(stream::Config {
            name: names.events_stream(),
            subjects: names.events_stream_subjects(),
            retention: RetentionPolicy::Limits,
            storage: StorageType::File,
            max_age: settings::EVENTS_MAX_AGE,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", what("the events stream")));
        for bucket in [names.images_bucket(), TENANT_BUCKET.to_owned()] {
            if js.get_object_store(&bucket).await.is_err() {
                js.create_object_store(object_store::Config {
                    bucket: bucket.clone(),
                    max_age: settings::IMAGES_MAX_AGE,
                    storage: StorageType::File,
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", what(&bucket)));
            }
        }
        for bucket in [names.placement_bucket(), names.nodes_bucket()] {
            if js.get_key_value(&bucket).await.is_err() {
                js.create_key_value(kv::Config {
                    bucket: bucket.clone(),
                    storage: StorageType::File,
                    ..Default::default()
                })
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", what(&bucket)));
            }
        }
        let jobs = js.get_stream(names.jobs_stream()).await.unwrap();
        jobs.create_consumer(pull::Config {
            durable_name: Some(names.jobs_consumer(node)),
            filter_subject: names.jobs_filter(node),
            ack_policy: AckPolicy::Explicit,
            ack_wait: settings::JOBS_ACK_WAIT,
            max_deliver: settings::JOBS_MAX_DELIVER,
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", what("its consumer")));
    }

    fn job_subject(&self, node: &NodeId) -> String {
        self.names.jobs_subject(node, &self.domain)
    }

    /// CI publishes a job for `node` into the jobs stream.
    async fn publish_job(&self, ci: &Conn, node: &NodeId) -> JobId {
        let id = JobId::new();
        let ack = ci
            .js()
            .send_publish(
                self.job_subject(node),
                jetstream::message::PublishMessage::build()
                    .message_id(id.to_string())
                    .payload(format!("{{\"id\":\"{id}\"}}").into()),
            )
            .await
            .expect("CI publishes a job")
            .await
            .expect("the jobs stream stores it");
        assert_eq!(ack.stream, self.names.jobs_stream());
        id
    }

    /// Messages waiting in the jobs stream.
    async fn jobs_waiting(&self) -> u64 {
        let mut stream = self
            .admin
            .js()
            .get_stream(self.names.jobs_stream())
            .await
            .unwrap();
        stream.info().await.unwrap().state.messages
    }
}

#[tokio::test]
async fn permissions_refuse_clients_without_valid_credentials() {
    let server = ShippedNats::start().await;
    let nats = &server.nats;
    let tls = |options: ConnectOptions| options.add_root_certificates(server.ca());
    assert!(
        nats.connect_with(tls(ConnectOptions::new())).await.is_err(),
        "an anonymous client must be refused"
    );
    let wrong = ConnectOptions::with_user_and_password("ci".into(), "wrong".into());
    assert!(
        nats.connect_with(tls(wrong)).await.is_err(),
        "a wrong password must be refused"
    );
    let as_other = ConnectOptions::with_user_and_password(
        "worker-vps-1".into(),
        password("worker-vps-2").into(),
    );
    assert!(
        nats.connect_with(tls(as_other)).await.is_err(),
        "another user's password must be refused"
    );
    nats.connect_with(server.options("ci"))
        .await
        .expect("the right password over TLS is accepted");
}

/// The shipped server speaks TLS only: a client that sends its password
/// in the clear is refused before it is read, and a client that does not
/// trust the server's CA (the system's roots, or another private CA)
/// refuses the server, so a man in the middle learns no password.
#[tokio::test]
async fn permissions_clients_must_speak_tls_and_check_the_servers_certificate() {
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

    let server = ShippedNats::start().await;
    let nats = &server.nats;

    // In the clear, by hand: the server announces TLS and refuses CONNECT.
    let stream = tokio::net::TcpStream::connect(("127.0.0.1", nats.port()))
        .await
        .expect("TCP connect");
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let info = timeout(WAIT, lines.next_line())
        .await
        .expect("INFO in time")
        .expect("read INFO")
        .expect("an INFO line");
    assert!(info.contains("\"tls_required\":true"), "{info}");
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":false,\"user\":\"ci\",\"pass\":\"{}\"}}\r\nPING\r\n",
        password("ci")
    );
    // The server may close before it reads everything: errors are fine.
    let _ = write.write_all(connect.as_bytes()).await;
    let mut answers = Vec::new();
    let closed = timeout(WAIT, async {
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => answers.push(line),
                // End of stream, or a reset: the server hung up.
                Ok(None) | Err(_) => return,
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a client in the clear connected: {answers:?}"
    );
    assert!(
        !answers
            .iter()
            .any(|l| l.starts_with("PONG") || l.starts_with("+OK")),
        "a client in the clear was served: {answers:?}"
    );

    // Over TLS without the server's CA (system roots), and trusting
    // another private CA: the client refuses the server.
    let elsewhere = tempfile::tempdir().unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats-tls.sh");
    let made = std::process::Command::new("bash")
        .arg(&script)
        .arg(elsewhere.path())
        .output()
        .expect("run nats-tls.sh");
    assert!(made.status.success(), "{made:?}");
    let ci = || {
        ConnectOptions::with_user_and_password("ci".into(), password("ci").into()).require_tls(true)
    };
    for (what, options) in [
        ("the system's roots", ci()),
        (
            "another CA",
            ci().add_root_certificates(elsewhere.path().join("ca.pem")),
        ),
    ] {
        let error = nats
            .connect_with(options)
            .await
            .err()
            .unwrap_or_else(|| panic!("a client trusting {what} connected"));
        assert!(
            format!("{error:?}").to_lowercase().contains("certificate")
                || format!("{error:?}").to_lowercase().contains("tls"),
            "{what}: {error:?}"
        );
    }
    nats.connect_with(server.options("ci"))
        .await
        .expect("with the server's CA the client connects");
}

#[tokio::test]
async fn permissions_ci_publishes_jobs_uploads_images_requests_control_and_nothing_else() {
    let fleet = Fleet::start().await;
    let ci = fleet.conn("ci").await;
    let worker = fleet.conn("worker-vps-1").await;
    let names = &fleet.names;
    let admin = &fleet.admin;

    // --- allowed ---------------------------------------------------------
    // A job for any node.
    fleet.publish_job(&ci, &fleet.vps1).await;
    fleet.publish_job(&ci, &fleet.vps2).await;
    assert_eq!(fleet.jobs_waiting().await, 2);

    // An image upload, twice (the second replaces the object's chunks,
    // which purges the old ones).
    let images = ci
        .js()
        .get_object_store(names.images_bucket())
        .await
        .expect("CI opens the image store");
    let blob = vec![7u8; 3 * settings::IMAGES_CHUNK_SIZE / 2];
    let object = names
        .image_object_name(&"ab".repeat(32))
        .unwrap()
        .to_string();
    for _ in 0..2 {
        let meta = object_store::ObjectMetadata {
            name: object.clone(),
            chunk_size: Some(settings::IMAGES_CHUNK_SIZE),
            ..Default::default()
        };
        images
            .put(meta, &mut blob.as_slice())
            .await
            .expect("CI uploads an image blob");
    }
    assert_eq!(images.info(&object).await.unwrap().size, blob.len());

    // Placement: read what a worker wrote.
    let placement = worker
        .js()
        .get_key_value(names.placement_bucket())
        .await
        .unwrap();
    placement
        .put(
            names.placement_key(&fleet.domain, &fleet.vps1),
            "vps-1".into(),
        )
        .await
        .expect("a worker writes placement");
    let read = ci
        .js()
        .get_key_value(names.placement_bucket())
        .await
        .expect("CI opens the placement bucket")
        .get(names.placement_key(&fleet.domain, &fleet.vps1))
        .await
        .expect("CI reads placement");
    assert_eq!(read.as_deref(), Some(&b"vps-1"[..]));

    // Control: a request answered by the node's worker, with several
    // replies (as `logs` streams them).
    let mut requests = worker
        .client
        .subscribe(names.ctl_filter(&fleet.vps1))
        .await
        .unwrap();
    worker.sync().await;
    let replier = tokio::spawn(async move {
        let request = requests.next().await.expect("a control request");
        let reply = request.reply.expect("a reply subject");
        for line in ["one", "two", "three"] {
            worker
                .client
                .publish(reply.clone(), line.into())
                .await
                .unwrap();
        }
        worker.sync().await;
        worker
    });
    let inbox = ci.client.new_inbox();
    let mut replies = ci.client.subscribe(inbox.clone()).await.unwrap();
    ci.client
        .publish_with_reply(
            names.ctl(&fleet.vps1, ControlVerb::Logs),
            inbox,
            "{}".into(),
        )
        .await
        .unwrap();
    for line in ["one", "two", "three"] {
        let reply = next_message(&mut replies, "a control reply").await;
        assert_eq!(reply.payload, line.as_bytes());
    }
    let worker = replier.await.unwrap();
    worker.no_violation().await;

    // Events: subscribe and receive.
    let mut events = ci.client.subscribe(names.events_all()).await.unwrap();
    ci.sync().await;
    let event_subject = names.job_events(&fleet.domain, &JobId::new());
    worker
        .client
        .publish(event_subject.clone(), "{}".into())
        .await
        .unwrap();
    worker.sync().await;
    assert_eq!(
        next_message(&mut events, "CI following events")
            .await
            .subject
            .as_str(),
        event_subject
    );
    ci.no_violation().await;

    // --- denied ----------------------------------------------------------
    // Events and node events are the workers' to publish.
    ci.denied_publish(admin, &event_subject).await;
    ci.denied_publish(admin, &names.health_events(&fleet.domain, "web"))
        .await;
    ci.denied_publish(
        admin,
        &names.node_event(&fleet.vps1, hostkit_proto::subjects::NodeEvent::Heartbeat),
    )
    .await;
    // Placement and the node registry are the workers' to write.
    ci.denied_publish(
        admin,
        &format!(
            "$KV.{}.{}",
            names.placement_bucket(),
            names.placement_key(&fleet.domain, &fleet.vps1)
        ),
    )
    .await;
    ci.denied_publish(admin, &format!("$KV.{}.vps-1", names.nodes_bucket()))
        .await;
    // CI cannot act as a worker: not pull a node's jobs, not ack them,
    // not subscribe to the jobs or to a node's control subjects.
    ci.denied_request(
        &format!(
            "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
            names.jobs_stream(),
            names.jobs_consumer(&fleet.vps1)
        ),
        "{\"batch\":1}",
    )
    .await;
    ci.denied_publish(
        admin,
        &format!(
            "$JS.ACK.{}.{}.1.1.1.1.0",
            names.jobs_stream(),
            names.jobs_consumer(&fleet.vps1)
        ),
    )
    .await;
    ci.denied_subscribe(admin, &names.jobs_all(), &fleet.job_subject(&fleet.vps1))
        .await;
    ci.denied_subscribe(
        admin,
        &names.ctl_filter(&fleet.vps1),
        &names.ctl(&fleet.vps1, ControlVerb::Status),
    )
    .await;
    // Nor read the jobs stream, make consumers on it or change it.
    ci.denied_request(
        &format!("$JS.API.STREAM.MSG.GET.{}", names.jobs_stream()),
        "{\"seq\":1}",
    )
    .await;
    ci.denied_request(
        &format!(
            "$JS.API.CONSUMER.CREATE.{}.spy.{}",
            names.jobs_stream(),
            names.jobs_all()
        ),
        "{}",
    )
    .await;
    ci.denied_request(
        &format!("$JS.API.STREAM.PURGE.{}", names.jobs_stream()),
        "{}",
    )
    .await;
    ci.denied_request(
        &format!("$JS.API.STREAM.DELETE.{}", names.jobs_stream()),
        "",
    )
    .await;
    ci.denied_request(
        &format!("$JS.API.STREAM.DELETE.{}", names.events_stream()),
        "",
    )
    .await;
    // Nor read the workers' inboxes.
    ci.denied_subscribe(admin, "_INBOX_worker_vps-1.>", "_INBOX_worker_vps-1.x")
        .await;
    // Nothing was consumed or removed by any of that.
    assert_eq!(fleet.jobs_waiting().await, 2);
}

/// The tenant block `hostkit admin nats-user --domain example.com` prints
/// (shipped as `ci-example-com`): example.com's jobs, events and control
/// requests, nobody else's.
#[tokio::test]
async fn permissions_a_tenants_ci_acts_on_its_own_domain_only() {
    let fleet = Fleet::start().await;
    let tenant = fleet.conn("ci-example-com").await;
    let names = &fleet.names;
    let admin = &fleet.admin;
    let other: Domain = Domain::parse("other.test").unwrap();

    // Allowed: its own jobs, events, domain-scoped control requests,
    // placement of its domain, image uploads.
    fleet.publish_job(&tenant, &fleet.vps1).await;
    let mut own_events = tenant
        .client
        .subscribe(format!(
            "{}.events.{}.>",
            names.root(),
            fleet.domain.token()
        ))
        .await
        .unwrap();
    tenant.sync().await;
    admin
        .client
        .publish(
            names.job_events_all(&fleet.domain).replace('*', "x"),
            "e".into(),
        )
        .await
        .unwrap();
    next_message(&mut own_events, "its own domain's event").await;
    let images = tenant
        .js()
        .get_object_store(TENANT_BUCKET)
        .await
        .expect("the tenant opens its own image bucket");
    let object = names
        .image_object_name(&"cd".repeat(32))
        .unwrap()
        .to_string();
    images
        .put(object.as_str(), &mut b"blob".as_slice())
        .await
        .expect("the tenant uploads a blob");
    // Its workers read the private bucket and may delete a bad blob.
    let w1 = fleet.conn("worker-vps-1").await;
    let w1_images = w1.js().get_object_store(TENANT_BUCKET).await.unwrap();
    let mut read = Vec::new();
    w1_images
        .get(object.as_str())
        .await
        .expect("a worker opens a tenant's blob")
        .read_to_end(&mut read)
        .await
        .unwrap();
    assert_eq!(read, b"blob");
    tenant
        .client
        .publish(
            names.ctl_for(&fleet.vps1, ControlVerb::Services, Some(&fleet.domain)),
            "{}".into(),
        )
        .await
        .unwrap();
    admin
        .js()
        .get_key_value(names.placement_bucket())
        .await
        .unwrap()
        .put(
            names.placement_key(&fleet.domain, &fleet.vps1),
            "vps-1".into(),
        )
        .await
        .unwrap();
    let placed = tenant
        .js()
        .get_key_value(names.placement_bucket())
        .await
        .expect("the tenant opens the placement bucket")
        .get(names.placement_key(&fleet.domain, &fleet.vps1))
        .await
        .expect("the tenant reads its domain's placement");
    assert_eq!(placed.as_deref(), Some(&b"vps-1"[..]));
    tenant.no_violation().await;

    // Denied: the shared image bucket (another tenant's images), and for
    // everybody but the tenant and the workers, its private bucket.
    tenant
        .denied_publish(admin, &format!("$O.{}.C.x", names.images_bucket()))
        .await;
    tenant
        .denied_request(
            &format!("$JS.API.STREAM.PURGE.OBJ_{}", names.images_bucket()),
            "{}",
        )
        .await;
    tenant
        .denied_request(
            &format!("$JS.API.DIRECT.GET.OBJ_{}.x", names.images_bucket()),
            "",
        )
        .await;
    let ci = fleet.conn("ci").await;
    ci.denied_request(
        &format!("$JS.API.DIRECT.GET.OBJ_{TENANT_BUCKET}.$O.{TENANT_BUCKET}.M.x"),
        "",
    )
    .await;
    ci.denied_request(&format!("$JS.API.STREAM.PURGE.OBJ_{TENANT_BUCKET}"), "{}")
        .await;
    ci.denied_publish(admin, &format!("$O.{TENANT_BUCKET}.C.x"))
        .await;
    w1.denied_publish(admin, &format!("$O.{TENANT_BUCKET}.C.x"))
        .await;

    // Denied: another domain's jobs, events, control and placement;
    // control without a domain (status of the whole node, ping, imports).
    tenant
        .denied_request(
            &format!(
                "$JS.API.DIRECT.GET.KV_{0}.$KV.{0}.{1}",
                names.placement_bucket(),
                names.placement_key(&other, &fleet.vps1)
            ),
            "",
        )
        .await;
    tenant
        .denied_publish(admin, &names.jobs_subject(&fleet.vps1, &other))
        .await;
    tenant
        .denied_subscribe(
            admin,
            &format!("{}.events.{}.>", names.root(), other.token()),
            &format!("{}.events.{}.job.x", names.root(), other.token()),
        )
        .await;
    tenant
        .denied_request(
            &names.ctl_for(&fleet.vps1, ControlVerb::Logs, Some(&other)),
            "{}",
        )
        .await;
    tenant
        .denied_request(&names.ctl(&fleet.vps1, ControlVerb::Status), "{}")
        .await;
    tenant
        .denied_request(&names.ctl(&fleet.vps1, ControlVerb::Imports), "{}")
        .await;
}

#[tokio::test]
async fn permissions_a_worker_consumes_only_its_node_and_publishes_only_its_events() {
    let fleet = Fleet::start().await;
    let ci = fleet.conn("ci").await;
    let w1 = fleet.conn("worker-vps-1").await;
    let w2 = fleet.conn("worker-vps-2").await;
    let names = &fleet.names;
    let admin = &fleet.admin;

    fleet.publish_job(&ci, &fleet.vps1).await;
    fleet.publish_job(&ci, &fleet.vps2).await;
    let image = names
        .image_object_name(&"cd".repeat(32))
        .unwrap()
        .to_string();
    let blob = vec![3u8; settings::IMAGES_CHUNK_SIZE + 1000];
    ci.js()
        .get_object_store(names.images_bucket())
        .await
        .unwrap()
        .put(image.as_str(), &mut blob.as_slice())
        .await
        .unwrap();

    // CI listens on its own inbox namespace: nothing a worker pulls or is
    // answered goes there.
    let mut ci_inboxes = ci.client.subscribe("_INBOX.>").await.unwrap();
    ci.sync().await;
    // The round trip's own answer came through CI's inbox too.
    while let Ok(Some(_)) = timeout(SILENCE, ci_inboxes.next()).await {}

    // --- denied (before the rightful owners touch anything) ----------------
    let consumer1 = names.jobs_consumer(&fleet.vps1);
    let jobs = names.jobs_stream();
    // worker-vps-2 cannot pull vps-1's jobs ...
    w2.denied_request(
        &format!("$JS.API.CONSUMER.MSG.NEXT.{jobs}.{consumer1}"),
        "{\"batch\":1}",
    )
    .await;
    // ... nor make itself a consumer over them, under another name or
    // under its own name with vps-1's filter ...
    let spy = w2
        .js()
        .get_stream(&jobs)
        .await
        .expect("a worker reads the jobs stream's info")
        .create_consumer(pull::Config {
            durable_name: Some(names.jobs_consumer(&fleet.vps2)),
            filter_subject: names.jobs_filter(&fleet.vps1),
            ..Default::default()
        })
        .await;
    w2.violation(
        "Publish",
        &format!(
            "$JS.API.CONSUMER.CREATE.{jobs}.{}.{}",
            names.jobs_consumer(&fleet.vps2),
            names.jobs_filter(&fleet.vps1)
        ),
    )
    .await;
    assert!(
        spy.is_err(),
        "worker-vps-2 made a consumer over vps-1's jobs"
    );
    // ... not even by sending vps-1's filter to the subject it may use
    // (the server checks the filter in the body against the subject) ...
    let own_create = format!(
        "$JS.API.CONSUMER.CREATE.{jobs}.{}.{}",
        names.jobs_consumer(&fleet.vps2),
        names.jobs_filter(&fleet.vps2)
    );
    let mut config = fleet
        .admin
        .js()
        .get_stream(&jobs)
        .await
        .unwrap()
        .consumer_info(names.jobs_consumer(&fleet.vps2))
        .await
        .unwrap()
        .config;
    config.filter_subject = names.jobs_filter(&fleet.vps1);
    let body = serde_json::json!({ "stream_name": jobs, "config": config });
    let answer = w2
        .client
        .request(own_create, serde_json::to_vec(&body).unwrap().into())
        .await
        .expect("the JetStream API answers");
    let answer = String::from_utf8_lossy(&answer.payload).into_owned();
    assert!(
        answer.contains("\"error\""),
        "a consumer over another node's jobs was created: {answer}"
    );
    let filter = fleet
        .admin
        .js()
        .get_stream(&jobs)
        .await
        .unwrap()
        .consumer_info(names.jobs_consumer(&fleet.vps2))
        .await
        .unwrap()
        .config
        .filter_subject;
    assert_eq!(filter, names.jobs_filter(&fleet.vps2));
    // ... nor subscribe to them, read the stream, or ack them.
    w2.denied_subscribe(
        admin,
        &names.jobs_filter(&fleet.vps1),
        &fleet.job_subject(&fleet.vps1),
    )
    .await;
    w2.denied_request(&format!("$JS.API.STREAM.MSG.GET.{jobs}"), "{\"seq\":1}")
        .await;
    w2.denied_publish(admin, &format!("$JS.ACK.{jobs}.{consumer1}.1.1.1.1.0"))
        .await;
    // Nor read another worker's inbox or control requests.
    w2.denied_subscribe(admin, "_INBOX_worker_vps-1.>", "_INBOX_worker_vps-1.x")
        .await;
    w2.denied_subscribe(
        admin,
        &names.ctl_filter(&fleet.vps1),
        &names.ctl(&fleet.vps1, ControlVerb::Status),
    )
    .await;
    // A worker publishes no jobs, no other node's heartbeats or registry
    // entry, no image blobs, changes no stream, and answers only requests
    // it received.
    w1.denied_publish(admin, &fleet.job_subject(&fleet.vps1))
        .await;
    w1.denied_publish(admin, &fleet.job_subject(&fleet.vps2))
        .await;
    w1.denied_publish(
        admin,
        &names.node_event(&fleet.vps2, hostkit_proto::subjects::NodeEvent::Heartbeat),
    )
    .await;
    w1.denied_publish(admin, &format!("$KV.{}.vps-2", names.nodes_bucket()))
        .await;
    // Nor a placement record of another node, nor one in the earlier key
    // layout: a worker cannot re-point a domain to itself (CI would then
    // send it that domain's jobs and seal their secrets to its key).
    w1.denied_publish(
        admin,
        &format!(
            "$KV.{}.{}",
            names.placement_bucket(),
            names.placement_key(&fleet.domain, &fleet.vps2)
        ),
    )
    .await;
    w1.denied_publish(
        admin,
        &format!(
            "$KV.{}.{}",
            names.placement_bucket(),
            names.legacy_placement_key(&fleet.domain)
        ),
    )
    .await;
    w1.denied_publish(admin, &format!("$O.{}.C.forged", names.images_bucket()))
        .await;
    w1.denied_publish(admin, "_INBOX.not-a-reply-to-me").await;
    w1.denied_request(&format!("$JS.API.STREAM.DELETE.{jobs}"), "")
        .await;
    w1.denied_request(&format!("$JS.API.STREAM.PURGE.{jobs}"), "{}")
        .await;
    w1.denied_request(
        &format!("$JS.API.STREAM.UPDATE.{}", names.events_stream()),
        "{}",
    )
    .await;
    w1.denied_request(
        &format!(
            "$JS.API.CONSUMER.DELETE.{jobs}.{}",
            names.jobs_consumer(&fleet.vps2)
        ),
        "",
    )
    .await;
    assert_eq!(
        fleet.jobs_waiting().await,
        2,
        "a denied action consumed a job"
    );

    // --- allowed ---------------------------------------------------------
    // Each worker pulls its own job, keeps it alive, acks it.
    for (worker, node, other) in [
        (&w1, &fleet.vps1, &fleet.vps2),
        (&w2, &fleet.vps2, &fleet.vps1),
    ] {
        let consumer: jetstream::consumer::PullConsumer = worker
            .js()
            .get_stream(&jobs)
            .await
            .unwrap()
            .get_consumer(&names.jobs_consumer(node))
            .await
            .unwrap_or_else(|e| panic!("{} opens its consumer: {e}", worker.user));
        let mut batch = consumer
            .fetch()
            .max_messages(5)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .unwrap();
        let message = timeout(WAIT, batch.next())
            .await
            .expect("a job arrives")
            .expect("a job arrives")
            .unwrap();
        assert_eq!(message.subject.as_str(), fleet.job_subject(node));
        assert!(!message.subject.contains(other.as_str()));
        message
            .ack_with(AckKind::Progress)
            .await
            .expect("in-progress ack");
        message
            .double_ack()
            .await
            .expect("the server confirms the ack");
        assert!(
            timeout(Duration::from_secs(2), batch.next())
                .await
                .ok()
                .flatten()
                .is_none(),
            "{} got a second job",
            worker.user
        );
    }
    assert_eq!(fleet.jobs_waiting().await, 0, "both jobs acked");
    nothing_arrives(&mut ci_inboxes, "a worker's pulls in CI's inboxes").await;

    // Reads the image blob CI uploaded.
    let mut object = w1
        .js()
        .get_object_store(names.images_bucket())
        .await
        .unwrap()
        .get(&image)
        .await
        .expect("a worker opens an image blob");
    let mut read = Vec::new();
    object
        .read_to_end(&mut read)
        .await
        .expect("a worker reads an image blob");
    assert_eq!(read, blob);

    // Publishes events, its heartbeat, its registry entry, placement.
    let mut events = admin.client.subscribe(">").await.unwrap();
    admin.sync().await;
    let job_events = names.job_events(&fleet.domain, &JobId::new());
    let heartbeat = names.node_event(&fleet.vps1, hostkit_proto::subjects::NodeEvent::Heartbeat);
    for subject in [&job_events, &heartbeat] {
        w1.js()
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap_or_else(|e| panic!("worker-vps-1 publishes {subject}: {e}"));
    }
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let m = next_message(&mut events, "a worker's events").await;
        if m.subject.starts_with("hostkit.") {
            seen.push(m.subject.to_string());
        }
    }
    assert_eq!(seen, [job_events, heartbeat]);
    let registry = w1.js().get_key_value(names.nodes_bucket()).await.unwrap();
    registry
        .put(names.node_key(&fleet.vps1), "{}".into())
        .await
        .expect("a worker writes its registry entry");
    w1.js()
        .get_key_value(names.placement_bucket())
        .await
        .unwrap()
        .create(
            names.placement_key(&fleet.domain, &fleet.vps1),
            "vps-1".into(),
        )
        .await
        .expect("a worker adopts a domain");
    w1.no_violation().await;
    w2.no_violation().await;
}

#[tokio::test]
async fn permissions_the_dashboard_only_reads() {
    let fleet = Fleet::start().await;
    let dashboard = fleet.conn("dashboard").await;
    let worker = fleet.conn("worker-vps-1").await;
    let names = &fleet.names;
    let admin = &fleet.admin;

    // --- allowed: live events and node events, history, node registry ------
    let mut live = dashboard
        .client
        .subscribe(names.events_all())
        .await
        .unwrap();
    let mut nodes = dashboard.client.subscribe(names.nodes_all()).await.unwrap();
    dashboard.sync().await;
    let event = names.job_events(&fleet.domain, &JobId::new());
    let heartbeat = names.node_event(&fleet.vps1, hostkit_proto::subjects::NodeEvent::Heartbeat);
    for subject in [&event, &heartbeat] {
        worker
            .js()
            .publish(subject.clone(), "{}".into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    assert_eq!(
        next_message(&mut live, "a live event")
            .await
            .subject
            .as_str(),
        event
    );
    assert_eq!(
        next_message(&mut nodes, "a live heartbeat")
            .await
            .subject
            .as_str(),
        heartbeat
    );
    let history = dashboard
        .js()
        .get_stream(names.events_stream())
        .await
        .expect("the dashboard opens the event history")
        .create_consumer(pull::OrderedConfig {
            filter_subject: names.events_all(),
            ..Default::default()
        })
        .await
        .expect("the dashboard replays the event history");
    let mut replay = history.messages().await.unwrap();
    let first = timeout(WAIT, replay.next())
        .await
        .expect("a replayed event")
        .expect("a replayed event")
        .unwrap();
    assert_eq!(first.subject.as_str(), event);
    worker
        .js()
        .get_key_value(names.nodes_bucket())
        .await
        .unwrap()
        .put(names.node_key(&fleet.vps1), "{\"v\":1}".into())
        .await
        .unwrap();
    let info = dashboard
        .js()
        .get_key_value(names.nodes_bucket())
        .await
        .expect("the dashboard opens the node registry")
        .get(names.node_key(&fleet.vps1))
        .await
        .expect("the dashboard reads the node registry");
    assert_eq!(info.as_deref(), Some(&b"{\"v\":1}"[..]));
    dashboard.no_violation().await;

    // --- denied: no job, event, node event, control request, key, object ---
    for subject in [
        fleet.job_subject(&fleet.vps1),
        event.clone(),
        names.health_events(&fleet.domain, "web"),
        heartbeat.clone(),
        names.ctl(&fleet.vps1, ControlVerb::Status),
        format!(
            "$KV.{}.{}",
            names.placement_bucket(),
            names.placement_key(&fleet.domain, &fleet.vps1)
        ),
        format!("$KV.{}.vps-1", names.nodes_bucket()),
        format!("$O.{}.M.forged", names.images_bucket()),
        format!("$O.{}.C.forged", names.images_bucket()),
    ] {
        dashboard.denied_publish(admin, &subject).await;
    }
    // No change to any stream, no consumer on the jobs, no read of them.
    for (subject, body) in [
        (
            format!("$JS.API.STREAM.DELETE.{}", names.events_stream()),
            "",
        ),
        (
            format!("$JS.API.STREAM.PURGE.{}", names.events_stream()),
            "{}",
        ),
        (
            format!("$JS.API.STREAM.UPDATE.{}", names.events_stream()),
            "{}",
        ),
        (format!("$JS.API.STREAM.DELETE.{}", names.jobs_stream()), ""),
        (
            format!(
                "$JS.API.CONSUMER.CREATE.{}.peek.{}",
                names.jobs_stream(),
                names.jobs_all()
            ),
            "{}",
        ),
        (
            format!(
                "$JS.API.CONSUMER.MSG.NEXT.{}.{}",
                names.jobs_stream(),
                names.jobs_consumer(&fleet.vps1)
            ),
            "{\"batch\":1}",
        ),
        (
            format!("$JS.API.STREAM.MSG.GET.{}", names.jobs_stream()),
            "{\"seq\":1}",
        ),
        (
            format!("$JS.API.STREAM.INFO.KV_{}", names.placement_bucket()),
            "",
        ),
    ] {
        dashboard.denied_request(&subject, body).await;
    }
    // JetStream does not check a push consumer's delivery subject against
    // its creator's publish rights (nats-server issue #8274): the dashboard
    // can aim a replay at the jobs subject or at the JetStream API. The
    // server delivers only to literal subscriptions, which neither the jobs
    // stream (`hostkit.jobs.>`) nor the API has: nothing may land there.
    let events = dashboard
        .js()
        .get_stream(names.events_stream())
        .await
        .unwrap();
    for deliver_subject in [
        fleet.job_subject(&fleet.vps1),
        format!("$JS.API.STREAM.DELETE.{}", names.jobs_stream()),
        format!("$JS.API.STREAM.PURGE.{}", names.events_stream()),
    ] {
        events
            .create_consumer(jetstream::consumer::push::Config {
                deliver_subject,
                ..Default::default()
            })
            .await
            .expect("nats-server lets a consumer creator pick any delivery subject");
    }
    tokio::time::sleep(SILENCE).await;
    assert_eq!(
        fleet.jobs_waiting().await,
        0,
        "an event was delivered as a job"
    );
    let mut history = admin.js().get_stream(names.events_stream()).await.unwrap();
    assert_eq!(
        history.info().await.unwrap().state.messages,
        2,
        "the history was purged"
    );
    // No reading jobs, control traffic or other clients' replies.
    dashboard
        .denied_subscribe(admin, &names.jobs_all(), &fleet.job_subject(&fleet.vps1))
        .await;
    dashboard
        .denied_subscribe(
            admin,
            "hostkit.ctl.>",
            &names.ctl(&fleet.vps1, ControlVerb::Logs),
        )
        .await;
    dashboard
        .denied_subscribe(admin, "_INBOX.>", "_INBOX.ci-reply")
        .await;
    dashboard
        .denied_subscribe(admin, "_INBOX_worker_vps-1.>", "_INBOX_worker_vps-1.x")
        .await;
}

/// A node's backups (its tenants' volume data) are its worker's alone: the
/// worker creates its bucket, writes, reads and deletes copies; another
/// node's worker and CI can neither read nor write them.
#[tokio::test]
async fn permissions_a_nodes_backups_are_its_workers_alone() {
    let fleet = Fleet::start().await;
    let names = &fleet.names;
    let w1 = fleet.conn("worker-vps-1").await;
    let w2 = fleet.conn("worker-vps-2").await;
    let ci = fleet.conn("ci").await;
    let bucket = names.backups_bucket(&fleet.vps1);
    let store = w1
        .js()
        .create_object_store(object_store::Config {
            bucket: bucket.clone(),
            storage: StorageType::File,
            ..Default::default()
        })
        .await
        .expect("a worker creates its backup bucket");
    let copy = vec![7u8; settings::IMAGES_CHUNK_SIZE + 10];
    store
        .put(
            "t_test.01JB9Q4T8V3C5X7N2M6K1R0A9D.data",
            &mut copy.as_slice(),
        )
        .await
        .expect("a worker writes a copy");
    let mut read = Vec::new();
    store
        .get("t_test.01JB9Q4T8V3C5X7N2M6K1R0A9D.data")
        .await
        .expect("a worker opens its copy")
        .read_to_end(&mut read)
        .await
        .expect("a worker reads its copy");
    assert_eq!(read, copy);
    w1.no_violation().await;

    // Another node's worker and CI: no read of the copy's chunks, no write.
    let stream = format!("OBJ_{bucket}");
    for other in [&w2, &ci] {
        other
            .denied_request(&format!("$JS.API.STREAM.MSG.GET.{stream}"), "{\"seq\":1}")
            .await;
        other
            .denied_request(&format!("$JS.API.DIRECT.GET.{stream}.$O.{bucket}.M.x"), "")
            .await;
        other
            .denied_request(&format!("$JS.API.STREAM.PURGE.{stream}"), "{}")
            .await;
        other
            .client
            .publish(format!("$O.{bucket}.C.forged"), "x".into())
            .await
            .unwrap();
        other
            .violation("Publish", &format!("$O.{bucket}.C.forged"))
            .await;
    }
    store
        .delete("t_test.01JB9Q4T8V3C5X7N2M6K1R0A9D.data")
        .await
        .expect("a worker deletes a pruned copy");
    w1.no_violation().await;
}
