//! HostKit's end-to-end suite: one test binary, one module per area.

mod cluster;
mod harness;
mod permissions;
mod stack;
mod worker;
