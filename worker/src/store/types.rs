//! The records the store reads and writes: jobs ([`NewJob`], [`JobRecord`],
//! [`JobState`], [`JobStart`]), domains and their port blocks
//! ([`DomainRecord`], [`PortPool`]), stack versions ([`NewVersion`],
//! [`VersionRecord`], [`VersionStatus`], [`VersionService`]), the outbox
//! ([`OutboxEntry`]) and the changes committed together with a job's end
//! ([`Change`]).
//!
//! `Debug` never prints env values: compose text, the normalized project and
//! raw job bytes (which carry the job's env) are shown by length only.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use hostkit_deploy::compose::{MainService, Project};
use hostkit_deploy::ports::PortBlock;
use hostkit_proto::control::{JobOutcome, VersionStatus as WireVersionStatus};
use hostkit_proto::{Domain, JobId, JobKind};

/// Where a job stands in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Recorded on delivery (`Store::enqueue_job`),
    /// waiting for its lane.
    Queued,
    /// Started by [`Store::begin_job`](super::Store::begin_job) and not ended:
    /// running now, or interrupted by a crash.
    Running,
    /// Ended with `succeeded`.
    Succeeded,
    /// Ended with `failed`.
    Failed,
    /// Ended with `superseded` (a newer deploy of the domain ran instead).
    Superseded,
}

impl JobState {
    /// The string stored in the `jobs.state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Superseded => "superseded",
        }
    }

    /// Parses a stored state.
    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "superseded" => JobState::Superseded,
            _ => return None,
        })
    }

    /// True for the states a job ends in (it then has a terminal event).
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Superseded
        )
    }

    /// The wire form used in control replies.
    pub fn to_wire(self) -> JobOutcome {
        match self {
            JobState::Queued => JobOutcome::Queued,
            JobState::Running => JobOutcome::Running,
            JobState::Succeeded => JobOutcome::Succeeded,
            JobState::Failed => JobOutcome::Failed,
            JobState::Superseded => JobOutcome::Superseded,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a job ends through `Store::finish_job`
/// (superseding has its own call, which also records the newer job).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobEnd {
    /// Ended with `succeeded`.
    Succeeded,
    /// Ended with `failed`.
    Failed,
}

impl From<JobEnd> for JobState {
    fn from(end: JobEnd) -> JobState {
        match end {
            JobEnd::Succeeded => JobState::Succeeded,
            JobEnd::Failed => JobState::Failed,
        }
    }
}

/// A job as delivered, recorded by `Store::enqueue_job`,
/// [`Store::begin_job`](super::Store::begin_job) or
/// [`Store::mark_superseded`](super::Store::mark_superseded).
#[derive(Clone, PartialEq, Eq)]
pub struct NewJob {
    /// The job's id (also its `Nats-Msg-Id`).
    pub job_id: JobId,
    /// Its domain.
    pub domain: Domain,
    /// Its kind.
    pub kind: JobKind,
    /// Its sequence in the jobs stream.
    pub stream_seq: u64,
    /// The job message as received (JSON; contains env values).
    pub raw: Vec<u8>,
}

impl fmt::Debug for NewJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewJob")
            .field("job_id", &self.job_id)
            .field("domain", &self.domain)
            .field("kind", &self.kind)
            .field("stream_seq", &self.stream_seq)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

/// A job that has already ended: the caller acks the message and publishes
/// `terminal_event` again (its `seq` gives the same `Nats-Msg-Id`, so
/// the events stream drops the copy if the first publish got through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    /// How it ended (a terminal state).
    pub state: JobState,
    /// The serialized terminal event, exactly as stored.
    pub terminal_event: Vec<u8>,
}

/// The answer of [`Store::begin_job`](super::Store::begin_job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobStart {
    /// First start: the job is now `running` with `attempts = 1`.
    New,
    /// The job was started before and never ended (a crash or restart
    /// interrupted it): run it again; `attempts` (≥ 2) counts this start.
    Resume {
        /// Starts so far, including this one.
        attempts: u32,
    },
    /// The job already ended: do not run it; ack and re-publish its event.
    Finished(FinishedJob),
    /// The job was started `attempts` times (the most a job may have:
    /// [`JOBS_MAX_ATTEMPTS`](hostkit_proto::subjects::settings::JOBS_MAX_ATTEMPTS))
    /// and never ended: the worker crashed or was killed during each.
    /// Nothing changed: do not run it again, end it `failed`
    /// ([`Store::give_up_job`](super::Store::give_up_job)).
    Exhausted {
        /// Starts so far.
        attempts: u32,
    },
}

