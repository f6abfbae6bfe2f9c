//! Policy tests: every rule denies its case, a clean stack passes, rules can
//! be switched off, the TOML form deserializes.

use super::*;
use crate::compose::{Env, load};
use std::path::PathBuf;

fn project(text: &str) -> Project {
    match load(text, &Env::new()) {
        Ok(loaded) => loaded.project,
        Err(e) => panic!("load failed: {e}\n{text}"),
    }
}

fn domain() -> PathBuf {
    PathBuf::from("/srv/hostkit-test-nonexistent/example.com")
}

/// Violations of a stack with one service `web` plus `extra` service lines
/// and `top` top-level lines.
fn violations_with(policy: &Policy, extra: &str, top: &str) -> Vec<Violation> {
    let text = format!("services:\n  web:\n    image: nginx\n{extra}{top}");
    policy.violations(&project(&text), &domain())
}

fn rules(extra: &str, top: &str) -> Vec<(Rule, String)> {
    violations_with(&Policy::default(), extra, top)
        .into_iter()
        .map(|v| (v.rule, v.path))
        .collect()
}

fn one(rule: Rule, path: &str) -> Vec<(Rule, String)> {
    vec![(rule, path.to_owned())]
}

const CLEAN: &str = r#"
services:
  web:
    image: nginx
    ports: ["8080:80", "127.0.0.1:8443:443", "[::1]:9000:9000"]
    volumes:
      - ./html:/usr/share/nginx/html:ro
      - data:/data
      - type: tmpfs
        target: /cache
    cap_add: [NET_BIND_SERVICE, CAP_CHOWN]
    cap_drop: [ALL]
    env_file: ./web.env
    secrets: [token]
    network_mode: service:vpn
  vpn:
    image: vpn
    ipc: shareable
    pid: service:web2
  web2:
    image: x
    networks: [front]
volumes:
  data:
networks:
  front:
    driver: bridge
secrets:
  token: {file: ./secrets/token}
"#;

#[test]
fn a_clean_stack_passes() {
    let p = project(CLEAN);
    assert_eq!(Policy::default().violations(&p, &domain()), vec![]);
    assert!(Policy::default().check(&p, &domain()).is_ok());
}

#[test]
fn privileged() {
    assert_eq!(
        rules("    privileged: true\n", ""),
        one(Rule::Privileged, "services.web.privileged")
    );
}

#[test]
fn a_hook_is_held_to_the_service_rules() {
    let hooks = "    user: '1000'\n    post_start:\n      - {command: [chown, '1000', /data], user: root}\n      - {command: [sh], privileged: true}\n    pre_stop:\n      - {command: [sh], privileged: true}\n    pre_start:\n      - {image: busybox, privileged: true}\n";
    assert_eq!(
        rules(hooks, ""),
        vec![
            (
                Rule::Privileged,
                "services.web.pre_start[0].privileged".to_owned()
            ),
            (
                Rule::Privileged,
                "services.web.post_start[1].privileged".to_owned()
            ),
            (
                Rule::Privileged,
                "services.web.pre_stop[0].privileged".to_owned()
            ),
        ]
    );
    // A hook running as root in an unprivileged container needs no rule.
    assert_eq!(
        rules("    post_start:\n      - {command: [id], user: root}\n", ""),
        vec![]
    );
}

#[test]
fn secrets_written_by_hostkit_are_not_bind_sources_of_the_stack() {
    let top = "secrets:\n  token: {environment: TOKEN}\nconfigs:\n  conf: {content: 'a = 1'}\n";
    assert_eq!(
        rules("    secrets: [token]\n    configs: [conf]\n", top),
        vec![]
    );
}

#[test]
fn host_network_and_other_network_modes() {
    assert_eq!(
        rules("    network_mode: host\n", ""),
        one(Rule::HostNetwork, "services.web.network_mode")
    );
    assert_eq!(
        rules("    network_mode: bridge\n", ""),
        one(Rule::NetworkMode, "services.web.network_mode")
    );
    assert_eq!(
        rules("    network_mode: container:other_domain-db-1\n", ""),
        one(Rule::NetworkMode, "services.web.network_mode")
    );
    assert_eq!(rules("    network_mode: none\n", ""), vec![]);
}

