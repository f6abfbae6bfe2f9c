//! A handful of the compose corpus's real-world files (`tests/fixtures/corpus/`,
//! see `deploy/tests/corpus.rs`) deployed as written against the real engine
//! and nginx, with busybox images built under the names the files use, and
//! requested through nginx: the main service the rules pick is the one
//! that answers.

use hostkit_tests::{ImageSpec, fixtures};

use super::site::Site;

/// A corpus file's text, unchanged.
fn corpus(file: &str) -> String {
    let path = format!(
        "{}/../tests/fixtures/corpus/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Load `images` (tags registered for removal) into the site's engine.
async fn load(site: &Site, images: Vec<ImageSpec>) {
    for image in &images {
        for tag in image.tags() {
            site.docker.register_image(tag.clone());
        }
    }
    site.docker.load_images(images).await;
}

/// A db-like image that ignores the arguments a file passes (`command:`).
fn db_as(tag: &str) -> ImageSpec {
    fixtures::db().entrypoint(["db-start"]).retag(tag)
}

#[tokio::test]
async fn real_world_compose_files_deploy_as_written_and_serve_through_nginx() {
    let cases: [(&str, Vec<ImageSpec>, &str); 3] = [
        (
            "awesome-compose/gitea-postgres.yaml",
            vec![
                fixtures::http_as("gitea/gitea:latest", "gitea", "corpus", 3000),
                db_as("postgres:alpine"),
            ],
            "gitea corpus\n",
        ),
        (
            "awesome-compose/wordpress-mysql.yaml",
            vec![
                fixtures::http_as("wordpress:latest", "wordpress", "corpus", 80),
                db_as("mariadb:10.6.4-focal"),
            ],
            "wordpress corpus\n",
        ),
        (
            "compose-e2e/ps-test__compose.yaml",
            vec![
                fixtures::http_as("nginx:latest", "nginx", "corpus", 8080),
                // `busybox httpd -f -p 8000` serves the working directory.
                fixtures::http_as("busybox:latest", "busybox", "corpus", 8000).working_dir("/www"),
            ],
            "busybox corpus\n",
        ),
    ];
    for (file, images, body) in cases {
        let site = Site::new().await;
        load(&site, images).await;
        let applied = site
            .deploy(&corpus(file))
            .await
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            !applied.upstreams.is_empty(),
            "{file}: nginx fronts a service"
        );
        let (status, answer) = site.get("/").await.expect("request through nginx");
        assert_eq!((status, answer.as_str()), (200, body), "{file}");
    }
}
