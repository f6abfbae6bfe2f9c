//! Making a job (who asks, optional nkey signature, validation) and
//! publishing it with JetStream, `Nats-Msg-Id` = job id, on
//! `<root>.jobs.<node>.<dtoken>`.

use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use hostkit_proto::job::MAX_REQUESTED_BY_LEN;
use hostkit_proto::sign::KeyPair;
use hostkit_proto::{Domain, Job, JobSpec, NodeId};

use crate::cli::ConnectArgs;
use crate::connect::Session;
use crate::error::{Error, not_set_up};

/// How long the jobs stream has to acknowledge a job, all tries together.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one try may wait for the acknowledgement.
const TRY_TIMEOUT: Duration = Duration::from_secs(5);

/// A new job for `domain`, signed when a signing key is configured, and
/// validated (exit 2 when it is not valid).
pub fn make_job(
    args: &ConnectArgs,
    domain: &Domain,
    node: &NodeId,
    spec: JobSpec,
) -> Result<Job, Error> {
    let mut job = Job::new(
        domain.clone(),
        spec,
        requested_by(args.requested_by.as_deref()),
    );
    job.validate()
        .map_err(|e| Error::usage(format!("the job is not valid: {e}")))?;
    if let Some(key) = &args.sign_key {
        let key = signing_key(key)?;
        // Signed claims: this node only, for a short while.
        job.node = Some(node.clone());
        job.expires_at = Some(job.created_at + hostkit_proto::sign::DEFAULT_JOB_TTL);
        hostkit_proto::sign_job(&mut job, &key)
            .map_err(|e| Error::usage(format!("--sign-key: {e}")))?;
    }
    Ok(job)
}

