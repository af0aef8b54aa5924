//! `INFO [section ...]`, in Redis's `key:value` layout so that redis-cli,
//! redis_exporter and Redis dashboards read it unchanged.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::spec::{Spec, arg, multiple, optional};
use super::{Cmd, CommandId, Ctx, Cursor};
use crate::config::Settings;
use crate::error::ErrorKind;
use crate::error::ReplyError;
use crate::protocol::Reply;
use crate::shared::{REDIS_COMPAT_VERSION, Shared};
use crate::store::StoreStats;

/// `INFO [section ...]`.
#[derive(Debug)]
pub struct Info<'a> {
    sections: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for Info<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "info",
        -1,
        &["loading", "stale"],
        "server",
        "Returns information and statistics about the server.",
        &[optional(multiple(arg("section", "string")))],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Info { sections: c.rest() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Verbatim(render(ctx.shared, &self.sections)))
    }
}

/// Every section, in order; `INFO` and `INFO default` leave out the per-command
/// ones (as Redis), `INFO all` and `INFO everything` show them all.
const SECTIONS: [&str; 12] = [
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "commandstats",
    "latencystats",
    "errorstats",
    "cluster",
    "keyspace",
    "analytics",
];

/// Sections `INFO` alone shows.
fn is_default(section: &str) -> bool {
    !matches!(section, "commandstats" | "latencystats")
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "K", "M", "G"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.2}{}", UNITS[unit])
    }
}

/// Which sections `args` ask for: each at most once, however often it is named.
fn wanted(args: &[&[u8]]) -> [bool; SECTIONS.len()] {
    let defaults = SECTIONS.map(is_default);
    if args.is_empty() {
        return defaults;
    }
    let mut wanted = [false; SECTIONS.len()];
    for arg in args {
        if arg.eq_ignore_ascii_case(b"all") || arg.eq_ignore_ascii_case(b"everything") {
            return [true; SECTIONS.len()];
        }
        if arg.eq_ignore_ascii_case(b"default") {
            for (w, d) in wanted.iter_mut().zip(defaults) {
                *w |= d;
            }
        } else if let Some(i) = SECTIONS
            .iter()
            .position(|s| arg.eq_ignore_ascii_case(s.as_bytes()))
        {
            wanted[i] = true;
        }
    }
    wanted
}

/// The `INFO` text for the requested sections (none: the default set).
pub fn render(shared: &Shared, sections: &[&[u8]]) -> String {
    let wanted = wanted(sections);
    let mut out = String::new();
    // `keyspace` and `analytics` both describe the store; one reading serves both.
    let mut store: Option<StoreStats> = None;
    for (name, _) in SECTIONS.iter().zip(wanted).filter(|(_, w)| *w) {
        {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            let mut store_stats =
                || *store.get_or_insert_with(|| shared.store.stats(shared.clock.now()));
            section(shared, name, &mut store_stats, &mut out);
        }
    }
    out
}

fn load(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

// `write!` into a String cannot fail; the results are ignored on purpose.
fn section(
    shared: &Shared,
    name: &str,
    store_stats: &mut dyn FnMut() -> StoreStats,
    out: &mut String,
) {
    match name {
        "server" => server(shared, out),
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\
                 tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                shared.connected.load(Ordering::Relaxed),
                Settings::get(&shared.settings.maxclients),
            );
        }
        "memory" => memory(shared, out),
        "persistence" => crate::persist::info(shared, out),
        "stats" => stats(shared, out),
        "replication" => {
            out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        }
        "commandstats" => commandstats(shared, out),
        "latencystats" => latencystats(shared, out),
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for &kind in ErrorKind::ALL {
                let n = shared.stats.errors_of(kind);
                if n > 0 {
                    let _ = write!(out, "errorstat_{}:count={n}\r\n", kind.code());
                }
            }
        }
        "cluster" => {
            let on = u8::from(shared.cluster.is_some());
            let _ = write!(out, "# Cluster\r\ncluster_enabled:{on}\r\n");
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            let s = store_stats();
            let keys = s.active_users + s.active_event_types + s.active_user_event_types;
            // Nothing has a TTL: the window expires everything by itself, so Redis's
            // `expires` (keys with a TTL) is 0, as redis_exporter expects.
            if keys > 0 {
                let _ = write!(out, "db0:keys={keys},expires=0,avg_ttl=0\r\n");
            }
        }
        "analytics" => analytics(shared, store_stats(), out),
        _ => {}
    }
}

