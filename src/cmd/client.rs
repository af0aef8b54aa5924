//! `CLIENT SETNAME|GETNAME|ID|SETINFO|INFO|LIST|HELP`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::conn::client_name;
use super::spec::{ArgDoc, Spec, arg, required_token};
use super::{Cmd, CommandId, Ctx, Cursor};
use crate::clients::{ClientInfo, PauseMode};
use crate::error::{ReplyError, quote};
use crate::protocol::Reply;
use crate::shared::Shared;

const SUB: &[&str] = &["noscript", "loading", "stale"];

/// The `CLIENT` container.
pub const CONTAINER: &Spec = &Spec::new(
    "client",
    -2,
    &[],
    "connection",
    "A container for client connection commands.",
    &[],
);

/// `CLIENT SETNAME name`.
#[derive(Debug)]
pub struct SetName<'a> {
    name: &'a [u8],
}

impl<'a> Cmd<'a> for SetName<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "client|setname",
        3,
        SUB,
        "connection",
        "Sets the connection name.",
        &[arg("connection-name", "string")],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let name = c.required();
        client_name(name)?;
        Ok(SetName { name })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let name = String::from_utf8_lossy(self.name).into_owned();
        ctx.client.info.update(|n| n.name = name);
        Ok(Reply::Ok)
    }
}

/// `CLIENT GETNAME`.
#[derive(Debug)]
pub struct GetName;

impl<'a> Cmd<'a> for GetName {
    const SPEC: &'static Spec = &Spec::new(
        "client|getname",
        2,
        SUB,
        "connection",
        "Returns the connection name.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(GetName)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let name = ctx.client.info.names().name;
        Ok(if name.is_empty() {
            Reply::Null
        } else {
            Reply::bulk(name)
        })
    }
}

/// `CLIENT ID`.
#[derive(Debug)]
pub struct Id;

impl<'a> Cmd<'a> for Id {
    const SPEC: &'static Spec = &Spec::new(
        "client|id",
        2,
        SUB,
        "connection",
        "Returns the connection's unique id.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Id)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Int(ctx.client.info.id as i64))
    }
}

/// `CLIENT SETINFO LIB-NAME|LIB-VER value`.
#[derive(Debug)]
pub struct SetInfo<'a> {
    lib_name: bool,
    value: &'a [u8],
}

const SETINFO_ATTRS: &[ArgDoc] = &[
    required_token("libname", "LIB-NAME", "string"),
    required_token("libver", "LIB-VER", "string"),
];

impl<'a> Cmd<'a> for SetInfo<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "7.2.0",
        ..Spec::new(
            "client|setinfo",
            4,
            SUB,
            "connection",
            "Sets information about the client library (lib-name, lib-ver).",
            &[ArgDoc {
                name: "attr",
                kind: "oneof",
                token: None,
                optional: false,
                multiple: false,
                args: SETINFO_ATTRS,
            }],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let attr = c.required();
        let value = c.required();
        let lib_name = if attr.eq_ignore_ascii_case(b"LIB-NAME") {
            true
        } else if attr.eq_ignore_ascii_case(b"LIB-VER") {
            false
        } else {
            return Err(ReplyError::err(format!(
                "Unrecognized option '{}'",
                quote(attr, 128)
            )));
        };
        if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            let what = if lib_name { "lib-name" } else { "lib-ver" };
            return Err(ReplyError::err(format!(
                "{what} cannot contain spaces, newlines or special characters."
            )));
        }
        Ok(SetInfo { lib_name, value })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let value = String::from_utf8_lossy(self.value).into_owned();
        ctx.client.info.update(|n| {
            if self.lib_name {
                n.lib_name = value;
            } else {
                n.lib_ver = value;
            }
        });
        Ok(Reply::Ok)
    }
}

/// `CLIENT INFO`.
#[derive(Debug)]
pub struct Info;

impl<'a> Cmd<'a> for Info {
    const SPEC: &'static Spec = &Spec::new(
        "client|info",
        2,
        SUB,
        "connection",
        "Returns information about this connection.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Info)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Verbatim(client_line(ctx.shared, &ctx.client.info)))
    }
}

/// `CLIENT LIST [TYPE normal] [ID ...]`: the filters are accepted and ignored, every
/// connection is a normal client.
#[derive(Debug)]
pub struct List;

impl<'a> Cmd<'a> for List {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(N) where N is the number of client connections",
        ..Spec::new(
            "client|list",
            -2,
            &["admin", "noscript", "loading", "stale"],
            "connection",
            "Lists open connections.",
            &[],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        c.rest();
        Ok(List)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let mut text = String::new();
        for c in ctx.shared.clients.all() {
            text.push_str(&client_line(ctx.shared, &c));
        }
        Ok(Reply::Verbatim(text))
    }
}

/// `CLIENT HELP`.
#[derive(Debug)]
pub struct Help;

impl<'a> Cmd<'a> for Help {
    const SPEC: &'static Spec = &Spec::new(
        "client|help",
        2,
        &["loading", "stale"],
        "connection",
        "Returns helpful text about the different subcommands.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Help)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(super::command::help(CONTAINER))
    }
}

/// One `CLIENT LIST` / `CLIENT INFO` line, newline included.
pub fn client_line(shared: &Shared, c: &ClientInfo) -> String {
    let names = c.names();
    let age = c.created.elapsed().as_secs();
    let idle_ms = shared
        .uptime_ms()
        .saturating_sub(c.last_active_ms.load(Ordering::Relaxed));
    let cmd = CommandId::ALL
        .get(c.last_cmd.load(Ordering::Relaxed))
        .map_or("NULL", |id| id.spec().name);
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
    ArgDoc {
        name: "new-format",
        kind: "oneof",
        token: None,
        optional: false,
        multiple: true,
        args: &[
            super::spec::token("client-id", "ID", "integer"),
            super::spec::token("ip:port", "ADDR", "string"),
            super::spec::token("ip:port", "LADDR", "string"),
            super::spec::token("username", "USER", "string"),
            super::spec::token("yes/no", "SKIPME", "string"),
            super::spec::token("maxage", "MAXAGE", "integer"),
        ],
    },
];

impl<'a> Cmd<'a> for Kill {
    const SPEC: &'static Spec = &Spec {
        since: "2.4.0",
        complexity: "O(N) where N is the number of client connections",
        ..Spec::new(
            "client|kill",
            -3,
            &["admin", "noscript", "loading", "stale"],
            "connection",
            "Terminates open connections.",
            &[ArgDoc {
                name: "filter",
                kind: "oneof",
                token: None,
                optional: false,
                multiple: false,
                args: KILL_FILTERS,
            }],
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
                super::parse_int(value)
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
                ctx.after = super::After::Close;
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
            &["admin", "noscript", "loading", "stale"],
            "connection",
            "Suspends commands processing (all, or those that change the window).",
            &[
                arg("timeout", "integer"),
                super::spec::one_of("mode", PAUSE_MODES),
            ],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let millis = super::parse_int(c.required())
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
            &["admin", "noscript", "loading", "stale"],
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
            &[ArgDoc {
                optional: false,
                ..super::spec::one_of("action", REPLY_MODES)
            }],
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
            &["admin", "noscript", "loading", "stale"],
            "connection",
            "Sets the client eviction mode (accepted: nothing is evicted here).",
            &[ArgDoc {
                optional: false,
                ..super::spec::one_of("enabled", ON_OFF)
            }],
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
            &[ArgDoc {
                optional: false,
                ..super::spec::one_of("enabled", ON_OFF)
            }],
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