#[test]
fn host_pid_and_ipc() {
    assert_eq!(
        rules("    pid: host\n", ""),
        one(Rule::HostPid, "services.web.pid")
    );
    assert_eq!(
        rules("    pid: container:abc\n", ""),
        one(Rule::HostPid, "services.web.pid")
    );
    assert_eq!(
        rules("    ipc: host\n", ""),
        one(Rule::HostIpc, "services.web.ipc")
    );
    assert_eq!(
        rules("    ipc: container:abc\n", ""),
        one(Rule::HostIpc, "services.web.ipc")
    );
    assert_eq!(rules("    ipc: private\n", ""), vec![]);
}

#[test]
fn dangerous_capabilities() {
    let got = rules(
        "    cap_add: [NET_BIND_SERVICE, SYS_ADMIN, cap_net_admin, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH, ALL]\n",
        "",
    );
    let paths: Vec<&str> = got.iter().map(|(_, p)| p.as_str()).collect();
    assert!(got.iter().all(|(r, _)| *r == Rule::CapAdd));
    assert_eq!(
        paths,
        [
            "services.web.cap_add[1]",
            "services.web.cap_add[2]",
            "services.web.cap_add[3]",
            "services.web.cap_add[4]",
            "services.web.cap_add[5]",
            "services.web.cap_add[6]",
        ]
    );
    let policy = Policy {
        allowed_cap_add: vec!["CAP_SYS_ADMIN".into()],
        ..Policy::default()
    };
    assert!(violations_with(&policy, "    cap_add: [SYS_ADMIN]\n", "").is_empty());
}

#[test]
fn devices() {
    assert_eq!(
        rules("    devices: [/dev/sda]\n", ""),
        one(Rule::Devices, "services.web.devices[0]")
    );
}

#[test]
fn bind_mounts_outside_the_domain() {
    for source in [
        "/etc",
        "../other.com/data",
        "./data/../../x",
        "~/.ssh",
        "/srv/hostkit-test-nonexistent",
    ] {
        assert_eq!(
            rules(&format!("    volumes: ['{source}:/x']\n"), ""),
            one(Rule::BindOutsideDomain, "services.web.volumes[0]"),
            "{source}"
        );
    }
    let long = "    volumes:\n      - type: bind\n        source: /var/lib\n        target: /x\n";
    assert_eq!(
        rules(long, ""),
        one(Rule::BindOutsideDomain, "services.web.volumes[0]")
    );
    assert_eq!(
        rules(
            "    volumes: ['./a/b/../c:/x', '/srv/hostkit-test-nonexistent/example.com/d:/y']\n",
            ""
        ),
        vec![]
    );
}

#[test]
fn docker_socket() {
    for source in [
        "/var/run/docker.sock",
        "/run/docker.sock",
        "/var/run",
        "/",
        "./docker.sock",
    ] {
        assert_eq!(
            rules(
                &format!("    volumes: ['{source}:/var/run/docker.sock']\n"),
                ""
            ),
            one(Rule::DockerSocket, "services.web.volumes[0]"),
            "{source}"
        );
    }
    // With the socket rule off, the mount is still outside the domain.
    let policy = Policy {
        docker_socket: false,
        ..Policy::default()
    };
    let v = violations_with(&policy, "    volumes: ['/var/run/docker.sock:/s']\n", "");
    assert_eq!(
        v.iter().map(|v| v.rule).collect::<Vec<_>>(),
        [Rule::BindOutsideDomain]
    );
}

#[test]
fn files_outside_the_domain() {
    assert_eq!(
        rules("    env_file: /etc/environment\n", ""),
        one(Rule::FileOutsideDomain, "services.web.env_file[0]")
    );
    assert_eq!(
        rules(
            "    secrets: [pw]\n",
            "secrets:\n  pw: {file: /etc/shadow}\n"
        ),
        one(Rule::FileOutsideDomain, "secrets.pw.file")
    );
    assert_eq!(
        rules(
            "    configs: [c]\n",
            "configs:\n  c: {file: ../other.com/conf}\n"
        ),
        one(Rule::FileOutsideDomain, "configs.c.file")
    );
}

