#!/usr/bin/env bash
# HostKit end to end on this machine, in one command: installs what it needs,
# builds the binaries and the example images, starts a local nats-server,
# nginx and a worker, then with the `hostkit` CLI deploys the example
# web+api+db stack (progress shown live), requests it through nginx, deploys
# v2, rolls back to v1, shows status, and removes it. Everything it starts
# stops when it ends; nothing outside a temporary directory is changed
# (besides the packages it installs and the containers it runs meanwhile).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

# shellcheck source=scripts/setup.sh
. scripts/setup.sh

step "build hostkit, hostkit-worker and the example images"
cargo build -p hostkit -p hostkit-worker -p hostkit-tests --bin hostkit --bin hostkit-worker --bin example-images
BIN="$PWD/target/debug"

work=$(mktemp -d /tmp/hostkit-demo.XXXXXX)
pids=()
cleanup() {
  status=$?
  if [ -n "${NATS_URL:-}" ] && [ -n "${DOMAIN:-}" ]; then
    "$BIN/hostkit" remove "$DOMAIN" --purge-volumes --yes --node demo >/dev/null 2>&1 || true
  fi
  [ -f "$work/nginx/nginx.pid" ] && /usr/sbin/nginx -p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log" -s quit 2>/dev/null || true
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ $status -ne 0 ]; then
    echo "demo failed; logs are in $work (worker.log, nats.log, nginx/logs)" >&2
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() { # description, command...
  local what=$1; shift
  for _ in $(seq 1 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  die "timed out waiting for $what"
}

step "example images (docker save tarballs built from busybox, no registry)"
"$BIN/example-images" "$work/images"

step "nats-server with JetStream on 127.0.0.1"
NATS_PORT=$(free_port)
"$HOSTKIT_NATS_SERVER" -js -a 127.0.0.1 -p "$NATS_PORT" -sd "$work/nats" >"$work/nats.log" 2>&1 &
pids+=($!)
wait_for "nats-server" bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT"
export NATS_URL="nats://127.0.0.1:$NATS_PORT"

step "nginx with its own prefix on 127.0.0.1"
HTTP_PORT=$(free_port)
mkdir -p "$work/nginx/conf.d" "$work/nginx/logs" "$work/nginx/temp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/logs/error.log;
$( [ "$(id -u)" = 0 ] && echo "user root;" )
events { worker_connections 256; }
http {
  access_log $work/nginx/logs/access.log;
  client_body_temp_path $work/nginx/temp/body;
  proxy_temp_path $work/nginx/temp/proxy;
  fastcgi_temp_path $work/nginx/temp/fastcgi;
  uwsgi_temp_path $work/nginx/temp/uwsgi;
  scgi_temp_path $work/nginx/temp/scgi;
  server { listen 127.0.0.1:$HTTP_PORT default_server; return 404; }
  include $work/nginx/conf.d/*.conf;
}
EOF
nginx_args=(-p "$work/nginx/" -c "$work/nginx/nginx.conf" -e "$work/nginx/logs/error.log")
/usr/sbin/nginx "${nginx_args[@]}"
wait_for "nginx" curl -s -o /dev/null "http://127.0.0.1:$HTTP_PORT/"

step "a job-signing key for the demo's domain (hostkit admin job-key)"
# The CI keeps the seed as its secret; the worker trusts the public key for
# this domain only, and refuses unsigned, expired and foreign jobs.
"$BIN/hostkit" admin job-key --domain demo.hostkit.test >"$work/job-key.txt"
HOSTKIT_SIGNING_KEY=$(grep '^SU' "$work/job-key.txt")
export HOSTKIT_SIGNING_KEY
sed -n '/^\[\[security.job_keys\]\]/,$p' "$work/job-key.txt"

step "hostkit-worker (node demo)"
toml_list() { printf '"%s", ' "$@" | sed 's/, $//'; }
cat >"$work/worker.toml" <<EOF
node = "demo"
data_dir = "$work/worker"
domains_root = "$work/domains"

[nats]
urls = ["$NATS_URL"]

[proxy]
enabled = true
conf_dir = "$work/nginx/conf.d"
test_command = [$(toml_list /usr/sbin/nginx "${nginx_args[@]}" -t -q)]
reload_command = [$(toml_list /usr/sbin/nginx "${nginx_args[@]}" -s reload)]
listen = "127.0.0.1:$HTTP_PORT"
certs_dir = ""

[ports]
start = 24000
end = 24999
block_size = 10

[jobs]
health_timeout = "60s"
drain_time = "1s"

[security]
require_signed_jobs = true
$(sed -n '/^\[\[security.job_keys\]\]/,$p' "$work/job-key.txt")
EOF
"$BIN/hostkit-worker" --config "$work/worker.toml" >"$work/worker.log" 2>&1 &
pids+=($!)
wait_for "the worker" grep -q "worker online" "$work/worker.log"

DOMAIN=demo.hostkit.test
site() { curl -s -H "Host: $DOMAIN" "http://127.0.0.1:$HTTP_PORT/"; }
expect() { # what, wanted body
  local got; got=$(site)
  [ "$got" = "$2" ] || die "$1: nginx answered '$got', expected '$2'"
  printf '    GET http://%s/ through nginx → %s\n' "$DOMAIN" "$got"
}

step "deploy v1 of the example stack (web ×2 → api → db)"
"$BIN/hostkit" deploy "$DOMAIN" examples/stack/docker-compose.yml --images "$work/images/stack-v1.tar" --node demo
expect "after v1" "web v1"

step "deploy v2 (only web changes; its replicas are replaced start-first)"
"$BIN/hostkit" deploy "$DOMAIN" examples/stack/docker-compose.yml --images "$work/images/web-v2.tar" --env WEB_VERSION=v2 --node demo
expect "after v2" "web v2"

step "roll back to v1"
"$BIN/hostkit" rollback "$DOMAIN" --node demo
expect "after the rollback" "web v1"

step "what runs"
"$BIN/hostkit" versions "$DOMAIN" --node demo
"$BIN/hostkit" compose services "$DOMAIN" --node demo
"$BIN/hostkit" status

step "remove the stack"
"$BIN/hostkit" remove "$DOMAIN" --purge-volumes --yes --node demo
unset DOMAIN
printf '\nThe demo ran end to end.\n'
