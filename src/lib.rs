//! ScalableAnalytics: a Redis-protocol server keeping exact aggregates of user activity
//! over a sliding window.
//!
//! The data flows one way: socket bytes ([`connection`]) → requests ([`protocol`]) →
//! typed commands ([`cmd`]) → events in ([`ingest`]) or queries of the global,
//! sharded window ([`store`]) → reply bytes. [`server`] accepts connections and runs
//! the background sweep; [`http`] serves metrics and a live page beside it.
//! `docs/architecture.md` draws the map.
//!
//! The modules are private to the crate; what the binary, the benchmarks, the fuzz
//! targets and the tests need is re-exported here.

mod alloc;
mod clients;
mod clock;
mod cluster;
mod cmd;
mod config;
mod connection;
mod error;
mod event;
mod gate;
mod http;
mod ingest;
mod observe;
mod persist;
mod prefetch;
mod protected;
mod protocol;
mod scratch;
mod server;
mod shared;
mod stats;
mod store;
mod stripe;
mod watch;

pub use alloc::{Counting, use_huge_pages};
pub use clock::ClockMode;
pub use config::{Config, DEFAULT_LOG_LEVEL};
pub use event::{DEFAULT_MAX_ID_LEN, Event, EventError, parse_event, parse_slow};
pub use persist::snapshot::{Snapshot, SnapshotError, read as read_snapshot};
pub use protected::DENIED;
pub use protocol::{ArgBuf, Args, Limits, Parsed, ProtocolError, parse_request};
pub use server::{Handle, Options, StartError, build, serve};
pub use store::{
    Active, AddError, Answer, EXPIRE_BUDGET, Ingest, Point, Ranked, SCAN_BUDGET, Score, Store,
    TopScan,
};

/// Parses a request's arguments into a command as the server does, without running
/// it: the error reply's text when it cannot be parsed (for the fuzz targets).
pub fn parse_command(args: Args<'_>, window: u32) -> Result<(), String> {
    cmd::parse(args, window)
        .map(drop)
        .map_err(|r| r.error.text())
}
