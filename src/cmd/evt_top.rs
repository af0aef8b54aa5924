//! Who and how many: `EVT.TOP` (the k largest users, event types, or users' sums of
//! one type) and `EVT.ACTIVE` (distinct users, types or pairs), over the window or
//! its last `WINDOW <s>` seconds; in a cluster, for every node unless `LOCAL`.
//!
//! A top list over a million users may have to read every one of them (a `WINDOW`
//! shorter than the window, or a million users tied at the edge): it is read in
//! bounded steps (`store/top.rs`), and once it has taken [`SYNC_SLICE`] the command
//! yields to the connection's other clients between steps and answers when it is
//! done, as a cluster-wide answer does. Inside `MULTI`/`EXEC` it is read at once, at
//! the transaction's instant.

use std::time::{Duration, Instant};

use super::global::{self, Scope, Share};
use super::id_arg;
use super::spec::{
    ArgDoc, LOCAL_ARG, Spec, WINDOW_ARG, one_of, pure_token, required, required_token, token,
};
use super::{Cmd, Ctx, Cursor, Later};
use crate::cluster::merge;
use crate::error::ReplyError;
use crate::protocol::{Reply, Resp};
use crate::store::{Ranked, SCAN_BUDGET, Score, Store};

/// Most entries one `EVT.TOP` returns: a reply of tens of kilobytes, built from at
/// most this many entries per shard.
pub const MAX_TOP_COUNT: usize = 1000;
/// Entries `EVT.TOP` returns without `COUNT`.
pub const DEFAULT_TOP_COUNT: usize = 10;
/// How long a top list is read on the spot; one that needs longer (a scan) goes on
/// between other clients' requests.
pub const SYNC_SLICE: Duration = Duration::from_millis(1);

/// What a top list ranks, as asked.
#[derive(Debug, Clone, Copy)]
enum What<'a> {
    Users,
    Types,
    Sum(&'a [u8]),
}

const RANKINGS: &[ArgDoc] = &[
    pure_token("users", "USERS"),
    pure_token("types", "TYPES"),
    required_token("event_type", "SUM", "string"),
];

/// `EVT.TOP USERS|TYPES|SUM <event_type> [COUNT k] [WINDOW s] [LOCAL]`.
#[derive(Debug)]
pub struct Top<'a> {
    what: What<'a>,
    count: usize,
    span: Option<u32>,
    scope: Scope,
}

/// `COUNT <k>`'s value.
fn count_value(c: &mut Cursor<'_>) -> Result<usize, ReplyError> {
    match c.next().and_then(super::cursor::parse_int) {
        Some(k) if (1..=MAX_TOP_COUNT as i64).contains(&k) => Ok(k as usize),
        _ => Err(ReplyError::err(format!(
            "COUNT must be an integer from 1 to {MAX_TOP_COUNT}"
        ))),
    }
}

impl<'a> Cmd<'a> for Top<'a> {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(S + k) where S is the number of shards, for USERS over the whole \
                     window; O(N) where N is the number of users (or types) otherwise, \
                     read in bounded steps",
        ..Spec::new(
            "evt.top",
            -2,
            &["readonly"],
            "module",
            "The k users (or event types, or users by their sum of one type's values) with \
             the most in the window: count descending, ties by id ascending; in a cluster, \
             of every node unless LOCAL.",
            &[
                required(one_of("ranking", RANKINGS)),
                token("count", "COUNT", "integer"),
                WINDOW_ARG,
                LOCAL_ARG,
            ],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let what = if c.eat("USERS") {
            What::Users
        } else if c.eat("TYPES") {
            What::Types
        } else if c.eat("SUM") {
            What::Sum(c.next().ok_or_else(ReplyError::syntax)?)
        } else {
            return Err(ReplyError::syntax());
        };
        let (mut count, mut span, mut scope) = (None, None, None);
        while c.remaining() > 0 {
            if count.is_none() && c.eat("COUNT") {
                count = Some(count_value(c)?);
            } else if span.is_none() && c.eat("WINDOW") {
                span = Some(c.window_value()?);
            } else if scope.is_none() && c.eat("LOCAL") {
                scope = Some(global::local_at(c)?);
            } else {
                return Err(ReplyError::syntax());
            }
        }
        Ok(Top {
            what,
            count: count.unwrap_or(DEFAULT_TOP_COUNT),
            span,
            scope: scope.unwrap_or(Scope::Cluster),
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let now = global::instant(ctx, self.scope)?;
        let resp = ctx.client.resp;
        let store = &ctx.shared.store;
        let span = self.span.unwrap_or(store.window());
        let ranked = match self.what {
            What::Users => Ranked::Users,
            What::Types => Ranked::Types,
            What::Sum(ty) => match id_arg(ty) {
                Some(ty) => Ranked::Sum(ty.to_string()),
                // No type has this name: an empty list.
                None => Ranked::Sum(String::new()),
            },
        };
        // Event types are spread over the nodes: a share asked for by another node
        // (LOCAL AT), or read for a merge here, is every type's count, which the
        // merge adds up; each node's top k alone could miss the cluster's.
        let whole = matches!(self.what, What::Types)
            && (global::gathering(ctx, self.scope) || matches!(self.scope, Scope::At(_)));
        let k = if whole { usize::MAX } else { self.count };
        let mut scan = store.top(ranked, k, span, now);
        let started = Instant::now();
        let mut done = false;
        while !done && (ctx.in_transaction() || started.elapsed() < SYNC_SLICE) {
            done = store.top_step(&mut scan, SCAN_BUDGET);
        }
        let merge = merge::TopK {
            k: self.count,
            resp,
            sums: matches!(self.what, What::Sum(_)),
        };
        let request = || self.request();
        let share = if done {
            Share::Ready(top_reply(scan.finish(), resp))
        } else {
            let (store, gate) = (ctx.shared.store.clone(), ctx.shared.gate.clone());
            let later: Later = Box::pin(async move {
                loop {
                    // Other clients of this thread go first, then one bounded step.
                    tokio::task::yield_now().await;
                    let _pass = gate.pass();
                    if store.top_step(&mut scan, SCAN_BUDGET) {
                        break;
                    }
                }
                Ok(top_reply(scan.finish(), resp))
            });
            Share::Later(later)
        };
        global::answer_share(ctx, self.scope, now, request, merge, share)
    }
}

impl Top<'_> {
    /// The request asking another node for its share (without `LOCAL`).
    fn request(&self) -> Vec<Vec<u8>> {
        let mut r = vec![b"EVT.TOP".to_vec()];
        match self.what {
            What::Users => r.push(b"USERS".to_vec()),
            What::Types => r.push(b"TYPES".to_vec()),
            What::Sum(ty) => r.extend([b"SUM".to_vec(), ty.to_vec()]),
        }
        r.extend([b"COUNT".to_vec(), self.count.to_string().into_bytes()]);
        r.extend(global::window_words(self.span));
        r
    }
}

