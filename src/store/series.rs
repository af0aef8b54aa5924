//! `EVT.SERIES` and `EVT.PROFILE` over the store: per-second values of one key, and
//! one user's event types. A user's answers read its one shard; a type's and the
//! total's add up every shard's share, each read at its own `now` (as `EVT.TOTAL`).

use super::Store;

impl Store {
    /// Events of `user` per second over the last `span` seconds up to `now`, oldest
    /// first: O(span).
    pub fn user_series(&self, user: &str, span: u32, now: i64) -> Vec<u64> {
        let span = span.clamp(1, self.window);
        let h = self.hash(user);
        self.lock(self.shard_of(h)).user_series(user, h, span, now)
    }

    /// Events of type `ty` per second, oldest first: O(shards × span).
    pub fn type_series(&self, ty: &str, span: u32, now: i64) -> Vec<u64> {
        let mut out = vec![0; span.clamp(1, self.window) as usize];
        let h = self.hash(ty);
        for i in 0..self.shards.len() {
            self.lock(i).add_type_series(ty, h, now, &mut out);
        }
        out
    }

    /// All events per second, oldest first: O(shards × span).
    pub fn total_series(&self, span: u32, now: i64) -> Vec<u64> {
        let mut out = vec![0; span.clamp(1, self.window) as usize];
        for i in 0..self.shards.len() {
            self.lock(i).add_total_series(now, &mut out);
        }
        out
    }

    /// The sum of `value` of (`user`, `ty`) per second, each correctly rounded,
    /// oldest first: O(span + seconds held).
    pub fn sum_series(&self, user: &str, ty: &str, span: u32, now: i64) -> Vec<f64> {
        let span = span.clamp(1, self.window);
        let (uh, th) = (self.hash(user), self.hash(ty));
        self.lock(self.shard_of(uh))
            .sum_series((user, uh), (ty, th), span, now)
    }

    /// `user`'s event types with an event in the last `span` seconds, ordered by
    /// type: `(type, events, sum of value)`. O(types of the user).
    pub fn profile(&self, user: &str, span: u32, now: i64) -> Vec<(Vec<u8>, u64, f64)> {
        let span = span.clamp(1, self.window);
        let h = self.hash(user);
        self.lock(self.shard_of(h)).profile(user, h, span, now)
    }
}
