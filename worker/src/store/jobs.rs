//! Jobs: exactly-once effect over at-least-once delivery (DESIGN §4).
//!
//! Every delivered job is recorded before it acts. A job's life in the
//! `jobs` table is `queued → running → succeeded | failed | superseded`
//! (a job may also be recorded straight as `running` or `superseded`). A
//! terminal state is written together with the job's terminal event, and
//! never changes afterwards, so a redelivered job that already ended is
//! recognised ([`JobStart::Finished`]) and its event re-published instead
//! of running it again. The state changes a job makes (a new version, a
//! rollback, a removal) are committed in the same transaction as its end
//! ([`Store::finish_job_with`]): after a crash either both are there or
//! neither is, and a re-run converges. Every start is counted (`attempts`):
//! a job started [`JOBS_MAX_ATTEMPTS`] times that never ended is not started
//! again ([`JobStart::Exhausted`]); the runner ends it `failed`.

use std::time::SystemTime;

use rusqlite::{Connection, OptionalExtension, Row, params};

use hostkit_proto::subjects::settings::JOBS_MAX_ATTEMPTS;
use hostkit_proto::{Domain, JobId};

use super::error::{Res, StoreError};
use super::sql::{self, now_ms, to_i64};
#[cfg(test)]
use super::types::NewVersion;
use super::types::{Change, FinishedJob, JobEnd, JobRecord, JobStart, JobState, NewJob};
use super::{Store, domains, outbox, redirects, versions};

impl Store {
    /// Records a delivered job as `queued` (if it is not recorded yet), before
    /// it waits for its lane.
    ///
    /// Answers `Some` if the job already ended: the caller acks the message
    /// and re-publishes [`FinishedJob::terminal_event`] instead of queueing
    /// it. `None` means it is queued now or was recorded before and has not
    /// ended (queued, or interrupted while running).
    #[cfg(test)]
    pub async fn enqueue_job(&self, job: NewJob) -> Result<Option<FinishedJob>, StoreError> {
        self.write("enqueue job", move |tx| {
            if let Some(found) = lookup(tx, job.job_id)? {
                warn_mismatch(&job, &found);
                return Ok(found.finished());
            }
            insert(tx, &job, JobState::Queued, 0, None, None)?;
            Ok(None)
        })
        .await
    }

    /// Starts a job, recording it if needed; call it when the lane takes the
    /// job, before acting.
    ///
    /// - [`JobStart::New`]: first start (it was unknown or queued); now
    ///   `running` with one attempt.
    /// - [`JobStart::Resume`]: it was started before and never ended (a crash
    ///   interrupted it); run it again (handlers converge). `attempts` is
    ///   incremented.
    /// - [`JobStart::Finished`]: it already ended; do not run it, ack and
    ///   re-publish its terminal event.
    /// - [`JobStart::Exhausted`]: it was started [`JOBS_MAX_ATTEMPTS`] times
    ///   and never ended; nothing changes (it is not started again), end it
    ///   with [`Store::give_up_job`].
    pub async fn begin_job(&self, job: NewJob) -> Result<JobStart, StoreError> {
        self.write("begin job", move |tx| {
            let now = now_ms();
            let id = job.job_id.to_string();
            let Some(found) = lookup(tx, job.job_id)? else {
                insert(tx, &job, JobState::Running, 1, None, None)?;
                return Ok(JobStart::New);
            };
            warn_mismatch(&job, &found);
            let (state, attempts) = (found.state, found.attempts.saturating_add(1));
            if found.attempts >= JOBS_MAX_ATTEMPTS && !state.is_terminal() {
                return Ok(JobStart::Exhausted {
                    attempts: found.attempts,
                });
            }
            if let Some(finished) = found.finished() {
                return Ok(JobStart::Finished(finished));
            }
            tx.execute(
                "UPDATE jobs SET state = 'running', attempts = ?2, started_at = ?3
                 WHERE job_id = ?1",
                params![id, attempts, now],
            )?;
            Ok(match state {
                JobState::Queued => JobStart::New,
                _ => JobStart::Resume { attempts },
            })
        })
        .await
    }

