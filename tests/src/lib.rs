//! Test harness for HostKit's end-to-end suite: real nats-server, Docker
//! Engine and nginx, each started or reached per test and cleaned up on drop.
//!
//! - [`TestNats`]: a nats-server with JetStream on a free port and a temporary store;
//!   [`TestNatsCluster`]: several of them clustered on loopback.
//! - [`TestDocker`]: the Docker Engine with a per-test label, unique domains and cleanup.
//! - [`TestNginx`]: nginx with its own prefix, a default 404 server and a `conf.d`.
//! - [`TestPebble`]: an ACME server (pebble) with a mock DNS, for TLS; [`https`]:
//!   an HTTPS client that trusts only what the test gives it.
//! - [`image`]: `docker save` tarballs built without a registry; [`fixtures`]:
//!   ready-made web, api and db images.
//! - [`shipped`]: a nats-server running `dist/nats-server.conf` as shipped, over TLS.
//! - [`util`]: free ports, bounded waits, a minimal HTTP client.
//!
//! A test that needs one of the real parts fails with a clear message (what
//! is missing and how to install it) when it is not there; nothing is skipped.

pub mod deploy;
pub mod docker;
pub mod fixtures;
pub mod https;
pub mod image;
pub mod nats;
pub mod nats_cluster;
pub mod nginx;
pub mod pebble;
mod process;
pub mod registry;
pub mod shipped;
pub mod util;
pub mod worker;

pub use docker::{TestDocker, compose_project, connect_docker};
pub use image::{BuiltImage, Healthcheck, ImageSpec, TarballBuilder, TarballInfo};
pub use nats::TestNats;
pub use nats_cluster::TestNatsCluster;
pub use nginx::TestNginx;
pub use pebble::TestPebble;
pub use registry::TestRegistry;
pub use shipped::ShippedNats;
pub use util::{
    HttpResponder, HttpResponse, free_port, http_get, http_request, wait_for, wait_until,
};
pub use worker::{JobEvents, TestWorker, publish_job};
