//! `INFO` and `CLIENT LIST` text, in Redis's `key:value` layout so that redis-cli,
//! redis_exporter and Redis dashboards read it unchanged.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::cmd::table::COMMANDS;
use crate::config::Settings;
use crate::state::{ClientInfo, ERROR_KINDS, REDIS_COMPAT_VERSION, Shared};
use crate::store::StoreStats;

/// Sections `INFO` (and `INFO default`) shows, in order.
const DEFAULT_SECTIONS: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "errorstats",
    "keyspace",
    "analytics",
];

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
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

/// The `INFO` text for the requested sections (none: the default set).
pub fn render(shared: &Shared, sections: &[&[u8]]) -> String {
    let wanted: Vec<String> = sections
        .iter()
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase())
        .collect();
    let all = wanted.is_empty()
        || wanted
            .iter()
            .any(|w| w == "all" || w == "default" || w == "everything");
    let mut out = String::new();
    // `keyspace` and `analytics` both describe the store; one reading serves both
    // (it takes every shard's lock).
    let mut store: Option<StoreStats> = None;
    for name in DEFAULT_SECTIONS {
        if all || wanted.iter().any(|w| w == name) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            section(shared, name, &mut store, &mut out);
        }
    }
    out
}

fn section(shared: &Shared, name: &str, store: &mut Option<StoreStats>, out: &mut String) {
    let mut store_stats = || *store.get_or_insert_with(|| shared.store.stats(shared.clock.now()));
    let stats = &shared.stats;
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    // `write!` into a String cannot fail; the results are ignored on purpose.
    match name {
        "server" => {
            let uptime = shared.started.elapsed().as_secs();
            let usec = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_micros());
            let _ = write!(
                out,
                "# Server\r\nredis_version:{REDIS_COMPAT_VERSION}\r\nredis_git_sha1:00000000\r\nredis_git_dirty:0\r\n\
                 redis_mode:standalone\r\nscalable_analytics_version:{}\r\nos:{} {}\r\narch_bits:64\r\n\
                 multiplexing_api:epoll\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\n\
                 server_time_usec:{usec}\r\nuptime_in_seconds:{uptime}\r\nuptime_in_days:{}\r\n\
                 executable:{}\r\nconfig_file:\r\n",
                env!("CARGO_PKG_VERSION"),
                std::env::consts::OS,
                std::env::consts::ARCH,
                std::process::id(),
                shared.run_id,
                shared.local_addr.port(),
                uptime / 86400,
                std::env::current_exe()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            );
        }
        "clients" => {
            let _ = write!(
                out,
                "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:0\r\n\
                 tracking_clients:0\r\nclients_in_timeout_table:0\r\n",
                shared.connected.load(std::sync::atomic::Ordering::Relaxed),
                Settings::get(&shared.settings.maxclients),
            );
        }
        "memory" => {
            let rss = rss_bytes();
            let used = crate::exec::used_memory();
            let max = Settings::get(&shared.settings.maxmemory) as u64;
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
        "persistence" => {
            let _ = write!(
                out,
                "# Persistence\r\nloading:0\r\nrdb_bgsave_in_progress:0\r\naof_enabled:0\r\n\
                 snapshot_file:{}\r\n",
                shared
                    .config
                    .snapshot
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            );
        }
        "stats" => {
            let _ = write!(
                out,
                "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\n\
                 instantaneous_ops_per_sec:0\r\ntotal_net_input_bytes:{}\r\ntotal_net_output_bytes:{}\r\n\
                 rejected_connections:{}\r\nexpired_keys:0\r\nevicted_keys:0\r\n\
                 total_error_replies:{}\r\nprotocol_errors:{}\r\n\
                 client_query_buffer_limit_disconnections:{}\r\n\
                 client_output_buffer_limit_disconnections:{}\r\n",
                load(&stats.total_connections_received),
                stats.total_commands_processed.get(),
                stats.net_input_bytes.get(),
                stats.net_output_bytes.get(),
                load(&stats.rejected_connections),
                load(&stats.total_error_replies),
                load(&stats.protocol_errors),
                load(&stats.query_buffer_disconnections),
                load(&stats.output_buffer_disconnections),
            );
        }
        "replication" => {
            out.push_str("# Replication\r\nrole:master\r\nconnected_slaves:0\r\n");
        }
        "errorstats" => {
            out.push_str("# Errorstats\r\n");
            for (kind, count) in ERROR_KINDS.iter().zip(&stats.error_kinds) {
                let n = load(count);
                if n > 0 {
                    let _ = write!(out, "errorstat_{kind}:count={n}\r\n");
                }
            }
        }
        "keyspace" => {
            out.push_str("# Keyspace\r\n");
            let s = store_stats();
            let keys = s.active_users + s.active_event_types + s.active_user_event_types;
            if keys > 0 {
                let _ = write!(out, "db0:keys={keys},expires={keys},avg_ttl=0\r\n");
            }
        }
        "analytics" => {
            let now = shared.clock.now();
            let s = store_stats();
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
        _ => {}
    }
}

/// One `CLIENT LIST` / `CLIENT INFO` line, newline included.
pub fn client_line(shared: &Shared, c: &ClientInfo) -> String {
    let names = c.names();
    let age = c.created.elapsed().as_secs();
    let idle_ms = shared
        .uptime_ms()
        .saturating_sub(c.last_active_ms.load(Ordering::Relaxed));
    let cmd = COMMANDS
        .get(c.last_cmd.load(Ordering::Relaxed))
        .map_or("NULL", |s| s.name);
    format!(
        "id={} addr={} laddr={} fd=-1 name={} age={age} idle={} flags=N db=0 sub=0 psub=0 ssub=0 \
         multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 \
         tot-mem=0 events=r cmd={cmd} user=default redir=-1 resp={} lib-name={} lib-ver={}\n",
        c.id,
        c.addr,
        c.laddr,
        names.name,
        idle_ms / 1000,
        c.resp.load(Ordering::Relaxed),
        names.lib_name,
        names.lib_ver,
    )
}
