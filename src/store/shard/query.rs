//! Answers: counts and sums over the last `span` seconds, what the shard holds, and
//! its contents for a snapshot. Each first expires what it reads, so answers are
//! exact whether or not the sweep has come by.

use super::super::exact::Exact;
use super::super::ring::{Ring, Running, full_mask, seconds_mask, slot_of};
use super::guess::Ahead;
use super::record::Types;
use super::top::live_mask;
use super::{KeyedPoint, Shard, ShardStats, second_of};
use crate::store::Answer;

impl Shard {
    /// The mask of the last `span` seconds up to `now`.
    fn span_mask(&self, span: u32, now: i64) -> u64 {
        seconds_mask(now - i64::from(span), now, self.window)
    }

    /// Events of `user` in the last `span` seconds.
    pub fn user_count(&mut self, user: &str, hash: u64, span: u32, now: i64) -> u64 {
        let now = self.advance(now);
        let mask = self.span_mask(span, now);
        match self.find_user(user, hash) {
            Some(idx) if self.expire_user(idx, now) => self
                .users
                .get(idx as usize)
                .map_or(0, |u| u.ring.count_in(mask)),
            _ => 0,
        }
    }

    /// Answers this shard's share of a run of point queries into `answers` (at each
    /// query's `pos`), prefetching the users of the queries ahead ([`Ahead`]).
    pub fn points(&mut self, group: &[KeyedPoint<'_>], now: i64, answers: &mut [Answer]) {
        let mut ahead = Ahead::default();
        for (i, q) in group.iter().enumerate() {
            ahead.before(self, i, |j| group.get(j).map(|q| q.user_hash));
            let answer = self.point(q, now);
            if let Some(a) = answers.get_mut(q.pos) {
                *a = answer;
            }
        }
    }

    /// Answers one point query.
    pub fn point(&mut self, q: &KeyedPoint<'_>, now: i64) -> Answer {
        let p = q.point;
        match p.event_type {
            None => Answer::Count(self.user_count(p.user, q.user_hash, p.span, now)),
            Some(ty) => {
                Answer::Sum(self.sum((p.user, q.user_hash), (ty, q.type_hash), p.span, now))
            }
        }
    }

    /// This shard's events of type `ty` in the last `span` seconds.
    pub fn type_count(&mut self, ty: &str, hash: u64, span: u32, now: i64) -> u64 {
        let now = self.advance(now);
        let mask = self.span_mask(span, now);
        match self.find_type(ty, hash) {
            Some(idx) if self.expire_type(idx, now) => self
                .types
                .get(idx as usize)
                .map_or(0, |t| t.ring.count_in(mask)),
            _ => 0,
        }
    }

    /// This shard's events in the last `span` seconds.
    pub fn total(&mut self, span: u32, now: i64) -> u64 {
        let now = self.advance(now);
        let mask = self.span_mask(span, now);
        self.total.count(mask, now)
    }

    /// Sum of `value` over the events of (`user`, `ty`) in the last `span` seconds,
    /// correctly rounded.
    pub fn sum(&mut self, user: (&str, u64), ty: (&str, u64), span: u32, now: i64) -> f64 {
        let now = self.advance(now);
        let mask = self.span_mask(span, now);
        self.pair(user, ty, now)
            .map_or(0.0, |(ring, running, _)| ring.sum_in(mask, running))
    }

    /// The ring and running sum of (`user`, `ty`), with the user's anchor.
    fn pair(
        &mut self,
        user: (&str, u64),
        ty: (&str, u64),
        now: i64,
    ) -> Option<(&Ring, Running, i64)> {
        let uidx = self.find_user(user.0, user.1)?;
        if !self.expire_user(uidx, now) {
            return None;
        }
        let tidx = self.find_type(ty.0, ty.1)?;
        let u = self.users.get(uidx as usize)?;
        let anchor = i64::from(u.anchor);
        match u.types() {
            Types::One { ty, running } if ty == tidx => Some((&u.ring, running, anchor)),
            Types::One { .. } => None,
            Types::Many(table) => self
                .many
                .get(table)?
                .find(u64::from(tidx), |p| p.ty == tidx)
                .map(|p| (&p.ring, p.running, anchor)),
        }
    }

    /// Events of `user` per second over the last `span` seconds, oldest first.
    pub fn user_series(&mut self, user: &str, hash: u64, span: u32, now: i64) -> Vec<u64> {
        let now = self.advance(now);
        let window = self.window;
        let Some(u) = self
            .find_user(user, hash)
            .and_then(|i| self.users.get(i as usize))
        else {
            return vec![0; span as usize];
        };
        let ring = &u.ring;
        per_second(i64::from(u.anchor), span, now, window, |slot| {
            ring.count_at(slot)
        })
    }

    /// This shard's events of type `ty` per second, added to `out` (oldest first).
    pub fn add_type_series(&mut self, ty: &str, hash: u64, now: i64, out: &mut [u64]) {
        let now = self.advance(now);
        let window = self.window;
        let Some(t) = self
            .find_type(ty, hash)
            .and_then(|i| self.types.get(i as usize))
        else {
            return;
        };
        let ring = &t.ring;
        let series = per_second(i64::from(t.anchor), out.len() as u32, now, window, |slot| {
            ring.count_at(slot)
        });
        for (o, n) in out.iter_mut().zip(series) {
            *o += n;
        }
    }

    /// This shard's events per second, added to `out` (oldest first).
    pub fn add_total_series(&mut self, now: i64, out: &mut [u64]) {
        let now = self.advance(now);
        self.total.add_series(out.len() as u32, now, out);
    }

    /// The sum of `value` of (`user`, `ty`) per second, oldest first.
    pub fn sum_series(
        &mut self,
        user: (&str, u64),
        ty: (&str, u64),
        span: u32,
        now: i64,
    ) -> Vec<f64> {
        let now = self.advance(now);
        let window = self.window;
        let Some((ring, running, anchor)) = self.pair(user, ty, now) else {
            return vec![0.0; span as usize];
        };
        let mut by_slot = [0.0f64; 64];
        for (slot, sum) in ring.second_sums(running) {
            if let Some(s) = by_slot.get_mut(slot as usize) {
                *s = sum;
            }
        }
        per_second(anchor, span, now, window, |slot| {
            by_slot.get(slot as usize).copied().unwrap_or(0.0)
        })
    }

    /// The user's event types with events in the last `span` seconds: `(type, events,
    /// sum of value)`, ordered by type.
    pub fn profile(
        &mut self,
        user: &str,
        hash: u64,
        span: u32,
        now: i64,
    ) -> Vec<(Vec<u8>, u64, f64)> {
        let now = self.advance(now);
        let window = self.window;
        let Some(uidx) = self.find_user(user, hash) else {
            return Vec::new();
        };
        let Some(u) = self.users.get(uidx as usize) else {
            return Vec::new();
        };
        let mask = live_mask(i64::from(u.anchor), span, now, window);
        let mut pairs: Vec<(u32, &Ring, Running)> = Vec::new();
        match u.types() {
            Types::One { ty, running } => pairs.push((ty, &u.ring, running)),
            Types::Many(table) => {
                for p in self.many.get(table).into_iter().flatten() {
                    pairs.push((p.ty, &p.ring, p.running));
                }
            }
        }
        let mut out: Vec<(Vec<u8>, u64, f64)> = pairs
            .into_iter()
            .filter_map(|(ty, ring, running)| {
                let n = ring.count_in(mask);
                let name = self.types.get(ty as usize)?.name.as_bytes().to_vec();
                (n > 0).then(|| (name, n, ring.sum_in(mask, running)))
            })
            .collect();
        out.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// What this shard holds. O(1): INFO and DBSIZE must not walk a million users.
    pub fn stats(&mut self, now: i64) -> ShardStats {
        let now = self.advance(now);
        let full = full_mask(self.window);
        ShardStats {
            users: self.user_newest.active(self.window),
            pairs: self.pair_newest.active(self.window),
            window_events: self.total.count(full, now),
            wheel_entries: self.wheel.entries(),
            held: self.users.len() + self.types.len() + self.pair_newest.len() as usize,
        }
    }

    /// Users and (user, type) pairs with an event in the last `span` seconds: O(span).
    pub fn active(&mut self, span: u32, now: i64) -> (u64, u64) {
        self.advance(now);
        (self.user_newest.active(span), self.pair_newest.active(span))
    }

    /// Hands every occupied second of every (user, type) pair to `f` as
    /// `(user, type, second, events, exact sum of value)`, after expiring what is
    /// stale.
    pub fn export(&mut self, now: i64, f: &mut dyn FnMut(&str, &str, i64, u64, &Exact)) {
        let now = self.advance(now);
        let keys: Vec<u32> = self.users.iter().map(|(k, _)| k as u32).collect();
        for k in keys {
            self.expire_user(k, now);
        }
        let window = self.window;
        let type_name = |ty: u32| {
            self.types
                .get(ty as usize)
                .and_then(|t| std::str::from_utf8(t.name.as_bytes()).ok())
                .unwrap_or_default()
        };
        for (_, u) in self.users.iter() {
            let user = std::str::from_utf8(u.name.as_bytes()).unwrap_or_default();
            let anchor = i64::from(u.anchor);
            let mut visit = |ty: u32, ring: &Ring, running: Running| {
                let mut rest = ring.occupancy();
                let mut rank = 0;
                while rest != 0 {
                    let slot = rest.trailing_zeros();
                    rest &= rest - 1;
                    f(
                        user,
                        type_name(ty),
                        second_of(slot, anchor, window),
                        ring.count_at(slot),
                        &ring.second_exact(rank, running),
                    );
                    rank += 1;
                }
            };
            match u.types() {
                Types::One { ty, running } => visit(ty, &u.ring, running),
                Types::Many(table) => {
                    for p in self.many.get(table).into_iter().flatten() {
                        visit(p.ty, &p.ring, p.running);
                    }
                }
            }
        }
    }
}

/// `f(slot)` for each of the last `span` seconds up to `now`, oldest first, for a
/// record anchored at `anchor` (0 for the seconds its ring does not hold).
fn per_second<T: Default>(
    anchor: i64,
    span: u32,
    now: i64,
    window: u32,
    mut f: impl FnMut(u32) -> T,
) -> Vec<T> {
    let w = i64::from(window);
    let first = now - i64::from(span) + 1;
    (0..i64::from(span))
        .map(|i| {
            let sec = first + i;
            if sec > anchor - w && sec <= anchor {
                f(slot_of(sec, window))
            } else {
                T::default()
            }
        })
        .collect()
}
