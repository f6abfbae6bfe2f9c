//! What a job asks for: [`JobSpec`] (kind + payload) and the payload types.
//!
//! On the wire the kind and payload are two top-level fields of the job:
//! `{"kind": "scale", "payload": {"service": "web", "replicas": 3}}`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::env::Env;
use crate::name::{Domain, ImageObjectName};

/// The kind of a job, without its payload (used in events and control
/// replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum JobKind {
    /// Deploy a stack (compose or single image).
    Deploy,
    /// Re-apply an earlier version.
    Rollback,
    /// Change a service's replica count.
    Scale,
    /// Restart one service or the whole stack.
    Restart,
    /// Stop the stack (containers kept).
    Stop,
    /// Start a stopped stack.
    Start,
    /// Remove the stack (volumes kept unless purged).
    Remove,
    /// Adopt a HostKit v1 site (its running container) as version 1.
    Import,
    /// Set or unset the domain's stored variables (applied by the next
    /// deploy or restart).
    Env,
    /// Run a one-off command in a new container of a service's spec.
    Exec,
    /// Copy the stack's named volumes into the node's backup bucket.
    Backup,
    /// Put a backup's volumes back (stack stopped meanwhile, health gated).
    Restore,
    /// A kind this build does not know (from a newer HostKit); never produced
    /// by this build.
    #[serde(other)]
    Unknown,
}

impl JobKind {
    /// Every kind this build can run, in documentation order.
    pub const ALL: &'static [JobKind] = &[
        JobKind::Deploy,
        JobKind::Rollback,
        JobKind::Scale,
        JobKind::Restart,
        JobKind::Stop,
        JobKind::Start,
        JobKind::Remove,
        JobKind::Import,
        JobKind::Env,
        JobKind::Exec,
        JobKind::Backup,
        JobKind::Restore,
    ];

    /// The wire string (`"deploy"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Deploy => "deploy",
            JobKind::Rollback => "rollback",
            JobKind::Scale => "scale",
            JobKind::Restart => "restart",
            JobKind::Stop => "stop",
            JobKind::Start => "start",
            JobKind::Remove => "remove",
            JobKind::Import => "import",
            JobKind::Env => "env",
            JobKind::Exec => "exec",
            JobKind::Backup => "backup",
            JobKind::Restore => "restore",
            JobKind::Unknown => "unknown",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job's kind and payload. Serialized adjacently tagged as the job's
/// top-level `kind` and `payload` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum JobSpec {
    /// Deploy a stack: compose text inline or a single image.
    Deploy(DeployPayload),
    /// Re-apply an earlier version of the stack (whole stack at once).
    Rollback(RollbackPayload),
    /// Set a service's replica count.
    Scale(ScalePayload),
    /// Restart one service, or every service.
    Restart(RestartPayload),
    /// Stop every container of the stack (nothing removed).
    Stop(StopPayload),
    /// Start the stack's containers again.
    Start(StartPayload),
    /// Remove the stack's containers, networks and proxy config; volumes are
    /// kept unless `purge_volumes`.
    Remove(RemovePayload),
    /// Adopt the domain's HostKit v1 site: its running container becomes
    /// version 1 of a one-service stack, taken over start-first behind
    /// nginx (v1's nginx site is retired, its files are kept).
    Import(ImportPayload),
    /// Change the domain's stored variables (kept on the worker, sealed;
    /// used for interpolation and `environment:` pass-through by the next
    /// deploy or restart).
    Env(EnvPayload),
    /// Run a command once in a new container of a service's current spec
    /// (its image, environment, networks and volumes), stream its output,
    /// and end with its exit status. Allowed only for the domains the
    /// worker's `[security] exec_domains` names.
    Exec(ExecPayload),
    /// Copy named volumes of the stack (all when none is named) as tars
    /// into the node's backup bucket; services labelled
    /// `hostkit.backup.stop=true` are stopped for the copy. The backup's id
    /// is this job's id.
    Backup(BackupPayload),
    /// Replace the stack's volumes with a backup's: the stack is stopped,
    /// each volume emptied and filled from the backup (its digest checked),
    /// then started and health gated; on failure the volumes are put back
    /// as they were.
    Restore(RestorePayload),
}

