//! Tests of the store, in memory and on disk (temporary directories).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hostkit_deploy::compose::{MainService, Project, Service};
use hostkit_deploy::ports::PortBlock;
use hostkit_proto::{Domain, ErrorCode, JobId, JobKind};
use rusqlite::Connection;

use super::*;

fn domain(name: &str) -> Domain {
    Domain::parse(name).unwrap()
}

fn job(domain_name: &str, kind: JobKind, seq: u64) -> NewJob {
    NewJob {
        job_id: JobId::new(),
        domain: domain(domain_name),
        kind,
        stream_seq: seq,
        raw: br#"{"env":{"SECRET":"hunter2"}}"#.to_vec(),
    }
}

const POOL: PortPool = PortPool {
    start: 20000,
    end: 20099,
    block_len: 10,
};

fn project() -> Project {
    let mut web = Service {
        image: "web:1".to_owned(),
        ..Service::default()
    };
    web.environment
        .insert("SECRET".to_owned(), "hunter2".to_owned());
    let mut project = Project::default();
    project.services.insert("web".to_owned(), web);
    project
}

fn version(domain_name: &str, number: u32, job_id: JobId) -> NewVersion {
    NewVersion {
        domain: domain(domain_name),
        version: number,
        compose_text:
            "services:\n  web:\n    image: web:1\n    environment:\n      SECRET: hunter2\n"
                .to_owned(),
        project: project(),
        main_service: Some(MainService {
            service: "web".to_owned(),
            port: 80,
        }),
        services: vec![
            VersionService {
                service: "web".to_owned(),
                image_ref: "web:1".to_owned(),
                image_id: format!("sha256:web{number}"),
                replicas: 1,
                config_hash: format!("hash-web-{number}"),
            },
            VersionService {
                service: "db".to_owned(),
                image_ref: "db:1".to_owned(),
                image_id: "sha256:db".to_owned(),
                replicas: 1,
                config_hash: "hash-db".to_owned(),
            },
        ],
        other_images: BTreeMap::from([("tools:1".to_owned(), "sha256:tools".to_owned())]),
        env_hash: format!("env-{number}"),
        job_env: [("JOB_SECRET", "from-the-job")].into_iter().collect(),
        seal_key: SealWith::default(),
        job_id,
    }
}

/// Runs a deploy job for `domain_name` to its successful end; answers the
/// version number.
async fn deploy(store: &Store, domain_name: &str) -> u32 {
    let d = domain(domain_name);
    store.ensure_domain(d.clone(), POOL).await.unwrap();
    let j = job(domain_name, JobKind::Deploy, 1);
    assert_eq!(store.begin_job(j.clone()).await.unwrap(), JobStart::New);
    let n = store.next_version(d).await.unwrap();
    store
        .commit_deploy(
            j.job_id,
            b"succeeded".to_vec(),
            version(domain_name, n, j.job_id),
        )
        .await
        .unwrap();
    n
}

async fn statuses(store: &Store, domain_name: &str) -> Vec<(u32, VersionStatus, bool)> {
    store
        .versions(domain(domain_name))
        .await
        .unwrap()
        .into_iter()
        .map(|v| (v.version, v.status, v.current))
        .collect()
}

fn db_path(dir: &Path) -> PathBuf {
    dir.join("state").join("hostkit.db")
}

// ---------------------------------------------------------------- migrations

#[tokio::test]
async fn a_new_database_is_migrated_to_the_latest_schema() {
    let store = Store::open_in_memory().await.unwrap();
    let (version, tables) = store
        .read("test", |conn| {
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 ORDER BY name",
            )?;
            let tables: Vec<String> = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            Ok((version, tables))
        })
        .await
        .unwrap();
    assert_eq!(version, i64::from(SCHEMA_VERSION));
    assert_eq!(
        tables,
        [
            "backups",
            "domain_env",
            "domains",
            "jobs",
            "meta",
            "outbox",
            "ports",
            "redirects",
            "version_services",
            "versions"
        ]
    );
}

#[test]
fn migrating_twice_is_a_no_op() {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn, ":memory:").unwrap();
    conn.execute("INSERT INTO meta (key, value) VALUES ('marker', 1)", [])
        .unwrap();
    schema::migrate(&mut conn, ":memory:").unwrap();
    let marker: i64 = conn
        .query_row("SELECT value FROM meta WHERE key = 'marker'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(marker, 1);
    assert_eq!(
        schema::user_version(&conn, ":memory:").unwrap(),
        i64::from(SCHEMA_VERSION)
    );
}

#[test]
fn a_version_recorded_before_other_images_were_kept_reads_as_having_none() {
    let mut conn = Connection::open_in_memory().unwrap();
    // The database as version 1 of the schema left it, with one version.
    let tx = conn.transaction().unwrap();
    tx.execute_batch(schema::MIGRATIONS[0]).unwrap();
    tx.pragma_update(None, "user_version", 1).unwrap();
    tx.execute(
        "INSERT INTO versions (domain, version, status, compose_text, project_json,
                               images_json, image_refs_json, env_hash, job_id,
                               created_at, updated_at)
         VALUES ('example.com', 1, 'deployed', '', '{}', '{}', '{}', '', 'j', 0, 0)",
        [],
    )
    .unwrap();
    tx.commit().unwrap();
    schema::migrate(&mut conn, ":memory:").unwrap();
    let other: String = conn
        .query_row("SELECT other_images_json FROM versions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(other, "{}");
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let mut conn = Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn, ":memory:").unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    let err = schema::migrate(&mut conn, ":memory:").unwrap_err();
    assert!(
        matches!(err, StoreError::TooNew { found, supported, .. }
            if found == i64::from(SCHEMA_VERSION) + 1 && supported == SCHEMA_VERSION),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade hostkit-worker"), "{err}");
}

