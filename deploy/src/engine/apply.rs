//! Converging a project on a [`StackSpec`]: the heart of deploy, rollback,
//! scale and start.
//!
//! Every service converges in its own future; a service waits for its
//! `depends_on` conditions before it touches anything, so independent
//! services start in parallel. Per service:
//! - same config hash → nothing is touched (stopped replicas are started,
//!   the replica count is adjusted);
//! - changed, start-first → new replicas are created beside the old, must
//!   become ready, nginx is switched (main service), the old drain and go;
//!   if the new ones fail, they are removed and the old keep serving;
//! - changed, stop-first → old replicas go, new ones are created.
//!
//! Services the spec no longer has are removed only after the gate passed.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;

use futures_util::future::join_all;
use tokio::sync::watch;
use tokio::time::Instant;

use super::Engine;
use super::binds;
use super::container::{self, Replica};
use super::files;
use super::health::{self, LOG_TAIL_LINES, Readiness};
use super::hooks;
use super::inventory::{Existing, Inventory};
use super::resources;
use super::spec::{ServiceSpec, StackSpec};
use crate::error::{DeployError, FailureReason, ServiceFailure};
use crate::progress::{Progress, ProgressSink, ServiceState};

/// What happened to one service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Nothing was touched.
    Unchanged,
    /// Replicas were created where none existed.
    Created,
    /// Replicas were replaced because the config changed.
    Recreated,
    /// Replicas were added or removed, or stopped ones started.
    Scaled,
}

/// The outcome for one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceOutcome {
    /// What was done.
    pub change: Change,
    /// Replicas now serving: (container id, name, number, host ports).
    pub replicas: Vec<Replica>,
}

/// The result of a successful apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Every service of the spec.
    pub services: BTreeMap<String, ServiceOutcome>,
    /// Services removed because the spec no longer has them.
    pub removed: Vec<String>,
    /// What nginx routes the domain to (empty without a main service or proxy).
    pub upstreams: Vec<String>,
}

impl Applied {
    /// Whether any container was created, replaced, started or removed.
    pub fn touched_anything(&self) -> bool {
        !self.removed.is_empty()
            || self
                .services
                .values()
                .any(|s| s.change != Change::Unchanged)
    }
}

/// Progress of a service, watched by its dependents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Pending,
    Started,
    Ready,
    Failed,
}

struct Context<'a> {
    engine: &'a Engine,
    stack: &'a StackSpec,
    inventory: &'a Inventory,
    sink: &'a dyn ProgressSink,
    deadline: Instant,
    free_ports: Mutex<BTreeSet<u16>>,
    phases: HashMap<String, watch::Sender<Phase>>,
}

