//! [`ImageObjectName`]: the content-addressed name of an image blob in the
//! object store (`sha256-<64 lowercase hex>`).

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};

use super::string_serde;

/// Prefix of every image object name.
pub const IMAGE_OBJECT_PREFIX: &str = "sha256-";

const HEX_LEN: usize = 64;

/// The name of an image tarball in the `hostkit_images` object store bucket:
/// `sha256-` followed by the 64 lowercase hex digits of the SHA-256 of the
/// blob's bytes. Equal content ⇒ equal name, so an upload that is already
/// there can be skipped.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageObjectName(String);

/// An image object name or SHA-256 hex digest is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectNameError {
    /// The name does not start with `sha256-`.
    #[error("image object name {name:?} does not start with \"sha256-\"")]
    MissingPrefix {
        /// The input.
        name: String,
    },
    /// The digest is not 64 characters long.
    #[error("sha256 digest {digest:?} has {len} characters; expected 64 lowercase hex digits")]
    BadLength {
        /// The digest part of the input.
        digest: String,
        /// Its length.
        len: usize,
    },
    /// The digest contains something other than `[0-9a-f]`.
    #[error("sha256 digest {digest:?} contains {ch:?}; expected 64 lowercase hex digits")]
    BadChar {
        /// The digest part of the input.
        digest: String,
        /// The first offending character.
        ch: char,
    },
}

impl ImageObjectName {
    /// The object name for a SHA-256 digest given as 64 lowercase hex digits.
    pub fn from_sha256_hex(hex: &str) -> Result<Self, ObjectNameError> {
        check_hex(hex)?;
        Ok(ImageObjectName(format!("{IMAGE_OBJECT_PREFIX}{hex}")))
    }

    /// Parses an object name (`sha256-<hex>`).
    pub fn parse(name: &str) -> Result<Self, ObjectNameError> {
        let hex = name.strip_prefix(IMAGE_OBJECT_PREFIX).ok_or_else(|| {
            ObjectNameError::MissingPrefix {
                name: name.to_owned(),
            }
        })?;
        check_hex(hex)?;
        Ok(ImageObjectName(name.to_owned()))
    }

    /// The object name (`sha256-<hex>`).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits of the digest.
    pub fn sha256_hex(&self) -> &str {
        &self.0[IMAGE_OBJECT_PREFIX.len()..]
    }
}

fn check_hex(hex: &str) -> Result<(), ObjectNameError> {
    if let Some(ch) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        return Err(ObjectNameError::BadChar {
            digest: hex.to_owned(),
            ch,
        });
    }
    if hex.len() != HEX_LEN {
        return Err(ObjectNameError::BadLength {
            digest: hex.to_owned(),
            len: hex.len(),
        });
    }
    Ok(())
}

/// The lowercase hex SHA-256 of an object store digest as NATS records it
/// (`SHA-256=<base64url>`, padded or not); `None` for any other form.
pub fn object_digest_hex(digest: &str) -> Option<String> {
    use base64::Engine;
    let encoded = digest.strip_prefix("SHA-256=")?;
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(encoded)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded))
        .ok()?;
    Some(raw.iter().map(|b| format!("{b:02x}")).collect())
}

impl FromStr for ImageObjectName {
    type Err = ObjectNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ImageObjectName::parse(s)
    }
}

impl fmt::Display for ImageObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ImageObjectName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageObjectName({:?})", self.0)
    }
}

impl AsRef<str> for ImageObjectName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

string_serde!(ImageObjectName);

impl JsonSchema for ImageObjectName {
    fn schema_name() -> Cow<'static, str> {
        "ImageObjectName".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "Object name of an image blob: \"sha256-\" followed by the 64 lowercase hex digits of the SHA-256 of its bytes.",
            "pattern": "^sha256-[0-9a-f]{64}$",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_object_stores_digest_reads_as_hex() {
        // SHA-256 of "abc".
        let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(
            object_digest_hex("SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0=").as_deref(),
            Some(hex)
        );
        assert_eq!(
            object_digest_hex("SHA-256=ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0").as_deref(),
            Some(hex)
        );
        assert_eq!(object_digest_hex("MD5=abc"), None);
    }

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn builds_and_parses_back() {
        let name = ImageObjectName::from_sha256_hex(HEX).unwrap();
        assert_eq!(name.as_str(), format!("sha256-{HEX}"));
        assert_eq!(name.sha256_hex(), HEX);
        assert_eq!(ImageObjectName::parse(name.as_str()).unwrap(), name);
        let json = serde_json::to_string(&name).unwrap();
        assert_eq!(
            serde_json::from_str::<ImageObjectName>(&json).unwrap(),
            name
        );
    }

    #[test]
    fn rejects_each_rule() {
        assert!(matches!(
            ImageObjectName::parse(HEX),
            Err(ObjectNameError::MissingPrefix { .. })
        ));
        assert!(matches!(
            ImageObjectName::parse(&format!("sha512-{HEX}")),
            Err(ObjectNameError::MissingPrefix { .. })
        ));
        assert!(matches!(
            ImageObjectName::parse(&format!("sha256-{}", &HEX[1..])),
            Err(ObjectNameError::BadLength { len: 63, .. })
        ));
        assert!(matches!(
            ImageObjectName::from_sha256_hex(&format!("{HEX}0")),
            Err(ObjectNameError::BadLength { len: 65, .. })
        ));
        assert!(matches!(
            ImageObjectName::from_sha256_hex(""),
            Err(ObjectNameError::BadLength { len: 0, .. })
        ));
        assert!(matches!(
            ImageObjectName::from_sha256_hex(&HEX.to_uppercase()),
            Err(ObjectNameError::BadChar { ch: 'E', .. })
        ));
        assert!(matches!(
            ImageObjectName::parse(&format!("sha256-{}g", &HEX[1..])),
            Err(ObjectNameError::BadChar { ch: 'g', .. })
        ));
        assert!(serde_json::from_str::<ImageObjectName>("\"sha256-abc\"").is_err());
    }
}