#[tokio::test]
async fn reopening_a_file_is_idempotent_and_a_newer_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let store = Store::open(&path).await.unwrap();
    let d = deploy(&store, "example.com").await;
    store.close().await.unwrap();

    let store = Store::open(&path).await.unwrap();
    assert_eq!(
        store
            .current_version(domain("example.com"))
            .await
            .unwrap()
            .unwrap()
            .version,
        d
    );
    store.close().await.unwrap();

    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 7)
        .unwrap();
    drop(conn);
    let err = Store::open(&path).await.unwrap_err();
    assert!(matches!(err, StoreError::TooNew { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_store_uses_wal_full_sync_foreign_keys_and_mode_0600() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let store = Store::open(&path).await.unwrap();
    let (mode, sync, fk) = store
        .read("test", |conn| {
            let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
            let sync: i64 = conn.query_row("PRAGMA synchronous", [], |r| r.get(0))?;
            let fk: i64 = conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
            Ok((mode, sync, fk))
        })
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(fk, 1);
    let file_mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(file_mode, 0o600);
    let dir_mode = std::fs::metadata(path.parent().unwrap())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(dir_mode, 0o700);
    assert_eq!(store.location(), path.display().to_string());
}

#[tokio::test]
async fn an_existing_file_is_restricted_to_0600() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostkit.db");
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _store = Store::open(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostkit.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&path).await.unwrap_err();
    assert!(err.to_string().contains("hostkit.db"), "{err}");
}

// ---------------------------------------------------------------- jobs

#[tokio::test]
async fn a_job_is_new_then_resumed_after_a_crash_then_finished() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let j = job("example.com", JobKind::Restart, 7);

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.begin_job(j.clone()).await.unwrap(), JobStart::New);
    // A crash: the store goes away without the job ending.
    drop(store);

    let store = Store::open(&path).await.unwrap();
    assert_eq!(
        store.begin_job(j.clone()).await.unwrap(),
        JobStart::Resume { attempts: 2 }
    );
    assert_eq!(
        store.begin_job(j.clone()).await.unwrap(),
        JobStart::Resume { attempts: 3 }
    );
    store
        .finish_job(j.job_id, JobEnd::Failed, b"failed-event".to_vec())
        .await
        .unwrap();
    store.close().await.unwrap();

    let store = Store::open(&path).await.unwrap();
    let finished = FinishedJob {
        state: JobState::Failed,
        terminal_event: b"failed-event".to_vec(),
    };
    assert_eq!(
        store.begin_job(j.clone()).await.unwrap(),
        JobStart::Finished(finished.clone())
    );
    assert_eq!(store.enqueue_job(j.clone()).await.unwrap(), Some(finished));
    let record = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Failed);
    assert_eq!(record.attempts, 3);
    assert_eq!(record.stream_seq, 7);
    assert_eq!(record.kind, JobKind::Restart);
    assert_eq!(record.domain, domain("example.com"));
    assert!(record.started_at.is_some());
    assert!(record.finished_at.is_some());
    assert_eq!(record.terminal_event.as_deref(), Some(&b"failed-event"[..]));
    // The raw job (env values in it: `"SECRET": "hunter2"`) is gone once
    // the job ended; its id and terminal event stay.
    assert_eq!(store.job_raw(j.job_id).await.unwrap(), Some(Vec::new()));
    assert!(!j.raw.is_empty());
}

#[tokio::test]
async fn a_job_started_three_times_is_not_started_a_fourth_time() {
    use hostkit_proto::subjects::settings::JOBS_MAX_ATTEMPTS;
    assert_eq!(JOBS_MAX_ATTEMPTS, 3);
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let j = job("example.com", JobKind::Deploy, 3);
    // Queued (waiting in its lane) is not a start.
    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.enqueue_job(j.clone()).await.unwrap(), None);
    assert_eq!(store.begin_job(j.clone()).await.unwrap(), JobStart::New);
    // Each start is interrupted by a crash (then comes a resume at startup
    // or a redelivery; both are starts).
    let mut store = store;
    for attempts in 2..=3 {
        drop(store);
        store = Store::open(&path).await.unwrap();
        assert_eq!(
            store.begin_job(j.clone()).await.unwrap(),
            JobStart::Resume { attempts }
        );
    }
    drop(store);
    let store = Store::open(&path).await.unwrap();
    for _ in 0..2 {
        assert_eq!(
            store.begin_job(j.clone()).await.unwrap(),
            JobStart::Exhausted { attempts: 3 }
        );
    }
    let record = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (JobState::Running, 3));
    // Still unfinished: a restart hands it to its lane, which ends it.
    let unfinished = store.unfinished_jobs().await.unwrap();
    assert_eq!(unfinished.len(), 1);

    assert_eq!(
        store
            .give_up_job(j.clone(), b"gave-up".to_vec())
            .await
            .unwrap(),
        None
    );
    let finished = FinishedJob {
        state: JobState::Failed,
        terminal_event: b"gave-up".to_vec(),
    };
    assert_eq!(
        store.begin_job(j.clone()).await.unwrap(),
        JobStart::Finished(finished)
    );
    assert!(store.unfinished_jobs().await.unwrap().is_empty());
    let record = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (JobState::Failed, 3));
}

#[tokio::test]
async fn a_queued_job_starts_as_new() {
    let store = Store::open_in_memory().await.unwrap();
    let j = job("example.com", JobKind::Scale, 1);
    assert_eq!(store.enqueue_job(j.clone()).await.unwrap(), None);
    assert_eq!(store.enqueue_job(j.clone()).await.unwrap(), None);
    let record = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (JobState::Queued, 0));
    assert_eq!(record.started_at, None);
    assert_eq!(store.begin_job(j.clone()).await.unwrap(), JobStart::New);
    let record = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!((record.state, record.attempts), (JobState::Running, 1));
    // A redelivery while it runs (or after a crash) does not re-queue it.
    assert_eq!(store.enqueue_job(j.clone()).await.unwrap(), None);
    assert_eq!(
        store.job(j.job_id).await.unwrap().unwrap().state,
        JobState::Running
    );
}

#[tokio::test]
async fn a_job_ends_once() {
    let store = Store::open_in_memory().await.unwrap();
    let j = job("example.com", JobKind::Stop, 1);
    let err = store
        .finish_job(j.job_id, JobEnd::Succeeded, b"e".to_vec())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::JobNotFound { job_id } if job_id == j.job_id));

    store.begin_job(j.clone()).await.unwrap();
    store
        .finish_job(j.job_id, JobEnd::Succeeded, b"first".to_vec())
        .await
        .unwrap();
    let err = store
        .finish_job(j.job_id, JobEnd::Failed, b"second".to_vec())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::JobFinished {
                state: JobState::Succeeded,
                ..
            }
        ),
        "{err:?}"
    );
    let record = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!(record.terminal_event.as_deref(), Some(&b"first"[..]));
}

