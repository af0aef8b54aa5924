//! ScalableAnalytics: a Redis-protocol server keeping exact aggregates of user activity
//! over a sliding window.
//!
//! The data flows one way: socket bytes ([`connection`]) → RESP frames ([`protocol`])
//! → typed commands ([`cmd`]) → the global, sharded window ([`store`]) → reply bytes.
//! [`server`] accepts connections and sweeps the window in the background.

pub mod alloc;
pub mod clock;
pub mod cmd;
pub mod config;
pub mod connection;
pub mod event;
pub mod exec;
pub mod info;
pub mod protocol;
pub mod server;
pub mod snapshot;
pub mod state;
pub mod store;
