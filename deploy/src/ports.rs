//! A domain's block of host ports. Every published container port of every
//! replica gets a host port from the block, bound to 127.0.0.1; the ports
//! requested in the compose file (`published`, `host_ip`) are not used.
//!
//! The engine picks the lowest free port of the block when it creates a
//! replica (see `engine::apply`): a start-first replacement needs ports
//! beside the old replica's, so the choice depends on what runs.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_lists_its_ports() {
        let block = PortBlock {
            start: 20000,
            len: 3,
        };
        assert_eq!(block.ports().collect::<Vec<_>>(), vec![20000, 20001, 20002]);
        assert!(block.contains(20002));
        assert!(!block.contains(20003));
        assert!(!block.contains(19999));
    }

    #[test]
    fn an_overflowing_block_is_empty() {
        let block = PortBlock {
            start: 65535,
            len: 10,
        };
        assert_eq!(block.ports().count(), 0);
    }
}
