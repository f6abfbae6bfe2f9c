//! The fleet as the dashboard knows it: built from events (replayed from
//! the start of the events stream, then live) and the node registry.
//! Bounded: state per node and per domain (the last [`JOBS_KEPT`] jobs of
//! a domain, the last [`STEPS_KEPT`] steps of a job), never per event.

use std::collections::{BTreeMap, VecDeque};

use chrono::{DateTime, Utc};
use hostkit_proto::{Event, EventKind, NodeInfo};

/// Jobs kept per domain.
pub const JOBS_KEPT: usize = 10;
/// Steps kept per job.
pub const STEPS_KEPT: usize = 30;
/// A node not heard from for this long shows as offline.
pub const NODE_STALE_SECS: i64 = 30;

/// Every node and domain seen.
#[derive(Debug, Default)]
pub struct Fleet {
    /// By node id.
    pub nodes: BTreeMap<String, NodeView>,
    /// By domain.
    pub domains: BTreeMap<String, DomainView>,
}

/// One worker node.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    /// Its id.
    pub node: String,
    /// Its worker's version.
    pub version: String,
    /// When it was last heard from.
    pub last_seen: Option<DateTime<Utc>>,
    /// It said it stops.
    pub offline: bool,
    /// Domains it hosts (from its heartbeat).
    pub domains: Vec<String>,
    /// Jobs running and waiting (from its heartbeat).
    pub running: u32,
    /// Jobs waiting in lanes.
    pub waiting: u32,
}

impl NodeView {
    /// Online: heard from recently and not said goodbye.
    pub fn online(&self, now: DateTime<Utc>) -> bool {
        !self.offline
            && self
                .last_seen
                .is_some_and(|t| (now - t).num_seconds() <= NODE_STALE_SECS)
    }
}

/// One domain.
#[derive(Debug, Clone, Default)]
pub struct DomainView {
    /// The domain.
    pub domain: String,
    /// The node its last event came from.
    pub node: String,
    /// Its current version, as its last job left it.
    pub version: Option<u32>,
    /// Its services: replicas' states and health.
    pub services: BTreeMap<String, ServiceView>,
    /// Its last jobs, newest first.
    pub jobs: VecDeque<JobView>,
}

/// One service of a domain.
#[derive(Debug, Clone, Default)]
pub struct ServiceView {
    /// Replica number → its last state in a job (`running`, `healthy`, …).
    pub replicas: BTreeMap<u32, String>,
    /// The last health event's kind (`healthy`, `unhealthy`, `exited`, …).
    pub health: Option<String>,
}