#[test]
fn public_ports() {
    for spec in ["0.0.0.0:80:80", "[::]:80:80", "192.168.1.10:80:80"] {
        assert_eq!(
            rules(&format!("    ports: ['{spec}']\n"), ""),
            one(Rule::PublicPort, "services.web.ports"),
            "{spec}"
        );
    }
    let long = "    ports:\n      - target: 80\n        host_ip: 0.0.0.0\n";
    assert_eq!(rules(long, ""), one(Rule::PublicPort, "services.web.ports"));
    assert_eq!(
        rules("    ports: ['80', '8080:80', '127.0.0.2:81:81']\n", ""),
        vec![]
    );
}

#[test]
fn external_networks_volumes_and_drivers() {
    assert_eq!(
        rules(
            "    networks: [proxy]\n",
            "networks:\n  proxy: {external: true}\n"
        ),
        one(Rule::ExternalNetwork, "networks.proxy.external")
    );
    assert_eq!(
        rules(
            "    volumes: ['v:/v']\n",
            "volumes:\n  v: {external: true}\n"
        ),
        one(Rule::ExternalVolume, "volumes.v.external")
    );
    assert_eq!(
        rules(
            "    networks: [lan]\n",
            "networks:\n  lan: {driver: macvlan}\n"
        ),
        one(Rule::NetworkDriver, "networks.lan.driver")
    );
}

const LIMITED: &str = "services:\n  web:\n    image: a\n    mem_limit: 512m\n    cpus: 0.5\n    deploy: {replicas: 3}\n  db:\n    image: b\n    deploy: {resources: {limits: {memory: 1g, cpus: '1'}}}\n";

#[test]
fn memory_and_cpu_caps_sum_over_replicas() {
    let p = project(LIMITED);
    // 3 × 512m + 1g = 2.5g; 3 × 0.5 + 1 = 2.5 CPUs.
    let fits = Policy {
        max_memory: Some(5 << 29),
        max_cpus: Some(2.5),
        ..Policy::default()
    };
    assert!(fits.check(&p, &domain()).is_ok());
    let tight = Policy {
        max_memory: Some(2 << 30),
        max_cpus: Some(2.0),
        ..Policy::default()
    };
    let v = tight.violations(&p, &domain());
    assert_eq!(
        v.iter()
            .map(|v| (v.rule, v.path.as_str()))
            .collect::<Vec<_>>(),
        [
            (Rule::MemoryLimit, "services"),
            (Rule::CpuLimit, "services")
        ]
    );
    assert!(
        v[0].message.contains("2684354560 bytes"),
        "{}",
        v[0].message
    );
    assert!(v[1].message.contains("2.5 CPUs"), "{}", v[1].message);
}

#[test]
fn the_pids_cap_sums_over_replicas_and_needs_a_limit_everywhere() {
    let p = project(
        "services:\n  web:\n    image: a\n    pids_limit: 100\n    deploy: {replicas: 2}\n  db:\n    image: b\n    deploy: {resources: {limits: {pids: 50}}}\n  job:\n    image: c\n    pids_limit: -1\n",
    );
    let policy = Policy {
        max_pids: Some(200),
        ..Policy::default()
    };
    let v = policy.violations(&p, &domain());
    let got: Vec<(Rule, &str)> = v.iter().map(|v| (v.rule, v.path.as_str())).collect();
    assert_eq!(
        got,
        [
            (Rule::PidsLimit, "services.job.deploy.resources.limits.pids"),
            (Rule::PidsLimit, "services"),
        ],
        "-1 is no limit; 2 × 100 + 50 = 250 > 200"
    );
    assert!(v[1].message.contains("250 processes"), "{}", v[1].message);
    let fits = project(
        "services:\n  web:\n    image: a\n    pids_limit: 100\n    deploy: {replicas: 2}\n",
    );
    assert!(policy.check(&fits, &domain()).is_ok());
}

