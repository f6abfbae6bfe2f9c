//! Self-tests of the harness against the real parts: images built by the
//! tarball builder load and run in the Docker Engine, fixtures behave as
//! documented, JetStream data survives a restart, nginx proxies and rejects
//! broken configs, and `TestDocker` cleans up what it labelled.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, HealthStatusEnum, HostConfig,
    NetworkCreateRequest, VolumeCreateRequest,
};
use bollard::query_parameters::{InspectContainerOptions, StopContainerOptions, TagImageOptions};
use futures_util::StreamExt as _;
use hostkit_tests::fixtures::{self, API_PORT, DB_PORT, WEB_PORT};
use hostkit_tests::{
    HttpResponder, TarballBuilder, TestDocker, TestNats, TestNginx, compose_project,
    connect_docker, free_port, http_get, wait_for,
};

/// Generous bound for anything that waits on containers on a busy machine.
const WAIT: Duration = Duration::from_secs(60);

/// Polls `GET /path` on 127.0.0.1:`port` until it answers 200; returns the body.
async fn get_ok(port: u16, path: &str) -> String {
    wait_for(
        WAIT,
        &format!("HTTP 200 from 127.0.0.1:{port}{path}"),
        async || match http_get(("127.0.0.1", port), "localhost", path).await {
            Ok((200, body)) => Ok(body),
            Ok((status, body)) => Err(format!("status {status}: {body:?}")),
            Err(e) => Err(format!("{e:#}")),
        },
    )
    .await
}

async fn exit_code(docker: &TestDocker, container: &str) -> Option<i64> {
    let inspect = docker
        .client()
        .inspect_container(container, None::<InspectContainerOptions>)
        .await
        .expect("inspect container");
    inspect.state.and_then(|s| s.exit_code)
}

#[tokio::test]
async fn web_tarball_loads_serves_its_version_and_turns_healthy() {
    let docker = TestDocker::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.tar");
    let built = fixtures::web("v1")
        .write_to(&path)
        .expect("write the web tarball");

    let loaded = docker.load_tarball(&path).await.expect("docker load");
    assert_eq!(loaded, vec!["hostkit-test/web:v1".to_string()]);
    let image = docker
        .client()
        .inspect_image("hostkit-test/web:v1")
        .await
        .unwrap();
    assert_eq!(
        image.id.as_deref(),
        Some(built.images[0].id.as_str()),
        "the engine computes the same image id"
    );

    let port = free_port();
    let container = docker
        .run_container("hostkit-test/web:v1", &[(WEB_PORT, port)])
        .await;
    assert_eq!(get_ok(port, "/").await, "web v1\n");
    docker
        .wait_health(&container, HealthStatusEnum::HEALTHY, WAIT)
        .await;

    let env = get_ok(port, "/cgi-bin/env").await;
    assert!(
        env.lines().any(|l| l == "FIXTURE_VERSION=v1"),
        "env page:\n{env}"
    );
    let hostname = get_ok(port, "/cgi-bin/hostname").await;
    assert!(
        container.starts_with(hostname.trim()),
        "hostname {hostname:?} is the short container id"
    );

    // The serve script turns SIGTERM into exit 0 (httpd as PID 1 would
    // ignore it and be SIGKILLed: exit 137).
    let stop = StopContainerOptions {
        t: Some(30),
        ..Default::default()
    };
    docker
        .client()
        .stop_container(&container, Some(stop))
        .await
        .unwrap();
    assert_eq!(exit_code(&docker, &container).await, Some(0));
}

#[tokio::test]
async fn multi_image_tarball_loads_every_tag() {
    let docker = TestDocker::new().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stack.tar");
    let built = TarballBuilder::new()
        .image(fixtures::web("v1"))
        .image(fixtures::api("v1"))
        .image(fixtures::db())
        .write_to(&path)
        .unwrap();

    let mut loaded = docker.load_tarball(&path).await.expect("docker load");
    loaded.sort();
    assert_eq!(
        loaded,
        [
            "hostkit-test/api:v1",
            "hostkit-test/db:latest",
            "hostkit-test/web:v1"
        ]
    );
    for image in &built.images {
        let tag = &image.tags[0];
        let inspect = docker.client().inspect_image(tag).await.unwrap();
        assert_eq!(inspect.id.as_ref(), Some(&image.id), "{tag}");
        let layers = inspect.root_fs.and_then(|r| r.layers).unwrap_or_default();
        assert_eq!(layers, image.diff_ids, "{tag}");
        let config = inspect.config.unwrap_or_default();
        assert!(config.healthcheck.is_some(), "{tag} has a healthcheck");
        assert_eq!(
            config.exposed_ports.unwrap_or_default().len(),
            1,
            "{tag} exposes one port"
        );
    }
    // web, api and db share the busybox layer.
    assert_eq!(built.images[0].diff_ids[0], built.images[1].diff_ids[0]);
    assert_eq!(built.images[0].diff_ids[0], built.images[2].diff_ids[0]);
}

