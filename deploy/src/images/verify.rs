//! Image blobs are content-named (`sha256-<hex>` of their bytes), but the
//! store does not check that the bytes hash to the name: anyone who may
//! write the bucket could store other bytes under a name a domain's next
//! deploy loads. [`DigestCheck`] hashes a blob while it streams into the
//! engine and holds its last bytes back until the hash is known: on a
//! mismatch the engine never receives the end of the tarball (its load
//! fails, nothing is committed) and the reader reports the mismatch.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

/// Bytes held back from the reader until the digest is known: more than
/// a tar's end-of-archive blocks, so the engine cannot have seen the end.
const HOLD_BACK: usize = 64 * 1024;
/// Read size from the inner reader.
const READ_SIZE: usize = 256 * 1024;

/// What the hash said, once the stream ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Verdict {
    /// The stream has not ended (yet).
    #[default]
    Pending,
    /// The bytes hash to the expected digest.
    Verified,
    /// They hash to this digest (hex) instead.
    Mismatch(String),
}

/// A shared view of a [`DigestCheck`]'s verdict.
#[derive(Debug, Clone, Default)]
pub struct VerdictHandle(Arc<Mutex<Verdict>>);

impl VerdictHandle {
    /// The verdict so far.
    pub fn get(&self) -> Verdict {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn set(&self, verdict: Verdict) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = verdict;
    }
}

/// A reader that passes `inner` through while hashing it (see the module
/// documentation).
pub struct DigestCheck<R> {
    inner: R,
    hasher: Sha256,
    expected: String,
    held: Vec<u8>,
    start: usize,
    scratch: Vec<u8>,
    ended: bool,
    verdict: VerdictHandle,
}

impl<R> std::fmt::Debug for DigestCheck<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestCheck")
            .field("expected", &self.expected)
            .field("held", &(self.held.len() - self.start))
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<R> DigestCheck<R> {
    /// Check `inner` against the SHA-256 digest `expected_hex`; answers the
    /// reader and a handle on its verdict.
    pub fn new(inner: R, expected_hex: &str) -> (Self, VerdictHandle) {
        let verdict = VerdictHandle::default();
        let check = DigestCheck {
            inner,
            hasher: Sha256::new(),
            expected: expected_hex.to_ascii_lowercase(),
            held: Vec::with_capacity(HOLD_BACK + READ_SIZE),
            start: 0,
            scratch: vec![0; READ_SIZE],
            ended: false,
            verdict: verdict.clone(),
        };
        (check, verdict)
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for DigestCheck<R> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        loop {
            let verified = this.ended && this.verdict.get() == Verdict::Verified;
            let keep = if verified { 0 } else { HOLD_BACK };
            let ready = (this.held.len() - this.start).saturating_sub(keep);
            if ready > 0 {
                let n = ready.min(buf.remaining());
                buf.put_slice(&this.held[this.start..this.start + n]);
                this.start += n;
                if this.start >= READ_SIZE {
                    this.held.drain(..this.start);
                    this.start = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.ended {
                return match this.verdict.get() {
                    Verdict::Verified => Poll::Ready(Ok(())),
                    Verdict::Mismatch(actual) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "the blob's bytes hash to sha256-{actual}, not to its name sha256-{}",
                            this.expected
                        ),
                    ))),
                    Verdict::Pending => unreachable!("the verdict is set when the stream ends"),
                };
            }
            let mut scratch = ReadBuf::new(&mut this.scratch);
            match Pin::new(&mut this.inner).poll_read(cx, &mut scratch) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if scratch.filled().is_empty() => {
                    this.ended = true;
                    let actual = hex::encode(std::mem::take(&mut this.hasher).finalize());
                    this.verdict.set(if actual == this.expected {
                        Verdict::Verified
                    } else {
                        Verdict::Mismatch(actual)
                    });
                }
                Poll::Ready(Ok(())) => {
                    let filled = scratch.filled();
                    this.hasher.update(filled);
                    this.held.extend_from_slice(filled);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    fn digest(bytes: &[u8]) -> String {
        hex::encode(Sha256::digest(bytes))
    }

    #[tokio::test]
    async fn passes_bytes_that_hash_to_their_name() {
        let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let (mut check, verdict) = DigestCheck::new(&data[..], &digest(&data));
        let mut out = Vec::new();
        check.read_to_end(&mut out).await.expect("verified");
        assert_eq!(out, data);
        assert_eq!(verdict.get(), Verdict::Verified);
    }

    #[tokio::test]
    async fn withholds_the_end_of_bytes_that_do_not() {
        let data: Vec<u8> = vec![7; 300_000];
        let claimed = digest(b"something else");
        let (mut check, verdict) = DigestCheck::new(&data[..], &claimed);
        let mut out = vec![0; 1 << 20];
        let mut got = 0;
        let error = loop {
            match check.read(&mut out[got..]).await {
                Ok(0) => panic!("a mismatching stream must not end cleanly"),
                Ok(n) => got += n,
                Err(e) => break e,
            }
        };
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
        assert!(error.to_string().contains(&digest(&data)), "{error}");
        assert!(
            got <= data.len() - HOLD_BACK,
            "the last {HOLD_BACK} bytes are never delivered (got {got})"
        );
        assert_eq!(verdict.get(), Verdict::Mismatch(digest(&data)));
    }

    #[tokio::test]
    async fn a_short_blob_is_held_back_whole_until_verified() {
        let data = b"tiny".to_vec();
        let (mut check, verdict) = DigestCheck::new(&data[..], &digest(b"other"));
        let mut out = Vec::new();
        assert!(check.read_to_end(&mut out).await.is_err());
        assert!(out.is_empty());
        assert!(matches!(verdict.get(), Verdict::Mismatch(_)));
    }
}
