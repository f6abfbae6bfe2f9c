//! Command-line interface of `hostkit`: every command, flag and help text
//! (clap derive). Parsing only; the commands live in [`crate::commands`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use hostkit_proto::{Domain, JobId, NodeId};

/// Exit codes, shown at the end of `hostkit --help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  succeeded
  1  failed (nothing rolled back), or the worker refused the request
  2  bad usage, or input rejected before anything was published
  3  failed, and the previous version was restored (rolled back)
  4  timed out, NATS unreachable, or no worker answering
  130  interrupted (Ctrl-C); the job keeps running (see `hostkit follow`)
  `hostkit exec` exits with the command's own status";

const MAIN_EXAMPLES: &str = "\
Examples:
  hostkit deploy example.com docker-compose.yml --images images.tar
  hostkit deploy example.com app.tar                  # one image, one container
  hostkit status
  hostkit compose logs example.com web -f
  hostkit rollback example.com --to v3";

/// HostKit: deploy Docker Compose stacks to VPS workers over NATS.
///
/// Uploads image tarballs to the NATS object store, publishes jobs for the
/// node that hosts a domain and follows them to their end; asks workers for
/// status, services, versions and logs. Talks only to NATS.
#[derive(Debug, Parser)]
#[command(
    name = "hostkit",
    version,
    about,
    long_about,
    after_help = EXIT_CODES_HELP,
    after_long_help = format!("{MAIN_EXAMPLES}\n\n{EXIT_CODES_HELP}"),
)]
pub struct Cli {
    /// How to reach NATS.
    #[command(flatten)]
    pub connect: ConnectArgs,

    /// Machine-readable output: job events as NDJSON (one event per line,
    /// the last one terminal), replies as JSON.
    #[arg(long, global = true)]
    pub json: bool,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// NATS connection and job signing.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// NATS server URL(s), comma-separated.
    #[arg(
        long,
        global = true,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        value_name = "URL"
    )]
    pub server: String,

    /// NATS credentials file (JWT and nkey seed).
    #[arg(long, global = true, env = "NATS_CREDS", value_name = "FILE")]
    pub creds: Option<String>,

    /// File holding an nkey user seed (`SU…`) to authenticate with.
    #[arg(long, global = true, value_name = "FILE")]
    pub nkey: Option<String>,

    /// NATS user name (with --password).
    #[arg(long, global = true, env = "NATS_USER")]
    pub user: Option<String>,

    /// NATS password (with --user).
    #[arg(long, global = true, env = "NATS_PASSWORD", hide_env_values = true)]
    pub password: Option<String>,

    /// NATS token.
    #[arg(long, global = true, env = "NATS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// CA certificate (PEM) to verify the server with, e.g. the `ca.pem`
    /// of scripts/nats-tls.sh; implies TLS. (Servers with a certificate of
    /// a public CA need none.)
    #[arg(long, global = true, env = "NATS_CA", value_name = "FILE")]
    pub tls_ca: Option<String>,

    /// Inbox prefix for replies, when the server gives this user its own.
    #[arg(long, global = true, env = "NATS_INBOX_PREFIX", value_name = "PREFIX")]
    pub inbox_prefix: Option<String>,

    /// Sign jobs with this nkey user seed (`SU…`), given as the seed itself
    /// or as a file holding it; needed when workers require signed jobs.
    #[arg(
        long,
        global = true,
        env = "HOSTKIT_SIGNING_KEY",
        hide_env_values = true,
        value_name = "SEED|FILE"
    )]
    pub sign_key: Option<String>,

    /// The object store image tarballs are uploaded to: a tenant's private
    /// bucket (its domains' `[[security.image_buckets]]` on the workers).
    /// Default: the fleet's shared `<root>_images`.
    #[arg(
        long,
        global = true,
        env = "HOSTKIT_IMAGE_BUCKET",
        value_name = "BUCKET"
    )]
    pub image_bucket: Option<String>,

    /// Subject root shared with the workers.
    #[arg(
        long,
        global = true,
        env = "HOSTKIT_SUBJECT_ROOT",
        default_value = "hostkit",
        value_name = "ROOT"
    )]
    pub subject_root: String,

    /// Who asks, recorded in jobs (default: the GitHub run, or user@host).
    #[arg(long, global = true, env = "HOSTKIT_REQUESTED_BY", value_name = "WHO")]
    pub requested_by: Option<String>,
}

