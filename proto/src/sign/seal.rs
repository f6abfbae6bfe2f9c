//! Sealed env values (DESIGN §6 "Secrets"): the CLI seals each value of a
//! deploy's env to the worker's curve key (NATS xkeys: X25519 +
//! XSalsa20-Poly1305, the `xkv1` format the Go nkeys library reads too),
//! published in the node's registry entry. Only that worker can open them,
//! in memory, when it runs the job; the jobs stream, the wire and anyone
//! who may read them see ciphertext. Errors name a key, never a value.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use nkeys::XKey;

use crate::job::Env;

/// Env values sealed to one worker's key: the sender's (one-off) public
/// xkey and, per name, the base64 `xkv1` box of the value.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SealedEnv {
    /// The sender's public xkey (`X…`), made for this job.
    pub sender: String,
    /// Name → base64 of the sealed value.
    pub values: BTreeMap<String, String>,
}

impl fmt::Debug for SealedEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedEnv")
            .field("sender", &self.sender)
            .field("names", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SealedEnv {
    /// Whether no value is sealed.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

/// Sealing or opening failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// A key is not a curve key.
    #[error("{what} is not a curve (xkey) key: {reason}")]
    BadKey {
        /// Which key.
        what: &'static str,
        /// What nkeys said.
        reason: String,
    },
    /// One value cannot be opened (sealed to another key, or altered).
    #[error(
        "the sealed value of {name} cannot be opened with this node's key (sealed for another node, or altered)"
    )]
    Open {
        /// The variable's name.
        name: String,
    },
    /// Sealing a value failed.
    #[error("cannot seal the value of {name}: {reason}")]
    Seal {
        /// The variable's name.
        name: String,
        /// What nkeys said.
        reason: String,
    },
}

/// Seal every value of `env` to the worker key `recipient` (`X…`).
pub fn seal_env(env: &Env, recipient: &str) -> Result<SealedEnv, SealError> {
    let recipient = XKey::from_public_key(recipient).map_err(|e| SealError::BadKey {
        what: "the node's sealing key",
        reason: e.to_string(),
    })?;
    let sender = XKey::new();
    let mut values = BTreeMap::new();
    for (name, value) in &env.0 {
        let sealed = sender
            .seal(value.as_bytes(), &recipient)
            .map_err(|e| SealError::Seal {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        values.insert(name.clone(), STANDARD.encode(sealed));
    }
    Ok(SealedEnv {
        sender: sender.public_key(),
        values,
    })
}

/// Open `sealed` with the worker's key.
pub fn open_env(sealed: &SealedEnv, key: &XKey) -> Result<Env, SealError> {
    let sender = XKey::from_public_key(&sealed.sender).map_err(|e| SealError::BadKey {
        what: "the job's sender key",
        reason: e.to_string(),
    })?;
    let mut env = Env::new();
    for (name, value) in &sealed.values {
        let open = || SealError::Open { name: name.clone() };
        let bytes = STANDARD.decode(value).map_err(|_| open())?;
        let plain = key.open(&bytes, &sender).map_err(|_| open())?;
        env.insert(name.clone(), String::from_utf8(plain).map_err(|_| open())?);
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_worker_key_opens_what_was_sealed_to_it() {
        let worker = XKey::new();
        let mut env = Env::new();
        env.insert("TOKEN", "s3cr3t value");
        env.insert("EMPTY", "");
        let sealed = seal_env(&env, &worker.public_key()).expect("sealed");
        let wire = serde_json::to_string(&sealed).unwrap();
        assert!(!wire.contains("s3cr3t"), "{wire}");
        assert!(!format!("{sealed:?}").contains("s3cr3t"));
        assert_eq!(open_env(&sealed, &worker).expect("opened"), env);

        let other = XKey::new();
        let err = open_env(&sealed, &other).unwrap_err();
        assert!(matches!(err, SealError::Open { .. }), "{err}");
        assert!(!err.to_string().contains("s3cr3t"));

        let mut altered = sealed.clone();
        altered
            .values
            .insert("TOKEN".into(), STANDARD.encode(b"junk"));
        assert!(open_env(&altered, &worker).is_err());
        assert!(seal_env(&env, "not-a-key").is_err());
    }
}
