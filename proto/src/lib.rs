//! The HostKit wire contract: every type that crosses NATS (jobs, events,
//! control requests and replies), every subject/stream/bucket name, and the
//! validated names (`Domain`, `NodeId`) they are built from.
//!
//! This crate does no I/O and has no async runtime: the worker, the CLI and
//! dashboards all depend on it, and it is the only wire boundary.
