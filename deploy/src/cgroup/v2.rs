//! cgroup v2 (unified): one hierarchy; a stack's parent is
//! `<root>/hostkit/<project>`, with the controllers it needs enabled in
//! `cgroup.subtree_control` of every cgroup above it.

use std::path::Path;
use std::time::Duration;

use super::budget::{Budget, CPU_PERIOD_US};
use super::files::{self, Removed};
use super::{CgroupError, PARENT_DIR};

/// The controllers a budget uses, in the kernel's order.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Create (when `create`) `project`'s parent, enable the controllers down
/// to it and write `budget`; an unset key is written as `max`. A controller
/// the root does not offer is an error only when the budget caps it.
pub fn write(root: &Path, project: &str, budget: &Budget, create: bool) -> Result<(), CgroupError> {
    let offered = files::read(&root.join("cgroup.controllers")).ok_or_else(|| {
        CgroupError::ControllerMissing {
            controller: "cgroup2",
            path: root.join("cgroup.controllers"),
        }
    })?;
    let offered: Vec<&str> = offered.split_whitespace().collect();
    let capped = |c: &str| match c {
        "memory" => budget.memory.is_some(),
        "cpu" => budget.cpus.is_some(),
        _ => budget.pids.is_some(),
    };
    let mut enabled = Vec::new();
    for controller in CONTROLLERS {
        if offered.contains(&controller) {
            enabled.push(controller);
        } else if capped(controller) && create {
            return Err(CgroupError::ControllerMissing {
                controller,
                path: root.join("cgroup.controllers"),
            });
        }
    }
    let parent = root.join(PARENT_DIR);
    let dir = parent.join(project);
    if create {
        let line = enabled
            .iter()
            .map(|c| format!("+{c}"))
            .collect::<Vec<_>>()
            .join(" ");
        files::write(&root.join("cgroup.subtree_control"), &line)?;
        files::make_dir(&parent)?;
        files::write(&parent.join("cgroup.subtree_control"), &line)?;
        files::make_dir(&dir)?;
        files::write(&dir.join("cgroup.subtree_control"), &line)?;
    } else if !dir.is_dir() {
        return Ok(());
    }
    if enabled.contains(&"memory") {
        let max = budget
            .memory
            .map_or_else(|| "max".to_owned(), |m| m.to_string());
        files::write(&dir.join("memory.max"), &max)?;
        // Swap is no way around the budget.
        let swap = dir.join("memory.swap.max");
        if swap.exists() {
            files::write(&swap, if budget.memory.is_some() { "0" } else { "max" })?;
        }
    }
    if enabled.contains(&"cpu") {
        let quota = budget
            .cpu_quota_us()
            .map_or_else(|| "max".to_owned(), |q| q.to_string());
        files::write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}"))?;
    }
    if enabled.contains(&"pids") {
        let max = budget
            .pids
            .map_or_else(|| "max".to_owned(), |p| p.to_string());
        files::write(&dir.join("pids.max"), &max)?;
    }
    Ok(())
}

/// Remove `project`'s parent once no container's cgroup is left in it.
pub fn remove(root: &Path, project: &str, wait: Duration) -> Result<Removed, CgroupError> {
    files::remove_when_empty(&root.join(PARENT_DIR).join(project), wait)
}
