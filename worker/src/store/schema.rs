//! The schema and its migrations.
//!
//! `PRAGMA user_version` is the number of migrations applied. [`MIGRATIONS`]
//! is append-only: a released migration is never edited, a change is a new
//! entry. Each migration runs in its own immediate transaction together with
//! the `user_version` bump, so a crash leaves the database at a whole
//! version. A database from a newer build (a `user_version` beyond this
//! list) is refused rather than guessed at.
//!
//! Times are milliseconds since the Unix epoch (`INTEGER`).

use rusqlite::{Connection, TransactionBehavior};

use super::error::StoreError;

/// Version 1: the initial schema.
const V1: &str = r#"
-- Small key/value settings of the node (e.g. `event_seq_next`).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY
) STRICT;

-- Domains this node hosts.
CREATE TABLE domains (
    domain          TEXT PRIMARY KEY,
    current_version INTEGER,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    FOREIGN KEY (domain, current_version) REFERENCES versions (domain, version)
) STRICT;

-- Each domain's block of host ports: start .. start + len.
CREATE TABLE ports (
    domain       TEXT PRIMARY KEY REFERENCES domains (domain) ON DELETE CASCADE,
    start        INTEGER NOT NULL UNIQUE CHECK (start BETWEEN 1 AND 65535),
    len          INTEGER NOT NULL CHECK (len >= 1 AND start + len <= 65536),
    allocated_at INTEGER NOT NULL
) STRICT;

CREATE TRIGGER ports_no_overlap_insert BEFORE INSERT ON ports
WHEN EXISTS (SELECT 1 FROM ports p
             WHERE p.start < NEW.start + NEW.len AND NEW.start < p.start + p.len)
BEGIN
    SELECT RAISE(ABORT, 'port block overlaps another domain''s block');
END;

CREATE TRIGGER ports_no_overlap_update BEFORE UPDATE OF start, len ON ports
WHEN EXISTS (SELECT 1 FROM ports p
             WHERE p.domain <> NEW.domain
               AND p.start < NEW.start + NEW.len AND NEW.start < p.start + p.len)
BEGIN
    SELECT RAISE(ABORT, 'port block overlaps another domain''s block');
END;

-- Every recorded version of every domain's stack. Rows outlive their domain
-- (numbers are never reused) and are never deleted.
CREATE TABLE versions (
    domain            TEXT NOT NULL,
    version           INTEGER NOT NULL CHECK (version >= 1),
    status            TEXT NOT NULL
                      CHECK (status IN ('deployed', 'failed', 'rolled_back', 'pruned')),
    compose_text      TEXT NOT NULL,
    project_json      TEXT NOT NULL,
    main_service_json TEXT,
    images_json       TEXT NOT NULL,
    image_refs_json   TEXT NOT NULL,
    env_hash          TEXT NOT NULL,
    job_id            TEXT NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    PRIMARY KEY (domain, version)
) STRICT;

CREATE TABLE version_services (
    domain      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    service     TEXT NOT NULL,
    image_ref   TEXT NOT NULL,
    image_id    TEXT NOT NULL,
    replicas    INTEGER NOT NULL CHECK (replicas >= 0),
    config_hash TEXT NOT NULL,
    PRIMARY KEY (domain, version, service),
    FOREIGN KEY (domain, version) REFERENCES versions (domain, version) ON DELETE CASCADE
) STRICT;

-- Every job this node received. Kept when its domain is removed.
CREATE TABLE jobs (
    job_id         TEXT PRIMARY KEY,
    domain         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    state          TEXT NOT NULL
                   CHECK (state IN ('queued', 'running', 'succeeded', 'failed', 'superseded')),
    stream_seq     INTEGER NOT NULL,
    raw            BLOB NOT NULL,
    terminal_event BLOB,
    superseded_by  TEXT,
    attempts       INTEGER NOT NULL DEFAULT 0,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    CHECK ((state IN ('succeeded', 'failed', 'superseded'))
           = (terminal_event IS NOT NULL AND finished_at IS NOT NULL))
) STRICT;

