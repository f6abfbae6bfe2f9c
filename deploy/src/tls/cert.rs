//! What a certificate file says, as far as HostKit cares: the names it
//! covers, its validity, and when to renew it without ARI (once two thirds
//! of its lifetime have passed, as certbot and Let's Encrypt advise).

use std::path::Path;
use std::time::{Duration, SystemTime};

use hostkit_proto::Domain;
use x509_parser::extensions::GeneralName;
use x509_parser::pem::Pem;

use super::TlsError;

/// The leaf certificate of a PEM chain (`fullchain.pem`), read.
#[derive(Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// DNS names of its subjectAltName extension, lower-case.
    pub names: Vec<String>,
    /// Start of validity.
    pub not_before: SystemTime,
    /// End of validity.
    pub not_after: SystemTime,
    /// The leaf's DER bytes (for the ARI certificate identifier).
    pub der: Vec<u8>,
}

impl std::fmt::Debug for CertInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertInfo")
            .field("names", &self.names)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

impl CertInfo {
    /// The first certificate of a PEM chain.
    pub fn from_pem(pem: &[u8]) -> Result<CertInfo, TlsError> {
        let bad = |message: String| TlsError::BadCertificate { message };
        let block = Pem::iter_from_buffer(pem)
            .next()
            .ok_or_else(|| bad("no PEM block".into()))?
            .map_err(|e| bad(format!("not PEM: {e}")))?;
        let cert = block
            .parse_x509()
            .map_err(|e| bad(format!("not an X.509 certificate: {e}")))?;
        let time = |t: x509_parser::time::ASN1Time| {
            let secs = u64::try_from(t.timestamp()).unwrap_or(0);
            SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
        };
        let names = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .map(|san| {
                san.value
                    .general_names
                    .iter()
                    .filter_map(|n| match n {
                        GeneralName::DNSName(name) => Some(name.to_ascii_lowercase()),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(CertInfo {
            names,
            not_before: time(cert.validity().not_before),
            not_after: time(cert.validity().not_after),
            der: block.contents.clone(),
        })
    }

    /// Read `path` (blocking); `Ok(None)` when it does not exist.
    pub fn read(path: &Path) -> Result<Option<CertInfo>, TlsError> {
        match std::fs::read(path) {
            Ok(bytes) => CertInfo::from_pem(&bytes).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(TlsError::Read {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Whether it names every one of `names` (wildcards are not used by
    /// HostKit and not matched).
    pub fn covers(&self, names: &[Domain]) -> bool {
        names
            .iter()
            .all(|n| self.names.iter().any(|have| have == n.as_str()))
    }

    /// When to renew without ARI: two thirds into its lifetime (day 60 of
    /// a 90-day certificate, day 4 of a 6-day one).
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or_default();
        self.not_before + lifetime * 2 / 3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A self-signed certificate for example.com and www.example.com,
    /// valid 2026-01-01 .. 2026-04-01 (90 days).
    fn pem() -> String {
        let mut params =
            rcgen::CertificateParams::new(vec!["example.com".into(), "www.example.com".into()])
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2026, 1, 1);
        params.not_after = rcgen::date_time_ymd(2026, 4, 1);
        let key = rcgen::KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().pem()
    }

    #[test]
    fn reads_names_validity_and_the_renewal_point() {
        let info = CertInfo::from_pem(pem().as_bytes()).unwrap();
        assert_eq!(info.names, ["example.com", "www.example.com"]);
        let day = |d: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(d * 86_400);
        // 2026-01-01 is day 20454 since the epoch.
        assert_eq!(info.not_before, day(20454));
        assert_eq!(info.not_after, day(20454 + 90));
        assert_eq!(info.renew_at(), day(20454 + 60));
        let names =
            |list: &[&str]| -> Vec<Domain> { list.iter().map(|n| n.parse().unwrap()).collect() };
        assert!(info.covers(&names(&["example.com"])));
        assert!(info.covers(&names(&["www.example.com", "example.com"])));
        assert!(!info.covers(&names(&["example.com", "shop.example.com"])));
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = CertInfo::from_pem(b"not a certificate").unwrap_err();
        assert!(matches!(err, TlsError::BadCertificate { .. }), "{err}");
    }
}
