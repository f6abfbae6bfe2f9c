//! [`JobError`] and the validation rules of [`Job::validate`](super::Job::validate).

use super::env::Env;
use super::spec::{DeploySource, ImageSource, JobSpec};
use super::{JOB_SCHEMA, Job};
use crate::error::ErrorCode;

/// Most replicas a `scale` job may ask for.
pub const MAX_REPLICAS: u32 = 100;
/// Largest inline compose text, in bytes.
pub const MAX_COMPOSE_BYTES: usize = 512 * 1024;
/// Longest health timeout a deploy may ask for, in seconds.
pub const MAX_HEALTH_TIMEOUT_SECS: u32 = 3600;
/// Most environment variables in one deploy.
pub const MAX_ENV_VARS: usize = 1000;
/// Most redirect domains of a deploy: with the domain itself, the 100 names
/// a Let's Encrypt certificate may hold.
pub const MAX_REDIRECT_DOMAINS: usize = 99;
/// Longest service name.
pub const MAX_SERVICE_NAME_LEN: usize = 63;
/// Longest `requested_by`.
pub const MAX_REQUESTED_BY_LEN: usize = 256;
/// Longest image reference.
pub const MAX_IMAGE_REFERENCE_LEN: usize = 512;
/// Longest run an `exec` job may ask for, in seconds.
pub const MAX_EXEC_TIMEOUT_SECS: u32 = 3600;
/// Most arguments of an `exec` command (the program included).
pub const MAX_EXEC_ARGS: usize = 256;
/// Most bytes of one `exec` argument.
pub const MAX_EXEC_ARG_BYTES: usize = 16 * 1024;
/// Most volumes one `backup` job may name.
pub const MAX_BACKUP_VOLUMES: usize = 100;
/// Longest image path on the node.
pub const MAX_PATH_LEN: usize = 4096;

