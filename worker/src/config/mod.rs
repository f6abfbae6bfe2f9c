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
//! | `[streams]` | `jobs_max_bytes`, `jobs_max_age`, `events_max_bytes`, `events_max_age`, `images_max_bytes`, `images_max_age` |
//! | `[stack_limits]` | [`hostkit_deploy::cgroup::StackLimits`]: `cgroup_root`, `memory`, `cpus`, `pids`, `[stack_limits.domains."<domain or *.domain>"]` |

pub mod check;
mod error;
pub mod file;
mod nats;
pub mod streams;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hostkit_deploy::cgroup::{Budget, StackLimits};
use hostkit_deploy::compose::duration::parse_duration;
use hostkit_deploy::policy::Policy;
use hostkit_deploy::ports::PortBlock;
use hostkit_deploy::proxy::ProxyConfig;
use hostkit_deploy::tls::AcmeConfig;
use hostkit_proto::sign::{DomainPattern, KeyPair};
use hostkit_proto::{Names, NodeId, TrustedKey};

pub use error::{ConfigError, EX_NOINPUT, EX_USAGE, Problem};
pub use file::FileConfig;

use crate::logging::LogFormat;
use file::DurationText;

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

/// The host port pool: `start..=end`, cut into blocks of `block_size`, one
/// block per domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortPool {
    /// First port.
    pub start: u16,
    /// Last port (inclusive).
    pub end: u16,
    /// Ports per domain.
    pub block_size: u16,
}

impl PortPool {
    /// How many domains the pool can hold.
    pub fn blocks(&self) -> u32 {
        (u32::from(self.end) - u32::from(self.start) + 1) / u32::from(self.block_size)
    }

    /// The `index`-th block (`0..blocks()`).
    pub fn block(&self, index: u32) -> Option<PortBlock> {
        if index >= self.blocks() {
            return None;
        }
        let start = u32::from(self.start) + index * u32::from(self.block_size);
        Some(PortBlock {
            start: u16::try_from(start).ok()?,
            len: self.block_size,
        })
    }
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
                block_size: self.ports.block_size,
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

/// Parses the TOML text into the file model; errors name the key (from
/// the deserializer's path) and the line.
fn parse_file(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
    let deserializer = toml::Deserializer::new(text);
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let origin = match inner.span() {
            Some(span) => format!("{origin}:{}", line_of(text, span.start)),
            None => origin.to_owned(),
        };
        let message = inner.message().trim().to_owned();
        let (key, message) = explain_parse_error(&path, &message);
        ConfigError::one(origin, key, message)
    })
}

