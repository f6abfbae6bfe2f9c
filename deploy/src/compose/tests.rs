//! Loader tests over whole compose files: every supported key, every
//! interpolation form, merge keys, extensions, every error, and a realistic
//! fixture.

use super::*;
use crate::compose::keys::{KEYS, Scope, Support};
use std::time::Duration;

fn env(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn ok(text: &str) -> Loaded {
    match load(text, &Env::new()) {
        Ok(loaded) => loaded,
        Err(e) => panic!("load failed: {e}\n{text}"),
    }
}

fn err(text: &str) -> ComposeError {
    match load(text, &Env::new()) {
        Ok(_) => panic!("load should fail:\n{text}"),
        Err(e) => e,
    }
}

/// The 1-based line of the first line containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .expect("needle in text")
}

/// Loads one service `web` with the given extra YAML lines (indented 4).
fn web(extra: &str) -> Service {
    let text = format!("services:\n  web:\n    image: nginx\n{extra}");
    ok(&text).project.services["web"].clone()
}

// ---------------------------------------------------------------- keys

/// One sample per supported service key: each must load and change the
/// model. Adding a key to the table without a sample fails this test.
const SERVICE_SAMPLES: &[(&str, &str)] = &[
    ("image", "    image: nginx:1.27\n"),
    ("command", "    command: nginx -g 'daemon off;'\n"),
    ("entrypoint", "    entrypoint: [/docker-entrypoint.sh]\n"),
    ("environment", "    environment: {A: b}\n"),
    ("env_file", "    env_file: .env\n"),
    ("labels", "    labels: [a=b]\n"),
    ("ports", "    ports: ['80']\n"),
    ("expose", "    expose: [3000]\n"),
    ("volumes", "    volumes: ['/cache']\n"),
    ("tmpfs", "    tmpfs: /run\n"),
    ("depends_on", "    depends_on: [db]\n"),
    ("networks", "    networks: [back]\n"),
    ("network_mode", "    network_mode: none\n"),
    ("healthcheck", "    healthcheck: {test: [CMD, true]}\n"),
    ("restart", "    restart: always\n"),
    ("deploy", "    deploy: {replicas: 2}\n"),
    ("mem_limit", "    mem_limit: 512m\n"),
    ("cpus", "    cpus: 0.5\n"),
    ("pids_limit", "    pids_limit: 100\n"),
    ("user", "    user: '1000:1000'\n"),
    ("working_dir", "    working_dir: /app\n"),
    ("stop_signal", "    stop_signal: SIGINT\n"),
    ("stop_grace_period", "    stop_grace_period: 1m30s\n"),
    ("init", "    init: true\n"),
    ("read_only", "    read_only: true\n"),
    ("extra_hosts", "    extra_hosts: ['db:10.0.0.2']\n"),
    ("hostname", "    hostname: web1\n"),
    ("cap_add", "    cap_add: [NET_BIND_SERVICE]\n"),
    ("cap_drop", "    cap_drop: [ALL]\n"),
    ("logging", "    logging: {driver: json-file}\n"),
    ("container_name", "    container_name: my-web\n"),
    ("secrets", "    secrets: [s]\n"),
    ("configs", "    configs: [c]\n"),
    ("privileged", "    privileged: true\n"),
    ("pid", "    pid: host\n"),
    ("ipc", "    ipc: host\n"),
    ("devices", "    devices: ['/dev/fuse']\n"),
    ("tty", "    tty: true\n"),
    ("stdin_open", "    stdin_open: true\n"),
    ("profiles", "    profiles: [debug]\n"),
    ("shm_size", "    shm_size: 64m\n"),
    ("ulimits", "    ulimits: {nofile: 65535}\n"),
    ("security_opt", "    security_opt: [no-new-privileges]\n"),
    ("sysctls", "    sysctls: {net.core.somaxconn: 1024}\n"),
    ("links", "    links: ['db:database']\n"),
    ("scale", "    scale: 2\n"),
    ("mac_address", "    mac_address: 02:42:ac:11:00:02\n"),
    (
        "develop",
        "    develop: {watch: [{action: sync, path: ./src, target: /app}]}\n",
    ),
    ("platform", "    platform: linux/amd64\n"),
    ("pull_policy", "    pull_policy: always\n"),
    ("pre_start", "    pre_start: [{command: [migrate]}]\n"),
    ("post_start", "    post_start: [{command: [warm-up]}]\n"),
    ("pre_stop", "    pre_stop: [{command: [drain]}]\n"),
];

const SAMPLE_TOP: &str = "  db:\n    image: postgres\nnetworks:\n  back: {}\nsecrets:\n  s: {file: ./s.txt}\nconfigs:\n  c: {file: ./c.txt}\n";

#[test]
fn every_supported_service_key_loads_and_changes_the_model() {
    // With the samples' profile active (a service with `profiles` is
    // deployed only then).
    let ok = |text: &str| match load(text, &env(&[("COMPOSE_PROFILES", "debug")])) {
        Ok(loaded) => loaded,
        Err(e) => panic!("load failed: {e}\n{text}"),
    };
    let base_text = format!("services:\n  web:\n    image: nginx\n{SAMPLE_TOP}");
    let base = ok(&base_text).project.services["web"].clone();
    for spec in KEYS
        .iter()
        .filter(|k| k.scope == Scope::Service && k.support == Support::Yes)
    {
        let sample = SERVICE_SAMPLES
            .iter()
            .find(|(key, _)| *key == spec.key)
            .unwrap_or_else(|| panic!("no sample for services.<name>.{}", spec.key));
        let text = if spec.key == "image" {
            format!("services:\n  web:\n{}{SAMPLE_TOP}", sample.1)
        } else {
            format!(
                "services:\n  web:\n    image: nginx\n{}{SAMPLE_TOP}",
                sample.1
            )
        };
        let loaded = ok(&text);
        let service = loaded.project.services["web"].clone();
        if spec.description.starts_with("accepted and ignored") {
            assert_eq!(service, base, "`{}` changed the model", spec.key);
            let path = format!("services.web.{}", spec.key);
            assert!(
                loaded.warnings.iter().any(|w| w.path == path),
                "`{}` is ignored without a warning",
                spec.key
            );
            continue;
        }
        assert_ne!(service, base, "`{}` did not change the model", spec.key);
    }
}

