//! How this node can enforce stack budgets, from the engine's cgroup driver
//! and version (`docker info`).

use std::path::Path;

use bollard::Docker;
use bollard::models::{
    SystemInfoCgroupDriverEnum as Driver, SystemInfoCgroupVersionEnum as Version,
};

use super::{Budget, CgroupTree, CgroupVersion};
use crate::policy::Policy;

/// How stack budgets are enforced on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Enforcement {
    /// One parent cgroup per stack, made and limited by HostKit; every
    /// container of the stack runs under it.
    Cgroup(CgroupTree),
    /// No parent HostKit can limit: each service needs its own limits and
    /// their sum × replicas must fit the budget (the policy's caps,
    /// lowered to it).
    SumCheck {
        /// Why (for the startup log).
        reason: String,
    },
}

impl Enforcement {
    /// Ask the engine which cgroup driver and version it uses; `root` is
    /// where the cgroup file systems are mounted on this host.
    pub async fn detect(docker: &Docker, root: &Path) -> Enforcement {
        match docker.info().await {
            Ok(info) => Self::from_info(info.cgroup_driver, info.cgroup_version, root),
            Err(error) => Enforcement::SumCheck {
                reason: format!("the engine did not say which cgroup driver it uses ({error})"),
            },
        }
    }

    /// The enforcement for an engine reporting `driver` and `version`.
    pub fn from_info(driver: Option<Driver>, version: Option<Version>, root: &Path) -> Enforcement {
        match (driver, version) {
            (Some(Driver::CGROUPFS), Some(Version::_2)) => {
                Enforcement::Cgroup(CgroupTree::new(root, CgroupVersion::V2))
            }
            // Engines before API 1.40 report no version: they only know v1.
            (Some(Driver::CGROUPFS), Some(Version::_1 | Version::EMPTY) | None) => {
                Enforcement::Cgroup(CgroupTree::new(root, CgroupVersion::V1))
            }
            (Some(Driver::SYSTEMD), _) => Enforcement::SumCheck {
                reason: "the engine uses the systemd cgroup driver: a stack's parent would be a slice (hostkit-<project>.slice) whose limits only systemd sets".to_owned(),
            },
            (driver, _) => Enforcement::SumCheck {
                reason: format!(
                    "the engine's cgroup driver is `{}`, not cgroupfs",
                    driver.map(|d| d.to_string()).unwrap_or_default()
                ),
            },
        }
    }

    /// How a stack with `budget` runs here: the policy it is checked
    /// against and the budget its parent cgroup gets. Under a parent the
    /// policy is unchanged; without one the budget lowers its per-stack
    /// caps instead. An empty budget changes nothing.
    pub fn limits(&self, policy: &Policy, budget: Budget) -> (Policy, Option<Budget>) {
        match self {
            _ if budget.is_empty() => (policy.clone(), None),
            Enforcement::Cgroup(_) => (policy.clone(), Some(budget)),
            Enforcement::SumCheck { .. } => (budget.tighten(policy), None),
        }
    }

    /// The tree parents are made in, when there is one.
    pub fn tree(&self) -> Option<&CgroupTree> {
        match self {
            Enforcement::Cgroup(tree) => Some(tree),
            Enforcement::SumCheck { .. } => None,
        }
    }
}

impl std::fmt::Display for Enforcement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Enforcement::Cgroup(tree) => write!(
                f,
                "stack budgets are enforced by one parent cgroup per stack (/{}/<project>, cgroupfs driver, cgroup {} under {})",
                super::PARENT_DIR,
                tree.version(),
                tree.root().display()
            ),
            Enforcement::SumCheck { reason } => write!(
                f,
                "stack budgets fall back to a sum check (each service needs its own limits; limits × replicas must fit the budget): {reason}"
            ),
        }
    }
}
