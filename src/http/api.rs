//! The JSON the live page polls, documented in the README (`HTTP view`).
//!
//! `GET /api/window` is the window at one `now`; `GET /api/top` its top users and
//! event types (`{"users": [{"id", "events"}], "types": [...]}`, what `EVT.TOP USERS`
//! and `EVT.TOP TYPES` answer), which the live page shows beside it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::Uri;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::App;
use crate::cmd::{DEFAULT_TOP_COUNT, MAX_TOP_COUNT};
use crate::error::ErrorKind;
use crate::shared::Shared;
use crate::store::{Ranked as RankedBy, Score, Store};

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

/// The window's total and its events per second, oldest first, at `now`: what
/// `EVT.SERIES TOTAL` answers (each shard read once, so the seconds add up to the
/// total).
pub fn per_second(store: &Store, now: i64) -> (u64, Vec<u64>) {
    let series = store.total_series(store.window(), now);
    (series.iter().sum(), series)
}

/// `GET /api/top`.
#[derive(Debug, Serialize)]
pub struct Top {
    now: i64,
    window_seconds: u32,
    /// The users with the most events in the window, as `EVT.TOP USERS`.
    users: Vec<Ranked>,
    /// The event types with the most events, as `EVT.TOP TYPES`.
    types: Vec<Ranked>,
}

/// One entry of a top list.
#[derive(Debug, Serialize)]
struct Ranked {
    id: String,
    events: u64,
}

/// `?count=<k>` of a request's query, if it is there and a number.
fn count_of(uri: &Uri) -> Option<usize> {
    uri.query()?
        .split('&')
        .find_map(|kv| kv.strip_prefix("count="))?
        .parse()
        .ok()
}

/// `GET /api/top[?count=k]`. Read on the runtime's blocking pool: a list that needs a
/// scan (a million users tied at one event) holds no serving thread.
pub async fn top(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let k = count_of(&uri)
        .unwrap_or(DEFAULT_TOP_COUNT)
        .clamp(1, MAX_TOP_COUNT);
    match tokio::task::spawn_blocking(move || read_top(&app.shared, k)).await {
        Ok(t) => json(&t),
        Err(e) => {
            tracing::error!(error = %e, "the top lists could not be read");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The top `k` users and types at one `now`.
fn read_top(shared: &Shared, k: usize) -> Top {
    let now = shared.clock.now();
    let store = &shared.store;
    let list = |what| {
        let span = store.window();
        store
            .top_now(what, k, span, now)
            .into_iter()
            .map(|(score, id)| Ranked {
                id: String::from_utf8_lossy(&id).into_owned(),
                events: match score {
                    Score::Count(n) => n,
                    Score::Sum(_) => 0,
                },
            })
            .collect()
    };
    Top {
        now,
        window_seconds: store.window(),
        users: list(RankedBy::Users),
        types: list(RankedBy::Types),
    }
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
