//! [`Acme`]: the ACME client. One account per directory URL, created on
//! first use and kept on the node (`<account_dir>/account-<id>.json`, mode
//! 0600: it holds the account's private key); orders answered over HTTP-01
//! from the webroot; ARI renewal windows where the server offers them.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use hostkit_proto::Domain;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    Identifier, NewAccount, NewOrder, Order, OrderStatus, RetryPolicy,
};
use sha2::{Digest, Sha256};

use super::challenge::ChallengeFiles;
use super::error::{from_acme, from_problem};
use super::{AcmeConfig, CertInfo, TlsError};

/// How long the server may take to validate every name of an order.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server may take to issue once the order is finalized.
const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(120);

/// A certificate just issued: the chain nginx serves and its private key.
#[derive(Clone)]
pub struct Issued {
    /// Leaf first, then the intermediates (PEM).
    pub chain_pem: String,
    /// The private key (PKCS#8 PEM). Never logged.
    pub key_pem: String,
    /// What the leaf says.
    pub info: CertInfo,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// The server's suggested renewal window for a certificate (ARI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RenewalWindow {
    /// Renew from then on.
    pub start: SystemTime,
    /// Renew before then.
    pub end: SystemTime,
    /// Ask again after this long (the server's `Retry-After`).
    pub check_again: Duration,
}

/// The ACME client of one worker.
pub struct Acme {
    config: AcmeConfig,
    account: tokio::sync::Mutex<Option<Account>>,
}

impl std::fmt::Debug for Acme {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acme")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Acme {
    /// A client for `config`; nothing is contacted before the first order.
    pub fn new(config: AcmeConfig) -> Self {
        Acme {
            config,
            account: tokio::sync::Mutex::new(None),
        }
    }

    /// Its configuration.
    pub fn config(&self) -> &AcmeConfig {
        &self.config
    }

    /// The account's file: one per directory URL.
    pub fn account_path(&self) -> PathBuf {
        let id = hex::encode(&Sha256::digest(self.config.directory_url.as_bytes())[..6]);
        self.config.account_dir.join(format!("account-{id}.json"))
    }

    fn acme_error(&self, error: instant_acme::Error) -> TlsError {
        from_acme(&self.config.directory_url, error)
    }

    /// The account: loaded from its file, or registered and saved.
    async fn account(&self) -> Result<Account, TlsError> {
        let mut slot = self.account.lock().await;
        if let Some(account) = slot.as_ref() {
            return Ok(account.clone());
        }
        let builder = match &self.config.ca_root {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        }
        .map_err(|e| self.acme_error(e))?;
        let path = self.account_path();
        let saved = match tokio::fs::read(&path).await {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(source) => return Err(TlsError::Read { path, source }),
        };
        let account = match saved {
            Some(bytes) => {
                let credentials: AccountCredentials =
                    serde_json::from_slice(&bytes).map_err(|e| TlsError::Read {
                        path: path.clone(),
                        source: std::io::Error::other(e),
                    })?;
                builder
                    .from_credentials(credentials)
                    .await
                    .map_err(|e| self.acme_error(e))?
            }
            None => {
                let contact = self
                    .config
                    .contact_email
                    .as_ref()
                    .map(|email| format!("mailto:{email}"));
                let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
                let (account, credentials) = builder
                    .create(
                        &NewAccount {
                            contact: &contacts,
                            terms_of_service_agreed: true,
                            only_return_existing: false,
                        },
                        self.config.directory_url.clone(),
                        None,
                    )
                    .await
                    .map_err(|e| self.acme_error(e))?;
                let json = serde_json::to_vec(&credentials).map_err(|e| TlsError::Write {
                    path: path.clone(),
                    source: std::io::Error::other(e),
                })?;
                let dir = self.config.account_dir.clone();
                let file = path.clone();
                tokio::task::spawn_blocking(move || {
                    crate::atomic_file::create_dir_blocking(&dir, 0o700)?;
                    crate::atomic_file::write_blocking(&file, &json, 0o600)
                })
                .await
                .map_err(std::io::Error::other)
                .and_then(|written| written)
                .map_err(|source| TlsError::Write {
                    path: path.clone(),
                    source,
                })?;
                tracing::info!(directory = %self.config.directory_url, path = %path.display(), "ACME account registered");
                account
            }
        };
        *slot = Some(account.clone());
        Ok(account)
    }

