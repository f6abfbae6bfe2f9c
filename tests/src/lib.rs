//! Test harness for HostKit's end-to-end suite: real nats-server, Docker
//! Engine and nginx, each started or reached per test and cleaned up on drop.
