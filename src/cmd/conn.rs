//! The connection commands: `PING`, `ECHO`, `HELLO`, `AUTH`, `SELECT`, `QUIT`, `RESET`.

use std::borrow::Cow;

use super::client_state::ClientState;
use super::spec::{ArgDoc, Spec, arg, block, optional, token};
use super::{After, Cmd, Ctx, Cursor, parse_int};
use crate::config::password_matches;
use crate::error::{ErrorKind, ReplyError, quote};
use crate::protocol::{Reply, Resp};
use crate::shared::{REDIS_COMPAT_VERSION, Shared};

const NO_AUTH: &[&str] = &["noscript", "loading", "stale", "fast", "no_auth"];

/// `PING [message]`.
#[derive(Debug)]
pub struct Ping<'a> {
    message: Option<&'a [u8]>,
}

impl<'a> Cmd<'a> for Ping<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "ping",
        -1,
        &["fast", "stale"],
        "connection",
        "Returns PONG, or the message.",
        &[optional(arg("message", "string"))],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let message = c.next();
        if c.remaining() > 0 {
            return Err(ReplyError::arity(Self::SPEC.name));
        }
        Ok(Ping { message })
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(match self.message {
            Some(m) => Reply::bulk(m),
            None => Reply::Simple(Cow::Borrowed("PONG")),
        })
    }
}

/// `ECHO message`.
#[derive(Debug)]
pub struct Echo<'a> {
    message: &'a [u8],
}

impl<'a> Cmd<'a> for Echo<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "echo",
        2,
        &["fast"],
        "connection",
        "Returns the given string.",
        &[arg("message", "string")],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Echo {
            message: c.required(),
        })
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::bulk(self.message))
    }
}

/// `HELLO [protover [AUTH username password] [SETNAME clientname]]`.
#[derive(Debug)]
pub struct Hello<'a> {
    protover: Option<i64>,
    auth: Option<(&'a [u8], &'a [u8])>,
    setname: Option<&'a [u8]>,
}

const HELLO_ARGS: &[ArgDoc] = &[
    arg("protover", "integer"),
    block(
        "auth",
        Some("AUTH"),
        &[arg("username", "string"), arg("password", "string")],
    ),
    token("clientname", "SETNAME", "string"),
];

impl<'a> Cmd<'a> for Hello<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "6.0.0",
        ..Spec::new(
            "hello",
            -1,
            NO_AUTH,
            "connection",
            "Handshakes with the server: protocol version, authentication, client name.",
            &[block("arguments", None, HELLO_ARGS)],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let mut hello = Hello {
            protover: None,
            auth: None,
            setname: None,
        };
        let Some(ver) = c.next() else {
            return Ok(hello);
        };
        hello.protover = Some(parse_int(ver).ok_or_else(|| {
            ReplyError::err("Protocol version is not an integer or out of range")
        })?);
        while let Some(opt) = c.next() {
            if opt.eq_ignore_ascii_case(b"AUTH") && c.remaining() >= 2 {
                hello.auth = c.next().zip(c.next());
            } else if opt.eq_ignore_ascii_case(b"SETNAME") && c.remaining() >= 1 {
                hello.setname = c.next();
            } else {
                return Err(ReplyError::err(format!(
                    "Syntax error in HELLO option '{}'",
                    quote(opt, 128)
                )));
            }
        }
        Ok(hello)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let client = &mut *ctx.client;
        let resp = match self.protover {
            None => client.resp,
            Some(2) => Resp::V2,
            Some(3) => Resp::V3,
            Some(_) => {
                return Err(ReplyError::new(
                    ErrorKind::NoProto,
                    "unsupported protocol version",
                ));
            }
        };
        if let Some((user, password)) = self.auth {
            if let Err(e) = check_auth(ctx.shared, Some(user), password) {
                log_auth_failure(ctx.shared, client);
                return Err(e);
            }
            client.authenticated = true;
        }
        if !client.authenticated {
            return Err(ReplyError::new(
                ErrorKind::NoAuth,
                "HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
            ));
        }
        if let Some(name) = self.setname {
            let name = client_name(name)?;
            client.info.update(|n| n.name = name);
        }
        client.set_resp(resp);
        Ok(Reply::Map(vec![
            (Reply::bulk("server"), Reply::bulk("redis")),
            (Reply::bulk("version"), Reply::bulk(REDIS_COMPAT_VERSION)),
            (
                Reply::bulk("proto"),
                Reply::Int(if resp == Resp::V3 { 3 } else { 2 }),
            ),
            (Reply::bulk("id"), Reply::Int(client.info.id as i64)),
            (
                Reply::bulk("mode"),
                Reply::bulk(super::info::redis_mode(ctx.shared)),
            ),
            (Reply::bulk("role"), Reply::bulk("master")),
            (Reply::bulk("modules"), Reply::Array(Vec::new())),
        ]))
    }
}

