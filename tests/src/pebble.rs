//! [`TestPebble`]: Let's Encrypt's ACME test server (Debian's `pebble`)
//! for one test, with `pebble-challtestsrv` as its DNS: every name resolves
//! to 127.0.0.1 (A only) unless the test points it elsewhere
//! ([`TestPebble::point_a`]). HTTP-01 is validated against the port the test
//! gives (its nginx's), without pebble's artificial sleeps. Pebble's own
//! HTTPS listener has a certificate from a CA made for this test
//! ([`TestPebble::ca_root_path`]); what pebble issues chains to the root its
//! management API serves ([`TestPebble::issuing_root_pem`]). Trust in
//! either stays inside the test. Both processes stop on drop.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use tempfile::TempDir;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::process::{ServerProcess, find_program, log_tail};
use crate::util::free_port;

/// How long pebble and its DNS may take to listen.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

const INSTALL_HINT: &str = "the TLS end-to-end tests need pebble: `apt-get install pebble` \
     (installs /usr/bin/pebble and /usr/bin/pebble-challtestsrv), or set HOSTKIT_PEBBLE \
     and HOSTKIT_PEBBLE_CHALLTESTSRV";

/// A pebble and its mock DNS, owned by one test.
#[derive(Debug)]
pub struct TestPebble {
    dir: TempDir,
    acme_port: u16,
    management_port: u16,
    dns_management_port: u16,
    // Dropped (stopped) after the fields above are no longer needed.
    _pebble: ServerProcess,
    _dns: ServerProcess,
}

impl TestPebble {
    /// Start pebble validating HTTP-01 on `http_port` of 127.0.0.1 (the
    /// test nginx's `listen_port`); waits (bounded) until both listen.
    /// Panics with an install hint when pebble is missing.
    pub async fn start(http_port: u16) -> TestPebble {
        let (pebble_bin, dns_bin) = binaries();
        let dir = tempfile::Builder::new()
            .prefix("hostkit-pebble-")
            .tempdir()
            .expect("a temporary directory for pebble");
        let (acme_port, management_port, dns_port, dns_management_port, tls_port) = (
            free_port(),
            free_port(),
            free_port(),
            free_port(),
            free_port(),
        );
        write_listener_certificate(&dir);
        let config = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{acme_port}"),
            "managementListenAddress": format!("127.0.0.1:{management_port}"),
            "certificate": dir.path().join("listener.pem"),
            "privateKey": dir.path().join("listener.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        let config_path = dir.path().join("pebble.json");
        std::fs::write(&config_path, config.to_string()).expect("write pebble.json");

        let mut dns = Command::new(dns_bin);
        dns.args(["-dns01", &format!("127.0.0.1:{dns_port}")])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .args(["-management", &format!("127.0.0.1:{dns_management_port}")])
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""]);
        let dns_log = dir.path().join("challtestsrv.log");
        let dns = ServerProcess::spawn("pebble-challtestsrv", dns, &dns_log)
            .unwrap_or_else(|e| panic!("cannot run pebble-challtestsrv: {e}; {INSTALL_HINT}"));

        let mut pebble = Command::new(pebble_bin);
        pebble
            .arg("-config")
            .arg(&config_path)
            .args(["-dnsserver", &format!("127.0.0.1:{dns_port}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0");
        let pebble_log = dir.path().join("pebble.log");
        let pebble = ServerProcess::spawn("pebble", pebble, &pebble_log)
            .unwrap_or_else(|e| panic!("cannot run pebble: {e}; {INSTALL_HINT}"));

        let test = TestPebble {
            dir,
            acme_port,
            management_port,
            dns_management_port,
            _pebble: pebble,
            _dns: dns,
        };
        for (port, what) in [
            (acme_port, "pebble's ACME port"),
            (management_port, "pebble's management port"),
            (dns_management_port, "pebble-challtestsrv's management port"),
        ] {
            let deadline = tokio::time::Instant::now() + READY_TIMEOUT;
            while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                if tokio::time::Instant::now() >= deadline {
                    panic!(
                        "{what} ({port}) did not open within {READY_TIMEOUT:?}; logs:\n{}",
                        test.logs()
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        test
    }

    /// The ACME directory URL.
    pub fn directory_url(&self) -> String {
        format!("https://127.0.0.1:{}/dir", self.acme_port)
    }

    /// The root (PEM file) of pebble's own HTTPS listener: what a client of
    /// the ACME API trusts (`tls.ca_root`).
    pub fn ca_root_path(&self) -> PathBuf {
        self.dir.path().join("listener-ca.pem")
    }

    /// The root pebble's certificates chain to (regenerated on every start),
    /// from its management API.
    pub async fn issuing_root_pem(&self) -> Vec<u8> {
        let ca = std::fs::read(self.ca_root_path()).expect("the listener's CA");
        let response = crate::https::https_request(
            ("127.0.0.1", self.management_port),
            "localhost",
            "/roots/0",
            &ca,
        )
        .await
        .unwrap_or_else(|e| panic!("pebble's root: {e:#}; logs:\n{}", self.logs()));
        assert_eq!(response.status, 200, "pebble's root: {response:?}");
        response.body.into_bytes()
    }

    /// Make `host` resolve (A) to `ip` for pebble from now on.
    pub async fn point_a(&self, host: &str, ip: &str) {
        let body = serde_json::json!({"host": host, "addresses": [ip]}).to_string();
        let request = format!(
            "POST /add-a HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(("127.0.0.1", self.dns_management_port))
            .await
            .expect("connect to pebble-challtestsrv");
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send to pebble-challtestsrv");
        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
            .await
            .expect("pebble-challtestsrv answers in time")
            .expect("read pebble-challtestsrv's answer");
        assert!(answer.starts_with("HTTP/1.1 200"), "add-a: {answer}");
    }

    /// The last lines of both logs.
    pub fn logs(&self) -> String {
        format!(
            "--- pebble ---\n{}\n--- pebble-challtestsrv ---\n{}",
            log_tail(&self.dir.path().join("pebble.log"), 8192),
            log_tail(&self.dir.path().join("challtestsrv.log"), 4096)
        )
    }
}

/// A CA for this test and a certificate it signs for `localhost` and
/// `127.0.0.1`: pebble's HTTPS listener.
fn write_listener_certificate(dir: &TempDir) {
    let ca_key = rcgen::KeyPair::generate().expect("a CA key");
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(
        rcgen::DnType::CommonName,
        "hostkit-tests pebble listener CA",
    );
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).expect("the CA");
    let key = rcgen::KeyPair::generate().expect("a listener key");
    let params = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("listener parameters");
    let cert = params
        .signed_by(&key, &*ca)
        .expect("the listener certificate");
    std::fs::write(dir.path().join("listener-ca.pem"), ca.pem()).expect("write the CA");
    std::fs::write(dir.path().join("listener.pem"), cert.pem()).expect("write the certificate");
    std::fs::write(dir.path().join("listener.key"), key.serialize_pem()).expect("write the key");
}

/// `pebble` and `pebble-challtestsrv`.
fn binaries() -> &'static (PathBuf, PathBuf) {
    static BINARIES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let find = |var: &str, name: &str, fallback: &str| {
            find_program(var, name, &[fallback]).unwrap_or_else(|e| panic!("{e}: {INSTALL_HINT}"))
        };
        (
            find("HOSTKIT_PEBBLE", "pebble", "/usr/bin/pebble"),
            find(
                "HOSTKIT_PEBBLE_CHALLTESTSRV",
                "pebble-challtestsrv",
                "/usr/bin/pebble-challtestsrv",
            ),
        )
    })
}