impl Engine {
    /// Converge the project on `stack`. On a failed gate the error lists every
    /// failing service with its log tail; start-first services that failed
    /// keep their old replicas, so the caller can roll back the rest.
    pub async fn apply(
        &self,
        stack: &StackSpec,
        sink: &dyn ProgressSink,
    ) -> Result<Applied, DeployError> {
        let deadline = Instant::now() + stack.health_timeout;
        for service in &stack.services {
            if !service
                .depends_on
                .iter()
                .all(|d| stack.service(&d.service).is_some())
            {
                return Err(DeployError::UnknownService {
                    service: service.name.clone(),
                });
            }
        }
        super::compat::check(&self.docker, stack)?;
        self.ensure_budget(stack, sink).await?;
        sink.report(Progress::Step {
            name: "apply",
            message: format!("converging {} services", stack.services.len()),
        });
        resources::ensure_networks(&self.docker, &stack.project, &stack.networks).await?;
        resources::ensure_volumes(&self.docker, &stack.project, &stack.volumes).await?;
        let inventory = Inventory::load(&self.docker, &stack.project).await?;
        binds::nested_in_running(stack, &inventory)?;

        let used: BTreeSet<u16> = inventory.used_ports().into_iter().collect();
        let free_ports = stack.ports.ports().filter(|p| !used.contains(p)).collect();
        let ctx = Context {
            engine: self,
            stack,
            inventory: &inventory,
            sink,
            deadline,
            free_ports: Mutex::new(free_ports),
            phases: stack
                .services
                .iter()
                .map(|s| (s.name.clone(), watch::channel(Phase::Pending).0))
                .collect(),
        };

        let results = join_all(stack.services.iter().map(|s| ctx.converge(s))).await;
        let mut services = BTreeMap::new();
        let mut failures = Vec::new();
        let mut fatal = None;
        for (service, result) in stack.services.iter().zip(results) {
            match result {
                Ok(outcome) => {
                    services.insert(service.name.clone(), outcome);
                }
                Err(ConvergeError::Gate(failure)) => failures.push(*failure),
                Err(ConvergeError::Fatal(e)) => fatal = fatal.or(Some(e)),
            }
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        if !failures.is_empty() {
            // Root causes first, then the services that waited on them.
            failures.sort_by_key(|f| matches!(f.reason, FailureReason::DependencyFailed { .. }));
            return Err(DeployError::HealthGate { failures });
        }

        let upstreams = match (&stack.main_service, &self.proxy) {
            (Some(main), Some(proxy)) => {
                let upstreams = upstreams_of(
                    services
                        .get(main)
                        .map(|o| o.replicas.as_slice())
                        .unwrap_or(&[]),
                );
                if !upstreams.is_empty()
                    && proxy
                        .switch(&stack.domain, &upstreams, &stack.redirects)
                        .await?
                {
                    sink.report(Progress::ProxySwitched {
                        upstreams: upstreams.clone(),
                    });
                }
                upstreams
            }
            _ => Vec::new(),
        };

        let mut removed = Vec::new();
        for (name, replicas) in &inventory.services {
            if stack.service(name).is_none() {
                for old in replicas {
                    container::remove(&self.docker, &old.id, None).await?;
                    sink.report(Progress::Service {
                        service: name.clone(),
                        replica: old.number,
                        state: ServiceState::Removed,
                    });
                }
                removed.push(name.clone());
            }
        }
        files::retain(stack).await?;
        Ok(Applied {
            services,
            removed,
            upstreams,
        })
    }
}

/// `127.0.0.1:<port>` of each replica's first published port.
pub(crate) fn upstreams_of(replicas: &[Replica]) -> Vec<String> {
    replicas
        .iter()
        .filter_map(|r| r.host_ports.first())
        .map(|p| format!("127.0.0.1:{p}"))
        .collect()
}

enum ConvergeError {
    Gate(Box<ServiceFailure>),
    Fatal(DeployError),
}

impl From<DeployError> for ConvergeError {
    fn from(e: DeployError) -> Self {
        ConvergeError::Fatal(e)
    }
}

impl From<crate::docker::DockerError> for ConvergeError {
    fn from(e: crate::docker::DockerError) -> Self {
        ConvergeError::Fatal(e.into())
    }
}

impl Context<'_> {
    fn set_phase(&self, service: &str, phase: Phase) {
        if let Some(tx) = self.phases.get(service) {
            tx.send_replace(phase);
        }
    }

    async fn converge(&self, service: &ServiceSpec) -> Result<ServiceOutcome, ConvergeError> {
        let result = self.converge_inner(service).await;
        self.set_phase(
            &service.name,
            if result.is_ok() {
                Phase::Ready
            } else {
                Phase::Failed
            },
        );
        result
    }

    async fn converge_inner(&self, service: &ServiceSpec) -> Result<ServiceOutcome, ConvergeError> {
        self.wait_for_dependencies(service).await?;
        let existing = self
            .inventory
            .services
            .get(&service.name)
            .cloned()
            .unwrap_or_default();
        let stale = existing
            .iter()
            .any(|e| e.config_hash != service.config_hash);
        if existing.is_empty() {
            let replicas = self
                .create_replicas(service, service.replicas, &[], true)
                .await?;
            self.set_phase(&service.name, Phase::Started);
            self.wait_ready(service, &replicas).await?;
            Ok(ServiceOutcome {
                change: Change::Created,
                replicas,
            })
        } else if !stale {
            self.rescale(service, existing).await
        } else if service.start_first && service.container_name.is_none() {
            self.replace_start_first(service, existing).await
        } else {
            self.replace_stop_first(service, existing).await
        }
    }

