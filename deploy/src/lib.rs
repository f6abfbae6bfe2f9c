//! The HostKit stack engine: from a compose file and images to a healthy,
//! isolated stack behind nginx, through the Docker Engine API.
//!
//! Knows nothing of NATS or SQLite: callers pass a domain, a compose text, an
//! env, image sources, a port block and a progress sink.

pub mod atomic_file;
pub mod cgroup;
pub mod compose;
pub mod convert;
pub mod docker;
pub mod domain_dir;
pub mod engine;
pub mod error;
pub mod images;
pub mod policy;
pub mod ports;
pub mod progress;
pub mod proxy;
pub mod stack;
pub mod tls;
pub mod v1;
