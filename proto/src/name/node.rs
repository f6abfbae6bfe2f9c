//! [`NodeId`]: the validated identifier of one worker.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{NameError, NameKind, string_serde};

/// Maximum length of a node id.
pub const MAX_NODE_ID_LEN: usize = 63;

/// The id of one worker (one VPS): `[a-z0-9-]{1,63}`.
///
/// Appears verbatim as one subject token (`hostkit.jobs.<node>.…`) and as the
/// key in the `hostkit_nodes` bucket. No normalization: upper-case is
/// rejected, so one node has exactly one spelling.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(String);

impl NodeId {
    /// Validates `input`.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let kind = NameKind::NodeId;
        let name = || input.to_owned();
        if input.is_empty() {
            return Err(NameError::Empty { kind });
        }
        for ch in input.chars() {
            match ch {
                'a'..='z' | '0'..='9' | '-' => {}
                '/' | '\\' => {
                    return Err(NameError::PathSeparator {
                        kind,
                        name: name(),
                        ch,
                    });
                }
                '*' => return Err(NameError::Wildcard { kind, name: name() }),
                c if c.is_whitespace() => return Err(NameError::Whitespace { kind, name: name() }),
                _ => {
                    return Err(NameError::BadChar {
                        kind,
                        name: name(),
                        ch,
                        allowed: "a-z 0-9 -",
                    });
                }
            }
        }
        if input.len() > MAX_NODE_ID_LEN {
            return Err(NameError::TooLong {
                kind,
                name: name(),
                len: input.len(),
                max: MAX_NODE_ID_LEN,
            });
        }
        Ok(NodeId(input.to_owned()))
    }

    /// The id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for NodeId {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeId::parse(s)
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({:?})", self.0)
    }
}

impl AsRef<str> for NodeId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

string_serde!(NodeId);

impl JsonSchema for NodeId {
    fn schema_name() -> Cow<'static, str> {
        "NodeId".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Worker (VPS) id: 1 to 63 characters of [a-z0-9-].",
            "minLength": 1,
            "maxLength": MAX_NODE_ID_LEN,
            "pattern": "^[a-z0-9-]{1,63}$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_ids() {
        for id in ["vps-1", "a", "0", "-", &"x".repeat(63)] {
            assert_eq!(NodeId::parse(id).unwrap().as_str(), id);
        }
    }

    #[test]
    fn rejects_each_rule() {
        let err = |s: &str| NodeId::parse(s).expect_err(s);
        assert!(matches!(
            err(""),
            NameError::Empty {
                kind: NameKind::NodeId
            }
        ));
        assert!(matches!(
            err(&"x".repeat(64)),
            NameError::TooLong {
                len: 64,
                max: 63,
                ..
            }
        ));
        assert!(matches!(err("Vps-1"), NameError::BadChar { ch: 'V', .. }));
        assert!(matches!(err("vps.1"), NameError::BadChar { ch: '.', .. }));
        assert!(matches!(err("vps_1"), NameError::BadChar { ch: '_', .. }));
        assert!(matches!(err("vps>"), NameError::BadChar { ch: '>', .. }));
        assert!(matches!(
            err("a/b"),
            NameError::PathSeparator { ch: '/', .. }
        ));
        assert!(matches!(
            err("a\\b"),
            NameError::PathSeparator { ch: '\\', .. }
        ));
        assert!(matches!(err("*"), NameError::Wildcard { .. }));
        assert!(matches!(err("a b"), NameError::Whitespace { .. }));
        assert!(matches!(err("né"), NameError::BadChar { ch: 'é', .. }));
    }

    #[test]
    fn serde_round_trip_and_validation() {
        let id = NodeId::parse("vps-1").unwrap();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, "\"vps-1\"");
        assert_eq!(serde_json::from_str::<NodeId>(&json).unwrap(), id);
        assert!(serde_json::from_str::<NodeId>("\"VPS\"").is_err());
        assert_eq!(id.to_string(), "vps-1");
        assert_eq!(AsRef::<str>::as_ref(&id), "vps-1");
    }
}