#[test]
fn caps_require_limits_on_every_service() {
    let p =
        project("services:\n  web:\n    image: a\n    mem_limit: 1g\n  worker:\n    image: b\n");
    let policy = Policy {
        max_memory: Some(4 << 30),
        max_cpus: Some(4.0),
        ..Policy::default()
    };
    let v = policy.violations(&p, &domain());
    let got: Vec<(Rule, Option<&str>, &str)> = v
        .iter()
        .map(|v| (v.rule, v.service.as_deref(), v.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Rule::MemoryLimit,
                Some("worker"),
                "services.worker.deploy.resources.limits.memory"
            ),
            (
                Rule::CpuLimit,
                Some("web"),
                "services.web.deploy.resources.limits.cpus"
            ),
            (
                Rule::CpuLimit,
                Some("worker"),
                "services.worker.deploy.resources.limits.cpus"
            ),
        ]
    );
    // Without caps, nothing is required.
    assert!(Policy::default().check(&p, &domain()).is_ok());
}

#[test]
fn replica_cap() {
    let p = project(LIMITED);
    let policy = Policy {
        max_replicas: Some(2),
        ..Policy::default()
    };
    let v = policy.violations(&p, &domain());
    assert_eq!(
        v.iter()
            .map(|v| (v.rule, v.path.as_str()))
            .collect::<Vec<_>>(),
        [(Rule::Replicas, "services.web.deploy.replicas")]
    );
}

#[test]
fn all_violations_are_collected_and_reported() {
    let text = "services:\n  a:\n    image: x\n    privileged: true\n    network_mode: host\n    volumes: ['/:/host']\n  b:\n    image: y\n    pid: host\n    ports: ['0.0.0.0:80:80']\n";
    let e = Policy::default()
        .check(&project(text), &domain())
        .expect_err("denied");
    assert_eq!(e.code(), "policy.denied");
    let got: Vec<(&str, Option<&str>)> = e
        .violations
        .iter()
        .map(|v| (v.rule.id(), v.service.as_deref()))
        .collect();
    assert_eq!(
        got,
        [
            ("privileged", Some("a")),
            ("host-network", Some("a")),
            ("docker-socket", Some("a")),
            ("host-pid", Some("b")),
            ("public-port", Some("b")),
        ]
    );
    let message = e.to_string();
    assert!(
        message.starts_with("denied by policy: [privileged] services.a.privileged:"),
        "{message}"
    );
    assert!(
        message.contains("[public-port] services.b.ports"),
        "{message}"
    );
}

#[test]
fn rules_can_be_switched_off() {
    let text =
        "services:\n  web:\n    image: a\n    privileged: true\n    ports: ['0.0.0.0:80:80']\n";
    let policy = Policy {
        privileged: false,
        public_port: false,
        ..Policy::default()
    };
    assert!(policy.check(&project(text), &domain()).is_ok());
}

#[test]
fn symlinks_in_the_domain_are_never_followed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let domain = dir.path().join("example.com");
    std::fs::create_dir_all(domain.join("conf")).expect("mkdir");
    std::os::unix::fs::symlink("/etc", domain.join("data")).expect("symlink");
    std::os::unix::fs::symlink("conf", domain.join("inside")).expect("symlink");
    let p = project(
        "services:\n  web:\n    image: a\n    env_file: ./inside/app.env\n    volumes: ['./data:/data:ro', './data/ssl:/ssl:ro', './conf:/conf:ro']\n",
    );
    // Lexically everything is inside the domain directory…
    assert!(Policy::default().check(&p, &domain).is_ok());
    // …but on disk two sources and the env file go through links.
    let denied = Policy::default()
        .check_on_disk(&p, &DomainDir::new(&domain))
        .expect_err("links are refused");
    let found: Vec<(Rule, &str)> = denied
        .violations
        .iter()
        .map(|v| (v.rule, v.path.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            (Rule::Symlink, "services.web.volumes[0]"),
            (Rule::Symlink, "services.web.volumes[1]"),
            (Rule::Symlink, "services.web.env_file[0]"),
        ]
    );
    assert!(
        denied.to_string().contains("symbolic link `./data`"),
        "{denied}"
    );
}

