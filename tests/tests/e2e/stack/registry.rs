//! Pulls from a real local registry (`docker-registry`): an image the engine
//! does not have is pulled when the policy allows it, and a tag the registry
//! does not have fails with `image.missing` before any container is touched.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::{PushImageOptionsBuilder, TagImageOptionsBuilder};
use futures_util::StreamExt;
use hostkit_deploy::engine::StackSpec;
use hostkit_deploy::error::DeployError;
use hostkit_deploy::images::{self, ImageScope, PullPolicy};
use hostkit_deploy::policy::Policy;
use hostkit_deploy::progress::Progress;
use hostkit_deploy::stack::{self, Placement};
use hostkit_tests::TestRegistry;

use super::site::{Site, web_only};

/// Check and resolve `compose` for the site like [`Site::spec`], with `pull`.
async fn spec_with(site: &Site, compose: &str, pull: PullPolicy) -> Result<StackSpec, DeployError> {
    let checked = stack::check(
        compose,
        &BTreeMap::new(),
        site.dir.path(),
        None,
        &Policy::default(),
    )?;
    let placement = Placement {
        domain: &site.domain,
        domain_dir: site.dir.path(),
        ports: site.ports,
        health_timeout: Duration::from_secs(30),
        labels: HashMap::new(),
        budget: None,
    };
    let scope = ImageScope::unrestricted();
    stack::resolve(
        site.docker.client(),
        &checked,
        &placement,
        pull,
        &scope,
        &site.sink,
    )
    .await
}

/// A reference pushed to the test registry.
struct Pushed {
    /// `127.0.0.1:<port>/<repository>:<tag>`.
    tagged: String,
    /// `127.0.0.1:<port>/<repository>@sha256:…`.
    pinned: String,
}

/// Push the fixture `hostkit-test/web:v1` to `registry` as `<repository>:<tag>`
/// and drop the local tag again (by tag: the image id is shared with other
/// tests). Both references are registered for cleanup.
async fn push_web(site: &Site, registry: &TestRegistry, repository: &str, tag: &str) -> Pushed {
    let docker = site.docker.client();
    let repo = registry.reference(repository);
    let reference = format!("{repo}:{tag}");
    site.docker.register_image(&reference);
    let options = TagImageOptionsBuilder::default()
        .repo(&repo)
        .tag(tag)
        .build();
    docker
        .tag_image("hostkit-test/web:v1", Some(options))
        .await
        .unwrap_or_else(|e| panic!("tag {reference}: {e}"));
    let options = PushImageOptionsBuilder::default().tag(tag).build();
    let mut push = docker.push_image(&repo, Some(options), None);
    let mut digest = None;
    while let Some(answer) = push.next().await {
        let info = answer.unwrap_or_else(|e| panic!("push {reference}: {e}"));
        // `v1: digest: sha256:… size: 734`
        if let Some(rest) = info
            .status
            .as_deref()
            .and_then(|s| s.split_once("digest: "))
        {
            digest = rest.1.split_whitespace().next().map(str::to_string);
        }
    }
    let digest = digest.unwrap_or_else(|| panic!("the push of {reference} reported no digest"));
    let pinned = format!("{repo}@{digest}");
    site.docker.register_image(&pinned);
    assert_eq!(
        registry
            .tags(repository)
            .await
            .expect("list the registry's tags"),
        [tag],
        "the registry does not have {reference} after the push"
    );
    docker
        .remove_image(
            &reference,
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("untag {reference}: {e}"));
    assert_eq!(
        images::image_id(docker, &reference).await.expect("inspect"),
        None,
        "{reference} is still present locally"
    );
    Pushed {
        tagged: reference,
        pinned,
    }
}

