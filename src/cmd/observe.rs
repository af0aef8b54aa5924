//! The tools operators reach for: `SLOWLOG GET|LEN|RESET|HELP`,
//! `LATENCY LATEST|HISTORY|RESET|HISTOGRAM|HELP` and `MONITOR`, with Redis's reply
//! shapes (the state they read is in [`crate::observe`]).

use super::spec::{Spec, arg, multiple, optional};
use super::{Cmd, CommandId, Ctx, Cursor, lookup_full};
use crate::error::ReplyError;
use crate::protocol::Reply;
use crate::stats::commands::{BUCKETS, bucket_upper};

const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

/// The `SLOWLOG` container.
pub const SLOWLOG: &Spec = &Spec {
    since: "2.2.12",
    ..Spec::new(
        "slowlog",
        -2,
        &[],
        "server",
        "A container for slow log commands.",
        &[],
    )
};

/// The `LATENCY` container.
pub const LATENCY: &Spec = &Spec {
    since: "2.8.13",
    ..Spec::new(
        "latency",
        -2,
        &[],
        "server",
        "A container for latency diagnostics commands.",
        &[],
    )
};

/// Entries `SLOWLOG GET` returns without a count, as Redis.
const SLOWLOG_GET_DEFAULT: usize = 10;

/// `SLOWLOG GET [count]`: -1 is every entry.
#[derive(Debug)]
pub struct SlowlogGet {
    count: usize,
}

impl<'a> Cmd<'a> for SlowlogGet {
    const SPEC: &'static Spec = &Spec {
        since: "2.2.12",
        complexity: "O(N) where N is the number of entries returned",
        ..Spec::new(
            "slowlog|get",
            -2,
            ADMIN,
            "server",
            "Returns the slow log's entries.",
            &[optional(arg("count", "integer"))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let count = match c.remaining() {
            0 => SLOWLOG_GET_DEFAULT,
            _ => match c.int()? {
                -1 => usize::MAX,
                n if n >= 0 => n as usize,
                _ => {
                    return Err(ReplyError::err(
                        "count should be greater than or equal to -1",
                    ));
                }
            },
        };
        Ok(SlowlogGet { count })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let entries = ctx.shared.slowlog.get(self.count);
        Ok(Reply::Array(
            entries
                .into_iter()
                .map(|e| {
                    Reply::Array(vec![
                        Reply::Int(e.id as i64),
                        Reply::Int(e.time),
                        Reply::Int(e.micros as i64),
                        Reply::Array(e.args.into_iter().map(Reply::Bulk).collect()),
                        Reply::bulk(e.addr.to_string()),
                        Reply::bulk(e.name),
                    ])
                })
                .collect(),
        ))
    }
}

/// `SLOWLOG LEN`.
#[derive(Debug)]
pub struct SlowlogLen;

impl<'a> Cmd<'a> for SlowlogLen {
    const SPEC: &'static Spec = &Spec {
        since: "2.2.12",
        ..Spec::new(
            "slowlog|len",
            2,
            ADMIN,
            "server",
            "Returns the number of entries in the slow log.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(SlowlogLen)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Int(ctx.shared.slowlog.len() as i64))
    }
}

/// `SLOWLOG RESET`.
#[derive(Debug)]
pub struct SlowlogReset;

impl<'a> Cmd<'a> for SlowlogReset {
    const SPEC: &'static Spec = &Spec {
        since: "2.2.12",
        ..Spec::new(
            "slowlog|reset",
            2,
            ADMIN,
            "server",
            "Clears all entries from the slow log.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(SlowlogReset)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        ctx.shared.slowlog.reset();
        Ok(Reply::Ok)
    }
}

super::command::container_help!(
    /// `SLOWLOG HELP`.
    SlowlogHelp,
    "slowlog|help",
    "server",
    SLOWLOG
);

/// `LATENCY LATEST`: `[event, time of the latest, latest ms, max ms]` per event.
#[derive(Debug)]
pub struct LatencyLatest;

impl<'a> Cmd<'a> for LatencyLatest {
    const SPEC: &'static Spec = &Spec {
        since: "2.8.13",
        ..Spec::new(
            "latency|latest",
            2,
            ADMIN,
            "server",
            "Returns the latest latency samples for all events.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(LatencyLatest)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Array(
            ctx.shared
                .latency
                .events()
                .into_iter()
                .filter_map(|(name, e)| {
                    let &(t, ms) = e.samples.back()?;
                    Some(Reply::Array(vec![
                        Reply::bulk(name),
                        Reply::Int(t),
                        Reply::Int(ms as i64),
                        Reply::Int(e.max_ms as i64),
                    ]))
                })
                .collect(),
        ))
    }
}