#[tokio::test]
async fn superseding_records_the_newer_job_and_keeps_finished_ones() {
    let store = Store::open_in_memory().await.unwrap();
    let newest = job("example.com", JobKind::Deploy, 3);

    // Never recorded before.
    let unseen = job("example.com", JobKind::Deploy, 1);
    assert_eq!(
        store
            .mark_superseded(unseen.clone(), newest.job_id, b"sup-1".to_vec())
            .await
            .unwrap(),
        None
    );
    // Queued.
    let queued = job("example.com", JobKind::Deploy, 2);
    store.enqueue_job(queued.clone()).await.unwrap();
    assert_eq!(
        store
            .mark_superseded(queued.clone(), newest.job_id, b"sup-2".to_vec())
            .await
            .unwrap(),
        None
    );
    for (j, event) in [(&unseen, &b"sup-1"[..]), (&queued, &b"sup-2"[..])] {
        let record = store.job(j.job_id).await.unwrap().unwrap();
        assert_eq!(record.state, JobState::Superseded);
        assert_eq!(record.superseded_by, Some(newest.job_id));
        assert_eq!(record.terminal_event.as_deref(), Some(event));
        assert_eq!(
            store.begin_job(j.clone()).await.unwrap(),
            JobStart::Finished(FinishedJob {
                state: JobState::Superseded,
                terminal_event: event.to_vec(),
            })
        );
    }
    // Already finished: untouched, its own event answered.
    let done = job("example.com", JobKind::Deploy, 0);
    store.begin_job(done.clone()).await.unwrap();
    store
        .finish_job(done.job_id, JobEnd::Succeeded, b"ok".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store
            .mark_superseded(done.clone(), newest.job_id, b"sup".to_vec())
            .await
            .unwrap(),
        Some(FinishedJob {
            state: JobState::Succeeded,
            terminal_event: b"ok".to_vec(),
        })
    );
    assert_eq!(
        store.job(done.job_id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn giving_up_ends_a_job_once_and_it_is_not_resumed() {
    let store = Store::open_in_memory().await.unwrap();
    // Interrupted while running: failed now, no longer resumed.
    let interrupted = job("example.com", JobKind::Deploy, 1);
    store.begin_job(interrupted.clone()).await.unwrap();
    assert_eq!(
        store
            .give_up_job(interrupted.clone(), b"gave-up".to_vec())
            .await
            .unwrap(),
        None
    );
    assert!(store.unfinished_jobs().await.unwrap().is_empty());
    assert_eq!(
        store.begin_job(interrupted.clone()).await.unwrap(),
        JobStart::Finished(FinishedJob {
            state: JobState::Failed,
            terminal_event: b"gave-up".to_vec(),
        })
    );
    // Never seen: recorded as failed.
    let unseen = job("example.com", JobKind::Deploy, 2);
    assert_eq!(
        store
            .give_up_job(unseen.clone(), b"gave-up-2".to_vec())
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.job(unseen.job_id).await.unwrap().unwrap().state,
        JobState::Failed
    );
    // Already finished: untouched, its own event answered.
    let done = job("example.com", JobKind::Deploy, 3);
    store.begin_job(done.clone()).await.unwrap();
    store
        .finish_job(done.job_id, JobEnd::Succeeded, b"ok".to_vec())
        .await
        .unwrap();
    assert_eq!(
        store
            .give_up_job(done.clone(), b"gave-up-3".to_vec())
            .await
            .unwrap(),
        Some(FinishedJob {
            state: JobState::Succeeded,
            terminal_event: b"ok".to_vec(),
        })
    );
    assert_eq!(
        store.job(done.job_id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn last_job_unfinished_jobs_and_forgetting() {
    let store = Store::open_in_memory().await.unwrap();
    assert_eq!(store.last_job(domain("a.example")).await.unwrap(), None);
    let a1 = job("a.example", JobKind::Deploy, 1);
    let b1 = job("b.example", JobKind::Deploy, 2);
    let a2 = job("a.example", JobKind::Scale, 3);
    store.begin_job(a1.clone()).await.unwrap();
    store
        .finish_job(a1.job_id, JobEnd::Succeeded, b"x".to_vec())
        .await
        .unwrap();
    store.enqueue_job(b1.clone()).await.unwrap();
    store.begin_job(a2.clone()).await.unwrap();

    let last = store.last_job(domain("a.example")).await.unwrap().unwrap();
    assert_eq!(last.job_id, a2.job_id);
    assert_eq!(last.state, JobState::Running);
    assert_eq!(
        last.state.to_wire(),
        hostkit_proto::control::JobOutcome::Running
    );

    let unfinished: Vec<JobId> = store
        .unfinished_jobs()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.job_id)
        .collect();
    assert_eq!(unfinished, [b1.job_id, a2.job_id]);

    // Forgetting keeps unfinished jobs and each domain's newest job.
    store
        .finish_job(a2.job_id, JobEnd::Succeeded, b"y".to_vec())
        .await
        .unwrap();
    let later = SystemTime::now() + Duration::from_secs(60);
    assert_eq!(store.forget_jobs(later).await.unwrap(), 1);
    assert_eq!(store.job(a1.job_id).await.unwrap(), None);
    assert!(store.job(a2.job_id).await.unwrap().is_some());
    assert!(store.job(b1.job_id).await.unwrap().is_some());
    assert_eq!(store.forget_jobs(SystemTime::UNIX_EPOCH).await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_of_an_unknown_kind_reads_back_as_unknown() {
    let store = Store::open_in_memory().await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    let id = j.job_id.to_string();
    store
        .write("test", move |tx| {
            tx.execute("UPDATE jobs SET kind = 'teleport' WHERE job_id = ?1", [id])?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        store.job(j.job_id).await.unwrap().unwrap().kind,
        JobKind::Unknown
    );
}

#[tokio::test]
async fn a_corrupt_value_is_reported_as_such() {
    let store = Store::open_in_memory().await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    let id = j.job_id.to_string();
    store
        .write("test", move |tx| {
            tx.execute(
                "UPDATE jobs SET domain = 'NOT A DOMAIN!' WHERE job_id = ?1",
                [id],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let err = store.job(j.job_id).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Corrupt { op: "job", what: "domain", value } if value == "NOT A DOMAIN!"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_stream_sequence_beyond_i64_is_refused() {
    let store = Store::open_in_memory().await.unwrap();
    let j = job("example.com", JobKind::Deploy, u64::MAX);
    let err = store.begin_job(j).await.unwrap_err();
    assert!(matches!(err, StoreError::OutOfRange { .. }), "{err:?}");
}

// ---------------------------------------------------------------- atomic commits

#[tokio::test]
async fn a_deploy_commits_version_current_and_job_end_together() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    store.ensure_domain(d.clone(), POOL).await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    assert_eq!(store.next_version(d.clone()).await.unwrap(), 1);
    store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 1, j.job_id),
        )
        .await
        .unwrap();

    let job = store.job(j.job_id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    let current = store.current_version(d.clone()).await.unwrap().unwrap();
    assert_eq!(current.version, 1);
    assert!(current.current);
    assert_eq!(current.status, VersionStatus::Deployed);
    assert_eq!(current.job_id, j.job_id);
    assert_eq!(current.env_hash, "env-1");
    assert_eq!(current.project(None).unwrap(), project());
    assert_eq!(
        current.main_service().unwrap(),
        Some(MainService {
            service: "web".to_owned(),
            port: 80
        })
    );
    assert_eq!(current.images["web"], "sha256:web1");
    assert_eq!(current.images["db"], "sha256:db");
    assert_eq!(current.image_refs["web"], "web:1");
    assert_eq!(current.other_images["tools:1"], "sha256:tools");
    let names: Vec<&str> = current
        .services
        .iter()
        .map(|s| s.service.as_str())
        .collect();
    assert_eq!(names, ["db", "web"]);
    assert_eq!(
        store.domain(d).await.unwrap().unwrap().current_version,
        Some(1)
    );
}

#[tokio::test]
async fn a_failing_change_leaves_nothing_half_written() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    let first = deploy(&store, "example.com").await;
    let j = job("example.com", JobKind::Deploy, 2);
    store.begin_job(j.clone()).await.unwrap();

    // The version and the outbox entry would be fine; setting current to a
    // missing version fails: nothing of it may remain.
    let err = store
        .finish_job_with(
            j.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![
                Change::RecordDeployed(Box::new(version("example.com", 2, j.job_id))),
                Change::Outbox {
                    subject: "s".to_owned(),
                    msg_id: "m".to_owned(),
                    payload: b"p".to_vec(),
                },
                Change::SetCurrent {
                    domain: d.clone(),
                    version: 9,
                },
            ],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionNotFound { version: 9, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::VersionNotFound);
    assert_eq!(
        store.job(j.job_id).await.unwrap().unwrap().state,
        JobState::Running
    );
    assert_eq!(store.version(d.clone(), 2).await.unwrap(), None);
    assert_eq!(
        store
            .current_version(d.clone())
            .await
            .unwrap()
            .unwrap()
            .version,
        first
    );
    assert_eq!(store.outbox_len().await.unwrap(), 0);
    let services: i64 = store
        .read("test", |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM version_services WHERE version = 2",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(services, 0);

    // The re-run commits.
    store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 2, j.job_id),
        )
        .await
        .unwrap();
    assert_eq!(store.current_version(d).await.unwrap().unwrap().version, 2);
}

#[tokio::test]
async fn a_finished_job_cannot_commit_its_effect_twice() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    store.ensure_domain(d.clone(), POOL).await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 1, j.job_id),
        )
        .await
        .unwrap();
    let err = store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 2, j.job_id),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::JobFinished { .. }), "{err:?}");
    assert_eq!(store.version(d.clone(), 2).await.unwrap(), None);
    assert_eq!(store.next_version(d).await.unwrap(), 2);
}

#[tokio::test]
async fn a_panicking_operation_is_rolled_back_and_the_store_carries_on() {
    let store = Store::open_in_memory().await.unwrap();
    let err = store
        .write("test", |tx| -> Res<()> {
            tx.execute("INSERT INTO meta (key, value) VALUES ('half', 1)", [])?;
            panic!("boom");
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Aborted { op: "test" }), "{err:?}");
    let half: i64 = store
        .read("test", |conn| {
            Ok(
                conn.query_row("SELECT COUNT(*) FROM meta WHERE key = 'half'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert_eq!(half, 0);
    store
        .outbox_push("s".into(), "m".into(), vec![])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_failed_deploy_is_recorded_without_changing_the_current_version() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    let first = deploy(&store, "example.com").await;
    let j = job("example.com", JobKind::Deploy, 2);
    store.begin_job(j.clone()).await.unwrap();
    let n = store.next_version(d.clone()).await.unwrap();
    store
        .finish_job_with(
            j.job_id,
            JobEnd::Failed,
            b"failed".to_vec(),
            vec![Change::RecordFailed(Box::new(version(
                "example.com",
                n,
                j.job_id,
            )))],
        )
        .await
        .unwrap();
    assert_eq!(
        statuses(&store, "example.com").await,
        [
            (2, VersionStatus::Failed, false),
            (first, VersionStatus::Deployed, true)
        ]
    );
    assert_eq!(store.next_version(d).await.unwrap(), 3);
}

#[tokio::test]
async fn a_rollback_and_a_removal_commit_with_their_job() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    deploy(&store, "example.com").await;
    deploy(&store, "example.com").await;

    let rollback = job("example.com", JobKind::Rollback, 5);
    store.begin_job(rollback.clone()).await.unwrap();
    let target = store.previous_version(d.clone()).await.unwrap().unwrap();
    assert_eq!(target.version, 1);
    store
        .commit_rollback(rollback.job_id, b"ok".to_vec(), d.clone(), target.version)
        .await
        .unwrap();
    assert_eq!(
        statuses(&store, "example.com").await,
        [
            (2, VersionStatus::RolledBack, false),
            (1, VersionStatus::Deployed, true)
        ]
    );

    let remove = job("example.com", JobKind::Remove, 6);
    store.begin_job(remove.clone()).await.unwrap();
    store
        .finish_job_with(
            remove.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![Change::RemoveDomain(d.clone())],
        )
        .await
        .unwrap();
    assert_eq!(store.domain(d.clone()).await.unwrap(), None);
    assert_eq!(
        store.job(remove.job_id).await.unwrap().unwrap().state,
        JobState::Succeeded
    );
}

#[tokio::test]
async fn redirects_stay_until_changed_and_go_with_their_domain() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    deploy(&store, "example.com").await;
    let set = job("example.com", JobKind::Deploy, 7);
    store.begin_job(set.clone()).await.unwrap();
    let names = vec![domain("www.example.com"), domain("example.net")];
    store
        .finish_job_with(
            set.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![Change::SetRedirects {
                domain: d.clone(),
                redirects: names.clone(),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        store.domain(d.clone()).await.unwrap().unwrap().redirects,
        names
    );
    assert_eq!(store.domains().await.unwrap()[0].redirects, names);
    deploy(&store, "example.com").await;
    assert_eq!(
        store.domain(d.clone()).await.unwrap().unwrap().redirects,
        names
    );
    assert_eq!(
        store.name_owner(domain("example.net")).await.unwrap(),
        Some(NameOwner::RedirectOf(d.clone()))
    );
    assert_eq!(
        store.name_owner(d.clone()).await.unwrap(),
        Some(NameOwner::Domain(d.clone()))
    );
    assert_eq!(
        store.name_owner(domain("other.example")).await.unwrap(),
        None
    );

    let remove = job("example.com", JobKind::Remove, 8);
    store.begin_job(remove.clone()).await.unwrap();
    store
        .finish_job_with(
            remove.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![Change::RemoveDomain(d.clone())],
        )
        .await
        .unwrap();
    assert_eq!(store.name_owner(domain("example.net")).await.unwrap(), None);
}

// ---------------------------------------------------------------- domains and ports

#[tokio::test]
async fn port_blocks_are_the_lowest_free_and_stable() {
    let store = Store::open_in_memory().await.unwrap();
    let a = store
        .ensure_domain(domain("a.example"), POOL)
        .await
        .unwrap();
    let b = store
        .ensure_domain(domain("b.example"), POOL)
        .await
        .unwrap();
    assert_eq!(
        a.ports,
        PortBlock {
            start: 20000,
            len: 10
        }
    );
    assert_eq!(
        b.ports,
        PortBlock {
            start: 20010,
            len: 10
        }
    );
    assert_eq!(a.current_version, None);

    // Stable, even when the pool's configuration changes.
    let other_pool = PortPool {
        start: 30000,
        end: 30999,
        block_len: 20,
    };
    let again = store
        .ensure_domain(domain("a.example"), other_pool)
        .await
        .unwrap();
    assert_eq!(again, a);

    // Removing frees the block; the next domain gets the lowest free one.
    store.remove_domain(domain("a.example")).await.unwrap();
    let c = store
        .ensure_domain(domain("c.example"), POOL)
        .await
        .unwrap();
    assert_eq!(
        c.ports,
        PortBlock {
            start: 20000,
            len: 10
        }
    );
    let a = store
        .ensure_domain(domain("a.example"), POOL)
        .await
        .unwrap();
    assert_eq!(
        a.ports,
        PortBlock {
            start: 20020,
            len: 10
        }
    );

    let names: Vec<String> = store
        .domains()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.domain.to_string())
        .collect();
    assert_eq!(names, ["a.example", "b.example", "c.example"]);
}

#[tokio::test]
async fn the_pool_runs_out_with_a_ports_exhausted_error() {
    let store = Store::open_in_memory().await.unwrap();
    let pool = PortPool {
        start: 20000,
        end: 20029,
        block_len: 10,
    };
    for i in 0..3 {
        store
            .ensure_domain(domain(&format!("d{i}.example")), pool)
            .await
            .unwrap();
    }
    let err = store
        .ensure_domain(domain("late.example"), pool)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::PortsExhausted { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::PortsExhausted);
    assert_eq!(err.to_error_body().code, ErrorCode::PortsExhausted);
    assert!(err.to_string().contains("late.example"), "{err}");
    assert_eq!(store.domain(domain("late.example")).await.unwrap(), None);
    // Known domains still answer.
    store
        .ensure_domain(domain("d1.example"), pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn blocks_of_other_sizes_are_never_overlapped() {
    let store = Store::open_in_memory().await.unwrap();
    let small = PortPool {
        start: 20000,
        end: 20099,
        block_len: 5,
    };
    let big = PortPool {
        start: 20000,
        end: 20099,
        block_len: 12,
    };
    let mut blocks = Vec::new();
    for (i, pool) in [small, big, small, small, big, small]
        .into_iter()
        .enumerate()
    {
        let record = store
            .ensure_domain(domain(&format!("d{i}.example")), pool)
            .await
            .unwrap();
        blocks.push(record.ports);
    }
    // Free one in the middle and fill it with a smaller block.
    store.remove_domain(domain("d1.example")).await.unwrap();
    blocks.remove(1);
    for i in 6..9 {
        let record = store
            .ensure_domain(domain(&format!("d{i}.example")), small)
            .await
            .unwrap();
        blocks.push(record.ports);
    }
    assert_no_overlap(&blocks);
    // Two fit in the freed gap; the third does not and goes after the rest.
    let starts: Vec<u16> = blocks[5..].iter().map(|b| b.start).collect();
    assert_eq!(starts, [20005, 20010, 20044]);
}

fn assert_no_overlap(blocks: &[PortBlock]) {
    let mut seen = BTreeSet::new();
    for block in blocks {
        for port in block.ports() {
            assert!(
                seen.insert(port),
                "port {port} is in two blocks: {blocks:?}"
            );
        }
    }
}

#[tokio::test]
async fn an_unusable_pool_is_refused() {
    let store = Store::open_in_memory().await.unwrap();
    for pool in [
        PortPool {
            start: 0,
            end: 100,
            block_len: 10,
        },
        PortPool {
            start: 200,
            end: 100,
            block_len: 10,
        },
        PortPool {
            start: 100,
            end: 200,
            block_len: 0,
        },
        PortPool {
            start: 100,
            end: 104,
            block_len: 10,
        },
    ] {
        let err = store
            .ensure_domain(domain("example.com"), pool)
            .await
            .unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidPool { .. }),
            "{pool}: {err:?}"
        );
    }
    // The top of the port range is usable.
    let top = PortPool {
        start: 65526,
        end: 65535,
        block_len: 10,
    };
    let record = store
        .ensure_domain(domain("example.com"), top)
        .await
        .unwrap();
    assert_eq!(record.ports.ports().count(), 10);
}

#[tokio::test]
async fn the_schema_itself_refuses_overlapping_blocks() {
    let store = Store::open_in_memory().await.unwrap();
    store
        .ensure_domain(domain("a.example"), POOL)
        .await
        .unwrap();
    let err = store
        .write("test", |tx| {
            tx.execute(
                "INSERT INTO domains (domain, created_at, updated_at) VALUES ('b.example', 0, 0)",
                [],
            )?;
            tx.execute(
                "INSERT INTO ports (domain, start, len, allocated_at) VALUES ('b.example', 20005, 10, 0)",
                [],
            )?;
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(err.source_text().contains("overlaps"), "{err:?}");
}

impl StoreError {
    fn source_text(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

#[tokio::test]
async fn concurrent_domains_get_disjoint_blocks() {
    let store = Store::open_in_memory().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .ensure_domain(domain(&format!("d{i}.example")), POOL)
                .await
        }));
    }
    let mut blocks = Vec::new();
    for task in tasks {
        blocks.push(task.await.unwrap().unwrap().ports);
    }
    assert_no_overlap(&blocks);
    let err = store
        .ensure_domain(domain("eleven.example"), POOL)
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::PortsExhausted);
}

// ---------------------------------------------------------------- versions

#[tokio::test]
async fn version_numbers_are_never_reused() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    assert_eq!(store.next_version(d.clone()).await.unwrap(), 1);
    for expected in 1..=4 {
        assert_eq!(deploy(&store, "example.com").await, expected);
    }
    let pruned = store.prune(d.clone(), 1).await.unwrap();
    assert_eq!(
        pruned.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    assert_eq!(store.next_version(d.clone()).await.unwrap(), 5);

    // Not after a removal either.
    let removed = store.remove_domain(d.clone()).await.unwrap();
    assert_eq!(removed.iter().map(|v| v.version).collect::<Vec<_>>(), [4]);
    assert!(
        removed
            .iter()
            .all(|v| v.status == VersionStatus::Pruned && !v.current)
    );
    assert_eq!(store.current_version(d.clone()).await.unwrap(), None);
    assert_eq!(deploy(&store, "example.com").await, 5);

    // A number that is not above the recorded ones is refused.
    let j = job("example.com", JobKind::Deploy, 9);
    store.begin_job(j.clone()).await.unwrap();
    let err = store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 3, j.job_id),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::VersionExists { version: 3, .. }),
        "{err:?}"
    );
    store
        .write("test", |tx| {
            tx.execute("DELETE FROM version_services WHERE version = 2", [])?;
            tx.execute("DELETE FROM versions WHERE version = 2", [])?;
            Ok(())
        })
        .await
        .unwrap();
    let err = store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 2, j.job_id),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::VersionNotNew {
                version: 2,
                next: 6,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn recording_a_version_needs_the_domain() {
    let store = Store::open_in_memory().await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    let err = store
        .commit_deploy(
            j.job_id,
            b"ok".to_vec(),
            version("example.com", 1, j.job_id),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DomainNotFound { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::DomainNotFound);
    assert_eq!(
        store.job(j.job_id).await.unwrap().unwrap().state,
        JobState::Running
    );
}

#[tokio::test]
async fn prune_keeps_the_current_and_the_newest_k() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    for _ in 0..8 {
        deploy(&store, "example.com").await;
    }
    // Roll back to 3: 8 becomes rolled_back, 3 current.
    store.set_current(d.clone(), 3).await.unwrap();
    // A failed deploy 9 (newer than every kept one: kept).
    let j = job("example.com", JobKind::Deploy, 20);
    store.begin_job(j.clone()).await.unwrap();
    store
        .finish_job_with(
            j.job_id,
            JobEnd::Failed,
            b"failed".to_vec(),
            vec![Change::RecordFailed(Box::new(version(
                "example.com",
                9,
                j.job_id,
            )))],
        )
        .await
        .unwrap();

    let pruned = store.prune(d.clone(), 3).await.unwrap();
    assert_eq!(
        pruned.iter().map(|v| v.version).collect::<Vec<_>>(),
        [5, 4, 2, 1]
    );
    assert!(pruned.iter().all(|v| v.status == Pruned));
    assert_eq!(pruned[0].images["web"], "sha256:web5");
    use VersionStatus::*;
    assert_eq!(
        statuses(&store, "example.com").await,
        [
            (9, Failed, false),
            (8, RolledBack, false),
            (7, Deployed, false),
            (6, Deployed, false),
            (5, Pruned, false),
            (4, Pruned, false),
            (3, Deployed, true),
            (2, Pruned, false),
            (1, Pruned, false),
        ]
    );
    // Pruning again prunes nothing more.
    assert!(store.prune(d.clone(), 3).await.unwrap().is_empty());
    // Keeping none keeps the current one only; the failed version newer than
    // it stays (it goes once it is older than every kept version).
    let pruned = store.prune(d.clone(), 0).await.unwrap();
    assert_eq!(
        pruned.iter().map(|v| v.version).collect::<Vec<_>>(),
        [8, 7, 6]
    );
    assert_eq!(
        store
            .current_version(d.clone())
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );
    // A pruned version cannot be restored.
    let err = store.set_current(d.clone(), 7).await.unwrap_err();
    assert!(
        matches!(err, StoreError::VersionNotRestorable { status: Pruned, .. }),
        "{err:?}"
    );
    assert_eq!(err.code(), ErrorCode::VersionNotFound);
}

#[tokio::test]
async fn rollbacks_and_restores_move_the_current_version() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    assert_eq!(store.previous_version(d.clone()).await.unwrap(), None);
    deploy(&store, "example.com").await;
    assert_eq!(store.previous_version(d.clone()).await.unwrap(), None);
    deploy(&store, "example.com").await;
    deploy(&store, "example.com").await;
    assert_eq!(
        store
            .previous_version(d.clone())
            .await
            .unwrap()
            .unwrap()
            .version,
        2
    );

    // Roll back 3 → 2: 3 is rolled_back; the previous of 2 is 1.
    store.set_current(d.clone(), 2).await.unwrap();
    use VersionStatus::*;
    assert_eq!(
        statuses(&store, "example.com").await,
        [
            (3, RolledBack, false),
            (2, Deployed, true),
            (1, Deployed, false)
        ]
    );
    assert_eq!(
        store
            .previous_version(d.clone())
            .await
            .unwrap()
            .unwrap()
            .version,
        1
    );
    // Restore 3 explicitly: deployed and current again; 2 stays deployed.
    store.set_current(d.clone(), 3).await.unwrap();
    assert_eq!(
        statuses(&store, "example.com").await,
        [
            (3, Deployed, true),
            (2, Deployed, false),
            (1, Deployed, false)
        ]
    );
    // Setting the current version again is a no-op.
    store.set_current(d.clone(), 3).await.unwrap();
    assert_eq!(
        store
            .current_version(d.clone())
            .await
            .unwrap()
            .unwrap()
            .version,
        3
    );

    // Errors.
    let err = store.set_current(d.clone(), 42).await.unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionNotFound { version: 42, .. }
    ));
    let err = store
        .set_current(domain("unknown.example"), 1)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DomainNotFound { .. }));
    assert_eq!(store.version(d.clone(), 42).await.unwrap(), None);
}

