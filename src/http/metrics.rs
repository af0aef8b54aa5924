//! `GET /metrics`: the server's figures in the Prometheus text format (version 0.0.4),
//! or OpenMetrics 1.0 for scrapers that ask for it in `Accept` (Prometheus does).
//!
//! [`Collector`] reads everything at scrape time from the same places `INFO` reads:
//! the server counters, the store, and the per-thread command blocks
//! ([`crate::stats::commands`]), whose latency histograms it encodes as Prometheus
//! histograms. Nothing is recorded for Prometheus on the hot path.
//!
//! Every name starts with [`PREFIX`]; the README lists them. Counters carry the
//! `_total` suffix in the output (the encoder adds it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

use super::App;
use crate::cmd::CommandId;
use crate::error::ErrorKind;
use crate::shared::Shared;
use crate::stats::commands::{BUCKETS, Snapshot, bucket_upper};

/// The prefix of every metric name.
pub const PREFIX: &str = "scalable_analytics";

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The scrape: OpenMetrics when `Accept` names it, the classic text format otherwise.
/// The encoding (about a millisecond with a few commands' histograms) runs on the
/// runtime's blocking pool, so the serving thread this task shares goes on serving
/// clients meanwhile.
pub async fn scrape(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let openmetrics = headers.get_all(header::ACCEPT).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.contains("application/openmetrics-text"))
    });
    let encoded = tokio::task::spawn_blocking(move || {
        let mut body = String::new();
        if openmetrics {
            prometheus_client::encoding::text::encode(&mut body, &app.metrics)
                .map(|()| (body, OPENMETRICS))
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut body, &app.metrics).map(
                |()| {
                    (
                        body,
                        prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                    )
                },
            )
        }
    })
    .await;
    let Ok(Ok((body, content_type))) = encoded else {
        // Writing into a String only fails if an encoder refuses a value.
        tracing::error!("metrics could not be encoded");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics could not be encoded\n",
        )
            .into_response();
    };
    let mut resp = body.into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// Reads the server's figures at each scrape (see the module doc).
#[derive(Debug)]
pub struct Collector {
    shared: Arc<Shared>,
}

impl Collector {
    pub fn new(shared: Arc<Shared>) -> Self {
        Collector { shared }
    }
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

fn counter(enc: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

fn gauge(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    v: u64,
) -> std::fmt::Result {
    let m = enc.encode_descriptor(name, help, unit, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// A counter family with one label, one sample per `(label value, count)`.
fn counter_family<'a>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    samples: impl Iterator<Item = (&'a str, u64)>,
) -> std::fmt::Result {
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, n) in samples {
        let labels = [(label, value)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A command's latency histogram as Prometheus buckets: each of ours but the last
/// with its upper bound in seconds, the last (which also holds everything longer
/// than its bound) as `+Inf`. The counts are per bucket; the encoder adds them up.
fn buckets(s: &Snapshot) -> Vec<(f64, u64)> {
    s.hist
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            let upper = if i + 1 < BUCKETS {
                bucket_upper(i) as f64 / 1e9
            } else {
                f64::INFINITY
            };
            (upper, n)
        })
        .collect()
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut enc: DescriptorEncoder) -> std::fmt::Result {
        self.encode_counters(&mut enc)?;
        self.encode_gauges(&mut enc)?;
        self.encode_commands(&mut enc)
    }
}

impl Collector {
    /// Events, connections, commands, bytes and errors: INFO `# Stats`.
    fn encode_counters(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let stats = &self.shared.stats;
        let events: [(&str, &str, u64); 4] = [
            (
                "events_accepted",
                "Events counted into the window (INFO events_accepted).",
                stats.events_accepted.get(),
            ),
            (
                "events_rejected",
                "Events refused: malformed, too old, too far ahead, or no memory (INFO events_rejected).",
                load(&stats.events_rejected),
            ),
            (
                "events_late",
                "Events refused as older than the window (INFO events_late).",
                load(&stats.events_late),
            ),
            (
                "events_future",
                "Events refused as too far ahead of now (INFO events_future).",
                load(&stats.events_future),
            ),
        ];
        for (name, help, v) in events {
            counter(enc, name, help, v)?;
        }
        let server: [(&str, &str, u64); 7] = [
            (
                "connections_received",
                "Client connections accepted on the RESP port (INFO total_connections_received).",
                load(&stats.total_connections_received),
            ),
            (
                "connections_rejected",
                "Client connections refused at maxclients (INFO rejected_connections).",
                load(&stats.rejected_connections),
            ),
            (
                "commands_processed",
                "Commands run, all commands together (INFO total_commands_processed).",
                stats.total_commands_processed.get(),
            ),
            (
                "protocol_errors",
                "Requests that broke the RESP protocol (INFO protocol_errors).",
                load(&stats.protocol_errors),
            ),
            (
                "auth_failures",
                "Logins refused for a wrong password, AUTH and HTTP (INFO acl_access_denied_auth).",
                load(&stats.auth_failures),
            ),
            (
                "net_input_bytes",
                "Bytes read from RESP clients (INFO total_net_input_bytes).",
                stats.net_input_bytes.get(),
            ),
            (
                "net_output_bytes",
                "Bytes written to RESP clients (INFO total_net_output_bytes).",
                stats.net_output_bytes.get(),
            ),
        ];
        for (name, help, v) in server {
            counter(enc, name, help, v)?;
        }
        counter_family(
            enc,
            "errors",
            "Error replies by their code (INFO errorstat_<code>).",
            "kind",
            ErrorKind::ALL
                .iter()
                .map(|&k| (k.code(), stats.errors_of(k))),
        )
    }