/// One job.
#[derive(Debug, Clone, Default)]
pub struct JobView {
    /// Its id.
    pub id: String,
    /// Its kind (once started).
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed` or `superseded`.
    pub state: String,
    /// When its first event was.
    pub at: Option<DateTime<Utc>>,
    /// Its steps: time, name, message.
    pub steps: VecDeque<(DateTime<Utc>, String, String)>,
    /// The last progress line.
    pub progress: Option<String>,
    /// How it ended (code and message), or the version it made current.
    pub outcome: Option<String>,
}

/// What an event changed (for the live feed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A node's card.
    Node(String),
    /// A domain's card.
    Domain(String),
}

impl Fleet {
    /// Seed a node from its registry entry.
    pub fn node_info(&mut self, info: &NodeInfo) {
        let node = self.node_mut(info.node.as_str());
        node.version = info.version.clone();
        node.domains = info.domains.iter().map(ToString::to_string).collect();
        node.last_seen = node.last_seen.max(Some(info.last_heartbeat));
    }

    fn node_mut(&mut self, id: &str) -> &mut NodeView {
        self.nodes.entry(id.to_owned()).or_insert_with(|| NodeView {
            node: id.to_owned(),
            ..NodeView::default()
        })
    }

    /// Apply one event; answers what changed.
    pub fn apply(&mut self, event: &Event) -> Vec<Changed> {
        let node_id = event.node.to_string();
        let node = self.node_mut(&node_id);
        node.last_seen = node.last_seen.max(Some(event.at));
        let mut changed = vec![Changed::Node(node_id.clone())];
        match &event.kind {
            EventKind::Heartbeat {
                version,
                domains,
                running_jobs,
                queue_depth,
                ..
            } => {
                node.version = version.clone();
                node.domains = domains.iter().map(ToString::to_string).collect();
                node.running = *running_jobs;
                node.waiting = *queue_depth;
                node.offline = false;
            }
            EventKind::Online { version } => {
                node.version = version.clone();
                node.offline = false;
            }
            EventKind::Offline {} => node.offline = true,
            _ => {}
        }
        let Some(domain) = &event.domain else {
            return changed;
        };
        let key = domain.to_string();
        let view = self
            .domains
            .entry(key.clone())
            .or_insert_with(|| DomainView {
                domain: key.clone(),
                ..DomainView::default()
            });
        view.node = node_id;
        changed.push(Changed::Domain(key));
        if let Some(service) = event.kind.health_service() {
            view.services.entry(service.to_owned()).or_default().health =
                Some(event.kind.kind_str().to_owned());
            return changed;
        }
        let Some(job_id) = event.job_id else {
            return changed;
        };
        let id = job_id.to_string();
        if !view.jobs.iter().any(|j| j.id == id) {
            view.jobs.push_front(JobView {
                id: id.clone(),
                state: "queued".into(),
                at: Some(event.at),
                ..JobView::default()
            });
            view.jobs.truncate(JOBS_KEPT);
        }
        let Some(job) = view.jobs.iter_mut().find(|j| j.id == id) else {
            return changed;
        };
        match &event.kind {
            EventKind::Queued { .. } => job.state = "queued".into(),
            EventKind::Started { job_kind } => {
                job.kind = job_kind.to_string();
                job.state = "running".into();
            }
            EventKind::Step { name, message } => {
                job.steps
                    .push_back((event.at, name.clone(), message.clone()));
                if job.steps.len() > STEPS_KEPT {
                    job.steps.pop_front();
                }
            }
            EventKind::Progress {
                what,
                done,
                total,
                unit,
            } => {
                job.progress = Some(format!(
                    "{what}: {}",
                    crate::render::amount(*done, *total, *unit)
                ));
            }
            EventKind::Service {
                service,
                replica,
                state,
            } => {
                let replicas = &mut view.services.entry(service.clone()).or_default().replicas;
                if *state == hostkit_proto::event::ReplicaState::Removed {
                    replicas.remove(replica);
                } else {
                    replicas.insert(*replica, state.as_str().to_owned());
                }
            }
            EventKind::Succeeded { version, .. } => {
                job.state = "succeeded".into();
                job.progress = None;
                if let Some(v) = version {
                    job.outcome = Some(format!("v{v}"));
                    view.version = Some(*v);
                }
                if job.kind == "remove" {
                    view.version = None;
                    view.services.clear();
                }
            }
            EventKind::Failed {
                code,
                message,
                rolled_back_to,
                ..
            } => {
                job.state = "failed".into();
                job.progress = None;
                job.outcome = Some(format!("{code}: {message}"));
                if let Some(v) = rolled_back_to {
                    view.version = Some(*v);
                }
            }
            EventKind::Superseded { by } => {
                job.state = "superseded".into();
                job.outcome = Some(format!("by {by}"));
            }
            _ => {}
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostkit_proto::{JobId, JobKind};

    #[test]
    fn a_deploy_shows_its_steps_version_and_services_and_history_stays_bounded() {
        let mut fleet = Fleet::default();
        let node: hostkit_proto::NodeId = "vps-1".parse().unwrap();
        let domain: hostkit_proto::Domain = "example.com".parse().unwrap();
        let mut seq = 0;
        let mut job_event = |job: JobId, kind: EventKind| {
            seq += 1;
            Event::for_job(node.clone(), seq, domain.clone(), job, kind)
        };
        for n in 0..(JOBS_KEPT + 5) {
            let job = JobId::new();
            fleet.apply(&job_event(
                job,
                EventKind::Started {
                    job_kind: JobKind::Deploy,
                },
            ));
            for s in 0..(STEPS_KEPT + 3) {
                fleet.apply(&job_event(
                    job,
                    EventKind::Step {
                        name: "check".into(),
                        message: format!("step {s}"),
                    },
                ));
            }
            fleet.apply(&job_event(
                job,
                EventKind::Service {
                    service: "web".into(),
                    replica: 1,
                    state: hostkit_proto::event::ReplicaState::Healthy,
                },
            ));
            let changed = fleet.apply(&job_event(
                job,
                EventKind::Succeeded {
                    version: Some(n as u32 + 1),
                    duration_ms: 10,
                },
            ));
            assert_eq!(
                changed,
                [
                    Changed::Node("vps-1".into()),
                    Changed::Domain("example.com".into())
                ]
            );
        }
        let view = &fleet.domains["example.com"];
        assert_eq!(view.version, Some(JOBS_KEPT as u32 + 5));
        assert_eq!(view.jobs.len(), JOBS_KEPT);
        assert_eq!(view.jobs[0].state, "succeeded");
        assert_eq!(view.jobs[0].kind, "deploy");
        assert_eq!(view.jobs[0].steps.len(), STEPS_KEPT);
        assert_eq!(view.services["web"].replicas[&1], "healthy");
        assert!(fleet.nodes["vps-1"].online(Utc::now()));
    }

    #[test]
    fn a_hundred_busy_domains_keep_a_bounded_state() {
        let mut fleet = Fleet::default();
        let node: hostkit_proto::NodeId = "vps-1".parse().unwrap();
        let mut seq = 0;
        for d in 0..100 {
            let domain: hostkit_proto::Domain = format!("site{d}.example.com").parse().unwrap();
            for _ in 0..40 {
                let job = JobId::new();
                for kind in [
                    EventKind::Started {
                        job_kind: JobKind::Restart,
                    },
                    EventKind::Step {
                        name: "apply".into(),
                        message: "x".repeat(200),
                    },
                    EventKind::Succeeded {
                        version: Some(1),
                        duration_ms: 1,
                    },
                ] {
                    seq += 1;
                    fleet.apply(&Event::for_job(
                        node.clone(),
                        seq,
                        domain.clone(),
                        job,
                        kind,
                    ));
                }
            }
        }
        assert_eq!(fleet.domains.len(), 100);
        assert_eq!(fleet.nodes.len(), 1);
        let jobs: usize = fleet.domains.values().map(|d| d.jobs.len()).sum();
        let steps: usize = fleet
            .domains
            .values()
            .flat_map(|d| d.jobs.iter())
            .map(|j| j.steps.len())
            .sum();
        assert_eq!(jobs, 100 * JOBS_KEPT, "4000 jobs seen, {jobs} kept");
        assert_eq!(steps, 100 * JOBS_KEPT);
        assert!(
            fleet
                .domains
                .values()
                .all(|d| d.version == Some(1) && d.jobs[0].state == "succeeded")
        );
    }
}
