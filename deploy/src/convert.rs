//! From the compose model to what the engine applies: resolves image ids,
//! names networks and volumes after the project, binds ports to 127.0.0.1 in
//! the domain's block, resolves host paths against the domain directory and
//! fills in the Docker container template of each service.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HealthConfig, HostConfig, HostConfigLogConfig, Mount as DockerMount,
    MountImageOptions, MountTmpfsOptions, MountType, MountVolumeOptions, ResourcesUlimits,
    RestartPolicy, RestartPolicyNameEnum,
};
use hostkit_proto::Domain;
use serde::Serialize;

use crate::cgroup::{Budget, parent_of};
use crate::compose::{
    ComposeError, Condition, FileObject, HealthTest, Hook, KeyPath, MainService, MountSource,
    Project, Restart, Service, UpdateOrder, resolve_host_path,
};
use crate::engine::health::Readiness;
use crate::engine::spec::{
    Dependency, Endpoint, HookSpec, Hooks, NetworkSpec, PortBlock, PublishedPort, ServiceSpec,
    StackSpec, VolumeSpec, WrittenFile,
};
use crate::images::ImageError;
use crate::policy::{BindSource, bind_sources};

/// Why a project cannot become a stack spec.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    /// An image the project needs has no resolved id.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// Something in the project cannot run on this host.
    #[error(transparent)]
    Compose(#[from] ComposeError),
}

/// Everything besides the compose model that shapes a stack.
#[derive(Debug, Clone)]
pub struct StackInput<'a> {
    /// The domain.
    pub domain: &'a Domain,
    /// The loaded, policy-checked project.
    pub project: &'a Project,
    /// Image reference (as written in the project) → image id.
    pub image_ids: &'a BTreeMap<String, String>,
    /// The service nginx fronts.
    pub main: Option<&'a MainService>,
    /// The domain's host port block.
    pub ports: PortBlock,
    /// Deadline for the health gate.
    pub health_timeout: Duration,
    /// The domain directory (relative bind mounts, secrets, configs).
    pub domain_dir: &'a Path,
    /// Labels for every container (version, job).
    pub labels: HashMap<String, String>,
    /// The stack's budget, enforced by one parent cgroup for all its
    /// containers; `None`: no parent.
    pub budget: Option<Budget>,
}

/// Build the spec the engine applies.
pub fn stack_spec(input: &StackInput<'_>) -> Result<StackSpec, ConvertError> {
    let project_name = input.domain.token();
    let missing: Vec<String> = input
        .project
        .image_references()
        .into_iter()
        .filter(|image| !input.image_ids.contains_key(image))
        .collect();
    if !missing.is_empty() {
        return Err(ImageError::Missing { images: missing }.into());
    }
    input.project.require_file_values()?;

    let networks = input
        .project
        .networks
        .iter()
        .map(|(key, n)| NetworkSpec {
            key: key.clone(),
            name: engine_name(n.name.as_ref(), &project_name, key),
            driver: n.driver.clone(),
            internal: n.internal,
            labels: n.labels.clone().into_iter().collect(),
        })
        .collect();
    let volumes = input
        .project
        .volumes
        .iter()
        .map(|(key, v)| VolumeSpec {
            key: key.clone(),
            name: engine_name(v.name.as_ref(), &project_name, key),
            driver: v.driver.clone(),
            driver_opts: volume_options(v, input.domain_dir),
            labels: v.labels.clone().into_iter().collect(),
        })
        .collect();
    let binds = bind_sources(input.project, input.domain_dir);
    let services = input
        .project
        .services
        .iter()
        .map(|(name, service)| service_spec(input, &project_name, &binds, name, service))
        .collect::<Result<_, _>>()?;

    Ok(StackSpec {
        domain: input.domain.clone(),
        project: project_name,
        networks,
        volumes,
        services,
        main_service: input.main.map(|m| m.service.clone()),
        redirects: Vec::new(),
        ports: input.ports,
        health_timeout: input.health_timeout,
        labels: input.labels.clone(),
        domain_dir: input.domain_dir.to_path_buf(),
        budget: input.budget,
    })
}

