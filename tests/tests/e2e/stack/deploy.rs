//! A real three-service stack: deploys, answers through nginx, keeps its
//! volume, converges without touching what did not change, and is listed by
//! docker-compose.

use hostkit_deploy::engine::Change;
use hostkit_deploy::progress::{Progress, ServiceState};

use super::site::{Site, three_service_stack};

#[tokio::test]
async fn three_service_stack_deploys_and_answers_through_nginx() {
    let site = Site::new().await;
    let applied = site
        .deploy(&three_service_stack("v1", "a"))
        .await
        .expect("deploy");
    assert_eq!(applied.services.len(), 3);
    assert!(
        applied
            .services
            .values()
            .all(|s| s.change == Change::Created)
    );
    assert_eq!(applied.upstreams.len(), 1);

    let (status, body) = site.get("/").await.expect("request through nginx");
    assert_eq!((status, body.as_str()), (200, "web v1\n"));

    // The published ports are bound to loopback inside the domain's block.
    for service in applied.services.values() {
        for replica in &service.replicas {
            for port in &replica.host_ports {
                assert!(
                    site.ports.contains(*port),
                    "{port} outside {:?}",
                    site.ports
                );
            }
        }
    }
    let web = &applied.services["web"].replicas[0];
    let inspect = site
        .docker
        .client()
        .inspect_container(&web.id, None)
        .await
        .expect("inspect web");
    let bindings = inspect
        .host_config
        .and_then(|h| h.port_bindings)
        .expect("port bindings");
    let binding = bindings["8080/tcp"].as_ref().expect("8080 published")[0].clone();
    assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));

    // web reaches api by its service name on the project network.
    assert_eq!(
        site.wget(&web.name, "api", 8081).await,
        Ok("api v1\n".to_string())
    );

    // Start order followed depends_on: db, then api, then web.
    let db = started_at(&site, &applied.services["db"].replicas[0].id).await;
    let api = started_at(&site, &applied.services["api"].replicas[0].id).await;
    let web_started = started_at(&site, &web.id).await;
    assert!(
        db < api && api < web_started,
        "db {db}, api {api}, web {web_started}"
    );

    // Progress was reported for every replica.
    let reports = site.sink.reports();
    for service in ["web", "api", "db"] {
        assert!(
            reports.iter().any(|r| matches!(r, Progress::Service { service: s, state: ServiceState::Healthy, .. } if s == service)),
            "no healthy report for {service}: {reports:?}"
        );
    }
    assert!(
        reports
            .iter()
            .any(|r| matches!(r, Progress::ProxySwitched { .. }))
    );

    // docker-compose v1 lists the stack by project.
    let project = site.domain.token();
    std::fs::write(
        site.dir.path().join("docker-compose.yml"),
        three_service_stack("v1", "a"),
    )
    .unwrap();
    let output = std::process::Command::new("docker-compose")
        .args(["-p", &project, "ps"])
        .current_dir(site.dir.path())
        .output()
        .expect("run docker-compose");
    let listing = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "docker-compose ps failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    for service in ["web", "api", "db"] {
        assert!(
            listing.contains(&format!("{project}-{service}-1")),
            "{listing}"
        );
    }
}

#[tokio::test]
async fn a_no_op_redeploy_touches_nothing_and_a_changed_service_alone_is_recreated() {
    let site = Site::new().await;
    site.deploy(&three_service_stack("v1", "a"))
        .await
        .expect("first deploy");
    let before = site.containers().await;
    assert_eq!(site.get("/").await.expect("through nginx").1, "web v1\n");
    let db_port = site
        .engine
        .replicas(&site.spec(&three_service_stack("v1", "a")).await.unwrap())
        .await
        .unwrap();
    let db_port = db_port.iter().find(|(s, _)| s == "db").unwrap().1[0].host_ports[0];
    let (_, identity) = hostkit_tests::http_get(("127.0.0.1", db_port), "db", "/created")
        .await
        .expect("db");

    let again = site
        .deploy(&three_service_stack("v1", "a"))
        .await
        .expect("no-op deploy");
    assert!(!again.touched_anything(), "{again:?}");
    assert_eq!(
        site.containers().await,
        before,
        "a no-op deploy changed containers"
    );

    // Only db's env changes: only db is recreated; its volume keeps the data.
    let changed = site
        .deploy(&three_service_stack("v1", "b"))
        .await
        .expect("deploy with new db env");
    assert_eq!(changed.services["db"].change, Change::Recreated);
    assert_eq!(changed.services["api"].change, Change::Unchanged);
    assert_eq!(changed.services["web"].change, Change::Unchanged);
    let after = site.containers().await;
    for name in before.keys().filter(|n| !n.contains("-db-")) {
        assert_eq!(before.get(name), after.get(name), "{name} was recreated");
    }
    let db_id = |m: &std::collections::BTreeMap<String, String>| {
        m.iter()
            .find(|(n, _)| n.contains("-db-"))
            .map(|(_, id)| id.clone())
    };
    assert_ne!(db_id(&before), db_id(&after), "db was not recreated");

    let new_port = changed.services["db"].replicas[0].host_ports[0];
    let (_, identity_after) = hostkit_tests::http_get(("127.0.0.1", new_port), "db", "/created")
        .await
        .expect("db");
    assert_eq!(
        identity, identity_after,
        "the volume's data did not survive the redeploy"
    );
}

async fn started_at(site: &Site, id: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let c = site
        .docker
        .client()
        .inspect_container(id, None)
        .await
        .expect("inspect");
    let text = c.state.and_then(|s| s.started_at).expect("started_at");
    chrono::DateTime::parse_from_rfc3339(&text).expect("RFC 3339 StartedAt")
}
