//! One shard of the store: the users whose id hashes here, their (user, type) pairs,
//! and this shard's share of the per-type and total counters.
//!
//! Every operation takes `now` and first *normalises* what it touches: seconds at or
//! before `now - window` are cleared on access, so answers are exact even before the
//! background sweep has reached them. The sweep ([`Shard::expire_step`]) then reclaims
//! keys nobody touches, a bounded number per call.
//!
//! A record's *anchor* is the newest second it has held data for. Every occupied slot
//! `i` of its rings stands for the one second `s` in `(anchor - window, anchor]` with
//! `s % window == i`. Moving the anchor forward is safe once the seconds it pushes out
//! are cleared, and they are always stale: the anchor never passes `now`.

use hashbrown::{DefaultHashBuilder, HashTable};
use slab::Slab;
use std::hash::BuildHasher;

use super::index::{Index, prefetch};
use super::name::Name;
use super::ring::{Ring, full_mask, seconds_mask, slot_of};
use super::wheel::Wheel;

/// Wheel entries for event types carry this bit; user entries do not.
const TYPE_KEY: u32 = 1 << 31;

/// The pair of a user with several event types (a user with one type keeps it in its
/// own record).
#[derive(Debug)]
struct PairRec {
    ty: u32,
    ring: Ring,
    running: f64,
}

/// `UserRec::ty` of a user with several event types.
const MANY_TYPES: u32 = u32::MAX;

/// A user with events in the window: 56 bytes (see the layout in `mod.rs`).
#[derive(Debug)]
struct UserRec {
    name: Name,
    anchor: u32,
    /// The user's only event type, or [`MANY_TYPES`].
    ty: u32,
    /// The user's per-second counts; with one type also that pair's per-second sums.
    ring: Ring,
    /// With one type: that pair's running sum, as `f64` bits. With several: the
    /// index of the user's pair table in `Shard::many`.
    word: u64,
}

impl UserRec {
    fn running(&self) -> f64 {
        f64::from_bits(self.word)
    }
}

/// This shard's share of one event type.
#[derive(Debug)]
struct TypeRec {
    name: Name,
    anchor: u32,
    ring: Ring,
    /// Pairs of this shard that refer to the type: it outlives them, so a pair never
    /// refers to a reused type slot.
    pairs: u32,
}

/// This shard's share of the total, one plain counter per second.
#[derive(Debug)]
struct TotalRing {
    anchor: i64,
    counts: Box<[u64]>,
    running: u64,
}

impl TotalRing {
    fn new(window: u32) -> Self {
        TotalRing {
            anchor: i64::MIN / 2,
            counts: vec![0; window as usize].into_boxed_slice(),
            running: 0,
        }
    }

    fn window(&self) -> u32 {
        self.counts.len() as u32
    }

    fn normalize(&mut self, now: i64) {
        let w = i64::from(self.window());
        let stale = seconds_mask(self.anchor - w, now - w, self.window());
        if stale != 0 {
            let mut rest = stale;
            while rest != 0 {
                let slot = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                if let Some(c) = self.counts.get_mut(slot) {
                    self.running -= *c;
                    *c = 0;
                }
            }
        }
        self.anchor = self.anchor.max(now - w);
    }

    fn add(&mut self, sec: i64, n: u64, now: i64) {
        self.normalize(now);
        self.anchor = self.anchor.max(sec);
        if let Some(c) = self.counts.get_mut(slot_of(sec, self.window()) as usize) {
            *c += n;
            self.running += n;
        }
    }

    fn count(&mut self, mask: u64, now: i64) -> u64 {
        self.normalize(now);
        if mask == full_mask(self.window()) {
            return self.running;
        }
        let mut rest = mask;
        let mut sum = 0;
        while rest != 0 {
            let slot = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            sum += self.counts.get(slot).copied().unwrap_or(0);
        }
        sum
    }
}