/// A client name as `CLIENT SETNAME` and `HELLO ... SETNAME` accept it.
pub fn client_name(name: &[u8]) -> Result<String, ReplyError> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(ReplyError::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// `AUTH [username] password`.
#[derive(Debug)]
pub struct Auth<'a> {
    user: Option<&'a [u8]>,
    password: &'a [u8],
}

impl<'a> Cmd<'a> for Auth<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "auth",
        -2,
        NO_AUTH,
        "connection",
        "Authenticates the connection.",
        &[
            optional(arg("username", "string")),
            arg("password", "string"),
        ],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        match (c.next(), c.next(), c.next()) {
            (Some(password), None, None) => Ok(Auth {
                user: None,
                password,
            }),
            (Some(user), Some(password), None) => Ok(Auth {
                user: Some(user),
                password,
            }),
            _ => Err(ReplyError::syntax()),
        }
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        match check_auth(ctx.shared, self.user, self.password) {
            Ok(()) => {
                ctx.client.authenticated = true;
                Ok(Reply::Ok)
            }
            Err(e) => {
                log_auth_failure(ctx.shared, ctx.client);
                Err(e)
            }
        }
    }
}

/// Checks AUTH credentials: `user` may be absent or `default`.
fn check_auth(shared: &Shared, user: Option<&[u8]>, password: &[u8]) -> Result<(), ReplyError> {
    let wrongpass = || {
        ReplyError::new(
            ErrorKind::WrongPass,
            "invalid username-password pair or user is disabled.",
        )
    };
    let user_ok = user.is_none_or(|u| u == b"default");
    match shared.settings.password() {
        None if user.is_none() => Err(ReplyError::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
        // No password: the default user needs none, so any password is accepted.
        None if user_ok => Ok(()),
        None => Err(wrongpass()),
        Some(p) if password_matches(password, p.as_bytes()) && user_ok => Ok(()),
        Some(_) => Err(wrongpass()),
    }
}

/// Counts a failed login (the session slows the connection down) and logs it.
fn log_auth_failure(shared: &Shared, client: &mut ClientState) {
    client.auth_failures = client.auth_failures.saturating_add(1);
    shared
        .stats
        .auth_failures
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // The password itself is never logged.
    if let Some(suppressed) = shared.may_log() {
        tracing::warn!(peer = %client.info.addr, client_id = client.info.id, suppressed, "authentication failed");
    }
}

/// `SELECT index`: database 0 is the only one.
#[derive(Debug)]
pub struct Select {
    db: i64,
}

impl<'a> Cmd<'a> for Select {
    const SPEC: &'static Spec = &Spec::new(
        "select",
        2,
        &["loading", "stale", "fast"],
        "connection",
        "Selects database 0, the only one.",
        &[arg("index", "integer")],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Select { db: c.int()? })
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        if self.db == 0 {
            Ok(Reply::Ok)
        } else {
            Err(ReplyError::err("DB index is out of range"))
        }
    }
}

/// `QUIT`.
#[derive(Debug)]
pub struct Quit;

impl<'a> Cmd<'a> for Quit {
    const SPEC: &'static Spec = &Spec::new(
        "quit",
        -1,
        NO_AUTH,
        "connection",
        "Closes the connection.",
        &[],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        // Redis ignores QUIT's arguments.
        c.rest();
        Ok(Quit)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        ctx.after = After::Close;
        Ok(Reply::Ok)
    }
}

/// `RESET`.
#[derive(Debug)]
pub struct Reset;

impl<'a> Cmd<'a> for Reset {
    const SPEC: &'static Spec = &Spec {
        since: "6.2.0",
        ..Spec::new(
            "reset",
            1,
            NO_AUTH,
            "connection",
            "Resets the connection: RESP2, no name, not authenticated when a password is set.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Reset)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let client = &mut *ctx.client;
        client.multi = None;
        client.watching.clear(&ctx.shared.watches);
        client.set_resp(Resp::V2);
        client.info.update(|n| n.name.clear());
        client.authenticated = !ctx.shared.settings.has_password();
        Ok(Reply::Simple(Cow::Borrowed("RESET")))
    }
}
