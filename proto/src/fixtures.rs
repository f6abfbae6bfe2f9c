//! Deterministic example values (fixed ids and times) shared by the tests
//! and snapshots.

use chrono::{DateTime, TimeZone, Utc};

use crate::error::ErrorCode;
use crate::event::{EVENT_SCHEMA, Event, EventKind, ProgressUnit, ReplicaState};
use crate::job::*;
use crate::name::{Domain, ImageObjectName, NodeId};

/// A secret env value that must never show up in `Debug` output.
pub(crate) const SECRET: &str = "hunter2-secret";

pub(crate) fn job_id() -> JobId {
    "01HZY3W8Q9V1T3M9X0A7B5C2DE".parse().unwrap()
}

pub(crate) fn other_job_id() -> JobId {
    "01HZY3WB2M5JQ8D4V6K0N7R9ST".parse().unwrap()
}

pub(crate) fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

pub(crate) fn domain() -> Domain {
    "example.com".parse().unwrap()
}

pub(crate) fn node() -> NodeId {
    "vps-1".parse().unwrap()
}

pub(crate) fn job(spec: JobSpec) -> Job {
    Job {
        schema: JOB_SCHEMA,
        id: job_id(),
        domain: domain(),
        spec,
        created_at: at(),
        requested_by: "github:acme/shop@run-42".into(),
        node: None,
        expires_at: None,
        signature: None,
    }
}

/// One job per kind, in [`JobKind::ALL`] order, named by kind.
pub(crate) fn jobs() -> Vec<(&'static str, Job)> {
    let deploy = DeployPayload {
        source: DeploySource::Compose(ComposeSource {
            text: "services:\n  web:\n    image: example/web:1\n    ports: [\"80\"]\n".into(),
            file_name: Some("docker-compose.yml".into()),
        }),
        images: vec![
            ImageSource::Object {
                object: ImageObjectName::from_sha256_hex(&"ab".repeat(32)).unwrap(),
                size: 52_428_800,
            },
            ImageSource::Path {
                path: "/srv/hostkit/images/db.tar".into(),
            },
            ImageSource::Registry {
                registry: "127.0.0.1:5000/example/cache:7".into(),
            },
        ],
        env: [("DATABASE_PASSWORD", SECRET), ("LOG_LEVEL", "info")]
            .into_iter()
            .collect(),
        sealed_env: None,
        options: DeployOptions {
            main_service: Some("web".into()),
            health_timeout_secs: Some(120),
            auto_rollback: true,
            redirect_domains: Some(vec!["www.example.com".parse().unwrap()]),
            snapshot: true,
        },
    };
    vec![
        ("deploy", job(JobSpec::Deploy(deploy))),
        (
            "rollback",
            job(JobSpec::Rollback(RollbackPayload {
                to_version: Some(3),
                with_data: true,
            })),
        ),
        (
            "scale",
            job(JobSpec::Scale(ScalePayload {
                service: "web".into(),
                replicas: 3,
            })),
        ),
        (
            "restart",
            job(JobSpec::Restart(RestartPayload { service: None })),
        ),
        ("stop", job(JobSpec::Stop(StopPayload {}))),
        ("start", job(JobSpec::Start(StartPayload {}))),
        (
            "remove",
            job(JobSpec::Remove(RemovePayload {
                purge_volumes: false,
            })),
        ),
        (
            "import",
            job(JobSpec::Import(ImportPayload {
                health_timeout_secs: None,
            })),
        ),
        (
            "env",
            job(JobSpec::Env(EnvPayload {
                set: [("MODE", "production")].into_iter().collect(),
                sealed_set: None,
                unset: vec!["DEBUG".into()],
            })),
        ),
        (
            "exec",
            job(JobSpec::Exec(ExecPayload {
                service: "web".into(),
                command: vec!["./manage.py".into(), "migrate".into()],
                timeout_secs: Some(300),
            })),
        ),
        (
            "backup",
            job(JobSpec::Backup(BackupPayload {
                volumes: vec!["db-data".into()],
            })),
        ),
        (
            "restore",
            job(JobSpec::Restore(RestorePayload {
                backup: other_job_id(),
            })),
        ),
    ]
}

/// A single-image deploy with the defaults.
pub(crate) fn deploy_image_job() -> Job {
    job(JobSpec::Deploy(DeployPayload {
        source: DeploySource::Image(SingleImage {
            reference: "nginx:1.27".into(),
            port: Some(80),
        }),
        images: vec![],
        env: Env::new(),
        sealed_env: None,
        options: DeployOptions::default(),
    }))
}

