//! Stream, consumer, bucket and timing settings fixed by the design (§3, §4),
//! shared so that the worker (which creates the streams and buckets), the CLI
//! and the tests agree.
//!
//! Types match what async-nats configuration fields take (`Duration`, `i64`
//! counts, `i32` message sizes).

use std::time::Duration;

// --- HOSTKIT_JOBS: work-queue retention, file storage ------------------------

/// Jobs stream de-duplication window (design: ≥ 10 min). A job re-published
/// with the same id (`Nats-Msg-Id`) within it is stored once.
pub const JOBS_DUPLICATE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// A job not consumed within this age is dropped by the stream.
pub const JOBS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Largest job message, in bytes (≤ the server's default `max_payload`).
pub const JOBS_MAX_MSG_SIZE: i32 = 1024 * 1024;
/// Jobs waiting per node and domain (one subject): a publisher that floods
/// its own domain is refused there (`discard_new_per_subject`) and never
/// fills the stream for the other domains.
pub const JOBS_MAX_PER_SUBJECT: i64 = 100;
/// The jobs stream's size bound (new jobs are refused beyond it).
pub const JOBS_MAX_BYTES: i64 = 256 * 1024 * 1024;
/// Consumer `ack_wait`: an unacked job is redelivered after this.
pub const JOBS_ACK_WAIT: Duration = Duration::from_secs(60);
/// How often a running job's message gets an in-progress ack (well within
/// [`JOBS_ACK_WAIT`]).
pub const JOBS_PROGRESS_INTERVAL: Duration = Duration::from_secs(15);
/// Starts a job may have (DESIGN §6): the worker records every start of a
/// job (a delivery it runs, or a resume after a crash) and, rather than
/// start it once more, ends it `failed` (`internal`), so a job that crashes
/// the worker is not retried forever.
pub const JOBS_MAX_ATTEMPTS: u32 = 3;
/// Consumer `max_deliver`: one delivery more than [`JOBS_MAX_ATTEMPTS`], so
/// that a job whose deliveries all started it is ended by the worker on its
/// last delivery (the one that would be its fourth start). When a job
/// arrives with this delivery count the worker must end it (a `failed`
/// event) instead of running it: the server would not deliver it again.
pub const JOBS_MAX_DELIVER: i64 = JOBS_MAX_ATTEMPTS as i64 + 1;
/// Consumer `max_ack_pending`: jobs a worker may hold unacked (running plus
/// waiting in lanes, which coalescing needs to see).
pub const JOBS_MAX_ACK_PENDING: i64 = 1000;

// --- HOSTKIT_EVENTS: limits retention ---------------------------------------

/// Events older than this are dropped from the history.
pub const EVENTS_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Size bound of the events stream, in bytes.
pub const EVENTS_MAX_BYTES: i64 = 1024 * 1024 * 1024;
/// Largest event message, in bytes.
pub const EVENTS_MAX_MSG_SIZE: i32 = 64 * 1024;
/// Events de-duplication window (outbox re-publishes use [`Event::msg_id`](crate::Event::msg_id)).
pub const EVENTS_DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 60);

// --- hostkit_images object store --------------------------------------------

/// Image blobs expire after this (object store `max_age`); re-uploads are
/// cheap since names are content addresses.
pub const IMAGES_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
/// The image bucket's size bound when the worker creates it (an operator
/// who needs more creates the bucket first; the worker never changes it).
pub const IMAGES_MAX_BYTES: i64 = 20 * 1024 * 1024 * 1024;
/// Chunk size for image uploads (object store `chunk_size`); larger than the
/// 128 KiB default for throughput, below the 1 MiB default `max_payload`.
pub const IMAGES_CHUNK_SIZE: usize = 512 * 1024;

// --- replication --------------------------------------------------------------

/// Copies of every stream and bucket a worker creates, by default: one, for
/// a single nats-server. A 3-server cluster takes `[streams] replicas = 3`.
pub const DEFAULT_REPLICAS: usize = 1;
/// The most copies JetStream keeps of a stream.
pub const MAX_REPLICAS: usize = 5;

/// The size and age bounds, and the replica count, a worker gives the
/// streams and buckets it creates (`[streams]` of worker.toml; an existing
/// one is never changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBounds {
    /// Copies of each stream and bucket on a clustered server (1 to
    /// [`MAX_REPLICAS`]; more than one needs a JetStream cluster of at
    /// least as many servers).
    pub replicas: usize,
    /// Jobs stream bytes (new jobs are refused beyond it).
    pub jobs_max_bytes: i64,
    /// A job not consumed within this age is dropped.
    pub jobs_max_age: Duration,
    /// Events stream bytes (the oldest events go first).
    pub events_max_bytes: i64,
    /// Events older than this are dropped.
    pub events_max_age: Duration,
    /// Bytes of each image bucket.
    pub images_max_bytes: i64,
    /// Image blobs older than this are dropped.
    pub images_max_age: Duration,
}

impl Default for StreamBounds {
    fn default() -> Self {
        StreamBounds {
            replicas: DEFAULT_REPLICAS,
            jobs_max_bytes: JOBS_MAX_BYTES,
            jobs_max_age: JOBS_MAX_AGE,
            events_max_bytes: EVENTS_MAX_BYTES,
            events_max_age: EVENTS_MAX_AGE,
            images_max_bytes: IMAGES_MAX_BYTES,
            images_max_age: IMAGES_MAX_AGE,
        }
    }
}

// --- KV buckets -------------------------------------------------------------

/// History kept per key in `hostkit_placement`.
pub const PLACEMENT_HISTORY: i64 = 5;
/// History kept per key in `hostkit_nodes`.
pub const NODES_HISTORY: i64 = 1;

// --- timing -----------------------------------------------------------------

/// How often a worker publishes a heartbeat and refreshes its `NodeInfo`.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(10);
/// A node whose last heartbeat is older than this is considered offline.
pub const NODE_STALE_AFTER: Duration = Duration::from_secs(30);
/// Default timeout of a control request.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(2);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::assertions_on_constants)]
    fn design_bounds_hold() {
        assert!(JOBS_DUPLICATE_WINDOW >= Duration::from_secs(600));
        assert!(JOBS_PROGRESS_INTERVAL * 3 <= JOBS_ACK_WAIT);
        assert!(HEARTBEAT_INTERVAL * 2 < NODE_STALE_AFTER);
        assert!(IMAGES_CHUNK_SIZE < 1024 * 1024);
        assert!(crate::job::MAX_COMPOSE_BYTES < JOBS_MAX_MSG_SIZE as usize);
        assert!(crate::event::MAX_EVENT_MESSAGE_BYTES * 4 < EVENTS_MAX_MSG_SIZE as usize);
    }
}
