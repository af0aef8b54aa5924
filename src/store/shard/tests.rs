//! Unit tests of the shard's time helpers.

use super::super::ring::slot_of;
use super::*;

/// The occupied seconds of a ring with occupancy `occ` and anchor `anchor`.
fn seconds(occ: u64, anchor: i64, window: u32) -> Vec<i64> {
    (0..window)
        .filter(|&s| occ & (1 << s) != 0)
        .map(|s| second_of(s, anchor, window))
        .collect()
}

#[test]
fn oldest_and_newest_agree_with_the_seconds_held() {
    for window in [1u32, 2, 7, 60] {
        for anchor in [1000i64, 1001, 1059, 1060, 12345] {
            // Every occupancy pattern of small windows, a spread for the full one.
            let patterns: Vec<u64> = if window <= 7 {
                (0..(1u64 << window)).collect()
            } else {
                (0..5000u64)
                    .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) & full_mask(window))
                    .collect()
            };
            for occ in patterns {
                let held = seconds(occ, anchor, window);
                assert_eq!(oldest(occ, anchor, window), held.iter().copied().min());
                assert_eq!(newest(occ, anchor, window), held.iter().copied().max());
                if let Some(&s) = held.first() {
                    assert_eq!(slot_of(s, window), occ.trailing_zeros());
                }
            }
        }
    }
}

const START: i64 = 1_700_000_000;

fn shard() -> Shard {
    let registry = Arc::new(Registry::new(60, START));
    Shard::new(60, DefaultHashBuilder::default(), registry, START)
}

/// Counts one event of `user`/`ty` in second `sec` (also the caller's `now`).
fn add(s: &mut Shard, user: &str, ty: &str, sec: i64, value: f64, grow: bool) -> bool {
    let ev = Ingest {
        user,
        event_type: ty,
        second: sec as u32,
        value: Some(value),
        now: sec,
        count: 1,
    };
    let k = Keyed {
        ev: &ev,
        user_hash: hash_of(&s.hasher, user.as_bytes()),
        type_hash: hash_of(&s.hasher, ty.as_bytes()),
        pos: 0,
        sum: None,
    };
    match s.add(&k, grow) {
        Ok(()) => true,
        Err(super::super::AddError::NoMemory) => false,
        Err(e) => panic!("{user}/{ty} at {sec}: {e:?}"),
    }
}

fn user_count(s: &mut Shard, user: &str, now: i64) -> u64 {
    let h = hash_of(&s.hasher, user.as_bytes());
    s.user_count(user, h, 60, now)
}

fn sweep(s: &mut Shard, now: i64) {
    while !s.expire_step(now, 64) {}
}

#[test]
fn under_the_memory_limit_new_keys_take_freed_room_but_never_grow_a_table() {
    let mut s = shard();
    for i in 0..2000 {
        add(&mut s, &format!("old{i}"), "click", START, 1.0, true);
    }
    for i in 0..1500 {
        add(&mut s, &format!("kept{i}"), "click", START + 30, 1.0, true);
    }
    let capacity = s.users.capacity();
    assert!(capacity >= 3500);
    // The old ones leave; the shard stays more than a quarter full, so nothing is
    // compacted and their slots are free for new users.
    sweep(&mut s, START + 61);
    assert_eq!(s.users.capacity(), capacity);
    let free = capacity - s.users.len();
    for i in 0..free {
        assert!(add(
            &mut s,
            &format!("new{i}"),
            "click",
            START + 61,
            1.0,
            false
        ));
    }
    assert!(
        !add(&mut s, "one-too-many", "click", START + 61, 1.0, false),
        "the next user needs the table to grow"
    );
    assert!(add(&mut s, "one-too-many", "click", START + 61, 1.0, true));
    // Known pairs always count; a second type for a user needs a pair table, and a
    // new type needs a type slot: both growth.
    assert!(add(&mut s, "kept7", "click", START + 61, 1.0, false));
    assert!(!add(&mut s, "kept7", "view", START + 61, 1.0, false));
    assert!(!add(
        &mut s,
        &"a-long-id-that-is-not-inline".repeat(2),
        "click",
        START + 61,
        1.0,
        false
    ));
    assert_eq!(user_count(&mut s, "kept7", START + 61), 2);
}

