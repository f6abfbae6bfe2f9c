//! Which certificate nginx serves for a domain: HostKit's own
//! (`<own_certs_dir>/<domain>/`, obtained over ACME) when it exists, else
//! certbot's (`<certs_dir>/<domain>/` or a `<domain>-NNNN` lineage; of
//! several, the one that expires last), else none (plain HTTP only).
//! Blocking (stats and small reads): call from `spawn_blocking`.

use std::path::{Path, PathBuf};

use hostkit_proto::Domain;

use super::ProxyConfig;
use crate::tls::CertInfo;

/// A certificate chain and its key, as files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFiles {
    /// `fullchain.pem`.
    pub cert: PathBuf,
    /// `privkey.pem`.
    pub key: PathBuf,
}

impl CertFiles {
    /// `<dir>/fullchain.pem` and `<dir>/privkey.pem`.
    pub fn in_dir(dir: &Path) -> CertFiles {
        CertFiles {
            cert: dir.join("fullchain.pem"),
            key: dir.join("privkey.pem"),
        }
    }

    /// Both files are there.
    pub fn exist(&self) -> bool {
        self.cert.is_file() && self.key.is_file()
    }
}

/// HostKit's own files for `domain` (whether they exist or not).
pub fn own(config: &ProxyConfig, domain: &Domain) -> Option<CertFiles> {
    let dir = config.own_certs_dir.as_ref()?;
    Some(CertFiles::in_dir(&dir.join(domain.as_str())))
}

/// certbot's lineage for `domain`, when one is complete.
pub fn certbot(config: &ProxyConfig, domain: &Domain) -> Option<CertFiles> {
    let live = config.certs_dir.as_ref()?;
    let mut found: Vec<CertFiles> = Vec::new();
    let exact = CertFiles::in_dir(&live.join(domain.as_str()));
    if exact.exist() {
        found.push(exact);
    }
    let prefix = format!("{domain}-");
    if let Ok(entries) = std::fs::read_dir(live) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(suffix) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                continue;
            };
            if !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit()) {
                let files = CertFiles::in_dir(&entry.path());
                if files.exist() {
                    found.push(files);
                }
            }
        }
    }
    if found.len() > 1 {
        // Latest expiry wins; an unreadable one loses.
        found.sort_by_key(|f| {
            CertInfo::read(&f.cert)
                .ok()
                .flatten()
                .map(|info| info.not_after)
        });
    }
    found.pop()
}

/// The files nginx should serve for `domain`: HostKit's own, else certbot's.
pub fn choose(config: &ProxyConfig, domain: &Domain) -> Option<CertFiles> {
    own(config, domain)
        .filter(CertFiles::exist)
        .or_else(|| certbot(config, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_cert(dir: &Path, days: i32) {
        std::fs::create_dir_all(dir).unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["example.com".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2026, 1, 1) + time_days(days);
        let key = rcgen::KeyPair::generate().unwrap();
        std::fs::write(
            dir.join("fullchain.pem"),
            params.self_signed(&key).unwrap().pem(),
        )
        .unwrap();
        std::fs::write(dir.join("privkey.pem"), key.serialize_pem()).unwrap();
    }

    fn time_days(days: i32) -> ::time::Duration {
        ::time::Duration::days(i64::from(days))
    }

    #[test]
    fn own_certificates_win_over_certbot_and_the_latest_certbot_lineage_wins() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("live");
        let own_dir = dir.path().join("own");
        let config = ProxyConfig {
            certs_dir: Some(live.clone()),
            own_certs_dir: Some(own_dir.clone()),
            ..ProxyConfig::default()
        };
        let domain: Domain = "example.com".parse().unwrap();
        assert_eq!(choose(&config, &domain), None);

        write_cert(&live.join("example.com"), 90);
        write_cert(&live.join("example.com-0001"), 120);
        write_cert(&live.join("example.com-0002"), 30);
        write_cert(&live.join("example.com-backup"), 365);
        std::fs::create_dir_all(live.join("example.com-0003")).unwrap(); // incomplete
        assert_eq!(
            choose(&config, &domain),
            Some(CertFiles::in_dir(&live.join("example.com-0001")))
        );

        write_cert(&own_dir.join("example.com"), 90);
        assert_eq!(
            choose(&config, &domain),
            Some(CertFiles::in_dir(&own_dir.join("example.com")))
        );
    }
}
