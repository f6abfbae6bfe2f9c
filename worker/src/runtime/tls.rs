//! The certificate keeper: for every domain nginx serves, a certificate
//! over ACME for the domain and its redirect domains, installed by the
//! proxy (the domain's file re-rendered with TLS and the HTTP→HTTPS
//! redirect); renewed at the server's ARI window, else once two thirds of
//! its lifetime have passed. A certbot certificate that covers the names
//! is served until it is due, then HostKit's own replaces it. Outcomes are
//! `certificate_issued` / `certificate_failed` events on the domain's TLS
//! subject; a failure changes nothing nginx serves and is retried with a
//! growing delay. Woken after every job; stops with the worker.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hostkit_deploy::proxy::{Proxy, ProxyError, certs};
use hostkit_deploy::tls::{Acme, CertInfo, TlsError};
use hostkit_proto::{Domain, ErrorCode, EventKind};

use super::Worker;
use crate::shutdown::Shutdown;
use crate::store::DomainRecord;

/// The longest the keeper sleeps between two looks at every domain.
const MAX_SLEEP: Duration = Duration::from_secs(3600);
/// A fresh certificate's ARI window is asked for again after this long.
const ARI_RECHECK: Duration = Duration::from_secs(24 * 3600);
/// First retry after a failure; doubled per failure up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(300);
/// Longest delay between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(24 * 3600);
/// Least delay after a rate limit.
const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(3600);

/// What the keeper remembers of a domain between looks.
#[derive(Debug, Default)]
struct Track {
    /// The names the last look was for (a change means: look now).
    names: Vec<Domain>,
    /// When to look again.
    next: Option<SystemTime>,
    /// Failed attempts in a row.
    failures: u32,
}

/// Keep certificates until `shutdown`.
pub async fn run(worker: Arc<Worker>, acme: Acme, mut shutdown: Shutdown) {
    let Some(proxy) = worker.engine.proxy().cloned() else {
        tracing::warn!("tls is enabled but nginx is not managed here: no certificates");
        return;
    };
    tracing::info!(directory = %acme.config().directory_url, "certificate keeper started");
    let mut keeper = Keeper {
        worker,
        acme,
        proxy,
        tracks: HashMap::new(),
    };
    loop {
        let next = tokio::select! {
            next = keeper.pass() => next,
            _ = shutdown.recv() => return,
        };
        let sleep = next
            .duration_since(SystemTime::now())
            .unwrap_or_default()
            .min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = keeper.worker.tls_wake.notified() => {}
            _ = shutdown.recv() => return,
        }
    }
}

struct Keeper {
    worker: Arc<Worker>,
    acme: Acme,
    proxy: Proxy,
    tracks: HashMap<Domain, Track>,
}

