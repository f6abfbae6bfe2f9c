//! Tests of the configuration: a full file, every validation error naming
//! its key, unknown keys, overrides, redaction, `check-config` exit codes,
//! and the shipped `dist/worker.toml`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hostkit_deploy::ports::PortBlock;
use hostkit_proto::sign::KeyPair;

use super::*;

/// A valid user public nkey.
fn public_key() -> String {
    KeyPair::new_user().public_key()
}

/// Every key of the file, set to a non-default value.
fn full_sample(dir: &Path) -> String {
    let key = public_key();
    let d = dir.display();
    format!(
        r#"
node = "vps-7"
subject_root = "acme.hostkit"
data_dir = "{d}/state"
domains_root = "{d}/domains"

[nats]
urls = ["nats://10.0.0.1:4222", "tls://nats.example.net:4443"]
user = "worker-vps-7"
password = "hunter2-very-secret"
tls_ca_file = "{d}/ca.pem"
tls_cert_file = "{d}/client.pem"
tls_key_file = "{d}/client.key"
require_tls = true
inbox_prefix = "_INBOX_vps7"

[proxy]
enabled = true
conf_dir = "{d}/nginx"
test_command = ["/usr/sbin/nginx", "-t"]
reload_command = ["systemctl", "reload", "nginx"]
listen = "127.0.0.1:8080"
listen_tls = "8443 ssl"
certs_dir = "{d}/certs"
verify_reload = false

[ports]
start = 30000
end = 30999
block_size = 20

[jobs]
lanes = 8
keep_versions = 3
health_timeout = "2m30s"
drain_time = "500ms"
shutdown_grace = 45

[streams]
replicas = 3
jobs_max_bytes = "64m"
jobs_max_age = "24h"
events_max_bytes = 2147483648
events_max_age = "72h"
images_max_bytes = "50g"
images_max_age = "48h"

[security]
trusted_job_keys = ["{key}"]
require_signed_jobs = true
allow_registry_pulls = true

[[security.job_keys]]
key = "{key}"
domains = ["example.com", "*.example.com"]

[[security.image_buckets]]
bucket = "hostkit_images_example_com"
domains = ["example.com"]

[tls]
enabled = true
directory_url = "https://acme-staging-v02.api.letsencrypt.org/directory"
contact_email = "ops@example.net"
ca_root = "{d}/ca.pem"
webroot = "{d}/acme-webroot"

[log]
format = "json"
filter = "hostkit_worker=debug,info"

[policy]
privileged = true
public_port = false
allowed_cap_add = ["NET_BIND_SERVICE"]
max_memory = "4g"
max_cpus = 2.5
max_pids = 4096
max_replicas = 10

[stack_limits]
cgroup_root = "{d}/cgroup"
memory = "2g"
cpus = 1.5
pids = 512

[stack_limits.domains."shop.example.com"]
memory = "4g"

[stack_limits.domains."*.example.org"]
pids = 64
cpus = 0.5
"#
    )
}

/// A directory with the files the full sample refers to.
fn sample_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["ca.pem", "client.pem", "client.key"] {
        std::fs::write(dir.path().join(f), "-----BEGIN X-----\n").unwrap();
    }
    dir
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "worker.toml", &Overrides::default())
}

/// The error of `text` (which must be invalid).
fn error(text: &str) -> ConfigError {
    match parse(text) {
        Ok(c) => panic!("accepted:\n{text}\nas {c:#?}"),
        Err(e) => e,
    }
}

/// Asserts `text` is refused with exactly the problem keys `keys`, each
/// named in the message.
#[track_caller]
fn refused_with(text: &str, keys: &[&str]) -> String {
    let e = error(text);
    let message = e.to_string();
    assert_eq!(e.keys(), keys, "{message}");
    for key in keys {
        assert!(message.contains(&format!("`{key}`")), "{message}");
    }
    assert!(message.contains("worker.toml"), "{message}");
    assert_eq!(e.exit_code(), EX_USAGE);
    message
}

const MINIMAL: &str = "node = \"vps-1\"\n";

