//! cgroup v1: one hierarchy per controller (`<root>/memory`, `<root>/cpu`,
//! `<root>/pids`); a stack's parent is `hostkit/<project>` in each. The
//! engine (runc) creates the same path in the other hierarchies itself.

use std::path::Path;
use std::time::Duration;

use super::budget::{Budget, CPU_PERIOD_US};
use super::files::{self, Removed};
use super::{CgroupError, PARENT_DIR};

/// Create (when `create`) the parent of `project` in the memory, cpu and
/// pids hierarchies and write `budget` there; an unset key is written as
/// "unlimited". A hierarchy that is not mounted is an error only when the
/// budget caps its resource.
pub fn write(root: &Path, project: &str, budget: &Budget, create: bool) -> Result<(), CgroupError> {
    for (controller, capped) in [
        ("memory", budget.memory.is_some()),
        ("cpu", budget.cpus.is_some()),
        ("pids", budget.pids.is_some()),
    ] {
        let base = root.join(controller);
        if !base.is_dir() {
            if capped && create {
                return Err(CgroupError::ControllerMissing {
                    controller,
                    path: base,
                });
            }
            continue;
        }
        let dir = base.join(PARENT_DIR).join(project);
        if create {
            for made in [base.join(PARENT_DIR), dir.clone()] {
                files::make_dir(&made)?;
                if controller == "memory" {
                    hierarchical(&made)?;
                }
            }
        } else if !dir.is_dir() {
            continue;
        }
        match controller {
            "memory" => memory(&base, &dir, budget.memory)?,
            "cpu" => {
                files::write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())?;
                let quota = budget
                    .cpu_quota_us()
                    .map_or_else(|| "-1".to_owned(), |q| q.to_string());
                files::write(&dir.join("cpu.cfs_quota_us"), &quota)?;
            }
            _ => {
                let max = budget
                    .pids
                    .map_or_else(|| "max".to_owned(), |p| p.to_string());
                files::write(&dir.join("pids.max"), &max)?;
            }
        }
    }
    Ok(())
}

/// Older kernels let a memory cgroup ignore its children's usage
/// (`memory.use_hierarchy = 0`, inherited from the root): a parent's limit
/// would then limit nothing. Set while the cgroup has no children yet.
fn hierarchical(dir: &Path) -> Result<(), CgroupError> {
    let file = dir.join("memory.use_hierarchy");
    if files::read(&file).as_deref() == Some("0") {
        files::write(&file, "1")?;
    }
    Ok(())
}

/// `memory.limit_in_bytes`, and `memory.memsw.limit_in_bytes` (memory +
/// swap) where swap accounting is on, so that swap is no way around the
/// budget. The kernel wants memory ≤ memory + swap after every write, so
/// the order depends on whether the limit goes up or down.
fn memory(base: &Path, dir: &Path, limit: Option<u64>) -> Result<(), CgroupError> {
    let value = limit.map_or_else(|| "-1".to_owned(), |m| m.to_string());
    let memory = dir.join("memory.limit_in_bytes");
    if !base.join("memory.memsw.limit_in_bytes").exists() {
        return files::write(&memory, &value);
    }
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let current = files::read(&memsw)
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(u64::MAX);
    if limit.unwrap_or(u64::MAX) > current {
        files::write(&memsw, &value)?;
        files::write(&memory, &value)
    } else {
        files::write(&memory, &value)?;
        files::write(&memsw, &value)
    }
}

/// Remove `project`'s parent from every hierarchy under `root` (the engine
/// made it in all of them), once no container's cgroup is left in it.
pub fn remove(root: &Path, project: &str, wait: Duration) -> Result<Removed, CgroupError> {
    let hierarchies = std::fs::read_dir(root).map_err(|source| CgroupError::Remove {
        path: root.to_path_buf(),
        source,
    })?;
    let mut outcome = Removed::Absent;
    for hierarchy in hierarchies.filter_map(Result::ok) {
        let dir = hierarchy.path().join(PARENT_DIR).join(project);
        outcome = outcome.and(files::remove_when_empty(&dir, wait)?);
    }
    Ok(outcome)
}
