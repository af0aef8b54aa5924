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
