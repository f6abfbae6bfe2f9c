//! `import` adopts a HostKit v1 site as v1 left it (NOTES-hostkit-v1):
//! `config.json` in v1's format, the container `<dashed domain>` run with
//! `docker run -p 127.0.0.1:P:P --memory … --restart unless-stopped -v
//! <dir>/logs:/app/logs`, and v1's nginx site in `sites-available` linked
//! from `sites-enabled`. The site answers through nginx throughout the
//! import; afterwards HostKit's container serves it, v1's site link is
//! retired (its file kept) and v1's container is stopped, not removed.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HostConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use hostkit_proto::control::{ImportsReply, ImportsRequest};
use hostkit_proto::job::ImportPayload;
use hostkit_proto::{Domain, ErrorCode, JobSpec, Reply};
use hostkit_tests::{fixtures, free_port};

use super::env::{Env, failure, succeeded_version};

/// v1's version stamp of the running image.
const V1_VERSION: &str = "20251008-143015";

/// A v1 site set up as v1's `register` and `deploy` leave it.
struct V1Site {
    port: u16,
    container: String,
}

async fn plant_v1_site(env: &Env, domain: &Domain) -> V1Site {
    plant_v1_site_with(env, domain, |image| image).await
}

/// [`plant_v1_site`] with the site's image changed by `adjust`.
async fn plant_v1_site_with(
    env: &Env,
    domain: &Domain,
    adjust: impl FnOnce(hostkit_tests::ImageSpec) -> hostkit_tests::ImageSpec,
) -> V1Site {
    let port = free_port();
    let image = adjust(
        fixtures::http_as(&format!("{domain}:{V1_VERSION}"), "v1", "site", port)
            .tag(format!("{domain}:latest")),
    );
    for tag in image.tags() {
        env.docker.register_image(tag.clone());
    }
    env.docker.load_images([image]).await;

    let dir = env.domain_dir(domain);
    std::fs::create_dir_all(dir.join("logs")).expect("logs dir");
    std::fs::write(
        dir.join("config.json"),
        format!(
            r#"{{
    "domain": "{domain}",
    "redirect_domains": ["www.{domain}"],
    "all_domains": ["{domain}", "www.{domain}"],
    "port": {port},
    "username": "deploy-v1",
    "memory_limit": "64m",
    "memory_reservation": "32m",
    "created": "2025-10-08T14:30:15+02:00",
    "current_version": "{V1_VERSION}"
}}"#
        ),
    )
    .expect("v1 config.json");

    let container = domain.as_str().replace('.', "-");
    env.docker
        .run_container_named(
            &container,
            ContainerCreateBody {
                image: Some(format!("{domain}:latest")),
                env: Some(vec!["SECRET_TOKEN=abc$def".into()]),
                exposed_ports: Some(vec![format!("{port}/tcp")]),
                host_config: Some(HostConfig {
                    port_bindings: Some(HashMap::from([(
                        format!("{port}/tcp"),
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(port.to_string()),
                        }]),
                    )])),
                    memory: Some(64 << 20),
                    memory_reservation: Some(32 << 20),
                    restart_policy: Some(RestartPolicy {
                        name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                        maximum_retry_count: None,
                    }),
                    binds: Some(vec![format!("{}:/app/logs", dir.join("logs").display())]),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await;

    // v1's nginx site (register's HTTP-only template), linked as v1 does.
    let token = domain.as_str().replace('.', "_");
    let site = format!(
        "upstream {token}_backend {{ server 127.0.0.1:{port}; }}\n\
         server {{\n    listen {listen};\n    server_name {domain};\n\
         \x20   location / {{ proxy_pass http://{token}_backend; proxy_set_header Host $host; }}\n}}\n",
        listen = env.nginx.listen(),
    );
    let available = env.nginx.v1_sites_available().join(domain.as_str());
    std::fs::write(&available, site).expect("v1 nginx site");
    std::os::unix::fs::symlink(
        &available,
        env.nginx.v1_sites_enabled().join(domain.as_str()),
    )
    .expect("sites-enabled link");
    env.nginx.reload().await.expect("nginx loads v1's site");
    hostkit_tests::wait_until(
        Duration::from_secs(10),
        "nginx serves v1's site",
        async || env.nginx.get(domain.as_str(), "/").await.ok() == Some((200, "v1 site\n".into())),
    )
    .await;
    V1Site { port, container }
}

