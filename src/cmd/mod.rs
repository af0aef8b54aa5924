//! Typed commands: the argument list of a request becomes one [`Command`] value, or a
//! [`CmdError`] whose text is the `-ERR` reply Redis would give.
//!
//! Names, arities and documentation live in [`table`]; each command's arguments are
//! parsed here with a cursor that rejects anything left over.

pub mod docs;
pub mod table;

use std::borrow::Cow;

use crate::protocol::Args;
use table::Spec;

/// A request, parsed. Byte slices borrow the connection's read buffer.
#[derive(Debug, Clone, PartialEq)]
pub enum Command<'a> {
    EvtAdd {
        json: &'a [u8],
    },
    EvtMadd {
        events: Vec<&'a [u8]>,
    },
    EvtTotal {
        span: Option<u32>,
    },
    EvtUser {
        user: &'a [u8],
        span: Option<u32>,
    },
    EvtType {
        event_type: &'a [u8],
        span: Option<u32>,
    },
    EvtSum {
        user: &'a [u8],
        event_type: &'a [u8],
        span: Option<u32>,
    },
    EvtClock(ClockOp),
    Ping {
        message: Option<&'a [u8]>,
    },
    Echo {
        message: &'a [u8],
    },
    Hello(Hello<'a>),
    Auth {
        user: Option<&'a [u8]>,
        password: &'a [u8],
    },
    Select {
        db: i64,
    },
    Quit,
    Reset,
    ClientSetName {
        name: &'a [u8],
    },
    ClientGetName,
    ClientId,
    ClientSetInfo {
        attr: ClientAttr,
        value: &'a [u8],
    },
    ClientInfo,
    ClientList,
    CommandAll,
    CommandCount,
    CommandDocs {
        names: Vec<&'a [u8]>,
    },
    CommandInfo {
        names: Vec<&'a [u8]>,
    },
    CommandList,
    ConfigGet {
        patterns: Vec<&'a [u8]>,
    },
    ConfigSet {
        pairs: Vec<(&'a [u8], &'a [u8])>,
    },
    ConfigResetStat,
    Info {
        sections: Vec<&'a [u8]>,
    },
    Time,
    DbSize,
    Flush,
    Save,
    Shutdown {
        save: Option<bool>,
    },
    Help {
        command: &'static str,
    },
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Hello<'a> {
    pub protover: Option<i64>,
    pub auth: Option<(&'a [u8], &'a [u8])>,
    pub setname: Option<&'a [u8]>,
}

/// What `EVT.CLOCK` was asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockOp {
    Get,
    Set(i64),
    Advance(i64),
}

/// `CLIENT SETINFO` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAttr {
    LibName,
    LibVer,
}

/// A command that cannot run; the connection replies and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CmdError {
    Unknown { name: String, args: String },
    Arity(&'static str),
    UnknownSubcommand { sub: String, command: &'static str },
    Syntax,
    NotInteger,
    Window { max: u32 },
    Other(Cow<'static, str>),
}

impl CmdError {
    /// The reply text, error code first.
    pub fn text(&self) -> Cow<'static, str> {
        match self {
            CmdError::Unknown { name, args } => Cow::Owned(format!(
                "ERR unknown command '{name}', with args beginning with: {args}"
            )),
            CmdError::Arity(name) => Cow::Owned(format!(
                "ERR wrong number of arguments for '{name}' command"
            )),
            CmdError::UnknownSubcommand { sub, command } => Cow::Owned(format!(
                "ERR unknown subcommand '{sub}'. Try {} HELP.",
                command.to_ascii_uppercase()
            )),
            CmdError::Syntax => Cow::Borrowed("ERR syntax error"),
            CmdError::NotInteger => Cow::Borrowed("ERR value is not an integer or out of range"),
            CmdError::Window { max } => {
                Cow::Owned(format!("ERR WINDOW must be an integer from 1 to {max}"))
            }
            CmdError::Other(text) => text.clone(),
        }
    }
}

/// Text of a client-supplied argument for an error message: at most `max` bytes,
/// lossy UTF-8, no CR/LF (a simple error must stay on one line).
pub fn quote(arg: &[u8], max: usize) -> String {
    let cut = &arg[..arg.len().min(max)];
    String::from_utf8_lossy(cut)
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect()
}

/// A cursor over a command's arguments.
struct Cursor<'a> {
    args: Args<'a>,
    next: usize,
}

impl<'a> Cursor<'a> {
    fn new(args: Args<'a>, skip: usize) -> Self {
        Cursor { args, next: skip }
    }

