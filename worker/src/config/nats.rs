//! `[nats]`: validation, the client's [`ConnectOptions`], and URLs with
//! their passwords hidden.

use std::path::Path;

use async_nats::{ConnectOptions, ServerAddr};
use hostkit_proto::NodeId;
use hostkit_proto::sign::KeyPair;

use super::file::NatsSection;
use super::{
    Config, ConfigError, NatsAuth, NatsConfig, NatsUrl, Problems, REDACTED, Secret, TlsClient,
};

/// The default inbox prefix of a node's worker: `_INBOX_worker_<node>`. It
/// is a token of its own (not under `_INBOX.`), so that the server can give
/// every worker, and no one else, its own reply subjects.
pub fn default_inbox_prefix(node: &NodeId) -> String {
    format!("_INBOX_worker_{node}")
}

pub(super) fn validate(
    s: &NatsSection,
    node: Option<&NodeId>,
    p: &mut Problems,
) -> Option<NatsConfig> {
    let before = p.list.len();
    if s.urls.is_empty() {
        p.push("nats.urls", "must list at least one server");
    }
    let mut tls_url = false;
    for (i, url) in s.urls.iter().enumerate() {
        match url.trim().parse::<ServerAddr>() {
            Ok(addr) => tls_url |= addr.tls_required(),
            Err(e) => p.push(
                format!("nats.urls[{i}]"),
                format!(
                    "is not a NATS server URL ({}): {e}",
                    NatsUrl(url.clone()).redacted()
                ),
            ),
        }
    }

    let auth = auth(s, p);

    if let Some(ca) = &s.tls_ca_file {
        p.existing_file("nats.tls_ca_file", ca);
    }
    let tls_client = match (&s.tls_cert_file, &s.tls_key_file) {
        (None, None) => None,
        (Some(_), None) => {
            p.push(
                "nats.tls_key_file",
                "is missing: `nats.tls_cert_file` needs its key",
            );
            None
        }
        (None, Some(_)) => {
            p.push(
                "nats.tls_cert_file",
                "is missing: `nats.tls_key_file` needs its certificate",
            );
            None
        }
        (Some(cert), Some(key)) => {
            p.existing_file("nats.tls_cert_file", cert);
            p.existing_file("nats.tls_key_file", key);
            Some(TlsClient {
                cert_file: cert.clone(),
                key_file: key.clone(),
            })
        }
    };

    let inbox_prefix = match (&s.inbox_prefix, node) {
        (Some(prefix), _) => {
            if let Err(why) = check_inbox_prefix(prefix) {
                p.push("nats.inbox_prefix", why);
            }
            Some(prefix.clone())
        }
        (None, Some(node)) => Some(default_inbox_prefix(node)),
        // The node is invalid or missing: already reported.
        (None, None) => None,
    };

    let config = NatsConfig {
        urls: s
            .urls
            .iter()
            .map(|u| NatsUrl(u.trim().to_owned()))
            .collect(),
        auth: auth?,
        require_tls: s.require_tls || tls_url || s.tls_ca_file.is_some() || tls_client.is_some(),
        tls_ca_file: s.tls_ca_file.clone(),
        tls_client,
        inbox_prefix: inbox_prefix?,
    };
    (p.list.len() == before).then_some(config)
}

/// At most one authentication method, complete and readable.
fn auth(s: &NatsSection, p: &mut Problems) -> Option<NatsAuth> {
    let mut methods = Vec::new();
    if s.creds_file.is_some() {
        methods.push("creds_file");
    }
    if s.nkey_seed_file.is_some() {
        methods.push("nkey_seed_file");
    }
    if s.user.is_some() || s.password.is_some() {
        methods.push("user/password");
    }
    if s.token.is_some() {
        methods.push("token");
    }
    if methods.len() > 1 {
        p.push(
            "nats",
            format!(
                "sets more than one authentication method ({}): keep one",
                methods.join(", ")
            ),
        );
        return None;
    }
    if let Some(path) = &s.creds_file {
        p.existing_file("nats.creds_file", path);
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Err(e) = ConnectOptions::with_credentials(&text) {
                p.push(
                    "nats.creds_file",
                    format!("is not a NATS credentials file: {}: {e}", path.display()),
                );
            }
        }
        return Some(NatsAuth::CredsFile(path.clone()));
    }
    if let Some(path) = &s.nkey_seed_file {
        p.existing_file("nats.nkey_seed_file", path);
        if let Ok(text) = std::fs::read_to_string(path) {
            if let Err(why) = check_seed(text.trim()) {
                p.push("nats.nkey_seed_file", format!("{why}: {}", path.display()));
            }
        }
        return Some(NatsAuth::NkeySeedFile(path.clone()));
    }
    match (&s.user, &s.password) {
        (Some(user), Some(password)) => {
            if user.is_empty() {
                p.push("nats.user", "must not be empty");
            }
            if password.is_empty() {
                p.push("nats.password", "must not be empty");
            }
            return Some(NatsAuth::UserPassword {
                user: user.clone(),
                password: Secret::new(password.clone()),
            });
        }
        (Some(_), None) => {
            p.push("nats.password", "is missing: `nats.user` is set");
            return None;
        }
        (None, Some(_)) => {
            p.push("nats.user", "is missing: `nats.password` is set");
            return None;
        }
        (None, None) => {}
    }
    if let Some(token) = &s.token {
        if token.is_empty() {
            p.push("nats.token", "must not be empty");
        }
        return Some(NatsAuth::Token(Secret::new(token.clone())));
    }
    Some(NatsAuth::None)
}