/// Turns a serde path and message into a key and a fragment that reads
/// after it.
fn explain_parse_error(path: &str, message: &str) -> (String, String) {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let (field, expected) = rest.split_once('`').unwrap_or((rest, ""));
        let key = if path == "." || path.is_empty() {
            field.to_owned()
        } else if path.ends_with(field) {
            path.to_owned()
        } else {
            format!("{path}.{field}")
        };
        let expected = expected.trim_start_matches(',').trim();
        return (
            key,
            format!("is not a known key (a typo?); {expected}")
                .trim_end_matches("; ")
                .to_owned(),
        );
    }
    let message = message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    if path == "." || path.is_empty() {
        // A syntax error: it belongs to no key.
        return (String::new(), format!("is not valid TOML: {message}"));
    }
    (path.to_owned(), format!("is invalid: {message}"))
}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// Formats a duration so that [`parse_duration`] reads it back.
pub fn format_duration(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos() % 1_000_000 == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// Problems found so far, attributed to the file or to an override.
struct Problems {
    origin: String,
    sources: HashMap<&'static str, &'static str>,
    list: Vec<Problem>,
}

impl Problems {
    fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let base = key.split('[').next().unwrap_or(&key);
        let origin = match self.sources.get(base) {
            Some(source) => (*source).to_owned(),
            None => self.origin.clone(),
        };
        self.list.push(Problem {
            origin,
            key,
            message: message.into(),
        });
    }

    fn into_error(self) -> ConfigError {
        ConfigError::Invalid {
            problems: self.list,
        }
    }

    fn absolute(&mut self, key: &str, path: &Path) {
        if path.as_os_str().is_empty() {
            self.push(key, "must not be empty");
        } else if !path.is_absolute() {
            self.push(
                key,
                format!("must be an absolute path (got {:?})", path.display()),
            );
        }
    }

    /// An absolute path to an existing file.
    fn existing_file(&mut self, key: &str, path: &Path) {
        let before = self.list.len();
        self.absolute(key, path);
        if self.list.len() > before {
            return;
        }
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => self.push(key, format!("is not a file: {}", path.display())),
            Err(e) => self.push(key, format!("cannot be used: {}: {e}", path.display())),
        }
    }

    fn duration(&mut self, key: &str, text: &DurationText, min: Duration) -> Option<Duration> {
        match parse_duration(&text.0) {
            Ok(d) if d < min => {
                self.push(
                    key,
                    format!(
                        "must be at least {} (got {:?})",
                        format_duration(min),
                        text.0
                    ),
                );
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.push(key, format!("is not a duration: {e}"));
                None
            }
        }
    }

    fn not_blank(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(key, "must not be empty");
        }
    }

    fn command(&mut self, key: &str, argv: &[String]) {
        if argv.first().is_none_or(|program| program.trim().is_empty()) {
            self.push(
                key,
                "must name a program and its arguments (e.g. [\"nginx\", \"-t\"])",
            );
        }
    }
}

/// Checks every key; returns the resolved configuration when each part
/// could be resolved (problems may still have been recorded).
fn validate(file: &FileConfig, p: &mut Problems) -> Option<Config> {
    let node = match file.node.as_deref() {
        None => {
            p.push(
                "node",
                "is missing: set it in the file, with --node or with HOSTKIT_NODE",
            );
            None
        }
        Some(text) => match NodeId::parse(text) {
            Ok(node) => Some(node),
            Err(e) => {
                p.push("node", format!("is invalid: {e}"));
                None
            }
        },
    };
    let names = match Names::new(&file.subject_root) {
        Ok(names) => Some(names),
        Err(e) => {
            p.push("subject_root", format!("is invalid: {e}"));
            None
        }
    };
    p.absolute("data_dir", &file.data_dir);
    p.absolute("domains_root", &file.domains_root);

    let nats = nats::validate(&file.nats, node.as_ref(), p);
    let mut proxy = validate_proxy(&file.proxy, p);
    let tls = validate_tls(&file.tls, &file.data_dir, p);
    if let Some(proxy) = &mut proxy {
        proxy.own_certs_dir = Some(file.data_dir.join(CERTS_DIR));
        proxy.acme_webroot = tls.as_ref().map(|t| t.webroot.clone());
    } else if tls.is_some() {
        p.push(
            "tls.enabled",
            "needs `[proxy] enabled = true`: nginx answers the ACME challenges and serves the certificates",
        );
    }
    let ports = validate_ports(&file.ports, p);
    let jobs = validate_jobs(&file.jobs, p);
    let streams = streams::validate(&file.streams, p);
    let metrics_listen = match &file.metrics.listen {
        None => None,
        Some(text) => match text.parse::<std::net::SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                p.push(
                    "metrics.listen",
                    format!("{text:?} is not an address and port (e.g. \"127.0.0.1:9464\")"),
                );
                None
            }
        },
    };
    let security = validate_security(&file.security, p);
    let log = validate_log(&file.log, p);
    validate_policy(&file.policy, p);
    validate_stack_limits(&file.stack_limits, p);

    Some(Config {
        source: None,
        node: node?,
        names: names?,
        data_dir: file.data_dir.clone(),
        domains_root: file.domains_root.clone(),
        nats: nats?,
        proxy,
        ports: ports?,
        jobs: jobs?,
        streams: streams?,
        security,
        tls,
        log: log?,
        policy: file.policy.clone(),
        stack_limits: file.stack_limits.clone(),
        metrics_listen,
    })
}

