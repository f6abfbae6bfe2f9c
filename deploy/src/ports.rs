//! Host port assignment: every published container port of every replica
//! gets a host port from the domain's block, bound to 127.0.0.1.
//!
//! The ports requested in the compose file (`published`, `host_ip`) are not
//! used: the block is the only source of host ports. Assignment is
//! deterministic: slots are ordered by (service, replica, target, protocol,
//! occurrence) and take the lowest free port. Passing the previous plan keeps
//! every slot that still exists on its old port, so adding a service or a
//! replica does not move the ports of the others (and does not recreate
//! their containers).

use crate::compose::{Project, Protocol};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};

/// Error code of a block that is too small for the stack.
pub const CODE_EXHAUSTED: &str = "ports.exhausted";

/// The address every published port is bound to.
pub const BIND_IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A domain's range of host ports: `start .. start + len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBlock {
    /// First port.
    pub start: u16,
    /// Number of ports.
    pub len: u16,
}

impl PortBlock {
    /// The ports of the block, in order (empty if the block overflows).
    pub fn ports(&self) -> impl Iterator<Item = u16> + use<> {
        let end = u32::from(self.start) + u32::from(self.len);
        let valid = self.start > 0 && end <= 65536;
        let (start, len) = if valid {
            (self.start, self.len)
        } else {
            (0, 0)
        };
        (0..len).map(move |i| start + i)
    }

    /// True if `port` is in the block.
    pub fn contains(&self, port: u16) -> bool {
        port >= self.start && u32::from(port) < u32::from(self.start) + u32::from(self.len)
    }
}

/// One assigned host port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortAssignment {
    /// Service name.
    pub service: String,
    /// Replica number, 1-based (the container number).
    pub replica: u32,
    /// Container port.
    pub target: u16,
    /// Protocol.
    pub protocol: Protocol,
    /// 0 unless the service publishes the same target and protocol twice.
    pub occurrence: u16,
    /// Host address: always [`BIND_IP`].
    pub host_ip: IpAddr,
    /// Host port, inside the block.
    pub host_port: u16,
}

type Slot = (String, u32, u16, Protocol, u16);

impl PortAssignment {
    fn slot(&self) -> Slot {
        (
            self.service.clone(),
            self.replica,
            self.target,
            self.protocol,
            self.occurrence,
        )
    }
}

/// The host ports of a stack.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortPlan {
    /// Assignments sorted by (service, replica, target, protocol, occurrence).
    pub assignments: Vec<PortAssignment>,
}

impl PortPlan {
    /// The assignments of one container.
    pub fn for_replica<'a>(
        &'a self,
        service: &'a str,
        replica: u32,
    ) -> impl Iterator<Item = &'a PortAssignment> + 'a {
        self.assignments
            .iter()
            .filter(move |a| a.service == service && a.replica == replica)
    }

    /// The host ports of `service`'s TCP `target` port, one per replica in
    /// replica order (the nginx upstream of the main service).
    pub fn upstream(&self, service: &str, target: u16) -> Vec<u16> {
        self.assignments
            .iter()
            .filter(|a| {
                a.service == service
                    && a.target == target
                    && a.protocol == Protocol::Tcp
                    && a.occurrence == 0
            })
            .map(|a| a.host_port)
            .collect()
    }
}

/// Why ports could not be assigned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    /// The block has fewer ports than the stack publishes.
    #[error(
        "the stack publishes {needed} ports (counting replicas) but the domain's port block {start}-{end} has {available}"
    )]
    Exhausted {
        /// Ports needed.
        needed: usize,
        /// Ports in the block.
        available: usize,
        /// First port of the block.
        start: u16,
        /// Last port of the block.
        end: u32,
    },
}

impl PortsError {
    /// The stable error code (`ports.exhausted`).
    pub fn code(&self) -> &'static str {
        CODE_EXHAUSTED
    }

    /// A hint for the user.
    pub fn hint(&self) -> &'static str {
        "publish fewer ports (services reach each other on the project network without ports), or ask for a larger port block"
    }
}

