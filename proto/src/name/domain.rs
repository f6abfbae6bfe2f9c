//! [`Domain`]: a validated, canonical RFC 1123 host name and its subject token.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::{NameError, NameKind, string_serde};

/// Maximum length of a domain (in ASCII/punycode form), in bytes.
pub const MAX_DOMAIN_LEN: usize = 253;
/// Maximum length of one label of a domain.
pub const MAX_LABEL_LEN: usize = 63;

/// Inputs longer than this are rejected before IDN conversion is attempted.
const MAX_INPUT_LEN: usize = 4 * MAX_DOMAIN_LEN;

const ALLOWED: &str = "a-z 0-9 - and . between labels";

/// Pattern of the canonical form, as published in the JSON Schema.
const PATTERN: &str =
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$";

/// A domain: an RFC 1123 host name, lower-cased, IDN converted to punycode.
///
/// Rules: at most 253 characters; dot-separated labels of 1..=63 characters
/// from `[a-z0-9-]`, not starting or ending with `-`; no trailing dot.
/// Upper-case input is lower-cased and Unicode input is converted to
/// punycode (`bücher.de` → `xn--bcher-kva.de`), so two spellings of one
/// host compare equal.
///
/// In subjects, Docker names and KV keys a domain appears as its
/// [token](Domain::token) (`example.com` → `example_com`), which is also the
/// Docker Compose project name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Domain(String);

impl Domain {
    /// Validates and canonicalizes `input`.
    pub fn parse(input: &str) -> Result<Self, NameError> {
        let kind = NameKind::Domain;
        let name = || input.to_owned();
        if input.is_empty() {
            return Err(NameError::Empty { kind });
        }
        if input.len() > MAX_INPUT_LEN {
            return Err(NameError::TooLong {
                kind,
                name: name(),
                len: input.len(),
                max: MAX_DOMAIN_LEN,
            });
        }
        // Characters that deserve their own message, checked on the raw
        // input so that IDN mapping cannot hide them.
        for ch in input.chars() {
            if ch.is_whitespace() {
                return Err(NameError::Whitespace { kind, name: name() });
            }
            if ch == '/' || ch == '\\' {
                return Err(NameError::PathSeparator {
                    kind,
                    name: name(),
                    ch,
                });
            }
            if ch == '*' {
                return Err(NameError::Wildcard { kind, name: name() });
            }
        }
        let ascii = if input.is_ascii() {
            input.to_ascii_lowercase()
        } else {
            idna::domain_to_ascii(input)
                .map_err(|_| NameError::InvalidIdn { kind, name: name() })?
        };
        check_ascii(kind, &ascii)?;
        Ok(Domain(ascii))
    }

    /// The canonical (lower-case, punycode) spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The subject token: `.` replaced by `_` (`example.com` → `example_com`).
    ///
    /// Reversible (host names never contain `_`), usable as one NATS token,
    /// a KV key, and the Docker Compose project name.
    pub fn token(&self) -> String {
        self.0.replace('.', "_")
    }

    /// Reverses [`Domain::token`]. Only the exact token of a valid domain is
    /// accepted (e.g. `Example_com` or `a.b` are rejected).
    pub fn from_token(token: &str) -> Result<Self, NameError> {
        let domain = Domain::parse(&token.replace('_', ".")).map_err(|err| retag(err, token))?;
        let canonical = domain.token();
        if canonical != token {
            return Err(NameError::NotCanonical {
                kind: NameKind::DomainToken,
                name: token.to_owned(),
                canonical,
            });
        }
        Ok(domain)
    }

    /// The domain for humans: punycode labels decoded to Unicode.
    pub fn to_unicode(&self) -> String {
        idna::domain_to_unicode(&self.0).0
    }
}

/// Reports a token error as a token error (kind and input), not as a domain error.
fn retag(err: NameError, token: &str) -> NameError {
    let kind = NameKind::DomainToken;
    let name = token.to_owned();
    match err {
        NameError::Empty { .. } => NameError::Empty { kind },
        NameError::TooLong { len, max, .. } => NameError::TooLong {
            kind,
            name,
            len,
            max,
        },
        NameError::LabelTooLong {
            label, len, max, ..
        } => NameError::LabelTooLong {
            kind,
            name,
            label,
            len,
            max,
        },
        NameError::EmptyLabel { .. } => NameError::EmptyLabel { kind, name },
        NameError::BadChar { ch, allowed, .. } => NameError::BadChar {
            kind,
            name,
            ch,
            allowed,
        },
        NameError::LeadingHyphen { label, .. } => NameError::LeadingHyphen { kind, name, label },
        NameError::TrailingHyphen { label, .. } => NameError::TrailingHyphen { kind, name, label },
        NameError::PathSeparator { ch, .. } => NameError::PathSeparator { kind, name, ch },
        NameError::Wildcard { .. } => NameError::Wildcard { kind, name },
        NameError::Whitespace { .. } => NameError::Whitespace { kind, name },
        NameError::InvalidIdn { .. } => NameError::InvalidIdn { kind, name },
        NameError::NotCanonical { canonical, .. } => NameError::NotCanonical {
            kind,
            name,
            canonical,
        },
    }
}

