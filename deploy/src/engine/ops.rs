//! Operations on a running stack that are not "apply a spec": restart, stop,
//! remove (each with the services' `pre_stop` and `post_start` hooks where
//! Compose runs them), and the current replicas of a service. (Start and
//! scale are applies of the current spec, see `apply`.)

use futures_util::future::join_all;
use tokio::time::Instant;

use super::Engine;
use super::apply::{replica_of, upstreams_of};
use super::container::{self, Replica};
use super::health::{self, LOG_TAIL_LINES};
use super::hooks;
use super::inventory::Inventory;
use super::resources;
use super::spec::StackSpec;
use crate::error::{DeployError, FailureReason, ServiceFailure};
use crate::progress::{Progress, ProgressSink, ServiceState};
use hostkit_proto::Domain;

impl Engine {
    /// Restart one service (or every service), then wait until each replica
    /// is ready again.
    pub async fn restart(
        &self,
        stack: &StackSpec,
        service: Option<&str>,
        sink: &dyn ProgressSink,
    ) -> Result<(), DeployError> {
        if let Some(name) = service {
            if stack.service(name).is_none() {
                return Err(DeployError::UnknownService {
                    service: name.into(),
                });
            }
        }
        self.ensure_budget(stack, sink).await?;
        let inventory = Inventory::load(&self.docker, &stack.project).await?;
        let deadline = Instant::now() + stack.health_timeout;
        let mut failures = Vec::new();
        for spec in stack
            .services
            .iter()
            .filter(|s| service.is_none_or(|n| n == s.name))
        {
            let replicas = inventory
                .services
                .get(&spec.name)
                .cloned()
                .unwrap_or_default();
            if !replicas.is_empty() {
                super::binds::guard(stack, spec).await?;
            }
            for replica in &replicas {
                // As in Compose: `pre_stop` before, `post_start` after.
                if replica.is_running() {
                    hooks::pre_stop(&self.docker, spec, &replica.id, &replica.name, sink).await;
                }
                container::restart(&self.docker, &replica.id, spec.stop_timeout).await?;
                hooks::post_start(&self.docker, spec, &replica.id, &replica.name, deadline).await?;
                sink.report(Progress::Service {
                    service: spec.name.clone(),
                    replica: replica.number,
                    state: ServiceState::Restarted,
                });
            }
            let waits = replicas
                .iter()
                .map(|r| health::wait_ready(&self.docker, &r.id, spec.ready_when, deadline));
            for (replica, result) in replicas.iter().zip(join_all(waits).await) {
                match result? {
                    Ok(()) => sink.report(Progress::Service {
                        service: spec.name.clone(),
                        replica: replica.number,
                        state: ServiceState::Healthy,
                    }),
                    Err(not_ready) => failures.push(ServiceFailure {
                        service: spec.name.clone(),
                        reason: FailureReason::NotReady(not_ready),
                        log_tail: health::log_tail(&self.docker, &replica.id, LOG_TAIL_LINES).await,
                    }),
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(DeployError::HealthGate { failures })
        }
    }

    /// Stop every container of the stack (they stay, with their data), each
    /// after its service's `pre_stop` hooks and with its stop grace period.
    pub async fn stop(
        &self,
        stack: &StackSpec,
        sink: &dyn ProgressSink,
    ) -> Result<(), DeployError> {
        let inventory = Inventory::load(&self.docker, &stack.project).await?;
        let stops = inventory.all().map(|c| async move {
            let service = stack.service(&c.service);
            if let Some(service) = service.filter(|_| c.is_running()) {
                hooks::pre_stop(&self.docker, service, &c.id, &c.name, sink).await;
            }
            let grace = service.and_then(|s| s.stop_timeout);
            container::stop(&self.docker, &c.id, grace).await?;
            sink.report(Progress::Service {
                service: c.service.clone(),
                replica: c.number,
                state: ServiceState::Stopped,
            });
            Ok::<_, DeployError>(())
        });
        join_all(stops).await.into_iter().collect()
    }

    /// Remove the stack of `stack` as [`Engine::remove`] does, after each
    /// running container's `pre_stop` hooks (its service's in `stack`, the
    /// current version), and the files HostKit wrote for it.
    pub async fn remove_stack(
        &self,
        stack: &StackSpec,
        purge_volumes: bool,
        sink: &dyn ProgressSink,
    ) -> Result<(), DeployError> {
        let inventory = Inventory::load(&self.docker, &stack.project).await?;
        let hooks = inventory.all().filter(|c| c.is_running()).filter_map(|c| {
            let service = stack.service(&c.service)?;
            Some(hooks::pre_stop(&self.docker, service, &c.id, &c.name, sink))
        });
        join_all(hooks).await;
        self.remove(&stack.domain, &stack.project, purge_volumes, sink)
            .await?;
        super::files::remove_all(&stack.domain_dir).await
    }

    /// Remove the stack: containers, networks, nginx file, its parent cgroup
    /// (once empty); named volumes only when `purge_volumes`. No hook runs
    /// (see [`Engine::remove_stack`]).
    pub async fn remove(
        &self,
        domain: &Domain,
        project: &str,
        purge_volumes: bool,
        sink: &dyn ProgressSink,
    ) -> Result<(), DeployError> {
        if let Some(proxy) = &self.proxy {
            proxy.remove(domain).await?;
        }
        let inventory = Inventory::load(&self.docker, project).await?;
        for c in inventory.all() {
            container::remove(&self.docker, &c.id, None).await?;
            sink.report(Progress::Service {
                service: c.service.clone(),
                replica: c.number,
                state: ServiceState::Removed,
            });
        }
        resources::remove_networks(&self.docker, project).await?;
        if purge_volumes {
            resources::remove_volumes(&self.docker, project).await?;
        }
        self.remove_budget(project, sink).await;
        Ok(())
    }

    /// The replicas of each service of `stack` as they run now.
    pub async fn replicas(
        &self,
        stack: &StackSpec,
    ) -> Result<Vec<(String, Vec<Replica>)>, DeployError> {
        let inventory = Inventory::load(&self.docker, &stack.project).await?;
        Ok(stack
            .services
            .iter()
            .map(|s| {
                let replicas = inventory
                    .services
                    .get(&s.name)
                    .map(|e| e.iter().map(|e| replica_of(e, s)).collect());
                (s.name.clone(), replicas.unwrap_or_default())
            })
            .collect())
    }

    /// Re-point nginx at the main service's current replicas.
    pub async fn switch_proxy(&self, stack: &StackSpec) -> Result<Vec<String>, DeployError> {
        let (Some(main), Some(proxy)) = (&stack.main_service, &self.proxy) else {
            return Ok(Vec::new());
        };
        let replicas = self.replicas(stack).await?;
        let upstreams = replicas
            .iter()
            .find(|(name, _)| name == main)
            .map(|(_, r)| upstreams_of(r))
            .unwrap_or_default();
        if !upstreams.is_empty() {
            proxy
                .switch(&stack.domain, &upstreams, &stack.redirects)
                .await?;
        }
        Ok(upstreams)
    }
}