fn validate_proxy(s: &file::ProxySection, p: &mut Problems) -> Option<ProxyConfig> {
    if !s.enabled {
        return None;
    }
    p.absolute("proxy.conf_dir", &s.conf_dir);
    p.command("proxy.test_command", &s.test_command);
    p.command("proxy.reload_command", &s.reload_command);
    p.not_blank("proxy.listen", &s.listen);
    p.not_blank("proxy.listen_tls", &s.listen_tls);
    let certs_dir = if s.certs_dir.as_os_str().is_empty() {
        None
    } else {
        p.absolute("proxy.certs_dir", &s.certs_dir);
        Some(s.certs_dir.clone())
    };
    let v1_sites_enabled = if s.v1_sites_enabled.as_os_str().is_empty() {
        None
    } else {
        p.absolute("proxy.v1_sites_enabled", &s.v1_sites_enabled);
        Some(s.v1_sites_enabled.clone())
    };
    Some(ProxyConfig {
        conf_dir: s.conf_dir.clone(),
        test_command: s.test_command.clone(),
        reload_command: s.reload_command.clone(),
        listen: s.listen.trim().to_owned(),
        listen_tls: s.listen_tls.trim().to_owned(),
        certs_dir,
        own_certs_dir: None,
        acme_webroot: None,
        verify_reload: s.verify_reload,
        v1_sites_enabled,
    })
}

fn validate_tls(s: &file::TlsSection, data_dir: &Path, p: &mut Problems) -> Option<AcmeConfig> {
    if !s.enabled {
        return None;
    }
    if !s.directory_url.starts_with("https://") {
        p.push(
            "tls.directory_url",
            format!(
                "must be an https:// URL (ACME runs over HTTPS), got {:?}",
                s.directory_url
            ),
        );
    }
    let contact_email = s.contact_email.as_deref().map(str::trim);
    if let Some(email) = contact_email.filter(|e| !e.is_empty())
        && (!email.contains('@') || email.contains(char::is_whitespace) || email.contains(','))
    {
        p.push(
            "tls.contact_email",
            format!("is not one e-mail address: {email:?}"),
        );
    }
    if let Some(root) = &s.ca_root {
        p.existing_file("tls.ca_root", root);
    }
    p.absolute("tls.webroot", &s.webroot);
    Some(AcmeConfig {
        directory_url: s.directory_url.clone(),
        contact_email: contact_email.filter(|e| !e.is_empty()).map(str::to_owned),
        ca_root: s.ca_root.clone(),
        account_dir: data_dir.join(ACME_DIR),
        webroot: s.webroot.clone(),
    })
}

/// Lowest port the pool may start at: below are privileged ports (nginx's 80/443, …).
const MIN_POOL_PORT: u16 = 1024;

fn validate_ports(s: &file::PortsSection, p: &mut Problems) -> Option<PortPool> {
    let before = p.list.len();
    if s.start < MIN_POOL_PORT {
        p.push(
            "ports.start",
            format!(
                "must be {MIN_POOL_PORT} or more (got {}): lower ports are privileged and taken by system services",
                s.start
            ),
        );
    }
    if s.start >= s.end {
        p.push(
            "ports.start",
            format!("must be below `ports.end` ({} ≥ {})", s.start, s.end),
        );
    }
    if s.block_size == 0 {
        p.push("ports.block_size", "must be at least 1");
    } else if s.start < s.end && u32::from(s.block_size) > u32::from(s.end - s.start) + 1 {
        p.push(
            "ports.block_size",
            format!(
                "({}) is larger than the pool ({} ports from `ports.start` to `ports.end`)",
                s.block_size,
                u32::from(s.end - s.start) + 1
            ),
        );
    }
    (p.list.len() == before).then_some(PortPool {
        start: s.start,
        end: s.end,
        block_size: s.block_size,
    })
}

