//! The worker's configuration: one TOML file (`/etc/hostkit/worker.toml`),
//! a few flag / environment overrides, parsed once into a validated
//! [`Config`].
//!
//! Precedence, highest first: command-line flag, environment variable, the
//! file, the built-in default. Unknown keys are errors (a typo must not
//! silently fall back to a default), and every error names its key:
//!
//! ```text
//! /etc/hostkit/worker.toml: `ports.start` must be below `ports.end` (30000 ≥ 20000)
//! ```
//!
//! The file's layout (see `dist/worker.toml` for every key, commented):
//!
//! | table | keys |
//! | --- | --- |
//! | (top) | `node`, `subject_root`, `data_dir`, `domains_root` |
//! | `[nats]` | `urls`, `creds_file`, `nkey_seed_file`, `user`, `password`, `token`, `tls_ca_file`, `tls_cert_file`, `tls_key_file`, `require_tls`, `inbox_prefix` |
//! | `[proxy]` | `enabled`, `conf_dir`, `test_command`, `reload_command`, `listen`, `listen_tls`, `certs_dir`, `verify_reload`, `v1_sites_enabled` |
//! | `[ports]` | `start`, `end`, `block_size` |
//! | `[jobs]` | `lanes`, `keep_versions`, `health_timeout`, `drain_time`, `shutdown_grace` |
//! | `[security]` | `trusted_job_keys`, `job_keys` (`key`, `domains`), `require_signed_jobs`, `allow_registry_pulls`, `image_dir`, `image_buckets` (`bucket`, `domains`), `exec_domains` |
//! | `[tls]` | `enabled`, `directory_url`, `contact_email`, `ca_root`, `webroot` |
//! | `[log]` | `format`, `filter` |
//! | `[policy]` | [`hostkit_deploy::policy::Policy`] |
//! | `[metrics]` | `listen` |
//! | `[streams]` | `replicas`, `jobs_max_bytes`, `jobs_max_age`, `events_max_bytes`, `events_max_age`, `images_max_bytes`, `images_max_age` |
//! | `[stack_limits]` | [`hostkit_deploy::cgroup::StackLimits`]: `cgroup_root`, `memory`, `cpus`, `pids`, `[stack_limits.domains."<domain or *.domain>"]` |

pub mod check;
mod error;
pub mod file;
mod nats;
pub mod streams;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostkit_deploy::cgroup::{Budget, StackLimits};
use hostkit_deploy::compose::duration::parse_duration;
use hostkit_deploy::policy::Policy;
use hostkit_deploy::proxy::ProxyConfig;
use hostkit_deploy::tls::AcmeConfig;
use hostkit_proto::sign::{DomainPattern, KeyPair};
use hostkit_proto::{Names, NodeId, TrustedKey};

pub use error::{ConfigError, EX_NOINPUT, EX_USAGE, Problem};
pub use file::FileConfig;

use crate::logging::LogFormat;
pub use crate::store::PortPool;
use file::DurationText;
pub use validate::format_duration;
use validate::{Problems, parse_file, validate};