/// A file that uses every key of every nested scope.
const KITCHEN_SINK: &str = r#"
version: "3.9"
name: shop
services:
  web:
    image: nginx
    ports:
      - target: 80
        published: 8080
        host_ip: 127.0.0.1
        protocol: tcp
        mode: ingress
    volumes:
      - type: bind
        source: ./conf
        target: /etc/nginx/conf.d
        read_only: true
        consistency: cached
        bind: {propagation: rprivate, create_host_path: true, selinux: z}
      - type: volume
        source: data
        target: /data
        volume: {nocopy: true, subpath: web}
      - type: tmpfs
        target: /tmp
        tmpfs: {size: 64m, mode: 1777}
      - type: image
        source: nginx
        target: /srv/image
        image: {subpath: usr/share/nginx}
    pre_start:
      - image: busybox
        command: [chown, "101", /data]
        user: root
        working_dir: /
        environment: {MODE: init}
        per_replica: false
    post_start:
      - command: [nginx, -t]
        privileged: false
    depends_on:
      db: {condition: service_healthy, restart: true, required: true}
    networks:
      front: {aliases: [www], interface_name: eth0}
    healthcheck:
      test: [CMD, wget, -q, http://localhost/]
      interval: 30s
      timeout: 5s
      retries: 3
      start_period: 10s
      start_interval: 1s
      disable: false
    deploy:
      mode: replicated
      replicas: 2
      resources:
        limits: {cpus: "1.5", memory: 1g, pids: 200}
        reservations: {cpus: "0.25", memory: 64m}
      update_config: {order: start-first}
      restart_policy: {condition: on-failure, delay: 5s, max_attempts: 3, window: 1m}
    logging:
      driver: json-file
      options: {max-size: 10m}
    ulimits:
      nofile: {soft: 1024, hard: 4096}
    secrets:
      - source: token
        target: /run/secrets/api-token
        uid: "1000"
        gid: "1000"
        mode: 0400
    configs:
      - source: site
        target: /etc/site.conf
    env_file:
      - path: ./web.env
        required: false
        format: dotenv
  db:
    image: postgres
    networks: [front]
networks:
  front:
    name: shop-front
    driver: bridge
    internal: false
    labels: {team: shop}
    external: false
volumes:
  data:
    name: shop-data
    driver: local
    driver_opts: {type: tmpfs, device: tmpfs}
    labels: [team=shop]
    external: false
secrets:
  token: {file: ./token.txt}
  from_env:
    environment: HOME
configs:
  site: {file: ./site.conf}
  inline:
    content: "listen 80;"
"#;

#[test]
fn kitchen_sink_uses_every_nested_key_and_loads() {
    for spec in KEYS
        .iter()
        .filter(|k| k.support == Support::Yes && k.scope != Scope::Service)
    {
        assert!(
            KITCHEN_SINK.contains(&format!("{}:", spec.key)),
            "the kitchen sink does not use `{}{}`",
            spec.scope.prefix(),
            spec.key
        );
    }
    let loaded = ok(KITCHEN_SINK);
    let p = &loaded.project;
    assert_eq!(p.name.as_deref(), Some("shop"));
    let web = &p.services["web"];
    assert_eq!(web.ports[0].published, Some(8080));
    assert_eq!(web.volumes.len(), 4);
    assert_eq!(web.deploy.replicas, 2);
    assert_eq!(web.deploy.resources.limits.nano_cpus, Some(1_500_000_000));
    assert_eq!(web.deploy.resources.limits.memory, Some(1 << 30));
    assert_eq!(web.deploy.resources.limits.pids, Some(200));
    assert_eq!(
        web.restart,
        Restart::OnFailure {
            max_retries: Some(3)
        }
    );
    assert_eq!(
        web.healthcheck.as_ref().and_then(|h| h.start_interval),
        Some(Duration::from_secs(1))
    );
    assert_eq!(
        web.secrets[0].target.as_deref(),
        Some("/run/secrets/api-token")
    );
    assert_eq!(web.configs[0].source, "site");
    assert_eq!(
        web.env_file,
        [EnvFile {
            path: "./web.env".into(),
            required: false,
            raw: false
        }]
    );
    assert_eq!(web.networks["front"].aliases, ["www"]);
    assert_eq!(p.networks["front"].labels["team"], "shop");
    assert_eq!(p.volumes["data"].driver.as_deref(), Some("local"));
    assert_eq!(p.secrets["token"].file(), Some("./token.txt"));
    assert_eq!(p.configs["site"].file(), Some("./site.conf"));
    assert!(
        !p.networks.contains_key("default"),
        "no service uses the default network"
    );
    assert!(loaded.warnings.iter().any(|w| w.path == "version"));
    assert!(loaded.warnings.iter().any(|w| w.path == "name"));
}

#[test]
fn model_round_trips_through_json() {
    let project = ok(KITCHEN_SINK).project;
    let json = serde_json::to_string(&project).expect("serializes");
    let back: Project = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, project);
    assert!(
        json.contains("\"interval\":30000000000"),
        "durations are nanoseconds"
    );
}

#[test]
fn command_and_entrypoint_forms() {
    assert_eq!(
        web("    command: sh -c \"echo hi && sleep 1\"\n").command,
        Some(vec!["sh".into(), "-c".into(), "echo hi && sleep 1".into()])
    );
    assert_eq!(
        web("    command: [echo, 'a b']\n").command,
        Some(vec!["echo".into(), "a b".into()])
    );
    assert_eq!(web("    command: []\n").command, Some(vec![]));
    assert_eq!(web("    command: null\n").command, None);
    assert_eq!(
        web("    entrypoint: /bin/sh -c\n").entrypoint,
        Some(vec!["/bin/sh".into(), "-c".into()])
    );
    assert_eq!(
        web("    entrypoint: ['/init']\n").entrypoint,
        Some(vec!["/init".into()])
    );
    assert!(matches!(
        err("services:\n  web:\n    image: a\n    command: echo 'open\n"),
        ComposeError::Invalid { .. }
    ));
}

#[test]
fn environment_forms() {
    let text = "services:\n  web:\n    image: a\n    environment:\n      - A=1\n      - B=\n      - FROM_ENV\n      - NOT_SET\n      - C=x=y\n";
    let loaded = load(text, &env(&[("FROM_ENV", "env value")])).expect("loads");
    let e = &loaded.project.services["web"].environment;
    assert_eq!(e["A"], "1");
    assert_eq!(e["B"], "");
    assert_eq!(e["FROM_ENV"], "env value");
    assert_eq!(e["C"], "x=y");
    assert!(!e.contains_key("NOT_SET"), "unset values are dropped");

    let text = "services:\n  web:\n    image: a\n    environment:\n      A: 1\n      B: true\n      C: ''\n      FROM_ENV:\n      NOT_SET: null\n";
    let loaded = load(text, &env(&[("FROM_ENV", "v")])).expect("loads");
    let e = &loaded.project.services["web"].environment;
    assert_eq!(e["A"], "1");
    assert_eq!(e["B"], "true");
    assert_eq!(e["C"], "");
    assert_eq!(e["FROM_ENV"], "v");
    assert!(!e.contains_key("NOT_SET"));
    assert!(
        err("services:\n  web:\n    image: a\n    environment: [A=1, A=2]\n")
            .to_string()
            .contains("set twice")
    );
}

#[test]
fn labels_and_extra_hosts_forms() {
    let s = web("    labels:\n      - a=1\n      - flag\n");
    assert_eq!(s.labels["a"], "1");
    assert_eq!(s.labels["flag"], "");
    assert_eq!(web("    labels: {a: 1}\n").labels["a"], "1");
    let s = web("    extra_hosts:\n      somehost: 162.242.195.82\n      other: host-gateway\n");
    assert_eq!(s.extra_hosts.len(), 2);
    assert_eq!(
        s.extra_hosts[1],
        ExtraHost {
            host: "other".into(),
            ip: "host-gateway".into()
        }
    );
}

#[test]
fn ports_and_volumes_through_load() {
    let s = web(
        "    ports:\n      - 127.0.0.1:8080:80/tcp\n      - target: 443\n        published: 8443\n",
    );
    assert_eq!(s.ports[0].host_ip, Some("127.0.0.1".parse().expect("ip")));
    assert_eq!(s.ports[0].published, Some(8080));
    assert_eq!(s.ports[1].target, 443);
    let text = "services:\n  web:\n    image: a\n    volumes:\n      - data:/data:ro\n      - ./site:/usr/share/nginx/html\n      - type: tmpfs\n        target: /cache\nvolumes:\n  data:\n";
    let s = ok(text).project.services["web"].clone();
    assert_eq!(
        s.volumes[0],
        Mount {
            target: "/data".into(),
            read_only: true,
            source: MountSource::Volume {
                name: Some("data".into()),
                nocopy: false,
                subpath: None
            },
        }
    );
    assert!(matches!(&s.volumes[1].source, MountSource::Bind { path, .. } if path == "./site"));
    assert!(matches!(
        s.volumes[2].source,
        MountSource::Tmpfs {
            size: None,
            mode: None
        }
    ));
    let here = Path::new("/srv/example.com");
    assert_eq!(s.volumes[1].host_path(here), Some(here.join("site")));
    assert_eq!(s.volumes[0].host_path(here), None);
}