/// Upper bound of `jobs.lanes`.
const MAX_LANES: usize = 256;
/// Upper bound of `jobs.keep_versions`.
const MAX_KEEP_VERSIONS: u32 = 1000;

fn validate_jobs(s: &file::JobsSection, p: &mut Problems) -> Option<JobsConfig> {
    let before = p.list.len();
    if s.lanes == 0 || s.lanes > MAX_LANES {
        p.push(
            "jobs.lanes",
            format!("must be between 1 and {MAX_LANES} (got {})", s.lanes),
        );
    }
    if s.keep_versions == 0 || s.keep_versions > MAX_KEEP_VERSIONS {
        p.push(
            "jobs.keep_versions",
            format!(
                "must be between 1 and {MAX_KEEP_VERSIONS} (got {}): the current version is always kept",
                s.keep_versions
            ),
        );
    }
    let health_timeout = p.duration(
        "jobs.health_timeout",
        &s.health_timeout,
        Duration::from_secs(1),
    );
    let drain_time = p.duration("jobs.drain_time", &s.drain_time, Duration::ZERO);
    let shutdown_grace = p.duration(
        "jobs.shutdown_grace",
        &s.shutdown_grace,
        Duration::from_secs(1),
    );
    let jobs = JobsConfig {
        lanes: s.lanes,
        keep_versions: s.keep_versions,
        health_timeout: health_timeout?,
        drain_time: drain_time?,
        shutdown_grace: shutdown_grace?,
    };
    (p.list.len() == before).then_some(jobs)
}

fn validate_security(s: &file::SecuritySection, p: &mut Problems) -> SecurityConfig {
    for (i, key) in s.trusted_job_keys.iter().enumerate() {
        let valid = key.starts_with('U') && KeyPair::from_public_key(key).is_ok();
        if !valid {
            p.push(
                format!("security.trusted_job_keys[{i}]"),
                format!("is not a user public nkey (56 characters starting with `U`): {key:?}"),
            );
        }
    }
    if let Some(dir) = s.image_dir.as_ref().filter(|d| !d.is_absolute()) {
        p.push(
            "security.image_dir",
            format!("`{}` must be an absolute path", dir.display()),
        );
    }
    let mut job_keys = Vec::new();
    for (i, entry) in s.job_keys.iter().enumerate() {
        let valid = entry.key.starts_with('U') && KeyPair::from_public_key(&entry.key).is_ok();
        if !valid {
            p.push(
                format!("security.job_keys[{i}].key"),
                format!(
                    "is not a user public nkey (56 characters starting with `U`): {:?}",
                    entry.key
                ),
            );
        }
        let domains = domain_patterns(
            &format!("security.job_keys[{i}].domains"),
            &entry.domains,
            "the key could sign for no domain",
            p,
        );
        job_keys.push(TrustedKey {
            key: entry.key.clone(),
            domains,
        });
    }
    let mut image_buckets = Vec::new();
    for (i, entry) in s.image_buckets.iter().enumerate() {
        if !hostkit_proto::name::is_bucket_name(&entry.bucket) {
            p.push(
                format!("security.image_buckets[{i}].bucket"),
                format!(
                    "is not a bucket name (letters, digits, `_` and `-`): {:?}",
                    entry.bucket
                ),
            );
        }
        let domains = domain_patterns(
            &format!("security.image_buckets[{i}].domains"),
            &entry.domains,
            "the bucket would serve no domain",
            p,
        );
        image_buckets.push(ImageBucket {
            bucket: entry.bucket.clone(),
            domains,
        });
    }
    let exec_domains = if s.exec_domains.is_empty() {
        Vec::new()
    } else {
        domain_patterns("security.exec_domains", &s.exec_domains, "", p)
    };
    if s.require_signed_jobs && s.trusted_job_keys.is_empty() && s.job_keys.is_empty() {
        p.push(
            "security.require_signed_jobs",
            "is true but no key is trusted (`security.trusted_job_keys`, `security.job_keys`): no job could ever be accepted",
        );
    }
    SecurityConfig {
        trusted_job_keys: s.trusted_job_keys.clone(),
        job_keys,
        require_signed_jobs: s.require_signed_jobs,
        allow_registry_pulls: s.allow_registry_pulls,
        image_dir: s.image_dir.clone(),
        image_buckets,
        exec_domains,
    }
}

