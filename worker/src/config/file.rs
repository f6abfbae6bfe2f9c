//! The worker's TOML file as written: every table and key, their defaults,
//! and nothing validated yet beyond TOML types. [`super::Config`] is
//! resolved from this. Serializing it back gives the same syntax, which is
//! how `check-config` prints what it resolved.

use std::fmt;
use std::path::PathBuf;

use hostkit_deploy::cgroup::StackLimits;
use hostkit_deploy::policy::Policy;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::logging::LogFormat;

/// Default data directory (SQLite lives here); systemd's `StateDirectory=hostkit`.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/hostkit";
/// Default root of the on-disk view (`<domains_root>/<domain>/`).
pub const DEFAULT_DOMAINS_ROOT: &str = "/opt/domains";
/// Default NATS server.
pub const DEFAULT_NATS_URL: &str = "nats://127.0.0.1:4222";
/// Default first port of the pool.
pub const DEFAULT_PORTS_START: u16 = 20000;
/// Default last port of the pool (inclusive).
pub const DEFAULT_PORTS_END: u16 = 29999;
/// Default ports per domain.
pub const DEFAULT_PORTS_BLOCK: u16 = 10;
/// Default number of domains whose jobs run at once.
pub const DEFAULT_LANES: usize = 4;
/// Default number of stack versions kept per domain.
pub const DEFAULT_KEEP_VERSIONS: u32 = 5;
/// Default health timeout of a deploy.
pub const DEFAULT_HEALTH_TIMEOUT: &str = "120s";
/// Default time an old main-service replica keeps serving after nginx moved on.
pub const DEFAULT_DRAIN_TIME: &str = "10s";
/// Default time running jobs get to finish on SIGTERM/SIGINT.
pub const DEFAULT_SHUTDOWN_GRACE: &str = "90s";
/// Default directory nginx serves ACME HTTP-01 answers from (systemd's
/// `RuntimeDirectory=hostkit-acme`; world-readable for nginx's workers).
pub const DEFAULT_ACME_WEBROOT: &str = "/run/hostkit-acme";
/// Default tracing filter.
pub const DEFAULT_LOG_FILTER: &str = "info";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// This worker's node id (required: here, `--node` or `HOSTKIT_NODE`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Root of every subject, stream and bucket name.
    pub subject_root: String,
    /// Where the worker keeps its state (the SQLite database).
    pub data_dir: PathBuf,
    /// Root of the on-disk view of the domains.
    pub domains_root: PathBuf,
    /// `[nats]`.
    pub nats: NatsSection,
    /// `[proxy]`.
    pub proxy: ProxySection,
    /// `[ports]`.
    pub ports: PortsSection,
    /// `[jobs]`.
    pub jobs: JobsSection,
    /// `[security]`.
    pub security: SecuritySection,
    /// `[tls]`.
    pub tls: TlsSection,
    /// `[log]`.
    pub log: LogSection,
    /// `[policy]`: the compose policy, as `hostkit-deploy` defines it.
    pub policy: Policy,
    /// `[stack_limits]`: per-domain budgets of whole stacks.
    pub stack_limits: StackLimits,
    /// `[streams]`: bounds of the streams and buckets the worker creates.
    pub streams: super::streams::StreamsSection,
    /// `[metrics]`: Prometheus metrics.
    pub metrics: MetricsSection,
}

/// `[metrics]`: where the worker serves Prometheus metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSection {
    /// `host:port` of `GET /metrics` (e.g. `127.0.0.1:9464`); unset: off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            node: None,
            subject_root: hostkit_proto::subjects::DEFAULT_ROOT.to_owned(),
            data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            domains_root: PathBuf::from(DEFAULT_DOMAINS_ROOT),
            nats: NatsSection::default(),
            proxy: ProxySection::default(),
            ports: PortsSection::default(),
            jobs: JobsSection::default(),
            security: SecuritySection::default(),
            tls: TlsSection::default(),
            log: LogSection::default(),
            policy: Policy::default(),
            stack_limits: StackLimits::default(),
            streams: super::streams::StreamsSection::default(),
            metrics: MetricsSection::default(),
        }
    }
}

