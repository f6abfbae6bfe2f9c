//! Exit codes and the CLI's one error type.
//!
//! Every [`Error`] knows the [`Exit`] code it ends the process with and
//! prints as a plain sentence; its cause, when there is one, is a
//! [`source`](std::error::Error::source) (printed after a `: ` by `{:#}`),
//! never a debug dump. NATS client errors are turned into sentences where
//! they happen and never kept as sources (they repeat their source in their
//! own text).

use std::fmt;

/// The process exit codes, documented in `hostkit --help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exit {
    /// 0: the job succeeded (or the command did what it was asked).
    Success,
    /// 1: the job failed (nothing rolled back), or a request was refused.
    Failed,
    /// 2: bad usage, or input rejected before anything was published.
    Usage,
    /// 3: the job failed and the previous version was restored.
    RolledBack,
    /// 4: timed out, NATS unreachable, or no worker answering.
    Unavailable,
    /// 130: interrupted (Ctrl-C) while following a job, which keeps running.
    Interrupted,
    /// `hostkit exec`: the command's own exit status (mod 256).
    Status(u8),
}

impl Exit {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failed => 1,
            Exit::Usage => 2,
            Exit::RolledBack => 3,
            Exit::Unavailable => 4,
            Exit::Interrupted => 130,
            Exit::Status(code) => code,
        }
    }
}

/// A boxed cause.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Something that ends a command early: a sentence for the user, the exit
/// code, and optionally the underlying cause.
#[derive(Debug, thiserror::Error)]
pub struct Error {
    exit: Exit,
    message: String,
    #[source]
    source: Option<Source>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl Error {
    /// An error ending with `exit`.
    pub fn new(exit: Exit, message: impl Into<String>) -> Self {
        Error {
            exit,
            message: message.into(),
            source: None,
        }
    }

    /// Bad usage or input, found before anything was published (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Error::new(Exit::Usage, message)
    }

    /// NATS or the worker are not there, or the wait timed out (exit 4).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(Exit::Unavailable, message)
    }

    /// Anything else that went wrong (exit 1).
    pub fn failed(message: impl Into<String>) -> Self {
        Error::new(Exit::Failed, message)
    }

    /// The same error with `source` as its cause.
    pub fn with_source(mut self, source: impl Into<Source>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        self.exit
    }
}

/// Whether a NATS client error says that a stream (or the bucket built on
/// one) does not exist, as opposed to a timeout or a denial.
pub fn is_missing_stream(error: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(get) = error.downcast_ref::<GetStreamError>() {
            if let GetStreamErrorKind::JetStream(js) = get.kind() {
                return js.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND;
            }
        }
        next = error.source();
    }
    false
}

/// The sentence for "no worker created this JetStream object yet".
pub fn not_set_up(what: &str) -> Error {
    Error::unavailable(format!(
        "no worker has set up this NATS yet ({what} does not exist): start hostkit-worker on a node first"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let codes: Vec<u8> = [
            Exit::Success,
            Exit::Failed,
            Exit::Usage,
            Exit::RolledBack,
            Exit::Unavailable,
        ]
        .iter()
        .map(|e| e.code())
        .collect();
        assert_eq!(codes, [0, 1, 2, 3, 4]);
    }

    #[test]
    fn chains_print_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
        let error = Error::usage("cannot read app.tar").with_source(io);
        assert_eq!(
            format!("{:#}", anyhow::Error::from(error)),
            "cannot read app.tar: No such file"
        );
    }
}
