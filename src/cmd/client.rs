//! `CLIENT SETNAME|GETNAME|ID|SETINFO|INFO|LIST|HELP`.

use std::sync::atomic::Ordering;

use super::conn::client_name;
use super::spec::{ArgDoc, Spec, arg, one_of, required, required_token};
use super::{Cmd, CommandId, Ctx, Cursor};
use crate::clients::ClientInfo;
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
            &[required(one_of("attr", SETINFO_ATTRS))],
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

super::command::container_help!(
    /// `CLIENT HELP`.
    Help,
    "client|help",
    "connection",
    CONTAINER
);

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
