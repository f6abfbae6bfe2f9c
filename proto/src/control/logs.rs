//! `logs`: a request answered by a bounded stream of [`LogChunk`] messages.
//!
//! The worker sends each chunk as a `Reply<LogChunk>` on the request's reply
//! subject, numbered from `seq` 0; the last one has `end: true` (possibly
//! with no lines). An `error` reply also ends the stream. Chunks hold at most
//! [`LOG_CHUNK_MAX_LINES`] lines and about [`LOG_CHUNK_MAX_BYTES`] bytes,
//! lines are cut at [`LOG_LINE_MAX_BYTES`], so every message stays far below
//! the NATS payload limit. [`LogBatcher`] applies these bounds.
//!
//! With `follow`, the worker keeps streaming new lines until the container
//! stops or [`LOG_FOLLOW_MAX`] has passed, then sends `end: true`; the client
//! simply stops reading when it is no longer interested.

use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::event::truncate_message;
use crate::name::Domain;

/// Most lines in one chunk.
pub const LOG_CHUNK_MAX_LINES: usize = 256;
/// Most line bytes in one chunk (a chunk is closed before it would exceed this).
pub const LOG_CHUNK_MAX_BYTES: usize = 256 * 1024;
/// Longest line; longer lines are cut (marked with `…`).
pub const LOG_LINE_MAX_BYTES: usize = 16 * 1024;
/// Lines sent when the request has no `tail`.
pub const LOG_TAIL_DEFAULT: u32 = 100;
/// Most lines a `tail` may ask for.
pub const LOG_TAIL_MAX: u32 = 10_000;
/// How long a `follow` stream lasts at most.
pub const LOG_FOLLOW_MAX: Duration = Duration::from_secs(30 * 60);
/// Log follows a node serves at once; one more is refused until one ends.
pub const LOG_FOLLOWS_PER_NODE: usize = 16;

/// `logs` request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogsRequest {
    /// The domain.
    pub domain: Domain,
    /// The exact compose service name (all its replicas).
    pub service: String,
    /// Last lines to send; absent = 100 (`LOG_TAIL_DEFAULT`); capped at
    /// 10000 (`LOG_TAIL_MAX`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<u32>,
    /// Keep streaming new lines.
    #[serde(default)]
    pub follow: bool,
}

impl LogsRequest {
    /// The number of lines the worker sends: `tail` or the default, capped.
    pub fn effective_tail(&self) -> u32 {
        self.tail.unwrap_or(LOG_TAIL_DEFAULT).min(LOG_TAIL_MAX)
    }
}

/// One message of a `logs` stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogChunk {
    /// Position in the stream, from 0 (a gap means a lost message).
    pub seq: u64,
    /// The lines, in order.
    pub lines: Vec<LogLine>,
    /// Whether this is the last message of the stream.
    pub end: bool,
}

/// One log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LogLine {
    /// Which output stream it came from.
    pub stream: LogStream,
    /// The line, without its trailing newline.
    pub line: String,
}

/// A container output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Packs log lines into bounded [`LogChunk`]s with consecutive `seq`s.
#[derive(Debug, Default)]
pub struct LogBatcher {
    seq: u64,
    lines: Vec<LogLine>,
    bytes: usize,
}

impl LogBatcher {
    /// An empty batcher starting at `seq` 0.
    pub fn new() -> Self {
        LogBatcher::default()
    }

    /// Adds a line (cut to [`LOG_LINE_MAX_BYTES`]). Returns the previous
    /// chunk, ready to send, when this line did not fit in it.
    pub fn push(&mut self, stream: LogStream, line: &str) -> Option<LogChunk> {
        let line = truncate_message(line, LOG_LINE_MAX_BYTES);
        let full = self.lines.len() >= LOG_CHUNK_MAX_LINES
            || self.bytes + line.len() > LOG_CHUNK_MAX_BYTES;
        let ready = if full { self.take(false) } else { None };
        self.bytes += line.len();
        self.lines.push(LogLine { stream, line });
        ready
    }

    /// The pending lines as a chunk (`end: false`), if there are any; for
    /// flushing on a timer while following.
    pub fn flush(&mut self) -> Option<LogChunk> {
        self.take(false)
    }

    /// The final chunk (`end: true`) with whatever lines are pending.
    pub fn finish(mut self) -> LogChunk {
        let lines = std::mem::take(&mut self.lines);
        LogChunk {
            seq: self.seq,
            lines,
            end: true,
        }
    }

    fn take(&mut self, end: bool) -> Option<LogChunk> {
        if self.lines.is_empty() {
            return None;
        }
        let chunk = LogChunk {
            seq: self.seq,
            lines: std::mem::take(&mut self.lines),
            end,
        };
        self.seq += 1;
        self.bytes = 0;
        Some(chunk)
    }
}
