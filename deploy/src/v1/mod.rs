//! HostKit v1 sites on this node (DESIGN §10): what v1 left on disk and in
//! the engine, read so that `import` can take a site over without
//! downtime. v1's facts (file names, container names, nginx layout) live
//! here and nowhere else.
//!
//! - [`config`]: v1's `<domain>/config.json`, read leniently (v1's quirks).
//! - [`site`]: the running v1 container of a domain, inspected into a
//!   [`V1Site`] (image, port, memory limits, restart policy, env, binds).
//! - [`nginx`]: v1's enabled nginx site for a domain, retired when HostKit's
//!   own file serves the domain, restored when an import fails.

pub mod config;
pub mod nginx;
pub mod site;

pub use config::{V1Config, V1ConfigError, find_sites};
pub use site::{V1Site, V1SiteError, container_name, inspect_site};
