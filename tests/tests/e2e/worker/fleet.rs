//! Fleet trust (DESIGN §6 "Across the fleet"): what one identity with
//! access to the shared NATS account can do to another domain's jobs.
//! Each test performs the attack against a real nats-server and worker.

use hostkit_proto::ErrorCode;
use hostkit_proto::job::ImageSource;
use std::time::Duration;

use hostkit_tests::{JobEvents, TarballBuilder, fixtures};

use super::env::{Env, failure, succeeded_version, web};

/// A fresh domain running `web v1`, deployed by a job that succeeded.
async fn deployed_web_v1(env: &Env) -> hostkit_proto::Domain {
    let domain = env.domain();
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    domain
}

/// The images bucket is shared and its objects are content-named, but the
/// store does not check names: an identity that may write it stores its
/// own tarball, padded to the same size, under the name of the owner's
/// next tarball. The owner's deploy must fail without loading a byte of
/// it, the object is deleted, and the running version keeps serving.
#[tokio::test]
async fn a_blob_swapped_under_another_tarballs_name_is_never_loaded() {
    let env = Env::new().await;
    let domain = deployed_web_v1(&env).await;

    // The owner's next tarball, and the attacker's under the same name.
    let owner = env.dir.path().join("owner.tar");
    TarballBuilder::new()
        .image(fixtures::web("v2"))
        .write_to(&owner)
        .expect("owner's tarball");
    let evil_tag = format!("hostkit-test/evil:{}", domain.token());
    env.docker.register_image(evil_tag.clone());
    let evil = env.dir.path().join("evil.tar");
    TarballBuilder::new()
        .image(fixtures::http_as(&evil_tag, "web", "v2", 8080))
        .write_to(&evil)
        .expect("attacker's tarball");
    // Same size: trailing zeros after a tar's end are ignored by readers.
    let (owner_len, evil_len) = (len(&owner), len(&evil));
    pad(&owner, owner_len.max(evil_len));
    pad(&evil, owner_len.max(evil_len));
    let (object, size) =
        match hostkit_tests::worker::upload_tarball(&env.js, &env.worker.names, &owner).await {
            ImageSource::Object { object, size } => (object, size),
            other => panic!("an object source, got {other:?}"),
        };
    let store = env
        .js
        .get_object_store(env.worker.names.images_bucket())
        .await
        .expect("bucket");
    let mut file = tokio::fs::File::open(&evil).await.expect("evil tarball");
    store
        .put(object.as_str(), &mut file)
        .await
        .expect("the attacker overwrites the object");

    let (done, events) = env
        .run(&env.deploy_job(
            &domain,
            &web("hostkit-test/web:v2"),
            vec![ImageSource::Object {
                object: object.clone(),
                size,
            }],
        ))
        .await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::ImageLoadFailed, "{message}\n{events:#?}");
    assert!(
        message.contains("does not hold what its name says"),
        "{message}"
    );
    let info = store.info(object.as_str()).await;
    assert!(
        info.as_ref().map_or(true, |i| i.deleted),
        "the swapped object is deleted: {info:?}\n{message}"
    );
    assert!(
        env.docker.client().inspect_image(&evil_tag).await.is_err(),
        "nothing of the attacker's tarball was loaded"
    );
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
}

fn len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).expect("tarball").len()
}

fn pad(path: &std::path::Path, to: u64) {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open tarball");
    file.set_len(to).expect("pad with zeros");
}

