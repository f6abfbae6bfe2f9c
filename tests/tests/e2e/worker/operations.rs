//! Operations on a running stack (DESIGN §12): one-off commands (`exec`)
//! and stored variables (`env`), against the real engine and nginx.

use std::time::Duration;

use hostkit_proto::job::{EnvPayload, ExecPayload, RestartPayload};
use hostkit_proto::{ErrorCode, EventKind, JobSpec};
use hostkit_tests::fixtures;

use super::env::{Env, failure, succeeded_version, web};

fn exec(service: &str, script: &str, timeout_secs: Option<u32>) -> JobSpec {
    JobSpec::Exec(ExecPayload {
        service: service.into(),
        command: vec!["sh".into(), "-c".into(), script.into()],
        timeout_secs,
    })
}

#[tokio::test]
async fn exec_streams_output_in_order_is_bounded_in_time_and_denied_unless_allowed() {
    // Only this one domain may run commands.
    let mut allowed = None;
    let env = Env::with_docker_settings(|settings, docker| {
        let domain = docker.unique_domain();
        settings.exec_domains = vec![domain.parse().expect("a pattern")];
        allowed = Some(domain);
    })
    .await;
    let domain: hostkit_proto::Domain = allowed.expect("set").parse().expect("a domain");
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");

    // Output arrives as `output` events, in order, per stream; the status
    // ends the job; the command sees the service's environment.
    let (done, events) = env
        .run(&env.job(
            &domain,
            exec(
                "web",
                "for i in 1 2 3; do echo line-$i; done; echo bad >&2; echo $FIXTURE; exit 4",
                None,
            ),
        ))
        .await;
    let output: Vec<(String, Vec<String>)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Output { stream, lines } => Some((stream.clone(), lines.clone())),
            _ => None,
        })
        .collect();
    let stdout: Vec<String> = output
        .iter()
        .filter(|(s, _)| s == "stdout")
        .flat_map(|(_, l)| l.clone())
        .collect();
    assert_eq!(stdout, ["line-1", "line-2", "line-3", "web"], "{output:?}");
    assert!(
        output.iter().any(|(s, l)| s == "stderr" && l == &["bad"]),
        "{output:?}"
    );
    let EventKind::Failed {
        code, exit_code, ..
    } = &done.kind
    else {
        panic!("{done:?}")
    };
    assert_eq!((*code, *exit_code), (ErrorCode::ExecFailed, Some(4)));

    // A command past its time is killed and fails the job.
    let started = std::time::Instant::now();
    let (done, _) = env
        .run(&env.job(&domain, exec("web", "sleep 60", Some(2))))
        .await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::ExecFailed);
    assert!(message.contains("did not finish within 2s"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // A domain the worker does not allow is refused before anything runs.
    let other = env.domain();
    let (done, _) = env.run(&env.job(&other, exec("web", "true", None))).await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::ExecDenied, "{message}");

    // Nothing of the runs is left, and the site never stopped serving.
    let (status, body) = env.get(&domain).await;
    assert_eq!((status, body.as_str()), (200, "web v1\n"));
    let containers = env.containers_of(&domain).await;
    assert_eq!(containers.len(), 1, "only the web replica: {containers:?}");
}

#[tokio::test]
async fn stored_variables_are_applied_by_a_restart_and_listed_by_name_only() {
    let env = Env::new().await;
    let domain = env.domain();
    let set = |pairs: &[(&str, &str)]| {
        JobSpec::Env(EnvPayload {
            set: pairs.iter().copied().collect(),
            ..EnvPayload::default()
        })
    };
    let (done, events) = env.run(&env.job(&domain, set(&[("LEVEL", "one")]))).await;
    assert!(
        matches!(done.kind, EventKind::Succeeded { version: None, .. }),
        "{done:?}"
    );
    assert!(
        events.iter().all(|e| !format!("{e:?}").contains("one\"")),
        "a value reached an event: {events:?}"
    );

    let compose = web("hostkit-test/web:v1").replace(
        "    healthcheck:",
        "    environment:\n      LEVEL: level-${LEVEL}\n    healthcheck:",
    );
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &compose, vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    let page = async || {
        env.nginx
            .get(domain.as_str(), "/cgi-bin/env")
            .await
            .expect("env page")
            .1
    };
    assert!(page().await.contains("LEVEL=level-one"));

    // Interpolation sees the new value once the stack restarts.
    env.run(&env.job(&domain, set(&[("LEVEL", "two")]))).await;
    assert!(
        page().await.contains("LEVEL=level-one"),
        "nothing changes before a restart"
    );
    let (done, _) = env
        .run(&env.job(&domain, JobSpec::Restart(RestartPayload { service: None })))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert!(page().await.contains("LEVEL=level-two"));

    // A later restart without changes keeps it (the reloaded project was recorded).
    let (done, events) = env
        .run(&env.job(&domain, JobSpec::Restart(RestartPayload { service: None })))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert!(
        !events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Step { name, .. } if name == "env")),
        "no reload without a change: {events:?}"
    );
    assert!(page().await.contains("LEVEL=level-two"));

    let reply: hostkit_proto::control::EnvReply = env
        .control(&hostkit_proto::control::EnvRequest {
            domain: domain.clone(),
        })
        .await;
    assert_eq!(reply.keys, ["LEVEL"]);
    assert!(reply.updated_at.is_some());
}