/// The second in `(anchor - window, anchor]` that occupies `slot`.
fn second_of(slot: u32, anchor: i64, window: u32) -> i64 {
    anchor - (anchor - i64::from(slot)).rem_euclid(i64::from(window))
}

/// The oldest second held by a ring with occupancy `occ` and anchor `anchor`.
fn oldest(occ: u64, anchor: i64, window: u32) -> Option<i64> {
    if occ == 0 {
        return None;
    }
    let first = anchor - i64::from(window) + 1;
    let start = slot_of(first, window);
    let rotated = if start == 0 {
        occ
    } else {
        ((occ >> start) | (occ << (window - start))) & full_mask(window)
    };
    Some(first + i64::from(rotated.trailing_zeros()))
}

/// Why an event was not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddError {
    /// Its second is at or before `now - window`.
    Late,
    /// It needs a new user, type or pair record and the memory limit is reached.
    NoMemory,
}

/// One event as the store sees it.
#[derive(Debug, Clone, Copy)]
pub struct Ingest<'a> {
    pub user: &'a str,
    pub user_hash: u64,
    pub event_type: &'a str,
    pub type_hash: u64,
    /// Its second, already clamped to at most `now`.
    pub second: u32,
    pub value: Option<f64>,
    /// `now` as the caller read it for this event.
    pub now: i64,
    /// Events this stands for: 1 for a live event, more when a snapshot is restored
    /// (then `value` is their sum).
    pub count: u64,
}

/// Counts of what a shard holds.
#[derive(Debug, Default, Clone, Copy)]
pub struct ShardStats {
    pub users: usize,
    pub pairs: usize,
    pub window_events: u64,
    pub wheel_entries: usize,
}

/// One shard; see the module doc.
#[derive(Debug)]
pub struct Shard {
    window: u32,
    now: i64,
    hasher: DefaultHashBuilder,
    users: Slab<UserRec>,
    user_index: Index,
    types: Slab<TypeRec>,
    type_index: HashTable<u32>,
    /// Pair tables of users with several event types.
    many: Slab<HashTable<PairRec>>,
    pairs: usize,
    total: TotalRing,
    wheel: Wheel,
}

fn hash_of(hasher: &DefaultHashBuilder, bytes: &[u8]) -> u64 {
    hasher.hash_one(bytes)
}

impl Shard {
    /// An empty shard for a window of `window` seconds; `hasher` must be the one the
    /// store hashes ids with, so that hashes computed outside the lock are valid here.
    pub fn new(window: u32, hasher: DefaultHashBuilder, now: i64) -> Self {
        Shard {
            window,
            now,
            hasher,
            users: Slab::new(),
            user_index: Index::new(),
            types: Slab::new(),
            type_index: HashTable::new(),
            many: Slab::new(),
            pairs: 0,
            total: TotalRing::new(window),
            wheel: Wheel::new(window, now - i64::from(window)),
        }
    }

    fn w(&self) -> i64 {
        i64::from(self.window)
    }

    /// Moves this shard's clock to `now` unless it is already later: connections read
    /// the clock independently, and a slightly older reading must never bring back a
    /// second that was already expired here.
    fn advance(&mut self, now: i64) -> i64 {
        self.now = self.now.max(now);
        self.now
    }

    fn find_user(&self, name: &str, hash: u64) -> Option<u32> {
        let users = &self.users;
        self.user_index.find(hash, |i| {
            users
                .get(i as usize)
                .is_some_and(|u| u.name.as_bytes() == name.as_bytes())
        })
    }

    fn find_type(&self, name: &str, hash: u64) -> Option<u32> {
        let types = &self.types;
        self.type_index
            .find(hash, |&i| {
                types
                    .get(i as usize)
                    .is_some_and(|t| t.name.as_bytes() == name.as_bytes())
            })
            .copied()
    }

