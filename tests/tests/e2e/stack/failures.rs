//! Failure paths: an unhealthy service fails the gate with its log tail and
//! the old main replica keeps serving; a missing image and a corrupt tarball
//! change nothing.

use hostkit_deploy::error::{DeployError, FailureReason};
use hostkit_deploy::images::{self, ImageError};
use hostkit_deploy::progress::NoProgress;

use super::site::{Site, web_only};

#[tokio::test]
async fn an_unhealthy_main_service_fails_the_gate_and_the_old_one_keeps_serving() {
    let site = Site::new().await;
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");
    let before = site.containers().await;

    let unhealthy =
        web_only("v1", 1).replace("hostkit-test/web:v1", "hostkit-test/web-unhealthy:v3");
    let err = site
        .deploy(&unhealthy)
        .await
        .expect_err("the gate must fail");
    assert_eq!(err.code(), "health.timeout");
    let DeployError::HealthGate { failures } = &err else {
        panic!("{err}")
    };
    assert_eq!(failures[0].service, "web");
    assert!(
        matches!(&failures[0].reason, FailureReason::NotReady(n) if n.health == Some(hostkit_proto::control::HealthState::Unhealthy)),
        "{failures:?}"
    );
    assert!(
        failures[0].log_tail.iter().any(|l| l.contains("serving")),
        "log tail: {:?}",
        failures[0].log_tail
    );

    // The old replica still serves and the failed one is gone.
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
    assert_eq!(site.containers().await, before);
}

#[tokio::test]
async fn a_missing_image_fails_before_any_container_is_touched() {
    let site = Site::new().await;
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");
    let before = site.containers().await;

    let missing = web_only("v1", 1).replace("hostkit-test/web:v1", "hostkit-test/nope:v9");
    let err = site.deploy(&missing).await.expect_err("missing image");
    assert_eq!(err.code(), "image.missing");
    assert!(err.to_string().contains("hostkit-test/nope:v9"), "{err}");
    assert_eq!(site.containers().await, before);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

#[tokio::test]
async fn a_corrupt_tarball_is_image_load_failed_and_changes_nothing() {
    let site = Site::new().await;
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");
    let before = site.containers().await;

    let garbage: Vec<u8> = (0..300_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let err = images::load_reader(
        site.docker.client(),
        std::io::Cursor::new(garbage),
        None,
        &NoProgress,
    )
    .await
    .expect_err("garbage must not load");
    assert!(matches!(err, ImageError::LoadFailed { .. }), "{err}");
    assert_eq!(err.code(), "image.load_failed");

    // A truncated real tarball fails the same way.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("images.tar");
    hostkit_tests::TarballBuilder::new()
        .image(
            hostkit_tests::fixtures::web("v1").retag(format!("{}/web:trunc", site.domain.token())),
        )
        .write_to(&path)
        .unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let truncated = bytes[..bytes.len() / 2].to_vec();
    let err = images::load_reader(
        site.docker.client(),
        std::io::Cursor::new(truncated),
        None,
        &NoProgress,
    )
    .await
    .expect_err("a truncated tarball must not load");
    assert_eq!(err.code(), "image.load_failed", "{err}");

    assert_eq!(site.containers().await, before);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

#[tokio::test]
async fn nginx_rejecting_its_config_is_proxy_invalid_and_keeps_the_previous_file() {
    let site = Site::new().await;
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");
    let conf = site.nginx.conf_dir().join(format!("{}.conf", site.domain));
    let before = std::fs::read_to_string(&conf).expect("domain file");
    // A broken neighbour file makes `nginx -t` fail for any change.
    std::fs::write(
        site.nginx.conf_dir().join("broken.conf"),
        "this is not nginx;\n",
    )
    .unwrap();
    let err = site
        .deploy(&web_only("v2", 1))
        .await
        .expect_err("nginx -t must fail");
    assert_eq!(err.code(), "proxy.invalid", "{err}");
    assert!(err.to_string().contains("broken.conf"), "{err}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), before);
    std::fs::remove_file(site.nginx.conf_dir().join("broken.conf")).unwrap();
    // The old replica still serves through the old config.
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}