/// `<project>_<key>`: how compose names networks and volumes.
fn scoped(project: &str, key: &str) -> String {
    format!("{project}_{key}")
}

/// A volume's driver options, a bind device resolved against the domain
/// directory (the engine needs an absolute path).
fn volume_options(volume: &crate::compose::Volume, domain_dir: &Path) -> HashMap<String, String> {
    let mut options: HashMap<String, String> = volume.driver_opts.clone().into_iter().collect();
    if let Some(device) = volume.bind_device()
        && let Some(resolved) = resolve_host_path(device, domain_dir)
    {
        options.insert("device".to_owned(), resolved.display().to_string());
    }
    options
}

/// The engine name of a network or volume `key`: its `name:`, or scoped.
fn engine_name(custom: Option<&String>, project: &str, key: &str) -> String {
    custom.cloned().unwrap_or_else(|| scoped(project, key))
}

/// What shapes a container besides the service model and its image. The
/// fields added later are left out when empty, so a service without them
/// keeps its hash.
#[derive(Serialize)]
struct HashExtra<'a> {
    main_port: Option<u16>,
    domain_dir: &'a Path,
    /// Left out when unset, so a stack without a budget keeps its hashes.
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroup_parent: Option<&'a str>,
    /// Ids of the other images it uses (`pre_start` hooks, image mounts).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    images: BTreeMap<&'a str, &'a str>,
    /// Names of the files HostKit writes for it (they follow the content).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    files: Vec<&'a str>,
}

/// A secret or config of a service: the host file bind-mounted read-only
/// at `target`, and, for an `environment:` or `content:` source, the file
/// HostKit writes there.
struct FileMount {
    source: std::path::PathBuf,
    target: String,
    written: Option<WrittenFile>,
}

/// The secrets and configs `service` mounts.
fn file_mounts(
    input: &StackInput<'_>,
    project: &str,
    service: &Service,
    path: &KeyPath,
) -> Result<Vec<FileMount>, ConvertError> {
    let mut out = Vec::new();
    for (refs, objects, key, default_dir) in [
        (
            &service.secrets,
            &input.project.secrets,
            "secrets",
            "/run/secrets/",
        ),
        (&service.configs, &input.project.configs, "configs", "/"),
    ] {
        for (i, r) in refs.iter().enumerate() {
            let Some(object) = objects.get(&r.source) else {
                continue;
            };
            let target = match &r.target {
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("{default_dir}{t}"),
                None => format!("{default_dir}{}", r.source),
            };
            let at = path.key(key).index(i);
            let (source, written) = match object {
                FileObject::File(written) => {
                    let source = resolve_host_path(written, input.domain_dir).ok_or_else(|| {
                        ComposeError::invalid(&at, format!("cannot resolve host path `{written}`"))
                    })?;
                    (source, None)
                }
                // Refused by `stack_spec` (`require_file_values`).
                FileObject::Environment { value: None, .. } => continue,
                FileObject::Environment {
                    value: Some(content),
                    ..
                }
                | FileObject::Content(content) => {
                    // Numeric: checked at load.
                    let id = |v: &Option<String>| v.as_deref().and_then(|v| v.parse().ok());
                    let file = WrittenFile::new(project, content, r.mode, id(&r.uid), id(&r.gid));
                    (input.domain_dir.join(file.relative_path()), Some(file))
                }
            };
            out.push(FileMount {
                source,
                target,
                written,
            });
        }
    }
    Ok(out)
}

