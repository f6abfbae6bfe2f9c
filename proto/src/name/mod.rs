//! Validated names: a [`Domain`] (RFC 1123 host name), a [`NodeId`] (one per
//! worker), an [`ImageObjectName`] (content address of an image blob), and
//! [`sanitize_token`] for any other name that must become one NATS subject
//! token.
//!
//! The newtypes can only hold valid, canonical values: they validate in
//! [`FromStr`](std::str::FromStr) and when deserialized, and serialize as plain
//! JSON strings.

mod domain;
mod error;
mod node;
mod object;
mod pattern;

pub use domain::{Domain, MAX_DOMAIN_LEN, MAX_LABEL_LEN};
pub use error::{NameError, NameKind};
pub use node::{MAX_NODE_ID_LEN, NodeId};
pub use object::{IMAGE_OBJECT_PREFIX, ImageObjectName, ObjectNameError, object_digest_hex};
pub use pattern::DomainPattern;

/// Maps any name (e.g. a compose service name, which may contain `.`) to
/// exactly one NATS subject token.
///
/// ASCII letters, digits, `-` and `_` are kept; every other character
/// (including `.`, `*`, `>`, whitespace and non-ASCII) becomes `_`. The
/// result is never empty (an empty name becomes `_`). The mapping is not
/// injective: payloads always carry the exact name, the token only routes.
///
/// ```
/// assert_eq!(hostkit_proto::sanitize_token("api.v2"), "api_v2");
/// assert_eq!(hostkit_proto::sanitize_token(""), "_");
/// ```
pub fn sanitize_token(name: &str) -> String {
    let token: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if token.is_empty() {
        "_".to_owned()
    } else {
        token
    }
}

/// Whether `name` can name a JetStream bucket (object store or KV):
/// ASCII letters, digits, `_` and `-`, not empty.
///
/// ```
/// assert!(hostkit_proto::name::is_bucket_name("hostkit_images_acme"));
/// assert!(!hostkit_proto::name::is_bucket_name("a.b"));
/// ```
pub fn is_bucket_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Implements `Serialize` (as its `Display` string) and `Deserialize` (a
/// string parsed with `FromStr`, so invalid values are rejected) for a
/// newtype.
macro_rules! string_serde {
    ($ty:ty) => {
        impl ::serde::Serialize for $ty {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $ty {
            fn deserialize<D: ::serde::Deserializer<'de>>(
                deserializer: D,
            ) -> Result<Self, D::Error> {
                let text = <String as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse()
                    .map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use string_serde;

#[cfg(test)]
mod tests {
    use super::sanitize_token;

    #[test]
    fn sanitize_token_yields_one_token() {
        assert_eq!(sanitize_token("web"), "web");
        assert_eq!(sanitize_token("api.v2"), "api_v2");
        assert_eq!(sanitize_token("a*b>c d\te"), "a_b_c_d_e");
        assert_eq!(sanitize_token("Ünï"), "_n_");
        assert_eq!(sanitize_token("my_svc-1"), "my_svc-1");
        assert_eq!(sanitize_token(""), "_");
        for name in ["a.b", "*", ">", " ", "x\ny", "ä"] {
            let token = sanitize_token(name);
            assert!(!token.is_empty());
            assert!(
                !token.contains(['.', '*', '>']) && !token.contains(char::is_whitespace),
                "{token:?}"
            );
        }
    }
}