#[tokio::test]
async fn marking_versions_and_setting_replicas() {
    let store = Store::open_in_memory().await.unwrap();
    let d = domain("example.com");
    deploy(&store, "example.com").await;
    deploy(&store, "example.com").await;

    let err = store
        .mark_version(d.clone(), 2, VersionStatus::Pruned)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::CurrentVersion { version: 2, .. }),
        "{err:?}"
    );
    store
        .mark_version(d.clone(), 1, VersionStatus::Failed)
        .await
        .unwrap();
    assert_eq!(
        store.version(d.clone(), 1).await.unwrap().unwrap().status,
        VersionStatus::Failed
    );
    assert_eq!(store.previous_version(d.clone()).await.unwrap(), None);
    let err = store
        .mark_version(d.clone(), 5, VersionStatus::Failed)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionNotFound { .. }));

    store
        .set_replicas(d.clone(), 2, "web".to_owned(), 3)
        .await
        .unwrap();
    let v2 = store.version(d.clone(), 2).await.unwrap().unwrap();
    let web = v2.services.iter().find(|s| s.service == "web").unwrap();
    assert_eq!(web.replicas, 3);
    let err = store
        .set_replicas(d.clone(), 2, "nope".to_owned(), 3)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::ServiceNotFound { .. }), "{err:?}");
    assert_eq!(err.code(), ErrorCode::ServiceNotFound);
    let err = store
        .set_replicas(d, 7, "web".to_owned(), 3)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::VersionNotFound { .. }), "{err:?}");
}

