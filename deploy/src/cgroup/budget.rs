//! A stack's budget (memory, CPUs, processes for the whole stack) and the
//! node's table of budgets: a default for every domain plus per-domain
//! overrides, as the worker's TOML writes them under `[stack_limits]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use hostkit_proto::Domain;
use hostkit_proto::name::DomainPattern;
use serde::{Deserialize, Serialize};

use crate::policy::Policy;

/// Where cgroup file systems are mounted by default.
pub const DEFAULT_CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// CPU bandwidth period HostKit writes (the kernel's and Docker's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// What one whole stack may use; `None`: no cap on that resource.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Budget {
    /// Memory (and swap) of every container together, in bytes (TOML: bytes
    /// or `"512m"`).
    #[serde(
        deserialize_with = "crate::policy::deserialize_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<u64>,
    /// CPUs of every container together (`1.5` = one and a half cores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Processes (and threads) of every container together.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
}

impl Budget {
    /// Whether no resource is capped.
    pub fn is_empty(&self) -> bool {
        self.memory.is_none() && self.cpus.is_none() && self.pids.is_none()
    }

    /// Each key of `self`, or `default`'s where `self` leaves it out.
    pub fn or(self, default: Budget) -> Budget {
        Budget {
            memory: self.memory.or(default.memory),
            cpus: self.cpus.or(default.cpus),
            pids: self.pids.or(default.pids),
        }
    }

    /// The CPU cap in the engine's unit (CPUs × 10⁹).
    pub fn nano_cpus(&self) -> Option<u64> {
        self.cpus.map(|c| (c * 1e9).round() as u64)
    }

    /// The CPU cap as a CFS quota per [`CPU_PERIOD_US`], in microseconds.
    pub fn cpu_quota_us(&self) -> Option<u64> {
        self.cpus
            .map(|c| ((c * CPU_PERIOD_US as f64).round() as u64).max(1000))
    }

    /// `policy` with its per-stack caps lowered to this budget: how a budget
    /// is enforced where no parent cgroup can be (every service then needs
    /// its own limits, and their sum × replicas must fit).
    pub fn tighten(&self, policy: &Policy) -> Policy {
        fn lower<T: PartialOrd + Copy>(cap: Option<T>, budget: Option<T>) -> Option<T> {
            match (cap, budget) {
                (Some(c), Some(b)) => Some(if b < c { b } else { c }),
                (c, b) => c.or(b),
            }
        }
        let mut tightened = policy.clone();
        tightened.max_memory = lower(policy.max_memory, self.memory);
        tightened.max_cpus = lower(policy.max_cpus, self.cpus);
        tightened.max_pids = lower(policy.max_pids, self.pids);
        tightened
    }
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(m) = self.memory {
            parts.push(format!("memory {m} bytes"));
        }
        if let Some(c) = self.cpus {
            parts.push(format!("{c} CPUs"));
        }
        if let Some(p) = self.pids {
            parts.push(format!("{p} processes"));
        }
        if parts.is_empty() {
            f.write_str("no budget")
        } else {
            f.write_str(&parts.join(", "))
        }
    }
}

/// `[stack_limits]` of the worker's TOML:
///
/// ```toml
/// [stack_limits]
/// cgroup_root = "/sys/fs/cgroup"   # where the cgroup file systems are
/// memory = "2g"                    # every domain's default budget
/// cpus = 2.0
/// pids = 1024
///
/// [stack_limits.domains."shop.example.com"]
/// memory = "4g"                    # keys set here replace the default's
///
/// [stack_limits.domains."*.example.org"]  # every subdomain (not the apex)
/// pids = 256
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StackLimits {
    /// Where the cgroup file systems are mounted.
    pub cgroup_root: PathBuf,
    /// Default memory budget of every stack (bytes or `"2g"`).
    #[serde(
        deserialize_with = "crate::policy::deserialize_size",
        skip_serializing_if = "Option::is_none"
    )]
    pub memory: Option<u64>,
    /// Default CPU budget of every stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<f64>,
    /// Default process budget of every stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids: Option<u64>,
    /// Overrides by domain (`example.com`) or pattern (`*.example.com`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub domains: BTreeMap<String, Budget>,
}

impl Default for StackLimits {
    fn default() -> Self {
        StackLimits {
            cgroup_root: PathBuf::from(DEFAULT_CGROUP_ROOT),
            memory: None,
            cpus: None,
            pids: None,
            domains: BTreeMap::new(),
        }
    }
}

impl StackLimits {
    /// The node-wide default budget.
    pub fn default_budget(&self) -> Budget {
        Budget {
            memory: self.memory,
            cpus: self.cpus,
            pids: self.pids,
        }
    }

    /// Whether any domain can have a budget.
    pub fn any(&self) -> bool {
        !self.default_budget().is_empty() || self.domains.values().any(|b| !b.is_empty())
    }

    /// `domain`'s budget: the most specific override (the domain itself,
    /// then the longest matching `*.` pattern) over the default.
    pub fn budget_for(&self, domain: &Domain) -> Budget {
        let best = self
            .domains
            .iter()
            .filter_map(|(pattern, budget)| {
                pattern
                    .parse::<DomainPattern>()
                    .ok()?
                    .specificity(domain)
                    .map(|s| (s, budget))
            })
            .max_by_key(|(s, _)| *s);
        match best {
            Some((_, budget)) => budget.or(self.default_budget()),
            None => self.default_budget(),
        }
    }
}
