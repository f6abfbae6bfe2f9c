//! Errors and warnings of the compose loader.
//!
//! Every error has a stable [`code`](ComposeError::code) (`compose.invalid` or
//! `compose.unsupported`), names the key path it is about and, once
//! [`load`](super::load) has located it in the source text, its line.

use super::path::KeyPath;
use serde::{Deserialize, Serialize};

/// Error code of a malformed or inconsistent compose file.
pub const CODE_INVALID: hostkit_proto::ErrorCode = hostkit_proto::ErrorCode::ComposeInvalid;
/// Error code of a compose feature HostKit does not support.
pub const CODE_UNSUPPORTED: hostkit_proto::ErrorCode = hostkit_proto::ErrorCode::ComposeUnsupported;

/// A compose file that cannot be deployed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComposeError {
    /// The text is larger than [`MAX_INPUT_BYTES`](super::MAX_INPUT_BYTES).
    #[error("the compose file is {size} bytes; the limit is {limit} bytes")]
    TooLarge {
        /// Size of the text.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Aliases expand the document beyond [`MAX_NODES`](super::MAX_NODES).
    #[error(
        "the compose file expands to more than {limit} YAML nodes through anchors and aliases (an alias bomb?)"
    )]
    TooManyNodes {
        /// The limit.
        limit: usize,
    },
    /// The text is not valid YAML, or not a single YAML document.
    #[error("invalid YAML{}: {message}", at_line(.line))]
    Yaml {
        /// What the YAML parser said.
        message: String,
        /// 1-based line, when known.
        line: Option<usize>,
    },
    /// A key that HostKit does not support.
    #[error("unsupported key `{path}`{}{}", at_line(.line), hint_suffix(.hint))]
    UnsupportedKey {
        /// Where the key is.
        path: KeyPath,
        /// 1-based line, when found.
        line: Option<usize>,
        /// How to do without it.
        hint: Option<&'static str>,
    },
    /// A supported key with a value HostKit does not support.
    #[error("unsupported value at `{path}`{}: {message}", at_line(.line))]
    UnsupportedValue {
        /// Where the value is.
        path: KeyPath,
        /// 1-based line, when found.
        line: Option<usize>,
        /// What is not supported.
        message: String,
    },
    /// A malformed value.
    #[error("invalid `{path}`{}: {message}", at_line(.line))]
    Invalid {
        /// Where the value is.
        path: KeyPath,
        /// 1-based line, when found.
        line: Option<usize>,
        /// What is wrong.
        message: String,
    },
    /// A `${VAR:?msg}` / `${VAR?msg}` variable without a value.
    #[error(
        "required variable {variable} is missing a value{}{} (needed by `{path}`{})",
        if message.is_empty() { "" } else { ": " },
        message,
        at_line(.line)
    )]
    MissingVariable {
        /// The variable's name.
        variable: String,
        /// The message written in the template (may be empty).
        message: String,
        /// The key whose value needs it.
        path: KeyPath,
        /// 1-based line, when found.
        line: Option<usize>,
    },
    /// A reference to a service, network, volume, secret or config that is
    /// not defined.
    #[error("undefined {kind} `{name}` referenced by `{path}`{}", at_line(.line))]
    Undefined {
        /// `service`, `network`, `volume`, `secret` or `config`.
        kind: &'static str,
        /// The name that is not defined.
        name: String,
        /// Where it is referenced.
        path: KeyPath,
        /// 1-based line, when found.
        line: Option<usize>,
    },
    /// Services that depend on each other in a circle.
    #[error("dependency cycle between services: {}", .cycle.join(" -> "))]
    Cycle {
        /// The services of the cycle, the first repeated at the end.
        cycle: Vec<String>,
    },
    /// A malformed env file.
    #[error("env file {file}, line {line}: {message}")]
    EnvFile {
        /// The file's name (as given by the caller).
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!(" (line {l})")).unwrap_or_default()
}

fn hint_suffix(hint: &Option<&'static str>) -> String {
    match hint {
        Some(h) => format!(": {h}"),
        None => " (see the table of supported keys)".to_owned(),
    }
}

