//! `hostkit gc`: deletes image blobs no job needs (DESIGN §6 "blobs no kept
//! version references are collected"). A kept version needs no blob — its
//! images are in the engine, tagged — so a blob is needed only by a job
//! that has not ended: one still in the jobs stream (a worker acks a job
//! when it ends). A blob is deleted when it is older than the grace period
//! and no job in the stream names it; the bucket's age limit collects the
//! rest on its own.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use futures_util::StreamExt;
use hostkit_proto::Job;
use hostkit_proto::job::{ImageSource, JobSpec};

use crate::cli::ConnectArgs;
use crate::connect::{self, Session};
use crate::error::{Error, Exit, is_missing_stream, not_set_up};
use crate::render::{self, Output};
use crate::upload;

/// What the collection found and did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
struct Tally {
    deleted: usize,
    deleted_bytes: u64,
    kept_referenced: usize,
    kept_young: usize,
}

/// `hostkit gc`.
pub async fn gc(
    connect: &ConnectArgs,
    out: &Output,
    older_than: Duration,
    dry_run: bool,
) -> Result<Exit, Error> {
    let session = connect::connect(connect).await?;
    let store = upload::images_store(&session).await?;
    let referenced = referenced_objects(&session).await?;
    let cutoff = async_nats::datetime::now();
    let mut list = store
        .list()
        .await
        .map_err(|e| Error::failed(format!("cannot list {}: {e}", session.images_bucket)))?;
    let mut tally = Tally::default();
    while let Some(info) = list.next().await {
        let info =
            info.map_err(|e| Error::failed(format!("cannot list {}: {e}", session.images_bucket)))?;
        if info.deleted {
            continue;
        }
        if referenced.contains(&info.name) {
            tally.kept_referenced += 1;
            continue;
        }
        let old = info.modified.is_some_and(|at| {
            async_nats::datetime::add_std_duration(at, older_than).is_ok_and(|due| due <= cutoff)
        });
        if !old {
            tally.kept_young += 1;
            continue;
        }
        if !dry_run {
            store
                .delete(&info.name)
                .await
                .map_err(|e| Error::failed(format!("cannot delete {}: {e}", info.name)))?;
        }
        tally.deleted += 1;
        tally.deleted_bytes += info.size as u64;
    }
    if out.json() {
        out.json_line(&tally);
    } else {
        out.line(format!(
            "{}: {} {} blob(s) ({}); kept {} named by a job that has not ended and {} younger than {}",
            session.images_bucket,
            if dry_run { "would delete" } else { "deleted" },
            tally.deleted,
            render::bytes(tally.deleted_bytes),
            tally.kept_referenced,
            tally.kept_young,
            render::duration(older_than)
        ));
    }
    Ok(Exit::Success)
}

/// Every image object named by a job still in the jobs stream.
async fn referenced_objects(session: &Session) -> Result<HashSet<String>, Error> {
    let name = session.names.jobs_stream();
    let mut stream = session.js.get_stream(&name).await.map_err(|e| {
        if is_missing_stream(&e) {
            not_set_up(&format!("the stream {name}"))
        } else {
            Error::failed(format!("cannot read the stream {name}: {e}"))
        }
    })?;
    let state = stream
        .info()
        .await
        .map_err(|e| Error::failed(format!("cannot read the stream {name}: {e}")))?
        .state
        .clone();
    let mut referenced = HashSet::new();
    if state.messages == 0 {
        return Ok(referenced);
    }
    let subject = session.names.jobs_all();
    let mut sequence = state.first_sequence;
    while sequence <= state.last_sequence {
        let message = match stream
            .get_first_raw_message_by_subject(&subject, sequence)
            .await
        {
            Ok(message) => message,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => break,
            Err(e) => {
                return Err(Error::failed(format!(
                    "cannot read the stream {name} (gc needs an operator's rights): {e}"
                )));
            }
        };
        sequence = message.sequence + 1;
        // A message that is not a job names no blob (the worker refuses it).
        let Ok(job) = Job::from_slice(&message.payload) else {
            continue;
        };
        let JobSpec::Deploy(deploy) = &job.spec else {
            continue;
        };
        for source in &deploy.images {
            match source {
                ImageSource::Object { object, .. } => {
                    referenced.insert(object.as_str().to_owned());
                }
                ImageSource::Layers { layers } => {
                    for image in &layers.images {
                        referenced.insert(image.config.object.as_str().to_owned());
                        referenced
                            .extend(image.layers.iter().map(|l| l.object.as_str().to_owned()));
                    }
                }
                ImageSource::Path { .. } | ImageSource::Registry { .. } => {}
            }
        }
    }
    Ok(referenced)
}