#[test]
fn depends_on_and_networks_forms() {
    let text = "services:\n  web:\n    image: a\n    depends_on: [api]\n    networks: [front]\n  api:\n    image: b\n    depends_on:\n      db:\n        condition: service_healthy\n      init:\n        condition: service_completed_successfully\n    networks:\n      front:\n      back:\n        aliases: [api.internal]\n  db:\n    image: c\n    networks: [back]\n  init:\n    image: d\n    network_mode: none\nnetworks:\n  front:\n  back:\n";
    let p = ok(text).project;
    assert_eq!(
        p.services["web"].depends_on["api"].condition,
        Condition::ServiceStarted
    );
    assert_eq!(
        p.services["api"].depends_on["db"].condition,
        Condition::ServiceHealthy
    );
    assert_eq!(
        p.services["api"].depends_on["init"].condition,
        Condition::ServiceCompletedSuccessfully
    );
    assert_eq!(p.services["api"].networks["back"].aliases, ["api.internal"]);
    assert!(p.services["init"].networks.is_empty());
    assert!(!p.networks.contains_key("default"));
}

#[test]
fn default_network_is_implicit() {
    let p = ok("services:\n  web:\n    image: a\n").project;
    assert!(p.services["web"].networks.contains_key("default"));
    assert_eq!(p.networks["default"], Network::default());
    let p = ok("services:\n  web:\n    image: a\n    networks: [default]\n").project;
    assert!(p.networks.contains_key("default"));
}

#[test]
fn resource_keys_fold_into_deploy_limits() {
    let s = web("    mem_limit: 1g\n    cpus: 1.5\n    pids_limit: 50\n");
    assert_eq!(
        s.deploy.resources.limits,
        ResourceSpec {
            nano_cpus: Some(1_500_000_000),
            memory: Some(1 << 30),
            pids: Some(50)
        }
    );
    let s = web("    mem_limit: 512m\n    deploy: {resources: {limits: {memory: 512m}}}\n");
    assert_eq!(s.deploy.resources.limits.memory, Some(512 << 20));
    let e = err(
        "services:\n  web:\n    image: a\n    mem_limit: 1g\n    deploy: {resources: {limits: {memory: 512m}}}\n",
    );
    assert!(
        e.to_string()
            .contains("conflicts with deploy.resources.limits.memory"),
        "{e}"
    );
    assert_eq!(e.line(), Some(4));
}

#[test]
fn misc_service_keys() {
    let s = web(
        "    user: 1000\n    working_dir: /app\n    stop_signal: SIGQUIT\n    stop_grace_period: 90s\n    init: true\n    read_only: 'true'\n    hostname: h\n    cap_add: [cap_net_admin]\n    cap_drop: [ALL]\n    tmpfs: [/run, /tmp]\n    devices: ['/dev/fuse:/dev/fuse:rwm']\n    privileged: true\n    pid: host\n    ipc: shareable\n    tty: true\n    stdin_open: true\n    expose: ['3000', 8080]\n    restart: on-failure:3\n",
    );
    assert_eq!(s.user.as_deref(), Some("1000"));
    assert_eq!(s.working_dir.as_deref(), Some("/app"));
    assert_eq!(s.stop_signal.as_deref(), Some("SIGQUIT"));
    assert_eq!(s.stop_grace_period, Some(Duration::from_secs(90)));
    assert_eq!(s.init, Some(true));
    assert!(s.read_only);
    assert_eq!(s.hostname.as_deref(), Some("h"));
    assert_eq!(s.cap_add, ["NET_ADMIN"]);
    assert_eq!(s.cap_drop, ["ALL"]);
    assert_eq!(s.tmpfs, ["/run", "/tmp"]);
    assert_eq!(s.devices, ["/dev/fuse:/dev/fuse:rwm"]);
    assert!(s.privileged);
    assert_eq!(s.pid.as_deref(), Some("host"));
    assert_eq!(s.ipc.as_deref(), Some("shareable"));
    assert!(s.tty && s.stdin_open);
    assert_eq!(s.expose, ["3000", "8080"]);
    assert_eq!(
        s.restart,
        Restart::OnFailure {
            max_retries: Some(3)
        }
    );
}

#[test]
fn secrets_and_configs_short_and_long() {
    let text = "services:\n  web:\n    image: a\n    secrets: [pw, {source: key, target: /k}]\n    configs: [conf]\nsecrets:\n  pw: {file: ./pw}\n  key: {file: ./key}\nconfigs:\n  conf: {file: ./conf}\n";
    let s = ok(text).project.services["web"].clone();
    assert_eq!(s.secrets[0].source, "pw");
    assert_eq!(s.secrets[1].target.as_deref(), Some("/k"));
    assert_eq!(s.configs[0].source, "conf");
    let e = err("services:\n  web:\n    image: a\nsecrets:\n  pw:\n    external: true\n");
    assert_eq!(e.code(), "compose.unsupported", "{e}");
    assert!(e.hint().is_some_and(|h| h.contains("environment:")), "{e}");
    let e = err("services:\n  web:\n    image: a\nsecrets:\n  pw: {}\n");
    assert!(e.to_string().contains("needs one of `file`"), "{e}");
    let e = err("services:\n  web:\n    image: a\nsecrets:\n  pw: {file: ./x, content: y}\n");
    assert!(e.to_string().contains("only one of"), "{e}");
}

#[test]
fn secrets_and_configs_from_the_environment_and_inline_content() {
    let text = "services:\n  web:\n    image: a\n    secrets: [{source: token, uid: '1000', mode: 0400}]\n    configs: [conf, unset]\nsecrets:\n  token:\n    environment: TOKEN\nconfigs:\n  conf:\n    content: |\n      port = ${PORT:-80}\n      cost = $$5\n  unset:\n    environment: NOT_SET\n";
    let env = Env::from([("TOKEN".to_owned(), "s3cr3t".to_owned())]);
    let loaded = load(text, &env).expect("loads");
    let p = &loaded.project;
    assert_eq!(
        p.secrets["token"].inline_value().map(SecretText::expose),
        Some("s3cr3t")
    );
    assert_eq!(
        p.configs["conf"].inline_value().map(SecretText::expose),
        Some("port = 80\ncost = $5\n"),
        "content is interpolated"
    );
    // An unset variable is a warning here (the CLI has no node env)…
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "configs.unset.environment" && w.message.contains("NOT_SET")),
        "{:?}",
        loaded.warnings
    );
    // …and an error naming it when a deploy needs the content.
    let missing = p.require_file_values().expect_err("unset");
    assert!(
        matches!(&missing, ComposeError::MissingVariable { variable, .. } if variable == "NOT_SET"),
        "{missing}"
    );
    assert!(
        !format!("{p:?}").contains("s3cr3t"),
        "Debug redacts the value"
    );
    // The owner of a file HostKit writes must be numeric.
    let e = err(
        "services:\n  web:\n    image: a\n    secrets: [{source: t, uid: www}]\nsecrets:\n  t: {content: x}\n",
    );
    assert!(e.to_string().contains("services.web.secrets[0].uid"), "{e}");
    // For a `file:` source it is ignored, as in Compose.
    ok(
        "services:\n  web:\n    image: a\n    secrets: [{source: t, uid: www}]\nsecrets:\n  t: {file: ./t}\n",
    );
}

