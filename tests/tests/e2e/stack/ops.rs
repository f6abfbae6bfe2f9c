//! Operations on a running stack besides "apply a spec": restart (one
//! service or all), stop followed by start (an apply of the same spec), and
//! remove with and without purging the named volumes.

use std::collections::BTreeMap;
use std::time::Duration;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::ListNetworksOptionsBuilder;
use hostkit_deploy::engine::Change;
use hostkit_deploy::error::DeployError;
use hostkit_deploy::progress::{Progress, ServiceState};
use hostkit_tests::wait_for;

use super::site::{Site, three_service_stack, web_only};

/// What a container looks like from outside, by container name.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    id: String,
    started_at: String,
    running: bool,
    health: Option<HealthStatusEnum>,
}

async fn inspect(site: &Site, id: &str) -> ContainerInspectResponse {
    site.docker
        .client()
        .inspect_container(id, None)
        .await
        .unwrap_or_else(|e| panic!("inspect {id}: {e}"))
}

/// Every container of the project, inspected.
async fn seen(site: &Site) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    for (name, id) in site.containers().await {
        let state = inspect(site, &id).await.state.unwrap_or_default();
        out.insert(
            name,
            Seen {
                id,
                started_at: state.started_at.unwrap_or_default(),
                running: state.running.unwrap_or(false),
                health: state.health.and_then(|h| h.status),
            },
        );
    }
    out
}

/// The name of the project's container of `service` (replica 1).
fn container_of(site: &Site, service: &str) -> String {
    format!("{}-{service}-1", site.domain.token())
}

fn restarted(reports: &[Progress]) -> Vec<String> {
    reports
        .iter()
        .filter_map(|r| match r {
            Progress::Service {
                service,
                state: ServiceState::Restarted,
                ..
            } => Some(service.clone()),
            _ => None,
        })
        .collect()
}

/// `GET /` through nginx answers something other than a 200 from web.
async fn nginx_cannot_reach_web(site: &Site) -> Result<(), String> {
    match site.get("/").await {
        Ok((status, _)) if status == 502 || status == 504 => Ok(()),
        Err(_) => Ok(()),
        other => Err(format!("nginx still serves: {other:?}")),
    }
}

#[tokio::test]
async fn restart_of_one_service_then_of_all_keeps_containers_and_waits_until_ready() {
    let site = Site::new().await;
    let compose = three_service_stack("v1", "a");
    site.deploy(&compose).await.expect("deploy");
    let spec = site.spec(&compose).await.expect("spec");
    let before = seen(&site).await;
    assert_eq!(before.len(), 3, "{before:?}");
    let api = container_of(&site, "api");

    site.engine
        .restart(&spec, Some("api"), &site.sink)
        .await
        .expect("restart api");
    let after = seen(&site).await;
    assert_eq!(
        after.keys().collect::<Vec<_>>(),
        before.keys().collect::<Vec<_>>()
    );
    for (name, was) in &before {
        let now = &after[name];
        assert_eq!(now.id, was.id, "{name} was recreated by a restart");
        if *name == api {
            assert_ne!(now.started_at, was.started_at, "api was not restarted");
        } else {
            assert_eq!(now, was, "{name} was touched by a restart of api");
        }
    }
    // restart returns once the replica is ready again: running and healthy.
    assert!(after[&api].running, "{:?}", after[&api]);
    assert_eq!(after[&api].health, Some(HealthStatusEnum::HEALTHY));
    assert_eq!(restarted(&site.sink.reports()), ["api"]);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );

    // All services: every container restarted in place, all ready at return.
    site.engine
        .restart(&spec, None, &site.sink)
        .await
        .expect("restart all");
    let all = seen(&site).await;
    for (name, was) in &after {
        let now = &all[name];
        assert_eq!(now.id, was.id, "{name} was recreated by a restart");
        assert_ne!(now.started_at, was.started_at, "{name} was not restarted");
        assert!(now.running, "{name}: {now:?}");
        assert_eq!(now.health, Some(HealthStatusEnum::HEALTHY), "{name}");
    }
    let mut names = restarted(&site.sink.reports());
    names.sort();
    assert_eq!(names, ["api", "api", "db", "web"]);
    // web was waited for, so nginx reaches it at once.
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );

    let err = site
        .engine
        .restart(&spec, Some("nope"), &site.sink)
        .await
        .expect_err("an unknown service");
    assert!(
        matches!(&err, DeployError::UnknownService { service } if service == "nope"),
        "{err}"
    );
    assert_eq!(err.code(), "job.invalid");
    assert_eq!(
        seen(&site).await,
        all,
        "a failed restart touched containers"
    );
}

