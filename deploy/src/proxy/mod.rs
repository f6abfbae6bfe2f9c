//! nginx in front of each domain: one file per domain, rendered from the
//! main service's host ports and the domain's redirect domains, written
//! atomically, checked with `nginx -t` and reloaded. A rejected config
//! restores the previous file and fails with `proxy.invalid` carrying
//! nginx's own message.
//!
//! - `render`: the file's text ([`Site`] is what it routes).
//! - `certs`: which certificate it serves (HostKit's own, else certbot's).

pub mod certs;
mod render;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use hostkit_proto::Domain;
use serde::Deserialize;

pub use certs::CertFiles;
pub use render::Site;
use render::{config_id, render};

use crate::v1;

/// Where and how nginx is driven.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Directory holding one `<domain>.conf` per domain (included by nginx).
    pub conf_dir: PathBuf,
    /// Command that checks the whole configuration (`nginx -t`).
    pub test_command: Vec<String>,
    /// Command that makes nginx load the new configuration gracefully.
    pub reload_command: Vec<String>,
    /// `listen` argument of the plain-HTTP server block.
    pub listen: String,
    /// `listen` argument of the TLS server block.
    pub listen_tls: String,
    /// certbot's live directory: `<domain>/fullchain.pem` and
    /// `<domain>/privkey.pem` (or a `<domain>-NNNN` lineage); served until
    /// HostKit's own certificate replaces it.
    pub certs_dir: Option<PathBuf>,
    /// HostKit's own certificates (obtained over ACME):
    /// `<own_certs_dir>/<domain>/{fullchain,privkey}.pem`; preferred.
    pub own_certs_dir: Option<PathBuf>,
    /// Directory nginx serves `/.well-known/acme-challenge/` from on every
    /// plain-HTTP block (`None`: no such location).
    pub acme_webroot: Option<PathBuf>,
    /// After a reload, wait (bounded) until nginx answers with the new
    /// configuration: `nginx -s reload` returns before new workers serve it.
    pub verify_reload: bool,
    /// HostKit v1's `sites-enabled` directory: a v1 site of a domain is
    /// retired from it when HostKit's file starts serving the domain, in
    /// the same check and reload ([`crate::v1::nginx`]).
    pub v1_sites_enabled: Option<PathBuf>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            conf_dir: PathBuf::from("/etc/nginx/hostkit.d"),
            test_command: vec!["nginx".into(), "-t".into(), "-q".into()],
            reload_command: vec!["nginx".into(), "-s".into(), "reload".into()],
            listen: "80".into(),
            listen_tls: "443 ssl".into(),
            certs_dir: Some(PathBuf::from("/etc/letsencrypt/live")),
            own_certs_dir: None,
            acme_webroot: None,
            verify_reload: true,
            v1_sites_enabled: Some(PathBuf::from("/etc/nginx/sites-enabled")),
        }
    }
}

/// Why the proxy could not be switched.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// nginx rejected the rendered configuration; the previous file is back.
    #[error("nginx rejected the configuration for {domain}: {message}")]
    Invalid { domain: String, message: String },
    /// The reload command failed.
    #[error("reloading nginx failed: {message}")]
    Reload { message: String },
    /// A command could not be run at all.
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing or restoring the domain's file failed.
    #[error("writing {path} failed")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The proxy was asked to route to nothing.
    #[error("no upstream to route {domain} to")]
    NoUpstreams { domain: String },
    /// A certificate was to be installed but no directory is configured.
    #[error("no directory for HostKit's certificates is configured")]
    NoCertsDir,
}

impl ProxyError {
    /// Stable wire code (`proxy.invalid`).
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        hostkit_proto::ErrorCode::ProxyInvalid
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            ProxyError::Invalid { .. } => {
                "check nginx's message; the previous configuration is still in place"
            }
            ProxyError::Reload { .. } | ProxyError::Spawn { .. } => {
                "is nginx running, and may the worker run its reload command?"
            }
            ProxyError::Write { .. } => "check the permissions of the nginx config directory",
            ProxyError::NoUpstreams { .. } => "the main service has no published port",
            ProxyError::NoCertsDir => {
                "set the worker's data_dir (certificates live in <data_dir>/certs)"
            }
        }
    }
}