/// A worker that trusts a CI key for one domain only: that key's jobs for
/// another domain, for another node, past their expiry, or sent on another
/// domain's subject are refused `job.unauthorized`; a refusal is reported
/// on the domain whose subject the job came in on and never ends another
/// domain's job.
#[tokio::test]
async fn a_ci_key_acts_on_its_own_domains_only_and_refusals_end_no_other_job() {
    let ci_a = nkeys::KeyPair::new_user();
    let ci_b = nkeys::KeyPair::new_user();
    let (key_a, key_b) = (ci_a.public_key(), ci_b.public_key());
    // Domains are made before the worker starts, so the keys can name them.
    let docker = hostkit_tests::TestDocker::new().await;
    let (a, b): (hostkit_proto::Domain, hostkit_proto::Domain) = (
        docker.unique_domain().parse().expect("domain"),
        docker.unique_domain().parse().expect("domain"),
    );
    let (pattern_a, pattern_b) = (a.to_string(), b.to_string());
    let env = Env::with_settings(move |s| {
        s.require_signed = true;
        s.trusted_keys = vec![
            hostkit_proto::TrustedKey {
                key: key_a,
                domains: vec![pattern_a.parse().expect("pattern")],
            },
            hostkit_proto::TrustedKey {
                key: key_b,
                domains: vec![pattern_b.parse().expect("pattern")],
            },
        ];
    })
    .await;
    env.docker.register_project(a.token());
    env.docker.register_project(b.token());
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;

    // B's own signed deploy runs.
    let mut b_job = env.deploy_job(&b, &web("hostkit-test/web:v1"), vec![images.clone()]);
    env.sign(&mut b_job, &ci_b);
    let (done, _) = env.run(&b_job).await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");

    let refused = |event: &hostkit_proto::Event, needle: &str| {
        let (code, message) = failure(event);
        assert_eq!(code, ErrorCode::JobUnauthorized, "{message}");
        assert!(message.contains(needle), "{needle:?} not in {message}");
    };
    // A's key signs a job for B.
    let mut out_of_scope = env.deploy_job(&b, &web("hostkit-test/web:v1"), vec![images.clone()]);
    env.sign(&mut out_of_scope, &ci_a);
    let (done, _) = env.run(&out_of_scope).await;
    refused(&done, "not trusted for that domain");
    // A's job signed for another node.
    let mut elsewhere = env.deploy_job(&a, &web("hostkit-test/web:v1"), vec![images.clone()]);
    elsewhere.node = Some("vps-other".parse().expect("node"));
    elsewhere.expires_at = Some(elsewhere.created_at + hostkit_proto::sign::DEFAULT_JOB_TTL);
    hostkit_proto::sign_job(&mut elsewhere, &ci_a).expect("sign");
    let (done, _) = env.run(&elsewhere).await;
    refused(&done, "signed for node vps-other");
    // A's job that expired (a replay an hour later).
    let mut expired = env.deploy_job(&a, &web("hostkit-test/web:v1"), vec![images.clone()]);
    expired.created_at -= chrono::Duration::hours(1);
    env.sign(&mut expired, &ci_a);
    let (done, _) = env.run(&expired).await;
    refused(&done, "expired");

    // A forged job on A's subject that claims B's finished job's id: the
    // refusal goes to A's events and B's job gets no second end.
    let mut b_events = JobEvents::subscribe(&env.client, &env.worker.names, &b).await;
    let mut a_events = JobEvents::subscribe(&env.client, &env.worker.names, &a).await;
    let mut forged = b_job.clone();
    forged.signature = None;
    // A new job id under the same forgery is answered on A's events.
    let mut fresh = forged.clone();
    fresh.id = hostkit_proto::JobId::new();
    for job in [&forged, &fresh] {
        env.js
            .publish(
                env.worker.names.jobs_subject(&env.worker.node, &a),
                job.to_vec().into(),
            )
            .await
            .expect("publish")
            .await
            .expect("stored");
    }
    let answered = a_events.terminal(&fresh.id, Duration::from_secs(30)).await;
    assert_eq!(failure(&answered).0, ErrorCode::JobUnauthorized);
    b_events.collect_for(Duration::from_millis(500)).await;
    assert!(
        b_events.events.is_empty(),
        "no event on B's subjects: {:#?}",
        b_events.events
    );
    assert!(
        a_events.of(&b_job.id).is_empty(),
        "B's job id is never ended"
    );
    assert_eq!(env.get(&b).await, (200, "web v1\n".into()));

    // B's own signed job replayed, still within its expiry: the worker
    // knows its id and never runs it again.
    let mut b_events = JobEvents::subscribe(&env.client, &env.worker.names, &b).await;
    env.js
        .publish(
            env.worker.names.jobs_subject(&env.worker.node, &b),
            b_job.to_vec().into(),
        )
        .await
        .expect("publish")
        .await
        .expect("stored");
    let jobs_stream = env.worker.names.jobs_stream();
    hostkit_tests::wait_until(
        Duration::from_secs(20),
        "the worker takes the replayed job off the stream",
        async || {
            env.js
                .get_stream(&jobs_stream)
                .await
                .expect("jobs stream")
                .info()
                .await
                .is_ok_and(|info| info.state.messages == 0)
        },
    )
    .await;
    b_events.collect_for(Duration::from_millis(500)).await;
    assert!(
        !b_events
            .of(&b_job.id)
            .iter()
            .any(|e| matches!(e.kind, hostkit_proto::EventKind::Started { .. })),
        "a replayed job ran again: {:#?}",
        b_events.events
    );
    assert_eq!(
        env.worker_versions(&b).await,
        [1],
        "the replay recorded no version"
    );
}

