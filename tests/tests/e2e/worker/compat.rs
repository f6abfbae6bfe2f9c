//! Compose features that need the worker end to end: `environment:` and
//! `content:` secrets and configs become read-only files in the containers
//! (their values in no event, the files removed when no longer used), and a
//! failing `post_start` hook fails the deploy while the previous version
//! keeps serving.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use futures_util::StreamExt;
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_proto::job::{RemovePayload, RollbackPayload};
use hostkit_proto::{ErrorCode, EventKind, Job, JobSpec};
use hostkit_tests::fixtures;

use super::env::{Env, failure, succeeded_version, web};

const STACK: &str = r#"
services:
  web:
    image: hostkit-test/web:v1
    ports: ["8080"]
    healthcheck:
      interval: 1s
      timeout: 3s
      retries: 3
    secrets:
      - source: token
        mode: 0400
    configs:
      - source: site
        target: /www/site.txt
      - source: greeting
        target: /www/greeting.txt
        uid: "1000"
        gid: "1000"
        mode: 0440
secrets:
  token:
    environment: API_TOKEN
configs:
  site:
    content: |
      listen ${PORT:-8080};
      cost $$5
  greeting:
    environment: GREETING
"#;

/// A deploy job of [`STACK`] with `API_TOKEN` set to `token`.
fn deploy(
    env: &Env,
    domain: &hostkit_proto::Domain,
    token: &str,
    images: &hostkit_proto::job::ImageSource,
) -> Job {
    let mut job = env.deploy_job(domain, STACK, vec![images.clone()]);
    if let JobSpec::Deploy(payload) = &mut job.spec {
        payload.env.insert("API_TOKEN", token);
        payload.env.insert("GREETING", "hello");
    }
    job
}

/// The id of the domain's one web replica.
async fn replica(env: &Env, domain: &hostkit_proto::Domain) -> String {
    let inventory = Inventory::load(env.docker.client(), &domain.token())
        .await
        .expect("inventory");
    let all: Vec<_> = inventory.all().collect();
    assert_eq!(all.len(), 1, "one replica");
    all[0].id.clone()
}

/// `cmd` in the domain's web replica, which must succeed: its output.
async fn exec(env: &Env, domain: &hostkit_proto::Domain, cmd: &[&str]) -> String {
    let (code, out) = env.docker.exec(&replica(env, domain).await, cmd).await;
    assert_eq!(code, 0, "{cmd:?}: {out}");
    out
}