#[tokio::test]
async fn fixtures_api_db_unhealthy_and_oneshot_behave_as_documented() {
    let docker = TestDocker::new().await;
    docker
        .load_images([
            fixtures::api("v3"),
            fixtures::db(),
            fixtures::web_unhealthy("v2"),
            fixtures::oneshot("v1"),
        ])
        .await;

    let api_port = free_port();
    let api = docker
        .run_container("hostkit-test/api:v3", &[(API_PORT, api_port)])
        .await;
    let unhealthy = docker
        .run_container("hostkit-test/web-unhealthy:v2", &[])
        .await;
    let oneshot = docker.run_container("hostkit-test/oneshot:v1", &[]).await;
    assert_eq!(get_ok(api_port, "/").await, "api v3\n");

    // db: state in a named volume survives a new container.
    let volume = docker.unique_name("dbdata");
    let volume_request = VolumeCreateRequest {
        name: Some(volume.clone()),
        labels: Some(docker.labels()),
        ..Default::default()
    };
    docker.client().create_volume(volume_request).await.unwrap();
    let db_body = |port: u16| ContainerCreateBody {
        image: Some("hostkit-test/db:latest".into()),
        exposed_ports: Some(vec![format!("{DB_PORT}/tcp")]),
        host_config: Some(HostConfig {
            binds: Some(vec![format!("{volume}:/data")]),
            port_bindings: Some(HashMap::from([(
                format!("{DB_PORT}/tcp"),
                Some(vec![bollard::models::PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some(port.to_string()),
                }]),
            )])),
            ..Default::default()
        }),
        ..Default::default()
    };
    let first_port = free_port();
    let first = docker.run_container_with(db_body(first_port)).await;
    docker
        .wait_health(&first, HealthStatusEnum::HEALTHY, WAIT)
        .await;
    let created = get_ok(first_port, "/created").await;
    assert_eq!(created.trim().len(), 36, "a UUID: {created:?}");
    assert_eq!(get_ok(first_port, "/boots").await.lines().count(), 1);
    let stop = StopContainerOptions {
        t: Some(30),
        ..Default::default()
    };
    docker
        .client()
        .stop_container(&first, Some(stop))
        .await
        .unwrap();
    assert_eq!(exit_code(&docker, &first).await, Some(0));

    let second_port = free_port();
    let second = docker.run_container_with(db_body(second_port)).await;
    assert_eq!(
        get_ok(second_port, "/created").await,
        created,
        "state survived"
    );
    assert_eq!(get_ok(second_port, "/boots").await.lines().count(), 2);
    docker
        .wait_health(&second, HealthStatusEnum::HEALTHY, WAIT)
        .await;

    docker
        .wait_health(&unhealthy, HealthStatusEnum::UNHEALTHY, WAIT)
        .await;
    docker
        .wait_health(&api, HealthStatusEnum::HEALTHY, WAIT)
        .await;

    let oneshot_exit = wait_for(WAIT, "the oneshot container to exit", async || {
        let inspect = docker
            .client()
            .inspect_container(&oneshot, None)
            .await
            .map_err(|e| e.to_string())?;
        let state = inspect.state.unwrap_or_default();
        match state.status {
            Some(ContainerStateStatusEnum::EXITED) => Ok(state.exit_code),
            other => Err(format!("status {other:?}")),
        }
    })
    .await;
    assert_eq!(oneshot_exit, Some(0));
}