/// The db fixture (state in the volume `data`) as the main service, stopped
/// for backups.
fn db_stack() -> String {
    "services:\n  db:\n    image: hostkit-test/db:latest\n    ports: [\"5432\"]\n    labels:\n      hostkit.backup.stop: \"true\"\n    volumes:\n      - data:/data\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\nvolumes:\n  data: {}\n".to_owned()
}

#[tokio::test]
async fn a_volume_survives_backup_wipe_and_restore_and_a_bad_copy_changes_nothing() {
    use hostkit_proto::control::{BackupsReply, BackupsRequest};
    use hostkit_proto::job::{BackupPayload, RestorePayload};

    let env = Env::new().await;
    let domain = env.domain();
    let images = env.upload("db", vec![fixtures::db()]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &db_stack(), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    let page = async |path: &str| {
        let (status, body) = env
            .nginx
            .get(domain.as_str(), path)
            .await
            .expect("through nginx");
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let created = page("/created").await;

    // The backup stops the labelled db for the copy and starts it again.
    let backup = env.job(&domain, JobSpec::Backup(BackupPayload::default()));
    let (done, events) = env.run(&backup).await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert!(
        events.iter().any(
            |e| matches!(&e.kind, EventKind::Service { service, state, .. }
            if service == "db" && *state == hostkit_proto::event::ReplicaState::Stopped)
        ),
        "{events:?}"
    );
    assert_eq!(
        page("/boots").await.lines().count(),
        2,
        "started again once"
    );
    let listed: BackupsReply = env
        .control(&BackupsRequest {
            domain: domain.clone(),
        })
        .await;
    assert_eq!(listed.backups.len(), 1);
    assert_eq!(listed.backups[0].id, backup.id);
    assert_eq!(listed.backups[0].reason, "backup");
    assert_eq!(listed.backups[0].volumes[0].volume, "data");
    assert!(listed.backups[0].volumes[0].size > 0);

    // Wipe the data: the db starts over with a new identity.
    let container = format!("{}-db-1", domain.token());
    let (code, _) = env
        .docker
        .exec(
            &container,
            &["sh", "-c", "rm -rf /data/created /data/boots"],
        )
        .await;
    assert_eq!(code, 0);
    env.run(&env.job(&domain, JobSpec::Restart(RestartPayload { service: None })))
        .await;
    let wiped = page("/created").await;
    assert_ne!(wiped, created, "the wipe took");

    // Restore: the old identity is back; the wiped state is kept aside.
    let (done, events) = env
        .run(&env.job(
            &domain,
            JobSpec::Restore(RestorePayload { backup: backup.id }),
        ))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}: {events:?}");
    assert_eq!(page("/created").await, created);
    let listed: BackupsReply = env
        .control(&BackupsRequest {
            domain: domain.clone(),
        })
        .await;
    let reasons: Vec<&str> = listed.backups.iter().map(|b| b.reason.as_str()).collect();
    assert_eq!(reasons, ["pre_restore", "backup"]);
    let aside = listed.backups[0].id;

    // A copy that does not hold what was backed up: the restore fails and
    // the volume is as it was.
    let bucket = env
        .js
        .get_object_store(env.worker.names.backups_bucket(&env.worker.node))
        .await
        .expect("the backup bucket");
    let object = format!("{}.{}.data", domain.token(), aside);
    let mut forged: &[u8] = b"not a tar of the volume";
    bucket
        .put(object.as_str(), &mut forged)
        .await
        .expect("overwrite");
    let (done, _) = env
        .run(&env.job(&domain, JobSpec::Restore(RestorePayload { backup: aside })))
        .await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::BackupFailed, "{message}");
    assert!(message.contains("put back as they were"), "{message}");
    assert_eq!(page("/created").await, created, "the volume is as it was");

    // An unknown backup is refused by name.
    let (done, _) = env
        .run(&env.job(
            &domain,
            JobSpec::Restore(RestorePayload {
                backup: hostkit_proto::JobId::new(),
            }),
        ))
        .await;
    assert_eq!(failure(&done).0, ErrorCode::BackupNotFound);
}

/// [`db_stack`] with a "migration" that overwrites the data on start, and
/// optionally a healthcheck that never passes.
fn db_stack_corrupting(healthy: bool) -> String {
    let stack = db_stack().replace(
        "    volumes:\n      - data:/data\n",
        "    command: [\"sh\", \"-c\", \"mkdir -p /data && echo corrupted > /data/created && exec db-start\"]\n    volumes:\n      - data:/data\n",
    );
    if healthy {
        stack
    } else {
        stack.replace(
            "    healthcheck:\n",
            "    healthcheck:\n      test: [\"CMD\", \"false\"]\n",
        )
    }
}

