//! The per-service configuration hash that decides whether a container must
//! be recreated.

use super::model::Service;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Bumped when the hashed view changes, so old and new hashes never match by
/// accident.
const HASH_SCHEMA: u32 = 1;

#[derive(Serialize)]
struct HashInput<'a, T: Serialize + ?Sized> {
    schema: u32,
    image_id: &'a str,
    service: &'a Service,
    extra: &'a T,
}

impl Service {
    /// SHA-256 (hex) of the canonical JSON of this service's normalized
    /// model and the resolved image ID.
    ///
    /// Settings that do not shape the container are left out: `replicas`
    /// (scaling keeps existing containers), `depends_on`, `profiles` and
    /// `deploy.update_config.order`. Host ports are assigned per replica
    /// outside the model: mix them in with [`Service::config_hash_with`].
    pub fn config_hash(&self, image_id: &str) -> String {
        self.config_hash_with(image_id, &())
    }

    /// Like [`Service::config_hash`], with extra caller data (e.g. the
    /// replica's host ports) mixed in.
    pub fn config_hash_with<T: Serialize + ?Sized>(&self, image_id: &str, extra: &T) -> String {
        let mut view = self.clone();
        view.deploy.replicas = 0;
        view.deploy.update_order = None;
        view.depends_on.clear();
        view.profiles.clear();
        let input = HashInput {
            schema: HASH_SCHEMA,
            image_id,
            service: &view,
            extra,
        };
        // Serializing the model cannot fail: all map keys are strings.
        let json = serde_json::to_vec(&input).unwrap_or_default();
        hex::encode(Sha256::digest(&json))
    }
}

#[cfg(test)]
mod tests {
    use crate::compose::model::{Condition, Dependency, UpdateOrder};
    use crate::compose::{Env, load};

    fn web(text_extra: &str) -> crate::compose::Service {
        let text = format!(
            "services:\n  db:\n    image: postgres\n  web:\n    image: nginx\n    environment:\n      A: '1'\n      B: '2'\n{text_extra}"
        );
        let loaded = load(&text, &Env::new()).expect("loads");
        loaded.project.services["web"].clone()
    }

    #[test]
    fn stable_across_loads_and_key_order() {
        let a = web("");
        let b = load(
            "services:\n  web:\n    environment: [B=2, A=1]\n    image: nginx\n  db:\n    image: postgres\n",
            &Env::new(),
        )
        .expect("loads")
        .project
        .services["web"]
            .clone();
        assert_eq!(a.config_hash("sha256:1"), b.config_hash("sha256:1"));
        assert_eq!(a.config_hash("sha256:1").len(), 64);
    }

    #[test]
    fn sensitive_to_config_and_image() {
        let base = web("");
        let h = base.config_hash("sha256:1");
        assert_ne!(h, base.config_hash("sha256:2"));
        assert_ne!(h, web("    command: [echo, hi]\n").config_hash("sha256:1"));
        assert_ne!(h, web("    ports: ['80']\n").config_hash("sha256:1"));
        assert_ne!(h, web("    volumes: ['/data']\n").config_hash("sha256:1"));
        assert_ne!(h, web("    labels: {a: b}\n").config_hash("sha256:1"));
        let mut env_changed = base.clone();
        env_changed.environment.insert("A".into(), "changed".into());
        assert_ne!(h, env_changed.config_hash("sha256:1"));
        assert_ne!(h, base.config_hash_with("sha256:1", &[20001u16]));
    }

    #[test]
    fn ignores_scaling_and_ordering() {
        let base = web("");
        let h = base.config_hash("sha256:1");
        let mut other = base.clone();
        other.deploy.replicas = 5;
        other.deploy.update_order = Some(UpdateOrder::StartFirst);
        other.depends_on.insert(
            "db".into(),
            Dependency {
                condition: Condition::ServiceHealthy,
                restart: true,
                required: true,
            },
        );
        assert_eq!(h, other.config_hash("sha256:1"));
    }

    /// Keys added later are left out of the hashed JSON when unset, so a
    /// service that does not use them keeps the hash it had before they
    /// existed (its containers are not recreated by an upgrade).
    #[test]
    fn unchanged_for_services_without_the_newer_keys() {
        let s = web(
            "    ports: ['8080:80']\n    volumes: ['./data:/data', '/cache']\n    healthcheck: {test: [CMD, true], interval: 5s}\n    deploy: {resources: {limits: {memory: 256m}}}\n    restart: always\n    cap_drop: [ALL]\n    logging: {driver: json-file}\n",
        );
        assert_eq!(
            s.config_hash("sha256:1"),
            "14c416f45f321d54b94973c1bf5cde66b1dd5c2bed94b77682702a0f7965cb0e"
        );
    }
}
