//! Stack versions (DESIGN §5 Versions).
//!
//! Every deploy that reaches its end records version N of its domain: the
//! compose text, the normalized project, the main service, the resolved
//! images, the env hash and the job. Numbers grow per domain and are never
//! reused: a new version must be above every recorded one, pruned rows stay,
//! and so do the rows of a removed domain. The domain row points at the
//! current version.
//!
//! Status transitions: a version is recorded `deployed` (and made current)
//! or `failed`. A rollback to an older version marks the version it replaces
//! `rolled_back`; restoring a version marks it `deployed` again. Retention
//! ([`Store::prune`]) and domain removal mark versions `pruned`; the record
//! stays, only its images go.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, Row, params};

use hostkit_proto::Domain;

use super::error::{Res, StoreError};
use super::sql::{self, now_ms};
use super::types::{NewVersion, VersionRecord, VersionService, VersionStatus};
use super::{Store, domains};

impl Store {
    /// The number the domain's next version gets: one above every version
    /// ever recorded for it (pruned ones and those from before a removal
    /// included), 1 for the first. It does not reserve the number: a lane
    /// runs one job at a time, and [`Change::RecordDeployed`](super::Change)
    /// refuses a number that is not new.
    pub async fn next_version(&self, domain: Domain) -> Result<u32, StoreError> {
        self.read("next version", move |conn| next(conn, &domain))
            .await
    }

    /// The domain's current version (none for an unknown domain or before
    /// its first successful deploy).
    pub async fn current_version(
        &self,
        domain: Domain,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.read("current version", move |conn| {
            let current = conn
                .query_row(
                    "SELECT current_version FROM domains WHERE domain = ?1",
                    [domain.as_str()],
                    |row| row.get::<_, Option<u32>>(0),
                )
                .optional()?
                .flatten();
            match current {
                Some(version) => get(conn, &domain, version),
                None => Ok(None),
            }
        })
        .await
    }

    /// Version `version` of the domain, whatever its status.
    pub async fn version(
        &self,
        domain: Domain,
        version: u32,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.read("version", move |conn| get(conn, &domain, version))
            .await
    }

    /// The rollback target by default: the newest `deployed` version older
    /// than the current one (`rolled_back`, `failed` and `pruned` versions
    /// are skipped). None without a current version or an older deployed one.
    pub async fn previous_version(
        &self,
        domain: Domain,
    ) -> Result<Option<VersionRecord>, StoreError> {
        self.read("previous version", move |conn| {
            let previous: Option<u32> = conn
                .query_row(
                    "SELECT v.version FROM versions v JOIN domains d ON d.domain = v.domain
                     WHERE v.domain = ?1 AND v.status = 'deployed'
                       AND v.version < d.current_version
                     ORDER BY v.version DESC LIMIT 1",
                    [domain.as_str()],
                    |row| row.get(0),
                )
                .optional()?;
            match previous {
                Some(version) => get(conn, &domain, version),
                None => Ok(None),
            }
        })
        .await
    }

    /// Every recorded version of the domain, newest first.
    pub async fn versions(&self, domain: Domain) -> Result<Vec<VersionRecord>, StoreError> {
        self.read("versions", move |conn| {
            let mut services = services_of_domain(conn, &domain)?;
            let sql = format!("{VERSION_SELECT} WHERE v.domain = ?1 ORDER BY v.version DESC");
            let mut stmt = conn.prepare(&sql)?;
            let mut versions: Vec<VersionRecord> = stmt
                .query_map([domain.as_str()], read_version)?
                .collect::<Result<_, _>>()?;
            for v in &mut versions {
                v.services = services.remove(&v.version).unwrap_or_default();
            }
            Ok(versions)
        })
        .await
    }

    /// Makes a restorable (`deployed` or `rolled_back`) version current and
    /// marks it `deployed`. When it is older than the version it replaces (a
    /// rollback), the replaced one becomes `rolled_back`; when newer (a
    /// restore forward), the replaced one stays `deployed`.
    ///
    /// Errors: [`StoreError::DomainNotFound`], [`StoreError::VersionNotFound`],
    /// [`StoreError::VersionNotRestorable`] (both `version.not_found` on the
    /// wire).
    #[cfg(test)]
    pub async fn set_current(&self, domain: Domain, version: u32) -> Result<(), StoreError> {
        self.write("set current version", move |tx| {
            set_current(tx, &domain, version)
        })
        .await
    }