#[test]
fn a_full_sample_parses_into_every_setting() {
    let dir = sample_dir();
    let d = dir.path();
    let config = parse(&full_sample(d)).unwrap();
    assert_eq!(config.node.as_str(), "vps-7");
    assert_eq!(config.names.root(), "acme.hostkit");
    assert_eq!(config.names.jobs_stream(), "ACME_HOSTKIT_JOBS");
    assert_eq!(config.data_dir, d.join("state"));
    assert_eq!(config.database_path(), d.join("state").join(DATABASE_FILE));
    assert_eq!(config.domains_root, d.join("domains"));

    let nats = &config.nats;
    assert_eq!(nats.urls.len(), 2);
    assert_eq!(nats.urls[1].expose(), "tls://nats.example.net:4443");
    assert_eq!(
        nats.auth,
        NatsAuth::UserPassword {
            user: "worker-vps-7".into(),
            password: Secret::new("hunter2-very-secret"),
        }
    );
    assert_eq!(
        nats.tls_ca_file.as_deref(),
        Some(d.join("ca.pem").as_path())
    );
    assert_eq!(
        nats.tls_client,
        Some(TlsClient {
            cert_file: d.join("client.pem"),
            key_file: d.join("client.key"),
        })
    );
    assert!(nats.require_tls);
    assert_eq!(nats.inbox_prefix, "_INBOX_vps7");
    assert_eq!(config.nats_servers().len(), 2);

    let proxy = config.proxy.as_ref().unwrap();
    assert_eq!(proxy.conf_dir, d.join("nginx"));
    assert_eq!(proxy.test_command, ["/usr/sbin/nginx", "-t"]);
    assert_eq!(proxy.reload_command, ["systemctl", "reload", "nginx"]);
    assert_eq!(proxy.listen, "127.0.0.1:8080");
    assert_eq!(proxy.listen_tls, "8443 ssl");
    assert_eq!(proxy.certs_dir.as_deref(), Some(d.join("certs").as_path()));
    assert!(!proxy.verify_reload);

    assert_eq!(
        config.ports,
        PortPool {
            start: 30000,
            end: 30999,
            block_len: 20,
        }
    );
    assert_eq!(config.ports.blocks(), 50);
    assert_eq!(
        config.ports.block(49),
        Some(PortBlock {
            start: 30980,
            len: 20
        })
    );
    assert_eq!(config.ports.block(50), None);

    assert_eq!(
        config.jobs,
        JobsConfig {
            lanes: 8,
            keep_versions: 3,
            health_timeout: Duration::from_secs(150),
            drain_time: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(45),
        }
    );
    assert_eq!(config.security.trusted_job_keys.len(), 1);
    assert!(config.security.signing_required());
    assert!(config.security.allow_registry_pulls);
    assert_eq!(
        config.streams,
        hostkit_proto::subjects::settings::StreamBounds {
            replicas: 3,
            jobs_max_bytes: 64 << 20,
            jobs_max_age: Duration::from_secs(24 * 3600),
            events_max_bytes: 2 << 30,
            events_max_age: Duration::from_secs(72 * 3600),
            images_max_bytes: 50 << 30,
            images_max_age: Duration::from_secs(48 * 3600),
        }
    );
    assert_eq!(config.security.job_keys.len(), 1);
    assert_eq!(config.security.job_keys[0].domains.len(), 2);
    assert_eq!(
        config.security.image_buckets,
        [ImageBucket {
            bucket: "hostkit_images_example_com".into(),
            domains: vec!["example.com".parse().unwrap()],
        }]
    );
    assert_eq!(config.log.format, LogFormat::Json);
    assert_eq!(config.log.filter, "hostkit_worker=debug,info");

    assert!(!config.policy.public_port);
    assert!(config.policy.privileged);
    assert_eq!(config.policy.allowed_cap_add, ["NET_BIND_SERVICE"]);
    assert_eq!(config.policy.max_memory, Some(4 * 1024 * 1024 * 1024));
    assert_eq!(config.policy.max_cpus, Some(2.5));
    assert_eq!(config.policy.max_replicas, Some(10));
    assert_eq!(config.policy.max_pids, Some(4096));

    let limits = &config.stack_limits;
    assert_eq!(limits.cgroup_root, dir.path().join("cgroup"));
    let budget = |d: &str| limits.budget_for(&d.parse().unwrap());
    assert_eq!(
        budget("shop.example.com"),
        Budget {
            memory: Some(4 << 30),
            cpus: Some(1.5),
            pids: Some(512)
        }
    );
    assert_eq!(
        budget("a.example.org"),
        Budget {
            memory: Some(2 << 30),
            cpus: Some(0.5),
            pids: Some(64)
        }
    );
}