#[test]
fn lifecycle_hooks_and_image_mounts_load() {
    let text = "services:\n  web:\n    image: app\n    volumes:\n      - {type: image, source: 'assets:v1', target: /assets, image: {subpath: www}}\n    pre_start:\n      - image: 'tools:1'\n        command: migrate\n      - command: [echo, again]\n    post_start:\n      - command: chown -R 1000 /data\n        user: root\n    pre_stop:\n      - command: [sh, -c, 'echo bye']\n";
    let p = ok(text).project;
    let web = &p.services["web"];
    assert_eq!(web.pre_start[0].image.as_deref(), Some("tools:1"));
    assert_eq!(web.post_start[0].user.as_deref(), Some("root"));
    assert_eq!(web.pre_stop[0].command, ["sh", "-c", "echo bye"]);
    assert_eq!(web.other_images(), ["tools:1", "assets:v1"]);
    assert_eq!(p.image_references(), ["app", "assets:v1", "tools:1"]);
}

#[test]
fn external_networks_and_volumes_parse() {
    let text = "services:\n  web:\n    image: a\n    networks: [proxy]\n    volumes: ['shared:/s']\nnetworks:\n  proxy:\n    external: true\nvolumes:\n  shared:\n    external: {name: other}\n";
    let p = ok(text).project;
    assert!(p.networks["proxy"].external);
    assert!(p.volumes["shared"].external);
}

// ------------------------------------------------------ interpolation

#[test]
fn interpolation_forms_through_load() {
    let text = r#"services:
  web:
    image: "${IMAGE}"
    environment:
      PLAIN: $SET
      BRACED: ${SET}
      DEFAULT_UNSET: ${NOPE:-d1}
      DEFAULT_EMPTY: ${EMPTY:-d2}
      DASH_EMPTY: "[${EMPTY-d3}]"
      DASH_UNSET: ${NOPE-d4}
      ALT: ${SET:+alt}
      ALT_EMPTY: "[${EMPTY:+alt}]"
      PLUS_EMPTY: ${EMPTY+plus}
      PLUS_UNSET: "[${NOPE+plus}]"
      REQUIRED: ${SET:?must be set}
      REQUIRED_EMPTY_OK: "[${EMPTY?set}]"
      NESTED: ${NOPE:-${ALSO_NOPE:-${SET}}}
      ESCAPED: $$SET and $${SET}
      UNSET: "[$NOPE]"
      $SET: key not interpolated
"#;
    let loaded = load(
        text,
        &env(&[("IMAGE", "nginx:1"), ("SET", "v"), ("EMPTY", "")]),
    )
    .expect("loads");
    let s = &loaded.project.services["web"];
    assert_eq!(s.image, "nginx:1");
    let e = &s.environment;
    let expect = [
        ("PLAIN", "v"),
        ("BRACED", "v"),
        ("DEFAULT_UNSET", "d1"),
        ("DEFAULT_EMPTY", "d2"),
        ("DASH_EMPTY", "[]"),
        ("DASH_UNSET", "d4"),
        ("ALT", "alt"),
        ("ALT_EMPTY", "[]"),
        ("PLUS_EMPTY", "plus"),
        ("PLUS_UNSET", "[]"),
        ("REQUIRED", "v"),
        ("REQUIRED_EMPTY_OK", "[]"),
        ("NESTED", "v"),
        ("ESCAPED", "$SET and ${SET}"),
        ("UNSET", "[]"),
        ("$SET", "key not interpolated"),
    ];
    for (k, v) in expect {
        assert_eq!(e.get(k).map(String::as_str), Some(v), "{k}");
    }
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert_eq!(loaded.warnings[0].path, "services.web.environment.UNSET");
    assert!(loaded.warnings[0].message.contains("NOPE"));
}

#[test]
fn missing_required_variable_names_variable_message_and_key() {
    let text = "services:\n  web:\n    image: a\n    environment:\n      DB_URL: ${DB_URL:?set DB_URL in the job env}\n";
    let e = err(text);
    assert_eq!(
        e,
        ComposeError::MissingVariable {
            variable: "DB_URL".into(),
            message: "set DB_URL in the job env".into(),
            path: KeyPath::from_keys(["services", "web", "environment", "DB_URL"]),
            line: Some(5),
        }
    );
    assert_eq!(e.code(), "compose.invalid");
    let e = err("services:\n  web:\n    image: ${TAG?}\n");
    assert!(
        e.to_string()
            .contains("required variable TAG is missing a value (needed by `services.web.image`"),
        "{e}"
    );
}

#[test]
fn invalid_interpolation_is_an_error_with_a_hint() {
    let e = err("services:\n  web:\n    image: a\n    command: echo $1\n");
    assert_eq!(e.code(), "compose.invalid");
    assert_eq!(e.line(), Some(4));
    assert!(e.hint().is_some_and(|h| h.contains("$$")));
}

#[test]
fn anchors_resolve_before_interpolation() {
    let text = "x-img: &img ${REG}/app\nservices:\n  a:\n    image: *img\n  b:\n    image: *img\n";
    let p = load(text, &env(&[("REG", "r.local")]))
        .expect("loads")
        .project;
    assert_eq!(p.services["a"].image, "r.local/app");
    assert_eq!(p.services["b"].image, "r.local/app");
}

#[test]
fn extensions_are_not_interpolated() {
    let text = "x-unused: ${MISSING:?never evaluated}\nservices:\n  web:\n    image: a\n    x-meta: ${ALSO:?no}\n";
    assert!(ok(text).warnings.is_empty());
}

// ------------------------------------------------- merges and extensions

#[test]
fn recursive_merge_keys_and_merge_lists() {
    let text = r#"
x-base: &base
  restart: always
  environment: {A: base}
x-web: &webbase
  <<: *base
  image: nginx
  labels: [tier=web]
x-logs: &logs
  logging: {driver: json-file}
  restart: "no"
services:
  web:
    <<: *webbase
    environment: {A: own}
  api:
    <<: [*logs, *webbase]
  deep:
    image: x
    healthcheck:
      <<: {interval: 5s, retries: 2}
      test: [CMD, true]
"#;
    let p = ok(text).project;
    let web = &p.services["web"];
    assert_eq!(web.image, "nginx");
    assert_eq!(web.restart, Restart::Always, "merged through two levels");
    assert_eq!(web.environment["A"], "own", "own keys win");
    assert_eq!(web.labels["tier"], "web");
    let api = &p.services["api"];
    assert_eq!(
        api.restart,
        Restart::No,
        "the first mapping of a merge list wins"
    );
    assert_eq!(api.image, "nginx");
    assert!(api.logging.is_some());
    let hc = p.services["deep"].healthcheck.clone().expect("healthcheck");
    assert_eq!(hc.interval, Some(Duration::from_secs(5)));
    assert_eq!(hc.retries, Some(2));
}

#[test]
fn extensions_are_accepted_everywhere() {
    let text = r#"
x-top: {anything: [1, 2]}
services:
  x-not-a-service: ignored
  web:
    image: a
    x-service-ext: 1
    healthcheck: {test: [CMD, true], x-hc: 1}
    deploy: {x-deploy: 1, replicas: 1}
    ports: [{target: 80, x-port: 1}]
networks:
  x-net: 1
  front: {x-net-ext: 1}
volumes:
  data: {x-vol-ext: 1}
"#;
    let p = ok(text).project;
    assert_eq!(p.services.len(), 1, "x- keys are not services");
    assert!(p.networks.contains_key("front") && !p.networks.contains_key("x-net"));
    assert!(p.volumes.contains_key("data"));
}

// ---------------------------------------------------------------- errors

