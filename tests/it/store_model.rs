//! The window store against a model that keeps every event in a `Vec` and answers each
//! query by scanning it. Random sequences of adds (one at a time and in batches, as a
//! pipeline brings them), clock moves, sweep steps and queries (the four aggregates,
//! top lists, distinct counts, series and profiles, full window and `WINDOW <s>`) must
//! agree after every step; proptest shrinks any disagreement to a minimal sequence.
//!
//! Sums are compared bit for bit with the exact sum of the model's values, computed
//! as a big integer in units of 2^-1074 and rounded to the nearest double, ties to
//! even (never with floating-point additions): what `math.fsum` returns, and `±inf`
//! when the exact sum is beyond the largest double.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

use scalable_analytics::{Active, AddError, Answer, Ingest, Point, Ranked, Score, Store};

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
    /// A run of point queries through `Store::points`, as the server answers pipelined
    /// `EVT.USER` / `EVT.SUM`: (user, a type for a sum, span).
    Points(Vec<(u8, Option<u8>, u32)>),
    /// A top list, built in steps of `budget` records.
    Top {
        what: u8,
        ty: u8,
        k: usize,
        span: u32,
        budget: usize,
    },
    Series {
        what: u8,
        user: u8,
        ty: u8,
        span: u32,
    },
    Profile {
        user: u8,
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

/// Values across the range of doubles: exact quarters, decimals that do not add up
/// exactly in floating point, huge values that overflow, subnormals, any bits.
fn value() -> impl Strategy<Value = Option<f64>> + Clone {
    prop_oneof![
        3 => Just(None),
        3 => (-1000i32..1000).prop_map(|v| Some(f64::from(v) / 4.0)),
        3 => (-1e6f64..1e6).prop_map(Some),
        2 => prop_oneof![Just(0.1), Just(0.2), Just(-0.3), Just(1e16), Just(-1e16), Just(1.0)].prop_map(Some),
        1 => prop_oneof![Just(1e308), Just(-1e308), Just(f64::MAX), Just(-f64::MAX)].prop_map(Some),
        1 => (1u64..1 << 52).prop_map(|b| Some(f64::from_bits(b))),
        1 => any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |v| v.is_finite())
            .prop_map(Some),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let value = value();
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
        2 => (0u8..12, 0u8..5, span.clone()).prop_map(|(user, ty, span)| Op::Sum { user, ty, span }),
        2 => (0u8..3, 0u8..5, 1usize..15, span.clone(), prop_oneof![Just(1_000_000usize), 1usize..5])
            .prop_map(|(what, ty, k, span, budget)| Op::Top { what, ty, k, span, budget }),
        2 => (0u8..4, 0u8..12, 0u8..5, span.clone())
            .prop_map(|(what, user, ty, span)| Op::Series { what, user, ty, span }),
        1 => (0u8..12, span.clone()).prop_map(|(user, span)| Op::Profile { user, span }),
        2 => proptest::collection::vec((0u8..12, proptest::option::of(0u8..5), span), 1..40)
            .prop_map(Op::Points),
    ]
}

/// An exact sum of doubles: a signed big integer in units of 2^-1074, base 2^32
/// digits, least significant first (sign and magnitude).
#[derive(Debug, Clone, Default)]
struct BigSum {
    neg: bool,
    mag: Vec<u32>,
}

impl BigSum {
    fn add(&mut self, v: f64) {
        if v == 0.0 {
            return;
        }
        let bits = v.to_bits();
        let exp = ((bits >> 52) & 0x7ff) as usize;
        let frac = bits & ((1 << 52) - 1);
        let (m, shift) = if exp == 0 {
            (frac, 0)
        } else {
            (frac | 1 << 52, exp - 1)
        };
        // m · 2^shift as digits.
        let mut digits = vec![0u32; shift / 32 + 3];
        let wide = u128::from(m) << (shift % 32);
        for (i, d) in digits.iter_mut().skip(shift / 32).take(3).enumerate() {
            *d = (wide >> (32 * i)) as u32;
        }
        let neg = v < 0.0;
        if neg == self.neg || self.mag.iter().all(|&d| d == 0) {
            self.neg = neg;
            add_mag(&mut self.mag, &digits);
        } else if cmp_mag(&self.mag, &digits) != std::cmp::Ordering::Less {
            sub_mag(&mut self.mag, &digits);
        } else {
            let mut d = digits;
            sub_mag(&mut d, &self.mag);
            self.mag = d;
            self.neg = neg;
        }
    }

