//! `EVT.TOP`: the k largest users, event types, or users' sums of one type, over the
//! window or its last seconds — exact, ties by id.
//!
//! Users live in exactly one shard, so the k best of the store are among the k best
//! of each shard: each shard gives its own, and the merge is exact. Event types are
//! spread over the shards, so their counts are added up across shards first.
//!
//! Every answer is built by a [`TopScan`] that the caller drives in bounded steps
//! ([`Store::top_step`]): at most a budget of records under one shard's lock per
//! step, so that a scan over a million users never holds a lock, or the thread that
//! drives it, for long. A shard's share is read at one `now`: if the shard's clock
//! moves on between two steps (a second boundary), its scan starts again at the new
//! `now`, so no share mixes two windows. Top users over the whole window first try
//! the shard's ranking (`store/rank.rs`), which answers from a few thousand entries.

use std::cmp::Ordering;

use hashbrown::HashMap;

use super::Store;

/// What a top list ranks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ranked {
    /// Users by their events.
    Users,
    /// Event types by their events.
    Types,
    /// Users by their sum of `value` over events of this type.
    Sum(String),
}

/// A score in a top list.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Score {
    Count(u64),
    Sum(f64),
}

impl Score {
    /// Higher scores rank first. Sums are never NaN; `total_cmp` orders the
    /// infinities at the ends.
    fn cmp(self, other: Score) -> Ordering {
        match (self, other) {
            (Score::Count(a), Score::Count(b)) => a.cmp(&b),
            (Score::Sum(a), Score::Sum(b)) => a.total_cmp(&b),
            (Score::Count(_), Score::Sum(_)) => Ordering::Greater,
            (Score::Sum(_), Score::Count(_)) => Ordering::Less,
        }
    }
}

/// Whether `(a, a_id)` ranks before `(b, b_id)`: higher score, then smaller id.
fn before(a: Score, a_id: &[u8], b: Score, b_id: &[u8]) -> bool {
    match a.cmp(b) {
        Ordering::Greater => true,
        Ordering::Less => false,
        Ordering::Equal => a_id < b_id,
    }
}

/// The k best `(score, id)` seen so far, best first.
#[derive(Debug, Clone)]
pub struct Best {
    k: usize,
    items: Vec<(Score, Vec<u8>)>,
}

impl Best {
    /// Keeps the `k` best.
    pub fn new(k: usize) -> Self {
        Best {
            k,
            items: Vec::with_capacity(k.min(1024)),
        }
    }

    /// Whether `k` are held.
    pub fn full(&self) -> bool {
        self.items.len() >= self.k
    }

    /// The k-th best score, once `k` are held.
    pub fn worst(&self) -> Option<Score> {
        if self.full() {
            self.items.last().map(|(s, _)| *s)
        } else {
            None
        }
    }

    /// The k-th best score and id, once `k` are held.
    pub fn worst_entry(&self) -> Option<(Score, &[u8])> {
        if self.full() {
            self.items.last().map(|(s, id)| (*s, id.as_slice()))
        } else {
            None
        }
    }

    /// Offers `(score, id)`; the id is copied only if it makes the list.
    pub fn offer(&mut self, score: Score, id: &[u8]) {
        if self.k == 0 {
            return;
        }
        if self.full()
            && let Some((ws, wid)) = self.items.last()
            && !before(score, id, *ws, wid)
        {
            return;
        }
        let at = self
            .items
            .partition_point(|(s, i)| before(*s, i, score, id));
        self.items.insert(at, (score, id.to_vec()));
        self.items.truncate(self.k);
    }

    /// The list, best first.
    pub fn into_vec(self) -> Vec<(Score, Vec<u8>)> {
        self.items
    }
}

/// A shard's share of a scan under way.
#[derive(Debug)]
pub struct ShardScan {
    /// The `now` the share is read at (the shard's own).
    pub now: i64,
    /// The next slab key to read.
    pub next: u32,
    pub best: Best,
    /// Event types' counts (`Ranked::Types`).
    pub types: HashMap<Vec<u8>, u64>,
}

impl ShardScan {
    pub fn new(k: usize, now: i64) -> Self {
        ShardScan {
            now,
            next: 0,
            best: Best::new(k),
            types: HashMap::new(),
        }
    }

    /// Reads the share again from the start, at `now`.
    pub fn restart(&mut self, now: i64) {
        *self = ShardScan::new(self.best.k, now);
    }
}