#[test]
fn unsupported_key_names_path_and_line() {
    let text = "services:\n  web:\n    image: a\n    userns_mode:\n      host\n";
    let e = err(text);
    assert_eq!(
        e,
        ComposeError::UnsupportedKey {
            path: KeyPath::from_keys(["services", "web", "userns_mode"]),
            line: Some(4),
            hint: None,
        }
    );
    assert_eq!(e.code(), "compose.unsupported");
    assert!(
        e.to_string()
            .contains("unsupported key `services.web.userns_mode` (line 4)"),
        "{e}"
    );
}

#[test]
fn unsupported_nested_and_top_level_keys() {
    let text = "services:\n  web:\n    image: a\n    healthcheck:\n      test: [CMD, true]\n      frequency: 1s\n";
    let e = err(text);
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.healthcheck.frequency")
    );
    assert_eq!(e.line(), Some(6));
    let text = "services:\n  web:\n    image: a\nmodels:\n  m: {}\n";
    let e = err(text);
    assert_eq!(e.code(), "compose.unsupported");
    assert_eq!(e.line(), Some(4));
    let text = "services:\n  web:\n    image: a\n    volumes:\n      - type: bind\n        source: ./x\n        target: /x\n        bind:\n          recursive: enabled\n";
    let e = err(text);
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.volumes[0].bind.recursive")
    );
    assert_eq!(e.line(), Some(9));
}

#[test]
fn build_is_rejected_with_a_hint() {
    let text = "services:\n  web:\n    build: .\n    image: a\n";
    let e = err(text);
    assert_eq!(e.code(), "compose.unsupported");
    assert_eq!(e.line(), Some(3));
    assert_eq!(e.hint(), Some(keys::BUILD_HINT));
    assert!(e.to_string().contains("build the image in CI"), "{e}");
    assert!(e.to_string().contains("--images"), "{e}");
}

#[test]
fn merged_unsupported_key_points_at_the_anchor() {
    let text =
        "x-base: &base\n  image: a\n  privileged_mode: true\nservices:\n  web:\n    <<: *base\n";
    let e = err(text);
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.privileged_mode")
    );
    assert_eq!(e.line(), Some(3));
}

#[test]
fn undefined_references() {
    let cases = [
        (
            "    depends_on: [db]\n",
            "service",
            "db",
            "services.web.depends_on[0]",
        ),
        (
            "    depends_on: {db: {condition: service_healthy}}\n",
            "service",
            "db",
            "services.web.depends_on.db",
        ),
        (
            "    network_mode: service:vpn\n",
            "service",
            "vpn",
            "services.web.network_mode",
        ),
        (
            "    networks: [back]\n",
            "network",
            "back",
            "services.web.networks[0]",
        ),
        (
            "    volumes: ['data:/data']\n",
            "volume",
            "data",
            "services.web.volumes[0]",
        ),
        (
            "    secrets: [pw]\n",
            "secret",
            "pw",
            "services.web.secrets[0]",
        ),
        (
            "    configs: [{source: conf}]\n",
            "config",
            "conf",
            "services.web.configs[0]",
        ),
    ];
    for (extra, kind, name, path) in cases {
        let text = format!("services:\n  web:\n    image: a\n{extra}");
        match err(&text) {
            ComposeError::Undefined {
                kind: k,
                name: n,
                path: p,
                line,
            } => {
                assert_eq!((k, n.as_str(), p.to_string().as_str()), (kind, name, path));
                assert_eq!(line, Some(4), "{path}");
            }
            other => panic!("{extra}: unexpected {other}"),
        }
    }
}

#[test]
fn optional_missing_dependency_is_dropped_with_a_warning() {
    let text = "services:\n  web:\n    image: a\n    depends_on:\n      cache: {condition: service_started, required: false}\n";
    let loaded = ok(text);
    assert!(loaded.project.services["web"].depends_on.is_empty());
    assert!(loaded.warnings.iter().any(|w| w.message.contains("cache")));
}

#[test]
fn dependency_cycles_are_named() {
    let text = "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [c]\n  c:\n    image: x\n    depends_on: [a]\n";
    assert_eq!(
        err(text),
        ComposeError::Cycle {
            cycle: vec!["a".into(), "b".into(), "c".into(), "a".into()]
        }
    );
    let e = err("services:\n  a:\n    image: x\n    depends_on: [a]\n");
    assert_eq!(e.to_string(), "dependency cycle between services: a -> a");
}

#[test]
fn oversized_input_and_alias_bombs() {
    let big = format!(
        "services:\n  web:\n    image: a\n# {}\n",
        "x".repeat(MAX_INPUT_BYTES)
    );
    assert!(matches!(err(&big), ComposeError::TooLarge { .. }));
    let mut bomb = String::from("a: &a [x, x, x, x, x, x, x, x, x, x]\n");
    for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
        .iter()
        .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
    {
        let refs = vec![format!("*{prev}"); 10].join(", ");
        bomb.push_str(&format!("{name}: &{name} [{refs}]\n"));
    }
    bomb.push_str("services:\n  web:\n    image: a\n");
    let e = err(&bomb);
    assert!(matches!(e, ComposeError::TooManyNodes { .. }), "{e}");
    assert!(e.hint().is_some());
}

#[test]
fn structural_errors() {
    let cases: &[(&str, &str)] = &[
        ("", "empty"),
        ("# just a comment\n", "empty"),
        ("- a\n- b\n", "expected a mapping"),
        ("version: '3'\n", "defines no service"),
        ("services: {}\n", "defines no service"),
        (
            "services:\n  web:\n    ports: ['80']\n",
            "every service needs `image`",
        ),
        ("services:\n  web: nginx\n", "expected a mapping"),
        (
            "services:\n  'bad name':\n    image: a\n",
            "invalid service name",
        ),
        (
            "services:\n  web:\n    image: a\n    deploy: {replicas: 101}\n",
            "at most 100 replicas",
        ),
        (
            "services:\n  web:\n    image: a\n    ports: ['99999:80']\n",
            "invalid port",
        ),
        (
            "services:\n  web:\n    image: a\n    ports: ['80:0']\n",
            "invalid port",
        ),
        (
            "services:\n  web:\n    image: a\n    container_name: w\n    deploy: {replicas: 2}\n",
            "cannot have 2 replicas",
        ),
        (
            "services:\n  a:\n    image: x\n    container_name: same\n  b:\n    image: x\n    container_name: same\n",
            "also used by service",
        ),
        (
            "services:\n  web:\n    image: a\n    network_mode: none\n    networks: [default]\n",
            "cannot be combined",
        ),
        (
            "services:\n  web:\n    image: a\n    healthcheck: {interval: soon}\n",
            "invalid duration",
        ),
        (
            "services:\n  web:\n    image: a\n    mem_limit: lots\n",
            "invalid size",
        ),
        (
            "services:\n  web:\n    image: a\n    restart: sometimes\n",
            "unknown restart policy",
        ),
        (
            "services:\n  web:\n    image: a\n    read_only: maybe\n",
            "expected a boolean",
        ),
        (
            "services:\n  web:\n    image: a\n    depends_on: [b, b]\n  b:\n    image: x\n",
            "listed twice",
        ),
        (
            "services:\n  web:\n    image: a\n  web:\n    image: b\n",
            "duplicate key web",
        ),
        (
            "services:\n  web:\n    image: a\n    labels: !!binary aGVsbG8=\n",
            "expected",
        ),
    ];
    for (text, needle) in cases {
        let e = err(text);
        assert!(
            e.to_string().contains(needle),
            "{text:?}: `{e}` lacks `{needle}`"
        );
        assert_eq!(e.code(), "compose.invalid", "{text:?}");
    }
}