/// A user nkey seed (`SU…`). The message never contains the seed.
fn check_seed(seed: &str) -> Result<KeyPair, String> {
    if !seed.starts_with("SU") {
        return Err("does not hold a user nkey seed (one line starting with `SU`)".to_owned());
    }
    KeyPair::from_seed(seed).map_err(|_| "holds an nkey seed that does not decode".to_owned())
}

/// A subject prefix: tokens of visible characters, no wildcards.
fn check_inbox_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if prefix
        .chars()
        .any(|c| c.is_whitespace() || c == '*' || c == '>')
    {
        return Err(format!(
            "must be a subject prefix without spaces or wildcards (got {prefix:?})"
        ));
    }
    if prefix.split('.').any(str::is_empty) {
        return Err(format!("has an empty token (got {prefix:?})"));
    }
    Ok(())
}

/// `url` with its password (if any) replaced by [`REDACTED`].
pub(super) fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return redact_userinfo(url);
    };
    format!("{scheme}://{}", redact_userinfo(rest))
}

fn redact_userinfo(rest: &str) -> String {
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:{REDACTED}"),
                // A lone user part may be a token.
                None => REDACTED.to_owned(),
            };
            format!("{user}@{host}{tail}")
        }
        None => rest.to_owned(),
    }
}

fn unreadable(key: &str, path: &Path, e: &std::io::Error) -> ConfigError {
    ConfigError::one(
        path.display().to_string(),
        key,
        format!("cannot be read: {e}"),
    )
}

impl Config {
    /// The servers to connect to (validated when the configuration was loaded).
    pub fn nats_servers(&self) -> Vec<ServerAddr> {
        self.nats
            .urls
            .iter()
            .filter_map(|url| url.expose().parse().ok())
            .collect()
    }

    /// Client options from `[nats]`: the authentication method, TLS (CA,
    /// client certificate, required), this worker's inbox prefix, its name,
    /// unlimited reconnects and `retry_on_initial_connect` (the worker starts
    /// even while NATS is down and connects when it is back).
    ///
    /// Reads the credentials or seed file now; fails naming the key when it
    /// cannot.
    pub fn connect_options(&self) -> Result<ConnectOptions, ConfigError> {
        let mut options = ConnectOptions::new()
            .name(format!("hostkit-worker {}", self.node))
            .custom_inbox_prefix(&self.nats.inbox_prefix)
            .retry_on_initial_connect()
            .max_reconnects(None);
        options = match &self.nats.auth {
            NatsAuth::None => options,
            NatsAuth::CredsFile(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| unreadable("nats.creds_file", path, &e))?;
                options.credentials(&text).map_err(|e| {
                    ConfigError::one(
                        path.display().to_string(),
                        "nats.creds_file",
                        format!("is not a NATS credentials file: {e}"),
                    )
                })?
            }
            NatsAuth::NkeySeedFile(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| unreadable("nats.nkey_seed_file", path, &e))?;
                let seed = text.trim();
                check_seed(seed).map_err(|why| {
                    ConfigError::one(path.display().to_string(), "nats.nkey_seed_file", why)
                })?;
                options.nkey(seed.to_owned())
            }
            NatsAuth::UserPassword { user, password } => {
                options.user_and_password(user.clone(), password.expose().to_owned())
            }
            NatsAuth::Token(token) => options.token(token.expose().to_owned()),
        };
        if let Some(ca) = &self.nats.tls_ca_file {
            options = options.add_root_certificates(ca.clone());
        }
        if let Some(client) = &self.nats.tls_client {
            options =
                options.add_client_certificate(client.cert_file.clone(), client.key_file.clone());
        }
        if self.nats.require_tls {
            options = options.require_tls(true);
        }
        Ok(options)
    }
}