    async fn wait_for_dependencies(&self, service: &ServiceSpec) -> Result<(), ConvergeError> {
        for dependency in &service.depends_on {
            let Some(tx) = self.phases.get(&dependency.service) else {
                continue;
            };
            let mut rx = tx.subscribe();
            let wanted = |p: &Phase| match dependency.condition {
                Readiness::Started => matches!(p, Phase::Started | Phase::Ready | Phase::Failed),
                _ => matches!(p, Phase::Ready | Phase::Failed),
            };
            let failed = || {
                ConvergeError::Gate(Box::new(ServiceFailure {
                    service: service.name.clone(),
                    reason: FailureReason::DependencyFailed {
                        dependency: dependency.service.clone(),
                    },
                    log_tail: Vec::new(),
                }))
            };
            let phase = *rx.wait_for(wanted).await.map_err(|_| failed())?;
            if phase == Phase::Failed {
                return Err(failed());
            }
        }
        Ok(())
    }

    /// Same config: start stopped replicas, add or remove replicas.
    async fn rescale(
        &self,
        service: &ServiceSpec,
        mut keep: Vec<Existing>,
    ) -> Result<ServiceOutcome, ConvergeError> {
        let docker = &self.engine.docker;
        let wanted = service.replicas as usize;
        let extra = keep.split_off(keep.len().min(wanted));
        let mut changed = !extra.is_empty();
        // A one-shot that already ran to completion stays as it is.
        let to_start = |replica: &Existing| {
            let completed =
                service.ready_when == Readiness::Completed && replica.exit_code == Some(0);
            !replica.is_running() && !completed
        };
        if keep.iter().any(to_start) {
            binds::guard(self.stack, service).await?;
        }
        // As in Compose: `pre_start` runs again when no replica runs (a
        // stopped stack started again).
        let first_to_start = keep.iter().find(|r| to_start(r));
        if let Some(first) = first_to_start.filter(|_| !keep.iter().any(Existing::is_running)) {
            hooks::pre_start(docker, self.stack, service, &first.id, self.deadline).await?;
        }
        for replica in &keep {
            if to_start(replica) {
                container::start(docker, &replica.id).await?;
                hooks::post_start(docker, service, &replica.id, &replica.name, self.deadline)
                    .await?;
                changed = true;
                self.report(service, replica.number, ServiceState::Started);
            } else {
                self.report(service, replica.number, ServiceState::Unchanged);
            }
        }
        let mut replicas: Vec<Replica> = keep.iter().map(|e| replica_of(e, service)).collect();
        if replicas.len() < wanted {
            let added = self
                .create_replicas(service, (wanted - replicas.len()) as u32, &keep, false)
                .await?;
            changed = true;
            replicas.extend(added);
        }
        self.set_phase(&service.name, Phase::Started);
        self.wait_ready(service, &replicas).await?;
        if !extra.is_empty() {
            self.switch_if_main(service, &replicas).await?;
            self.remove_replicas(service, &extra, false).await?;
        }
        Ok(ServiceOutcome {
            change: if changed {
                Change::Scaled
            } else {
                Change::Unchanged
            },
            replicas,
        })
    }

