//! The variables a stack is loaded with, in one place: the domain's `.env`
//! file, overlaid by its stored variables (`hostkit env`), overlaid by the
//! deploy job's own (CI's `--env`, the most specific). Used by `deploy`,
//! and by `restart`, which loads a version's compose file again when the
//! stored variables or `.env` changed since.

use hostkit_deploy::compose::{Env, merge_env, parse_env_file};
use hostkit_deploy::domain_dir::{DomainDir, READ_CAP};
use hostkit_deploy::error::DeployError;
use hostkit_proto::ErrorCode;
use hostkit_proto::sign::seal::SealedEnv;

use super::{Failure, blocking};
use crate::runtime::Worker;

/// A job's variables: its plain values, overlaid by its sealed ones opened
/// with this worker's key (in memory only).
pub fn open(
    worker: &Worker,
    plain: &hostkit_proto::job::Env,
    sealed: Option<&SealedEnv>,
) -> Result<hostkit_proto::job::Env, Failure> {
    let mut env = plain.clone();
    if let Some(sealed) = sealed.filter(|s| !s.is_empty()) {
        let Some(key) = &worker.settings.seal_key else {
            return Err(Failure::new(
                ErrorCode::JobInvalid,
                "the job's env is sealed, but this worker has no sealing key",
            ));
        };
        let opened = hostkit_proto::sign::seal::open_env(sealed, key)
            .map_err(|e| Failure::new(ErrorCode::JobInvalid, e.to_string()))?;
        for (name, value) in opened.iter() {
            env.insert(name, value);
        }
    }
    Ok(env)
}

/// The domain's env file (`<domain dir>/.env`, optional; never through a
/// link, at most [`READ_CAP`] bytes), overlaid by `stored`, overlaid by
/// `job`.
pub async fn layered(
    dir: &std::path::Path,
    stored: &hostkit_proto::job::Env,
    job: &hostkit_proto::job::Env,
) -> Result<Env, Failure> {
    let domain_dir = DomainDir::new(dir);
    let read = blocking("reading .env", move || {
        domain_dir.read_to_string(std::path::Path::new(".env"), READ_CAP)
    })
    .await?;
    let file = match read.map_err(|e| Failure::from(DeployError::from(e)))? {
        Some(text) => {
            parse_env_file(".env", &text).map_err(|e| Failure::from(DeployError::from(e)))?
        }
        None => Env::new(),
    };
    let plain = |env: &hostkit_proto::job::Env| -> Env {
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    Ok(merge_env(&merge_env(&file, &plain(stored)), &plain(job)))
}

/// A short hash of `env` (names and values), recorded with a version: a
/// restart loads the compose file again only when it changed.
pub fn hash(env: &Env) -> String {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for (k, v) in env {
        hasher.update(k.as_bytes());
        hasher.update([0]);
        hasher.update(v.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_job_wins_over_stored_which_win_over_the_env_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".env"), "A=file\nB=file\nC=file\n").unwrap();
        let stored: hostkit_proto::job::Env =
            [("B", "stored"), ("C", "stored")].into_iter().collect();
        let job: hostkit_proto::job::Env = [("C", "job")].into_iter().collect();
        let env = layered(dir.path(), &stored, &job).await.unwrap();
        assert_eq!(env["A"], "file");
        assert_eq!(env["B"], "stored");
        assert_eq!(env["C"], "job");
        let before = hash(&env);
        let env = layered(dir.path(), &hostkit_proto::job::Env::new(), &job)
            .await
            .unwrap();
        assert_ne!(hash(&env), before, "a changed value changes the hash");
    }
}
