//! Tests of control messages: shapes, round trips, log batching.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::*;
use crate::error::{ErrorBody, ErrorCode};
use crate::fixtures;
use crate::job::JobKind;

fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let json = serde_json::to_string(value).unwrap();
    let back: T = serde_json::from_str(&json).unwrap_or_else(|err| panic!("{json}: {err}"));
    assert_eq!(&back, value, "{json}");
}

pub(crate) fn status_reply() -> StatusReply {
    StatusReply {
        node: fixtures::node(),
        version: "0.1.0".into(),
        domains: vec![DomainStatus {
            domain: fixtures::domain(),
            version: Some(4),
            health: DomainHealth::Healthy,
            last_job: Some(LastJob {
                id: fixtures::job_id(),
                kind: JobKind::Deploy,
                outcome: JobOutcome::Succeeded,
                finished_at: Some(fixtures::at()),
            }),
        }],
    }
}

pub(crate) fn services_reply() -> ServicesReply {
    ServicesReply {
        domain: fixtures::domain(),
        services: vec![ServiceStatus {
            service: "web".into(),
            image: "example/web:1".into(),
            version: Some(4),
            replicas: vec![ReplicaStatus {
                number: 1,
                container: "example_com-web-1".into(),
                state: ContainerState::Running,
                health: Some(HealthState::Healthy),
                ports: vec![PortMapping {
                    container_port: 80,
                    protocol: PortProtocol::Tcp,
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(20001),
                }],
            }],
        }],
    }
}

pub(crate) fn versions_reply() -> VersionsReply {
    VersionsReply {
        domain: fixtures::domain(),
        versions: vec![VersionInfo {
            version: 4,
            created_at: fixtures::at(),
            job_id: fixtures::job_id(),
            images: BTreeMap::from([("web".to_owned(), format!("sha256:{}", "b".repeat(64)))]),
            status: VersionStatus::Deployed,
            current: true,
        }],
    }
}

#[test]
fn requests_round_trip() {
    round_trip(&PingRequest {});
    round_trip(&StatusRequest { domain: None });
    round_trip(&StatusRequest {
        domain: Some(fixtures::domain()),
    });
    round_trip(&ServicesRequest {
        domain: fixtures::domain(),
    });
    round_trip(&VersionsRequest {
        domain: fixtures::domain(),
    });
    round_trip(&LogsRequest {
        domain: fixtures::domain(),
        service: "web".into(),
        tail: Some(50),
        follow: true,
    });
}

#[test]
fn replies_round_trip() {
    round_trip(&Reply::Ok(PingReply {
        node: fixtures::node(),
        version: "0.1.0".into(),
        uptime_secs: 12,
    }));
    round_trip(&Reply::Ok(status_reply()));
    round_trip(&Reply::Ok(services_reply()));
    round_trip(&Reply::Ok(versions_reply()));
    round_trip(&Reply::<PingReply>::Error(ErrorBody::from_code(
        ErrorCode::DomainNotFound,
    )));
    round_trip(&Reply::Ok(LogChunk {
        seq: 0,
        lines: vec![LogLine {
            stream: LogStream::Stderr,
            line: "boom".into(),
        }],
        end: true,
    }));
}

#[test]
fn reply_shapes() {
    let ok = Reply::Ok(PingReply {
        node: fixtures::node(),
        version: "0.1.0".into(),
        uptime_secs: 12,
    });
    assert_eq!(
        serde_json::to_string(&ok).unwrap(),
        r#"{"ok":{"node":"vps-1","version":"0.1.0","uptime_secs":12}}"#
    );
    let err: Reply<PingReply> =
        Reply::Error(ErrorBody::new(ErrorCode::DomainNotFound, "no such domain").without_hint());
    assert_eq!(
        serde_json::to_string(&err).unwrap(),
        r#"{"error":{"code":"domain.not_found","message":"no such domain"}}"#
    );
    assert!(ok.is_ok() && !err.is_ok());
    assert_eq!(
        err.into_result().unwrap_err().code,
        ErrorCode::DomainNotFound
    );
    let from: Reply<u8> = Ok(1).into();
    assert_eq!(from, Reply::Ok(1));
    let chunk = LogChunk {
        seq: 3,
        lines: vec![LogLine {
            stream: LogStream::Stdout,
            line: "hi".into(),
        }],
        end: false,
    };
    assert_eq!(
        serde_json::to_string(&Reply::Ok(chunk)).unwrap(),
        r#"{"ok":{"seq":3,"lines":[{"stream":"stdout","line":"hi"}],"end":false}}"#
    );
}