impl JobSpec {
    /// The kind of this spec.
    pub fn kind(&self) -> JobKind {
        match self {
            JobSpec::Deploy(_) => JobKind::Deploy,
            JobSpec::Rollback(_) => JobKind::Rollback,
            JobSpec::Scale(_) => JobKind::Scale,
            JobSpec::Restart(_) => JobKind::Restart,
            JobSpec::Stop(_) => JobKind::Stop,
            JobSpec::Start(_) => JobKind::Start,
            JobSpec::Remove(_) => JobKind::Remove,
            JobSpec::Import(_) => JobKind::Import,
            JobSpec::Env(_) => JobKind::Env,
            JobSpec::Exec(_) => JobKind::Exec,
            JobSpec::Backup(_) => JobKind::Backup,
            JobSpec::Restore(_) => JobKind::Restore,
        }
    }
}

/// Payload of a `deploy` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployPayload {
    /// What to deploy.
    pub source: DeploySource,
    /// Where the worker gets the images from (in addition to images already
    /// present on the node).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageSource>,
    /// Variables for compose interpolation and the containers. Values are
    /// secrets: never logged, never in events.
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub env: Env,
    /// Variables whose values are sealed to the node's key (the CLI seals
    /// `env` this way when the node publishes a key); they win over `env`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_env: Option<crate::sign::seal::SealedEnv>,
    /// Deploy options.
    #[serde(default)]
    pub options: DeployOptions,
}

/// What a deploy deploys. JSON: `{"compose": {...}}` or `{"image": {...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploySource {
    /// A Docker Compose file, inline.
    Compose(ComposeSource),
    /// A single container from one image.
    Image(SingleImage),
}

/// An inline compose file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ComposeSource {
    /// The compose file's text (YAML).
    pub text: String,
    /// The file's name, for error messages (e.g. `docker-compose.yml`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
}

/// A single-container deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SingleImage {
    /// Image reference (`name:tag` or `name@sha256:…`).
    pub reference: String,
    /// The container port to expose through nginx, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

/// Where the worker gets an image from. JSON is one of
/// `{"object": "sha256-<hex>", "size": n}`, `{"path": "/abs/path.tar"}`,
/// `{"registry": "reference"}`, `{"layers": {...}}` ([`LayeredImages`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ImageSource {
    /// A `docker save` tarball in the `hostkit_images` object store.
    Object {
        /// Content-addressed object name.
        object: ImageObjectName,
        /// Size in bytes (for progress).
        size: u64,
    },
    /// A `docker save` tarball already on the node (absolute path).
    Path {
        /// Absolute path on the node.
        path: String,
    },
    /// An image the worker pulls from a registry.
    Registry {
        /// The image reference to pull.
        registry: String,
    },
    /// A `docker save` tarball stored blob by blob: every config and layer
    /// is its own object (DESIGN §11), so a redeploy ships only what
    /// changed. Workers before this variant refuse it (`job.invalid`).
    Layers {
        /// The images and their blobs.
        layers: LayeredImages,
    },
}

/// The version of [`LayeredImages`] this build writes and reads.
pub const LAYERED_FORMAT: u32 = 1;

/// The images of a `docker save` tarball, each named by its blobs' digests.
/// The job carries its manifest (and its signature covers it); the worker
/// builds the tarball it loads from these blobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayeredImages {
    /// [`LAYERED_FORMAT`]; a worker refuses a format it does not know.
    pub format: u32,
    /// The images, in the tarball's order.
    pub images: Vec<LayeredImage>,
}

/// One image: its config and its layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayeredImage {
    /// The image config; the image id is `sha256:` + its object's hex.
    pub config: Blob,
    /// The names the tarball gives it (`repo:tag`).
    #[serde(default)]
    pub repo_tags: Vec<String>,
    /// The layers, base first.
    pub layers: Vec<LayerBlob>,
}

/// A content-named object of the image bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    /// `sha256-<hex>` of its bytes.
    pub object: ImageObjectName,
    /// Its size in bytes.
    pub size: u64,
}

/// A layer: its object and its diff id (the digest of the uncompressed
/// layer tar, as the image config lists it; the same as the object's for
/// the uncompressed layers `docker save` writes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LayerBlob {
    /// `sha256-<hex>` of the layer's bytes as stored.
    pub object: ImageObjectName,
    /// Its size in bytes.
    pub size: u64,
    /// `sha256:<hex>`, from the image config's `rootfs.diff_ids`.
    pub diff_id: String,
}

impl LayeredImages {
    /// Bytes of every distinct blob (configs and layers).
    pub fn total_bytes(&self) -> u64 {
        let mut seen = std::collections::BTreeSet::new();
        self.images
            .iter()
            .flat_map(|i| {
                std::iter::once((&i.config.object, i.config.size))
                    .chain(i.layers.iter().map(|l| (&l.object, l.size)))
            })
            .filter(|(object, _)| seen.insert(object.as_str()))
            .map(|(_, size)| size)
            .sum()
    }
}

