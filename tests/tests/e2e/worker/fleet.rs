//! Fleet trust (DESIGN §6 "Across the fleet"): what one identity with
//! access to the shared NATS account can do to another domain's jobs.
//! Each test performs the attack against a real nats-server and worker.

use hostkit_proto::ErrorCode;
use hostkit_proto::job::ImageSource;
use hostkit_tests::{TarballBuilder, fixtures};

use super::env::{Env, failure, succeeded_version, web};

/// The images bucket is shared and its objects are content-named, but the
/// store does not check names: an identity that may write it stores its
/// own tarball, padded to the same size, under the name of the owner's
/// next tarball. The owner's deploy must fail without loading a byte of
/// it, the object is deleted, and the running version keeps serving.
#[tokio::test]
async fn a_blob_swapped_under_another_tarballs_name_is_never_loaded() {
    let env = Env::new().await;
    let domain = env.domain();
    let v1 = env.upload("v1", vec![fixtures::web("v1")]).await;
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![v1]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");

    // The owner's next tarball, and the attacker's under the same name.
    let owner = env.dir.path().join("owner.tar");
    TarballBuilder::new()
        .image(fixtures::web("v2"))
        .write_to(&owner)
        .expect("owner's tarball");
    let evil_tag = format!("hostkit-test/evil:{}", domain.token());
    env.docker.register_image(evil_tag.clone());
    let evil = env.dir.path().join("evil.tar");
    TarballBuilder::new()
        .image(fixtures::http_as(&evil_tag, "web", "v2", 8080))
        .write_to(&evil)
        .expect("attacker's tarball");
    // Same size: trailing zeros after a tar's end are ignored by readers.
    let (owner_len, evil_len) = (len(&owner), len(&evil));
    pad(&owner, owner_len.max(evil_len));
    pad(&evil, owner_len.max(evil_len));
    let (object, size) =
        match hostkit_tests::worker::upload_tarball(&env.js, &env.worker.names, &owner).await {
            ImageSource::Object { object, size } => (object, size),
            other => panic!("an object source, got {other:?}"),
        };
    let store = env
        .js
        .get_object_store(env.worker.names.images_bucket())
        .await
        .expect("bucket");
    let mut file = tokio::fs::File::open(&evil).await.expect("evil tarball");
    store
        .put(object.as_str(), &mut file)
        .await
        .expect("the attacker overwrites the object");

    let (done, events) = env
        .run(&env.deploy_job(
            &domain,
            &web("hostkit-test/web:v2"),
            vec![ImageSource::Object {
                object: object.clone(),
                size,
            }],
        ))
        .await;
    let (code, message) = failure(&done);
    assert_eq!(code, ErrorCode::ImageLoadFailed, "{message}\n{events:#?}");
    assert!(
        message.contains("does not hold what its name says"),
        "{message}"
    );
    let info = store.info(object.as_str()).await;
    assert!(
        info.as_ref().map_or(true, |i| i.deleted),
        "the swapped object is deleted: {info:?}\n{message}"
    );
    assert!(
        env.docker.client().inspect_image(&evil_tag).await.is_err(),
        "nothing of the attacker's tarball was loaded"
    );
    assert_eq!(env.get(&domain).await, (200, "web v1\n".into()));
}

fn len(path: &std::path::Path) -> u64 {
    std::fs::metadata(path).expect("tarball").len()
}

fn pad(path: &std::path::Path, to: u64) {
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open tarball");
    file.set_len(to).expect("pad with zeros");
}