    /// Counts one event.
    ///
    /// With `grow` false (the memory limit is reached), an event that would need a new
    /// user, type or pair record is refused; events for existing records still count.
    pub fn add(&mut self, ev: &Ingest<'_>, grow: bool) -> Result<(), AddError> {
        let now = self.advance(ev.now);
        let sec = i64::from(ev.second).min(now);
        if sec <= now - self.w() {
            return Err(AddError::Late);
        }
        if !grow && self.needs_new_record(ev, now) {
            return Err(AddError::NoMemory);
        }
        self.total.add(sec, ev.count.max(1), now);
        let ty = self.add_to_type(ev.event_type, ev.type_hash, sec, ev.count.max(1), now);
        self.add_to_user(ev, ty, sec, now);
        Ok(())
    }

    /// Whether counting `ev` would create a user, type or pair record.
    fn needs_new_record(&mut self, ev: &Ingest<'_>, now: i64) -> bool {
        let Some(t) = self.find_type(ev.event_type, ev.type_hash) else {
            return true;
        };
        let Some(u) = self.find_user(ev.user, ev.user_hash) else {
            return true;
        };
        if !self.expire_user(u, now) {
            return true;
        }
        match self.users.get(u as usize) {
            Some(u) if u.ty == MANY_TYPES => self
                .many
                .get(u.word as usize)
                .is_none_or(|table| table.find(u64::from(t), |p| p.ty == t).is_none()),
            Some(u) => u.ty != t,
            None => true,
        }
    }

