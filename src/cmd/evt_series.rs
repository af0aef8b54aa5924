//! How it moved and what one user did: `EVT.SERIES` (per-second values over the
//! window, oldest first, the current second last) and `EVT.PROFILE` (a user's event
//! types with their counts and sums). The total's and a type's series are answered
//! for the whole cluster unless `LOCAL`; a user's go to the user's node.

use super::global::{self, Scope};
use super::id_arg;
use super::spec::{
    ArgDoc, KeyPos, LOCAL_ARG, Spec, WINDOW_ARG, arg, block, one_of, pure_token, required,
    required_token,
};
use super::{Cmd, Ctx, Cursor};
use crate::cluster::merge;
use crate::error::ReplyError;
use crate::protocol::Reply;

/// Which series.
#[derive(Debug, Clone, Copy)]
enum Of<'a> {
    Total,
    User(&'a [u8]),
    Type(&'a [u8]),
    Sum(&'a [u8], &'a [u8]),
}

const SERIES: &[ArgDoc] = &[
    pure_token("total", "TOTAL"),
    required_token("user_id", "USER", "key"),
    required_token("event_type", "TYPE", "string"),
    required(block(
        "sum",
        Some("SUM"),
        &[arg("user_id", "key"), arg("event_type", "string")],
    )),
];

/// `EVT.SERIES TOTAL|USER <u>|TYPE <t>|SUM <u> <t> [WINDOW s] [LOCAL]`.
#[derive(Debug)]
pub struct Series<'a> {
    of: Of<'a>,
    span: Option<u32>,
    scope: Scope,
}

impl<'a> Cmd<'a> for Series<'a> {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(s) where s is the seconds asked for (times the shards for TOTAL and TYPE)",
        key: KeyPos::AfterWord(&["USER", "SUM"]),
        ..Spec::new(
            "evt.series",
            -2,
            &["readonly", "fast"],
            "module",
            "Per-second values over the window, oldest first and the current second last: \
             events in total, of one user, of one type, or one user's sum of one type's \
             values; TOTAL and TYPE in a cluster of every node unless LOCAL.",
            &[required(one_of("series", SERIES)), WINDOW_ARG, LOCAL_ARG],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let of = if c.eat("TOTAL") {
            Of::Total
        } else if c.eat("USER") {
            Of::User(c.next().ok_or_else(ReplyError::syntax)?)
        } else if c.eat("TYPE") {
            Of::Type(c.next().ok_or_else(ReplyError::syntax)?)
        } else if c.eat("SUM") {
            let user = c.next().ok_or_else(ReplyError::syntax)?;
            Of::Sum(user, c.next().ok_or_else(ReplyError::syntax)?)
        } else {
            return Err(ReplyError::syntax());
        };
        let (span, scope) = match of {
            // A user's series is answered by the user's node: no LOCAL.
            Of::User(_) | Of::Sum(..) => (c.window()?, Scope::Local),
            Of::Total | Of::Type(_) => global::window_and_scope(c)?,
        };
        Ok(Series { of, span, scope })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let store = &ctx.shared.store;
        let span = self.span.unwrap_or(store.window());
        let ints = |v: Vec<u64>| {
            Reply::Array(
                v.into_iter()
                    .map(|n| Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)))
                    .collect(),
            )
        };
        match self.of {
            Of::User(u) => {
                let now = ctx.now();
                let v = match id_arg(u) {
                    Some(u) => store.user_series(u, span, now),
                    None => vec![0; span as usize],
                };
                Ok(ints(v))
            }
            Of::Sum(u, t) => {
                let now = ctx.now();
                let v = match (id_arg(u), id_arg(t)) {
                    (Some(u), Some(t)) => store.sum_series(u, t, span, now),
                    _ => vec![0.0; span as usize],
                };
                Ok(Reply::Array(v.into_iter().map(Reply::Double).collect()))
            }
            Of::Total => {
                let request = || {
                    let mut r = vec![b"EVT.SERIES".to_vec(), b"TOTAL".to_vec()];
                    r.extend(global::window_words(self.span));
                    r
                };
                global::answer(ctx, self.scope, request, merge::SumEach, |s, now| {
                    Ok(ints(s.store.total_series(span, now)))
                })
            }
            Of::Type(t) => {
                let request = || {
                    let mut r = vec![b"EVT.SERIES".to_vec(), b"TYPE".to_vec(), t.to_vec()];
                    r.extend(global::window_words(self.span));
                    r
                };
                global::answer(ctx, self.scope, request, merge::SumEach, |s, now| {
                    Ok(ints(match id_arg(t) {
                        Some(t) => s.store.type_series(t, span, now),
                        None => vec![0; span as usize],
                    }))
                })
            }
        }
    }
}

/// `EVT.PROFILE <user_id> [WINDOW s]`.
#[derive(Debug)]
pub struct Profile<'a> {
    user: &'a [u8],
    span: Option<u32>,
}

impl<'a> Cmd<'a> for Profile<'a> {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(T log T) where T is the number of event types of the user",
        key: KeyPos::At(1),
        ..Spec::new(
            "evt.profile",
            -2,
            &["readonly", "fast"],
            "module",
            "One user's event types in the window, ordered by type: [event_type, count, sum] \
             for each.",
            &[arg("user_id", "key"), WINDOW_ARG],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Profile {
            user: c.required(),
            span: c.window()?,
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let store = &ctx.shared.store;
        let span = self.span.unwrap_or(store.window());
        let types = match id_arg(self.user) {
            Some(u) => store.profile(u, span, ctx.now()),
            None => Vec::new(),
        };
        Ok(Reply::Array(
            types
                .into_iter()
                .map(|(ty, n, sum)| {
                    Reply::Array(vec![
                        Reply::Bulk(ty),
                        Reply::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                        Reply::Double(sum),
                    ])
                })
                .collect(),
        ))
    }
}
