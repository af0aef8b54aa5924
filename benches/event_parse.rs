//! Cost of parsing one event, the server's per-request hot path.
//!
//! Run with `cargo bench --bench event_parse`. Throughput is reported in
//! events per second so it can be compared with the >1M events/s target.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scalable_analytics::{DEFAULT_MAX_ID_LEN, parse_event};

/// The typical event from the protocol description: no escapes, so the ids
/// are borrowed and nothing is allocated.
const SEED: &[u8] = br#"{"user_id": "user123", "event_type": "click", "timestamp": 1678886400, "attributes": {"item_id": "item456", "value": 10.5}}"#;

/// Escapes in both ids (forcing the owned, unescaping path), an escaped key,
/// an exponent timestamp and an exponent value.
const ESCAPED: &[u8] = br#"{"user_id": "us\u00e9r\"123\"", "event\u005ftype": "cl\u0069ck\n", "timestamp": 1.6788864e9, "attributes": {"item_id": "item\/456", "value": -1.05e1}}"#;

/// Rejected late: `timestamp` is a string, so the error path (typed error,
/// serde error allocation) is measured after most of the object was read.
const INVALID: &[u8] = br#"{"user_id": "user123", "event_type": "click", "timestamp": "1678886400", "attributes": {"item_id": "item456", "value": 10.5}}"#;

fn bench_parse(c: &mut Criterion) {
    // Guard against benchmarking something other than intended.
    assert!(parse_event(SEED, DEFAULT_MAX_ID_LEN).is_ok());
    assert!(parse_event(ESCAPED, DEFAULT_MAX_ID_LEN).is_ok());
    assert!(parse_event(INVALID, DEFAULT_MAX_ID_LEN).is_err());

    let mut group = c.benchmark_group("parse_event");
    group.throughput(Throughput::Elements(1));
    for (name, input) in [("seed", SEED), ("escaped", ESCAPED), ("invalid", INVALID)] {
        group.bench_function(name, |b| {
            b.iter(|| {
                // `is_ok` drops the event inside the loop so owned ids are
                // freed per iteration, as they would be in the server.
                black_box(parse_event(black_box(input), DEFAULT_MAX_ID_LEN).is_ok())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