#[test]
fn hostkit_files_and_the_domain_root_are_not_bindable() {
    for source in [
        ".",
        "./",
        "./config.json",
        "./docker-compose.yml",
        "./docker-compose.v3.yml",
        "./.env",
        "./versions",
        "./versions/v1.yml",
        "./.hostkit-x",
        "./data/..",
    ] {
        let text = format!("services:\n  web:\n    image: a\n    volumes: ['{source}:/x:ro']\n");
        let v = Policy::default().violations(&project(&text), &domain());
        assert_eq!(
            v.iter().map(|v| v.rule).collect::<Vec<_>>(),
            [Rule::BindDomainFiles],
            "{source}: {v:?}"
        );
    }
    let fine = "services:\n  web:\n    image: a\n    volumes: ['./data:/x', './conf/nginx.conf:/etc/nginx.conf:ro', './docker-compose-notes:/n:ro']\n";
    assert!(Policy::default().check(&project(fine), &domain()).is_ok());
}

#[test]
fn no_source_lies_inside_a_writable_source() {
    let rules = |text: &str| -> Vec<(Rule, String)> {
        Policy::default()
            .violations(&project(text), &domain())
            .into_iter()
            .map(|v| (v.rule, v.path))
            .collect()
    };
    // The issue's attack: `a` writes ./data, `b` mounts ./data/sub.
    let attack = "services:\n  a:\n    image: x\n    volumes: ['./data:/d']\n  b:\n    image: x\n    volumes: ['./data/sub:/host:ro']\n";
    assert_eq!(
        rules(attack),
        [(Rule::BindNested, "services.b.volumes[0]".to_owned())]
    );
    // Within one service, with the long form, and through `..`.
    let own = "services:\n  a:\n    image: x\n    volumes: [{type: bind, source: ./data, target: /d}, './x/../data/deep/er:/e']\n";
    assert_eq!(
        rules(own),
        [(Rule::BindNested, "services.a.volumes[1]".to_owned())]
    );
    // A secret or config file inside a writable directory.
    let secret = "services:\n  a:\n    image: x\n    volumes: ['./data:/d']\n    secrets: [key]\nsecrets:\n  key:\n    file: ./data/key.pem\n";
    assert_eq!(
        rules(secret),
        [(Rule::BindNested, "services.a.secrets[0]".to_owned())]
    );
    // Read-only outer mounts, the same directory twice, and siblings are fine.
    for fine in [
        "services:\n  a:\n    image: x\n    volumes: ['./data:/d:ro']\n  b:\n    image: x\n    volumes: ['./data/sub:/s']\n",
        "services:\n  a:\n    image: x\n    volumes: ['./data:/d']\n  b:\n    image: x\n    volumes: ['./data:/d']\n",
        "services:\n  a:\n    image: x\n    volumes: ['./data:/d']\n  b:\n    image: x\n    volumes: ['./data2:/d', './data-x/y:/y']\n",
    ] {
        assert_eq!(rules(fine), [], "{fine}");
    }
}

#[test]
fn logging_drivers_come_from_an_allow_list() {
    let with = |driver: &str| {
        format!("services:\n  a:\n    image: x\n    logging:\n      driver: {driver}\n")
    };
    for denied in ["syslog", "gelf", "splunk", "awslogs", "fluentd", "journald"] {
        let v = Policy::default().violations(&project(&with(denied)), &domain());
        assert_eq!(
            v.iter().map(|v| v.rule).collect::<Vec<_>>(),
            [Rule::LoggingDriver],
            "{denied}"
        );
        assert_eq!(v[0].path, "services.a.logging.driver");
    }
    for allowed in ["json-file", "local", "none"] {
        assert!(
            Policy::default()
                .check(&project(&with(allowed)), &domain())
                .is_ok(),
            "{allowed}"
        );
    }
}

