//! `COMMAND`, `COMMAND INFO|DOCS|COUNT|LIST|HELP`: the command table rendered in
//! Redis 7's reply shapes, so redis-cli's hints and client libraries' command
//! introspection work.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::spec::{ArgDoc, Spec, arg, multiple, optional};
use super::{Cmd, CommandId, Ctx, Cursor, Described, lookup, lookup_full, table};
use crate::config::Settings;
use crate::error::ReplyError;
use crate::protocol::{Reply, Resp};

const SUB: &[&str] = &["loading", "stale"];

/// The `COMMAND` container.
pub const CONTAINER: &Spec = &Spec {
    complexity: "O(N) where N is the total number of commands",
    ..Spec::new(
        "command",
        -1,
        SUB,
        "server",
        "Returns detailed information about all commands.",
        &[],
    )
};

/// `COMMAND`: every command's `COMMAND INFO` entry.
#[derive(Debug)]
pub struct All;

impl<'a> Cmd<'a> for All {
    const SPEC: &'static Spec = CONTAINER;

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(All)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(all_info())
    }
}

/// Every command's `COMMAND INFO` entry.
fn all_info() -> Reply {
    Reply::Array(table().iter().map(|e| info(Described::from(e))).collect())
}

/// `COMMAND COUNT`.
#[derive(Debug)]
pub struct Count;

impl<'a> Cmd<'a> for Count {
    const SPEC: &'static Spec = &Spec::new(
        "command|count",
        2,
        SUB,
        "server",
        "Returns a count of commands.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Count)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Int(table().len() as i64))
    }
}

/// `COMMAND DOCS [name ...]`: unknown names are left out.
#[derive(Debug)]
pub struct Docs<'a> {
    names: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for Docs<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "command|docs",
        -2,
        SUB,
        "server",
        "Returns documentary information about one, multiple or all commands.",
        &[optional(multiple(arg("command-name", "string")))],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Docs { names: c.rest() })
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let described: Vec<Described> = if self.names.is_empty() {
            table().iter().map(Described::from).collect()
        } else {
            // A map has each command once however often it is named: 200,000 copies
            // of `client` cost 12 s and 3.4 GB before.
            let mut seen = std::collections::HashSet::new();
            self.names
                .iter()
                .filter_map(|n| lookup_full(n))
                .filter(|d| seen.insert(std::ptr::from_ref(d.spec())))
                .collect()
        };
        Ok(Reply::Map(
            described
                .into_iter()
                .map(|d| (text(d.spec().name), doc(d)))
                .collect(),
        ))
    }
}

/// `COMMAND INFO [name ...]`: unknown names give a null entry.
#[derive(Debug)]
pub struct Info<'a> {
    names: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for Info<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "command|info",
        -2,
        SUB,
        "server",
        "Returns information about one, multiple or all commands.",
        &[optional(multiple(arg("command-name", "string")))],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Info { names: c.rest() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        if self.names.is_empty() {
            return Ok(all_info());
        }
        // One entry per name asked, as Redis: refuse before building a reply that
        // could not be sent anyway.
        let output = Settings::size(&ctx.shared.settings.client_output_buffer_limit);
        let most = output / 2 / largest_info_entry();
        if self.names.len() > most {
            return Err(ReplyError::err(format!(
                "COMMAND INFO takes at most {most} names here (its reply must fit in half \
                 of client-output-buffer-limit)"
            )));
        }
        Ok(Reply::Array(
            self.names
                .iter()
                .map(|n| lookup_full(n).map_or(Reply::Null, info))
                .collect(),
        ))
    }
}

/// `COMMAND LIST`.
#[derive(Debug)]
pub struct List;

impl<'a> Cmd<'a> for List {
    const SPEC: &'static Spec = &Spec::new(
        "command|list",
        -2,
        SUB,
        "server",
        "Returns a list of command names.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(List)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Array(
            table().iter().map(|e| text(e.spec().name)).collect(),
        ))
    }
}

/// `COMMAND HELP`.
#[derive(Debug)]
pub struct Help;

impl<'a> Cmd<'a> for Help {
    const SPEC: &'static Spec = &Spec::new(
        "command|help",
        2,
        SUB,
        "server",
        "Returns helpful text about the different subcommands.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Help)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(help(CONTAINER))
    }
}

fn text(s: &str) -> Reply {
    Reply::bulk(s.as_bytes())
}

fn status(s: &'static str) -> Reply {
    Reply::Simple(Cow::Borrowed(s))
}