#[test]
fn defaults_suit_a_vps_under_systemd() {
    let config = parse(MINIMAL).unwrap();
    assert_eq!(config.names, Names::default());
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/hostkit"));
    assert_eq!(
        config.database_path(),
        PathBuf::from("/var/lib/hostkit/worker.db")
    );
    assert_eq!(config.domains_root, PathBuf::from("/opt/domains"));
    assert_eq!(config.nats.urls[0].expose(), "nats://127.0.0.1:4222");
    assert_eq!(config.nats.auth, NatsAuth::None);
    assert!(!config.nats.require_tls);
    assert_eq!(config.nats.inbox_prefix, "_INBOX_worker_vps-1");
    assert_eq!(
        config.proxy,
        Some(ProxyConfig {
            own_certs_dir: Some(PathBuf::from("/var/lib/hostkit/certs")),
            ..ProxyConfig::default()
        })
    );
    assert_eq!(config.tls, None, "ACME is opt-in");
    assert_eq!(
        config.ports,
        PortPool {
            start: 20000,
            end: 29999,
            block_len: 10,
        }
    );
    assert_eq!(config.ports.blocks(), 1000);
    assert_eq!(
        config.jobs,
        JobsConfig {
            lanes: 4,
            keep_versions: 5,
            health_timeout: Duration::from_secs(120),
            drain_time: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(90),
        }
    );
    assert!(!config.security.signing_required());
    assert!(!config.security.allow_registry_pulls);
    assert_eq!(config.log.format, LogFormat::Text);
    assert_eq!(config.log.filter, "info");
    assert_eq!(config.policy, Policy::default());
}

#[test]
fn the_proxy_can_be_off_and_tls_blocks_disabled() {
    let config =
        parse("node = \"a\"\n[proxy]\nenabled = false\nconf_dir = \"relative\"\n").unwrap();
    assert_eq!(
        config.proxy, None,
        "a disabled proxy's keys are not checked"
    );
    let config = parse("node = \"a\"\n[proxy]\ncerts_dir = \"\"\n").unwrap();
    assert_eq!(config.proxy.unwrap().certs_dir, None);
}

#[test]
fn tls_takes_its_account_from_data_dir_and_gives_nginx_the_webroot() {
    let root = tempfile::NamedTempFile::new().unwrap();
    let text = format!(
        "node = \"a\"\ndata_dir = \"/srv/hk\"\n[tls]\nenabled = true\ncontact_email = \"ops@example.com\"\nca_root = \"{}\"\n",
        root.path().display()
    );
    let config = parse(&text).unwrap();
    let tls = config.tls.clone().unwrap();
    assert_eq!(tls.directory_url, hostkit_deploy::tls::LETS_ENCRYPT);
    assert_eq!(tls.contact_email.as_deref(), Some("ops@example.com"));
    assert_eq!(tls.ca_root.as_deref(), Some(root.path()));
    assert_eq!(tls.account_dir, PathBuf::from("/srv/hk/acme"));
    assert_eq!(tls.webroot, PathBuf::from("/run/hostkit-acme"));
    let proxy = config.proxy.clone().unwrap();
    assert_eq!(proxy.acme_webroot, Some(PathBuf::from("/run/hostkit-acme")));
    assert_eq!(proxy.own_certs_dir, Some(PathBuf::from("/srv/hk/certs")));
    let again = Config::resolve(config.to_file_redacted(), "again", &Overrides::default()).unwrap();
    assert_eq!(again.tls, config.tls);

    for (text, key) in [
        (
            "node = \"a\"\n[tls]\nenabled = true\ndirectory_url = \"http://acme.example/dir\"",
            "tls.directory_url",
        ),
        (
            "node = \"a\"\n[tls]\nenabled = true\ncontact_email = \"a@b.example, c@d.example\"",
            "tls.contact_email",
        ),
        (
            "node = \"a\"\n[tls]\nenabled = true\nca_root = \"/nonexistent/root.pem\"",
            "tls.ca_root",
        ),
        (
            "node = \"a\"\n[tls]\nenabled = true\nwebroot = \"relative\"",
            "tls.webroot",
        ),
        (
            "node = \"a\"\n[proxy]\nenabled = false\n[tls]\nenabled = true",
            "tls.enabled",
        ),
    ] {
        let message = parse(text).unwrap_err().to_string();
        assert!(message.contains(&format!("`{key}`")), "{key}: {message}");
    }
}

#[test]
fn signing_is_required_by_a_key_list_alone() {
    let text = format!(
        "node = \"a\"\n[security]\ntrusted_job_keys = [\"{}\"]\n",
        public_key()
    );
    let config = parse(&text).unwrap();
    assert!(!config.security.require_signed_jobs);
    assert!(config.security.signing_required());
}

#[test]
fn nats_urls_may_be_one_string() {
    let config = parse("node = \"a\"\n[nats]\nurls = \"nats://n1:4222\"\n").unwrap();
    assert_eq!(config.nats.urls.len(), 1);
    assert_eq!(config.nats.urls[0].expose(), "nats://n1:4222");
}