    /// Ends a job (queued or running) with its terminal event; see
    /// [`Store::finish_job_with`].
    #[cfg(test)]
    pub async fn finish_job(
        &self,
        job_id: JobId,
        end: JobEnd,
        terminal_event: Vec<u8>,
    ) -> Result<(), StoreError> {
        self.finish_job_with(job_id, end, terminal_event, Vec::new())
            .await
    }

    /// Ends a job and applies `changes`, all in one transaction: if anything
    /// fails (the job is unknown or already ended, a change is refused),
    /// nothing is written and the error says why.
    ///
    /// Errors: [`StoreError::JobNotFound`], [`StoreError::JobFinished`] (the
    /// job ended before: its effect is already committed, do not apply it
    /// twice), and those of the changes (see [`Change`]).
    pub async fn finish_job_with(
        &self,
        job_id: JobId,
        end: JobEnd,
        terminal_event: Vec<u8>,
        changes: Vec<Change>,
    ) -> Result<(), StoreError> {
        self.write("finish job", move |tx| {
            finish(tx, job_id, JobState::from(end), &terminal_event, None)?;
            for change in changes {
                apply(tx, change)?;
            }
            Ok(())
        })
        .await
    }

    /// A successful deploy, atomically: records `version` as `deployed` (with
    /// its services), makes it the domain's current version, and ends the job
    /// as `succeeded` with `terminal_event`.
    #[cfg(test)]
    pub async fn commit_deploy(
        &self,
        job_id: JobId,
        terminal_event: Vec<u8>,
        version: NewVersion,
    ) -> Result<(), StoreError> {
        self.finish_job_with(
            job_id,
            JobEnd::Succeeded,
            terminal_event,
            vec![Change::RecordDeployed(Box::new(version))],
        )
        .await
    }

    /// A successful rollback, atomically: makes `version` current (see
    /// `Store::set_current`) and ends the job as `succeeded`.
    #[cfg(test)]
    pub async fn commit_rollback(
        &self,
        job_id: JobId,
        terminal_event: Vec<u8>,
        domain: Domain,
        version: u32,
    ) -> Result<(), StoreError> {
        self.finish_job_with(
            job_id,
            JobEnd::Succeeded,
            terminal_event,
            vec![Change::SetCurrent { domain, version }],
        )
        .await
    }

    /// Ends `job` as `superseded` by the newer job `by` (coalescing), recording
    /// it first if needed.
    ///
    /// Answers `Some` if the job had already ended: nothing changes, and the
    /// caller re-publishes the stored event instead of `terminal_event`.
    pub async fn mark_superseded(
        &self,
        job: NewJob,
        by: JobId,
        terminal_event: Vec<u8>,
    ) -> Result<Option<FinishedJob>, StoreError> {
        self.write("mark job superseded", move |tx| {
            match lookup(tx, job.job_id)? {
                Some(found) => {
                    warn_mismatch(&job, &found);
                    if let Some(finished) = found.finished() {
                        return Ok(Some(finished));
                    }
                    finish(
                        tx,
                        job.job_id,
                        JobState::Superseded,
                        &terminal_event,
                        Some(by),
                    )?;
                }
                None => insert(
                    tx,
                    &job,
                    JobState::Superseded,
                    0,
                    Some(&terminal_event),
                    Some(by),
                )?,
            }
            Ok(None)
        })
        .await
    }

    /// Ends `job` as `failed` without running it (its message was delivered
    /// too often, or it was started too often: [`JobStart::Exhausted`]),
    /// recording it first if needed, so that it is neither resumed at the
    /// next start nor ended twice.
    ///
    /// Answers `Some` if the job had already ended: nothing changes, and the
    /// caller re-publishes the stored event instead of `terminal_event`.
    pub async fn give_up_job(
        &self,
        job: NewJob,
        terminal_event: Vec<u8>,
    ) -> Result<Option<FinishedJob>, StoreError> {
        self.write("give up job", move |tx| {
            match lookup(tx, job.job_id)? {
                Some(found) => {
                    warn_mismatch(&job, &found);
                    if let Some(finished) = found.finished() {
                        return Ok(Some(finished));
                    }
                    finish(tx, job.job_id, JobState::Failed, &terminal_event, None)?;
                }
                None => insert(tx, &job, JobState::Failed, 0, Some(&terminal_event), None)?,
            }
            Ok(None)
        })
        .await
    }

