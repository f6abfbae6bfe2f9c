//! Worker features beyond the main flow: signed jobs, single-image deploys
//! from a path on the host, version retention, secrets kept out of events,
//! redirect domains (from a v1 `config.json`, sticky, cleared).

use std::time::Duration;

use hostkit_proto::job::{DeployOptions, DeployPayload, DeploySource, ImageSource, SingleImage};
use hostkit_proto::{ErrorCode, EventKind, Job, JobSpec};
use hostkit_tests::{JobEvents, TarballBuilder, fixtures, publish_job};

use super::env::{Env, failure, succeeded_version, web};

#[tokio::test]
async fn a_worker_requiring_signatures_refuses_unsigned_jobs_and_runs_signed_ones() {
    let key = nkeys::KeyPair::new_user();
    let public = key.public_key();
    let env = Env::with_settings(|s| {
        s.require_signed = true;
        s.trusted_keys = vec![hostkit_proto::TrustedKey::any_domain(public)];
    })
    .await;
    let domain = env.domain();
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;

    let unsigned = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    let (refused, _) = env.run(&unsigned).await;
    assert!(
        matches!(
            &refused.kind,
            EventKind::Failed {
                code: ErrorCode::JobUnauthorized,
                ..
            }
        ),
        "{refused:?}"
    );

    let mut signed = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    env.sign(&mut signed, &key);
    let (done, _) = env.run(&signed).await;
    assert_eq!(succeeded_version(&done), 1);

    // A signature by an untrusted key is refused too.
    let mut forged = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    env.sign(&mut forged, &nkeys::KeyPair::new_user());
    let (refused, _) = env.run(&forged).await;
    assert!(
        matches!(
            &refused.kind,
            EventKind::Failed {
                code: ErrorCode::JobUnauthorized,
                ..
            }
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_single_image_from_a_path_on_the_host_becomes_a_one_service_stack() {
    let image_dir = tempfile::tempdir().expect("image dir");
    let image_dir_path = image_dir.path().to_path_buf();
    let env = Env::with_settings(|s| s.image_dir = Some(image_dir_path)).await;
    let domain = env.domain();
    let tag = format!("{}/site:v1", domain.token());
    env.docker.register_image(tag.clone());
    let path = image_dir.path().join("site.tar");
    TarballBuilder::new()
        .image(fixtures::web("v1").retag(&tag))
        .write_to(&path)
        .expect("tarball");
    let job_for = |path: &std::path::Path| {
        Job::new(
            domain.clone(),
            JobSpec::Deploy(DeployPayload {
                source: DeploySource::Image(SingleImage {
                    reference: tag.clone(),
                    port: Some(8080),
                }),
                images: vec![ImageSource::Path {
                    path: path.display().to_string(),
                }],
                env: Default::default(),
                sealed_env: None,
                options: DeployOptions::default(),
            }),
            "e2e",
        )
    };

    // Only files under the node's image directory, never through a link.
    let outside = env.dir.path().join("site.tar");
    std::fs::copy(&path, &outside).expect("copy");
    let link = image_dir.path().join("link.tar");
    std::os::unix::fs::symlink(&outside, &link).expect("symlink");
    for refused in [&outside, &link] {
        let (failed, _) = env.run(&job_for(refused)).await;
        let (code, message) = failure(&failed);
        assert_eq!(code, ErrorCode::PolicyDenied, "{refused:?}: {message}");
        assert!(message.contains("[image-path]"), "{message}");
    }

    let (done, _) = env.run(&job_for(&path)).await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
    let compose =
        std::fs::read_to_string(env.domain_dir(&domain).join("docker-compose.yml")).unwrap();
    assert!(compose.contains(&tag), "{compose}");
    let config: hostkit_proto::view::DomainConfig = serde_json::from_slice(
        &std::fs::read(env.domain_dir(&domain).join("config.json")).expect("config.json"),
    )
    .expect("the seed's schema");
    assert_eq!(config.kind, hostkit_proto::view::SiteKind::Single);
    assert_eq!(config.services["web"].internal_port, Some(8080));
}

#[tokio::test]
async fn retention_keeps_the_newest_versions_and_untags_the_rest() {
    let env = Env::with_settings(|s| s.retention = 2).await;
    let domain = env.domain();
    let images = env
        .upload("all", vec![fixtures::web("v1"), fixtures::web("v2")])
        .await;
    for (n, image) in ["v1", "v2", "v1", "v2"].iter().enumerate() {
        let job = env.deploy_job(
            &domain,
            &web(&format!("hostkit-test/web:{image}")),
            vec![images.clone()],
        );
        let (done, _) = env.run(&job).await;
        assert_eq!(succeeded_version(&done), n as u32 + 1);
    }
    let project = domain.token();
    let tag_exists = |v: u32| {
        let docker = env.docker.client().clone();
        let tag = format!("{project}/web:v{v}");
        async move { docker.inspect_image(&tag).await.is_ok() }
    };
    hostkit_tests::wait_until(
        Duration::from_secs(10),
        "pruned versions lose their tags",
        async || !tag_exists(1).await && !tag_exists(2).await,
    )
    .await;
    assert!(
        tag_exists(3).await && tag_exists(4).await,
        "kept versions keep their tags"
    );
    let dir = env.domain_dir(&domain);
    assert!(
        !dir.join("docker-compose.v1.yml").exists() && dir.join("docker-compose.v4.yml").exists()
    );
}

#[tokio::test]
async fn env_values_never_reach_events() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    let secret = "s3cr3t-value-that-must-not-leak";
    let compose = web("hostkit-test/web:v1").replace(
        "    healthcheck:",
        "    environment:\n      DB_PASSWORD: ${DB_PASSWORD:?set it}\n    healthcheck:",
    );
    let mut job = env.deploy_job(&domain, &compose, vec![images]);
    if let JobSpec::Deploy(payload) = &mut job.spec {
        payload.env.insert("DB_PASSWORD", secret);
    }
    let mut everything = env.client.subscribe("hostkit.>").await.expect("subscribe");
    let mut events = JobEvents::subscribe(&env.client, &env.worker.names, &domain).await;
    publish_job(&env.js, &env.worker.names, &env.worker.node, &job).await;
    let done = events.terminal(&job.id, Duration::from_secs(60)).await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    // The container got it…
    let (_, body) = env
        .nginx
        .get(domain.as_str(), "/cgi-bin/env")
        .await
        .expect("env page");
    assert!(body.contains(&format!("DB_PASSWORD={secret}")), "{body}");
    // …and nothing else published on hostkit.> carried it, except the job itself.
    use futures_util::StreamExt;
    let jobs_prefix = "hostkit.jobs.";
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), everything.next()).await
    {
        if message.subject.starts_with(jobs_prefix) {
            continue;
        }
        let text = String::from_utf8_lossy(&message.payload);
        assert!(
            !text.contains(secret),
            "{} leaked the secret: {text}",
            message.subject
        );
    }
}