#[test]
fn tls_urls_and_ca_files_imply_tls() {
    let config = parse("node = \"a\"\n[nats]\nurls = [\"tls://n1:4222\"]\n").unwrap();
    assert!(config.nats.require_tls);
}

#[test]
fn each_validation_error_names_its_key() {
    let cases: &[(&str, &[&str])] = &[
        ("", &["node"]),
        ("node = \"VPS_1\"", &["node"]),
        (
            "node = \"a\"\nsubject_root = \"Hostkit.*\"",
            &["subject_root"],
        ),
        ("node = \"a\"\nsubject_root = \"a..b\"", &["subject_root"]),
        ("node = \"a\"\ndata_dir = \"state\"", &["data_dir"]),
        ("node = \"a\"\ndata_dir = \"\"", &["data_dir"]),
        ("node = \"a\"\ndomains_root = \"srv\"", &["domains_root"]),
        ("node = \"a\"\n[nats]\nurls = []", &["nats.urls"]),
        (
            "node = \"a\"\n[nats]\nurls = [\"nats://ok:4222\", \"http://web:80\"]",
            &["nats.urls[1]"],
        ),
        ("node = \"a\"\n[nats]\nuser = \"u\"", &["nats.password"]),
        ("node = \"a\"\n[nats]\npassword = \"p\"", &["nats.user"]),
        (
            "node = \"a\"\n[nats]\nuser = \"\"\npassword = \"p\"",
            &["nats.user"],
        ),
        ("node = \"a\"\n[nats]\ntoken = \"\"", &["nats.token"]),
        (
            "node = \"a\"\n[nats]\ntoken = \"t\"\nuser = \"u\"\npassword = \"p\"",
            &["nats"],
        ),
        (
            "node = \"a\"\n[nats]\ncreds_file = \"/nonexistent/w.creds\"",
            &["nats.creds_file"],
        ),
        (
            "node = \"a\"\n[nats]\nnkey_seed_file = \"/nonexistent/seed\"",
            &["nats.nkey_seed_file"],
        ),
        (
            "node = \"a\"\n[nats]\ntls_ca_file = \"ca.pem\"",
            &["nats.tls_ca_file"],
        ),
        (
            "node = \"a\"\n[nats]\ntls_cert_file = \"/etc/hostname\"",
            &["nats.tls_key_file"],
        ),
        (
            "node = \"a\"\n[nats]\ntls_key_file = \"/etc/hostname\"",
            &["nats.tls_cert_file"],
        ),
        (
            "node = \"a\"\n[nats]\ninbox_prefix = \"_INBOX.*\"",
            &["nats.inbox_prefix"],
        ),
        (
            "node = \"a\"\n[nats]\ninbox_prefix = \"a..b\"",
            &["nats.inbox_prefix"],
        ),
        (
            "node = \"a\"\n[proxy]\nconf_dir = \"nginx\"",
            &["proxy.conf_dir"],
        ),
        (
            "node = \"a\"\n[proxy]\ntest_command = []",
            &["proxy.test_command"],
        ),
        (
            "node = \"a\"\n[proxy]\nreload_command = [\"\"]",
            &["proxy.reload_command"],
        ),
        ("node = \"a\"\n[proxy]\nlisten = \" \"", &["proxy.listen"]),
        (
            "node = \"a\"\n[proxy]\nlisten_tls = \"\"",
            &["proxy.listen_tls"],
        ),
        (
            "node = \"a\"\n[proxy]\ncerts_dir = \"certs\"",
            &["proxy.certs_dir"],
        ),
        (
            "node = \"a\"\n[ports]\nstart = 30000\nend = 20000",
            &["ports.start"],
        ),
        (
            "node = \"a\"\n[ports]\nstart = 80\nend = 2000",
            &["ports.start"],
        ),
        (
            "node = \"a\"\n[ports]\nblock_size = 0",
            &["ports.block_size"],
        ),
        (
            "node = \"a\"\n[ports]\nstart = 20000\nend = 20009\nblock_size = 11",
            &["ports.block_size"],
        ),
        ("node = \"a\"\n[jobs]\nlanes = 0", &["jobs.lanes"]),
        (
            "node = \"a\"\n[jobs]\nkeep_versions = 0",
            &["jobs.keep_versions"],
        ),
        (
            "node = \"a\"\n[jobs]\nhealth_timeout = \"soon\"",
            &["jobs.health_timeout"],
        ),
        (
            "node = \"a\"\n[jobs]\nhealth_timeout = \"0s\"",
            &["jobs.health_timeout"],
        ),
        (
            "node = \"a\"\n[jobs]\ndrain_time = \"10\"\nshutdown_grace = \"5x\"",
            &["jobs.shutdown_grace"],
        ),
        (
            "node = \"a\"\n[jobs]\ndrain_time = \"-1s\"",
            &["jobs.drain_time"],
        ),
        (
            "node = \"a\"\n[[security.image_buckets]]\nbucket = \"a.b\"\ndomains = [\"*.x\", \"bad domain\"]",
            &[
                "security.image_buckets[0].bucket",
                "security.image_buckets[0].domains[1]",
            ],
        ),
        (
            "node = \"a\"\n[streams]\nreplicas = 0\njobs_max_bytes = \"10k\"\nimages_max_age = \"5s\"",
            &[
                "streams.replicas",
                "streams.jobs_max_bytes",
                "streams.images_max_age",
            ],
        ),
        (
            "node = \"a\"\n[[security.image_buckets]]\nbucket = \"b\"\ndomains = []",
            &["security.image_buckets[0].domains"],
        ),
        (
            "node = \"a\"\n[security]\ntrusted_job_keys = [\"not-a-key\"]",
            &["security.trusted_job_keys[0]"],
        ),
        (
            "node = \"a\"\n[security]\nrequire_signed_jobs = true",
            &["security.require_signed_jobs"],
        ),
        (
            "node = \"a\"\n[log]\nfilter = \"x=nonsense\"",
            &["log.filter"],
        ),
        (
            "node = \"a\"\n[policy]\nmax_cpus = 0.0",
            &["policy.max_cpus"],
        ),
        (
            "node = \"a\"\n[policy]\nmax_replicas = 0",
            &["policy.max_replicas"],
        ),
        ("node = \"a\"\n[policy]\nmax_pids = 0", &["policy.max_pids"]),
        (
            "node = \"a\"\n[stack_limits]\ncgroup_root = \"cg\"\ncpus = 0.001\nmemory = \"1m\"\npids = 0",
            &[
                "stack_limits.cgroup_root",
                "stack_limits.cpus",
                "stack_limits.memory",
                "stack_limits.pids",
            ],
        ),
        (
            "node = \"a\"\n[stack_limits.domains.\"not a domain\"]\npids = 0",
            &[
                "stack_limits.domains.\"not a domain\"",
                "stack_limits.domains.\"not a domain\".pids",
            ],
        ),
        (
            "node = \"a\"\n[stack_limits.domains.\"example.com\"]\nmemroy = 1",
            &["stack_limits.domains.example.com.memroy"],
        ),
        (
            "node = \"a\"\n[policy]\nallowed_cap_add = [\"NET ADMIN\"]",
            &["policy.allowed_cap_add[0]"],
        ),
        // Type errors come from the parser, with the key's path.
        ("node = \"a\"\n[ports]\nstart = \"low\"", &["ports.start"]),
        ("node = \"a\"\n[ports]\nend = 70000", &["ports.end"]),
        ("node = \"a\"\n[jobs]\nlanes = -1", &["jobs.lanes"]),
        (
            "node = \"a\"\n[jobs]\nhealth_timeout = -5",
            &["jobs.health_timeout"],
        ),
        ("node = \"a\"\n[log]\nformat = \"xml\"", &["log.format"]),
        (
            "node = \"a\"\n[policy]\nmax_memory = \"lots\"",
            &["policy.max_memory"],
        ),
        ("node = 7", &["node"]),
        ("node = \"a\"\nproxy = 1", &["proxy"]),
    ];
    for (text, keys) in cases {
        refused_with(text, keys);
    }
}