/// The service's hooks, ready to run: a `pre_start` container gets the
/// service's image, user, working directory and environment where the
/// hook sets none (the user and directory only when it runs the service's
/// image); an exec inherits them from the container.
fn hooks(input: &StackInput<'_>, service: &Service, image_id: &str) -> Hooks {
    let exec = |hook: &Hook| HookSpec {
        command: hook.command.clone(),
        image_id: None,
        user: hook.user.clone(),
        privileged: hook.privileged,
        working_dir: hook.working_dir.clone(),
        env: hook
            .environment
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
    };
    let container = |hook: &Hook| {
        let own_image = hook.image.is_none();
        let mut env = service.environment.clone();
        env.extend(hook.environment.clone());
        HookSpec {
            command: hook.command.clone(),
            image_id: Some(match &hook.image {
                Some(image) => input.image_ids[image].clone(),
                None => image_id.to_owned(),
            }),
            user: hook
                .user
                .clone()
                .or_else(|| own_image.then(|| service.user.clone()).flatten()),
            privileged: hook.privileged,
            working_dir: hook
                .working_dir
                .clone()
                .or_else(|| own_image.then(|| service.working_dir.clone()).flatten()),
            env: env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
        }
    };
    Hooks {
        pre_start: service.pre_start.iter().map(container).collect(),
        post_start: service.post_start.iter().map(exec).collect(),
        pre_stop: service.pre_stop.iter().map(exec).collect(),
    }
}

fn service_spec(
    input: &StackInput<'_>,
    project: &str,
    binds: &[BindSource],
    name: &str,
    service: &Service,
) -> Result<ServiceSpec, ConvertError> {
    let image_id = input.image_ids[&service.image].clone();
    let main_port = input.main.filter(|m| m.service == name).map(|m| m.port);
    let path = KeyPath::from_keys(["services", name]);

    let mut ports: Vec<PublishedPort> = Vec::new();
    for p in &service.ports {
        let port = PublishedPort {
            target: p.target,
            protocol: p.protocol.as_str().to_string(),
        };
        if !ports.contains(&port) {
            ports.push(port);
        }
    }
    if let Some(main) = main_port {
        // nginx proxies to each replica's first published port.
        ports.sort_by_key(|p| !(p.target == main && p.protocol == "tcp"));
    }

    let completed_wanted = input.project.services.values().any(|other| {
        other
            .depends_on
            .get(name)
            .is_some_and(|d| d.condition == Condition::ServiceCompletedSuccessfully)
    });
    let depends_on = service
        .depends_on
        .iter()
        .map(|(dep, d)| Dependency {
            service: dep.clone(),
            condition: match d.condition {
                Condition::ServiceStarted => Readiness::Started,
                Condition::ServiceHealthy => Readiness::Healthy,
                Condition::ServiceCompletedSuccessfully => Readiness::Completed,
            },
        })
        .collect();

    let start_first = match service.deploy.update_order {
        Some(UpdateOrder::StartFirst) => true,
        Some(UpdateOrder::StopFirst) => false,
        None => main_port.is_some(),
    };

    let networks = service
        .networks
        .iter()
        .map(|(key, n)| Endpoint {
            network: engine_name(
                input
                    .project
                    .networks
                    .get(key)
                    .and_then(|n| n.name.as_ref()),
                project,
                key,
            ),
            aliases: n.aliases.clone(),
        })
        .collect();

    let cgroup_parent = input.budget.map(|_| parent_of(project));
    let files = file_mounts(input, project, service, &path)?;
    let mut template = container_template(input, project, service, &path, &files)?;
    if let Some(hc) = template.host_config.as_mut() {
        hc.cgroup_parent = cgroup_parent.clone();
    }
    if let Some(mode) = &service.network_mode {
        match mode.as_str() {
            "none" => {
                if let Some(hc) = template.host_config.as_mut() {
                    hc.network_mode = Some(mode.clone());
                }
            }
            other => {
                return Err(ComposeError::UnsupportedValue {
                    path: path.key("network_mode"),
                    line: None,
                    message: format!(
                        "network_mode `{other}` is not supported by HostKit; use networks"
                    ),
                }
                .into());
            }
        }
    }
    template.image = Some(image_id.clone());

    let other_images: BTreeMap<String, String> = service
        .other_images()
        .into_iter()
        .filter_map(|r| Some((r.clone(), input.image_ids.get(&r)?.clone())))
        .collect();
    let extra = HashExtra {
        main_port,
        domain_dir: input.domain_dir,
        cgroup_parent: cgroup_parent.as_deref(),
        images: other_images
            .iter()
            .map(|(r, id)| (r.as_str(), id.as_str()))
            .collect(),
        files: files
            .iter()
            .filter_map(|f| f.written.as_ref().map(WrittenFile::name))
            .collect(),
    };
    let hooks = hooks(input, service, &image_id);
    Ok(ServiceSpec {
        name: name.to_string(),
        image_reference: service.image.clone(),
        config_hash: service.config_hash_with(&image_id, &extra),
        image_id,
        other_images,
        replicas: service.deploy.replicas,
        depends_on,
        start_first,
        ports,
        networks,
        container_name: service.container_name.clone(),
        ready_when: if completed_wanted {
            Readiness::Completed
        } else {
            Readiness::Healthy
        },
        stop_timeout: service.stop_grace_period,
        mac_address: service.mac_address.clone(),
        bind_sources: binds
            .iter()
            .filter(|b| b.service == name)
            .filter_map(|b| b.path.clone())
            .chain(
                files
                    .iter()
                    .filter(|f| f.written.is_some())
                    .map(|f| f.source.clone()),
            )
            .collect(),
        files: files.into_iter().filter_map(|f| f.written).collect(),
        hooks,
        template,
    })
}

