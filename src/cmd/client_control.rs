//! `CLIENT KILL|PAUSE|UNPAUSE|REPLY|NO-EVICT|NO-TOUCH`: one client acting on others,
//! or on how it is answered.

use std::time::{Duration, Instant};

use super::spec::{ArgDoc, Spec, arg, multiple, one_of, required, token};
use super::{After, Cmd, Ctx, Cursor, parse_int};
use crate::clients::{ClientInfo, PauseMode};
use crate::error::{ReplyError, quote};
use crate::protocol::Reply;

const SUB: &[&str] = &["noscript", "loading", "stale"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

/// One filter of `CLIENT KILL`.
#[derive(Debug)]
enum KillFilter {
    Id(u64),
    Addr(String),
    Laddr(String),
    User(String),
    MaxAge(u64),
}

/// `CLIENT KILL ip:port` (old form: `+OK` or an error) or `CLIENT KILL <filter>
/// <value> ...` (how many were closed); `SKIPME yes` (the default of the new form)
/// spares the caller.
#[derive(Debug)]
pub struct Kill {
    old_form: bool,
    filters: Vec<KillFilter>,
    skip_me: bool,
}

const KILL_FILTERS: &[ArgDoc] = &[
    arg("ip:port", "string"),
    multiple(required(one_of(
        "new-format",
        &[
            token("client-id", "ID", "integer"),
            token("ip:port", "ADDR", "string"),
            token("ip:port", "LADDR", "string"),
            token("username", "USER", "string"),
            token("yes/no", "SKIPME", "string"),
            token("maxage", "MAXAGE", "integer"),
        ],
    ))),
];

impl<'a> Cmd<'a> for Kill {
    const SPEC: &'static Spec = &Spec {
        since: "2.4.0",
        complexity: "O(N) where N is the number of client connections",
        ..Spec::new(
            "client|kill",
            -3,
            ADMIN,
            "connection",
            "Terminates open connections.",
            &[required(one_of("filter", KILL_FILTERS))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        if c.remaining() == 1 {
            let addr = String::from_utf8_lossy(c.required()).into_owned();
            return Ok(Kill {
                old_form: true,
                filters: vec![KillFilter::Addr(addr)],
                skip_me: false,
            });
        }
        let mut kill = Kill {
            old_form: false,
            filters: Vec::new(),
            skip_me: true,
        };
        while c.remaining() > 0 {
            let word = c.required();
            let value = c.next().ok_or_else(ReplyError::syntax)?;
            let text = || String::from_utf8_lossy(value).into_owned();
            let number = || {
                parse_int(value)
                    .and_then(|v| u64::try_from(v).ok())
                    .ok_or_else(|| ReplyError::err("client-id should be greater than 0"))
            };
            let filter = match word.to_ascii_uppercase().as_slice() {
                b"ID" => KillFilter::Id(number()?),
                b"ADDR" => KillFilter::Addr(text()),
                b"LADDR" => KillFilter::Laddr(text()),
                b"USER" => KillFilter::User(text()),
                b"MAXAGE" => KillFilter::MaxAge(number()?),
                b"TYPE" if value.eq_ignore_ascii_case(b"normal") => continue,
                b"TYPE" => {
                    return Err(ReplyError::err(format!(
                        "Unknown client type '{}'",
                        quote(value, 64)
                    )));
                }
                b"SKIPME" if value.eq_ignore_ascii_case(b"yes") => {
                    kill.skip_me = true;
                    continue;
                }
                b"SKIPME" if value.eq_ignore_ascii_case(b"no") => {
                    kill.skip_me = false;
                    continue;
                }
                _ => return Err(ReplyError::syntax()),
            };
            kill.filters.push(filter);
        }
        Ok(kill)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let me = ctx.client.info.id;
        let matches = |c: &ClientInfo| {
            self.filters.iter().all(|f| match f {
                KillFilter::Id(id) => c.id == *id,
                KillFilter::Addr(a) => c.addr.to_string() == *a,
                KillFilter::Laddr(a) => c.laddr.to_string() == *a,
                KillFilter::User(u) => u == "default",
                KillFilter::MaxAge(secs) => c.created.elapsed().as_secs() >= *secs,
            })
        };
        let mut killed = 0;
        for c in ctx.shared.clients.all() {
            if (self.skip_me && c.id == me) || !matches(&c) {
                continue;
            }
            if c.id == me {
                // Closing the caller itself: once this reply is written.
                ctx.after = After::Close;
            } else {
                c.kill();
            }
            killed += 1;
        }
        if self.old_form {
            return if killed > 0 {
                Ok(Reply::Ok)
            } else {
                Err(ReplyError::err("No such client"))
            };
        }
        Ok(Reply::Int(killed))
    }
}

/// `CLIENT PAUSE timeout [WRITE|ALL]`.
#[derive(Debug)]
pub struct Pause {
    millis: u64,
    mode: PauseMode,
}

const PAUSE_MODES: &[ArgDoc] = &[arg("write", "pure-token"), arg("all", "pure-token")];

impl<'a> Cmd<'a> for Pause {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        ..Spec::new(
            "client|pause",
            -3,
            ADMIN,
            "connection",
            "Suspends commands processing (all, or those that change the window).",
            &[arg("timeout", "integer"), one_of("mode", PAUSE_MODES)],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let millis = parse_int(c.required())
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| ReplyError::err("timeout is not an integer or out of range"))?;
        let mode = if c.eat("WRITE") {
            PauseMode::Write
        } else {
            let _ = c.eat("ALL");
            PauseMode::All
        };
        Ok(Pause { millis, mode })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let until = Instant::now() + Duration::from_millis(self.millis);
        ctx.shared.pause.pause(until, self.mode);
        Ok(Reply::Ok)
    }
}

/// `CLIENT UNPAUSE`; it is never held back itself.
#[derive(Debug)]
pub struct Unpause;

impl<'a> Cmd<'a> for Unpause {
    const SPEC: &'static Spec = &Spec {
        since: "6.2.0",
        ..Spec::new(
            "client|unpause",
            2,
            ADMIN,
            "connection",
            "Resumes processing of clients that were paused.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Unpause)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        ctx.shared.pause.unpause();
        Ok(Reply::Ok)
    }
}

/// What `CLIENT REPLY` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyMode {
    #[default]
    On,
    Off,
    /// The reply of the `CLIENT REPLY SKIP` itself, then of the next command.
    Skip,
}