/// Where the worker looks for its configuration by default.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/hostkit/worker.toml";
/// The SQLite database's file name inside [`Config::data_dir`].
pub const DATABASE_FILE: &str = "worker.db";
/// HostKit's own certificates: `<data_dir>/certs/<domain>/`.
pub const CERTS_DIR: &str = "certs";
/// The ACME account: `<data_dir>/acme/`.
pub const ACME_DIR: &str = "acme";
/// How secrets are shown.
pub const REDACTED: &str = "<redacted>";

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file it was loaded from (`None` when parsed from text).
    pub source: Option<PathBuf>,
    /// This worker's node id.
    pub node: NodeId,
    /// Every subject, stream, bucket name, under `subject_root`.
    pub names: Names,
    /// State directory; the SQLite database is [`Config::database_path`].
    pub data_dir: PathBuf,
    /// Root of the on-disk view: `<domains_root>/<domain>/`.
    pub domains_root: PathBuf,
    /// NATS servers, authentication, TLS.
    pub nats: NatsConfig,
    /// nginx; `None` when `[proxy] enabled = false`.
    pub proxy: Option<ProxyConfig>,
    /// The host port pool.
    pub ports: PortPool,
    /// Concurrency, retention and timing of jobs.
    pub jobs: JobsConfig,
    /// Job signatures and image sources.
    pub security: SecurityConfig,
    /// Certificates over ACME; `None` when `[tls] enabled = false`.
    pub tls: Option<AcmeConfig>,
    /// Log output.
    pub log: LogConfig,
    /// The compose policy.
    pub policy: Policy,
    /// Budgets of whole stacks, per domain.
    pub stack_limits: StackLimits,
    /// `[streams]`: bounds of the streams and buckets this worker creates.
    pub streams: hostkit_proto::subjects::settings::StreamBounds,
    /// `[metrics] listen`: where Prometheus metrics are served (`None`: off).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// `[nats]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URLs, in order (the client picks among them on reconnect).
    pub urls: Vec<NatsUrl>,
    /// How the worker authenticates.
    pub auth: NatsAuth,
    /// CA certificate(s) to verify the server with.
    pub tls_ca_file: Option<PathBuf>,
    /// Client certificate and key.
    pub tls_client: Option<TlsClient>,
    /// TLS is required (set, or implied by a CA file, a client certificate
    /// or a `tls://` URL).
    pub require_tls: bool,
    /// Prefix of the worker's reply subjects (`_INBOX_worker_<node>`): the
    /// server's permissions give each worker its own, so no other client can
    /// read what the worker pulls or is answered.
    pub inbox_prefix: String,
}

/// A NATS server URL; its `Debug` hides a password in it.
#[derive(Clone, PartialEq, Eq)]
pub struct NatsUrl(String);

impl NatsUrl {
    /// The URL as configured (may hold a password: do not log).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL with any password replaced.
    pub fn redacted(&self) -> String {
        nats::redact_url(&self.0)
    }
}

impl fmt::Debug for NatsUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NatsUrl({:?})", self.redacted())
    }
}

/// A secret string: `Debug` and `Display` print [`REDACTED`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// How the worker authenticates to NATS (at most one method).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// No credentials (a server without authorization).
    None,
    /// A `.creds` file (JWT and nkey seed).
    CredsFile(PathBuf),
    /// A file holding a user nkey seed (`SU…`).
    NkeySeedFile(PathBuf),
    /// User and password.
    UserPassword {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// A token.
    Token(Secret),
}

/// A TLS client certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsClient {
    /// Certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Private key (PEM).
    pub key_file: PathBuf,
}

/// `[jobs]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobsConfig {
    /// Domains whose jobs run at once (lanes); a lane runs one job at a time.
    pub lanes: usize,
    /// Stack versions kept per domain (K); older ones and their images go.
    pub keep_versions: u32,
    /// Health timeout of a deploy whose job sets none.
    pub health_timeout: Duration,
    /// How long a replaced main-service replica keeps running after nginx
    /// switched to the new one (in-flight requests finish).
    pub drain_time: Duration,
    /// On SIGTERM/SIGINT: how long running jobs may take to reach their end.
    pub shutdown_grace: Duration,
}

/// `[security]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// Public nkeys (`U…`) whose job signatures are accepted for every
    /// domain (`trusted_job_keys`, an operator's).
    pub trusted_job_keys: Vec<String>,
    /// Keys bound to domain patterns (`[[security.job_keys]]`, a CI
    /// identity's).
    pub job_keys: Vec<TrustedKey>,
    /// `require_signed_jobs` as written (see [`SecurityConfig::signing_required`]).
    pub require_signed_jobs: bool,
    /// Whether a deploy may pull its images from a registry.
    pub allow_registry_pulls: bool,
    /// The only directory a job's image `path:` may name (`None`: none may).
    pub image_dir: Option<PathBuf>,
    /// Private image buckets (`[[security.image_buckets]]`).
    pub image_buckets: Vec<ImageBucket>,
    /// The domains whose `exec` jobs may run (`exec_domains`; empty: none).
    pub exec_domains: Vec<DomainPattern>,
}

