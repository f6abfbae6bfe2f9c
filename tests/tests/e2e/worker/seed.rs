//! The seed's own files (the user's original feature request,
//! `shared/SEED-compose-proposal.md`) deploy unchanged: its example compose
//! file — `version: "3.8"`, the main service marked only by the labels
//! `hostkit.expose` / `hostkit.port` (no `ports:`), short `depends_on`, list
//! environments, a named volume and `networks: default: name:` — with
//! images built by the harness under the seed's image names.

use hostkit_tests::fixtures;

use super::env::{Env, succeeded_version};

/// The seed's "Configuration Example", byte for byte.
const SEED_COMPOSE: &str = r#"version: "3.8"
services:
    web:
        image: example.com-web:latest
        depends_on:
            - api
        labels:
            - "hostkit.expose=true"
            - "hostkit.port=3000"

    api:
        image: example.com-api:latest
        depends_on:
            - db
        environment:
            - DATABASE_URL=postgresql://db:5432/app

    db:
        image: postgres:15
        volumes:
            - db_data:/var/lib/postgresql/data
        environment:
            - POSTGRES_PASSWORD=secret

volumes:
    db_data:

networks:
    default:
        name: example-com-network
"#;

#[tokio::test]
async fn the_seeds_example_compose_file_deploys_unchanged() {
    let env = Env::new().await;
    let images = vec![
        fixtures::http_as("example.com-web:latest", "web", "seed", 3000),
        fixtures::http_as("example.com-api:latest", "api", "seed", 8080),
        fixtures::db().retag("postgres:15"),
    ];
    for image in &images {
        for tag in image.tags() {
            env.docker.register_image(tag.clone());
        }
    }
    let upload = env.upload("seed", images).await;
    let domain = env.domain();
    let (done, events) = env
        .run(&env.deploy_job(&domain, SEED_COMPOSE, vec![upload.clone()]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");

    // nginx fronts `web` on the labelled port, which HostKit published itself.
    assert_eq!(env.get(&domain).await, (200, "web seed\n".into()));
    let said = serde_json::to_string(&events).expect("json");
    assert!(
        said.contains("main service `web` (labelled hostkit.expose / hostkit.port), port 3000 (its hostkit.port label)"),
        "the check step says which service nginx fronts: {said}"
    );
    // config.json as the seed shows it.
    let config: hostkit_proto::view::DomainConfig = serde_json::from_slice(
        &std::fs::read(env.domain_dir(&domain).join("config.json")).expect("config.json"),
    )
    .expect("the seed's schema");
    assert_eq!(config.kind, hostkit_proto::view::SiteKind::Compose);
    assert_eq!(config.main_service.as_deref(), Some("web"));
    assert_eq!(config.network, "example-com-network");
    assert_eq!(config.current_version.as_deref(), Some("v1"));
    assert_eq!(config.versions, ["v1"]);
    let web = &config.services["web"];
    assert!(web.exposed && web.internal_port == Some(3000) && web.external_port.is_some());
    assert!(!config.services["api"].exposed && !config.services["db"].exposed);
    assert!(
        config
            .compose_file
            .ends_with(&format!("{domain}/docker-compose.yml"))
    );
    assert!(
        env.domain_dir(&domain)
            .join("docker-compose.v1.yml")
            .exists()
    );

    // The default network carries the seed's name and belongs to the stack.
    let network = env
        .docker
        .client()
        .inspect_network("example-com-network", None)
        .await
        .expect("the seed's network exists");
    let labels = network.labels.unwrap_or_default();
    assert_eq!(
        labels.get("com.docker.compose.project").map(String::as_str),
        Some(domain.token().as_str())
    );
    // Its services joined it.
    let containers = network.containers.unwrap_or_default();
    assert_eq!(containers.len(), 3, "{containers:?}");

    // A second domain deploying the same file cannot take the network over.
    let other = env.domain();
    let (failed, _) = env
        .run(&env.deploy_job(&other, SEED_COMPOSE, vec![upload]))
        .await;
    let (code, message) = super::env::failure(&failed);
    assert_eq!(code, hostkit_proto::ErrorCode::PolicyDenied, "{message}");
    assert!(
        message.contains("[resource-owner]") && message.contains("example-com-network"),
        "{message}"
    );
}
