//! Creating or verifying the node's JetStream objects at startup: the jobs
//! and events streams, the node's durable pull consumer, the image object
//! store and the KV buckets, with the settings of DESIGN §3. Idempotent; an
//! existing object whose settings differ is reported, never silently changed.

use async_nats::jetstream::{
    self, consumer, kv, object_store,
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};
use hostkit_proto::subjects::settings::{self as s, StreamBounds};
use hostkit_proto::{Names, NodeId};

use super::image_stores::{ImageStores, PrivateBucket};

/// What startup found or made.
pub struct JetStreamObjects {
    /// The node's durable pull consumer on the jobs stream.
    pub consumer: consumer::PullConsumer,
    /// The image buckets.
    pub images: ImageStores,
    /// Domain → node.
    pub placement: kv::Store,
    /// Node → info.
    pub nodes: kv::Store,
    /// Settings that differ from what HostKit would create (human sentences).
    pub mismatches: Vec<String>,
}

impl std::fmt::Debug for JetStreamObjects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamObjects")
            .field("mismatches", &self.mismatches)
            .finish()
    }
}

/// A JetStream object could not be created or read.
#[derive(Debug, thiserror::Error)]
#[error("JetStream setup failed: {what}: {message}")]
pub struct SetupError {
    /// The object.
    pub what: String,
    /// What the server said.
    pub message: String,
}

fn setup_err(what: impl Into<String>) -> impl FnOnce(String) -> SetupError {
    let what = what.into();
    move |message| SetupError { what, message }
}

/// The jobs stream as HostKit creates it.
pub fn jobs_stream_config(names: &Names, bounds: &StreamBounds) -> stream::Config {
    stream::Config {
        name: names.jobs_stream(),
        subjects: vec![names.jobs_all()],
        retention: RetentionPolicy::WorkQueue,
        storage: StorageType::File,
        duplicate_window: s::JOBS_DUPLICATE_WINDOW,
        max_age: bounds.jobs_max_age,
        max_bytes: bounds.jobs_max_bytes,
        max_messages_per_subject: s::JOBS_MAX_PER_SUBJECT,
        discard: DiscardPolicy::New,
        discard_new_per_subject: true,
        max_message_size: s::JOBS_MAX_MSG_SIZE,
        num_replicas: s::JOBS_REPLICAS,
        ..Default::default()
    }
}

/// The events stream as HostKit creates it.
pub fn events_stream_config(names: &Names, bounds: &StreamBounds) -> stream::Config {
    stream::Config {
        name: names.events_stream(),
        subjects: names.events_stream_subjects(),
        retention: RetentionPolicy::Limits,
        storage: StorageType::File,
        max_age: bounds.events_max_age,
        max_bytes: bounds.events_max_bytes,
        max_message_size: s::EVENTS_MAX_MSG_SIZE,
        duplicate_window: s::EVENTS_DUPLICATE_WINDOW,
        ..Default::default()
    }
}

/// The node's consumer as HostKit creates it.
pub fn consumer_config(names: &Names, node: &NodeId) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(names.jobs_consumer(node)),
        filter_subject: names.jobs_filter(node),
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: s::JOBS_ACK_WAIT,
        max_deliver: s::JOBS_MAX_DELIVER,
        max_ack_pending: s::JOBS_MAX_ACK_PENDING,
        deliver_policy: consumer::DeliverPolicy::All,
        ..Default::default()
    }
}

async fn ensure_stream(
    js: &jetstream::Context,
    wanted: stream::Config,
    mismatches: &mut Vec<String>,
) -> Result<(), SetupError> {
    let name = wanted.name.clone();
    match js.get_stream(&name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| setup_err(format!("stream {name}"))(e.to_string()))?;
            let have = &info.config;
            let mut differ = |what: &str, have: String, want: String| {
                if have != want {
                    mismatches.push(format!(
                        "stream {name}: {what} is {have}, HostKit expects {want}"
                    ));
                }
            };
            differ(
                "subjects",
                format!("{:?}", have.subjects),
                format!("{:?}", wanted.subjects),
            );
            differ(
                "retention",
                format!("{:?}", have.retention),
                format!("{:?}", wanted.retention),
            );
            differ(
                "storage",
                format!("{:?}", have.storage),
                format!("{:?}", wanted.storage),
            );
            if wanted.max_bytes > 0 && have.max_bytes <= 0 {
                mismatches.push(format!(
                    "stream {name}: max_bytes is unbounded, HostKit expects {} bytes",
                    wanted.max_bytes
                ));
            }
            if have.duplicate_window < wanted.duplicate_window {
                mismatches.push(format!(
                    "stream {name}: duplicate_window is {:?}, HostKit expects at least {:?}",
                    have.duplicate_window, wanted.duplicate_window
                ));
            }
            Ok(())
        }
        Err(_) => js
            .create_stream(wanted)
            .await
            .map(|_| ())
            .map_err(|e| setup_err(format!("create stream {name}"))(e.to_string())),
    }
}

