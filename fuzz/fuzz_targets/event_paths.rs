//! Differential: the event parser's fast path against its serde_json path.
//!
//! `parse_event` answers from a hand-written fast path when it is sure and falls back
//! to `parse_slow` (serde_json) otherwise; whenever the fast path answers, the answer
//! must be the slow path's, or the server would admit (or shape) events differently
//! depending on how they are spelled.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scalable_analytics::{parse_event, parse_slow};

const MAX_ID: [usize; 4] = [1, 8, 64, 512];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let max_id_len = MAX_ID[usize::from(pick & 3)];
    let fast_or_slow = parse_event(json, max_id_len);
    let slow = parse_slow(json, max_id_len);
    assert_eq!(
        fast_or_slow,
        slow,
        "the paths disagree on {:?}",
        String::from_utf8_lossy(json)
    );
});