impl<'de> Deserialize<'de> for ImageSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;

        #[derive(Deserialize)]
        struct Raw {
            object: Option<ImageObjectName>,
            size: Option<u64>,
            path: Option<String>,
            registry: Option<String>,
            layers: Option<serde_json::Value>,
        }

        let raw = Raw::deserialize(deserializer)?;
        match (raw.object, raw.path, raw.registry, raw.layers) {
            (Some(object), None, None, None) => {
                let size = raw.size.ok_or_else(|| D::Error::missing_field("size"))?;
                Ok(ImageSource::Object { object, size })
            }
            (None, Some(path), None, None) => Ok(ImageSource::Path { path }),
            (None, None, Some(registry), None) => Ok(ImageSource::Registry { registry }),
            (None, None, None, Some(layers)) => {
                let format = layers.get("format").and_then(serde_json::Value::as_u64);
                if format.is_some_and(|f| f > u64::from(LAYERED_FORMAT)) {
                    return Err(D::Error::custom(format!(
                        "layered images of format {} are newer than this worker (it reads format {LAYERED_FORMAT}): upgrade the worker",
                        format.unwrap_or_default()
                    )));
                }
                let layers = LayeredImages::deserialize(layers).map_err(D::Error::custom)?;
                Ok(ImageSource::Layers { layers })
            }
            (None, None, None, None) => Err(D::Error::custom(
                "an image source needs one of `object`, `path`, `registry` or `layers`",
            )),
            _ => Err(D::Error::custom(
                "an image source must have exactly one of `object`, `path`, `registry` or `layers`",
            )),
        }
    }
}

/// Options of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct DeployOptions {
    /// The service nginx proxies to (overrides labels and inference).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main_service: Option<String>,
    /// Seconds every service has to become healthy (worker default if absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout_secs: Option<u32>,
    /// Restore the previous version when the health gate fails.
    #[serde(default = "default_true")]
    pub auto_rollback: bool,
    /// Names answered with a 301 to the domain (HostKit v1's
    /// `redirect_domains`, e.g. `www.example.com`). Absent: the domain keeps
    /// the ones it has (they stay across deploys and rollbacks); `[]`:
    /// none any more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_domains: Option<Vec<Domain>>,
    /// Back up the stack's named volumes before the new version touches
    /// anything (a `snapshot` backup of the current version); its
    /// auto-rollback then restores them, and so does a later
    /// `rollback --with-data`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub snapshot: bool,
}

fn default_true() -> bool {
    true
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            main_service: None,
            health_timeout_secs: None,
            auto_rollback: true,
            redirect_domains: None,
            snapshot: false,
        }
    }
}

/// Payload of a `rollback` job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RollbackPayload {
    /// The version to restore; absent = the version before the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_version: Option<u32>,
    /// Also put back the target version's data: the newest backup of its
    /// volumes (a `--snapshot` deploy's, or one asked for while it ran).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_data: bool,
}

/// Payload of a `scale` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ScalePayload {
    /// The compose service name (exact).
    pub service: String,
    /// Desired replica count (0 stops the service).
    pub replicas: u32,
}

/// Payload of a `restart` job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestartPayload {
    /// The service to restart; absent = every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// Payload of a `stop` job (empty object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StopPayload {}

/// Payload of a `start` job (empty object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct StartPayload {}

/// Payload of a `remove` job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RemovePayload {
    /// Also delete the stack's named volumes (data loss).
    #[serde(default)]
    pub purge_volumes: bool,
}

/// Payload of an `import` job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ImportPayload {
    /// Seconds the new container may take to become healthy (the worker's
    /// default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_timeout_secs: Option<u32>,
}

/// Payload of an `env` job: variables to set and names to unset.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EnvPayload {
    /// Variables to set, in plain (only when the node publishes no sealing
    /// key). Values are secrets: never logged, never in events.
    #[serde(default, skip_serializing_if = "Env::is_empty")]
    pub set: Env,
    /// Variables to set, sealed to the node's key (the CLI's choice when
    /// the node publishes one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed_set: Option<crate::sign::seal::SealedEnv>,
    /// Names to remove.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

