//! Stack budgets at startup: say how this node enforces them, and write
//! every known domain's current budget into its parent cgroup (a changed
//! `[stack_limits]` takes effect when the worker starts; a removed budget
//! is lifted). Jobs write their domain's budget again before they apply.

use hostkit_deploy::cgroup::{Enforcement, StackLimits};

use super::Worker;

/// The startup log line about stack budgets.
pub fn log_enforcement(enforcement: &Enforcement, limits: &StackLimits) {
    match enforcement {
        _ if !limits.any() => tracing::info!(%enforcement, "no stack budgets configured"),
        Enforcement::Cgroup(_) => tracing::info!("{enforcement}"),
        Enforcement::SumCheck { .. } => tracing::warn!("{enforcement}"),
    }
}

/// Write each domain's budget into its parent cgroup, or lift the limits
/// of a parent whose domain no longer has a budget. Failures are logged:
/// the domain's next job reports them (`limits.failed`).
pub async fn apply_all(worker: &Worker) {
    let Some(tree) = worker.enforcement.tree() else {
        return;
    };
    let domains = match worker.store.domains().await {
        Ok(domains) => domains,
        Err(error) => {
            tracing::warn!(%error, "stack budgets not refreshed: the store failed");
            return;
        }
    };
    for record in domains {
        let project = record.domain.token();
        let budget = worker.settings.stack_limits.budget_for(&record.domain);
        let result = if budget.is_empty() {
            tree.lift(&project).await
        } else {
            tree.apply(&project, &budget).await
        };
        match result {
            Ok(()) if !budget.is_empty() => {
                tracing::info!(domain = %record.domain, %budget, "stack budget written")
            }
            Ok(()) => {}
            Err(error) => tracing::warn!(
                domain = %record.domain,
                %error,
                hint = error.hint(),
                "stack budget not written"
            ),
        }
    }
}
