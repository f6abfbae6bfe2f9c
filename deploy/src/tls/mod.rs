//! Certificates over ACME (RFC 8555) for the domains nginx fronts: the
//! account kept on the node, HTTP-01 answered from a webroot nginx serves
//! at `/.well-known/acme-challenge/` for every domain, ARI renewal windows
//! (RFC 9773) where the server offers them, and reading certificate files
//! (HostKit's own and certbot's). Writing the certificate and switching
//! nginx to it is [`crate::proxy::Proxy::install_certificate`]; when to do
//! it is the worker's (`runtime::tls`).
//!
//! - `acme`: [`Acme`], the client (account, orders, ARI).
//! - `cert`: [`CertInfo`], what a certificate file says.
//! - `challenge`: the challenge files in the webroot.
//! - `error`: [`TlsError`] with code and hint.

mod acme;
mod cert;
mod challenge;
mod error;

use std::path::PathBuf;

pub use acme::{Acme, Issued, RenewalWindow};
pub use cert::CertInfo;
pub use error::TlsError;

/// Let's Encrypt's production directory: the default ACME server.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Where and how certificates are obtained.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeConfig {
    /// The ACME server's directory URL.
    pub directory_url: String,
    /// Contact for the account (expiry and policy mail), without `mailto:`.
    pub contact_email: Option<String>,
    /// The only root certificate (PEM) trusted for the ACME server's own
    /// HTTPS (a private or test ACME server); `None`: the system's roots.
    pub ca_root: Option<PathBuf>,
    /// Where the account's key and URL are kept (mode 0700; the file 0600).
    pub account_dir: PathBuf,
    /// nginx serves `<webroot>/.well-known/acme-challenge/<token>` for
    /// every domain on plain HTTP.
    pub webroot: PathBuf,
}
