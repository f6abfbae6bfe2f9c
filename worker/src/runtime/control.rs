//! Control replies (request/reply on `<root>.ctl.<node>.<verb>`, not queued):
//! ping, status, services, versions, logs. Each request is answered in its
//! own task, so answers come while jobs run; logs stream in bounded chunks
//! ending with an `end` marker.

use std::sync::Arc;
use std::time::Instant;

use async_nats::Subscriber;
use futures_util::StreamExt;
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_deploy::engine::observe;
use hostkit_deploy::v1;
use hostkit_proto::control::{
    BackupInfo, BackupsReply, BackupsRequest, ContainerState, DomainHealth, DomainStatus, EnvReply,
    EnvRequest, HealthState, ImportsReply, ImportsRequest, LOG_FOLLOW_MAX, LOG_FOLLOWS_PER_NODE,
    LastJob, LogBatcher, LogStream, LogsRequest, PingReply, PortMapping, PortProtocol,
    ReplicaStatus, ServiceStatus, ServicesReply, ServicesRequest, StatusReply, StatusRequest,
    V1SiteInfo, VersionInfo, VersionsReply, VersionsRequest, VolumeBackup,
};
use hostkit_proto::{ControlVerb, Domain, ErrorBody, ErrorCode, Reply};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Worker;
use crate::shutdown::Shutdown;

/// Subscribes to the node's control subjects, and makes sure the server
/// knows before answering (the worker does this before it registers, so a
/// registered node answers from the start).
pub async fn subscribe(worker: &Worker, nats: &async_nats::Client) -> Option<Subscriber> {
    let subject = worker.names.ctl_filter(&worker.node);
    match nats.subscribe(subject.clone()).await {
        Ok(requests) => {
            if let Err(error) = nats.flush().await {
                tracing::warn!(%error, "control subscription not confirmed by the server yet");
            }
            Some(requests)
        }
        Err(error) => {
            tracing::error!(%error, subject, "cannot answer control requests");
            None
        }
    }
}

/// Answers the control `requests` (from [`subscribe`]) until `shutdown`.
pub async fn run(
    worker: Arc<Worker>,
    nats: async_nats::Client,
    mut requests: Subscriber,
    mut shutdown: Shutdown,
) {
    let started = Instant::now();
    let follows = Arc::new(tokio::sync::Semaphore::new(LOG_FOLLOWS_PER_NODE));
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            next = requests.next() => {
                let Some(request) = next else { return };
                let Some(reply_to) = request.reply.clone() else { continue };
                if !is_inbox(&reply_to) {
                    // The worker's own rights would publish the answer:
                    // never onto a stream, KV key or API subject.
                    tracing::warn!(reply_to = %reply_to, "control request with a reply subject that is not an inbox; ignored");
                    continue;
                }
                let Some((_, verb, scope)) = worker.names.parse_ctl_subject(&request.subject) else { continue };
                let (worker, nats, follows) = (Arc::clone(&worker), nats.clone(), Arc::clone(&follows));
                tokio::spawn(async move {
                    if let Some(token) = scope
                        && let Err(error) = in_scope(&request.payload, &token)
                    {
                        return send(&nats, reply_to.to_string(), Reply::<()>::Error(error)).await;
                    }
                    answer(&worker, &nats, verb, &request.payload, reply_to.to_string(), started, &follows).await;
                });
            }
        }
    }
}

/// A request on a domain's own subject (`….<verb>.<dtoken>`) must be about
/// that domain: NATS permissions confine identities by subject, so the
/// payload may not name another.
fn in_scope(payload: &[u8], token: &str) -> Result<(), ErrorBody> {
    #[derive(serde::Deserialize)]
    struct About {
        domain: Option<Domain>,
    }
    let about: About = serde_json::from_slice(payload)
        .map_err(|e| ErrorBody::new(ErrorCode::RequestInvalid, e.to_string()))?;
    match about.domain {
        Some(domain) if domain.token() == token => Ok(()),
        _ => Err(ErrorBody::new(
            ErrorCode::RequestInvalid,
            format!("a request on the subject of `{token}` must be about that domain"),
        )),
    }
}

/// Whether a reply subject is an inbox (`_INBOX.…`, or a client's custom
/// `_INBOX_<name>.…` prefix): the only place the worker sends answers.
fn is_inbox(subject: &str) -> bool {
    subject.starts_with("_INBOX") && !subject.contains(['*', '>', ' '])
}

fn parse<T: DeserializeOwned>(payload: &[u8]) -> Result<T, ErrorBody> {
    let payload = if payload.is_empty() {
        b"{}".as_slice()
    } else {
        payload
    };
    serde_json::from_slice(payload)
        .map_err(|e| ErrorBody::new(ErrorCode::RequestInvalid, e.to_string()))
}

