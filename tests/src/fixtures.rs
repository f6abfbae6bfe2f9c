//! Ready-made test images (busybox based, see [`crate::image`]) for web,
//! api and db-like services with real healthchecks.
//!
//! Every tag always names the same content (the builder is deterministic),
//! so parallel tests may load the same fixture tags without interfering.
//! Never build a *different* image under a `hostkit-test/*` tag.
//!
//! All servers run busybox `httpd -f -v` behind a small `serve` script that
//! turns SIGTERM into a clean exit 0, so `docker stop` is quick (httpd as PID 1
//! would ignore SIGTERM and be killed after the stop timeout).

use crate::image::{Healthcheck, ImageSpec};

/// Port the [`web`] image listens on.
pub const WEB_PORT: u16 = 8080;
/// Port the [`api`] image listens on.
pub const API_PORT: u16 = 8081;
/// Port the [`db`] image listens on.
pub const DB_PORT: u16 = 5432;

/// `serve PORT DIR`: busybox httpd serving DIR on 0.0.0.0:PORT in the
/// foreground; SIGTERM/SIGINT stop it and exit 0.
const SERVE: &str = r#"#!/bin/sh
port="$1"
dir="$2"
echo "serving $dir on port $port"
httpd -f -v -p "0.0.0.0:$port" -h "$dir" &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid"; exit 0' TERM INT
wait "$pid"
"#;

/// CGI script: the container's environment, sorted.
const CGI_ENV: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nenv | sort\n";
/// CGI script: the container's host name (its short id unless set).
const CGI_HOSTNAME: &str = "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nhostname\n";

/// Starts the db: creates `/data/created` (a random UUID) once, appends a
/// UTC timestamp line to `/data/boots` on every start, then serves `/data`.
const DB_START: &str = r#"#!/bin/sh
set -e
mkdir -p /data
if [ ! -f /data/created ]; then
  cat /proc/sys/kernel/random/uuid > /data/created.tmp
  mv /data/created.tmp /data/created
fi
date -u +%Y-%m-%dT%H:%M:%SZ >> /data/boots
exec serve 5432 /data
"#;

/// An HTTP service `name` on `port` whose `/` answers `"<name> <version>\n"`.
fn http_service(name: &str, version: &str, port: u16) -> ImageSpec {
    let url = format!("http://127.0.0.1:{port}/");
    ImageSpec::new(format!("hostkit-test/{name}:{version}"))
        .file("/usr/local/bin/serve", SERVE, 0o755)
        .file("/www/index.html", format!("{name} {version}\n"), 0o644)
        .file("/www/cgi-bin/env", CGI_ENV, 0o755)
        .file("/www/cgi-bin/hostname", CGI_HOSTNAME, 0o755)
        .env("FIXTURE", name)
        .env("FIXTURE_VERSION", version)
        .expose(port)
        .label(
            "org.opencontainers.image.title",
            format!("hostkit-test-{name}"),
        )
        .label("org.opencontainers.image.version", version)
        .cmd(["serve".to_string(), port.to_string(), "/www".to_string()])
        .healthcheck(Healthcheck::cmd(["wget", "-q", "-O-", url.as_str()]))
}

/// An HTTP service like [`web`] under any tag (e.g. the seed's
/// `example.com-web:latest`): `GET /` on `port` answers `"<name> <version>\n"`.
/// Register the tag for removal: it is not a shared fixture tag.
pub fn http_as(tag: &str, name: &str, version: &str, port: u16) -> ImageSpec {
    http_service(name, version, port).retag(tag)
}

/// `hostkit-test/web:<version>`: HTTP on port 8080. `GET /` → 200
/// `"web <version>\n"`; `GET /cgi-bin/env` → the container's environment
/// (sorted `KEY=value` lines, incl. CGI variables); `GET /cgi-bin/hostname` →
/// its host name. Healthcheck `wget -q -O- http://127.0.0.1:8080/` every 1 s
/// (timeout 5 s, 3 retries): healthy about 1 s after start. Env
/// `FIXTURE=web`, `FIXTURE_VERSION=<version>`. Stops cleanly on SIGTERM.
pub fn web(version: &str) -> ImageSpec {
    http_service("web", version, WEB_PORT)
}

/// `hostkit-test/api:<version>`: like [`web`] on port 8081, `GET /` →
/// `"api <version>\n"`, `FIXTURE=api`.
pub fn api(version: &str) -> ImageSpec {
    http_service("api", version, API_PORT)
}

/// `hostkit-test/web-unhealthy:<version>`: serves exactly like [`web`]
/// (`GET /` → `"web <version>\n"` on 8080) but its healthcheck fetches a
/// missing page, so it turns `unhealthy` after about 3 s (3 failed checks,
/// 1 s apart). For health-gate and auto-rollback tests.
pub fn web_unhealthy(version: &str) -> ImageSpec {
    web(version)
        .healthcheck(Healthcheck::cmd([
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:8080/healthz",
        ]))
        .retag(format!("hostkit-test/web-unhealthy:{version}"))
}

/// `hostkit-test/db:latest`: a db-like service keeping state in the volume
/// `/data` (declared as an image volume). On every start it creates
/// `/data/created` (a random UUID) if absent and appends a timestamp line to
/// `/data/boots`, then serves `/data` over HTTP on port 5432: `GET /created`
/// shows whether state survived, `GET /boots` counts starts. Healthcheck
/// `wget -q -O- http://127.0.0.1:5432/created` every 1 s. `FIXTURE=db`.
pub fn db() -> ImageSpec {
    ImageSpec::new("hostkit-test/db:latest")
        .file("/usr/local/bin/serve", SERVE, 0o755)
        .file("/usr/local/bin/db-start", DB_START, 0o755)
        .env("FIXTURE", "db")
        .expose(DB_PORT)
        .volume("/data")
        .label("org.opencontainers.image.title", "hostkit-test-db")
        .cmd(["db-start"])
        .healthcheck(Healthcheck::cmd([
            "wget",
            "-q",
            "-O-",
            "http://127.0.0.1:5432/created",
        ]))
}

/// `hostkit-test/oneshot:<version>`: prints `oneshot <version> done` and
/// exits 0 at once (no healthcheck). For `service_completed_successfully`.
pub fn oneshot(version: &str) -> ImageSpec {
    ImageSpec::new(format!("hostkit-test/oneshot:{version}"))
        .env("FIXTURE", "oneshot")
        .env("FIXTURE_VERSION", version)
        .label("org.opencontainers.image.title", "hostkit-test-oneshot")
        .cmd(["echo", "oneshot", version, "done"])
}
