//! A minimal HTTPS `GET` for tests: TLS (SNI = the host) against the roots
//! the test passes — never the system's — then the same HTTP/1.1 exchange
//! as [`http_request`](crate::util::http_request).

use std::sync::Arc;

use anyhow::Context as _;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, RootCertStore, pki_types::ServerName};

use crate::util::{HTTP_TIMEOUT, HttpResponse, exchange};

/// `GET path` over TLS to `addr`, as `host` (SNI and `Host:`), trusting
/// only the certificates in `roots_pem`.
pub async fn https_request(
    addr: impl ToSocketAddrs,
    host: &str,
    path: &str,
    roots_pem: &[u8],
) -> anyhow::Result<HttpResponse> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem) {
        roots
            .add(cert.context("the roots are not PEM certificates")?)
            .context("a root is not usable")?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).context("server name")?;
    tokio::time::timeout(HTTP_TIMEOUT, async {
        let tcp = TcpStream::connect(addr).await.context("connect")?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        exchange(tls, host, path).await
    })
    .await
    .with_context(|| format!("GET https://{host}{path} took longer than {HTTP_TIMEOUT:?}"))?
}