/// `LATENCY HISTORY event`: `[time, ms]` samples, oldest first.
#[derive(Debug)]
pub struct LatencyHistory<'a> {
    event: &'a [u8],
}

impl<'a> Cmd<'a> for LatencyHistory<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "2.8.13",
        ..Spec::new(
            "latency|history",
            3,
            ADMIN,
            "server",
            "Returns timestamp-latency samples for an event.",
            &[arg("event", "string")],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(LatencyHistory {
            event: c.required(),
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let events = ctx.shared.latency.events();
        let samples = events
            .into_iter()
            .find(|(n, _)| n.as_bytes().eq_ignore_ascii_case(self.event))
            .map(|(_, e)| e.samples)
            .unwrap_or_default();
        Ok(Reply::Array(
            samples
                .into_iter()
                .map(|(t, ms)| Reply::Array(vec![Reply::Int(t), Reply::Int(ms as i64)]))
                .collect(),
        ))
    }
}

/// `LATENCY RESET [event ...]`: how many events were reset.
#[derive(Debug)]
pub struct LatencyReset<'a> {
    events: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for LatencyReset<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "2.8.13",
        ..Spec::new(
            "latency|reset",
            -2,
            ADMIN,
            "server",
            "Resets the latency data for one or more events.",
            &[optional(multiple(arg("event", "string")))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(LatencyReset { events: c.rest() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Int(ctx.shared.latency.reset(&self.events) as i64))
    }
}

/// `LATENCY HISTOGRAM [command ...]`: per command, its calls and the cumulative
/// count of calls at or under each power-of-two number of microseconds.
#[derive(Debug)]
pub struct LatencyHistogram<'a> {
    commands: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for LatencyHistogram<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "7.0.0",
        complexity: "O(N) where N is the number of commands with latency information",
        ..Spec::new(
            "latency|histogram",
            -2,
            ADMIN,
            "server",
            "Returns the cumulative distribution of latencies of commands.",
            &[optional(multiple(arg("command", "string")))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(LatencyHistogram { commands: c.rest() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let ids: Vec<CommandId> = if self.commands.is_empty() {
            CommandId::ALL.to_vec()
        } else {
            let mut ids: Vec<CommandId> = Vec::new();
            for c in &self.commands {
                let found = match lookup_full(c) {
                    Some(super::Described::Command(id)) => vec![id],
                    Some(super::Described::Container(cont)) => cont.subs.clone(),
                    None => Vec::new(),
                };
                for id in found {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
            ids
        };
        let mut out = Vec::new();
        for id in ids {
            let s = ctx.shared.stats.commands.snapshot(id as usize);
            if s.samples() == 0 {
                continue;
            }
            out.push((
                Reply::bulk(id.spec().name),
                Reply::Map(vec![
                    (Reply::bulk("calls"), Reply::Int(s.calls as i64)),
                    (
                        Reply::bulk("histogram_usec"),
                        Reply::Map(power_of_two_buckets(&s.hist)),
                    ),
                ]),
            ));
        }
        Ok(Reply::Map(out))
    }
}

/// Cumulative counts at each power of two microseconds, from the first that holds a
/// sample to the first that holds them all.
fn power_of_two_buckets(hist: &[u64]) -> Vec<(Reply, Reply)> {
    let total: u64 = hist.iter().sum();
    let mut out = Vec::new();
    let mut seen = 0u64;
    let mut i = 0usize;
    let mut usec = 1u64;
    while seen < total && usec < 1 << 40 {
        while i < BUCKETS && bucket_upper(i) <= usec * 1000 {
            seen += hist.get(i).copied().unwrap_or(0);
            i += 1;
        }
        if seen > 0 {
            out.push((Reply::Int(usec as i64), Reply::Int(seen as i64)));
        }
        usec *= 2;
    }
    out
}

super::command::container_help!(
    /// `LATENCY HELP`.
    LatencyHelp,
    "latency|help",
    "server",
    LATENCY
);

/// `MONITOR`: streams every command the server runs to this connection.
#[derive(Debug)]
pub struct Monitor;

impl<'a> Cmd<'a> for Monitor {
    const SPEC: &'static Spec = &Spec::new(
        "monitor",
        1,
        &["admin", "noscript", "loading", "stale", "no_multi"],
        "server",
        "Streams every command the server runs, with its client's address.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Monitor)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let info = ctx.client.info.clone();
        ctx.client.monitor = Some(ctx.shared.monitors.add(info));
        Ok(Reply::Ok)
    }
}

/// Whether `MONITOR` shows a command: Redis leaves out administrative ones.
pub fn monitored(id: CommandId) -> bool {
    !id.spec().has_flag("admin") && id != CommandId::Exec
}