/// A top list as `ZRANGE ... WITHSCORES` answers: `[id, score]` pairs in RESP3, a
/// flat `id, score, ...` array in RESP2. Counts are integers, sums doubles.
pub fn top_reply(list: Vec<(Score, Vec<u8>)>, resp: Resp) -> Reply {
    let score = |s: Score| match s {
        Score::Count(n) => Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)),
        Score::Sum(x) => Reply::Double(x),
    };
    Reply::Array(match resp {
        Resp::V3 => list
            .into_iter()
            .map(|(s, id)| Reply::Array(vec![Reply::Bulk(id), score(s)]))
            .collect(),
        Resp::V2 => list
            .into_iter()
            .flat_map(|(s, id)| [Reply::Bulk(id), score(s)])
            .collect(),
    })
}

/// What `EVT.ACTIVE` counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Types,
    Pairs,
}

const KINDS: &[ArgDoc] = &[
    pure_token("users", "USERS"),
    pure_token("types", "TYPES"),
    pure_token("pairs", "PAIRS"),
];

/// `EVT.ACTIVE USERS|TYPES|PAIRS [WINDOW s] [LOCAL]`.
#[derive(Debug)]
pub struct Active {
    kind: Kind,
    span: Option<u32>,
    scope: Scope,
}

impl<'a> Cmd<'a> for Active {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(S × s) where S is the number of shards and s the seconds asked for",
        ..Spec::new(
            "evt.active",
            -2,
            &["readonly", "fast"],
            "module",
            "Distinct users, event types or (user, type) pairs with at least one event in the \
             window; in a cluster, of every node unless LOCAL.",
            &[required(one_of("kind", KINDS)), WINDOW_ARG, LOCAL_ARG],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let kind = if c.eat("USERS") {
            Kind::Users
        } else if c.eat("TYPES") {
            Kind::Types
        } else if c.eat("PAIRS") {
            Kind::Pairs
        } else {
            return Err(ReplyError::syntax());
        };
        let (span, scope) = global::window_and_scope(c)?;
        Ok(Active { kind, span, scope })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let word: &[u8] = match self.kind {
            Kind::Users => b"USERS",
            Kind::Types => b"TYPES",
            Kind::Pairs => b"PAIRS",
        };
        let request = || {
            let mut r = vec![b"EVT.ACTIVE".to_vec(), word.to_vec()];
            r.extend(global::window_words(self.span));
            r
        };
        let span = self.span.unwrap_or(ctx.shared.store.window());
        if self.kind == Kind::Types {
            // Types are spread over the nodes: a share for a merge is the list of names
            // (the cluster's count is the size of their union).
            let list = global::gathering(ctx, self.scope) || matches!(self.scope, Scope::At(_));
            return global::answer(ctx, self.scope, request, merge::Distinct, |s, now| {
                Ok(active_types(&s.store, span, now, list))
            });
        }
        global::answer(ctx, self.scope, request, merge::Sum, |s, now| {
            let a = s.store.active(span, now);
            let n = if self.kind == Kind::Users {
                a.users
            } else {
                a.pairs
            };
            Ok(Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)))
        })
    }
}

/// Active types: their count, or (for a merge) their names.
fn active_types(store: &Store, span: u32, now: i64, list: bool) -> Reply {
    if list {
        Reply::Array(
            store
                .active_types(span, now)
                .into_iter()
                .map(Reply::Bulk)
                .collect(),
        )
    } else {
        Reply::Int(i64::try_from(store.active(span, now).types).unwrap_or(i64::MAX))
    }
}