async fn ensure_kv(
    js: &jetstream::Context,
    bucket: String,
    history: i64,
) -> Result<kv::Store, SetupError> {
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: bucket.clone(),
        history,
        storage: StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| setup_err(format!("create KV bucket {bucket}"))(e.to_string()))
}

/// Create or verify everything the node needs.
pub async fn ensure(
    js: &jetstream::Context,
    names: &Names,
    node: &NodeId,
    private_buckets: &[PrivateBucket],
    bounds: &StreamBounds,
) -> Result<JetStreamObjects, SetupError> {
    let mut mismatches = Vec::new();
    ensure_stream(js, jobs_stream_config(names, bounds), &mut mismatches).await?;
    ensure_stream(js, events_stream_config(names, bounds), &mut mismatches).await?;

    let shared = names.images_bucket();
    let mut private = Vec::new();
    for rule in private_buckets {
        private.push((rule.clone(), ensure_images(js, &rule.bucket, bounds).await?));
    }
    let images = ImageStores::new(
        (shared.clone(), ensure_images(js, &shared, bounds).await?),
        private,
    );
    let placement = ensure_kv(js, names.placement_bucket(), s::PLACEMENT_HISTORY).await?;
    let nodes = ensure_kv(js, names.nodes_bucket(), s::NODES_HISTORY).await?;
    // The consumer comes last: once it exists, everything the worker needs
    // does (tests and operators wait for it as the sign of a ready node).
    let jobs = js
        .get_stream(names.jobs_stream())
        .await
        .map_err(|e| setup_err("jobs stream")(e.to_string()))?;
    let wanted = consumer_config(names, node);
    let durable = names.jobs_consumer(node);
    let consumer: consumer::PullConsumer = match jobs.get_consumer(&durable).await {
        Ok(existing) => {
            let mut existing: consumer::PullConsumer = existing;
            let info = existing
                .info()
                .await
                .map_err(|e| setup_err(format!("consumer {durable}"))(e.to_string()))?;
            if info.config.filter_subject != wanted.filter_subject {
                mismatches.push(format!(
                    "consumer {durable}: filter_subject is {}, HostKit expects {}",
                    info.config.filter_subject, wanted.filter_subject
                ));
            }
            if info.config.max_deliver != wanted.max_deliver {
                // The worker still starts a job at most JOBS_MAX_ATTEMPTS
                // times; below HostKit's value a job's last delivery is not
                // recognised as such and its message may stay unacked.
                mismatches.push(format!(
                    "consumer {durable}: max_deliver is {}, HostKit expects {}",
                    info.config.max_deliver, wanted.max_deliver
                ));
            }
            existing
        }
        Err(_) => jobs
            .create_consumer(wanted)
            .await
            .map_err(|e| setup_err(format!("create consumer {durable}"))(e.to_string()))?,
    };

    for mismatch in &mismatches {
        tracing::warn!(%mismatch, "JetStream setting differs from HostKit's; left unchanged");
    }
    Ok(JetStreamObjects {
        consumer,
        images,
        placement,
        nodes,
        mismatches,
    })
}

/// An image bucket, created with HostKit's bounds when it is missing.
async fn ensure_images(
    js: &jetstream::Context,
    bucket: &str,
    bounds: &StreamBounds,
) -> Result<object_store::ObjectStore, SetupError> {
    match js.get_object_store(bucket).await {
        Ok(store) => Ok(store),
        Err(_) => js
            .create_object_store(object_store::Config {
                bucket: bucket.to_owned(),
                max_age: bounds.images_max_age,
                max_bytes: bounds.images_max_bytes,
                storage: StorageType::File,
                ..Default::default()
            })
            .await
            .map_err(|e| setup_err(format!("create object store {bucket}"))(e.to_string())),
    }
}
