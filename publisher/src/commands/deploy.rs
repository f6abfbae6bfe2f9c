//! `hostkit deploy`: a compose file with image tarballs, a single image
//! tarball (the seed's `deploy <domain> <image.tar>`), or a bundle tar
//! (the seed's `deploy <domain> <bundle.tar> --compose`).
//!
//! Order: read the env, check everything local (compose file, tarballs) so
//! that bad input fails before NATS is even contacted (exit 2), connect,
//! find the node, upload what is not there yet, publish, follow.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hostkit_deploy::compose::profiles;
use hostkit_proto::JobSpec;
use hostkit_proto::job::{
    ComposeSource, DeployOptions, DeployPayload, DeploySource, Env, MAX_COMPOSE_BYTES, SingleImage,
    is_valid_env_key,
};
use tokio::time::Instant;

use super::job::{self, JobRequest};
use crate::cli::{ConnectArgs, DeployArgs};
use crate::error::{Error, Exit};
use crate::render::{self, Output};
use crate::tarball::{self, Bundle, SavedImage};
use crate::{connect, layers, placement, upload, validate};

/// Container port of a single-image deploy when the image does not say.
const DEFAULT_PORT: u16 = 80;

/// What to deploy and what to upload for it.
#[derive(Debug)]
struct Plan {
    source: DeploySource,
    uploads: Vec<PathBuf>,
    /// An unpacked bundle, kept until the uploads are done.
    _bundle: Option<Bundle>,
}

/// `hostkit deploy`.
pub async fn deploy(connect: &ConnectArgs, out: &Output, args: &DeployArgs) -> Result<Exit, Error> {
    let started = Instant::now();
    let deadline = started + args.job.timeout;
    let env = job_env(args)?;
    let plan = prepare(args, &env, out).await?;

    let session = connect::connect(connect).await?;
    let node = placement::node_for(&session, &args.domain, args.job.node.as_ref()).await?;
    let store = upload::images_store(&session).await?;
    // The node's record (read once): whether its worker loads layered
    // sources, and the key env values are sealed to.
    let info = if plan.uploads.is_empty() && env.is_empty() {
        None
    } else {
        placement::node_info(&session, &node).await?
    };
    let layered = !args.whole_tarballs && info.as_ref().is_some_and(|i| i.layered_images);
    let mut images = Vec::new();
    let mut sent = 0u64;
    for path in &plan.uploads {
        let upload = upload_images(&store, path, layered, out);
        let (source, bytes) = tokio::time::timeout_at(deadline, upload)
            .await
            .map_err(|_| {
                Error::unavailable(format!(
                    "timed out after {} while uploading {}",
                    render::duration(started.elapsed()),
                    path.display()
                ))
            })??;
        sent += bytes;
        images.push(source);
    }
    if !plan.uploads.is_empty() {
        out.line(format!(
            "images: {} tarball(s), {} sent ({sent} bytes)",
            plan.uploads.len(),
            render::bytes(sent)
        ));
    }
    let health_timeout_secs = args
        .health_timeout
        .map(|d| u32::try_from(d.as_secs().max(1)).unwrap_or(u32::MAX));
    let (env, sealed_env) = seal(info.as_ref(), &node, env, out)?;
    let spec = JobSpec::Deploy(DeployPayload {
        source: plan.source,
        images,
        env,
        sealed_env,
        options: DeployOptions {
            main_service: args.main_service.clone(),
            health_timeout_secs,
            auto_rollback: !args.no_rollback,
            snapshot: args.snapshot,
            redirect_domains: args.redirect_domains(),
        },
    });
    let request = JobRequest {
        domain: &args.domain,
        node: &node,
        spec,
        args: &args.job,
        started,
        uploaded: Some(sent),
    };
    job::run(connect, &session, out, request).await
}

