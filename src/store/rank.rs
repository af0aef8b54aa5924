//! A shard's users ranked by their events in the window: what makes `EVT.TOP USERS`
//! over the whole window a read of a few thousand entries, not of every user.
//!
//! ```text
//!  hist:   low[c] (c < 1024, 4 KB) + high: BTreeMap<c, users>    users by count
//!  region: HashMap<key, count>   every user whose count is ≥ theta (at most CAP)
//!  edge:   BTreeMap<id, key>     the smallest ids among the users whose count is
//!                                theta - 1 (at most EDGE), when known
//! ```
//!
//! A user's *count* here is what its ring holds: the events of its seconds in the
//! window, plus those of seconds that have left it but that neither the sweep nor an
//! access has cleared yet. It only grows by events and only shrinks when seconds are
//! cleared, and the shard reports every change ([`Ranking::moved`]): two counter
//! updates in `hist`, one comparison with `theta`, and, for a user in the region, one
//! update of its entry. A user outside the region costs nothing more.
//!
//! `theta` is kept near the lowest count at which at most [`CAP`] users have that
//! many events or more: when the region overflows, its lowest count is evicted and
//! `theta` rises past it; when it has shrunk below a quarter of `CAP` (counts fall as seconds
//! leave) and a lower `theta` would bring it back to at most half of `CAP`, a rebuild
//! walks the shard's users in bounded steps and lowers it. During a rebuild the users
//! already walked (keys below `next`) are held to the new threshold, the others to
//! the old one, so the region is at every moment exactly the users at or above their
//! threshold.
//!
//! Users tied at the edge: when the region overflows, its lowest count is evicted,
//! and those users are then exactly every user with count `theta - 1` — a million
//! of them when a million users have one event each. The edge keeps the smallest of
//! their ids (ties are broken by id), and stays a prefix of that count's users by id:
//! a user reaching that count joins it if its id is below the edge's largest (or the
//! edge holds them all), a user leaving that count leaves it. It is forgotten while
//! a rebuild moves `theta` down, and made again at the next eviction or table
//! rebuild.
//!
//! The query (`shard/top.rs`) orders the region by count, reads the true count of
//! the first entries (a count is an upper bound of the true one: cleared seconds only
//! lower it), then the edge in id order, and stops once the k-th best is above
//! anything a user outside both can have: a count below `theta - 1`, or that count
//! with a larger id than the edge's. When it cannot conclude — stale seconds pushed
//! the counts down, or no edge is known — it scans the shard instead, in bounded
//! steps. The region holds a user's key and count: 4,096 entries of ~16 bytes per
//! shard, ~100 KB with the table's room; the edge up to 64 ids; whatever the
//! number of users.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use hashbrown::HashMap;

use super::name::Name;

/// Most users the region holds. A region smaller than a quarter of it is rebuilt
/// when a lower threshold would bring it back to at most half of it.
pub const CAP: usize = 4096;
/// Most ids the edge holds: a top list of at most this many is answered from it
/// even when its last entries tie with thousands of others; a longer one with such
/// ties reads the shard. Kept small because a user reaching the edge's count with an
/// id below the edge's largest is inserted in order: few are, and cheaply.
pub const EDGE: usize = 64;
/// Counts below this are counted in an array, the others in a map.
const DIRECT: usize = 1024;

/// A rebuild lowering the threshold to `target`, done for keys below `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Rebuild {
    next: u32,
    target: u64,
}

/// See the module doc.
#[derive(Debug)]
pub struct Ranking {
    /// Most users the region holds: [`CAP`] (smaller in tests).
    cap: usize,
    low: Box<[u32; DIRECT]>,
    high: BTreeMap<u64, u32>,
    region: HashMap<u32, u64>,
    theta: u64,
    rebuild: Option<Rebuild>,
    /// The edge, when known (never during a rebuild).
    edge: Option<Edge>,
    /// Most ids the edge holds.
    edge_cap: usize,
}

/// The smallest ids among the users whose count is `theta - 1`: always a prefix, by
/// id, of those users.
#[derive(Debug, Default)]
pub struct Edge {
    /// Ids kept as records keep them: no allocation for the short ones.
    ids: BTreeMap<Name, u32>,
    /// Whether every user with that count is here.
    complete: bool,
}