/// A control request names its reply subject, and the worker answers with
/// its own rights, which include writing placement: a request whose reply
/// subject is a domain's placement key (or an event subject) must get no
/// answer there.
#[tokio::test]
async fn a_control_reply_never_lands_on_a_kv_key_or_an_event_subject() {
    let env = Env::new().await;
    let domain = deployed_web_v1(&env).await;
    let kv = env
        .js
        .get_key_value(env.worker.names.placement_bucket())
        .await
        .expect("placement bucket");
    let key = env.worker.names.placement_key(&domain, &env.worker.node);
    let before = kv.entry(&key).await.expect("read").expect("placed");

    let ping = env
        .worker
        .names
        .ctl(&env.worker.node, hostkit_proto::ControlVerb::Ping);
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    for reply in [
        format!("$KV.{}.{key}", env.worker.names.placement_bucket()),
        format!(
            "{}.events.{}.job.forged",
            env.worker.names.root(),
            domain.token()
        ),
    ] {
        env.client
            .publish_with_reply(ping.clone(), reply, "{}".into())
            .await
            .expect("send");
    }
    // A proper request afterwards is answered: the worker has read the
    // two before it (one subscription, in order).
    env.client
        .request(ping, "{}".into())
        .await
        .expect("an inbox gets its answer");
    let after = kv.entry(&key).await.expect("read").expect("placed");
    assert_eq!(
        after.revision, before.revision,
        "placement was not overwritten"
    );
    events.collect_for(Duration::from_millis(300)).await;
    assert!(events.events.is_empty(), "{:#?}", events.events);
}

/// One identity floods its own domain with jobs: past
/// `JOBS_MAX_PER_SUBJECT` waiting jobs its subject refuses more, while
/// another domain's subject still takes jobs.
#[tokio::test]
async fn a_domain_flooded_with_jobs_is_refused_more_and_others_are_not() {
    use hostkit_proto::subjects::settings::JOBS_MAX_PER_SUBJECT;
    let env = Env::new().await;
    // A node no worker consumes: the jobs stay waiting.
    let idle: hostkit_proto::NodeId = "idle-node".parse().expect("node");
    let (flooded, other) = (env.domain(), env.domain());
    let job = |domain: &hostkit_proto::Domain| {
        env.job(
            domain,
            hostkit_proto::JobSpec::Stop(hostkit_proto::job::StopPayload {}),
        )
    };
    for _ in 0..JOBS_MAX_PER_SUBJECT {
        hostkit_tests::publish_job(&env.js, &env.worker.names, &idle, &job(&flooded)).await;
    }
    let refused = env
        .js
        .publish(
            env.worker.names.jobs_subject(&idle, &flooded),
            job(&flooded).to_vec().into(),
        )
        .await
        .expect("sent")
        .await;
    assert!(
        refused.is_err(),
        "job {} past the bound was stored",
        JOBS_MAX_PER_SUBJECT + 1
    );
    let (_, duplicate) =
        hostkit_tests::publish_job(&env.js, &env.worker.names, &idle, &job(&other)).await;
    assert!(!duplicate, "another domain's job is stored");
}