/// `CLIENT REPLY ON|OFF|SKIP`.
#[derive(Debug)]
pub struct ReplySwitch {
    mode: ReplyMode,
}

const REPLY_MODES: &[ArgDoc] = &[
    arg("on", "pure-token"),
    arg("off", "pure-token"),
    arg("skip", "pure-token"),
];

impl<'a> Cmd<'a> for ReplySwitch {
    const SPEC: &'static Spec = &Spec {
        since: "3.2.0",
        ..Spec::new(
            "client|reply",
            3,
            SUB,
            "connection",
            "Instructs the server whether to reply to commands.",
            &[required(one_of("action", REPLY_MODES))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let mode = if c.eat("ON") {
            ReplyMode::On
        } else if c.eat("OFF") {
            ReplyMode::Off
        } else if c.eat("SKIP") {
            ReplyMode::Skip
        } else {
            return Err(ReplyError::syntax());
        };
        Ok(ReplySwitch { mode })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        ctx.client.reply_mode = self.mode;
        Ok(Reply::Ok)
    }
}

const ON_OFF: &[ArgDoc] = &[arg("on", "pure-token"), arg("off", "pure-token")];

fn on_off(c: &mut Cursor<'_>) -> Result<(), ReplyError> {
    if c.eat("ON") || c.eat("OFF") {
        Ok(())
    } else {
        Err(ReplyError::syntax())
    }
}

/// `CLIENT NO-EVICT ON|OFF`.
#[derive(Debug)]
pub struct NoEvict;

impl<'a> Cmd<'a> for NoEvict {
    const SPEC: &'static Spec = &Spec {
        since: "7.0.0",
        ..Spec::new(
            "client|no-evict",
            3,
            ADMIN,
            "connection",
            "Sets the client eviction mode (accepted: nothing is evicted here).",
            &[required(one_of("enabled", ON_OFF))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        on_off(c)?;
        Ok(NoEvict)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Ok)
    }
}

/// `CLIENT NO-TOUCH ON|OFF`.
#[derive(Debug)]
pub struct NoTouch;

impl<'a> Cmd<'a> for NoTouch {
    const SPEC: &'static Spec = &Spec {
        since: "7.2.0",
        ..Spec::new(
            "client|no-touch",
            3,
            SUB,
            "connection",
            "Controls whether commands touch keys' access times (accepted: none are kept).",
            &[required(one_of("enabled", ON_OFF))],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        on_off(c)?;
        Ok(NoTouch)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Ok)
    }
}
