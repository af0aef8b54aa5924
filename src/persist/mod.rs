//! What outlives the process: the snapshot of the window.

pub mod snapshot;
