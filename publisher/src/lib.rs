//! `hostkit`: the CLI that CI and operators use. It checks compose files
//! locally, uploads image tarballs to the NATS object store, publishes jobs
//! and follows their events to an exit code; it asks workers for status,
//! services, versions and logs. It talks only to NATS.
//!
//! Map of the crate:
//!
//! - [`cli`]: the command line (clap), help texts, exit codes.
//! - [`commands`]: one module per command family, and [`commands::run`].
//! - [`connect`]: NATS connection options and plain connection errors.
//! - [`placement`]: which node hosts a domain; the node registry.
//! - [`validate`]: the local compose and policy check.
//! - [`tarball`]: `docker save` manifests and seed bundles, streamed.
//! - [`upload`]: content-addressed uploads that skip what is there.
//! - [`layers`]: a tarball split into config and layer blobs (only the
//!   missing ones are sent).
//! - [`publish`]: making, signing and publishing jobs.
//! - [`follow`]: following a job's events to its exit code.
//! - [`control`]: control requests (status, services, versions, logs).
//! - [`dashboard`]: `hostkit dashboard`, the live web view (axum, SSE).
//! - [`render`]: human output, progress bars or plain lines, tables.
//! - [`summary`]: the GitHub Actions job summary.
//! - [`error`]: the one error type and the exit codes.

pub mod cli;
pub mod commands;
pub mod connect;
pub mod control;
pub mod dashboard;
pub mod error;
pub mod follow;
pub mod layers;
pub mod placement;
pub mod publish;
pub mod render;
pub mod summary;
pub mod tarball;
pub mod upload;
pub mod validate;

pub use error::{Error, Exit};

/// Runs a parsed command line on a new Tokio runtime.
pub fn run(cli: cli::Cli) -> Result<Exit, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::failed("cannot start the async runtime").with_source(e))?;
    runtime.block_on(commands::run(cli))
}