/// `[nats]`: where and as whom to connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsSection {
    /// Server URLs (a string or a list).
    #[serde(deserialize_with = "string_or_list")]
    pub urls: Vec<String>,
    /// A `.creds` file (JWT + nkey seed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creds_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU…`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nkey_seed_file: Option<PathBuf>,
    /// User name (with `password`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Password (with `user`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Authentication token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// CA certificate(s) (PEM) to verify the server with; implies TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate (PEM), with `tls_key_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// Client key (PEM), with `tls_cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// Refuse to talk to the server without TLS.
    pub require_tls: bool,
    /// Prefix of this worker's reply subjects; default `_INBOX_worker_<node>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inbox_prefix: Option<String>,
}

impl Default for NatsSection {
    fn default() -> Self {
        NatsSection {
            urls: vec![DEFAULT_NATS_URL.to_owned()],
            creds_file: None,
            nkey_seed_file: None,
            user: None,
            password: None,
            token: None,
            tls_ca_file: None,
            tls_cert_file: None,
            tls_key_file: None,
            require_tls: false,
            inbox_prefix: None,
        }
    }
}

/// `[proxy]`: nginx, or none.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxySection {
    /// `false`: no nginx on this host; stacks are reachable on their ports only.
    pub enabled: bool,
    /// Directory of the per-domain `<domain>.conf` files.
    pub conf_dir: PathBuf,
    /// Command checking the configuration.
    pub test_command: Vec<String>,
    /// Command reloading nginx.
    pub reload_command: Vec<String>,
    /// `listen` of the plain-HTTP server block.
    pub listen: String,
    /// `listen` of the TLS server block.
    pub listen_tls: String,
    /// Directory with `<domain>/fullchain.pem` and `privkey.pem`; `""`: never TLS.
    pub certs_dir: PathBuf,
    /// Wait until nginx serves a reloaded configuration.
    pub verify_reload: bool,
    /// HostKit v1's `sites-enabled` directory (a v1 site there is retired
    /// when HostKit serves its domain); `""`: none.
    pub v1_sites_enabled: PathBuf,
}

impl Default for ProxySection {
    fn default() -> Self {
        let d = hostkit_deploy::proxy::ProxyConfig::default();
        ProxySection {
            enabled: true,
            conf_dir: d.conf_dir,
            test_command: d.test_command,
            reload_command: d.reload_command,
            listen: d.listen,
            listen_tls: d.listen_tls,
            certs_dir: d.certs_dir.unwrap_or_default(),
            verify_reload: d.verify_reload,
            v1_sites_enabled: d.v1_sites_enabled.unwrap_or_default(),
        }
    }
}

/// `[ports]`: the host port pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PortsSection {
    /// First port of the pool.
    pub start: u16,
    /// Last port of the pool (inclusive).
    pub end: u16,
    /// Ports per domain.
    pub block_size: u16,
}

impl Default for PortsSection {
    fn default() -> Self {
        PortsSection {
            start: DEFAULT_PORTS_START,
            end: DEFAULT_PORTS_END,
            block_size: DEFAULT_PORTS_BLOCK,
        }
    }
}

/// `[jobs]`: concurrency, retention and timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobsSection {
    /// Domains whose jobs run at once.
    pub lanes: usize,
    /// Stack versions kept per domain.
    pub keep_versions: u32,
    /// Health timeout of a deploy that sets none.
    pub health_timeout: DurationText,
    /// How long a replaced main-service replica keeps running after nginx moved on.
    pub drain_time: DurationText,
    /// How long running jobs may take to finish on SIGTERM/SIGINT.
    pub shutdown_grace: DurationText,
}

