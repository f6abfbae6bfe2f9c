//! The running worker: JetStream setup, the event publisher, job intake and
//! lanes, heartbeats, the health monitor, control replies and the
//! certificate keeper, all stopped by one shutdown signal that the caller owns (`serve(startup, shutdown)`).

pub mod aftercare;
pub mod backup_store;
pub mod budgets;
pub mod control;
pub mod events;
pub mod heartbeat;
pub mod housekeeping;
pub mod image_stores;
pub mod intake;
pub mod job;
pub mod lanes;
pub mod metrics;
pub mod monitor;
pub mod placement;
pub mod progress;
pub mod setup;
pub mod tls;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, kv};
use bollard::Docker;
use hostkit_deploy::cgroup::{Enforcement, StackLimits};
use hostkit_deploy::engine::{Engine, EngineOptions};
use hostkit_deploy::policy::Policy;
use hostkit_deploy::proxy::{Proxy, ProxyConfig};
use hostkit_deploy::tls::{Acme, AcmeConfig};
use hostkit_proto::{EventKind, Names, NodeId};
use tokio::sync::watch;

use crate::shutdown::Shutdown;
use crate::store::{PortPool, Store};
use events::Events;

/// Settings the job handlers and lanes read.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The worker's curve key: sealed env values are opened with it
    /// (`None`: this worker takes plain env only).
    pub seal_key: Option<hostkit_proto::sign::seal::XKey>,
    /// `<domains_root>/<domain>/`: bind mounts, env files, on-disk view.
    pub domains_root: PathBuf,
    /// Where domains' port blocks come from.
    pub ports: PortPool,
    /// Versions kept per domain.
    pub retention: usize,
    /// Health gate deadline when the job does not set one.
    pub health_timeout: Duration,
    /// Whether `registry` image sources may be pulled.
    pub allow_pull: bool,
    /// The only directory a job's image `path:` may name (`None`: none may).
    pub image_dir: Option<PathBuf>,
    /// The domains whose one-off commands (`exec` jobs) may run.
    pub exec_domains: Vec<hostkit_proto::sign::DomainPattern>,
    /// Tenants' private image buckets, by domain.
    pub image_buckets: Vec<image_stores::PrivateBucket>,
    /// Bounds of the streams and buckets this worker creates.
    pub stream_bounds: hostkit_proto::subjects::settings::StreamBounds,
    /// The compose policy.
    pub policy: Policy,
    /// Budgets of whole stacks, per domain, and the cgroup root.
    pub stack_limits: StackLimits,
    /// Public nkeys whose job signatures are accepted.
    pub trusted_keys: Vec<hostkit_proto::TrustedKey>,
    /// Refuse unsigned jobs.
    pub require_signed: bool,
    /// Domains whose jobs may run at once.
    pub max_lanes: usize,
    /// How long shutdown waits for running jobs.
    pub grace: Duration,
    /// How long an old replica drains after nginx switched away from it.
    pub drain: Duration,
    /// Where Prometheus metrics are served (`None`: not served).
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// Everything a job handler may use.
pub struct Worker {
    /// This node.
    pub node: NodeId,
    /// Subject and bucket names.
    pub names: Names,
    /// The SQLite store.
    pub store: Store,
    /// Event emitter.
    pub events: Events,
    /// The engine client.
    pub docker: Docker,
    /// The orchestrator.
    pub engine: Engine,
    /// Image blobs: the shared bucket and tenants' private ones.
    pub images: image_stores::ImageStores,
    /// The node's backup bucket.
    pub backups: backup_store::BackupStore,
    /// Prometheus metrics (served when `metrics_listen` is set).
    pub metrics: Arc<metrics::Metrics>,
    /// Domain → node.
    pub placement: kv::Store,
    /// Node registry.
    pub nodes: kv::Store,
    /// Settings.
    pub settings: Settings,
    /// How stack budgets are enforced on this node (from the engine's
    /// cgroup driver, found at startup).
    pub enforcement: Enforcement,
    /// Image blobs loaded since start: `<bucket>/<object>` → (reference, image id)
    /// of each image it held; a blob whose images are all still there is not
    /// streamed again (a redeploy of the same images loads nothing).
    pub loaded_blobs: std::sync::Mutex<
        std::collections::HashMap<String, std::collections::BTreeMap<String, String>>,
    >,
    /// Wakes the certificate keeper (after every job: a new domain or new
    /// redirect domains may need a certificate).
    pub tls_wake: tokio::sync::Notify,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("node", &self.node).finish()
    }
}