async fn send<T: Serialize>(nats: &async_nats::Client, reply_to: String, reply: Reply<T>) {
    match serde_json::to_vec(&reply) {
        Ok(bytes) => {
            if let Err(error) = nats.publish(reply_to, bytes.into()).await {
                tracing::debug!(%error, "control reply not sent");
            }
        }
        Err(error) => tracing::error!(%error, "control reply not serializable"),
    }
}

async fn answer(
    worker: &Worker,
    nats: &async_nats::Client,
    verb: ControlVerb,
    payload: &[u8],
    reply_to: String,
    started: Instant,
    follows: &Arc<tokio::sync::Semaphore>,
) {
    match verb {
        ControlVerb::Ping => {
            let reply = PingReply {
                node: worker.node.clone(),
                version: env!("CARGO_PKG_VERSION").to_string(),
                uptime_secs: started.elapsed().as_secs(),
            };
            send(nats, reply_to, Reply::Ok(reply)).await;
        }
        ControlVerb::Status => {
            let reply = match parse::<StatusRequest>(payload) {
                Ok(request) => status(worker, request.domain).await,
                Err(e) => Err(e),
            };
            send(nats, reply_to, reply.into()).await;
        }
        ControlVerb::Services => {
            let reply = match parse::<ServicesRequest>(payload) {
                Ok(request) => services(worker, request.domain).await,
                Err(e) => Err(e),
            };
            send(nats, reply_to, reply.into()).await;
        }
        ControlVerb::Versions => {
            let reply = match parse::<VersionsRequest>(payload) {
                Ok(request) => versions(worker, request.domain).await,
                Err(e) => Err(e),
            };
            send(nats, reply_to, reply.into()).await;
        }
        ControlVerb::Backups => {
            let reply = match parse::<BackupsRequest>(payload) {
                Ok(request) => backups(worker, request.domain).await,
                Err(e) => Err(e),
            };
            send(nats, reply_to, reply.into()).await;
        }
        ControlVerb::Env => {
            let reply = match parse::<EnvRequest>(payload) {
                Ok(request) => env(worker, request.domain).await,
                Err(e) => Err(e),
            };
            send(nats, reply_to, reply.into()).await;
        }
        ControlVerb::Imports => {
            let reply = match parse::<ImportsRequest>(payload) {
                Ok(_) => imports(worker).await,
                Err(e) => Err(e),
            };
            send(nats, reply_to, reply.into()).await;
        }
        ControlVerb::Logs => match parse::<LogsRequest>(payload) {
            Ok(request) if request.follow => match Arc::clone(follows).try_acquire_owned() {
                Ok(_permit) => logs(worker, nats, request, reply_to).await,
                Err(_) => {
                    let error = ErrorBody::new(
                        ErrorCode::RequestInvalid,
                        format!(
                            "node {} already serves {LOG_FOLLOWS_PER_NODE} log follows; try again when one ends",
                            worker.node
                        ),
                    );
                    send(nats, reply_to, Reply::<()>::Error(error)).await;
                }
            },
            Ok(request) => logs(worker, nats, request, reply_to).await,
            Err(e) => send(nats, reply_to, Reply::<()>::Error(e)).await,
        },
    }
}

/// The v1 sites under the domains root that HostKit does not run yet, each
/// with what would stop its import.
async fn imports(worker: &Worker) -> Result<ImportsReply, ErrorBody> {
    let root = worker.settings.domains_root.clone();
    let found = tokio::task::spawn_blocking(move || v1::find_sites(&root))
        .await
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, e.to_string()))?;
    let found = match found {
        Ok(found) => found,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => {
            return Err(ErrorBody::new(
                ErrorCode::Internal,
                format!(
                    "cannot list {}: {e}",
                    worker.settings.domains_root.display()
                ),
            ));
        }
    };
    let mut sites = Vec::new();
    for (name, config) in found {
        let Ok(domain) = name.parse::<Domain>() else {
            continue;
        };
        if worker
            .store
            .current_version(domain.clone())
            .await
            .map_err(store_failed)?
            .is_some()
        {
            continue;
        }
        let blocked = if config.is_compose() {
            Some("v1 runs it as a compose stack: deploy its docker-compose.yml instead".into())
        } else {
            let dir = crate::handlers::domain_dir(worker, &domain);
            v1::inspect_site(&worker.docker, domain.as_str(), config.port, &dir, true)
                .await
                .err()
                .map(|e| e.to_string())
        };
        sites.push(V1SiteInfo {
            domain,
            port: config.port,
            blocked,
        });
    }
    Ok(ImportsReply { sites })
}

