//! Domains and their port blocks.
//!
//! A domain gets a block of host ports from the worker's pool the first time
//! the node sees it ([`Store::ensure_domain`]): the lowest free run of
//! `block_len` ports that overlaps no other domain's block. The block is
//! stable: it stays the domain's until the domain is removed, even if the
//! pool's configuration changes later. Blocks of different domains never
//! overlap (checked on allocation, and again by a trigger in the schema).

use rusqlite::{Connection, OptionalExtension, Row, params};

use hostkit_deploy::ports::PortBlock;
use hostkit_proto::Domain;

use super::error::{Res, StoreError};
use super::sql::{self, now_ms};
use super::types::{DomainRecord, PortPool, VersionRecord};
use super::{Store, redirects, versions};

impl Store {
    /// The domain's record, creating it on first sight with the lowest free
    /// block of `pool`. An existing domain keeps its block whatever `pool`
    /// says now.
    ///
    /// Errors: [`StoreError::PortsExhausted`] (`ports.exhausted`) when no
    /// block is free; [`StoreError::InvalidPool`] for an unusable pool.
    pub async fn ensure_domain(
        &self,
        domain: Domain,
        pool: PortPool,
    ) -> Result<DomainRecord, StoreError> {
        self.write("ensure domain", move |tx| {
            if let Some(found) = get(tx, &domain)? {
                return Ok(found);
            }
            check_pool(pool)?;
            let Some(start) = allocate(tx, pool)? else {
                return Err(StoreError::PortsExhausted { domain, pool }.into());
            };
            let now = now_ms();
            tx.execute(
                "INSERT INTO domains (domain, current_version, created_at, updated_at)
                 VALUES (?1, NULL, ?2, ?2)
                 ON CONFLICT (domain) DO NOTHING",
                params![domain.as_str(), now],
            )?;
            tx.execute(
                "INSERT INTO ports (domain, start, len, allocated_at) VALUES (?1, ?2, ?3, ?4)",
                params![domain.as_str(), start, pool.block_len, now],
            )?;
            tracing::info!(%domain, start, len = pool.block_len, "port block allocated");
            get(tx, &domain)?.ok_or_else(|| StoreError::DomainNotFound { domain }.into())
        })
        .await
    }

    /// The domain's record, if this node hosts it.
    pub async fn domain(&self, domain: Domain) -> Result<Option<DomainRecord>, StoreError> {
        self.read("domain", move |conn| get(conn, &domain)).await
    }

    /// Every domain this node hosts, sorted by name.
    pub async fn domains(&self) -> Result<Vec<DomainRecord>, StoreError> {
        self.read("domains", |conn| {
            let sql = format!("{DOMAIN_SELECT} ORDER BY d.domain");
            let mut stmt = conn.prepare(&sql)?;
            let mut domains: Vec<DomainRecord> =
                stmt.query_map([], read_domain)?.collect::<Result<_, _>>()?;
            for record in &mut domains {
                record.redirects = redirects::of(conn, &record.domain)?;
            }
            Ok(domains)
        })
        .await
    }

    /// Forgets the domain: deletes its record, frees its port block, and
    /// marks its versions that were not pruned yet as `pruned`, answering
    /// them (so the caller can untag their images). The version rows and the
    /// job history stay, so a domain deployed again later continues its
    /// version numbers. Removing an unknown domain answers an empty list.
    #[cfg(test)]
    pub async fn remove_domain(&self, domain: Domain) -> Result<Vec<VersionRecord>, StoreError> {
        self.write("remove domain", move |tx| remove(tx, &domain))
            .await
    }
}

/// See `Store::remove_domain`.
pub(super) fn remove(conn: &Connection, domain: &Domain) -> Res<Vec<VersionRecord>> {
    let live: Vec<u32> = {
        let mut stmt = conn.prepare(
            "SELECT version FROM versions WHERE domain = ?1 AND status <> 'pruned'
             ORDER BY version DESC",
        )?;
        stmt.query_map([domain.as_str()], |row| row.get(0))?
            .collect::<Result<_, _>>()?
    };
    let deleted = conn.execute("DELETE FROM domains WHERE domain = ?1", [domain.as_str()])?;
    conn.execute(
        "UPDATE versions SET status = 'pruned', updated_at = ?2
         WHERE domain = ?1 AND status <> 'pruned'",
        params![domain.as_str(), now_ms()],
    )?;
    if deleted > 0 {
        tracing::info!(%domain, "domain removed; its port block is free");
    }
    let mut removed = Vec::with_capacity(live.len());
    for version in live {
        removed.extend(versions::get(conn, domain, version)?);
    }
    Ok(removed)
}

/// True if the domain is recorded.
pub(super) fn exists(conn: &Connection, domain: &Domain) -> Res<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM domains WHERE domain = ?1",
            [domain.as_str()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// The domain's current version, or [`StoreError::DomainNotFound`].
pub(super) fn current(conn: &Connection, domain: &Domain) -> Res<Option<u32>> {
    conn.query_row(
        "SELECT current_version FROM domains WHERE domain = ?1",
        [domain.as_str()],
        |row| row.get(0),
    )
    .optional()?
    .ok_or_else(|| {
        StoreError::DomainNotFound {
            domain: domain.clone(),
        }
        .into()
    })
}

const DOMAIN_SELECT: &str = "SELECT d.domain, p.start, p.len, d.current_version, d.created_at \
                             FROM domains d JOIN ports p ON p.domain = d.domain";

fn get(conn: &Connection, domain: &Domain) -> Res<Option<DomainRecord>> {
    let sql = format!("{DOMAIN_SELECT} WHERE d.domain = ?1");
    let Some(mut record) = conn
        .query_row(&sql, [domain.as_str()], read_domain)
        .optional()?
    else {
        return Ok(None);
    };
    record.redirects = redirects::of(conn, domain)?;
    Ok(Some(record))
}

fn read_domain(row: &Row<'_>) -> rusqlite::Result<DomainRecord> {
    Ok(DomainRecord {
        domain: sql::domain(row, 0)?,
        ports: PortBlock {
            start: row.get(1)?,
            len: row.get(2)?,
        },
        current_version: row.get(3)?,
        created_at: sql::time(row, 4)?,
        redirects: Vec::new(),
    })
}

fn check_pool(pool: PortPool) -> Result<(), StoreError> {
    let reason = if pool.start == 0 {
        "port 0 cannot be published"
    } else if pool.end < pool.start {
        "its end is below its start"
    } else if pool.block_len == 0 {
        "its blocks are empty"
    } else if u32::from(pool.block_len) > u32::from(pool.end) - u32::from(pool.start) + 1 {
        "a block is larger than the pool"
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidPool { pool, reason })
}

/// The lowest start in `pool` of a run of `block_len` ports that overlaps no
/// recorded block (first fit over the blocks sorted by start).
fn allocate(conn: &Connection, pool: PortPool) -> Res<Option<u16>> {
    let mut stmt = conn.prepare("SELECT start, len FROM ports ORDER BY start")?;
    let blocks = stmt
        .query_map([], |row| Ok((row.get::<_, u32>(0)?, row.get::<_, u32>(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    let len = u32::from(pool.block_len);
    let mut candidate = u32::from(pool.start);
    for (start, block_len) in blocks {
        let end = start + block_len;
        if end <= candidate {
            continue; // entirely below the candidate
        }
        if candidate + len <= start {
            break; // the candidate fits before this block
        }
        candidate = end; // overlaps: try right after it
    }
    if candidate + len - 1 > u32::from(pool.end) {
        return Ok(None);
    }
    Ok(u16::try_from(candidate).ok())
}