#[test]
fn the_port_message_reads_as_documented() {
    let message = refused_with(
        "node = \"a\"\n[ports]\nstart = 30000\nend = 20000",
        &["ports.start"],
    );
    assert_eq!(
        message,
        "worker.toml: `ports.start` must be below `ports.end` (30000 ≥ 20000)"
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let message = refused_with(
        "node = \"a\"\n[ports]\nblock_size = 0\n[jobs]\nlanes = 0\nkeep_versions = 0",
        &["ports.block_size", "jobs.lanes", "jobs.keep_versions"],
    );
    assert!(
        message.starts_with("3 problems in the configuration:"),
        "{message}"
    );
}

#[test]
fn unknown_keys_are_rejected_with_their_path() {
    let cases: &[(&str, &str)] = &[
        ("node = \"a\"\nnodes = \"b\"", "nodes"),
        ("node = \"a\"\n[nats]\nurl = \"nats://x\"", "nats.url"),
        ("node = \"a\"\n[ports]\nstrat = 20000", "ports.strat"),
        ("node = \"a\"\n[jobs]\nlane = 2", "jobs.lane"),
        ("node = \"a\"\n[proxy]\nenable = false", "proxy.enable"),
        (
            "node = \"a\"\n[policy]\nprivileged_mode = false",
            "policy.privileged_mode",
        ),
        ("node = \"a\"\n[polcy]\nprivileged = false", "polcy"),
    ];
    for (text, key) in cases {
        let message = refused_with(text, &[key]);
        assert!(message.contains("is not a known key"), "{message}");
        assert!(message.starts_with("worker.toml:"), "{message}");
    }
}

#[test]
fn parse_errors_carry_the_line() {
    let e = error("node = \"a\"\n\n[ports]\nstart = \"low\"\n");
    assert!(
        e.to_string().starts_with("worker.toml:4: `ports.start`"),
        "{e}"
    );
    let e = error("node = \"a\"\n[ports\n");
    assert_eq!(e.keys(), [""]);
    assert!(
        e.to_string()
            .starts_with("worker.toml:2: is not valid TOML: "),
        "{e}"
    );
    assert!(!e.to_string().contains('\n'), "{e}");
}

#[test]
fn flags_and_variables_win_over_the_file() {
    let text = "node = \"from-file\"\ndata_dir = \"/var/lib/file\"\n[nats]\nurls = [\"nats://file:4222\"]\n[log]\nformat = \"text\"\n";
    let overrides = Overrides {
        node: Some("from-flag".into()),
        nats_urls: Some(vec!["nats://a:1".into(), "nats://b:2".into()]),
        data_dir: Some("/srv/state".into()),
        log_format: Some(LogFormat::Json),
    };
    let config = Config::parse(text, "worker.toml", &overrides).unwrap();
    assert_eq!(config.node.as_str(), "from-flag");
    assert_eq!(config.nats.inbox_prefix, "_INBOX_worker_from-flag");
    let urls: Vec<_> = config.nats.urls.iter().map(NatsUrl::expose).collect();
    assert_eq!(urls, ["nats://a:1", "nats://b:2"]);
    assert_eq!(config.data_dir, PathBuf::from("/srv/state"));
    assert_eq!(config.log.format, LogFormat::Json);

    // Without overrides the file's values hold.
    let config = Config::parse(text, "worker.toml", &Overrides::default()).unwrap();
    assert_eq!(config.node.as_str(), "from-file");
    assert_eq!(config.data_dir, PathBuf::from("/var/lib/file"));
}

#[test]
fn an_override_supplies_a_missing_node_and_is_blamed_when_wrong() {
    let overrides = Overrides {
        node: Some("vps-2".into()),
        ..Overrides::default()
    };
    assert_eq!(
        Config::parse("", "worker.toml", &overrides)
            .unwrap()
            .node
            .as_str(),
        "vps-2"
    );
    let bad = Overrides {
        node: Some("Bad Node".into()),
        nats_urls: Some(vec!["ftp://x".into()]),
        ..Overrides::default()
    };
    let e = Config::parse(MINIMAL, "worker.toml", &bad).unwrap_err();
    assert_eq!(e.keys(), ["node", "nats.urls[0]"]);
    assert_eq!(e.problems()[0].origin, "--node/HOSTKIT_NODE");
    assert_eq!(e.problems()[1].origin, "--nats-url/NATS_URL");
}

#[test]
fn a_relative_data_dir_flag_is_made_absolute() {
    let overrides = Overrides {
        data_dir: Some("state".into()),
        ..Overrides::default()
    };
    let config = Config::parse(MINIMAL, "worker.toml", &overrides).unwrap();
    assert!(config.data_dir.is_absolute());
    assert!(config.data_dir.ends_with("state"));
}

#[test]
fn secrets_are_redacted_in_the_printed_resolution_and_in_debug() {
    let dir = sample_dir();
    let text = full_sample(dir.path()).replace(
        "\"nats://10.0.0.1:4222\"",
        "\"nats://admin:url-secret@10.0.0.1:4222\"",
    );
    let config = parse(&text).unwrap();
    let printed = check::describe(&config, &Overrides::default());
    let debug = format!("{config:?}");
    for shown in [&printed, &debug] {
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("url-secret"), "{shown}");
        assert!(shown.contains(REDACTED), "{shown}");
    }
    assert!(printed.contains("password = \"<redacted>\""), "{printed}");
    assert!(
        printed.contains("nats://admin:<redacted>@10.0.0.1:4222"),
        "{printed}"
    );
    assert!(printed.contains("user = \"worker-vps-7\""), "{printed}");

    let token = parse("node = \"a\"\n[nats]\ntoken = \"tok-123-secret\"\n").unwrap();
    let printed = check::describe(&token, &Overrides::default());
    assert!(!printed.contains("tok-123"), "{printed}");
    assert!(printed.contains("token = \"<redacted>\""), "{printed}");
    assert!(!format!("{token:?}").contains("tok-123"));
}