    fn next(&mut self) -> Option<&'a [u8]> {
        let arg = self.args.get(self.next)?;
        self.next += 1;
        Some(arg)
    }

    fn rest(&mut self) -> Vec<&'a [u8]> {
        let mut out = Vec::with_capacity(self.args.len().saturating_sub(self.next));
        while let Some(a) = self.next() {
            out.push(a);
        }
        out
    }

    fn remaining(&self) -> usize {
        self.args.len().saturating_sub(self.next)
    }

    fn finish(&self) -> Result<(), CmdError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(CmdError::Syntax)
        }
    }

    /// An optional trailing `WINDOW <s>`, then the end.
    fn window(&mut self, max: u32) -> Result<Option<u32>, CmdError> {
        let Some(word) = self.next() else {
            return Ok(None);
        };
        if !word.eq_ignore_ascii_case(b"WINDOW") {
            return Err(CmdError::Syntax);
        }
        let span = self.next().ok_or(CmdError::Syntax)?;
        self.finish()?;
        match parse_int(span) {
            Some(s) if s >= 1 && s <= i64::from(max) => Ok(Some(s as u32)),
            _ => Err(CmdError::Window { max }),
        }
    }
}

/// A decimal integer as Redis reads one (`string2ll`).
pub fn parse_int(arg: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(arg).ok()?;
    if s.is_empty()
        || s.starts_with('+')
        || (s.len() > 1 && (s.starts_with('0') || s.starts_with("-0")))
    {
        return None;
    }
    s.parse().ok()
}

fn int(arg: Option<&[u8]>) -> Result<i64, CmdError> {
    arg.and_then(parse_int).ok_or(CmdError::NotInteger)
}

/// Parses a request. `window` bounds `WINDOW <s>`.
pub fn parse<'a>(args: Args<'a>, window: u32) -> Result<Command<'a>, CmdError> {
    let name = args.get(0).unwrap_or_default();
    let Some(spec) = table::lookup(name) else {
        return Err(unknown(args));
    };
    if !spec.arity_ok(args.len()) {
        return Err(CmdError::Arity(spec.name));
    }
    if !spec.subcommands.is_empty() {
        return parse_container(spec, args);
    }
    let mut c = Cursor::new(args, 1);
    let cmd = match spec.name {
        "evt.add" => Command::EvtAdd {
            json: c.next().unwrap_or_default(),
        },
        "evt.madd" => Command::EvtMadd { events: c.rest() },
        "evt.total" => Command::EvtTotal {
            span: c.window(window)?,
        },
        "evt.user" => Command::EvtUser {
            user: c.next().unwrap_or_default(),
            span: c.window(window)?,
        },
        "evt.type" => Command::EvtType {
            event_type: c.next().unwrap_or_default(),
            span: c.window(window)?,
        },
        "evt.sum" => Command::EvtSum {
            user: c.next().unwrap_or_default(),
            event_type: c.next().unwrap_or_default(),
            span: c.window(window)?,
        },
        "evt.clock" => Command::EvtClock(match c.next() {
            None => ClockOp::Get,
            Some(op) if op.eq_ignore_ascii_case(b"SET") => {
                let to = int(c.next())?;
                c.finish()?;
                ClockOp::Set(to)
            }
            Some(op) if op.eq_ignore_ascii_case(b"ADVANCE") => {
                let by = int(c.next())?;
                c.finish()?;
                ClockOp::Advance(by)
            }
            Some(_) => return Err(CmdError::Syntax),
        }),
        "ping" => {
            let message = c.next();
            if c.remaining() > 0 {
                return Err(CmdError::Arity(spec.name));
            }
            Command::Ping { message }
        }
        "echo" => Command::Echo {
            message: c.next().unwrap_or_default(),
        },
        "hello" => Command::Hello(parse_hello(&mut c)?),
        "auth" => match (c.next(), c.next(), c.next()) {
            (Some(password), None, None) => Command::Auth {
                user: None,
                password,
            },
            (Some(user), Some(password), None) => Command::Auth {
                user: Some(user),
                password,
            },
            _ => return Err(CmdError::Syntax),
        },
        "select" => Command::Select { db: int(c.next())? },
        "quit" => Command::Quit,
        "reset" => Command::Reset,
        "info" => Command::Info { sections: c.rest() },
        "time" => Command::Time,
        "dbsize" => Command::DbSize,
        "flushall" | "flushdb" => {
            match c.next() {
                None => {}
                Some(m) if m.eq_ignore_ascii_case(b"ASYNC") || m.eq_ignore_ascii_case(b"SYNC") => {}
                Some(_) => return Err(CmdError::Syntax),
            }
            c.finish()?;
            Command::Flush
        }
        "save" => Command::Save,
        "shutdown" => {
            let mut save = None;
            while let Some(word) = c.next() {
                if word.eq_ignore_ascii_case(b"NOSAVE") {
                    save = Some(false);
                } else if word.eq_ignore_ascii_case(b"SAVE") {
                    save = Some(true);
                } else if word.eq_ignore_ascii_case(b"NOW") || word.eq_ignore_ascii_case(b"FORCE") {
                    // Accepted for compatibility: stopping is always immediate here.
                } else {
                    return Err(CmdError::Syntax);
                }
            }
            Command::Shutdown { save }
        }
        _ => return Err(unknown(args)),
    };
    Ok(cmd)
}

