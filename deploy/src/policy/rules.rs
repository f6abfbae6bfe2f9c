//! The checks behind each [`Rule`].

use super::paths::check as host_path;
use super::{Policy, Rule, Violation};
use crate::compose::{MountSource, Project, Service};
use std::path::Path;

struct Found<'a> {
    out: Vec<Violation>,
    service: Option<&'a str>,
}

impl<'a> Found<'a> {
    fn add(&mut self, rule: Rule, path: String, message: String) {
        self.out.push(Violation {
            rule,
            service: self.service.map(str::to_owned),
            path,
            message,
        });
    }
}

/// Every violation, enforced or not (the caller filters).
pub fn collect(policy: &Policy, project: &Project, domain_dir: &Path) -> Vec<Violation> {
    let mut found = Found {
        out: Vec::new(),
        service: None,
    };
    for (name, service) in &project.services {
        found.service = Some(name);
        let at = |key: &str| format!("services.{name}.{key}");
        namespaces(service, &mut found, at);
        hooks(service, &mut found, at);
        capabilities(policy, service, &mut found, at);
        for (i, device) in service.devices.iter().enumerate() {
            found.add(
                Rule::Devices,
                at(&format!("devices[{i}]")),
                format!("device `{device}` is not allowed"),
            );
        }
        kernel(policy, service, &mut found, at);
        mounts(policy, service, domain_dir, &mut found, at);
        logging(policy, service, &mut found, at);
        for (i, file) in service.env_file.iter().enumerate() {
            if !host_path(&file.path, domain_dir).inside {
                found.add(
                    Rule::FileOutsideDomain,
                    at(&format!("env_file[{i}]")),
                    format!("env file `{}` is outside the domain directory", file.path),
                );
            }
        }
        for port in &service.ports {
            if let Some(ip) = port.host_ip.filter(|ip| !ip.is_loopback()) {
                found.add(
                    Rule::PublicPort,
                    at("ports"),
                    format!("port {} is published on {ip}: only loopback is allowed (or leave the address out)", port.target),
                );
            }
        }
        if let Some(max) = policy
            .max_replicas
            .filter(|max| service.deploy.replicas > *max)
        {
            found.add(
                Rule::Replicas,
                at("deploy.replicas"),
                format!(
                    "{} replicas; at most {max} are allowed",
                    service.deploy.replicas
                ),
            );
        }
    }
    found.service = None;
    found.out.extend(super::binds::collect(
        &super::binds::bind_sources(project, domain_dir),
        domain_dir,
    ));
    top_level(policy, project, domain_dir, &mut found);
    limits(policy, project, &mut found);
    found.out
}

fn namespaces(service: &Service, found: &mut Found<'_>, at: impl Fn(&str) -> String) {
    if service.privileged {
        found.add(
            Rule::Privileged,
            at("privileged"),
            "privileged containers are not allowed".to_owned(),
        );
    }
    if let Some(mode) = service.network_mode.as_deref() {
        if mode == "host" {
            found.add(
                Rule::HostNetwork,
                at("network_mode"),
                "the host network is not allowed".to_owned(),
            );
        } else if mode != "none" && !mode.starts_with("service:") {
            found.add(
                Rule::NetworkMode,
                at("network_mode"),
                format!("network mode `{mode}` leaves the project's networks; use `none` or `service:<name>`"),
            );
        }
    }
    let shared = |mode: Option<&str>, allowed: &[&str]| {
        mode.filter(|m| !m.starts_with("service:") && !allowed.contains(m))
            .map(str::to_owned)
    };
    if let Some(mode) = shared(service.pid.as_deref(), &[]) {
        found.add(
            Rule::HostPid,
            at("pid"),
            format!("pid mode `{mode}` shares a PID namespace outside the project"),
        );
    }
    if let Some(mode) = shared(service.ipc.as_deref(), &["private", "shareable", "none"]) {
        found.add(
            Rule::HostIpc,
            at("ipc"),
            format!("ipc mode `{mode}` shares an IPC namespace outside the project"),
        );
    }
}

/// A lifecycle hook is held to the service's rules: its `privileged` falls
/// under [`Rule::Privileged`] (an exec with extended privileges escapes the
/// container as surely as the container would). Everything else a hook runs
/// with — image, volumes, networks, capabilities — is the service's own or
/// resolved like it (an image only from the job or the domain's versions);
/// `user` needs no rule (the service itself may run as root).
fn hooks(service: &Service, found: &mut Found<'_>, at: impl Fn(&str) -> String) {
    let lists = [
        ("pre_start", &service.pre_start),
        ("post_start", &service.post_start),
        ("pre_stop", &service.pre_stop),
    ];
    for (kind, list) in lists {
        let privileged = list.iter().enumerate().filter(|(_, h)| h.privileged);
        for (i, _) in privileged {
            found.add(
                Rule::Privileged,
                at(&format!("{kind}[{i}].privileged")),
                "privileged hooks are not allowed".to_owned(),
            );
        }
    }
}

