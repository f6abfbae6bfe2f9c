//! Housekeeping after a job's outcome is committed, safe to redo: version
//! retention (pruned versions lose their image tags), the on-disk view of
//! DESIGN §5 and §10 (the seed's layout and `config.json`, written from
//! SQLite, the source of truth) and the placement record in KV.

use std::path::Path;

use std::collections::BTreeMap;

use hostkit_deploy::domain_dir::{DomainDir, Entry};
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_deploy::images;
use hostkit_deploy::v1::{self, V1Config};
use hostkit_proto::Domain;
use hostkit_proto::view::{
    DomainConfig, HostkitView, PortsView, ServiceView, SiteKind, VersionView, memory_text,
    version_name,
};

use super::{Worker, placement};
use crate::handlers::{SINGLE_IMAGE_MARKER, domain_dir};
use crate::store::{DomainRecord, VersionRecord};

/// Why housekeeping failed (it is retried after the next job).
#[derive(Debug, thiserror::Error)]
pub enum AftercareError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// Writing the on-disk view failed.
    #[error("writing {path} failed")]
    Write {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// KV failed.
    #[error("updating the placement of {domain} failed: {message}")]
    Placement {
        /// The domain.
        domain: String,
        /// What NATS said.
        message: String,
    },
}

/// Prune, rewrite the on-disk view, record the placement.
pub async fn run(worker: &Worker, domain: &Domain) -> Result<(), AftercareError> {
    let dir = domain_dir(worker, domain);
    let Some(record) = worker.store.domain(domain.clone()).await? else {
        // Removed: the view goes, the placement is released.
        remove_view(&dir).await?;
        placement::release(worker, domain).await;
        return Ok(());
    };
    for pruned in worker
        .store
        .prune(domain.clone(), worker.settings.retention)
        .await?
    {
        untag_version(worker, domain, &pruned).await;
    }
    write_view(worker, &record, &dir).await?;
    placement::record(worker, domain)
        .await
        .map_err(|message| AftercareError::Placement {
            domain: domain.to_string(),
            message,
        })?;
    Ok(())
}

/// Removes the image tags HostKit gave `version` of `domain`
/// (`<project>/<service>:v<N>` and those of its other images); a tag that
/// is gone already, or still used by a container, is left as it is.
pub async fn untag_version(worker: &Worker, domain: &Domain, version: &VersionRecord) {
    let project = domain.token();
    let tags = version
        .images
        .keys()
        .map(|service| images::version_tag(&project, service, version.version))
        .chain(
            version
                .other_images
                .keys()
                .map(|reference| images::other_image_tag(&project, reference, version.version)),
        );
    for tag in tags {
        if let Err(error) = images::untag(&worker.docker, &tag).await {
            tracing::warn!(%error, tag, "could not remove a version's image tag");
        }
    }
}

/// Replace a file of the view when its content changed (or write it only
/// when it is missing), beneath the domain directory and never through a
/// link a container planted there. An unchanged file is not rewritten, so a
/// no-op job costs no `fsync`.
async fn write(
    dir: &Path,
    name: &str,
    contents: Vec<u8>,
    only_if_missing: bool,
) -> Result<(), AftercareError> {
    let domain_dir = DomainDir::new(dir);
    let path = std::path::PathBuf::from(name);
    let written = tokio::task::spawn_blocking(move || {
        // A link planted in its place is replaced, never followed.
        match domain_dir.entry(&path).unwrap_or(Entry::Missing) {
            Entry::File if only_if_missing => return Ok(()),
            Entry::File => {
                let cap = contents.len() as u64;
                if let Ok(Some(current)) = domain_dir.read_to_string(&path, cap)
                    && current.as_bytes() == contents.as_slice()
                {
                    return Ok(());
                }
            }
            _ => {}
        }
        domain_dir.write_atomic(&path, &contents)
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()));
    let err = |source: std::io::Error| AftercareError::Write {
        path: dir.join(name).display().to_string(),
        source,
    };
    written
        .map_err(err)?
        .map_err(|e| err(std::io::Error::other(e.to_string())))
}

/// `config.json` (the seed's schema, [`DomainConfig`]),
/// `docker-compose.yml` (current) and `docker-compose.v<N>.yml` (each kept
/// version), as the seed lays them out.
async fn write_view(
    worker: &Worker,
    record: &DomainRecord,
    dir: &Path,
) -> Result<(), AftercareError> {
    let mut versions = worker.store.versions(record.domain.clone()).await?;
    versions.sort_by_key(|v| v.version);
    let current = versions
        .iter()
        .find(|v| Some(v.version) == record.current_version);
    let kept = kept_fields(dir).await;
    if current.is_none() && !kept.written_by_hostkit() {
        // Nothing of HostKit's runs (a failed first deploy or import): a
        // v1 site's files stay exactly as v1 left them.
        return Ok(());
    }
    let mut config = domain_config(worker, record, current, &versions, dir).await;
    if let Some(created) = kept.created.filter(|c| !c.is_empty()) {
        config.created = created;
    }
    config.username = kept.username;
    let pretty = serde_json::to_vec_pretty(&config).unwrap_or_default();
    write(dir, "config.json", pretty, false).await?;
    if let Some(current) = current {
        write(
            dir,
            "docker-compose.yml",
            current.compose_text.clone().into_bytes(),
            false,
        )
        .await?;
    }
    let domain_dir = DomainDir::new(dir);
    for version in &versions {
        let name = format!("docker-compose.v{}.yml", version.version);
        if !version.status.is_restorable() {
            let domain_dir = domain_dir.clone();
            let _ =
                tokio::task::spawn_blocking(move || domain_dir.remove_file(Path::new(&name))).await;
            continue;
        }
        write(dir, &name, version.compose_text.clone().into_bytes(), true).await?;
    }
    // Before the seed's layout, version files lived in `versions/`.
    let _ =
        tokio::task::spawn_blocking(move || domain_dir.remove_dir_all(Path::new("versions"))).await;
    Ok(())
}

