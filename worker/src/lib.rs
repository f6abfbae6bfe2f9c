//! `hostkit-worker`: the daemon on every VPS. It consumes jobs from NATS,
//! runs them through `hostkit-deploy`, records stack versions in SQLite and
//! publishes progress and health events.

pub mod cli;
pub mod config;
pub mod logging;
pub mod store;
pub mod handlers;
pub mod runtime;
pub mod run;

pub use run::run;
