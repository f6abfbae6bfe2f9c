//! The compose compatibility corpus (issue 10, item 9): every compose file
//! of docker/awesome-compose and a set of docker/compose's e2e fixtures
//! (`tests/fixtures/corpus/`, see its README for sources, commits and
//! licences) goes through exactly what the CLI's local check runs
//! (`publisher/src/validate.rs`): `compose::load`, then the default
//! `Policy::check` with the file's directory as the domain directory, then
//! `Project::main_service(None)`. A `${VAR:?}` that nothing sets is a
//! warning there (the node's `.env` may set it), so it counts as accepted.
//!
//! `build:` is stripped first, as CI would after building the images: a
//! service with `image:` just loses `build:`, one without gets
//! `image: corpus/<service>:latest`. The files themselves are kept as
//! upstream wrote them; a `<file>.env` beside a file is the `.env` upstream
//! keeps beside it (its documented defaults) and is the only env supplied.
//!
//! Every file must end accepted, refused by a named policy rule, or refused
//! for a key HostKit rejects by design ([`BY_DESIGN`]). Any other outcome must
//! be listed in [`KNOWN_GAPS`] — the compatibility work still to do — and a
//! listed gap that no longer happens fails the test too, so the list only
//! shrinks. `cargo test -p hostkit-deploy --test corpus -- --nocapture`
//! prints the table of every file's outcome and the summary.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};

use hostkit_deploy::compose::path::Segment;
use hostkit_deploy::compose::{self, ComposeError, Env, KeyPath};
use hostkit_deploy::policy::Policy;
use serde_yaml::Value;

/// The corpus, relative to this crate.
const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/corpus");

/// Each source folder and how many compose files were collected from it
/// (see the corpus README); nothing may go missing silently.
const SOURCES: &[(&str, usize)] = &[("awesome-compose", 39), ("compose-e2e", 78)];

/// Keys HostKit refuses by design (`compose.unsupported` naming one of
/// them is an expected outcome, not a gap). `build` is stripped beforehand.
/// `ipv4_address`/`ipv6_address` belong with `ipam`: fixed addresses need a
/// subnet of the file's choosing, and HostKit's networks take the engine's.
const BY_DESIGN: &[&str] = &[
    "extends",
    "include",
    "volumes_from",
    "runtime",
    "ipam",
    "ipv4_address",
    "ipv6_address",
];

/// Refusals the main-service rules prescribe (issue 10 item 2): several
/// services publish ports and none is the main one by the documented rules,
/// so the file is refused with the candidates listed; and a file with no
/// service has nothing to deploy.
const BY_DESIGN_MESSAGES: &[&str] = &[
    "none is the main one by HostKit's rules",
    "the compose file defines no service",
];

/// Outcomes that are neither accepted nor refused for a security or
/// by-design reason, as of today: `(file, a substring of the error)`. Each
/// one is compatibility work to do; remove an entry when its file passes (the
/// test fails until you do), and change it when the file then stops on the
/// next gap. Empty: every file of the corpus is accepted or refused for a
/// named reason.
///
/// The last gaps closed (issue 10): lifecycle hooks (`pre_start`,
/// `post_start`, `pre_stop`), `environment:`/`content:` secrets and configs
/// (both accepted here; an `environment:` variable the local env lacks is
/// left to the node, like a `${VAR:?}`), and `type: image` mounts. Those are
/// accepted by this check as Compose accepts them; they need Docker Engine 28
/// (API 1.48) on the node, and a worker on an older engine refuses the deploy
/// before touching anything (`compose.unsupported`, naming the mount, the
/// engine needed and the API it speaks: `engine::compat`), the way
/// `docker compose up` fails there too. So they are not refused by design.
#[rustfmt::skip]
const KNOWN_GAPS: &[(&str, &str)] = &[];

/// What the local check says about one file.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    /// Loaded, allowed by the default policy, main service decided.
    /// `partial` names a `${VAR:?}` left to the node (the CLI's warning).
    Accepted { partial: Option<String> },
    /// Denied by the default policy: the violations' rule ids (sorted,
    /// deduplicated) and the full message.
    RefusedByPolicy { rules: Vec<String>, message: String },
    /// `compose.unsupported` on a key in [`BY_DESIGN`].
    RefusedByDesign { key: String, message: String },
    /// Anything else: an unsupported key or value, an invalid file, the
    /// main-service rule, an env file the parser refuses. `reason` groups
    /// the same gap across files (names replaced by `<name>`).
    Other { reason: String, message: String },
}

