//! The JSON the live page polls, documented in the README (`HTTP view`).
//!
//! `GET /api/window` is the window at one `now`. The page also asks for
//! `GET /api/top` (`{"users": [{"id", "events"}], "types": [...]}`) and shows top users
//! and types when it answers; until a handler for it is routed it is a 404 and the page
//! keeps its placeholder.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::App;
use crate::error::ErrorKind;
use crate::shared::Shared;
use crate::store::Store;

/// `GET /api/window`.
#[derive(Debug, Serialize)]
pub struct Window {
    /// The server's `now`, Unix seconds, from its clock (`--clock`).
    now: i64,
    /// `wall`, `event` or `manual`.
    clock: &'static str,
    window_seconds: u32,
    /// Events in the window: what `EVT.TOTAL` answers at `now`.
    total: u64,
    /// Events per second over the window, oldest first; the last is second `now`.
    per_second: Vec<u64>,
    active_users: usize,
    active_event_types: usize,
    active_pairs: usize,
    events: Events,
    /// Error replies so far by code (`ERR`, `WRONGTYPE`, `OOM` ...), every code.
    errors: BTreeMap<&'static str, u64>,
    connected_clients: usize,
    used_memory: u64,
    uptime_seconds: u64,
}

/// Events offered since the start (or `CONFIG RESETSTAT`).
#[derive(Debug, Serialize)]
struct Events {
    accepted: u64,
    rejected: u64,
    late: u64,
    future: u64,
}

/// The window's total and its events per second, oldest first, at `now`.
///
/// Second `now - i` holds `total(i + 1) - total(i)`. Each `total` reads every shard
/// at one instant, so while events arrive the seconds can be off by the events that
/// landed between two reads; `total` itself is exact.
pub fn per_second(store: &Store, now: i64) -> (u64, Vec<u64>) {
    let window = store.window();
    // cumulative[i]: the events of the last i seconds.
    let mut cumulative = Vec::with_capacity(window as usize + 1);
    cumulative.push(0u64);
    for span in 1..=window {
        cumulative.push(store.total(span, now));
    }
    let total = cumulative.last().copied().unwrap_or(0);
    let series = cumulative
        .windows(2)
        .rev()
        .map(|w| w[1].saturating_sub(w[0]))
        .collect();
    (total, series)
}

/// `GET /api/window`. Read on the runtime's blocking pool (see `metrics::scrape`).
pub async fn window(State(app): State<Arc<App>>) -> Response {
    match tokio::task::spawn_blocking(move || read_window(&app.shared)).await {
        Ok(w) => json(&w),
        Err(e) => {
            tracing::error!(error = %e, "the window could not be read");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The window at one `now`.
fn read_window(shared: &Shared) -> Window {
    let stats = &shared.stats;
    let now = shared.clock.now();
    let (total, series) = per_second(&shared.store, now);
    let store = shared.store.stats(now);
    Window {
        now,
        clock: shared.clock.mode().name(),
        window_seconds: shared.store.window(),
        total,
        per_second: series,
        active_users: store.active_users,
        active_event_types: store.active_event_types,
        active_pairs: store.active_user_event_types,
        events: Events {
            accepted: stats.events_accepted.get(),
            rejected: stats.events_rejected.load(Ordering::Relaxed),
            late: stats.events_late.load(Ordering::Relaxed),
            future: stats.events_future.load(Ordering::Relaxed),
        },
        errors: ErrorKind::ALL
            .iter()
            .map(|&k| (k.code(), stats.errors_of(k)))
            .collect(),
        connected_clients: shared.connected.load(Ordering::Relaxed),
        used_memory: crate::alloc::used_memory(),
        uptime_seconds: shared.started.elapsed().as_secs(),
    }
}

/// `value` as an `application/json` response.
pub fn json(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => {
            let mut resp = bytes.into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "JSON could not be encoded");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "JSON could not be encoded\n",
            )
                .into_response()
        }
    }
}
