//! What the node's engine can do: a stack that uses a feature the engine's
//! API version lacks is refused before anything is touched, naming the
//! feature, the engine it needs and the API the node speaks.

use bollard::Docker;
use bollard::models::MountType;

use super::spec::StackSpec;
use crate::error::DeployError;

/// The API version that brought `type: image` mounts (Docker Engine 28).
pub const IMAGE_MOUNT_API: (usize, usize) = (1, 48);

/// Refuse `stack` when it needs more than `docker`'s (negotiated) API.
pub fn check(docker: &Docker, stack: &StackSpec) -> Result<(), DeployError> {
    let version = docker.client_version();
    check_api(stack, (version.major_version, version.minor_version))
}

fn check_api(stack: &StackSpec, api: (usize, usize)) -> Result<(), DeployError> {
    if api >= IMAGE_MOUNT_API {
        return Ok(());
    }
    for service in &stack.services {
        let mounts = service
            .template
            .host_config
            .as_ref()
            .and_then(|h| h.mounts.as_ref());
        let image_mount = mounts
            .into_iter()
            .flatten()
            .find(|m| m.typ == Some(MountType::IMAGE));
        if let Some(mount) = image_mount {
            return Err(DeployError::EngineTooOld {
                what: format!(
                    "services.{}: the `type: image` mount at `{}`",
                    service.name,
                    mount.target.as_deref().unwrap_or_default()
                ),
                engine_needed: "28",
                api_needed: "1.48",
                api: format!("{}.{}", api.0, api.1),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::Env;
    use crate::convert::tests::spec_of;

    fn spec(text: &str) -> StackSpec {
        spec_of(text, &Env::new())
    }

    #[test]
    fn an_image_mount_needs_api_1_48() {
        let stack = spec(
            "services:\n  web:\n    image: nginx\n    volumes:\n      - {type: image, source: 'site:v1', target: /www}\n",
        );
        let error = check_api(&stack, (1, 41)).expect_err("too old");
        assert_eq!(error.code(), "compose.unsupported");
        assert_eq!(
            error.to_string(),
            "services.web: the `type: image` mount at `/www` needs Docker Engine 28 (API 1.48) or newer; this node's engine speaks API 1.41"
        );
        assert!(check_api(&stack, (1, 48)).is_ok());
        assert!(check_api(&stack, (1, 53)).is_ok());
        let plain = spec("services:\n  web:\n    image: nginx\n");
        assert!(check_api(&plain, (1, 41)).is_ok());
    }
}