impl Keeper {
    /// Look at every domain that is due; answers when to look again.
    async fn pass(&mut self) -> SystemTime {
        let now = SystemTime::now();
        let records = match self.worker.store.domains().await {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(%error, "certificate keeper: store unreadable");
                return now + FIRST_BACKOFF;
            }
        };
        self.tracks
            .retain(|domain, _| records.iter().any(|r| r.domain == *domain));
        let mut earliest = now + MAX_SLEEP;
        for record in records.iter().filter(|r| r.current_version.is_some()) {
            if !self.proxy.serves(&record.domain).await {
                continue;
            }
            let names: Vec<Domain> = std::iter::once(record.domain.clone())
                .chain(record.redirects.iter().cloned())
                .collect();
            let track = self.tracks.entry(record.domain.clone()).or_default();
            if track.names != names {
                *track = Track {
                    names: names.clone(),
                    ..Track::default()
                };
            }
            let next = match track.next {
                Some(next) if next > now => next,
                _ => {
                    let next = self.look(record, &names).await;
                    if let Some(track) = self.tracks.get_mut(&record.domain) {
                        track.next = Some(next);
                    }
                    next
                }
            };
            earliest = earliest.min(next);
        }
        earliest
    }

    /// Decide for one domain, obtaining a certificate when one is due;
    /// answers when to look again.
    async fn look(&mut self, record: &DomainRecord, names: &[Domain]) -> SystemTime {
        let now = SystemTime::now();
        let domain = &record.domain;
        let (own, certbot) = self.certificates(domain).await;
        if let Some(own) = own.as_ref().filter(|c| c.covers(names)) {
            let (renew_at, recheck) = self.renewal_point(domain, own).await;
            if renew_at > now {
                return renew_at.min(recheck);
            }
            tracing::info!(%domain, "certificate due for renewal");
        } else if own.is_none()
            && let Some(certbot) = certbot.as_ref().filter(|c| c.covers(names))
            && certbot.renew_at() > now
        {
            tracing::debug!(%domain, "certbot's certificate is served until it is due");
            return certbot.renew_at();
        }
        self.obtain(domain, names, own.is_some()).await
    }

    /// HostKit's and certbot's certificate of `domain`, read (an unreadable
    /// one counts as absent: it is replaced).
    async fn certificates(&self, domain: &Domain) -> (Option<CertInfo>, Option<CertInfo>) {
        let (config, domain) = (self.proxy.config().clone(), domain.clone());
        tokio::task::spawn_blocking(move || {
            let read = |files: Option<certs::CertFiles>| {
                let files = files.filter(certs::CertFiles::exist)?;
                CertInfo::read(&files.cert).ok().flatten()
            };
            (
                read(certs::own(&config, &domain)),
                read(certs::certbot(&config, &domain)),
            )
        })
        .await
        .unwrap_or_default()
    }

    /// When to renew `cert`, and when to ask the server again: its ARI
    /// window when it offers one, else two thirds into the lifetime.
    async fn renewal_point(&self, domain: &Domain, cert: &CertInfo) -> (SystemTime, SystemTime) {
        let now = SystemTime::now();
        match self.acme.renewal_window(cert).await {
            Ok(Some(window)) => {
                let recheck = now
                    + window
                        .check_again
                        .clamp(Duration::from_secs(60), ARI_RECHECK);
                (window.start, recheck)
            }
            Ok(None) => (cert.renew_at(), now + ARI_RECHECK),
            Err(error) => {
                tracing::warn!(%domain, %error, "no ARI renewal window; renewing by lifetime");
                (cert.renew_at(), now + ARI_RECHECK)
            }
        }
    }

    /// Obtain and install a certificate for `names`; report either way.
    async fn obtain(&mut self, domain: &Domain, names: &[Domain], renewal: bool) -> SystemTime {
        tracing::info!(%domain, ?names, "obtaining a certificate");
        // The file may predate the ACME location (TLS just turned on).
        let refreshed = self
            .proxy
            .refresh(domain)
            .await
            .map_err(|e| proxy_failure(&e));
        let obtained = match refreshed {
            Ok(_) => self.acme.obtain(names).await.map_err(|e| failure(&e)),
            Err(failed) => Err(failed),
        };
        let result = match obtained {
            Ok(issued) => self
                .proxy
                .install_certificate(domain, &issued.chain_pem, &issued.key_pem)
                .await
                .map(|_| issued)
                .map_err(|e| proxy_failure(&e)),
            Err(failed) => Err(failed),
        };
        let now = SystemTime::now();
        let track = self.tracks.entry(domain.clone()).or_default();
        let (kind, next) = match result {
            Ok(issued) => {
                track.failures = 0;
                tracing::info!(%domain, not_after = ?issued.info.not_after, "certificate installed");
                let kind = EventKind::CertificateIssued {
                    names: names.to_vec(),
                    not_after: issued.info.not_after.into(),
                    renewal,
                };
                (kind, issued.info.renew_at().min(now + ARI_RECHECK))
            }
            Err((code, message, hint, rate_limited)) => {
                track.failures += 1;
                let mut delay = backoff(track.failures);
                if rate_limited {
                    delay = delay.max(RATE_LIMIT_BACKOFF);
                }
                tracing::warn!(%domain, %code, %message, retry_in = ?delay, "no certificate");
                let kind = EventKind::CertificateFailed {
                    code,
                    message,
                    hint: Some(hint),
                    retry_in_secs: delay.as_secs(),
                };
                (kind, now + delay)
            }
        };
        if let Err(error) = self.worker.events.emit(Some(domain), None, kind).await {
            tracing::warn!(%error, "certificate event not recorded");
        }
        next
    }
}

/// A [`TlsError`] as an event's code, message, hint, and whether it was a
/// rate limit.
fn failure(error: &TlsError) -> (ErrorCode, String, String, bool) {
    (
        error.code(),
        error.to_string(),
        error.hint(),
        matches!(error, TlsError::RateLimited { .. }),
    )
}

/// A [`ProxyError`] (nginx rejected the certificate's file) likewise.
fn proxy_failure(error: &ProxyError) -> (ErrorCode, String, String, bool) {
    let code = error.code();
    (code, error.to_string(), error.hint().to_owned(), false)
}

/// Delay after `failures` failed attempts in a row: 5 min, doubling, at
/// most a day.
fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * factor).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_day() {
        assert_eq!(backoff(1), Duration::from_secs(300));
        assert_eq!(backoff(2), Duration::from_secs(600));
        assert_eq!(backoff(5), Duration::from_secs(4800));
        assert_eq!(backoff(12), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
