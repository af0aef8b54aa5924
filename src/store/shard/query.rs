//! Answers: counts and sums over the last `span` seconds, what the shard holds, and
//! its contents for a snapshot. Each first expires what it reads, so answers are
//! exact whether or not the sweep has come by.

use super::super::ring::{Ring, full_mask, seconds_mask};
use super::record::Types;
use super::{Shard, ShardStats, second_of};

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

    /// Sum of `value` over the events of (`user`, `ty`) in the last `span` seconds.
    pub fn sum(&mut self, user: (&str, u64), ty: (&str, u64), span: u32, now: i64) -> f64 {
        let now = self.advance(now);
        let mask = self.span_mask(span, now);
        let Some(uidx) = self.find_user(user.0, user.1) else {
            return 0.0;
        };
        if !self.expire_user(uidx, now) {
            return 0.0;
        }
        let Some(tidx) = self.find_type(ty.0, ty.1) else {
            return 0.0;
        };
        let Some(u) = self.users.get(uidx as usize) else {
            return 0.0;
        };
        match u.types() {
            Types::One { ty, running } if ty == tidx => u.ring.sum_in(mask, running),
            Types::One { .. } => 0.0,
            Types::Many(table) => self
                .many
                .get(table)
                .and_then(|table| table.find(u64::from(tidx), |p| p.ty == tidx))
                .map_or(0.0, |p| p.ring.sum_in(mask, p.running)),
        }
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
    /// `(user, type, second, events, sum of value)`, after expiring what is stale.
    pub fn export(&mut self, now: i64, f: &mut dyn FnMut(&str, &str, i64, u64, f64)) {
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
            let mut visit = |ty: u32, ring: &Ring, running: f64| {
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
                        ring.value_at(rank, running),
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