/// Uploads one tarball: blob by blob when `layered` and it is a `docker
/// save` tarball, else whole. Answers the job's image source and the
/// bytes sent.
async fn upload_images(
    store: &async_nats::jetstream::object_store::ObjectStore,
    path: &Path,
    layered: bool,
    out: &Output,
) -> Result<(hostkit_proto::job::ImageSource, u64), Error> {
    if layered {
        if let Some(split) = layers::split(path).await? {
            let done = layers::upload_blobs(store, &split, out).await?;
            return Ok((
                hostkit_proto::job::ImageSource::Layers {
                    layers: split.images,
                },
                done.sent.1,
            ));
        }
    }
    let uploaded = upload::upload(store, path, out).await?;
    Ok((uploaded.source, uploaded.sent))
}

/// The env as it travels: sealed to the node's key when its worker
/// publishes one (only that worker can open the values), else plain with
/// a warning (a worker older than sealing).
pub(crate) fn seal(
    info: Option<&hostkit_proto::NodeInfo>,
    node: &hostkit_proto::NodeId,
    env: Env,
    out: &Output,
) -> Result<(Env, Option<hostkit_proto::sign::seal::SealedEnv>), Error> {
    if env.is_empty() {
        return Ok((env, None));
    }
    match info.and_then(|info| info.seal_key.as_deref()) {
        Some(key) => {
            let sealed = hostkit_proto::sign::seal::seal_env(&env, key)
                .map_err(|e| Error::failed(e.to_string()))?;
            Ok((Env::new(), Some(sealed)))
        }
        None => {
            out.warn(format!(
                "node {node} publishes no sealing key (an older worker?): the env values travel in the job unsealed"
            ));
            Ok((env, None))
        }
    }
}

/// `KEY=VALUE`, or `KEY` with its value from this process's environment;
/// `flag` names the argument in errors.
pub(crate) fn variable(flag: &str, item: &str) -> Result<(String, String), Error> {
    let (key, value) = match item.split_once('=') {
        Some((key, value)) => (key.to_owned(), value.to_owned()),
        None => {
            let value = std::env::var(item).map_err(|_| {
                Error::usage(format!(
                    "{flag} {item}: not set in this environment (write {item}=VALUE)"
                ))
            })?;
            (item.to_owned(), value)
        }
    };
    if !is_valid_env_key(&key) {
        return Err(Error::usage(format!(
            "{flag} {key}: not a variable name (expected [A-Za-z_][A-Za-z0-9_]*)"
        )));
    }
    Ok((key, value))
}

/// `--env-file`, then `--env` (which wins), then `--profile` as
/// `COMPOSE_PROFILES`.
fn job_env(args: &DeployArgs) -> Result<Env, Error> {
    let mut env = Env::new();
    if let Some(path) = &args.env_file {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(format!("--env-file: cannot read {}", path.display())).with_source(e)
        })?;
        let name = path.display().to_string();
        let parsed = hostkit_deploy::compose::parse_env_file(&name, &text)
            .map_err(|e| Error::usage(format!("--env-file: {e}")))?;
        for (key, value) in parsed {
            env.insert(key, value);
        }
    }
    for item in &args.env {
        let (key, value) = variable("--env", item)?;
        env.insert(key, value);
    }
    if !args.profile.is_empty() {
        if let Some(bad) = args
            .profile
            .iter()
            .find(|p| *p != "*" && !profiles::is_valid_name(p))
        {
            return Err(Error::usage(format!(
                "--profile {bad}: not a profile name (letters, digits, `_`, `.`, `-`)"
            )));
        }
        env.insert(profiles::COMPOSE_PROFILES, args.profile.join(","));
    }
    Ok(env)
}