#[test]
fn a_relative_domain_directory_is_made_absolute() {
    // The CLI checks with its working directory as the domain directory.
    let text = "services:\n  a:\n    image: x\n    env_file: ./app.env\n    volumes: ['./data:/d', '.:/app:ro']\n";
    for base in [".", "./", "sub/dir"] {
        let v = Policy::default().violations(&project(text), Path::new(base));
        assert_eq!(
            v.iter()
                .map(|v| (v.rule, v.path.as_str()))
                .collect::<Vec<_>>(),
            [(Rule::BindDomainFiles, "services.a.volumes[1]")],
            "{base}"
        );
    }
}

#[test]
fn deserializes_from_toml_with_defaults() {
    let policy: Policy = toml::from_str(
        "public_port = false\nallowed_cap_add = [\"NET_ADMIN\"]\nmax_memory = \"4g\"\nmax_cpus = 2.5\nmax_replicas = 10\n",
    )
    .expect("toml");
    assert!(!policy.public_port);
    assert!(policy.privileged && policy.docker_socket && policy.bind_outside_domain);
    assert_eq!(policy.allowed_cap_add, ["NET_ADMIN"]);
    assert_eq!(policy.max_memory, Some(4 << 30));
    assert_eq!(policy.max_cpus, Some(2.5));
    assert_eq!(policy.max_replicas, Some(10));
    let bytes: Policy = toml::from_str("max_memory = 1048576\n").expect("toml");
    assert_eq!(bytes.max_memory, Some(1 << 20));
    let empty: Policy = toml::from_str("").expect("toml");
    assert_eq!(empty, Policy::default());
    assert!(
        toml::from_str::<Policy>("privilegd = false\n").is_err(),
        "typos are errors"
    );
    assert!(toml::from_str::<Policy>("max_memory = \"lots\"\n").is_err());
}

#[test]
fn rule_ids_are_stable() {
    let ids: Vec<&str> = Rule::ALL
        .iter()
        .map(|r| {
            let json = serde_json::to_string(r).expect("json");
            assert_eq!(json, format!("\"{}\"", r.id()));
            r.id()
        })
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "every rule once");
    assert!(ids.contains(&"bind-outside-domain") && ids.contains(&"docker-socket"));
    // Switchable rules are switched by the key of their name.
    for rule in Rule::ALL {
        let off = match rule.switch() {
            Some(key) if !key.starts_with("max_") => {
                toml::from_str::<Policy>(&format!("{key} = false")).expect(key)
            }
            _ => continue,
        };
        assert!(!off.enforces(rule), "{rule}");
        assert!(Policy::default().enforces(rule), "{rule}");
    }
}

#[test]
fn a_volume_that_binds_a_directory_is_checked_as_a_bind_mount() {
    let with = |opts: &str, mount: &str| {
        format!(
            "services:\n  a:\n    image: x\n    volumes: ['{mount}']\nvolumes:\n  v:\n    driver_opts: {opts}\n"
        )
    };
    let rules = |text: &str| -> Vec<(Rule, String)> {
        Policy::default()
            .violations(&project(text), &domain())
            .into_iter()
            .map(|v| (v.rule, v.path))
            .collect()
    };
    let bind = |device: &str| format!("{{type: none, o: bind, device: '{device}'}}");
    assert_eq!(
        rules(&with(&bind("/etc"), "v:/x")),
        [(
            Rule::BindOutsideDomain,
            "volumes.v.driver_opts.device".to_owned()
        )]
    );
    assert_eq!(
        rules(&with(&bind("/var/run"), "v:/x")),
        [(
            Rule::DockerSocket,
            "volumes.v.driver_opts.device".to_owned()
        )]
    );
    assert_eq!(
        rules(&with(&bind("./config.json"), "v:/x:ro")),
        [(Rule::BindDomainFiles, "services.a.volumes[0]".to_owned())]
    );
    let nested = "services:\n  a:\n    image: x\n    volumes: ['./data:/d', 'v:/x:ro']\nvolumes:\n  v:\n    driver_opts: {type: none, o: 'bind,ro', device: ./data/sub}\n";
    assert_eq!(
        rules(nested),
        [(Rule::BindNested, "services.a.volumes[1]".to_owned())]
    );
    assert_eq!(rules(&with(&bind("./data"), "v:/x")), []);
    assert_eq!(
        rules(&with("{type: tmpfs, device: tmpfs, o: size=64m}", "v:/x")),
        []
    );
    assert_eq!(
        rules(&with(
            "{type: nfs, o: 'addr=10.0.0.1,rw', device: ':/export'}",
            "v:/x"
        )),
        [(Rule::VolumeOptions, "volumes.v.driver_opts".to_owned())]
    );
    let p = project(&with(&bind("./data/sub"), "v:/x"));
    let sources = bind_sources(&p, &domain());
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].path, Some(domain().join("data/sub")));
    assert!(sources[0].writable);
}

