//! A command's time and outcome, recorded where operators read them: INFO's
//! per-command figures (`commandstats`, `latencystats`), the slow log and the
//! latency monitor.

use std::time::Duration;

use super::{CommandId, Ctx};
use crate::clients::ClientInfo;
use crate::error::ReplyError;
use crate::protocol::{Args, Reply};
use crate::shared::Shared;
use crate::stats::Stopwatch;

/// Runs `cmd` (whose arguments are `args`), recording its time and outcome in the
/// per-command statistics, the slow log and the latency monitor.
#[inline]
pub fn run_timed(
    ctx: &mut Ctx<'_>,
    cmd: super::Command<'_>,
    args: Args<'_>,
    started: Stopwatch,
) -> Result<Reply, ReplyError> {
    let id = cmd.id();
    let reply = cmd.run(ctx);
    if ctx.later.is_none() {
        record(
            ctx.shared,
            id,
            started.elapsed(),
            &reply,
            args,
            &ctx.client.info,
        );
    }
    reply
}

/// Records a command's time and outcome in the per-command statistics, the slow log
/// and the latency monitor.
#[inline]
pub fn record(
    shared: &Shared,
    id: CommandId,
    took: Duration,
    reply: &Result<Reply, ReplyError>,
    args: Args<'_>,
    client: &ClientInfo,
) {
    let failed = u64::from(matches!(reply, Err(_) | Ok(Reply::Error(_))));
    shared.stats.commands.record(id as usize, 1, took, failed);
    if shared.slowlog.is_slow(took) && !id.spec().has_flag("skip_slowlog") {
        shared.slowlog.record(args, took, client);
    }
    // The event's name is looked up only for the rare slow command.
    if shared.latency.watches(took) {
        shared.latency.observe(latency_event(id), took);
    }
}

/// The latency monitor's event for command `id`, as Redis names them.
fn latency_event(id: CommandId) -> &'static str {
    if id.spec().has_flag("fast") {
        "fast-command"
    } else {
        "command"
    }
}

/// Counts a batch's replies (from `first` on) in INFO's per-command figures and
/// the latency monitor.
#[inline]
pub fn record_batch(shared: &Shared, done: &[Reply], started: Stopwatch, id: CommandId) {
    let took = started.elapsed();
    let failed = done.iter().filter(|r| matches!(r, Reply::Error(_))).count();
    let calls = done.len() as u64;
    shared
        .stats
        .commands
        .record(id as usize, calls, took, failed as u64);
    // Each event of the batch took its share of the time.
    let each = took / u32::try_from(calls.max(1)).unwrap_or(u32::MAX);
    if shared.latency.watches(each) {
        shared.latency.observe(latency_event(id), each);
    }
}
