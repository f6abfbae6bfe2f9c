//! The worker's SQLite store, the node's source of truth: the domains it
//! hosts and their port blocks, every stack version, every job (for
//! exactly-once effect, DESIGN §4), the outbox of events waiting for NATS,
//! and the node's event sequence. Only the worker writes it.
//!
//! # Threading
//!
//! [`Store`] is a cheap, cloneable handle with an async API. One dedicated
//! thread (`hostkit-store`) owns the `rusqlite::Connection`; every call sends
//! a closure to it over a bounded channel and awaits the answer on a oneshot
//! channel, so no blocking SQLite work runs on the async executor. Calls are
//! executed one at a time in arrival order. A call whose caller stops
//! waiting still runs to its end: a write, once sent, is either committed
//! whole or not at all, never cancelled halfway.
//!
//! # Durability
//!
//! WAL journal, `synchronous=FULL` (a commit survives power loss),
//! `foreign_keys=ON`, a 5 s busy timeout, every write in one
//! `BEGIN IMMEDIATE` transaction. The file is created with mode 0600 (it
//! holds compose files and jobs, which carry env values); SQLite gives its
//! `-wal`/`-shm` files the same mode. The schema is migrated on open (see
//! [`SCHEMA_VERSION`]); a database written by a newer build is refused.
//!
//! # Overview
//!
//! - Jobs: `Store::enqueue_job`, [`Store::begin_job`] (→ [`JobStart`]),
//!   `Store::finish_job`, [`Store::finish_job_with`] (a job's end plus
//!   [`Change`]s in one transaction), `Store::commit_deploy`,
//!   `Store::commit_rollback`, [`Store::mark_superseded`], [`Store::job`],
//!   [`Store::job_raw`], [`Store::last_job`], [`Store::unfinished_jobs`],
//!   [`Store::forget_jobs`].
//! - Domains and ports: [`Store::ensure_domain`], [`Store::domain`],
//!   [`Store::domains`], `Store::remove_domain`; redirect domains:
//!   [`Change::SetRedirects`], [`Store::name_owner`]; stored variables:
//!   [`Store::domain_env`], [`Change::SetDomainEnv`]; backups:
//!   [`Store::backups`], [`Store::backup`], [`Change::RecordBackup`],
//!   [`Change::ForgetBackups`].
//! - Versions: [`Store::next_version`], [`Store::current_version`],
//!   [`Store::version`], [`Store::previous_version`], [`Store::versions`],
//!   `Store::set_current`, `Store::mark_version`,
//!   `Store::set_replicas`, [`Store::prune`].
//! - Outbox: [`Store::outbox_push`], [`Store::outbox_pending`],
//!   `Store::outbox_delete`, [`Store::outbox_len`].
//! - Events: [`Store::next_event_seq`].

mod backups;
mod domains;
mod env;
mod error;
mod jobs;
mod outbox;
mod redirects;
mod schema;
mod sealed;
mod sql;
mod types;
mod versions;

#[cfg(test)]
mod tests;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{Mutex, mpsc, oneshot};

pub use backups::{BackupReason, BackupRecord, VolumeCopy};
pub use env::StoredEnv;
pub use error::StoreError;
pub use redirects::NameOwner;
pub use schema::SCHEMA_VERSION;
pub use types::{
    Change, DomainRecord, FinishedJob, JobEnd, JobRecord, JobStart, JobState, NewJob, NewVersion,
    OutboxEntry, PortPool, SealWith, VersionRecord, VersionService, VersionStatus,
};

use error::Res;

/// How long a statement waits for a lock held by another connection (an
/// operator's `sqlite3` shell, say) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests waiting for the store thread before callers wait to send.
const CHANNEL_CAPACITY: usize = 256;

/// A closure run on the store thread; it gets no connection when the store
/// closed before its turn (it then answers [`StoreError::Closed`]).
type Task = Box<dyn FnOnce(Option<&mut Connection>) + Send>;

/// A request to the store thread.
enum Msg {
    /// Run a closure.
    Run(Task),
    /// Close the connection and stop; answer when done.
    Close(oneshot::Sender<()>),
}

/// Handle to the store; clones share one connection thread. The thread
/// stops when the last handle is dropped or [`Store::close`] is called.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Requests to the store thread.
    requests: mpsc::Sender<Msg>,
    /// The database file, or `:memory:` (for messages).
    location: String,
    /// Event sequence numbers reserved in the database, not handed out yet.
    seq: Mutex<outbox::SeqBlock>,
}

/// Where the database lives.
enum Location {
    File(PathBuf),
    Memory,
}

impl Location {
    fn describe(&self) -> String {
        match self {
            Location::File(path) => path.display().to_string(),
            Location::Memory => ":memory:".to_owned(),
        }
    }
}