fn capabilities(
    policy: &Policy,
    service: &Service,
    found: &mut Found<'_>,
    at: impl Fn(&str) -> String,
) {
    let allowed: Vec<String> = policy
        .allowed_cap_add
        .iter()
        .map(|c| crate::compose::capability_name(c))
        .collect();
    for (i, cap) in service.cap_add.iter().enumerate() {
        if !allowed.contains(cap) {
            found.add(
                Rule::CapAdd,
                at(&format!("cap_add[{i}]")),
                format!("capability `{cap}` is not allowed"),
            );
        }
    }
}

/// `security_opt`, `sysctls` and `ulimits`.
fn kernel(policy: &Policy, service: &Service, found: &mut Found<'_>, at: impl Fn(&str) -> String) {
    for (i, opt) in service.security_opt.iter().enumerate() {
        if let Some(problem) = security_opt_problem(opt) {
            found.add(
                Rule::SecurityOpt,
                at(&format!("security_opt[{i}]")),
                format!("security option `{opt}` {problem}"),
            );
        }
    }
    for key in service.sysctls.keys() {
        if key.split(['.', '/']).next() != Some("net") {
            found.add(
                Rule::Sysctls,
                at(&format!("sysctls.{key}")),
                format!("sysctl `{key}` is not allowed: only `net.*` sysctls, which stay in the container's own network namespace"),
            );
        }
    }
    let show = |n: i64| {
        if n == -1 {
            "unlimited".to_owned()
        } else {
            n.to_string()
        }
    };
    for (name, limit) in &service.ulimits {
        let (soft, hard) = (limit.soft, limit.hard);
        match name.as_str() {
            "nofile" => {
                let over = |n: i64| u64::try_from(n).map_or(true, |n| n > policy.max_nofile);
                if over(soft) || over(hard) {
                    found.add(
                        Rule::Ulimits,
                        at("ulimits.nofile"),
                        format!(
                            "nofile {} (soft) / {} (hard) is above the {} open files a service may have",
                            show(soft),
                            show(hard),
                            policy.max_nofile
                        ),
                    );
                }
            }
            "memlock" if soft == -1 || hard == -1 => found.add(
                Rule::Ulimits,
                at("ulimits.memlock"),
                "memlock -1 (unlimited) would let the service lock the host's memory; give a number of bytes".to_owned(),
            ),
            _ => {}
        }
    }
}

/// Why a `security_opt` entry is denied; `None` for the hardening
/// `no-new-privileges[:true]` (also written with `=`).
fn security_opt_problem(opt: &str) -> Option<String> {
    // The engine's own reading: split at `=` if there is one, else at `:`.
    let split = if opt.contains('=') {
        opt.split_once('=')
    } else {
        opt.split_once(':')
    };
    let (name, value) = match split {
        Some((name, value)) => (name, Some(value)),
        None => (opt, None),
    };
    let problem = match (name, value) {
        ("no-new-privileges", None) => return None,
        ("disable", None) => "turns SELinux separation off".to_owned(),
        ("no-new-privileges", Some(v)) => {
            if matches!(v, "true" | "TRUE" | "True" | "t" | "T" | "1") {
                return None;
            }
            "turns `no-new-privileges` off".to_owned()
        }
        ("seccomp", Some("unconfined")) => "turns seccomp filtering off".to_owned(),
        ("apparmor", Some("unconfined")) => "turns AppArmor confinement off".to_owned(),
        ("label", Some("disable")) => "turns SELinux separation off".to_owned(),
        ("systempaths", Some("unconfined")) => {
            "unmasks the kernel's paths in /proc and /sys".to_owned()
        }
        ("seccomp", Some(_)) => {
            "replaces the engine's default seccomp profile; a custom profile is not allowed"
                .to_owned()
        }
        ("apparmor", Some(_)) => {
            "selects an AppArmor profile of the host; only the engine's default is allowed"
                .to_owned()
        }
        ("label", Some(_)) => {
            "sets an SELinux label, which could share another container's files; not allowed"
                .to_owned()
        }
        _ => "is not allowed (only `no-new-privileges`)".to_owned(),
    };
    Some(problem)
}

fn mounts(
    policy: &Policy,
    service: &Service,
    domain_dir: &Path,
    found: &mut Found<'_>,
    at: impl Fn(&str) -> String,
) {
    for (i, mount) in service.volumes.iter().enumerate() {
        let MountSource::Bind { path, .. } = &mount.source else {
            continue;
        };
        let key = at(&format!("volumes[{i}]"));
        host_source(policy, path, domain_dir, found, key, "bind mount source");
    }
}

/// `docker-socket` and `bind-outside-domain` for one host path a container
/// mounts (`what` names it in the message).
fn host_source(
    policy: &Policy,
    path: &str,
    domain_dir: &Path,
    found: &mut Found<'_>,
    key: String,
    what: &str,
) {
    let checked = host_path(path, domain_dir);
    if checked.socket && policy.enforces(Rule::DockerSocket) {
        found.add(
            Rule::DockerSocket,
            key,
            format!("`{path}` exposes the container runtime's socket"),
        );
    } else if !checked.inside {
        found.add(
            Rule::BindOutsideDomain,
            key,
            format!("{what} `{path}` is outside the domain directory"),
        );
    }
}