impl EnvPayload {
    /// Every name the job sets (plain or sealed).
    pub fn set_names(&self) -> impl Iterator<Item = &str> {
        self.set.names().chain(
            self.sealed_set
                .iter()
                .flat_map(|s| s.values.keys().map(String::as_str)),
        )
    }
}

/// Payload of an `exec` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExecPayload {
    /// The service whose current spec the container is made from.
    pub service: String,
    /// The command and its arguments (exec form; no shell unless asked for).
    pub command: Vec<String>,
    /// Seconds the command may run before it is killed (the worker's
    /// default when absent; at most [`super::MAX_EXEC_TIMEOUT_SECS`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u32>,
}

/// Payload of a `backup` job.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BackupPayload {
    /// The compose keys of the volumes to copy; empty: every named volume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
}

/// Payload of a `restore` job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RestorePayload {
    /// The backup: the id of the job that took it.
    pub backup: super::JobId,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_kind_strings() {
        for &kind in JobKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(serde_json::from_str::<JobKind>(&json).unwrap(), kind);
        }
        assert_eq!(
            serde_json::from_str::<JobKind>("\"migrate\"").unwrap(),
            JobKind::Unknown
        );
    }

    #[test]
    fn image_source_shapes() {
        let hex = "a".repeat(64);
        let cases = [
            (
                format!(r#"{{"object":"sha256-{hex}","size":42}}"#),
                ImageSource::Object {
                    object: ImageObjectName::from_sha256_hex(&hex).unwrap(),
                    size: 42,
                },
            ),
            (
                r#"{"path":"/srv/images/app.tar"}"#.to_owned(),
                ImageSource::Path {
                    path: "/srv/images/app.tar".into(),
                },
            ),
            (
                r#"{"registry":"127.0.0.1:5000/app:1"}"#.to_owned(),
                ImageSource::Registry {
                    registry: "127.0.0.1:5000/app:1".into(),
                },
            ),
        ];
        for (json, source) in cases {
            assert_eq!(serde_json::to_string(&source).unwrap(), json);
            assert_eq!(serde_json::from_str::<ImageSource>(&json).unwrap(), source);
        }
    }

    #[test]
    fn layered_sources_round_trip_and_a_newer_format_is_refused_by_name() {
        let hex = |c: char| c.to_string().repeat(64);
        let json = format!(
            r#"{{"layers":{{"format":1,"images":[{{"config":{{"object":"sha256-{c}","size":10}},"repo_tags":["web:v1"],"layers":[{{"object":"sha256-{l}","size":20,"diff_id":"sha256:{l}"}}]}}]}}}}"#,
            c = hex('c'),
            l = hex('1')
        );
        let source: ImageSource = serde_json::from_str(&json).unwrap();
        let ImageSource::Layers { layers } = &source else {
            panic!("{source:?}")
        };
        assert_eq!(layers.images[0].layers[0].size, 20);
        assert_eq!(layers.total_bytes(), 30);
        assert_eq!(serde_json::to_string(&source).unwrap(), json);
        let newer = json.replace(r#""format":1"#, r#""format":2"#);
        let err = serde_json::from_str::<ImageSource>(&newer).unwrap_err();
        assert!(err.to_string().contains("newer than this worker"), "{err}");
    }

    #[test]
    fn image_source_rejects_ambiguous_or_incomplete() {
        let hex = "a".repeat(64);
        for (json, message) in [
            (r#"{}"#.to_owned(), "needs one of"),
            (r#"{"path":"/a","registry":"b"}"#.to_owned(), "exactly one"),
            (format!(r#"{{"object":"sha256-{hex}"}}"#), "size"),
            (
                r#"{"object":"sha256-nothex","size":1}"#.to_owned(),
                "sha256",
            ),
        ] {
            let err = serde_json::from_str::<ImageSource>(&json).unwrap_err();
            assert!(err.to_string().contains(message), "{json}: {err}");
        }
        let extra: ImageSource = serde_json::from_str(r#"{"path":"/a","checksum":"x"}"#).unwrap();
        assert_eq!(extra, ImageSource::Path { path: "/a".into() });
    }

    #[test]
    fn deploy_options_default_auto_rollback_on() {
        let options: DeployOptions = serde_json::from_str("{}").unwrap();
        assert!(options.auto_rollback);
        assert_eq!(options, DeployOptions::default());
        let payload: DeployPayload =
            serde_json::from_str(r#"{"source":{"image":{"reference":"nginx:1"}}}"#).unwrap();
        assert!(payload.options.auto_rollback);
        assert!(payload.env.is_empty() && payload.images.is_empty());
    }
}
