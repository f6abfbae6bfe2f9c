//! `hostkit-worker check-config` as a process: exit codes, what goes to
//! stdout and stderr, flag and environment overrides, redaction.

use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary with a clean environment for the variables it reads.
fn worker(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hostkit-worker"));
    for var in [
        "HOSTKIT_WORKER_CONFIG",
        "HOSTKIT_NODE",
        "NATS_URL",
        "HOSTKIT_DATA_DIR",
        "HOSTKIT_LOG_FORMAT",
        "HOSTKIT_LOG",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.args(args).envs(env.iter().copied());
    command.output().expect("run hostkit-worker")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

#[test]
fn a_valid_config_prints_its_resolution_and_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "worker.toml",
        "node = \"vps-1\"\n[nats]\nuser = \"worker-vps-1\"\npassword = \"pa55-secret\"\n",
    );
    let out = worker(&["--config", &path, "check-config"], &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stderr: {stderr}");
    assert!(stdout.contains(&format!("# {path}: valid")), "{stdout}");
    assert!(stdout.contains("node = \"vps-1\""), "{stdout}");
    assert!(stdout.contains("password = \"<redacted>\""), "{stdout}");
    assert!(!stdout.contains("pa55-secret"), "{stdout}");
    assert!(!stderr.contains("pa55-secret"), "{stderr}");
}

#[test]
fn an_invalid_config_exits_64_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "worker.toml",
        "node = \"vps-1\"\n[ports]\nstart = 30000\nend = 20000\n",
    );
    let out = worker(&["check-config", "-c", &path], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "stderr: {stderr}");
    assert!(out.stdout.is_empty());
    assert!(
        stderr.contains(&format!(
            "{path}: `ports.start` must be below `ports.end` (30000 ≥ 20000)"
        )),
        "{stderr}"
    );

    // A typo is caught too.
    let path = write(
        dir.path(),
        "typo.toml",
        "node = \"vps-1\"\n[jobs]\nlane = 2\n",
    );
    let out = worker(&["check-config", "-c", &path], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("`jobs.lane` is not a known key"));
}

#[test]
fn a_missing_file_exits_66() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.toml").display().to_string();
    let out = worker(&["check-config", "--config", &path], &[]);
    assert_eq!(out.status.code(), Some(66));
    assert!(text(&out.stderr).contains("absent.toml"));
}

#[test]
fn flags_beat_variables_which_beat_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "worker.toml", "node = \"from-file\"\n");

    let out = worker(
        &["check-config", "-c", &path],
        &[
            ("HOSTKIT_NODE", "from-env"),
            ("NATS_URL", "nats://e1:4222,nats://e2:4222"),
        ],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("node = \"from-env\""), "{stdout}");
    assert!(
        stdout.contains("urls = [\"nats://e1:4222\", \"nats://e2:4222\"]"),
        "{stdout}"
    );

    let out = worker(
        &[
            "check-config",
            "-c",
            &path,
            "--node",
            "from-flag",
            "--log-format",
            "json",
        ],
        &[("HOSTKIT_NODE", "from-env"), ("HOSTKIT_LOG_FORMAT", "text")],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(stdout.contains("node = \"from-flag\""), "{stdout}");
    assert!(stdout.contains("format = \"json\""), "{stdout}");

    // The config path itself can come from the environment.
    let out = worker(&["check-config"], &[("HOSTKIT_WORKER_CONFIG", &path)]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("node = \"from-file\""));
}

#[test]
fn a_bad_override_is_blamed_on_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "worker.toml", "node = \"vps-1\"\n");
    let out = worker(
        &["check-config", "-c", &path],
        &[("HOSTKIT_NODE", "Not A Node")],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(
        stderr.contains("--node/HOSTKIT_NODE: `node` is invalid"),
        "{stderr}"
    );
}

#[test]
fn the_shipped_sample_checks_clean() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/worker.toml");
    let out = worker(&["check-config", "-c", path.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn run_with_a_bad_config_exits_64_too() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "worker.toml", "node = \"vps-1\"\nbogus = 1\n");
    let out = worker(&["-c", &path], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("`bogus` is not a known key"), "{stderr}");
}