/// `a.cmp(b)`, 8 bytes at a time inline. Ids are short, and the call of `memcmp`
/// that `[u8]`'s order makes cost more than the compare itself: with a million users
/// nearly every user reaching the edge's count is compared with its largest id.
#[inline]
fn cmp_ids(a: &[u8], b: &[u8]) -> Ordering {
    let (mut a, mut b) = (a, b);
    while let (Some((x, a_rest)), Some((y, b_rest))) =
        (a.split_first_chunk::<8>(), b.split_first_chunk::<8>())
    {
        if x != y {
            return u64::from_be_bytes(*x).cmp(&u64::from_be_bytes(*y));
        }
        (a, b) = (a_rest, b_rest);
    }
    // One is shorter than 8 bytes: zero-padded heads order them when they differ,
    // and when they do not, the shorter is a prefix of the other.
    head(a).cmp(&head(b)).then(a.len().cmp(&b.len()))
}

/// The first 8 bytes as a big-endian number, zero-padded.
#[inline]
fn head(id: &[u8]) -> u64 {
    match id.first_chunk::<8>() {
        Some(first) => u64::from_be_bytes(*first),
        None => id
            .iter()
            .chain(std::iter::repeat(&0))
            .take(8)
            .fold(0, |h, &b| (h << 8) | u64::from(b)),
    }
}

impl Edge {
    /// The smallest `cap` of `users` (`(key, id)`), which are every user of a count:
    /// selected in O(users), then built in order.
    fn of<'n>(users: impl Iterator<Item = (u32, &'n [u8])>, cap: usize) -> Edge {
        let mut all: Vec<(&[u8], u32)> = users.map(|(k, id)| (id, k)).collect();
        let complete = all.len() <= cap;
        if !complete {
            all.select_nth_unstable(cap - 1);
            all.truncate(cap);
        }
        all.sort_unstable();
        Edge {
            ids: all
                .into_iter()
                .map(|(id, k)| (Name::from_bytes(id), k))
                .collect(),
            complete,
        }
    }

    /// How `id` orders against the largest id held; `None` when none is.
    #[inline]
    fn against_last(&self, id: &[u8]) -> Option<Ordering> {
        self.last().map(|last| cmp_ids(id, last))
    }

    /// A user of the edge's count, not in the edge.
    fn offer(&mut self, key: u32, id: &[u8], cap: usize) {
        let below = self.against_last(id) == Some(Ordering::Less);
        if (self.complete && self.ids.len() < cap) || below {
            self.ids.insert(Name::from_bytes(id), key);
            if self.ids.len() > cap {
                self.ids.pop_last();
                self.complete = false;
            }
        } else {
            self.complete = false;
        }
    }

    /// A user that left the edge's count (in the edge or not).
    fn leave(&mut self, id: &[u8]) {
        // Only ids up to the largest held can be in it: most are past it.
        if matches!(
            self.against_last(id),
            Some(Ordering::Less | Ordering::Equal)
        ) {
            self.ids.remove(id);
        }
    }

    /// The ids and keys, smallest id first.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], u32)> + '_ {
        self.ids.iter().map(|(id, &key)| (id.as_bytes(), key))
    }

    /// Whether every user of the edge's count is in it.
    pub fn complete(&self) -> bool {
        self.complete
    }

    /// Users in it.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Its largest id.
    pub fn last(&self) -> Option<&[u8]> {
        self.ids.last_key_value().map(|(id, _)| id.as_bytes())
    }
}

impl Default for Ranking {
    fn default() -> Self {
        Ranking::new()
    }
}

impl Ranking {
    /// No users.
    pub fn new() -> Self {
        Ranking::with_cap(CAP)
    }

    /// No users; the region holds at most `cap`.
    pub fn with_cap(cap: usize) -> Self {
        Ranking {
            cap: cap.max(1),
            low: Box::new([0; DIRECT]),
            high: BTreeMap::new(),
            region: HashMap::new(),
            theta: 1,
            rebuild: None,
            edge: None,
            edge_cap: EDGE.min(cap / 4).max(2),
        }
    }

    fn hist_add(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        match self.low.get_mut(count as usize) {
            Some(c) => *c += 1,
            None => *self.high.entry(count).or_insert(0) += 1,
        }
    }

    fn hist_sub(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        match self.low.get_mut(count as usize) {
            Some(c) => *c = c.saturating_sub(1),
            None => {
                if let Some(c) = self.high.get_mut(&count) {
                    *c -= 1;
                    if *c == 0 {
                        self.high.remove(&count);
                    }
                }
            }
        }
    }

