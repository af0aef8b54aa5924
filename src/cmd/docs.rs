//! `COMMAND`, `COMMAND INFO`, `COMMAND DOCS`, `COMMAND COUNT`, `COMMAND LIST`: the
//! command table rendered in Redis 7's reply shapes, so redis-cli's hints and client
//! libraries' command introspection work.

use std::borrow::Cow;

use super::table::{ArgDoc, COMMANDS, Spec, lookup};
use crate::protocol::Reply;

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
    if !spec.flags.contains(&"fast") {
        cats.push(status("@slow"));
    }
    if spec.group == "connection" {
        cats.push(status("@connection"));
    }
    cats
}

/// One command's `COMMAND INFO` entry.
pub fn info(spec: &Spec) -> Reply {
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
        Reply::Array(spec.subcommands.iter().map(info).collect()),
    ])
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

/// One command's `COMMAND DOCS` entry.
pub fn doc(spec: &Spec) -> Reply {
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
    if !spec.subcommands.is_empty() {
        m.push((
            text("subcommands"),
            Reply::Map(
                spec.subcommands
                    .iter()
                    .map(|s| (text(s.name), doc(s)))
                    .collect(),
            ),
        ));
    }
    Reply::Map(m)
}

/// `COMMAND` / `COMMAND INFO [name ...]`: unknown names give a null entry.
pub fn command_info(names: &[&[u8]]) -> Reply {
    if names.is_empty() {
        return Reply::Array(COMMANDS.iter().map(info).collect());
    }
    Reply::Array(
        names
            .iter()
            .map(|n| lookup_any(n).map_or(Reply::Null, info))
            .collect(),
    )
}

/// `COMMAND DOCS [name ...]`: unknown names are left out.
pub fn command_docs(names: &[&[u8]]) -> Reply {
    let specs: Vec<&Spec> = if names.is_empty() {
        COMMANDS.iter().collect()
    } else {
        names.iter().filter_map(|n| lookup_any(n)).collect()
    };
    Reply::Map(specs.into_iter().map(|s| (text(s.name), doc(s))).collect())
}

/// `COMMAND LIST`.
pub fn command_list() -> Reply {
    Reply::Array(COMMANDS.iter().map(|s| text(s.name)).collect())
}

/// `COMMAND COUNT`.
pub fn command_count() -> Reply {
    Reply::Int(COMMANDS.len() as i64)
}

/// A command or `container|sub` subcommand by name.
fn lookup_any(name: &[u8]) -> Option<&'static Spec> {
    if let Some(pos) = name.iter().position(|&b| b == b'|') {
        let (parent, sub) = (&name[..pos], &name[pos + 1..]);
        return lookup(parent).and_then(|p| p.subcommand(sub));
    }
    lookup(name)
}

/// `<CONTAINER> HELP` text.
pub fn help(command: &str) -> Reply {
    let upper = command.to_ascii_uppercase();
    let mut lines = vec![format!(
        "{upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"
    )];
    if let Some(spec) = lookup(command.as_bytes()) {
        for sub in spec.subcommands {
            let name = sub.name.split_once('|').map_or(sub.name, |(_, s)| s);
            lines.push(name.to_ascii_uppercase());
            lines.push(format!("    {}", sub.summary));
        }
    }
    Reply::Array(
        lines
            .into_iter()
            .map(|l| Reply::Simple(Cow::Owned(l)))
            .collect(),
    )
}
