//! `CLUSTER SLOTS|SHARDS|NODES|INFO|MYID|KEYSLOT|HELP`, `READONLY`, `READWRITE`: the
//! cluster's map in Redis Cluster's reply shapes, so cluster clients (redis-py,
//! redis-rs, Jedis, `redis-cli -c`, `redis-benchmark --cluster`) learn where each slot
//! lives. Outside cluster mode each answers as a standalone Redis 7 does.
//!
//! There is no cluster bus: the map is the file every node was given. Fields Redis
//! fills from gossip are constant here — every node `connected` and `online`, epochs
//! from the map's order, no replicas.

use std::borrow::Cow;
use std::fmt::Write;

use super::spec::{Spec, arg};
use super::{Cmd, Ctx, Cursor};
use crate::cluster::{Cluster, Node, key_slot};
use crate::error::ReplyError;
use crate::protocol::Reply;

const SUB: &[&str] = &["loading", "stale"];

/// The `CLUSTER` container.
pub const CONTAINER: &Spec = &Spec::new(
    "cluster",
    -2,
    &[],
    "cluster",
    "A container for Redis Cluster commands.",
    &[],
);

/// The cluster, or Redis's answer when there is none.
fn cluster<'s>(ctx: &'s Ctx<'_>) -> Result<&'s Cluster, ReplyError> {
    ctx.shared
        .cluster
        .as_deref()
        .ok_or_else(|| ReplyError::err("This instance has cluster support disabled"))
}

fn text(s: &str) -> Reply {
    Reply::bulk(s.as_bytes())
}

/// Runs of consecutive slots with one owner, in slot order: `(start, end, node)`.
fn runs(c: &Cluster) -> Vec<(u16, u16, usize)> {
    let mut out: Vec<(u16, u16, usize)> = Vec::new();
    for (i, node) in c.nodes().iter().enumerate() {
        for &(start, end) in &node.ranges {
            out.push((start, end, i));
        }
    }
    out.sort_unstable();
    // Ranges of one node that touch are one run, as Redis reports them.
    let mut merged: Vec<(u16, u16, usize)> = Vec::with_capacity(out.len());
    for r in out {
        match merged.last_mut() {
            Some(last) if last.2 == r.2 && u32::from(last.1) + 1 == u32::from(r.0) => last.1 = r.1,
            _ => merged.push(r),
        }
    }
    merged
}

/// A node as `CLUSTER SLOTS` lists it: endpoint, port, id, and a map of further
/// endpoints (none).
fn slots_node(n: &Node) -> Reply {
    Reply::Array(vec![
        text(&n.host),
        Reply::Int(i64::from(n.port)),
        text(&n.id),
        Reply::Map(Vec::new()),
    ])
}

/// `CLUSTER SLOTS`.
#[derive(Debug)]
pub struct Slots;

impl<'a> Cmd<'a> for Slots {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        complexity: "O(N) where N is the total number of Cluster nodes",
        ..Spec::new(
            "cluster|slots",
            2,
            SUB,
            "cluster",
            "Returns the mapping of cluster slots to nodes.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Slots)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let c = cluster(ctx)?;
        Ok(Reply::Array(
            runs(c)
                .into_iter()
                .map(|(start, end, i)| {
                    Reply::Array(vec![
                        Reply::Int(i64::from(start)),
                        Reply::Int(i64::from(end)),
                        slots_node(&c.nodes()[i]),
                    ])
                })
                .collect(),
        ))
    }
}

/// `CLUSTER SHARDS`.
#[derive(Debug)]
pub struct Shards;

impl<'a> Cmd<'a> for Shards {
    const SPEC: &'static Spec = &Spec {
        since: "7.0.0",
        complexity: "O(N) where N is the total number of cluster nodes",
        ..Spec::new(
            "cluster|shards",
            2,
            SUB,
            "cluster",
            "Returns the mapping of cluster slots to shards.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Shards)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let c = cluster(ctx)?;
        let runs = runs(c);
        Ok(Reply::Array(
            c.nodes()
                .iter()
                .enumerate()
                .map(|(i, n)| {
                    let slots = runs
                        .iter()
                        .filter(|r| r.2 == i)
                        .flat_map(|r| [Reply::Int(i64::from(r.0)), Reply::Int(i64::from(r.1))])
                        .collect();
                    let node = Reply::Map(vec![
                        (text("id"), text(&n.id)),
                        (text("port"), Reply::Int(i64::from(n.port))),
                        (text("ip"), text(&n.host)),
                        (text("endpoint"), text(&n.host)),
                        (text("role"), text("master")),
                        (text("replication-offset"), Reply::Int(0)),
                        (text("health"), text("online")),
                    ]);
                    Reply::Map(vec![
                        (text("slots"), Reply::Array(slots)),
                        (text("nodes"), Reply::Array(vec![node])),
                    ])
                })
                .collect(),
        ))
    }
}

/// The bus port Redis would show for `port` (port + 10000). Nothing listens there:
/// clients only parse it.
fn bus_port(port: u16) -> u32 {
    let bus = u32::from(port) + 10000;
    if bus > u32::from(u16::MAX) { 0 } else { bus }
}

