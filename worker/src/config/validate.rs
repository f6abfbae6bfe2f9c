//! Reading and checking worker.toml: the TOML text parsed into the file
//! model (errors name the key and the line), then every section validated
//! into the [`Config`](super::Config) types, all problems collected at once
//! (`Problems`), each naming its key.

use super::*;

/// Parses the TOML text into the file model; errors name the key (from
/// the deserializer's path) and the line.
pub(super) fn parse_file(text: &str, origin: &str) -> Result<FileConfig, ConfigError> {
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
pub(super) struct Problems {
    pub(super) origin: String,
    pub(super) sources: HashMap<&'static str, &'static str>,
    pub(super) list: Vec<Problem>,
}

impl Problems {
    pub(super) fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
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

    pub(super) fn into_error(self) -> ConfigError {
        ConfigError::Invalid {
            problems: self.list,
        }
    }

    pub(super) fn absolute(&mut self, key: &str, path: &Path) {
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
    pub(super) fn existing_file(&mut self, key: &str, path: &Path) {
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

    pub(super) fn duration(
        &mut self,
        key: &str,
        text: &DurationText,
        min: Duration,
    ) -> Option<Duration> {
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

    pub(super) fn not_blank(&mut self, key: &str, value: &str) {
        if value.trim().is_empty() {
            self.push(key, "must not be empty");
        }
    }

    pub(super) fn command(&mut self, key: &str, argv: &[String]) {
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
pub(super) fn validate(file: &FileConfig, p: &mut Problems) -> Option<Config> {
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
        block_len: s.block_size,
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