    /// Obtain a certificate for `names` (the first is the domain): an order,
    /// HTTP-01 for each name through the webroot, a new key, the chain.
    pub async fn obtain(&self, names: &[Domain]) -> Result<Issued, TlsError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = names
            .iter()
            .map(|n| Identifier::Dns(n.to_string()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| self.acme_error(e))?;
        let mut files = ChallengeFiles::new(&self.config.webroot);
        let result = self.validate_and_issue(&mut order, &mut files).await;
        files.clear().await;
        result
    }

    async fn validate_and_issue(
        &self,
        order: &mut Order,
        files: &mut ChallengeFiles,
    ) -> Result<Issued, TlsError> {
        {
            let mut authorizations = order.authorizations();
            while let Some(next) = authorizations.next().await {
                let mut authz = next.map_err(|e| self.acme_error(e))?;
                let name = authz.identifier().to_string();
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    status => {
                        return Err(TlsError::Refused {
                            detail: format!("{name}: the authorization is {status:?}"),
                        });
                    }
                }
                let mut challenge = authz
                    .challenge(ChallengeType::Http01)
                    .ok_or_else(|| TlsError::NoHttpChallenge { name: name.clone() })?;
                let key_authorization = challenge.key_authorization();
                files
                    .put(&challenge.token, key_authorization.as_str())
                    .await?;
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| self.acme_error(e))?;
            }
        }
        let retries = RetryPolicy::new().timeout(VALIDATION_TIMEOUT);
        match order.poll_ready(&retries).await {
            Ok(OrderStatus::Ready) => {}
            Ok(_) | Err(instant_acme::Error::Api(_)) => return Err(why_invalid(order).await),
            Err(e) => return Err(self.acme_error(e)),
        }
        let key_pem = order.finalize().await.map_err(|e| self.acme_error(e))?;
        let chain_pem = order
            .poll_certificate(&RetryPolicy::new().timeout(ISSUANCE_TIMEOUT))
            .await
            .map_err(|e| self.acme_error(e))?;
        let info = CertInfo::from_pem(chain_pem.as_bytes())?;
        Ok(Issued {
            chain_pem,
            key_pem,
            info,
        })
    }

    /// The server's renewal window for `cert` (ARI); `None` when the server
    /// does not offer ARI or the certificate has no authority key id.
    pub async fn renewal_window(&self, cert: &CertInfo) -> Result<Option<RenewalWindow>, TlsError> {
        let account = self.account().await?;
        let der = rustls_pki_types::CertificateDer::from(cert.der.clone());
        let Ok(id) = CertificateIdentifier::try_from(&der) else {
            return Ok(None);
        };
        match account.renewal_info(&id).await {
            Ok((info, check_again)) => Ok(Some(RenewalWindow {
                start: info.suggested_window.start.into(),
                end: info.suggested_window.end.into(),
                check_again,
            })),
            Err(instant_acme::Error::Unsupported(_)) => Ok(None),
            Err(e) => Err(self.acme_error(e)),
        }
    }
}

/// Why an order became invalid: the first challenge error the server
/// recorded, naming its identifier.
async fn why_invalid(order: &mut Order) -> TlsError {
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let name = authz.identifier().to_string();
        let Ok(state) = authz.refresh().await else {
            continue;
        };
        if let Some(problem) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
            return from_problem(Some(&name), problem);
        }
    }
    TlsError::Refused {
        detail: "the order became invalid and the server gave no reason".into(),
    }
}
