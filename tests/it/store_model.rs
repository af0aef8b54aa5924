//! The window store against a model that keeps every event in a `Vec` and answers each
//! query by scanning it. Random sequences of adds (one at a time and in batches, as a
//! pipeline brings them), clock moves, sweep steps and queries (all four aggregates,
//! full window and `WINDOW <s>`) must agree after every step; proptest shrinks any
//! disagreement to a minimal sequence.

use proptest::prelude::*;
use std::collections::BTreeSet;

use scalable_analytics::{Active, AddError, Ingest, Store};

const WINDOW: u32 = 60;
const START: i64 = 1_700_000_000;

#[derive(Debug, Clone)]
enum Op {
    /// An event `back` seconds before now (negative: ahead of now, clamped to now).
    Add {
        user: u8,
        ty: u8,
        back: i64,
        value: Option<f64>,
    },
    /// Events counted through `add_batch`, each as in `Add`.
    Batch(Vec<(u8, u8, i64, Option<f64>)>),
    Advance(i64),
    Sweep(usize),
    /// Tables rebuilt: every record under a new key.
    Compact,
    User {
        user: u8,
        span: u32,
    },
    Type {
        ty: u8,
        span: u32,
    },
    Total {
        span: u32,
    },
    Sum {
        user: u8,
        ty: u8,
        span: u32,
    },
}

fn user_name(u: u8) -> String {
    // Mix inline and heap-allocated ids.
    if u.is_multiple_of(3) {
        format!("a-rather-long-user-identifier-{u}")
    } else {
        format!("u{u}")
    }
}

fn type_name(t: u8) -> String {
    format!("t{t}")
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop_oneof![
        Just(None),
        (-1000i32..1000).prop_map(|v| Some(f64::from(v) / 4.0)),
        (-1e6f64..1e6).prop_map(Some),
    ];
    let span = prop_oneof![Just(WINDOW), 1..=WINDOW];
    let event = (0u8..12, 0u8..4, -3i64..70, value);
    prop_oneof![
        8 => event.clone().prop_map(|(user, ty, back, value)| Op::Add { user, ty, back, value }),
        2 => proptest::collection::vec(event, 1..20).prop_map(Op::Batch),
        3 => prop_oneof![0i64..3, 0i64..130].prop_map(Op::Advance),
        1 => (1usize..6).prop_map(Op::Sweep),
        1 => Just(Op::Compact),
        2 => (0u8..12, span.clone()).prop_map(|(user, span)| Op::User { user, span }),
        1 => (0u8..5, span.clone()).prop_map(|(ty, span)| Op::Type { ty, span }),
        1 => span.clone().prop_map(|span| Op::Total { span }),
        2 => (0u8..12, 0u8..5, span).prop_map(|(user, ty, span)| Op::Sum { user, ty, span }),
    ]
}

#[derive(Default)]
struct Model {
    events: Vec<(u8, u8, i64, f64)>,
}

impl Model {
    fn live(&self, now: i64, span: u32) -> impl Iterator<Item = &(u8, u8, i64, f64)> {
        self.events
            .iter()
            .filter(move |e| e.2 > now - i64::from(span) && e.2 <= now)
    }
}

impl Model {
    /// Distinct users, types and pairs with an event in the last `span` seconds.
    fn active(&self, now: i64, span: u32) -> Active {
        let live: Vec<_> = self.live(now, span).collect();
        let users: BTreeSet<u8> = live.iter().map(|e| e.0).collect();
        let types: BTreeSet<u8> = live.iter().map(|e| e.1).collect();
        let pairs: BTreeSet<(u8, u8)> = live.iter().map(|e| (e.0, e.1)).collect();
        Active {
            users: users.len() as u64,
            types: types.len() as u64,
            pairs: pairs.len() as u64,
        }
    }
}

/// The distinct counts (INFO's `active_*`, `DBSIZE`) agree with the model at every
/// moment, swept or not, over the whole window and shorter spans.
fn check_active(store: &Store, model: &Model, now: i64, op: &Op) -> Result<(), TestCaseError> {
    let stats = store.stats(now);
    let want = model.active(now, WINDOW);
    let got = (
        stats.active_users as u64,
        stats.active_event_types as u64,
        stats.active_user_event_types as u64,
    );
    prop_assert_eq!(
        got,
        (want.users, want.types, want.pairs),
        "stats after {:?}",
        op
    );
    let events = model.live(now, WINDOW).count() as u64;
    prop_assert_eq!(stats.window_events, events, "window_events after {:?}", op);
    for span in [WINDOW, 1, 7, 59] {
        prop_assert_eq!(
            store.active(span, now),
            model.active(now, span),
            "active over {} s after {:?}",
            span,
            op
        );
    }
    Ok(())
}

fn close(a: f64, b: f64, scale: f64) -> bool {
    (a - b).abs() <= 1e-9 * scale.max(1.0)
}