#[tokio::test]
async fn redirect_domains_come_from_a_v1_config_json_stay_and_can_be_cleared() {
    let env = Env::new().await;
    let domain = env.domain();
    let www = format!("www.{domain}");
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    // HostKit v1's file, with its `""` quirk beside a real name.
    let dir = env.domain_dir(&domain);
    std::fs::create_dir_all(&dir).unwrap();
    let v1 = serde_json::json!({
        "domain": domain.as_str(), "redirect_domains": [www, ""],
        "all_domains": [domain.as_str(), www], "port": 3000,
        "username": "none", "created": "2025-10-08T14:30:15+02:00", "current_version": null,
    });
    std::fs::write(dir.join("config.json"), v1.to_string()).unwrap();

    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    assert_eq!(succeeded_version(&env.run(&job).await.0), 1);
    let http = ("127.0.0.1", env.nginx.listen_port());
    let redirected = |path: &'static str| {
        let www = www.clone();
        async move {
            hostkit_tests::http_request(http, &www, path)
                .await
                .expect("HTTP through nginx")
        }
    };
    let response = redirected("/p?q=1").await;
    assert_eq!(response.status, 301, "{response:?}");
    assert_eq!(
        response.header("location"),
        Some(format!("http://{domain}/p?q=1").as_str())
    );
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
    let config: hostkit_proto::view::DomainConfig =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert_eq!(config.redirect_domains, [www.as_str()]);

    // A deploy that does not mention them keeps them; an empty list clears them.
    let job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    assert_eq!(succeeded_version(&env.run(&job).await.0), 2);
    assert_eq!(redirected("/").await.status, 301);
    let mut job = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]);
    if let JobSpec::Deploy(payload) = &mut job.spec {
        payload.options.redirect_domains = Some(Vec::new());
    }
    assert_eq!(succeeded_version(&env.run(&job).await.0), 3);
    assert_eq!(
        redirected("/").await.status,
        404,
        "only the default server knows it now"
    );
    let config: hostkit_proto::view::DomainConfig =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(config.redirect_domains.is_empty());
    assert_eq!(config.all_domains, [domain.to_string()]);
}
