//! [`NameError`]: every way a domain, node id or subject root can be wrong.

use std::fmt;

/// Which kind of name failed validation (used in [`NameError`] messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    /// A [`Domain`](super::Domain).
    Domain,
    /// A domain token (`example_com`), see [`Domain::from_token`](super::Domain::from_token).
    DomainToken,
    /// A [`NodeId`](super::NodeId).
    NodeId,
    /// The subject root of [`Names`](crate::subjects::Names).
    SubjectRoot,
}

impl fmt::Display for NameKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NameKind::Domain => "domain",
            NameKind::DomainToken => "domain token",
            NameKind::NodeId => "node id",
            NameKind::SubjectRoot => "subject root",
        })
    }
}

/// A name (domain, domain token, node id, subject root) is not valid.
///
/// Every variant carries the kind of name and the offending input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// The name is empty.
    #[error("{kind} is empty")]
    Empty {
        /// Which kind of name.
        kind: NameKind,
    },
    /// The name is longer than allowed.
    #[error("{kind} {name:?} is {len} characters long; the maximum is {max}")]
    TooLong {
        /// Which kind of name.
        kind: NameKind,
        /// The input (possibly after IDN conversion).
        name: String,
        /// Its length in bytes.
        len: usize,
        /// The maximum length.
        max: usize,
    },
    /// One dot-separated label is longer than 63 characters.
    #[error("{kind} {name:?} has a label of {len} characters ({label:?}); the maximum is {max}")]
    LabelTooLong {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
        /// The label that is too long.
        label: String,
        /// Its length.
        len: usize,
        /// The maximum label length.
        max: usize,
    },
    /// A label is empty: `..`, or a leading or trailing dot.
    #[error("{kind} {name:?} has an empty label (`..`, or a leading or trailing dot)")]
    EmptyLabel {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
    },
    /// The name contains a character outside its alphabet.
    #[error("{kind} {name:?} contains {ch:?}, which is not allowed (allowed: {allowed})")]
    BadChar {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
        /// The first offending character.
        ch: char,
        /// The allowed alphabet, for the message.
        allowed: &'static str,
    },
    /// A label starts with `-`.
    #[error("{kind} {name:?}: label {label:?} starts with a hyphen")]
    LeadingHyphen {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
        /// The offending label.
        label: String,
    },
    /// A label ends with `-`.
    #[error("{kind} {name:?}: label {label:?} ends with a hyphen")]
    TrailingHyphen {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
        /// The offending label.
        label: String,
    },
    /// The name contains `/` or `\` (it would escape a directory).
    #[error("{kind} {name:?} contains a path separator {ch:?}")]
    PathSeparator {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
        /// `/` or `\`.
        ch: char,
    },
    /// The name contains `*`: wildcards are not names.
    #[error("{kind} {name:?} contains a wildcard `*`; name exactly one host")]
    Wildcard {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
    },
    /// The name contains whitespace.
    #[error("{kind} {name:?} contains whitespace")]
    Whitespace {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
    },
    /// The name is not a valid internationalized domain name (it cannot be
    /// converted to punycode, or an `xn--` label does not decode).
    #[error("{kind} {name:?} is not a valid internationalized domain name")]
    InvalidIdn {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
    },
    /// The name is valid but not in its canonical spelling (e.g. a domain
    /// token with upper-case letters).
    #[error("{kind} {name:?} is not canonical; expected {canonical:?}")]
    NotCanonical {
        /// Which kind of name.
        kind: NameKind,
        /// The input.
        name: String,
        /// The canonical spelling.
        canonical: String,
    },
}