/// Log follows are bounded per node: one more than
/// `LOG_FOLLOWS_PER_NODE` at once is refused with a reason.
#[tokio::test]
async fn log_follows_are_bounded_per_node() {
    use futures_util::StreamExt;
    use hostkit_proto::control::{LOG_FOLLOWS_PER_NODE, LogChunk, LogsRequest};
    let env = Env::new().await;
    let domain = deployed_web_v1(&env).await;

    let prefix = format!("_INBOX.follows.{}", domain.token());
    let mut replies = env
        .client
        .subscribe(format!("{prefix}.*"))
        .await
        .expect("subscribe");
    let request = serde_json::to_vec(&LogsRequest {
        domain: domain.clone(),
        service: "web".into(),
        tail: Some(1),
        follow: true,
    })
    .expect("json");
    let subject = env
        .worker
        .names
        .ctl(&env.worker.node, hostkit_proto::ControlVerb::Logs);
    for n in 0..=LOG_FOLLOWS_PER_NODE {
        env.client
            .publish_with_reply(
                subject.clone(),
                format!("{prefix}.{n}"),
                request.clone().into(),
            )
            .await
            .expect("send");
    }
    let refusal = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let message = replies.next().await.expect("replies");
            let reply: hostkit_proto::Reply<LogChunk> =
                serde_json::from_slice(&message.payload).expect("a reply");
            if let hostkit_proto::Reply::Error(error) = reply {
                return error;
            }
        }
    })
    .await
    .expect("one follow is refused");
    assert_eq!(refusal.code, ErrorCode::RequestInvalid);
    assert!(
        refusal.message.contains("log follows"),
        "{}",
        refusal.message
    );
}

/// Placement records are keyed `<dtoken>.<node>` so that the server can
/// let each worker write its own only. A domain recorded by an earlier
/// worker under its token alone is recorded under the node's key when the
/// worker starts, and the earlier record (it names this node) is removed.
#[tokio::test]
async fn a_placement_record_of_the_earlier_key_layout_is_moved_to_the_nodes_key() {
    let mut env = Env::new().await;
    let domain = deployed_web_v1(&env).await;
    let names = env.worker.names.clone();
    let node = env.worker.node.clone();
    let kv = env
        .js
        .get_key_value(names.placement_bucket())
        .await
        .expect("placement bucket");
    let own = names.placement_key(&domain, &node);
    let recorded: hostkit_proto::Placement =
        serde_json::from_slice(&kv.get(&own).await.expect("read").expect("recorded")).unwrap();
    assert_eq!(recorded.node, node);

    // As an earlier worker left it: only the token key.
    kv.delete(&own).await.expect("delete");
    let legacy = names.legacy_placement_key(&domain);
    kv.put(&legacy, serde_json::to_vec(&recorded).unwrap().into())
        .await
        .expect("put");
    let (nats, docker) = (&env.nats, &env.docker);
    env.worker.restart_with(nats, docker, |_| {}).await;

    hostkit_tests::wait_until(
        Duration::from_secs(20),
        "the worker records the domain under its node's key and drops the old key",
        async || {
            matches!(kv.get(&own).await, Ok(Some(_))) && matches!(kv.get(&legacy).await, Ok(None))
        },
    )
    .await;
}

