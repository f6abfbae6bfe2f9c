//! Stack budgets (DESIGN §5 "Stack-wide limits") through a real worker
//! against the real engine: two services whose demand together exceeds the
//! domain's budget while each alone fits. Seen from outside (`docker top`,
//! the parent cgroup's files, what the services print), the stack stays
//! within its budget, and the same stack on a domain without one does not.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use hostkit_deploy::cgroup::{
    Budget, CgroupTree, CgroupVersion, DEFAULT_CGROUP_ROOT, Enforcement, parent_of,
};
use hostkit_deploy::engine::health::log_tail;
use hostkit_deploy::engine::inventory::Inventory;
use hostkit_proto::job::RemovePayload;
use hostkit_proto::{Domain, ErrorCode, EventKind, JobSpec};
use hostkit_tests::{fixtures, wait_until};

use super::env::{Env, failure, succeeded_version};

/// PID 1 of each service: awk starts `sleep 600` processes one by one until
/// 30 run (a failed fork is retried, 300 failures at most), prints how many
/// it kept, then blocks on its stdin (no more forks).
const KEEP_30_SLEEPS: &str = r#"BEGIN { n = 0; t = 0; while (n < 30 && t < 300) { if (system("sleep 600 &") == 0) n++; else t++ } print "kept " n; fflush(); while ((getline line) > 0) {} }"#;

/// Each service writes 32 MiB to its `/dev/shm` (memory its cgroup pays
/// for), says how `dd` ended, then sleeps.
const FILL_32_MIB: &str = r#"sleep 1; dd if=/dev/zero of=/dev/shm/fill bs=1M count=32 2>/dev/null; echo "dd exit $$?"; exec sleep 600"#;

/// Services `a` and `b` (b starts after a) running `entrypoint` (as PID 1,
/// which ignores SIGTERM: they are stopped with SIGKILL).
fn two_services(entrypoint: &str) -> String {
    let service = |name: &str, extra: &str| {
        format!(
            "  {name}:\n    image: hostkit-test/oneshot:v1\n    entrypoint: {entrypoint}\n    stdin_open: true\n    stop_signal: SIGKILL\n{extra}"
        )
    };
    format!(
        "services:\n{}{}",
        service("a", ""),
        service("b", "    depends_on: [a]\n")
    )
}

/// The engine's cgroup tree (this suite's engine uses the cgroupfs driver).
async fn tree(env: &Env) -> CgroupTree {
    let enforcement = Enforcement::detect(env.docker.client(), DEFAULT_CGROUP_ROOT.as_ref()).await;
    enforcement
        .tree()
        .cloned()
        .unwrap_or_else(|| panic!("the test engine must use the cgroupfs driver: {enforcement}"))
}

/// A control file of `project`'s parent cgroup.
fn parent_file(tree: &CgroupTree, controller: &str, project: &str, file: &str) -> PathBuf {
    let root = match tree.version() {
        CgroupVersion::V1 => tree.root().join(controller),
        CgroupVersion::V2 => tree.root().to_path_buf(),
    };
    root.join("hostkit").join(project).join(file)
}

fn read(path: &PathBuf) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_owned()
}

/// Every directory `project`'s parent cgroup has on the host.
fn parent_dirs(tree: &CgroupTree, project: &str) -> Vec<PathBuf> {
    let mut dirs = vec![tree.root().join("hostkit").join(project)];
    if let Ok(hierarchies) = std::fs::read_dir(tree.root()) {
        dirs.extend(
            hierarchies
                .filter_map(Result::ok)
                .map(|h| h.path().join("hostkit").join(project)),
        );
    }
    dirs.into_iter().filter(|d| d.exists()).collect()
}

/// Service → container id of `domain`'s stack.
async fn containers(env: &Env, domain: &Domain) -> BTreeMap<String, String> {
    let inventory = Inventory::load(env.docker.client(), &domain.token())
        .await
        .expect("inventory");
    inventory
        .all()
        .map(|c| (c.service.clone(), c.id.clone()))
        .collect()
}

/// The container's `CgroupParent` ("" when it has none).
async fn cgroup_parent(env: &Env, id: &str) -> String {
    let inspect = env
        .docker
        .client()
        .inspect_container(id, None)
        .await
        .expect("inspect");
    inspect
        .host_config
        .and_then(|h| h.cgroup_parent)
        .unwrap_or_default()
}

async fn running(env: &Env, id: &str) -> bool {
    let inspect = env
        .docker
        .client()
        .inspect_container(id, None)
        .await
        .expect("inspect");
    inspect.state.and_then(|s| s.running).unwrap_or(false)
}

/// The first line of the container's log starting with `prefix`.
async fn said(env: &Env, id: &str, prefix: &str) -> Option<String> {
    log_tail(env.docker.client(), id, 50)
        .await
        .into_iter()
        .find(|l| l.starts_with(prefix))
}