#[test]
fn the_nkey_seed_is_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let seed = KeyPair::new_user().seed().unwrap();
    let path = dir.path().join("worker.nk");
    std::fs::write(&path, format!("{seed}\n")).unwrap();
    let text = format!(
        "node = \"a\"\n[nats]\nnkey_seed_file = \"{}\"\n",
        path.display()
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.nats.auth, NatsAuth::NkeySeedFile(path.clone()));
    let printed = check::describe(&config, &Overrides::default());
    assert!(!printed.contains(&seed), "{printed}");
    assert!(printed.contains("nkey_seed_file"), "{printed}");
    config.connect_options().unwrap();

    // A file that does not hold a seed is refused without echoing it.
    std::fs::write(&path, "SXnot-a-seed-but-secret\n").unwrap();
    let e = error(&text);
    assert_eq!(e.keys(), ["nats.nkey_seed_file"]);
    assert!(!e.to_string().contains("not-a-seed"), "{e}");
}

#[test]
fn the_printed_resolution_parses_back_to_the_same_config() {
    let dir = sample_dir();
    let config = parse(&full_sample(dir.path())).unwrap();
    let printed = check::describe(&config, &Overrides::default());
    let mut again = parse(&printed).unwrap();
    // Only the redacted password differs.
    assert_eq!(
        again.nats.auth,
        NatsAuth::UserPassword {
            user: "worker-vps-7".into(),
            password: Secret::new(REDACTED),
        }
    );
    again.nats.auth = config.nats.auth.clone();
    assert_eq!(again, config);

    let minimal = parse(MINIMAL).unwrap();
    assert_eq!(parse(&minimal.render_redacted()).unwrap(), minimal);
    let off = parse("node = \"a\"\n[proxy]\nenabled = false\n").unwrap();
    assert_eq!(parse(&off.render_redacted()).unwrap(), off);
}

