//! The node-isolation rules of DESIGN §6 that only a worker job exercises,
//! each attack performed through a real worker against the real engine:
//! links planted in a domain directory, a scale past the policy's cap, and
//! a tag another domain re-pointed.

use hostkit_proto::job::ScalePayload;
use hostkit_proto::{ErrorCode, JobSpec};
use hostkit_tests::{TarballBuilder, fixtures};

use super::env::{Env, failure, succeeded_version, web};

#[tokio::test]
async fn links_in_a_domain_directory_are_never_followed_by_the_worker() {
    let env = Env::new().await;
    let images = env.upload("web", vec![fixtures::web("v1")]).await;
    let (victim, attacker) = (env.domain(), env.domain());
    let victim_dir = env.domain_dir(&victim);
    let attacker_dir = env.domain_dir(&attacker);
    std::fs::create_dir_all(&victim_dir).expect("victim dir");
    std::fs::create_dir_all(&attacker_dir).expect("attacker dir");
    let secret = "victim-secret-4242";
    std::fs::write(victim_dir.join(".env"), format!("SECRET={secret}\n")).expect(".env");

    // The attacker's .env is a link to the victim's.
    std::os::unix::fs::symlink(victim_dir.join(".env"), attacker_dir.join(".env")).expect("link");
    let compose = format!(
        "{}    environment:\n      LEAK: ${{SECRET:-none}}\n",
        web("hostkit-test/web:v1")
    );
    let (failed, events) = env
        .run(&env.deploy_job(&attacker, &compose, vec![images.clone()]))
        .await;
    let (code, message) = failure(&failed);
    assert_eq!(code, ErrorCode::PolicyDenied, "{message}");
    assert!(message.contains("symbolic link"), "{message}");
    let all = serde_json::to_string(&events).expect("json");
    assert!(
        !all.contains(secret),
        "the victim's secret reached an event"
    );
    assert!(
        env.image_ids(&attacker).await.is_empty(),
        "no container was created"
    );

    // An env_file that is a FIFO neither blocks the lane nor is read.
    std::fs::remove_file(attacker_dir.join(".env")).expect("unlink");
    let fifo = attacker_dir.join("app.env");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo")
            .success()
    );
    let with_fifo = format!("{}    env_file: ./app.env\n", web("hostkit-test/web:v1"));
    let (failed, _) = env
        .run(&env.deploy_job(&attacker, &with_fifo, vec![images.clone()]))
        .await;
    let (code, message) = failure(&failed);
    assert_eq!(code, ErrorCode::ComposeInvalid, "{message}");
    assert!(message.contains("not a regular file"), "{message}");

    // The on-disk view replaces a planted link instead of writing through it.
    std::os::unix::fs::symlink(victim_dir.join(".env"), attacker_dir.join("config.json"))
        .expect("link");
    std::os::unix::fs::symlink(
        victim_dir.join(".env"),
        attacker_dir.join("docker-compose.yml"),
    )
    .expect("link");
    let (done, _) = env
        .run(&env.deploy_job(&attacker, &compose, vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert_eq!(
        std::fs::read_to_string(victim_dir.join(".env")).expect("victim .env"),
        format!("SECRET={secret}\n"),
        "the victim's file is untouched"
    );
    for name in ["config.json", "docker-compose.yml"] {
        let meta = std::fs::symlink_metadata(attacker_dir.join(name)).expect(name);
        assert!(meta.is_file(), "{name} is a regular file again");
    }
}

#[tokio::test]
async fn a_scale_job_cannot_pass_the_policy_caps() {
    let env = Env::with_settings(|s| s.policy.max_replicas = Some(2)).await;
    let images = env.upload("web", vec![fixtures::web("v1")]).await;
    let domain = env.domain();
    let (done, _) = env
        .run(&env.deploy_job(&domain, &web("hostkit-test/web:v1"), vec![images]))
        .await;
    assert_eq!(succeeded_version(&done), 1);

    let scale = |replicas| {
        env.job(
            &domain,
            JobSpec::Scale(ScalePayload {
                service: "web".into(),
                replicas,
            }),
        )
    };
    let (failed, _) = env.run(&scale(5)).await;
    let (code, message) = failure(&failed);
    assert_eq!(code, ErrorCode::PolicyDenied, "{message}");
    assert!(message.contains("[replicas]"), "{message}");
    assert_eq!(env.image_ids(&domain).await.len(), 1, "still one replica");
    let (done, _) = env.run(&scale(2)).await;
    assert_eq!(succeeded_version(&done), 1, "within the cap: {done:?}");
}

#[tokio::test]
async fn a_tag_another_domain_repointed_never_changes_what_a_domain_runs() {
    let env = Env::new().await;
    let (owner, other) = (env.domain(), env.domain());
    let tag = format!("hktest-{}/app:1", owner.token());
    env.docker.register_image(tag.clone());
    let write = |name: &str, version: &str| {
        let path = env.dir.path().join(format!("{name}.tar"));
        TarballBuilder::new()
            .image(fixtures::web(version).retag(&tag))
            .write_to(&path)
            .expect("tarball");
        path
    };
    let (mine, theirs) = (write("mine", "v1"), write("theirs", "v2"));
    let mine = hostkit_tests::worker::upload_tarball(&env.js, &env.worker.names, &mine).await;
    let theirs = hostkit_tests::worker::upload_tarball(&env.js, &env.worker.names, &theirs).await;
    let compose = web(&tag);

    let (done, _) = env.run(&env.deploy_job(&owner, &compose, vec![mine])).await;
    assert_eq!(succeeded_version(&done), 1);
    assert_eq!(env.get(&owner).await, (200, "web v1\n".into()));
    let running = env.image_ids(&owner).await;

    // Another domain loads a tarball that re-points the same tag.
    let (done, _) = env
        .run(&env.deploy_job(&other, &compose, vec![theirs]))
        .await;
    assert_eq!(succeeded_version(&done), 1);
    assert_eq!(env.get(&other).await, (200, "web v2\n".into()));

    // A deploy of the owner that ships no images does not take the other
    // domain's image for its own.
    let (failed, _) = env.run(&env.deploy_job(&owner, &compose, Vec::new())).await;
    let (code, message) = failure(&failed);
    assert_eq!(code, ErrorCode::PolicyDenied, "{message}");
    assert!(message.contains("[foreign-image]"), "{message}");
    assert_eq!(env.get(&owner).await, (200, "web v1\n".into()));
    assert_eq!(env.image_ids(&owner).await, running);

    // Jobs that re-apply the owner's version run its recorded image.
    let (done, _) = env
        .run(&env.job(&owner, JobSpec::Restart(Default::default())))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert_eq!(env.get(&owner).await, (200, "web v1\n".into()));
}
