//! Which service nginx fronts, and on which container port — by rules an
//! operator can predict, and said out loud (the CLI prints the choice and
//! its reason; so does the deploy's `check` step).
//!
//! The service, in this order:
//! 1. the job's `main_service` (`--main-service`);
//! 2. the one service labelled `hostkit.expose=true` or `hostkit.port=<port>`;
//! 3. the only service that publishes ports;
//! 4. among those that do, the only one publishing a conventional HTTP port
//!    ([`HTTP_PORTS`]);
//! 5. among those, the only one named like a front end ([`FRONT_END_NAMES`],
//!    as a word of the name: `nginx-proxy`);
//! 6. among those (the HTTP ones when several are), the only one no other
//!    service depends on: the front of the chain (`proxy → app → db`);
//! 7. otherwise the choice is refused, listing the candidates. A stack where
//!    no service publishes a port and none is labelled has no main service.
//!
//! The port: the `hostkit.port` label; else the service's only published
//! port; else its first published port that is a conventional HTTP port;
//! else its first published TCP port that is not a TLS port
//! ([`TLS_PORTS`]); else its only `expose:` port. A port the service does
//! not publish (the seed's form: the two labels and no `ports:`) is
//! published by HostKit from the domain's block ([`Project::publish_main_port`]).
//! Every other published port stays on 127.0.0.1 in the block.

use super::error::ComposeError;
use super::model::{PortMapping, Project, Service};
use super::path::KeyPath;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Label that marks the main service.
pub const LABEL_EXPOSE: &str = "hostkit.expose";
/// Label that names the main service's container port.
pub const LABEL_PORT: &str = "hostkit.port";
/// Container ports taken for plain HTTP, in order of preference.
pub const HTTP_PORTS: &[u16] = &[80, 8080, 8000, 3000, 5000, 8081, 8888, 4000];
/// Container ports taken for TLS, never chosen as nginx's plain upstream.
pub const TLS_PORTS: &[u16] = &[443, 8443, 9443];
/// Service names taken for a front end.
pub const FRONT_END_NAMES: &[&str] = &["web", "app", "frontend", "nginx", "caddy", "proxy"];

/// The service nginx proxies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainService {
    /// Service name.
    pub service: String,
    /// Container (target) port; its host ports come from the port plan.
    pub port: u16,
}

/// Why a service is the main one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceReason {
    /// The job named it.
    Explicit,
    /// It carries the `hostkit.expose` or `hostkit.port` label.
    Label,
    /// It is the only service that publishes ports.
    OnlyWithPorts,
    /// It is the only one publishing a conventional HTTP port.
    HttpPort,
    /// It is the only one named like a front end.
    FrontEndName,
    /// It is the only one no other service depends on.
    FrontOfChain,
}

/// Why a port is the main port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortReason {
    /// The `hostkit.port` label.
    Label,
    /// The service's only published port.
    Only,
    /// Its first conventional HTTP port.
    Http,
    /// Its first TCP port that is not a TLS port.
    FirstPlain,
    /// Its only `expose:` port.
    Exposed,
}

/// The main service with the reasons for the choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MainChoice {
    /// The choice.
    pub main: MainService,
    /// Why this service.
    pub service_reason: ServiceReason,
    /// Why this port.
    pub port_reason: PortReason,
}

impl fmt::Display for MainChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let service = match self.service_reason {
            ServiceReason::Explicit => "named by the job (--main-service)",
            ServiceReason::Label => "labelled hostkit.expose / hostkit.port",
            ServiceReason::OnlyWithPorts => "the only service that publishes ports",
            ServiceReason::HttpPort => "the only service publishing a conventional HTTP port",
            ServiceReason::FrontEndName => "the only service named like a front end",
            ServiceReason::FrontOfChain => "the only one no other service depends on",
        };
        let port = match self.port_reason {
            PortReason::Label => "its hostkit.port label",
            PortReason::Only => "its only published port",
            PortReason::Http => "its first conventional HTTP port",
            PortReason::FirstPlain => "its first published port that is not a TLS port",
            PortReason::Exposed => "its only `expose:` port",
        };
        write!(
            f,
            "main service `{}` ({service}), port {} ({port})",
            self.main.service, self.main.port
        )
    }
}

fn labelled(service: &Service) -> bool {
    service
        .labels
        .get(LABEL_EXPOSE)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || service.labels.contains_key(LABEL_PORT)
}

