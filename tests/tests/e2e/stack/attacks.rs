//! The node-isolation attacks of DESIGN §6, each performed against the real
//! engine: a test fails if the attack works (it asserts what a container
//! can see or reach, not only that a deploy was refused).

use bollard::models::ContainerCreateBody;
use hostkit_deploy::error::DeployError;
use hostkit_deploy::policy::Rule;

use super::site::Site;

/// The rules a deploy was refused for (panics on any other outcome).
fn denied_rules<T: std::fmt::Debug>(result: Result<T, DeployError>) -> Vec<Rule> {
    match result {
        Err(DeployError::Policy(denied)) => denied.violations.iter().map(|v| v.rule).collect(),
        Err(DeployError::Image(hostkit_deploy::images::ImageError::Foreign { .. })) => {
            vec![Rule::ForeignImage]
        }
        other => panic!("expected a policy denial, got {other:?}"),
    }
}

const PLANTER: &str = r#"
services:
  a:
    image: hostkit-test/web:v1
    command: ["sh", "-c", "mkdir -p /d && rm -rf /d/sub && ln -s / /d/sub && exec serve 8080 /www"]
    volumes: ["./data:/d"]
    healthcheck: {interval: 1s, timeout: 3s, retries: 3}
"#;

const READER: &str = r#"
  b:
    image: hostkit-test/web:v1
    volumes: ["./data/sub:/host:ro"]
    healthcheck: {interval: 1s, timeout: 3s, retries: 3}
"#;

/// No container of the site's stack sees the host's `/etc/shadow` through
/// `/host`.
async fn nobody_sees_the_host(site: &Site) {
    for (name, _) in site.containers().await {
        let (code, out) = site.exec(&name, &["cat", "/host/etc/shadow"]).await;
        assert_ne!(code, 0, "{name} reads the host's /etc/shadow: {out}");
    }
}

#[tokio::test]
async fn a_planted_symlink_never_mounts_the_host() {
    let site = Site::new().await;
    let data = site.dir.path().join("data");

    // v1: `a` writes ./data and plants ./data/sub -> / (the attack's first half).
    site.deploy(PLANTER)
        .await
        .expect("the planter alone deploys");
    let planted = std::fs::symlink_metadata(data.join("sub")).expect("the link exists");
    assert!(planted.is_symlink(), "the container planted its link");

    // The whole attack in one file: `b` mounts a source inside `a`'s writable one.
    let both = format!(
        "{PLANTER}{}    depends_on:\n      a:\n        condition: service_healthy\n",
        READER
    );
    assert_eq!(denied_rules(site.deploy(&both).await), [Rule::BindNested]);
    nobody_sees_the_host(&site).await;

    // `b` alone while `a` still runs: the planted link is refused at the check…
    let reader_only = format!("services:{READER}");
    assert_eq!(
        denied_rules(site.deploy(&reader_only).await),
        [Rule::Symlink]
    );
    nobody_sees_the_host(&site).await;
    // …and with a real directory there for now, `b` is still refused: `a`,
    // running, could plant the link again between the check and the start.
    std::fs::remove_file(data.join("sub")).expect("remove the link");
    std::fs::create_dir(data.join("sub")).expect("a real directory");
    assert_eq!(
        denied_rules(site.deploy(&reader_only).await),
        [Rule::BindNested]
    );
    nobody_sees_the_host(&site).await;
    std::fs::remove_dir(data.join("sub")).expect("rmdir");
    std::os::unix::fs::symlink("/", data.join("sub")).expect("as `a` left it");

    // `a` gone, its link left behind: the check walks ./data/sub without
    // following it.
    site.deploy("services:\n  c:\n    image: hostkit-test/web:v1\n")
        .await
        .expect("a stack without binds replaces the planter");
    assert!(!site.containers().await.keys().any(|n| n.contains("-a-")));
    assert_eq!(
        denied_rules(site.deploy(&reader_only).await),
        [Rule::Symlink]
    );
    nobody_sees_the_host(&site).await;

    // A link that appears after the check, right before the start (as a
    // container of another stack version could plant it): the guard before
    // every container start refuses it.
    std::fs::remove_file(data.join("sub")).expect("remove the link");
    std::fs::create_dir(data.join("sub")).expect("a real directory");
    let spec = site
        .spec(&reader_only)
        .await
        .expect("a real directory passes the check");
    std::fs::remove_dir(data.join("sub")).expect("rmdir");
    std::os::unix::fs::symlink("/", data.join("sub")).expect("plant");
    assert_eq!(
        denied_rules(site.engine.apply(&spec, &site.sink).await),
        [Rule::Symlink]
    );
    nobody_sees_the_host(&site).await;

    // Positive control: with a real directory there, `b` deploys and sees it.
    std::fs::remove_file(data.join("sub")).expect("remove the link");
    std::fs::create_dir(data.join("sub")).expect("a real directory");
    std::fs::write(data.join("sub/marker"), "mine\n").expect("marker");
    let applied = site.deploy(&reader_only).await.expect("the reader deploys");
    let b = &applied.services["b"].replicas[0].name;
    assert_eq!(
        site.exec(b, &["cat", "/host/marker"]).await,
        (0, "mine\n".to_string())
    );
    nobody_sees_the_host(&site).await;
}

