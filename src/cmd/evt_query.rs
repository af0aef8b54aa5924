//! The four counts over the window: `EVT.TOTAL`, `EVT.USER`, `EVT.TYPE`, `EVT.SUM`,
//! each over the whole window or its last `WINDOW <s>` seconds. In a cluster, the
//! user's commands go to the user's node (key position 1) and the global ones are
//! answered for every node ([`super::global`]).

use super::global::{self, Scope};
use super::id_arg;
use super::reads::{self, PointRead};
use super::spec::{KeyPos, LOCAL_ARG, Spec, WINDOW_ARG, arg};
use super::{Cmd, Ctx, Cursor};
use crate::cluster::merge;
use crate::error::ReplyError;
use crate::protocol::Reply;
use crate::shared::Shared;

/// The span asked for, or the whole window.
fn span(shared: &Shared, span: Option<u32>) -> u32 {
    span.unwrap_or(shared.store.window())
}

/// `EVT.TOTAL [WINDOW s] [LOCAL]`.
#[derive(Debug)]
pub struct Total {
    span: Option<u32>,
    scope: Scope,
}

impl<'a> Cmd<'a> for Total {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(S) where S is the number of shards (times the nodes of a cluster)",
        ..Spec::new(
            "evt.total",
            -1,
            &["readonly", "fast"],
            "module",
            "Events in the window, or in its last WINDOW seconds; in a cluster, of every node unless LOCAL.",
            &[WINDOW_ARG, LOCAL_ARG],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let (span, scope) = global::window_and_scope(c)?;
        Ok(Total { span, scope })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let request = || {
            let mut r = vec![b"EVT.TOTAL".to_vec()];
            r.extend(global::window_words(self.span));
            r
        };
        global::answer(ctx, self.scope, request, merge::Sum, |s, now| {
            Ok(Reply::Int(s.store.total(span(s, self.span), now) as i64))
        })
    }
}

/// `EVT.USER <user_id> [WINDOW s]`.
#[derive(Debug)]
pub struct User<'a> {
    user: &'a [u8],
    span: Option<u32>,
}

impl<'a> Cmd<'a> for User<'a> {
    const SPEC: &'static Spec = &Spec {
        key: KeyPos::At(1),
        ..Spec::new(
            "evt.user",
            -2,
            &["readonly", "fast"],
            "module",
            "Events of one user in the window.",
            &[arg("user_id", "key"), WINDOW_ARG],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(User {
            user: c.required(),
            span: c.window()?,
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(reads::answer_one(ctx.shared, self.point(), ctx.now()))
    }

    fn batched_read(&self) -> Option<PointRead<'a>> {
        Some(self.point())
    }
}

impl<'a> User<'a> {
    fn point(&self) -> PointRead<'a> {
        PointRead {
            user: self.user,
            event_type: None,
            span: self.span,
        }
    }
}

/// `EVT.TYPE <event_type> [WINDOW s] [LOCAL]`.
#[derive(Debug)]
pub struct Type<'a> {
    event_type: &'a [u8],
    span: Option<u32>,
    scope: Scope,
}

impl<'a> Cmd<'a> for Type<'a> {
    const SPEC: &'static Spec = &Spec {
        complexity: "O(S) where S is the number of shards (times the nodes of a cluster)",
        ..Spec::new(
            "evt.type",
            -2,
            &["readonly", "fast"],
            "module",
            "Events of one event type in the window; in a cluster, of every node unless LOCAL.",
            &[arg("event_type", "string"), WINDOW_ARG, LOCAL_ARG],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let event_type = c.required();
        let (span, scope) = global::window_and_scope(c)?;
        Ok(Type {
            event_type,
            span,
            scope,
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let request = || {
            let mut r = vec![b"EVT.TYPE".to_vec(), self.event_type.to_vec()];
            r.extend(global::window_words(self.span));
            r
        };
        global::answer(ctx, self.scope, request, merge::Sum, |s, now| {
            let n = id_arg(self.event_type)
                .map_or(0, |t| s.store.type_count(t, span(s, self.span), now));
            Ok(Reply::Int(n as i64))
        })
    }
}

/// `EVT.SUM <user_id> <event_type> [WINDOW s]`.
#[derive(Debug)]
pub struct Sum<'a> {
    user: &'a [u8],
    event_type: &'a [u8],
    span: Option<u32>,
}

impl<'a> Cmd<'a> for Sum<'a> {
    const SPEC: &'static Spec = &Spec {
        key: KeyPos::At(1),
        ..Spec::new(
            "evt.sum",
            -3,
            &["readonly", "fast"],
            "module",
            "Sum of attributes.value over one user's events of one type in the window: exact, rounded once to the nearest double.",
            &[
                arg("user_id", "key"),
                arg("event_type", "string"),
                WINDOW_ARG,
            ],
        )
    };

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Sum {
            user: c.required(),
            event_type: c.required(),
            span: c.window()?,
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(reads::answer_one(ctx.shared, self.point(), ctx.now()))
    }

    fn batched_read(&self) -> Option<PointRead<'a>> {
        Some(self.point())
    }
}

impl<'a> Sum<'a> {
    fn point(&self) -> PointRead<'a> {
        PointRead {
            user: self.user,
            event_type: Some(self.event_type),
            span: self.span,
        }
    }
}
