//! Budgets and the parent cgroup, written into a fake cgroup root (a plain
//! directory laid out like `/sys/fs/cgroup`).

use std::fs;
use std::path::Path;
use std::time::Duration;

use bollard::models::{
    SystemInfoCgroupDriverEnum as Driver, SystemInfoCgroupVersionEnum as Version,
};
use hostkit_proto::Domain;

use super::*;
use crate::policy::Policy;

fn read(path: impl AsRef<Path>) -> String {
    fs::read_to_string(path.as_ref()).unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

/// A v1 root with the memory (swap accounting on), cpu and pids hierarchies.
fn v1_root() -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    for c in ["memory", "cpu", "pids", "cpuset"] {
        fs::create_dir(root.path().join(c)).expect("hierarchy");
    }
    fs::write(
        root.path().join("memory/memory.memsw.limit_in_bytes"),
        "9223372036854771712\n",
    )
    .expect("memsw");
    root
}

/// A v2 root offering `controllers`.
fn v2_root(controllers: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("temp dir");
    fs::write(root.path().join("cgroup.controllers"), controllers).expect("controllers");
    fs::write(root.path().join("cgroup.subtree_control"), "").expect("subtree");
    root
}

const BUDGET: Budget = Budget {
    memory: Some(64 << 20),
    cpus: Some(1.5),
    pids: Some(40),
};

#[test]
fn v1_writes_the_budget_under_each_controller() {
    let root = v1_root();
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    tree.write_budget("shop_example_com", &BUDGET)
        .expect("written");
    let at = |c: &str, f: &str| read(root.path().join(c).join("hostkit/shop_example_com").join(f));
    assert_eq!(at("memory", "memory.limit_in_bytes"), "67108864");
    assert_eq!(at("memory", "memory.memsw.limit_in_bytes"), "67108864");
    assert_eq!(at("cpu", "cpu.cfs_period_us"), "100000");
    assert_eq!(at("cpu", "cpu.cfs_quota_us"), "150000");
    assert_eq!(at("pids", "pids.max"), "40");
    assert!(
        !root.path().join("cpuset/hostkit").exists(),
        "other hierarchies are the engine's to fill"
    );
    assert_eq!(parent_of("shop_example_com"), "/hostkit/shop_example_com");
}

#[test]
fn v1_updates_a_changed_budget_and_lifts_a_removed_one() {
    let root = v1_root();
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    tree.write_budget("p", &BUDGET).expect("written");
    let bigger = Budget {
        memory: Some(128 << 20),
        cpus: None,
        pids: Some(50),
    };
    tree.write_budget("p", &bigger).expect("updated");
    let at = |c: &str, f: &str| read(root.path().join(c).join("hostkit/p").join(f));
    assert_eq!(at("memory", "memory.limit_in_bytes"), "134217728");
    assert_eq!(at("memory", "memory.memsw.limit_in_bytes"), "134217728");
    assert_eq!(at("cpu", "cpu.cfs_quota_us"), "-1");
    assert_eq!(at("pids", "pids.max"), "50");

    tree.lift_budget("p").expect("lifted");
    assert_eq!(at("memory", "memory.limit_in_bytes"), "-1");
    assert_eq!(at("pids", "pids.max"), "max");
    // Lifting never creates a parent.
    tree.lift_budget("other").expect("nothing to lift");
    assert!(!root.path().join("pids/hostkit/other").exists());
}

#[test]
fn v1_makes_the_memory_parents_hierarchical_where_the_kernel_does_not() {
    let root = v1_root();
    let parent = root.path().join("memory/hostkit");
    fs::create_dir(&parent).expect("an old kernel's parent");
    fs::write(parent.join("memory.use_hierarchy"), "0\n").expect("flat");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    tree.write_budget("p", &BUDGET).expect("written");
    assert_eq!(read(parent.join("memory.use_hierarchy")), "1");
    assert!(
        !parent.join("p/memory.use_hierarchy").exists(),
        "a kernel that has no such switch gets none"
    );
}

