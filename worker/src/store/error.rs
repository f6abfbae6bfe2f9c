//! [`StoreError`]: everything the store can fail with, and its mapping to the
//! wire's stable error codes ([`StoreError::code`]).

use std::path::PathBuf;

use hostkit_proto::{Domain, ErrorBody, ErrorCode, JobId};

use super::types::{JobState, PortPool, VersionStatus};

/// An error of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The directory of the database file cannot be created.
    #[error("cannot create the store directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The database file cannot be created or restricted to mode 0600.
    #[error("cannot create the store file {path} with mode 0600")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite cannot open the database.
    #[error("cannot open the SQLite store {location}")]
    Open {
        /// The file (or `:memory:`).
        location: String,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A connection setting (journal mode, synchronous, …) cannot be applied.
    #[error("cannot set {setting} on the SQLite store {location}")]
    Configure {
        /// The file (or `:memory:`).
        location: String,
        /// The setting.
        setting: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The file system does not support write-ahead logging.
    #[error(
        "the SQLite store {location} cannot use write-ahead logging (journal mode stays {mode:?}); put it on a local file system"
    )]
    NotWal {
        /// The file.
        location: String,
        /// The journal mode SQLite kept.
        mode: String,
    },
    /// The database was written by a newer HostKit.
    #[error(
        "the SQLite store {location} has schema version {found}, newer than the {supported} this hostkit-worker knows: upgrade hostkit-worker (or restore a backup)"
    )]
    TooNew {
        /// The file (or `:memory:`).
        location: String,
        /// The schema version found.
        found: i64,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// A schema migration failed (nothing of it was applied).
    #[error("cannot migrate the SQLite store {location} to schema version {version}")]
    Migrate {
        /// The file (or `:memory:`).
        location: String,
        /// The version being migrated to.
        version: u32,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// The store's thread cannot be started.
    #[error("cannot start the store thread")]
    Thread {
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The store was closed (or its thread stopped).
    #[error("the store is closed")]
    Closed,
    /// The store thread stopped before answering (it panicked or was closed);
    /// the operation's transaction, if any, was rolled back.
    #[error("store operation `{op}` was aborted before it answered")]
    Aborted {
        /// The operation.
        op: &'static str,
    },
    /// A SQLite statement failed.
    #[error("store operation `{op}` failed")]
    Sqlite {
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },
    /// A JSON column cannot be encoded or decoded.
    #[error("store operation `{op}`: cannot encode or decode JSON")]
    Json {
        /// The operation.
        op: &'static str,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
    /// A value does not fit the database's integer type.
    #[error("store operation `{op}`: {what} {value} is out of range")]
    OutOfRange {
        /// The operation.
        op: &'static str,
        /// What the value is.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// The port pool of the worker's config is unusable.
    #[error("invalid port pool {pool}: {reason}")]
    InvalidPool {
        /// The pool.
        pool: PortPool,
        /// Why.
        reason: &'static str,
    },
    /// No free block is left in the port pool (`ports.exhausted`).
    #[error("no free block of ports is left in the pool {pool} for {domain}")]
    PortsExhausted {
        /// The domain that needs a block.
        domain: Domain,
        /// The pool.
        pool: PortPool,
    },
    /// The domain is not known to this node (`domain.not_found`).
    #[error("domain {domain} is not hosted on this node")]
    DomainNotFound {
        /// The domain.
        domain: Domain,
    },
    /// No such version (`version.not_found`).
    #[error("{domain} has no version {version}")]
    VersionNotFound {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
    },
    /// The version cannot be made current: its images are gone or it failed
    /// (`version.not_found`).
    #[error("version {version} of {domain} is {status} and cannot be restored")]
    VersionNotRestorable {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
        /// Its status.
        status: VersionStatus,
    },
    /// A version with this number is already recorded.
    #[error("version {version} of {domain} is already recorded")]
    VersionExists {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
    },
    /// A new version's number is not above every recorded one (numbers are
    /// never reused).
    #[error("version {version} of {domain} is not new: the next version is {next}")]
    VersionNotNew {
        /// The domain.
        domain: Domain,
        /// The refused number.
        version: u32,
        /// The number the next version gets.
        next: u32,
    },
    /// The current version can only be `deployed`.
    #[error("version {version} of {domain} is current and cannot be marked {status}")]
    CurrentVersion {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
        /// The refused status.
        status: VersionStatus,
    },
    /// The version has no such service (`service.not_found`).
    #[error("version {version} of {domain} has no service {service:?}")]
    ServiceNotFound {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
        /// The service.
        service: String,
    },
    /// The job is not recorded.
    #[error("job {job_id} is not recorded")]
    JobNotFound {
        /// The job.
        job_id: JobId,
    },
    /// The job already ended; nothing was written.
    #[error("job {job_id} already ended ({state})")]
    JobFinished {
        /// The job.
        job_id: JobId,
        /// How it ended.
        state: JobState,
    },
    /// A stored value cannot be read back.
    #[error("store operation `{op}`: stored {what} {value:?} is invalid")]
    Corrupt {
        /// The operation.
        op: &'static str,
        /// What the value is.
        what: &'static str,
        /// The value.
        value: String,
    },
}

impl StoreError {
    /// The stable wire code: `ports.exhausted`, `domain.not_found`,
    /// `version.not_found`, `service.not_found`, else `internal`.
    pub fn code(&self) -> ErrorCode {
        match self {
            StoreError::PortsExhausted { .. } => ErrorCode::PortsExhausted,
            StoreError::DomainNotFound { .. } => ErrorCode::DomainNotFound,
            StoreError::VersionNotFound { .. } | StoreError::VersionNotRestorable { .. } => {
                ErrorCode::VersionNotFound
            }
            StoreError::ServiceNotFound { .. } => ErrorCode::ServiceNotFound,
            _ => ErrorCode::Internal,
        }
    }

    /// The error as it crosses the wire: [`code`](StoreError::code) and this
    /// error's message (which never contains env values).
    pub fn to_error_body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// An error inside a store operation, before the operation's name is known.
#[derive(Debug)]
pub(super) enum Fail {
    Sql(rusqlite::Error),
    Json(serde_json::Error),
    Range { what: &'static str, value: u64 },
    Corrupt { what: &'static str, value: String },
    Store(StoreError),
}

impl Fail {
    /// Attaches the operation's name.
    pub(super) fn into_store(self, op: &'static str) -> StoreError {
        match self {
            Fail::Sql(source) => StoreError::Sqlite { op, source },
            Fail::Json(source) => StoreError::Json { op, source },
            Fail::Range { what, value } => StoreError::OutOfRange { op, what, value },
            Fail::Corrupt { what, value } => StoreError::Corrupt { op, what, value },
            Fail::Store(e) => e,
        }
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Fail {
        let invalid = match &e {
            rusqlite::Error::FromSqlConversionFailure(_, _, source) => {
                source.downcast_ref::<Invalid>()
            }
            _ => None,
        };
        match invalid {
            Some(invalid) => Fail::Corrupt {
                what: invalid.what,
                value: invalid.value.clone(),
            },
            None => Fail::Sql(e),
        }
    }
}

/// A stored value that cannot be read back; raised inside row readers as a
/// conversion failure and turned into [`StoreError::Corrupt`].
#[derive(Debug, thiserror::Error)]
#[error("stored {what} {value:?} is invalid")]
pub(super) struct Invalid {
    pub(super) what: &'static str,
    pub(super) value: String,
}

impl From<serde_json::Error> for Fail {
    fn from(e: serde_json::Error) -> Fail {
        Fail::Json(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// The result of the store's internal, synchronous functions.
pub(super) type Res<T> = Result<T, Fail>;