impl ConnectArgs {
    /// The same options with empty values (e.g. `NATS_CREDS=` from an unset
    /// CI secret) treated as not given.
    pub fn without_empty(mut self) -> Self {
        for value in [
            &mut self.creds,
            &mut self.nkey,
            &mut self.user,
            &mut self.password,
            &mut self.token,
            &mut self.tls_ca,
            &mut self.inbox_prefix,
            &mut self.image_bucket,
            &mut self.sign_key,
            &mut self.requested_by,
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                *value = None;
            }
        }
        self
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Deploy a compose stack, a single image, or a seed bundle to a domain.
    #[command(after_help = DEPLOY_EXAMPLES)]
    Deploy(DeployArgs),

    /// Restore an earlier version of a domain's stack (default: the previous one).
    #[command(
        after_help = "Examples:\n  hostkit rollback example.com\n  hostkit rollback example.com --to v3"
    )]
    Rollback {
        /// The domain.
        domain: Domain,
        /// The version to restore (`v3` or `3`); default: the one before the current.
        #[arg(long, value_parser = parse_version, value_name = "vN")]
        to: Option<u32>,
        /// Also put that version's data back: the newest backup of its
        /// volumes (a `deploy --snapshot`'s, or `hostkit backup`'s).
        #[arg(long)]
        with_data: bool,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// Set the number of replicas of a service.
    #[command(after_help = "Example:\n  hostkit scale example.com web 3")]
    Scale(ScaleArgs),

    /// Restart one service, or every service of the stack.
    #[command(
        after_help = "Examples:\n  hostkit restart example.com\n  hostkit restart example.com worker"
    )]
    Restart {
        /// The domain.
        domain: Domain,
        /// The service (default: every service).
        service: Option<String>,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// Stop the stack's containers (nothing is removed).
    #[command(after_help = "Example:\n  hostkit stop example.com")]
    Stop {
        /// The domain.
        domain: Domain,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// Start a stopped stack again.
    #[command(after_help = "Example:\n  hostkit start example.com")]
    Start {
        /// The domain.
        domain: Domain,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// Remove the stack (containers, networks, nginx config); volumes are kept
    /// unless --purge-volumes. Asks first unless --yes.
    #[command(
        after_help = "Examples:\n  hostkit remove example.com\n  hostkit remove example.com --purge-volumes --yes"
    )]
    Remove {
        /// The domain.
        domain: Domain,
        /// Also delete the stack's named volumes (their data is lost).
        #[arg(long)]
        purge_volumes: bool,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long, short = 'y')]
        yes: bool,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// Adopt HostKit v1 sites without downtime: the running v1 container
    /// becomes version 1 of a one-service stack, HostKit takes over its
    /// nginx site, and v1's container is stopped once HostKit serves.
    #[command(
        after_help = "Examples:\n  hostkit import example.com --node vps-1\n  hostkit import --all --node vps-1"
    )]
    Import(ImportArgs),

    /// Services of a stack: list, logs, restart, scale.
    #[command(subcommand)]
    Compose(ComposeCommand),

    /// Operator tools that need no worker.
    #[command(subcommand)]
    Admin(AdminCommand),

    /// Fleet overview (nodes, domains, versions, health), or one domain's state.
    #[command(after_help = "Examples:\n  hostkit status\n  hostkit status example.com")]
    Status {
        /// Only this domain (with its services).
        domain: Option<Domain>,
        /// The node that hosts the domain (default: from placement).
        #[arg(long)]
        node: Option<NodeId>,
    },

    /// A domain's stored variables: kept on its worker (sealed), used for
    /// interpolation and `environment:` pass-through by the next deploy or
    /// restart. `list` shows names, never values.
    #[command(subcommand)]
    Env(EnvCommand),

    /// Run a command once in a new container of a service's current spec
    /// (its image, environment, networks and volumes; no ports), stream its
    /// output, and exit with its status. The worker must allow it for the
    /// domain (`exec_domains` in worker.toml).
    #[command(
        after_help = "Examples:\n  hostkit exec example.com web -- ./manage.py migrate\n  hostkit exec example.com db --run-timeout 5m -- sh -c 'pg_dump app > /backup/app.sql'"
    )]
    Exec(ExecArgs),

    /// Copy the stack's named volumes (all, or those named) into the
    /// node's backup bucket; services labelled `hostkit.backup.stop=true`
    /// are stopped for the copy. Prints the backup's id.
    #[command(
        after_help = "Examples:\n  hostkit backup example.com\n  hostkit backup example.com db-data"
    )]
    Backup {
        /// The domain.
        domain: Domain,
        /// Volumes (their keys in the compose file); default: every named volume.
        volumes: Vec<String>,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// The backups a node keeps of a domain's volumes.
    #[command(after_help = "Example:\n  hostkit backups example.com")]
    Backups {
        /// The domain.
        domain: Domain,
        /// The node that hosts the domain (default: from placement).
        #[arg(long)]
        node: Option<NodeId>,
    },

    /// Replace the stack's volumes with a backup's: the stack is stopped,
    /// the volumes as they are kept as a `pre_restore` backup, the backup
    /// written, the stack started and health gated; on failure the volumes
    /// are put back as they were.
    #[command(after_help = "Example:\n  hostkit restore example.com 01JB9Q4T8V3C5X7N2M6K1R0A9D")]
    Restore {
        /// The domain.
        domain: Domain,
        /// The backup's id (`hostkit backups <domain>`).
        backup: JobId,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// The recorded versions of a domain's stack.
    #[command(after_help = "Example:\n  hostkit versions example.com")]
    Versions {
        /// The domain.
        domain: Domain,
        /// The node that hosts the domain (default: from placement).
        #[arg(long)]
        node: Option<NodeId>,
    },

    /// The worker nodes known to this NATS and whether they are alive.
    Nodes,

    /// A live web view of the fleet: nodes, domains with their versions,
    /// services and health, running jobs with their steps, each job's
    /// history. Reads the events stream and the node registry (the
    /// read-only `dashboard` identity is enough); serves until Ctrl-C.
    #[command(
        after_help = "Example:\n  NATS_USER=dashboard NATS_PASSWORD=… hostkit dashboard --listen 127.0.0.1:8470"
    )]
    Dashboard {
        /// Address to serve the page on.
        #[arg(long, default_value = "127.0.0.1:8470", value_name = "ADDR")]
        listen: std::net::SocketAddr,
    },

    /// Delete image blobs no job needs: older than --older-than and named
    /// by no job still in the jobs stream (waiting or running). Kept
    /// versions need none (their images are in the engine). Reads the jobs
    /// stream: an operator's (admin) identity.
    #[command(after_help = "Examples:\n  hostkit gc --dry-run\n  hostkit gc --older-than 6h")]
    Gc {
        /// Only blobs stored longer ago than this.
        #[arg(long, value_parser = parse_duration, default_value = "24h", value_name = "DURATION")]
        older_than: Duration,
        /// Say what would be deleted, delete nothing.
        #[arg(long)]
        dry_run: bool,
    },

    /// Live events (jobs, health, nodes) until Ctrl-C.
    #[command(
        after_help = "Examples:\n  hostkit watch\n  hostkit watch example.com --kind failed --kind unhealthy\n  hostkit watch --json"
    )]
    Watch {
        /// Only this domain's events.
        domain: Option<Domain>,
        /// Only events of these kinds (`step`, `failed`, `unhealthy`, `heartbeat`, …).
        #[arg(long, value_name = "KIND")]
        kind: Vec<String>,
        /// Only events from this node.
        #[arg(long)]
        node: Option<NodeId>,
        /// Also show heartbeats (hidden unless asked for, here or with --kind).
        #[arg(long)]
        heartbeats: bool,
    },

    /// Re-attach to a job: replay its events from the start, then follow it
    /// to its end (exit code as for the command that published it).
    #[command(after_help = "Example:\n  hostkit follow 01JB9Q4T8V3C5X7N2M6K1R0A9D")]
    Follow {
        /// The job id (printed when the job was published).
        job_id: JobId,
        /// Give up after this long (exit 4), e.g. `90s`, `10m`.
        #[arg(long, value_parser = parse_duration, default_value = "30m")]
        timeout: Duration,
    },
}