#[test]
fn sparse_tables_are_rebuilt_and_every_answer_stays() {
    let mut s = shard();
    // A burst of 20,000 users, then 100 that stay: some with several types and
    // values, one with a heap-allocated id.
    for i in 0..20_000 {
        add(&mut s, &format!("burst{i}"), "click", START, 1.0, true);
    }
    let stayers: Vec<String> = (0..100)
        .map(|i| match i {
            0 => "a-user-id-longer-than-twenty-two-bytes".to_string(),
            _ => format!("stay{i}"),
        })
        .collect();
    let types = ["click", "view", "buy"];
    for (i, u) in stayers.iter().enumerate() {
        for (k, ty) in types.iter().enumerate().take(1 + i % 3) {
            add(&mut s, u, ty, START + 30, (i + k) as f64, true);
            add(&mut s, u, ty, START + 40, 0.5, true);
        }
    }
    let (users_cap, index_cap) = (s.users.capacity(), s.user_index.capacity());
    assert!(users_cap >= 20_100);
    sweep(&mut s, START + 61);
    assert_eq!(s.users.len(), 100);
    assert!(
        s.users.capacity() <= 256,
        "{} slots left",
        s.users.capacity()
    );
    assert!(s.user_index.capacity() < index_cap / 16);
    assert!(
        s.wheel.capacity() <= 1024,
        "wheel kept {}",
        s.wheel.capacity()
    );
    assert!(users_cap > 100 * s.users.capacity());
    let now = START + 61;
    for (i, u) in stayers.iter().enumerate() {
        assert_eq!(user_count(&mut s, u, now), 2 * (1 + i as u64 % 3), "{u}");
        for (k, ty) in types.iter().enumerate().take(1 + i % 3) {
            let (uh, th) = (
                hash_of(&s.hasher, u.as_bytes()),
                hash_of(&s.hasher, ty.as_bytes()),
            );
            assert_eq!(
                s.sum((u, uh), (ty, th), 60, now),
                (i + k) as f64 + 0.5,
                "{u} {ty}"
            );
        }
    }
    let click = hash_of(&s.hasher, b"click");
    assert_eq!(s.type_count("click", click, 60, now), 200);
    assert_eq!(s.stats(now).users, 100);
    // The tables grow again as keys arrive, and everything leaves in the end.
    for i in 0..5_000 {
        add(&mut s, &format!("again{i}"), "view", now, 1.0, true);
    }
    assert_eq!(s.stats(now).users, 5_100);
    sweep(&mut s, now + 60);
    let stats = s.stats(now + 60);
    assert_eq!((stats.users, stats.held, stats.wheel_entries), (0, 0, 0));
    assert_eq!(s.users.capacity(), 0);
}

mod ranking {
    //! The ranking's region against a model, with a region of a few users so that
    //! every path runs: overflow and eviction, shrinking and rebuilds, stale
    //! counts before the sweep, and the scan when the region cannot tell.