/// A recorded job (without its raw bytes: see
/// [`Store::job_raw`](super::Store::job_raw)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    /// Its id.
    pub job_id: JobId,
    /// Its domain.
    pub domain: Domain,
    /// Its kind.
    pub kind: JobKind,
    /// Where it stands.
    pub state: JobState,
    /// Its sequence in the jobs stream (of the delivery first recorded).
    pub stream_seq: u64,
    /// How many times it was started (0 while queued).
    pub attempts: u32,
    /// The job that superseded it.
    pub superseded_by: Option<JobId>,
    /// Its terminal event, once it ended.
    pub terminal_event: Option<Vec<u8>>,
    /// When it was first recorded.
    pub created_at: SystemTime,
    /// When it was last started.
    pub started_at: Option<SystemTime>,
    /// When it ended.
    pub finished_at: Option<SystemTime>,
}

/// The pool of host ports domains get their blocks from (worker config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PortPool {
    /// First port of the pool.
    pub start: u16,
    /// Last port of the pool (inclusive): `20000..=29999` is
    /// `{start: 20000, end: 29999}`.
    pub end: u16,
    /// Ports per domain.
    pub block_len: u16,
}

impl PortPool {
    /// How many domains the pool can hold.
    pub fn blocks(&self) -> u32 {
        (u32::from(self.end) - u32::from(self.start) + 1) / u32::from(self.block_len.max(1))
    }

    /// The `index`-th block (`0..blocks()`).
    pub fn block(&self, index: u32) -> Option<PortBlock> {
        if index >= self.blocks() {
            return None;
        }
        let start = u32::from(self.start) + index * u32::from(self.block_len);
        Some(PortBlock {
            start: u16::try_from(start).ok()?,
            len: self.block_len,
        })
    }
}

impl fmt::Display for PortPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{} (blocks of {})",
            self.start, self.end, self.block_len
        )
    }
}

/// A domain this node hosts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRecord {
    /// The domain.
    pub domain: Domain,
    /// Its block of host ports (stable for as long as the domain exists).
    pub ports: PortBlock,
    /// The version that runs now (none before the first successful deploy).
    pub current_version: Option<u32>,
    /// When the node first saw it.
    pub created_at: SystemTime,
    /// Names redirected (301) to it, in the order they were given.
    pub redirects: Vec<Domain>,
}

/// The status of a recorded version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VersionStatus {
    /// Deployed successfully; its images are kept (tagged), so it can be
    /// rolled back to.
    Deployed,
    /// Its deploy failed (kept for inspection; not a rollback target).
    Failed,
    /// It was current and a rollback replaced it. Its images are still kept:
    /// it can be restored explicitly, but it is not "the previous version".
    RolledBack,
    /// Beyond retention (or its domain was removed): the record stays, its
    /// images are gone.
    Pruned,
}

impl VersionStatus {
    /// The string stored in the `versions.status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            VersionStatus::Deployed => "deployed",
            VersionStatus::Failed => "failed",
            VersionStatus::RolledBack => "rolled_back",
            VersionStatus::Pruned => "pruned",
        }
    }

    /// Parses a stored status.
    pub fn parse(s: &str) -> Option<VersionStatus> {
        Some(match s {
            "deployed" => VersionStatus::Deployed,
            "failed" => VersionStatus::Failed,
            "rolled_back" => VersionStatus::RolledBack,
            "pruned" => VersionStatus::Pruned,
            _ => return None,
        })
    }

    /// True if the version's images are kept, so it can be made current
    /// again ([`Deployed`](VersionStatus::Deployed) or
    /// [`RolledBack`](VersionStatus::RolledBack)).
    pub fn is_restorable(self) -> bool {
        matches!(self, VersionStatus::Deployed | VersionStatus::RolledBack)
    }

    /// The wire form used in `versions` replies (a rolled-back version is
    /// `deployed` there: it can still be rolled back to).
    pub fn to_wire(self) -> WireVersionStatus {
        match self {
            VersionStatus::Deployed | VersionStatus::RolledBack => WireVersionStatus::Deployed,
            VersionStatus::Failed => WireVersionStatus::Failed,
            VersionStatus::Pruned => WireVersionStatus::Pruned,
        }
    }
}