impl Outcome {
    fn category(&self) -> &'static str {
        match self {
            Outcome::Accepted { .. } => "accepted",
            Outcome::RefusedByPolicy { .. } => "refused by policy",
            Outcome::RefusedByDesign { .. } => "refused by design",
            Outcome::Other { .. } => "other",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Accepted { partial: None } => write!(f, "accepted"),
            Outcome::Accepted {
                partial: Some(note),
            } => write!(f, "accepted (partial: {note})"),
            Outcome::RefusedByPolicy { rules, message } => {
                write!(f, "policy [{}]: {message}", rules.join(", "))
            }
            Outcome::RefusedByDesign { key, message } => write!(f, "by design `{key}`: {message}"),
            Outcome::Other { message, .. } => write!(f, "OTHER: {message}"),
        }
    }
}

/// One corpus file.
#[derive(Debug)]
struct Entry {
    /// `<source>/<name>.yaml`, as [`KNOWN_GAPS`] names it.
    name: String,
    path: PathBuf,
}

fn corpus_dir() -> PathBuf {
    std::fs::canonicalize(CORPUS).unwrap_or_else(|e| panic!("corpus folder {CORPUS}: {e}"))
}

/// Every `.yaml` file of every source, sorted.
fn entries() -> Vec<Entry> {
    let root = corpus_dir();
    let mut found = Vec::new();
    for (source, _) in SOURCES {
        let dir = root.join(source);
        let listing = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for item in listing {
            let path = item.expect("directory entry").path();
            let Some(file) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            if file.ends_with(".yaml") || file.ends_with(".yml") {
                found.push(Entry {
                    name: format!("{source}/{file}"),
                    path,
                });
            }
        }
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    found
}

/// Removes `build:` from every service as CI would after building: a
/// service without `image:` is given `corpus/<service>:latest` (lower case,
/// as image names must be). Returns the text unchanged when no service has
/// `build:` (so error lines are the file's own) or when it is not YAML (the
/// loader reports that).
fn strip_build(text: &str) -> String {
    let Ok(mut doc) = serde_yaml::from_str::<Value>(text) else {
        return text.to_owned();
    };
    let Some(services) = doc.get_mut("services").and_then(Value::as_mapping_mut) else {
        return text.to_owned();
    };
    let mut changed = false;
    for (name, service) in services.iter_mut() {
        let Some(service) = service.as_mapping_mut() else {
            continue;
        };
        if service.remove("build").is_none() {
            continue;
        }
        changed = true;
        if !service.contains_key("image") {
            let name = name.as_str().unwrap_or("service").to_ascii_lowercase();
            service.insert(
                Value::from("image"),
                Value::from(format!("corpus/{name}:latest")),
            );
        }
    }
    if changed {
        serde_yaml::to_string(&doc).expect("serialize the stripped compose file")
    } else {
        text.to_owned()
    }
}

/// The env for a file: its upstream `.env` (kept as `<file stem>.env`), if any.
fn env_for(path: &Path) -> Result<Env, ComposeError> {
    let env_path = path.with_extension("env");
    match std::fs::read_to_string(&env_path) {
        Ok(text) => compose::parse_env_file(".env", &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Env::new()),
        Err(e) => panic!("{}: {e}", env_path.display()),
    }
}

/// One file's outcome and, for information only, what stops it next once
/// each unsupported key in the way is deleted (`behind`).
#[derive(Debug)]
struct Report {
    outcome: Outcome,
    behind: Vec<Outcome>,
}

/// How many gaps behind the first one [`check`] looks for.
const MAX_BEHIND: usize = 8;

/// What `hostkit deploy`'s local check (`publisher/src/validate.rs`) says
/// about the file at `path`, after [`strip_build`].
fn check(path: &Path) -> Report {
    let original =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let text = strip_build(&original);
    let env = match env_for(path) {
        Ok(env) => env,
        Err(e) => {
            return Report {
                outcome: other(&e),
                behind: Vec::new(),
            };
        }
    };
    let base_dir = path.parent().expect("a file has a directory");
    let (outcome, mut in_the_way) = check_text(&text, &env, base_dir);
    let mut behind = Vec::new();
    let mut doc = serde_yaml::from_str::<Value>(&text).ok();
    while let (Some(key), Some(tree)) = (in_the_way.take(), doc.as_mut()) {
        if behind.len() == MAX_BEHIND || !delete(tree, key.segments()) {
            break;
        }
        let next_text = serde_yaml::to_string(tree).expect("serialize");
        let (next, next_key) = check_text(&next_text, &env, base_dir);
        behind.push(next);
        in_the_way = next_key;
    }
    Report { outcome, behind }
}

/// The outcome of the CLI's sequence on `text`, and the path of an
/// unsupported key that is not by design: the gap to look behind (an
/// unsupported value is not deleted: what is left would be a new file).
fn check_text(text: &str, env: &Env, base_dir: &Path) -> (Outcome, Option<KeyPath>) {
    let loaded = match compose::load(text, env) {
        Ok(loaded) => loaded,
        Err(ComposeError::MissingVariable { variable, path, .. }) => {
            let partial = Some(format!("{variable} is needed by `{path}`"));
            return (Outcome::Accepted { partial }, None);
        }
        Err(error) => {
            let outcome = classify_compose_error(&error);
            let gap = match (&outcome, &error) {
                (Outcome::Other { .. }, ComposeError::UnsupportedKey { path, .. }) => {
                    Some(path.clone())
                }
                _ => None,
            };
            return (outcome, gap);
        }
    };
    if let Err(denied) = Policy::default().check(&loaded.project, base_dir) {
        let mut rules: Vec<String> = denied
            .violations
            .iter()
            .map(|v| v.rule.id().to_owned())
            .collect();
        rules.sort();
        rules.dedup();
        let message = denied.to_string();
        return (Outcome::RefusedByPolicy { rules, message }, None);
    }
    match loaded.project.main_service(None) {
        // An `environment:` secret or config whose variable only the node
        // can set: left to the node, like a `${VAR:?}`.
        Ok(_) => match loaded.project.require_file_values() {
            Err(ComposeError::MissingVariable { variable, path, .. }) => {
                let partial = Some(format!("{variable} is needed by `{path}`"));
                (Outcome::Accepted { partial }, None)
            }
            _ => (Outcome::Accepted { partial: None }, None),
        },
        Err(error) => (classify_compose_error(&error), None),
    }
}

fn classify_compose_error(error: &ComposeError) -> Outcome {
    let message = error.to_string();
    if let Some(rule) = BY_DESIGN_MESSAGES.iter().find(|m| message.contains(*m)) {
        return Outcome::RefusedByDesign {
            key: (*rule).to_owned(),
            message,
        };
    }
    if let ComposeError::UnsupportedKey { path, .. } = error {
        if let Some(key) = path.last_key().filter(|k| BY_DESIGN.contains(k)) {
            return Outcome::RefusedByDesign {
                key: key.to_owned(),
                message: error.to_string(),
            };
        }
    }
    other(error)
}

/// An [`Outcome::Other`], grouped by the generic key path (`services.<name>.platform`)
/// or by the message up to its first parenthesis.
fn other(error: &ComposeError) -> Outcome {
    let message = error.to_string();
    let reason = match error {
        ComposeError::UnsupportedKey { path, .. } => {
            format!("unsupported key `{}`", generic(path))
        }
        ComposeError::UnsupportedValue { path, .. } => {
            format!("unsupported value at `{}`", generic(path))
        }
        _ => message
            .split(" (")
            .next()
            .unwrap_or(&message)
            .trim_end_matches(':')
            .to_owned(),
    };
    Outcome::Other { reason, message }
}

/// `path` with the user's names replaced: `services.web.networks.front.aliases`
/// → `services.<name>.networks.<name>.aliases`, `volumes[2]` → `volumes[]`.
fn generic(path: &KeyPath) -> String {
    let mut out = String::new();
    let mut previous: Option<&str> = None;
    for (i, segment) in path.segments().iter().enumerate() {
        match segment {
            Segment::Key(key) => {
                let named = matches!(
                    (i, previous),
                    (
                        1,
                        Some("services" | "networks" | "volumes" | "secrets" | "configs")
                    ) | (3, Some("networks" | "depends_on"))
                );
                if i > 0 {
                    out.push('.');
                }
                out.push_str(if named { "<name>" } else { key });
                previous = Some(key);
            }
            Segment::Index(_) => {
                out.push_str("[]");
                previous = None;
            }
        }
    }
    out
}

/// Deletes the node at `segments` from `tree`; false when there is none.
fn delete(tree: &mut Value, segments: &[Segment]) -> bool {
    let Some((last, parents)) = segments.split_last() else {
        return false;
    };
    let mut node = tree;
    for segment in parents {
        let next = match segment {
            Segment::Key(key) => node.get_mut(key.as_str()),
            Segment::Index(index) => node.get_mut(*index),
        };
        let Some(next) = next else {
            return false;
        };
        node = next;
    }
    match (last, node) {
        (Segment::Key(key), Value::Mapping(map)) => map.remove(key.as_str()).is_some(),
        (Segment::Index(index), Value::Sequence(list)) if *index < list.len() => {
            list.remove(*index);
            true
        }
        _ => false,
    }
}

#[test]
fn build_is_stripped_as_ci_would() {
    let text = "services:\n  Web:\n    build: .\n  db:\n    image: postgres:16\n    build:\n      context: db\n  plain:\n    image: redis\n";
    let stripped: Value = serde_yaml::from_str(&strip_build(text)).expect("yaml");
    let services = &stripped["services"];
    assert_eq!(services["Web"]["image"], "corpus/web:latest");
    assert!(services["Web"].get("build").is_none());
    assert_eq!(services["db"]["image"], "postgres:16");
    assert!(services["db"].get("build").is_none());
    assert_eq!(services["plain"]["image"], "redis");
    // Without `build:` the text is passed on untouched (lines stay true).
    let untouched = "services:\n  web:\n    image: nginx # comment\n";
    assert_eq!(strip_build(untouched), untouched);
}

#[test]
fn every_file_is_listed_with_its_upstream_path() {
    // `<source>/MANIFEST.tsv`: `corpus file<TAB>upstream path`, `#` comments.
    let root = corpus_dir();
    for (source, expected) in SOURCES {
        let dir = root.join(source);
        let manifest = std::fs::read_to_string(dir.join("MANIFEST.tsv"))
            .unwrap_or_else(|e| panic!("{source}/MANIFEST.tsv: {e}"));
        let listed: BTreeSet<&str> = manifest
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(|l| match l.split_once('\t') {
                Some((file, upstream)) if !upstream.trim().is_empty() => file,
                _ => panic!("{source}/MANIFEST.tsv: `{l}` is not `file<TAB>upstream path`"),
            })
            .collect();
        let present: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|item| item.expect("directory entry").file_name())
            .filter_map(|name| name.to_str().map(str::to_owned))
            .filter(|name| {
                [".yaml", ".yml", ".env"]
                    .iter()
                    .any(|ext| name.ends_with(ext))
            })
            .collect();
        let present: BTreeSet<&str> = present.iter().map(String::as_str).collect();
        let missing: Vec<_> = listed.difference(&present).collect();
        let unlisted: Vec<_> = present.difference(&listed).collect();
        assert!(
            missing.is_empty() && unlisted.is_empty(),
            "{source}: listed but missing {missing:?}; present but not listed {unlisted:?}"
        );
        let compose_files = listed.iter().filter(|f| !f.ends_with(".env")).count();
        assert_eq!(
            compose_files, *expected,
            "{source}: compose files in MANIFEST.tsv vs SOURCES"
        );
        assert!(
            dir.join("LICENSE").is_file(),
            "{source}: the upstream LICENSE is missing"
        );
    }
}