#[tokio::test]
async fn versions_are_listed_newest_first_with_their_services() {
    let store = Store::open_in_memory().await.unwrap();
    for _ in 0..3 {
        deploy(&store, "example.com").await;
    }
    deploy(&store, "other.example").await;
    let versions = store.versions(domain("example.com")).await.unwrap();
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        [3, 2, 1]
    );
    for v in &versions {
        assert_eq!(v.services.len(), 2);
        assert_eq!(v.services[1].image_id, format!("sha256:web{}", v.version));
        assert_eq!(
            v.status.to_wire(),
            hostkit_proto::control::VersionStatus::Deployed
        );
    }
    assert!(
        store
            .versions(domain("none.example"))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn debug_output_never_shows_env_values() {
    let store = Store::open_in_memory().await.unwrap();
    deploy(&store, "example.com").await;
    let record = store
        .current_version(domain("example.com"))
        .await
        .unwrap()
        .unwrap();
    assert!(record.compose_text.contains("hunter2"));
    let shown = format!(
        "{record:?} {:?} {:?}",
        version("example.com", 1, JobId::new()),
        job("example.com", JobKind::Deploy, 1)
    );
    assert!(!shown.contains("hunter2"), "{shown}");
}

// ---------------------------------------------------------------- outbox and event sequence

#[tokio::test]
async fn the_outbox_delivers_oldest_first_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let store = Store::open(&path).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .outbox_push(format!("subject.{i}"), format!("node:{i}"), vec![i])
                .await
                .unwrap(),
        );
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    assert!(store.outbox_delete(ids[0]).await.unwrap());
    assert!(!store.outbox_delete(ids[0]).await.unwrap());
    store.close().await.unwrap();

    let store = Store::open(&path).await.unwrap();
    assert_eq!(store.outbox_len().await.unwrap(), 4);
    let pending = store.outbox_pending(3).await.unwrap();
    assert_eq!(
        pending.iter().map(|e| e.id).collect::<Vec<_>>(),
        ids[1..4].to_vec()
    );
    assert_eq!(pending[0].subject, "subject.1");
    assert_eq!(pending[0].msg_id, "node:1");
    assert_eq!(pending[0].payload, [1]);
    // Ids are not reused after deleting the newest.
    store.outbox_delete(ids[4]).await.unwrap();
    let next = store
        .outbox_push("s".into(), "m".into(), vec![])
        .await
        .unwrap();
    assert!(next > ids[4]);
}