#[test]
fn connect_options_are_built_from_each_auth_method() {
    let dir = tempfile::tempdir().unwrap();
    for auth in ["", "user = \"u\"\npassword = \"p\"", "token = \"t\""] {
        let config = parse(&format!("node = \"a\"\n[nats]\n{auth}\n")).unwrap();
        config.connect_options().unwrap();
    }
    // A creds file: a JWT and a seed.
    let seed = KeyPair::new_user().seed().unwrap();
    let creds = format!(
        "-----BEGIN NATS USER JWT-----\neyJ0eXAiOiJKV1QiLCJhbGciOiJlZDI1NTE5LW5rZXkifQ.e30.sig\n------END NATS USER JWT------\n\n-----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n"
    );
    let path = dir.path().join("w.creds");
    std::fs::write(&path, creds).unwrap();
    let config = parse(&format!(
        "node = \"a\"\n[nats]\ncreds_file = \"{}\"\n",
        path.display()
    ))
    .unwrap();
    assert_eq!(config.nats.auth, NatsAuth::CredsFile(path.clone()));
    config.connect_options().unwrap();

    // A creds file that is gone by the time the worker connects.
    std::fs::remove_file(&path).unwrap();
    let e = config.connect_options().unwrap_err();
    assert_eq!(e.keys(), ["nats.creds_file"]);
}

#[test]
fn a_file_that_is_not_creds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.creds");
    std::fs::write(&path, "hello\n").unwrap();
    let e = error(&format!(
        "node = \"a\"\n[nats]\ncreds_file = \"{}\"\n",
        path.display()
    ));
    assert_eq!(e.keys(), ["nats.creds_file"]);
}

