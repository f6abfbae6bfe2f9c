//! Lifecycle hooks and `type: image` mounts against the real engine, each
//! checked from outside: a `post_start` hook's file served through nginx, a
//! failing `pre_start` leaving the old replica serving, a `pre_stop` hook's
//! line on a volume the next replica serves, and an image mount refused by
//! an engine older than API 1.48 (or served by a newer one).

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;
use hostkit_deploy::engine::hooks::{HOOK_LABEL, HookKind};
use hostkit_deploy::error::DeployError;
use hostkit_deploy::progress::Progress;

use super::site::Site;

/// The web fixture as the main service with `extra` service lines.
fn web(version: &str, extra: &str) -> String {
    format!(
        "services:\n  web:\n    image: hostkit-test/web:{version}\n    ports: [\"8080\"]\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\n{extra}"
    )
}

/// Containers of the site's project that a `pre_start` hook left.
async fn hook_containers(site: &Site) -> Vec<String> {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![
            format!("com.docker.compose.project={}", site.domain.token()),
            format!("{HOOK_LABEL}=pre_start"),
        ],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    site.docker
        .client()
        .list_containers(Some(options))
        .await
        .expect("list containers")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn a_post_start_hook_runs_in_the_started_replica_with_the_service_environment() {
    let site = Site::new().await;
    let compose = web(
        "v1",
        "    environment:\n      SITE: from-service\n    post_start:\n      - command: sh -c 'echo \"started $$FIXTURE_VERSION $$SITE $$HOOK_VAR in $$(pwd)\" > /www/hook.txt'\n        environment:\n          HOOK_VAR: from-hook\n        working_dir: /tmp\n",
    );
    site.deploy(&compose).await.expect("deploy");
    let (status, body) = site.get("/hook.txt").await.expect("through nginx");
    assert_eq!(
        (status, body.as_str()),
        (200, "started v1 from-service from-hook in /tmp\n"),
        "the hook ran in the replica nginx serves, with the container's and its own environment"
    );
}

#[tokio::test]
async fn a_failing_pre_start_hook_fails_the_start_and_the_old_replica_keeps_serving() {
    let site = Site::new().await;
    // A hook in another image initialises the volume the service serves.
    let with_pre_start = |version: &str, hook: &str| {
        format!(
            "{}    environment:\n      SITE: from-service\n    volumes:\n      - data:/www/data\n    pre_start:\n{hook}volumes:\n  data: {{}}\n",
            web(version, "")
        )
    };
    let good = "      - image: hostkit-test/api:v1\n        command: [sh, -c, 'echo \"initialized by $$FIXTURE for $$SITE\" > /www/data/init.txt']\n";
    site.deploy(&with_pre_start("v1", good))
        .await
        .expect("deploy v1");
    let (status, body) = site.get("/data/init.txt").await.expect("through nginx");
    assert_eq!(
        (status, body.as_str()),
        (200, "initialized by api for from-service\n"),
        "the pre_start container ran the hook's image with the service's environment and volume"
    );
    assert!(
        hook_containers(&site).await.is_empty(),
        "the hook's container is removed once it ran"
    );
    let before = site.containers().await;

    let bad = "      - command: [sh, -c, 'echo migration failed >&2; exit 2']\n";
    let error = site
        .deploy(&with_pre_start("v2", bad))
        .await
        .expect_err("a failing pre_start fails the deploy");
    assert_eq!(error.code(), "health.failed", "{error}");
    let DeployError::Hook(failure) = &error else {
        panic!("{error}")
    };
    assert_eq!(
        (failure.kind, failure.index, failure.exit_code),
        (HookKind::PreStart, 0, Some(2))
    );
    let message = error.to_string();
    assert!(
        message.contains("pre_start[0]")
            && message.contains("exited with status 2")
            && message.contains("migration failed"),
        "{message}"
    );
    // The new replica never started and is gone; the old one serves.
    assert_eq!(site.containers().await, before);
    assert!(hook_containers(&site).await.is_empty());
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

#[tokio::test]
async fn a_pre_stop_hook_runs_in_the_replaced_replica_and_a_failing_one_is_only_a_warning() {
    let site = Site::new().await;
    let compose = |version: &str| {
        format!(
            "{}    volumes:\n      - log:/www/log\n    pre_stop:\n      - command: sh -c 'echo \"stopping $$(hostname) $$FIXTURE_VERSION\" >> /www/log/pre_stop.txt'\n      - command: sh -c 'echo cannot drain >&2; exit 4'\nvolumes:\n  log: {{}}\n",
            web(version, "")
        )
    };
    site.deploy(&compose("v1")).await.expect("deploy v1");
    let old = site.containers().await;
    let old_id = old.values().next().expect("one replica").clone();

    site.deploy(&compose("v2")).await.expect("deploy v2");
    let now = site.containers().await;
    assert!(
        !now.values().any(|id| *id == old_id),
        "the old replica was stopped and removed although a hook failed"
    );
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v2\n".to_string())
    );
    // The first hook ran in the old replica, before it stopped: its line
    // is on the volume the new replica serves.
    let (status, log) = site.get("/log/pre_stop.txt").await.expect("through nginx");
    assert_eq!(status, 200);
    assert_eq!(
        log,
        format!("stopping {} v1\n", &old_id[..12]),
        "one line, from the old replica"
    );
    // The second one failed: a warning naming it, its status and output.
    let warnings: Vec<String> = site
        .sink
        .reports()
        .into_iter()
        .filter_map(|r| match r {
            Progress::Warning { message } => Some(message),
            _ => None,
        })
        .collect();
    assert!(
        warnings.iter().any(|w| w.contains("pre_stop[1]")
            && w.contains("exited with status 4")
            && w.contains("cannot drain")
            && w.contains("stopping it anyway")),
        "{warnings:?}"
    );
}

#[tokio::test]
async fn an_image_mount_needs_api_1_48_and_an_older_engine_refuses_it_before_touching_anything() {
    let site = Site::new().await;
    let compose = web(
        "v1",
        "    volumes:\n      - type: image\n        source: hostkit-test/api:v1\n        target: /www/api\n        image:\n          subpath: www\n",
    );
    let version = site.docker.client().client_version();
    let api = (version.major_version, version.minor_version);
    let result = site.deploy(&compose).await;
    if api < (1, 48) {
        let error = result.expect_err("an engine before API 1.48 cannot mount an image");
        assert_eq!(error.code(), "compose.unsupported");
        assert_eq!(
            error.to_string(),
            format!(
                "services.web: the `type: image` mount at `/www/api` needs Docker Engine 28 (API 1.48) or newer; this node's engine speaks API {}.{}",
                api.0, api.1
            )
        );
        assert!(error.hint().contains("upgrade the node's Docker Engine"));
        assert!(site.containers().await.is_empty(), "nothing was created");
    } else {
        result.expect("an engine with API 1.48 mounts the image");
        assert_eq!(
            site.get("/api/index.html").await.expect("through nginx"),
            (200, "api v1\n".to_string())
        );
    }
}
