//! Many supported compose keys at once, each checked from outside the
//! engine's code: through nginx (the fixture's `/cgi-bin/env` and
//! `/cgi-bin/hostname`), with bollard's inspect, or by running a command in
//! the container.

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, RestartPolicyNameEnum};

use super::site::Site;

const TOKEN: &str = "s3cr3t-token-value";

const STACK: &str = r#"
networks:
  front: {}
  back: {}
secrets:
  api_token:
    file: ./secrets/api_token.txt
configs:
  app_conf:
    file: ./app.conf
services:
  web:
    image: hostkit-test/web:v1
    command: ["sh", "-c", "echo overridden > /tmp/marker && exec serve 8080 /www"]
    environment:
      GREETING: hello
      SHARED: from-environment
    env_file: ./web.env
    labels:
      hostkit.expose: "true"
      hostkit.port: "8080"
      com.example.team: edge
    ports:
      - "8080"
      - "9090"
    tmpfs:
      - /tmp
    volumes:
      - type: tmpfs
        target: /scratch
        tmpfs:
          size: 1m
    read_only: true
    mem_limit: 64m
    cpus: 0.5
    restart: on-failure:3
    cap_drop: [NET_RAW]
    extra_hosts:
      - "db.example:10.9.8.7"
    hostname: edge-web
    user: "1000:1000"
    working_dir: /www
    stop_signal: SIGINT
    init: true
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1:8080/index.html"]
      interval: 500ms
      timeout: 2s
      retries: 4
      start_period: 1s
    networks:
      front: {}
      back:
        aliases: [www-internal]
    secrets:
      - api_token
  probe:
    image: hostkit-test/api:v1
    entrypoint: ["/bin/sh", "-c"]
    command: ["exec serve 8081 /www"]
    networks: [back]
    ports:
      - target: 8081
        published: "18081"
        host_ip: 127.0.0.1
    expose: ["9999"]
    volumes:
      - ./static:/srv/static:ro
    configs:
      - source: app_conf
        target: /etc/app.conf
    secrets:
      - source: api_token
        target: token
    stop_grace_period: 3s
    pids_limit: 64
    logging:
      driver: json-file
      options:
        max-size: 1m
  cache:
    image: hostkit-test/api:v1
    container_name: cache1
    networks: [back]
"#;

async fn inspect(site: &Site, container: &str) -> ContainerInspectResponse {
    site.docker
        .client()
        .inspect_container(container, None)
        .await
        .unwrap_or_else(|e| panic!("inspect {container}: {e}"))
}

/// Run `cmd` in `container`, which must succeed; answers its output.
async fn run(site: &Site, container: &str, cmd: &[&str]) -> String {
    let (code, out) = site.exec(container, cmd).await;
    assert_eq!(code, 0, "{cmd:?} in {container} exited {code}: {out}");
    out
}

/// The address of `container` on network `network`.
fn address_on(inspect: &ContainerInspectResponse, network: &str) -> String {
    inspect
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .and_then(|n| n.get(network))
        .and_then(|e| e.ip_address.clone())
        .filter(|ip| !ip.is_empty())
        .unwrap_or_else(|| panic!("no address on {network}"))
}