fn job_event(seq: u64, kind: EventKind) -> Event {
    Event {
        schema: EVENT_SCHEMA,
        seq,
        at: at(),
        node: node(),
        domain: Some(domain()),
        job_id: Some(job_id()),
        kind,
    }
}

fn health_event(seq: u64, kind: EventKind) -> Event {
    Event {
        job_id: None,
        ..job_event(seq, kind)
    }
}

fn node_event(seq: u64, kind: EventKind) -> Event {
    Event {
        domain: None,
        job_id: None,
        ..job_event(seq, kind)
    }
}

/// One event per kind, named by kind.
pub(crate) fn events() -> Vec<(&'static str, Event)> {
    let service = || "web".to_owned();
    let container = || "example_com-web-1".to_owned();
    vec![
        ("queued", job_event(1, EventKind::Queued { position: 0 })),
        (
            "started",
            job_event(
                2,
                EventKind::Started {
                    job_kind: JobKind::Deploy,
                },
            ),
        ),
        (
            "step",
            job_event(
                3,
                EventKind::Step {
                    name: "load_images".into(),
                    message: "loading 1 image".into(),
                },
            ),
        ),
        (
            "progress",
            job_event(
                4,
                EventKind::Progress {
                    what: format!("image sha256-{}", "ab".repeat(32)),
                    done: 1_048_576,
                    total: Some(52_428_800),
                    unit: ProgressUnit::Bytes,
                },
            ),
        ),
        (
            "service",
            job_event(
                5,
                EventKind::Service {
                    service: service(),
                    replica: 1,
                    state: ReplicaState::Healthy,
                },
            ),
        ),
        (
            "warning",
            job_event(
                6,
                EventKind::Warning {
                    message: "container_name \"db\" renamed to \"example_com-db\"".into(),
                    code: Some("compose.container_name".into()),
                },
            ),
        ),
        (
            "output",
            job_event(
                7,
                EventKind::Output {
                    stream: "stdout".into(),
                    lines: vec!["Applying migrations".into(), "OK".into()],
                },
            ),
        ),
        (
            "succeeded",
            job_event(
                7,
                EventKind::Succeeded {
                    version: Some(4),
                    duration_ms: 8_250,
                },
            ),
        ),
        (
            "failed",
            job_event(
                8,
                EventKind::Failed {
                    code: ErrorCode::HealthTimeout,
                    message: "web did not become healthy within 120s".into(),
                    hint: ErrorCode::HealthTimeout.hint().map(str::to_owned),
                    rolled_back_to: Some(3),
                    exit_code: None,
                },
            ),
        ),
        (
            "superseded",
            job_event(9, EventKind::Superseded { by: other_job_id() }),
        ),
        (
            "healthy",
            health_event(
                10,
                EventKind::Healthy {
                    service: service(),
                    replica: Some(1),
                    container: container(),
                },
            ),
        ),
        (
            "unhealthy",
            health_event(
                11,
                EventKind::Unhealthy {
                    service: service(),
                    replica: Some(1),
                    container: container(),
                },
            ),
        ),
        (
            "exited",
            health_event(
                12,
                EventKind::Exited {
                    service: service(),
                    replica: Some(1),
                    container: container(),
                    exit_code: Some(137),
                },
            ),
        ),
        (
            "oom",
            health_event(
                13,
                EventKind::Oom {
                    service: service(),
                    replica: None,
                    container: container(),
                },
            ),
        ),
        (
            "restarting",
            health_event(
                14,
                EventKind::Restarting {
                    service: service(),
                    replica: Some(1),
                    container: container(),
                },
            ),
        ),
        (
            "certificate_issued",
            health_event(
                20,
                EventKind::CertificateIssued {
                    names: vec![domain(), "www.example.com".parse().unwrap()],
                    not_after: at() + chrono::Duration::days(90),
                    renewal: false,
                },
            ),
        ),
        (
            "certificate_failed",
            health_event(
                21,
                EventKind::CertificateFailed {
                    code: ErrorCode::TlsChallengeFailed,
                    message: "www.example.com: connection refused".into(),
                    hint: ErrorCode::TlsChallengeFailed.hint().map(str::to_owned),
                    retry_in_secs: 600,
                },
            ),
        ),
        (
            "heartbeat",
            node_event(
                15,
                EventKind::Heartbeat {
                    version: "0.1.0".into(),
                    domains: vec![domain()],
                    running_jobs: 1,
                    queue_depth: 2,
                    capacity: 4,
                },
            ),
        ),
        (
            "online",
            node_event(
                16,
                EventKind::Online {
                    version: "0.1.0".into(),
                },
            ),
        ),
        ("offline", node_event(17, EventKind::Offline {})),
    ]
}
