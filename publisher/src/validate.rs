//! Checking a compose file before anything is uploaded, with the same
//! loader and policy code the worker runs (`hostkit_deploy::compose::load`,
//! [`Policy::check`], the main-service rule), so a typo fails in CI in
//! milliseconds with the key and line.
//!
//! Two things are left to the worker, because only the node has them: the
//! `env_file:` files (they live in the domain's directory on the node) and
//! the domain's `.env` file. A `${VAR:?}` that only the node's `.env` can
//! fill is therefore reported as a warning here, not an error.

use std::path::Path;

use hostkit_deploy::compose::{self, ComposeError, Env};
use hostkit_deploy::policy::Policy;

use crate::error::Error;

/// What the local check found.
#[derive(Debug, Default)]
pub struct Checked {
    /// Warnings (`path: message`) the user should see.
    pub warnings: Vec<String>,
    /// Whether the check stopped early because a variable only the node can
    /// set is missing.
    pub partial: bool,
    /// How many services the file deploys (0 when `partial`).
    pub services: usize,
    /// The image references the stack runs: services, `pre_start` hooks,
    /// `type: image` mounts (empty when `partial`).
    pub images: Vec<String>,
    /// The main service nginx will front and why ("main service `web` (…)").
    pub main_reason: Option<String>,
}

/// Loads `text` (named `file_name` in messages) with `env`, checks the
/// default policy with `base_dir` as the domain directory and decides the
/// main service. Any error is a usage error (exit 2).
pub fn check(
    text: &str,
    file_name: &str,
    env: &Env,
    base_dir: &Path,
    main_service: Option<&str>,
) -> Result<Checked, Error> {
    let rejected = |detail: String| Error::usage(format!("{file_name}: {detail}"));
    let loaded = match compose::load(text, env) {
        Ok(loaded) => loaded,
        Err(ComposeError::MissingVariable { variable, path, .. }) => {
            return Ok(Checked {
                warnings: vec![format!(
                    "{file_name}: {variable} is not set here (--env, --env-file), which `{path}` requires; the domain's .env on the node must set it, or the deploy fails; the rest of the file was not checked locally"
                )],
                partial: true,
                services: 0,
                images: Vec::new(),
                main_reason: None,
            });
        }
        Err(error) => return Err(rejected(error.to_string())),
    };
    Policy::default()
        .check(&loaded.project, base_dir)
        .map_err(|denied| rejected(denied.to_string()))?;
    let main_reason = loaded
        .project
        .main_choice(main_service)
        .map_err(|error| rejected(error.to_string()))?
        .map(|choice| choice.to_string());
    Ok(Checked {
        warnings: loaded
            .warnings
            .iter()
            .map(|w| format!("{file_name}: {}: {}", w.path, w.message))
            .collect(),
        partial: false,
        main_reason,
        services: loaded.project.services.len(),
        images: loaded.project.image_references(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Checked, Error> {
        let dir = tempfile::tempdir().unwrap();
        check(text, "docker-compose.yml", &Env::new(), dir.path(), None)
    }

    #[test]
    fn a_good_file_passes() {
        let checked = run("services:\n  web:\n    image: nginx:1\n    ports: [\"80\"]\n").unwrap();
        assert!(!checked.partial);
    }

    #[test]
    fn a_typo_names_key_and_line() {
        let error =
            run("services:\n  web:\n    image: nginx:1\n    prots: [\"80\"]\n").unwrap_err();
        assert_eq!(error.exit(), crate::error::Exit::Usage);
        let text = error.to_string();
        assert!(
            text.contains("services.web.prots") && text.contains("line 4"),
            "{text}"
        );
    }

    #[test]
    fn hooks_inline_secrets_and_image_mounts_pass_the_local_check() {
        let text = "services:\n  web:\n    image: nginx:1\n    ports: [\"80\"]\n    secrets: [token]\n    configs: [site]\n    volumes:\n      - {type: image, source: 'assets:1', target: /assets}\n    pre_start:\n      - {image: 'tools:1', command: [migrate]}\n    post_start:\n      - command: [nginx, -t]\n    pre_stop:\n      - command: [nginx, -s, quit]\nsecrets:\n  token:\n    environment: TOKEN\nconfigs:\n  site:\n    content: listen 80;\n";
        let checked = run(text).unwrap();
        assert!(!checked.partial);
        assert_eq!(checked.services, 1);
        assert_eq!(checked.images, ["assets:1", "nginx:1", "tools:1"]);
        // TOKEN is left to the node, and the user is told.
        assert!(
            checked
                .warnings
                .iter()
                .any(|w| w.contains("TOKEN is not set here")),
            "{:?}",
            checked.warnings
        );
        let error = run(&text.replace("command: [nginx, -t]", "{command: [sh], privileged: true}"))
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("services.web.post_start[0].privileged"),
            "{error}"
        );
    }

    #[test]
    fn the_policy_applies() {
        let error =
            run("services:\n  web:\n    image: nginx:1\n    privileged: true\n").unwrap_err();
        assert!(error.to_string().contains("privileged"), "{error}");
    }

    #[test]
    fn relative_compose_directories_keep_relative_sources_inside() {
        // `hostkit deploy example.com docker-compose.yml` passes "." (a bare
        // file name), `./x.yml` passes ".", `../dir/x.yml` passes "../dir".
        let text = "services:\n  web:\n    image: nginx:1\n    env_file: ./app.env\n    volumes: ['./data:/data', './conf/site.conf:/etc/site.conf:ro']\n    secrets: [key]\nsecrets:\n  key:\n    file: ./key.pem\n";
        let outside = tempfile::tempdir().unwrap();
        let linked = outside.path().join("link");
        std::os::unix::fs::symlink(outside.path(), &linked).unwrap();
        for base in [
            Path::new("."),
            Path::new("./"),
            Path::new("../dir"),
            outside.path(),
            &linked,
        ] {
            let checked = check(text, "docker-compose.yml", &Env::new(), base, None);
            assert!(checked.is_ok(), "{base:?}: {:?}", checked.err());
        }
        let root = "services:\n  web:\n    image: nginx:1\n    volumes: ['.:/app']\n";
        let error = check(
            root,
            "docker-compose.yml",
            &Env::new(),
            Path::new("."),
            None,
        )
        .unwrap_err();
        assert!(error.to_string().contains("[bind-domain-files]"), "{error}");
        assert!(!error.to_string().contains("docker-socket"), "{error}");
    }

    #[test]
    fn a_variable_only_the_node_has_is_a_warning() {
        let checked = run("services:\n  web:\n    image: \"app:${TAG:?set TAG}\"\n").unwrap();
        assert!(checked.partial);
        assert!(
            checked.warnings[0].contains("TAG"),
            "{:?}",
            checked.warnings
        );
    }
}