#[tokio::test]
async fn a_stack_using_many_supported_keys_deploys_and_each_key_takes_effect() {
    let site = Site::new().await;
    let dir = site.dir.path();
    std::fs::write(
        dir.join("web.env"),
        "# env_file, relative to the domain directory\nFROM_ENV_FILE=from-file\nSHARED=from-file\n",
    )
    .unwrap();
    std::fs::create_dir(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/api_token.txt"), TOKEN).unwrap();
    std::fs::write(dir.join("app.conf"), "mode = test\n").unwrap();
    std::fs::create_dir(dir.join("static")).unwrap();
    std::fs::write(dir.join("static/hello.txt"), "hello from the domain\n").unwrap();

    let applied = site.deploy(STACK).await.expect("deploy");
    let project = site.domain.token();
    let web_name = format!("{project}-web-1");
    let probe_name = format!("{project}-probe-1");
    let cache_name = format!("{project}-cache1");
    let mut names: Vec<String> = site.containers().await.into_keys().collect();
    names.sort();
    assert_eq!(
        names,
        [cache_name.clone(), probe_name.clone(), web_name.clone()],
        "container_name gives `<project>-<name>`"
    );
    assert_eq!(applied.services["cache"].replicas[0].name, cache_name);

    // Through nginx: the main service, its environment and its host name.
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
    let (status, env) = site.get("/cgi-bin/env").await.expect("env through nginx");
    assert_eq!(status, 200, "{env}");
    let env: Vec<&str> = env.lines().collect();
    for line in [
        "GREETING=hello",
        "FROM_ENV_FILE=from-file",
        "SHARED=from-environment",
    ] {
        assert!(env.contains(&line), "{line} missing from {env:?}");
    }
    assert!(
        !env.contains(&"SHARED=from-file"),
        "env_file beat environment"
    );
    assert_eq!(
        site.get("/cgi-bin/hostname").await.expect("hostname"),
        (200, "edge-web\n".to_string())
    );

    let web = inspect(&site, &web_name).await;
    let config = web.config.clone().expect("config");
    let host = web.host_config.clone().expect("host config");
    let labels = config.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("com.example.team").map(String::as_str),
        Some("edge")
    );
    assert_eq!(
        labels.get("com.docker.compose.service").map(String::as_str),
        Some("web")
    );
    assert_eq!(
        config.cmd.as_deref(),
        Some(
            &[
                "sh".to_string(),
                "-c".into(),
                "echo overridden > /tmp/marker && exec serve 8080 /www".into()
            ][..]
        )
    );
    assert_eq!(config.hostname.as_deref(), Some("edge-web"));
    assert_eq!(config.user.as_deref(), Some("1000:1000"));
    assert_eq!(config.working_dir.as_deref(), Some("/www"));
    assert_eq!(config.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(host.init, Some(true));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert!(
        host.tmpfs.as_ref().is_some_and(|t| t.contains_key("/tmp")),
        "{:?}",
        host.tmpfs
    );
    assert_eq!(host.memory, Some(64 * 1024 * 1024));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    let restart = host.restart_policy.clone().expect("restart policy");
    assert_eq!(restart.name, Some(RestartPolicyNameEnum::ON_FAILURE));
    assert_eq!(restart.maximum_retry_count, Some(3));
    assert_eq!(host.cap_drop.as_deref(), Some(&["NET_RAW".to_string()][..]));
    assert_eq!(
        host.extra_hosts.as_deref(),
        Some(&["db.example:10.9.8.7".to_string()][..])
    );
    let health = config.healthcheck.clone().expect("healthcheck");
    assert_eq!(
        health.test,
        Some(
            [
                "CMD",
                "wget",
                "-q",
                "-O-",
                "http://127.0.0.1:8080/index.html"
            ]
            .map(String::from)
            .to_vec()
        )
    );
    assert_eq!(health.interval, Some(500_000_000));
    assert_eq!(health.timeout, Some(2_000_000_000));
    assert_eq!(health.retries, Some(4));
    assert_eq!(health.start_period, Some(1_000_000_000));
    assert_eq!(
        web.state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .as_deref(),
        Some("healthy")
    );

    // Inside web: the command ran, the mounts, the user, init, capabilities,
    // extra hosts, the working directory and the secret.
    assert_eq!(
        run(&site, &web_name, &["cat", "/tmp/marker"]).await,
        "overridden\n"
    );
    let mounts = run(&site, &web_name, &["cat", "/proc/mounts"]).await;
    let mount = |target: &str| {
        mounts
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|f| f.len() > 3 && f[1] == target)
            .unwrap_or_else(|| panic!("{target} is not mounted: {mounts}"))
    };
    assert!(
        mount("/")[3].split(',').any(|o| o == "ro"),
        "the root file system is writable: {:?}",
        mount("/")
    );
    assert_eq!(mount("/tmp")[2], "tmpfs");
    assert_eq!(mount("/scratch")[2], "tmpfs");
    assert!(
        mount("/scratch")[3].split(',').any(|o| o == "size=1024k"),
        "{:?}",
        mount("/scratch")
    );
    let status = run(&site, &web_name, &["cat", "/proc/1/status"]).await;
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|u| u.split_whitespace().next())
        .expect("Uid line");
    assert_eq!(uid, "1000", "PID 1 does not run as the configured user");
    let cmdline = run(&site, &web_name, &["cat", "/proc/1/cmdline"]).await;
    assert!(
        cmdline.contains("docker-init"),
        "PID 1 is not the init: {cmdline:?}"
    );
    let caps = run(&site, &web_name, &["cat", "/proc/self/status"]).await;
    let bounding = caps
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .map(|c| u64::from_str_radix(c.trim(), 16).expect("hex capability set"))
        .expect("CapBnd line");
    const NET_RAW: u64 = 1 << 13;
    const NET_BIND_SERVICE: u64 = 1 << 10;
    assert_eq!(
        bounding & NET_RAW,
        0,
        "NET_RAW was not dropped: {bounding:x}"
    );
    assert_ne!(bounding & NET_BIND_SERVICE, 0, "other defaults stay");
    let hosts = run(&site, &web_name, &["cat", "/etc/hosts"]).await;
    assert!(
        hosts.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.first() == Some(&"10.9.8.7") && f.contains(&"db.example")
        }),
        "{hosts}"
    );
    assert_eq!(run(&site, &web_name, &["pwd"]).await, "/www\n");
    assert_eq!(
        run(&site, &web_name, &["cat", "/run/secrets/api_token"]).await,
        TOKEN
    );

    // probe: entrypoint + command, a read-only bind mount relative to the
    // domain directory, a config, a secret under its own name, the stop
    // grace period, the pids limit, the log options and `expose`.
    let probe = inspect(&site, &probe_name).await;
    let probe_config = probe.config.clone().expect("config");
    let probe_host = probe.host_config.clone().expect("host config");
    assert_eq!(
        probe_config.entrypoint,
        Some(vec!["/bin/sh".to_string(), "-c".into()])
    );
    assert_eq!(
        probe_config.cmd,
        Some(vec!["exec serve 8081 /www".to_string()])
    );
    assert_eq!(probe_config.stop_timeout, Some(3));
    assert_eq!(probe_host.pids_limit, Some(64));
    let log = probe_host.log_config.clone().expect("log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    assert_eq!(
        log.config
            .unwrap_or_default()
            .get("max-size")
            .map(String::as_str),
        Some("1m")
    );
    assert!(
        probe_config
            .exposed_ports
            .iter()
            .flatten()
            .any(|p| p.as_str() == "9999/tcp"),
        "{:?}",
        probe_config.exposed_ports
    );
    assert_eq!(
        run(&site, &probe_name, &["cat", "/srv/static/hello.txt"]).await,
        "hello from the domain\n"
    );
    let (code, out) = site
        .exec(&probe_name, &["touch", "/srv/static/written"])
        .await;
    assert_ne!(code, 0, "the :ro bind mount is writable: {out}");
    assert!(!dir.join("static/written").exists());
    assert_eq!(
        run(&site, &probe_name, &["cat", "/etc/app.conf"]).await,
        "mode = test\n"
    );
    assert_eq!(
        run(&site, &probe_name, &["cat", "/run/secrets/token"]).await,
        TOKEN
    );

    // Networks: web is on both, with its alias on `back`; probe (on `back`
    // only) reaches it by that alias; `cache1` resolves as an alias too.
    let front = format!("{project}_front");
    let back = format!("{project}_back");
    let endpoints = web
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default();
    let mut joined: Vec<&String> = endpoints.keys().collect();
    joined.sort();
    assert_eq!(joined, [&back, &front]);
    let web_back = address_on(&web, &back);
    assert_eq!(
        site.resolve(&probe_name, "www-internal").await.as_deref(),
        Some(web_back.as_str())
    );
    assert_eq!(
        site.wget(&probe_name, "www-internal", 8080).await,
        Ok("web v1\n".to_string())
    );
    let cache = inspect(&site, &cache_name).await;
    assert_eq!(
        site.resolve(&web_name, "cache1").await.as_deref(),
        Some(address_on(&cache, &back).as_str())
    );
    assert_eq!(
        site.wget(&web_name, "cache1", 8081).await,
        Ok("api v1\n".to_string())
    );

    // Every published port is bound to 127.0.0.1 in the domain's block.
    let mut published: HashMap<String, usize> = HashMap::new();
    for name in [&web_name, &probe_name, &cache_name] {
        let c = inspect(&site, name).await;
        let bindings = c
            .host_config
            .and_then(|h| h.port_bindings)
            .unwrap_or_default();
        for (port, bound) in &bindings {
            for binding in bound.as_deref().unwrap_or_default() {
                assert_eq!(
                    binding.host_ip.as_deref(),
                    Some("127.0.0.1"),
                    "{name} {port}"
                );
                let host_port: u16 = binding
                    .host_port
                    .as_deref()
                    .and_then(|p| p.parse().ok())
                    .unwrap_or_else(|| panic!("{name} {port}: no host port"));
                assert!(site.ports.contains(host_port), "{name} {port}: {host_port}");
                *published.entry(name.clone()).or_default() += 1;
            }
        }
        let live = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
        for (port, bound) in &live {
            for binding in bound.as_deref().unwrap_or_default() {
                assert_eq!(
                    binding.host_ip.as_deref(),
                    Some("127.0.0.1"),
                    "{name} {port} is bound beyond loopback"
                );
            }
        }
    }
    assert_eq!(published.get(&web_name), Some(&2));
    assert_eq!(published.get(&probe_name), Some(&1));
    assert_eq!(published.get(&cache_name), None);
}