/// The domain's `config.json` as it is: whether HostKit wrote it, and
/// what it holds that HostKit does not own — v1's `created` (when v1
/// registered the site) and `username` (its deploy user), carried over so
/// v1's tools keep showing them after an import.
async fn kept_fields(dir: &Path) -> V1Config {
    let domain_dir = DomainDir::new(dir);
    let read = tokio::task::spawn_blocking(move || v1::config::read(&domain_dir)).await;
    match read {
        Ok(Ok(Some(config))) => config,
        _ => V1Config::default(),
    }
}

/// The view's `config.json` from the store (and the engine, for the host
/// ports replicas got).
async fn domain_config(
    worker: &Worker,
    record: &DomainRecord,
    current: Option<&VersionRecord>,
    versions: &[VersionRecord],
    dir: &Path,
) -> DomainConfig {
    let domain = &record.domain;
    let project = current
        .and_then(|v| v.project(worker.settings.seal_key.as_ref()).ok())
        .unwrap_or_default();
    let main = current.and_then(|v| v.main_service().ok().flatten());
    let inventory = Inventory::load(&worker.docker, &domain.token())
        .await
        .unwrap_or_default();
    let mut services = BTreeMap::new();
    for (name, service) in &project.services {
        let main_port = main.as_ref().filter(|m| &m.service == name).map(|m| m.port);
        let internal_port = main_port
            .or_else(|| service.ports.first().map(|p| p.target))
            .or_else(|| {
                service
                    .expose
                    .iter()
                    .find_map(|e| e.split('/').next()?.trim().parse().ok())
            });
        let external_port = internal_port.and_then(|port| {
            inventory
                .services
                .get(name)?
                .iter()
                .min_by_key(|c| c.number)?
                .ports
                .iter()
                .find(|(target, _)| *target == port)
                .map(|(_, host)| *host)
        });
        let replicas = current
            .and_then(|v| v.services.iter().find(|s| &s.service == name))
            .map_or(service.deploy.replicas, |s| s.replicas);
        services.insert(
            name.clone(),
            ServiceView {
                exposed: main_port.is_some(),
                internal_port,
                external_port,
                replicas,
                image: service.image.clone(),
            },
        );
    }
    let main_limits = main
        .as_ref()
        .and_then(|m| project.services.get(&m.service))
        .map(|s| s.deploy.resources);
    let single = current.is_some_and(|v| v.compose_text.starts_with(SINGLE_IMAGE_MARKER));
    let rfc3339 = |t: std::time::SystemTime| chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339();
    DomainConfig {
        domain: domain.to_string(),
        kind: if single {
            SiteKind::Single
        } else {
            SiteKind::Compose
        },
        compose_file: dir.join("docker-compose.yml").display().to_string(),
        main_service: main.as_ref().map(|m| m.service.clone()),
        port: main
            .as_ref()
            .and_then(|m| services.get(&m.service)?.external_port),
        services,
        network: project
            .networks
            .get("default")
            .and_then(|n| n.name.clone())
            .unwrap_or_else(|| format!("{}_default", domain.token())),
        current_version: current.map(|v| version_name(v.version)),
        versions: versions
            .iter()
            .filter(|v| v.status.is_restorable())
            .map(|v| version_name(v.version))
            .collect(),
        redirect_domains: record.redirects.iter().map(Domain::to_string).collect(),
        all_domains: std::iter::once(domain)
            .chain(&record.redirects)
            .map(Domain::to_string)
            .collect(),
        memory_limit: main_limits
            .as_ref()
            .and_then(|r| r.limits.memory)
            .map(memory_text),
        memory_reservation: main_limits
            .as_ref()
            .and_then(|r| r.reservations.memory)
            .map(memory_text),
        created: rfc3339(record.created_at),
        username: None,
        hostkit: HostkitView {
            project: domain.token(),
            node: worker.node.to_string(),
            ports: PortsView {
                start: record.ports.start,
                len: record.ports.len,
            },
            versions: versions
                .iter()
                .map(|v| VersionView {
                    version: version_name(v.version),
                    status: v.status.as_str().to_owned(),
                    job_id: v.job_id.to_string(),
                    created_at: rfc3339(v.created_at),
                    images: v.images.clone(),
                })
                .collect(),
        },
    }
}

async fn remove_view(dir: &Path) -> Result<(), AftercareError> {
    // Only HostKit's own view goes: a domain HostKit never ran (a failed
    // first job, a v1 site that could not be imported) keeps v1's files.
    if !kept_fields(dir).await.written_by_hostkit() {
        return Ok(());
    }
    let domain_dir = DomainDir::new(dir);
    let removed = tokio::task::spawn_blocking(move || {
        for name in ["config.json", "docker-compose.yml"] {
            domain_dir.remove_file(Path::new(name))?;
        }
        domain_dir.remove_dir_all(Path::new("versions"))
    })
    .await
    .map_err(|e| std::io::Error::other(e.to_string()));
    let err = |source: std::io::Error| AftercareError::Write {
        path: dir.join("versions").display().to_string(),
        source,
    };
    removed
        .map_err(err)?
        .map_err(|e| err(std::io::Error::other(e.to_string())))
}
