//! End-to-end tests of `hostkit-worker`: jobs published straight to a real
//! nats-server (the CLI's way), run by the worker against the real Docker
//! Engine and nginx.

mod env;

mod budgets;
mod compat;
mod control;
mod features;
mod fleet;
mod flow;
mod import;
mod intake;
mod isolation;
mod lanes;
mod layers;
mod observability;
mod operations;
mod resilience;
mod seed;
mod tls;