CREATE INDEX jobs_by_domain ON jobs (domain, created_at);
CREATE INDEX jobs_by_state ON jobs (state) WHERE state IN ('queued', 'running');

-- Messages waiting for NATS, delivered oldest first.
CREATE TABLE outbox (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    subject    TEXT NOT NULL,
    msg_id     TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;
"#;

/// Version 2: the ids of the images a version runs besides its services'
/// (`pre_start` hook images, `type: image` mount sources), by reference, so
/// the version re-applies with exactly them.
const V2: &str = r#"
ALTER TABLE versions ADD COLUMN other_images_json TEXT NOT NULL DEFAULT '{}';
"#;

/// Version 3: redirect domains.
const V3: &str = r#"
-- Names answered with a 301 to a domain (HostKit v1's redirect_domains),
-- kept across deploys and rollbacks until a deploy changes them. A name
-- redirects to one domain at most.
CREATE TABLE redirects (
    name     TEXT PRIMARY KEY,
    domain   TEXT NOT NULL REFERENCES domains (domain) ON DELETE CASCADE,
    position INTEGER NOT NULL
) STRICT;

CREATE INDEX redirects_by_domain ON redirects (domain, position);
"#;

/// Version 4: stored variables (`hostkit env`) and a deploy's own; backups.
const V4: &str = r#"
-- A domain's stored variables, one JSON object sealed to the worker's key.
-- Not tied to a stack: they may be set before a first deploy and outlive a
-- remove.
CREATE TABLE domain_env (
    domain     TEXT PRIMARY KEY,
    env_json   TEXT NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

-- The variables the deploy job itself carried, sealed like the project, so
-- a restart can load the version's compose file again with changed stored
-- variables. NULL for versions recorded before.
ALTER TABLE versions ADD COLUMN job_env_json TEXT;

-- Backups of domains' named volumes (`hostkit backup`): one tar object per
-- volume in the node's backup bucket. Kept after their domain is removed
-- (a removed site can be restored elsewhere); pruned beyond retention.
CREATE TABLE backups (
    id           TEXT PRIMARY KEY,
    domain       TEXT NOT NULL,
    version      INTEGER NOT NULL,
    reason       TEXT NOT NULL CHECK (reason IN ('backup', 'pre_restore', 'snapshot')),
    volumes_json TEXT NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX backups_by_domain ON backups (domain, created_at);
"#;

/// The migrations, in order; entry `i` takes the schema from version `i` to
/// `i + 1`. Append only.
pub(super) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4];

/// The schema version this build writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Brings the database to [`SCHEMA_VERSION`]; a no-op when it is there.
pub(super) fn migrate(conn: &mut Connection, location: &str) -> Result<(), StoreError> {
    let found = user_version(conn, location)?;
    if found > i64::from(SCHEMA_VERSION) {
        return Err(StoreError::TooNew {
            location: location.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (index, sql) in MIGRATIONS.iter().enumerate() {
        let version = u32::try_from(index + 1).unwrap_or(u32::MAX);
        let err = |source| StoreError::Migrate {
            location: location.to_owned(),
            version,
            source,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        // Read again inside the write lock: another process may have
        // migrated meanwhile.
        let current: i64 = tx
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .map_err(err)?;
        if current >= i64::from(version) {
            continue;
        }
        tx.execute_batch(sql).map_err(err)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(err)?;
        tx.commit().map_err(err)?;
        tracing::info!(location, version, "store schema migrated");
    }
    Ok(())
}

/// The database's `user_version`.
pub(super) fn user_version(conn: &Connection, location: &str) -> Result<i64, StoreError> {
    conn.query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|source| StoreError::Open {
            location: location.to_owned(),
            source,
        })
}