#[tokio::test]
async fn a_delivered_prefix_of_the_outbox_goes_in_one_call() {
    let store = Store::open_in_memory().await.unwrap();
    let mut ids = Vec::new();
    for i in 0..4u8 {
        ids.push(
            store
                .outbox_push(format!("s.{i}"), format!("n:{i}"), vec![i])
                .await
                .unwrap(),
        );
    }
    assert_eq!(store.outbox_delete_through(ids[2]).await.unwrap(), 3);
    let left: Vec<i64> = store
        .outbox_pending(10)
        .await
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(left, vec![ids[3]]);
    assert_eq!(store.outbox_delete_through(ids[2]).await.unwrap(), 0);
}

#[tokio::test]
async fn event_sequence_numbers_increase_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(dir.path());
    let store = Store::open(&path).await.unwrap();
    let first = store.next_event_seq().await.unwrap();
    assert_eq!(first, 1);
    let mut last = first;
    for _ in 0..(outbox::SEQ_BLOCK + 5) {
        let seq = store.next_event_seq().await.unwrap();
        assert!(seq > last);
        last = seq;
    }
    // A crash: no clean close.
    drop(store);
    let store = Store::open(&path).await.unwrap();
    let after = store.next_event_seq().await.unwrap();
    assert!(after > last, "{after} > {last}");
    store.close().await.unwrap();
    let store = Store::open(&path).await.unwrap();
    assert!(store.next_event_seq().await.unwrap() > after);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_share_one_store() {
    let store = Store::open_in_memory().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..100u64 {
                seqs.push(store.next_event_seq().await.unwrap());
                if i % 10 == 0 {
                    let j = job(&format!("d{t}.example"), JobKind::Restart, t * 1000 + i);
                    assert_eq!(store.begin_job(j.clone()).await.unwrap(), JobStart::New);
                    store
                        .finish_job(j.job_id, JobEnd::Succeeded, vec![])
                        .await
                        .unwrap();
                }
            }
            seqs
        }));
    }
    let mut all = BTreeSet::new();
    for task in tasks {
        let seqs = task.await.unwrap();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]));
        for seq in seqs {
            assert!(all.insert(seq), "seq {seq} handed out twice");
        }
    }
    assert_eq!(all.len(), 1600);
    let done: i64 = store
        .read("test", |conn| {
            Ok(conn.query_row(
                "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(done, 160);
}

#[tokio::test]
async fn a_closed_store_answers_closed() {
    let store = Store::open_in_memory().await.unwrap();
    let clone = store.clone();
    store.close().await.unwrap();
    let err = clone.domains().await.unwrap_err();
    assert!(matches!(err, StoreError::Closed), "{err:?}");
}

#[tokio::test]
async fn a_version_recorded_with_a_key_keeps_its_values_sealed_at_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostkit.db");
    let store = Store::open(&path).await.unwrap();
    let key = hostkit_proto::sign::seal::XKey::new();
    let d = domain("example.com");
    store.ensure_domain(d.clone(), POOL).await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    let mut v = version("example.com", 1, j.job_id);
    v.seal_key = SealWith(Some(key.clone()));
    let secret = v.project.services["web"].environment["SECRET"].clone();
    store
        .commit_deploy(j.job_id, b"ok".to_vec(), v)
        .await
        .unwrap();
    let current = store.current_version(d).await.unwrap().unwrap();
    assert!(
        !current.project_json.contains(&secret),
        "{}",
        current.project_json
    );
    assert_eq!(current.project(Some(&key)).unwrap(), project());
    assert!(current.project(None).is_err(), "no key, no project");
    store.close().await.unwrap();
    // The compose text of this fixture holds the value literally (as a
    // user may write it); the project, which holds every interpolated
    // value, does not.
    let rows = rusqlite::Connection::open(&path).unwrap();
    let stored: String = rows
        .query_row("SELECT project_json FROM versions", [], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("xkv1:") && !stored.contains(&secret));
}

#[tokio::test]
async fn stored_variables_are_sealed_replaced_whole_and_outlive_no_stack() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hostkit.db");
    let store = Store::open(&path).await.unwrap();
    let key = hostkit_proto::sign::seal::XKey::new();
    let d = domain("example.com");
    let none = store
        .domain_env(d.clone(), Some(key.clone()))
        .await
        .unwrap();
    assert!(none.env.is_empty() && none.updated_at.is_none());

    // Set before the domain has any stack: the job's end commits them.
    let j = job("example.com", JobKind::Env, 1);
    store.begin_job(j.clone()).await.unwrap();
    let env: hostkit_proto::job::Env = [("DB_PASSWORD", "hunter2"), ("MODE", "prod")]
        .into_iter()
        .collect();
    store
        .finish_job_with(
            j.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![Change::SetDomainEnv {
                domain: d.clone(),
                env: env.clone(),
                seal_key: SealWith(Some(key.clone())),
            }],
        )
        .await
        .unwrap();
    let stored = store
        .domain_env(d.clone(), Some(key.clone()))
        .await
        .unwrap();
    assert_eq!(stored.env, env);
    assert!(stored.updated_at.is_some());
    assert!(
        store.domain_env(d.clone(), None).await.is_err(),
        "no key, no values"
    );
    let raw: String = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("SELECT env_json FROM domain_env", [], |r| r.get(0))
        .unwrap();
    assert!(
        raw.starts_with("xkv1:") && !raw.contains("hunter2"),
        "{raw}"
    );

    // An empty set removes the row.
    let j = job("example.com", JobKind::Env, 2);
    store.begin_job(j.clone()).await.unwrap();
    store
        .finish_job_with(
            j.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![Change::SetDomainEnv {
                domain: d.clone(),
                env: hostkit_proto::job::Env::new(),
                seal_key: SealWith(Some(key.clone())),
            }],
        )
        .await
        .unwrap();
    assert_eq!(
        store.domain_env(d, Some(key)).await.unwrap(),
        StoredEnv::default()
    );
}

#[tokio::test]
async fn a_version_keeps_its_jobs_variables_sealed_and_a_reload_replaces_its_project() {
    let store = Store::open_in_memory().await.unwrap();
    let key = hostkit_proto::sign::seal::XKey::new();
    let d = domain("example.com");
    store.ensure_domain(d.clone(), POOL).await.unwrap();
    let j = job("example.com", JobKind::Deploy, 1);
    store.begin_job(j.clone()).await.unwrap();
    let mut v = version("example.com", 1, j.job_id);
    v.seal_key = SealWith(Some(key.clone()));
    store
        .commit_deploy(j.job_id, b"ok".to_vec(), v.clone())
        .await
        .unwrap();
    let current = store.current_version(d.clone()).await.unwrap().unwrap();
    let job_env = current.job_env(Some(&key)).unwrap().expect("kept");
    assert_eq!(job_env.get("JOB_SECRET"), Some("from-the-job"));
    assert!(
        !current
            .job_env_json
            .as_deref()
            .unwrap()
            .contains("from-the-job")
    );

    let mut reloaded = project();
    reloaded
        .services
        .get_mut("web")
        .unwrap()
        .environment
        .insert("MODE".to_owned(), "new".to_owned());
    let r = job("example.com", JobKind::Restart, 2);
    store.begin_job(r.clone()).await.unwrap();
    store
        .finish_job_with(
            r.job_id,
            JobEnd::Succeeded,
            b"ok".to_vec(),
            vec![Change::ReloadProject {
                domain: d.clone(),
                version: 1,
                project: Box::new(reloaded.clone()),
                env_hash: "env-reloaded".to_owned(),
                config_hashes: BTreeMap::from([("web".to_owned(), "hash-reloaded".to_owned())]),
                seal_key: SealWith(Some(key.clone())),
            }],
        )
        .await
        .unwrap();
    let current = store.current_version(d).await.unwrap().unwrap();
    assert_eq!(current.project(Some(&key)).unwrap(), reloaded);
    assert_eq!(current.env_hash, "env-reloaded");
    let web = current
        .services
        .iter()
        .find(|s| s.service == "web")
        .unwrap();
    assert_eq!(web.config_hash, "hash-reloaded");
    let db = current.services.iter().find(|s| s.service == "db").unwrap();
    assert_eq!(db.config_hash, "hash-db", "other services keep theirs");
}
