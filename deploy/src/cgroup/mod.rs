//! Stack-wide budgets (DESIGN §5 "Stack-wide limits"): memory, CPUs and
//! processes for a whole stack, enforced by one parent cgroup per stack.
//!
//! Every container of a stack with a budget is created with
//! `HostConfig.CgroupParent = /hostkit/<project>` ([`parent_of`]); before
//! any of them is created or started, the engine makes that parent and
//! writes the budget into it ([`CgroupTree::apply`]): cgroup v1
//! (`memory.limit_in_bytes` + `memory.memsw.limit_in_bytes`,
//! `cpu.cfs_quota_us`/`cpu.cfs_period_us`, `pids.max` under each
//! controller's hierarchy, [`v1`]) or v2 (`memory.max`, `cpu.max`,
//! `pids.max`, controllers enabled down the tree, [`v2`]). The kernel then
//! holds the stack to the budget however its services are limited.
//!
//! This needs the engine's cgroupfs driver: with the systemd driver a parent
//! is a slice whose limits only systemd sets, so there the budget lowers
//! the policy's per-stack caps instead ([`Budget::tighten`],
//! [`Enforcement::SumCheck`]).

mod budget;
mod detect;
mod files;
#[cfg(test)]
mod tests;
pub mod v1;
pub mod v2;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use budget::{Budget, CPU_PERIOD_US, DEFAULT_CGROUP_ROOT, StackLimits};
pub use detect::Enforcement;
pub use files::Removed;

use crate::engine::StackSpec;
use crate::policy::{PolicyDenied, Rule, Violation};

/// The directory under each hierarchy's root that holds the stacks' parents.
pub const PARENT_DIR: &str = "hostkit";

/// Error code of a budget that cannot be applied.
pub const CODE_LIMITS_FAILED: hostkit_proto::ErrorCode = hostkit_proto::ErrorCode::LimitsFailed;

/// The `CgroupParent` of every container of `project` (a domain token:
/// `[a-z0-9_-]`, so a single path component).
pub fn parent_of(project: &str) -> String {
    format!("/{PARENT_DIR}/{project}")
}

/// The cgroup version of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

impl fmt::Display for CgroupVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CgroupVersion::V1 => "v1",
            CgroupVersion::V2 => "v2",
        })
    }
}

/// Why a budget could not be applied (`limits.failed`). Nothing of the
/// stack has changed when one of these is returned by an apply.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// A controller the budget needs is not mounted or not offered.
    #[error("the {controller} controller is not available at {}", path.display())]
    ControllerMissing {
        /// `memory`, `cpu`, `pids` (or `cgroup2` for a root that is none).
        controller: &'static str,
        /// Where it was looked for.
        path: PathBuf,
    },
    /// A control file the kernel should have made is missing.
    #[error("{} does not exist: is its controller enabled?", path.display())]
    NoControlFile {
        /// The file.
        path: PathBuf,
    },
    /// The parent cgroup could not be made.
    #[error("cannot create the stack's cgroup {}: {}", path.display(), source.kind())]
    Create {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A limit could not be written.
    #[error("cannot write `{value}` to {}: {}", path.display(), source.kind())]
    Write {
        /// The control file.
        path: PathBuf,
        /// What was written.
        value: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The parent cgroup could not be removed.
    #[error("cannot remove the stack's cgroup {}: {}", path.display(), source.kind())]
    Remove {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The stack has a budget but this engine was given no cgroup tree.
    #[error("this node cannot enforce a stack budget with a cgroup: {reason}")]
    Unavailable {
        /// Why.
        reason: String,
    },
    /// The blocking work panicked (a bug).
    #[error("writing the stack's cgroup panicked: {message}")]
    Panicked {
        /// The panic.
        message: String,
    },
}

impl CgroupError {
    /// Stable wire code (`limits.failed`).
    pub fn code(&self) -> hostkit_proto::ErrorCode {
        CODE_LIMITS_FAILED
    }

    /// What the operator can do about it.
    pub fn hint(&self) -> &'static str {
        match self {
            CgroupError::ControllerMissing { .. } | CgroupError::NoControlFile { .. } => {
                "enable that cgroup controller on the node, or remove that key from the domain's [stack_limits] budget"
            }
            CgroupError::Write { source, .. }
                if source.kind() == std::io::ErrorKind::InvalidInput =>
            {
                "the kernel refused the value: on cgroup v1 a CPU budget cannot be below a running container's CPU limit, and a memory budget not below what the stack uses now"
            }
            CgroupError::Create { .. } | CgroupError::Write { .. } | CgroupError::Remove { .. } => {
                "the worker must run as root on the engine's host, with the cgroup file systems mounted read-write at [stack_limits] cgroup_root (default /sys/fs/cgroup)"
            }
            CgroupError::Unavailable { .. } => {
                "use the engine's cgroupfs driver, or remove the domain's budget from [stack_limits]"
            }
            CgroupError::Panicked { .. } => "see the worker's log on the node",
        }
    }
}

/// The cgroup hierarchy (or hierarchies, on v1) stacks' parents are made in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupTree {
    root: PathBuf,
    version: CgroupVersion,
}