/// A top list being built; see the module doc.
#[derive(Debug)]
pub struct TopScan {
    what: Ranked,
    k: usize,
    span: u32,
    now: i64,
    shard: usize,
    current: Option<ShardScan>,
    found: Vec<(Score, Vec<u8>)>,
    types: HashMap<Vec<u8>, u64>,
}

impl TopScan {
    /// The list: at most `k` `(score, id)`, best first.
    pub fn finish(self) -> Vec<(Score, Vec<u8>)> {
        let mut best = Best::new(self.k);
        for (score, id) in &self.found {
            best.offer(*score, id);
        }
        for (id, &n) in &self.types {
            best.offer(Score::Count(n), id);
        }
        best.into_vec()
    }
}

impl Store {
    /// Starts a top list of `k` over the last `span` seconds up to `now`.
    pub fn top(&self, what: Ranked, k: usize, span: u32, now: i64) -> TopScan {
        TopScan {
            what,
            k,
            span: span.clamp(1, self.window),
            now,
            shard: 0,
            current: None,
            found: Vec::new(),
            types: HashMap::new(),
        }
    }

    /// One step of `scan`: at most about `budget` records read under each lock taken.
    /// Returns whether the list is complete ([`TopScan::finish`]).
    pub fn top_step(&self, scan: &mut TopScan, budget: usize) -> bool {
        let Some(shard_no) = (scan.shard < self.shards.len()).then_some(scan.shard) else {
            return true;
        };
        let mut shard = self.lock(shard_no);
        if scan.current.is_none() && scan.what == Ranked::Users && scan.k > 0 {
            // The ranking answers most full-window (and many shorter) lists alone.
            if let Some(list) = shard.top_users_fast(scan.k, scan.span, scan.now) {
                scan.found.extend(list);
                scan.shard += 1;
                return scan.shard >= self.shards.len();
            }
        }
        let k = scan.k;
        let cur = scan
            .current
            .get_or_insert_with(|| ShardScan::new(k, scan.now));
        let done = match &scan.what {
            _ if k == 0 => true,
            Ranked::Users => shard.scan_users(cur, scan.span, budget),
            Ranked::Types => shard.scan_types(cur, scan.span, budget),
            Ranked::Sum(ty) => {
                let hash = self.hash(ty);
                shard.scan_sums(cur, (ty, hash), scan.span, budget)
            }
        };
        drop(shard);
        if done {
            if let Some(cur) = scan.current.take() {
                scan.found.extend(cur.best.into_vec());
                for (id, n) in cur.types {
                    *scan.types.entry(id).or_insert(0) += n;
                }
            }
            scan.shard += 1;
        }
        scan.shard >= self.shards.len()
    }

    /// The whole list at once (tests, and transactions, which hold every writer off
    /// while they run anyway).
    pub fn top_now(&self, what: Ranked, k: usize, span: u32, now: i64) -> Vec<(Score, Vec<u8>)> {
        let mut scan = self.top(what, k, span, now);
        while !self.top_step(&mut scan, SCAN_BUDGET) {}
        scan.finish()
    }
}

/// Records a scan step reads under one lock: 0.15 ms for a million users on this
/// 2-core machine (`cargo bench --bench store -- top`: `scan_step_window3`), so a
/// client waits at most about that for a shard, or for its thread, while a scan
/// goes on.
pub const SCAN_BUDGET: usize = 16_384;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_k_highest_ties_by_id() {
        let mut b = Best::new(3);
        for (s, id) in [(5, "e"), (9, "a"), (5, "b"), (5, "a"), (1, "z"), (9, "b")] {
            b.offer(Score::Count(s), id.as_bytes());
        }
        let got: Vec<(u64, &str)> = b
            .items
            .iter()
            .map(|(s, id)| match s {
                Score::Count(n) => (*n, std::str::from_utf8(id).unwrap()),
                Score::Sum(_) => unreachable!(),
            })
            .collect();
        assert_eq!(got, [(9, "a"), (9, "b"), (5, "a")]);
        let mut s = Best::new(2);
        for (v, id) in [(f64::NEG_INFINITY, "x"), (0.5, "y"), (f64::INFINITY, "z")] {
            s.offer(Score::Sum(v), id.as_bytes());
        }
        assert_eq!(
            s.into_vec(),
            vec![
                (Score::Sum(f64::INFINITY), b"z".to_vec()),
                (Score::Sum(0.5), b"y".to_vec())
            ]
        );
    }
}
