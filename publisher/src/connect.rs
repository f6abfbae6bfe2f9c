//! Connecting to NATS from the command-line options, with failures told as
//! plain sentences ("cannot reach NATS at nats://…: connection refused").

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_nats::{ConnectErrorKind, ConnectOptions, ServerAddr, jetstream};
use hostkit_proto::Names;

use crate::cli::ConnectArgs;
use crate::error::Error;

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// An open connection and the names under the subject root.
#[derive(Debug, Clone)]
pub struct Session {
    /// The client.
    pub client: async_nats::Client,
    /// JetStream on it.
    pub js: jetstream::Context,
    /// Every subject, stream and bucket name.
    pub names: Names,
    /// The server URL(s), passwords hidden, for messages.
    pub server: String,
    /// The object store image tarballs go to (`--image-bucket`).
    pub images_bucket: String,
}

/// The subject names for `--subject-root` (exit 2 when it is invalid).
pub fn names(args: &ConnectArgs) -> Result<Names, Error> {
    Names::new(&args.subject_root).map_err(|e| Error::usage(format!("--subject-root: {e}")))
}

/// Connects as the options say.
pub async fn connect(args: &ConnectArgs) -> Result<Session, Error> {
    let names = names(args)?;
    if let Some(bucket) = &args.image_bucket {
        if !hostkit_proto::name::is_bucket_name(bucket) {
            return Err(Error::usage(format!(
                "--image-bucket: {bucket:?} is not a bucket name (letters, digits, `_` and `-`)"
            )));
        }
    }
    let servers = server_addrs(&args.server)?;
    let shown = redact(&args.server);
    let options = options(args).await?;
    let client = options.connect(servers).await.map_err(|e| {
        let (exit_usage, reason) = describe(&e);
        let message = format!("cannot reach NATS at {shown}: {reason}");
        if exit_usage {
            Error::usage(message)
        } else {
            Error::unavailable(message)
        }
    })?;
    let js = jetstream::new(client.clone());
    let images_bucket = args
        .image_bucket
        .clone()
        .unwrap_or_else(|| names.images_bucket());
    Ok(Session {
        client,
        js,
        names,
        server: shown,
        images_bucket,
    })
}

fn server_addrs(list: &str) -> Result<Vec<ServerAddr>, Error> {
    let addrs: Vec<ServerAddr> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            ServerAddr::from_str(s).map_err(|e| {
                Error::usage(format!("--server: {} is not a NATS URL: {e}", redact(s)))
            })
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(Error::usage("--server: no NATS URL given"));
    }
    Ok(addrs)
}

async fn options(args: &ConnectArgs) -> Result<ConnectOptions, Error> {
    let methods = [
        args.creds.is_some(),
        args.nkey.is_some(),
        args.user.is_some() || args.password.is_some(),
        args.token.is_some(),
    ];
    if methods.iter().filter(|m| **m).count() > 1 {
        return Err(Error::usage(
            "give one way to authenticate: --creds, --nkey, --user/--password or --token",
        ));
    }
    let mut options = ConnectOptions::new()
        .name(concat!("hostkit-cli/", env!("CARGO_PKG_VERSION")))
        .connection_timeout(CONNECT_TIMEOUT);
    if let Some(path) = &args.creds {
        let path = Path::new(path);
        let text = read_secret_file("--creds", path)?;
        options = options.credentials(&text).map_err(|_| {
            Error::usage(format!(
                "--creds: {} is not a NATS credentials file",
                path.display()
            ))
        })?;
    }
    if let Some(path) = &args.nkey {
        let path = Path::new(path);
        let seed = read_secret_file("--nkey", path)?;
        let seed = seed.trim();
        if !seed.starts_with("SU") || hostkit_proto::sign::KeyPair::from_seed(seed).is_err() {
            return Err(Error::usage(format!(
                "--nkey: {} does not hold an nkey user seed (one line starting with `SU`)",
                path.display()
            )));
        }
        options = options.nkey(seed.to_owned());
    }
    match (&args.user, &args.password) {
        (Some(user), Some(password)) => {
            options = options.user_and_password(user.clone(), password.clone());
        }
        (Some(_), None) => return Err(Error::usage("--user needs --password (or NATS_PASSWORD)")),
        (None, Some(_)) => return Err(Error::usage("--password needs --user (or NATS_USER)")),
        (None, None) => {}
    }
    if let Some(token) = &args.token {
        options = options.token(token.clone());
    }
    if let Some(ca) = &args.tls_ca {
        let ca = Path::new(ca);
        if !ca.is_file() {
            return Err(Error::usage(format!(
                "--tls-ca: {} is not a file",
                ca.display()
            )));
        }
        options = options
            .add_root_certificates(ca.to_path_buf())
            .require_tls(true);
    }
    if let Some(prefix) = &args.inbox_prefix {
        options = options.custom_inbox_prefix(prefix);
    }
    Ok(options)
}