#[tokio::test]
async fn an_image_missing_locally_is_pulled_from_the_registry_and_serves() {
    let site = Site::new().await;
    let registry = TestRegistry::new().await;
    let repository = format!("{}/web", site.docker.unique_name("pull"));
    let pushed = push_web(&site, &registry, &repository, "v1").await;
    let reference = pushed.tagged.clone();
    let compose = web_only("v1", 1).replace("hostkit-test/web:v1", &reference);

    // Without pulls the image is missing.
    let err = spec_with(&site, &compose, PullPolicy::Never)
        .await
        .expect_err("not pulled under PullPolicy::Never");
    assert_eq!(err.code(), "image.missing", "{err}");
    assert_eq!(
        images::image_id(site.docker.client(), &reference)
            .await
            .unwrap(),
        None
    );

    // A reference pinned by digest is pulled by digest (it creates no tag).
    let pinned = web_only("v1", 1).replace("hostkit-test/web:v1", &pushed.pinned);
    let pinned_spec = spec_with(&site, &pinned, PullPolicy::Missing)
        .await
        .expect("resolve the pinned reference with pulls");
    assert!(
        site.sink
            .reports()
            .iter()
            .any(|r| matches!(r, Progress::ImageLoaded { reference: r } if *r == pushed.pinned)),
        "no ImageLoaded report for {}",
        pushed.pinned
    );
    assert_eq!(
        images::image_id(site.docker.client(), &reference)
            .await
            .unwrap(),
        None
    );

    let spec = spec_with(&site, &compose, PullPolicy::Missing)
        .await
        .expect("resolve with pulls");
    let reports = site.sink.reports();
    assert!(
        reports
            .iter()
            .any(|r| matches!(r, Progress::ImageLoaded { reference: r } if *r == reference)),
        "no ImageLoaded report for {reference}: {reports:?}"
    );
    for report in &reports {
        if let Progress::ImagePull { reference: r, .. } = report {
            assert_eq!(*r, reference, "{report:?}");
        }
    }
    let pulled = images::image_id(site.docker.client(), &reference)
        .await
        .expect("inspect")
        .expect("the image is present after the pull");
    assert_eq!(spec.service("web").expect("web").image_id, pulled);
    assert_eq!(pinned_spec.service("web").expect("web").image_id, pulled);

    let applied = site.engine.apply(&spec, &site.sink).await.expect("deploy");
    let web = &applied.services["web"].replicas[0];
    let inspect = site
        .docker
        .client()
        .inspect_container(&web.id, None)
        .await
        .expect("inspect web");
    assert_eq!(
        inspect
            .config
            .and_then(|c| c.labels)
            .and_then(|l| l.get("com.docker.compose.image").cloned()),
        Some(reference.clone())
    );
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

#[tokio::test]
async fn a_tag_the_registry_does_not_have_is_image_missing_and_touches_nothing() {
    let site = Site::new().await;
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");
    let before = site.containers().await;

    let registry = TestRegistry::new().await;
    let repository = format!("{}/web", site.docker.unique_name("nopull"));
    push_web(&site, &registry, &repository, "v1").await;
    let absent = format!("{}:v9", registry.reference(&repository));
    site.docker.register_image(&absent);
    let compose = web_only("v1", 1).replace("hostkit-test/web:v1", &absent);

    let err = spec_with(&site, &compose, PullPolicy::Missing)
        .await
        .expect_err("a tag the registry lacks");
    assert_eq!(err.code(), "image.missing", "{err}");
    assert!(err.to_string().contains(&absent), "{err}");
    assert!(
        !site
            .sink
            .reports()
            .iter()
            .any(|r| matches!(r, Progress::ImageLoaded { reference } if *reference == absent)),
        "reported {absent} as loaded"
    );
    assert_eq!(
        images::image_id(site.docker.client(), &absent)
            .await
            .unwrap(),
        None
    );
    assert_eq!(site.containers().await, before);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}

/// A registry that does not answer is not "a missing image": the job
/// fails `image.pull_failed`, saying which reference and why, with a hint
/// about the registry, and the running stack is untouched.
#[tokio::test]
async fn a_registry_that_does_not_answer_is_image_pull_failed_and_touches_nothing() {
    let site = Site::new().await;
    site.deploy(&web_only("v1", 1)).await.expect("deploy v1");
    let before = site.containers().await;

    // Nothing listens on this port (the engine treats 127.0.0.1 registries
    // as insecure ones, so it tries plain HTTP and is refused).
    let closed = hostkit_tests::free_port();
    let reference = format!(
        "127.0.0.1:{closed}/{}/web:v1",
        site.docker.unique_name("gone")
    );
    site.docker.register_image(&reference);
    let compose = web_only("v1", 1).replace("hostkit-test/web:v1", &reference);

    let err = spec_with(&site, &compose, PullPolicy::Missing)
        .await
        .expect_err("an unreachable registry");
    assert_eq!(err.code(), "image.pull_failed", "{err}");
    assert!(err.to_string().contains(&reference), "{err}");
    assert!(err.hint().contains("registry"), "{}", err.hint());
    assert_eq!(site.containers().await, before);
    assert_eq!(
        site.get("/").await.expect("through nginx"),
        (200, "web v1\n".to_string())
    );
}
