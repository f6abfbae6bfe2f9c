//! Driving `hostkit-deploy` the way the worker does for a deploy job, for
//! tests and benchmarks that call the engine directly.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use hostkit_deploy::engine::StackSpec;
use hostkit_deploy::error::DeployError;
use hostkit_deploy::images::{ImageScope, PullPolicy};
use hostkit_deploy::policy::Policy;
use hostkit_deploy::ports::PortBlock;
use hostkit_deploy::progress::ProgressSink;
use hostkit_deploy::stack::{self, Placement};
use hostkit_proto::Domain;

/// `stack::check` (no env, the default policy) then `stack::resolve`
/// (images must be loaded already), labelled as version 1.
pub async fn stack_spec(
    docker: &Docker,
    domain: &Domain,
    domain_dir: &Path,
    ports: PortBlock,
    compose: &str,
    health_timeout: Duration,
    sink: &dyn ProgressSink,
) -> Result<StackSpec, DeployError> {
    let checked = stack::check(
        compose,
        &BTreeMap::new(),
        domain_dir,
        None,
        &Policy::default(),
    )?;
    let placement = Placement {
        domain,
        domain_dir,
        ports,
        health_timeout,
        labels: HashMap::from([("hostkit.version".to_string(), "1".to_string())]),
        budget: None,
    };
    let scope = ImageScope::unrestricted();
    stack::resolve(
        docker,
        &checked,
        &placement,
        PullPolicy::Never,
        &scope,
        sink,
    )
    .await
}