/// `web`, `nginx-proxy`, `app_frontend`: a word of the name (split at `-`,
/// `_`, `.`) is one of [`FRONT_END_NAMES`].
fn named_like_a_front_end(name: &str) -> bool {
    name.to_ascii_lowercase()
        .split(['-', '_', '.'])
        .any(|word| FRONT_END_NAMES.contains(&word))
}

fn publishes_http(service: &Service) -> bool {
    service.ports.iter().any(|p| HTTP_PORTS.contains(&p.target))
}

/// `a (80, 5432)` for messages.
fn describe(project: &Project, names: &[&str]) -> String {
    names
        .iter()
        .map(|n| {
            let ports: Vec<String> = project.services[*n]
                .ports
                .iter()
                .map(|p| p.target.to_string())
                .collect();
            format!("{n} ({})", ports.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl Project {
    /// Chooses the main service; see the module documentation for the rules.
    pub fn main_service(
        &self,
        explicit: Option<&str>,
    ) -> Result<Option<MainService>, ComposeError> {
        Ok(self.main_choice(explicit)?.map(|c| c.main))
    }

    /// [`Project::main_service`] with the reasons for the choice.
    pub fn main_choice(&self, explicit: Option<&str>) -> Result<Option<MainChoice>, ComposeError> {
        let services = KeyPath::from_keys(["services"]);
        let pick = |filter: &dyn Fn(&Service) -> bool| -> Vec<&str> {
            self.services
                .iter()
                .filter(|(_, s)| filter(s))
                .map(|(n, _)| n.as_str())
                .collect()
        };
        let (name, service_reason) = if let Some(name) = explicit {
            if !self.services.contains_key(name) {
                return Err(ComposeError::invalid(
                    &services,
                    format!("the job's main service `{name}` is not a service of the compose file"),
                ));
            }
            (name, ServiceReason::Explicit)
        } else {
            let marked = pick(&labelled);
            let with_ports = pick(&|s| !s.ports.is_empty());
            match (marked.as_slice(), with_ports.as_slice()) {
                ([one], _) => (*one, ServiceReason::Label),
                ([], [one]) => (*one, ServiceReason::OnlyWithPorts),
                ([], []) => return Ok(None),
                ([], many) => {
                    let http: Vec<&str> = many
                        .iter()
                        .copied()
                        .filter(|n| publishes_http(&self.services[*n]))
                        .collect();
                    let named: Vec<&str> = many
                        .iter()
                        .copied()
                        .filter(|n| named_like_a_front_end(n))
                        .collect();
                    // Among those (HTTP ones first), the one no other
                    // service depends on: the front of the chain.
                    let pool = if http.len() > 1 { &http } else { many };
                    let front: Vec<&str> = pool
                        .iter()
                        .copied()
                        .filter(|n| {
                            !self
                                .services
                                .values()
                                .any(|s| s.depends_on.contains_key(*n))
                        })
                        .collect();
                    match (http.as_slice(), named.as_slice(), front.as_slice()) {
                        ([one], _, _) => (*one, ServiceReason::HttpPort),
                        (_, [one], _) => (*one, ServiceReason::FrontEndName),
                        (_, _, [one]) => (*one, ServiceReason::FrontOfChain),
                        _ => {
                            return Err(ComposeError::invalid(
                                &services,
                                format!(
                                    "several services publish ports ({}) and none is the main one by HostKit's rules (one labelled, the only one on a conventional HTTP port, the only one named {}, the only one nothing depends on): label the main one `hostkit.expose=true` or pass --main-service",
                                    describe(self, many),
                                    FRONT_END_NAMES.join("/")
                                ),
                            ));
                        }
                    }
                }
                (many, _) => {
                    return Err(ComposeError::invalid(
                        &services,
                        format!(
                            "several services are labelled as the main service: {}",
                            many.join(", ")
                        ),
                    ));
                }
            }
        };
        let (port, port_reason) = self.main_port(name)?;
        Ok(Some(MainChoice {
            main: MainService {
                service: name.to_owned(),
                port,
            },
            service_reason,
            port_reason,
        }))
    }

    /// Publish the main port when the service does not (the seed's form:
    /// `hostkit.expose` + `hostkit.port` and no `ports:`); HostKit gives it
    /// a host port of the domain's block on 127.0.0.1, like every port.
    pub fn publish_main_port(&mut self, main: &MainService) {
        if let Some(service) = self.services.get_mut(&main.service)
            && !service.ports.iter().any(|p| p.target == main.port)
        {
            service.ports.push(PortMapping {
                target: main.port,
                published: None,
                host_ip: None,
                protocol: Default::default(),
                mode: Default::default(),
            });
        }
    }

    fn main_port(&self, name: &str) -> Result<(u16, PortReason), ComposeError> {
        let service = &self.services[name];
        let path = KeyPath::from_keys(["services", name]);
        if let Some(label) = service.labels.get(LABEL_PORT) {
            let label_path = path.key("labels").key(LABEL_PORT);
            let port: u16 = label
                .trim()
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| ComposeError::invalid(&label_path, "not a port number (1–65535)"))?;
            return Ok((port, PortReason::Label));
        }
        let mut targets: Vec<u16> = Vec::new();
        for p in &service.ports {
            if !targets.contains(&p.target) {
                targets.push(p.target);
            }
        }
        if let [one] = targets.as_slice() {
            return Ok((*one, PortReason::Only));
        }
        if let Some(http) = targets.iter().find(|t| HTTP_PORTS.contains(t)) {
            return Ok((*http, PortReason::Http));
        }
        let plain = service
            .ports
            .iter()
            .find(|p| p.protocol == Default::default() && !TLS_PORTS.contains(&p.target));
        if let Some(plain) = plain {
            return Ok((plain.target, PortReason::FirstPlain));
        }
        let exposed: Vec<u16> = service
            .expose
            .iter()
            .filter_map(|e| e.split('/').next()?.trim().parse().ok())
            .collect();
        match (targets.is_empty(), exposed.as_slice()) {
            (true, [one]) => Ok((*one, PortReason::Exposed)),
            (true, _) => Err(ComposeError::invalid(
                &path,
                format!(
                    "the main service `{name}` publishes no port: add the label `hostkit.port` (or `ports: [\"80\"]`)"
                ),
            )),
            (false, _) => Err(ComposeError::invalid(
                &path,
                format!(
                    "the main service `{name}` publishes only TLS ports: choose nginx's port with the label `hostkit.port`"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{Env, load};

    fn project(text: &str) -> Project {
        load(text, &Env::new()).expect("loads").project
    }

    fn choice(text: &str, explicit: Option<&str>) -> Result<Option<MainChoice>, ComposeError> {
        project(text).main_choice(explicit)
    }

    fn main(text: &str, explicit: Option<&str>) -> Result<Option<MainService>, ComposeError> {
        project(text).main_service(explicit)
    }

    fn ms(service: &str, port: u16) -> Option<MainService> {
        Some(MainService {
            service: service.into(),
            port,
        })
    }

    #[test]
    fn only_service_with_ports() {
        let t = "services:\n  web: {image: a, ports: ['8080:80']}\n  db: {image: b}\n";
        let c = choice(t, None).expect("ok").expect("some");
        assert_eq!(Some(c.main.clone()), ms("web", 80));
        assert_eq!(
            (c.service_reason, c.port_reason),
            (ServiceReason::OnlyWithPorts, PortReason::Only)
        );
        assert_eq!(
            c.to_string(),
            "main service `web` (the only service that publishes ports), port 80 (its only published port)"
        );
    }

    #[test]
    fn labels_pick_the_service_and_port() {
        let t = "services:\n  web: {image: a, ports: ['80', '9090'], labels: {hostkit.port: '9090'}}\n  admin: {image: b, ports: ['81']}\n";
        assert_eq!(main(t, None).expect("ok"), ms("web", 9090));
        let t = "services:\n  web: {image: a, ports: ['80'], labels: [hostkit.expose=true]}\n  admin: {image: b, ports: ['81']}\n";
        assert_eq!(main(t, None).expect("ok"), ms("web", 80));
    }

    #[test]
    fn the_seeds_labels_without_ports_publish_the_port() {
        let t = "services:\n  web:\n    image: a\n    labels:\n      - hostkit.expose=true\n      - hostkit.port=3000\n  api: {image: b}\n";
        let mut p = project(t);
        let main = p.main_service(None).expect("ok").expect("some");
        assert_eq!(Some(main.clone()), ms("web", 3000));
        p.publish_main_port(&main);
        assert_eq!(
            p.services["web"]
                .ports
                .iter()
                .map(|p| p.target)
                .collect::<Vec<_>>(),
            [3000]
        );
        p.publish_main_port(&main);
        assert_eq!(p.services["web"].ports.len(), 1, "published once");
    }

    #[test]
    fn explicit_option_wins_over_labels() {
        let t = "services:\n  web: {image: a, ports: ['80'], labels: [hostkit.expose=true]}\n  admin: {image: b, ports: ['81']}\n";
        assert_eq!(main(t, Some("admin")).expect("ok"), ms("admin", 81));
        assert!(main(t, Some("nope")).is_err());
    }

    #[test]
    fn no_main_service_without_ports() {
        let t = "services:\n  worker: {image: a}\n";
        assert_eq!(main(t, None).expect("ok"), None);
    }

    #[test]
    fn web_and_database_stacks_choose_the_web_service() {
        // The only one on a conventional HTTP port.
        let t = "services:\n  app: {image: a, ports: ['3000:3000']}\n  db: {image: postgres, ports: ['5432:5432']}\n  cache: {image: redis, ports: ['6379']}\n";
        let c = choice(t, None).expect("ok").expect("some");
        assert_eq!((c.main.service.as_str(), c.main.port), ("app", 3000));
        assert_eq!(c.service_reason, ServiceReason::HttpPort);
        // Two HTTP ports: the one named like a front end.
        let t = "services:\n  web: {image: a, ports: ['8080']}\n  pgadmin: {image: p, ports: ['5050:80']}\n  db: {image: postgres, ports: ['5432']}\n";
        let c = choice(t, None).expect("ok").expect("some");
        assert_eq!(
            (c.main.service.as_str(), c.service_reason),
            ("web", ServiceReason::FrontEndName)
        );
        // Nothing decides: refused, naming the candidates and their ports.
        let t = "services:\n  a: {image: a, ports: ['80']}\n  b: {image: b, ports: ['8080']}\n";
        let message = main(t, None).expect_err("ambiguous").to_string();
        assert!(
            message.contains("a (80), b (8080)") && message.contains("--main-service"),
            "{message}"
        );
    }

    #[test]
    fn the_front_of_the_dependency_chain_is_the_main_service() {
        // Both on HTTP ports, both named like front ends (`app`, `proxy`).
        let t = "services:\n  flask-app: {image: a, ports: ['8000:8000']}\n  nginx-proxy: {image: n, ports: ['80:80'], depends_on: [flask-app]}\n";
        let c = choice(t, None).expect("ok").expect("some");
        assert_eq!(
            (c.main.service.as_str(), c.service_reason),
            ("nginx-proxy", ServiceReason::FrontOfChain)
        );
    }

    #[test]
    fn a_main_service_with_several_ports_uses_the_label_or_its_first_http_port() {
        let authentik = "services:\n  server: {image: a, ports: ['9000:9000', '9443:9443']}\n";
        let c = choice(authentik, None).expect("ok").expect("some");
        assert_eq!((c.main.port, c.port_reason), (9000, PortReason::FirstPlain));
        let kong =
            "services:\n  kong: {image: k, ports: ['8443:8443', '8000:8000', '8001:8001']}\n";
        let c = choice(kong, None).expect("ok").expect("some");
        assert_eq!((c.main.port, c.port_reason), (8000, PortReason::Http));
        let labelled = "services:\n  kong: {image: k, ports: ['8000', '8001'], labels: {hostkit.port: '8001'}}\n";
        assert_eq!(main(labelled, None).expect("ok"), ms("kong", 8001));
        let tls_only = "services:\n  a: {image: a, ports: ['443']}\n  b: {image: b}\n";
        assert_eq!(
            main(tls_only, None).expect("ok"),
            ms("a", 443),
            "its only port"
        );
        let two_tls = "services:\n  a: {image: a, ports: ['443', '8443']}\n";
        assert!(
            main(two_tls, None)
                .expect_err("tls")
                .to_string()
                .contains("hostkit.port")
        );
    }

    #[test]
    fn invalid_choices_are_errors() {
        let two_labels = "services:\n  a: {image: a, ports: ['80'], labels: [hostkit.expose=true]}\n  b: {image: b, ports: ['81'], labels: [hostkit.expose=true]}\n";
        assert!(main(two_labels, None).is_err());
        let no_port = "services:\n  a: {image: a, labels: [hostkit.expose=true]}\n";
        assert!(
            main(no_port, None)
                .expect_err("no port")
                .to_string()
                .contains("publishes no port")
        );
        let exposed =
            "services:\n  a: {image: a, expose: ['3000'], labels: [hostkit.expose=true]}\n";
        assert_eq!(main(exposed, None).expect("ok"), ms("a", 3000));
        let bad = "services:\n  a: {image: a, ports: ['80'], labels: {hostkit.port: http}}\n";
        let message = main(bad, None).expect_err("bad").to_string();
        assert!(
            !message.contains("http`"),
            "the value is not echoed: {message}"
        );
    }
}