const DEPLOY_EXAMPLES: &str = "\
Forms:
  hostkit deploy <domain> <compose-file> [--images <tar>]...   a compose stack
  hostkit deploy <domain> <image.tar> [--port N]               one container from a `docker save` tarball
  hostkit deploy <domain> <bundle.tar> --compose               a tar holding docker-compose.yml and image tars

The compose file is checked locally first (same loader and policy as the
worker): a mistake fails in milliseconds, naming the key and line (exit 2).
Image tarballs are uploaded by content (sha256): one already in NATS is not
sent again.

Examples:
  hostkit deploy example.com docker-compose.yml --images images.tar
  hostkit deploy example.com docker-compose.yml --images web.tar --images db.tar \\
      --env-file prod.env --env TAG=1.4.2 --timeout 10m
  hostkit deploy example.com docker-compose.yml --images images.tar --profile workers
  hostkit deploy example.com app.tar --port 8080 --node vps-1
  hostkit deploy example.com release.tar --compose";

/// `hostkit deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The domain (e.g. example.com).
    pub domain: Domain,

    /// A compose file, a `docker save` tarball (one image), or with
    /// --compose a tar holding docker-compose.yml and image tarballs.
    pub file: PathBuf,

    /// `docker save` tarball(s) with the stack's images; repeatable.
    #[arg(long = "images", value_name = "TAR")]
    pub images: Vec<PathBuf>,

    /// Upload each tarball as one object, as for a worker before layered
    /// images (by default a tarball goes blob by blob, sending only the
    /// layers the bucket lacks, when the node's worker loads them).
    #[arg(long)]
    pub whole_tarballs: bool,

    /// Variable for interpolation and the containers: `KEY=VALUE`, or `KEY`
    /// to pass this environment's value; repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// File of `KEY=VALUE` lines (--env wins over it).
    #[arg(long, value_name = "FILE")]
    pub env_file: Option<PathBuf>,

    /// Compose profile to activate (services with `profiles:` are deployed
    /// only when one of theirs is active; `*` activates all); repeatable.
    /// Sets COMPOSE_PROFILES in the job's env, over --env and --env-file.
    #[arg(long = "profile", value_name = "NAME")]
    pub profile: Vec<String>,

    /// The service nginx proxies to (default: labels, or the only one with ports).
    #[arg(long, value_name = "SERVICE")]
    pub main_service: Option<String>,

    /// FILE is a tar holding docker-compose.yml and the image tarballs.
    #[arg(long)]
    pub compose: bool,

    /// Container port of a single-image deploy (default: the image's only
    /// exposed port, else 80).
    #[arg(long)]
    pub port: Option<u16>,

    /// How long every service has to become healthy (worker default if unset).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub health_timeout: Option<Duration>,

    /// Keep the failed version instead of restoring the previous one.
    #[arg(long)]
    pub no_rollback: bool,

    /// Back up the stack's named volumes before the new version touches
    /// them; its auto-rollback, and a later `rollback --with-data`, put
    /// that data back (a migration that broke the schema is undone with
    /// the code). Also on when a service has the label
    /// `hostkit.snapshot: "true"`.
    #[arg(long)]
    pub snapshot: bool,

    /// A name answered with a 301 to the domain (e.g. www.example.com);
    /// repeatable. Replaces the domain's redirect domains; without it they
    /// stay as they are.
    #[arg(
        long = "redirect-domain",
        value_name = "NAME",
        conflicts_with = "no_redirect_domains"
    )]
    pub redirect_domain: Vec<Domain>,

    /// Remove every redirect domain of the domain.
    #[arg(long)]
    pub no_redirect_domains: bool,

    /// Job options.
    #[command(flatten)]
    pub job: JobArgs,
}