#[tokio::test]
async fn jetstream_message_survives_a_server_restart() {
    let mut nats = TestNats::new().await;
    let js = nats.jetstream().await;
    let config = stream::Config {
        name: "HARNESS".into(),
        subjects: vec!["harness.>".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    };
    js.create_stream(config).await.expect("create stream");
    let ack = js
        .publish("harness.one", "hello".into())
        .await
        .unwrap()
        .await
        .unwrap();
    assert_eq!(ack.sequence, 1);

    let consumer_config = pull::Config {
        durable_name: Some("reader".into()),
        ..Default::default()
    };
    let stream = js.get_stream("HARNESS").await.unwrap();
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer("reader", consumer_config)
        .await
        .unwrap();
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await
        .unwrap();
    let message = batch.next().await.expect("one message").unwrap();
    assert_eq!(message.payload.as_ref(), b"hello");
    assert_eq!(message.subject.as_str(), "harness.one");

    let port = nats.port();
    nats.stop();
    assert!(!nats.is_running());
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "the server is down"
    );
    nats.start().await;
    assert_eq!(nats.port(), port, "same port after restart");

    let js = nats.jetstream().await;
    let mut stream = js.get_stream("HARNESS").await.expect("the stream survived");
    assert_eq!(stream.info().await.unwrap().state.messages, 1);
    let stored = stream
        .get_raw_message(1)
        .await
        .expect("the message survived");
    assert_eq!(stored.payload.as_ref(), b"hello");
    stream
        .get_consumer::<pull::Config>("reader")
        .await
        .expect("the durable consumer survived");

    drop(js);
    let store = nats.store_dir();
    drop(nats);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "drop stopped the server"
    );
    assert!(!store.exists(), "drop removed the store");
}

#[tokio::test]
async fn nats_with_config_enforces_its_accounts() {
    let nats = TestNats::with_config(
        r#"
        accounts {
            APP { jetstream: enabled, users: [ { user: app, password: secret } ] }
        }
        "#,
    )
    .await;
    let anonymous = nats.connect_with(async_nats::ConnectOptions::new()).await;
    assert!(
        anonymous.is_err(),
        "a server with accounts refuses anonymous clients"
    );
    let options = async_nats::ConnectOptions::with_user_and_password("app".into(), "secret".into());
    let client = nats
        .connect_with(options)
        .await
        .expect("the configured user connects");
    let js = jetstream::new(client);
    let info = js
        .query_account()
        .await
        .expect("JetStream is enabled for the account");
    assert_eq!(info.streams, 0);
}

