//! Health events from the engine's event stream (not from polling):
//! healthy, unhealthy, exited, oom, restarting, per service of each domain.
//! At startup, what SQLite says runs is compared with what the engine runs,
//! and every difference is reported the same way.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_deploy::engine::observe::{self, HealthChange, Observed};
use hostkit_proto::{Domain, EventKind};

use super::Worker;
use crate::shutdown::Shutdown;

/// The event an observed change becomes.
pub fn event_of(observed: Observed) -> EventKind {
    let Observed {
        service,
        replica,
        container,
        change,
        ..
    } = observed;
    match change {
        HealthChange::Healthy => EventKind::Healthy {
            service,
            replica,
            container,
        },
        HealthChange::Unhealthy => EventKind::Unhealthy {
            service,
            replica,
            container,
        },
        HealthChange::Exited { exit_code } => EventKind::Exited {
            service,
            replica,
            container,
            exit_code,
        },
        HealthChange::Oom => EventKind::Oom {
            service,
            replica,
            container,
        },
        HealthChange::Restarting => EventKind::Restarting {
            service,
            replica,
            container,
        },
    }
}

/// Forward engine events as health events until `shutdown`.
pub async fn run(worker: Arc<Worker>, mut shutdown: Shutdown) {
    while !shutdown.is_shutdown() {
        let mut changes = Box::pin(observe::watch(&worker.docker));
        loop {
            tokio::select! {
                _ = shutdown.recv() => return,
                next = changes.next() => match next {
                    Some(Ok(observed)) => {
                        let Ok(domain) = observed.domain.parse::<Domain>() else { continue };
                        let kind = event_of(observed);
                        if let Some(service) = kind.health_service() {
                            let healthy = matches!(kind, EventKind::Healthy { .. });
                            worker.metrics.service_health(domain.as_str(), service, healthy);
                        }
                        if let Err(error) = worker.events.emit(Some(&domain), None, kind).await {
                            tracing::warn!(%error, "health event not recorded");
                        }
                    }
                    Some(Err(error)) => {
                        tracing::warn!(%error, "engine event stream broke; re-subscribing");
                        break;
                    }
                    None => break,
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.recv() => return,
        }
    }
}

/// Compare each domain's current version with what runs, and report every
/// service that is missing or not running as a health event.
pub async fn reconcile(worker: &Worker) {
    let domains = match worker.store.domains().await {
        Ok(domains) => domains,
        Err(error) => {
            tracing::warn!(%error, "cannot reconcile: store unreadable");
            return;
        }
    };
    for record in domains {
        let Ok(Some(current)) = worker.store.current_version(record.domain.clone()).await else {
            continue;
        };
        let inventory = match Inventory::load(&worker.docker, &record.domain.token()).await {
            Ok(inventory) => inventory,
            Err(error) => {
                tracing::warn!(%error, "cannot reconcile: engine unreadable");
                return;
            }
        };
        for recorded in &current.services {
            let (service, replicas) = (&recorded.service, &recorded.replicas);
            let running = inventory
                .services
                .get(service)
                .map(|c| c.iter().filter(|c| c.is_running()).count())
                .unwrap_or(0);
            if running >= *replicas as usize {
                continue;
            }
            tracing::warn!(domain = %record.domain, service, running, wanted = replicas, "stack differs from its recorded version");
            let container = inventory
                .services
                .get(service)
                .and_then(|c| c.iter().find(|c| !c.is_running()))
                .map(|c| c.name.clone())
                .unwrap_or_else(|| format!("{}-{service}-1 (missing)", record.domain.token()));
            let kind = EventKind::Exited {
                service: service.clone(),
                replica: None,
                container,
                exit_code: None,
            };
            let _ = worker.events.emit(Some(&record.domain), None, kind).await;
        }
    }
}
