//! `Env`: nats-server, Docker Engine, nginx and a worker for one test, with
//! job builders and the compose files the worker tests deploy.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream;
use hostkit_proto::job::{ComposeSource, DeployOptions, DeployPayload, DeploySource, ImageSource};
use hostkit_proto::{Domain, Event, EventKind, Job, JobSpec};
use hostkit_tests::worker::upload_tarball;
use hostkit_tests::{
    JobEvents, TarballBuilder, TestDocker, TestNats, TestNginx, TestWorker, fixtures, publish_job,
};

/// A single web service on 8080 (the fixture image named by `image`).
pub fn web(image: &str) -> String {
    format!(
        "services:\n  web:\n    image: {image}\n    ports: [\"8080\"]\n    healthcheck:\n      interval: 1s\n      timeout: 3s\n      retries: 3\n"
    )
}

/// Everything one worker test needs.
pub struct Env {
    pub nats: TestNats,
    pub docker: TestDocker,
    pub nginx: TestNginx,
    pub worker: TestWorker,
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn new() -> Env {
        Self::with_settings(|_| {}).await
    }

    /// An env whose worker runs with adjusted settings.
    pub async fn with_settings(adjust: impl FnOnce(&mut hostkit_worker::runtime::Settings)) -> Env {
        Self::with_docker_settings(|settings, _| adjust(settings)).await
    }

