//! `env`: the names of a domain's stored variables (never their values).

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::name::Domain;

/// `env` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvRequest {
    /// The domain.
    pub domain: Domain,
}

/// `env` reply: names only; values never leave the worker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvReply {
    /// The domain.
    pub domain: Domain,
    /// The stored variables' names, sorted.
    pub keys: Vec<String>,
    /// When they last changed (absent when none was ever set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}
