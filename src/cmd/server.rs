//! The server commands: `TIME`, `DBSIZE`, `FLUSHALL`, `FLUSHDB`, `SAVE`, `SHUTDOWN`.

use super::spec::{ArgDoc, Spec, arg, one_of};
use super::{After, Cmd, Ctx, Cursor};
use crate::error::ReplyError;
use crate::protocol::Reply;

/// `TIME`.
#[derive(Debug)]
pub struct Time;

impl<'a> Cmd<'a> for Time {
    const SPEC: &'static Spec = &Spec::new(
        "time",
        1,
        &["loading", "stale", "fast"],
        "server",
        "Returns the server time (seconds and microseconds).",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Time)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Ok(Reply::Array(vec![
            Reply::bulk(now.as_secs().to_string()),
            Reply::bulk(now.subsec_micros().to_string()),
        ]))
    }
}

/// `DBSIZE`: users + event types + (user, type) pairs in the window.
#[derive(Debug)]
pub struct DbSize;

impl<'a> Cmd<'a> for DbSize {
    const SPEC: &'static Spec = &Spec::new(
        "dbsize",
        1,
        &["readonly", "fast"],
        "server",
        "Returns the number of active keys: users, event types and (user, type) pairs.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(DbSize)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let s = ctx.shared.store.stats(ctx.shared.clock.now());
        Ok(Reply::Int(
            (s.active_users + s.active_event_types + s.active_user_event_types) as i64,
        ))
    }
}

const FLUSH_TYPE: &[ArgDoc] = &[arg("async", "pure-token"), arg("sync", "pure-token")];
const FLUSH_ARGS: &[ArgDoc] = &[one_of("flush-type", FLUSH_TYPE)];

/// `[ASYNC|SYNC]`, accepted and ignored: emptying the window is immediate.
fn flush_mode(c: &mut Cursor<'_>) -> Result<(), ReplyError> {
    if c.eat("ASYNC") || c.eat("SYNC") || c.remaining() == 0 {
        Ok(())
    } else {
        Err(ReplyError::syntax())
    }
}

const fn flush_spec(name: &'static str) -> Spec {
    Spec::new(
        name,
        -1,
        &["write"],
        "server",
        "Empties the window.",
        FLUSH_ARGS,
    )
}

/// `FLUSHALL [ASYNC|SYNC]`.
#[derive(Debug)]
pub struct FlushAll;

impl<'a> Cmd<'a> for FlushAll {
    const SPEC: &'static Spec = &flush_spec("flushall");

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        flush_mode(c)?;
        Ok(FlushAll)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        // The log empties with the window (src/persist).
        crate::persist::flush_all(ctx.shared).map_err(ReplyError::err)?;
        ctx.shared.watches.touch_all();
        Ok(Reply::Ok)
    }
}

/// `FLUSHDB [ASYNC|SYNC]`: the same as FLUSHALL, database 0 being the only one.
#[derive(Debug)]
pub struct FlushDb;

impl<'a> Cmd<'a> for FlushDb {
    const SPEC: &'static Spec = &flush_spec("flushdb");

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        flush_mode(c)?;
        Ok(FlushDb)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        FlushAll.run(ctx)
    }
}

/// `SAVE`: writes the window to the snapshot file now.
#[derive(Debug)]
pub struct Save;

impl<'a> Cmd<'a> for Save {
    const SPEC: &'static Spec = &Spec::new(
        "save",
        1,
        &["admin", "noscript"],
        "server",
        "Writes the window to the snapshot file.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Save)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        // With the log on, the segments before the snapshot go (src/persist).
        crate::persist::save(ctx.shared)
            .map(|()| Reply::Ok)
            .map_err(ReplyError::err)
    }
}

/// `SHUTDOWN [NOSAVE|SAVE] [NOW] [FORCE]`.
#[derive(Debug)]
pub struct Shutdown {
    save: Option<bool>,
}

const SAVE_SELECTOR: &[ArgDoc] = &[arg("nosave", "pure-token"), arg("save", "pure-token")];

impl<'a> Cmd<'a> for Shutdown {
    const SPEC: &'static Spec = &Spec::new(
        "shutdown",
        -1,
        &[
            "admin",
            "noscript",
            "loading",
            "stale",
            "no_multi",
            "allow_busy",
        ],
        "server",
        "Stops the server after finishing the commands already read.",
        &[one_of("save-selector", SAVE_SELECTOR)],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let mut save = None;
        while c.remaining() > 0 {
            if c.eat("NOSAVE") {
                save = Some(false);
            } else if c.eat("SAVE") {
                save = Some(true);
            } else if c.eat("NOW") || c.eat("FORCE") {
                // Accepted for compatibility: stopping is always immediate here.
            } else {
                return Err(ReplyError::syntax());
            }
        }
        Ok(Shutdown { save })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        if self.save == Some(false) {
            ctx.shared.snapshot.skip_at_shutdown();
        }
        ctx.after = After::Shutdown;
        Ok(Reply::Ok)
    }
}
