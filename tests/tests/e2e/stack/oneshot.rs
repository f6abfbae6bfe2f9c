//! `depends_on: condition: service_completed_successfully`: a one-shot
//! service (a migration) runs to completion before its dependents start, and
//! one that exits non-zero fails the deploy before they are created.

use hostkit_deploy::engine::Change;
use hostkit_deploy::error::{DeployError, FailureReason};
use hostkit_deploy::progress::{Progress, ServiceState};
use hostkit_tests::fixtures;

use super::site::Site;

/// web waits for migrate to complete; `migrate_command` overrides its command.
fn with_migration(migrate_command: Option<&str>) -> String {
    let command = migrate_command
        .map(|c| format!("    command: {c}\n"))
        .unwrap_or_default();
    format!(
        r#"
services:
  web:
    image: hostkit-test/web:v1
    ports: ["8080"]
    depends_on:
      migrate:
        condition: service_completed_successfully
    healthcheck:
      interval: 1s
      timeout: 3s
      retries: 3
  migrate:
    image: hostkit-test/oneshot:v1
{command}"#
    )
}

/// An engine timestamp (RFC 3339 in UTC, up to nanoseconds, trailing zeros
/// trimmed) as a comparable (seconds, nanoseconds) pair.
fn instant(timestamp: &str) -> (String, u32) {
    let utc = timestamp
        .strip_suffix('Z')
        .unwrap_or_else(|| panic!("not a UTC timestamp: {timestamp}"));
    let (seconds, fraction) = utc.split_once('.').unwrap_or((utc, ""));
    let nanos = format!("{fraction:0<9}")
        .parse()
        .unwrap_or_else(|e| panic!("bad fraction in {timestamp}: {e}"));
    (seconds.to_string(), nanos)
}

async fn oneshot_site() -> Site {
    let site = Site::new().await;
    site.docker.load_images([fixtures::oneshot("v1")]).await;
    site
}

#[tokio::test]
async fn a_completed_oneshot_runs_before_the_service_that_waits_for_it() {
    let site = oneshot_site().await;
    let applied = site.deploy(&with_migration(None)).await.expect("deploy");
    assert_eq!(applied.services["migrate"].change, Change::Created);
    assert_eq!(applied.services["web"].change, Change::Created);

    let docker = site.docker.client();
    let migrate = &applied.services["migrate"].replicas[0];
    let migrate_state = docker
        .inspect_container(&migrate.id, None)
        .await
        .expect("inspect migrate")
        .state
        .unwrap_or_default();
    assert_eq!(migrate_state.running, Some(false), "{migrate_state:?}");
    assert_eq!(migrate_state.exit_code, Some(0), "{migrate_state:?}");
    let web = &applied.services["web"].replicas[0];
    let web_state = docker
        .inspect_container(&web.id, None)
        .await
        .expect("inspect web")
        .state
        .unwrap_or_default();
    assert_eq!(web_state.running, Some(true));
    let finished = instant(migrate_state.finished_at.as_deref().expect("FinishedAt"));
    let started = instant(web_state.started_at.as_deref().expect("StartedAt"));
    assert!(
        finished < started,
        "web started at {started:?}, before migrate finished at {finished:?}"
    );

    let reports = site.sink.reports();
    let position = |service: &str, state: ServiceState| {
        reports.iter().position(|r| {
            matches!(r, Progress::Service { service: s, state: st, .. } if s == service && *st == state)
        })
    };
    let completed = position("migrate", ServiceState::Completed).expect("migrate completed");
    let web_started = position("web", ServiceState::Started).expect("web started");
    assert!(completed < web_started, "{reports:?}");

    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );

    // A no-op redeploy leaves the completed one-shot as it is (not re-run).
    let again = site
        .deploy(&with_migration(None))
        .await
        .expect("no-op redeploy");
    assert!(!again.touched_anything(), "{again:?}");
}

#[tokio::test]
async fn a_failing_oneshot_fails_the_deploy_and_its_dependent_never_starts() {
    let site = oneshot_site().await;
    let compose = with_migration(Some(r#"["sh", "-c", "echo migration failed; exit 3"]"#));
    let err = site
        .deploy(&compose)
        .await
        .expect_err("the deploy must fail");
    assert_eq!(err.code(), "health.timeout", "{err}");
    assert!(err.to_string().contains("migrate"), "{err}");
    let DeployError::HealthGate { failures } = &err else {
        panic!("not a health gate failure: {err}")
    };
    assert_eq!(failures.len(), 2, "{failures:?}");
    assert_eq!(failures[0].service, "migrate");
    match &failures[0].reason {
        FailureReason::NotReady(not_ready) => {
            assert_eq!(not_ready.exit_code, Some(3), "{not_ready:?}");
            assert_eq!(
                not_ready.state,
                hostkit_proto::control::ContainerState::Exited
            );
            assert!(!not_ready.timed_out, "an exit is not a timeout");
        }
        other => panic!("migrate failed for another reason: {other:?}"),
    }
    assert!(
        failures[0]
            .log_tail
            .iter()
            .any(|l| l.contains("migration failed")),
        "log tail: {:?}",
        failures[0].log_tail
    );
    assert_eq!(failures[1].service, "web");
    assert_eq!(
        failures[1].reason,
        FailureReason::DependencyFailed {
            dependency: "migrate".into()
        }
    );

    // web was never created, and nginx was never pointed at anything.
    let containers = site.containers().await;
    assert_eq!(
        containers.keys().collect::<Vec<_>>(),
        [&format!("{}-migrate-1", site.domain.token())],
        "{containers:?}"
    );
    let reports = site.sink.reports();
    assert!(
        !reports.iter().any(|r| matches!(
            r,
            Progress::Service { service, .. } if service == "web"
        )),
        "{reports:?}"
    );
    assert!(
        !reports
            .iter()
            .any(|r| matches!(r, Progress::ProxySwitched { .. }))
    );
    assert!(
        !site
            .nginx
            .conf_dir()
            .join(format!("{}.conf", site.domain))
            .exists()
    );
}