#[test]
fn v1_without_swap_accounting_writes_memory_only() {
    let root = v1_root();
    fs::remove_file(root.path().join("memory/memory.memsw.limit_in_bytes")).expect("rm");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    tree.write_budget("p", &BUDGET).expect("written");
    let dir = root.path().join("memory/hostkit/p");
    assert_eq!(read(dir.join("memory.limit_in_bytes")), "67108864");
    assert!(!dir.join("memory.memsw.limit_in_bytes").exists());
}

#[test]
fn a_missing_controller_fails_only_when_the_budget_caps_it() {
    let root = v1_root();
    fs::remove_dir(root.path().join("pids")).expect("rm pids");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    let err = tree
        .write_budget("p", &BUDGET)
        .expect_err("no pids hierarchy");
    assert!(
        matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "pids",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.code(), "limits.failed");
    assert!(err.to_string().contains("pids"), "{err}");
    let no_pids = Budget {
        pids: None,
        ..BUDGET
    };
    tree.write_budget("p", &no_pids).expect("pids not needed");

    let v2 = v2_root("cpuset cpu io memory");
    let tree = CgroupTree::new(v2.path(), CgroupVersion::V2);
    let err = tree
        .write_budget("p", &BUDGET)
        .expect_err("pids not offered");
    assert!(
        matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "pids",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!v2.path().join("hostkit").exists(), "nothing was made");
}

#[test]
fn an_unwritable_root_is_a_clear_error() {
    let root = tempfile::tempdir().expect("temp dir");
    // `memory` is a file: nothing can be made below it.
    fs::write(root.path().join("memory"), "").expect("file");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    let err = tree.write_budget("p", &BUDGET).expect_err("no hierarchy");
    assert_eq!(err.code(), "limits.failed");

    let root = v1_root();
    fs::write(root.path().join("pids/hostkit"), "").expect("a file where the parent goes");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    let err = tree.write_budget("p", &BUDGET).expect_err("cannot create");
    assert!(matches!(err, CgroupError::Create { .. }), "{err:?}");
    assert!(err.hint().contains("cgroup_root"), "{}", err.hint());

    // A project name is never a path.
    assert!(tree.write_budget("../etc", &BUDGET).is_err());
    assert!(tree.write_budget("", &BUDGET).is_err());
}

#[test]
fn v2_enables_the_controllers_down_to_the_parent_and_writes_the_budget() {
    let root = v2_root("cpuset cpu io memory hugetlb pids rdma misc\n");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V2);
    tree.write_budget("shop_example_com", &BUDGET)
        .expect("written");
    let parent = root.path().join("hostkit");
    let dir = parent.join("shop_example_com");
    for at in [root.path(), parent.as_path(), dir.as_path()] {
        assert_eq!(
            read(at.join("cgroup.subtree_control")),
            "+cpu +memory +pids",
            "{}",
            at.display()
        );
    }
    assert_eq!(read(dir.join("memory.max")), "67108864");
    assert_eq!(read(dir.join("cpu.max")), "150000 100000");
    assert_eq!(read(dir.join("pids.max")), "40");

    tree.write_budget(
        "shop_example_com",
        &Budget {
            pids: Some(10),
            ..Budget::default()
        },
    )
    .expect("updated");
    assert_eq!(read(dir.join("memory.max")), "max");
    assert_eq!(read(dir.join("cpu.max")), "max 100000");
    assert_eq!(read(dir.join("pids.max")), "10");
}

#[test]
fn v2_caps_swap_where_the_kernel_offers_it() {
    let root = v2_root("cpu memory pids");
    let dir = root.path().join("hostkit/p");
    fs::create_dir_all(&dir).expect("parent");
    fs::write(dir.join("memory.swap.max"), "max").expect("swap file");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V2);
    tree.write_budget("p", &BUDGET).expect("written");
    assert_eq!(read(dir.join("memory.swap.max")), "0");
    tree.lift_budget("p").expect("lifted");
    assert_eq!(read(dir.join("memory.swap.max")), "max");
}