#[tokio::test]
async fn stop_then_apply_of_the_same_spec_starts_the_same_containers_behind_nginx() {
    let site = Site::new().await;
    let compose = three_service_stack("v1", "a");
    let deployed = site.deploy(&compose).await.expect("deploy");
    let before = seen(&site).await;
    let web_ports = deployed.services["web"].replicas[0].host_ports.clone();

    let spec = site.spec(&compose).await.expect("spec");
    site.engine.stop(&spec, &site.sink).await.expect("stop");
    let stopped = seen(&site).await;
    assert_eq!(stopped.len(), 3);
    for (name, c) in &stopped {
        assert!(!c.running, "{name} still runs after stop");
        assert_eq!(c.id, before[name].id, "stop removed {name}");
    }
    let mut reported: Vec<String> = site
        .sink
        .reports()
        .iter()
        .filter_map(|r| match r {
            Progress::Service {
                service,
                state: ServiceState::Stopped,
                ..
            } => Some(service.clone()),
            _ => None,
        })
        .collect();
    reported.sort();
    assert_eq!(reported, ["api", "db", "web"]);
    // nginx still routes the domain, but nothing answers behind it.
    nginx_cannot_reach_web(&site)
        .await
        .expect("web is stopped behind nginx");

    // Start = apply the same spec: the same containers run again, on the same ports.
    let spec = site.spec(&compose).await.expect("spec");
    let started = site.engine.apply(&spec, &site.sink).await.expect("start");
    for (service, outcome) in &started.services {
        assert_eq!(
            outcome.change,
            Change::Scaled,
            "{service} was not just started"
        );
    }
    assert_eq!(
        started.services["web"].replicas[0].host_ports, web_ports,
        "the started web replica does not report its host ports"
    );
    assert_eq!(started.upstreams, deployed.upstreams);
    let running = seen(&site).await;
    for (name, c) in &running {
        assert_eq!(c.id, before[name].id, "start recreated {name}");
        assert!(c.running, "{name} is not running after start");
        assert_eq!(c.health, Some(HealthStatusEnum::HEALTHY), "{name}");
    }
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

#[tokio::test]
async fn a_stopped_replica_keeps_its_host_port_when_the_service_scales_up_on_start() {
    let site = Site::new().await;
    let one = site.deploy(&web_only("v1", 1)).await.expect("deploy");
    let first = one.services["web"].replicas[0].clone();
    let spec = site.spec(&web_only("v1", 1)).await.expect("spec");
    site.engine.stop(&spec, &site.sink).await.expect("stop");

    // Starting the stack with a second replica: the stopped replica binds
    // its port again, so the new one must get another.
    let two = site.deploy(&web_only("v1", 2)).await.expect("start with 2");
    let replicas = &two.services["web"].replicas;
    assert_eq!(replicas.len(), 2);
    let old = replicas
        .iter()
        .find(|r| r.id == first.id)
        .expect("the stopped replica was started, not replaced");
    assert_eq!(old.host_ports, first.host_ports);
    let new = replicas.iter().find(|r| r.id != first.id).expect("new");
    assert_ne!(new.host_ports, first.host_ports);
    assert!(site.ports.contains(new.host_ports[0]));
    assert_eq!(two.upstreams.len(), 2, "{:?}", two.upstreams);
    for replica in replicas {
        let state = inspect(&site, &replica.id).await.state.unwrap_or_default();
        assert_eq!(state.running, Some(true), "{}", replica.name);
    }
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

/// Networks labelled with the project.
async fn project_networks(site: &Site) -> Vec<String> {
    let filters = std::collections::HashMap::from([(
        "label".to_string(),
        vec![format!(
            "com.docker.compose.project={}",
            site.domain.token()
        )],
    )]);
    let options = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    site.docker
        .client()
        .list_networks(Some(options))
        .await
        .expect("list networks")
        .into_iter()
        .filter_map(|n| n.name)
        .collect()
}

/// `GET /created` of the db replica (the id its volume was initialised with).
async fn db_identity(applied: &hostkit_deploy::engine::Applied) -> String {
    let port = applied.services["db"].replicas[0].host_ports[0];
    let (status, body) = hostkit_tests::http_get(("127.0.0.1", port), "db", "/created")
        .await
        .expect("GET /created from db");
    assert_eq!(status, 200, "{body}");
    assert!(!body.trim().is_empty());
    body
}

#[tokio::test]
async fn remove_keeps_the_named_volume_unless_purged_and_drops_everything_else() {
    let site = Site::new().await;
    let compose = three_service_stack("v1", "a");
    let first = site.deploy(&compose).await.expect("deploy");
    let identity = db_identity(&first).await;
    let volume = format!("{}_data", site.domain.token());
    let conf = site.nginx.conf_dir().join(format!("{}.conf", site.domain));
    assert!(conf.is_file());
    assert!(!project_networks(&site).await.is_empty());

    site.engine
        .remove(&site.domain, &site.domain.token(), false, &site.sink)
        .await
        .expect("remove");
    assert_eq!(site.containers().await, BTreeMap::new());
    assert!(
        !conf.exists(),
        "the nginx file of the domain is still there"
    );
    assert_eq!(project_networks(&site).await, Vec::<String>::new());
    site.docker
        .client()
        .inspect_volume(&volume)
        .await
        .expect("the named volume survives a remove without purge");
    let removed = site
        .sink
        .reports()
        .iter()
        .filter(|r| {
            matches!(
                r,
                Progress::Service {
                    state: ServiceState::Removed,
                    ..
                }
            )
        })
        .count();
    assert_eq!(removed, 3);
    // nginx no longer knows the domain: its default server answers.
    wait_for(
        Duration::from_secs(10),
        "nginx to drop the domain",
        async || match site.get("/").await {
            Ok((404, _)) => Ok(()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    // Removing what is gone already is fine.
    site.engine
        .remove(&site.domain, &site.domain.token(), false, &site.sink)
        .await
        .expect("a second remove");

    // A re-deploy finds the data again.
    let second = site.deploy(&compose).await.expect("re-deploy");
    assert_eq!(db_identity(&second).await, identity);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );

    site.engine
        .remove(&site.domain, &site.domain.token(), true, &site.sink)
        .await
        .expect("remove with purge");
    assert_eq!(site.containers().await, BTreeMap::new());
    assert!(!conf.exists());
    assert_eq!(project_networks(&site).await, Vec::<String>::new());
    match site.docker.client().inspect_volume(&volume).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        other => panic!("the volume survived a purge: {other:?}"),
    }
}
