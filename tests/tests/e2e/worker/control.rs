//! Control replies answer while a deploy runs.

use std::time::Duration;

use hostkit_proto::control::{
    PingReply, ServicesReply, ServicesRequest, StatusReply, StatusRequest, VersionsReply,
    VersionsRequest,
};
use hostkit_proto::{ControlVerb, Reply};
use hostkit_tests::{JobEvents, publish_job};

use super::env::{Env, web};

async fn ask<T: serde::de::DeserializeOwned>(
    env: &Env,
    verb: ControlVerb,
    body: serde_json::Value,
) -> T {
    let subject = env.worker.names.ctl(&env.worker.node, verb);
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        env.client.request(subject, body.to_string().into()),
    )
    .await
    .expect("answered within 2 s")
    .expect("request");
    serde_json::from_slice::<Reply<T>>(&reply.payload)
        .expect("reply parses")
        .into_result()
        .expect("ok reply")
}

#[tokio::test]
async fn control_replies_while_a_deploy_runs() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1", vec![hostkit_tests::fixtures::web("v1")])
        .await;
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    publish_job(&env.js, &env.worker.names, &env.worker.node, &job).await;

    // While it runs (started, not ended: its health gate alone takes a
    // second or more): ping answers at once.
    events.started(&job.id, Duration::from_secs(30)).await;
    let ping: PingReply = ask(&env, ControlVerb::Ping, serde_json::json!({})).await;
    assert_eq!(ping.node, env.worker.node);
    events.collect_for(Duration::from_millis(50)).await;
    assert!(
        events.of(&job.id).iter().all(|e| !e.is_terminal()),
        "the ping was answered only after the job ended: {:#?}",
        events.of(&job.id)
    );
    events.terminal(&job.id, Duration::from_secs(90)).await;

    let status: StatusReply = ask(&env, ControlVerb::Status, serde_json::json!({})).await;
    let mine = status
        .domains
        .iter()
        .find(|d| d.domain == domain)
        .expect("the domain is listed");
    assert_eq!(mine.version, Some(1));
    let services: ServicesReply = ask(
        &env,
        ControlVerb::Services,
        serde_json::to_value(ServicesRequest {
            domain: domain.clone(),
        })
        .unwrap(),
    )
    .await;
    assert_eq!(services.services.len(), 1);
    assert_eq!(services.services[0].service, "web");
    assert_eq!(services.services[0].replicas.len(), 1);
    let versions: VersionsReply = ask(
        &env,
        ControlVerb::Versions,
        serde_json::to_value(VersionsRequest {
            domain: domain.clone(),
        })
        .unwrap(),
    )
    .await;
    assert_eq!(versions.versions.len(), 1);
    assert!(versions.versions[0].current);
    let _: StatusReply = ask(
        &env,
        ControlVerb::Status,
        serde_json::to_value(StatusRequest {
            domain: Some(domain),
        })
        .unwrap(),
    )
    .await;
}
