//! `imports`: the HostKit v1 sites a node could import (`hostkit import
//! --all --node N` asks this first, then sends one `import` job per site).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::name::Domain;

/// `imports` request (empty object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportsRequest {}

/// `imports` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportsReply {
    /// Every v1 site under the node's domains root, by domain.
    pub sites: Vec<V1SiteInfo>,
}

/// One HostKit v1 site on the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct V1SiteInfo {
    /// The domain.
    pub domain: Domain,
    /// v1's port (`config.json`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Why it cannot be imported as it is; absent when it can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}
