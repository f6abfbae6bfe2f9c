//! Dependency order: cycle detection and start "waves".

use super::error::ComposeError;
use super::model::Project;
use std::collections::{BTreeMap, BTreeSet};

/// The services in dependency waves: every service's dependencies are in
/// earlier waves, so the services of one wave can start in parallel. Names
/// are sorted within a wave. Dependencies on unknown services are ignored
/// (a loaded project has none).
pub fn start_order(project: &Project) -> Result<Vec<Vec<String>>, ComposeError> {
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    let mut waves = Vec::new();
    while placed.len() < project.services.len() {
        let wave: Vec<&str> = project
            .services
            .iter()
            .filter(|(name, _)| !placed.contains(name.as_str()))
            .filter(|(_, s)| {
                s.depends_on
                    .keys()
                    .all(|d| placed.contains(d.as_str()) || !project.services.contains_key(d))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if wave.is_empty() {
            return Err(ComposeError::Cycle {
                cycle: find_cycle(project).unwrap_or_default(),
            });
        }
        placed.extend(wave.iter().copied());
        waves.push(wave.into_iter().map(str::to_owned).collect());
    }
    Ok(waves)
}

/// A dependency cycle, first service repeated at the end, if there is one.
pub fn find_cycle(project: &Project) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Visiting,
        Done,
    }
    fn visit<'p>(
        name: &'p str,
        project: &'p Project,
        marks: &mut BTreeMap<&'p str, Mark>,
        stack: &mut Vec<&'p str>,
    ) -> Option<Vec<String>> {
        match marks.get(name) {
            Some(Mark::Done) => return None,
            Some(Mark::Visiting) => {
                let start = stack.iter().position(|s| *s == name).unwrap_or(0);
                let mut cycle: Vec<String> =
                    stack[start..].iter().map(|s| (*s).to_owned()).collect();
                cycle.push(name.to_owned());
                return Some(cycle);
            }
            None => {}
        }
        marks.insert(name, Mark::Visiting);
        stack.push(name);
        if let Some(service) = project.services.get(name) {
            for dep in service.depends_on.keys() {
                if project.services.contains_key(dep) {
                    if let Some(cycle) = visit(dep, project, marks, stack) {
                        return Some(cycle);
                    }
                }
            }
        }
        stack.pop();
        marks.insert(name, Mark::Done);
        None
    }
    let mut marks = BTreeMap::new();
    project
        .services
        .keys()
        .find_map(|name| visit(name, project, &mut marks, &mut Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::model::{Condition, Dependency, Service};

    fn project(edges: &[(&str, &[&str])]) -> Project {
        let mut p = Project::default();
        for (name, deps) in edges {
            let mut s = Service {
                image: "x".into(),
                ..Service::default()
            };
            for d in *deps {
                s.depends_on.insert(
                    (*d).to_owned(),
                    Dependency {
                        condition: Condition::ServiceStarted,
                        restart: false,
                        required: true,
                    },
                );
            }
            p.services.insert((*name).to_owned(), s);
        }
        p
    }

    #[test]
    fn waves_group_independent_services() {
        let p = project(&[
            ("web", &["api"]),
            ("api", &["db", "cache"]),
            ("db", &[]),
            ("cache", &[]),
            ("worker", &["db"]),
            ("docs", &[]),
        ]);
        let waves = start_order(&p).expect("acyclic");
        assert_eq!(
            waves,
            vec![
                vec!["cache", "db", "docs"],
                vec!["api", "worker"],
                vec!["web"]
            ]
        );
        assert_eq!(find_cycle(&p), None);
    }

    #[test]
    fn cycles_are_named() {
        let p = project(&[("a", &["b"]), ("b", &["c"]), ("c", &["a"]), ("d", &[])]);
        assert_eq!(
            find_cycle(&p),
            Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
        );
        let e = start_order(&p).expect_err("cycle");
        assert_eq!(
            e.to_string(),
            "dependency cycle between services: a -> b -> c -> a"
        );
        let p = project(&[("self", &["self"])]);
        assert_eq!(find_cycle(&p), Some(vec!["self".into(), "self".into()]));
    }
}
