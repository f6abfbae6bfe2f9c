//! Tests of the job wire format and validation.

use super::*;
use crate::fixtures;

#[test]
fn exact_json_shape() {
    let job = Job {
        schema: 1,
        id: fixtures::job_id(),
        domain: fixtures::domain(),
        spec: JobSpec::Scale(ScalePayload {
            service: "web".into(),
            replicas: 3,
        }),
        created_at: fixtures::at(),
        requested_by: "ci".into(),
        node: None,
        expires_at: None,
        signature: None,
    };
    assert_eq!(
        String::from_utf8(job.to_vec()).unwrap(),
        r#"{"schema":1,"id":"01HZY3W8Q9V1T3M9X0A7B5C2DE","domain":"example.com","kind":"scale","payload":{"service":"web","replicas":3},"created_at":"2026-01-02T03:04:05Z","requested_by":"ci"}"#
    );
}

#[test]
fn every_kind_round_trips() {
    let jobs = fixtures::jobs();
    let kinds: Vec<JobKind> = jobs.iter().map(|(_, job)| job.kind()).collect();
    assert_eq!(kinds, JobKind::ALL, "one fixture per kind, in order");
    for (name, job) in jobs {
        job.validate().unwrap_or_else(|err| panic!("{name}: {err}"));
        let bytes = job.to_vec();
        let back = Job::from_slice(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(back, job, "{name}");
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["kind"], job.kind().as_str(), "{name}");
    }
}

#[test]
fn snapshots_of_every_kind() {
    for (name, job) in fixtures::jobs() {
        insta::assert_json_snapshot!(format!("job_{name}"), job);
    }
}

#[test]
fn unknown_fields_are_ignored_at_every_level() {
    let json = r#"{
        "schema": 1, "id": "01HZY3W8Q9V1T3M9X0A7B5C2DE", "domain": "example.com",
        "kind": "deploy", "created_at": "2026-01-02T03:04:05Z", "requested_by": "ci",
        "priority": "high", "trace": {"id": 7},
        "payload": {
            "source": {"compose": {"text": "services: {}", "dialect": "v3"}},
            "images": [{"path": "/srv/a.tar", "checksum": "x"}],
            "options": {"auto_rollback": false, "canary": true},
            "strategy": "blue-green"
        }
    }"#;
    let job = Job::from_slice(json.as_bytes()).unwrap();
    let JobSpec::Deploy(deploy) = &job.spec else {
        panic!("not a deploy: {job:?}")
    };
    assert!(!deploy.options.auto_rollback);
    assert_eq!(
        deploy.images,
        [ImageSource::Path {
            path: "/srv/a.tar".into()
        }]
    );

    let scale = r#"{"schema":1,"id":"01HZY3W8Q9V1T3M9X0A7B5C2DE","domain":"example.com","kind":"scale",
        "created_at":"2026-01-02T03:04:05Z","requested_by":"ci","payload":{"service":"web","replicas":2,"x":1},"y":2}"#;
    assert!(matches!(
        Job::from_slice(scale.as_bytes()).unwrap().spec,
        JobSpec::Scale(_)
    ));
}

#[test]
fn unknown_kind_and_missing_fields_are_malformed() {
    let unknown = r#"{"schema":1,"id":"01HZY3W8Q9V1T3M9X0A7B5C2DE","domain":"example.com","kind":"migrate",
        "created_at":"2026-01-02T03:04:05Z","requested_by":"ci","payload":{}}"#;
    assert!(matches!(
        Job::from_slice(unknown.as_bytes()),
        Err(JobError::Malformed { .. })
    ));
    let bad_domain = unknown
        .replace("example.com", "a..b")
        .replace("migrate", "stop");
    let err = Job::from_slice(bad_domain.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("empty label"), "{err}");
    assert!(matches!(
        Job::from_slice(b"[]"),
        Err(JobError::Malformed { .. })
    ));
    assert_eq!(err.code(), crate::ErrorCode::JobInvalid);
}