#[tokio::test]
async fn hostkit_files_and_the_domain_root_cannot_be_mounted() {
    let site = Site::new().await;
    std::fs::write(site.dir.path().join(".env"), "SECRET=x\n").expect(".env");
    for source in [".", "./.env", "./config.json", "./versions"] {
        let compose = format!(
            "services:\n  a:\n    image: hostkit-test/web:v1\n    volumes: [\"{source}:/mnt:ro\"]\n"
        );
        assert_eq!(
            denied_rules(site.deploy(&compose).await),
            [Rule::BindDomainFiles],
            "{source}"
        );
    }
    assert!(site.containers().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn a_colliding_volume_or_network_name_never_reaches_another_domain() {
    // `<t>.example.test` owns volume `db` and its default network:
    // `<t>_example_test_db`, `<t>_example_test_default`. `<t>.example` names
    // the same engine objects with the keys `test_db` and `test_default`.
    let victim = Site::with_domain(|d| {
        let base = d.unique_domain();
        format!("{}.example.test", base.trim_end_matches(".test"))
    })
    .await;
    let attacker_name = victim.domain.as_str().trim_end_matches(".test").to_owned();
    let attacker = Site::with_domain(|_| attacker_name.clone()).await;
    assert_eq!(
        format!("{}_test_db", attacker.domain.token()),
        format!("{}_db", victim.domain.token()),
        "the names collide"
    );

    let victim_stack = r#"
services:
  db:
    image: hostkit-test/db:latest
    volumes: ["db:/data"]
volumes:
  db: {}
"#;
    let applied = victim
        .deploy(victim_stack)
        .await
        .expect("the victim deploys");
    let db = &applied.services["db"].replicas[0].name;
    let (code, created) = victim.exec(db, &["cat", "/data/created"]).await;
    assert_eq!(code, 0);

    let steal_volume = r#"
services:
  thief:
    image: hostkit-test/web:v1
    volumes: ["test_db:/loot"]
    networks: [own]
volumes:
  test_db: {}
networks:
  own: {}
"#;
    let refused = attacker.deploy(steal_volume).await;
    assert_eq!(denied_rules(refused), [Rule::ResourceOwner]);
    let join_network = r#"
services:
  thief:
    image: hostkit-test/web:v1
    networks: [test_default]
networks:
  test_default: {}
"#;
    assert_eq!(
        denied_rules(attacker.deploy(join_network).await),
        [Rule::ResourceOwner]
    );
    assert!(
        attacker.containers().await.is_empty(),
        "no container of the attacker was created"
    );
    // The victim's data is untouched and still only its own.
    assert_eq!(
        victim.exec(db, &["cat", "/data/created"]).await,
        (0, created)
    );
}

#[tokio::test]
async fn no_network_means_no_network_not_the_default_bridge() {
    let site = Site::new().await;
    // A container on Docker's default bridge, reachable from the host.
    let neighbour = site
        .docker
        .run_container_with(ContainerCreateBody {
            image: Some("hostkit-test/web:v1".into()),
            labels: Some(site.docker.labels()),
            ..Default::default()
        })
        .await;
    let inspect = site
        .docker
        .client()
        .inspect_container(&neighbour, None)
        .await
        .expect("inspect");
    let ip = inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|n| n.get("bridge").and_then(|e| e.ip_address.clone()))
        .filter(|ip| !ip.is_empty())
        .expect("the neighbour is on the default bridge");
    hostkit_tests::wait_until(
        std::time::Duration::from_secs(20),
        "the neighbour answers on the bridge",
        async || {
            tokio::net::TcpStream::connect((ip.as_str(), 8080))
                .await
                .is_ok()
        },
    )
    .await;

    let applied = site
        .deploy("services:\n  lonely:\n    image: hostkit-test/web:v1\n    networks: []\n")
        .await
        .expect("deploys");
    let lonely = &applied.services["lonely"].replicas[0].name;
    let inspect = site
        .docker
        .client()
        .inspect_container(lonely, None)
        .await
        .expect("inspect");
    let mode = inspect.host_config.and_then(|h| h.network_mode);
    assert_eq!(mode.as_deref(), Some("none"));
    let networks = inspect
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default();
    assert!(!networks.contains_key("bridge"), "{networks:?}");
    let reached = site.wget_ip(lonely, &ip, 8080).await;
    assert!(
        reached.is_err(),
        "the container reached the default bridge: {reached:?}"
    );
}

#[tokio::test]
async fn logging_drivers_that_leave_the_host_are_refused_and_local_logs_are_capped() {
    let site = Site::new().await;
    let syslog = "services:\n  a:\n    image: hostkit-test/web:v1\n    logging:\n      driver: syslog\n      options: {syslog-address: \"udp://127.0.0.1:514\"}\n";
    assert_eq!(
        denied_rules(site.deploy(syslog).await),
        [Rule::LoggingDriver]
    );
    assert!(site.containers().await.is_empty());

    let applied = site
        .deploy("services:\n  a:\n    image: hostkit-test/web:v1\n")
        .await
        .expect("deploys");
    let a = &applied.services["a"].replicas[0].name;
    let log = site
        .docker
        .client()
        .inspect_container(a, None)
        .await
        .expect("inspect")
        .host_config
        .and_then(|h| h.log_config)
        .expect("a log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let options = log.config.unwrap_or_default();
    assert_eq!(options.get("max-size").map(String::as_str), Some("10m"));
    assert_eq!(options.get("max-file").map(String::as_str), Some("3"));
}

#[tokio::test]
async fn a_volume_that_binds_a_directory_is_held_to_the_bind_rules() {
    let site = Site::new().await;
    let with_device = |device: &str| {
        format!(
            "services:\n  a:\n    image: hostkit-test/web:v1\n    volumes: [\"v:/host\"]\nvolumes:\n  v:\n    driver_opts: {{type: none, o: bind, device: \"{device}\"}}\n"
        )
    };
    // A bind of /etc in disguise.
    assert_eq!(
        denied_rules(site.deploy(&with_device("/etc")).await),
        [Rule::BindOutsideDomain]
    );
    // Through a link planted in the domain directory.
    std::os::unix::fs::symlink("/", site.dir.path().join("root")).expect("plant");
    assert_eq!(
        denied_rules(site.deploy(&with_device("./root/etc")).await),
        [Rule::Symlink]
    );
    assert!(site.containers().await.is_empty());
    nobody_sees_the_host(&site).await;

    // A directory of the domain works, resolved against the domain directory.
    std::fs::create_dir_all(site.dir.path().join("shared")).expect("mkdir");
    std::fs::write(site.dir.path().join("shared/marker"), "bound\n").expect("marker");
    let applied = site
        .deploy(&with_device("./shared"))
        .await
        .expect("deploys");
    let a = &applied.services["a"].replicas[0].name;
    assert_eq!(
        site.exec(a, &["cat", "/host/marker"]).await,
        (0, "bound\n".to_string())
    );
}

#[tokio::test]
async fn a_container_name_another_stack_holds_is_never_taken_over() {
    let site = Site::new().await;
    // A container under the name the stack's first `web` replica gets,
    // made by something else (another tool, or a stack whose names collide).
    let name = format!("{}-web-1", site.domain.token());
    let docker = site.docker.client();
    let options = bollard::query_parameters::CreateContainerOptionsBuilder::default()
        .name(&name)
        .build();
    let foreign = docker
        .create_container(
            Some(options),
            ContainerCreateBody {
                image: Some("hostkit-test/web:v1".into()),
                labels: Some(site.docker.labels()),
                ..Default::default()
            },
        )
        .await
        .expect("create the foreign container")
        .id;
    docker
        .start_container(&foreign, None)
        .await
        .expect("start it");

    assert_eq!(
        denied_rules(site.deploy(&super::site::web_only("v1", 1)).await),
        [Rule::ResourceOwner]
    );
    // The foreign container is untouched: same id, still running.
    let inspect = docker
        .inspect_container(&name, None)
        .await
        .expect("still there");
    assert_eq!(inspect.id.as_deref(), Some(foreign.as_str()));
    assert_eq!(inspect.state.and_then(|s| s.running), Some(true));
}