impl fmt::Display for VersionStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One service of a recorded version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionService {
    /// The service name (exact, as in the compose file).
    pub service: String,
    /// The image reference as written (`nginx:1.27`).
    pub image_ref: String,
    /// The resolved image id (`sha256:…`).
    pub image_id: String,
    /// Its replica count (updated by scale jobs, see
    /// `Store::set_replicas`).
    pub replicas: u32,
    /// The service's config hash.
    pub config_hash: String,
}

/// A version to record: everything needed to re-apply it later.
#[derive(Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The domain.
    pub domain: Domain,
    /// Its number, from [`Store::next_version`](super::Store::next_version).
    pub version: u32,
    /// The compose file as submitted (may contain env values).
    pub compose_text: String,
    /// The normalized project (contains env values).
    pub project: Project,
    /// The service nginx fronts, if any.
    pub main_service: Option<MainService>,
    /// Its services with their resolved images.
    pub services: Vec<VersionService>,
    /// The other images it runs (`pre_start` hooks, `type: image` mounts):
    /// reference as written → resolved id.
    pub other_images: BTreeMap<String, String>,
    /// Hash of the env the project was loaded with.
    pub env_hash: String,
    /// The variables the deploy job carried (stored sealed like the
    /// project), so a restart can load the compose file again.
    pub job_env: hostkit_proto::job::Env,
    /// The job that deployed it.
    pub job_id: JobId,
    /// The worker's key: the project is stored sealed to it.
    pub seal_key: SealWith,
}

/// The key a version's project is sealed with at rest (`None`: stored
/// plain). Compared by public key.
#[derive(Clone, Default)]
pub struct SealWith(pub Option<hostkit_proto::sign::seal::XKey>);

impl PartialEq for SealWith {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_ref().map(|k| k.public_key()) == other.0.as_ref().map(|k| k.public_key())
    }
}

impl Eq for SealWith {}

impl fmt::Debug for SealWith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Some(key) => write!(f, "SealWith({})", key.public_key()),
            None => f.write_str("SealWith(none)"),
        }
    }
}

impl fmt::Debug for NewVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewVersion")
            .field("domain", &self.domain)
            .field("version", &self.version)
            .field("compose_text_len", &self.compose_text.len())
            .field("main_service", &self.main_service)
            .field("services", &self.services)
            .field("other_images", &self.other_images)
            .field("env_hash", &self.env_hash)
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

/// A recorded version of a domain's stack.
#[derive(Clone, PartialEq, Eq)]
pub struct VersionRecord {
    /// The domain.
    pub domain: Domain,
    /// Its number (1, 2, …; never reused).
    pub version: u32,
    /// Its status.
    pub status: VersionStatus,
    /// Whether it is the domain's current version.
    pub current: bool,
    /// The compose file as submitted (may contain env values).
    pub compose_text: String,
    /// The normalized project as JSON, possibly sealed
    /// ([`VersionRecord::project`] opens and decodes it).
    pub project_json: String,
    /// The main service as JSON, if any ([`VersionRecord::main_service`]
    /// decodes it).
    pub main_service_json: Option<String>,
    /// Resolved image id per service.
    pub images: BTreeMap<String, String>,
    /// Image reference as written per service.
    pub image_refs: BTreeMap<String, String>,
    /// The other images it runs (`pre_start` hooks, `type: image` mounts):
    /// reference as written → resolved id.
    pub other_images: BTreeMap<String, String>,
    /// Its services, sorted by name.
    pub services: Vec<VersionService>,
    /// Hash of the env the project was loaded with.
    pub env_hash: String,
    /// The deploy job's own variables as JSON, possibly sealed; `None` for
    /// versions recorded before they were kept ([`VersionRecord::job_env`]).
    pub job_env_json: Option<String>,
    /// The job that recorded it.
    pub job_id: JobId,
    /// When it was recorded.
    pub created_at: SystemTime,
}

