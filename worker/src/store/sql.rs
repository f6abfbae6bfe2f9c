//! Small helpers shared by the store's SQL code: times, integer conversions
//! and typed column readers that report unreadable values as
//! [`StoreError::Corrupt`](super::StoreError::Corrupt).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Row;
use rusqlite::types::Type;
use serde::de::DeserializeOwned;

use hostkit_proto::{Domain, JobId, JobKind};

use super::error::{Fail, Invalid, Res};
use super::types::{JobState, VersionStatus};

/// Now, in milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    to_ms(SystemTime::now())
}

/// A time as milliseconds since the Unix epoch (0 before it).
pub(super) fn to_ms(time: SystemTime) -> i64 {
    let ms = time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// Milliseconds since the Unix epoch as a time.
pub(super) fn from_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// A `u64` as SQLite's `INTEGER`.
pub(super) fn to_i64(what: &'static str, value: u64) -> Res<i64> {
    i64::try_from(value).map_err(|_| Fail::Range { what, value })
}

fn invalid(idx: usize, what: &'static str, value: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        idx,
        Type::Text,
        Box::new(Invalid {
            what,
            value: value.into(),
        }),
    )
}

/// A text column parsed by `parse`.
fn parsed<T>(
    row: &Row<'_>,
    idx: usize,
    what: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    parse(&text).ok_or_else(|| invalid(idx, what, text))
}

/// A domain column.
pub(super) fn domain(row: &Row<'_>, idx: usize) -> rusqlite::Result<Domain> {
    parsed(row, idx, "domain", |s| Domain::parse(s).ok())
}

/// A job id column.
pub(super) fn job_id(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobId> {
    parsed(row, idx, "job id", |s| s.parse().ok())
}

/// A nullable job id column.
pub(super) fn opt_job_id(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<JobId>> {
    match row.get::<_, Option<String>>(idx)? {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| invalid(idx, "job id", text)),
    }
}

/// A job kind column (a kind from a newer build reads as `Unknown`).
pub(super) fn job_kind(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobKind> {
    parsed(row, idx, "job kind", |s| {
        serde_json::from_value(serde_json::Value::String(s.to_owned())).ok()
    })
}

/// A job state column.
pub(super) fn job_state(row: &Row<'_>, idx: usize) -> rusqlite::Result<JobState> {
    parsed(row, idx, "job state", JobState::parse)
}

/// A version status column.
pub(super) fn version_status(row: &Row<'_>, idx: usize) -> rusqlite::Result<VersionStatus> {
    parsed(row, idx, "version status", VersionStatus::parse)
}

/// A JSON text column.
pub(super) fn json<T: DeserializeOwned>(
    row: &Row<'_>,
    idx: usize,
    what: &'static str,
) -> rusqlite::Result<T> {
    let text: String = row.get(idx)?;
    serde_json::from_str(&text).map_err(|_| invalid(idx, what, text))
}

/// A time column.
pub(super) fn time(row: &Row<'_>, idx: usize) -> rusqlite::Result<SystemTime> {
    Ok(from_ms(row.get(idx)?))
}

/// A nullable time column.
pub(super) fn opt_time(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<SystemTime>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(from_ms))
}

/// A non-negative `INTEGER` column as `u64`.
pub(super) fn u64_col(row: &Row<'_>, idx: usize, what: &'static str) -> rusqlite::Result<u64> {
    let value: i64 = row.get(idx)?;
    u64::try_from(value).map_err(|_| invalid(idx, what, value.to_string()))
}