fn store_failed(error: crate::store::StoreError) -> ErrorBody {
    tracing::error!(%error, "control: store failed");
    ErrorBody::new(ErrorCode::Internal, "the worker's state store failed")
}

fn unknown_domain(worker: &Worker, domain: &Domain) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::DomainNotFound,
        format!("{domain} has no stack on node {}", worker.node),
    )
}

async fn status(worker: &Worker, only: Option<Domain>) -> Result<StatusReply, ErrorBody> {
    let mut domains = Vec::new();
    for record in worker.store.domains().await.map_err(store_failed)? {
        if only.as_ref().is_some_and(|d| *d != record.domain) {
            continue;
        }
        let inventory = Inventory::load(&worker.docker, &record.domain.token())
            .await
            .map_err(|e| ErrorBody::new(ErrorCode::DockerUnavailable, e.to_string()))?;
        let last_job = worker
            .store
            .last_job(record.domain.clone())
            .await
            .map_err(store_failed)?;
        domains.push(DomainStatus {
            health: domain_health(record.current_version.is_some(), &inventory),
            domain: record.domain,
            version: record.current_version,
            last_job: last_job.map(|j| LastJob {
                id: j.job_id,
                kind: j.kind,
                outcome: j.state.to_wire(),
                finished_at: j.finished_at.map(chrono::DateTime::<chrono::Utc>::from),
            }),
        });
    }
    if let Some(domain) = only {
        if domains.is_empty() {
            return Err(unknown_domain(worker, &domain));
        }
    }
    Ok(StatusReply {
        node: worker.node.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        domains,
    })
}

fn domain_health(deployed: bool, inventory: &Inventory) -> DomainHealth {
    let all: Vec<_> = inventory.all().collect();
    if !deployed {
        return DomainHealth::NotDeployed;
    }
    if all.is_empty() || all.iter().all(|c| !c.is_running()) {
        return DomainHealth::Stopped;
    }
    if all.iter().any(|c| c.health.as_deref() == Some("starting")) {
        return DomainHealth::Starting;
    }
    let bad = all
        .iter()
        .filter(|c| !c.is_running() || c.health.as_deref() == Some("unhealthy"))
        .count();
    match bad {
        0 => DomainHealth::Healthy,
        n if n == all.len() => DomainHealth::Unhealthy,
        _ => DomainHealth::Degraded,
    }
}

