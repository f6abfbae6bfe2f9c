//! Housekeeping after a job's outcome is committed, safe to redo: version
//! retention (pruned versions lose their image tags), the on-disk view of
//! DESIGN §5 (written from SQLite, the source of truth) and the placement
//! record in KV.

use std::path::Path;

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

async fn write(path: &Path, contents: &[u8]) -> Result<(), AftercareError> {
    let err = |source| AftercareError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(err)?;
    }
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, contents).await.map_err(err)?;
    tokio::fs::rename(&tmp, path).await.map_err(err)
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
    write(&dir.join("config.json"), &pretty).await?;
    if let Some(current) = current {
        write(
            &dir.join("docker-compose.yml"),
            current.compose_text.as_bytes(),
        )
        .await?;
    }
    for version in &versions {
        let path = dir
            .join("versions")
            .join(format!("v{}.yml", version.version));
        if !version.status.is_restorable() {
            let _ = tokio::fs::remove_file(&path).await;
            continue;
        }
        if tokio::fs::metadata(&path).await.is_err() {
            write(&path, version.compose_text.as_bytes()).await?;
        }
    }
    Ok(())
}

async fn remove_view(dir: &Path) -> Result<(), AftercareError> {
    for name in ["config.json", "docker-compose.yml"] {
        let _ = tokio::fs::remove_file(dir.join(name)).await;
    }
    match tokio::fs::remove_dir_all(dir.join("versions")).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(AftercareError::Write {
            path: dir.join("versions").display().to_string(),
            source,
        }),
    }
}
