//! The shipped nats-server configuration (`dist/nats-server.conf`) run as
//! is: [`ShippedNats`] defines test passwords for the variables the file
//! reads, makes its TLS files with the shipped `scripts/nats-tls.sh`, and
//! leaves only `store_dir` to the harness (nats-server refuses it next to
//! `-sd`). Clients connect over TLS, trusting the script's CA.

use std::path::{Path, PathBuf};

use tempfile::TempDir;

use crate::TestNats;

/// The configuration, byte for byte what ships.
pub const SHIPPED: &str = include_str!("../../dist/nats-server.conf");

/// Where the shipped file expects the TLS files of `scripts/nats-tls.sh`.
const SHIPPED_TLS_DIR: &str = "/etc/nats/tls/";

/// Test passwords for the users of the shipped file: (user, variable,
/// password).
pub const USERS: &[(&str, &str, &str)] = &[
    ("ci", "HOSTKIT_CI_PASSWORD", "ci-test-password"),
    (
        "ci-example-com",
        "HOSTKIT_CI_EXAMPLE_COM_PASSWORD",
        "tenant-test-password",
    ),
    (
        "worker-vps-1",
        "HOSTKIT_WORKER_VPS_1_PASSWORD",
        "vps-1-test-password",
    ),
    (
        "worker-vps-2",
        "HOSTKIT_WORKER_VPS_2_PASSWORD",
        "vps-2-test-password",
    ),
    (
        "dashboard",
        "HOSTKIT_DASHBOARD_PASSWORD",
        "dash-test-password",
    ),
    ("admin", "HOSTKIT_ADMIN_PASSWORD", "admin-test-password"),
];

/// The test password of a user of the shipped file.
pub fn password(user: &str) -> &'static str {
    USERS
        .iter()
        .find(|(u, _, _)| *u == user)
        .map(|(_, _, p)| *p)
        .unwrap_or_else(|| panic!("no test password for {user}"))
}

/// A nats-server running the shipped configuration, with its TLS files.
#[derive(Debug)]
pub struct ShippedNats {
    /// The server.
    pub nats: TestNats,
    tls: TempDir,
}

impl ShippedNats {
    /// Makes the TLS files with `scripts/nats-tls.sh` and starts the server.
    pub async fn start() -> ShippedNats {
        let tls = tempfile::Builder::new()
            .prefix("hostkit-nats-tls-")
            .tempdir()
            .expect("a directory for the TLS files");
        make_tls_files(tls.path());
        let nats = TestNats::with_config(&server_config(tls.path())).await;
        ShippedNats { nats, tls }
    }

    /// The CA certificate clients trust (`ca.pem` of the script).
    pub fn ca(&self) -> PathBuf {
        self.tls.path().join("ca.pem")
    }

    /// Client options for `user` of the shipped file: its password and
    /// TLS trusting only the test CA.
    pub fn options(&self, user: &str) -> async_nats::ConnectOptions {
        async_nats::ConnectOptions::with_user_and_password(
            user.to_owned(),
            password(user).to_owned(),
        )
        .add_root_certificates(self.ca())
        .require_tls(true)
    }
}

/// Runs the shipped `scripts/nats-tls.sh` into `dir`.
fn make_tls_files(dir: &Path) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/nats-tls.sh");
    let output = std::process::Command::new("bash")
        .arg(&script)
        .arg(dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{} failed (it needs openssl):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The shipped file with test passwords, its TLS files in `tls_dir`, less
/// its `store_dir`.
fn server_config(tls_dir: &Path) -> String {
    let mut text = String::from("# test passwords\n");
    for (_, variable, password) in USERS {
        text.push_str(&format!("{variable}: \"{password}\"\n"));
    }
    let (store_dir, rest): (Vec<&str>, Vec<&str>) = SHIPPED
        .lines()
        .partition(|line| line.trim_start().starts_with("store_dir:"));
    assert_eq!(store_dir.len(), 1, "the shipped file sets store_dir once");
    assert!(
        SHIPPED.contains("sync_interval: always"),
        "the shipped file fsyncs every write"
    );
    let body = rest.join("\n");
    assert!(
        body.contains(&format!("cert_file: \"{SHIPPED_TLS_DIR}server-cert.pem\"")),
        "the shipped file uses the TLS files of scripts/nats-tls.sh in {SHIPPED_TLS_DIR}"
    );
    let dir = format!("{}/", tls_dir.display());
    text + &body.replace(SHIPPED_TLS_DIR, &dir)
}