impl Store {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// Missing parent directories are created with mode 0700; the file is
    /// created with mode 0600, and an existing file is restricted to 0600.
    pub async fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        Store::start(Location::File(path.as_ref().to_owned())).await
    }

    /// Opens a fresh in-memory database (for tests and tools); it vanishes
    /// with the store.
    pub async fn open_in_memory() -> Result<Store, StoreError> {
        Store::start(Location::Memory).await
    }

    /// The database file, or `:memory:`.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// Stops the store thread after the requests sent before this one, and
    /// closes the connection (checkpointing the WAL). Requests of other
    /// clones of this handle fail with [`StoreError::Closed`] afterwards.
    pub async fn close(self) -> Result<(), StoreError> {
        let (done, closed) = oneshot::channel();
        self.inner
            .requests
            .send(Msg::Close(done))
            .await
            .map_err(|_| StoreError::Closed)?;
        closed.await.map_err(|_| StoreError::Closed)
    }

    async fn start(location: Location) -> Result<Store, StoreError> {
        let described = location.describe();
        let (requests, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let (ready, opened) = oneshot::channel();
        std::thread::Builder::new()
            .name("hostkit-store".to_owned())
            .spawn(move || match connect(&location) {
                Ok(conn) => {
                    let _ = ready.send(Ok(()));
                    serve(conn, receiver);
                }
                Err(e) => {
                    let _ = ready.send(Err(e));
                }
            })
            .map_err(|source| StoreError::Thread { source })?;
        opened.await.map_err(|_| StoreError::Closed)??;
        tracing::debug!(location = %described, "store opened");
        Ok(Store {
            inner: Arc::new(Inner {
                requests,
                location: described,
                seq: Mutex::new(outbox::SeqBlock::default()),
            }),
        })
    }

    /// Runs `f` on the store thread and returns its answer; errors carry `op`.
    async fn call<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Res<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let task: Task = Box::new(move |conn| {
            let result = match conn {
                Some(conn) => f(conn).map_err(|e| e.into_store(op)),
                None => Err(StoreError::Closed),
            };
            let _ = answer.send(result);
        });
        self.inner
            .requests
            .send(Msg::Run(task))
            .await
            .map_err(|_| StoreError::Closed)?;
        answered.await.map_err(|_| StoreError::Aborted { op })?
    }

    /// Runs `f` in an immediate (write) transaction, committed if `f`
    /// succeeds and rolled back if it fails.
    async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Res<T> + Send + 'static,
    {
        self.call(op, move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }

    /// Runs `f` in a read transaction (one consistent snapshot).
    async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Res<T> + Send + 'static,
    {
        self.call(op, move |conn| {
            let tx = conn.transaction()?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        })
        .await
    }
}

/// The store thread's loop: runs requests until closed or every handle is
/// gone. A panicking request is reported and rolled back (its transaction
/// guard drops); the thread carries on.
fn serve(mut conn: Connection, mut receiver: mpsc::Receiver<Msg>) {
    while let Some(msg) = receiver.blocking_recv() {
        match msg {
            Msg::Run(task) => {
                if catch_unwind(AssertUnwindSafe(|| task(Some(&mut conn)))).is_err() {
                    tracing::error!("a store operation panicked; its transaction was rolled back");
                }
            }
            Msg::Close(done) => {
                // Refuse new requests, answer those already queued, then stop.
                receiver.close();
                shut(conn);
                while let Ok(msg) = receiver.try_recv() {
                    match msg {
                        Msg::Run(task) => task(None),
                        Msg::Close(done) => {
                            let _ = done.send(());
                        }
                    }
                }
                let _ = done.send(());
                return;
            }
        }
    }
    shut(conn);
}

fn shut(conn: Connection) {
    if let Err((_, e)) = conn.close() {
        tracing::warn!(error = %e, "closing the store failed");
    }
}

/// Opens, configures and migrates the database.
fn connect(location: &Location) -> Result<Connection, StoreError> {
    let described = location.describe();
    let mut conn = match location {
        Location::File(path) => {
            prepare_file(path)?;
            Connection::open(path)
        }
        Location::Memory => Connection::open_in_memory(),
    }
    .map_err(|source| StoreError::Open {
        location: described.clone(),
        source,
    })?;
    configure(&conn, location, &described)?;
    schema::migrate(&mut conn, &described)?;
    Ok(conn)
}

/// Creates the file's directory (0700) and the file itself (0600).
#[cfg(unix)]
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
    }
    let err = |source| StoreError::Permissions {
        path: path.to_owned(),
        source,
    };
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
        .map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(err)
}

/// Creates the file's directory.
#[cfg(not(unix))]
fn prepare_file(path: &Path) -> Result<(), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_owned(),
            source,
        })?;
    }
    Ok(())
}

/// Applies the connection settings.
fn configure(conn: &Connection, location: &Location, described: &str) -> Result<(), StoreError> {
    let err = |setting| {
        move |source| StoreError::Configure {
            location: described.to_owned(),
            setting,
            source,
        }
    };
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(err("busy_timeout"))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(err("journal_mode"))?;
    if matches!(location, Location::File(_)) && !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NotWal {
            location: described.to_owned(),
            mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(err("synchronous"))?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(err("foreign_keys"))?;
    Ok(())
}