fn read_secret_file(flag: &str, path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::usage(format!("{flag}: cannot read {}", path.display())).with_source(e))
}

/// Why a connection failed, in a few words; `true` when the fix is in the
/// command line (credentials, TLS setup) rather than the network.
fn describe(error: &async_nats::ConnectError) -> (bool, String) {
    let io = std::error::Error::source(error).and_then(|s| s.downcast_ref::<std::io::Error>());
    match error.kind() {
        ConnectErrorKind::Io | ConnectErrorKind::MaxReconnects => (
            false,
            io.map(io_reason)
                .unwrap_or_else(|| "connection failed".to_owned()),
        ),
        ConnectErrorKind::TimedOut => (
            false,
            format!("no answer within {}s", CONNECT_TIMEOUT.as_secs()),
        ),
        ConnectErrorKind::Dns => (false, "cannot resolve the host name".to_owned()),
        ConnectErrorKind::ServerParse => (true, "not a valid server address".to_owned()),
        ConnectErrorKind::AuthorizationViolation => (
            true,
            "authorization violation (check --creds, --nkey, --user/--password or --token)"
                .to_owned(),
        ),
        ConnectErrorKind::Authentication => (
            true,
            "authentication failed (check --creds or --nkey)".to_owned(),
        ),
        ConnectErrorKind::Tls => (
            true,
            "TLS setup failed (check --tls-ca and the URL)".to_owned(),
        ),
    }
}

fn io_reason(error: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match error.kind() {
        ErrorKind::ConnectionRefused => "connection refused".to_owned(),
        ErrorKind::ConnectionReset => "connection reset".to_owned(),
        ErrorKind::TimedOut => "timed out".to_owned(),
        ErrorKind::HostUnreachable => "host unreachable".to_owned(),
        ErrorKind::NetworkUnreachable => "network unreachable".to_owned(),
        _ => {
            let text = error.to_string();
            let text = match text.find(" (os error") {
                Some(cut) => text[..cut].to_owned(),
                None => text,
            };
            text.to_lowercase()
        }
    }
}

/// `nats://user:secret@host` → `nats://user:***@host`, for every URL of a list.
pub fn redact(urls: &str) -> String {
    urls.split(',')
        .map(|url| {
            let url = url.trim();
            let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
            let Some((userinfo, host)) = rest.rsplit_once('@') else {
                return url.to_owned();
            };
            let user = match userinfo.split_once(':') {
                Some((user, _)) => format!("{user}:***"),
                None => "***".to_owned(),
            };
            let prefix = if scheme.is_empty() {
                String::new()
            } else {
                format!("{scheme}://")
            };
            format!("{prefix}{user}@{host}")
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            redact("nats://ci:hunter2@nats.example:4222,tls://tok@b:4222"),
            "nats://ci:***@nats.example:4222,tls://***@b:4222"
        );
    }

    #[test]
    fn io_reasons_are_plain() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(io_reason(&refused), "connection refused");
        let other = std::io::Error::other("Broken things (os error 99)");
        assert_eq!(io_reason(&other), "broken things");
    }

    #[test]
    fn bad_urls_are_usage_errors() {
        assert!(server_addrs("nats://127.0.0.1:4222, nats://b:4222").is_ok());
        let error = server_addrs(" , ").unwrap_err();
        assert_eq!(error.exit(), crate::error::Exit::Usage);
    }
}