    /// An env whose worker runs with settings `adjust` changes, knowing the
    /// test's engine (e.g. to name its domains in them).
    pub async fn with_docker_settings(
        adjust: impl FnOnce(&mut hostkit_worker::runtime::Settings, &TestDocker),
    ) -> Env {
        let nats = TestNats::new().await;
        let docker = TestDocker::new().await;
        let nginx = TestNginx::new().await;
        let worker = TestWorker::start_with(&nats, &docker, &nginx, |s| adjust(s, &docker)).await;
        let client = nats.client().await;
        let js = jetstream::new(client.clone());
        Env {
            nats,
            docker,
            nginx,
            worker,
            client,
            js,
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// A fresh domain (cleaned up with the test).
    pub fn domain(&self) -> Domain {
        self.docker.unique_domain().parse().expect("valid domain")
    }

    /// Upload the fixture images as one tarball; answers the image source.
    pub async fn upload(&self, name: &str, images: Vec<hostkit_tests::ImageSpec>) -> ImageSource {
        let path = self.dir.path().join(format!("{name}.tar"));
        images
            .into_iter()
            .fold(TarballBuilder::new(), TarballBuilder::image)
            .write_to(&path)
            .expect("write the tarball");
        upload_tarball(&self.js, &self.worker.names, &path).await
    }

    /// A deploy job of `compose` with `images`.
    pub fn deploy_job(&self, domain: &Domain, compose: &str, images: Vec<ImageSource>) -> Job {
        Job::new(
            domain.clone(),
            JobSpec::Deploy(DeployPayload {
                source: DeploySource::Compose(ComposeSource {
                    text: compose.to_string(),
                    file_name: None,
                }),
                images,
                env: Default::default(),
                sealed_env: None,
                options: DeployOptions {
                    health_timeout_secs: Some(20),
                    ..DeployOptions::default()
                },
            }),
            "e2e",
        )
    }

    /// Sign `job` as the CLI does: for this worker's node, valid for the
    /// default time.
    pub fn sign(&self, job: &mut Job, key: &nkeys::KeyPair) {
        job.node = Some(self.worker.node.clone());
        job.expires_at = Some(job.created_at + hostkit_proto::sign::DEFAULT_JOB_TTL);
        hostkit_proto::sign_job(job, key).expect("sign the job");
    }

    /// Any other job.
    pub fn job(&self, domain: &Domain, spec: JobSpec) -> Job {
        Job::new(domain.clone(), spec, "e2e")
    }

    /// Publish `job` and wait for its terminal event; answers it and the
    /// job's events in order.
    pub async fn run(&self, job: &Job) -> (Event, Vec<Event>) {
        let mut events = JobEvents::subscribe(&self.client, &self.worker.names, &job.domain).await;
        publish_job(&self.js, &self.worker.names, &self.worker.node, job).await;
        let terminal = events.terminal(&job.id, Duration::from_secs(90)).await;
        let all = events.of(&job.id).into_iter().cloned().collect();
        (terminal, all)
    }

    /// GET `/` through nginx for `domain`.
    pub async fn get(&self, domain: &Domain) -> (u16, String) {
        self.nginx
            .get(domain.as_str(), "/")
            .await
            .expect("request through nginx")
    }

    /// The image tags HostKit gave `domain`'s versions (`<project>/…`).
    pub async fn version_tags(&self, domain: &Domain) -> Vec<String> {
        let project = domain.token();
        let filters = std::collections::HashMap::from([(
            "reference".to_string(),
            vec![format!("{project}/*")],
        )]);
        self.docker
            .client()
            .list_images(Some(bollard::query_parameters::ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .expect("list images")
            .into_iter()
            .flat_map(|image| image.repo_tags)
            .filter(|tag| tag.starts_with(&format!("{project}/")))
            .collect()
    }

    /// Image ids of the project's containers, by service.
    pub async fn image_ids(&self, domain: &Domain) -> BTreeMap<String, String> {
        let inventory = hostkit_deploy::engine::inventory::Inventory::load(
            self.docker.client(),
            &domain.token(),
        )
        .await
        .expect("inventory");
        let mut ids = BTreeMap::new();
        for c in inventory.all() {
            let inspect = self
                .docker
                .client()
                .inspect_container(&c.id, None)
                .await
                .expect("inspect");
            ids.insert(c.service.clone(), inspect.image.unwrap_or_default());
        }
        ids
    }

    /// A control request to this worker on the request's own subject;
    /// answers the `ok` payload (panics on an error reply).
    pub async fn control<R: hostkit_proto::control::ControlCall>(&self, request: &R) -> R::Reply {
        let names = &self.worker.names;
        let subject = names.ctl_for(&self.worker.node, R::VERB, request.domain());
        let body = serde_json::to_vec(request).expect("a request serializes");
        let reply = tokio::time::timeout(
            Duration::from_secs(5),
            self.client.request(subject, body.into()),
        )
        .await
        .expect("answered within 5 s")
        .expect("request");
        serde_json::from_slice::<hostkit_proto::Reply<R::Reply>>(&reply.payload)
            .expect("reply parses")
            .into_result()
            .expect("ok reply")
    }

    /// Every container of the domain's project (one-off ones included).
    pub async fn containers_of(&self, domain: &Domain) -> Vec<String> {
        let filters = std::collections::HashMap::from([(
            "label".to_string(),
            vec![format!(
                "com.docker.compose.project={}",
                hostkit_tests::compose_project(domain.as_str())
            )],
        )]);
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .client()
            .list_containers(Some(options))
            .await
            .expect("list containers")
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .collect()
    }

    /// Wait (bounded) until the domain's stack has at least one container:
    /// a deploy is under way.
    pub async fn wait_for_a_container(&self, domain: &Domain) {
        hostkit_tests::wait_until(
            Duration::from_secs(60),
            "the deploy creates a container",
            async || {
                hostkit_deploy::engine::inventory::Inventory::load(
                    self.docker.client(),
                    &domain.token(),
                )
                .await
                .is_ok_and(|i| !i.services.is_empty())
            },
        )
        .await;
    }

    /// The domain directory the worker keeps for `domain`.
    pub fn domain_dir(&self, domain: &Domain) -> std::path::PathBuf {
        self.worker.domains_root.path().join(domain.as_str())
    }
}

/// The version a `succeeded` event reports.
pub fn succeeded_version(event: &Event) -> u32 {
    match &event.kind {
        EventKind::Succeeded {
            version: Some(v), ..
        } => *v,
        other => panic!("expected succeeded with a version, got {other:?}"),
    }
}

/// The code and message of a `failed` event (panics on any other).
pub fn failure(event: &Event) -> (hostkit_proto::ErrorCode, String) {
    match &event.kind {
        EventKind::Failed { code, message, .. } => (*code, message.clone()),
        other => panic!("expected failed, got {other:?}"),
    }
}

/// The fixture images the worker tests ship.
pub fn images_v1_v2() -> Vec<hostkit_tests::ImageSpec> {
    vec![
        fixtures::web("v1"),
        fixtures::web("v2"),
        fixtures::web_unhealthy("v3"),
    ]
}

impl Env {
    /// The version numbers the worker recorded for `domain`, newest first.
    pub async fn worker_versions(&self, domain: &Domain) -> Vec<u32> {
        let subject = self
            .worker
            .names
            .ctl(&self.worker.node, hostkit_proto::ControlVerb::Versions);
        let body = serde_json::json!({ "domain": domain.as_str() }).to_string();
        let reply = self
            .client
            .request(subject, body.into())
            .await
            .expect("versions request");
        let reply: hostkit_proto::Reply<hostkit_proto::control::VersionsReply> =
            serde_json::from_slice(&reply.payload).expect("versions reply");
        reply
            .into_result()
            .expect("versions")
            .versions
            .iter()
            .map(|v| v.version)
            .collect()
    }
}