/// Everything that can be checked without NATS.
async fn prepare(args: &DeployArgs, env: &Env, out: &Output) -> Result<Plan, Error> {
    let file = args.file.clone();
    if !file.is_file() {
        return Err(Error::usage(format!("{}: no such file", file.display())));
    }
    if args.compose {
        let bundle = blocking(move || tarball::unpack_bundle(&file)).await?;
        out.line(format!(
            "{}: {} and {} image tarball(s)",
            args.file.display(),
            bundle
                .compose
                .strip_prefix(bundle.dir.path())
                .unwrap_or(&bundle.compose)
                .display(),
            bundle.images.len()
        ));
        let mut tarballs = bundle.images.clone();
        tarballs.extend(args.images.iter().cloned());
        let (source, uploads) = compose_plan(&bundle.compose, tarballs, args, env, out).await?;
        return Ok(Plan {
            source,
            uploads,
            _bundle: Some(bundle),
        });
    }
    let is_tar = blocking({
        let file = file.clone();
        move || tarball::is_tar(&file)
    })
    .await?;
    if is_tar {
        return single_image_plan(args, env, out).await;
    }
    let (source, uploads) = compose_plan(&file, args.images.clone(), args, env, out).await?;
    Ok(Plan {
        source,
        uploads,
        _bundle: None,
    })
}