/// `hostkit import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The v1 site's domain.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub domain: Option<Domain>,
    /// Every importable v1 site of the node given with --node.
    #[arg(long, requires = "node")]
    pub all: bool,
    /// How long the new container may take to become healthy (e.g. `2m`).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub health_timeout: Option<Duration>,
    /// Job options.
    #[command(flatten)]
    pub job: JobArgs,
}

impl DeployArgs {
    /// The job's `redirect_domains`: `None` keeps the domain's.
    pub fn redirect_domains(&self) -> Option<Vec<Domain>> {
        if self.no_redirect_domains {
            Some(Vec::new())
        } else if self.redirect_domain.is_empty() {
            None
        } else {
            Some(self.redirect_domain.clone())
        }
    }
}

/// `hostkit scale` and `hostkit compose scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// The domain.
    pub domain: Domain,
    /// The service.
    pub service: String,
    /// Desired number of replicas (0 stops the service).
    pub replicas: u32,
    /// Job options.
    #[command(flatten)]
    pub job: JobArgs,
}

/// `hostkit env …`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Set variables (`KEY=VALUE`, or `KEY` to take its value from this
    /// environment); values are sealed to the node's key.
    #[command(
        after_help = "Examples:\n  hostkit env set example.com DB_PASSWORD=s3cr3t MODE=production\n  hostkit env set example.com API_TOKEN        # its value from this shell\n  hostkit restart example.com                  # running containers get them"
    )]
    Set {
        /// The domain.
        domain: Domain,
        /// `KEY=VALUE` or `KEY`.
        #[arg(required = true, value_name = "KEY[=VALUE]")]
        vars: Vec<String>,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },
    /// Remove variables.
    #[command(after_help = "Example:\n  hostkit env unset example.com MODE")]
    Unset {
        /// The domain.
        domain: Domain,
        /// Names to remove.
        #[arg(required = true, value_name = "KEY")]
        keys: Vec<String>,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },
    /// The names of the stored variables (never their values).
    #[command(after_help = "Example:\n  hostkit env list example.com")]
    List {
        /// The domain.
        domain: Domain,
        /// The node that hosts the domain (default: from placement).
        #[arg(long)]
        node: Option<NodeId>,
    },
}