/// The files HostKit wrote for the domain: (name, content).
fn written(env: &Env, domain: &hostkit_proto::Domain) -> Vec<(String, String)> {
    let dir = env.domain_dir(domain).join(".hostkit/files");
    let Ok(listing) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, String)> = listing
        .map(|e| e.expect("entry").path())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read_to_string(&p).expect("read"))
        })
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn environment_and_content_secrets_are_read_only_files_whose_values_reach_no_event() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    let first = "first-s3cr3t-value-must-not-leak";
    let second = "second-s3cr3t-value-must-not-leak";

    // Without the variable the deploy is refused, naming it.
    let unset = env.deploy_job(&domain, STACK, vec![images.clone()]);
    let (refused, _) = env.run(&unset).await;
    let (code, message) = failure(&refused);
    assert_eq!(code, ErrorCode::ComposeInvalid, "{message}");
    assert!(
        message.contains("API_TOKEN") && message.contains("secrets.token.environment"),
        "{message}"
    );

    let mut everything = env.client.subscribe("hostkit.>").await.expect("subscribe");
    let job = deploy(&env, &domain, first, &images);
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");

    // The service reads each from its file, with the mode and owner given.
    assert_eq!(
        exec(&env, &domain, &["cat", "/run/secrets/token"]).await,
        first
    );
    assert_eq!(
        exec(
            &env,
            &domain,
            &[
                "stat",
                "-c",
                "%a %u:%g",
                "/run/secrets/token",
                "/www/greeting.txt",
                "/www/site.txt"
            ]
        )
        .await,
        "400 0:0\n440 1000:1000\n444 0:0\n"
    );
    let (status, body) = env
        .nginx
        .get(domain.as_str(), "/site.txt")
        .await
        .expect("nginx");
    assert_eq!(
        (status, body.as_str()),
        (200, "listen 8080;\ncost $5\n"),
        "content is interpolated"
    );
    let (status, body) = env
        .nginx
        .get(domain.as_str(), "/greeting.txt")
        .await
        .expect("nginx");
    assert_eq!((status, body.as_str()), (200, "hello"));
    let (code, _) = env
        .docker
        .exec(
            &replica(&env, &domain).await,
            &["sh", "-c", "echo x > /run/secrets/token"],
        )
        .await;
    assert_ne!(code, 0, "the secret is mounted read-only");

    // On the node: three files under .hostkit/, which only the worker enters.
    let files = written(&env, &domain);
    assert_eq!(
        files.len(),
        3,
        "{:?}",
        files.iter().map(|f| &f.0).collect::<Vec<_>>()
    );
    assert!(files.iter().any(|(_, content)| content == first));
    let hostkit = std::fs::metadata(env.domain_dir(&domain).join(".hostkit")).expect(".hostkit");
    assert_eq!(hostkit.permissions().mode() & 0o777, 0o700);

    // A new value: a new file, the container recreated, the old file gone.
    let job = deploy(&env, &domain, second, &images);
    let (done, _) = env.run(&job).await;
    assert_eq!(succeeded_version(&done), 2, "{done:?}");
    assert_eq!(
        exec(&env, &domain, &["cat", "/run/secrets/token"]).await,
        second
    );
    let files = written(&env, &domain);
    assert_eq!(files.len(), 3);
    assert!(
        files.iter().all(|(_, content)| content != first),
        "the old value's file is removed"
    );

    // No event carried either value (the jobs themselves do, sealed later).
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), everything.next()).await
    {
        if message.subject.starts_with("hostkit.jobs.") {
            continue;
        }
        let text = String::from_utf8_lossy(&message.payload);
        assert!(
            !text.contains(first) && !text.contains(second),
            "{} carried a secret value: {text}",
            message.subject
        );
    }

    // Removing the stack removes the files, and its versions' image tags.
    assert!(!env.version_tags(&domain).await.is_empty());
    let remove = env.job(
        &domain,
        JobSpec::Remove(RemovePayload {
            purge_volumes: false,
        }),
    );
    let (removed, _) = env.run(&remove).await;
    assert!(
        matches!(removed.kind, EventKind::Succeeded { .. }),
        "{removed:?}"
    );
    assert!(written(&env, &domain).is_empty());
    assert!(!env.domain_dir(&domain).join(".hostkit/files").exists());
    assert_eq!(env.version_tags(&domain).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_failing_post_start_hook_fails_the_deploy_and_the_previous_version_keeps_serving() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload("v1v2", vec![fixtures::web("v1"), fixtures::web("v2")])
        .await;
    let v1 = env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images.clone()]);
    let (done, _) = env.run(&v1).await;
    assert_eq!(succeeded_version(&done), 1);

    let hooked = format!(
        "{}    post_start:\n      - command: [sh, -c, 'echo cannot warm up >&2; exit 3']\n",
        web("hostkit-test/web:v2")
    );
    let v2 = env.deploy_job(&domain, &hooked, vec![images]);
    let (failed, _) = env.run(&v2).await;
    let EventKind::Failed {
        code,
        message,
        rolled_back_to,
        ..
    } = &failed.kind
    else {
        panic!("expected failed, got {failed:?}")
    };
    assert_eq!(*code, ErrorCode::HealthFailed, "{message}");
    assert!(
        message.contains("post_start[0]")
            && message.contains("exited with status 3")
            && message.contains("cannot warm up"),
        "{message}"
    );
    assert_eq!(*rolled_back_to, Some(1));
    assert_eq!(env.get(&domain).await, (200, "web v1\n".to_string()));
    assert_eq!(
        env.image_ids(&domain).await.len(),
        1,
        "only the v1 replica is left"
    );
}

#[tokio::test]
async fn a_version_whose_pre_start_hook_has_its_own_image_rolls_back_with_it() {
    let env = Env::new().await;
    let domain = env.domain();
    let images = env
        .upload(
            "hooks",
            vec![
                fixtures::web("v1"),
                fixtures::web("v2"),
                fixtures::api("v1"),
            ],
        )
        .await;
    let with_hook = format!(
        "{}    volumes:\n      - data:/www/data\n    pre_start:\n      - image: hostkit-test/api:v1\n        command: [sh, -c, 'echo $$FIXTURE >> /www/data/runs.txt']\nvolumes:\n  data: {{}}\n",
        web("hostkit-test/web:v1")
    );
    let (done, _) = env
        .run(&env.deploy_job(&domain, &with_hook, vec![images.clone()]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    let runs = async || {
        env.nginx
            .get(domain.as_str(), "/data/runs.txt")
            .await
            .expect("nginx")
    };
    assert_eq!(runs().await, (200, "api\n".to_string()));
    // The hook's image is kept with the version like the services' images.
    let tag = hostkit_deploy::images::other_image_tag(&domain.token(), "hostkit-test/api:v1", 1);
    assert!(
        env.docker.client().inspect_image(&tag).await.is_ok(),
        "{tag} protects the hook's image"
    );

    let without = format!(
        "{}    volumes:\n      - data:/www/data\nvolumes:\n  data: {{}}\n",
        web("hostkit-test/web:v2")
    );
    let (done, _) = env
        .run(&env.deploy_job(&domain, &without, vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 2, "{done:?}");

    // Rolling back re-applies version 1 with the hook's exact image: the
    // hook runs again as the service is recreated.
    let rollback = env.job(
        &domain,
        JobSpec::Rollback(RollbackPayload {
            to_version: Some(1),
            ..Default::default()
        }),
    );
    let (done, _) = env.run(&rollback).await;
    assert!(matches!(done.kind, EventKind::Succeeded { .. }), "{done:?}");
    assert_eq!(env.get(&domain).await, (200, "web v1\n".to_string()));
    assert_eq!(runs().await, (200, "api\napi\n".to_string()));
}