    /// New replicas first; old ones go only once the new are ready (and
    /// nginx points at them). On failure the new ones are removed.
    async fn replace_start_first(
        &self,
        service: &ServiceSpec,
        old: Vec<Existing>,
    ) -> Result<ServiceOutcome, ConvergeError> {
        let replicas = self
            .create_replicas(service, service.replicas, &old, true)
            .await?;
        self.set_phase(&service.name, Phase::Started);
        if let Err(failure) = self.wait_ready(service, &replicas).await {
            self.discard(service, &replicas).await?;
            return Err(failure);
        }
        match self.switch_if_main(service, &replicas).await {
            Ok(true) => tokio::time::sleep(self.engine.options.drain).await,
            Ok(false) => {}
            Err(error) => {
                // nginx still routes to the old replicas: keep only them.
                self.discard(service, &replicas).await?;
                return Err(error);
            }
        }
        self.remove_replicas(service, &old, true).await?;
        Ok(ServiceOutcome {
            change: Change::Recreated,
            replicas,
        })
    }

    /// Old replicas go, then new ones are created.
    async fn replace_stop_first(
        &self,
        service: &ServiceSpec,
        old: Vec<Existing>,
    ) -> Result<ServiceOutcome, ConvergeError> {
        self.remove_replicas(service, &old, true).await?;
        let replicas = self
            .create_replicas(service, service.replicas, &[], true)
            .await?;
        self.set_phase(&service.name, Phase::Started);
        self.wait_ready(service, &replicas).await?;
        Ok(ServiceOutcome {
            change: Change::Recreated,
            replicas,
        })
    }

    /// Point nginx at `replicas` when `service` is the main one. Answers
    /// whether it switched.
    async fn switch_if_main(
        &self,
        service: &ServiceSpec,
        replicas: &[Replica],
    ) -> Result<bool, ConvergeError> {
        let (Some(main), Some(proxy)) = (&self.stack.main_service, &self.engine.proxy) else {
            return Ok(false);
        };
        if *main != service.name {
            return Ok(false);
        }
        let upstreams = upstreams_of(replicas);
        if upstreams.is_empty() {
            return Ok(false);
        }
        let changed = proxy
            .switch(&self.stack.domain, &upstreams, &self.stack.redirects)
            .await
            .map_err(DeployError::from)?;
        if changed {
            self.sink.report(Progress::ProxySwitched { upstreams });
        }
        Ok(changed)
    }

    /// Create and start `count` new replicas under the lowest free numbers,
    /// each followed by its `post_start` hooks; with `pre_start`, the
    /// service's `pre_start` hooks run between the first one's create and
    /// start. On any failure the new replicas are removed.
    async fn create_replicas(
        &self,
        service: &ServiceSpec,
        count: u32,
        existing: &[Existing],
        pre_start: bool,
    ) -> Result<Vec<Replica>, ConvergeError> {
        let taken: BTreeSet<u32> = existing.iter().map(|e| e.number).collect();
        let numbers = (1..).filter(|n| !taken.contains(n)).take(count as usize);
        let mut replicas = Vec::new();
        if count > 0 {
            binds::guard(self.stack, service).await?;
        }
        for (i, number) in numbers.enumerate() {
            match self.create_one(service, number, pre_start && i == 0).await {
                Ok(replica) => {
                    self.report(service, number, ServiceState::Started);
                    replicas.push(replica);
                }
                Err(error) => {
                    // Nothing half-made stays behind.
                    self.discard(service, &replicas).await?;
                    return Err(error);
                }
            }
        }
        Ok(replicas)
    }

    /// One new replica: ports, create, (`pre_start`), start, `post_start`;
    /// a failure leaves no container and no port taken.
    async fn create_one(
        &self,
        service: &ServiceSpec,
        number: u32,
        pre_start: bool,
    ) -> Result<Replica, ConvergeError> {
        let docker = &self.engine.docker;
        let ports = self.take_ports(service.ports.len())?;
        let replica =
            match container::create(docker, self.stack, service, number, ports.clone()).await {
                Ok(replica) => replica,
                Err(e) => {
                    self.release_ports(&ports);
                    return Err(e.into());
                }
            };
        let started = async {
            if pre_start {
                hooks::pre_start(docker, self.stack, service, &replica.id, self.deadline).await?;
            }
            container::start(docker, &replica.id).await?;
            hooks::post_start(docker, service, &replica.id, &replica.name, self.deadline).await
        };
        if let Err(error) = started.await {
            let _ = container::remove(docker, &replica.id, Some(std::time::Duration::ZERO)).await;
            self.release_ports(&ports);
            return Err(error.into());
        }
        Ok(replica)
    }