    /// Rounded to the nearest double, ties to even.
    fn round(&self) -> f64 {
        let bitlen = |mag: &[u32]| {
            mag.iter()
                .rposition(|&d| d != 0)
                .map_or(0, |i| i * 32 + 32 - mag[i].leading_zeros() as usize)
        };
        let bit = |i: usize| {
            self.mag
                .get(i / 32)
                .is_some_and(|&d| d >> (i % 32) & 1 == 1)
        };
        let len = bitlen(&self.mag);
        if len == 0 {
            return 0.0;
        }
        let sign = if self.neg { -1.0 } else { 1.0 };
        let pow2 = |k: i64| -> f64 {
            if k >= -1022 {
                f64::from_bits(((k + 1023) as u64) << 52)
            } else {
                f64::from_bits(1u64 << (k + 1074))
            }
        };
        let top_bits = |from: usize, n: usize| -> u64 {
            (0..n).fold(0u64, |acc, i| acc | (u64::from(bit(from + i)) << i))
        };
        if len <= 53 {
            return sign * top_bits(0, len) as f64 * pow2(-1074);
        }
        let mut shift = len - 53;
        let mut q = top_bits(shift, 53);
        let half = bit(shift - 1);
        let sticky = (0..shift - 1).any(bit);
        if half && (sticky || q & 1 == 1) {
            q += 1;
            if q == 1 << 53 {
                q >>= 1;
                shift += 1;
            }
        }
        let k = shift as i64 - 1074;
        if k + 52 >= 1024 {
            return sign * f64::INFINITY;
        }
        sign * q as f64 * pow2(k)
    }
}

fn cmp_mag(a: &[u32], b: &[u32]) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    for i in (0..n).rev() {
        let (x, y) = (
            a.get(i).copied().unwrap_or(0),
            b.get(i).copied().unwrap_or(0),
        );
        if x != y {
            return x.cmp(&y);
        }
    }
    std::cmp::Ordering::Equal
}

fn add_mag(a: &mut Vec<u32>, b: &[u32]) {
    if a.len() < b.len() + 1 {
        a.resize(b.len() + 1, 0);
    }
    let mut carry = 0u64;
    for (i, x) in a.iter_mut().enumerate() {
        let s = u64::from(*x) + u64::from(b.get(i).copied().unwrap_or(0)) + carry;
        *x = s as u32;
        carry = s >> 32;
    }
}

/// `a -= b`, with `a >= b`.
fn sub_mag(a: &mut [u32], b: &[u32]) {
    let mut borrow = 0i64;
    for (i, x) in a.iter_mut().enumerate() {
        let d = i64::from(*x) - i64::from(b.get(i).copied().unwrap_or(0)) - borrow;
        borrow = i64::from(d < 0);
        *x = (d + (borrow << 32)) as u32;
    }
}

fn exact_sum<'a>(values: impl Iterator<Item = &'a f64>) -> f64 {
    let mut s = BigSum::default();
    for &v in values {
        s.add(v);
    }
    s.round()
}

/// A top list as the model sees it: best first, ties by id.
fn model_top(mut scores: Vec<(Vec<u8>, Score)>, k: usize) -> Vec<(Score, Vec<u8>)> {
    let key = |s: &Score| match *s {
        Score::Count(n) => n as f64,
        Score::Sum(x) => x,
    };
    scores.sort_by(|a, b| key(&b.1).total_cmp(&key(&a.1)).then(a.0.cmp(&b.0)));
    scores.truncate(k);
    scores.into_iter().map(|(id, s)| (s, id)).collect()
}