/// `sleep 600` processes running in the container, counted by the engine
/// (`docker top`).
async fn sleeps(env: &Env, id: &str) -> usize {
    let top = env
        .docker
        .client()
        .top_processes(id, None)
        .await
        .expect("docker top");
    let titles = top.titles.unwrap_or_default();
    let cmd = titles
        .iter()
        .position(|t| t == "CMD" || t == "COMMAND")
        .expect("a command column");
    top.processes
        .unwrap_or_default()
        .iter()
        .filter(|p| p.get(cmd).is_some_and(|c| c == "sleep 600"))
        .count()
}

/// Per service: how many sleeps its PID 1 says it kept, and how many run.
async fn kept_sleeps(env: &Env, domain: &Domain) -> BTreeMap<String, (usize, usize)> {
    let ids = containers(env, domain).await;
    assert_eq!(ids.len(), 2, "{ids:?}");
    wait_until(
        Duration::from_secs(30),
        "both services are done starting sleeps",
        async || {
            for id in ids.values() {
                if said(env, id, "kept ").await.is_none() {
                    return false;
                }
            }
            true
        },
    )
    .await;
    let mut out = BTreeMap::new();
    for (service, id) in &ids {
        let line = said(env, id, "kept ").await.expect("kept line");
        let kept: usize = line["kept ".len()..].trim().parse().expect("a count");
        out.insert(service.clone(), (kept, sleeps(env, id).await));
    }
    out
}

/// Env whose worker gives one fresh domain `budget`; answers that domain.
async fn env_with_budget(budget: Budget) -> (Env, Domain) {
    let mut budgeted = None;
    let env = Env::with_docker_settings(|settings, docker| {
        let domain: Domain = docker.unique_domain().parse().expect("domain");
        settings
            .stack_limits
            .domains
            .insert(domain.to_string(), budget);
        budgeted = Some(domain);
    })
    .await;
    (env, budgeted.expect("budgeted domain"))
}