/// Size and file caps of a local log driver when the compose file sets none:
/// a chatty container must not fill the host's disk.
const DEFAULT_LOG_CAPS: [(&str, &str); 2] = [("max-size", "10m"), ("max-file", "3")];

/// The service's log driver (`json-file` when unset) with default caps for
/// the drivers that write on the host.
fn log_config(service: &Service) -> HostConfigLogConfig {
    let driver = service
        .logging
        .as_ref()
        .and_then(|l| l.driver.clone())
        .unwrap_or_else(|| "json-file".to_owned());
    let mut options: HashMap<String, String> = service
        .logging
        .as_ref()
        .map(|l| l.options.clone().into_iter().collect())
        .unwrap_or_default();
    if driver == "json-file" || driver == "local" {
        for (key, value) in DEFAULT_LOG_CAPS {
            options
                .entry(key.to_owned())
                .or_insert_with(|| value.to_owned());
        }
    }
    HostConfigLogConfig {
        typ: Some(driver),
        config: Some(options),
    }
}

/// A `security_opt` entry in the engine's preferred `name=value` form
/// (`no-new-privileges:true` → `no-new-privileges=true`; the `:` separator
/// is deprecated by the engine, which reads the two alike).
fn security_opt(opt: &str) -> String {
    if opt.contains('=') {
        return opt.to_owned();
    }
    opt.replacen(':', "=", 1)
}