/// `hostkit exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// The domain.
    pub domain: Domain,
    /// The service whose spec the container is made from.
    pub service: String,
    /// The command and its arguments (after `--`).
    #[arg(last = true, required = true, value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Kill the command after this long (default: the worker's, 10m; at
    /// most 1h).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub run_timeout: Option<Duration>,
    /// Job options.
    #[command(flatten)]
    pub job: JobArgs,
}

/// Options of every command that publishes a job.
#[derive(Debug, Clone, Args)]
pub struct JobArgs {
    /// The node that hosts the domain (default: from placement, written by
    /// the worker at the first deploy).
    #[arg(long)]
    pub node: Option<NodeId>,

    /// Give up waiting after this long (exit 4), e.g. `90s`, `10m`, `1h`.
    #[arg(long, value_parser = parse_duration, default_value = "30m", value_name = "DURATION")]
    pub timeout: Duration,

    /// Publish the job and exit 0 without following it.
    #[arg(long)]
    pub no_wait: bool,
}

/// `hostkit admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Print the nats-server user block of a CI identity confined to its
    /// own domains' jobs, events and control requests (paste it into the
    /// HOSTKIT account's users).
    /// With `--image-bucket`, the identity uploads to that private bucket
    /// instead of the shared one, and the lines the workers need for it
    /// follow the block.
    #[command(
        after_help = "Examples:\n  hostkit admin nats-user --domain example.com --domain shop.example.com\n  hostkit admin nats-user --domain example.com --image-bucket hostkit_images_example_com\n  hostkit admin nats-user --domain example.com --account-seed account.nk > ci-example-com.creds"
    )]
    NatsUser {
        /// A domain the identity may act on (repeatable; no wildcards).
        #[arg(long = "domain", required = true, value_name = "DOMAIN")]
        domains: Vec<String>,
        /// The user name (default: `ci-<first domain>`).
        #[arg(long)]
        user: Option<String>,
        /// Operator (JWT) mode: a file holding the account's seed (`SA…`,
        /// the account key or one of its signing keys). Prints a NATS
        /// credentials file (user JWT with these rights + a new user seed)
        /// instead of the config block.
        #[arg(long, value_name = "FILE")]
        account_seed: Option<PathBuf>,
        /// The account's public key (`A…`), when --account-seed holds one
        /// of its signing keys rather than the account key itself.
        #[arg(long, value_name = "KEY", requires = "account_seed")]
        account: Option<String>,
    },

    /// Make a job-signing key for a CI identity: prints its seed (the CI's
    /// HOSTKIT_SIGNING_KEY secret) and the `[[security.job_keys]]` entry
    /// binding its public key to the domains, for every worker's
    /// worker.toml.
    #[command(
        after_help = "Example:\n  hostkit admin job-key --domain example.com --domain '*.example.com'"
    )]
    JobKey {
        /// A domain pattern the key may sign for (`example.com`,
        /// `*.example.com`; repeatable).
        #[arg(long = "domain", required = true, value_name = "PATTERN")]
        domains: Vec<String>,
    },
}

/// `hostkit compose …` (the seed's command names).
#[derive(Debug, Subcommand)]
pub enum ComposeCommand {
    /// The services of a stack, their replicas, state, health and ports.
    #[command(after_help = "Example:\n  hostkit compose services example.com")]
    Services {
        /// The domain.
        domain: Domain,
        /// The node that hosts the domain (default: from placement).
        #[arg(long)]
        node: Option<NodeId>,
    },