/// Assigns host ports for `project` (with its current replica counts) from
/// `block`, keeping `previous` assignments that still fit.
pub fn assign_ports(
    project: &Project,
    block: PortBlock,
    previous: Option<&PortPlan>,
) -> Result<PortPlan, PortsError> {
    let mut slots: Vec<Slot> = Vec::new();
    for (name, service) in &project.services {
        let mut occurrences: BTreeMap<(u16, Protocol), u16> = BTreeMap::new();
        let mut keys = Vec::new();
        for port in &service.ports {
            let n = occurrences.entry((port.target, port.protocol)).or_insert(0);
            keys.push((port.target, port.protocol, *n));
            *n += 1;
        }
        for replica in 1..=service.deploy.replicas {
            slots.extend(
                keys.iter()
                    .map(|(t, p, o)| (name.clone(), replica, *t, *p, *o)),
            );
        }
    }
    slots.sort();
    let available: Vec<u16> = block.ports().collect();
    if slots.len() > available.len() {
        return Err(PortsError::Exhausted {
            needed: slots.len(),
            available: available.len(),
            start: block.start,
            end: (u32::from(block.start) + u32::from(block.len)).saturating_sub(1),
        });
    }
    let kept: BTreeMap<Slot, u16> = previous
        .map(|plan| {
            plan.assignments
                .iter()
                .map(|a| (a.slot(), a.host_port))
                .collect()
        })
        .unwrap_or_default();
    let mut taken = BTreeSet::new();
    let mut ports: Vec<Option<u16>> = slots
        .iter()
        .map(|slot| {
            kept.get(slot)
                .copied()
                .filter(|p| block.contains(*p) && taken.insert(*p))
        })
        .collect();
    let mut free = available.into_iter().filter(|p| !taken.contains(p));
    for port in ports.iter_mut().filter(|p| p.is_none()) {
        *port = free.next();
    }
    let assignments = slots
        .into_iter()
        .zip(ports)
        .map(
            |((service, replica, target, protocol, occurrence), port)| PortAssignment {
                service,
                replica,
                target,
                protocol,
                occurrence,
                host_ip: BIND_IP,
                // Enough ports were checked above, so every slot got one.
                host_port: port.unwrap_or_default(),
            },
        )
        .collect();
    Ok(PortPlan { assignments })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::{Env, load};

    fn project(text: &str) -> Project {
        load(text, &Env::new()).expect("loads").project
    }

    const STACK: &str = "services:\n  web:\n    image: a\n    ports: ['8080:80', '443']\n    deploy: {replicas: 2}\n  api:\n    image: b\n    ports: ['127.0.0.1:3000:3000', '53/udp']\n  db:\n    image: c\n";

    fn summary(plan: &PortPlan) -> Vec<(String, u32, u16, u16)> {
        plan.assignments
            .iter()
            .map(|a| (a.service.clone(), a.replica, a.target, a.host_port))
            .collect()
    }

    #[test]
    fn assigns_deterministically_in_sorted_order() {
        let p = project(STACK);
        let plan = assign_ports(
            &p,
            PortBlock {
                start: 20000,
                len: 10,
            },
            None,
        )
        .expect("fits");
        let s = |n: &str, r, t, h| (n.to_owned(), r, t, h);
        assert_eq!(
            summary(&plan),
            vec![
                s("api", 1, 53, 20000),
                s("api", 1, 3000, 20001),
                s("web", 1, 80, 20002),
                s("web", 1, 443, 20003),
                s("web", 2, 80, 20004),
                s("web", 2, 443, 20005),
            ]
        );
        assert!(plan.assignments.iter().all(|a| a.host_ip == BIND_IP));
        assert_eq!(plan.upstream("web", 80), vec![20002, 20004]);
        assert_eq!(plan.for_replica("web", 2).count(), 2);
        assert_eq!(
            plan,
            assign_ports(
                &p,
                PortBlock {
                    start: 20000,
                    len: 10
                },
                None
            )
            .expect("again")
        );
    }

    #[test]
    fn exhausted_block_is_an_error() {
        let p = project(STACK);
        let e = assign_ports(
            &p,
            PortBlock {
                start: 20000,
                len: 5,
            },
            None,
        )
        .expect_err("too small");
        assert_eq!(e.code(), "ports.exhausted");
        assert_eq!(
            e,
            PortsError::Exhausted {
                needed: 6,
                available: 5,
                start: 20000,
                end: 20004
            }
        );
        let e = assign_ports(
            &p,
            PortBlock {
                start: 65530,
                len: 10,
            },
            None,
        )
        .expect_err("overflow");
        assert!(matches!(e, PortsError::Exhausted { available: 0, .. }));
    }

    #[test]
    fn previous_assignments_are_kept() {
        let p = project(STACK);
        let block = PortBlock {
            start: 20000,
            len: 10,
        };
        let first = assign_ports(&p, block, None).expect("fits");
        // A new service sorted first would shift everything without `previous`.
        let grown = project(&format!("{STACK}  aaa:\n    image: d\n    ports: ['1']\n"));
        let second = assign_ports(&grown, block, Some(&first)).expect("fits");
        for a in &first.assignments {
            let same = second
                .assignments
                .iter()
                .find(|b| b.service == a.service && b.replica == a.replica && b.target == a.target);
            assert_eq!(same.map(|b| b.host_port), Some(a.host_port), "{a:?}");
        }
        let new = second
            .assignments
            .iter()
            .find(|a| a.service == "aaa")
            .expect("aaa");
        assert_eq!(new.host_port, 20006);
        // A port outside the (new) block is reassigned.
        let moved = assign_ports(
            &p,
            PortBlock {
                start: 30000,
                len: 10,
            },
            Some(&first),
        )
        .expect("fits");
        assert!(
            moved
                .assignments
                .iter()
                .all(|a| (30000..30010).contains(&a.host_port))
        );
    }

    #[test]
    fn duplicate_targets_get_their_own_ports() {
        let p =
            project("services:\n  web:\n    image: a\n    ports: ['80', '8080:80', '80/udp']\n");
        let plan = assign_ports(&p, PortBlock { start: 100, len: 3 }, None).expect("fits");
        let occ: Vec<(u16, Protocol, u16, u16)> = plan
            .assignments
            .iter()
            .map(|a| (a.target, a.protocol, a.occurrence, a.host_port))
            .collect();
        assert_eq!(
            occ,
            vec![
                (80, Protocol::Tcp, 0, 100),
                (80, Protocol::Tcp, 1, 101),
                (80, Protocol::Udp, 0, 102)
            ]
        );
    }
}
