//! Housekeeping after a job's outcome is committed, safe to redo: version
//! retention (pruned versions lose their image tags), the on-disk view of
//! DESIGN §5 (written from SQLite, the source of truth) and the placement
//! record in KV.

use std::path::Path;

use hostkit_deploy::domain_dir::{DomainDir, Entry};
use hostkit_deploy::images;
use hostkit_proto::Domain;
use hostkit_proto::registry::Placement;

use super::Worker;
use crate::handlers::domain_dir;

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
    let Some(_) = worker.store.domain(domain.clone()).await? else {
        // Removed: the view goes, the placement is released.
        remove_view(&dir).await?;
        let _ = worker
            .placement
            .delete(worker.names.placement_key(domain))
            .await;
        return Ok(());
    };
    for pruned in worker
        .store
        .prune(domain.clone(), worker.settings.retention)
        .await?
    {
        for service in pruned.images.keys() {
            let tag = images::version_tag(&domain.token(), service, pruned.version);
            if let Err(error) = images::untag(&worker.docker, &tag).await {
                tracing::warn!(%error, tag, "could not remove a pruned version's tag");
            }
        }
    }
    write_view(worker, domain, &dir).await?;
    let placement = Placement {
        node: worker.node.clone(),
        adopted_at: chrono::Utc::now(),
    };
    let value = serde_json::to_vec(&placement).unwrap_or_default();
    worker
        .placement
        .put(worker.names.placement_key(domain), value.into())
        .await
        .map_err(|e| AftercareError::Placement {
            domain: domain.to_string(),
            message: e.to_string(),
        })?;
    Ok(())
}

/// Replace a file of the view (or write it only when it is missing),
/// beneath the domain directory and never through a link a container
/// planted there.
async fn write(
    dir: &Path,
    name: &str,
    contents: Vec<u8>,
    only_if_missing: bool,
) -> Result<(), AftercareError> {
    let domain_dir = DomainDir::new(dir);
    let path = std::path::PathBuf::from(name);
    let written = tokio::task::spawn_blocking(move || {
        if only_if_missing && domain_dir.entry(&path)? == Entry::File {
            return Ok(());
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

/// `config.json`, `docker-compose.yml` (current) and `versions/v<N>.yml`.
async fn write_view(worker: &Worker, domain: &Domain, dir: &Path) -> Result<(), AftercareError> {
    let record = worker.store.domain(domain.clone()).await?;
    let versions = worker.store.versions(domain.clone()).await?;
    let current = versions
        .iter()
        .find(|v| Some(v.version) == record.as_ref().and_then(|r| r.current_version));
    let config = serde_json::json!({
        "domain": domain.as_str(),
        "project": domain.token(),
        "node": worker.node.as_str(),
        "version": current.map(|v| v.version),
        "main_service": current.and_then(|v| v.main_service_json.as_deref()).and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok()),
        "images": current.map(|v| &v.images),
        "ports": record.as_ref().map(|r| serde_json::json!({"start": r.ports.start, "len": r.ports.len})),
        "versions": versions.iter().map(|v| serde_json::json!({
            "version": v.version,
            "status": v.status.as_str(),
            "job_id": v.job_id.to_string(),
            "created_at": chrono::DateTime::<chrono::Utc>::from(v.created_at).to_rfc3339(),
        })).collect::<Vec<_>>(),
    });
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
    for version in &versions {
        let name = format!("versions/v{}.yml", version.version);
        if !version.status.is_restorable() {
            let domain_dir = DomainDir::new(dir);
            let _ =
                tokio::task::spawn_blocking(move || domain_dir.remove_file(Path::new(&name))).await;
            continue;
        }
        write(dir, &name, version.compose_text.clone().into_bytes(), true).await?;
    }
    Ok(())
}

async fn remove_view(dir: &Path) -> Result<(), AftercareError> {
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
