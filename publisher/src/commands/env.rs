//! `hostkit env set|unset|list`: a domain's stored variables. `set` and
//! `unset` are `env` jobs (serial with the domain's other jobs, signed like
//! them, values sealed to the node's key); `list` asks the worker for the
//! names (control verb `env`), never the values.

use hostkit_proto::control::EnvRequest;
use hostkit_proto::job::is_valid_env_key;
use hostkit_proto::job::{Env, EnvPayload};
use hostkit_proto::{Domain, JobSpec, NodeId};
use tokio::time::Instant;

use super::deploy::{seal, variable};
use super::job::{self, JobRequest};
use crate::cli::{ConnectArgs, JobArgs};
use crate::error::{Error, Exit};
use crate::render::{Output, ago};
use crate::{connect, control, placement};

/// `hostkit env set <domain> KEY=VALUE…`.
pub async fn set(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    vars: &[String],
    args: &JobArgs,
) -> Result<Exit, Error> {
    let mut env = Env::new();
    for item in vars {
        let (key, value) = variable("env set", item)?;
        env.insert(key, value);
    }
    let started = Instant::now();
    let session = connect::connect(connect).await?;
    let node = placement::node_for(&session, domain, args.node.as_ref()).await?;
    let info = placement::node_info(&session, &node).await?;
    let (set, sealed_set) = seal(info.as_ref(), &node, env, out)?;
    let spec = JobSpec::Env(EnvPayload {
        set,
        sealed_set,
        unset: Vec::new(),
    });
    run(connect, &session, out, domain, &node, spec, args, started).await
}

/// `hostkit env unset <domain> KEY…`.
pub async fn unset(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    keys: &[String],
    args: &JobArgs,
) -> Result<Exit, Error> {
    if let Some(bad) = keys.iter().find(|k| !is_valid_env_key(k)) {
        return Err(Error::usage(format!(
            "env unset {bad}: not a variable name (expected [A-Za-z_][A-Za-z0-9_]*)"
        )));
    }
    let started = Instant::now();
    let session = connect::connect(connect).await?;
    let node = placement::node_for(&session, domain, args.node.as_ref()).await?;
    let spec = JobSpec::Env(EnvPayload {
        unset: keys.to_vec(),
        ..EnvPayload::default()
    });
    run(connect, &session, out, domain, &node, spec, args, started).await
}

#[allow(clippy::too_many_arguments)]
async fn run(
    connect: &ConnectArgs,
    session: &connect::Session,
    out: &Output,
    domain: &Domain,
    node: &NodeId,
    spec: JobSpec,
    args: &JobArgs,
    started: Instant,
) -> Result<Exit, Error> {
    let request = JobRequest {
        domain,
        node,
        spec,
        args,
        started,
        uploaded: None,
    };
    job::run(connect, session, out, request).await
}

/// `hostkit env list <domain>`: names and when they last changed.
pub async fn list(
    connect: &ConnectArgs,
    out: &Output,
    domain: &Domain,
    node: Option<&NodeId>,
) -> Result<Exit, Error> {
    let request = EnvRequest {
        domain: domain.clone(),
    };
    let (_, reply) = control::ask_about(connect, domain, node, &request).await?;
    if out.json() {
        out.json_line(&reply);
        return Ok(Exit::Success);
    }
    match reply.updated_at {
        None => out.line(format!("{domain} has no stored variables")),
        Some(at) => {
            for key in &reply.keys {
                out.line(key);
            }
            out.stderr_line(format!(
                "{} variable(s), last changed {} ({}); values are never shown",
                reply.keys.len(),
                at.format("%Y-%m-%d %H:%M:%S UTC"),
                ago(at)
            ));
        }
    }
    Ok(Exit::Success)
}