fn import_job(env: &Env, domain: &Domain) -> hostkit_proto::Job {
    env.job(
        domain,
        JobSpec::Import(ImportPayload {
            health_timeout_secs: Some(30),
        }),
    )
}

#[tokio::test]
async fn a_v1_site_is_imported_without_downtime() {
    let env = Env::new().await;
    let domain = env.domain();
    let v1 = plant_v1_site(&env, &domain).await;
    let missing = env.domain();
    let missing_dir = env.domain_dir(&missing);
    std::fs::create_dir_all(&missing_dir).expect("dir");
    let missing_config = r#"{"domain": "x", "port": 3999, "redirect_domains": [""]}"#;
    std::fs::write(missing_dir.join("config.json"), missing_config).expect("config");

    // The node lists both sites; the one without a container says why.
    let answer = env
        .client
        .request(
            env.worker
                .names
                .ctl(&env.worker.node, hostkit_proto::ControlVerb::Imports),
            serde_json::to_vec(&ImportsRequest {}).expect("json").into(),
        )
        .await
        .expect("imports reply");
    let listed: Reply<ImportsReply> = serde_json::from_slice(&answer.payload).expect("reply");
    let listed = listed.into_result().expect("ok");
    let ours = listed
        .sites
        .iter()
        .find(|s| s.domain == domain)
        .expect("listed");
    assert_eq!((ours.port, ours.blocked.as_deref()), (Some(v1.port), None));
    let other = listed
        .sites
        .iter()
        .find(|s| s.domain == missing)
        .expect("listed");
    assert!(
        other
            .blocked
            .as_deref()
            .is_some_and(|b| b.contains("no container")),
        "{other:?}"
    );

    // Poll the site through nginx for the whole import.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, bad) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let poller = {
        let (stop, ok, bad, nginx_port, host) = (
            stop.clone(),
            ok.clone(),
            bad.clone(),
            env.nginx.listen_port(),
            domain.to_string(),
        );
        tokio::spawn(async move {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match hostkit_tests::http_get(("127.0.0.1", nginx_port), &host, "/").await {
                    Ok((200, body)) if body == "v1 site\n" => ok.fetch_add(1, Ordering::Relaxed),
                    other => {
                        failures.push(format!("{other:?}"));
                        bad.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            failures
        })
    };
    let (done, events) = env.run(&import_job(&env, &domain)).await;
    stop.store(true, Ordering::Relaxed);
    let failures = poller.await.expect("poller");
    assert_eq!(succeeded_version(&done), 1, "{done:?}\n{events:#?}");
    assert!(
        failures.is_empty(),
        "the site failed during the import: {failures:?}"
    );
    assert!(ok.load(Ordering::Relaxed) > 20, "the poller ran throughout");
    assert_eq!(bad.load(Ordering::Relaxed), 0);

    // HostKit's container serves now; v1's is stopped and stays stopped.
    assert_eq!(env.get(&domain).await, (200, "v1 site\n".into()));
    let ids = env.image_ids(&domain).await;
    assert_eq!(ids.keys().collect::<Vec<_>>(), ["web"]);
    let old = env
        .docker
        .client()
        .inspect_container(&v1.container, None)
        .await
        .expect("v1's container is kept");
    assert_eq!(old.state.and_then(|s| s.running), Some(false));
    assert_eq!(
        old.host_config
            .and_then(|h| h.restart_policy)
            .and_then(|r| r.name),
        Some(RestartPolicyNameEnum::NO)
    );
    assert_eq!(old.image, ids.get("web").cloned(), "the same image runs");

    // The new container was given what v1's was: env, memory, logs bind.
    let inventory =
        hostkit_deploy::engine::inventory::Inventory::load(env.docker.client(), &domain.token())
            .await
            .expect("inventory");
    let web = inventory.all().next().expect("a container");
    let new = env
        .docker
        .client()
        .inspect_container(&web.id, None)
        .await
        .expect("inspect");
    let config = new.config.expect("config");
    assert!(
        config
            .env
            .unwrap_or_default()
            .contains(&"SECRET_TOKEN=abc$def".to_string()),
        "env kept literally"
    );
    let host = new.host_config.expect("host config");
    assert_eq!(host.memory, Some(64 << 20));
    assert_eq!(host.memory_reservation, Some(32 << 20));
    assert!(
        host.binds
            .unwrap_or_default()
            .iter()
            .any(|b| b.ends_with("/logs:/app/logs:rw") || b.ends_with("/logs:/app/logs")),
        "logs bind kept"
    );
    let said = serde_json::to_string(&events).expect("json");
    assert!(
        !said.contains("abc$def"),
        "the env value reached an event: {said}"
    );

    // nginx: v1's link retired, its file kept for v1's tools.
    assert!(
        std::fs::symlink_metadata(env.nginx.v1_sites_enabled().join(domain.as_str())).is_err(),
        "v1's sites-enabled link is retired"
    );
    assert!(
        env.nginx
            .v1_sites_available()
            .join(domain.as_str())
            .is_file()
    );

    // config.json: the seed's schema, v1's fields kept.
    let view: hostkit_proto::view::DomainConfig = serde_json::from_slice(
        &std::fs::read(env.domain_dir(&domain).join("config.json")).expect("config.json"),
    )
    .expect("the view's schema");
    assert_eq!(view.kind, hostkit_proto::view::SiteKind::Single);
    assert_eq!(view.current_version.as_deref(), Some("v1"));
    assert_eq!(view.created, "2025-10-08T14:30:15+02:00");
    assert_eq!(view.username.as_deref(), Some("deploy-v1"));
    assert_eq!(view.memory_limit.as_deref(), Some("64m"));
    // v1's redirect domain keeps answering as v1 did: 301 to the domain.
    let www = format!("www.{domain}");
    assert_eq!(view.redirect_domains, [www.as_str()]);
    let response = hostkit_tests::http_request(("127.0.0.1", env.nginx.listen_port()), &www, "/x")
        .await
        .expect("HTTP through nginx");
    assert_eq!(response.status, 301, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some(format!("http://{domain}/x").as_str())
    );
    let compose = std::fs::read_to_string(env.domain_dir(&domain).join("docker-compose.yml"))
        .expect("compose file");
    assert!(
        compose.contains(&format!("{domain}:{V1_VERSION}")),
        "{compose}"
    );

    // Importing again is refused; the running site is untouched.
    let (again, _) = env.run(&import_job(&env, &domain)).await;
    let (code, message) = failure(&again);
    assert_eq!(code, ErrorCode::ImportUnavailable);
    assert!(message.contains("already managed by HostKit"), "{message}");
    assert_eq!(env.get(&domain).await, (200, "v1 site\n".into()));

    // A site without its container is left exactly as it was.
    let (refused, _) = env.run(&import_job(&env, &missing)).await;
    let (code, message) = failure(&refused);
    assert_eq!(code, ErrorCode::ImportUnavailable, "{message}");
    assert!(message.contains("no container"), "{message}");
    assert_eq!(
        std::fs::read_to_string(missing_dir.join("config.json")).expect("kept"),
        missing_config
    );
}

#[tokio::test]
async fn an_import_that_fails_its_health_gate_leaves_the_v1_site_serving() {
    let env = Env::new().await;
    let domain = env.domain();
    // The image serves, but its healthcheck never passes: v1 (no health
    // gate) runs it; HostKit's copy fails the gate.
    let v1 = plant_v1_site_with(&env, &domain, |image| {
        image.healthcheck(hostkit_tests::Healthcheck::cmd(["false"]))
    })
    .await;
    let config_before =
        std::fs::read_to_string(env.domain_dir(&domain).join("config.json")).expect("config");

    let job = env.job(
        &domain,
        JobSpec::Import(ImportPayload {
            health_timeout_secs: Some(5),
        }),
    );
    let (done, _) = env.run(&job).await;
    let (code, message) = failure(&done);
    assert!(
        matches!(code, ErrorCode::HealthFailed | ErrorCode::HealthTimeout),
        "{code:?}: {message}"
    );
    assert!(
        message.contains("v1's container keeps serving"),
        "{message}"
    );

    // v1's site is exactly as it was: container running, link enabled,
    // config.json unchanged, nginx serving it; nothing of HostKit's is left.
    let old = env
        .docker
        .client()
        .inspect_container(&v1.container, None)
        .await
        .expect("v1's container");
    assert_eq!(old.state.and_then(|s| s.running), Some(true));
    assert!(
        std::fs::symlink_metadata(env.nginx.v1_sites_enabled().join(domain.as_str())).is_ok(),
        "v1's link is still enabled"
    );
    assert_eq!(
        std::fs::read_to_string(env.domain_dir(&domain).join("config.json")).expect("config"),
        config_before
    );
    assert_eq!(env.get(&domain).await, (200, "v1 site\n".into()));
    assert!(
        env.image_ids(&domain).await.is_empty(),
        "HostKit's copy is removed"
    );
}