/// The `CLUSTER NODES` text.
pub fn nodes_text(c: &Cluster) -> String {
    let runs = runs(c);
    let mut out = String::new();
    for (i, n) in c.nodes().iter().enumerate() {
        let flags = if i == c.me() {
            "myself,master"
        } else {
            "master"
        };
        // `write!` into a String cannot fail.
        let _ = write!(
            out,
            "{} {}:{}@{} {flags} - 0 0 {} connected",
            n.id,
            n.host,
            n.port,
            bus_port(n.port),
            i + 1
        );
        for r in runs.iter().filter(|r| r.2 == i) {
            if r.0 == r.1 {
                let _ = write!(out, " {}", r.0);
            } else {
                let _ = write!(out, " {}-{}", r.0, r.1);
            }
        }
        out.push('\n');
    }
    out
}

/// `CLUSTER NODES`.
#[derive(Debug)]
pub struct Nodes;

impl<'a> Cmd<'a> for Nodes {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        complexity: "O(N) where N is the total number of Cluster nodes",
        ..Spec::new(
            "cluster|nodes",
            2,
            SUB,
            "cluster",
            "Returns the cluster configuration for a node.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Nodes)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(Reply::Verbatim(nodes_text(cluster(ctx)?)))
    }
}

/// `CLUSTER INFO`.
#[derive(Debug)]
pub struct Info;

impl<'a> Cmd<'a> for Info {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        ..Spec::new(
            "cluster|info",
            2,
            SUB,
            "cluster",
            "Returns information about the state of a node.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Info)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let c = cluster(ctx)?;
        let n = c.nodes().len();
        let size = c.nodes().iter().filter(|n| !n.ranges.is_empty()).count();
        Ok(Reply::Verbatim(format!(
            "cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_slots_ok:16384\r\n\
             cluster_slots_pfail:0\r\ncluster_slots_fail:0\r\ncluster_known_nodes:{n}\r\n\
             cluster_size:{size}\r\ncluster_current_epoch:{n}\r\ncluster_my_epoch:{}\r\n\
             cluster_stats_messages_sent:0\r\ncluster_stats_messages_received:0\r\n\
             total_cluster_links_buffer_limit_exceeded:0\r\n",
            c.me() + 1
        )))
    }
}

/// `CLUSTER MYID`.
#[derive(Debug)]
pub struct MyId;

impl<'a> Cmd<'a> for MyId {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        ..Spec::new(
            "cluster|myid",
            2,
            SUB,
            "cluster",
            "Returns the ID of a node.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(MyId)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(text(&cluster(ctx)?.myself().id))
    }
}

/// `CLUSTER KEYSLOT <key>`.
#[derive(Debug)]
pub struct KeySlot<'a> {
    key: &'a [u8],
}

impl<'a> Cmd<'a> for KeySlot<'a> {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        complexity: "O(N) where N is the number of bytes in the key",
        ..Spec::new(
            "cluster|keyslot",
            3,
            SUB,
            "cluster",
            "Returns the hash slot for a key.",
            &[arg("key", "string")],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(KeySlot { key: c.required() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        // As Redis 7: refused outside cluster mode, like every CLUSTER subcommand.
        cluster(ctx)?;
        Ok(Reply::Int(i64::from(key_slot(self.key))))
    }
}

/// `CLUSTER HELP`.
#[derive(Debug)]
pub struct Help;

impl<'a> Cmd<'a> for Help {
    const SPEC: &'static Spec = &Spec {
        since: "5.0.0",
        ..Spec::new(
            "cluster|help",
            2,
            SUB,
            "cluster",
            "Returns helpful text about the different subcommands.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Help)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        cluster(ctx)?;
        Ok(super::command::help(CONTAINER))
    }
}

/// `READONLY` and `READWRITE`: every node serves reads and writes of its own slots
/// (there are no replicas), so both only say OK.
fn read_mode(ctx: &Ctx<'_>) -> Result<Reply, ReplyError> {
    cluster(ctx)?;
    Ok(Reply::Simple(Cow::Borrowed("OK")))
}

const READ_MODE: &[&str] = &["loading", "stale", "fast"];

/// `READONLY`.
#[derive(Debug)]
pub struct ReadOnly;

impl<'a> Cmd<'a> for ReadOnly {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        ..Spec::new(
            "readonly",
            1,
            READ_MODE,
            "cluster",
            "Enables read-only queries for a connection to a Redis Cluster replica node.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(ReadOnly)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        read_mode(ctx)
    }
}

/// `READWRITE`.
#[derive(Debug)]
pub struct ReadWrite;

impl<'a> Cmd<'a> for ReadWrite {
    const SPEC: &'static Spec = &Spec {
        since: "3.0.0",
        ..Spec::new(
            "readwrite",
            1,
            READ_MODE,
            "cluster",
            "Enables read-write queries for a connection to a Redis Cluster replica node.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(ReadWrite)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        read_mode(ctx)
    }
}