async fn services(worker: &Worker, domain: Domain) -> Result<ServicesReply, ErrorBody> {
    if worker
        .store
        .domain(domain.clone())
        .await
        .map_err(store_failed)?
        .is_none()
    {
        return Err(unknown_domain(worker, &domain));
    }
    let inventory = Inventory::load(&worker.docker, &domain.token())
        .await
        .map_err(|e| ErrorBody::new(ErrorCode::DockerUnavailable, e.to_string()))?;
    let services = inventory
        .services
        .iter()
        .map(|(service, replicas)| ServiceStatus {
            service: service.clone(),
            image: replicas
                .first()
                .map(|r| r.image.clone())
                .unwrap_or_default(),
            version: replicas.iter().filter_map(|r| r.version).max(),
            replicas: replicas
                .iter()
                .map(|r| ReplicaStatus {
                    number: r.number,
                    container: r.name.clone(),
                    state: ContainerState::from_engine(&r.state),
                    health: r.health.as_deref().map(HealthState::from_engine),
                    ports: r
                        .ports
                        .iter()
                        .map(|(container, host)| PortMapping {
                            container_port: *container,
                            protocol: PortProtocol::Tcp,
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(*host),
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Ok(ServicesReply { domain, services })
}

/// The domain's backups on this node, newest first.
async fn backups(worker: &Worker, domain: Domain) -> Result<BackupsReply, ErrorBody> {
    let backups = worker
        .store
        .backups(domain.clone())
        .await
        .map_err(store_failed)?
        .into_iter()
        .map(|b| BackupInfo {
            id: b.id,
            version: b.version,
            created_at: chrono::DateTime::<chrono::Utc>::from(b.created_at),
            reason: b.reason.as_str().to_owned(),
            volumes: b
                .volumes
                .into_iter()
                .map(|v| VolumeBackup {
                    volume: v.volume,
                    size: v.size,
                    digest: v.digest,
                })
                .collect(),
        })
        .collect();
    Ok(BackupsReply { domain, backups })
}

/// The names of the domain's stored variables (their values never leave
/// the worker).
async fn env(worker: &Worker, domain: Domain) -> Result<EnvReply, ErrorBody> {
    let stored = worker
        .store
        .domain_env(domain.clone(), worker.settings.seal_key.clone())
        .await
        .map_err(store_failed)?;
    Ok(EnvReply {
        domain,
        keys: stored.env.names().map(str::to_owned).collect(),
        updated_at: stored.updated_at.map(chrono::DateTime::<chrono::Utc>::from),
    })
}

async fn versions(worker: &Worker, domain: Domain) -> Result<VersionsReply, ErrorBody> {
    let Some(record) = worker
        .store
        .domain(domain.clone())
        .await
        .map_err(store_failed)?
    else {
        return Err(unknown_domain(worker, &domain));
    };
    let versions = worker
        .store
        .versions(domain.clone())
        .await
        .map_err(store_failed)?
        .into_iter()
        .map(|v| VersionInfo {
            current: Some(v.version) == record.current_version,
            version: v.version,
            created_at: chrono::DateTime::<chrono::Utc>::from(v.created_at),
            job_id: v.job_id,
            images: v.images.clone(),
            status: v.status.to_wire(),
        })
        .collect();
    Ok(VersionsReply { domain, versions })
}

/// Stream the service's logs (every replica: one after the other for a
/// tail, interleaved live with `follow`) in bounded chunks.
async fn logs(worker: &Worker, nats: &async_nats::Client, request: LogsRequest, reply_to: String) {
    let inventory = match Inventory::load(&worker.docker, &request.domain.token()).await {
        Ok(inventory) => inventory,
        Err(e) => {
            let error = ErrorBody::new(ErrorCode::DockerUnavailable, e.to_string());
            return send(nats, reply_to, Reply::<()>::Error(error)).await;
        }
    };
    let Some(replicas) = inventory.services.get(&request.service) else {
        let error = ErrorBody::new(
            ErrorCode::ServiceNotFound,
            format!(
                "{} has no service {} on node {}",
                request.domain, request.service, worker.node
            ),
        );
        return send(nats, reply_to, Reply::<()>::Error(error)).await;
    };
    let mut batcher = LogBatcher::new();
    let tail = request.effective_tail();
    let ids: Vec<String> = replicas.iter().map(|r| r.id.clone()).collect();
    // A tail reads the replicas one after the other; follow interleaves
    // every replica's lines as they come.
    let lines: std::pin::Pin<Box<dyn futures_util::Stream<Item = observe::LogLine> + Send>> =
        if request.follow {
            Box::pin(futures_util::stream::select_all(ids.iter().map(|id| {
                Box::pin(observe::logs(&worker.docker, id, tail, true))
            })))
        } else {
            Box::pin(
                futures_util::stream::iter(ids)
                    .flat_map(|id| observe::logs(&worker.docker, &id, tail, false)),
            )
        };
    tokio::pin!(lines);
    let deadline = tokio::time::sleep(LOG_FOLLOW_MAX);
    tokio::pin!(deadline);
    // While following, what arrived goes out at least every 250 ms.
    let mut flush = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        let next = tokio::select! {
            next = lines.next() => next,
            _ = &mut deadline => None,
            _ = flush.tick(), if request.follow => {
                if let Some(chunk) = batcher.flush() {
                    send(nats, reply_to.clone(), Reply::Ok(chunk)).await;
                }
                continue;
            }
        };
        let Some(line) = next else { break };
        let stream = if line.stderr {
            LogStream::Stderr
        } else {
            LogStream::Stdout
        };
        if let Some(chunk) = batcher.push(stream, &line.text) {
            send(nats, reply_to.clone(), Reply::Ok(chunk)).await;
        }
    }
    send(nats, reply_to, Reply::Ok(batcher.finish())).await;
}

#[cfg(test)]
mod tests {
    use super::{in_scope, is_inbox};

    #[test]
    fn a_domain_subject_answers_only_about_that_domain() {
        assert!(
            in_scope(
                br#"{"domain":"example.com","service":"web"}"#,
                "example_com"
            )
            .is_ok()
        );
        let other = in_scope(br#"{"domain":"other.test","service":"web"}"#, "example_com");
        assert!(
            other
                .unwrap_err()
                .message
                .contains("must be about that domain")
        );
        assert!(in_scope(b"{}", "example_com").is_err(), "no domain at all");
        assert!(in_scope(b"not json", "example_com").is_err());
    }

    #[test]
    fn answers_go_to_inboxes_only() {
        assert!(is_inbox("_INBOX.abc.1"));
        assert!(is_inbox("_INBOX_dashboard.x"));
        assert!(!is_inbox("$KV.hostkit_placement.example_com"));
        assert!(!is_inbox("hostkit.events.example_com.job.x"));
        assert!(!is_inbox("$JS.API.STREAM.PURGE.HOSTKIT_JOBS"));
        assert!(!is_inbox("_INBOX.>"));
    }
}
