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
#[error("JetStream setup failed: {what}: {message}{}", refused.hint().map(|h| format!(" (hint: {h})")).unwrap_or_default())]
pub struct SetupError {
    /// The object.
    pub what: String,
    /// What the server said.
    pub message: String,
    /// The server refused the request itself: asking again cannot succeed
    /// until the operator changes worker.toml or the server.
    pub refused: Refusal,
}

/// Why the server refused to create a stream or bucket, when it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not a refusal: the server was unreachable, busy or electing a leader.
    None,
    /// `replicas > 1` asked of a server that is not clustered.
    NotClustered,
    /// The store cannot reserve the bounds (or, in a cluster, not enough
    /// servers are up to hold the replicas).
    Resources,
}

impl Refusal {
    /// The refusal in the server's answer `message`.
    fn of(message: &str) -> Refusal {
        let lower = message.to_lowercase();
        if NOT_CLUSTERED_CODES.iter().any(|c| message.contains(c))
            || lower.contains("not supported in non-clustered mode")
        {
            Refusal::NotClustered
        } else if RESOURCE_CODES.iter().any(|c| message.contains(c))
            || lower.contains("insufficient")
        {
            Refusal::Resources
        } else {
            Refusal::None
        }
    }

    /// What the operator can do about it.
    pub fn hint(self) -> Option<&'static str> {
        match self {
            Refusal::None => None,
            Refusal::NotClustered => Some(
                "`[streams] replicas` above 1 needs a JetStream cluster: set it to 1 for a \
                 single nats-server",
            ),
            Refusal::Resources => Some(
                "the server's JetStream store must hold every stream's and bucket's size bound \
                 (`[streams]` jobs_max_bytes, events_max_bytes, and images_max_bytes for each \
                 image bucket); its `max_file_store` defaults to 75% of the free disk: lower \
                 the bounds or raise `max_file_store`. With `replicas` > 1, as many servers of \
                 the cluster must be up",
            ),
        }
    }
}

impl SetupError {
    /// Whether retrying cannot help: the server refused the settings and,
    /// standalone, will go on refusing them. In a cluster a resource
    /// refusal may pass once the servers that are down come back.
    pub fn is_permanent(&self, clustered: bool) -> bool {
        match self.refused {
            Refusal::None => false,
            Refusal::NotClustered => true,
            Refusal::Resources => !clustered,
        }
    }
}

/// JetStream's error codes for the refusals (nats-server's `errors.json`).
const NOT_CLUSTERED_CODES: [&str; 1] = ["error code 10074"];
const RESOURCE_CODES: [&str; 3] = ["error code 10047", "error code 10023", "error code 10005"];

fn setup_err(what: impl Into<String>) -> impl FnOnce(String) -> SetupError {
    let what = what.into();
    move |message| SetupError {
        what,
        refused: Refusal::of(&message),
        message,
    }
}

/// Checks `[streams] replicas` against the server `nats` is connected to,
/// before anything is created: more than one copy needs a clustered
/// server. A cluster that shows fewer servers than copies is only warned
/// about (some may be down for now); JetStream itself then refuses to
/// place the streams until enough are up. Not connected yet (NATS down at
/// boot), nothing is known: the server's own answer to the setup decides.
pub fn check_replicas(nats: &async_nats::Client, replicas: usize) -> Result<(), SetupError> {
    let info = nats.server_info();
    if replicas <= 1 || info.server_id.is_empty() {
        return Ok(());
    }
    let Some(cluster) = info.cluster.as_deref().filter(|name| !name.is_empty()) else {
        return Err(SetupError {
            what: format!("[streams] replicas = {replicas}"),
            message: format!("the server {} is not clustered", info.server_name),
            refused: Refusal::NotClustered,
        });
    };
    let servers = info.connect_urls.len().max(1);
    if servers < replicas {
        tracing::warn!(
            cluster,
            servers,
            replicas,
            "the NATS cluster shows fewer servers than `[streams] replicas`; streams are placed only once enough are up"
        );
    }
    Ok(())
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
        num_replicas: bounds.replicas,
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
        num_replicas: bounds.replicas,
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
            differ(
                "replicas",
                have.num_replicas.to_string(),
                wanted.num_replicas.to_string(),
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
    replicas: usize,
) -> Result<kv::Store, SetupError> {
    if let Ok(store) = js.get_key_value(&bucket).await {
        return Ok(store);
    }
    js.create_key_value(kv::Config {
        bucket: bucket.clone(),
        history,
        storage: StorageType::File,
        num_replicas: replicas,
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
    let placement = ensure_kv(
        js,
        names.placement_bucket(),
        s::PLACEMENT_HISTORY,
        bounds.replicas,
    )
    .await?;
    let nodes = ensure_kv(js, names.nodes_bucket(), s::NODES_HISTORY, bounds.replicas).await?;
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
                num_replicas: bounds.replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| setup_err(format!("create object store {bucket}"))(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_of_the_settings_is_told_apart_from_an_outage() {
        // What async-nats prints for nats-server's answers.
        let not_clustered = setup_err("create stream HOSTKIT_JOBS")(
            "jetstream error: replicas > 1 not supported in non-clustered mode (code 500, error code 10074)"
                .into(),
        );
        assert_eq!(not_clustered.refused, Refusal::NotClustered);
        assert!(not_clustered.is_permanent(false));
        assert!(not_clustered.to_string().contains("`[streams] replicas`"));

        let full = setup_err("create object store hostkit_images_a")(
            "failed to create stream: insufficient storage resources available (code 500, error code 10047)"
                .into(),
        );
        assert_eq!(full.refused, Refusal::Resources);
        assert!(
            full.is_permanent(false),
            "standalone: it will not fit later"
        );
        assert!(!full.is_permanent(true), "clustered: servers may come back");
        assert!(full.to_string().contains("max_file_store"), "{full}");

        let outage = setup_err("stream HOSTKIT_JOBS")("timed out: didn't receive a reply".into());
        assert_eq!(outage.refused, Refusal::None);
        assert!(!outage.is_permanent(false));
        assert!(outage.refused.hint().is_none());
    }
}