    /// The recorded job, if any.
    pub async fn job(&self, job_id: JobId) -> Result<Option<JobRecord>, StoreError> {
        self.read("job", move |conn| {
            let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE job_id = ?1");
            Ok(conn
                .query_row(&sql, [job_id.to_string()], read_job)
                .optional()?)
        })
        .await
    }

    /// The job message as received (JSON; it carries env values: never log it).
    pub async fn job_raw(&self, job_id: JobId) -> Result<Option<Vec<u8>>, StoreError> {
        self.read("job raw", move |conn| {
            Ok(conn
                .query_row(
                    "SELECT raw FROM jobs WHERE job_id = ?1",
                    [job_id.to_string()],
                    |row| row.get(0),
                )
                .optional()?)
        })
        .await
    }

    /// The domain's most recently recorded job (whatever its state), for
    /// `status`.
    pub async fn last_job(&self, domain: Domain) -> Result<Option<JobRecord>, StoreError> {
        self.read("last job", move |conn| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE domain = ?1
                 ORDER BY created_at DESC, rowid DESC LIMIT 1"
            );
            Ok(conn
                .query_row(&sql, [domain.as_str()], read_job)
                .optional()?)
        })
        .await
    }

    /// Jobs that have not ended (queued, or running when the worker
    /// stopped), in stream order.
    pub async fn unfinished_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        self.read("unfinished jobs", |conn| {
            let sql = format!(
                "SELECT {JOB_COLUMNS} FROM jobs WHERE state IN ('queued', 'running')
                 ORDER BY stream_seq, rowid"
            );
            let mut stmt = conn.prepare(&sql)?;
            let jobs = stmt.query_map([], read_job)?.collect::<Result<_, _>>()?;
            Ok(jobs)
        })
        .await
    }

    /// Deletes the records of jobs that ended before `finished_before`
    /// (housekeeping; pick a time well beyond the jobs stream's duplicate
    /// window and redelivery horizon). Answers how many were deleted. The
    /// newest job of each domain is kept, for `status`.
    pub async fn forget_jobs(&self, finished_before: SystemTime) -> Result<usize, StoreError> {
        self.write("forget jobs", move |tx| {
            let deleted = tx.execute(
                "DELETE FROM jobs
                 WHERE finished_at IS NOT NULL AND finished_at < ?1
                   AND rowid NOT IN (
                       SELECT (SELECT j.rowid FROM jobs j WHERE j.domain = d.domain
                               ORDER BY j.created_at DESC, j.rowid DESC LIMIT 1)
                       FROM (SELECT DISTINCT domain FROM jobs) d)",
                [sql::to_ms(finished_before)],
            )?;
            Ok(deleted)
        })
        .await
    }
}

/// What [`lookup`] finds about a job.
struct Found {
    domain: String,
    kind: String,
    state: JobState,
    attempts: u32,
    terminal_event: Option<Vec<u8>>,
}

impl Found {
    fn finished(self) -> Option<FinishedJob> {
        if !self.state.is_terminal() {
            return None;
        }
        Some(FinishedJob {
            state: self.state,
            terminal_event: self.terminal_event.unwrap_or_default(),
        })
    }
}

fn lookup(conn: &Connection, job_id: JobId) -> Res<Option<Found>> {
    Ok(conn
        .query_row(
            "SELECT domain, kind, state, attempts, terminal_event FROM jobs WHERE job_id = ?1",
            [job_id.to_string()],
            |row| {
                Ok(Found {
                    domain: row.get(0)?,
                    kind: row.get(1)?,
                    state: sql::job_state(row, 2)?,
                    attempts: row.get(3)?,
                    terminal_event: row.get(4)?,
                })
            },
        )
        .optional()?)
}

/// A redelivered job id with other contents is a publisher bug (ids are
/// ULIDs): the first record wins; say so.
fn warn_mismatch(job: &NewJob, found: &Found) {
    if found.domain != job.domain.as_str() || found.kind != job.kind.as_str() {
        tracing::warn!(
            job_id = %job.job_id,
            recorded_domain = %found.domain,
            recorded_kind = %found.kind,
            domain = %job.domain,
            kind = %job.kind,
            "a job was delivered again with another domain or kind; keeping the first record"
        );
    }
}