    /// Sets a version's status. The current version can only be `deployed`
    /// ([`StoreError::CurrentVersion`]).
    #[cfg(test)]
    pub async fn mark_version(
        &self,
        domain: Domain,
        version: u32,
        status: VersionStatus,
    ) -> Result<(), StoreError> {
        self.write("mark version", move |tx| mark(tx, &domain, version, status))
            .await
    }

    /// Sets the replica count of one service of a recorded version (a scale
    /// job, so that the version re-applies with it).
    #[cfg(test)]
    pub async fn set_replicas(
        &self,
        domain: Domain,
        version: u32,
        service: String,
        replicas: u32,
    ) -> Result<(), StoreError> {
        self.write("set replicas", move |tx| {
            set_replicas(tx, &domain, version, &service, replicas)
        })
        .await
    }

    /// Retention: keeps the newest `keep` restorable (`deployed` or
    /// `rolled_back`) versions and the current one, and marks every other
    /// restorable version `pruned`; a `failed` version is pruned too once it
    /// is older than every kept one. Answers the versions pruned now, newest
    /// first, so the caller can untag their images (untagging is idempotent:
    /// a caller interrupted before it untags can untag every `pruned` version
    /// again).
    pub async fn prune(
        &self,
        domain: Domain,
        keep: usize,
    ) -> Result<Vec<VersionRecord>, StoreError> {
        self.write("prune versions", move |tx| prune(tx, &domain, keep))
            .await
    }
}

fn next(conn: &Connection, domain: &Domain) -> Res<u32> {
    let max: u32 = conn.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM versions WHERE domain = ?1",
        [domain.as_str()],
        |row| row.get(0),
    )?;
    Ok(max.saturating_add(1))
}

fn status_of(conn: &Connection, domain: &Domain, version: u32) -> Res<Option<VersionStatus>> {
    Ok(conn
        .query_row(
            "SELECT status FROM versions WHERE domain = ?1 AND version = ?2",
            params![domain.as_str(), version],
            |row| sql::version_status(row, 0),
        )
        .optional()?)
}

fn not_found(domain: &Domain, version: u32) -> StoreError {
    StoreError::VersionNotFound {
        domain: domain.clone(),
        version,
    }
}

fn set_status(conn: &Connection, domain: &Domain, version: u32, status: VersionStatus) -> Res<()> {
    conn.execute(
        "UPDATE versions SET status = ?3, updated_at = ?4 WHERE domain = ?1 AND version = ?2",
        params![domain.as_str(), version, status.as_str(), now_ms()],
    )?;
    Ok(())
}

/// Inserts a version with its services; a deployed one becomes current.
pub(super) fn record(conn: &Connection, v: &NewVersion, deployed: bool) -> Res<()> {
    domains::current(conn, &v.domain)?;
    if status_of(conn, &v.domain, v.version)?.is_some() {
        return Err(StoreError::VersionExists {
            domain: v.domain.clone(),
            version: v.version,
        }
        .into());
    }
    let next = next(conn, &v.domain)?;
    if v.version < next {
        return Err(StoreError::VersionNotNew {
            domain: v.domain.clone(),
            version: v.version,
            next,
        }
        .into());
    }
    let images: BTreeMap<&str, &str> = v
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.image_id.as_str()))
        .collect();
    let image_refs: BTreeMap<&str, &str> = v
        .services
        .iter()
        .map(|s| (s.service.as_str(), s.image_ref.as_str()))
        .collect();
    let main_service = v
        .main_service
        .as_ref()
        .map(serde_json::to_string)
        .transpose()?;
    let status = if deployed {
        VersionStatus::Deployed
    } else {
        VersionStatus::Failed
    };
    let now = now_ms();
    conn.execute(
        "INSERT INTO versions (domain, version, status, compose_text, project_json,
                               main_service_json, images_json, image_refs_json, env_hash,
                               job_id, created_at, updated_at, other_images_json,
                               job_env_json)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12, ?13)",
        params![
            v.domain.as_str(),
            v.version,
            status.as_str(),
            v.compose_text,
            super::sealed::seal(serde_json::to_string(&v.project)?, v.seal_key.0.as_ref())?,
            main_service,
            serde_json::to_string(&images)?,
            serde_json::to_string(&image_refs)?,
            v.env_hash,
            v.job_id.to_string(),
            now,
            serde_json::to_string(&v.other_images)?,
            super::sealed::seal(serde_json::to_string(&v.job_env)?, v.seal_key.0.as_ref())?,
        ],
    )?;
    let mut insert = conn.prepare(
        "INSERT INTO version_services (domain, version, service, image_ref, image_id,
                                       replicas, config_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    for s in &v.services {
        insert.execute(params![
            v.domain.as_str(),
            v.version,
            s.service,
            s.image_ref,
            s.image_id,
            s.replicas,
            s.config_hash,
        ])?;
    }
    if deployed {
        conn.execute(
            "UPDATE domains SET current_version = ?2, updated_at = ?3 WHERE domain = ?1",
            params![v.domain.as_str(), v.version, now],
        )?;
    }
    tracing::debug!(domain = %v.domain, version = v.version, %status, "version recorded");
    Ok(())
}

