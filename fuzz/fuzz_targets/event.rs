//! Event parsing over arbitrary bytes.
//!
//! Asserts only: no panic, and an accepted event respects the limits the store relies
//! on (non-empty ids of at most `max_id_len` bytes, a finite value if any). The error
//! text of a rejected event goes back to the client as a simple error, so it must stay
//! on one line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scalable_analytics::parse_event;

/// Id limits to pick from: tiny (so every input can reach them) and the default.
const MAX_ID: [usize; 4] = [1, 8, 64, 512];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, json)) = data.split_first() else {
        return;
    };
    let max_id_len = MAX_ID[usize::from(pick & 3)];
    match parse_event(json, max_id_len) {
        Ok(ev) => {
            for id in [&ev.user_id, &ev.event_type] {
                assert!(!id.is_empty(), "an empty id was accepted");
                assert!(
                    id.len() <= max_id_len,
                    "an id of {} bytes over the limit {max_id_len}",
                    id.len()
                );
            }
            if let Some(v) = ev.value {
                assert!(v.is_finite(), "a non-finite value {v} was accepted");
            }
        }
        Err(e) => {
            let text = e.to_string();
            assert!(!text.contains(['\r', '\n']), "a multi-line error: {text:?}");
        }
    }
});
