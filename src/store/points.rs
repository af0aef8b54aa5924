//! Point queries answered a run at a time: the pipelined `EVT.USER` and `EVT.SUM`
//! of one connection, as the session gathers them.
//!
//! One query alone waits for two cache misses over a million users (the index slot,
//! then the record: 44% of the server's time under `EVT.USER -P 64`). A run of them
//! takes each shard's lock once and prefetches the slots and records of the queries
//! ahead of the one answered, as a batch of events does (`shard/add.rs`), so the
//! misses of neighbouring queries overlap.

use super::shard::KeyedPoint;
use super::{ENDS, KEYED_POINTS, POINTS_SORTED, Store};
use crate::scratch;

/// One point query.
#[derive(Debug, Clone, Copy)]
pub struct Point<'a> {
    pub user: &'a str,
    /// `None`: the user's events (`EVT.USER`); `Some(type)`: the sum of the values of
    /// the user's events of that type (`EVT.SUM`).
    pub event_type: Option<&'a str>,
    /// The last `span` seconds.
    pub span: u32,
}

/// A point query's answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Count(u64),
    Sum(f64),
}

impl Answer {
    /// The answer when nothing is held: no events, or (`sum`) the sum of none.
    pub fn nothing(sum: bool) -> Answer {
        if sum {
            Answer::Sum(0.0)
        } else {
            Answer::Count(0)
        }
    }
}

impl Point<'_> {
    /// The answer when nothing is held.
    pub fn nothing(&self) -> Answer {
        Answer::nothing(self.event_type.is_some())
    }
}

impl Store {
    /// Answers one point query at `now`.
    pub fn point(&self, p: &Point<'_>, now: i64) -> Answer {
        let q = KeyedPoint {
            point: p,
            user_hash: self.hash(p.user),
            type_hash: p.event_type.map_or(0, |t| self.hash(t)),
            pos: 0,
        };
        self.lock(self.shard_of(q.user_hash)).point(&q, now)
    }

    /// Answers `points` at `now`, in order, into `answers` (cleared first): each
    /// shard's lock is taken once, and the answers are those the queries would get
    /// one by one at that `now`.
    pub fn points(&self, points: &[Point<'_>], now: i64, answers: &mut Vec<Answer>) {
        answers.clear();
        // A run of one (every unpipelined query) needs no grouping.
        if let [p] = points {
            answers.push(self.point(p, now));
            return;
        }
        answers.extend(points.iter().map(Point::nothing));
        let mut last_type: Option<(&str, u64)> = None;
        let mut keyed: Vec<KeyedPoint<'_>> = scratch::take(&KEYED_POINTS);
        keyed.extend(points.iter().enumerate().map(|(pos, p)| {
            let type_hash = match (p.event_type, last_type) {
                (None, _) => 0,
                (Some(ty), Some((last, h))) if ty == last => h,
                (Some(ty), _) => {
                    let h = self.hash(ty);
                    last_type = Some((ty, h));
                    h
                }
            };
            KeyedPoint {
                point: p,
                user_hash: self.hash(p.user),
                type_hash,
                pos,
            }
        }));
        let (mut sorted, mut ends) = (scratch::take(&POINTS_SORTED), scratch::take(&ENDS));
        self.by_shard(&keyed, |k| k.user_hash, &mut sorted, &mut ends);
        let mut from = 0;
        for (shard, &end) in ends.iter().enumerate() {
            let group = sorted.get(from..end).unwrap_or_default();
            from = end;
            if !group.is_empty() {
                self.lock(shard).points(group, now, answers);
            }
        }
        scratch::give(&KEYED_POINTS, keyed);
        scratch::give(&POINTS_SORTED, sorted);
        scratch::give(&ENDS, ends);
    }
}
