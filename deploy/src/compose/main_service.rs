//! Which service nginx fronts, and on which container port.
//!
//! Decision order (DESIGN §5, with the job option first): the job's explicit
//! `main_service` wins; else the one service labelled `hostkit.expose=true`
//! or `hostkit.port=<port>`; else the only service that publishes ports;
//! else there is no main service (a stack nginx does not front). The port is
//! the service's `hostkit.port` label, else its only published container
//! port; it must be among the service's `ports`, since nginx reaches the
//! service through its host port.

use super::error::ComposeError;
use super::model::{Project, Service};
use super::path::KeyPath;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Label that marks the main service.
pub const LABEL_EXPOSE: &str = "hostkit.expose";
/// Label that names the main service's container port.
pub const LABEL_PORT: &str = "hostkit.port";

/// The service nginx proxies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainService {
    /// Service name.
    pub service: String,
    /// Container (target) port; its host ports come from the port plan.
    pub port: u16,
}

fn labelled(service: &Service) -> bool {
    service
        .labels
        .get(LABEL_EXPOSE)
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || service.labels.contains_key(LABEL_PORT)
}

impl Project {
    /// Chooses the main service; see the module documentation for the rules.
    pub fn main_service(
        &self,
        explicit: Option<&str>,
    ) -> Result<Option<MainService>, ComposeError> {
        let services = KeyPath::from_keys(["services"]);
        let name = if let Some(name) = explicit {
            if !self.services.contains_key(name) {
                return Err(ComposeError::invalid(
                    &services,
                    format!("the job's main service `{name}` is not a service of the compose file"),
                ));
            }
            name
        } else {
            let marked: Vec<&str> = self
                .services
                .iter()
                .filter(|(_, s)| labelled(s))
                .map(|(n, _)| n.as_str())
                .collect();
            let with_ports: Vec<&str> = self
                .services
                .iter()
                .filter(|(_, s)| !s.ports.is_empty())
                .map(|(n, _)| n.as_str())
                .collect();
            match (marked.as_slice(), with_ports.as_slice()) {
                ([one], _) => *one,
                ([], [one]) => *one,
                ([], []) => return Ok(None),
                ([], many) => {
                    return Err(ComposeError::invalid(
                        &services,
                        format!(
                            "several services publish ports ({}): label the main one `hostkit.expose=true` or pass the job's main service",
                            many.join(", ")
                        ),
                    ));
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
        let port = self.main_port(name)?;
        Ok(Some(MainService {
            service: name.to_owned(),
            port,
        }))
    }

    fn main_port(&self, name: &str) -> Result<u16, ComposeError> {
        let service = &self.services[name];
        let path = KeyPath::from_keys(["services", name]);
        let targets: BTreeSet<u16> = service.ports.iter().map(|p| p.target).collect();
        if let Some(label) = service.labels.get(LABEL_PORT) {
            let label_path = path.key("labels").key(LABEL_PORT);
            let port: u16 = label
                .trim()
                .parse()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| {
                    ComposeError::invalid(&label_path, format!("invalid port `{label}`"))
                })?;
            if !targets.contains(&port) {
                return Err(ComposeError::invalid(
                    &label_path,
                    format!("port {port} is not published by `{name}`: add `ports: [\"{port}\"]`"),
                ));
            }
            return Ok(port);
        }
        match targets.iter().collect::<Vec<_>>().as_slice() {
            [one] => Ok(**one),
            [] => Err(ComposeError::invalid(
                &path,
                format!("the main service `{name}` publishes no port: add e.g. `ports: [\"80\"]`"),
            )),
            _ => Err(ComposeError::invalid(
                &path,
                format!(
                    "the main service `{name}` publishes several ports: choose one with the label `hostkit.port`"
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
        assert_eq!(main(t, None).expect("ok"), ms("web", 80));
    }

    #[test]
    fn labels_pick_the_service_and_port() {
        let t = "services:\n  web: {image: a, ports: ['80', '9090'], labels: {hostkit.port: '9090'}}\n  admin: {image: b, ports: ['81']}\n";
        assert_eq!(main(t, None).expect("ok"), ms("web", 9090));
        let t = "services:\n  web: {image: a, ports: ['80'], labels: [hostkit.expose=true]}\n  admin: {image: b, ports: ['81']}\n";
        assert_eq!(main(t, None).expect("ok"), ms("web", 80));
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
    fn ambiguous_and_invalid_choices_are_errors() {
        let two = "services:\n  a: {image: a, ports: ['80']}\n  b: {image: b, ports: ['81']}\n";
        assert!(
            main(two, None)
                .expect_err("ambiguous")
                .to_string()
                .contains("several services publish ports")
        );
        let two_labels = "services:\n  a: {image: a, ports: ['80'], labels: [hostkit.expose=true]}\n  b: {image: b, ports: ['81'], labels: [hostkit.expose=true]}\n";
        assert!(main(two_labels, None).is_err());
        let unpublished =
            "services:\n  a: {image: a, ports: ['80'], labels: {hostkit.port: '8080'}}\n";
        assert!(
            main(unpublished, None)
                .expect_err("unpublished")
                .to_string()
                .contains("add `ports")
        );
        let no_port = "services:\n  a: {image: a, labels: [hostkit.expose=true]}\n";
        assert!(
            main(no_port, None)
                .expect_err("no port")
                .to_string()
                .contains("publishes no port")
        );
        let several = "services:\n  a: {image: a, ports: ['80', '443']}\n";
        assert!(
            main(several, None)
                .expect_err("several")
                .to_string()
                .contains("hostkit.port")
        );
        let bad = "services:\n  a: {image: a, ports: ['80'], labels: {hostkit.port: http}}\n";
        assert!(main(bad, None).is_err());
    }
}