    /// Remove replicas this apply created and no longer wants.
    async fn discard(
        &self,
        service: &ServiceSpec,
        replicas: &[Replica],
    ) -> Result<(), ConvergeError> {
        for replica in replicas {
            container::remove(
                &self.engine.docker,
                &replica.id,
                Some(std::time::Duration::ZERO),
            )
            .await?;
            self.release_ports(&replica.host_ports);
            self.report(service, replica.number, ServiceState::Removed);
        }
        Ok(())
    }

    async fn remove_replicas(
        &self,
        service: &ServiceSpec,
        replicas: &[Existing],
        replaced: bool,
    ) -> Result<(), ConvergeError> {
        for replica in replicas {
            if replica.is_running() {
                hooks::pre_stop(
                    &self.engine.docker,
                    service,
                    &replica.id,
                    &replica.name,
                    self.sink,
                )
                .await;
            }
            container::remove(&self.engine.docker, &replica.id, service.stop_timeout).await?;
            self.release_ports(&replica.host_ports);
            let state = if replaced {
                ServiceState::Replaced
            } else {
                ServiceState::Removed
            };
            self.report(service, replica.number, state);
        }
        Ok(())
    }

    /// Wait until every replica meets the service's readiness.
    async fn wait_ready(
        &self,
        service: &ServiceSpec,
        replicas: &[Replica],
    ) -> Result<(), ConvergeError> {
        let docker = &self.engine.docker;
        let waits = replicas
            .iter()
            .map(|r| health::wait_ready(docker, &r.id, service.ready_when, self.deadline));
        let results = join_all(waits).await;
        for (replica, result) in replicas.iter().zip(results) {
            if let Err(not_ready) = result? {
                let log_tail = health::log_tail(docker, &replica.id, LOG_TAIL_LINES).await;
                return Err(ConvergeError::Gate(Box::new(ServiceFailure {
                    service: service.name.clone(),
                    reason: FailureReason::NotReady(not_ready),
                    log_tail,
                })));
            }
            let state = match service.ready_when {
                Readiness::Completed => ServiceState::Completed,
                _ => ServiceState::Healthy,
            };
            self.report(service, replica.number, state);
        }
        Ok(())
    }

    fn take_ports(&self, count: usize) -> Result<Vec<u16>, ConvergeError> {
        let mut free = self.free_ports.lock().expect("port pool lock");
        if free.len() < count {
            let block = self.stack.ports;
            return Err(DeployError::PortsExhausted {
                domain: self.stack.domain.to_string(),
                start: block.start,
                end: u32::from(block.start) + u32::from(block.len),
                needed: count,
            }
            .into());
        }
        let ports: Vec<u16> = free.iter().take(count).copied().collect();
        for p in &ports {
            free.remove(p);
        }
        Ok(ports)
    }

    fn release_ports(&self, ports: &[u16]) {
        let mut free = self.free_ports.lock().expect("port pool lock");
        let block = self.stack.ports;
        free.extend(ports.iter().filter(|p| block.contains(**p)));
    }

    fn report(&self, service: &ServiceSpec, replica: u32, state: ServiceState) {
        self.sink.report(Progress::Service {
            service: service.name.clone(),
            replica,
            state,
        });
    }
}

/// An existing container as a replica, its host ports in the service's port order.
pub(crate) fn replica_of(existing: &Existing, service: &ServiceSpec) -> Replica {
    let host_ports = service
        .ports
        .iter()
        .filter_map(|p| {
            existing
                .ports
                .iter()
                .find(|(target, _)| *target == p.target)
                .map(|(_, host)| *host)
        })
        .collect();
    Replica {
        id: existing.id.clone(),
        name: existing.name.clone(),
        number: existing.number,
        host_ports,
    }
}