/// A tenant's private image bucket and the domains whose jobs load their
/// image blobs from it (and from no other bucket).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageBucket {
    /// The object store's name.
    pub bucket: String,
    /// The domains it serves.
    pub domains: Vec<DomainPattern>,
}

impl SecurityConfig {
    /// Whether one-off commands (`exec` jobs) may run for `domain`.
    pub fn exec_allowed(&self, domain: &hostkit_proto::Domain) -> bool {
        self.exec_domains.iter().any(|p| p.matches(domain))
    }

    /// Jobs must carry a signature by one of [`trusted_job_keys`](Self::trusted_job_keys):
    /// when the list is not empty, or when `require_signed_jobs = true`.
    pub fn signing_required(&self) -> bool {
        self.require_signed_jobs || !self.trusted_keys().is_empty()
    }

    /// Every trusted key with its domains.
    pub fn trusted_keys(&self) -> Vec<TrustedKey> {
        self.trusted_job_keys
            .iter()
            .map(|k| TrustedKey::any_domain(k.clone()))
            .chain(self.job_keys.iter().cloned())
            .collect()
    }
}

/// `[log]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: LogFormat,
    /// Default tracing filter (`HOSTKIT_LOG`, then `RUST_LOG`, win over it).
    pub filter: String,
}

/// Values given on the command line or in the environment; each wins over
/// the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--node` / `HOSTKIT_NODE`.
    pub node: Option<String>,
    /// `--nats-url` / `NATS_URL` (comma-separated).
    pub nats_urls: Option<Vec<String>>,
    /// `--data-dir` / `HOSTKIT_DATA_DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--log-format` / `HOSTKIT_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
}

impl Overrides {
    /// The keys these overrides set, with the flag and variable that set them.
    pub fn sources(&self) -> Vec<(&'static str, &'static str)> {
        let mut out = Vec::new();
        if self.node.is_some() {
            out.push(("node", "--node/HOSTKIT_NODE"));
        }
        if self.nats_urls.is_some() {
            out.push(("nats.urls", "--nats-url/NATS_URL"));
        }
        if self.data_dir.is_some() {
            out.push(("data_dir", "--data-dir/HOSTKIT_DATA_DIR"));
        }
        if self.log_format.is_some() {
            out.push(("log.format", "--log-format/HOSTKIT_LOG_FORMAT"));
        }
        out
    }
}

