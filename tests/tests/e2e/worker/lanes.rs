//! Lanes: two jobs of one domain never overlap while two domains do; five
//! queued deploys of one domain run once and supersede four.

use std::time::Duration;

use hostkit_proto::{Event, EventKind};
use hostkit_tests::{JobEvents, publish_job};

use super::env::{Env, web};

fn span(events: &[Event]) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    let start = events
        .iter()
        .find(|e| matches!(e.kind, EventKind::Started { .. }))
        .expect("started")
        .at;
    let end = events
        .iter()
        .find(|e| e.is_terminal())
        .expect("terminal")
        .at;
    (start, end)
}

#[tokio::test]
async fn jobs_of_one_domain_never_overlap_while_domains_run_in_parallel() {
    let env = Env::new().await;
    let (a, b) = (env.domain(), env.domain());
    let images = env
        .upload(
            "v1",
            vec![
                hostkit_tests::fixtures::web("v1"),
                hostkit_tests::fixtures::web("v2"),
            ],
        )
        .await;
    let jobs = [
        env.deploy_job(&a, &web("hostkit-test/web:v1"), vec![images.clone()]),
        env.job(
            &a,
            hostkit_proto::JobSpec::Restart(hostkit_proto::job::RestartPayload { service: None }),
        ),
        env.deploy_job(&b, &web("hostkit-test/web:v2"), vec![images.clone()]),
    ];
    let mut ea = JobEvents::subscribe(&env.client, &env.worker.names, &a).await;
    let mut eb = JobEvents::subscribe(&env.client, &env.worker.names, &b).await;
    for job in &jobs {
        publish_job(&env.js, &env.worker.names, &env.worker.node, job).await;
    }
    for job in &jobs[..2] {
        ea.terminal(&job.id, Duration::from_secs(90)).await;
    }
    eb.terminal(&jobs[2].id, Duration::from_secs(90)).await;
    let spans: Vec<_> = [(&ea, &jobs[0]), (&ea, &jobs[1]), (&eb, &jobs[2])]
        .iter()
        .map(|(events, job)| span(&events.of(&job.id).into_iter().cloned().collect::<Vec<_>>()))
        .collect();
    assert!(
        spans[0].1 <= spans[1].0,
        "two jobs of {a} overlapped: {spans:?}"
    );
    let overlap = spans[2].0 < spans[0].1 && spans[0].0 < spans[2].1;
    assert!(
        overlap,
        "jobs of {a} and {b} did not run in parallel: {spans:?}"
    );
}

#[tokio::test]
async fn five_waiting_deploys_run_once_and_supersede_four() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload(
            "v1",
            vec![
                hostkit_tests::fixtures::web("v1"),
                hostkit_tests::fixtures::web("v2"),
            ],
        )
        .await;
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    // The first deploy occupies the lane (a cold start with a health gate).
    let first = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    publish_job(&env.js, &env.worker.names, &env.worker.node, &first).await;
    events.started(&first.id, Duration::from_secs(30)).await;
    let waiting: Vec<_> = (0..5)
        .map(|_| env.deploy_job(&domain, &web("hostkit-test/web:v2"), vec![images.clone()]))
        .collect();
    for job in &waiting {
        publish_job(&env.js, &env.worker.names, &env.worker.node, job).await;
    }
    events.terminal(&first.id, Duration::from_secs(90)).await;
    let newest = &waiting[4];
    let done = events.terminal(&newest.id, Duration::from_secs(90)).await;
    assert!(matches!(done.kind, EventKind::Succeeded { .. }), "{done:?}");
    for old in &waiting[..4] {
        let end = events.terminal(&old.id, Duration::from_secs(30)).await;
        assert!(
            matches!(&end.kind, EventKind::Superseded { by } if *by == newest.id),
            "{end:?}"
        );
        assert!(
            !events
                .of(&old.id)
                .iter()
                .any(|e| matches!(e.kind, EventKind::Started { .. })),
            "a superseded deploy ran"
        );
    }
    assert_eq!(env.get(&domain).await, (200, "web v2\n".into()));
    assert_eq!(env.worker_versions(&domain).await, vec![2, 1]);
}

#[tokio::test]
async fn a_deploy_delivered_twice_while_waiting_runs_and_is_not_superseded_by_itself() {
    use async_nats::jetstream::message::PublishMessage;

    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload(
            "v1",
            vec![
                hostkit_tests::fixtures::web("v1"),
                hostkit_tests::fixtures::web("v2"),
            ],
        )
        .await;
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    let first = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    publish_job(&env.js, &env.worker.names, &env.worker.node, &first).await;
    events.started(&first.id, Duration::from_secs(30)).await;
    // While the lane is busy, the same deploy arrives twice (a redelivery,
    // or a re-publish past the duplicate window): both wait in the lane.
    let second = env.deploy_job(&domain, &web("hostkit-test/web:v2"), vec![images.clone()]);
    publish_job(&env.js, &env.worker.names, &env.worker.node, &second).await;
    let subject = env.worker.names.jobs_subject(&env.worker.node, &domain);
    env.js
        .send_publish(
            subject,
            PublishMessage::build()
                .payload(second.to_vec().into())
                .message_id(format!("{}-again", second.id)),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    events.terminal(&first.id, Duration::from_secs(90)).await;
    let done = events.terminal(&second.id, Duration::from_secs(90)).await;
    assert!(matches!(done.kind, EventKind::Succeeded { .. }), "{done:?}");
    events.collect_for(Duration::from_secs(2)).await;
    let terminals: std::collections::BTreeSet<u64> = events
        .of(&second.id)
        .iter()
        .filter(|e| e.is_terminal())
        .map(|e| e.seq)
        .collect();
    assert_eq!(terminals.len(), 1, "one terminal event: {terminals:?}");
    assert_eq!(env.get(&domain).await, (200, "web v2\n".into()));
    assert_eq!(env.worker_versions(&domain).await, vec![2, 1]);
}

#[tokio::test]
async fn a_job_waiting_for_a_lane_does_not_start_once_shutdown_began() {
    let mut env = Env::with_settings(|s| s.max_lanes = 1).await;
    let (a, b) = (env.domain(), env.domain());
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let mut ea = JobEvents::subscribe(&env.client, &env.worker.names, &a).await;
    let mut eb = JobEvents::subscribe(&env.client, &env.worker.names, &b).await;
    let running = env.deploy_job(&a, &web("hostkit-test/web:v1"), vec![images.clone()]);
    publish_job(&env.js, &env.worker.names, &env.worker.node, &running).await;
    ea.started(&running.id, Duration::from_secs(30)).await;
    // One lane at a time: b's deploy waits for a's to end.
    let waiting = env.deploy_job(&b, &web("hostkit-test/web:v1"), vec![images.clone()]);
    publish_job(&env.js, &env.worker.names, &env.worker.node, &waiting).await;
    eb.collect_for(Duration::from_millis(500)).await;
    env.worker.stop().await;
    let end = ea.terminal(&running.id, Duration::from_secs(5)).await;
    assert!(matches!(end.kind, EventKind::Succeeded { .. }), "{end:?}");
    eb.collect_for(Duration::from_secs(1)).await;
    assert!(
        !eb.of(&waiting.id)
            .iter()
            .any(|e| matches!(e.kind, EventKind::Started { .. }) || e.is_terminal()),
        "a job that had not started ran during shutdown: {:?}",
        eb.of(&waiting.id)
    );
    // Nak'd: still in the stream for the next start.
    let mut stream = env
        .js
        .get_stream(env.worker.names.jobs_stream())
        .await
        .unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
}