impl Default for JobsSection {
    fn default() -> Self {
        JobsSection {
            lanes: DEFAULT_LANES,
            keep_versions: DEFAULT_KEEP_VERSIONS,
            health_timeout: DurationText(DEFAULT_HEALTH_TIMEOUT.to_owned()),
            drain_time: DurationText(DEFAULT_DRAIN_TIME.to_owned()),
            shutdown_grace: DurationText(DEFAULT_SHUTDOWN_GRACE.to_owned()),
        }
    }
}

/// `[security]`: job signatures and image sources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySection {
    /// Public nkeys (`U…`) whose signed jobs are accepted.
    pub trusted_job_keys: Vec<String>,
    /// Public nkeys bound to the domains they may sign jobs for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub job_keys: Vec<JobKeySection>,
    /// Refuse unsigned jobs (implied when a key is trusted).
    pub require_signed_jobs: bool,
    /// May a deploy job have its images pulled from a registry.
    pub allow_registry_pulls: bool,
    /// The only directory a job's image `path:` may name (unset: none may).
    pub image_dir: Option<PathBuf>,
    /// Private image buckets of tenants, each bound to its domains.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub image_buckets: Vec<ImageBucketSection>,
    /// Domain patterns whose `exec` jobs (one-off commands) are allowed;
    /// empty: none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exec_domains: Vec<String>,
}

/// `[[security.image_buckets]]`: the object store a tenant's CI uploads
/// its images to; jobs of these domains load theirs from it only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageBucketSection {
    /// The bucket's name (`hostkit_images_<tenant>`).
    pub bucket: String,
    /// Domain patterns: `example.com`, `*.example.com` (subdomains).
    pub domains: Vec<String>,
}

/// `[[security.job_keys]]`: a CI identity's signing key and its domains.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobKeySection {
    /// The public nkey (`U…`).
    pub key: String,
    /// Domain patterns: `example.com`, `*.example.com` (subdomains), `*`.
    pub domains: Vec<String>,
}

/// `[tls]`: certificates over ACME.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    /// Obtain and renew certificates for every domain and its redirect
    /// domains (HTTP-01 through nginx).
    pub enabled: bool,
    /// The ACME server's directory URL.
    pub directory_url: String,
    /// Contact address of the ACME account (expiry mail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_email: Option<String>,
    /// The only root certificate (PEM) trusted for the ACME server's HTTPS;
    /// unset: the system's roots.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_root: Option<PathBuf>,
    /// Directory nginx serves `/.well-known/acme-challenge/` from.
    pub webroot: PathBuf,
}

impl Default for TlsSection {
    fn default() -> Self {
        TlsSection {
            enabled: false,
            directory_url: hostkit_deploy::tls::LETS_ENCRYPT.to_owned(),
            contact_email: None,
            ca_root: None,
            webroot: PathBuf::from(DEFAULT_ACME_WEBROOT),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSection {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Tracing filter (`info`, `hostkit_worker=debug,info`); `HOSTKIT_LOG`
    /// or `RUST_LOG` win over it.
    pub filter: String,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection {
            format: LogFormat::Text,
            filter: DEFAULT_LOG_FILTER.to_owned(),
        }
    }
}

/// A duration as written: a Go-style string (`"120s"`, `"1m30s"`) or an
/// integer number of seconds. Parsed during validation so that the error
/// names the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DurationText(pub String);

impl<'de> Deserialize<'de> for DurationText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DurationText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as \"120s\" or \"1m30s\", or a number of seconds")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(DurationText(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(DurationText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                if v < 0 {
                    return Err(E::custom(format!("a duration cannot be negative ({v})")));
                }
                Ok(DurationText(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string or a list of strings, as a list.
fn string_or_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Vec<String>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a URL or a list of URLs")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(vec![v.to_owned()])
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(item) = seq.next_element::<String>()? {
                out.push(item);
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}