    use super::super::super::rank::Ranking;
    use super::super::super::top::{Score, ShardScan};
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Step {
        /// `n` events of user `u`, `back` seconds ago.
        Add {
            u: u16,
            n: u8,
            back: i64,
        },
        /// A burst: every user below `upto` gets one event now.
        Burst {
            upto: u16,
        },
        Advance(i64),
        Sweep(usize),
        Compact,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            8 => (0u16..40, 1u8..6, 0i64..65).prop_map(|(u, n, back)| Step::Add { u, n, back }),
            1 => (1u16..200).prop_map(|upto| Step::Burst { upto }),
            3 => prop_oneof![0i64..3, 0i64..70].prop_map(Step::Advance),
            2 => (1usize..8).prop_map(Step::Sweep),
            1 => Just(Step::Compact),
        ]
    }

    fn add_n(s: &mut Shard, user: &str, sec: i64, now: i64, n: u64) {
        let ev = Ingest {
            user,
            event_type: "t",
            second: sec as u32,
            value: None,
            now,
            count: n,
        };
        let k = Keyed {
            ev: &ev,
            user_hash: hash_of(&s.hasher, user.as_bytes()),
            type_hash: hash_of(&s.hasher, b"t"),
            pos: 0,
            sum: None,
        };
        let _ = s.add(&k, true);
    }

    /// Top `k` of the model: events of each user in the last `span` seconds.
    fn model_top(
        events: &[(String, i64, u64)],
        now: i64,
        span: u32,
        k: usize,
    ) -> Vec<(Score, Vec<u8>)> {
        let mut by: BTreeMap<&str, u64> = BTreeMap::new();
        for (u, sec, n) in events {
            if *sec > now - i64::from(span) && *sec <= now {
                *by.entry(u).or_insert(0) += n;
            }
        }
        let mut v: Vec<(u64, &str)> = by.into_iter().map(|(u, n)| (n, u)).collect();
        v.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(b.1)));
        v.truncate(k);
        v.into_iter()
            .map(|(n, u)| (Score::Count(n), u.as_bytes().to_vec()))
            .collect()
    }

    fn scan(s: &mut Shard, k: usize, span: u32, now: i64) -> Vec<(Score, Vec<u8>)> {
        let mut scan = ShardScan::new(k, now);
        while !s.scan_users(&mut scan, span, 7) {}
        scan.best.into_vec()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn the_region_answers_exactly_or_says_it_cannot(steps in proptest::collection::vec(step(), 1..120)) {
            let mut s = shard();
            s.rank = Ranking::with_cap(8);
            let mut now = START;
            let mut events: Vec<(String, i64, u64)> = Vec::new();
            for st in &steps {
                match st {
                    Step::Add { u, n, back } => {
                        let sec = now - back;
                        if sec > now - 60 {
                            let name = format!("u{u:03}");
                            add_n(&mut s, &name, sec, now, u64::from(*n));
                            events.push((name, sec, u64::from(*n)));
                        }
                    }
                    Step::Burst { upto } => {
                        for u in 0..*upto {
                            let name = format!("u{u:03}");
                            add_n(&mut s, &name, now, now, 1);
                            events.push((name, now, 1));
                        }
                    }
                    Step::Advance(by) => now += by,
                    Step::Sweep(steps) => {
                        for _ in 0..*steps {
                            s.expire_step(now, 3);
                        }
                    }
                    Step::Compact => s.compact_now(now),
                }
                for (k, span) in [(1, 60), (3, 60), (5, 60), (3, 10), (12, 60)] {
                    let want = model_top(&events, now, span, k);
                    prop_assert_eq!(&scan(&mut s, k, span, now), &want, "scan k {} span {}", k, span);
                    if let Some(fast) = s.top_users_fast(k, span, now) {
                        prop_assert_eq!(&fast, &want, "region k {} span {}", k, span);
                    }
                }
            }
        }
    }

    #[test]
    fn a_million_ones_and_count_ten_is_the_ten_smallest_ids() {
        let mut s = shard();
        for i in (0..20_000u32).rev() {
            add_n(&mut s, &format!("user{i:06}"), START, START, 1);
        }
        let want: Vec<(Score, Vec<u8>)> = (0..10)
            .map(|i| (Score::Count(1), format!("user{i:06}").into_bytes()))
            .collect();
        assert_eq!(scan(&mut s, 10, 60, START), want);
        assert_eq!(
            s.top_users_fast(10, 60, START),
            Some(want),
            "20,000 tie: the edge holds the smallest ids"
        );
        // More than the edge holds are asked for: a scan.
        assert_eq!(s.top_users_fast(2000, 60, START), None);
        // One climbs: the region holds it and the rest still ties.
        add_n(&mut s, "user019999", START, START, 1);
        let got = scan(&mut s, 2, 60, START);
        assert_eq!(
            got,
            vec![
                (Score::Count(2), b"user019999".to_vec()),
                (Score::Count(1), b"user000000".to_vec())
            ]
        );
        assert_eq!(
            s.top_users_fast(1, 60, START),
            Some(vec![(Score::Count(2), b"user019999".to_vec())])
        );
        assert_eq!(s.top_users_fast(2, 60, START), Some(got));
    }
}