fn nanos(d: Option<Duration>) -> Option<i64> {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

fn container_template(
    input: &StackInput<'_>,
    project: &str,
    service: &Service,
    path: &KeyPath,
    files: &[FileMount],
) -> Result<ContainerCreateBody, ConvertError> {
    let host_path = |written: &str, key: &str| {
        resolve_host_path(written, input.domain_dir).ok_or_else(|| {
            ComposeError::invalid(
                &path.key(key),
                format!("cannot resolve host path `{written}`"),
            )
        })
    };

    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for mount in &service.volumes {
        match &mount.source {
            MountSource::Volume {
                name,
                nocopy,
                subpath,
            } => mounts.push(DockerMount {
                target: Some(mount.target.clone()),
                source: name.as_ref().map(|n| {
                    engine_name(
                        input.project.volumes.get(n).and_then(|v| v.name.as_ref()),
                        project,
                        n,
                    )
                }),
                typ: Some(MountType::VOLUME),
                read_only: Some(mount.read_only),
                volume_options: Some(MountVolumeOptions {
                    no_copy: Some(*nocopy),
                    subpath: subpath.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            MountSource::Bind {
                path: written,
                propagation,
                selinux,
                ..
            } => {
                let source = host_path(written, "volumes")?;
                let mut options = vec![if mount.read_only { "ro" } else { "rw" }.to_string()];
                options.extend(selinux.iter().cloned());
                options.extend(propagation.iter().cloned());
                binds.push(format!(
                    "{}:{}:{}",
                    source.display(),
                    mount.target,
                    options.join(",")
                ));
            }
            MountSource::Image { reference, subpath } => mounts.push(DockerMount {
                target: Some(mount.target.clone()),
                source: Some(input.image_ids[reference].clone()),
                typ: Some(MountType::IMAGE),
                read_only: Some(true),
                image_options: Some(MountImageOptions {
                    subpath: subpath.clone(),
                }),
                ..Default::default()
            }),
            MountSource::Tmpfs { size, mode } => mounts.push(DockerMount {
                target: Some(mount.target.clone()),
                typ: Some(MountType::TMPFS),
                read_only: Some(mount.read_only),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: size.map(|s| s as i64),
                    mode: mode.map(i64::from),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        }
    }
    for file in files {
        binds.push(format!("{}:{}:ro", file.source.display(), file.target));
    }

    let tmpfs: HashMap<String, String> = service
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((p, o)) => (p.to_string(), o.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();

    let limits = service.deploy.resources.limits;
    let (restart_name, retries) = match service.restart {
        Restart::No => (RestartPolicyNameEnum::NO, None),
        Restart::Always => (RestartPolicyNameEnum::ALWAYS, None),
        Restart::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        Restart::OnFailure { max_retries } => (
            RestartPolicyNameEnum::ON_FAILURE,
            max_retries.map(i64::from),
        ),
    };
    let host_config = HostConfig {
        binds: (!binds.is_empty()).then_some(binds),
        mounts: (!mounts.is_empty()).then_some(mounts),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        restart_policy: Some(RestartPolicy {
            name: Some(restart_name),
            maximum_retry_count: retries,
        }),
        memory: limits.memory.map(|m| m as i64),
        nano_cpus: limits.nano_cpus.map(|c| c as i64),
        pids_limit: limits.pids,
        memory_reservation: service
            .deploy
            .resources
            .reservations
            .memory
            .map(|m| m as i64),
        cap_add: (!service.cap_add.is_empty()).then(|| service.cap_add.clone()),
        cap_drop: (!service.cap_drop.is_empty()).then(|| service.cap_drop.clone()),
        init: service.init,
        readonly_rootfs: Some(service.read_only),
        extra_hosts: (!service.extra_hosts.is_empty()).then(|| {
            service
                .extra_hosts
                .iter()
                .map(|h| format!("{}:{}", h.host, h.ip))
                .collect()
        }),
        log_config: Some(log_config(service)),
        privileged: Some(service.privileged),
        pid_mode: service.pid.clone(),
        ipc_mode: service.ipc.clone(),
        shm_size: service
            .shm_size
            .map(|s| i64::try_from(s).unwrap_or(i64::MAX)),
        ulimits: (!service.ulimits.is_empty()).then(|| {
            service
                .ulimits
                .iter()
                .map(|(name, l)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(l.soft),
                    hard: Some(l.hard),
                })
                .collect()
        }),
        security_opt: (!service.security_opt.is_empty()).then(|| {
            service
                .security_opt
                .iter()
                .map(|o| security_opt(o))
                .collect()
        }),
        sysctls: (!service.sysctls.is_empty())
            .then(|| service.sysctls.clone().into_iter().collect()),
        ..Default::default()
    };

    let healthcheck = service.healthcheck.as_ref().map(|h| HealthConfig {
        test: h.test.as_ref().map(HealthTest::to_docker),
        interval: nanos(h.interval),
        timeout: nanos(h.timeout),
        retries: h.retries.map(i64::from),
        start_period: nanos(h.start_period),
        start_interval: nanos(h.start_interval),
    });

    let exposed: Vec<String> = service
        .expose
        .iter()
        .map(|e| {
            if e.contains('/') {
                e.clone()
            } else {
                format!("{e}/tcp")
            }
        })
        .collect();

    Ok(ContainerCreateBody {
        hostname: service.hostname.clone(),
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        env: Some(
            service
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
        ),
        cmd: service.command.clone(),
        entrypoint: service.entrypoint.clone(),
        labels: Some(service.labels.clone().into_iter().collect()),
        exposed_ports: Some(exposed),
        healthcheck,
        stop_signal: service.stop_signal.clone(),
        stop_timeout: service.stop_grace_period.map(|d| d.as_secs() as i64),
        tty: Some(service.tty),
        open_stdin: Some(service.stdin_open),
        host_config: Some(host_config),
        ..Default::default()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::compose::{Env, load};

    /// The spec of `text` loaded with `env` for `example.com` in
    /// `/srv/example.com`, each image reference resolved to `sha256:<ref>`.
    pub(crate) fn spec_of(text: &str, env: &Env) -> StackSpec {
        let project = load(text, env).expect("loads").project;
        let domain = Domain::parse("example.com").expect("domain");
        let image_ids = project
            .image_references()
            .into_iter()
            .map(|r| (r.clone(), format!("sha256:{r}")))
            .collect();
        let input = StackInput {
            domain: &domain,
            project: &project,
            image_ids: &image_ids,
            main: None,
            ports: PortBlock {
                start: 20000,
                len: 10,
            },
            health_timeout: Duration::from_secs(30),
            domain_dir: Path::new("/srv/example.com"),
            labels: HashMap::new(),
            budget: None,
        };
        stack_spec(&input).expect("converts")
    }

    /// The template of service `web` of `text`.
    fn template(text: &str) -> ContainerCreateBody {
        let spec = spec_of(text, &Env::new());
        spec.service("web").expect("web").template.clone()
    }

    #[test]
    fn inline_secrets_and_configs_are_written_files_mounted_read_only() {
        let text = "services:\n  web:\n    image: nginx\n    secrets: [{source: token, mode: 0400, uid: '1000'}]\n    configs: [{source: conf, target: /etc/app.conf}, plain]\nsecrets:\n  token: {environment: TOKEN}\nconfigs:\n  conf: {content: 'a = 1'}\n  plain: {file: ./plain.conf}\n";
        let env = |token: &str| Env::from([("TOKEN".to_owned(), token.to_owned())]);
        let spec = spec_of(text, &env("s3cr3t"));
        let web = spec.service("web").expect("web");
        assert_eq!(web.files.len(), 2);
        let path = |f: &WrittenFile| Path::new("/srv/example.com").join(f.relative_path());
        let binds = web
            .template
            .host_config
            .as_ref()
            .and_then(|h| h.binds.clone());
        assert_eq!(
            binds.expect("binds"),
            [
                format!("{}:/run/secrets/token:ro", path(&web.files[0]).display()),
                format!("{}:/etc/app.conf:ro", path(&web.files[1]).display()),
                "/srv/example.com/plain.conf:/plain:ro".to_owned(),
            ]
        );
        for file in &web.files {
            assert!(
                web.bind_sources.contains(&path(file)),
                "the guard walks {file:?}"
            );
        }
        assert!(
            !format!("{spec:?}").contains("s3cr3t"),
            "Debug redacts the value"
        );
        // A new value is a new file and a new container.
        let changed = spec_of(text, &env("other"));
        let changed = changed.service("web").expect("web");
        assert_ne!(changed.files[0].name(), web.files[0].name());
        assert_ne!(changed.config_hash, web.config_hash);
    }

    #[test]
    fn hooks_get_the_service_defaults_where_compose_gives_them() {
        let text = "services:\n  web:\n    image: app\n    user: '1000'\n    working_dir: /app\n    environment: {A: '1'}\n    pre_start:\n      - command: [migrate]\n      - {image: tools, command: [chown], environment: {B: '2'}}\n    post_start:\n      - {command: [warm], environment: {C: '3'}, user: root}\n";
        let spec = spec_of(text, &Env::new());
        let web = spec.service("web").expect("web");
        let own = &web.hooks.pre_start[0];
        assert_eq!(own.image_id.as_deref(), Some("sha256:app"));
        assert_eq!(
            (own.user.as_deref(), own.working_dir.as_deref()),
            (Some("1000"), Some("/app"))
        );
        assert_eq!(own.env, ["A=1"]);
        let tools = &web.hooks.pre_start[1];
        assert_eq!(tools.image_id.as_deref(), Some("sha256:tools"));
        assert_eq!(
            (tools.user.as_deref(), tools.working_dir.as_deref()),
            (None, None)
        );
        assert_eq!(tools.env, ["A=1", "B=2"]);
        // An exec inherits the container's; it carries only its own.
        let exec = &web.hooks.post_start[0];
        assert_eq!(
            (exec.user.as_deref(), exec.image_id.as_deref()),
            (Some("root"), None)
        );
        assert_eq!(exec.env, ["C=3"]);
        assert_eq!(
            web.other_images,
            BTreeMap::from([("tools".to_owned(), "sha256:tools".to_owned())])
        );
    }

    #[test]
    fn a_service_without_the_newer_features_keeps_its_hash() {
        let text = "services:\n  web:\n    image: nginx\n    ports: ['80']\n";
        let spec = spec_of(text, &Env::new());
        let project = load(text, &Env::new()).expect("loads").project;
        // What the hash mixed in before hooks, image mounts and written files.
        #[derive(Serialize)]
        struct Before<'a> {
            main_port: Option<u16>,
            domain_dir: &'a Path,
        }
        let before = Before {
            main_port: None,
            domain_dir: Path::new("/srv/example.com"),
        };
        assert_eq!(
            spec.service("web").expect("web").config_hash,
            project.services["web"].config_hash_with("sha256:nginx", &before)
        );
    }

    #[test]
    fn the_template_carries_shm_size_ulimits_security_opt_and_sysctls() {
        let t = template(
            "services:\n  web:\n    image: nginx\n    shm_size: 64m\n    ulimits:\n      nofile: {soft: 1024, hard: 4096}\n      nproc: 512\n    security_opt: ['no-new-privileges:true', no-new-privileges]\n    sysctls: [net.core.somaxconn=1024]\n",
        );
        let hc = t.host_config.expect("host config");
        assert_eq!(hc.shm_size, Some(64 << 20));
        assert_eq!(
            hc.ulimits,
            Some(vec![
                ResourcesUlimits {
                    name: Some("nofile".into()),
                    soft: Some(1024),
                    hard: Some(4096),
                },
                ResourcesUlimits {
                    name: Some("nproc".into()),
                    soft: Some(512),
                    hard: Some(512),
                },
            ])
        );
        assert_eq!(
            hc.security_opt,
            Some(vec![
                "no-new-privileges=true".to_owned(),
                "no-new-privileges".to_owned()
            ])
        );
        assert_eq!(
            hc.sysctls,
            Some(HashMap::from([(
                "net.core.somaxconn".to_owned(),
                "1024".to_owned()
            )]))
        );
    }

    #[test]
    fn without_the_keys_the_template_leaves_them_to_the_engine() {
        let hc = template("services:\n  web:\n    image: nginx\n")
            .host_config
            .expect("host config");
        assert_eq!(
            (hc.shm_size, hc.ulimits, hc.security_opt, hc.sysctls),
            (None, None, None, None)
        );
    }

    #[test]
    fn security_options_use_the_equals_form() {
        assert_eq!(
            security_opt("no-new-privileges:true"),
            "no-new-privileges=true"
        );
        assert_eq!(security_opt("no-new-privileges"), "no-new-privileges");
        assert_eq!(security_opt("label=type:x"), "label=type:x");
        assert_eq!(security_opt("label:type:x"), "label=type:x");
    }
}