#[test]
fn requests_tolerate_unknown_fields_and_defaults() {
    let logs: LogsRequest =
        serde_json::from_str(r#"{"domain":"example.com","service":"web","color":true}"#).unwrap();
    assert!(!logs.follow);
    assert_eq!(logs.effective_tail(), LOG_TAIL_DEFAULT);
    let big = LogsRequest {
        tail: Some(u32::MAX),
        ..logs
    };
    assert_eq!(big.effective_tail(), LOG_TAIL_MAX);
    let status: StatusRequest = serde_json::from_str("{}").unwrap();
    assert_eq!(status.domain, None);
    let state: ContainerState = serde_json::from_str("\"frozen\"").unwrap();
    assert_eq!(state, ContainerState::Unknown);
}

#[test]
fn verbs_match_requests() {
    assert_eq!(PingRequest::VERB, ControlVerb::Ping);
    assert_eq!(StatusRequest::VERB, ControlVerb::Status);
    assert_eq!(ServicesRequest::VERB, ControlVerb::Services);
    assert_eq!(VersionsRequest::VERB, ControlVerb::Versions);
    assert_eq!(LogsRequest::VERB, ControlVerb::Logs);
}

#[test]
fn log_batcher_bounds_chunks() {
    let mut batcher = LogBatcher::new();
    let mut chunks = Vec::new();
    for i in 0..(LOG_CHUNK_MAX_LINES * 2 + 10) {
        chunks.extend(batcher.push(LogStream::Stdout, &format!("line {i}")));
    }
    chunks.push(batcher.finish());
    assert_eq!(chunks.len(), 3);
    assert_eq!(chunks.iter().map(|c| c.seq).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(
        chunks.iter().map(|c| c.lines.len()).collect::<Vec<_>>(),
        [256, 256, 10]
    );
    assert_eq!(
        chunks.iter().map(|c| c.end).collect::<Vec<_>>(),
        [false, false, true]
    );

    let mut batcher = LogBatcher::new();
    let long = "x".repeat(LOG_LINE_MAX_BYTES * 2);
    let mut chunks = Vec::new();
    for _ in 0..40 {
        chunks.extend(batcher.push(LogStream::Stderr, &long));
    }
    assert!(batcher.flush().is_some());
    assert!(batcher.flush().is_none());
    let last = batcher.finish();
    assert!(last.end && last.lines.is_empty());
    for chunk in &chunks {
        let bytes: usize = chunk.lines.iter().map(|l| l.line.len()).sum();
        assert!(bytes <= LOG_CHUNK_MAX_BYTES, "{bytes}");
        assert!(
            chunk
                .lines
                .iter()
                .all(|l| l.line.len() <= LOG_LINE_MAX_BYTES)
        );
        assert!(serde_json::to_vec(chunk).unwrap().len() < 512 * 1024);
    }
}

#[test]
fn replies_tolerate_extra_fields() {
    let reply: Reply<PingReply> = serde_json::from_str(
        r#"{"trace":"x","ok":{"node":"vps-1","version":"1","uptime_secs":1,"load":0.5}}"#,
    )
    .unwrap();
    assert!(reply.is_ok());
    let reply: Reply<PingReply> =
        serde_json::from_str(r#"{"error":{"code":"internal","message":"m"},"retry":true}"#)
            .unwrap();
    assert!(!reply.is_ok());
    assert!(serde_json::from_str::<Reply<PingReply>>("{}").is_err());
    assert!(serde_json::from_str::<Reply<PingReply>>(r#"{"ok":{"node":"BAD"}}"#).is_err());
}