#[tokio::test]
async fn a_snapshot_deploy_that_breaks_the_data_is_undone_with_its_data() {
    use hostkit_proto::job::RollbackPayload;

    let env = Env::new().await;
    let domain = env.domain();
    let images = env.upload("db", vec![fixtures::db()]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &db_stack(), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    let page = async |path: &str| {
        let (status, body) = env
            .nginx
            .get(domain.as_str(), path)
            .await
            .expect("through nginx");
        assert_eq!(status, 200, "{path}: {body}");
        body
    };
    let created = page("/created").await;
    let snapshot_deploy = |compose: &str| {
        let mut job = env.deploy_job(&domain, compose, Vec::new());
        if let JobSpec::Deploy(payload) = &mut job.spec {
            payload.options.snapshot = true;
        }
        job
    };

    // v2's "migration" breaks the data; the deploy itself succeeds.
    let (done, events) = env.run(&snapshot_deploy(&db_stack_corrupting(true))).await;
    assert_eq!(succeeded_version(&done), 2, "{done:?}");
    assert!(
        events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Step { name, .. } if name == "snapshot")),
        "{events:?}"
    );
    assert_eq!(page("/created").await, "corrupted\n");

    // Rolling back with the data undoes both.
    let (done, _) = env
        .run(&env.job(
            &domain,
            JobSpec::Rollback(RollbackPayload {
                to_version: None,
                with_data: true,
            }),
        ))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert_eq!(page("/created").await, created);

    // A snapshot deploy that breaks the data and fails its health gate:
    // the auto-rollback puts the data back too.
    let (done, _) = env.run(&snapshot_deploy(&db_stack_corrupting(false))).await;
    let EventKind::Failed {
        rolled_back_to,
        message,
        ..
    } = &done.kind
    else {
        panic!("{done:?}")
    };
    assert_eq!(*rolled_back_to, Some(1), "{message}");
    assert!(message.contains("restored from snapshot"), "{message}");
    assert_eq!(page("/created").await, created);

    // Without a backup of the target's data, `--with-data` changes nothing.
    let other = env.domain();
    let images = env.upload("db-2", vec![fixtures::db()]).await;
    for compose in [db_stack(), db_stack_corrupting(true)] {
        env.run(&env.deploy_job(&other, &compose, vec![images.clone()]))
            .await;
    }
    let (done, _) = env
        .run(&env.job(
            &other,
            JobSpec::Rollback(RollbackPayload {
                to_version: None,
                with_data: true,
            }),
        ))
        .await;
    assert_eq!(failure(&done).0, ErrorCode::BackupNotFound);
    let (_, body) = env
        .nginx
        .get(other.as_str(), "/created")
        .await
        .expect("through nginx");
    assert_eq!(body, "corrupted\n", "v2 still runs");
}

#[tokio::test]
async fn metrics_count_jobs_time_them_and_follow_the_node() {
    let port = hostkit_tests::util::free_port();
    let env = Env::with_settings(|settings| {
        settings.metrics_listen = Some(([127, 0, 0, 1], port).into());
    })
    .await;
    let scrape = async || {
        let (status, body) =
            hostkit_tests::util::http_get(("127.0.0.1", port), "localhost", "/metrics")
                .await
                .expect("the metrics answer");
        assert_eq!(status, 200);
        body
    };
    // The worker binds its metrics address after its JetStream setup,
    // which is what its start waits for: wait (bounded) for it too.
    let before =
        hostkit_tests::wait_for(Duration::from_secs(20), "the metrics answer", async || {
            hostkit_tests::util::http_get(("127.0.0.1", port), "localhost", "/metrics").await
        })
        .await
        .1;
    assert!(before.contains("hostkit_nats_connected 1"), "{before}");
    assert!(!before.contains("hostkit_jobs_total{"), "{before}");

    let domain = env.domain();
    let images = env.upload("v1", vec![fixtures::web("v1")]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    let (done, _) = env
        .run(&env.job(&domain, JobSpec::Restart(RestartPayload { service: None })))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");

    let after = scrape().await;
    for needle in [
        "hostkit_jobs_total{kind=\"deploy\",outcome=\"succeeded\"} 1",
        "hostkit_jobs_total{kind=\"restart\",outcome=\"succeeded\"} 1",
        "hostkit_job_duration_seconds_count{kind=\"deploy\"} 1",
        "hostkit_step_duration_seconds_count{step=\"check\"} 1",
        "hostkit_lane_queue_depth 0",
    ] {
        assert!(after.contains(needle), "{needle} missing:\n{after}");
    }
    let value = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} missing:\n{text}"))
    };
    assert!(
        value(&after, "hostkit_image_bytes_loaded_total") > 0.0,
        "{after}"
    );
    assert!(value(&after, "hostkit_sqlite_bytes") > 0.0, "{after}");
    // The monitor saw the web container turn healthy.
    let healthy = format!("hostkit_service_healthy{{domain=\"{domain}\",service=\"web\"}} 1");
    hostkit_tests::wait_until(Duration::from_secs(20), "the health gauge", async || {
        scrape().await.contains(&healthy)
    })
    .await;
}
