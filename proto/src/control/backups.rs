//! `backups`: the backups a node keeps of a domain's volumes.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::job::JobId;
use crate::name::Domain;

/// `backups` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupsRequest {
    /// The domain.
    pub domain: Domain,
}

/// `backups` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupsReply {
    /// The domain.
    pub domain: Domain,
    /// Its backups, newest first.
    pub backups: Vec<BackupInfo>,
}

/// One backup: a copy of some of a stack's named volumes at one time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupInfo {
    /// Its id (the id of the job that took it); `hostkit restore` takes it.
    pub id: JobId,
    /// The stack version that ran when it was taken.
    pub version: u32,
    /// When it was taken.
    pub created_at: DateTime<Utc>,
    /// Why: `backup` (asked for), `snapshot` (by a `--snapshot` deploy,
    /// before the next version touched the data), `pre_restore` (the
    /// volumes as they were before a restore replaced them).
    pub reason: String,
    /// The volumes it holds.
    pub volumes: Vec<VolumeBackup>,
}

/// One volume of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct VolumeBackup {
    /// The volume's key in the compose file.
    pub volume: String,
    /// Bytes of its tar.
    pub size: u64,
    /// `sha256:<hex>` of its tar, checked when it is restored.
    pub digest: String,
}