    /// Counts a batch of events of this shard, `results[i]` for `events[i]`.
    ///
    /// While one event is counted, the index slot of the event two ahead and the
    /// record of the event one ahead are already on their way into the cache: with a
    /// million users, waiting for those loads one event at a time was most of the
    /// ingest time.
    pub fn add_many(
        &mut self,
        events: &[&Ingest<'_>],
        grow: bool,
        results: &mut [Result<(), AddError>],
    ) {
        for (k, (ev, result)) in events.iter().zip(results.iter_mut()).enumerate() {
            if let Some(ahead) = events.get(k + 2) {
                self.user_index.prefetch(ahead.user_hash);
            }
            if let Some(next) = events.get(k + 1)
                && let Some(key) = self.user_index.first_candidate(next.user_hash)
                && let Some(rec) = self.users.get(key as usize)
            {
                prefetch(rec);
            }
            *result = self.add(ev, grow);
        }
    }

    fn add_to_type(&mut self, name: &str, hash: u64, sec: i64, n: u64, now: i64) -> u32 {
        let idx = match self.find_type(name, hash) {
            Some(idx) => {
                self.expire_type(idx, now);
                idx
            }
            None => {
                let idx = self.types.insert(TypeRec {
                    name: Name::new(name),
                    anchor: sec as u32,
                    ring: Ring::new(),
                    pairs: 0,
                }) as u32;
                let (types, hasher) = (&self.types, &self.hasher);
                self.type_index.insert_unique(hash, idx, |&i| {
                    types
                        .get(i as usize)
                        .map_or(0, |t| hash_of(hasher, t.name.as_bytes()))
                });
                idx
            }
        };
        let window = self.window;
        if let Some(t) = self.types.get_mut(idx as usize) {
            let before = oldest(t.ring.occupancy(), i64::from(t.anchor), window);
            t.anchor = t.anchor.max(sec as u32);
            t.ring.add(slot_of(sec, window), n);
            let after = oldest(t.ring.occupancy(), i64::from(t.anchor), window);
            if after != before
                && let Some(o) = after
            {
                self.wheel.register(idx | TYPE_KEY, o);
            }
        }
        idx
    }

    fn add_to_user(&mut self, ev: &Ingest<'_>, ty: u32, sec: i64, now: i64) {
        let window = self.window;
        let slot = slot_of(sec, window);
        let value = ev.value.unwrap_or(0.0);
        let n = ev.count.max(1);
        let existing = self
            .find_user(ev.user, ev.user_hash)
            .filter(|&idx| self.expire_user(idx, now));
        let Some(idx) = existing else {
            let mut ring = Ring::new();
            let mut running = 0.0;
            ring.add_with_value(slot, n, value, &mut running);
            let idx = self.users.insert(UserRec {
                name: Name::new(ev.user),
                anchor: sec as u32,
                ty,
                ring,
                word: running.to_bits(),
            }) as u32;
            self.user_index.insert(ev.user_hash, idx);
            self.pairs += 1;
            if let Some(t) = self.types.get_mut(ty as usize) {
                t.pairs += 1;
            }
            self.wheel.register(idx, sec);
            return;
        };
        let Some(u) = self.users.get_mut(idx as usize) else {
            return;
        };
        let before = oldest(u.ring.occupancy(), i64::from(u.anchor), window);
        u.anchor = u.anchor.max(sec as u32);
        let mut new_pair = false;
        if u.ty == ty {
            let mut running = u.running();
            u.ring.add_with_value(slot, n, value, &mut running);
            u.word = running.to_bits();
        } else if u.ty != MANY_TYPES {
            // A second type: each pair gets its own ring; the user's ring becomes the
            // plain union of their counts.
            let first = PairRec {
                ty: u.ty,
                ring: u.ring.clone(),
                running: u.running(),
            };
            let mut second = PairRec {
                ty,
                ring: Ring::new(),
                running: 0.0,
            };
            second
                .ring
                .add_with_value(slot, n, value, &mut second.running);
            u.ring.strip_sums();
            u.ring.add(slot, n);
            let mut table = HashTable::with_capacity(2);
            table.insert_unique(u64::from(first.ty), first, |p| u64::from(p.ty));
            table.insert_unique(u64::from(ty), second, |p| u64::from(p.ty));
            u.ty = MANY_TYPES;
            u.word = self.many.insert(table) as u64;
            new_pair = true;
        } else {
            u.ring.add(slot, n);
            if let Some(table) = self.many.get_mut(u.word as usize) {
                match table.find_mut(u64::from(ty), |p| p.ty == ty) {
                    Some(p) => {
                        p.ring.add_with_value(slot, n, value, &mut p.running);
                    }
                    None => {
                        let mut p = PairRec {
                            ty,
                            ring: Ring::new(),
                            running: 0.0,
                        };
                        p.ring.add_with_value(slot, n, value, &mut p.running);
                        table.insert_unique(u64::from(ty), p, |p| u64::from(p.ty));
                        new_pair = true;
                    }
                }
            }
        }
        let after = oldest(u.ring.occupancy(), i64::from(u.anchor), window);
        if new_pair {
            self.pairs += 1;
            if let Some(t) = self.types.get_mut(ty as usize) {
                t.pairs += 1;
            }
        }
        if after != before
            && let Some(o) = after
        {
            self.wheel.register(idx, o);
        }
    }

    /// Clears the user's seconds at or before `now - window`; removes the user when
    /// nothing is left. Returns whether the user still exists.
    fn expire_user(&mut self, idx: u32, now: i64) -> bool {
        let window = self.window;
        let w = self.w();
        let Some(u) = self.users.get_mut(idx as usize) else {
            return false;
        };
        let stale = seconds_mask(i64::from(u.anchor) - w, now - w, window) & u.ring.occupancy();
        if stale == 0 {
            return true;
        }
        let mut dropped_types: Vec<u32> = Vec::new();
        if u.ty != MANY_TYPES {
            let mut running = u.running();
            u.ring.clear(stale, &mut running);
            u.word = running.to_bits();
            if u.ring.is_empty() {
                dropped_types.push(u.ty);
            }
        } else {
            u.ring.clear(stale, &mut 0.0);
            let table_idx = u.word as usize;
            let mut collapse = None;
            if let Some(table) = self.many.get_mut(table_idx) {
                for p in table.iter_mut() {
                    p.ring.clear(stale, &mut p.running);
                }
                table.retain(|p| {
                    if p.ring.is_empty() {
                        dropped_types.push(p.ty);
                        false
                    } else {
                        true
                    }
                });
                if table.len() <= 1 {
                    collapse = Some(table_idx);
                }
            }
            if let Some(t) = collapse {
                // Back to one type (or none): its ring equals the user's ring again.
                let table = self.many.remove(t);
                match table.into_iter().next() {
                    Some(p) => {
                        u.ty = p.ty;
                        u.ring = p.ring;
                        u.word = p.running.to_bits();
                    }
                    None => {
                        u.ty = 0;
                        u.word = 0;
                    }
                }
            }
        }
        let alive = !u.ring.is_empty();
        let next = oldest(u.ring.occupancy(), i64::from(u.anchor), window);
        self.pairs -= dropped_types.len();
        for ty in dropped_types {
            self.release_type(ty, now);
        }
        if alive {
            if let Some(o) = next {
                self.wheel.register(idx, o);
            }
        } else {
            let u = self.users.remove(idx as usize);
            let hash = hash_of(&self.hasher, u.name.as_bytes());
            self.user_index.remove(hash, idx);
        }
        alive
    }

    /// A pair of type `ty` went away.
    fn release_type(&mut self, ty: u32, now: i64) {
        if let Some(t) = self.types.get_mut(ty as usize) {
            t.pairs = t.pairs.saturating_sub(1);
        }
        self.expire_type(ty, now);
    }

    /// Clears the type's stale seconds; removes it when it is empty and no pair refers
    /// to it. Returns whether it still exists.
    fn expire_type(&mut self, idx: u32, now: i64) -> bool {
        let window = self.window;
        let w = self.w();
        let Some(t) = self.types.get_mut(idx as usize) else {
            return false;
        };
        let occ = t.ring.occupancy();
        let stale = seconds_mask(i64::from(t.anchor) - w, now - w, window) & occ;
        if stale != 0 {
            t.ring.clear(stale, &mut 0.0);
            if let Some(o) = oldest(t.ring.occupancy(), i64::from(t.anchor), window) {
                self.wheel.register(idx | TYPE_KEY, o);
            }
        }
        let Some(t) = self.types.get(idx as usize) else {
            return false;
        };
        if t.ring.is_empty() && t.pairs == 0 {
            let t = self.types.remove(idx as usize);
            let hash = hash_of(&self.hasher, t.name.as_bytes());
            if let Ok(entry) = self.type_index.find_entry(hash, |&i| i == idx) {
                entry.remove();
            }
            return false;
        }
        true
    }

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
    pub fn sum(
        &mut self,
        user: &str,
        user_hash: u64,
        ty: &str,
        type_hash: u64,
        span: u32,
        now: i64,
    ) -> f64 {
        let now = self.advance(now);
        let mask = self.span_mask(span, now);
        let Some(uidx) = self.find_user(user, user_hash) else {
            return 0.0;
        };
        if !self.expire_user(uidx, now) {
            return 0.0;
        }
        let Some(tidx) = self.find_type(ty, type_hash) else {
            return 0.0;
        };
        match self.users.get(uidx as usize) {
            Some(u) if u.ty == tidx => u.ring.sum_in(mask, u.running()),
            Some(u) if u.ty == MANY_TYPES => self
                .many
                .get(u.word as usize)
                .and_then(|table| table.find(u64::from(tidx), |p| p.ty == tidx))
                .map_or(0.0, |p| p.ring.sum_in(mask, p.running)),
            _ => 0.0,
        }
    }

    /// Sweeps the wheel up to `now - window`, handling at most `budget` entries.
    /// Returns whether the sweep is complete.
    pub fn expire_step(&mut self, now: i64, budget: usize) -> bool {
        let now = self.advance(now);
        self.wheel.begin(now - self.w());
        let mut done = 0;
        while done < budget {
            let Some((key, slot)) = self.wheel.next_due() else {
                self.release_if_empty();
                return true;
            };
            done += 1;
            let cutoff = self.wheel.cutoff();
            let (is_type, idx) = (key & TYPE_KEY != 0, key & !TYPE_KEY);
            let (occ, anchor) = if is_type {
                match self.types.get(idx as usize) {
                    Some(t) => (t.ring.occupancy(), t.anchor),
                    None => continue,
                }
            } else {
                match self.users.get(idx as usize) {
                    Some(u) => (u.ring.occupancy(), u.anchor),
                    None => continue,
                }
            };
            match oldest(occ, i64::from(anchor), self.window) {
                Some(o) if o <= cutoff => {
                    if is_type {
                        self.expire_type(idx, now);
                    } else {
                        self.expire_user(idx, now);
                    }
                }
                // Still due later under this very slot (registered again after the
                // slot was taken for this sweep): keep the entry.
                Some(o) if slot_of(o, self.window) == slot => self.wheel.register(key, o),
                // Empty type kept alive by its pairs, or a stale hint: drop it.
                _ => {}
            }
        }
        !self.wheel.pending()
    }

    /// Gives the tables' memory back once the shard holds nothing: a slab or an
    /// index never shrinks while keys are in use, so after a busy window their
    /// capacity would otherwise stay at the peak.
    fn release_if_empty(&mut self) {
        if self.users.is_empty() && self.types.is_empty() && self.users.capacity() > 0 {
            // Every wheel entry left is a stale hint: with no user or type, none can
            // be due.
            let cutoff = self.wheel.cutoff();
            self.users = Slab::new();
            self.user_index = Index::new();
            self.types = Slab::new();
            self.type_index = HashTable::new();
            self.many = Slab::new();
            self.wheel = Wheel::new(self.window, cutoff);
        }
    }

    /// What this shard holds. O(1): INFO and DBSIZE must not walk a million users.
    pub fn stats(&mut self, now: i64) -> ShardStats {
        let now = self.advance(now);
        let full = full_mask(self.window);
        ShardStats {
            users: self.users.len(),
            pairs: self.pairs,
            window_events: self.total.count(full, now),
            wheel_entries: self.wheel.entries(),
        }
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
            if u.ty != MANY_TYPES {
                visit(u.ty, &u.ring, u.running());
            } else if let Some(table) = self.many.get(u.word as usize) {
                for p in table.iter() {
                    visit(p.ty, &p.ring, p.running);
                }
            }
        }
    }

    /// The event types this shard holds, for counting distinct types across shards.
    pub fn type_names(&self, out: &mut Vec<Vec<u8>>) {
        out.extend(
            self.types
                .iter()
                .filter(|(_, t)| !t.ring.is_empty())
                .map(|(_, t)| t.name.as_bytes().to_vec()),
        );
    }

    /// Forgets everything (FLUSHALL).
    pub fn clear(&mut self) {
        let now = self.now;
        *self = Shard::new(self.window, self.hasher.clone(), now);
    }
}

/// The layout of a `slab` slot (its own type is private), for the size test below.
#[cfg(test)]
#[allow(dead_code)]
enum SlabEntry<T> {
    Vacant(usize),
    Occupied(T),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes per active user in `mod.rs` count on these sizes; a field added
    /// without thought shows up here first.
    #[test]
    fn record_sizes_stay_as_documented() {
        assert_eq!(std::mem::size_of::<Ring>(), 16);
        assert_eq!(std::mem::size_of::<Name>(), 24);
        assert_eq!(std::mem::size_of::<UserRec>(), 56);
        assert_eq!(std::mem::size_of::<SlabEntry<UserRec>>(), 56);
        assert_eq!(std::mem::size_of::<PairRec>(), 32);
    }
}
