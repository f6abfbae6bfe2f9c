//! Typed progress reports from the stack engine.
//!
//! The engine never talks to NATS: it reports what it does to a
//! [`ProgressSink`], and the worker turns each report into an event.

use std::fmt;

/// One thing the engine did or is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// A named step began (e.g. `images`, `plan`, `apply`, `health`, `proxy`).
    Step { name: &'static str, message: String },
    /// Bytes of an image tarball streamed into the engine so far.
    ImageBytes { done: u64, total: Option<u64> },
    /// An image (tag or id) is now present in the engine.
    ImageLoaded { reference: String },
    /// Bytes of a registry pull so far (summed over layers the engine reports).
    ImagePull {
        reference: String,
        done: u64,
        total: Option<u64>,
    },
    /// A replica of a service changed state (`created`, `started`, `healthy`,
    /// `replaced`, `removed`, `stopped`, …).
    Service {
        service: String,
        replica: u32,
        state: ServiceState,
    },
    /// nginx now routes the domain to these upstreams.
    ProxySwitched { upstreams: Vec<String> },
    /// Something the operator should know that does not stop the job.
    Warning { message: String },
    /// Lines a one-off command wrote.
    Output {
        stream: OutputStream,
        lines: Vec<String>,
    },
}

/// Which output stream of a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputStream {
    Stdout,
    Stderr,
}

impl OutputStream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputStream::Stdout => "stdout",
            OutputStream::Stderr => "stderr",
        }
    }
}

/// States a replica goes through during a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    Created,
    Started,
    Healthy,
    Completed,
    Replaced,
    Stopped,
    Removed,
    Restarted,
    Unchanged,
}

impl ServiceState {
    /// The state's wire name (used in `service` events).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceState::Created => "created",
            ServiceState::Started => "started",
            ServiceState::Healthy => "healthy",
            ServiceState::Completed => "completed",
            ServiceState::Replaced => "replaced",
            ServiceState::Stopped => "stopped",
            ServiceState::Removed => "removed",
            ServiceState::Restarted => "restarted",
            ServiceState::Unchanged => "unchanged",
        }
    }
}

impl fmt::Display for ServiceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Receives progress reports. Implementations must be cheap and must not
/// block: the worker forwards them to an event publisher.
pub trait ProgressSink: Send + Sync {
    /// Record one report.
    fn report(&self, progress: Progress);
}

/// A sink that drops everything (for callers that do not care).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl ProgressSink for NoProgress {
    fn report(&self, _progress: Progress) {}
}

/// A sink that keeps every report, for tests and for the CLI's local checks.
#[derive(Debug, Default)]
pub struct RecordingSink {
    reports: std::sync::Mutex<Vec<Progress>>,
}

impl RecordingSink {
    /// Everything reported so far.
    pub fn reports(&self) -> Vec<Progress> {
        self.reports.lock().expect("progress lock").clone()
    }
}

impl ProgressSink for RecordingSink {
    fn report(&self, progress: Progress) {
        self.reports.lock().expect("progress lock").push(progress);
    }
}