#[test]
fn every_corpus_file_is_accepted_or_refused_for_a_named_reason() {
    let entries = entries();

    // No silent skipping: each source has exactly the files collected.
    let mut problems = Vec::new();
    for (source, expected) in SOURCES {
        let found = entries
            .iter()
            .filter(|e| e.name.starts_with(&format!("{source}/")))
            .count();
        if found != *expected {
            problems.push(format!(
                "{source}: {found} compose files, expected {expected} (update SOURCES and the corpus README together)"
            ));
        }
    }
    // Every known gap names a file of the corpus, once.
    let mut seen = BTreeMap::new();
    for (file, _) in KNOWN_GAPS {
        if !entries.iter().any(|e| e.name == *file) {
            problems.push(format!(
                "KNOWN_GAPS names {file}, which is not in the corpus"
            ));
        }
        if seen.insert(*file, ()).is_some() {
            problems.push(format!("KNOWN_GAPS names {file} twice"));
        }
    }

    let reports: Vec<(&Entry, Report)> = entries.iter().map(|e| (e, check(&e.path))).collect();

    println!("{:<64} OUTCOME", "FILE");
    for (entry, report) in &reports {
        println!("{:<64} {}", entry.name, report.outcome);
        for next in &report.behind {
            println!("{:<64}   then: {next}", "");
        }
    }
    let mut summary: BTreeMap<&str, usize> = BTreeMap::new();
    let mut partial = 0;
    let mut rules: BTreeMap<&str, usize> = BTreeMap::new();
    let mut keys: BTreeMap<&str, usize> = BTreeMap::new();
    let mut first_gaps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut all_gaps: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (entry, report) in &reports {
        *summary.entry(report.outcome.category()).or_default() += 1;
        match &report.outcome {
            Outcome::Accepted { partial: Some(_) } => partial += 1,
            Outcome::RefusedByPolicy { rules: ids, .. } => {
                for id in ids {
                    *rules.entry(id).or_default() += 1;
                }
            }
            Outcome::RefusedByDesign { key, .. } => *keys.entry(key).or_default() += 1,
            Outcome::Other { reason, .. } => {
                first_gaps.entry(reason).or_default().push(&entry.name)
            }
            Outcome::Accepted { partial: None } => {}
        }
        for outcome in std::iter::once(&report.outcome).chain(&report.behind) {
            if let Outcome::Other { reason, .. } = outcome {
                let files = all_gaps.entry(reason).or_default();
                if files.last() != Some(&entry.name.as_str()) {
                    files.push(&entry.name);
                }
            }
        }
    }
    println!("\nSUMMARY ({} files)", reports.len());
    for category in [
        "accepted",
        "refused by policy",
        "refused by design",
        "other",
    ] {
        println!(
            "  {category:<18} {}",
            summary.get(category).copied().unwrap_or(0)
        );
    }
    println!("  (accepted with a variable left to the node: {partial})");
    println!("  policy rules (files): {rules:?}");
    println!("  by-design keys (files): {keys:?}");
    println!("\nOTHER OUTCOMES BY REASON (what stops each file first)");
    for (reason, files) in &first_gaps {
        println!("  {} x {reason}: {}", files.len(), files.join(", "));
    }
    println!("\nEVERY GAP FOUND, ALSO BEHIND THE FIRST (informational)");
    for (reason, files) in &all_gaps {
        println!("  {} x {reason}: {}", files.len(), files.join(", "));
    }

    // Every `Other` is a known gap, and every known gap still happens.
    for (entry, report) in &reports {
        let gap = KNOWN_GAPS.iter().find(|(file, _)| *file == entry.name);
        match (&report.outcome, gap) {
            (Outcome::Other { message, .. }, Some((_, expected))) if message.contains(expected) => {}
            (Outcome::Other { message, .. }, Some((_, expected))) => problems.push(format!(
                "{}: the known gap {expected:?} changed to: {message} (update KNOWN_GAPS)",
                entry.name
            )),
            (Outcome::Other { message, .. }, None) => problems.push(format!(
                "{}: new outcome that is neither accepted nor refused for a named reason: {message} (fix it, or add it to KNOWN_GAPS if it is accepted work to do)",
                entry.name
            )),
            (outcome, Some((_, expected))) => problems.push(format!(
                "{}: the known gap {expected:?} is gone (now: {outcome}); remove it from KNOWN_GAPS",
                entry.name
            )),
            (_, None) => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} problem(s):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
