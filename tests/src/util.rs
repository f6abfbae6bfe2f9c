//! Small helpers shared by the harness and the tests: free loopback ports,
//! bounded waits, a minimal HTTP/1.1 client and a tiny HTTP responder.

use std::collections::BTreeSet;
use std::fmt::Display;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdTcpListener};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long one [`http_get`] may take in total (connect, send, read).
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Ports this process has already handed out, so two servers of one test
/// never get the same port.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A TCP port on 127.0.0.1 that was free a moment ago and that this process
/// has not handed out before. (Another process may still take it before the
/// caller binds it; servers started by the harness retry on a new port when
/// that happens.)
pub fn free_port() -> u16 {
    for _ in 0..100 {
        let listener = StdTcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("cannot bind a TCP socket on 127.0.0.1 to find a free port");
        let port = listener
            .local_addr()
            .expect("local_addr of a bound socket")
            .port();
        drop(listener);
        if HANDED_OUT
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(port)
        {
            return port;
        }
    }
    panic!("could not find a free 127.0.0.1 port in 100 attempts");
}

/// The first port of `len` consecutive ports on 127.0.0.1 that were free a
/// moment ago, picked at random between 20000 and 32000 and reserved across
/// the test processes running at once (a lock file per block under the temp
/// dir, naming its owner's pid; a dead owner's block is taken over).
pub fn free_port_block(len: u16) -> u16 {
    let dir = std::env::temp_dir().join("hostkit-test-port-blocks");
    std::fs::create_dir_all(&dir).expect("create the port block lock dir");
    let me = std::process::id();
    for attempt in 0..1000u32 {
        let random = ulid::Ulid::new().random() as u32 ^ attempt;
        // Below the kernel's ephemeral range (32768+), where bind(0) ports come from.
        let slots = (12000 / u32::from(len.max(1))).max(1);
        let start = 20000 + (random % slots) as u16 * len;
        let end = start.saturating_add(len);
        let lock = dir.join(format!("{start}-{len}"));
        let owned = match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&lock)
        {
            Ok(mut file) => {
                use std::io::Write;
                let _ = write!(file, "{me}");
                true
            }
            Err(_) => {
                let owner: Option<u32> = std::fs::read_to_string(&lock)
                    .ok()
                    .and_then(|t| t.trim().parse().ok());
                let alive =
                    owner.is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists());
                if alive {
                    false
                } else {
                    std::fs::write(&lock, me.to_string()).is_ok()
                }
            }
        };
        if !owned {
            continue;
        }
        let mut handed = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
        if (start..end).any(|p| handed.contains(&p)) {
            continue;
        }
        if (start..end).all(|p| StdTcpListener::bind((Ipv4Addr::LOCALHOST, p)).is_ok()) {
            handed.extend(start..end);
            return start;
        }
    }
    panic!("no block of {len} free ports between 20000 and 32000");
}

/// Polls `check` until it returns `true`; panics naming `description` when
/// `timeout` passes first (also when one call of `check` hangs past it).
/// Polls start every 20 ms and back off to every 250 ms.
pub async fn wait_until(
    timeout: Duration,
    description: &str,
    mut check: impl AsyncFnMut() -> bool,
) {
    wait_for(timeout, description, async || {
        if check().await {
            Ok(())
        } else {
            Err("condition not met yet")
        }
    })
    .await
}

/// Polls `check` until it returns `Ok(value)` and returns that value; panics
/// naming `description` and the last error when `timeout` passes first (also
/// when one call of `check` hangs past it).
pub async fn wait_for<T, E: Display>(
    timeout: Duration,
    description: &str,
    mut check: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut delay = Duration::from_millis(20);
    let mut last_error;
    let mut attempts = 0_u32;
    loop {
        attempts += 1;
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(error)) => last_error = error.to_string(),
            Err(_) => last_error = "the last attempt was still running at the deadline".into(),
        }
        let now = Instant::now();
        if now >= deadline {
            panic!(
                "timed out after {:.1?} ({attempts} attempts) waiting for {description}; last: {last_error}",
                now - started
            );
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(Duration::from_millis(250));
    }
}

