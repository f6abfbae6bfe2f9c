//! `env`: change a domain's stored variables (`hostkit env set|unset`).
//! They are kept sealed in the store and used by the next deploy or
//! restart (see `variables`); nothing running is touched. Events name the
//! variables, never their values.

use hostkit_deploy::progress::{Progress, ProgressSink};
use hostkit_proto::Job;
use hostkit_proto::job::EnvPayload;

use super::{Done, Failure, variables};
use crate::runtime::Worker;
use crate::store::{Change, SealWith};

pub async fn run(
    worker: &Worker,
    job: &Job,
    payload: &EnvPayload,
    sink: &dyn ProgressSink,
) -> Result<Done, Failure> {
    let set = variables::open(worker, &payload.set, payload.sealed_set.as_ref())?;
    let key = worker.settings.seal_key.clone();
    let mut env = worker.store.domain_env(job.domain.clone(), key).await?.env;
    for name in &payload.unset {
        if env.0.remove(name).is_none() {
            sink.report(Progress::Warning {
                message: format!("{name} was not set"),
            });
        }
    }
    for (name, value) in set.iter() {
        env.insert(name, value);
    }
    let names = |list: Vec<&str>| match list.is_empty() {
        true => "nothing".to_owned(),
        false => list.join(", "),
    };
    sink.report(Progress::Step {
        name: "env",
        message: format!(
            "set {}; unset {}; {} stored; the next deploy or restart uses them",
            names(set.names().collect()),
            names(payload.unset.iter().map(String::as_str).collect()),
            match env.len() {
                1 => "1 variable".to_owned(),
                n => format!("{n} variables"),
            }
        ),
    });
    let current = worker.store.current_version(job.domain.clone()).await?;
    Ok(Done {
        version: current.map(|v| v.version),
        changes: vec![Change::SetDomainEnv {
            domain: job.domain.clone(),
            env,
            seal_key: SealWith(worker.settings.seal_key.clone()),
        }],
    })
}
