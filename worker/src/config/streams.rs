//! `[streams]`: the size and age bounds and the replica count of the
//! JetStream objects a worker creates (jobs and events streams, image and
//! backup buckets, KV buckets). An object that exists
//! already is never changed; an unbounded one is reported at startup.

use std::time::Duration;

use hostkit_proto::subjects::settings::{MAX_REPLICAS, StreamBounds};
use serde::{Deserialize, Serialize};

use super::file::DurationText;
use super::{Problems, format_duration};

/// `[streams]` as written: every key optional (HostKit's defaults).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StreamsSection {
    /// Copies of each stream and bucket (3 on a 3-server cluster).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
    /// Jobs stream bytes (`"256m"`).
    #[serde(
        deserialize_with = "hostkit_deploy::policy::deserialize_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub jobs_max_bytes: Option<u64>,
    /// Age after which an unconsumed job is dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_max_age: Option<DurationText>,
    /// Events stream bytes.
    #[serde(
        deserialize_with = "hostkit_deploy::policy::deserialize_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub events_max_bytes: Option<u64>,
    /// Age after which events are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events_max_age: Option<DurationText>,
    /// Bytes of each image bucket.
    #[serde(
        deserialize_with = "hostkit_deploy::policy::deserialize_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub images_max_bytes: Option<u64>,
    /// Age after which image blobs are dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_max_age: Option<DurationText>,
}

/// The smallest size a stream or bucket may be given.
const MIN_BYTES: u64 = 1024 * 1024;
/// The shortest age a stream or bucket may be given.
const MIN_AGE: Duration = Duration::from_secs(60);

/// The bounds, HostKit's defaults for what is not set.
pub(super) fn validate(s: &StreamsSection, p: &mut Problems) -> Option<StreamBounds> {
    let before = p.list.len();
    let defaults = StreamBounds::default();
    let replicas = match s.replicas {
        None => defaults.replicas,
        Some(n) if (1..=MAX_REPLICAS).contains(&n) => n,
        Some(n) => {
            p.push(
                "streams.replicas",
                format!("must be 1 to {MAX_REPLICAS} (got {n}); a 3-server cluster takes 3"),
            );
            defaults.replicas
        }
    };
    let mut size = |key: &str, value: Option<u64>, default: i64| -> i64 {
        match value {
            None => default,
            Some(n) if n < MIN_BYTES => {
                p.push(
                    format!("streams.{key}"),
                    format!("must be at least 1 MiB (got {n} bytes)"),
                );
                default
            }
            Some(n) => i64::try_from(n).unwrap_or(i64::MAX),
        }
    };
    let jobs_max_bytes = size("jobs_max_bytes", s.jobs_max_bytes, defaults.jobs_max_bytes);
    let events_max_bytes = size(
        "events_max_bytes",
        s.events_max_bytes,
        defaults.events_max_bytes,
    );
    let images_max_bytes = size(
        "images_max_bytes",
        s.images_max_bytes,
        defaults.images_max_bytes,
    );
    let mut age = |key: &str, value: &Option<DurationText>, default: Duration| match value {
        None => default,
        Some(text) => p
            .duration(&format!("streams.{key}"), text, MIN_AGE)
            .unwrap_or(default),
    };
    let bounds = StreamBounds {
        replicas,
        jobs_max_bytes,
        jobs_max_age: age("jobs_max_age", &s.jobs_max_age, defaults.jobs_max_age),
        events_max_bytes,
        events_max_age: age("events_max_age", &s.events_max_age, defaults.events_max_age),
        images_max_bytes,
        images_max_age: age("images_max_age", &s.images_max_age, defaults.images_max_age),
    };
    (p.list.len() == before).then_some(bounds)
}

/// `bounds` as written in worker.toml (every key spelled out).
pub(super) fn to_file(bounds: &StreamBounds) -> StreamsSection {
    let bytes = |n: i64| Some(u64::try_from(n).unwrap_or(0));
    let age = |d: Duration| Some(DurationText(format_duration(d)));
    StreamsSection {
        replicas: Some(bounds.replicas),
        jobs_max_bytes: bytes(bounds.jobs_max_bytes),
        jobs_max_age: age(bounds.jobs_max_age),
        events_max_bytes: bytes(bounds.events_max_bytes),
        events_max_age: age(bounds.events_max_age),
        images_max_bytes: bytes(bounds.images_max_bytes),
        images_max_age: age(bounds.images_max_age),
    }
}
