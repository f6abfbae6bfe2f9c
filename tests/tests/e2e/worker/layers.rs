//! Image delivery by layer (DESIGN §11): a layered image source names each
//! image's config and layers as objects; the worker streams into the
//! engine only the layers it lacks, verifying every blob on the way.

use std::time::Duration;

use hostkit_proto::job::{ImageSource, JobSpec, RemovePayload};
use hostkit_proto::{ErrorCode, Event, EventKind};
use hostkit_tests::worker::upload_layers;
use hostkit_tests::{TarballBuilder, fixtures};

use super::env::{Env, failure, succeeded_version, web};

/// A web image with a tag and a files layer of this test's own (so no
/// other test's image holds its top layer); it answers `web <version>`.
fn own_web(tag: &str, version: &str) -> hostkit_tests::ImageSpec {
    fixtures::http_as(tag, "web", version, 8080).file(
        "/etc/hostkit-layer-test",
        format!("{tag} {version}\n"),
        0o644,
    )
}

/// The `layers: …` step message of a deploy's events.
fn layers_step(events: &[Event]) -> String {
    events
        .iter()
        .find_map(|e| match &e.kind {
            EventKind::Step { message, .. } if message.starts_with("layers: ") => {
                Some(message.clone())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no `layers:` step in {events:#?}"))
}

/// `layers: 1 sent (…), 1 already in the engine (…)` → (1, 1).
fn sent_and_skipped(step: &str) -> (usize, usize) {
    let number = |after: &str| -> usize {
        let (_, rest) = step.split_once(after).expect(after);
        rest.split_whitespace()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no count after {after:?} in {step}"))
    };
    let sent = number("layers: ");
    let skipped = number("), ");
    (sent, skipped)
}

async fn upload(env: &Env, name: &str, spec: hostkit_tests::ImageSpec) -> (ImageSource, u64) {
    let path = env.dir.path().join(format!("{name}.tar"));
    TarballBuilder::new()
        .image(spec)
        .write_to(&path)
        .expect("write the tarball");
    upload_layers(&env.js, &env.worker.names.images_bucket(), &path).await
}

/// v1, then v2 whose top layer alone changed: the second upload stores
/// only the new config and layer, the engine is sent only that layer, and
/// the stack serves v2. Then a v3 whose layer object was replaced in the
/// bucket by other bytes of the same size: the job fails
/// `image.load_failed`, the object is deleted, and v2 keeps serving.
#[tokio::test]
async fn a_redeploy_sends_only_the_changed_layer_and_a_swapped_one_changes_nothing() {
    let env = Env::new().await;
    let domain = env.domain();
    let tag = |v: &str| format!("hostkit-test/layers-{}:{v}", domain.token());
    for v in ["v1", "v2", "v3"] {
        env.docker.register_image(tag(v));
    }

    let (v1, first_stored) = upload(&env, "v1", own_web(&tag("v1"), "v1")).await;
    let (done, events) = env
        .run(&env.deploy_job(&domain, &web(&tag("v1")), vec![v1]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}\n{events:#?}");
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));

    let (v2, stored) = upload(&env, "v2", own_web(&tag("v2"), "v2")).await;
    let ImageSource::Layers { layers } = &v2 else {
        panic!("{v2:?}")
    };
    let image = &layers.images[0];
    let top = image.layers.last().expect("a top layer");
    let base = &image.layers[0];
    assert_eq!(
        stored,
        top.size + image.config.size,
        "only v2's config and top layer are new to the bucket"
    );
    assert!(
        stored < first_stored && stored < base.size,
        "{stored} bytes stored"
    );
    let (done, events) = env
        .run(&env.deploy_job(&domain, &web(&tag("v2")), vec![v2.clone()]))
        .await;
    assert_eq!(succeeded_version(&done), 2, "{done:?}\n{events:#?}");
    let step = layers_step(&events);
    assert_eq!(
        sent_and_skipped(&step),
        (1, image.layers.len() - 1),
        "{step}"
    );
    assert!(!step.contains("refused"), "{step}");
    assert_eq!(env.get(&domain).await, (200, "web v2\n".into()));

    // v3's top layer object holds other bytes of the same size.
    let (v3, _) = upload(&env, "v3", own_web(&tag("v3"), "v3")).await;
    let ImageSource::Layers { layers } = &v3 else {
        panic!("{v3:?}")
    };
    let top = layers.images[0].layers.last().expect("a top layer").clone();
    let store = env
        .js
        .get_object_store(env.worker.names.images_bucket())
        .await
        .expect("bucket");
    let forged = vec![b'x'; usize::try_from(top.size).unwrap()];
    store
        .put(top.object.as_str(), &mut forged.as_slice())
        .await
        .expect("replace the object");
    let (done, events) = env
        .run(&env.deploy_job(&domain, &web(&tag("v3")), vec![v3.clone()]))
        .await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::ImageLoadFailed, "{message}\n{events:#?}");
    assert!(
        message.contains("does not hold what its name says"),
        "{message}"
    );
    assert!(
        store
            .info(top.object.as_str())
            .await
            .map_or(true, |info| info.deleted),
        "the swapped object is deleted"
    );
    let id = format!("sha256:{}", layers.images[0].config.object.sha256_hex());
    assert!(
        env.docker.client().inspect_image(&id).await.is_err(),
        "nothing of v3 reached the engine"
    );
    assert_eq!(env.get(&domain).await, (200, "web v2\n".into()));
}

/// A layer the engine no longer holds (its image was removed between
/// deploys) is sent again: the worker asks the engine, not its memory.
#[tokio::test]
async fn a_layer_the_engine_lost_is_sent_again() {
    let env = Env::new().await;
    let domain = env.domain();
    let tag = format!("hostkit-test/layers-{}:v1", domain.token());
    env.docker.register_image(tag.clone());
    // A layer of its own on top, so removing the image removes it.
    let spec = own_web(&tag, "v1").with_padding_layer_seeded(256 * 1024, 0x1a7e);
    let (source, _) = upload(&env, "v1", spec).await;
    let (done, events) = env
        .run(&env.deploy_job(&domain, &web(&tag), vec![source.clone()]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}\n{events:#?}");

    // Remove the stack, then the image with all its tags.
    let (removed, _) = env
        .run(&env.job(
            &domain,
            JobSpec::Remove(RemovePayload {
                purge_volumes: false,
            }),
        ))
        .await;
    assert!(
        matches!(removed.kind, EventKind::Succeeded { .. }),
        "{removed:?}"
    );
    let ImageSource::Layers { layers } = &source else {
        panic!("{source:?}")
    };
    let id = format!("sha256:{}", layers.images[0].config.object.sha256_hex());
    env.docker
        .client()
        .remove_image(
            &id,
            Some(bollard::query_parameters::RemoveImageOptions {
                force: true,
                ..Default::default()
            }),
            None,
        )
        .await
        .expect("remove the image");

    let (done, events) = env
        .run(&env.deploy_job(&domain, &web(&tag), vec![source]))
        .await;
    assert!(
        matches!(done.kind, EventKind::Succeeded { .. }),
        "{done:?}\n{events:#?}"
    );
    let step = layers_step(&events);
    let (sent, _) = sent_and_skipped(&step);
    assert!(sent >= 1, "the lost layer is sent again: {step}");
    assert!(!step.contains("refused"), "{step}");
    tokio::time::timeout(Duration::from_secs(10), async {
        assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
    })
    .await
    .expect("served");
}
