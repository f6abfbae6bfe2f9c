//! The worker's curve key (NATS xkeys) for sealed env values: made at the
//! first start, kept in `<data_dir>/seal.xkey` (its seed, mode 0600), and
//! published in the node's registry entry so the CLI can seal to it.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use hostkit_proto::sign::seal::XKey;

/// The key file's name inside the data directory.
pub const SEAL_KEY_FILE: &str = "seal.xkey";

/// Why the key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[error("the sealing key {path}: {message}")]
pub struct SealKeyError {
    /// The key file.
    pub path: PathBuf,
    /// What went wrong (never the seed).
    pub message: String,
}

/// Load `<data_dir>/seal.xkey`, or make and store a new key. Blocking.
pub fn load_or_create(data_dir: &Path) -> Result<XKey, SealKeyError> {
    let path = data_dir.join(SEAL_KEY_FILE);
    let fail = |message: String| SealKeyError {
        path: path.clone(),
        message,
    };
    match std::fs::read_to_string(&path) {
        Ok(seed) => {
            XKey::from_seed(seed.trim()).map_err(|e| fail(format!("not a curve seed: {e}")))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = XKey::new();
            let seed = key.seed().map_err(|e| fail(e.to_string()))?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| fail(e.to_string()))?;
            file.write_all(seed.as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| fail(e.to_string()))?;
            Ok(key)
        }
        Err(e) => Err(fail(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_key_is_made_once_kept_private_and_loaded_again() {
        let dir = tempfile::tempdir().expect("dir");
        let made = load_or_create(dir.path()).expect("made");
        let mode = std::fs::metadata(dir.path().join(SEAL_KEY_FILE))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = load_or_create(dir.path()).expect("loaded");
        assert_eq!(made.public_key(), again.public_key());
        std::fs::write(dir.path().join(SEAL_KEY_FILE), "junk").expect("write");
        let err = load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a curve seed"), "{err}");
    }
}