#[tokio::test]
async fn nginx_proxies_by_host_and_rejects_a_broken_config() {
    let nginx = TestNginx::new().await;
    let upstream = HttpResponder::start("hello from upstream").await;

    assert_eq!(
        nginx.get("nothing.test", "/").await.unwrap().0,
        404,
        "the default server answers 404"
    );

    let block = |port: u16| {
        format!(
            "server {{\n    listen {};\n    server_name proxy.test;\n    location / {{ proxy_pass http://127.0.0.1:{port}; }}\n}}\n",
            nginx.listen()
        )
    };
    std::fs::write(
        nginx.conf_dir().join("proxy.test.conf"),
        block(upstream.port()),
    )
    .unwrap();
    nginx
        .check_config()
        .await
        .expect("a valid config passes nginx -t");
    nginx.reload().await.expect("reload");
    assert_eq!(
        nginx.get("proxy.test", "/").await.unwrap(),
        (200, "hello from upstream".to_string())
    );
    assert_eq!(nginx.get("other.test", "/").await.unwrap().0, 404);

    // A broken file: nginx -t says why; a reload keeps the old config.
    std::fs::write(
        nginx.conf_dir().join("broken.conf"),
        "server { listen 1.2.3.4:1; bogus_directive on; }\n",
    )
    .unwrap();
    let message = nginx
        .check_config()
        .await
        .expect_err("nginx -t rejects a broken file");
    assert!(
        message.contains("unknown directive \"bogus_directive\""),
        "{message}"
    );
    let reload = nginx
        .reload()
        .await
        .expect_err("reload of a broken config fails");
    assert!(reload.contains("bogus_directive"), "{reload}");
    assert_eq!(
        nginx.get("proxy.test", "/").await.unwrap(),
        (200, "hello from upstream".to_string())
    );
    std::fs::remove_file(nginx.conf_dir().join("broken.conf")).unwrap();

    // The commands handed to code under test drive this very instance.
    let second = HttpResponder::start("second upstream").await;
    std::fs::write(
        nginx.conf_dir().join("proxy.test.conf"),
        block(second.port()),
    )
    .unwrap();
    let run = |argv: Vec<String>| async move {
        let out = tokio::process::Command::new(&argv[0])
            .args(&argv[1..])
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(nginx.test_command()).await;
    run(nginx.reload_command()).await;
    wait_for(
        WAIT,
        "nginx to route proxy.test to the second upstream",
        async || match nginx.get("proxy.test", "/").await {
            Ok((200, body)) if body == "second upstream" => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;

    let port = nginx.listen_port();
    drop(nginx);
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "drop stopped nginx"
    );
}

/// Everything a test can leave behind, created through `docker`.
struct Leftovers {
    containers: Vec<String>,
    networks: Vec<String>,
    volumes: Vec<String>,
    images: Vec<String>,
}

async fn create_leftovers(docker: &TestDocker) -> Leftovers {
    docker.load_images([fixtures::web("v1")]).await;
    let client = docker.client();

    // Resources labelled with the test label.
    let labelled = docker.run_container("hostkit-test/web:v1", &[]).await;
    let network = docker.unique_name("net");
    let request = NetworkCreateRequest {
        name: network.clone(),
        labels: Some(docker.labels()),
        ..Default::default()
    };
    client.create_network(request).await.unwrap();
    let volume = docker.unique_name("vol");
    let request = VolumeCreateRequest {
        name: Some(volume.clone()),
        labels: Some(docker.labels()),
        ..Default::default()
    };
    client.create_volume(request).await.unwrap();

    // Resources carrying only the Compose project label of a unique domain,
    // like the ones the worker creates; the network also has a container
    // attached that is not labelled at all.
    let project = compose_project(&docker.unique_domain());
    let compose_labels =
        HashMap::from([("com.docker.compose.project".to_string(), project.clone())]);
    let compose_network = format!("{project}_default");
    let request = NetworkCreateRequest {
        name: compose_network.clone(),
        labels: Some(compose_labels.clone()),
        ..Default::default()
    };
    client.create_network(request).await.unwrap();
    let body = ContainerCreateBody {
        image: Some("hostkit-test/web:v1".into()),
        labels: Some(compose_labels.clone()),
        host_config: Some(HostConfig {
            network_mode: Some(compose_network.clone()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let options = bollard::query_parameters::CreateContainerOptions {
        name: Some(format!("{project}-web-1")),
        ..Default::default()
    };
    let compose_container = client
        .create_container(Some(options), body)
        .await
        .unwrap()
        .id;
    client
        .start_container(&compose_container, None)
        .await
        .unwrap();
    let compose_volume = format!("{project}_data");
    let request = VolumeCreateRequest {
        name: Some(compose_volume.clone()),
        labels: Some(compose_labels),
        ..Default::default()
    };
    client.create_volume(request).await.unwrap();

    // Image tags: a version tag of the project, and a registered one.
    let tag = async |repo: String, tag: &str| {
        let options = TagImageOptions {
            repo: Some(repo.clone()),
            tag: Some(tag.into()),
        };
        client
            .tag_image("hostkit-test/web:v1", Some(options))
            .await
            .unwrap();
        format!("{repo}:{tag}")
    };
    let version_tag = tag(format!("{project}/web"), "v1").await;
    let registered = tag(format!("hostkit-test-own/{}", docker.id()), "x").await;
    docker.register_image(registered.clone());

    Leftovers {
        containers: vec![labelled, compose_container],
        networks: vec![network, compose_network],
        volumes: vec![volume, compose_volume],
        images: vec![version_tag, registered],
    }
}

async fn assert_all_gone(leftovers: &Leftovers) {
    let client = connect_docker().await;
    let is_404 = |r: Result<(), bollard::errors::Error>| {
        matches!(
            r,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })
        )
    };
    for c in &leftovers.containers {
        assert!(
            is_404(client.inspect_container(c, None).await.map(drop)),
            "container {c} is gone"
        );
    }
    for n in &leftovers.networks {
        assert!(
            is_404(client.inspect_network(n, None).await.map(drop)),
            "network {n} is gone"
        );
    }
    for v in &leftovers.volumes {
        assert!(
            is_404(client.inspect_volume(v).await.map(drop)),
            "volume {v} is gone"
        );
    }
    for i in &leftovers.images {
        assert!(
            is_404(client.inspect_image(i).await.map(drop)),
            "image tag {i} is gone"
        );
    }
    // Shared fixture tags are not the test's to remove.
    client
        .inspect_image("hostkit-test/web:v1")
        .await
        .expect("the fixture tag stays");
}

#[tokio::test]
async fn docker_drop_removes_what_the_test_labelled() {
    let docker = TestDocker::new().await;
    let leftovers = create_leftovers(&docker).await;
    for c in &leftovers.containers {
        docker
            .client()
            .inspect_container(c, None)
            .await
            .expect("exists before drop");
    }
    drop(docker);
    assert_all_gone(&leftovers).await;
}

#[tokio::test]
async fn docker_cleanup_also_runs_when_the_test_panics() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(async move {
        let docker = TestDocker::new().await;
        let leftovers = create_leftovers(&docker).await;
        tx.send(leftovers).ok();
        panic!("a failing test");
    });
    let outcome = task.await;
    assert!(outcome.expect_err("the task panicked").is_panic());
    let leftovers = rx
        .await
        .expect("the task created its resources before panicking");
    assert_all_gone(&leftovers).await;
}