impl ComposeError {
    /// The stable error code: `compose.unsupported` or `compose.invalid`.
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        match self {
            Self::UnsupportedKey { .. } | Self::UnsupportedValue { .. } => CODE_UNSUPPORTED,
            _ => CODE_INVALID,
        }
    }

    /// A hint for the user, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::UnsupportedKey { hint, .. } => *hint,
            Self::TooManyNodes { .. } => Some("use fewer or smaller anchors"),
            Self::MissingVariable { .. } => Some(
                "set the variable in the job's env (`hostkit deploy --env`) or in the domain's .env on the node",
            ),
            Self::Invalid { message, .. } if message.contains("`$`") => {
                Some("write `$$` for a literal `$`")
            }
            _ => None,
        }
    }

    /// The key path the error is about, if any.
    pub fn path(&self) -> Option<&KeyPath> {
        match self {
            Self::UnsupportedKey { path, .. }
            | Self::UnsupportedValue { path, .. }
            | Self::Invalid { path, .. }
            | Self::MissingVariable { path, .. }
            | Self::Undefined { path, .. } => Some(path),
            _ => None,
        }
    }

    /// The 1-based source line, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Yaml { line, .. }
            | Self::UnsupportedKey { line, .. }
            | Self::UnsupportedValue { line, .. }
            | Self::Invalid { line, .. }
            | Self::MissingVariable { line, .. }
            | Self::Undefined { line, .. } => *line,
            Self::EnvFile { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// Names the unset variables that emptied the value this error is about
    /// (`invalid volume name ''` says which `${VAR}` was not set).
    pub(crate) fn naming_unset(mut self, unset: &[(KeyPath, String)]) -> Self {
        let Some(at) = self.path().map(ToString::to_string) else {
            return self;
        };
        let mut variables: Vec<&str> = unset
            .iter()
            .filter(|(path, _)| {
                let path = path.to_string();
                path == at
                    || path.starts_with(&format!("{at}."))
                    || path.starts_with(&format!("{at}["))
                    || at.starts_with(&format!("{path}."))
                    || at.starts_with(&format!("{path}["))
            })
            .map(|(_, variable)| variable.as_str())
            .collect();
        variables.dedup();
        if variables.is_empty() {
            return self;
        }
        let note = format!(
            " (the variable {} {} not set)",
            variables.join(", "),
            if variables.len() == 1 { "is" } else { "are" }
        );
        match &mut self {
            Self::Invalid { message, .. } | Self::UnsupportedValue { message, .. } => {
                message.push_str(&note)
            }
            _ => {}
        }
        self
    }

    /// Sets the line of a path-bearing error that has none yet; when the
    /// path is not in the text (a merged anchor's value), the line is where
    /// it was merged and the message names the anchor's line too.
    pub(crate) fn located(self, find: impl FnOnce(&KeyPath) -> super::locate::Located) -> Self {
        let mut origin = None;
        let mut located = self.with_line(|path| {
            let found = find(path);
            origin = found.origin.filter(|o| Some(*o) != found.line);
            found.line
        });
        if let Some(origin) = origin {
            let note = format!(" (the value comes from line {origin}, merged or aliased here)");
            match &mut located {
                Self::Invalid { message, .. } | Self::UnsupportedValue { message, .. } => {
                    message.push_str(&note)
                }
                _ => {}
            }
        }
        located
    }

    /// Sets the line of a path-bearing error that has none yet.
    pub(crate) fn with_line(mut self, find: impl FnOnce(&KeyPath) -> Option<usize>) -> Self {
        let found = self.path().filter(|p| !p.is_root()).and_then(find);
        match &mut self {
            Self::UnsupportedKey { line, .. }
            | Self::UnsupportedValue { line, .. }
            | Self::Invalid { line, .. }
            | Self::MissingVariable { line, .. }
            | Self::Undefined { line, .. }
                if line.is_none() =>
            {
                *line = found;
            }
            _ => {}
        }
        self
    }

    pub(crate) fn invalid(path: &KeyPath, message: impl Into<String>) -> Self {
        Self::Invalid {
            path: path.clone(),
            line: None,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported_value(path: &KeyPath, message: impl Into<String>) -> Self {
        Self::UnsupportedValue {
            path: path.clone(),
            line: None,
            message: message.into(),
        }
    }

    pub(crate) fn unsupported_key(path: KeyPath, hint: Option<&'static str>) -> Self {
        Self::UnsupportedKey {
            path,
            line: None,
            hint,
        }
    }

    pub(crate) fn undefined(kind: &'static str, name: &str, path: &KeyPath) -> Self {
        Self::Undefined {
            kind,
            name: name.to_owned(),
            path: path.clone(),
            line: None,
        }
    }
}

/// Something the loader accepted but the user should know about (an unset
/// variable, an obsolete key, a dropped optional dependency).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// The key path the warning is about (`services.web.environment.X`).
    pub path: String,
    /// What happened.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let path = KeyPath::from_keys(["services", "web", "privileged2"]);
        let e = ComposeError::unsupported_key(path.clone(), None).with_line(|_| Some(7));
        assert_eq!(e.code(), "compose.unsupported");
        assert_eq!(e.line(), Some(7));
        assert!(
            e.to_string()
                .contains("`services.web.privileged2` (line 7)"),
            "{e}"
        );
        let e = ComposeError::invalid(&path, "bad");
        assert_eq!(e.code(), "compose.invalid");
        let e = ComposeError::MissingVariable {
            variable: "DB".into(),
            message: "set it".into(),
            path: path.clone(),
            line: None,
        };
        assert_eq!(
            e.to_string(),
            "required variable DB is missing a value: set it (needed by `services.web.privileged2`)"
        );
        let e = ComposeError::Cycle {
            cycle: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(
            e.to_string(),
            "dependency cycle between services: a -> b -> a"
        );
    }
}
