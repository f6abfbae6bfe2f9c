//! Stable error codes ([`ErrorCode`]) and the error body ([`ErrorBody`])
//! that crosses the wire in `failed` events and control replies.
//!
//! Codes are part of the public contract: scripts match on them, so a code's
//! string never changes meaning. New codes may be added; readers map codes
//! they do not know to [`ErrorCode::Unknown`].

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

/// A stable, documented error code (`compose.invalid`, `health.timeout`, …).
///
/// Serialized as its string. [`FromStr`] is strict; deserialization is
/// lenient and maps an unknown string to [`ErrorCode::Unknown`], so an older
/// reader still understands a newer worker's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `compose.invalid`: the compose file cannot be parsed or is inconsistent.
    ComposeInvalid,
    /// `compose.unsupported`: the compose file uses a key HostKit does not support.
    ComposeUnsupported,
    /// `policy.denied`: the stack violates the worker's policy.
    PolicyDenied,
    /// `image.missing`: an image the stack needs is neither loaded nor provided.
    ImageMissing,
    /// `image.load_failed`: loading an image tarball into Docker failed.
    ImageLoadFailed,
    /// `image.pull_failed`: pulling an image from a registry failed.
    ImagePullFailed,
    /// `health.timeout`: services did not become healthy within the timeout.
    HealthTimeout,
    /// `health.failed`: a service exited, reported unhealthy or failed a
    /// lifecycle hook (`pre_start`, `post_start`) during the deploy.
    HealthFailed,
    /// `proxy.invalid`: the rendered nginx configuration failed `nginx -t` or reload.
    ProxyInvalid,
    /// `ports.exhausted`: no free host port block is left in the pool.
    PortsExhausted,
    /// `version.not_found`: the requested stack version does not exist (or was pruned).
    VersionNotFound,
    /// `domain.not_found`: this node does not host the domain.
    DomainNotFound,
    /// `service.not_found`: the stack has no such service.
    ServiceNotFound,
    /// `job.invalid`: the job is malformed or fails validation.
    JobInvalid,
    /// `job.unauthorized`: the job is unsigned or signed by an untrusted key.
    JobUnauthorized,
    /// `request.invalid`: a control request is malformed.
    RequestInvalid,
    /// `docker.unavailable`: the Docker Engine cannot be reached or failed.
    DockerUnavailable,
    /// `import.unavailable`: a HostKit v1 site cannot be imported as it is
    /// (it was left exactly as it was).
    ImportUnavailable,
    /// `limits.failed`: the stack's resource budget could not be applied to
    /// its parent cgroup.
    LimitsFailed,
    /// `domain.conflict`: a redirect domain is another domain of the node, or
    /// already redirects to one.
    DomainConflict,
    /// `tls.challenge_failed`: the ACME server could not validate a name
    /// over HTTP-01 (its DNS does not point here, or port 80 is not reachable).
    TlsChallengeFailed,
    /// `tls.rate_limited`: the ACME server refused because of a rate limit.
    TlsRateLimited,
    /// `tls.failed`: obtaining or renewing a certificate failed otherwise.
    TlsFailed,
    /// `exec.denied`: the worker does not allow one-off commands for the
    /// domain (`[security] exec_domains`).
    ExecDenied,
    /// `exec.failed`: a one-off command exited non-zero or ran out of time
    /// (the failed event carries its exit code).
    ExecFailed,
    /// `backup.not_found`: the node keeps no such backup of the domain.
    BackupNotFound,
    /// `backup.failed`: copying volumes to or from the backup bucket failed.
    BackupFailed,
    /// `internal`: an unexpected error in the worker.
    Internal,
    /// A code this build does not know (from a newer HostKit). Never produced
    /// by this build; serialized as `unknown`.
    Unknown,
}

/// Static facts about one code: its string, default message and hint.
struct Info {
    code: &'static str,
    message: &'static str,
    hint: Option<&'static str>,
}