#[test]
fn a_v2_root_that_is_not_one_is_refused() {
    let root = tempfile::tempdir().expect("temp dir");
    let tree = CgroupTree::new(root.path(), CgroupVersion::V2);
    let err = tree
        .write_budget("p", &BUDGET)
        .expect_err("no cgroup.controllers");
    assert!(
        matches!(
            err,
            CgroupError::ControllerMissing {
                controller: "cgroup2",
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_parent_is_removed_only_once_no_container_is_left_in_it() {
    let root = v1_root();
    let tree = CgroupTree::new(root.path(), CgroupVersion::V1);
    assert_eq!(
        tree.remove_parent("p", Duration::ZERO).expect("nothing"),
        Removed::Absent
    );
    fs::create_dir_all(root.path().join("pids/hostkit/p/0123abcd")).expect("a container");
    fs::create_dir_all(root.path().join("cpuset/hostkit/p")).expect("runc's");
    assert_eq!(
        tree.remove_parent("p", Duration::ZERO).expect("busy"),
        Removed::Busy
    );
    assert!(root.path().join("pids/hostkit/p/0123abcd").is_dir());
    assert!(
        !root.path().join("cpuset/hostkit/p").exists(),
        "an empty parent goes from every hierarchy"
    );
    fs::remove_dir(root.path().join("pids/hostkit/p/0123abcd")).expect("container gone");
    assert_eq!(
        tree.remove_parent("p", Duration::ZERO).expect("gone"),
        Removed::Gone
    );
    assert!(!root.path().join("pids/hostkit/p").exists());
}

#[test]
fn the_driver_decides_how_a_budget_is_enforced() {
    let root = Path::new("/sys/fs/cgroup");
    assert_eq!(
        Enforcement::from_info(Some(Driver::CGROUPFS), Some(Version::_1), root),
        Enforcement::Cgroup(CgroupTree::new(root, CgroupVersion::V1))
    );
    assert_eq!(
        Enforcement::from_info(Some(Driver::CGROUPFS), None, root),
        Enforcement::Cgroup(CgroupTree::new(root, CgroupVersion::V1))
    );
    assert_eq!(
        Enforcement::from_info(Some(Driver::CGROUPFS), Some(Version::_2), root),
        Enforcement::Cgroup(CgroupTree::new(root, CgroupVersion::V2))
    );
    for driver in [Some(Driver::SYSTEMD), Some(Driver::NONE), None] {
        let e = Enforcement::from_info(driver, Some(Version::_2), root);
        assert!(e.tree().is_none(), "{driver:?}");
        assert!(e.to_string().contains("sum check"), "{e}");
    }
    assert!(
        Enforcement::from_info(Some(Driver::SYSTEMD), Some(Version::_2), root)
            .to_string()
            .contains("hostkit-<project>.slice")
    );
}

fn limits(text: &str) -> StackLimits {
    toml::from_str(text).expect("stack limits")
}

#[test]
fn a_domain_gets_the_default_with_its_most_specific_override() {
    let l = limits(
        "memory = \"1g\"\npids = 100\n[domains.\"shop.example.com\"]\nmemory = \"4g\"\n[domains.\"*.example.com\"]\npids = 50\ncpus = 0.5\n[domains.\"*.b.example.com\"]\npids = 7\n",
    );
    let budget = |d: &str| l.budget_for(&Domain::parse(d).expect("domain"));
    assert_eq!(l.cgroup_root, Path::new("/sys/fs/cgroup"));
    assert_eq!(
        budget("other.org"),
        Budget {
            memory: Some(1 << 30),
            cpus: None,
            pids: Some(100)
        }
    );
    assert_eq!(
        budget("shop.example.com"),
        Budget {
            memory: Some(4 << 30),
            cpus: None,
            pids: Some(100)
        },
        "the exact domain wins over the pattern"
    );
    assert_eq!(
        budget("a.example.com"),
        Budget {
            memory: Some(1 << 30),
            cpus: Some(0.5),
            pids: Some(50)
        }
    );
    assert_eq!(budget("x.y.b.example.com").pids, Some(7), "longest pattern");
    assert_eq!(
        budget("example.com").pids,
        Some(100),
        "a pattern is not its apex"
    );
    assert_eq!(budget("badexample.com").pids, Some(100));
    assert!(l.any());
    assert!(!StackLimits::default().any());
    assert!(toml::from_str::<StackLimits>("memroy = 1\n").is_err());
}

#[test]
fn without_a_parent_the_budget_lowers_the_policys_caps() {
    let policy = Policy {
        max_memory: Some(1 << 30),
        max_cpus: Some(1.0),
        ..Policy::default()
    };
    let tightened = BUDGET.tighten(&policy);
    assert_eq!(tightened.max_memory, Some(64 << 20));
    assert_eq!(tightened.max_cpus, Some(1.0), "the policy's cap was lower");
    assert_eq!(tightened.max_pids, Some(40));
    assert_eq!(Budget::default().tighten(&policy), policy);

    let cgroup = Enforcement::Cgroup(CgroupTree::new("/sys/fs/cgroup", CgroupVersion::V1));
    assert_eq!(
        cgroup.limits(&policy, BUDGET),
        (policy.clone(), Some(BUDGET))
    );
    let systemd = Enforcement::SumCheck {
        reason: "systemd".into(),
    };
    assert_eq!(systemd.limits(&policy, BUDGET), (tightened, None));
    for e in [cgroup, systemd] {
        assert_eq!(e.limits(&policy, Budget::default()), (policy.clone(), None));
    }
}

#[test]
fn a_service_asking_for_more_cpus_than_the_stack_has_is_denied() {
    let text = "services:\n  web:\n    image: a\n    cpus: 2\n  db:\n    image: b\n    cpus: 0.5\n";
    let project = crate::compose::load(text, &crate::compose::Env::new())
        .expect("loads")
        .project;
    let domain = Domain::parse("example.com").expect("domain");
    let image_ids = project
        .services
        .values()
        .map(|s| (s.image.clone(), "sha256:1".to_owned()))
        .collect();
    let input = crate::convert::StackInput {
        domain: &domain,
        project: &project,
        image_ids: &image_ids,
        main: None,
        ports: crate::ports::PortBlock {
            start: 20000,
            len: 10,
        },
        health_timeout: Duration::from_secs(30),
        domain_dir: Path::new("/srv/example.com"),
        labels: Default::default(),
        budget: Some(BUDGET),
    };
    let spec = crate::convert::stack_spec(&input).expect("converts");
    for service in &spec.services {
        assert_eq!(
            service
                .template
                .host_config
                .as_ref()
                .and_then(|h| h.cgroup_parent.as_deref()),
            Some("/hostkit/example_com")
        );
    }
    let denied = check_services(&spec, &BUDGET).expect_err("web wants 2 of 1.5");
    assert_eq!(denied.violations.len(), 1, "{denied}");
    assert_eq!(denied.violations[0].rule, Rule::CpuLimit);
    assert_eq!(denied.violations[0].service.as_deref(), Some("web"));

    // The parent is part of the config hash only when there is one.
    let without = crate::convert::stack_spec(&crate::convert::StackInput {
        budget: None,
        ..input.clone()
    })
    .expect("converts");
    assert_ne!(
        spec.services[0].config_hash, without.services[0].config_hash,
        "moving into a parent recreates the containers"
    );
    assert!(
        without.services[0]
            .template
            .host_config
            .as_ref()
            .is_some_and(|h| h.cgroup_parent.is_none())
    );
}