fn parse_hello<'a>(c: &mut Cursor<'a>) -> Result<Hello<'a>, CmdError> {
    let mut hello = Hello {
        protover: None,
        auth: None,
        setname: None,
    };
    let Some(ver) = c.next() else {
        return Ok(hello);
    };
    hello.protover = Some(parse_int(ver).ok_or(CmdError::Other(Cow::Borrowed(
        "ERR Protocol version is not an integer or out of range",
    )))?);
    while let Some(opt) = c.next() {
        if opt.eq_ignore_ascii_case(b"AUTH") && c.remaining() >= 2 {
            hello.auth = c.next().zip(c.next());
        } else if opt.eq_ignore_ascii_case(b"SETNAME") && c.remaining() >= 1 {
            hello.setname = c.next();
        } else {
            return Err(CmdError::Other(Cow::Owned(format!(
                "ERR Syntax error in HELLO option '{}'",
                quote(opt, 128)
            ))));
        }
    }
    Ok(hello)
}

fn parse_container<'a>(spec: &'static Spec, args: Args<'a>) -> Result<Command<'a>, CmdError> {
    let Some(subname) = args.get(1) else {
        if spec.name == "command" {
            return Ok(Command::CommandAll);
        }
        return Err(CmdError::Arity(spec.name));
    };
    let Some(sub) = spec.subcommand(subname) else {
        return Err(CmdError::UnknownSubcommand {
            sub: quote(subname, 128),
            command: spec.name,
        });
    };
    // Redis counts the container's name in a subcommand's arity (`config|get` is -3).
    if !sub.arity_ok(args.len()) {
        return Err(CmdError::Arity(sub.name));
    }
    let mut c = Cursor::new(args, 2);
    let cmd = match sub.name {
        "client|setname" => {
            let name = c.next().unwrap_or_default();
            if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return Err(CmdError::Other(Cow::Borrowed(
                    "ERR Client names cannot contain spaces, newlines or special characters.",
                )));
            }
            Command::ClientSetName { name }
        }
        "client|getname" => Command::ClientGetName,
        "client|id" => Command::ClientId,
        "client|setinfo" => {
            let attr = c.next().unwrap_or_default();
            let value = c.next().unwrap_or_default();
            let attr = if attr.eq_ignore_ascii_case(b"LIB-NAME") {
                ClientAttr::LibName
            } else if attr.eq_ignore_ascii_case(b"LIB-VER") {
                ClientAttr::LibVer
            } else {
                return Err(CmdError::Other(Cow::Owned(format!(
                    "ERR Unrecognized option '{}'",
                    quote(attr, 128)
                ))));
            };
            if value.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
                return Err(CmdError::Other(Cow::Owned(format!(
                    "ERR {} cannot contain spaces, newlines or special characters.",
                    if attr == ClientAttr::LibName {
                        "lib-name"
                    } else {
                        "lib-ver"
                    }
                ))));
            }
            Command::ClientSetInfo { attr, value }
        }
        "client|info" => Command::ClientInfo,
        "client|list" => {
            // `TYPE normal` and `ID ...` filters are accepted and ignored: every
            // connection is a normal client.
            Command::ClientList
        }
        "command|count" => Command::CommandCount,
        "command|docs" => Command::CommandDocs { names: c.rest() },
        "command|info" => Command::CommandInfo { names: c.rest() },
        "command|list" => Command::CommandList,
        "config|get" => Command::ConfigGet { patterns: c.rest() },
        "config|set" => {
            let rest = c.rest();
            if !rest.len().is_multiple_of(2) {
                return Err(CmdError::Arity(sub.name));
            }
            Command::ConfigSet {
                pairs: rest
                    .chunks_exact(2)
                    .filter_map(|p| Some((*p.first()?, *p.get(1)?)))
                    .collect(),
            }
        }
        "config|resetstat" => Command::ConfigResetStat,
        "client|help" => Command::Help { command: "client" },
        "command|help" => Command::Help { command: "command" },
        "config|help" => Command::Help { command: "config" },
        _ => {
            return Err(CmdError::UnknownSubcommand {
                sub: quote(subname, 128),
                command: spec.name,
            });
        }
    };
    Ok(cmd)
}

/// Redis's unknown-command error: the name, then the first arguments, each quoted and
/// followed by a space, while the list is under 128 bytes.
fn unknown(args: Args<'_>) -> CmdError {
    let name = quote(args.get(0).unwrap_or_default(), 128);
    let mut list = String::new();
    for arg in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push('\'');
        list.push_str(&quote(arg, room));
        list.push_str("' ");
    }
    CmdError::Unknown { name, args: list }
}
