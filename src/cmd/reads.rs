//! Pipelined point queries (`EVT.USER`, `EVT.SUM`) answered a run at a time.
//!
//! Like the run of `EVT.ADD`s (`ingest::Batch`), consecutive point queries of one
//! command wait in the session until something else comes (another command, the end
//! of what was read) and are then answered together by [`Store::points`]: one `now`,
//! each shard's lock once, and the lookups of a million users overlapping instead of
//! waiting for their misses one by one. They are timed and counted as a run, as the
//! events are. Replies are those of the commands run one by one at that `now`.
//!
//! [`Store::points`]: crate::store::Store::points

use std::cell::Cell;

use super::CommandId;
use crate::protocol::Reply;
use crate::scratch;
use crate::shared::Shared;
use crate::store::{Answer, Point};

thread_local! {
    /// A run's queries that reach the store ([`crate::scratch`]), where their
    /// replies are, and the store's answers.
    static POINTS: Cell<Vec<Point<'static>>> = const { Cell::new(Vec::new()) };
    static AT: Cell<Vec<usize>> = const { Cell::new(Vec::new()) };
    static ANSWERS: Cell<Vec<Answer>> = const { Cell::new(Vec::new()) };
}

/// A point query as a command hands it over: slices of the read buffer.
#[derive(Debug, Clone, Copy)]
pub struct PointRead<'a> {
    pub user: &'a [u8],
    /// `EVT.SUM`'s type; `None` for `EVT.USER`.
    pub event_type: Option<&'a [u8]>,
    /// `WINDOW s`, or the whole window.
    pub span: Option<u32>,
}

/// The reply to a point query's answer.
pub fn reply(a: Answer) -> Reply {
    match a {
        Answer::Count(n) => Reply::Int(n as i64),
        Answer::Sum(s) => Reply::Double(s),
    }
}

/// Answers one query now (not batched: inside `EXEC`, or given inline).
pub fn answer_one(shared: &Shared, read: PointRead<'_>, now: i64) -> Reply {
    reply(to_point(shared, read).map_or(nothing(read), |p| shared.store.point(&p, now)))
}

/// The answer to a query naming an id that is not text (no event can have it).
fn nothing(read: PointRead<'_>) -> Answer {
    Answer::nothing(read.event_type.is_some())
}

fn to_point<'a>(shared: &Shared, read: PointRead<'a>) -> Option<Point<'a>> {
    Some(Point {
        user: super::id_arg(read.user)?,
        event_type: match read.event_type {
            Some(t) => Some(super::id_arg(t)?),
            None => None,
        },
        span: read.span.unwrap_or(shared.store.window()),
    })
}

/// Where a query's bytes are in the connection's read buffer.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    user: (usize, usize),
    event_type: Option<(usize, usize)>,
    span: Option<u32>,
}

/// Point queries of one command waiting to be answered together.
#[derive(Debug, Default)]
pub struct Reads {
    waiting: Vec<Waiting>,
    id: Option<CommandId>,
}

impl Reads {
    /// Whether no query waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Whether a query of `id` may join the waiting ones (one command per run, so
    /// that the run is timed and counted as that command's).
    pub fn takes(&self, id: CommandId) -> bool {
        self.waiting.is_empty() || self.id == Some(id)
    }

    /// Adds a query of `id`, whose slices are slices of `buf`; `false` (nothing
    /// added) when they are not, and the query must run on its own.
    pub fn push(&mut self, buf: &[u8], id: CommandId, read: PointRead<'_>) -> bool {
        let (Some(user), Some(event_type)) = (
            crate::ingest::range_in(buf, read.user),
            crate::ingest::maybe_range_in(buf, read.event_type),
        ) else {
            return false;
        };
        self.id = Some(id);
        self.waiting.push(Waiting {
            user,
            event_type,
            span: read.span,
        });
        true
    }

    /// Answers the waiting queries (their bytes still in `buf`) at `now`, one reply
    /// each in order; returns the command they were.
    pub fn flush(
        &mut self,
        shared: &Shared,
        buf: &[u8],
        now: i64,
        replies: &mut Vec<Reply>,
    ) -> Option<CommandId> {
        let reads = self.waiting.iter().map(|w| PointRead {
            user: buf.get(w.user.0..w.user.1).unwrap_or_default(),
            event_type: w.event_type.map(|(s, e)| buf.get(s..e).unwrap_or_default()),
            span: w.span,
        });
        // Queries whose ids are not text are answered "nothing" without the store.
        let mut points: Vec<Point<'_>> = scratch::take(&POINTS);
        let mut at: Vec<usize> = scratch::take(&AT);
        let first = replies.len();
        for (i, read) in reads.enumerate() {
            replies.push(reply(nothing(read)));
            if let Some(p) = to_point(shared, read) {
                points.push(p);
                at.push(first + i);
            }
        }
        let mut answers: Vec<Answer> = scratch::take(&ANSWERS);
        shared.store.points(&points, now, &mut answers);
        for (&i, a) in at.iter().zip(answers.drain(..)) {
            if let Some(r) = replies.get_mut(i) {
                *r = reply(a);
            }
        }
        scratch::give(&POINTS, points);
        scratch::give(&AT, at);
        scratch::give(&ANSWERS, answers);
        self.waiting.clear();
        self.id.take()
    }
}