/// ACL categories, derived from the flags the way Redis derives the implicit ones.
fn acl_categories(spec: &Spec) -> Vec<Reply> {
    let mut cats = Vec::new();
    if spec.group == "module" {
        cats.push(status("@analytics"));
    }
    for flag in spec.flags {
        match *flag {
            "write" => cats.push(status("@write")),
            "readonly" => cats.push(status("@read")),
            "fast" => cats.push(status("@fast")),
            "admin" => cats.extend([status("@admin"), status("@dangerous")]),
            _ => {}
        }
    }
    if !spec.has_flag("fast") {
        cats.push(status("@slow"));
    }
    if spec.group == "connection" {
        cats.push(status("@connection"));
    }
    cats
}

fn info_of(spec: &Spec, subs: &[CommandId]) -> Reply {
    Reply::Array(vec![
        text(spec.name),
        Reply::Int(i64::from(spec.arity)),
        Reply::Set(spec.flags.iter().map(|f| status(f)).collect()),
        // No command takes a Redis key: ids are arguments, not keyspace names, so key
        // positions are 0 and cluster-aware clients route them anywhere.
        Reply::Int(0),
        Reply::Int(0),
        Reply::Int(0),
        Reply::Set(acl_categories(spec)),
        Reply::Array(Vec::new()),
        Reply::Array(Vec::new()),
        Reply::Array(subs.iter().map(|id| info_of(id.spec(), &[])).collect()),
    ])
}

/// One command's `COMMAND INFO` entry.
fn info(d: Described) -> Reply {
    info_of(d.spec(), d.subs())
}

/// Bytes of the largest `COMMAND INFO` entry, in either protocol (measured once).
fn largest_info_entry() -> usize {
    static LARGEST: OnceLock<usize> = OnceLock::new();
    *LARGEST.get_or_init(|| {
        let mut largest = 1;
        for e in table() {
            for resp in [Resp::V2, Resp::V3] {
                let mut out = bytes::BytesMut::new();
                crate::protocol::encode(&info(Described::from(e)), resp, &mut out);
                largest = largest.max(out.len());
            }
        }
        largest
    })
}

fn arg_doc(a: &ArgDoc) -> Reply {
    let mut m = vec![(text("name"), text(a.name)), (text("type"), text(a.kind))];
    if a.kind != "oneof" && a.kind != "block" {
        m.push((text("display_text"), text(a.name)));
    }
    if let Some(t) = a.token {
        m.push((text("token"), text(t)));
    }
    let mut flags = Vec::new();
    if a.optional {
        flags.push(status("optional"));
    }
    if a.multiple {
        flags.push(status("multiple"));
    }
    if !flags.is_empty() {
        m.push((text("flags"), Reply::Array(flags)));
    }
    if !a.args.is_empty() {
        m.push((
            text("arguments"),
            Reply::Array(a.args.iter().map(arg_doc).collect()),
        ));
    }
    Reply::Map(m)
}

fn doc_of(spec: &Spec, subs: &[CommandId]) -> Reply {
    let mut m = vec![
        (text("summary"), text(spec.summary)),
        (text("since"), text(spec.since)),
        (text("group"), text(spec.group)),
        (text("complexity"), text(spec.complexity)),
    ];
    if !spec.args.is_empty() {
        m.push((
            text("arguments"),
            Reply::Array(spec.args.iter().map(arg_doc).collect()),
        ));
    }
    if !subs.is_empty() {
        m.push((
            text("subcommands"),
            Reply::Map(
                subs.iter()
                    .map(|id| (text(id.spec().name), doc_of(id.spec(), &[])))
                    .collect(),
            ),
        ));
    }
    Reply::Map(m)
}

/// One command's `COMMAND DOCS` entry.
fn doc(d: Described) -> Reply {
    doc_of(d.spec(), d.subs())
}

/// `<CONTAINER> HELP` text.
pub fn help(container: &Spec) -> Reply {
    let upper = container.name.to_ascii_uppercase();
    let mut lines = vec![format!(
        "{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )];
    if let Some(e) = lookup(container.name.as_bytes()) {
        for &sub in Described::from(e).subs() {
            let spec = sub.spec();
            lines.push(spec.short_name().to_ascii_uppercase());
            lines.push(format!("    {}", spec.summary));
        }
    }
    Reply::Array(
        lines
            .into_iter()
            .map(|l| Reply::Simple(Cow::Owned(l)))
            .collect(),
    )
}