    /// The window, memory and clients now.
    fn encode_gauges(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let shared = &self.shared;
        let store = shared.store.stats(shared.clock.now());
        let gauges: [(&str, &str, Option<&Unit>, u64); 8] = [
            (
                "window_events",
                "Events in the window now (EVT.TOTAL; INFO window_events).",
                None,
                store.window_events,
            ),
            (
                "active_users",
                "Users with an event in the window (INFO active_users).",
                None,
                store.active_users as u64,
            ),
            (
                "active_event_types",
                "Event types with an event in the window (INFO active_event_types).",
                None,
                store.active_event_types as u64,
            ),
            (
                "active_pairs",
                "(user, event type) pairs with an event in the window (INFO active_user_event_types).",
                None,
                store.active_user_event_types as u64,
            ),
            (
                "window",
                "Length of the sliding window (INFO window_seconds).",
                Some(&Unit::Seconds),
                u64::from(shared.store.window()),
            ),
            (
                "used_memory",
                "Bytes allocated by the server (INFO used_memory).",
                Some(&Unit::Bytes),
                crate::alloc::used_memory(),
            ),
            (
                "resident_memory",
                "Resident set size of the process (INFO used_memory_rss).",
                Some(&Unit::Bytes),
                crate::alloc::rss_bytes(),
            ),
            (
                "connected_clients",
                "RESP clients connected now (INFO connected_clients).",
                None,
                shared.connected.load(Ordering::Relaxed) as u64,
            ),
        ];
        for (name, help, unit, v) in gauges {
            gauge(enc, name, help, unit, v)?;
        }
        gauge(
            enc,
            "uptime",
            "Time since the server started (INFO uptime_in_seconds).",
            Some(&Unit::Seconds),
            shared.started.elapsed().as_secs(),
        )
    }

    /// Calls and latency by command: INFO `commandstats` and `latencystats`.
    fn encode_commands(&self, enc: &mut DescriptorEncoder) -> std::fmt::Result {
        let stats = &self.shared.stats;
        let commands: Vec<(&str, Snapshot)> = CommandId::ALL
            .iter()
            .map(|&id| (id.spec().name, stats.commands.snapshot(id as usize)))
            .collect();
        counter_family(
            enc,
            "commands",
            "Calls by command (INFO commandstats calls).",
            "command",
            commands.iter().map(|(name, s)| (*name, s.calls)),
        )?;
        counter_family(
            enc,
            "commands_rejected",
            "Calls refused before they ran: arity, syntax, login (INFO commandstats rejected_calls).",
            "command",
            commands.iter().map(|(name, s)| (*name, s.rejected)),
        )?;
        counter_family(
            enc,
            "commands_failed",
            "Calls that ran and answered an error (INFO commandstats failed_calls).",
            "command",
            commands.iter().map(|(name, s)| (*name, s.failed)),
        )?;
        // Histograms only for commands that have run: each is BUCKETS series. The
        // unit is in the name but not declared as OpenMetrics `# UNIT` metadata,
        // which some OpenMetrics parsers refuse on histograms.
        let mut latency = enc.encode_descriptor(
            "command_duration_seconds",
            "Time to run a command, by command; a pipelined batch counts each call at its share of the batch (INFO latencystats).",
            None,
            MetricType::Histogram,
        )?;
        for (name, s) in commands.iter().filter(|(_, s)| s.samples() > 0) {
            let labels = [("command", *name)];
            // The count is the buckets' sum, so the `+Inf` bucket equals it even if a
            // thread records between the reads of the calls and of the buckets.
            latency
                .encode_family(&labels)?
                .encode_histogram::<NoLabelSet>(
                    s.nanos as f64 / 1e9,
                    s.samples(),
                    &buckets(s),
                    None,
                )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_histogram_and_end_at_infinity() {
        let mut hist = vec![0; BUCKETS];
        hist[0] = 2;
        hist[10] = 3;
        hist[BUCKETS - 1] = 1;
        let s = Snapshot {
            calls: 6,
            nanos: 0,
            rejected: 0,
            failed: 0,
            hist,
        };
        let b = buckets(&s);
        assert_eq!(b.len(), BUCKETS);
        assert_eq!(b[0], (256e-9, 2));
        assert_eq!(b[10].1, 3);
        assert_eq!(b[BUCKETS - 1], (f64::INFINITY, 1));
        assert!(b.windows(2).all(|w| w[0].0 < w[1].0), "bounds increase");
    }
}