fn insert(
    conn: &Connection,
    job: &NewJob,
    state: JobState,
    attempts: u32,
    terminal_event: Option<&[u8]>,
    superseded_by: Option<JobId>,
) -> Res<()> {
    let now = now_ms();
    let started = (state == JobState::Running).then_some(now);
    let finished = state.is_terminal().then_some(now);
    conn.execute(
        "INSERT INTO jobs (job_id, domain, kind, state, stream_seq, raw, terminal_event,
                           superseded_by, attempts, created_at, started_at, finished_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            job.job_id.to_string(),
            job.domain.as_str(),
            job.kind.as_str(),
            state.as_str(),
            to_i64("stream sequence", job.stream_seq)?,
            job.raw,
            terminal_event,
            superseded_by.map(|id| id.to_string()),
            attempts,
            now,
            started,
            finished,
        ],
    )?;
    Ok(())
}

/// Ends an unfinished job.
fn finish(
    conn: &Connection,
    job_id: JobId,
    state: JobState,
    terminal_event: &[u8],
    superseded_by: Option<JobId>,
) -> Res<()> {
    debug_assert!(state.is_terminal());
    let Some(found) = lookup(conn, job_id)? else {
        return Err(StoreError::JobNotFound { job_id }.into());
    };
    if found.state.is_terminal() {
        return Err(StoreError::JobFinished {
            job_id,
            state: found.state,
        }
        .into());
    }
    conn.execute(
        // The raw job (its env values among it) is dropped when the job
        // ends; the id stays for dedupe, the terminal event for replays.
        "UPDATE jobs SET state = ?2, terminal_event = ?3, superseded_by = ?4, finished_at = ?5,
                         raw = x''
         WHERE job_id = ?1",
        params![
            job_id.to_string(),
            state.as_str(),
            terminal_event,
            superseded_by.map(|id| id.to_string()),
            now_ms(),
        ],
    )?;
    Ok(())
}

/// Applies one change inside the caller's transaction.
fn apply(conn: &Connection, change: Change) -> Res<()> {
    match change {
        Change::RecordDeployed(version) => versions::record(conn, &version, true),
        Change::RecordFailed(version) => versions::record(conn, &version, false),
        Change::SetCurrent { domain, version } => versions::set_current(conn, &domain, version),
        Change::MarkVersion {
            domain,
            version,
            status,
        } => versions::mark(conn, &domain, version, status),
        Change::SetReplicas {
            domain,
            version,
            service,
            replicas,
        } => versions::set_replicas(conn, &domain, version, &service, replicas),
        Change::RemoveDomain(domain) => domains::remove(conn, &domain).map(drop),
        Change::SetRedirects { domain, redirects } => redirects::set(conn, &domain, &redirects),
        Change::RecordBackup(backup) => super::backups::record(conn, &backup),
        Change::ForgetBackups(ids) => super::backups::forget(conn, &ids),
        Change::SetDomainEnv {
            domain,
            env,
            seal_key,
        } => super::env::set(conn, &domain, &env, &seal_key),
        Change::ReloadProject {
            domain,
            version,
            project,
            env_hash,
            config_hashes,
            seal_key,
        } => versions::reload_project(
            conn,
            &domain,
            version,
            &project,
            &env_hash,
            &config_hashes,
            &seal_key,
        ),
        Change::Outbox {
            subject,
            msg_id,
            payload,
        } => outbox::push(conn, &subject, &msg_id, &payload).map(drop),
    }
}

const JOB_COLUMNS: &str = "job_id, domain, kind, state, stream_seq, attempts, superseded_by, \
                           terminal_event, created_at, started_at, finished_at";

fn read_job(row: &Row<'_>) -> rusqlite::Result<JobRecord> {
    Ok(JobRecord {
        job_id: sql::job_id(row, 0)?,
        domain: sql::domain(row, 1)?,
        kind: sql::job_kind(row, 2)?,
        state: sql::job_state(row, 3)?,
        stream_seq: sql::u64_col(row, 4, "stream sequence")?,
        attempts: row.get(5)?,
        superseded_by: sql::opt_job_id(row, 6)?,
        terminal_event: row.get(7)?,
        created_at: sql::time(row, 8)?,
        started_at: sql::opt_time(row, 9)?,
        finished_at: sql::opt_time(row, 10)?,
    })
}