/// Awaits `wait` while `task` (a worker running in-process) runs: when the
/// task ends first, panics with what ended it (its panic message, e.g.
/// "worker failed: JetStream setup failed: …") instead of letting `wait`
/// time out on a condition that can no longer come true.
pub async fn while_running<T>(
    task: &mut JoinHandle<()>,
    what: &str,
    wait: impl Future<Output = T>,
) -> T {
    tokio::select! {
        value = wait => value,
        ended = &mut *task => match ended {
            Ok(()) => panic!("{what} stopped while the test waited for it"),
            Err(error) => match error.try_into_panic() {
                Ok(panic) => panic!(
                    "{what} died while the test waited for it: {}",
                    hostkit_worker::runtime::job::panic_message(panic.as_ref())
                ),
                Err(error) => panic!("{what} was cancelled while the test waited for it: {error}"),
            },
        },
    }
}

/// A response as [`http_request`] reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header lines, in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (decoded from chunked transfer encoding, lossily as UTF-8).
    pub body: String,
}

impl HttpResponse {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.1 `GET path` with `Host: host_header` and `Connection: close`;
/// returns the status code and the body (decoded from chunked transfer
/// encoding where used, lossily as UTF-8). Gives up after [`HTTP_TIMEOUT`].
pub async fn http_get(
    addr: impl ToSocketAddrs,
    host_header: &str,
    path: &str,
) -> anyhow::Result<(u16, String)> {
    http_request(addr, host_header, path)
        .await
        .map(|r| (r.status, r.body))
}

/// [`http_get`] with the response's headers.
pub async fn http_request(
    addr: impl ToSocketAddrs,
    host_header: &str,
    path: &str,
) -> anyhow::Result<HttpResponse> {
    tokio::time::timeout(HTTP_TIMEOUT, async {
        let stream = TcpStream::connect(addr).await.context("connect")?;
        exchange(stream, host_header, path).await
    })
    .await
    .with_context(|| {
        format!("GET {path} (Host: {host_header}) took longer than {HTTP_TIMEOUT:?}")
    })?
}

/// Send `GET path` on `stream` and read the whole response.
pub(crate) async fn exchange(
    mut stream: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    host_header: &str,
    path: &str,
) -> anyhow::Result<HttpResponse> {
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: hostkit-tests\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .context("send request")?;
    // Read until the response is complete (by Content-Length, the last
    // chunk, or EOF), so a server that keeps the connection open anyway
    // cannot stall us.
    let mut raw = Vec::new();
    let mut buf = vec![0_u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(n) => n,
            // A TLS peer that closes without close_notify: the bytes so far.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Err(e) => return Err(e).context("read response"),
        };
        raw.extend_from_slice(&buf[..n]);
        if let Some(response) = parse_response(&raw, n == 0)? {
            return Ok(response);
        }
    }
}

/// Parses a response: `Ok(None)` while more bytes are needed (only when not
/// at `eof`).
fn parse_response(raw: &[u8], eof: bool) -> anyhow::Result<Option<HttpResponse>> {
    let incomplete = |what: &str| -> anyhow::Result<Option<HttpResponse>> {
        if eof {
            bail!(
                "connection closed before the {what} was complete ({} bytes): {:?}",
                raw.len(),
                String::from_utf8_lossy(raw)
            );
        }
        Ok(None)
    };
    let Some(head_end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return incomplete("response head");
    };
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .with_context(|| format!("bad HTTP status line {status_line:?}"))?;
    let mut chunked = false;
    let mut content_length = None;
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        headers.push((name.trim().to_owned(), value.to_owned()));
        if name.eq_ignore_ascii_case("transfer-encoding") && value.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().context("bad Content-Length")?);
        }
    }
    let body = &raw[head_end + 4..];
    let text = |bytes: &[u8]| {
        Some(HttpResponse {
            status,
            headers: headers.clone(),
            body: String::from_utf8_lossy(bytes).into_owned(),
        })
    };
    if status == 204 || status == 304 {
        return Ok(text(b""));
    }
    if chunked {
        return match decode_chunked(body)? {
            Some(decoded) => Ok(text(&decoded)),
            None => incomplete("chunked body"),
        };
    }
    match content_length {
        Some(len) if body.len() >= len => Ok(text(&body[..len])),
        Some(_) => incomplete("body (by Content-Length)"),
        None if eof => Ok(text(body)),
        None => Ok(None),
    }
}

