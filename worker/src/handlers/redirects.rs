//! A deploy's redirect domains: the job's when it sets them; else the ones
//! the domain has (they stay across deploys and rollbacks); on a domain's
//! first deploy, those of a HostKit v1 `config.json` already in its
//! directory. A name another domain of this node serves — as itself or as
//! its redirect — is refused (`domain.conflict`), and so is deploying a
//! domain that is another domain's redirect.

use std::path::Path;

use hostkit_deploy::domain_dir::DomainDir;
use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::job::DeployOptions;
use hostkit_proto::{Domain, ErrorCode};

use super::{Failure, blocking};
use crate::runtime::Worker;
use crate::store::{DomainRecord, NameOwner};

/// The redirect domains `domain` is deployed with; `known` is its record
/// when the node has one.
pub async fn resolve(
    worker: &Worker,
    domain: &Domain,
    known: Option<&DomainRecord>,
    options: &DeployOptions,
    dir: &Path,
    sink: &dyn ProgressSink,
) -> Result<Vec<Domain>, Failure> {
    if let Some(NameOwner::RedirectOf(other)) = worker.store.name_owner(domain.clone()).await? {
        return Err(Failure::new(
            ErrorCode::DomainConflict,
            format!("{domain} redirects to {other} on node {}", worker.node),
        ));
    }
    let first_deploy = known.is_none_or(|r| r.current_version.is_none());
    let names = match (&options.redirect_domains, known) {
        (Some(names), _) => names.clone(),
        (None, Some(record)) if !first_deploy || !record.redirects.is_empty() => {
            record.redirects.clone()
        }
        (None, _) => from_v1_config(domain, dir, sink).await?,
    };
    for name in &names {
        match worker.store.name_owner(name.clone()).await? {
            None => {}
            Some(NameOwner::RedirectOf(owner)) if owner == *domain => {}
            Some(NameOwner::Domain(_)) => {
                return Err(Failure::new(
                    ErrorCode::DomainConflict,
                    format!("{name} is a domain of its own on node {}", worker.node),
                ));
            }
            Some(NameOwner::RedirectOf(owner)) => {
                return Err(Failure::new(
                    ErrorCode::DomainConflict,
                    format!(
                        "{name} already redirects to {owner} on node {}",
                        worker.node
                    ),
                ));
            }
        }
    }
    Ok(names)
}

/// `redirect_domains` of the `config.json` in the domain directory, when
/// there is one (HostKit v1's); names that are not valid are skipped with
/// a warning.
async fn from_v1_config(
    domain: &Domain,
    dir: &Path,
    sink: &dyn ProgressSink,
) -> Result<Vec<Domain>, Failure> {
    let domain_dir = DomainDir::new(dir);
    let read = blocking("reading config.json", move || {
        hostkit_deploy::v1::config::read(&domain_dir)
    })
    .await?;
    let names = match read {
        Ok(Some(config)) => config.redirect_domains,
        Ok(None) => return Ok(Vec::new()),
        Err(e) => {
            sink.report(Progress::Warning {
                message: format!("{e}; no redirect domains taken from it"),
            });
            return Ok(Vec::new());
        }
    };
    let mut out = Vec::new();
    for name in names {
        match name.parse::<Domain>() {
            Ok(name) if name != *domain && !out.contains(&name) => out.push(name),
            Ok(_) => {}
            Err(e) => sink.report(Progress::Warning {
                message: format!("config.json: redirect domain {name:?} skipped: {e}"),
            }),
        }
    }
    if !out.is_empty() {
        let list = out
            .iter()
            .map(Domain::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        sink.report(Progress::Step {
            name: "check",
            message: format!("redirect domains from the existing config.json: {list}"),
        });
    }
    Ok(out)
}
