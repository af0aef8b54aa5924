//! The fast path held to the slow one: it may decline anything, but what it
//! answers must be the slow path's answer.

use super::*;
use crate::event::parse_slow;
use proptest::prelude::*;

/// The fast path may decline anything, but what it accepts must be exactly what
/// the serde_json path accepts, bit for bit.
fn agrees(json: &[u8]) -> Result<(), TestCaseError> {
    if let Some(fast) = parse(json, 16) {
        let slow = parse_slow(json, 16);
        prop_assert!(
            slow.is_ok(),
            "fast accepted what slow rejects: {:?} -> {:?}",
            String::from_utf8_lossy(json),
            slow
        );
        let slow = slow.unwrap();
        prop_assert_eq!(&fast.user_id, &slow.user_id);
        prop_assert_eq!(&fast.event_type, &slow.event_type);
        prop_assert_eq!(fast.timestamp, slow.timestamp);
        prop_assert_eq!(fast.value.map(f64::to_bits), slow.value.map(f64::to_bits));
    }
    Ok(())
}

#[test]
fn takes_the_common_shapes() {
    let seed = br#"{"user_id": "user123", "event_type": "click", "timestamp": 1678886400, "attributes": {"item_id": "item456", "value": 10.5}}"#;
    let ev = parse(seed, 512).expect("fast path takes the seed event");
    assert_eq!(
        (&*ev.user_id, &*ev.event_type, ev.timestamp, ev.value),
        ("user123", "click", 1678886400, Some(10.5))
    );
    for json in [
        &br#"{"user_id":"u","event_type":"t","timestamp":0}"#[..],
        br#" {"timestamp":5,"x":[1,{"y":null}],"event_type":"t","user_id":"u","attributes":"no"} "#,
        br#"{"user_id":"u","event_type":"t","timestamp":1,"attributes":{"value":"10.5","value":-2e3}}"#,
    ] {
        assert!(parse(json, 512).is_some(), "{}", String::from_utf8_lossy(json));
    }
    // Declined, for the slow path to decide.
    for json in [
        &br#"{"user_id":"us\u0041","event_type":"t","timestamp":1}"#[..],
        br#"{"user_id":"u","event_type":"t","timestamp":1.5}"#,
        br#"{"user_id":"u","user_id":"v","event_type":"t","timestamp":1}"#,
        br#"{"user_id":"","event_type":"t","timestamp":1}"#,
        br#"{"user_id":"u","event_type":"t","timestamp":1,}"#,
        br#"{"user_id":"u","event_type":"t"}"#,
        br#"{"user_id":"u","event_type":"t","timestamp":1} x"#,
        br#"{"user_id":"u","event_type":"t","timestamp":1,"d":[[[[[[[[[1]]]]]]]]]}"#,
    ] {
        assert!(
            parse(json, 512).is_none(),
            "{}",
            String::from_utf8_lossy(json)
        );
    }
}

/// `parse` against `parse_slow` with room for long ids: `Some` when the fast
/// path answered (and then agrees bit for bit), `None` when it declined.
fn answered(json: &[u8]) -> Option<bool> {
    let fast = parse(json, 64)?;
    let slow = parse_slow(json, 64).expect("fast accepted what slow rejects");
    assert_eq!(
        (&fast.user_id, &fast.event_type, fast.timestamp),
        (&slow.user_id, &slow.event_type, slow.timestamp),
        "{}",
        String::from_utf8_lossy(json)
    );
    assert_eq!(fast.value.map(f64::to_bits), slow.value.map(f64::to_bits));
    Some(true)
}