#[test]
fn peek_reads_what_it_can() {
    let peek = Job::peek(
        br#"{"id":"01HZY3W8Q9V1T3M9X0A7B5C2DE","domain":"Example.com","kind":"teleport"}"#,
    );
    assert_eq!(peek.id, Some(fixtures::job_id()));
    assert_eq!(peek.domain, Some(fixtures::domain()));
    assert_eq!(peek.kind.as_deref(), Some("teleport"));
    assert_eq!(Job::peek(b"not json"), JobPeek::default());
    assert_eq!(
        Job::peek(br#"{"id":5,"domain":"a..b"}"#),
        JobPeek::default()
    );
}

#[test]
fn debug_redacts_env_values() {
    let (_, job) = fixtures::jobs().into_iter().next().unwrap();
    let debug = format!("{job:?}");
    assert!(debug.contains("DATABASE_PASSWORD"), "{debug}");
    assert!(debug.contains("<redacted>"), "{debug}");
    assert!(!debug.contains(fixtures::SECRET), "{debug}");
    assert!(!format!("{job:#?}").contains(fixtures::SECRET));
}

#[test]
fn new_sets_schema_id_and_time() {
    let job = Job::new(fixtures::domain(), JobSpec::Stop(StopPayload {}), "alice");
    assert_eq!(job.schema, JOB_SCHEMA);
    assert_eq!(job.kind(), JobKind::Stop);
    assert!(job.signature.is_none());
    job.validate().unwrap();
}

fn with_spec(spec: JobSpec) -> Job {
    Job {
        spec,
        ..fixtures::job(JobSpec::Stop(StopPayload {}))
    }
}

fn deploy() -> DeployPayload {
    match fixtures::jobs().into_iter().next().unwrap().1.spec {
        JobSpec::Deploy(deploy) => deploy,
        other => panic!("{other:?}"),
    }
}

fn invalid(job: Job) -> JobError {
    job.validate().expect_err("job should be invalid")
}

#[test]
fn rejects_unsupported_schema() {
    let mut job = with_spec(JobSpec::Start(StartPayload {}));
    job.schema = JOB_SCHEMA + 1;
    assert_eq!(
        invalid(job.clone()),
        JobError::UnsupportedSchema {
            found: 2,
            supported: 1
        }
    );
    job.schema = 0;
    assert!(matches!(
        invalid(job),
        JobError::UnsupportedSchema { found: 0, .. }
    ));
}

#[test]
fn rejects_bad_requested_by() {
    let mut job = with_spec(JobSpec::Start(StartPayload {}));
    job.requested_by = " ".into();
    assert!(matches!(
        invalid(job.clone()),
        JobError::InvalidRequestedBy { .. }
    ));
    job.requested_by = "x".repeat(MAX_REQUESTED_BY_LEN + 1);
    assert!(matches!(invalid(job), JobError::InvalidRequestedBy { .. }));
}

#[test]
fn rejects_bad_service_names() {
    for name in ["", "web/api", "web api", "wéb", "a*", &"s".repeat(64)] {
        let scale = with_spec(JobSpec::Scale(ScalePayload {
            service: name.into(),
            replicas: 1,
        }));
        assert!(
            matches!(
                invalid(scale),
                JobError::InvalidServiceName {
                    field: "payload.service",
                    ..
                }
            ),
            "{name:?}"
        );
        let restart = with_spec(JobSpec::Restart(RestartPayload {
            service: Some(name.into()),
        }));
        assert!(
            matches!(invalid(restart), JobError::InvalidServiceName { .. }),
            "{name:?}"
        );
        let mut d = deploy();
        d.options.main_service = Some(name.into());
        assert!(matches!(
            invalid(with_spec(JobSpec::Deploy(d))),
            JobError::InvalidServiceName {
                field: "payload.options.main_service",
                ..
            }
        ));
    }
    for name in ["web", "api.v2", "my_svc-1", "A"] {
        assert!(is_valid_service_name(name), "{name}");
    }
}

#[test]
fn rejects_too_many_replicas() {
    let ok = with_spec(JobSpec::Scale(ScalePayload {
        service: "web".into(),
        replicas: MAX_REPLICAS,
    }));
    ok.validate().unwrap();
    let zero = with_spec(JobSpec::Scale(ScalePayload {
        service: "web".into(),
        replicas: 0,
    }));
    zero.validate().unwrap();
    let too_many = with_spec(JobSpec::Scale(ScalePayload {
        service: "web".into(),
        replicas: MAX_REPLICAS + 1,
    }));
    assert!(matches!(
        invalid(too_many),
        JobError::TooManyReplicas {
            replicas: 101,
            max: 100,
            ..
        }
    ));
}

#[test]
fn rejects_bad_env() {
    for key in ["", "1ABC", "A-B", "A B", "É", "A.B"] {
        let mut d = deploy();
        d.env.insert(key, "v");
        assert_eq!(
            invalid(with_spec(JobSpec::Deploy(d))),
            JobError::InvalidEnvKey { key: key.into() },
            "{key:?}"
        );
    }
    for key in ["A", "_", "_a1", "PATH_2"] {
        assert!(is_valid_env_key(key), "{key}");
    }
    let mut d = deploy();
    d.env.insert("TOKEN", "se\0cret");
    let err = invalid(with_spec(JobSpec::Deploy(d)));
    assert_eq!(
        err,
        JobError::InvalidEnvValue {
            key: "TOKEN".into()
        }
    );
    assert!(!err.to_string().contains("cret"));
    let mut d = deploy();
    d.env = (0..=MAX_ENV_VARS).map(|i| (format!("V{i}"), "x")).collect();
    assert!(matches!(
        invalid(with_spec(JobSpec::Deploy(d))),
        JobError::TooManyEnvVars { .. }
    ));
}

#[test]
fn rejects_bad_compose_and_images() {
    let mut d = deploy();
    d.source = DeploySource::Compose(ComposeSource {
        text: " \n".into(),
        file_name: None,
    });
    assert_eq!(
        invalid(with_spec(JobSpec::Deploy(d))),
        JobError::EmptyCompose
    );

    let mut d = deploy();
    d.source = DeploySource::Compose(ComposeSource {
        text: "x".repeat(MAX_COMPOSE_BYTES + 1),
        file_name: None,
    });
    assert!(matches!(
        invalid(with_spec(JobSpec::Deploy(d))),
        JobError::ComposeTooLarge { .. }
    ));

    for reference in [
        "",
        "nginx latest",
        "nginx\n",
        &"n".repeat(MAX_IMAGE_REFERENCE_LEN + 1),
    ] {
        let mut d = deploy();
        d.source = DeploySource::Image(SingleImage {
            reference: reference.into(),
            port: None,
        });
        assert!(
            matches!(
                invalid(with_spec(JobSpec::Deploy(d))),
                JobError::InvalidImageReference { .. }
            ),
            "{reference:?}"
        );
        let mut d = deploy();
        d.images = vec![ImageSource::Registry {
            registry: reference.into(),
        }];
        assert!(matches!(
            invalid(with_spec(JobSpec::Deploy(d))),
            JobError::InvalidImageReference {
                field: "payload.images.registry",
                ..
            }
        ));
    }

    let mut d = deploy();
    d.source = DeploySource::Image(SingleImage {
        reference: "nginx:1".into(),
        port: Some(0),
    });
    assert_eq!(
        invalid(with_spec(JobSpec::Deploy(d))),
        JobError::InvalidPort { port: 0 }
    );

    for path in ["relative.tar", "/srv/../etc/shadow", "/a\0b"] {
        let mut d = deploy();
        d.images = vec![ImageSource::Path { path: path.into() }];
        assert!(
            matches!(
                invalid(with_spec(JobSpec::Deploy(d))),
                JobError::InvalidImagePath { .. }
            ),
            "{path:?}"
        );
    }
}

#[test]
fn rejects_bad_health_timeout_and_version() {
    for secs in [0, MAX_HEALTH_TIMEOUT_SECS + 1] {
        let mut d = deploy();
        d.options.health_timeout_secs = Some(secs);
        assert!(matches!(
            invalid(with_spec(JobSpec::Deploy(d))),
            JobError::InvalidHealthTimeout { .. }
        ));
    }
    let rollback = with_spec(JobSpec::Rollback(RollbackPayload {
        to_version: Some(0),
        with_data: false,
    }));
    assert_eq!(invalid(rollback), JobError::InvalidVersion { version: 0 });
    with_spec(JobSpec::Rollback(RollbackPayload::default()))
        .validate()
        .unwrap();
}

#[test]
fn redirect_domains_are_checked() {
    let names = |list: &[&str]| -> Option<Vec<Domain>> {
        Some(list.iter().map(|n| n.parse().unwrap()).collect())
    };
    let job_domain = with_spec(JobSpec::Deploy(deploy())).domain.to_string();
    for (list, reason) in [
        (vec![job_domain.as_str()], "is the domain itself"),
        (
            vec!["www.example.net", "www.example.net"],
            "is listed twice",
        ),
    ] {
        let mut d = deploy();
        d.options.redirect_domains = names(&list);
        assert_eq!(
            invalid(with_spec(JobSpec::Deploy(d))),
            JobError::InvalidRedirect {
                name: list[0].to_owned(),
                reason
            }
        );
    }
    let many: Vec<String> = (0..=MAX_REDIRECT_DOMAINS)
        .map(|i| format!("r{i}.example.net"))
        .collect();
    let mut d = deploy();
    d.options.redirect_domains = names(&many.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(matches!(
        invalid(with_spec(JobSpec::Deploy(d))),
        JobError::TooManyRedirects { .. }
    ));
    let mut d = deploy();
    d.options.redirect_domains = Some(Vec::new());
    with_spec(JobSpec::Deploy(d)).validate().unwrap();
}

#[test]
fn snapshot_of_single_image_deploy() {
    let job = fixtures::deploy_image_job();
    job.validate().unwrap();
    assert_eq!(Job::from_slice(&job.to_vec()).unwrap(), job);
    insta::assert_json_snapshot!("job_deploy_image", job);
}

#[test]
fn env_and_exec_jobs_are_checked() {
    let env = |set: &[(&str, &str)], unset: &[&str]| {
        with_spec(JobSpec::Env(EnvPayload {
            set: set.iter().copied().collect(),
            sealed_set: None,
            unset: unset.iter().map(|s| s.to_string()).collect(),
        }))
    };
    assert!(env(&[("A", "1")], &["B"]).validate().is_ok());
    assert_eq!(
        invalid(env(&[], &[])),
        JobError::InvalidEnvChange {
            key: String::new(),
            reason: "nothing to set or unset"
        }
    );
    assert_eq!(
        invalid(env(&[("A", "1")], &["A"])),
        JobError::InvalidEnvChange {
            key: "A".into(),
            reason: "is both set and unset"
        }
    );
    assert_eq!(
        invalid(env(&[], &["1BAD"])),
        JobError::InvalidEnvKey { key: "1BAD".into() }
    );
    assert!(matches!(
        invalid(env(&[("A", "x\0y")], &[])),
        JobError::InvalidEnvValue { .. }
    ));

    let exec = |command: Vec<&str>, timeout_secs| {
        with_spec(JobSpec::Exec(ExecPayload {
            service: "web".into(),
            command: command.into_iter().map(str::to_owned).collect(),
            timeout_secs,
        }))
    };
    assert!(
        exec(vec!["sh", "-c", "exit 3"], Some(60))
            .validate()
            .is_ok()
    );
    assert_eq!(
        invalid(exec(vec![], None)),
        JobError::InvalidCommand { reason: "is empty" }
    );
    assert_eq!(
        invalid(exec(vec!["true"], Some(0))),
        JobError::InvalidExecTimeout {
            secs: 0,
            max: MAX_EXEC_TIMEOUT_SECS
        }
    );
    assert_eq!(
        invalid(exec(vec!["echo"; MAX_EXEC_ARGS + 1], None)),
        JobError::InvalidCommand {
            reason: "has more than 256 arguments"
        }
    );
}