#[test]
fn security_opt_allows_no_new_privileges_only() {
    for fine in [
        "no-new-privileges",
        "no-new-privileges:true",
        "no-new-privileges=true",
        "no-new-privileges=1",
    ] {
        assert_eq!(
            rules(&format!("    security_opt: ['{fine}']\n"), ""),
            vec![],
            "{fine}"
        );
    }
    for (denied, says) in [
        ("label=disable", "SELinux separation off"),
        ("label:disable", "SELinux separation off"),
        ("disable", "SELinux separation off"),
        ("seccomp=unconfined", "seccomp filtering off"),
        ("seccomp:unconfined", "seccomp filtering off"),
        ("apparmor=unconfined", "AppArmor confinement off"),
        ("apparmor:unconfined", "AppArmor confinement off"),
        ("systempaths=unconfined", "/proc and /sys"),
        ("no-new-privileges:false", "`no-new-privileges` off"),
        ("seccomp:./profiles/chrome.json", "custom profile"),
        ("apparmor=my-profile", "AppArmor profile of the host"),
        ("label=type:spc_t", "SELinux label"),
        ("label:level:s0:c100,c200", "SELinux label"),
        ("writable-cgroups=true", "only `no-new-privileges`"),
    ] {
        let v = violations_with(
            &Policy::default(),
            &format!("    security_opt: [no-new-privileges, '{denied}']\n"),
            "",
        );
        assert_eq!(v.len(), 1, "{denied}: {v:?}");
        assert_eq!(v[0].rule, Rule::SecurityOpt, "{denied}");
        assert_eq!(v[0].rule.id(), "security-opt");
        assert_eq!(v[0].service.as_deref(), Some("web"));
        assert_eq!(v[0].path, "services.web.security_opt[1]");
        assert!(
            v[0].message.contains(&format!("`{denied}`")) && v[0].message.contains(says),
            "{denied}: {}",
            v[0].message
        );
    }
    let off = Policy {
        security_opt: false,
        ..Policy::default()
    };
    assert!(violations_with(&off, "    security_opt: [seccomp=unconfined]\n", "").is_empty());
}

#[test]
fn sysctls_outside_the_network_namespace_are_denied() {
    assert_eq!(
        rules(
            "    sysctls: {net.core.somaxconn: 1024, 'net/ipv4/ip_forward': 1}\n",
            ""
        ),
        vec![]
    );
    let v = violations_with(
        &Policy::default(),
        "    sysctls: [kernel.shmmax=1, net.core.somaxconn=1024, fs/mqueue/msg_max=10, vm.swappiness=0]\n",
        "",
    );
    let got: Vec<(Rule, Option<&str>, &str)> = v
        .iter()
        .map(|v| (v.rule, v.service.as_deref(), v.path.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Rule::Sysctls,
                Some("web"),
                "services.web.sysctls.fs/mqueue/msg_max"
            ),
            (
                Rule::Sysctls,
                Some("web"),
                "services.web.sysctls.kernel.shmmax"
            ),
            (
                Rule::Sysctls,
                Some("web"),
                "services.web.sysctls.vm.swappiness"
            ),
        ]
    );
    assert!(v[1].message.contains("`kernel.shmmax`"), "{}", v[1].message);
    let off = Policy {
        sysctls: false,
        ..Policy::default()
    };
    assert!(violations_with(&off, "    sysctls: [kernel.shmmax=1]\n", "").is_empty());
}