/// `cmdstat_<name>:calls=…,usec=…,usec_per_call=…,rejected_calls=…,failed_calls=…`
/// for every command used since the start (or `CONFIG RESETSTAT`).
fn commandstats(shared: &Shared, out: &mut String) {
    out.push_str("# Commandstats\r\n");
    for &id in CommandId::ALL {
        let s = shared.stats.commands.snapshot(id as usize);
        if s.calls == 0 && s.rejected == 0 && s.failed == 0 {
            continue;
        }
        let usec = s.nanos / 1000;
        let per_call = if s.calls == 0 {
            0.0
        } else {
            s.nanos as f64 / 1000.0 / s.calls as f64
        };
        let _ = write!(
            out,
            "cmdstat_{}:calls={},usec={usec},usec_per_call={per_call:.2},rejected_calls={},failed_calls={}\r\n",
            id.spec().name,
            s.calls,
            s.rejected,
            s.failed,
        );
    }
}

/// `latency_percentiles_usec_<name>:p50=…,p99=…,p99.9=…`, as Redis 7.
fn latencystats(shared: &Shared, out: &mut String) {
    out.push_str("# Latencystats\r\n");
    for &id in CommandId::ALL {
        let s = shared.stats.commands.snapshot(id as usize);
        if s.samples() == 0 {
            continue;
        }
        let us = |p: f64| s.percentile(p) as f64 / 1000.0;
        let _ = write!(
            out,
            "latency_percentiles_usec_{}:p50={:.3},p99={:.3},p99.9={:.3}\r\n",
            id.spec().name,
            us(50.0),
            us(99.0),
            us(99.9),
        );
    }
}

/// `standalone`, or `cluster` for a node of a cluster (INFO, HELLO).
pub fn redis_mode(shared: &Shared) -> &'static str {
    if shared.cluster.is_some() {
        "cluster"
    } else {
        "standalone"
    }
}

fn server(shared: &Shared, out: &mut String) {
    let uptime = shared.started.elapsed().as_secs();
    let usec = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros());
    let _ = write!(
        out,
        "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
         redis_mode:{}\r\nscalable_analytics_version:{}\r\nos:{} {}\r\narch_bits:64\r\n\
         multiplexing_api:epoll\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nhttp_port:{}\r\n\
         server_time_usec:{usec}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
         executable:{}\r\nconfig_file:{}\r\n",
        redis_mode(shared),
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS,
        std::env::consts::ARCH,
        std::process::id(),
        shared.run_id,
        shared.local_addr.port(),
        shared.http.addr().map_or(0, |a| a.port()),
        uptime / 86400,
        std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        shared
            .config
            .config_file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
}

fn memory(shared: &Shared, out: &mut String) {
    let rss = crate::alloc::rss_bytes();
    let used = crate::alloc::used_memory();
    let max = Settings::get(&shared.settings.maxmemory);
    let _ = write!(
        out,
        "# Memory\r\nused_memory:{used}\r\nused_memory_human:{}\r\nused_memory_rss:{rss}\r\n\
         used_memory_rss_human:{}\r\n\
         maxmemory:{max}\r\nmaxmemory_human:{}\r\nmaxmemory_policy:noeviction\r\n\
         mem_allocator:{}\r\n",
        human(used),
        human(rss),
        human(max),
        if crate::alloc::allocated_bytes().is_some() {
            "counting-libc"
        } else {
            "libc"
        },
    );
}

fn stats(shared: &Shared, out: &mut String) {
    let stats = &shared.stats;
    let _ = write!(
        out,
        "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
         instantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
         rejected_connections:{}\r\nexpired_keys:0\r\nevicted_keys:0\r\n\
         total_error_replies:{}\r\nprotocol_errors:{}\r\nacl_access_denied_auth:{}\r\n\
         client_query_buffer_limit_disconnections:{}\r\n\
         client_output_buffer_limit_disconnections:{}\r\n",
        load(&stats.total_connections_received),
        stats.total_commands_processed.get(),
        stats.net_input_bytes.get(),
        stats.net_output_bytes.get(),
        load(&stats.rejected_connections),
        load(&stats.total_error_replies),
        load(&stats.protocol_errors),
        load(&stats.auth_failures),
        load(&stats.query_buffer_disconnections),
        load(&stats.output_buffer_disconnections),
    );
}

fn analytics(shared: &Shared, s: StoreStats, out: &mut String) {
    let stats = &shared.stats;
    let now = shared.clock.now();
    let _ = write!(
        out,
        "# Analytics\r\nwindow_seconds:{}\r\nclock:{}\r\nnow:{now}\r\n\
         max_future_skew:{}\r\nevents_accepted:{}\r\nevents_rejected:{}\r\nevents_late:{}\r\n\
         events_future:{}\r\nwindow_events:{}\r\nactive_users:{}\r\nactive_event_types:{}\r\n\
         active_user_event_types:{}\r\nwheel_entries:{}\r\nshards:{}\r\n",
        shared.store.window(),
        shared.clock.mode().name(),
        shared.settings.max_future_skew.load(Ordering::Relaxed),
        stats.events_accepted.get(),
        load(&stats.events_rejected),
        load(&stats.events_late),
        load(&stats.events_future),
        s.window_events,
        s.active_users,
        s.active_event_types,
        s.active_user_event_types,
        s.wheel_entries,
        shared.store.shard_count(),
    );
}
