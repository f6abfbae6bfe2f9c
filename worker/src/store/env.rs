//! A domain's stored variables (`hostkit env`): one JSON object per domain,
//! sealed to the worker's key like a version's project. Values are opened
//! in memory only, by the jobs that use them; the `env` control verb reads
//! names.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, params};

use hostkit_proto::Domain;
use hostkit_proto::job::Env;
use hostkit_proto::sign::seal::XKey;

use super::error::Res;
use super::sql::{self, now_ms};
use super::{SealWith, Store, StoreError};

/// A domain's stored variables.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredEnv {
    /// The variables (values are secrets; `Debug` prints names only).
    pub env: Env,
    /// When they last changed; `None` when none was ever set.
    pub updated_at: Option<SystemTime>,
}

impl Store {
    /// The domain's stored variables, opened with `key`.
    pub async fn domain_env(
        &self,
        domain: Domain,
        key: Option<XKey>,
    ) -> Result<StoredEnv, StoreError> {
        self.read("domain env", move |conn| read(conn, &domain, key.as_ref()))
            .await
    }
}

fn read(conn: &Connection, domain: &Domain, key: Option<&XKey>) -> Res<StoredEnv> {
    let row = conn
        .query_row(
            "SELECT env_json, updated_at FROM domain_env WHERE domain = ?1",
            [domain.as_str()],
            |row| Ok((row.get::<_, String>(0)?, sql::time(row, 1)?)),
        )
        .optional()?;
    let Some((stored, updated_at)) = row else {
        return Ok(StoredEnv::default());
    };
    let env = serde_json::from_str(&super::sealed::open(&stored, key)?)?;
    Ok(StoredEnv {
        env,
        updated_at: Some(updated_at),
    })
}

/// See [`Change::SetDomainEnv`](super::Change::SetDomainEnv).
pub(super) fn set(conn: &Connection, domain: &Domain, env: &Env, key: &SealWith) -> Res<()> {
    if env.is_empty() {
        conn.execute(
            "DELETE FROM domain_env WHERE domain = ?1",
            [domain.as_str()],
        )?;
        return Ok(());
    }
    let sealed = super::sealed::seal(serde_json::to_string(env)?, key.0.as_ref())?;
    conn.execute(
        "INSERT INTO domain_env (domain, env_json, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (domain) DO UPDATE SET env_json = ?2, updated_at = ?3",
        params![domain.as_str(), sealed, now_ms()],
    )?;
    Ok(())
}