#[test]
fn ulimits_cap_nofile_and_deny_unlimited_memlock() {
    for fine in [
        "    ulimits: {nofile: 65535}\n",
        "    ulimits: {nofile: {soft: 1024, hard: 1048576}, memlock: 67108864, nproc: -1}\n",
        "    ulimits: {core: 0, stack: {soft: 8388608, hard: -1}}\n",
    ] {
        assert_eq!(rules(fine, ""), vec![], "{fine}");
    }
    for (denied, path, says) in [
        (
            "    ulimits: {nofile: 1048577}\n",
            "services.web.ulimits.nofile",
            "1048577 (soft) / 1048577 (hard) is above the 1048576",
        ),
        (
            "    ulimits: {nofile: {soft: 1024, hard: 2000000}}\n",
            "services.web.ulimits.nofile",
            "2000000 (hard)",
        ),
        (
            "    ulimits: {nofile: -1}\n",
            "services.web.ulimits.nofile",
            "unlimited (soft)",
        ),
        (
            "    ulimits: {memlock: -1}\n",
            "services.web.ulimits.memlock",
            "unlimited",
        ),
        (
            "    ulimits: {memlock: {soft: 65536, hard: -1}}\n",
            "services.web.ulimits.memlock",
            "unlimited",
        ),
    ] {
        let v = violations_with(&Policy::default(), denied, "");
        assert_eq!(v.len(), 1, "{denied}: {v:?}");
        assert_eq!(
            (v[0].rule, v[0].service.as_deref(), v[0].path.as_str()),
            (Rule::Ulimits, Some("web"), path),
            "{denied}"
        );
        assert!(v[0].message.contains(says), "{denied}: {}", v[0].message);
    }
    // The cap is configurable, and the rule can be switched off.
    let tight = Policy {
        max_nofile: 4096,
        ..Policy::default()
    };
    assert_eq!(
        violations_with(&tight, "    ulimits: {nofile: 65535}\n", "")
            .iter()
            .map(|v| v.rule)
            .collect::<Vec<_>>(),
        [Rule::Ulimits]
    );
    assert!(violations_with(&tight, "    ulimits: {nofile: 4096}\n", "").is_empty());
    let off = Policy {
        ulimits: false,
        ..Policy::default()
    };
    assert!(violations_with(&off, "    ulimits: {nofile: 99999999, memlock: -1}\n", "").is_empty());
}

#[test]
fn kernel_rules_switch_and_cap_from_toml() {
    let policy: Policy = toml::from_str(
        "security_opt = false\nsysctls = false\nulimits = false\nmax_nofile = 65536\n",
    )
    .expect("toml");
    assert!(!policy.enforces(Rule::SecurityOpt));
    assert!(!policy.enforces(Rule::Sysctls));
    assert!(!policy.enforces(Rule::Ulimits));
    assert_eq!(policy.max_nofile, 65536);
    let default = Policy::default();
    assert!(
        default.enforces(Rule::SecurityOpt)
            && default.enforces(Rule::Sysctls)
            && default.enforces(Rule::Ulimits)
    );
    assert_eq!(default.max_nofile, 1_048_576);
    assert_eq!(Rule::SecurityOpt.switch(), Some("security_opt"));
    assert_eq!(Rule::Sysctls.switch(), Some("sysctls"));
    assert_eq!(Rule::Ulimits.switch(), Some("ulimits"));
}

#[test]
fn a_denied_kernel_setting_names_rule_service_and_key() {
    let text = "services:\n  db:\n    image: x\n    security_opt: ['seccomp:unconfined']\n    sysctls: {kernel.sem: '250 32000 100 128'}\n    ulimits: {memlock: -1}\n";
    let e = Policy::default()
        .check(&project(text), &domain())
        .expect_err("denied");
    let message = e.to_string();
    for part in [
        "[security-opt] services.db.security_opt[0]: security option `seccomp:unconfined` turns seccomp filtering off",
        "[sysctls] services.db.sysctls.kernel.sem:",
        "[ulimits] services.db.ulimits.memlock:",
    ] {
        assert!(message.contains(part), "{part} not in {message}");
    }
}
