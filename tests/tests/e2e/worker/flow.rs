//! The main flow: deploy v1 → v2 → rollback to v1 → an unhealthy v3 that
//! rolls back by itself, with nginx serving the right version after each
//! step (and v1 throughout v3's failure), and the on-disk view following.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use hostkit_proto::job::RollbackPayload;
use hostkit_proto::{ErrorCode, EventKind, JobSpec};

use super::env::{Env, images_v1_v2, succeeded_version, web};

#[tokio::test]
async fn deploy_deploy_rollback_and_auto_rollback() {
    let env = Arc::new(Env::new().await);
    let domain = env.domain();
    let images = env.upload("all", images_v1_v2()).await;

    // v1, with its images streamed from the object store.
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    let (done, events) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1, "{events:#?}");
    assert!(
        matches!(events[0].kind, EventKind::Started { .. }),
        "{events:#?}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Progress { what, .. } if what == "image")),
        "no byte progress: {events:#?}"
    );
    assert!(
        events.windows(2).all(|w| w[0].seq < w[1].seq),
        "events out of order"
    );
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
    let v1_images = env.image_ids(&domain).await;
    let dir = env.domain_dir(&domain);
    // config.json in the seed's schema (parsed strictly, like the schema).
    let config: hostkit_proto::view::DomainConfig =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).expect("config.json"))
            .expect("config.json has the seed's schema");
    assert_eq!(config.current_version.as_deref(), Some("v1"));
    assert_eq!(config.versions, ["v1"]);
    assert_eq!(config.kind, hostkit_proto::view::SiteKind::Compose);
    assert_eq!(config.main_service.as_deref(), Some("web"));
    assert_eq!(config.services["web"].internal_port, Some(8080));
    assert!(config.services["web"].exposed);
    let port = config.port.expect("the main service's host port");
    assert!(
        (config.hostkit.ports.start..config.hostkit.ports.start + config.hostkit.ports.len)
            .contains(&port),
        "{config:?}"
    );
    assert_eq!(config.all_domains, [domain.to_string()]);
    assert!(
        std::fs::read_to_string(dir.join("docker-compose.yml"))
            .unwrap()
            .contains("web:v1")
    );
    assert!(dir.join("docker-compose.v1.yml").exists());

    // v2.
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v2"), vec![images.clone()]);
    let (done, events) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 2);
    // The same blob again: its images are there, nothing is streamed.
    assert!(
        events.iter().any(|e| matches!(&e.kind, EventKind::Step { message, .. } if message.contains("already loaded"))),
        "{events:#?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.kind, EventKind::Progress { .. })),
        "{events:#?}"
    );
    assert_eq!(env.get(&domain).await, (200, "web v2\n".into()));
    assert_ne!(env.image_ids(&domain).await, v1_images);
    assert!(
        std::fs::read_to_string(dir.join("docker-compose.yml"))
            .unwrap()
            .contains("web:v2")
    );
    assert!(dir.join("docker-compose.v2.yml").exists());

    // Rollback (to the previous version): v1's exact images serve again.
    let job = env.job(&domain, JobSpec::Rollback(RollbackPayload::default()));
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1);
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
    assert_eq!(env.image_ids(&domain).await, v1_images);
    let config: hostkit_proto::view::DomainConfig =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config.current_version.as_deref(), Some("v1"));
    assert_eq!(config.versions, ["v1", "v2"]);

    // v3 never turns healthy: the job fails, v1 keeps serving throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (env, domain, stop) = (Arc::clone(&env), domain.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut bodies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                bodies.push(env.get(&domain).await);
            }
            bodies
        })
    };
    let job = env.deploy_job(
        &domain,
        &web("hostkit-test/web-unhealthy:v3"),
        vec![images.clone()],
    );
    let (done, _) = env.run(&job).await;
    stop.store(true, Ordering::Relaxed);
    match &done.kind {
        EventKind::Failed {
            code,
            rolled_back_to,
            hint,
            ..
        } => {
            assert_eq!(*code, ErrorCode::HealthTimeout);
            assert_eq!(*rolled_back_to, Some(1));
            assert!(hint.is_some());
        }
        other => panic!("expected failed, got {other:?}"),
    }
    let bodies = watcher.await.unwrap();
    assert!(bodies.len() > 5, "only {} requests ran", bodies.len());
    assert!(
        bodies.iter().all(|b| *b == (200, "web v1\n".to_string())),
        "v1 did not serve throughout: {:?}",
        bodies
            .iter()
            .filter(|b| b.1 != "web v1\n")
            .take(3)
            .collect::<Vec<_>>()
    );
    assert_eq!(env.image_ids(&domain).await, v1_images);
    let config: hostkit_proto::view::DomainConfig =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config.current_version.as_deref(), Some("v1"));
    assert_eq!(config.versions, ["v1", "v2"]);
}