/// See [`Change::ReloadProject`].
pub(super) fn reload_project(
    conn: &Connection,
    domain: &Domain,
    version: u32,
    project: &hostkit_deploy::compose::Project,
    env_hash: &str,
    config_hashes: &BTreeMap<String, String>,
    seal_key: &super::SealWith,
) -> Res<()> {
    status_of(conn, domain, version)?.ok_or_else(|| not_found(domain, version))?;
    conn.execute(
        "UPDATE versions SET project_json = ?3, env_hash = ?4, updated_at = ?5
         WHERE domain = ?1 AND version = ?2",
        params![
            domain.as_str(),
            version,
            super::sealed::seal(serde_json::to_string(project)?, seal_key.0.as_ref())?,
            env_hash,
            now_ms(),
        ],
    )?;
    for (service, hash) in config_hashes {
        conn.execute(
            "UPDATE version_services SET config_hash = ?4
             WHERE domain = ?1 AND version = ?2 AND service = ?3",
            params![domain.as_str(), version, service, hash],
        )?;
    }
    Ok(())
}

/// See `Store::set_current`.
pub(super) fn set_current(conn: &Connection, domain: &Domain, version: u32) -> Res<()> {
    let current = domains::current(conn, domain)?;
    let status = status_of(conn, domain, version)?.ok_or_else(|| not_found(domain, version))?;
    if !status.is_restorable() {
        return Err(StoreError::VersionNotRestorable {
            domain: domain.clone(),
            version,
            status,
        }
        .into());
    }
    if let Some(replaced) = current.filter(|&c| c > version) {
        if status_of(conn, domain, replaced)? == Some(VersionStatus::Deployed) {
            set_status(conn, domain, replaced, VersionStatus::RolledBack)?;
        }
    }
    set_status(conn, domain, version, VersionStatus::Deployed)?;
    conn.execute(
        "UPDATE domains SET current_version = ?2, updated_at = ?3 WHERE domain = ?1",
        params![domain.as_str(), version, now_ms()],
    )?;
    Ok(())
}

/// See `Store::mark_version`.
pub(super) fn mark(
    conn: &Connection,
    domain: &Domain,
    version: u32,
    status: VersionStatus,
) -> Res<()> {
    status_of(conn, domain, version)?.ok_or_else(|| not_found(domain, version))?;
    let current = if domains::exists(conn, domain)? {
        domains::current(conn, domain)?
    } else {
        None
    };
    if current == Some(version) && status != VersionStatus::Deployed {
        return Err(StoreError::CurrentVersion {
            domain: domain.clone(),
            version,
            status,
        }
        .into());
    }
    set_status(conn, domain, version, status)
}

/// See `Store::set_replicas`.
pub(super) fn set_replicas(
    conn: &Connection,
    domain: &Domain,
    version: u32,
    service: &str,
    replicas: u32,
) -> Res<()> {
    let updated = conn.execute(
        "UPDATE version_services SET replicas = ?4
         WHERE domain = ?1 AND version = ?2 AND service = ?3",
        params![domain.as_str(), version, service, replicas],
    )?;
    if updated == 0 {
        status_of(conn, domain, version)?.ok_or_else(|| not_found(domain, version))?;
        return Err(StoreError::ServiceNotFound {
            domain: domain.clone(),
            version,
            service: service.to_owned(),
        }
        .into());
    }
    Ok(())
}

