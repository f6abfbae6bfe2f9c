//! Crashes and outages: a worker aborted mid-deploy and restarted finishes
//! the job exactly once; nats-server restarted mid-job loses no event; a
//! container killed from outside produces a health event.

use std::time::Duration;

use futures_util::StreamExt;
use hostkit_proto::{Event, EventKind};
use hostkit_tests::{JobEvents, publish_job};

use super::env::{Env, succeeded_version, web};

#[tokio::test]
async fn a_worker_crashing_mid_deploy_finishes_the_job_exactly_once_after_restart() {
    let mut env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    publish_job(&env.js, &env.worker.names, &env.worker.node, &job).await;
    // Crash once the deploy is under way (its first replica exists).
    env.wait_for_a_container(&domain).await;
    let (nats, docker) = (&env.nats, &env.docker);
    env.worker.crash_and_restart(nats, docker).await;

    let done = events.terminal(&job.id, Duration::from_secs(120)).await;
    assert_eq!(succeeded_version(&done), 1, "{:#?}", events.of(&job.id));
    // Give a duplicate outcome the chance to show up, then count.
    events.collect_for(Duration::from_secs(2)).await;
    let terminals: Vec<_> = events
        .of(&job.id)
        .into_iter()
        .filter(|e| e.is_terminal())
        .map(|e| e.seq)
        .collect();
    let mut unique = terminals.clone();
    unique.dedup();
    assert_eq!(unique.len(), 1, "more than one outcome: {terminals:?}");
    assert_eq!(env.worker_versions(&domain).await, vec![1]);
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
}

#[tokio::test]
async fn nats_restarting_mid_job_loses_no_event() {
    let mut env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    publish_job(&env.js, &env.worker.names, &env.worker.node, &job).await;
    env.wait_for_a_container(&domain).await;
    env.nats.stop();
    tokio::time::sleep(Duration::from_secs(3)).await;
    env.nats.start().await;

    // Every event of the job is in the events stream, in order, once.
    let js = async_nats::jetstream::new(env.nats.client().await);
    let stream = js
        .get_stream(env.worker.names.events_stream())
        .await
        .expect("events stream");
    let subject = env.worker.names.job_events(&domain, &job.id);
    let mut seen: Vec<Event> = Vec::new();
    hostkit_tests::wait_until(
        Duration::from_secs(90),
        "the job's terminal event reaches the stream",
        async || {
            let consumer = stream
                .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig {
                    filter_subject: subject.clone(),
                    ..Default::default()
                })
                .await
                .expect("ordered consumer");
            let mut messages = consumer.messages().await.expect("messages");
            seen.clear();
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_millis(500), messages.next()).await
            {
                seen.push(Event::from_slice(&message.payload).expect("event"));
            }
            seen.iter().any(|e| e.is_terminal())
        },
    )
    .await;
    assert!(
        matches!(seen[0].kind, EventKind::Started { .. }),
        "{seen:#?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].seq < w[1].seq),
        "events out of order or repeated: {:?}",
        seen.iter().map(|e| e.seq).collect::<Vec<_>>()
    );
    assert_eq!(seen.iter().filter(|e| e.is_terminal()).count(), 1);
    assert!(
        matches!(seen.last().unwrap().kind, EventKind::Succeeded { .. }),
        "{:?}",
        seen.last()
    );
}

#[tokio::test]
async fn a_container_killed_from_outside_produces_a_health_event() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1);
    let mut health = env
        .client
        .subscribe(env.worker.names.health_events(&domain, "web"))
        .await
        .expect("subscribe to health events");
    let container = format!("{}-web-1", domain.token());
    env.docker
        .client()
        .kill_container(
            &container,
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill the container");
    let event = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let message = health.next().await.expect("subscription open");
            let event = Event::from_slice(&message.payload).expect("event");
            if matches!(event.kind, EventKind::Exited { .. }) {
                return event;
            }
        }
    })
    .await
    .expect("an exited health event within 10 s");
    assert_eq!(event.domain.as_ref(), Some(&domain));
    assert!(
        matches!(&event.kind, EventKind::Exited { service, container: c, .. } if service == "web" && *c == container),
        "{event:?}"
    );
}

#[tokio::test]
async fn a_worker_process_killed_with_sigkill_mid_deploy_finishes_the_job_exactly_once() {
    let env = Env::new().await;
    let mut process =
        hostkit_tests::worker::WorkerProcess::start(&env.nats, &env.docker, &env.nginx).await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    publish_job(&env.js, &env.worker.names, &process.node, &job).await;
    env.wait_for_a_container(&domain).await;
    process.kill();
    process.spawn().await;

    let done = events.terminal(&job.id, Duration::from_secs(120)).await;
    assert_eq!(
        succeeded_version(&done),
        1,
        "{:#?}\n{}",
        events.of(&job.id),
        process.log()
    );
    events.collect_for(Duration::from_secs(2)).await;
    let terminals: Vec<_> = events
        .of(&job.id)
        .into_iter()
        .filter(|e| e.is_terminal())
        .map(|e| e.seq)
        .collect();
    let mut unique = terminals.clone();
    unique.dedup();
    assert_eq!(unique.len(), 1, "more than one outcome: {terminals:?}");
    assert!(
        process
            .log()
            .contains("resuming a job a restart interrupted"),
        "the job was not resumed:\n{}",
        process.log()
    );
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));

    // SIGTERM: a clean exit.
    let status = process.terminate().expect("the worker was running");
    assert!(status.success(), "exit {status:?}:\n{}", process.log());
}