/// What `serve` starts from: connections and settings, already made.
#[derive(Debug)]
pub struct Startup {
    /// This node.
    pub node: NodeId,
    /// Subject root.
    pub names: Names,
    /// A connected NATS client.
    pub nats: async_nats::Client,
    /// A connected engine client.
    pub docker: Docker,
    /// The opened store.
    pub store: Store,
    /// nginx, or `None` when this node does not manage a proxy.
    pub proxy: Option<ProxyConfig>,
    /// Certificates over ACME, or `None` when disabled.
    pub tls: Option<AcmeConfig>,
    /// Settings.
    pub settings: Settings,
}

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// JetStream objects could not be set up.
    #[error(transparent)]
    Setup(#[from] setup::SetupError),
    /// The store failed at startup.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The metrics address could not be bound.
    #[error("cannot serve metrics on {addr}")]
    Metrics {
        /// `[metrics] listen`.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Run the worker until `shutdown` turns true; then stop pulling, let
/// running jobs end within the grace period, flush events and return.
pub async fn serve(startup: Startup, shutdown: impl Into<Shutdown>) -> Result<(), ServeError> {
    let shutdown: Shutdown = shutdown.into();
    let Startup {
        node,
        names,
        nats,
        docker,
        store,
        proxy,
        tls,
        settings,
    } = startup;
    let js = jetstream::new(nats.clone());
    setup::check_replicas(&nats, settings.stream_bounds.replicas)?;
    let objects = {
        // NATS may be down at boot: retry until it is back or we are stopped
        // (not when the server refuses the settings themselves).
        let mut backoff = Duration::from_millis(200);
        let mut shutdown = shutdown.clone();
        loop {
            match setup::ensure(
                &js,
                &names,
                &node,
                &settings.image_buckets,
                &settings.stream_bounds,
            )
            .await
            {
                Ok(objects) => break objects,
                Err(error) if error.is_permanent(nats.server_info().cluster.is_some()) => {
                    return Err(error.into());
                }
                Err(error) if !shutdown.is_shutdown() => {
                    tracing::warn!(%error, retry_in = ?backoff, "JetStream not ready");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.recv() => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
                Err(error) => return Err(error.into()),
            }
        }
    };
    let enforcement = Enforcement::detect(&docker, &settings.stack_limits.cgroup_root).await;
    budgets::log_enforcement(&enforcement, &settings.stack_limits);
    let engine = Engine::new(
        docker.clone(),
        proxy.map(Proxy::new),
        EngineOptions {
            drain: settings.drain,
            cgroups: enforcement.tree().cloned(),
        },
    );
    let events = Events::new(node.clone(), names.clone(), store.clone());
    let worker = Arc::new(Worker {
        node: node.clone(),
        names: names.clone(),
        store,
        events: events.clone(),
        docker,
        engine,
        images: objects.images,
        backups: backup_store::BackupStore::new(
            js.clone(),
            names.backups_bucket(&node),
            settings.stream_bounds.replicas,
        ),
        metrics: Default::default(),
        placement: objects.placement,
        nodes: objects.nodes,
        settings,
        enforcement,
        loaded_blobs: Default::default(),
        tls_wake: tokio::sync::Notify::new(),
    });

    let (publisher_stop, publisher_stopped) = watch::channel(false);
    let publisher = {
        let (events, js) = (events.clone(), js.clone());
        tokio::spawn(async move { events.publish_loop(js, publisher_stopped.into()).await })
    };
    let version = env!("CARGO_PKG_VERSION").to_string();
    events
        .emit(None, None, EventKind::Online { version })
        .await?;
    tracing::info!(node = %node, "worker online");

    monitor::reconcile(&worker).await;
    budgets::apply_all(&worker).await;
    let lanes = lanes::Lanes::new(
        Arc::clone(&worker),
        worker.settings.max_lanes,
        shutdown.clone(),
    );
    let mut helpers = tokio::task::JoinSet::new();
    if let Some(addr) = worker.settings.metrics_listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| ServeError::Metrics { addr, source })?;
        let (worker, nats, shutdown) = (Arc::clone(&worker), nats.clone(), shutdown.clone());
        helpers.spawn(async move {
            if let Err(error) = metrics::serve(listener, worker, nats, shutdown).await {
                tracing::error!(%error, "metrics server stopped");
            }
        });
    }
    helpers.spawn(monitor::run(Arc::clone(&worker), shutdown.clone()));
    {
        let worker = Arc::clone(&worker);
        helpers.spawn(async move { placement::adopt_hosted(&worker).await });
    }
    if let Some(requests) = control::subscribe(&worker, &nats).await {
        helpers.spawn(control::run(
            Arc::clone(&worker),
            nats.clone(),
            requests,
            shutdown.clone(),
        ));
    }
    heartbeat::beat(&worker, &lanes).await;
    helpers.spawn(heartbeat::run(
        Arc::clone(&worker),
        Arc::clone(&lanes),
        shutdown.clone(),
    ));
    helpers.spawn(housekeeping::run(Arc::clone(&worker), shutdown.clone()));
    if let Some(tls) = tls {
        helpers.spawn(tls::run(
            Arc::clone(&worker),
            Acme::new(tls),
            shutdown.clone(),
        ));
    }
    intake::resume_interrupted(&worker, &lanes).await;
    intake::run(
        Arc::clone(&worker),
        objects.consumer,
        Arc::clone(&lanes),
        shutdown,
    )
    .await;

    tracing::info!(grace = ?worker.settings.grace, "stopping: waiting for running jobs");
    if tokio::time::timeout(worker.settings.grace, lanes.drain())
        .await
        .is_err()
    {
        tracing::warn!(
            "running jobs did not end within the grace period; they resume after the restart"
        );
    }
    helpers.shutdown().await;
    events.emit(None, None, EventKind::Offline {}).await?;
    let _ = publisher_stop.send(true);
    if tokio::time::timeout(Duration::from_secs(5), publisher)
        .await
        .is_err()
    {
        tracing::warn!("events still unpublished at exit stay in the outbox");
    }
    Ok(())
}