impl CgroupTree {
    /// The tree at `root` (`/sys/fs/cgroup`; a plain directory in tests).
    pub fn new(root: impl Into<PathBuf>, version: CgroupVersion) -> CgroupTree {
        CgroupTree {
            root: root.into(),
            version,
        }
    }

    /// Where the cgroup file systems are mounted.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// v1 or v2.
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// Make `project`'s parent and write `budget` into it (an unset key is
    /// unlimited). Blocking.
    pub fn write_budget(&self, project: &str, budget: &Budget) -> Result<(), CgroupError> {
        self.write(project, budget, true)
    }

    /// Lift every limit of `project`'s parent, if it has one (its budget was
    /// removed from the configuration). Blocking.
    pub fn lift_budget(&self, project: &str) -> Result<(), CgroupError> {
        self.write(project, &Budget::default(), false)
    }

    fn write(&self, project: &str, budget: &Budget, create: bool) -> Result<(), CgroupError> {
        check_project(project)?;
        match self.version {
            CgroupVersion::V1 => v1::write(&self.root, project, budget, create),
            CgroupVersion::V2 => v2::write(&self.root, project, budget, create),
        }
    }

    /// Remove `project`'s parent once no container's cgroup is left in it,
    /// waiting up to `wait` for those going away. Blocking.
    pub fn remove_parent(&self, project: &str, wait: Duration) -> Result<Removed, CgroupError> {
        check_project(project)?;
        match self.version {
            CgroupVersion::V1 => v1::remove(&self.root, project, wait),
            CgroupVersion::V2 => v2::remove(&self.root, project, wait),
        }
    }

    /// [`write_budget`](Self::write_budget) off the async executor.
    pub async fn apply(&self, project: &str, budget: &Budget) -> Result<(), CgroupError> {
        let (tree, project, budget) = (self.clone(), project.to_owned(), *budget);
        blocking(move || tree.write_budget(&project, &budget)).await
    }

    /// [`lift_budget`](Self::lift_budget) off the async executor.
    pub async fn lift(&self, project: &str) -> Result<(), CgroupError> {
        let (tree, project) = (self.clone(), project.to_owned());
        blocking(move || tree.lift_budget(&project)).await
    }

    /// [`remove_parent`](Self::remove_parent) off the async executor.
    pub async fn remove(&self, project: &str, wait: Duration) -> Result<Removed, CgroupError> {
        let (tree, project) = (self.clone(), project.to_owned());
        blocking(move || tree.remove_parent(&project, wait)).await
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, CgroupError> + Send + 'static,
) -> Result<T, CgroupError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| CgroupError::Panicked {
            message: e.to_string(),
        })?
}

/// A project name is one path component (a domain token always is).
fn check_project(project: &str) -> Result<(), CgroupError> {
    let valid = !project.is_empty()
        && project != "."
        && project != ".."
        && project
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if valid {
        Ok(())
    } else {
        Err(CgroupError::Unavailable {
            reason: format!("`{project}` is not a project name"),
        })
    }
}

/// A service whose CPU limit is above the stack's CPU budget: cgroup v1
/// refuses to start it under the parent, and anywhere the limit could
/// never be reached. Checked before anything of the stack changes.
pub fn check_services(stack: &StackSpec, budget: &Budget) -> Result<(), PolicyDenied> {
    let Some(cap) = budget.nano_cpus() else {
        return Ok(());
    };
    let violations = stack
        .services
        .iter()
        .filter_map(|s| {
            let cpus = s.template.host_config.as_ref()?.nano_cpus?;
            (u64::try_from(cpus).ok()? > cap).then(|| Violation {
                rule: Rule::CpuLimit,
                service: Some(s.name.clone()),
                path: format!("services.{}.deploy.resources.limits.cpus", s.name),
                message: format!(
                    "{} CPUs is more than the whole stack's budget of {} CPUs",
                    cpus as f64 / 1e9,
                    cap as f64 / 1e9
                ),
            })
        })
        .collect();
    PolicyDenied::from_violations(violations)
}
