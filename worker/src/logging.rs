//! Log output: `tracing` events to stderr (journald picks them up under
//! systemd), as human-readable text or one JSON object per line.
//!
//! The filter comes from `HOSTKIT_LOG`, else `RUST_LOG`, else the
//! configuration's `log.filter` (default `info`), in `tracing`'s
//! `EnvFilter` syntax (`info`, `hostkit_worker=debug,async_nats=warn`).

use std::io::IsTerminal as _;

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

/// The environment variable with the log filter (wins over `RUST_LOG`).
pub const FILTER_ENV: &str = "HOSTKIT_LOG";

/// How log lines are written.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// The log output could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// A filter does not parse.
    #[error("{source_name} is not a valid log filter: {message}")]
    Filter {
        /// Where the filter came from (`HOSTKIT_LOG`, `RUST_LOG`, `log.filter`).
        source_name: String,
        /// Why.
        message: String,
    },
    /// A global subscriber is already installed.
    #[error("the log output is already set up: {message}")]
    AlreadySet {
        /// What tracing said.
        message: String,
    },
}

/// Parses a filter in `EnvFilter` syntax.
pub fn parse_filter(text: &str) -> Result<EnvFilter, String> {
    EnvFilter::builder().parse(text).map_err(|e| e.to_string())
}

/// Chooses the filter: `hostkit_log` (from [`FILTER_ENV`]), else
/// `rust_log`, else `configured`; blank variables count as unset.
pub fn choose_filter(
    hostkit_log: Option<String>,
    rust_log: Option<String>,
    configured: &str,
) -> Result<EnvFilter, LoggingError> {
    let (source_name, text) = match (
        hostkit_log.filter(|s| !s.trim().is_empty()),
        rust_log.filter(|s| !s.trim().is_empty()),
    ) {
        (Some(text), _) => (FILTER_ENV, text),
        (None, Some(text)) => ("RUST_LOG", text),
        (None, None) => ("log.filter", configured.to_owned()),
    };
    parse_filter(&text).map_err(|message| LoggingError::Filter {
        source_name: source_name.to_owned(),
        message,
    })
}

/// Installs the global subscriber: `format` output on stderr, filtered by
/// [`choose_filter`] over the process environment and `configured`.
pub fn init(format: LogFormat, configured: &str) -> Result<(), LoggingError> {
    let filter = choose_filter(
        std::env::var(FILTER_ENV).ok(),
        std::env::var("RUST_LOG").ok(),
        configured,
    )?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    result.map_err(|e| LoggingError::AlreadySet {
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostkit_log_wins_over_rust_log_which_wins_over_the_config() {
        let f = choose_filter(Some("debug".into()), Some("error".into()), "info").unwrap();
        assert_eq!(f.to_string(), "debug");
        let f = choose_filter(None, Some("error".into()), "info").unwrap();
        assert_eq!(f.to_string(), "error");
        let f = choose_filter(Some("  ".into()), None, "warn").unwrap();
        assert_eq!(f.to_string(), "warn");
    }

    #[test]
    fn a_bad_filter_names_where_it_came_from() {
        let err = choose_filter(Some("=[bad".into()), None, "info").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("HOSTKIT_LOG is not a valid log filter"),
            "{err}"
        );
        let err = choose_filter(None, None, "x=notalevel").unwrap_err();
        assert!(err.to_string().starts_with("log.filter"), "{err}");
    }

    #[test]
    fn formats_read_as_lowercase_words() {
        #[derive(Deserialize)]
        struct T {
            f: LogFormat,
        }
        let t: T = toml::from_str("f = \"json\"").unwrap();
        assert_eq!(t.f, LogFormat::Json);
        assert!(toml::from_str::<T>("f = \"xml\"").is_err());
    }
}