/// A compose file: checked locally, its tarballs inspected.
async fn compose_plan(
    compose: &Path,
    tarballs: Vec<PathBuf>,
    args: &DeployArgs,
    env: &Env,
    out: &Output,
) -> Result<(DeploySource, Vec<PathBuf>), Error> {
    if args.port.is_some() {
        return Err(Error::usage(
            "--port goes with a single image tarball; a compose file says its ports itself",
        ));
    }
    let file_name = compose.file_name().map_or_else(
        || "compose file".to_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let size = std::fs::metadata(compose)
        .map_err(|e| Error::usage(format!("cannot read {}", compose.display())).with_source(e))?
        .len();
    if size > MAX_COMPOSE_BYTES as u64 {
        return Err(Error::usage(format!(
            "{file_name} is {size} bytes; a job carries at most {MAX_COMPOSE_BYTES}"
        )));
    }
    let text = std::fs::read_to_string(compose)
        .map_err(|e| Error::usage(format!("cannot read {}", compose.display())).with_source(e))?;
    let base_dir = compose
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let checked = {
        let (text, file_name, main) = (text.clone(), file_name.clone(), args.main_service.clone());
        let env = env.0.clone();
        blocking(move || validate::check(&text, &file_name, &env, &base_dir, main.as_deref()))
            .await?
    };
    for warning in &checked.warnings {
        out.warn(warning);
    }
    let saved = inspect_tarballs(&tarballs).await?;
    if !checked.partial {
        out.line(format!(
            "{file_name}: checked ({} service(s))",
            checked.services
        ));
        if let Some(reason) = &checked.main_reason {
            out.line(format!("{file_name}: {reason}"));
        }
    }
    if !tarballs.is_empty() {
        let provided: BTreeSet<String> = saved
            .iter()
            .flat_map(|image| image.tags.iter().map(|t| normalize_reference(t)))
            .collect();
        let missing: BTreeSet<&str> = checked
            .images
            .iter()
            .filter(|image| !provided.contains(&normalize_reference(image)))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            out.line(format!(
                "not in the tarballs given (the node must have or pull them): {}",
                missing.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    let source = DeploySource::Compose(ComposeSource {
        text,
        file_name: Some(file_name),
    });
    Ok((source, tarballs))
}

/// The seed's single-image form: the tarball's one image, one container.
async fn single_image_plan(args: &DeployArgs, env: &Env, out: &Output) -> Result<Plan, Error> {
    let shown = args.file.display().to_string();
    if !args.images.is_empty() {
        return Err(Error::usage(format!(
            "--images goes with a compose file; {shown} is itself an image tarball"
        )));
    }
    if args.main_service.is_some() {
        return Err(Error::usage(
            "--main-service goes with a compose file; a single image is its own main service",
        ));
    }
    if !args.profile.is_empty() {
        return Err(Error::usage(
            "--profile goes with a compose file; a single image has no profiles",
        ));
    }
    if !env.is_empty() {
        out.warn("--env and --env-file do not reach a single-image container; deploy a compose file to set its environment");
    }
    let images = inspect_tarballs(std::slice::from_ref(&args.file)).await?;
    let image = match images.as_slice() {
        [image] => image,
        [] => return Err(Error::usage(format!("{shown} holds no image"))),
        many => {
            return Err(Error::usage(format!(
                "{shown} holds {} images; deploy a compose file with --images {shown} instead",
                many.len()
            )));
        }
    };
    let Some(reference) = image.tags.first().cloned() else {
        return Err(Error::usage(format!(
            "the image in {shown} has no tag: `docker tag` it before `docker save`"
        )));
    };
    let port = match (args.port, image.exposed_tcp.as_slice()) {
        (Some(port), _) => port,
        (None, [only]) => *only,
        (None, ports) if ports.is_empty() || ports.contains(&DEFAULT_PORT) => DEFAULT_PORT,
        (None, ports) => {
            return Err(Error::usage(format!(
                "{reference} exposes ports {}: choose one with --port",
                ports
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    out.line(format!("{shown}: {reference}, container port {port}"));
    Ok(Plan {
        source: DeploySource::Image(SingleImage {
            reference,
            port: Some(port),
        }),
        uploads: vec![args.file.clone()],
        _bundle: None,
    })
}

/// Reads every tarball's manifest (exit 2 when one is not a `docker save`).
async fn inspect_tarballs(paths: &[PathBuf]) -> Result<Vec<SavedImage>, Error> {
    let mut all = Vec::new();
    for path in paths {
        if !path.is_file() {
            return Err(Error::usage(format!("{}: no such file", path.display())));
        }
        let path = path.clone();
        all.extend(
            blocking(move || {
                if !tarball::is_tar(&path)? {
                    return Err(Error::usage(format!(
                        "{} is not a tar archive: is it a `docker save` tarball?",
                        path.display()
                    )));
                }
                tarball::saved_images(&path)
            })
            .await?,
        );
    }
    Ok(all)
}

/// `nginx` → `nginx:latest`, `docker.io/library/nginx:1` → `nginx:1`.
fn normalize_reference(reference: &str) -> String {
    let short = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("docker.io/"))
        .unwrap_or(reference);
    if short.contains('@') {
        return short.to_owned();
    }
    let (repository, tag) = hostkit_deploy::images::split_reference(short);
    format!("{repository}:{tag}")
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::failed(format!("a local check stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn deploy_args(extra: &[&str]) -> DeployArgs {
        let mut argv = vec!["hostkit", "deploy", "example.com", "docker-compose.yml"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("parses").command {
            Command::Deploy(args) => args,
            _ => panic!("deploy"),
        }
    }

    #[test]
    fn profiles_become_compose_profiles() {
        let env = job_env(&deploy_args(&[])).expect("env");
        assert!(env.is_empty());
        let env = job_env(&deploy_args(&[
            "--env",
            "COMPOSE_PROFILES=old",
            "--profile",
            "workers",
            "--profile",
            "debug",
            "-e",
            "TAG=1",
        ]))
        .expect("env");
        assert_eq!(env.0["COMPOSE_PROFILES"], "workers,debug");
        assert_eq!(env.0["TAG"], "1");
        let env = job_env(&deploy_args(&["--profile", "*"])).expect("env");
        assert_eq!(env.0["COMPOSE_PROFILES"], "*");
        let env = job_env(&deploy_args(&["--env", "COMPOSE_PROFILES=a,b"])).expect("env");
        assert_eq!(env.0["COMPOSE_PROFILES"], "a,b");
        let e = job_env(&deploy_args(&["--profile", "a,b"])).expect_err("not a name");
        assert!(e.to_string().contains("--profile a,b"), "{e}");
    }

    #[test]
    fn references_normalize() {
        assert_eq!(normalize_reference("nginx"), "nginx:latest");
        assert_eq!(normalize_reference("docker.io/library/nginx:1"), "nginx:1");
        assert_eq!(
            normalize_reference("127.0.0.1:5000/app"),
            "127.0.0.1:5000/app:latest"
        );
        assert_eq!(normalize_reference("app@sha256:abc"), "app@sha256:abc");
    }
}
