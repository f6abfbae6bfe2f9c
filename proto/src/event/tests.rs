//! Tests of the event wire format.

use super::*;
use crate::error::ErrorCode;
use crate::fixtures;

#[test]
fn exact_json_shape() {
    let event = Event::for_job(
        fixtures::node(),
        42,
        fixtures::domain(),
        fixtures::job_id(),
        EventKind::Step {
            name: "load_images".into(),
            message: "loading 2 images".into(),
        },
    )
    .with_at(fixtures::at());
    assert_eq!(
        String::from_utf8(event.to_vec()).unwrap(),
        r#"{"schema":1,"seq":42,"at":"2026-01-02T03:04:05Z","node":"vps-1","domain":"example.com","job_id":"01HZY3W8Q9V1T3M9X0A7B5C2DE","kind":"step","name":"load_images","message":"loading 2 images"}"#
    );
    let node = Event::new(fixtures::node(), 7, EventKind::Offline {}).with_at(fixtures::at());
    assert_eq!(
        String::from_utf8(node.to_vec()).unwrap(),
        r#"{"schema":1,"seq":7,"at":"2026-01-02T03:04:05Z","node":"vps-1","kind":"offline"}"#
    );
}

#[test]
fn every_kind_round_trips_and_is_covered() {
    let events = fixtures::events();
    let mut kinds: Vec<&str> = events.iter().map(|(_, e)| e.kind.kind_str()).collect();
    kinds.sort_unstable();
    let mut known = EventKind::KINDS.to_vec();
    known.sort_unstable();
    assert_eq!(kinds, known, "one fixture per kind");
    for (name, event) in events {
        let bytes = event.to_vec();
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["kind"], name, "fixture name = kind");
        let back = Event::from_slice(&bytes).unwrap_or_else(|err| panic!("{name}: {err}"));
        assert_eq!(back, event, "{name}");
        assert_ne!(back.kind.category(), EventCategory::Unknown);
    }
}

#[test]
fn snapshots_of_every_kind() {
    for (name, event) in fixtures::events() {
        insta::assert_json_snapshot!(format!("event_{name}"), event);
    }
}

#[test]
fn terminal_kinds() {
    let terminal: Vec<&str> = fixtures::events()
        .into_iter()
        .filter(|(_, e)| e.is_terminal())
        .map(|(name, _)| name)
        .collect();
    assert_eq!(terminal, ["succeeded", "failed", "superseded"]);
}

#[test]
fn unknown_kinds_are_kept_verbatim() {
    let json = r#"{"schema":2,"seq":9,"at":"2026-01-02T03:04:05Z","node":"vps-1","domain":"example.com",
        "kind":"certificate_renewed","expires":"2027-01-01","issuer":{"name":"LE"}}"#;
    let event = Event::from_slice(json.as_bytes()).unwrap();
    let EventKind::Unknown { kind, fields } = &event.kind else {
        panic!("{event:?}")
    };
    assert_eq!(kind, "certificate_renewed");
    assert_eq!(fields["expires"], "2027-01-01");
    assert!(!fields.contains_key("node") && !fields.contains_key("kind"));
    assert_eq!(event.kind.category(), EventCategory::Unknown);
    assert!(!event.is_terminal());
    let again = Event::from_slice(&event.to_vec()).unwrap();
    assert_eq!(again, event);
    let value: serde_json::Value = serde_json::from_slice(&event.to_vec()).unwrap();
    assert_eq!(value["issuer"]["name"], "LE");
    assert_eq!(value["kind"], "certificate_renewed");
}

#[test]
fn unknown_fields_and_values_are_ignored() {
    let json = r#"{"schema":1,"seq":1,"at":"2026-01-02T03:04:05Z","node":"vps-1","domain":"example.com",
        "job_id":"01HZY3W8Q9V1T3M9X0A7B5C2DE","kind":"failed","code":"quantum.flux","message":"m",
        "trace_id":"abc","retry_after":5}"#;
    let event = Event::from_slice(json.as_bytes()).unwrap();
    assert!(matches!(
        event.kind,
        EventKind::Failed {
            code: ErrorCode::Unknown,
            ..
        }
    ));
    let json = r#"{"schema":1,"seq":1,"at":"2026-01-02T03:04:05Z","node":"vps-1","kind":"service",
        "service":"web","replica":1,"state":"hibernating"}"#;
    let event = Event::from_slice(json.as_bytes()).unwrap();
    assert!(matches!(
        event.kind,
        EventKind::Service {
            state: ReplicaState::Unknown,
            ..
        }
    ));
}

#[test]
fn known_kinds_with_bad_fields_are_errors() {
    let json = r#"{"schema":1,"seq":1,"at":"2026-01-02T03:04:05Z","node":"vps-1","kind":"step"}"#;
    assert!(Event::from_slice(json.as_bytes()).is_err());
    let json = r#"{"schema":1,"seq":1,"at":"2026-01-02T03:04:05Z","node":"vps-1"}"#;
    assert!(Event::from_slice(json.as_bytes()).is_err());
    let json = r#"{"schema":1,"seq":1,"at":"2026-01-02T03:04:05Z","node":"vps-1","kind":3}"#;
    assert!(Event::from_slice(json.as_bytes()).is_err());
}

#[test]
fn msg_id_and_failed_helper() {
    let event = Event::new(
        fixtures::node(),
        12,
        EventKind::Online {
            version: "1".into(),
        },
    );
    assert_eq!(event.msg_id(), "vps-1:12");
    let failed = EventKind::failed(
        crate::ErrorBody::from_code(ErrorCode::HealthTimeout),
        Some(3),
    );
    assert!(failed.is_terminal());
    assert!(matches!(
        failed,
        EventKind::Failed {
            rolled_back_to: Some(3),
            ..
        }
    ));
}

#[test]
fn truncate_message_respects_char_boundaries() {
    assert_eq!(truncate_message("short", 10), "short");
    let cut = truncate_message("ééééé", 7);
    assert!(cut.len() <= 7, "{cut}");
    assert!(cut.ends_with('…'));
    assert_eq!(truncate_message("abcdefghij", 5), "ab…");
}