fn logging(policy: &Policy, service: &Service, found: &mut Found<'_>, at: impl Fn(&str) -> String) {
    let Some(driver) = service.logging.as_ref().and_then(|l| l.driver.as_deref()) else {
        return;
    };
    if !policy.allowed_logging_drivers.iter().any(|d| d == driver) {
        found.add(
            Rule::LoggingDriver,
            at("logging.driver"),
            format!(
                "logging driver `{driver}` is not allowed (allowed: {}): drivers that ship logs elsewhere run in the host's network namespace",
                policy.allowed_logging_drivers.join(", ")
            ),
        );
    }
}

fn top_level(policy: &Policy, project: &Project, domain_dir: &Path, found: &mut Found<'_>) {
    for (name, network) in &project.networks {
        if network.external {
            found.add(
                Rule::ExternalNetwork,
                format!("networks.{name}.external"),
                format!("external network `{name}` may belong to another stack"),
            );
        }
        if let Some(driver) = network.driver.as_deref().filter(|d| *d != "bridge") {
            found.add(
                Rule::NetworkDriver,
                format!("networks.{name}.driver"),
                format!("network driver `{driver}` is not allowed (only `bridge`)"),
            );
        }
    }
    for (name, volume) in &project.volumes {
        if let Some(device) = volume.bind_device() {
            let key = format!("volumes.{name}.driver_opts.device");
            host_source(
                policy,
                device,
                domain_dir,
                found,
                key,
                "the volume's bind device",
            );
        } else if !volume.driver_opts.is_empty() && !volume.is_tmpfs() {
            found.add(
                Rule::VolumeOptions,
                format!("volumes.{name}.driver_opts"),
                "driver options other than a bind of a directory inside the domain directory or a tmpfs (e.g. an NFS or CIFS mount, made from the host's network)".to_owned(),
            );
        }
        if volume.external {
            found.add(
                Rule::ExternalVolume,
                format!("volumes.{name}.external"),
                format!("external volume `{name}` may belong to another stack"),
            );
        }
    }
    for (kind, objects) in [("secrets", &project.secrets), ("configs", &project.configs)] {
        for (name, file) in objects.iter().filter_map(|(n, o)| Some((n, o.file()?))) {
            if !host_path(file, domain_dir).inside {
                found.add(
                    Rule::FileOutsideDomain,
                    format!("{kind}.{name}.file"),
                    format!("`{file}` is outside the domain directory"),
                );
            }
        }
    }
}

fn limits<'a>(policy: &Policy, project: &'a Project, found: &mut Found<'a>) {
    let caps = [
        (
            Rule::MemoryLimit,
            policy.max_memory,
            "memory",
            "deploy.resources.limits.memory (or mem_limit)",
        ),
        (
            Rule::CpuLimit,
            policy.max_cpus.map(|c| (c * 1e9).round() as u64),
            "cpus",
            "deploy.resources.limits.cpus (or cpus)",
        ),
        (
            Rule::PidsLimit,
            policy.max_pids,
            "pids",
            "deploy.resources.limits.pids (or pids_limit)",
        ),
    ];
    for (rule, cap, what, key) in caps {
        let Some(cap) = cap else { continue };
        let mut total: u64 = 0;
        for (name, service) in &project.services {
            let limits = service.deploy.resources.limits;
            let limit = match rule {
                Rule::MemoryLimit => limits.memory,
                Rule::CpuLimit => limits.nano_cpus,
                // `pids: -1` (or 0) is the engine's "unlimited": no limit.
                _ => limits
                    .pids
                    .and_then(|p| u64::try_from(p).ok())
                    .filter(|p| *p > 0),
            };
            match limit {
                Some(limit) => {
                    total = total
                        .saturating_add(limit.saturating_mul(u64::from(service.deploy.replicas)))
                }
                None if service.deploy.replicas > 0 => {
                    found.service = Some(name);
                    found.add(
                        rule,
                        format!("services.{name}.deploy.resources.limits.{what}"),
                        format!("the stack's {what} is capped, so every service needs a {what} limit: set {key}"),
                    );
                    found.service = None;
                }
                None => {}
            }
        }
        if total > cap {
            let (used, allowed) = match rule {
                Rule::MemoryLimit => (format!("{total} bytes"), format!("{cap} bytes")),
                Rule::CpuLimit => (
                    format!("{} CPUs", total as f64 / 1e9),
                    format!("{} CPUs", cap as f64 / 1e9),
                ),
                _ => (format!("{total} processes"), format!("{cap} processes")),
            };
            found.add(
                rule,
                "services".to_owned(),
                format!("the services' {what} limits × replicas add up to {used}; the stack may use {allowed}"),
            );
        }
    }
}