/// A job cannot be parsed or fails validation. Every variant maps to the
/// [`ErrorCode::JobInvalid`] code; messages never contain env values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The bytes are not a job of this schema (bad JSON, missing or mistyped field).
    #[error("malformed job: {reason}")]
    Malformed {
        /// What the JSON decoder reported.
        reason: String,
    },
    /// The job's schema version is not one this build understands.
    #[error("job schema {found} is not supported (this build supports 1..={supported})")]
    UnsupportedSchema {
        /// The job's `schema`.
        found: u32,
        /// [`JOB_SCHEMA`].
        supported: u32,
    },
    /// `requested_by` is empty or too long.
    #[error("requested_by {reason}")]
    InvalidRequestedBy {
        /// Why.
        reason: &'static str,
    },
    /// A service name is not `[a-zA-Z0-9._-]{1,63}`.
    #[error(
        "{field}: invalid service name {name:?} (expected 1 to 63 characters of a-z A-Z 0-9 . _ -)"
    )]
    InvalidServiceName {
        /// Which field (`payload.service`, …).
        field: &'static str,
        /// The name.
        name: String,
    },
    /// An `env` job's change is not one (a name both set and unset, or
    /// nothing at all).
    #[error("env change: {key} {reason}")]
    InvalidEnvChange {
        /// The name concerned (empty when none).
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// An `exec` job's command is not one that can run.
    #[error("payload.command {reason}")]
    InvalidCommand {
        /// Why.
        reason: &'static str,
    },
    /// A `backup` job names more than [`MAX_BACKUP_VOLUMES`] volumes.
    #[error("payload.volumes: {count} volumes; the maximum is {max}")]
    TooManyVolumes {
        /// How many.
        count: usize,
        /// [`MAX_BACKUP_VOLUMES`].
        max: usize,
    },
    /// An `exec` job's timeout is 0 or above [`MAX_EXEC_TIMEOUT_SECS`].
    #[error("payload.timeout_secs {secs} is out of range (1..={max})")]
    InvalidExecTimeout {
        /// The timeout.
        secs: u32,
        /// [`MAX_EXEC_TIMEOUT_SECS`].
        max: u32,
    },
    /// `scale` asks for more than [`MAX_REPLICAS`].
    #[error("cannot scale {service:?} to {replicas} replicas; the maximum is {max}")]
    TooManyReplicas {
        /// The service.
        service: String,
        /// The requested count.
        replicas: u32,
        /// [`MAX_REPLICAS`].
        max: u32,
    },
    /// An env variable name is not `[A-Za-z_][A-Za-z0-9_]*`.
    #[error("invalid environment variable name {key:?} (expected [A-Za-z_][A-Za-z0-9_]*)")]
    InvalidEnvKey {
        /// The name.
        key: String,
    },
    /// An env value contains a NUL byte (the value itself is not reported).
    #[error("environment variable {key:?} has a value containing a NUL byte")]
    InvalidEnvValue {
        /// The variable's name.
        key: String,
    },
    /// More than [`MAX_ENV_VARS`] variables.
    #[error("{count} environment variables; the maximum is {max}")]
    TooManyEnvVars {
        /// How many.
        count: usize,
        /// [`MAX_ENV_VARS`].
        max: usize,
    },
    /// The compose text is empty.
    #[error("the compose text is empty")]
    EmptyCompose,
    /// The compose text is larger than [`MAX_COMPOSE_BYTES`].
    #[error("the compose text is {len} bytes; the maximum is {max}")]
    ComposeTooLarge {
        /// Its size.
        len: usize,
        /// [`MAX_COMPOSE_BYTES`].
        max: usize,
    },
    /// An image reference is empty, too long, or contains whitespace or control characters.
    #[error("{field}: invalid image reference {reference:?}")]
    InvalidImageReference {
        /// Which field.
        field: &'static str,
        /// The reference.
        reference: String,
    },
    /// Port 0.
    #[error("payload.source.image.port: {port} is not a valid container port")]
    InvalidPort {
        /// The port.
        port: u16,
    },
    /// An image path is not an absolute, clean path.
    #[error("payload.images: invalid image path {path:?}: {reason}")]
    InvalidImagePath {
        /// The path.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// The health timeout is 0 or larger than [`MAX_HEALTH_TIMEOUT_SECS`].
    #[error("payload.options.health_timeout_secs: {secs} is out of range 1..={max}")]
    InvalidHealthTimeout {
        /// The timeout.
        secs: u32,
        /// [`MAX_HEALTH_TIMEOUT_SECS`].
        max: u32,
    },
    /// A redirect domain is the job's own domain or listed twice.
    #[error("payload.options.redirect_domains: {name} {reason}")]
    InvalidRedirect {
        /// The name.
        name: String,
        /// Why.
        reason: &'static str,
    },
    /// More redirect domains than one certificate can name.
    #[error("payload.options.redirect_domains: {count} names, at most {max}")]
    TooManyRedirects {
        /// How many.
        count: usize,
        /// [`MAX_REDIRECT_DOMAINS`].
        max: usize,
    },
    /// A layered image source that cannot be loaded as written.
    #[error("payload.images.layers: {reason}")]
    InvalidLayers {
        /// Why.
        reason: String,
    },
    /// Version 0 (versions start at 1).
    #[error("payload.to_version: version {version} does not exist (versions start at 1)")]
    InvalidVersion {
        /// The version.
        version: u32,
    },
}

impl JobError {
    /// The wire error code for this error (always [`ErrorCode::JobInvalid`]).
    pub fn code(&self) -> ErrorCode {
        ErrorCode::JobInvalid
    }
}

/// Images in one layered source, and layers in one image.
pub const MAX_LAYERED_IMAGES: usize = 100;
/// Layers of one image (Docker allows 127 on overlayfs).
pub const MAX_IMAGE_LAYERS: usize = 128;

/// A layered source the worker can load: its format, bounded counts, diff
/// ids of the form `sha256:<64 hex>`, valid tags.
fn check_layers(layers: &super::LayeredImages) -> Result<(), JobError> {
    let invalid = |reason: String| Err(JobError::InvalidLayers { reason });
    if layers.format != super::LAYERED_FORMAT {
        return invalid(format!(
            "format {} is not the one this worker reads ({})",
            layers.format,
            super::LAYERED_FORMAT
        ));
    }
    if layers.images.is_empty() || layers.images.len() > MAX_LAYERED_IMAGES {
        return invalid(format!(
            "{} images; 1 to {MAX_LAYERED_IMAGES} are allowed",
            layers.images.len()
        ));
    }
    for image in &layers.images {
        if image.layers.len() > MAX_IMAGE_LAYERS {
            return invalid(format!(
                "an image has {} layers; at most {MAX_IMAGE_LAYERS}",
                image.layers.len()
            ));
        }
        for layer in &image.layers {
            let hex = layer.diff_id.strip_prefix("sha256:").unwrap_or_default();
            if hex.len() != 64
                || !hex
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            {
                return invalid(format!(
                    "{:?} is not a diff id (sha256:<64 hex>)",
                    layer.diff_id
                ));
            }
        }
        for tag in &image.repo_tags {
            check_reference("payload.images.layers.repo_tags", tag)?;
        }
    }
    Ok(())
}

/// Whether `name` is a valid compose service name: 1 to 63 characters of
/// `[a-zA-Z0-9._-]`.
pub fn is_valid_service_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_SERVICE_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Whether `key` is a valid environment variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_env_key(key: &str) -> bool {
    let mut bytes = key.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn check_service(field: &'static str, name: &str) -> Result<(), JobError> {
    if is_valid_service_name(name) {
        Ok(())
    } else {
        Err(JobError::InvalidServiceName {
            field,
            name: name.to_owned(),
        })
    }
}

fn check_reference(field: &'static str, reference: &str) -> Result<(), JobError> {
    let bad = reference.is_empty()
        || reference.len() > MAX_IMAGE_REFERENCE_LEN
        || reference
            .chars()
            .any(|c| c.is_whitespace() || c.is_control());
    if bad {
        Err(JobError::InvalidImageReference {
            field,
            reference: reference.to_owned(),
        })
    } else {
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), JobError> {
    let reason = if !path.starts_with('/') {
        Some("must be absolute")
    } else if path.len() > MAX_PATH_LEN {
        Some("is too long")
    } else if path.contains('\0') {
        Some("contains a NUL byte")
    } else if path.split('/').any(|part| part == "..") {
        Some("must not contain `..`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(JobError::InvalidImagePath {
            path: path.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

pub(super) fn validate(job: &Job) -> Result<(), JobError> {
    if job.schema == 0 || job.schema > JOB_SCHEMA {
        return Err(JobError::UnsupportedSchema {
            found: job.schema,
            supported: JOB_SCHEMA,
        });
    }
    if job.requested_by.trim().is_empty() {
        return Err(JobError::InvalidRequestedBy { reason: "is empty" });
    }
    if job.requested_by.len() > MAX_REQUESTED_BY_LEN {
        return Err(JobError::InvalidRequestedBy {
            reason: "is longer than 256 bytes",
        });
    }
    match &job.spec {
        JobSpec::Deploy(deploy) => {
            match &deploy.source {
                DeploySource::Compose(compose) => {
                    if compose.text.trim().is_empty() {
                        return Err(JobError::EmptyCompose);
                    }
                    if compose.text.len() > MAX_COMPOSE_BYTES {
                        return Err(JobError::ComposeTooLarge {
                            len: compose.text.len(),
                            max: MAX_COMPOSE_BYTES,
                        });
                    }
                }
                DeploySource::Image(image) => {
                    check_reference("payload.source.image.reference", &image.reference)?;
                    if image.port == Some(0) {
                        return Err(JobError::InvalidPort { port: 0 });
                    }
                }
            }
            for source in &deploy.images {
                match source {
                    ImageSource::Object { .. } => {}
                    ImageSource::Path { path } => check_path(path)?,
                    ImageSource::Registry { registry } => {
                        check_reference("payload.images.registry", registry)?
                    }
                    ImageSource::Layers { layers } => check_layers(layers)?,
                }
            }
            check_env(&deploy.env, deploy.sealed_env.as_ref())?;
            if let Some(main) = &deploy.options.main_service {
                check_service("payload.options.main_service", main)?;
            }
            if let Some(secs) = deploy.options.health_timeout_secs {
                if secs == 0 || secs > MAX_HEALTH_TIMEOUT_SECS {
                    return Err(JobError::InvalidHealthTimeout {
                        secs,
                        max: MAX_HEALTH_TIMEOUT_SECS,
                    });
                }
            }
            if let Some(redirects) = &deploy.options.redirect_domains {
                check_redirects(&job.domain, redirects)?;
            }
        }
        JobSpec::Rollback(rollback) => {
            if rollback.to_version == Some(0) {
                return Err(JobError::InvalidVersion { version: 0 });
            }
        }
        JobSpec::Scale(scale) => {
            check_service("payload.service", &scale.service)?;
            if scale.replicas > MAX_REPLICAS {
                return Err(JobError::TooManyReplicas {
                    service: scale.service.clone(),
                    replicas: scale.replicas,
                    max: MAX_REPLICAS,
                });
            }
        }
        JobSpec::Restart(restart) => {
            if let Some(service) = &restart.service {
                check_service("payload.service", service)?;
            }
        }
        JobSpec::Import(import) => {
            if let Some(secs) = import.health_timeout_secs
                && (secs == 0 || secs > MAX_HEALTH_TIMEOUT_SECS)
            {
                return Err(JobError::InvalidHealthTimeout {
                    secs,
                    max: MAX_HEALTH_TIMEOUT_SECS,
                });
            }
        }
        JobSpec::Env(env) => {
            check_env(&env.set, env.sealed_set.as_ref())?;
            if env.unset.len() > MAX_ENV_VARS {
                return Err(JobError::TooManyEnvVars {
                    count: env.unset.len(),
                    max: MAX_ENV_VARS,
                });
            }
            if let Some(key) = env.unset.iter().find(|k| !is_valid_env_key(k)) {
                return Err(JobError::InvalidEnvKey { key: key.clone() });
            }
            if let Some(key) = env.set_names().find(|k| env.unset.iter().any(|u| u == k)) {
                return Err(JobError::InvalidEnvChange {
                    key: key.to_owned(),
                    reason: "is both set and unset",
                });
            }
            if env.set_names().next().is_none() && env.unset.is_empty() {
                return Err(JobError::InvalidEnvChange {
                    key: String::new(),
                    reason: "nothing to set or unset",
                });
            }
        }
        JobSpec::Exec(exec) => {
            check_service("payload.service", &exec.service)?;
            let reason = if exec.command.is_empty() || exec.command[0].is_empty() {
                Some("is empty")
            } else if exec.command.len() > MAX_EXEC_ARGS {
                Some("has more than 256 arguments")
            } else if exec.command.iter().any(|a| a.len() > MAX_EXEC_ARG_BYTES) {
                Some("has an argument longer than 16 KiB")
            } else if exec.command.iter().any(|a| a.contains('\0')) {
                Some("contains a NUL byte")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(JobError::InvalidCommand { reason });
            }
            if let Some(secs) = exec.timeout_secs
                && (secs == 0 || secs > MAX_EXEC_TIMEOUT_SECS)
            {
                return Err(JobError::InvalidExecTimeout {
                    secs,
                    max: MAX_EXEC_TIMEOUT_SECS,
                });
            }
        }
        JobSpec::Backup(backup) => {
            if backup.volumes.len() > MAX_BACKUP_VOLUMES {
                return Err(JobError::TooManyVolumes {
                    count: backup.volumes.len(),
                    max: MAX_BACKUP_VOLUMES,
                });
            }
            for volume in &backup.volumes {
                check_service("payload.volumes", volume)?;
            }
        }
        JobSpec::Stop(_) | JobSpec::Start(_) | JobSpec::Remove(_) | JobSpec::Restore(_) => {}
    }
    Ok(())
}

/// A job's variables: valid names, no NUL in a value, at most
/// [`MAX_ENV_VARS`] (plain and sealed together).
fn check_env(env: &Env, sealed: Option<&crate::sign::seal::SealedEnv>) -> Result<(), JobError> {
    let sealed_count = sealed.map_or(0, |s| s.values.len());
    if env.len() + sealed_count > MAX_ENV_VARS {
        return Err(JobError::TooManyEnvVars {
            count: env.len() + sealed_count,
            max: MAX_ENV_VARS,
        });
    }
    for key in sealed.iter().flat_map(|s| s.values.keys()) {
        if !is_valid_env_key(key) {
            return Err(JobError::InvalidEnvKey {
                key: key.to_owned(),
            });
        }
    }
    for (key, value) in env.iter() {
        if !is_valid_env_key(key) {
            return Err(JobError::InvalidEnvKey {
                key: key.to_owned(),
            });
        }
        if value.contains('\0') {
            return Err(JobError::InvalidEnvValue {
                key: key.to_owned(),
            });
        }
    }
    Ok(())
}

/// Redirect domains: at most [`MAX_REDIRECT_DOMAINS`], none twice, never the
/// domain itself.
fn check_redirects(domain: &crate::Domain, redirects: &[crate::Domain]) -> Result<(), JobError> {
    if redirects.len() > MAX_REDIRECT_DOMAINS {
        return Err(JobError::TooManyRedirects {
            count: redirects.len(),
            max: MAX_REDIRECT_DOMAINS,
        });
    }
    let mut seen = std::collections::HashSet::new();
    for name in redirects {
        let reason = if name == domain {
            "is the domain itself"
        } else if !seen.insert(name) {
            "is listed twice"
        } else {
            continue;
        };
        return Err(JobError::InvalidRedirect {
            name: name.to_string(),
            reason,
        });
    }
    Ok(())
}
