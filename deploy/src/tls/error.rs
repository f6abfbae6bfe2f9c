//! [`TlsError`]: why a certificate could not be obtained, with the stable
//! code and the hint the worker's `certificate_failed` event carries.

use std::path::PathBuf;

use hostkit_proto::ErrorCode;

/// Why obtaining a certificate failed.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The ACME server did not answer (network, TLS, DNS of the server).
    #[error("the ACME server {url} cannot be reached: {message}")]
    Unreachable {
        /// The directory URL.
        url: String,
        /// What the HTTP client said.
        message: String,
    },
    /// A name's HTTP-01 validation failed.
    #[error("{name}: the ACME server could not validate it over HTTP: {detail}")]
    Challenge {
        /// The name.
        name: String,
        /// The server's problem detail.
        detail: String,
    },
    /// A rate limit of the ACME server.
    #[error("the ACME server's rate limit was reached: {detail}")]
    RateLimited {
        /// The server's problem detail.
        detail: String,
    },
    /// Any other refusal of the ACME server.
    #[error("the ACME server refused: {detail}")]
    Refused {
        /// The problem type and detail.
        detail: String,
    },
    /// The server offered no `http-01` challenge.
    #[error("{name}: the ACME server offers no http-01 challenge")]
    NoHttpChallenge {
        /// The name.
        name: String,
    },
    /// The server answered something a certificate cannot be made of.
    #[error("the certificate is unreadable: {message}")]
    BadCertificate {
        /// What is wrong.
        message: String,
    },
    /// A file (account, challenge, certificate) could not be written.
    #[error("writing {path} failed")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("reading {path} failed")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

impl TlsError {
    /// The stable wire code.
    pub fn code(&self) -> ErrorCode {
        match self {
            TlsError::Challenge { .. } => ErrorCode::TlsChallengeFailed,
            TlsError::RateLimited { .. } => ErrorCode::TlsRateLimited,
            _ => ErrorCode::TlsFailed,
        }
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> String {
        match self {
            TlsError::Challenge { name, .. } => format!(
                "point the DNS of {name} (A/AAAA records) at this node and keep port 80 open to the internet; plain HTTP keeps serving and the worker retries"
            ),
            TlsError::Unreachable { .. } => "check `tls.directory_url`, the node's outbound HTTPS and, for a private ACME server, `tls.ca_root`; plain HTTP keeps serving and the worker retries".into(),
            TlsError::Write { .. } | TlsError::Read { .. } => {
                "check the permissions of the worker's data_dir and of `tls.webroot`".into()
            }
            _ => self.code().hint().unwrap_or_default().to_owned(),
        }
    }
}

/// An `instant-acme` error in HostKit's terms.
pub(super) fn from_acme(url: &str, error: instant_acme::Error) -> TlsError {
    match error {
        instant_acme::Error::Api(problem) => from_problem(None, &problem),
        instant_acme::Error::Hyper(_)
        | instant_acme::Error::Http(_)
        | instant_acme::Error::InvalidUri(_)
        | instant_acme::Error::Other(_) => TlsError::Unreachable {
            url: url.to_owned(),
            message: chain(&error),
        },
        other => TlsError::Refused {
            detail: chain(&other),
        },
    }
}

/// A problem document (RFC 8555 §6.7) in HostKit's terms; `name` is the
/// identifier it is about, when known.
pub(super) fn from_problem(name: Option<&str>, problem: &instant_acme::Problem) -> TlsError {
    let kind = problem
        .r#type
        .as_deref()
        .unwrap_or_default()
        .trim_start_matches("urn:ietf:params:acme:error:");
    let detail = problem.detail.clone().unwrap_or_else(|| kind.to_owned());
    match kind {
        "rateLimited" => TlsError::RateLimited { detail },
        "connection" | "dns" | "unauthorized" | "incorrectResponse" | "caa" | "tls"
        | "rejectedIdentifier" => TlsError::Challenge {
            name: name
                .map(str::to_owned)
                .or_else(|| {
                    problem
                        .subproblems
                        .first()
                        .and_then(|s| match &s.identifier {
                            Some(instant_acme::Identifier::Dns(name)) => Some(name.clone()),
                            _ => None,
                        })
                })
                .unwrap_or_else(|| "a name".into()),
            detail,
        },
        _ => TlsError::Refused {
            detail: format!("{kind}: {detail}"),
        },
    }
}

/// An error and its sources, `: `-joined (without repeats).
fn chain(error: &dyn std::error::Error) -> String {
    let mut out = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(kind: &str, detail: &str) -> instant_acme::Problem {
        serde_json::from_value(serde_json::json!({
            "type": format!("urn:ietf:params:acme:error:{kind}"),
            "detail": detail,
            "status": 400,
        }))
        .unwrap()
    }

    #[test]
    fn problems_map_to_codes_and_hints() {
        let err = from_problem(Some("www.example.com"), &problem("connection", "refused"));
        assert_eq!(err.code(), ErrorCode::TlsChallengeFailed);
        assert!(
            err.hint().contains("DNS of www.example.com"),
            "{}",
            err.hint()
        );
        let err = from_problem(None, &problem("rateLimited", "too many certificates"));
        assert_eq!(err.code(), ErrorCode::TlsRateLimited);
        assert!(err.hint().contains("rate limit"), "{}", err.hint());
        let err = from_problem(None, &problem("malformed", "bad"));
        assert_eq!(err.code(), ErrorCode::TlsFailed);
        assert_eq!(err.to_string(), "the ACME server refused: malformed: bad");
    }
}