#[tokio::test]
async fn a_pids_budget_holds_two_services_that_each_fit_alone() {
    let budget = Budget {
        pids: Some(40),
        cpus: Some(0.5),
        memory: None,
    };
    let (mut env, budgeted) = env_with_budget(budget).await;
    let free = env.domain();
    let images = env.upload("oneshot", vec![fixtures::oneshot("v1")]).await;
    let compose = two_services(&format!("['awk', '{KEEP_30_SLEEPS}']"));
    let (job, job_free) = (
        env.deploy_job(&budgeted, &compose, vec![images.clone()]),
        env.deploy_job(&free, &compose, vec![images]),
    );
    let ((done, _), (done_free, _)) = tokio::join!(env.run(&job), env.run(&job_free));
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert_eq!(succeeded_version(&done_free), 1, "{done_free:?}");

    // Without a budget, each service keeps its 30: together 60 sleeps and
    // 62 processes, more than the budget of 40.
    let unlimited = kept_sleeps(&env, &free).await;
    assert_eq!(
        unlimited.values().copied().collect::<Vec<_>>(),
        [(30, 30), (30, 30)],
        "each service alone fits in 40 processes"
    );
    for id in containers(&env, &free).await.values() {
        assert_eq!(cgroup_parent(&env, id).await, "", "no budget, no parent");
    }

    // With the budget, the stack as a whole cannot pass 40 processes.
    let project = budgeted.token();
    for id in containers(&env, &budgeted).await.values() {
        assert_eq!(cgroup_parent(&env, id).await, parent_of(&project));
    }
    let limited = kept_sleeps(&env, &budgeted).await;
    for (service, (kept, running)) in &limited {
        assert_eq!(kept, running, "{service}: what it says is what runs");
    }
    let total: usize = limited.values().map(|(_, running)| running).sum();
    assert!(
        total + 2 <= 40,
        "{total} sleeps and 2 awks run in a stack whose budget is 40: {limited:?}"
    );
    assert!(
        limited.values().any(|(kept, _)| *kept < 30),
        "one service was held back: {limited:?}"
    );
    let tree = tree(&env).await;
    let pids = |file: &str| read(&parent_file(&tree, "pids", &project, file));
    assert_eq!(pids("pids.max"), "40");
    let current: usize = pids("pids.current").parse().expect("pids.current");
    assert!(current <= 40, "pids.current = {current}");
    let cpu = match tree.version() {
        CgroupVersion::V1 => read(&parent_file(&tree, "cpu", &project, "cpu.cfs_quota_us")),
        CgroupVersion::V2 => read(&parent_file(&tree, "cpu", &project, "cpu.max")),
    };
    assert!(cpu.starts_with("50000"), "half a CPU: {cpu}");

    // A changed budget is written when the worker starts, without a job.
    env.worker
        .restart_with(&env.nats, &env.docker, |settings| {
            settings.stack_limits.domains.insert(
                budgeted.to_string(),
                Budget {
                    pids: Some(50),
                    ..budget
                },
            );
        })
        .await;
    wait_until(
        Duration::from_secs(20),
        "the new budget is written",
        async || pids("pids.max") == "50",
    )
    .await;

    // Removing the domain removes its parent cgroup.
    let remove = env.job(
        &budgeted,
        JobSpec::Remove(RemovePayload {
            purge_volumes: false,
        }),
    );
    let (removed, _) = env.run(&remove).await;
    assert!(
        matches!(removed.kind, EventKind::Succeeded { .. }),
        "{removed:?}"
    );
    assert_eq!(parent_dirs(&tree, &project), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn a_memory_budget_holds_two_services_that_each_fit_alone() {
    let budget = Budget {
        memory: Some(48 << 20),
        cpus: None,
        pids: None,
    };
    let (env, budgeted) = env_with_budget(budget).await;
    let free = env.domain();
    let images = env.upload("oneshot", vec![fixtures::oneshot("v1")]).await;
    let compose = two_services(&format!("['sh', '-c', '{FILL_32_MIB}']"));
    let (job, job_free) = (
        env.deploy_job(&budgeted, &compose, vec![images.clone()]),
        env.deploy_job(&free, &compose, vec![images]),
    );
    let ((done, _), (done_free, _)) = tokio::join!(env.run(&job), env.run(&job_free));
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    assert_eq!(succeeded_version(&done_free), 1, "{done_free:?}");

    // Which services hold their 32 MiB once each wrote (or died trying).
    let holding = async |domain: &Domain| {
        let ids = containers(&env, domain).await;
        wait_until(
            Duration::from_secs(30),
            "every service wrote its 32 MiB or was stopped",
            async || {
                for id in ids.values() {
                    if said(&env, id, "dd exit").await.is_none() && running(&env, id).await {
                        return false;
                    }
                }
                true
            },
        )
        .await;
        let mut holding = Vec::new();
        for (service, id) in &ids {
            if said(&env, id, "dd exit").await.as_deref() == Some("dd exit 0")
                && running(&env, id).await
            {
                holding.push(service.clone());
            }
        }
        holding
    };
    assert_eq!(
        holding(&free).await,
        ["a", "b"],
        "without a budget both hold 32 MiB (64 MiB together)"
    );
    let held = holding(&budgeted).await;
    assert!(
        held.len() < 2,
        "64 MiB fit in a budget of 48 MiB: {held:?} hold their memory"
    );
    let tree = tree(&env).await;
    let project = budgeted.token();
    match tree.version() {
        CgroupVersion::V1 => {
            let file = |f: &str| read(&parent_file(&tree, "memory", &project, f));
            assert_eq!(file("memory.limit_in_bytes"), (48u64 << 20).to_string());
            let peak: u64 = file("memory.max_usage_in_bytes").parse().expect("peak");
            assert!(peak <= 48 << 20, "the stack used {peak} bytes at most");
        }
        CgroupVersion::V2 => {
            let max = read(&parent_file(&tree, "memory", &project, "memory.max"));
            assert_eq!(max, (48u64 << 20).to_string());
        }
    }
}

#[tokio::test]
async fn a_budget_the_node_cannot_write_fails_the_job_and_changes_nothing() {
    let mut env = Env::new().await;
    let domain = env.domain();
    let images = env.upload("oneshot", vec![fixtures::oneshot("v1")]).await;
    let compose = two_services("['sleep', '600']");
    let (done, _) = env
        .run(&env.deploy_job(&domain, &compose, vec![images.clone()]))
        .await;
    assert_eq!(succeeded_version(&done), 1, "{done:?}");
    let before = containers(&env, &domain).await;

    // The domain gets a budget, but the cgroup root is no cgroup file system.
    let root = tempfile::tempdir().expect("fake root");
    let root_path = root.path().to_path_buf();
    env.worker
        .restart_with(&env.nats, &env.docker, |settings| {
            settings.stack_limits.cgroup_root = root_path.clone();
            settings.stack_limits.domains.insert(
                domain.to_string(),
                Budget {
                    pids: Some(40),
                    ..Budget::default()
                },
            );
        })
        .await;
    let (failed, _) = env
        .run(&env.deploy_job(&domain, &compose, vec![images]))
        .await;
    let (code, message) = failure(&failed);
    assert_eq!(code, ErrorCode::LimitsFailed, "{message}");
    assert!(
        message.contains(&root_path.join("pids").display().to_string()),
        "{message}"
    );
    match &failed.kind {
        EventKind::Failed {
            hint: Some(hint),
            rolled_back_to,
            ..
        } => {
            assert!(hint.contains("[stack_limits]"), "{hint}");
            assert_eq!(
                *rolled_back_to, None,
                "nothing changed, nothing rolled back"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        containers(&env, &domain).await,
        before,
        "the same containers"
    );
    for id in before.values() {
        assert!(running(&env, id).await, "{id} still runs");
        assert_eq!(cgroup_parent(&env, id).await, "");
    }
    assert_eq!(env.worker_versions(&domain).await, [1]);
}
