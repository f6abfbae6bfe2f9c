//! Intake: a malformed job is refused with `job.invalid` and never
//! redelivered; a job id seen before has exactly one effect.

use std::time::Duration;

use async_nats::jetstream::message::PublishMessage;
use hostkit_proto::{ErrorCode, EventKind, JobId};
use hostkit_tests::JobEvents;

use super::env::{Env, succeeded_version, web};

#[tokio::test]
async fn a_malformed_job_fails_with_job_invalid_and_is_not_redelivered() {
    let env = Env::new().await;
    let domain = env.domain();
    let id = JobId::new();
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    let raw = serde_json::json!({
        "schema": 1, "id": id.to_string(), "domain": domain.as_str(),
        "kind": "deploy", "payload": {"source": {"nonsense": true}},
        "created_at": "2026-01-01T00:00:00Z", "requested_by": "e2e",
    });
    let subject = env.worker.names.jobs_subject(&env.worker.node, &domain);
    env.js
        .send_publish(
            subject,
            PublishMessage::build()
                .payload(raw.to_string().into())
                .message_id(id.to_string()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let failed = events.terminal(&id, Duration::from_secs(30)).await;
    assert!(
        matches!(
            &failed.kind,
            EventKind::Failed {
                code: ErrorCode::JobInvalid,
                ..
            }
        ),
        "{failed:?}"
    );
    // Terminated: the work queue no longer holds it.
    let mut stream = env
        .js
        .get_stream(env.worker.names.jobs_stream())
        .await
        .unwrap();
    hostkit_tests::wait_until(
        Duration::from_secs(10),
        "the malformed job leaves the stream",
        async || {
            stream
                .info()
                .await
                .map(|i| i.state.messages == 0)
                .unwrap_or(false)
        },
    )
    .await;
}

#[tokio::test]
async fn a_job_id_seen_before_has_exactly_one_effect() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1);

    // The same message id again: the stream drops it as a duplicate.
    let (_, duplicate) =
        hostkit_tests::publish_job(&env.js, &env.worker.names, &env.worker.node, &job).await;
    assert!(duplicate, "the jobs stream must de-duplicate by job id");

    // The same job under another message id (past the window, say): the
    // worker answers from its store, with the same terminal event.
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    let subject = env.worker.names.jobs_subject(&env.worker.node, &domain);
    env.js
        .send_publish(
            subject,
            PublishMessage::build()
                .payload(job.to_vec().into())
                .message_id("another-id"),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    let again = events.terminal(&job.id, Duration::from_secs(30)).await;
    assert_eq!(
        again.seq, done.seq,
        "a re-published outcome keeps its sequence number"
    );
    assert!(
        !events
            .of(&job.id)
            .iter()
            .any(|e| matches!(e.kind, EventKind::Started { .. })),
        "the job ran twice"
    );
    let versions = env.worker_versions(&domain).await;
    assert_eq!(versions, vec![1], "one version row");
}