fn run(ops: &[Op], shards: usize) -> Result<(), TestCaseError> {
    let store = Store::new(WINDOW, shards, START);
    let mut model = Model::default();
    let mut now = START;
    for op in ops {
        match op {
            Op::Add {
                user,
                ty,
                back,
                value,
            } => {
                let (u, t) = (user_name(*user), type_name(*ty));
                let sec = (now - back).min(now);
                let ev = Ingest {
                    user: &u,
                    event_type: &t,
                    second: (now - back) as u32,
                    value: *value,
                    now,
                    count: 1,
                };
                let got = store.add(&ev);
                if sec <= now - i64::from(WINDOW) {
                    prop_assert_eq!(got, Err(AddError::Late));
                } else {
                    prop_assert_eq!(got, Ok(()));
                    model.events.push((*user, *ty, sec, value.unwrap_or(0.0)));
                }
            }
            Op::Batch(events) => {
                let names: Vec<(String, String)> = events
                    .iter()
                    .map(|&(user, ty, _, _)| (user_name(user), type_name(ty)))
                    .collect();
                let batch: Vec<Ingest<'_>> = events
                    .iter()
                    .zip(&names)
                    .map(|(&(_, _, back, value), (u, t))| Ingest {
                        user: u,
                        event_type: t,
                        second: (now - back) as u32,
                        value,
                        now,
                        count: 1,
                    })
                    .collect();
                let mut results = vec![Err(AddError::NoMemory); batch.len()];
                store.add_batch(&batch, true, &mut results);
                for (&(user, ty, back, value), got) in events.iter().zip(results) {
                    let sec = (now - back).min(now);
                    if sec <= now - i64::from(WINDOW) {
                        prop_assert_eq!(got, Err(AddError::Late));
                    } else {
                        prop_assert_eq!(got, Ok(()));
                        model.events.push((user, ty, sec, value.unwrap_or(0.0)));
                    }
                }
            }
            Op::Advance(by) => now += by,
            Op::Compact => store.compact(now),
            Op::Sweep(steps) => {
                for _ in 0..*steps {
                    store.expire_step(now, 3);
                }
            }
            Op::User { user, span } => {
                let want = model.live(now, *span).filter(|e| e.0 == *user).count() as u64;
                prop_assert_eq!(
                    store.user_count(&user_name(*user), *span, now),
                    want,
                    "{:?}",
                    op
                );
            }
            Op::Type { ty, span } => {
                let want = model.live(now, *span).filter(|e| e.1 == *ty).count() as u64;
                prop_assert_eq!(
                    store.type_count(&type_name(*ty), *span, now),
                    want,
                    "{:?}",
                    op
                );
            }
            Op::Total { span } => {
                let want = model.live(now, *span).count() as u64;
                prop_assert_eq!(store.total(*span, now), want, "{:?}", op);
            }
            Op::Sum { user, ty, span } => {
                let picked: Vec<f64> = model
                    .live(now, *span)
                    .filter(|e| e.0 == *user && e.1 == *ty)
                    .map(|e| e.3)
                    .collect();
                let want: f64 = picked.iter().sum();
                let scale: f64 = picked.iter().map(|v| v.abs()).sum();
                let got = store.sum(&user_name(*user), &type_name(*ty), *span, now);
                prop_assert!(
                    close(got, want, scale),
                    "{:?}: got {} want {}",
                    op,
                    got,
                    want
                );
                if picked.is_empty() {
                    prop_assert_eq!(got.to_bits(), 0f64.to_bits(), "empty sum must be exactly 0");
                }
            }
        }
        check_active(&store, &model, now, op)?;
    }
    // Once everything has left the window and the sweep has run, nothing is left.
    now += i64::from(WINDOW);
    store.expire_all(now);
    let stats = store.stats(now);
    prop_assert_eq!(stats.window_events, 0);
    prop_assert_eq!(stats.active_users, 0);
    prop_assert_eq!(stats.active_event_types, 0);
    prop_assert_eq!(stats.active_user_event_types, 0);
    prop_assert_eq!(stats.held_records, 0, "the sweep leaves nothing behind");
    prop_assert_eq!(stats.wheel_entries, 0);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(ops in proptest::collection::vec(op(), 1..200)) {
        run(&ops, 1)?;
    }

    #[test]
    fn store_matches_model_sharded(ops in proptest::collection::vec(op(), 1..200)) {
        run(&ops, 4)?;
    }
}

/// Every shape of memory reclaim at once: 5,000 users over every second of the
/// window, then the window passes and the sweep must leave nothing behind.
#[test]
fn sweep_reclaims_everything() {
    let store = Store::new(WINDOW, 8, START);
    for i in 0..5_000u32 {
        let (u, t) = (format!("user{i}"), format!("t{}", i % 7));
        let now = START + i64::from(i % 60);
        let ev = Ingest {
            user: &u,
            event_type: &t,
            second: now as u32,
            value: Some(1.5),
            now,
            count: 1,
        };
        store.add(&ev).expect("in window");
    }
    assert_eq!(store.total(WINDOW, START + 59), 5_000);
    let later = START + 59 + i64::from(WINDOW);
    store.expire_all(later);
    let stats = store.stats(later);
    assert_eq!(stats.active_users, 0);
    assert_eq!(stats.active_event_types, 0);
    assert_eq!(stats.active_user_event_types, 0);
    assert_eq!(stats.wheel_entries, 0);
    assert_eq!(stats.held_records, 0);
}