impl Config {
    /// Reads, parses and validates the file at `path`, then applies `overrides`.
    pub fn load(path: &Path, overrides: &Overrides) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut config = Config::parse(&text, &path.display().to_string(), overrides)?;
        config.source = Some(path.to_path_buf());
        Ok(config)
    }

    /// Parses and validates TOML `text`; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = parse_file(text, origin)?;
        Config::resolve(file, origin, overrides)
    }

    /// Validates an already parsed file with `overrides` applied.
    pub fn resolve(
        mut file: FileConfig,
        origin: &str,
        overrides: &Overrides,
    ) -> Result<Config, ConfigError> {
        if let Some(node) = &overrides.node {
            file.node = Some(node.clone());
        }
        if let Some(urls) = &overrides.nats_urls {
            file.nats.urls = urls.clone();
        }
        if let Some(dir) = &overrides.data_dir {
            file.data_dir = std::path::absolute(dir).unwrap_or_else(|_| dir.clone());
        }
        if let Some(format) = overrides.log_format {
            file.log.format = format;
        }
        let mut p = Problems {
            origin: origin.to_owned(),
            sources: overrides.sources().into_iter().collect(),
            list: Vec::new(),
        };
        let resolved = validate(&file, &mut p);
        match resolved {
            Some(config) if p.list.is_empty() => Ok(config),
            _ => Err(p.into_error()),
        }
    }

    /// The SQLite database: `<data_dir>/worker.db`.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// The configuration as a file again, with secrets replaced by
    /// [`REDACTED`]: what `check-config` prints. It parses back.
    pub fn to_file_redacted(&self) -> FileConfig {
        let (mut creds_file, mut nkey_seed_file, mut user, mut password, mut token) =
            (None, None, None, None, None);
        match &self.nats.auth {
            NatsAuth::None => {}
            NatsAuth::CredsFile(path) => creds_file = Some(path.clone()),
            NatsAuth::NkeySeedFile(path) => nkey_seed_file = Some(path.clone()),
            NatsAuth::UserPassword { user: u, .. } => {
                user = Some(u.clone());
                password = Some(REDACTED.to_owned());
            }
            NatsAuth::Token(_) => token = Some(REDACTED.to_owned()),
        }
        let tls = match &self.tls {
            Some(t) => file::TlsSection {
                enabled: true,
                directory_url: t.directory_url.clone(),
                contact_email: t.contact_email.clone(),
                ca_root: t.ca_root.clone(),
                webroot: t.webroot.clone(),
            },
            None => file::TlsSection::default(),
        };
        let proxy = match &self.proxy {
            Some(p) => file::ProxySection {
                enabled: true,
                conf_dir: p.conf_dir.clone(),
                test_command: p.test_command.clone(),
                reload_command: p.reload_command.clone(),
                listen: p.listen.clone(),
                listen_tls: p.listen_tls.clone(),
                certs_dir: p.certs_dir.clone().unwrap_or_default(),
                verify_reload: p.verify_reload,
                v1_sites_enabled: p.v1_sites_enabled.clone().unwrap_or_default(),
            },
            None => file::ProxySection {
                enabled: false,
                ..file::ProxySection::default()
            },
        };
        FileConfig {
            node: Some(self.node.to_string()),
            subject_root: self.names.root().to_owned(),
            data_dir: self.data_dir.clone(),
            domains_root: self.domains_root.clone(),
            nats: file::NatsSection {
                urls: self.nats.urls.iter().map(NatsUrl::redacted).collect(),
                creds_file,
                nkey_seed_file,
                user,
                password,
                token,
                tls_ca_file: self.nats.tls_ca_file.clone(),
                tls_cert_file: self.nats.tls_client.as_ref().map(|c| c.cert_file.clone()),
                tls_key_file: self.nats.tls_client.as_ref().map(|c| c.key_file.clone()),
                require_tls: self.nats.require_tls,
                inbox_prefix: Some(self.nats.inbox_prefix.clone()),
            },
            proxy,
            ports: file::PortsSection {
                start: self.ports.start,
                end: self.ports.end,
                block_size: self.ports.block_len,
            },
            jobs: file::JobsSection {
                lanes: self.jobs.lanes,
                keep_versions: self.jobs.keep_versions,
                health_timeout: DurationText(format_duration(self.jobs.health_timeout)),
                drain_time: DurationText(format_duration(self.jobs.drain_time)),
                shutdown_grace: DurationText(format_duration(self.jobs.shutdown_grace)),
            },
            security: file::SecuritySection {
                trusted_job_keys: self.security.trusted_job_keys.clone(),
                job_keys: self
                    .security
                    .job_keys
                    .iter()
                    .map(|k| file::JobKeySection {
                        key: k.key.clone(),
                        domains: k.domains.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
                require_signed_jobs: self.security.require_signed_jobs,
                allow_registry_pulls: self.security.allow_registry_pulls,
                image_dir: self.security.image_dir.clone(),
                image_buckets: self
                    .security
                    .image_buckets
                    .iter()
                    .map(|b| file::ImageBucketSection {
                        bucket: b.bucket.clone(),
                        domains: b.domains.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
                exec_domains: self
                    .security
                    .exec_domains
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            },
            tls,
            log: file::LogSection {
                format: self.log.format,
                filter: self.log.filter.clone(),
            },
            policy: self.policy.clone(),
            stack_limits: self.stack_limits.clone(),
            streams: streams::to_file(&self.streams),
            metrics: file::MetricsSection {
                listen: self.metrics_listen.map(|a| a.to_string()),
            },
        }
    }

    /// [`to_file_redacted`](Self::to_file_redacted) as TOML.
    pub fn render_redacted(&self) -> String {
        toml::to_string(&self.to_file_redacted())
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"))
    }
}