/// A model event: user, type, second, value (0 without one).
type Event = (u8, u8, i64, f64);

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
                let want = exact_sum(
                    model
                        .live(now, *span)
                        .filter(|e| e.0 == *user && e.1 == *ty)
                        .map(|e| &e.3),
                );
                let got = store.sum(&user_name(*user), &type_name(*ty), *span, now);
                prop_assert_eq!(
                    got.to_bits(),
                    want.to_bits(),
                    "{:?}: got {} want {}",
                    op,
                    got,
                    want
                );
            }
            Op::Points(queries) => {
                let names: Vec<(String, Option<String>)> = queries
                    .iter()
                    .map(|(u, t, _)| (user_name(*u), t.map(type_name)))
                    .collect();
                let points: Vec<Point<'_>> = names
                    .iter()
                    .zip(queries)
                    .map(|((u, t), q)| Point {
                        user: u,
                        event_type: t.as_deref(),
                        span: q.2,
                    })
                    .collect();
                let mut answers = Vec::new();
                store.points(&points, now, &mut answers);
                prop_assert_eq!(answers.len(), queries.len());
                for (&(user, ty, span), got) in queries.iter().zip(answers) {
                    let live = || model.live(now, span).filter(|e| e.0 == user);
                    let want = match ty {
                        None => Answer::Count(live().count() as u64),
                        Some(ty) => {
                            Answer::Sum(exact_sum(live().filter(|e| e.1 == ty).map(|e| &e.3)))
                        }
                    };
                    // Bits, not ==: a sum must be the same double, and NaN never is.
                    let bits = |a: Answer| match a {
                        Answer::Count(n) => (0, n),
                        Answer::Sum(s) => (1, s.to_bits()),
                    };
                    prop_assert_eq!(bits(got), bits(want), "{:?} in {:?}", (user, ty, span), op);
                }
            }
            Op::Top {
                what,
                ty,
                k,
                span,
                budget,
            } => {
                let live: Vec<_> = model.live(now, *span).collect();
                let (ranked, scores) = match what {
                    0 => {
                        let mut by: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
                        for e in &live {
                            *by.entry(user_name(e.0).into_bytes()).or_insert(0) += 1;
                        }
                        (
                            Ranked::Users,
                            by.into_iter()
                                .map(|(id, n)| (id, Score::Count(n)))
                                .collect(),
                        )
                    }
                    1 => {
                        let mut by: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
                        for e in &live {
                            *by.entry(type_name(e.1).into_bytes()).or_insert(0) += 1;
                        }
                        (
                            Ranked::Types,
                            by.into_iter()
                                .map(|(id, n)| (id, Score::Count(n)))
                                .collect(),
                        )
                    }
                    _ => {
                        let mut by: BTreeMap<Vec<u8>, Vec<f64>> = BTreeMap::new();
                        for e in live.iter().filter(|e| e.1 == *ty) {
                            by.entry(user_name(e.0).into_bytes()).or_default().push(e.3);
                        }
                        let scores = by
                            .into_iter()
                            .map(|(id, vs)| (id, Score::Sum(exact_sum(vs.iter()))))
                            .collect();
                        (Ranked::Sum(type_name(*ty)), scores)
                    }
                };
                let want = model_top(scores, *k);
                let mut scan = store.top(ranked, *k, *span, now);
                while !store.top_step(&mut scan, *budget) {}
                let got = scan.finish();
                let bits = |l: &[(Score, Vec<u8>)]| -> Vec<(u64, Vec<u8>)> {
                    l.iter()
                        .map(|(s, id)| match s {
                            Score::Count(n) => (*n, id.clone()),
                            Score::Sum(x) => (x.to_bits(), id.clone()),
                        })
                        .collect()
                };
                prop_assert_eq!(bits(&got), bits(&want), "{:?}", op);
            }
            Op::Series {
                what,
                user,
                ty,
                span,
            } => {
                let first = now - i64::from(*span) + 1;
                let seconds = first..=now;
                let count = |f: &dyn Fn(&Event) -> bool| -> Vec<u64> {
                    seconds
                        .clone()
                        .map(|s| model.live(now, *span).filter(|e| e.2 == s && f(e)).count() as u64)
                        .collect()
                };
                let (u, t) = (user_name(*user), type_name(*ty));
                match what {
                    0 => prop_assert_eq!(
                        store.total_series(*span, now),
                        count(&|_| true),
                        "{:?}",
                        op
                    ),
                    1 => prop_assert_eq!(
                        store.user_series(&u, *span, now),
                        count(&|e| e.0 == *user),
                        "{:?}",
                        op
                    ),
                    2 => prop_assert_eq!(
                        store.type_series(&t, *span, now),
                        count(&|e| e.1 == *ty),
                        "{:?}",
                        op
                    ),
                    _ => {
                        let want: Vec<u64> = seconds
                            .clone()
                            .map(|s| {
                                exact_sum(
                                    model
                                        .live(now, *span)
                                        .filter(|e| e.2 == s && e.0 == *user && e.1 == *ty)
                                        .map(|e| &e.3),
                                )
                                .to_bits()
                            })
                            .collect();
                        let got: Vec<u64> = store
                            .sum_series(&u, &t, *span, now)
                            .into_iter()
                            .map(f64::to_bits)
                            .collect();
                        prop_assert_eq!(got, want, "{:?}", op);
                    }
                }
            }
            Op::Profile { user, span } => {
                let mut by: BTreeMap<Vec<u8>, (u64, Vec<f64>)> = BTreeMap::new();
                for e in model.live(now, *span).filter(|e| e.0 == *user) {
                    let entry = by.entry(type_name(e.1).into_bytes()).or_default();
                    entry.0 += 1;
                    entry.1.push(e.3);
                }
                let want: Vec<(Vec<u8>, u64, u64)> = by
                    .into_iter()
                    .map(|(t, (n, vs))| (t, n, exact_sum(vs.iter()).to_bits()))
                    .collect();
                let got: Vec<(Vec<u8>, u64, u64)> = store
                    .profile(&user_name(*user), *span, now)
                    .into_iter()
                    .map(|(t, n, s)| (t, n, s.to_bits()))
                    .collect();
                prop_assert_eq!(got, want, "{:?}", op);
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
