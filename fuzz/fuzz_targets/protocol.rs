//! Request framing and command parsing over arbitrary bytes, as a connection runs
//! them: parse a request at the front of the buffer, hand its arguments to
//! `parse_command`, drop what was consumed, repeat until the parser wants more bytes or
//! reports a protocol error.
//!
//! Asserts only what the server relies on: no panic, never more bytes consumed than
//! given (and always some, so the loop ends), never an argument longer than the bulk
//! limit, never more arguments than the argument limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scalable_analytics::{ArgBuf, Limits, Parsed, parse_command, parse_request};

/// Bulk limits to pick from: tiny, the before-login 16 KiB, the 1 MiB default.
const BULK: [usize; 4] = [1, 16, 16 * 1024, 1024 * 1024];
/// Argument-count limits: tiny, the before-login 10, large.
const ARGS: [usize; 4] = [1, 3, 10, 1024 * 1024];

fuzz_target!(|data: &[u8]| {
    // The first byte picks the limits, so one corpus covers the logged-in and the
    // before-login limits as well as tiny ones that every input can reach.
    let Some((&pick, data)) = data.split_first() else {
        return;
    };
    let limits = Limits {
        max_bulk_len: BULK[usize::from(pick & 3)],
        max_args: ARGS[usize::from((pick >> 2) & 3)],
    };
    let window = u32::from(pick >> 4) * 4 + 1;
    let mut argbuf = ArgBuf::default();
    let mut pos = 0;
    while pos < data.len() {
        let buf = &data[pos..];
        match parse_request(buf, &limits, &mut argbuf) {
            Ok(Parsed::Incomplete) => break,
            Ok(Parsed::Empty { consumed }) => {
                assert!(consumed > 0, "an empty request consumed nothing");
                assert!(
                    consumed <= buf.len(),
                    "consumed {consumed} of {}",
                    buf.len()
                );
                pos += consumed;
            }
            Ok(Parsed::Command { consumed, .. }) => {
                assert!(consumed > 0, "a command consumed nothing");
                assert!(
                    consumed <= buf.len(),
                    "consumed {consumed} of {}",
                    buf.len()
                );
                let args = argbuf.args(buf);
                assert!(!args.is_empty(), "a command without a name");
                assert!(
                    args.len() <= limits.max_args,
                    "{} arguments over the limit {}",
                    args.len(),
                    limits.max_args
                );
                let mut seen = 0;
                for arg in args.iter() {
                    assert!(
                        arg.len() <= limits.max_bulk_len,
                        "an argument of {} bytes over the limit {}",
                        arg.len(),
                        limits.max_bulk_len
                    );
                    seen += 1;
                }
                assert_eq!(seen, args.len(), "an argument range outside the buffer");
                let _ = parse_command(args, window);
                pos += consumed;
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.starts_with("ERR Protocol error"), "{text}");
                assert!(!text.contains(['\r', '\n']), "a multi-line error: {text:?}");
                break;
            }
        }
    }
});
