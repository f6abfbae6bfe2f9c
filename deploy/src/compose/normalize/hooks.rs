//! Lifecycle hooks: `pre_start`, `post_start` and `pre_stop` lists.

use super::service::{argv, environment};
use super::value::{boolean, fields, items, non_empty, opt_string};
use crate::compose::Env;
use crate::compose::error::ComposeError;
use crate::compose::keys::Scope;
use crate::compose::model::Hook;
use crate::compose::path::KeyPath;
use serde_yaml::Value;

/// Which list a hook belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookKind {
    /// `pre_start`: a container of its own, before the service starts.
    PreStart,
    /// `post_start`: an exec in each replica once it started.
    PostStart,
    /// `pre_stop`: an exec in each replica before it is stopped.
    PreStop,
}

/// Parses one of a service's hook lists.
pub fn hooks(
    value: &Value,
    path: &KeyPath,
    env: &Env,
    kind: HookKind,
) -> Result<Vec<Hook>, ComposeError> {
    items(value, path)?
        .into_iter()
        .map(|(item, p)| hook(item, &p, env, kind))
        .collect()
}

fn hook(value: &Value, path: &KeyPath, env: &Env, kind: HookKind) -> Result<Hook, ComposeError> {
    let mut hook = Hook::default();
    let mut has_command = false;
    for (key, v, p) in fields(value, Scope::Hook, path)? {
        match key.as_str() {
            "command" => {
                hook.command = argv(v, &p)?.unwrap_or_default();
                has_command = !hook.command.is_empty();
            }
            "user" => hook.user = opt_string(v, &p)?,
            "privileged" => hook.privileged = boolean(v, &p)?,
            "working_dir" => hook.working_dir = opt_string(v, &p)?,
            "environment" => hook.environment = environment(v, &p, env)?,
            "image" if kind == HookKind::PreStart => hook.image = Some(non_empty(v, &p)?),
            "per_replica" if kind == HookKind::PreStart => {
                if boolean(v, &p)? {
                    return Err(ComposeError::unsupported_value(
                        &p,
                        "`per_replica: true` is not supported (as in Docker Compose): a pre_start hook runs once for the service",
                    ));
                }
            }
            "image" | "per_replica" => {
                return Err(ComposeError::invalid(
                    &p,
                    "only a `pre_start` hook runs in a container of its own; `post_start` and `pre_stop` run in the service's container",
                ));
            }
            _ => return Err(ComposeError::unsupported_key(p, None)),
        }
    }
    if !has_command && (kind != HookKind::PreStart || hook.image.is_none()) {
        return Err(ComposeError::invalid(path, "a hook needs `command`"));
    }
    Ok(hook)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, kind: HookKind) -> Result<Vec<Hook>, ComposeError> {
        let v: Value = serde_yaml::from_str(text).expect("yaml");
        let env = Env::from([("FROM_ENV".to_owned(), "e".to_owned())]);
        hooks(&v, &KeyPath::from_keys(["post_start"]), &env, kind)
    }

    #[test]
    fn every_field_is_read() {
        let got = parse(
            "- command: sh -c 'echo hi'\n  user: root\n  privileged: true\n  working_dir: /srv\n  environment: [A=1, FROM_ENV, UNSET]\n",
            HookKind::PostStart,
        )
        .expect("hooks");
        assert_eq!(
            got,
            [Hook {
                command: vec!["sh".into(), "-c".into(), "echo hi".into()],
                image: None,
                user: Some("root".into()),
                privileged: true,
                working_dir: Some("/srv".into()),
                environment: [("A", "1"), ("FROM_ENV", "e")]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            }]
        );
    }

    #[test]
    fn pre_start_may_name_an_image_and_run_its_command() {
        let got = parse(
            "- image: busybox\n- image: busybox\n  command: [true]\n  per_replica: false\n",
            HookKind::PreStart,
        )
        .expect("hooks");
        assert_eq!(got[0].image.as_deref(), Some("busybox"));
        assert!(got[0].command.is_empty());
        assert_eq!(got[1].command, ["true"]);
    }

    #[test]
    fn wrong_hooks_are_refused() {
        let no_command = parse("- user: root\n", HookKind::PreStop).expect_err("no command");
        assert!(
            no_command.to_string().contains("needs `command`"),
            "{no_command}"
        );
        let image =
            parse("- {image: x, command: [true]}\n", HookKind::PostStart).expect_err("image");
        assert!(
            image.to_string().contains("only a `pre_start` hook"),
            "{image}"
        );
        let per_replica = parse(
            "- {command: [true], per_replica: true}\n",
            HookKind::PreStart,
        )
        .expect_err("x");
        assert_eq!(per_replica.code(), "compose.unsupported");
        let unknown = parse("- {command: [true], timeout: 3}\n", HookKind::PreStop).expect_err("x");
        assert_eq!(unknown.code(), "compose.unsupported");
        assert!(parse("- command: [true]\n", HookKind::PreStart).is_ok());
    }
}