#[test]
fn invalid_value_errors_carry_lines() {
    let text =
        "services:\n  web:\n    image: a\n    ports:\n      - \"80\"\n      - \"70000:80\"\n";
    let e = err(text);
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.ports[1]")
    );
    assert_eq!(e.line(), Some(line_of(text, "70000")));
}

// ------------------------------------------------------------- helpers

#[test]
fn start_order_waves_through_load() {
    let text = "services:\n  web:\n    image: a\n    depends_on: {api: {condition: service_healthy}}\n  api:\n    image: b\n    depends_on: [db, cache]\n  db:\n    image: c\n  cache:\n    image: d\n  sidecar:\n    image: e\n    network_mode: service:web\n";
    let p = ok(text).project;
    assert_eq!(
        p.start_order().expect("acyclic"),
        vec![
            vec!["cache".to_owned(), "db".to_owned()],
            vec!["api".to_owned()],
            vec!["web".to_owned()],
            vec!["sidecar".to_owned()]
        ]
    );
    assert!(
        p.services["sidecar"].depends_on.contains_key("web"),
        "implicit dependency of service: modes"
    );
}

#[test]
fn published_ports_by_service() {
    let p = ok("services:\n  b:\n    image: a\n    ports: ['81', '82']\n  a:\n    image: a\n    ports: ['80']\n  c:\n    image: c\n").project;
    let ports: Vec<(&str, u16)> = p
        .published_ports()
        .into_iter()
        .map(|(s, p)| (s, p.target))
        .collect();
    assert_eq!(ports, vec![("a", 80), ("b", 81), ("b", 82)]);
}

#[test]
fn env_files_are_applied_relative_to_the_domain_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("web.env"), "A=from-file\nB=from-file\n").expect("write");
    std::fs::write(dir.path().join("more.env"), "B=later-file\n").expect("write");
    let text = "services:\n  web:\n    image: a\n    environment: {A: explicit}\n    env_file: [web.env, ./more.env, {path: missing.env, required: false}]\n";
    let mut p = ok(text).project;
    p.apply_env_files(&DomainDir::new(dir.path()))
        .expect("applies");
    let e = &p.services["web"].environment;
    assert_eq!(e["A"], "explicit");
    assert_eq!(e["B"], "later-file");

    let mut p = ok("services:\n  web:\n    image: a\n    env_file: missing.env\n").project;
    assert!(p.apply_env_files(&DomainDir::new(dir.path())).is_err());
    let mut p = ok("services:\n  web:\n    image: a\n    env_file: ../outside.env\n").project;
    assert!(
        p.apply_env_files(&DomainDir::new(dir.path()))
            .expect_err("outside")
            .to_string()
            .contains("outside the domain")
    );
}

#[test]
fn merge_env_prefers_the_job() {
    let domain = parse_env_file("domain.env", "A=domain\nB=domain\n").expect("parses");
    let merged = merge_env(&domain, &env(&[("B", "job")]));
    assert_eq!(merged["A"], "domain");
    assert_eq!(merged["B"], "job");
}

#[test]
fn warnings_for_container_name() {
    let loaded = ok("services:\n  web:\n    image: a\n    container_name: shop-web\n");
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "services.web.container_name" && w.message.contains("alias"))
    );
}

// ------------------------------------------------------------- fixture

#[test]
fn realistic_fixture_loads() {
    let text = include_str!("../../tests/fixtures/web-api-db.yml");
    assert!(
        matches!(load(text, &Env::new()), Err(ComposeError::MissingVariable { ref variable, .. }) if variable == "TAG")
    );
    let loaded = load(text, &env(&[("TAG", "1.4.2"), ("API_KEY", "k")])).expect("loads");
    let p = &loaded.project;
    assert_eq!(p.services.keys().collect::<Vec<_>>(), ["api", "db", "web"]);

    let web = &p.services["web"];
    assert_eq!(web.image, "registry.local/shop-web:1.4.2");
    assert_eq!(web.restart, Restart::UnlessStopped);
    assert_eq!(
        web.logging.as_ref().map(|l| l.options["max-file"].as_str()),
        Some("3")
    );
    assert_eq!(web.depends_on["api"].condition, Condition::ServiceHealthy);
    let hc = web.healthcheck.clone().expect("healthcheck");
    assert_eq!(hc.interval, Some(Duration::from_secs(10)));
    assert_eq!(hc.start_period, Some(Duration::from_secs(30)));
    assert_eq!(hc.retries, Some(5));
    assert!(matches!(hc.test, Some(HealthTest::Cmd(ref args)) if args[0] == "wget"));

    let api = &p.services["api"];
    assert_eq!(
        api.command,
        Some(vec![
            "npm".into(),
            "run".into(),
            "start".into(),
            "--".into(),
            "--port".into(),
            "3000".into()
        ])
    );
    assert_eq!(
        api.environment["DATABASE_URL"],
        "postgres://shop:${PASSWORD}@db:5432/shop"
    );
    assert_eq!(api.environment["API_KEY"], "k");
    assert!(matches!(
        api.healthcheck.as_ref().and_then(|h| h.test.clone()),
        Some(HealthTest::CmdShell(_))
    ));
    assert!(api.depends_on["db"].restart);
    assert_eq!(api.deploy.resources.limits.memory, Some(256 << 20));
    assert_eq!(api.deploy.resources.limits.nano_cpus, Some(500_000_000));
    assert_eq!(api.expose, ["3000"]);

    let db = &p.services["db"];
    assert_eq!(db.environment["POSTGRES_USER"], "shop");
    assert_eq!(db.deploy.resources.limits.memory, Some(512 << 20));
    assert_eq!(db.networks["backnet"].aliases, ["database"]);
    assert!(
        matches!(&db.volumes[0].source, MountSource::Volume { name: Some(n), .. } if n == "db-data")
    );
    assert!(p.networks["backnet"].internal);
    assert!(!p.networks.contains_key("default"));

    assert_eq!(
        p.start_order().expect("acyclic"),
        vec![
            vec!["db".to_owned()],
            vec!["api".to_owned()],
            vec!["web".to_owned()]
        ]
    );
    assert_eq!(
        p.main_service(None).expect("main"),
        Some(MainService {
            service: "web".into(),
            port: 80
        })
    );
    assert!(
        crate::policy::Policy::default()
            .check(p, Path::new("/srv/hostkit/shop.example"))
            .is_ok()
    );
    assert!(loaded.warnings.iter().any(|w| w.path == "version"));
}

#[test]
fn markdown_table_is_rendered_for_the_readme() {
    let md = supported_keys_markdown();
    for spec in KEYS {
        assert!(md.contains(&format!("`{}{}`", spec.scope.prefix(), spec.key)));
    }
}

#[test]
fn an_empty_networks_list_means_no_network() {
    // Never Docker's shared default `bridge` (DESIGN §6).
    let p = ok("services:\n  a:\n    image: x\n    networks: []\n  b:\n    image: x\n").project;
    assert_eq!(p.services["a"].network_mode.as_deref(), Some("none"));
    assert!(p.services["a"].networks.is_empty());
    assert_eq!(p.services["b"].network_mode, None);
    assert!(p.services["b"].networks.contains_key("default"));
}

#[test]
fn a_merged_value_points_where_it_was_merged_and_names_the_anchor() {
    // The anchor lives in another service: the error points at the service
    // that merged it and names the anchor's line, never only the other
    // service's key.
    let text = "services:\n  web: &base\n    image: a\n    healthcheck:\n      timeout: soon\n  api:\n    <<: *base\n    image: b\n";
    let path = KeyPath::from_keys(["services", "api", "healthcheck", "timeout"]);
    let found = locate::locate(text, &path);
    assert_eq!(found.line, Some(line_of(text, "  api:")));
    assert_eq!(found.origin, Some(line_of(text, "timeout: soon")));
    let e = ComposeError::invalid(&path, "invalid duration").located(|p| locate::locate(text, p));
    assert_eq!(e.line(), Some(line_of(text, "  api:")));
    assert!(e.to_string().contains("comes from line 5"), "{e}");
    // An anchor in an `x-*` block is pointed at directly.
    let text =
        "x-hc: &hc\n  timeout: soon\nservices:\n  api:\n    image: b\n    healthcheck: *hc\n";
    let found = locate::locate(text, &path);
    assert_eq!((found.line, found.origin), (Some(2), None));
}