    /// Log lines of a service (every replica; with -f the first one, live).
    #[command(
        after_help = "Examples:\n  hostkit compose logs example.com web --tail 50\n  hostkit compose logs example.com web -f"
    )]
    Logs {
        /// The domain.
        domain: Domain,
        /// The service.
        service: String,
        /// Keep streaming new lines until Ctrl-C.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Last lines to show first (worker default 100, at most 10000).
        #[arg(long, short = 'n', value_name = "N")]
        tail: Option<u32>,
        /// The node that hosts the domain (default: from placement).
        #[arg(long)]
        node: Option<NodeId>,
    },

    /// Restart one service.
    #[command(after_help = "Example:\n  hostkit compose restart example.com web")]
    Restart {
        /// The domain.
        domain: Domain,
        /// The service.
        service: String,
        /// Job options.
        #[command(flatten)]
        job: JobArgs,
    },

    /// Set the number of replicas of a service.
    #[command(after_help = "Example:\n  hostkit compose scale example.com web 3")]
    Scale(ScaleArgs),
}

/// Parses `90`, `90s`, `500ms`, `10m`, `1h`, `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} (expected e.g. 90s, 10m, 1h30m, 500ms)");
    let text = text.trim();
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ms" => Duration::from_millis(value),
            "s" => Duration::from_secs(value),
            "m" => Duration::from_secs(value * 60),
            "h" => Duration::from_secs(value * 3600),
            _ => return Err(bad()),
        };
        total += unit;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Parses a version: `v3` or `3`.
pub fn parse_version(text: &str) -> Result<u32, String> {
    let digits = text.strip_prefix('v').unwrap_or(text);
    match digits.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("invalid version {text:?} (expected v1, v2, …)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn empty_values_are_not_given() {
        let mut args = Cli::try_parse_from(["hostkit", "nodes", "--creds", "", "--token", "t"])
            .unwrap()
            .connect;
        args.sign_key = Some(" ".into());
        let args = args.without_empty();
        assert_eq!((args.creds, args.sign_key), (None, None));
        assert_eq!(args.token.as_deref(), Some("t"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        for bad in ["", "m", "10x", "1.5m", "-3s", "s10"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirect_domains_are_kept_set_or_cleared() {
        let deploy = |extra: &[&str]| -> DeployArgs {
            let mut argv = vec!["hostkit", "deploy", "example.com", "stack.yml"];
            argv.extend(extra);
            match Cli::try_parse_from(argv).unwrap().command {
                Command::Deploy(args) => args,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(deploy(&[]).redirect_domains(), None);
        assert_eq!(
            deploy(&[
                "--redirect-domain",
                "WWW.Example.com",
                "--redirect-domain",
                "example.net"
            ])
            .redirect_domains()
            .unwrap()
            .iter()
            .map(Domain::as_str)
            .collect::<Vec<_>>(),
            ["www.example.com", "example.net"]
        );
        assert_eq!(
            deploy(&["--no-redirect-domains"]).redirect_domains(),
            Some(vec![])
        );
        let argv = [
            "hostkit",
            "deploy",
            "example.com",
            "s.yml",
            "--redirect-domain",
            "bad..name",
        ];
        assert!(Cli::try_parse_from(argv).is_err());
        let argv = [
            "hostkit",
            "deploy",
            "example.com",
            "s.yml",
            "--redirect-domain",
            "a.example",
            "--no-redirect-domains",
        ];
        assert!(Cli::try_parse_from(argv).is_err());
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("v3"), Ok(3));
        assert_eq!(parse_version("12"), Ok(12));
        assert!(parse_version("v0").is_err());
        assert!(parse_version("latest").is_err());
    }

    #[test]
    fn seed_forms_parse() {
        let cli = Cli::try_parse_from(["hostkit", "deploy", "example.com", "app.tar"]).unwrap();
        let Command::Deploy(args) = cli.command else {
            panic!("deploy")
        };
        assert_eq!(args.file, PathBuf::from("app.tar"));
        assert!(!args.compose);
        let cli = Cli::try_parse_from(["hostkit", "deploy", "example.com", "b.tar", "--compose"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Deploy(DeployArgs { compose: true, .. })
        ));
        let cli = Cli::try_parse_from(["hostkit", "compose", "logs", "example.com", "web", "-f"])
            .unwrap();
        assert!(matches!(
            cli.command,
            Command::Compose(ComposeCommand::Logs { follow: true, .. })
        ));
    }

    #[test]
    fn help_documents_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for line in [
            "0  succeeded",
            "3  failed, and the previous version",
            "4  timed out",
        ] {
            assert!(help.contains(line), "{line} missing from:\n{help}");
        }
    }
}
