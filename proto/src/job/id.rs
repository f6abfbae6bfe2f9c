//! [`JobId`]: the ULID that identifies a job (and is its `Nats-Msg-Id`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use ulid::Ulid;

use crate::name::string_serde;

/// A job id: a ULID (26 Crockford base32 characters, time-ordered).
///
/// The CLI also uses it as the `Nats-Msg-Id` of the published job, so a
/// re-published job is de-duplicated by the jobs stream. Displayed and
/// serialized in upper case; parsing is case-insensitive.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(Ulid);

/// A string is not a valid [`JobId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid job id {input:?}: expected a ULID (26 characters of Crockford base32)")]
pub struct InvalidJobId {
    /// The input.
    pub input: String,
}

impl JobId {
    /// A fresh id for the current time.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        JobId(Ulid::new())
    }

    /// Wraps an existing ULID.
    pub fn from_ulid(ulid: Ulid) -> Self {
        JobId(ulid)
    }

    /// The ULID.
    pub fn ulid(self) -> Ulid {
        self.0
    }
}

impl FromStr for JobId {
    type Err = InvalidJobId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidJobId {
            input: s.to_owned(),
        };
        let ulid = Ulid::from_string(s).map_err(|_| invalid())?;
        // The decoder silently drops overflowing high bits (`8…` and above):
        // accept only strings that are the canonical spelling of their value.
        if !ulid.to_string().eq_ignore_ascii_case(s) {
            return Err(invalid());
        }
        Ok(JobId(ulid))
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JobId({})", self.0)
    }
}

string_serde!(JobId);

impl JsonSchema for JobId {
    fn schema_name() -> Cow<'static, str> {
        "JobId".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Job id: a ULID in upper-case Crockford base32. Also the Nats-Msg-Id of the job message.",
            "pattern": "^[0-7][0-9A-HJKMNP-TV-Z]{25}$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_serde() {
        let id: JobId = "01HZY3W8Q9V1T3M9X0A7B5C2DE".parse().unwrap();
        assert_eq!(id.to_string(), "01HZY3W8Q9V1T3M9X0A7B5C2DE");
        let lower: JobId = "01hzy3w8q9v1t3m9x0a7b5c2de".parse().unwrap();
        assert_eq!(lower, id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"01HZY3W8Q9V1T3M9X0A7B5C2DE\"");
        assert_eq!(serde_json::from_str::<JobId>(&json).unwrap(), id);
        assert_eq!(format!("{id:?}"), "JobId(01HZY3W8Q9V1T3M9X0A7B5C2DE)");
    }

    #[test]
    fn rejects_non_ulids() {
        for bad in [
            "",
            "nope",
            "01HZY3W8Q9V1T3M9X0A7B5C2D",
            "01HZY3W8Q9V1T3M9X0A7B5C2DEX",
            "81HZY3W8Q9V1T3M9X0A7B5C2DE",
        ] {
            assert!(bad.parse::<JobId>().is_err(), "{bad}");
            assert!(serde_json::from_str::<JobId>(&format!("\"{bad}\"")).is_err());
        }
    }

    #[test]
    fn new_ids_are_unique_and_ordered() {
        let a = JobId::new();
        let b = JobId::new();
        assert_ne!(a, b);
        assert!(a.ulid().timestamp_ms() <= b.ulid().timestamp_ms());
    }
}