#[test]
fn an_error_about_an_emptied_value_names_the_unset_variable() {
    let e =
        err("services:\n  web:\n    image: a\n    healthcheck:\n      interval: ${CHECK_EVERY}\n");
    let message = e.to_string();
    assert!(
        message.contains("the variable CHECK_EVERY is not set"),
        "{message}"
    );
    let e = err("services:\n  web:\n    image: a\n    volumes: [\"${DATA_VOLUME}:/data\"]\n");
    assert!(e.to_string().contains("DATA_VOLUME is not set"), "{e}");
    let e = err("services:\n  web:\n    image: a\nnetworks:\n  default:\n    name: ${NET_NAME}\n");
    assert!(e.to_string().contains("NET_NAME is not set"), "{e}");
    // A set variable is not blamed.
    let set = load(
        "services:\n  web:\n    image: a\n    healthcheck:\n      interval: ${CHECK_EVERY}\n",
        &env(&[("CHECK_EVERY", "soon")]),
    )
    .expect_err("invalid duration");
    assert!(!set.to_string().contains("not set"), "{set}");
}

#[test]
fn custom_network_and_volume_names() {
    let p = ok("services:\n  web:\n    image: a\n    volumes: [data:/data]\nnetworks:\n  default:\n    name: example-com-network\nvolumes:\n  data:\n    name: my.data_1\n").project;
    assert_eq!(
        p.networks["default"].name.as_deref(),
        Some("example-com-network")
    );
    assert_eq!(p.volumes["data"].name.as_deref(), Some("my.data_1"));
    let e = err("services:\n  web:\n    image: a\nvolumes:\n  data:\n    name: \"-bad name\"\n");
    assert!(e.to_string().contains("volumes.data.name"), "{e}");
}

// ------------------------------------- kernel settings and ignored keys

#[test]
fn shm_size_ulimits_security_opt_and_sysctls_forms() {
    let s = web(
        "    shm_size: 64m\n    ulimits:\n      nofile: {soft: 1024, hard: 4096}\n      nproc: 512\n      memlock: '-1'\n    security_opt: ['no-new-privileges:true', 'label=disable']\n    sysctls:\n      net.core.somaxconn: 1024\n      net.ipv4.tcp_syncookies: '0'\n",
    );
    assert_eq!(s.shm_size, Some(64 << 20));
    assert_eq!(
        s.ulimits["nofile"],
        Ulimit {
            soft: 1024,
            hard: 4096
        }
    );
    assert_eq!(
        s.ulimits["nproc"],
        Ulimit {
            soft: 512,
            hard: 512
        }
    );
    assert_eq!(s.ulimits["memlock"], Ulimit { soft: -1, hard: -1 });
    // The loader keeps what is written; the policy judges it.
    assert_eq!(s.security_opt, ["no-new-privileges:true", "label=disable"]);
    assert_eq!(s.sysctls["net.core.somaxconn"], "1024");
    assert_eq!(s.sysctls["net.ipv4.tcp_syncookies"], "0");
    // Bytes as a number, sysctls as a list.
    let s = web("    shm_size: 1048576\n    sysctls: [net.core.somaxconn=512]\n");
    assert_eq!(s.shm_size, Some(1 << 20));
    assert_eq!(s.sysctls["net.core.somaxconn"], "512");
}

#[test]
fn kernel_settings_round_trip_and_stay_out_of_json_when_unset() {
    let s = web(
        "    shm_size: 1g\n    ulimits: {nofile: 10}\n    security_opt: [no-new-privileges]\n    sysctls: [net.core.somaxconn=1]\n",
    );
    let json = serde_json::to_string(&s).expect("serializes");
    let back: Service = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, s);
    let plain = serde_json::to_string(&web("")).expect("serializes");
    for key in ["shm_size", "ulimits", "security_opt", "sysctls", "profiles"] {
        assert!(!plain.contains(key), "{key} in {plain}");
    }
    // A version recorded before these keys existed still decodes.
    let old: Service = serde_json::from_str(&plain).expect("old JSON decodes");
    assert_eq!(old, web(""));
}

#[test]
fn kernel_setting_errors_name_the_key_and_line() {
    let cases = [
        (
            "    ulimits:\n      nofile: {soft: 8192, hard: 1024}\n",
            "services.web.ulimits.nofile",
            5,
            "above the hard limit",
        ),
        (
            "    ulimits:\n      open_files: 1024\n",
            "services.web.ulimits.open_files",
            5,
            "unknown ulimit",
        ),
        (
            "    ulimits:\n      nofile: {soft: 1024}\n",
            "services.web.ulimits.nofile",
            5,
            "both `soft` and `hard`",
        ),
        (
            "    ulimits:\n      nofile: lots\n",
            "services.web.ulimits.nofile",
            5,
            "expected an integer",
        ),
        (
            "    shm_size:\n      64x\n",
            "services.web.shm_size",
            4,
            "unknown unit",
        ),
        (
            "    sysctls:\n      - net.core.somaxconn\n",
            "services.web.sysctls[0]",
            5,
            "needs a value",
        ),
        (
            "    sysctls:\n      - net..x=1\n",
            "services.web.sysctls[0]",
            5,
            "not a sysctl name",
        ),
        (
            "    security_opt:\n      - ''\n",
            "services.web.security_opt[0]",
            5,
            "must not be empty",
        ),
        (
            "    pull_policy:\n      sometimes\n",
            "services.web.pull_policy",
            4,
            "unknown pull_policy",
        ),
        (
            "    develop:\n      - watch\n",
            "services.web.develop",
            4,
            "expected a mapping",
        ),
        (
            "    profiles:\n      - 'with space'\n",
            "services.web.profiles[0]",
            5,
            "invalid profile name",
        ),
    ];
    // Errors are located at the key that holds the bad value.
    for (extra, path, line, message) in cases {
        let text = format!("services:\n  web:\n    image: a\n{extra}");
        let e = err(&text);
        assert_eq!(
            e.path().map(ToString::to_string).as_deref(),
            Some(path),
            "{extra}: {e}"
        );
        assert_eq!(e.line(), Some(line), "{extra}: {e}");
        assert!(e.to_string().contains(message), "{extra}: {e}");
        assert_eq!(e.code(), "compose.invalid", "{extra}");
    }
    // An unknown key of the long ulimit form.
    let text = "services:\n  web:\n    image: a\n    ulimits:\n      nofile:\n        soft: 1\n        max: 2\n";
    let e = err(text);
    assert_eq!(e.code(), "compose.unsupported");
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.ulimits.nofile.max")
    );
    assert_eq!(e.line(), Some(7));
}