#[test]
fn check_config_exits_0_64_and_66() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "node = \"vps-1\"\n[nats]\nuser = \"w\"\npassword = \"s3cret\"\n",
    )
    .unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check::check_config(&good, &Overrides::default(), &mut out, &mut err);
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.contains(&format!("# {}: valid", good.display())),
        "{out}"
    );
    assert!(out.contains("node = \"vps-1\""), "{out}");
    assert!(
        out.contains("consumer worker-vps-1 on stream HOSTKIT_JOBS"),
        "{out}"
    );
    assert!(!out.contains("s3cret"), "{out}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "node = \"vps-1\"\n[ports]\nstart = 9\n").unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check::check_config(&bad, &Overrides::default(), &mut out, &mut err);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, EX_USAGE);
    assert!(out.is_empty());
    assert!(err.contains("`ports.start`"), "{err}");
    assert!(err.contains(&bad.display().to_string()), "{err}");

    let missing = dir.path().join("missing.toml");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check::check_config(&missing, &Overrides::default(), &mut out, &mut err);
    let err = String::from_utf8(err).unwrap();
    assert_eq!(code, EX_NOINPUT);
    assert!(err.contains("missing.toml"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

#[test]
fn check_config_names_the_overrides_it_applied() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, "").unwrap();
    let overrides = Overrides {
        node: Some("vps-3".into()),
        ..Overrides::default()
    };
    let mut out = Vec::new();
    let code = check::check_config(&path, &overrides, &mut out, &mut Vec::new());
    let out = String::from_utf8(out).unwrap();
    assert_eq!(code, 0);
    assert!(out.contains("# `node` set by --node/HOSTKIT_NODE"), "{out}");
}

/// The shipped sample must stay loadable.
#[test]
fn the_shipped_sample_config_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/worker.toml");
    let config = Config::load(&path, &Overrides::default())
        .unwrap_or_else(|e| panic!("dist/worker.toml: {e}"));
    // Signed jobs are on in the sample, with an example key bound to
    // example.com (DESIGN §6); the rest spells out the defaults.
    assert!(config.security.signing_required());
    let keys = config.security.trusted_keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].covers(&"example.com".parse().unwrap()));
    assert!(!keys[0].covers(&"other.test".parse().unwrap()));
    let defaults = parse(&format!("node = \"{}\"", config.node)).unwrap();
    assert_eq!(
        Config {
            source: None,
            security: defaults.security.clone(),
            ..config
        },
        defaults
    );
}

/// Every key of the file is described in the sample, set or commented out.
#[test]
fn the_shipped_sample_mentions_every_key() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../dist/worker.toml");
    let sample = std::fs::read_to_string(path).unwrap();
    let dir = sample_dir();
    let full: toml::Table = toml::from_str(&full_sample(dir.path())).unwrap();
    let mut keys = Vec::new();
    for (key, value) in &full {
        match value.as_table() {
            Some(table) => {
                assert!(sample.contains(&format!("[{key}]")), "[{key}] missing");
                for (inner, value) in table {
                    if value.is_table() {
                        // A table of tables: its first key shows the form.
                        assert!(
                            sample.contains(&format!("[{key}.{inner}.")),
                            "[{key}.{inner}.…] missing"
                        );
                    } else if value
                        .as_array()
                        .is_some_and(|a| a.first().is_some_and(toml::Value::is_table))
                    {
                        // An array of tables: one entry, set or commented out.
                        assert!(
                            sample.contains(&format!("[[{key}.{inner}]]")),
                            "[[{key}.{inner}]] missing"
                        );
                    } else {
                        keys.push(inner.clone());
                    }
                }
            }
            None => keys.push(key.clone()),
        }
    }
    let policy = toml::to_string(&Policy::default()).unwrap();
    let policy: toml::Table = toml::from_str(&policy).unwrap();
    keys.extend(policy.keys().cloned());
    keys.extend(
        [
            "creds_file",
            "nkey_seed_file",
            "token",
            "max_memory",
            "max_cpus",
            "max_pids",
            "max_replicas",
        ]
        .map(String::from),
    );
    for key in keys {
        let mentioned = sample.lines().any(|l| {
            l.trim_start_matches(['#', ' '])
                .starts_with(&format!("{key} ="))
        });
        assert!(mentioned, "dist/worker.toml does not describe `{key}`");
    }
}

/// The sample server configuration gives the sample node's worker a user
/// and, as its only inbox, the worker's default inbox prefix.
#[test]
fn the_sample_server_config_matches_the_sample_worker() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = Config::load(&root.join("dist/worker.toml"), &Overrides::default()).unwrap();
    let server = std::fs::read_to_string(root.join("dist/nats-server.conf")).unwrap();
    let node = config.node.as_str();
    assert!(
        server.contains(&format!("user: worker-{node}\n")),
        "no user for {node}"
    );
    assert!(
        server.contains(&format!("\"{}.>\"", config.nats.inbox_prefix)),
        "the server does not let worker-{node} read {}.>",
        config.nats.inbox_prefix
    );
    let names = &config.names;
    let create = format!(
        "\"$JS.API.CONSUMER.CREATE.{}.{}.{}\"",
        names.jobs_stream(),
        names.jobs_consumer(&config.node),
        names.jobs_filter(&config.node)
    );
    assert!(server.contains(&create), "no {create}");
    assert!(server.contains("sync_interval: always"));
}
