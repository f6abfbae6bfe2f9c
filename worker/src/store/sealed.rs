//! A recorded version's normalized project holds the values a stack was
//! given (interpolated `environment:`, inline secrets): with a sealing key
//! it is stored sealed to the worker's own curve key (`xkv1:` + base64),
//! and opened in memory when a job re-applies or shows the version. Rows
//! written before (plain JSON) still read.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hostkit_proto::sign::seal::XKey;

/// Marks a sealed value.
const PREFIX: &str = "xkv1:";

/// `json` as stored: sealed to `key` when there is one.
pub fn seal(json: String, key: Option<&XKey>) -> Result<String, serde_json::Error> {
    let Some(key) = key else {
        return Ok(json);
    };
    let sealed = key.seal(json.as_bytes(), key).map_err(|e| {
        <serde_json::Error as serde::ser::Error>::custom(format!("cannot seal: {e}"))
    })?;
    Ok(format!("{PREFIX}{}", STANDARD.encode(sealed)))
}

/// The JSON behind a stored value.
pub fn open(stored: &str, key: Option<&XKey>) -> Result<String, serde_json::Error> {
    let Some(body) = stored.strip_prefix(PREFIX) else {
        return Ok(stored.to_owned());
    };
    let fail = |why: &str| <serde_json::Error as serde::de::Error>::custom(why.to_owned());
    let key =
        key.ok_or_else(|| fail("the version is sealed and this worker has no sealing key"))?;
    let bytes = STANDARD
        .decode(body)
        .map_err(|_| fail("the sealed version is not base64"))?;
    let plain = key
        .open(&bytes, key)
        .map_err(|_| fail("the sealed version does not open with this worker's key"))?;
    String::from_utf8(plain).map_err(|_| fail("the sealed version is not text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_with_the_key_and_opened_with_it_only() {
        let key = XKey::new();
        let json = r#"{"env":"s3cr3t"}"#.to_owned();
        let stored = seal(json.clone(), Some(&key)).expect("sealed");
        assert!(
            stored.starts_with(PREFIX) && !stored.contains("s3cr3t"),
            "{stored}"
        );
        assert_eq!(open(&stored, Some(&key)).expect("opened"), json);
        assert!(open(&stored, Some(&XKey::new())).is_err());
        assert!(open(&stored, None).is_err());
        assert_eq!(seal(json.clone(), None).unwrap(), json, "no key: plain");
        assert_eq!(
            open(&json, Some(&key)).unwrap(),
            json,
            "old plain rows read"
        );
    }
}