/// Publishes `job` for `node`; answers once the jobs stream stored it.
///
/// A try that gets no acknowledgement (a server of the cluster died, the
/// stream is electing a leader) is made again with the same `Nats-Msg-Id`
/// for up to 30 s: the stream's de-duplication stores the job
/// once however many tries reached it.
pub async fn publish(session: &Session, node: &NodeId, job: &Job) -> Result<(), Error> {
    let subject = session.names.jobs_subject(node, &job.domain);
    let deadline = tokio::time::Instant::now() + PUBLISH_TIMEOUT;
    let mut last = String::from("no acknowledgement");
    while tokio::time::Instant::now() < deadline {
        let message = PublishMessage::build()
            .payload(job.to_vec().into())
            .message_id(job.id.to_string());
        let sent = async {
            session
                .js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| e.kind())?
                .await
                .map_err(|e| e.kind())
        };
        match tokio::time::timeout(TRY_TIMEOUT, sent).await {
            Ok(Ok(_ack)) => return Ok(()),
            Ok(Err(PublishErrorKind::StreamNotFound)) => {
                // "No responders": the stream is missing, or (in a cluster)
                // has no leader for a moment. Ask which.
                let name = session.names.jobs_stream();
                if let Err(e) = session.js.get_stream(&name).await {
                    if crate::error::is_missing_stream(&e) {
                        return Err(not_set_up(&format!("the stream {name}")));
                    }
                }
                last = "the stream had no leader".to_owned();
            }
            Ok(Err(PublishErrorKind::MaxPayloadExceeded)) => {
                return Err(Error::usage(
                    "the job is larger than the server's max_payload (is the compose file huge?)",
                ));
            }
            Ok(Err(PublishErrorKind::TimedOut)) | Err(_) => {
                last = format!("no acknowledgement within {}s", TRY_TIMEOUT.as_secs());
            }
            Ok(Err(kind)) => {
                return Err(Error::unavailable(format!(
                    "the jobs stream did not store the job ({kind}); are this user's NATS permissions right, or do {} jobs already wait for this domain on this node?",
                    hostkit_proto::subjects::settings::JOBS_MAX_PER_SUBJECT
                )));
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    Err(Error::unavailable(format!(
        "the jobs stream did not acknowledge the job within {}s ({last}); are this user's NATS permissions right?",
        PUBLISH_TIMEOUT.as_secs()
    )))
}

/// Who asks: `--requested-by`, else the GitHub Actions run, else `user@host`.
pub fn requested_by(explicit: Option<&str>) -> String {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let who = match explicit {
        Some(who) if !who.trim().is_empty() => who.trim().to_owned(),
        _ => match (env("GITHUB_REPOSITORY"), env("GITHUB_RUN_ID")) {
            (Some(repo), Some(run)) => match env("GITHUB_ACTOR") {
                Some(actor) => format!("github:{repo}@{run} ({actor})"),
                None => format!("github:{repo}@{run}"),
            },
            _ => {
                let user = env("USER").or_else(|| env("LOGNAME"));
                let host = env("HOSTNAME").or_else(|| {
                    std::fs::read_to_string("/etc/hostname")
                        .ok()
                        .map(|h| h.trim().to_owned())
                        .filter(|h| !h.is_empty())
                });
                match (user, host) {
                    (Some(user), Some(host)) => format!("{user}@{host}"),
                    (Some(user), None) => user,
                    (None, Some(host)) => format!("hostkit@{host}"),
                    (None, None) => "hostkit-cli".to_owned(),
                }
            }
        },
    };
    let mut who = who;
    if who.len() > MAX_REQUESTED_BY_LEN {
        let mut cut = MAX_REQUESTED_BY_LEN;
        while !who.is_char_boundary(cut) {
            cut -= 1;
        }
        who.truncate(cut);
    }
    who
}

/// The signing key: the seed itself, or a file holding it.
fn signing_key(value: &str) -> Result<KeyPair, Error> {
    let value = value.trim();
    let seed = if value.starts_with('S') && !std::path::Path::new(value).exists() {
        value.to_owned()
    } else {
        std::fs::read_to_string(value)
            .map_err(|e| {
                Error::usage("--sign-key: not an nkey seed, and not a readable file".to_owned())
                    .with_source(e)
            })?
            .trim()
            .to_owned()
    };
    if !seed.starts_with("SU") {
        return Err(Error::usage(
            "--sign-key: expected an nkey user seed (starting with `SU`)",
        ));
    }
    KeyPair::from_seed(&seed).map_err(|_| Error::usage("--sign-key: the nkey seed does not decode"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hostkit_proto::job::StopPayload;

    fn args() -> ConnectArgs {
        use clap::Parser;
        crate::cli::Cli::parse_from(["hostkit", "nodes"]).connect
    }

    #[test]
    fn jobs_are_signed_when_asked() {
        let key = KeyPair::new_user();
        let mut args = args();
        args.sign_key = Some(key.seed().unwrap());
        args.requested_by = Some("tests".into());
        let domain: Domain = "example.com".parse().unwrap();
        let node: NodeId = "vps-1".parse().unwrap();
        let job = make_job(&args, &domain, &node, JobSpec::Stop(StopPayload {})).unwrap();
        assert_eq!(job.requested_by, "tests");
        let trusted = [hostkit_proto::TrustedKey::any_domain(key.public_key())];
        let verified = hostkit_proto::verify_job_bytes(&job.to_vec(), &trusted).unwrap();
        assert_eq!(verified.id, job.id);
        assert_eq!(verified.node.as_ref(), Some(&node));
        hostkit_proto::check_claims(&verified, &trusted, &node, chrono::Utc::now())
            .expect("valid here and now");
    }

    #[test]
    fn a_bad_key_is_a_usage_error() {
        let mut args = args();
        args.sign_key = Some("SUnot-a-seed".into());
        let domain: Domain = "example.com".parse().unwrap();
        let node: NodeId = "vps-1".parse().unwrap();
        let error = make_job(&args, &domain, &node, JobSpec::Stop(StopPayload {})).unwrap_err();
        assert_eq!(error.exit(), crate::error::Exit::Usage);
        assert!(!error.to_string().contains("SUnot"), "{error}");
    }

    #[test]
    fn requested_by_is_bounded() {
        assert_eq!(requested_by(Some(" ci ")), "ci");
        assert!(requested_by(Some(&"x".repeat(1000))).len() <= MAX_REQUESTED_BY_LEN);
        assert!(!requested_by(None).is_empty());
    }
}