/// A tenant with a private image bucket (`[[security.image_buckets]]`):
/// its domains load blobs from that bucket only. A blob in the shared
/// bucket, where any CI may write, is never loaded for them; the job fails
/// naming the bucket and how to upload there. From its own bucket it
/// deploys, while other domains still use the shared one.
#[tokio::test]
async fn a_domain_with_a_private_bucket_loads_blobs_from_it_only() {
    const BUCKET: &str = "hostkit_images_private_test";
    let env = Env::with_docker_settings(|settings, _| {
        settings.image_buckets = vec![hostkit_worker::runtime::image_stores::PrivateBucket {
            bucket: BUCKET.into(),
            domains: vec!["*.test".parse().unwrap()],
        }];
    })
    .await;
    let private = env.domain();
    assert!(private.as_str().ends_with(".test"), "{private}");

    let tarball = env.dir.path().join("web-v1.tar");
    TarballBuilder::new()
        .image(fixtures::web("v1"))
        .write_to(&tarball)
        .expect("tarball");
    let shared = hostkit_tests::worker::upload_tarball(&env.js, &env.worker.names, &tarball).await;
    let (done, events) = env
        .run(&env.deploy_job(&private, &web("hostkit-test/web:v1"), vec![shared]))
        .await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::ImageMissing, "{message}\n{events:#?}");
    assert!(message.contains(BUCKET), "{message}");
    match &done.kind {
        hostkit_proto::EventKind::Failed { hint, .. } => assert!(
            hint.as_deref()
                .is_some_and(|h| h.contains(&format!("--image-bucket {BUCKET}"))),
            "{hint:?}"
        ),
        other => panic!("{other:?}"),
    }

    let own = hostkit_tests::worker::upload_tarball_to(&env.js, BUCKET, &tarball).await;
    let (done, events) = env
        .run(&env.deploy_job(&private, &web("hostkit-test/web:v1"), vec![own]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}\n{events:#?}");
    assert_eq!(env.get(&private).await, (200, "web v1\n".into()));
}

/// `[streams]` bounds reach the streams and buckets the worker creates,
/// and they hold: with a 1 MiB jobs stream, jobs for a node that nobody
/// consumes are refused by the server once the stream is full.
#[tokio::test]
async fn configured_stream_bounds_are_applied_and_hold() {
    use hostkit_proto::subjects::settings::StreamBounds;
    let bounds = StreamBounds {
        replicas: 1,
        jobs_max_bytes: 1 << 20,
        jobs_max_age: Duration::from_secs(3600),
        events_max_bytes: 8 << 20,
        events_max_age: Duration::from_secs(2 * 3600),
        images_max_bytes: 64 << 20,
        images_max_age: Duration::from_secs(3 * 3600),
    };
    let env = Env::with_settings(|settings| settings.stream_bounds = bounds).await;
    let names = env.worker.names.clone();
    let info = |name: String| {
        let js = env.js.clone();
        async move {
            js.get_stream(&name)
                .await
                .expect("stream")
                .info()
                .await
                .expect("info")
                .config
                .clone()
        }
    };
    let jobs = info(names.jobs_stream()).await;
    assert_eq!(
        (jobs.max_bytes, jobs.max_age),
        (bounds.jobs_max_bytes, bounds.jobs_max_age)
    );
    let events = info(names.events_stream()).await;
    assert_eq!(
        (events.max_bytes, events.max_age),
        (bounds.events_max_bytes, bounds.events_max_age)
    );
    let images = info(format!("OBJ_{}", names.images_bucket())).await;
    assert_eq!(
        (images.max_bytes, images.max_age),
        (bounds.images_max_bytes, bounds.images_max_age)
    );

    // Fill the jobs stream for a node without a worker: 200 KiB each.
    let ghost: hostkit_proto::NodeId = "ghost".parse().unwrap();
    let payload = vec![b'x'; 200 * 1024];
    let mut accepted = 0u64;
    let mut refusal = None;
    for i in 0..20 {
        let domain: hostkit_proto::Domain = format!("d{i}.test").parse().unwrap();
        let ack = env
            .js
            .publish(names.jobs_subject(&ghost, &domain), payload.clone().into())
            .await
            .expect("send");
        match ack.await {
            Ok(_) => accepted += 1,
            Err(e) => {
                refusal = Some(e.to_string());
                break;
            }
        }
    }
    let refusal = refusal.expect("the full jobs stream refuses a job");
    assert!(
        accepted * 200 * 1024 <= 1 << 20,
        "{accepted} jobs of 200 KiB fit in 1 MiB"
    );
    assert!(
        refusal.to_lowercase().contains("maximum bytes"),
        "{refusal}"
    );
}
