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