/// Drives nginx for all domains of this host.
#[derive(Debug, Clone)]
pub struct Proxy {
    config: ProxyConfig,
    /// Held from a file's write to nginx serving it (or the file's
    /// restore): `nginx -t` and reloads cover every domain's file, so a
    /// switch must not check or load another domain's file in between
    /// (lanes of different domains run at once). Shared by clones.
    busy: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Proxy {
    /// A proxy driven by `config`.
    pub fn new(config: ProxyConfig) -> Self {
        Proxy {
            config,
            busy: Default::default(),
        }
    }

    /// The file that holds `domain`'s server block.
    pub fn conf_path(&self, domain: &Domain) -> PathBuf {
        self.config.conf_dir.join(format!("{domain}.conf"))
    }

    /// The configuration.
    pub fn config(&self) -> &ProxyConfig {
        &self.config
    }

    /// Whether nginx has a file for `domain` (it routes it).
    pub async fn serves(&self, domain: &Domain) -> bool {
        tokio::fs::try_exists(self.conf_path(domain))
            .await
            .unwrap_or(false)
    }

    /// Render `domain`'s file for `site` with the certificate chosen now.
    pub async fn render(&self, domain: &Domain, site: &Site) -> String {
        let (config, domain, site) = (self.config.clone(), domain.clone(), site.clone());
        tokio::task::spawn_blocking(move || {
            render(
                &config,
                &domain,
                &site,
                certs::choose(&config, &domain).as_ref(),
            )
        })
        .await
        .unwrap_or_default()
    }

    /// Poll nginx's plain-HTTP listener until `domain`'s config probe answers
    /// `wanted` (`Some(id)`: the reloaded workers serve that file; `None`:
    /// nothing is served for the domain any more). Old workers keep accepting
    /// for a moment after a reload, so several answers in a row must agree.
    async fn wait_for_probe(
        &self,
        domain: &Domain,
        wanted: Option<&str>,
    ) -> Result<(), ProxyError> {
        let addr = probe_address(&self.config.listen);
        let deadline = tokio::time::Instant::now() + RELOAD_WAIT;
        let mut in_a_row = 0;
        loop {
            if probe(&addr, domain).await.as_deref() == wanted {
                in_a_row += 1;
                if in_a_row == 5 {
                    return Ok(());
                }
            } else {
                in_a_row = 0;
            }
            if tokio::time::Instant::now() >= deadline {
                let what = match wanted {
                    Some(_) => "serve the new configuration".to_string(),
                    None => format!("stop serving {domain}"),
                };
                return Err(ProxyError::Reload {
                    message: format!("nginx on {addr} did not {what} within {RELOAD_WAIT:?}"),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Route `domain` to `upstreams`, and `redirects` to `domain` with a
    /// 301: write, check, reload. When nginx rejects the result, the
    /// previous file is restored and nginx is left as it was. Answers
    /// whether anything changed (an identical file is neither rewritten nor
    /// reloaded).
    pub async fn switch(
        &self,
        domain: &Domain,
        upstreams: &[String],
        redirects: &[Domain],
    ) -> Result<bool, ProxyError> {
        if upstreams.is_empty() {
            return Err(ProxyError::NoUpstreams {
                domain: domain.to_string(),
            });
        }
        let site = Site {
            upstreams: upstreams.to_vec(),
            redirects: redirects.to_vec(),
        };
        let _busy = self.busy.lock().await;
        self.install(domain, &site).await
    }

    /// Render `domain`'s file again from what it routes now (its
    /// certificate changed). `Ok(false)` when nothing changed or nginx has
    /// no file for the domain (nothing to serve a certificate for).
    pub async fn refresh(&self, domain: &Domain) -> Result<bool, ProxyError> {
        let _busy = self.busy.lock().await;
        self.refresh_locked(domain).await
    }

    async fn refresh_locked(&self, domain: &Domain) -> Result<bool, ProxyError> {
        let Some(current) = read_optional(&self.conf_path(domain)).await? else {
            return Ok(false);
        };
        match Site::of_file(&current) {
            Some(site) => self.install(domain, &site).await,
            // A file from before HostKit wrote its site line: the next
            // deploy renders it with the certificate.
            None => Ok(false),
        }
    }

    /// Make `chain_pem` and `key_pem` HostKit's certificate for `domain`
    /// (written atomically, the key 0600) and serve it. When nginx rejects
    /// the result, the previous files (if any) and configuration are put
    /// back.
    pub async fn install_certificate(
        &self,
        domain: &Domain,
        chain_pem: &str,
        key_pem: &str,
    ) -> Result<bool, ProxyError> {
        let files = certs::own(&self.config, domain).ok_or(ProxyError::NoCertsDir)?;
        let _busy = self.busy.lock().await;
        let previous = (
            read_optional(&files.cert).await?,
            read_optional(&files.key).await?,
        );
        let put = async |cert: Option<String>, key: Option<String>| {
            for (path, text, mode) in [(&files.key, key, 0o600), (&files.cert, cert, 0o644)] {
                let result = match text {
                    Some(text) => crate::atomic_file::write(path, text.into_bytes(), mode).await,
                    None => match tokio::fs::remove_file(path).await {
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                        other => other,
                    },
                };
                result.map_err(|source| ProxyError::Write {
                    path: path.clone(),
                    source,
                })?;
            }
            Ok::<_, ProxyError>(())
        };
        put(Some(chain_pem.to_owned()), Some(key_pem.to_owned())).await?;
        match self.refresh_locked(domain).await {
            Ok(changed) => Ok(changed),
            Err(error) => {
                put(previous.0, previous.1).await?;
                Err(error)
            }
        }
    }

    /// Write `site`'s file for `domain`, check, reload, wait until served.
    /// The caller holds `busy`.
    async fn install(&self, domain: &Domain, site: &Site) -> Result<bool, ProxyError> {
        let path = self.conf_path(domain);
        let rendered = self.render(domain, site).await;
        let previous = read_optional(&path).await?;
        let id = config_id(&rendered);
        let v1_site = self.v1_site(domain).await?;
        if previous.as_deref() == Some(rendered.as_str()) && v1_site.is_none() {
            // The file is right; make sure nginx serves it too (a reload
            // may have failed, or the worker died before it).
            let addr = probe_address(&self.config.listen);
            if !self.config.verify_reload
                || probe(&addr, domain).await.as_deref() == Some(id.as_str())
            {
                return Ok(false);
            }
            self.reload().await?;
            self.wait_for_probe(domain, Some(&id)).await?;
            return Ok(true);
        }
        write_atomically(&path, &rendered).await?;
        let retired = match v1_site {
            Some(site) => match v1::nginx::retire(&site).await {
                Ok(retired) => Some(retired),
                Err(source) => {
                    self.restore(&path, previous.as_deref()).await?;
                    return Err(ProxyError::Write { path: site, source });
                }
            },
            None => None,
        };
        let undo = async |this: &Self| {
            if let Some(retired) = &retired {
                restore_v1_entry(retired).await?;
            }
            this.restore(&path, previous.as_deref()).await
        };
        if let Err(message) = run(&self.config.test_command).await? {
            undo(self).await?;
            return Err(ProxyError::Invalid {
                domain: domain.to_string(),
                message,
            });
        }
        if let Err(error) = self.reload().await {
            // nginx still serves the previous files: keep them on disk too.
            undo(self).await?;
            return Err(error);
        }
        if self.config.verify_reload {
            self.wait_for_probe(domain, Some(&id)).await?;
        }
        Ok(true)
    }

    /// Stop routing `domain` (its file is removed and nginx reloaded).
    pub async fn remove(&self, domain: &Domain) -> Result<(), ProxyError> {
        let path = self.conf_path(domain);
        let _busy = self.busy.lock().await;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {
                self.reload().await?;
                if self.config.verify_reload {
                    self.wait_for_probe(domain, None).await?;
                }
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(ProxyError::Write { path, source }),
        }
    }

    /// v1's enabled site for `domain`, if v1 left one.
    async fn v1_site(&self, domain: &Domain) -> Result<Option<PathBuf>, ProxyError> {
        let Some(dir) = &self.config.v1_sites_enabled else {
            return Ok(None);
        };
        v1::nginx::enabled_site(dir, domain.as_str())
            .await
            .map_err(|source| ProxyError::Write {
                path: dir.clone(),
                source,
            })
    }

    /// What serving `domain` from HostKit's file would retire of v1's
    /// nginx site (for [`Proxy::restore_v1_site`] when an import is undone).
    pub async fn v1_site_entry(
        &self,
        domain: &Domain,
    ) -> Result<Option<v1::nginx::Retired>, ProxyError> {
        let Some(path) = self.v1_site(domain).await? else {
            return Ok(None);
        };
        v1::nginx::describe(&path)
            .await
            .map(Some)
            .map_err(|source| ProxyError::Write { path, source })
    }

    /// Give `domain` back to v1's nginx site: HostKit's file goes, v1's
    /// entry is put back, nginx checks and reloads.
    pub async fn restore_v1_site(
        &self,
        domain: &Domain,
        retired: &v1::nginx::Retired,
    ) -> Result<(), ProxyError> {
        let _busy = self.busy.lock().await;
        let path = self.conf_path(domain);
        match tokio::fs::remove_file(&path).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(ProxyError::Write { path, source }),
        }
        if v1::nginx::is_retired(retired).await {
            restore_v1_entry(retired).await?;
        }
        if let Err(message) = run(&self.config.test_command).await? {
            return Err(ProxyError::Invalid {
                domain: domain.to_string(),
                message,
            });
        }
        self.reload().await
    }

    async fn reload(&self) -> Result<(), ProxyError> {
        run(&self.config.reload_command)
            .await?
            .map_err(|message| ProxyError::Reload { message })
    }

    async fn restore(&self, path: &Path, previous: Option<&str>) -> Result<(), ProxyError> {
        match previous {
            Some(text) => write_atomically(path, text).await,
            None => tokio::fs::remove_file(path)
                .await
                .map_err(|source| ProxyError::Write {
                    path: path.to_path_buf(),
                    source,
                }),
        }
    }
}

/// Put v1's `sites-enabled` entry back.
async fn restore_v1_entry(retired: &v1::nginx::Retired) -> Result<(), ProxyError> {
    v1::nginx::restore(retired)
        .await
        .map_err(|source| ProxyError::Write {
            path: retired.path.clone(),
            source,
        })
}

/// Path nginx answers with the id of the domain's current configuration.
pub const PROBE_PATH: &str = "/.well-known/hostkit-config";
/// How long a reload may take to be served.
const RELOAD_WAIT: Duration = Duration::from_secs(10);

/// Where the plain-HTTP listener can be reached from this host.
fn probe_address(listen: &str) -> String {
    let first = listen.split_whitespace().next().unwrap_or("80");
    if first.contains(':') {
        first
            .replace("0.0.0.0:", "127.0.0.1:")
            .replace("*:", "127.0.0.1:")
    } else {
        format!("127.0.0.1:{first}")
    }
}

/// GET the probe path with `domain` as Host; the body, when nginx answers 200.
async fn probe(addr: &str, domain: &Domain) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request = format!("GET {PROBE_PATH} HTTP/1.0\r\nHost: {domain}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = Vec::new();
        stream.take(4096).read_to_end(&mut response).await.ok()?;
        let text = String::from_utf8_lossy(&response);
        let (head, body) = text.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.1 200")
            .then(|| body.trim().to_string())
    };
    tokio::time::timeout(Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
}

async fn read_optional(path: &Path) -> Result<Option<String>, ProxyError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ProxyError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

async fn write_atomically(path: &Path, text: &str) -> Result<(), ProxyError> {
    crate::atomic_file::write(path, text.as_bytes().to_vec(), 0o644)
        .await
        .map_err(|source| ProxyError::Write {
            path: path.to_path_buf(),
            source,
        })
}

/// Run a command; `Ok(Err(message))` when it ran and failed.
async fn run(command: &[String]) -> Result<Result<(), String>, ProxyError> {
    let Some((program, args)) = command.split_first() else {
        return Ok(Ok(()));
    };
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| ProxyError::Spawn {
            command: command.join(" "),
            source,
        })?;
    if output.status.success() {
        Ok(Ok(()))
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let stdout = String::from_utf8_lossy(&output.stdout);
        let message = format!("{}{}", stderr.trim(), stdout.trim());
        Ok(Err(if message.is_empty() {
            format!("`{}` exited with {}", command.join(" "), output.status)
        } else {
            message
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain() -> Domain {
        "example.com".parse().expect("valid domain")
    }

    #[test]
    fn probe_addresses_come_from_the_listen_directive() {
        assert_eq!(probe_address("80"), "127.0.0.1:80");
        assert_eq!(
            probe_address("127.0.0.1:8080 default_server"),
            "127.0.0.1:8080"
        );
        assert_eq!(probe_address("0.0.0.0:80"), "127.0.0.1:80");
    }

    #[tokio::test]
    async fn a_failing_check_restores_the_previous_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ProxyConfig {
            conf_dir: dir.path().to_path_buf(),
            test_command: vec!["true".into()],
            reload_command: vec!["true".into()],
            certs_dir: None,
            verify_reload: false,
            ..ProxyConfig::default()
        };
        let proxy = Proxy::new(config.clone());
        proxy
            .switch(&domain(), &["127.0.0.1:20000".into()], &[])
            .await
            .expect("first switch");
        let before = std::fs::read_to_string(proxy.conf_path(&domain())).expect("file");

        config.test_command = vec![
            "sh".into(),
            "-c".into(),
            "echo 'bad directive' >&2; exit 1".into(),
        ];
        let proxy = Proxy::new(config);
        let err = proxy
            .switch(&domain(), &["127.0.0.1:20005".into()], &[])
            .await
            .expect_err("check fails");
        assert!(
            matches!(&err, ProxyError::Invalid { message, .. } if message.contains("bad directive")),
            "{err}"
        );
        assert_eq!(err.code(), "proxy.invalid");
        let after = std::fs::read_to_string(proxy.conf_path(&domain())).expect("file");
        assert_eq!(before, after);
    }

    #[tokio::test]
    async fn switches_of_two_domains_at_once_do_not_check_each_others_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conf_dir = dir.path().join("conf");
        let certs_dir = dir.path().join("certs");
        // Only a.example has certificates; this "nginx -t" rejects TLS blocks.
        std::fs::create_dir_all(certs_dir.join("a.example")).expect("certs dir");
        for file in ["fullchain.pem", "privkey.pem"] {
            std::fs::write(certs_dir.join("a.example").join(file), "x").expect("cert");
        }
        let check = format!(
            "sleep 0.3; ! grep -q ssl_certificate {}/*.conf",
            conf_dir.display()
        );
        let proxy = Proxy::new(ProxyConfig {
            conf_dir,
            test_command: vec!["sh".into(), "-c".into(), check],
            reload_command: vec!["true".into()],
            certs_dir: Some(certs_dir),
            verify_reload: false,
            ..ProxyConfig::default()
        });
        let (a, b): (Domain, Domain) = (
            "a.example".parse().expect("domain"),
            "b.example".parse().expect("domain"),
        );
        let other = proxy.clone();
        let (ua, ub) = (
            vec!["127.0.0.1:20000".to_string()],
            vec!["127.0.0.1:20010".to_string()],
        );
        let (ra, rb) = tokio::join!(proxy.switch(&a, &ua, &[]), other.switch(&b, &ub, &[]));
        assert!(matches!(ra, Err(ProxyError::Invalid { .. })), "{ra:?}");
        assert!(
            matches!(rb, Ok(true)),
            "b.example failed on a.example's file: {rb:?}"
        );
        assert!(!proxy.conf_path(&a).exists());
        assert!(proxy.conf_path(&b).exists());
    }

    #[tokio::test]
    async fn a_failing_first_check_leaves_no_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = ProxyConfig {
            conf_dir: dir.path().to_path_buf(),
            test_command: vec!["false".into()],
            reload_command: vec!["true".into()],
            certs_dir: None,
            verify_reload: false,
            ..ProxyConfig::default()
        };
        let proxy = Proxy::new(config);
        proxy
            .switch(&domain(), &["127.0.0.1:20000".into()], &[])
            .await
            .expect_err("check fails");
        assert!(!proxy.conf_path(&domain()).exists());
    }
}
