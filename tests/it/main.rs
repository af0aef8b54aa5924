//! The integration tests, one binary with one module per behaviour. Each test starts
//! its own server: in this process (`common::TestServer`, bound to `127.0.0.1:0`) or
//! the real binary in a child process (`common::Spawned`) where a process boundary is
//! the point (signals, exit status, the log, a memory figure no other test disturbs).
//!
//! Tests that drive an external program (`redis-cli`, `redis-benchmark`, `ss`, `ip`,
//! `chromium`) are ignored, with the reason, when it is not installed; under CI they
//! always run (see build.rs).

// `used_memory` and `--maxmemory` read the counting allocator; servers started in this
// process see it only because the test binary installs it, as the server binary does.
#[global_allocator]
static ALLOCATOR: scalable_analytics::Counting<std::alloc::System> =
    scalable_analytics::Counting(std::alloc::System);

mod common;

mod analytics;
mod auth;
mod clocks;
mod cluster;
mod commands;
mod durability;
mod events;
mod http;
mod lifecycle;
mod limits;
mod operators;
mod protocol;
mod readme;
mod snapshot;
mod store_model;
mod threads;
mod tools;
mod transactions;
mod window;