/// Compares with the wire string (`code == "compose.invalid"`).
impl PartialEq<&str> for ErrorCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl ErrorCode {
    /// Every known code, in documentation order (excludes [`ErrorCode::Unknown`]).
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::ComposeInvalid,
        ErrorCode::ComposeUnsupported,
        ErrorCode::PolicyDenied,
        ErrorCode::ImageMissing,
        ErrorCode::ImageLoadFailed,
        ErrorCode::ImagePullFailed,
        ErrorCode::HealthTimeout,
        ErrorCode::HealthFailed,
        ErrorCode::ProxyInvalid,
        ErrorCode::PortsExhausted,
        ErrorCode::VersionNotFound,
        ErrorCode::DomainNotFound,
        ErrorCode::ServiceNotFound,
        ErrorCode::JobInvalid,
        ErrorCode::JobUnauthorized,
        ErrorCode::RequestInvalid,
        ErrorCode::DockerUnavailable,
        ErrorCode::ImportUnavailable,
        ErrorCode::LimitsFailed,
        ErrorCode::DomainConflict,
        ErrorCode::TlsChallengeFailed,
        ErrorCode::TlsRateLimited,
        ErrorCode::TlsFailed,
        ErrorCode::ExecDenied,
        ErrorCode::ExecFailed,
        ErrorCode::BackupNotFound,
        ErrorCode::BackupFailed,
        ErrorCode::Internal,
    ];

    fn info(self) -> Info {
        let (code, message, hint) = match self {
            ErrorCode::ComposeInvalid => (
                "compose.invalid",
                "the compose file is invalid",
                Some(
                    "check the YAML and the referenced services; `docker compose config` shows the same problems",
                ),
            ),
            ErrorCode::ComposeUnsupported => (
                "compose.unsupported",
                "the compose file uses a key HostKit does not support",
                Some(
                    "remove the named key or see the supported keys in the README; build images in CI instead of `build:`",
                ),
            ),
            ErrorCode::PolicyDenied => (
                "policy.denied",
                "the stack violates the worker's policy",
                Some(
                    "the message names the rule and the key; change the compose file or the worker's policy",
                ),
            ),
            ErrorCode::ImageMissing => (
                "image.missing",
                "an image the stack needs is not available on the node",
                Some(
                    "pass the image tarball with --images, or reference a registry the node can pull from",
                ),
            ),
            ErrorCode::ImageLoadFailed => (
                "image.load_failed",
                "loading an image tarball into Docker failed",
                Some("check that the tarball was made by `docker save` and is complete"),
            ),
            ErrorCode::ImagePullFailed => (
                "image.pull_failed",
                "pulling an image from a registry failed",
                Some("check the image reference and that the node can reach the registry"),
            ),
            ErrorCode::HealthTimeout => (
                "health.timeout",
                "services did not become healthy in time",
                Some("check the service logs (`hostkit compose logs`) or raise the health timeout"),
            ),
            ErrorCode::HealthFailed => (
                "health.failed",
                "a service exited, became unhealthy or failed a lifecycle hook during the deploy",
                Some(
                    "check the service logs (`hostkit compose logs`); a failed hook's exit status and last output are in the message",
                ),
            ),
            ErrorCode::ProxyInvalid => (
                "proxy.invalid",
                "the nginx configuration for the domain was rejected",
                Some(
                    "the previous configuration was restored; check `nginx -t` output in the message",
                ),
            ),
            ErrorCode::PortsExhausted => (
                "ports.exhausted",
                "no free host ports are left on the node",
                Some("remove unused domains or enlarge the worker's port pool"),
            ),
            ErrorCode::VersionNotFound => (
                "version.not_found",
                "the requested version does not exist",
                Some(
                    "list versions with `hostkit versions <domain>`; pruned versions cannot be restored",
                ),
            ),
            ErrorCode::DomainNotFound => (
                "domain.not_found",
                "the domain is not deployed on this node",
                Some("check the domain's spelling and placement (`hostkit status`)"),
            ),
            ErrorCode::ServiceNotFound => (
                "service.not_found",
                "the stack has no such service",
                Some("list services with `hostkit compose services <domain>`"),
            ),
            ErrorCode::JobInvalid => (
                "job.invalid",
                "the job is malformed or invalid",
                Some("update the hostkit CLI to match the worker's version"),
            ),
            ErrorCode::JobUnauthorized => (
                "job.unauthorized",
                "the job is not signed by a trusted key",
                Some("sign jobs with a key listed in the worker's trusted keys"),
            ),
            ErrorCode::RequestInvalid => (
                "request.invalid",
                "the control request is malformed or invalid",
                Some("update the hostkit CLI to match the worker's version"),
            ),
            ErrorCode::DockerUnavailable => (
                "docker.unavailable",
                "the Docker Engine is unavailable",
                Some(
                    "check that dockerd is running on the node and the worker can reach its socket",
                ),
            ),
            ErrorCode::ExecDenied => (
                "exec.denied",
                "one-off commands are not allowed for this domain on this node",
                Some(
                    "the node's operator allows them per domain pattern with `exec_domains` under [security] in worker.toml",
                ),
            ),
            ErrorCode::ExecFailed => (
                "exec.failed",
                "the command failed",
                Some("its output is in the job's events; the stack was not changed"),
            ),
            ErrorCode::BackupNotFound => (
                "backup.not_found",
                "no such backup of the domain on this node",
                Some("list them with `hostkit backups <domain>`; old ones go beyond retention"),
            ),
            ErrorCode::BackupFailed => (
                "backup.failed",
                "copying the volumes failed",
                Some(
                    "the message says which volume and why; the stack runs as before (a restore puts the volumes back as they were)",
                ),
            ),
            ErrorCode::ImportUnavailable => (
                "import.unavailable",
                "the HostKit v1 site cannot be imported",
                Some(
                    "the message says why; the v1 site was left exactly as it was and keeps serving",
                ),
            ),
            ErrorCode::LimitsFailed => (
                "limits.failed",
                "the stack's resource budget could not be applied",
                Some(
                    "the message names the cgroup file; the worker must be able to write the cgroup file system at its [stack_limits] cgroup_root",
                ),
            ),
            ErrorCode::DomainConflict => (
                "domain.conflict",
                "the name is already served by another domain on this node",
                Some(
                    "remove it from the other domain's redirects (or remove that domain) first, or drop it from --redirect-domain",
                ),
            ),
            ErrorCode::TlsChallengeFailed => (
                "tls.challenge_failed",
                "the ACME server could not validate the domain",
                Some(
                    "point the names' DNS (A/AAAA) at this node and keep port 80 open; plain HTTP keeps serving and the worker retries",
                ),
            ),
            ErrorCode::TlsRateLimited => (
                "tls.rate_limited",
                "the ACME server's rate limit was reached",
                Some(
                    "wait for the limit to reset (Let's Encrypt: see its rate limits page); plain HTTP keeps serving and the worker retries later",
                ),
            ),
            ErrorCode::TlsFailed => (
                "tls.failed",
                "obtaining a certificate failed",
                Some(
                    "check `[tls]` in worker.toml (directory URL, CA root) and that the node reaches the ACME server; plain HTTP keeps serving",
                ),
            ),
            ErrorCode::Internal => (
                "internal",
                "internal error in the worker",
                Some("see the worker's log on the node"),
            ),
            ErrorCode::Unknown => ("unknown", "unknown error", None),
        };
        Info {
            code,
            message,
            hint,
        }
    }

    /// The stable string (`"compose.invalid"`).
    pub fn as_str(self) -> &'static str {
        self.info().code
    }

    /// A default human message, used when no more specific message exists.
    pub fn message(self) -> &'static str {
        self.info().message
    }

    /// A default hint: what to do about it, where there is one.
    pub fn hint(self) -> Option<&'static str> {
        self.info().hint
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string is not a known [`ErrorCode`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {code:?}")]
pub struct UnknownErrorCode {
    /// The input.
    pub code: String,
}

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.as_str() == s)
            .ok_or_else(|| UnknownErrorCode { code: s.to_owned() })
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Ok(text.parse().unwrap_or(ErrorCode::Unknown))
    }
}