#[test]
fn develop_platform_and_pull_policy_are_ignored_with_warnings() {
    let text = "services:\n  web:\n    image: a\n    develop:\n      watch:\n        - {action: rebuild, path: .}\n    platform: linux/arm64\n    pull_policy: if_not_present\n  db:\n    image: b\n    pull_policy: every_12h\n";
    let loaded = ok(text);
    let plain = ok("services:\n  web:\n    image: a\n  db:\n    image: b\n");
    assert_eq!(loaded.project, plain.project);
    let warned: Vec<&str> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
    assert_eq!(
        warned,
        [
            "services.web.develop",
            "services.web.platform",
            "services.web.pull_policy",
            "services.db.pull_policy"
        ]
    );
    assert!(
        loaded.warnings[3]
            .message
            .contains("pulls only when the job allows"),
        "{:?}",
        loaded.warnings[3]
    );
    for policy in ["always", "missing", "never", "build", "daily", "weekly"] {
        ok(&format!(
            "services:\n  web:\n    image: a\n    pull_policy: {policy}\n"
        ));
    }
}

// ------------------------------------------------------------- profiles

const PROFILED: &str = "services:\n  web:\n    image: a\n  debug:\n    image: b\n    profiles: [debug, ops]\n  admin:\n    image: c\n    profiles: [admin]\n    networks: [back]\nnetworks:\n  back: {}\n";

fn with_profiles(text: &str, profiles: &str) -> Result<Loaded, ComposeError> {
    load(text, &env(&[("COMPOSE_PROFILES", profiles)]))
}

fn service_names(loaded: &Loaded) -> Vec<&str> {
    loaded.project.services.keys().map(String::as_str).collect()
}

#[test]
fn services_of_inactive_profiles_are_left_out() {
    let loaded = ok(PROFILED);
    assert_eq!(service_names(&loaded), ["web"]);
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.path == "services.debug.profiles"
                && w.message.contains("`debug`, `ops`")
                && w.message.contains("not deployed")),
        "{:?}",
        loaded.warnings
    );
    for (active, expected) in [
        ("ops", vec!["debug", "web"]),
        ("debug,admin", vec!["admin", "debug", "web"]),
        (" admin , ", vec!["admin", "web"]),
        ("*", vec!["admin", "debug", "web"]),
        ("", vec!["web"]),
        ("nope", vec!["web"]),
    ] {
        let loaded = with_profiles(PROFILED, active).expect("loads");
        assert_eq!(service_names(&loaded), expected, "{active:?}");
        assert_eq!(
            loaded
                .project
                .services
                .get("debug")
                .map(|s| s.profiles.clone()),
            expected
                .contains(&"debug")
                .then(|| vec!["debug".to_owned(), "ops".to_owned()]),
        );
    }
}

#[test]
fn an_inactive_service_does_not_bring_its_network() {
    let text = "services:\n  web:\n    image: a\n    networks: [front]\n  tools:\n    image: b\n    profiles: [tools]\nnetworks:\n  front: {}\n";
    let loaded = ok(text);
    assert!(
        !loaded.project.networks.contains_key("default"),
        "only the disabled service used the default network"
    );
    let loaded = with_profiles(text, "tools").expect("loads");
    assert!(loaded.project.networks.contains_key("default"));
}

#[test]
fn depending_on_an_inactive_service_names_both() {
    let text = "services:\n  web:\n    image: a\n    depends_on:\n      - db\n  db:\n    image: b\n    profiles: [db]\n";
    let e = err(text);
    assert_eq!(e.code(), "compose.invalid");
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.depends_on[0]")
    );
    assert_eq!(e.line(), Some(5));
    let message = e.to_string();
    assert!(
        message.contains("service `web` depends on service `db`, which is not enabled"),
        "{message}"
    );
    assert!(message.contains("profile(s) `db`"), "{message}");
    assert!(message.contains("--profile"), "{message}");
    assert_eq!(
        service_names(&with_profiles(text, "db").expect("loads")),
        ["db", "web"]
    );
    // Through a namespace mode as well.
    let text = "services:\n  web:\n    image: a\n    network_mode: service:vpn\n  vpn:\n    image: b\n    profiles: [vpn]\n";
    let e = err(text);
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services.web.network_mode")
    );
    assert!(e.to_string().contains("`vpn`"), "{e}");
}

#[test]
fn inactive_services_may_depend_on_anything_active_and_inactive() {
    let text = "services:\n  web:\n    image: a\n  debug:\n    image: b\n    profiles: [debug]\n    depends_on: [web, tracer]\n  tracer:\n    image: c\n    profiles: [trace]\n";
    assert_eq!(service_names(&ok(text)), ["web"]);
    let e = with_profiles(text, "debug").expect_err("tracer is off");
    assert!(
        e.to_string()
            .contains("service `debug` depends on service `tracer`"),
        "{e}"
    );
    assert_eq!(
        service_names(&with_profiles(text, "debug,trace").expect("loads")),
        ["debug", "tracer", "web"]
    );
}

#[test]
fn an_optional_dependency_on_an_inactive_service_is_dropped() {
    let text = "services:\n  web:\n    image: a\n    depends_on:\n      cache: {condition: service_started, required: false}\n  cache:\n    image: b\n    profiles: [cache]\n";
    let loaded = ok(text);
    assert!(loaded.project.services["web"].depends_on.is_empty());
    assert!(
        loaded.warnings.iter().any(
            |w| w.path == "services.web.depends_on.cache" && w.message.contains("not deployed")
        ),
        "{:?}",
        loaded.warnings
    );
}

#[test]
fn a_project_with_no_enabled_service_is_an_error() {
    let text = "services:\n  a:\n    image: a\n    profiles: [x]\n";
    let e = err(text);
    assert_eq!(
        e.path().map(ToString::to_string).as_deref(),
        Some("services")
    );
    assert!(e.to_string().contains("no service is enabled"), "{e}");
    assert!(with_profiles(text, "x").is_ok());
}

#[test]
fn profiles_do_not_change_the_config_hash() {
    let plain = web("");
    let mut profiled = with_profiles(
        "services:\n  web:\n    image: nginx\n    profiles: [web]\n",
        "web",
    )
    .expect("loads")
    .project
    .services["web"]
        .clone();
    assert_eq!(profiled.profiles, ["web"]);
    assert_eq!(
        plain.config_hash("sha256:1"),
        profiled.config_hash("sha256:1")
    );
    profiled.shm_size = Some(1);
    assert_ne!(
        plain.config_hash("sha256:1"),
        profiled.config_hash("sha256:1")
    );
}

#[test]
fn links_scale_mac_address_and_raw_env_files() {
    let p = ok("services:\n  web:\n    image: a\n    links: [db, 'cache:redis']\n    scale: 3\n    mac_address: 02:42:ac:11:00:02\n  db:\n    image: b\n  cache:\n    image: c\n").project;
    let web = &p.services["web"];
    assert_eq!(web.deploy.replicas, 3);
    assert_eq!(web.mac_address.as_deref(), Some("02:42:ac:11:00:02"));
    assert!(web.depends_on.contains_key("db") && web.depends_on.contains_key("cache"));
    assert_eq!(p.services["cache"].networks["default"].aliases, ["redis"]);
    assert!(p.services["db"].networks["default"].aliases.is_empty());
    let e = err("services:\n  web:\n    image: a\n    links: [nope]\n");
    assert!(e.to_string().contains("nope"), "{e}");

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("raw.env"),
        "A=\"quoted\" # kept\n# comment\nB=$HOME\n",
    )
    .expect("write");
    let mut p = ok("services:\n  web:\n    image: a\n    env_file:\n      - path: ./raw.env\n        format: raw\n").project;
    p.apply_env_files(&DomainDir::new(dir.path()))
        .expect("applies");
    let environment = &p.services["web"].environment;
    assert_eq!(environment["A"], "\"quoted\" # kept");
    assert_eq!(environment["B"], "$HOME");
    let e = err(
        "services:\n  web:\n    image: a\n    env_file:\n      - path: ./x.env\n        format: yaml\n",
    );
    assert!(e.to_string().contains("unknown format"), "{e}");
}