/// Strings of every length up to past two blocks, starting at every offset
/// of a block (the padding before them), with an escape, a control
/// character, a non-ASCII character or an invalid byte at every place in
/// them — in the ids, in a skipped string, and in the last bytes of the input.
#[test]
fn strings_across_block_boundaries() {
    let specials: [&[u8]; 7] = [
        b"\\",
        b"\\n",
        b"\x01",
        b"\x1f",
        b"\x7f",
        "é".as_bytes(),
        b"\xff",
    ];
    for pad in 0..16 {
        let lead = " ".repeat(pad);
        for len in 1..=40 {
            let plain = &b"abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[..len];
            let mut ids = vec![(plain.to_vec(), true)];
            for at in 0..=len {
                for special in specials {
                    let id = [&plain[..at], special, &plain[at..]].concat();
                    // Non-ASCII UTF-8 is taken; escapes, controls and
                    // invalid bytes are for the slow path.
                    ids.push((id, *special == *"é".as_bytes() || *special == *b"\x7f"));
                }
            }
            for (id, taken) in ids {
                let events = [
                    [&format!("{lead}{{\"user_id\":\"").into_bytes()[..], &id, br#"","event_type":"t","timestamp":1}"#].concat(),
                    [&format!("{lead}{{\"event_type\": \"t\", \"timestamp\": 1, \"attributes\": {{\"k\": \"").into_bytes()[..], &id, br#"", "value": 2}, "user_id": "u"}"#].concat(),
                    [&format!("{lead}{{\"timestamp\":1,\"user_id\":\"u\",\"event_type\":\"").into_bytes()[..], &id, br#""}"#].concat(),
                ];
                for json in events {
                    let got = answered(&json);
                    assert_eq!(got.is_some(), taken, "{}", String::from_utf8_lossy(&json));
                }
            }
        }
    }
}

#[test]
fn members_in_other_orders_spacings_and_repeats() {
    for (json, taken) in [
        (&br#"{"user_id":"u","timestamp":1,"event_type":"t"}"#[..], true),
        (br#"{"user_id" : "u" , "event_type" : "t" , "timestamp" : 1 }"#, true),
        (br#"{ "user_id":"u","event_type":"t","timestamp":1}"#, true),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"attributes":7}"#, true),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"attributes":{}}"#, true),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"attributes":{"value":1,"value":[2]}}"#, true),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"user_id":"v"}"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"event_type":"t"}"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"timestamp":1}"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"attributes":{},"attributes":{}}"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1,"attributes":{}"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1}}"#, false),
        (br#"{"user_id":"u","event_type":"t","timestamp":1} "#, true),
        (br#"{"user_id":1,"event_type":"t","timestamp":1}"#, false),
        (b"{\"user_id\":\"u\"}", false),
        (b"{}", false),
    ] {
        assert_eq!(answered(json).is_some(), taken, "{}", String::from_utf8_lossy(json));
    }
}

/// Timestamps of every length, at the edges of `u32` and of the ten digits.
#[test]
fn timestamps_of_every_length() {
    let mut cases: Vec<String> = (1..=11)
        .map(|n| "9876543210".repeat(2)[..n].to_string())
        .collect();
    cases.extend(
        [
            "0",
            "4294967295",
            "4294967296",
            "9999999999",
            "1000000000",
            "00",
            "01",
            "1.0",
            "1e3",
            "-1",
        ]
        .map(String::from),
    );
    for ts in cases {
        for json in [
            format!(r#"{{"user_id":"u","event_type":"t","timestamp":{ts}}}"#),
            format!(
                r#"{{"user_id": "u", "event_type": "t", "timestamp": {ts}, "attributes": {{}}}}"#
            ),
            format!(r#"{{"event_type":"t","user_id":"u","timestamp":{ts}}}"#),
        ] {
            let want = ts
                .parse::<u32>()
                .ok()
                .filter(|_| !ts.starts_with('0') || ts == "0");
            assert_eq!(
                parse(json.as_bytes(), 16).map(|e| e.timestamp),
                want,
                "{json}"
            );
            answered(json.as_bytes());
        }
    }
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just(",".to_string()),
        Just(":".to_string()),
        Just(" ".to_string()),
        Just("\"".to_string()),
        Just("\"user_id\"".to_string()),
        Just("\"event_type\"".to_string()),
        Just("\"timestamp\"".to_string()),
        Just("\"attributes\"".to_string()),
        Just("\"value\"".to_string()),
        Just("\"u1\"".to_string()),
        Just("\"\"".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("fals".to_string()),
        Just("\\".to_string()),
        Just("\\u0041".to_string()),
        "-?[0-9]{1,12}(\\.[0-9]{0,3})?([eE][-+]?[0-9]{0,3})?",
        "[a-z]{1,4}",
    ]
}

fn event_like() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        "-?[0-9]{1,5}(\\.[0-9]{1,4})?([eE]-?[0-9]{1,3})?",
        // Around the fast conversion's limit of 15 significant digits.
        "-?[0-9]{1,9}\\.[0-9]{1,9}",
        Just("\"10.5\"".to_string()),
        Just("null".to_string()),
        Just("[1,2]".to_string()),
        Just("{\"value\":1}".to_string()),
        Just("1e400".to_string()),
        Just("-0".to_string()),
    ];
    (
        "[a-zA-Z0-9_]{0,20}",
        "[a-z]{0,6}",
        prop_oneof![
            "[0-9]{1,11}",
            "-[0-9]{1,3}",
            "[0-9]{1,3}\\.[0-9]{1,3}",
            "0[0-9]"
        ],
        prop::option::of(value),
        prop::bool::ANY,
    )
        .prop_map(|(u, t, ts, v, spaced)| {
            let sep = if spaced { " " } else { "" };
            let attrs = v
                .map(|v| format!(",{sep}\"attributes\":{sep}{{\"item\":\"x\",\"value\":{sep}{v}}}"))
                .unwrap_or_default();
            format!("{{\"user_id\":{sep}\"{u}\",\"event_type\":\"{t}\",\"timestamp\":{ts}{attrs}}}")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn fast_agrees_on_event_shapes(json in event_like()) {
        agrees(json.as_bytes())?;
    }

    #[test]
    fn fast_agrees_on_fragment_soup(parts in proptest::collection::vec(fragment(), 0..40)) {
        agrees(parts.concat().as_bytes())?;
    }

    #[test]
    fn fast_agrees_on_mutations(json in event_like(), at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        let mut bytes = json.into_bytes();
        let i = at.index(bytes.len().max(1)).min(bytes.len().saturating_sub(1));
        if cut {
            bytes.truncate(i);
        } else if let Some(b) = bytes.get_mut(i) {
            *b = byte;
        }
        agrees(&bytes)?;
    }
}
