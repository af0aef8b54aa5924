//! Counting events: into the shard's total, its share of the event's type, and the
//! user's record (creating what is missing).

use hashbrown::HashTable;

use super::super::AddError;
use super::super::exact::Exact;
use super::super::index::Vacancy;
use super::super::name::Name;
use super::super::ring::{Ring, Running, slot_of};
use super::guess::Ahead;
use super::record::{PairRec, TypeRec, Types, UserRec};
use super::{Keyed, Shard, TYPE_KEY, hash_of, newest, oldest};

impl Shard {
    /// Counts one event.
    ///
    /// With `grow` false (the memory limit is reached), an event that would need a new
    /// user, type or pair record is refused; events for existing records still count.
    pub fn add(&mut self, k: &Keyed<'_>, grow: bool) -> Result<(), AddError> {
        let mut run = None;
        let result = self.add_in_run(k, grow, &mut run);
        self.end_run(run);
        result
    }

    /// [`Shard::add`] inside a batch: an event of the same type, second and `now` as
    /// the run before it only adds to the run, whose shares of the shard's total and
    /// of its type are added once, by [`Shard::end_run`].
    ///
    /// Why this is the same as adding each event: the run's first event was counted
    /// in full, so its type holds a count in that second, which cannot be stale while
    /// `now` stays; so the type cannot be removed (a user's expiry releasing it only
    /// clears stale seconds), and a later event of the run would only add to the same
    /// slot (its anchor, its oldest second and the wheel stay as they are).
    fn add_in_run<'a>(
        &mut self,
        k: &Keyed<'a>,
        grow: bool,
        run: &mut Option<TypeRun<'a>>,
    ) -> Result<(), AddError> {
        let ev = k.ev;
        let now = self.advance(ev.now);
        let sec = i64::from(ev.second).min(now);
        if sec <= now - self.w() {
            return Err(AddError::Late);
        }
        if !grow && !self.fits(k, now) {
            return Err(AddError::NoMemory);
        }
        let n = ev.count.max(1);
        let ty = match run {
            Some(r)
                if r.hash == k.type_hash
                    && r.sec == sec
                    && r.now == now
                    && r.name == ev.event_type =>
            {
                r.n += n;
                r.ty
            }
            _ => {
                self.end_run(run.take());
                self.total.add(sec, n, now);
                let ty = self.add_to_type(ev.event_type, k.type_hash, sec, n, now);
                *run = Some(TypeRun {
                    name: ev.event_type,
                    hash: k.type_hash,
                    sec,
                    now,
                    ty,
                    n: 0,
                });
                ty
            }
        };
        self.add_to_user(k, ty, sec, now);
        Ok(())
    }

    /// Adds what a run of events of one type and second left to count.
    fn end_run(&mut self, run: Option<TypeRun<'_>>) {
        let Some(r) = run else {
            return;
        };
        if r.n == 0 {
            return;
        }
        self.total.add(r.sec, r.n, r.now);
        let slot = slot_of(r.sec, self.window);
        if let Some(t) = self.types.get_mut(r.ty as usize) {
            t.ring.add(slot, r.n);
        }
    }

    /// Whether counting `k` needs no table to grow: the records exist, or new ones
    /// fit in room already allocated (slots freed by expiry, index room, an inline
    /// id). Under the memory limit only growth is refused, so a window that has
    /// emptied takes new keys again before its tables are even compacted.
    fn fits(&mut self, k: &Keyed<'_>, now: i64) -> bool {
        let ev = k.ev;
        // The user first: expiring it may release its types.
        let user = self
            .find_user(ev.user, k.user_hash)
            .filter(|&u| self.expire_user(u, now));
        let ty = self
            .find_type(ev.event_type, k.type_hash)
            .filter(|&t| self.expire_type(t, now));
        let type_fits = ty.is_some()
            || (Name::is_inline(ev.event_type)
                && self.types.len() < self.types.capacity()
                && self.type_index.len() < self.type_index.capacity()
                && self.registry.fits(ev.event_type, k.type_hash));
        if !type_fits {
            return false;
        }
        let Some(user) = user.and_then(|u| self.users.get(u as usize)) else {
            return Name::is_inline(ev.user)
                && self.users.len() < self.users.capacity()
                && self.user_index.has_room();
        };
        match (user.types(), ty) {
            (Types::One { ty: own, .. }, Some(t)) => own == t,
            // A second type needs a pair table.
            (Types::One { .. }, None) => false,
            (Types::Many(table), ty) => self.many.get(table).is_some_and(|table| {
                ty.is_some_and(|t| table.find(u64::from(t), |p| p.ty == t).is_some())
                    || table.len() < table.capacity()
            }),
        }
    }

    /// Counts a batch of events of this shard, `results[i]` for `events[i]`.
    ///
    /// While one event is counted, the index slots and records of the events a few
    /// ahead are already on their way into the cache ([`Ahead`]): with a million
    /// users, waiting for those loads one event at a time was most of the ingest time.
    pub fn add_many(
        &mut self,
        events: &[Keyed<'_>],
        grow: bool,
        results: &mut [Result<(), AddError>],
    ) {
        let mut run = None;
        let mut ahead = Ahead::default();
        for (i, (k, result)) in events.iter().zip(results.iter_mut()).enumerate() {
            ahead.before(self, i, |j| events.get(j).map(|e| e.user_hash));
            *result = self.add_in_run(k, grow, &mut run);
        }
        self.end_run(run);
    }

    /// Counts `n` events of type `name` in second `sec`; returns the type's key.
    fn add_to_type(&mut self, name: &str, hash: u64, sec: i64, n: u64, now: i64) -> u32 {
        let existing = self
            .find_type(name, hash)
            .filter(|&idx| self.expire_type(idx, now));
        let idx = match existing {
            Some(idx) => idx,
            None => {
                let id = self.registry.acquire(name, hash, sec, now);
                let idx = self.types.insert(TypeRec {
                    name: Name::new(name),
                    anchor: sec as u32,
                    ring: Ring::new(),
                    pairs: 0,
                    id,
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
            if sec > i64::from(t.anchor) {
                // This shard's newest second of the type moved: the store-wide
                // newest may have too (once per type, shard and second).
                t.anchor = sec as u32;
                self.registry.raise(t.id, sec, now);
            }
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

    /// Counts the event into its user's record (type key `ty`), creating the user or
    /// the pair when they are new.
    fn add_to_user(&mut self, k: &Keyed<'_>, ty: u32, sec: i64, now: i64) {
        let ev = k.ev;
        let (existing, vacancy) = match self.find_user_or_vacancy(ev.user, k.user_hash) {
            // Expiring the user changes the index: its vacancy is not known.
            Ok(idx) => (
                Some(idx).filter(|&i| self.expire_user(i, now)),
                Vacancy::UNKNOWN,
            ),
            Err(vacancy) => (None, vacancy),
        };
        let Some(idx) = existing else {
            self.new_user(k, ty, sec, vacancy);
            return;
        };
        let window = self.window;
        let slot = slot_of(sec, window);
        let (n, value) = (ev.count.max(1), Value::of(k));
        let Some(u) = self.users.get_mut(idx as usize) else {
            return;
        };
        let anchor = i64::from(u.anchor);
        let before = oldest(u.ring.occupancy(), anchor, window);
        let count_before = u.ring.total();
        u.anchor = u.anchor.max(sec as u32);
        let pair = match u.types() {
            Types::One { ty: own, running } if own == ty => {
                let mut running = running;
                value.count(&mut u.ring, slot, n, &mut running);
                u.set_one(ty, running);
                PairNewest::from(anchor, sec)
            }
            Types::One { ty: own, running } => {
                // A second type: each pair gets its own ring; the user's ring becomes
                // the plain union of their counts.
                let first = PairRec {
                    ty: own,
                    ring: u.ring.clone(),
                    running,
                };
                let mut second = PairRec {
                    ty,
                    ring: Ring::new(),
                    running: Running::ZERO,
                };
                value.count(&mut second.ring, slot, n, &mut second.running);
                u.ring.strip_sums(running);
                u.ring.add(slot, n);
                let mut table = HashTable::with_capacity(2);
                table.insert_unique(u64::from(first.ty), first, |p| u64::from(p.ty));
                table.insert_unique(u64::from(ty), second, |p| u64::from(p.ty));
                u.set_many(self.many.insert(table));
                PairNewest::New
            }
            Types::Many(table) => {
                u.ring.add(slot, n);
                match self.many.get_mut(table) {
                    Some(table) => add_to_table(table, ty, (sec, slot), n, value, (anchor, window)),
                    // Unreachable: a user's pair table lives as long as the user.
                    None => PairNewest::Kept,
                }
            }
        };
        let after = oldest(u.ring.occupancy(), i64::from(u.anchor), window);
        let count_after = u.ring.total();
        self.rank_moved(idx, count_before, count_after);
        if sec > anchor {
            self.user_newest.moved(anchor, sec);
        }
        match pair {
            PairNewest::Kept => {}
            PairNewest::Moved(was) => self.pair_newest.moved(was, sec),
            PairNewest::New => {
                self.pair_newest.add(sec);
                self.count_new_pair(ty);
            }
        }
        if after != before
            && let Some(o) = after
        {
            self.wheel.register(idx, o);
        }
    }

    /// A user seen for the first time (in the window) with an event of type key `ty`.
    fn new_user(&mut self, k: &Keyed<'_>, ty: u32, sec: i64, vacancy: Vacancy) {
        let ev = k.ev;
        let mut ring = Ring::new();
        let mut running = Running::ZERO;
        let slot = slot_of(sec, self.window);
        Value::of(k).count(&mut ring, slot, ev.count.max(1), &mut running);
        let count = ring.total();
        let rec = UserRec::new(Name::new(ev.user), sec as u32, ty, ring, running);
        let idx = self.users.insert(rec) as u32;
        self.rank_moved(idx, 0, count);
        // Counting the user into the rankings leaves the index as the lookup found it.
        self.user_index.insert_at(k.user_hash, idx, vacancy);
        self.user_newest.add(sec);
        self.pair_newest.add(sec);
        self.count_new_pair(ty);
        self.wheel.register(idx, sec);
    }

    fn count_new_pair(&mut self, ty: u32) {
        if let Some(t) = self.types.get_mut(ty as usize) {
            t.pairs += 1;
        }
    }
}

/// Events of one type in one second (and one `now`) counted in a row, whose shares
/// of the shard's total and of the type wait to be added once.
struct TypeRun<'a> {
    name: &'a str,
    hash: u64,
    sec: i64,
    now: i64,
    /// The type's key.
    ty: u32,
    /// Events of the run not yet added to the total and the type.
    n: u64,
}

/// What an event adds to its pair's sum of `value`.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    /// One event's value (0 without one).
    Plain(f64),
    /// A snapshot record's exact sum.
    Exact(&'a Exact),
}

impl<'a> Value<'a> {
    fn of(k: &Keyed<'a>) -> Self {
        match k.sum {
            Some(sum) => Value::Exact(sum),
            None => Value::Plain(k.ev.value.unwrap_or(0.0)),
        }
    }

    /// Counts `n` events with this value into `slot` of a pair's ring.
    fn count(self, ring: &mut Ring, slot: u32, n: u64, run: &mut Running) -> bool {
        match self {
            Value::Plain(v) => ring.add_with_value(slot, n, v, run),
            Value::Exact(sum) => ring.add_with_sum(slot, n, sum, run),
        }
    }
}

/// What an event did to its pair's newest second.
enum PairNewest {
    /// Unchanged: the pair already held as late a second.
    Kept,
    /// Moved forward from this second to the event's.
    Moved(i64),
    /// The pair is new.
    New,
}

impl PairNewest {
    /// An event in second `sec` for a pair whose newest second was `was`.
    #[inline]
    fn from(was: i64, sec: i64) -> Self {
        if sec > was {
            PairNewest::Moved(was)
        } else {
            PairNewest::Kept
        }
    }
}

/// Counts an event of second `at.0` (in slot `at.1`) into the pair of type `ty` in a
/// user's pair table; `owner` is the user's anchor (before this event) and window.
fn add_to_table(
    table: &mut HashTable<PairRec>,
    ty: u32,
    at: (i64, u32),
    n: u64,
    value: Value<'_>,
    owner: (i64, u32),
) -> PairNewest {
    let (sec, slot) = at;
    match table.find_mut(u64::from(ty), |p| p.ty == ty) {
        Some(p) => {
            let occ = p.ring.occupancy();
            // The slot already holds this very second (an older one there would have
            // been stale and cleared): nothing moves. Else find the newest second
            // before the add changes it.
            let news = if occ & (1 << slot) != 0 {
                PairNewest::Kept
            } else {
                // A pair in the table always holds a second: the fallback is unused.
                let was = newest(occ, owner.0, owner.1).unwrap_or(owner.0);
                PairNewest::from(was, sec)
            };
            value.count(&mut p.ring, slot, n, &mut p.running);
            news
        }
        None => {
            let mut p = PairRec {
                ty,
                ring: Ring::new(),
                running: Running::ZERO,
            };
            value.count(&mut p.ring, slot, n, &mut p.running);
            table.insert_unique(u64::from(ty), p, |p| u64::from(p.ty));
            PairNewest::New
        }
    }
}