/// See [`Store::prune`].
fn prune(conn: &Connection, domain: &Domain, keep: usize) -> Res<Vec<VersionRecord>> {
    let current = if domains::exists(conn, domain)? {
        domains::current(conn, domain)?
    } else {
        None
    };
    let rows: Vec<(u32, VersionStatus)> = {
        let mut stmt = conn.prepare(
            "SELECT version, status FROM versions WHERE domain = ?1 ORDER BY version DESC",
        )?;
        stmt.query_map([domain.as_str()], |row| {
            Ok((row.get(0)?, sql::version_status(row, 1)?))
        })?
        .collect::<Result<_, _>>()?
    };
    let mut kept: BTreeSet<u32> = rows
        .iter()
        .filter(|(_, status)| status.is_restorable())
        .map(|&(version, _)| version)
        .take(keep)
        .collect();
    kept.extend(current);
    let oldest_kept = kept.first().copied();
    let doomed: Vec<u32> = rows
        .iter()
        .filter(|&&(version, status)| {
            !kept.contains(&version)
                && match status {
                    VersionStatus::Deployed | VersionStatus::RolledBack => true,
                    VersionStatus::Failed => oldest_kept.is_none_or(|oldest| version < oldest),
                    VersionStatus::Pruned => false,
                }
        })
        .map(|&(version, _)| version)
        .collect();
    let mut pruned = Vec::with_capacity(doomed.len());
    for version in doomed {
        set_status(conn, domain, version, VersionStatus::Pruned)?;
        pruned.extend(get(conn, domain, version)?);
    }
    if !pruned.is_empty() {
        tracing::info!(%domain, count = pruned.len(), keep, "versions pruned");
    }
    Ok(pruned)
}

const VERSION_SELECT: &str = "SELECT v.domain, v.version, v.status, \
     (d.current_version IS NOT NULL AND d.current_version = v.version), \
     v.compose_text, v.project_json, v.main_service_json, v.images_json, v.image_refs_json, \
     v.env_hash, v.job_id, v.created_at, v.other_images_json, v.job_env_json \
     FROM versions v LEFT JOIN domains d ON d.domain = v.domain";

fn read_version(row: &Row<'_>) -> rusqlite::Result<VersionRecord> {
    Ok(VersionRecord {
        domain: sql::domain(row, 0)?,
        version: row.get(1)?,
        status: sql::version_status(row, 2)?,
        current: row.get(3)?,
        compose_text: row.get(4)?,
        project_json: row.get(5)?,
        main_service_json: row.get(6)?,
        images: sql::json(row, 7, "images map")?,
        image_refs: sql::json(row, 8, "image references map")?,
        env_hash: row.get(9)?,
        job_id: sql::job_id(row, 10)?,
        created_at: sql::time(row, 11)?,
        other_images: sql::json(row, 12, "other images map")?,
        job_env_json: row.get(13)?,
        services: Vec::new(),
    })
}

fn read_service(row: &Row<'_>) -> rusqlite::Result<VersionService> {
    Ok(VersionService {
        service: row.get(0)?,
        image_ref: row.get(1)?,
        image_id: row.get(2)?,
        replicas: row.get(3)?,
        config_hash: row.get(4)?,
    })
}

/// One version with its services.
pub(super) fn get(conn: &Connection, domain: &Domain, version: u32) -> Res<Option<VersionRecord>> {
    let sql = format!("{VERSION_SELECT} WHERE v.domain = ?1 AND v.version = ?2");
    let Some(mut record) = conn
        .query_row(&sql, params![domain.as_str(), version], read_version)
        .optional()?
    else {
        return Ok(None);
    };
    let mut stmt = conn.prepare(
        "SELECT service, image_ref, image_id, replicas, config_hash FROM version_services
         WHERE domain = ?1 AND version = ?2 ORDER BY service",
    )?;
    record.services = stmt
        .query_map(params![domain.as_str(), version], read_service)?
        .collect::<Result<_, _>>()?;
    Ok(Some(record))
}

/// The services of every version of the domain, by version.
fn services_of_domain(
    conn: &Connection,
    domain: &Domain,
) -> Res<BTreeMap<u32, Vec<VersionService>>> {
    let mut stmt = conn.prepare(
        "SELECT version, service, image_ref, image_id, replicas, config_hash
         FROM version_services WHERE domain = ?1 ORDER BY version, service",
    )?;
    let mut rows = stmt.query([domain.as_str()])?;
    let mut by_version: BTreeMap<u32, Vec<VersionService>> = BTreeMap::new();
    while let Some(row) = rows.next()? {
        let version: u32 = row.get(0)?;
        let service = VersionService {
            service: row.get(1)?,
            image_ref: row.get(2)?,
            image_id: row.get(3)?,
            replicas: row.get(4)?,
            config_hash: row.get(5)?,
        };
        by_version.entry(version).or_default().push(service);
    }
    Ok(by_version)
}
