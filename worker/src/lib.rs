//! `hostkit-worker`: the daemon on every VPS. It consumes jobs from NATS,
//! runs them through `hostkit-deploy`, records stack versions in SQLite and
//! publishes progress and health events.

pub mod cli;
pub mod config;
pub mod handlers;
pub mod logging;
pub mod run;
pub mod runtime;
pub mod seal_key;
pub mod shutdown;
pub mod store;

pub use run::run;
