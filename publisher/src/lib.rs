//! `hostkit`: the CLI that CI and operators use. It uploads images, publishes
//! jobs and follows their events; it talks only to NATS.

pub mod cli;