impl JsonSchema for ErrorCode {
    fn schema_name() -> Cow<'static, str> {
        "ErrorCode".into()
    }

    fn json_schema(_generator: &mut SchemaGenerator) -> Schema {
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        json_schema!({
            "type": "string",
            "description": "Stable error code. Readers must accept codes they do not know (newer workers may add codes).",
            "examples": codes,
        })
    }
}

/// An error as it crosses the wire: a stable code, a safe human message
/// (never a secret), and optionally a hint.
///
/// JSON: `{"code": "health.timeout", "message": "…", "hint": "…"}` (`hint`
/// omitted when absent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{message} ({code})")]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// What went wrong, for humans. Must not contain secrets.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ErrorBody {
    /// An error with a specific message and the code's default hint.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            hint: code.hint().map(str::to_owned),
        }
    }

    /// An error with the code's default message and hint.
    pub fn from_code(code: ErrorCode) -> Self {
        ErrorBody::new(code, code.message())
    }

    /// Replaces the hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Removes the hint.
    pub fn without_hint(mut self) -> Self {
        self.hint = None;
        self
    }
}

impl From<ErrorCode> for ErrorBody {
    fn from(code: ErrorCode) -> Self {
        ErrorBody::from_code(code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_through_its_string() {
        let mut seen = std::collections::HashSet::new();
        for &code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "duplicate {code}");
            assert_eq!(code.as_str().parse::<ErrorCode>().unwrap(), code);
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{code}\""));
            assert_eq!(serde_json::from_str::<ErrorCode>(&json).unwrap(), code);
            assert!(!code.message().is_empty());
            assert!(code.hint().is_some(), "{code} has no hint");
        }
        assert!(!ErrorCode::ALL.contains(&ErrorCode::Unknown));
    }

    #[test]
    fn required_codes_exist() {
        for code in [
            "compose.invalid",
            "compose.unsupported",
            "policy.denied",
            "image.missing",
            "image.load_failed",
            "health.timeout",
            "proxy.invalid",
            "ports.exhausted",
            "version.not_found",
            "job.invalid",
            "job.unauthorized",
            "docker.unavailable",
            "limits.failed",
            "internal",
        ] {
            assert!(code.parse::<ErrorCode>().is_ok(), "{code}");
        }
    }

    #[test]
    fn unknown_codes_are_strict_in_from_str_and_lenient_in_serde() {
        assert_eq!(
            "quantum.flux".parse::<ErrorCode>(),
            Err(UnknownErrorCode {
                code: "quantum.flux".into()
            })
        );
        assert_eq!(
            serde_json::from_str::<ErrorCode>("\"quantum.flux\"").unwrap(),
            ErrorCode::Unknown
        );
    }

    #[test]
    fn error_body_shape_and_round_trip() {
        let body = ErrorBody::new(
            ErrorCode::HealthTimeout,
            "web did not become healthy in 60s",
        )
        .without_hint();
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"code":"health.timeout","message":"web did not become healthy in 60s"}"#
        );
        let with_hint = ErrorBody::from_code(ErrorCode::PortsExhausted);
        let back: ErrorBody =
            serde_json::from_str(&serde_json::to_string(&with_hint).unwrap()).unwrap();
        assert_eq!(back, with_hint);
        assert_eq!(
            with_hint.to_string(),
            "no free host ports are left on the node (ports.exhausted)"
        );
        let extra: ErrorBody =
            serde_json::from_str(r#"{"code":"internal","message":"x","extra":1}"#).unwrap();
        assert_eq!(extra.code, ErrorCode::Internal);
    }
}
