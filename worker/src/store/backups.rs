//! Backups of domains' named volumes: which tar object holds each volume,
//! its size and digest, the version that ran, why it was taken. The
//! objects live in the node's backup bucket; rows and objects are pruned
//! together beyond retention (the handler deletes the objects, the row goes
//! with [`Change::ForgetBackups`](super::Change)).

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use hostkit_proto::{Domain, JobId};

use super::error::Res;
use super::sql::{self, now_ms};
use super::{Store, StoreError};

/// One backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRecord {
    /// The id of the job that took it.
    pub id: JobId,
    /// The domain.
    pub domain: Domain,
    /// The version that ran.
    pub version: u32,
    /// Why it was taken.
    pub reason: BackupReason,
    /// Its volumes.
    pub volumes: Vec<VolumeCopy>,
    /// When it was taken (set by the store when recorded).
    pub created_at: SystemTime,
}

impl BackupRecord {
    /// A backup taken now.
    pub fn new(
        id: JobId,
        domain: Domain,
        version: u32,
        reason: BackupReason,
        volumes: Vec<VolumeCopy>,
    ) -> BackupRecord {
        BackupRecord {
            id,
            domain,
            version,
            reason,
            volumes,
            created_at: SystemTime::now(),
        }
    }
}

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupReason {
    /// Asked for (`hostkit backup`).
    Backup,
    /// The volumes as they were before a restore replaced them.
    PreRestore,
    /// Taken by a `--snapshot` deploy before the new version touched them
    /// (the data of the version it replaced).
    Snapshot,
}

impl BackupReason {
    /// The stored (and wire) word.
    pub fn as_str(self) -> &'static str {
        match self {
            BackupReason::Backup => "backup",
            BackupReason::PreRestore => "pre_restore",
            BackupReason::Snapshot => "snapshot",
        }
    }
}

/// One volume of a backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCopy {
    /// The volume's compose key.
    pub volume: String,
    /// The object holding its tar.
    pub object: String,
    /// Bytes of the tar.
    pub size: u64,
    /// `sha256:<hex>` of the tar.
    pub digest: String,
}

impl Store {
    /// The domain's backups, newest first.
    pub async fn backups(&self, domain: Domain) -> Result<Vec<BackupRecord>, StoreError> {
        self.read("backups", move |conn| {
            let mut stmt = conn.prepare(&format!(
                "{SELECT} WHERE domain = ?1 ORDER BY created_at DESC, id DESC"
            ))?;
            let rows = stmt
                .query_map([domain.as_str()], read)?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    /// Records a backup in a transaction of its own (a copy aside that a
    /// failed restore could not put back: it must stay listed).
    pub async fn record_backup_now(&self, backup: BackupRecord) -> Result<(), StoreError> {
        self.write("record backup", move |tx| record(tx, &backup))
            .await
    }

    /// One backup of the domain.
    pub async fn backup(
        &self,
        domain: Domain,
        id: JobId,
    ) -> Result<Option<BackupRecord>, StoreError> {
        self.read("backup", move |conn| {
            Ok(conn
                .query_row(
                    &format!("{SELECT} WHERE domain = ?1 AND id = ?2"),
                    params![domain.as_str(), id.to_string()],
                    read,
                )
                .optional()?)
        })
        .await
    }
}

const SELECT: &str = "SELECT id, domain, version, reason, volumes_json, created_at FROM backups";

fn read(row: &Row<'_>) -> rusqlite::Result<BackupRecord> {
    let reason: String = row.get(3)?;
    Ok(BackupRecord {
        id: sql::job_id(row, 0)?,
        domain: sql::domain(row, 1)?,
        version: row.get(2)?,
        reason: match reason.as_str() {
            "pre_restore" => BackupReason::PreRestore,
            "snapshot" => BackupReason::Snapshot,
            _ => BackupReason::Backup,
        },
        volumes: sql::json(row, 4, "backup volumes")?,
        created_at: sql::time(row, 5)?,
    })
}

/// See [`Change::RecordBackup`](super::Change::RecordBackup).
pub(super) fn record(conn: &Connection, backup: &BackupRecord) -> Res<()> {
    conn.execute(
        "INSERT INTO backups (id, domain, version, reason, volumes_json, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            backup.id.to_string(),
            backup.domain.as_str(),
            backup.version,
            backup.reason.as_str(),
            serde_json::to_string(&backup.volumes)?,
            now_ms(),
        ],
    )?;
    Ok(())
}

/// See [`Change::ForgetBackups`](super::Change::ForgetBackups).
pub(super) fn forget(conn: &Connection, ids: &[JobId]) -> Res<()> {
    for id in ids {
        conn.execute("DELETE FROM backups WHERE id = ?1", [id.to_string()])?;
    }
    Ok(())
}