/// Decodes a chunked body; `Ok(None)` if it is not complete yet.
fn decode_chunked(mut rest: &[u8]) -> anyhow::Result<Option<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A tiny HTTP server on 127.0.0.1 (a free port) that answers every request
/// with `200 OK` and a fixed body; stops when dropped. Use it as an upstream
/// for nginx without Docker.
#[derive(Debug)]
pub struct HttpResponder {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpResponder {
    /// Binds a free loopback port and serves `body` to every request.
    pub async fn start(body: impl Into<String>) -> HttpResponder {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the HTTP responder on 127.0.0.1");
        let addr = listener.local_addr().expect("responder address");
        let body: String = body.into();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    continue;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut request = Vec::new();
                    let mut buf = [0_u8; 1024];
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let response = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        HttpResponder { addr, task }
    }

    /// Where it listens (127.0.0.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for HttpResponder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Status and body of a parsed response.
    fn parse(raw: &[u8], eof: bool) -> anyhow::Result<Option<(u16, String)>> {
        parse_response(raw, eof).map(|r| r.map(|r| (r.status, r.body)))
    }

    #[test]
    fn keeps_headers() {
        let raw = b"HTTP/1.1 301 Moved Permanently\r\nLocation: https://a.example/x\r\nContent-Length: 0\r\n\r\n";
        let response = parse_response(raw, false).unwrap().unwrap();
        assert_eq!(response.status, 301);
        assert_eq!(response.header("location"), Some("https://a.example/x"));
    }

    #[test]
    fn parses_content_length_and_chunked_bodies() {
        let plain = b"HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\n\r\nhello+junk";
        assert_eq!(
            parse(plain, false).unwrap(),
            Some((404, "hello".to_string()))
        );
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel";
        assert_eq!(parse(short, false).unwrap(), None, "waits for the rest");
        assert!(parse(short, true).is_err(), "a truncated body is an error");
        let no_length = b"HTTP/1.1 200 OK\r\n\r\nuntil eof";
        assert_eq!(parse(no_length, false).unwrap(), None);
        assert_eq!(
            parse(no_length, true).unwrap(),
            Some((200, "until eof".to_string()))
        );
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nweb \r\n2;x=y\r\nv1\r\n0\r\n\r\n";
        assert_eq!(
            parse(chunked, false).unwrap(),
            Some((200, "web v1".to_string()))
        );
        assert_eq!(parse(&chunked[..chunked.len() - 5], false).unwrap(), None);
        assert_eq!(parse(b"HTTP/1.1 200 OK\r\n", false).unwrap(), None);
        assert!(parse(b"HTTP/1.1 200 OK\r\n", true).is_err());
    }

    #[test]
    fn free_ports_are_not_handed_out_twice() {
        let ports: BTreeSet<u16> = (0..50).map(|_| free_port()).collect();
        assert_eq!(ports.len(), 50);
    }

    #[tokio::test]
    async fn http_get_does_not_wait_for_a_server_that_keeps_the_connection() {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0_u8; 1024];
            let _ = stream.read(&mut buf).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await
                .unwrap();
            // Keep the connection open well past the client's timeout.
            tokio::time::sleep(HTTP_TIMEOUT * 2).await;
            drop(stream);
        });
        // Waiting for EOF would hit HTTP_TIMEOUT and fail.
        assert_eq!(
            http_get(addr, "x.test", "/").await.unwrap(),
            (200, "ok".to_string())
        );
        server.abort();
    }

    #[tokio::test]
    async fn responder_answers_and_wait_for_reports_the_last_error() {
        let responder = HttpResponder::start("pong").await;
        let (status, body) = http_get(responder.addr(), "x.test", "/").await.unwrap();
        assert_eq!((status, body.as_str()), (200, "pong"));

        let panic = tokio::spawn(async {
            wait_for(Duration::from_millis(100), "the impossible", async || {
                Err::<(), _>("still impossible")
            })
            .await
        })
        .await
        .unwrap_err()
        .into_panic();
        let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(message.contains("the impossible"), "{message}");
        assert!(message.contains("still impossible"), "{message}");
    }
}