/// Checks the ASCII (post-IDN) form of a domain.
fn check_ascii(kind: NameKind, ascii: &str) -> Result<(), NameError> {
    let name = || ascii.to_owned();
    if ascii.is_empty() {
        return Err(NameError::Empty { kind });
    }
    if ascii.len() > MAX_DOMAIN_LEN {
        return Err(NameError::TooLong {
            kind,
            name: name(),
            len: ascii.len(),
            max: MAX_DOMAIN_LEN,
        });
    }
    for ch in ascii.chars() {
        match ch {
            'a'..='z' | '0'..='9' | '-' | '.' => {}
            '/' | '\\' => {
                return Err(NameError::PathSeparator {
                    kind,
                    name: name(),
                    ch,
                });
            }
            '*' => return Err(NameError::Wildcard { kind, name: name() }),
            c if c.is_whitespace() => return Err(NameError::Whitespace { kind, name: name() }),
            _ => {
                return Err(NameError::BadChar {
                    kind,
                    name: name(),
                    ch,
                    allowed: ALLOWED,
                });
            }
        }
    }
    for label in ascii.split('.') {
        if label.is_empty() {
            return Err(NameError::EmptyLabel { kind, name: name() });
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(NameError::LabelTooLong {
                kind,
                name: name(),
                label: label.to_owned(),
                len: label.len(),
                max: MAX_LABEL_LEN,
            });
        }
        if label.starts_with('-') {
            return Err(NameError::LeadingHyphen {
                kind,
                name: name(),
                label: label.to_owned(),
            });
        }
        if label.ends_with('-') {
            return Err(NameError::TrailingHyphen {
                kind,
                name: name(),
                label: label.to_owned(),
            });
        }
        if label.starts_with("xn--") && idna::domain_to_unicode(label).1.is_err() {
            return Err(NameError::InvalidIdn { kind, name: name() });
        }
    }
    Ok(())
}

impl FromStr for Domain {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Domain::parse(s)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Domain({:?})", self.0)
    }
}

impl AsRef<str> for Domain {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

string_serde!(Domain);

impl JsonSchema for Domain {
    fn schema_name() -> Cow<'static, str> {
        "Domain".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "format": "hostname",
            "description": "RFC 1123 host name in canonical form: lower-case, IDN as punycode, labels of 1..=63 [a-z0-9-] not starting or ending with '-', at most 253 characters. Readers also accept upper-case and Unicode spellings and canonicalize them.",
            "minLength": 1,
            "maxLength": MAX_DOMAIN_LEN,
            "pattern": PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(input: &str) -> NameError {
        Domain::parse(input).expect_err(input)
    }

