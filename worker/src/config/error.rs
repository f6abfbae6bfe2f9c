//! Why a configuration was refused. Every problem names the key it is
//! about (`ports.start`, `nats.urls[1]`, …) and where that value came from
//! (the file, or a flag / environment variable).

use std::fmt;
use std::path::PathBuf;

/// `sysexits.h` EX_USAGE: the configuration is invalid.
pub const EX_USAGE: u8 = 64;
/// `sysexits.h` EX_NOINPUT: the configuration file cannot be read.
pub const EX_NOINPUT: u8 = 66;

/// One thing wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the value came from: the file (`/etc/hostkit/worker.toml`, with
    /// `:<line>` when known) or the flag and variable that set it.
    pub origin: String,
    /// The dotted key (`ports.start`, `security.trusted_job_keys[0]`), or
    /// empty for a syntax error that belongs to no key.
    pub key: String,
    /// What is wrong, as a sentence fragment after the key.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key.is_empty() {
            write!(f, "{}: {}", self.origin, self.message)
        } else {
            write!(f, "{}: `{}` {}", self.origin, self.key, self.message)
        }
    }
}

/// The configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file or an override is invalid; every problem found is listed.
    #[error("{}", render(problems))]
    Invalid {
        /// What is wrong (at least one).
        problems: Vec<Problem>,
    },
}

fn render(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut out = format!("{} problems in the configuration:", many.len());
            for p in many {
                out.push_str("\n  - ");
                out.push_str(&p.to_string());
            }
            out
        }
    }
}

impl ConfigError {
    /// The process exit code for this error: [`EX_NOINPUT`] when the file
    /// cannot be read, [`EX_USAGE`] when it is invalid.
    pub fn exit_code(&self) -> u8 {
        match self {
            ConfigError::Read { .. } => EX_NOINPUT,
            ConfigError::Invalid { .. } => EX_USAGE,
        }
    }

    /// The problems (empty for [`ConfigError::Read`]).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems } => problems,
        }
    }

    /// The keys the problems are about.
    pub fn keys(&self) -> Vec<&str> {
        self.problems().iter().map(|p| p.key.as_str()).collect()
    }

    pub(crate) fn one(
        origin: impl Into<String>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError::Invalid {
            problems: vec![Problem {
                origin: origin.into(),
                key: key.into(),
                message: message.into(),
            }],
        }
    }
}
