//! HTTP-01 answers as files: `<webroot>/.well-known/acme-challenge/<token>`
//! holding the key authorization, world-readable (nginx's workers serve
//! them), removed when the order is over.

use std::path::{Path, PathBuf};

use super::TlsError;

/// The challenge files of one order; removed by [`ChallengeFiles::clear`]
/// (or, as a fallback, on drop).
#[derive(Debug)]
pub(super) struct ChallengeFiles {
    dir: PathBuf,
    written: Vec<PathBuf>,
}

impl ChallengeFiles {
    pub(super) fn new(webroot: &Path) -> Self {
        ChallengeFiles {
            dir: webroot.join(".well-known/acme-challenge"),
            written: Vec::new(),
        }
    }

    /// Write the answer to `token`. Tokens are base64url (RFC 8555 §8.3);
    /// anything else (a path) from a misbehaving server is refused.
    pub(super) async fn put(
        &mut self,
        token: &str,
        key_authorization: &str,
    ) -> Result<(), TlsError> {
        let valid = !token.is_empty()
            && token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            return Err(TlsError::Refused {
                detail: format!("the challenge token {token:?} is not base64url"),
            });
        }
        let path = self.dir.join(token);
        let (dir, file, body) = (self.dir.clone(), path.clone(), key_authorization.to_owned());
        tokio::task::spawn_blocking(move || {
            crate::atomic_file::create_dir_blocking(&dir, 0o755)?;
            if let Some(wk) = dir.parent() {
                crate::atomic_file::create_dir_blocking(wk, 0o755)?;
                if let Some(root) = wk.parent() {
                    crate::atomic_file::create_dir_blocking(root, 0o755)?;
                }
            }
            crate::atomic_file::write_blocking(&file, body.as_bytes(), 0o644)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|written| written)
        .map_err(|source| TlsError::Write {
            path: path.clone(),
            source,
        })?;
        self.written.push(path);
        Ok(())
    }

    /// Remove every file written.
    pub(super) async fn clear(&mut self) {
        let files = std::mem::take(&mut self.written);
        let _ = tokio::task::spawn_blocking(move || {
            for file in files {
                let _ = std::fs::remove_file(file);
            }
        })
        .await;
    }
}

impl Drop for ChallengeFiles {
    fn drop(&mut self) {
        // Only when the order was abandoned (an error, a cancelled task):
        // a few unlinks.
        for file in &self.written {
            let _ = std::fs::remove_file(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_world_readable_and_go_away() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let mut files = ChallengeFiles::new(root.path());
        files.put("tok_en-1", "tok_en-1.thumb").await.unwrap();
        let path = root.path().join(".well-known/acme-challenge/tok_en-1");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "tok_en-1.thumb");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
        let err = files.put("../../etc/x", "y").await.unwrap_err();
        assert!(matches!(err, TlsError::Refused { .. }), "{err}");
        files.clear().await;
        assert!(!path.exists());
    }
}
