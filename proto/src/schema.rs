//! JSON Schemas (draft 2020-12) generated from the wire types, for
//! dashboards and other-language clients.
//!
//! The generated files are checked in under `proto/schema/` ([`FILES`]); a
//! test fails when they drift from the types. Regenerate with
//! `HOSTKIT_UPDATE_SCHEMAS=1 cargo test -p hostkit-proto`.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::control::{
    BackupsReply, BackupsRequest, EnvReply, EnvRequest, ImportsReply, ImportsRequest, LogChunk,
    LogsRequest, PingReply, PingRequest, Reply, ServicesReply, ServicesRequest, StatusReply,
    StatusRequest, VersionsReply, VersionsRequest,
};
use crate::event::Event;
use crate::job::Job;
use crate::registry::{NodeInfo, Placement};

/// The checked-in schema files, relative to `proto/schema/`.
pub const FILES: &[&str] = &[
    "job.json",
    "event.json",
    "control.json",
    "node.json",
    "domain-config.json",
];

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().into_generator()
}

fn root_for<T: JsonSchema>() -> Value {
    generator().into_root_schema_for::<T>().to_value()
}

/// Schema of a [`Job`] (`job.json`).
pub fn job_schema() -> Value {
    root_for::<Job>()
}

/// Schema of an [`Event`] (`event.json`).
pub fn event_schema() -> Value {
    root_for::<Event>()
}

/// Adds `T` to the generator's definitions and returns its `$ref`.
fn reference<T: JsonSchema>(generator: &mut SchemaGenerator) -> Value {
    generator.subschema_for::<T>().to_value()
}

/// A root schema matching any of several message types, all under `$defs`.
fn bundle(
    title: &str,
    description: &str,
    mut generator: SchemaGenerator,
    refs: Vec<Value>,
) -> Value {
    let meta = generator.settings().meta_schema.clone();
    let defs: Map<String, Value> = generator.take_definitions(true);
    json!({
        "$schema": meta,
        "title": title,
        "description": description,
        "anyOf": refs,
        "$defs": defs,
    })
}

/// Schema of every control request and reply message (`control.json`).
pub fn control_schema() -> Value {
    let mut generator = generator();
    let refs = vec![
        reference::<PingRequest>(&mut generator),
        reference::<Reply<PingReply>>(&mut generator),
        reference::<StatusRequest>(&mut generator),
        reference::<Reply<StatusReply>>(&mut generator),
        reference::<ServicesRequest>(&mut generator),
        reference::<Reply<ServicesReply>>(&mut generator),
        reference::<VersionsRequest>(&mut generator),
        reference::<Reply<VersionsReply>>(&mut generator),
        reference::<BackupsRequest>(&mut generator),
        reference::<Reply<BackupsReply>>(&mut generator),
        reference::<EnvRequest>(&mut generator),
        reference::<Reply<EnvReply>>(&mut generator),
        reference::<ImportsRequest>(&mut generator),
        reference::<Reply<ImportsReply>>(&mut generator),
        reference::<LogsRequest>(&mut generator),
        reference::<Reply<LogChunk>>(&mut generator),
    ];
    bundle(
        "HostKit control messages",
        "Requests on <root>.ctl.<node>.<verb> (ping, status, services, versions, env, backups, imports, logs) and their replies: {\"ok\": payload} or {\"error\": {code, message, hint?}}. A logs request is answered by several Reply<LogChunk> messages, the last with end=true.",
        generator,
        refs,
    )
}

/// Schema of the KV values [`NodeInfo`] and [`Placement`] (`node.json`).
pub fn node_schema() -> Value {
    let mut generator = generator();
    let refs = vec![
        reference::<NodeInfo>(&mut generator),
        reference::<Placement>(&mut generator),
    ];
    bundle(
        "HostKit KV values",
        "NodeInfo: value in the hostkit_nodes bucket (key = node id). Placement: value in the hostkit_placement bucket (key = domain token).",
        generator,
        refs,
    )
}

/// Every schema with its file name (see [`FILES`]).
pub fn all() -> Vec<(&'static str, Value)> {
    vec![
        ("job.json", job_schema()),
        ("event.json", event_schema()),
        ("control.json", control_schema()),
        ("node.json", node_schema()),
        (
            "domain-config.json",
            root_for::<crate::view::DomainConfig>(),
        ),
    ]
}

/// Renders a schema as the checked-in files are written: pretty JSON with
/// object keys sorted at every level and a trailing newline.
pub fn render(schema: &Value) -> String {
    let mut text =
        serde_json::to_string_pretty(&sorted(schema)).expect("a JSON value always serializes");
    text.push('\n');
    text
}

/// Rebuilds every object with its keys inserted in sorted order, so the
/// output is sorted whether or not serde_json preserves insertion order.
fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const UPDATE_VAR: &str = "HOSTKIT_UPDATE_SCHEMAS";

    fn dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("schema")
    }

    #[test]
    fn checked_in_schemas_are_up_to_date() {
        let update = std::env::var(UPDATE_VAR).is_ok_and(|v| v == "1");
        let mut stale = Vec::new();
        for (file, schema) in all() {
            let path = dir().join(file);
            let fresh = render(&schema);
            if update {
                std::fs::create_dir_all(dir()).unwrap();
                std::fs::write(&path, &fresh).unwrap();
                continue;
            }
            match std::fs::read_to_string(&path) {
                Ok(current) if current == fresh => {}
                _ => stale.push(path.display().to_string()),
            }
        }
        assert!(
            stale.is_empty(),
            "JSON Schemas are out of date with the types: {}\nregenerate them with: {UPDATE_VAR}=1 cargo test -p hostkit-proto",
            stale.join(", ")
        );
    }

    #[test]
    fn file_list_matches() {
        let names: Vec<&str> = all().into_iter().map(|(name, _)| name).collect();
        assert_eq!(names, FILES);
    }

    #[test]
    fn job_schema_describes_every_kind() {
        let text = render(&job_schema());
        for kind in crate::job::JobKind::ALL {
            assert!(text.contains(&format!("\"{}\"", kind.as_str())), "{kind}");
        }
        assert!(text.contains("\"payload\""));
    }

    #[test]
    fn event_schema_describes_every_kind() {
        let text = render(&event_schema());
        for kind in crate::event::EventKind::KINDS {
            assert!(text.contains(&format!("\"{kind}\"")), "{kind}");
        }
    }

    #[test]
    fn render_sorts_keys() {
        assert_eq!(
            render(&json!({"b": 1, "a": {"d": 2, "c": 3}})),
            "{\n  \"a\": {\n    \"c\": 3,\n    \"d\": 2\n  },\n  \"b\": 1\n}\n"
        );
    }
}