impl VersionRecord {
    /// The deploy job's own variables, opened with `key`; `None` when the
    /// version predates keeping them.
    pub fn job_env(
        &self,
        key: Option<&hostkit_proto::sign::seal::XKey>,
    ) -> Result<Option<hostkit_proto::job::Env>, serde_json::Error> {
        self.job_env_json
            .as_deref()
            .map(|stored| serde_json::from_str(&super::sealed::open(stored, key)?))
            .transpose()
    }

    /// Decodes the normalized project, opening it with `key` when it was
    /// stored sealed.
    pub fn project(
        &self,
        key: Option<&hostkit_proto::sign::seal::XKey>,
    ) -> Result<Project, serde_json::Error> {
        serde_json::from_str(&super::sealed::open(&self.project_json, key)?)
    }

    /// Decodes the main service.
    pub fn main_service(&self) -> Result<Option<MainService>, serde_json::Error> {
        self.main_service_json
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
    }
}

impl fmt::Debug for VersionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VersionRecord")
            .field("domain", &self.domain)
            .field("version", &self.version)
            .field("status", &self.status)
            .field("current", &self.current)
            .field("compose_text_len", &self.compose_text.len())
            .field("main_service_json", &self.main_service_json)
            .field("images", &self.images)
            .field("other_images", &self.other_images)
            .field("env_hash", &self.env_hash)
            .field("job_id", &self.job_id)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A message waiting in the outbox for NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Its id (increasing in push order).
    pub id: i64,
    /// The subject to publish on.
    pub subject: String,
    /// The `Nats-Msg-Id` to publish with.
    pub msg_id: String,
    /// The message body.
    pub payload: Vec<u8>,
    /// When it was pushed.
    pub created_at: SystemTime,
}

/// A state change committed in the same transaction as a job's end (see
/// [`Store::finish_job_with`](super::Store::finish_job_with)): either the job
/// ends and every change is applied, or nothing is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Records a successful deploy: inserts the version as `deployed` with its
    /// services and makes it the domain's current version. The previous
    /// current version stays `deployed` (it is the rollback target).
    RecordDeployed(Box<NewVersion>),
    /// Records a deploy that failed as a `failed` version; the current version
    /// is unchanged.
    RecordFailed(Box<NewVersion>),
    /// Makes a restorable version current (a rollback); see
    /// `Store::set_current`.
    SetCurrent {
        /// The domain.
        domain: Domain,
        /// The version to make current.
        version: u32,
    },
    /// Sets a version's status; see `Store::mark_version`.
    MarkVersion {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
        /// Its new status.
        status: VersionStatus,
    },
    /// Sets a service's replica count in a recorded version (a scale job).
    SetReplicas {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
        /// The service.
        service: String,
        /// The replica count.
        replicas: u32,
    },
    /// Removes the domain; see `Store::remove_domain`.
    RemoveDomain(Domain),
    /// Replaces the domain's stored variables (an empty map removes them).
    SetDomainEnv {
        /// The domain.
        domain: Domain,
        /// Every variable from now on.
        env: hostkit_proto::job::Env,
        /// The worker's key: stored sealed to it.
        seal_key: SealWith,
    },
    /// Records a backup (its objects are stored already).
    RecordBackup(Box<super::BackupRecord>),
    /// Drops backups' rows (their objects were deleted).
    ForgetBackups(Vec<JobId>),
    /// Replaces a version's project after a restart loaded its compose
    /// file again with changed variables.
    ReloadProject {
        /// The domain.
        domain: Domain,
        /// The version.
        version: u32,
        /// The project as loaded now.
        project: Box<Project>,
        /// Hash of the env it was loaded with.
        env_hash: String,
        /// Each service's new config hash.
        config_hashes: BTreeMap<String, String>,
        /// The worker's key: stored sealed to it.
        seal_key: SealWith,
    },
    /// Replaces the domain's redirect domains.
    SetRedirects {
        /// The domain.
        domain: Domain,
        /// Its redirect domains from now on.
        redirects: Vec<Domain>,
    },
    /// Queues a message in the outbox (a transactional outbox for events
    /// that must go out once this commit happened).
    Outbox {
        /// The subject.
        subject: String,
        /// The `Nats-Msg-Id`.
        msg_id: String,
        /// The body.
        payload: Vec<u8>,
    },
}