/// A non-empty list of domain patterns (`example.com`, `*.example.com`);
/// each bad one is reported under `key[j]`.
fn domain_patterns(
    key: &str,
    patterns: &[String],
    empty: &str,
    p: &mut Problems,
) -> Vec<DomainPattern> {
    if patterns.is_empty() {
        p.push(key, format!("is empty: {empty}"));
    }
    let mut domains = Vec::new();
    for (j, pattern) in patterns.iter().enumerate() {
        match pattern.parse::<DomainPattern>() {
            Ok(pattern) => domains.push(pattern),
            Err(e) => p.push(format!("{key}[{j}]"), e),
        }
    }
    domains
}

fn validate_log(s: &file::LogSection, p: &mut Problems) -> Option<LogConfig> {
    match crate::logging::parse_filter(&s.filter) {
        Ok(_) => Some(LogConfig {
            format: s.format,
            filter: s.filter.clone(),
        }),
        Err(e) => {
            p.push("log.filter", format!("is not a tracing filter: {e}"));
            None
        }
    }
}

fn validate_policy(policy: &Policy, p: &mut Problems) {
    if let Some(cpus) = policy.max_cpus
        && !(cpus.is_finite() && cpus > 0.0)
    {
        p.push(
            "policy.max_cpus",
            format!("must be a positive number (got {cpus})"),
        );
    }
    if policy.max_replicas == Some(0) {
        p.push("policy.max_replicas", "must be at least 1");
    }
    if policy.max_pids == Some(0) {
        p.push("policy.max_pids", "must be at least 1");
    }
    if policy.max_memory == Some(0) {
        p.push("policy.max_memory", "must be more than 0 bytes");
    }
    for (i, cap) in policy.allowed_cap_add.iter().enumerate() {
        let upper = cap.trim().to_ascii_uppercase();
        let name = upper.strip_prefix("CAP_").unwrap_or(&upper);
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') {
            p.push(
                format!("policy.allowed_cap_add[{i}]"),
                format!("is not a capability name such as \"NET_ADMIN\" (got {cap:?})"),
            );
        }
    }
}

/// Smallest memory budget of a stack: the engine's minimum for one container.
const MIN_STACK_MEMORY: u64 = 6 << 20;
/// Smallest CPU budget of a stack: the kernel's minimum CFS quota (1 ms per
/// 100 ms period).
const MIN_STACK_CPUS: f64 = 0.01;

fn validate_stack_limits(limits: &StackLimits, p: &mut Problems) {
    p.absolute("stack_limits.cgroup_root", &limits.cgroup_root);
    validate_budget("stack_limits", &limits.default_budget(), p);
    for (key, budget) in &limits.domains {
        let at = format!("stack_limits.domains.\"{key}\"");
        if let Err(e) = key.parse::<DomainPattern>() {
            p.push(
                at.clone(),
                format!("is not a domain or `*.<domain>` pattern: {e}"),
            );
        }
        validate_budget(&at, budget, p);
    }
}

fn validate_budget(at: &str, budget: &Budget, p: &mut Problems) {
    if let Some(cpus) = budget.cpus
        && !(cpus.is_finite() && cpus >= MIN_STACK_CPUS)
    {
        p.push(
            format!("{at}.cpus"),
            format!("must be a number of at least {MIN_STACK_CPUS} (got {cpus})"),
        );
    }
    if let Some(memory) = budget.memory.filter(|m| *m < MIN_STACK_MEMORY) {
        p.push(
            format!("{at}.memory"),
            format!("must be at least 6m, the least a container can run in (got {memory} bytes)"),
        );
    }
    if budget.pids == Some(0) {
        p.push(format!("{at}.pids"), "must be at least 1");
    }
}
