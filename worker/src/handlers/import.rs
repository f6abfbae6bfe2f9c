//! `import`: adopt a HostKit v1 site (DESIGN §10). v1's `config.json` and
//! its running container (`example-com`) are read; the container's image,
//! port, memory limits, restart policy, env and bind mounts become a
//! one-service compose file ([`compose_for`]), which is deployed as
//! version 1 like any single-image site: start-first, health gated, then
//! nginx switches to it and v1's nginx site is retired in the same reload.
//! Only then is v1's container stopped (kept, with restart `no`). A site
//! that cannot be imported is left exactly as it was; one whose import
//! fails after nginx switched gets its v1 nginx site back.

use std::collections::BTreeMap;

use bollard::models::{ContainerUpdateBody, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::StopContainerOptionsBuilder;
use hostkit_deploy::domain_dir::DomainDir;
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_deploy::v1::{self, V1Site, V1SiteError};
use hostkit_proto::job::{
    ComposeSource, DeployOptions, DeployPayload, DeploySource, ImportPayload,
};
use hostkit_proto::{ErrorCode, Job};

use super::deploy::{SINGLE_IMAGE_MARKER, SINGLE_IMAGE_SERVICE, run_with_images};
use super::stack::domain_dir;
use super::{Done, Failure, blocking};
use crate::runtime::Worker;

/// How long v1's container may take to stop once HostKit serves the site.
const V1_STOP_SECS: i32 = 10;

pub async fn run(
    worker: &Worker,
    job: &Job,
    payload: &ImportPayload,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let domain = &job.domain;
    if let Some(current) = worker.store.current_version(domain.clone()).await? {
        return Err(unavailable(format!(
            "{domain} is already managed by HostKit (version {})",
            current.version
        )));
    }
    let dir = domain_dir(worker, domain);

    // 1. v1's config.json.
    sink.report(Progress::Step {
        name: "import",
        message: format!("reading HostKit v1's {}/config.json", dir.display()),
    });
    let read = {
        let dir = DomainDir::new(&dir);
        blocking("reading config.json", move || v1::config::read(&dir)).await?
    };
    let config = match read {
        Ok(Some(config)) => config,
        Ok(None) => {
            return Err(unavailable(format!(
                "no HostKit v1 site here: {}/config.json does not exist",
                dir.display()
            )));
        }
        Err(e) => return Err(unavailable(format!("v1's site cannot be read: {e}"))),
    };
    if config.written_by_hostkit() {
        return Err(unavailable(format!(
            "{}/config.json was written by HostKit, not by v1",
            dir.display()
        )));
    }
    if config.is_compose() {
        return Err(unavailable(format!(
            "v1 runs {domain} as a compose stack: deploy its docker-compose.yml with `hostkit deploy {domain} docker-compose.yml`, which takes over its nginx site the same way"
        )));
    }

    // 2. v1's container. A resumed import finds it stopped by the first
    //    attempt, with HostKit's stack already running.
    let resumed = Inventory::load(&worker.docker, &domain.token())
        .await
        .map_err(|e| Failure::new(ErrorCode::DockerUnavailable, e.to_string()))?
        .all()
        .next()
        .is_some();
    let mut site = v1::inspect_site(&worker.docker, domain.as_str(), config.port, &dir, !resumed)
        .await
        .map_err(site_failure)?;
    site.name_image(&worker.docker, domain.as_str())
        .await
        .map_err(site_failure)?;
    sink.report(Progress::Step {
        name: "import",
        message: format!(
            "v1 container `{}` runs {} on port {}; it keeps serving until HostKit's copy is healthy",
            site.container, site.image_reference, site.port
        ),
    });

    // 3. Deploy the generated file as version 1, start-first.
    let proxy = worker.engine.proxy();
    let v1_nginx = match proxy {
        Some(proxy) => proxy
            .v1_site_entry(domain)
            .await
            .map_err(|e| Failure::new(ErrorCode::ProxyInvalid, e.to_string()))?,
        None => None,
    };
    let deploy = DeployPayload {
        source: DeploySource::Compose(ComposeSource {
            text: compose_for(&site),
            file_name: Some("docker-compose.yml".into()),
        }),
        images: Vec::new(),
        env: Default::default(),
        sealed_env: None,
        options: DeployOptions {
            main_service: Some(SINGLE_IMAGE_SERVICE.into()),
            health_timeout_secs: payload.health_timeout_secs,
            auto_rollback: true,
            // v1's own, read from its config.json by the deploy.
            redirect_domains: None,
            snapshot: false,
        },
    };
    let vouched = BTreeMap::from([(site.image_reference.clone(), site.image_id.clone())]);
    let done = match run_with_images(worker, job, &deploy, vouched, sink).await {
        Ok(done) => done,
        Err(mut failure) => {
            if let (Some(proxy), Some(entry)) = (proxy, &v1_nginx)
                && v1::nginx::is_retired(entry).await
                && let Err(e) = proxy.restore_v1_site(domain, entry).await
            {
                failure.message = format!(
                    "{}; giving nginx back to v1's site failed too: {e}",
                    failure.message
                );
            }
            failure.message = format!(
                "import of {domain} failed, v1's container keeps serving: {}",
                failure.message
            );
            return Err(failure);
        }
    };

    // 4. HostKit serves the site: v1's container stops and stays stopped.
    if let Err(e) = retire_container(worker, &site).await {
        tracing::warn!(error = %e, container = site.container, "v1 container not stopped");
        sink.report(Progress::Warning {
            message: format!(
                "HostKit serves {domain}, but v1's container `{}` could not be stopped: {e}",
                site.container
            ),
        });
    } else {
        sink.report(Progress::Step {
            name: "import",
            message: format!(
                "v1's container `{}` is stopped (kept, restart policy `no`); v1's files are left in place",
                site.container
            ),
        });
    }
    Ok(done)
}

/// The compose file of a v1 site: one service, as v1 ran it, marked as a
/// single-image site.
pub fn compose_for(site: &V1Site) -> String {
    format!(
        "{SINGLE_IMAGE_MARKER}# Imported from HostKit v1: container `{}`, image {}.\n{}",
        site.container,
        site.image_id,
        site.compose_service(SINGLE_IMAGE_SERVICE)
    )
}

/// Stop v1's container and keep it from coming back at boot.
async fn retire_container(worker: &Worker, site: &V1Site) -> Result<(), bollard::errors::Error> {
    worker
        .docker
        .update_container(
            &site.container_id,
            ContainerUpdateBody {
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            },
        )
        .await?;
    let stop = StopContainerOptionsBuilder::default()
        .t(V1_STOP_SECS)
        .build();
    match worker
        .docker
        .stop_container(&site.container_id, Some(stop))
        .await
    {
        Ok(()) => Ok(()),
        // Already stopped (a resumed import).
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(e),
    }
}

fn unavailable(message: String) -> Failure {
    Failure::new(ErrorCode::ImportUnavailable, message)
}

fn site_failure(error: V1SiteError) -> Failure {
    match error {
        V1SiteError::Docker { .. } => {
            Failure::new(ErrorCode::DockerUnavailable, format!("{error:#}"))
        }
        other => unavailable(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> V1Site {
        V1Site {
            container: "example-com".into(),
            container_id: "c0ffee".into(),
            image_id: "sha256:abc".into(),
            image_reference: "example.com:20251008-143015".into(),
            port: 3000,
            memory: Some(512 << 20),
            memory_reservation: Some(256 << 20),
            restart: Some("unless-stopped".into()),
            env: vec![("TOKEN".into(), "a$b".into())],
            binds: vec!["./logs:/app/logs".into()],
        }
    }

    #[test]
    fn the_generated_file_is_the_container_as_v1_ran_it() {
        let text = compose_for(&site());
        assert!(text.starts_with(SINGLE_IMAGE_MARKER), "{text}");
        let env = hostkit_deploy::compose::Env::new();
        let project = hostkit_deploy::compose::load(&text, &env)
            .expect("a valid compose file")
            .project;
        let web = &project.services[SINGLE_IMAGE_SERVICE];
        assert_eq!(web.image, "example.com:20251008-143015");
        assert_eq!(web.deploy.resources.limits.memory, Some(512 << 20));
        assert_eq!(web.deploy.resources.reservations.memory, Some(256 << 20));
        assert_eq!(web.environment["TOKEN"], "a$b", "`$` kept literally");
        assert_eq!(web.ports.len(), 1);
    }
}
