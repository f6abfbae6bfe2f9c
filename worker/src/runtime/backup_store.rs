//! The node's backup bucket (`<root>_backups_<node>`, DESIGN §12): made on
//! first use, so a worker whose NATS user may not create it still starts
//! (a backup then fails `backup.failed`, naming the bucket). No age limit:
//! backups go only by retention, with their rows.

use async_nats::jetstream::{self, object_store};
use tokio::sync::OnceCell;

/// The backup bucket, opened or created when a job first needs it.
pub struct BackupStore {
    js: jetstream::Context,
    bucket: String,
    replicas: usize,
    store: OnceCell<object_store::ObjectStore>,
}

impl std::fmt::Debug for BackupStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupStore")
            .field("bucket", &self.bucket)
            .finish_non_exhaustive()
    }
}

impl BackupStore {
    /// The bucket `bucket` through `js`, made with `replicas` copies
    /// (nothing is contacted yet).
    pub fn new(js: jetstream::Context, bucket: String, replicas: usize) -> BackupStore {
        BackupStore {
            js,
            bucket,
            replicas,
            store: OnceCell::new(),
        }
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The bucket, opened or created.
    pub async fn get(&self) -> Result<&object_store::ObjectStore, String> {
        self.store
            .get_or_try_init(|| async {
                match self.js.get_object_store(&self.bucket).await {
                    Ok(store) => Ok(store),
                    Err(_) => self
                        .js
                        .create_object_store(object_store::Config {
                            bucket: self.bucket.clone(),
                            description: Some("HostKit backups of this node's volumes".into()),
                            storage: jetstream::stream::StorageType::File,
                            num_replicas: self.replicas,
                            ..Default::default()
                        })
                        .await
                        .map_err(|e| {
                            format!(
                                "cannot open or create the object store {}: {e}",
                                self.bucket
                            )
                        }),
                }
            })
            .await
    }
}
