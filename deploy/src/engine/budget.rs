//! The engine's part of stack budgets: the stack's parent cgroup is made
//! and limited before any container of it is created or started, and goes
//! with the stack.

use std::time::Duration;

use super::Engine;
use super::spec::StackSpec;
use crate::cgroup::{self, CgroupError, Removed};
use crate::error::DeployError;
use crate::progress::{Progress, ProgressSink};

/// How long a removal waits for the engine to drop the cgroups of the
/// containers it just removed.
const REMOVE_WAIT: Duration = Duration::from_secs(3);

impl Engine {
    /// Write `stack`'s budget into its parent cgroup (made if missing);
    /// nothing when it has none. Fails before anything of the stack
    /// changes: a service asking for more CPUs than the budget is denied
    /// (`cpu-limit`), an unwritable cgroup is `limits.failed`.
    pub(super) async fn ensure_budget(
        &self,
        stack: &StackSpec,
        sink: &dyn ProgressSink,
    ) -> Result<(), DeployError> {
        let Some(budget) = &stack.budget else {
            return Ok(());
        };
        cgroup::check_services(stack, budget)?;
        let tree = self
            .options
            .cgroups
            .as_ref()
            .ok_or_else(|| CgroupError::Unavailable {
                reason: "the engine's cgroup driver is not cgroupfs".to_owned(),
            })?;
        tree.apply(&stack.project, budget).await?;
        sink.report(Progress::Step {
            name: "limits",
            message: format!(
                "stack budget: {budget} for every container together (cgroup {})",
                cgroup::parent_of(&stack.project)
            ),
        });
        Ok(())
    }

    /// Remove `project`'s parent cgroup once its containers are gone; a
    /// parent that stays is a warning, not a failure (it is empty or about
    /// to be, and limits nothing else).
    pub(super) async fn remove_budget(&self, project: &str, sink: &dyn ProgressSink) {
        let Some(tree) = &self.options.cgroups else {
            return;
        };
        let message = match tree.remove(project, REMOVE_WAIT).await {
            Ok(Removed::Gone | Removed::Absent) => return,
            Ok(Removed::Busy) => format!(
                "the stack's cgroup {} still holds a container's cgroup and stays",
                cgroup::parent_of(project)
            ),
            Err(e) => e.to_string(),
        };
        tracing::warn!(project, "{message}");
        sink.report(Progress::Warning { message });
    }
}
