//! `COMMAND`, `COMMAND INFO|DOCS|COUNT|LIST|HELP`: the command table rendered in
//! Redis 7's reply shapes, so redis-cli's hints and client libraries' command
//! introspection work.

use std::borrow::Cow;
use std::sync::OnceLock;

use super::spec::{ArgDoc, KeyPos, Spec, arg, multiple, optional};
use super::{Cmd, CommandId, Ctx, Cursor, Described, lookup, lookup_full, table};
use crate::config::Settings;
use crate::error::ReplyError;
use crate::protocol::{Args, Reply, Resp};

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

/// `COMMAND GETKEYS <command> [arg ...]`: the user id a command names, as cluster
/// clients ask it for `movablekeys` commands (`EVT.SERIES USER <u>`).
#[derive(Debug)]
pub struct GetKeys<'a> {
    request: Args<'a>,
}

impl<'a> Cmd<'a> for GetKeys<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "command|getkeys",
        -3,
        SUB,
        "server",
        "Extracts the key names from an arbitrary command.",
        &[
            arg("command", "string"),
            optional(multiple(arg("arg", "string"))),
        ],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(GetKeys {
            request: c.rest_args(),
        })
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        // Redis's wording for each refusal.
        let (id, _) = super::resolve(self.request).map_err(|r| {
            ReplyError::err(
                if r.id.is_some() || lookup(self.request.get(0).unwrap_or_default()).is_some() {
                    "Invalid number of arguments specified for command"
                } else {
                    "Invalid command specified"
                },
            )
        })?;
        let keys = id.spec().key.all(self.request);
        if keys.is_empty() {
            return Err(ReplyError::err("The command has no key arguments"));
        }
        Ok(Reply::Array(keys.into_iter().map(Reply::bulk).collect()))
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

container_help!(
    /// `COMMAND HELP`.
    Help,
    "command|help",
    "server",
    CONTAINER
);

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
    let mut flags: Vec<Reply> = spec.flags.iter().map(|f| status(f)).collect();
    // A user id is the command's key, so cluster clients route it to the user's node.
    let (first, last, step) = match spec.key {
        KeyPos::None => (0, 0, 0),
        KeyPos::At(n) | KeyPos::AtWhen { at: n, .. } => (n as i64, n as i64, 1),
        KeyPos::From(n) => (n as i64, -1, 1),
        KeyPos::AfterWord(_) => {
            flags.push(status("movablekeys"));
            (0, 0, 0)
        }
    };
    Reply::Array(vec![
        text(spec.name),
        Reply::Int(i64::from(spec.arity)),
        Reply::Set(flags),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        Reply::Set(acl_categories(spec)),
        Reply::Array(Vec::new()),
        // Redis sends a RESP3 set here; the codec cannot put maps in a set.
        Reply::Array(key_specs(spec)),
        Reply::Array(subs.iter().map(|id| info_of(id.spec(), &[])).collect()),
    ])
}

/// Redis 7 key specs: where the user id is, and what the command does to it.
fn key_specs(spec: &Spec) -> Vec<Reply> {
    let flags = || {
        Reply::Set(if spec.has_flag("write") {
            vec![status("RW"), status("update")]
        } else {
            vec![status("RO"), status("access")]
        })
    };
    let range = |lastkey: i64| {
        Reply::Map(vec![
            (text("type"), text("range")),
            (
                text("spec"),
                Reply::Map(vec![
                    (text("lastkey"), Reply::Int(lastkey)),
                    (text("keystep"), Reply::Int(1)),
                    (text("limit"), Reply::Int(0)),
                ]),
            ),
        ])
    };
    let at = |n: usize| {
        Reply::Map(vec![
            (text("type"), text("index")),
            (
                text("spec"),
                Reply::Map(vec![(text("index"), Reply::Int(n as i64))]),
            ),
        ])
    };
    match spec.key {
        KeyPos::None => Vec::new(),
        KeyPos::At(n) => vec![Reply::Map(vec![
            (text("flags"), flags()),
            (text("begin_search"), at(n)),
            (text("find_keys"), range(0)),
        ])],
        KeyPos::From(n) => vec![Reply::Map(vec![
            (text("flags"), flags()),
            (text("begin_search"), at(n)),
            (text("find_keys"), range(-1)),
        ])],
        KeyPos::AtWhen { at: n, argc } => vec![Reply::Map(vec![
            (
                text("notes"),
                Reply::bulk(format!(
                    "a key only when the command has {argc} arguments; otherwise the node \
                     routes by the user_id of the JSON and redirects with -MOVED"
                )),
            ),
            (text("flags"), flags()),
            (text("begin_search"), at(n)),
            (text("find_keys"), range(0)),
        ])],
        KeyPos::AfterWord(words) => words
            .iter()
            .map(|w| {
                Reply::Map(vec![
                    (
                        text("notes"),
                        text("the user id follows the subcommand word, at argument 2"),
                    ),
                    (text("flags"), flags()),
                    (
                        text("begin_search"),
                        Reply::Map(vec![
                            (text("type"), text("keyword")),
                            (
                                text("spec"),
                                Reply::Map(vec![
                                    (text("keyword"), text(w)),
                                    (text("startfrom"), Reply::Int(1)),
                                ]),
                            ),
                        ]),
                    ),
                    (text("find_keys"), range(0)),
                ])
            })
            .collect(),
    }
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
    if a.kind == "key" {
        // Every command names at most one user: its first (and only) key spec.
        m.push((text("key_spec_index"), Reply::Int(0)));
    }
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

/// Declares `<CONTAINER> HELP` for a container: the type `$name`, whose spec is named
/// `$full` in `$group`, answering [`help`] of `$container`.
macro_rules! container_help {
    ($(#[$doc:meta])* $name:ident, $full:literal, $group:literal, $container:expr) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl<'a> $crate::cmd::Cmd<'a> for $name {
            const SPEC: &'static $crate::cmd::Spec = &$crate::cmd::Spec::new(
                $full,
                2,
                &["loading", "stale"],
                $group,
                "Returns helpful text about the different subcommands.",
                &[],
            );

            fn parse(
                _: &mut $crate::cmd::Cursor<'a>,
            ) -> Result<Self, $crate::error::ReplyError> {
                Ok($name)
            }

            fn run(
                self,
                _: &mut $crate::cmd::Ctx<'_>,
            ) -> Result<$crate::protocol::Reply, $crate::error::ReplyError> {
                Ok($crate::cmd::command::help($container))
            }
        }
    };
}
pub(crate) use container_help;

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