    #[test]
    fn accepts_and_canonicalizes() {
        assert_eq!(
            Domain::parse("example.com").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(
            Domain::parse("Example.COM").unwrap().as_str(),
            "example.com"
        );
        assert_eq!(Domain::parse("a-b.c0.io").unwrap().as_str(), "a-b.c0.io");
        assert_eq!(Domain::parse("localhost").unwrap().as_str(), "localhost");
        assert_eq!(
            Domain::parse("bücher.de").unwrap().as_str(),
            "xn--bcher-kva.de"
        );
        assert_eq!(
            Domain::parse("BÜCHER.de").unwrap().as_str(),
            "xn--bcher-kva.de"
        );
        assert_eq!(
            Domain::parse("xn--bcher-kva.de").unwrap().to_unicode(),
            "bücher.de"
        );
        let label = "a".repeat(63);
        assert!(Domain::parse(&format!("{label}.com")).is_ok());
        let long = [label.as_str(); 4].join(".");
        assert_eq!(long.len(), 255);
        assert!(Domain::parse(&long[..253]).is_ok());
    }

    #[test]
    fn rejects_each_rule() {
        assert!(matches!(
            err(""),
            NameError::Empty {
                kind: NameKind::Domain
            }
        ));
        let long = ["a".repeat(63).as_str(); 4].join(".");
        assert!(matches!(
            err(&long),
            NameError::TooLong {
                len: 255,
                max: 253,
                ..
            }
        ));
        assert!(matches!(err(&"a".repeat(2000)), NameError::TooLong { .. }));
        assert!(matches!(
            err(&format!("{}.com", "a".repeat(64))),
            NameError::LabelTooLong {
                len: 64,
                max: 63,
                ..
            }
        ));
        for input in ["a..b", ".a.b", "a.b.", "."] {
            assert!(
                matches!(err(input), NameError::EmptyLabel { .. }),
                "{input}"
            );
        }
        assert!(matches!(err("a_b.com"), NameError::BadChar { ch: '_', .. }));
        assert!(matches!(err("a:80"), NameError::BadChar { ch: ':', .. }));
        assert!(matches!(err("a>b"), NameError::BadChar { ch: '>', .. }));
        assert!(
            matches!(err("-a.com"), NameError::LeadingHyphen { ref label, .. } if label == "-a")
        );
        assert!(
            matches!(err("a.b-.com"), NameError::TrailingHyphen { ref label, .. } if label == "b-")
        );
        assert!(matches!(
            err("a/b"),
            NameError::PathSeparator { ch: '/', .. }
        ));
        assert!(matches!(
            err("..\\x"),
            NameError::PathSeparator { ch: '\\', .. }
        ));
        assert!(matches!(err("*.example.com"), NameError::Wildcard { .. }));
        assert!(matches!(err("a b.com"), NameError::Whitespace { .. }));
        assert!(matches!(err("a.com\n"), NameError::Whitespace { .. }));
        assert!(matches!(err("a\u{a0}b.com"), NameError::Whitespace { .. }));
        assert!(matches!(err("xn--a.com"), NameError::InvalidIdn { .. }));
        assert!(matches!(
            err("a\u{200b}\u{fffd}.com"),
            NameError::InvalidIdn { .. } | NameError::BadChar { .. }
        ));
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(
            err("a_b.com").to_string(),
            "domain \"a_b.com\" contains '_', which is not allowed (allowed: a-z 0-9 - and . between labels)"
        );
        assert_eq!(
            err("a..b").to_string(),
            "domain \"a..b\" has an empty label (`..`, or a leading or trailing dot)"
        );
    }

    #[test]
    fn token_round_trips() {
        let domain = Domain::parse("www.example.com").unwrap();
        assert_eq!(domain.token(), "www.example.com".replace('.', "_"));
        assert_eq!(Domain::from_token("www_example_com").unwrap(), domain);
        assert_eq!(
            Domain::from_token("localhost").unwrap().as_str(),
            "localhost"
        );
    }

    #[test]
    fn from_token_rejects_non_tokens() {
        assert!(matches!(
            Domain::from_token("Example_com"),
            Err(NameError::NotCanonical {
                kind: NameKind::DomainToken,
                ..
            })
        ));
        assert!(matches!(
            Domain::from_token("a.b"),
            Err(NameError::NotCanonical { .. })
        ));
        assert!(matches!(
            Domain::from_token("a__b"),
            Err(NameError::EmptyLabel { kind: NameKind::DomainToken, ref name }) if name == "a__b"
        ));
        assert!(matches!(
            Domain::from_token(""),
            Err(NameError::Empty { .. })
        ));
    }

    #[test]
    fn serde_is_a_validated_string() {
        let domain: Domain = serde_json::from_str("\"Example.com\"").unwrap();
        assert_eq!(domain.as_str(), "example.com");
        assert_eq!(serde_json::to_string(&domain).unwrap(), "\"example.com\"");
        let back: Domain = serde_json::from_str(&serde_json::to_string(&domain).unwrap()).unwrap();
        assert_eq!(back, domain);
        let err = serde_json::from_str::<Domain>("\"a..b\"").unwrap_err();
        assert!(err.to_string().contains("empty label"), "{err}");
        assert!(serde_json::from_str::<Domain>("42").is_err());
    }

    #[test]
    fn display_as_ref_debug() {
        let domain: Domain = "example.com".parse().unwrap();
        assert_eq!(domain.to_string(), "example.com");
        assert_eq!(AsRef::<str>::as_ref(&domain), "example.com");
        assert_eq!(format!("{domain:?}"), "Domain(\"example.com\")");
    }
}
