//! Housekeeping: once an hour, the records of jobs that ended long ago are
//! forgotten, so the store stays bounded however many jobs a node runs.
//! "Long ago" is beyond the jobs stream's `max_age` (and an hour more): by
//! then the stream has dropped any message of such a job, so no delivery
//! can come back and find its record gone (which would run it again). The
//! newest job of each domain is always kept, for `status`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::Worker;
use crate::shutdown::Shutdown;

/// How often the records are swept.
const EVERY: Duration = Duration::from_secs(3600);
/// Margin beyond the jobs stream's `max_age`.
const MARGIN: Duration = Duration::from_secs(3600);

/// The end time before which a job's record may go.
pub fn forget_before(now: SystemTime, jobs_max_age: Duration) -> SystemTime {
    now.checked_sub(jobs_max_age + MARGIN)
        .unwrap_or(SystemTime::UNIX_EPOCH)
        .max(SystemTime::UNIX_EPOCH)
}

/// Sweep until `shutdown`.
pub async fn run(worker: Arc<Worker>, mut shutdown: Shutdown) {
    let mut ticker = tokio::time::interval(EVERY);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = shutdown.recv() => return,
        }
        let cutoff = forget_before(
            SystemTime::now(),
            worker.settings.stream_bounds.jobs_max_age,
        );
        match worker.store.forget_jobs(cutoff).await {
            Ok(0) => {}
            Ok(forgotten) => tracing::info!(forgotten, "records of old jobs forgotten"),
            Err(error) => tracing::warn!(%error, "old job records could not be forgotten"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_goes_only_after_the_stream_would_have_dropped_its_job() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(30 * 24 * 3600);
        let week = Duration::from_secs(7 * 24 * 3600);
        assert_eq!(forget_before(now, week), now - week - MARGIN);
        assert_eq!(
            forget_before(SystemTime::UNIX_EPOCH, week),
            SystemTime::UNIX_EPOCH
        );
    }
}
