//! End-to-end tests of the `deploy` crate: real Docker Engine, real nginx,
//! real stacks built from the harness's busybox images.

mod site;

mod attacks;
mod compose_features;
mod corpus;
mod deploy;
mod failures;
mod hooks;
mod isolation;
mod oneshot;
mod ops;
mod proxy;
mod registry;
mod scale;
mod zero_downtime;