    /// Users with exactly `count` events.
    fn hist(&self, count: u64) -> u64 {
        match self.low.get(count as usize) {
            Some(&c) => u64::from(c),
            None => self.high.get(&count).map_or(0, |&c| u64::from(c)),
        }
    }

    /// The count from which user `key` belongs to the region.
    #[inline]
    fn threshold(&self, key: u32) -> u64 {
        match self.rebuild {
            Some(r) if key < r.next => r.target,
            _ => self.theta,
        }
    }

    /// User `key`'s count went from `from` to `to` (0: absent); `ids` gives a user's
    /// id by key (read only when the edge or an eviction needs it).
    #[inline]
    pub fn moved<'n>(
        &mut self,
        key: u32,
        from: u64,
        to: u64,
        ids: impl Fn(u32) -> Option<&'n [u8]>,
    ) {
        if from == to {
            return;
        }
        self.hist_sub(from);
        self.hist_add(to);
        let e = self.theta - 1;
        if e > 0
            && (from == e || to == e)
            && let Some(edge) = self.edge.as_mut()
            && let Some(id) = ids(key)
        {
            if from == e {
                edge.leave(id);
            } else {
                edge.offer(key, id, self.edge_cap);
            }
        }
        let thr = self.threshold(key);
        match (from >= thr, to >= thr) {
            (true, true) => {
                if let Some(c) = self.region.get_mut(&key) {
                    *c = to;
                }
            }
            (false, true) => {
                self.region.insert(key, to);
                if self.region.len() > self.cap {
                    self.evict(&ids);
                }
            }
            (true, false) => {
                self.region.remove(&key);
            }
            (false, false) => {}
        }
    }

    /// Drops the region's lowest count until it fits, raising the thresholds past it.
    /// Outside a rebuild the users dropped are every user of that count, `theta - 1`
    /// now: they make the edge.
    fn evict<'n>(&mut self, ids: &impl Fn(u32) -> Option<&'n [u8]>) {
        while self.region.len() > self.cap {
            let Some(min) = self.region.values().copied().min() else {
                return;
            };
            let dropped: Vec<u32> = self
                .region
                .extract_if(|_, c| *c == min)
                .map(|(k, _)| k)
                .collect();
            let whole = self.rebuild.is_none() && min >= self.theta;
            self.theta = self.theta.max(min + 1);
            if let Some(r) = self.rebuild.as_mut() {
                r.target = r.target.max(min + 1);
                if r.target >= self.theta {
                    self.rebuild = None;
                }
            }
            self.edge = whole.then(|| {
                Edge::of(
                    dropped.iter().filter_map(|&k| Some((k, ids(k)?))),
                    self.edge_cap,
                )
            });
        }
    }

    /// Whether a rebuild would grow a region that has shrunk.
    pub fn wants_rebuild(&self) -> bool {
        self.rebuild.is_none()
            && self.theta > 1
            && self.region.len() < self.cap / 4
            && self.region.len() as u64 + self.hist(self.theta - 1) <= (self.cap / 2) as u64
    }

    /// The lowest threshold at which at most half of `CAP` users are at or above it.
    fn target(&self) -> u64 {
        let room = (self.cap / 2) as u64;
        let mut above = 0u64;
        for (&c, &n) in self.high.iter().rev() {
            above += u64::from(n);
            if above > room {
                return c + 1;
            }
        }
        for c in (1..DIRECT).rev() {
            above += u64::from(self.low[c]);
            if above > room {
                return c as u64 + 1;
            }
        }
        1
    }

    /// Starts a rebuild if one is wanted.
    pub fn start_rebuild(&mut self) {
        if !self.wants_rebuild() {
            return;
        }
        let target = self.target();
        if target < self.theta {
            self.rebuild = Some(Rebuild { next: 0, target });
            // The edge's count moves down with theta: unknown until made again.
            self.edge = None;
        }
    }

    /// Whether a rebuild is under way.
    pub fn rebuilding(&self) -> bool {
        self.rebuild.is_some()
    }

    /// One step of the rebuild: users `(key, count)` with keys from where it stopped
    /// up to `until` (exclusive), given in key order. `end` says whether `until` is
    /// past the last key: the rebuild is then done. `ids` as for [`Ranking::moved`].
    pub fn rebuild_step<'n>(
        &mut self,
        users: impl Iterator<Item = (u32, u64)>,
        until: u32,
        end: bool,
        ids: impl Fn(u32) -> Option<&'n [u8]>,
    ) {
        let Some(r) = self.rebuild else {
            return;
        };
        for (key, count) in users {
            if key >= r.next && count >= r.target && count < self.theta {
                self.region.insert(key, count);
            }
        }
        match self.rebuild.as_mut() {
            Some(r) if !end => r.next = r.next.max(until),
            Some(r) => {
                self.theta = r.target;
                self.rebuild = None;
            }
            None => {}
        }
        if self.region.len() > self.cap {
            self.evict(&ids);
        }
    }

    /// Where the rebuild goes on from.
    pub fn rebuild_next(&self) -> Option<u32> {
        self.rebuild.map(|r| r.next)
    }

    /// Every user under new keys (the shard's tables were rebuilt): the region and
    /// the edge are made again from `users`, `(key, count, id)`, at the best threshold.
    pub fn rekey<'n>(&mut self, users: impl Iterator<Item = (u32, u64, &'n [u8])> + Clone) {
        self.rebuild = None;
        self.region.clear();
        self.theta = self.target().max(1);
        let e = self.theta - 1;
        for (key, count, _) in users.clone() {
            if count >= self.theta {
                self.region.insert(key, count);
            }
        }
        self.edge = (e > 0).then(|| {
            Edge::of(
                users.filter(|&(_, c, _)| c == e).map(|(k, _, id)| (k, id)),
                self.edge_cap,
            )
        });
        if self.region.len() > self.cap {
            // Unreachable: the target leaves room; an eviction would make the edge.
            self.edge = None;
            let no_ids = |_| None;
            self.evict(&no_ids);
        }
        self.region.shrink_to(self.cap);
    }

    /// The region: `(key, count)`.
    pub fn region(&self) -> impl Iterator<Item = (u32, u64)> + '_ {
        self.region.iter().map(|(&k, &c)| (k, c))
    }

    /// Users in the region.
    pub fn region_len(&self) -> usize {
        self.region.len()
    }

    /// The most events a user outside the region can have.
    pub fn outside_bound(&self) -> u64 {
        self.theta - 1
    }

    /// The edge, when known: users with `outside_bound()` events, smallest ids.
    pub fn edge(&self) -> Option<&Edge> {
        self.edge.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap as Map;

    /// Ids by key, as the shard hands them: `k` followed by the key, zero-padded,
    /// except that keys in the 9,000s sort before everyone ("a...").
    fn ids() -> Vec<Vec<u8>> {
        (0..10_000u32)
            .map(|k| {
                let prefix = if (9_000..10_000).contains(&k) {
                    "a"
                } else {
                    "k"
                };
                format!("{prefix}{k:05}").into_bytes()
            })
            .collect()
    }

    /// The region is exactly the users at or above their threshold, and the edge a
    /// prefix by id of the users one below `theta`.
    fn check(r: &Ranking, counts: &Map<u32, u64>, ids: &[Vec<u8>]) {
        for (&key, &count) in counts {
            let inside = count >= r.threshold(key) && count > 0;
            assert_eq!(
                r.region.get(&key).copied(),
                inside.then_some(count),
                "user {key}"
            );
        }
        assert!(r.region.len() <= r.cap);
        let total: u64 = (1..=4000).map(|c| r.hist(c)).sum();
        assert_eq!(total, counts.values().filter(|&&c| c > 0).count() as u64);
        if let Some(edge) = r.edge() {
            assert!(r.rebuild.is_none() && r.theta > 1);
            let e = r.theta - 1;
            let mut at_e: Vec<&[u8]> = counts
                .iter()
                .filter(|&(_, &c)| c == e)
                .map(|(&k, _)| ids[k as usize].as_slice())
                .collect();
            at_e.sort_unstable();
            let held: Vec<&[u8]> = edge.iter().map(|(id, _)| id).collect();
            assert!(held.len() <= r.edge_cap);
            assert_eq!(held, at_e[..held.len()], "the edge is a prefix by id");
            assert_eq!(edge.complete(), held.len() == at_e.len() && edge.complete());
            if edge.complete() {
                assert_eq!(held.len(), at_e.len());
            }
        }
    }

    /// Ids compare as their bytes do (short ids, zero bytes, long common prefixes),
    /// and so does an edge's largest id with any other.
    #[test]
    fn ids_compare_as_their_bytes_and_so_does_the_edge() {
        let alphabet: [&[u8]; 4] = [b"", b"\0", b"a", b"\xff"];
        let mut all: Vec<Vec<u8>> = vec![Vec::new()];
        for _ in 0..4 {
            let more: Vec<Vec<u8>> = all
                .iter()
                .flat_map(|id| alphabet.iter().map(move |b| [id.as_slice(), b].concat()))
                .collect();
            all.extend(more);
        }
        all.extend(
            [
                "user1000",
                "user10000",
                "user1000\0",
                "user100",
                "user2",
                "user000000123456",
                "user000000123457",
                "user000000123456\0",
                "user000000123456789",
            ]
            .map(|s| s.as_bytes().to_vec()),
        );
        all.sort();
        all.dedup();
        for a in &all {
            for b in &all {
                assert_eq!(cmp_ids(a, b), a.cmp(b), "{a:?} {b:?}");
            }
            let edge = Edge::of([(0, a.as_slice())].into_iter(), 4);
            for b in &all {
                assert_eq!(
                    edge.against_last(b),
                    Some(b.as_slice().cmp(a)),
                    "{a:?} {b:?}"
                );
            }
        }
        assert_eq!(Edge::default().against_last(b"x"), None);
    }

    #[test]
    fn the_region_follows_counts_up_and_down_and_is_rebuilt() {
        let ids = ids();
        let name = |k: u32| ids.get(k as usize).map(Vec::as_slice);
        let mut r = Ranking::new();
        let mut counts: Map<u32, u64> = Map::new();
        let set = |r: &mut Ranking, counts: &mut Map<u32, u64>, key: u32, to: u64| {
            let from = counts.get(&key).copied().unwrap_or(0);
            r.moved(key, from, to, name);
            counts.insert(key, to);
        };
        // 10,000 users with one event each: the region cannot hold them, and none of
        // them is above anyone else; the edge holds the smallest ids among them.
        for key in 0..10_000 {
            set(&mut r, &mut counts, key, 1);
        }
        check(&r, &counts, &ids);
        assert_eq!((r.region_len(), r.outside_bound()), (0, 1));
        let edge = r.edge().expect("an edge");
        assert_eq!(edge.len(), EDGE);
        assert_eq!(edge.iter().next(), Some((&b"a09000"[..], 9000)));
        assert!(!edge.complete());
        // A hundred climb; one user of the edge among them.
        for key in (0..99).chain([9_000]) {
            set(&mut r, &mut counts, key, 2 + u64::from(key % 100));
        }
        check(&r, &counts, &ids);
        assert_eq!(r.region_len(), 100);
        assert_eq!(
            r.edge().and_then(|e| e.iter().next()),
            Some((&b"a09001"[..], 9001))
        );
        // Most of the others leave; the 1s are few enough to be held again.
        for key in 99..8_999 {
            set(&mut r, &mut counts, key, 0);
        }
        check(&r, &counts, &ids);
        assert!(r.wants_rebuild());
        r.start_rebuild();
        assert!(r.rebuilding() && r.edge().is_none());
        let mut key = 0;
        while r.rebuilding() {
            let until = key + 700;
            let users: Vec<(u32, u64)> = (key..until.min(10_000))
                .map(|k| (k, counts.get(&k).copied().unwrap_or(0)))
                .collect();
            r.rebuild_step(users.into_iter(), until, until >= 10_000, name);
            // Changes between steps respect the two thresholds.
            set(&mut r, &mut counts, 9_500, 1 + u64::from(key % 3));
            check(&r, &counts, &ids);
            key = until;
        }
        check(&r, &counts, &ids);
        assert_eq!(r.outside_bound(), 0, "every user is held again");
        assert_eq!(r.region_len(), 1100);
        // Re-keyed (tables rebuilt): region and edge are made from scratch.
        let users: Vec<(u32, u64, &[u8])> = counts
            .iter()
            .filter(|&(_, &c)| c > 0)
            .map(|(&k, &c)| (k, c, ids[k as usize].as_slice()))
            .collect();
        r.rekey(users.iter().copied());
        check(&r, &counts, &ids);
    }
}
