//! `run(config, shutdown)`: connect to NATS and the Docker Engine, open the
//! store, and serve until `shutdown` turns true. The binary passes a signal
//! (SIGTERM/SIGINT); tests pass their own.

use hostkit_proto::sign::seal::XKey;

use crate::config::{Config, ConfigError};
use crate::runtime::image_stores::PrivateBucket;
use crate::runtime::{ServeError, Settings, Startup, serve};
use crate::shutdown::Shutdown;
use crate::store::{Store, StoreError};

/// Why the worker stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The configuration cannot be turned into connections.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// NATS did not accept the connection.
    #[error("cannot connect to NATS at {servers}: {message}")]
    Nats {
        /// The configured servers (passwords hidden).
        servers: String,
        /// What the client said.
        message: String,
    },
    /// No Docker Engine.
    #[error(transparent)]
    Docker(#[from] hostkit_deploy::docker::DockerError),
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The runtime failed.
    #[error(transparent)]
    Serve(#[from] ServeError),
    /// The sealing key could not be loaded or made.
    #[error(transparent)]
    SealKey(#[from] crate::seal_key::SealKeyError),
}

/// The runtime's settings from the validated configuration.
pub fn settings(config: &Config, seal_key: Option<XKey>) -> Settings {
    Settings {
        domains_root: config.domains_root.clone(),
        ports: config.ports,
        retention: config.jobs.keep_versions as usize,
        health_timeout: config.jobs.health_timeout,
        allow_pull: config.security.allow_registry_pulls,
        image_dir: config.security.image_dir.clone(),
        exec_domains: config.security.exec_domains.clone(),
        metrics_listen: config.metrics_listen,
        image_buckets: config
            .security
            .image_buckets
            .iter()
            .map(|b| PrivateBucket {
                bucket: b.bucket.clone(),
                domains: b.domains.clone(),
            })
            .collect(),
        stream_bounds: config.streams,
        policy: config.policy.clone(),
        stack_limits: config.stack_limits.clone(),
        trusted_keys: config.security.trusted_keys(),
        require_signed: config.security.signing_required(),
        max_lanes: config.jobs.lanes,
        grace: config.jobs.shutdown_grace,
        drain: config.jobs.drain_time,
        seal_key,
    }
}

/// Run the worker described by `config` until `shutdown`.
pub async fn run(config: Config, shutdown: impl Into<Shutdown>) -> Result<(), RunError> {
    let shutdown: Shutdown = shutdown.into();
    let servers = config
        .nats
        .urls
        .iter()
        .map(|u| u.redacted())
        .collect::<Vec<_>>()
        .join(", ");
    let options = config.connect_options()?;
    let nats = options
        .connect(config.nats_servers())
        .await
        .map_err(|e| RunError::Nats {
            servers: servers.clone(),
            message: e.to_string(),
        })?;
    tracing::info!(node = %config.node, %servers, "connected to NATS");
    let docker = hostkit_deploy::docker::connect().await?;
    let store = Store::open(&config.database_path()).await?;
    let data_dir = config.data_dir.clone();
    let seal_key = tokio::task::spawn_blocking(move || crate::seal_key::load_or_create(&data_dir))
        .await
        .map_err(|e| crate::seal_key::SealKeyError {
            path: config.data_dir.join(crate::seal_key::SEAL_KEY_FILE),
            message: e.to_string(),
        })??;
    let startup = Startup {
        node: config.node.clone(),
        names: config.names.clone(),
        nats,
        docker,
        store,
        proxy: config.proxy.clone(),
        tls: config.tls.clone(),
        settings: settings(&config, Some(seal_key)),
    };
    serve(startup, shutdown).await?;
    Ok(())
}
