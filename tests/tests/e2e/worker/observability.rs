//! What the worker tells without being asked and when asked: the node
//! record and `online` event at startup, reconciliation of recorded stacks
//! with what runs, and logs streamed in bounded chunks with an end marker.

use std::time::Duration;

use futures_util::StreamExt;
use hostkit_proto::control::{LogChunk, LogsRequest};
use hostkit_proto::registry::NodeInfo;
use hostkit_proto::{ControlVerb, Event, EventKind, Reply};

use super::env::{Env, succeeded_version, web};

#[tokio::test]
async fn the_worker_registers_its_node_and_says_it_is_online() {
    let env = Env::new().await;
    let names = &env.worker.names;
    let nodes = env
        .js
        .get_key_value(names.nodes_bucket())
        .await
        .expect("nodes bucket");
    let mut info = None;
    hostkit_tests::wait_until(
        Duration::from_secs(15),
        "the node record is written",
        async || {
            info = nodes
                .get(names.node_key(&env.worker.node))
                .await
                .ok()
                .flatten()
                .and_then(|v| serde_json::from_slice::<NodeInfo>(&v).ok());
            info.is_some()
        },
    )
    .await;
    let info = info.expect("node info");
    assert_eq!(info.node, env.worker.node);
    assert_eq!(info.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(info.capacity, 4);

    let stream = env
        .js
        .get_stream(names.events_stream())
        .await
        .expect("events stream");
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
            filter_subject: format!("{}.nodes.{}.>", "hostkit", env.worker.node),
            ..Default::default()
        })
        .await
        .expect("consumer");
    let mut messages = consumer.messages().await.expect("messages");
    let first = tokio::time::timeout(Duration::from_secs(10), messages.next())
        .await
        .expect("a node event within 10 s")
        .expect("stream open")
        .expect("message");
    let event = Event::from_slice(&first.payload).expect("event");
    assert!(matches!(event.kind, EventKind::Online { .. }), "{event:?}");
}

#[tokio::test]
async fn a_container_missing_at_startup_is_reported_as_a_health_event() {
    let mut env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1);

    // While the worker is down, someone removes the container.
    env.worker.stop().await;
    let container = format!("{}-web-1", domain.token());
    env.docker
        .client()
        .remove_container(
            &container,
            Some(
                bollard::query_parameters::RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .build(),
            ),
        )
        .await
        .expect("remove the container from outside");
    let mut health = env
        .client
        .subscribe(env.worker.names.health_events(&domain, "web"))
        .await
        .expect("subscribe");
    let (nats, docker) = (&env.nats, &env.docker);
    env.worker.crash_and_restart(nats, docker).await;
    let message = tokio::time::timeout(Duration::from_secs(15), health.next())
        .await
        .expect("a health event within 15 s of the restart")
        .expect("subscription open");
    let event = Event::from_slice(&message.payload).expect("event");
    assert!(
        matches!(&event.kind, EventKind::Exited { service, .. } if service == "web"),
        "{event:?}"
    );
}

#[tokio::test]
async fn logs_stream_in_chunks_that_end_with_a_marker() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1);
    // Make the service log a few lines (busybox httpd logs requests with -v).
    for _ in 0..5 {
        env.get(&domain).await;
    }

    let inbox = env.client.new_inbox();
    let mut replies = env
        .client
        .subscribe(inbox.clone())
        .await
        .expect("subscribe");
    let request = LogsRequest {
        domain: domain.clone(),
        service: "web".into(),
        tail: Some(3),
        follow: false,
    };
    env.client
        .publish_with_reply(
            env.worker.names.ctl(&env.worker.node, ControlVerb::Logs),
            inbox,
            serde_json::to_vec(&request).unwrap().into(),
        )
        .await
        .expect("request logs");
    let mut lines = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), replies.next())
            .await
            .expect("a log chunk within 5 s")
            .expect("subscription open");
        let chunk: LogChunk = serde_json::from_slice::<Reply<LogChunk>>(&message.payload)
            .expect("chunk parses")
            .into_result()
            .expect("ok chunk");
        lines.extend(chunk.lines.into_iter().map(|l| l.line));
        if chunk.end {
            break;
        }
    }
    assert!(
        !lines.is_empty() && lines.len() <= 3,
        "tail 3 gave {lines:?}"
    );

    // An unknown service is an error reply, not silence.
    let unknown = LogsRequest {
        service: "nope".into(),
        ..request
    };
    let reply = env
        .client
        .request(
            env.worker.names.ctl(&env.worker.node, ControlVerb::Logs),
            serde_json::to_vec(&unknown).unwrap().into(),
        )
        .await
        .expect("reply");
    let error = serde_json::from_slice::<Reply<LogChunk>>(&reply.payload)
        .expect("parses")
        .into_result()
        .expect_err("unknown service");
    assert_eq!(error.code, hostkit_proto::ErrorCode::ServiceNotFound);
}

#[tokio::test]
async fn following_logs_covers_every_replica() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let compose = web("hostkit-test/web:v1").replace(
        "    healthcheck:",
        "    deploy:\n      replicas: 2\n    healthcheck:",
    );
    let (done, _) = env
        .run(&env.deploy_job(&domain, &compose, vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1);

    let inbox = env.client.new_inbox();
    let mut replies = env
        .client
        .subscribe(inbox.clone())
        .await
        .expect("subscribe");
    let request = LogsRequest {
        domain: domain.clone(),
        service: "web".into(),
        tail: Some(50),
        follow: true,
    };
    env.client
        .publish_with_reply(
            env.worker.names.ctl(&env.worker.node, ControlVerb::Logs),
            inbox,
            serde_json::to_vec(&request).unwrap().into(),
        )
        .await
        .expect("request logs");
    // Each replica printed "serving /www on port 8080" when it started.
    let mut starts = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while starts < 2 {
        let message = tokio::time::timeout_at(deadline, replies.next())
            .await
            .unwrap_or_else(|_| panic!("followed logs showed {starts} of 2 replicas' start lines"))
            .expect("subscription open");
        let chunk: LogChunk = serde_json::from_slice::<Reply<LogChunk>>(&message.payload)
            .expect("chunk parses")
            .into_result()
            .expect("ok chunk");
        starts += chunk
            .lines
            .iter()
            .filter(|l| l.line.starts_with("serving "))
            .count();
        assert!(!chunk.end, "follow ended early");
    }
}
