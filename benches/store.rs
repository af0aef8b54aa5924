//! The window store through its library API: ingest, each query, and the sweep of a
//! second holding many users.
//!
//! Run with `cargo bench --bench store` (add `-- --quick` for a fast pass, or a
//! filter such as `-- ingest`). Throughput is in events (or queries) per second, to
//! compare with the server-level numbers of `scripts/bench`.
//!
//! The store hashes each id once per event (the type once per run of equal types in
//! a batch); the ingest benchmarks include that hashing, as the server's hot path does.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scalable_analytics::{AddError, Counting, EXPIRE_BUDGET, Ingest, Ranked, SCAN_BUDGET, Store};

/// The server's allocator, so the tables sit in memory as they do in the server (its
/// large ones on transparent huge pages).
#[global_allocator]
static ALLOCATOR: Counting<std::alloc::System> = Counting(std::alloc::System);

const WINDOW: u32 = 60;
const SHARDS: usize = 4;
/// A Unix time in the window's range (2023-11-14).
const START: i64 = 1_700_000_000;
/// Users in the "random users" benchmarks, as `redis-benchmark -r 1000000` gives.
const MANY_USERS: usize = 1_000_000;
/// Users in the query store (each with events spread over the window) and in the
/// expiring second.
const QUERY_USERS: usize = 100_000;
const EXPIRE_USERS: usize = 100_000;

/// Ids as `redis-benchmark`'s `__rand_int__` makes them: 12 zero-padded digits.
fn user_name(i: usize) -> String {
    format!("user{i:012}")
}

/// One event as the server builds it after parsing.
fn ingest<'a>(user: &'a str, ty: &'a str, second: i64, now: i64) -> Ingest<'a> {
    Ingest {
        user,
        event_type: ty,
        second: second as u32,
        value: Some(10.5),
        now,
        count: 1,
    }
}

/// A small, fast, deterministic generator of indices (xorshift64*).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as usize % n
    }
}

fn bench_ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.throughput(Throughput::Elements(1));

    // The same user, type and second every time: the best case (hot cache lines,
    // one lock, the ring's slot already there).
    let store = Store::new(WINDOW, SHARDS, START);
    g.bench_function("one_user_repeated", |b| {
        b.iter(|| {
            let ev = ingest(black_box("user000000000123"), "click", START, START);
            black_box(store.add(&ev)).expect("in window")
        })
    });

    // A random user among a million that are all present already: the server's
    // steady state under `redis-benchmark -r 1000000` (cache misses on the index and
    // the record).
    let names: Vec<String> = (0..MANY_USERS).map(user_name).collect();
    let store = Store::new(WINDOW, SHARDS, START);
    for n in &names {
        store
            .add(&ingest(n, "click", START, START))
            .expect("in window");
    }
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    g.bench_function("random_users_1m", |b| {
        b.iter(|| {
            let user = &names[rng.below(MANY_USERS)];
            let ev = ingest(user, "click", START, START);
            black_box(store.add(&ev)).expect("in window")
        })
    });

    // Pipelined runs of 64 events, through `add_batch` as the server takes them.
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut results = vec![Ok(()); BATCH];
    g.bench_function("batch64_random_users_1m", |b| {
        b.iter(|| {
            let evs: Vec<Ingest<'_>> = (0..BATCH)
                .map(|_| ingest(&names[rng.below(MANY_USERS)], "click", START, START))
                .collect();
            store.add_batch(&evs, true, &mut results);
            black_box(&results);
        })
    });

    // The clock moves: a second every `BATCHES_PER_SECOND` runs over 100,000 users
    // with three types (a quarter of them use all three), so an event often starts a
    // new second for its user and pair, and users leave the window and come back.
    // Run for a window and a second before timing, so that what is timed is the
    // steady state.
    let names: Vec<String> = (0..QUERY_USERS).map(user_name).collect();
    let store = Store::new(WINDOW, SHARDS, START);
    let mut now = START;
    let mut batches = 0u64;
    let mut rng = Rng(0x5555_AAAA_1234_4321);
    let mut step = |results: &mut [Result<(), AddError>]| {
        batches += 1;
        if batches.is_multiple_of(BATCHES_PER_SECOND) {
            now += 1;
        }
        let evs: Vec<Ingest<'_>> = (0..BATCH)
            .map(|_| {
                let i = rng.below(QUERY_USERS);
                let ty = if i.is_multiple_of(4) {
                    TYPES[rng.below(3)]
                } else {
                    TYPES[i % 3]
                };
                ingest(&names[i], ty, now, now)
            })
            .collect();
        store.add_batch(&evs, true, results);
    };
    for _ in 0..(u64::from(WINDOW) + 1) * BATCHES_PER_SECOND {
        step(&mut results);
    }
    g.bench_function("batch64_moving_clock_100k_users", |b| {
        b.iter(|| {
            step(&mut results);
            black_box(&results);
        })
    });
    g.finish();
}

/// Event types of the query store and the moving-clock benchmark.
const TYPES: [&str; 3] = ["click", "view", "buy"];

/// Runs of the moving-clock benchmark per second of its clock: 19,200 events a
/// second over 100,000 users.
const BATCHES_PER_SECOND: u64 = 300;

/// Events per pipelined run in the batch benchmark.
const BATCH: usize = 64;

/// A store of `QUERY_USERS` users, each with one event in each of ten seconds spread
/// over the window (so `WINDOW 10` sees part of them), on three event types.
fn query_store() -> (Store, i64, Vec<String>) {
    let store = Store::new(WINDOW, SHARDS, START);
    let names: Vec<String> = (0..QUERY_USERS).map(user_name).collect();
    let types = TYPES;
    let now = START + i64::from(WINDOW) - 1;
    for s in 0..10i64 {
        let second = START + s * 6;
        for (i, n) in names.iter().enumerate() {
            let ty = types[i % types.len()];
            store
                .add(&ingest(n, ty, second, second))
                .expect("in window");
        }
    }
    // Bring every shard's clock to `now` so the queries do not pay for it.
    black_box(store.total(WINDOW, now));
    (store, now, names)
}

fn bench_queries(c: &mut Criterion) {
    let (store, now, names) = query_store();
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(1));
    for span in [WINDOW, 10] {
        let mut rng = Rng(0x1234_5678_9ABC_DEF1);
        g.bench_function(format!("user_count/window_{span}"), |b| {
            b.iter(|| black_box(store.user_count(&names[rng.below(QUERY_USERS)], span, now)))
        });
        g.bench_function(format!("type_count/window_{span}"), |b| {
            b.iter(|| black_box(store.type_count(black_box("click"), span, now)))
        });
        g.bench_function(format!("total/window_{span}"), |b| {
            b.iter(|| black_box(store.total(black_box(span), now)))
        });
        let mut rng = Rng(0x0F1E_2D3C_4B5A_6978);
        g.bench_function(format!("sum/window_{span}"), |b| {
            b.iter(|| {
                let i = rng.below(QUERY_USERS);
                black_box(store.sum(&names[i], TYPES[i % 3], span, now))
            })
        });
    }
    g.finish();
}

fn bench_expire(c: &mut Criterion) {
    let names: Vec<String> = (0..EXPIRE_USERS).map(user_name).collect();
    let mut g = c.benchmark_group("expire");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Elements(EXPIRE_USERS as u64));
    // One second holding 100k users leaves the window: `expire_all` sweeps every
    // shard in bounded steps, as the server's background task does (without the
    // yields between steps). The store is built outside the timing and dropped
    // after it.
    g.bench_function("one_second_100k_users", |b| {
        b.iter_batched(
            || {
                let store = Store::new(WINDOW, SHARDS, START);
                for n in &names {
                    store
                        .add(&ingest(n, "click", START, START))
                        .expect("in window");
                }
                store
            },
            |store| {
                store.expire_all(START + i64::from(WINDOW));
                store
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The longest hold of a shard's lock in a sweep that ends by compacting the
/// shard: a burst of `burst` users leaves the window while `stay` users remain, in
/// one shard. The sweep runs in the server's bounded steps; the last step, which
/// rebuilds the tables, is what is timed.
fn bench_compact(c: &mut Criterion) {
    let mut g = c.benchmark_group("compact");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(20));
    for (burst, stay) in [(1_000_000, 100), (262_144, 100), (131_072, 32_000)] {
        let names: Vec<String> = (0..burst).map(user_name).collect();
        g.bench_function(format!("last_sweep_step_{burst}_leave_{stay}_stay"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    let store = Store::new(WINDOW, 1, START);
                    for (i, n) in names.iter().enumerate() {
                        let second = if i < stay { START + 30 } else { START };
                        store
                            .add(&ingest(n, "click", second, START + 30))
                            .expect("in window");
                    }
                    let now = START + i64::from(WINDOW) + 1;
                    loop {
                        let t = std::time::Instant::now();
                        let done = store.expire_shard_step(0, now, EXPIRE_BUDGET);
                        if done {
                            timed += t.elapsed();
                            break;
                        }
                    }
                    assert_eq!(store.stats(now).active_users, stay);
                }
                timed
            })
        });
    }
    g.finish();
}

/// `EVT.TOP` over a million users (the default four shards of one serving thread).
/// "random": one event each, then 8 million events to random users (counts spread
/// as random ingest leaves them, the top few apart): the whole window from the
/// ranking; one bounded step of a scan (what a `WINDOW <s>` list does between
/// yields), whose length sets `SCAN_BUDGET`; and a whole `WINDOW 3` scan. "ties":
/// one event each, so the ten smallest of a million tied ids are the answer, which
/// the ranking cannot hold: a scan.
fn bench_top(c: &mut Criterion) {
    let names: Vec<String> = (0..MANY_USERS).map(user_name).collect();
    let fill = |extra: usize| {
        let store = Store::new(WINDOW, 4, START);
        let mut rng = Rng(0x7777_1234_ABCD_0001);
        let evs: Vec<Ingest<'_>> = names
            .iter()
            .map(|n| ingest(n, "click", START, START))
            .chain((0..extra).map(|_| ingest(&names[rng.below(MANY_USERS)], "click", START, START)))
            .collect();
        let mut results = vec![Ok(()); evs.len()];
        for (chunk, res) in evs.chunks(4096).zip(results.chunks_mut(4096)) {
            store.add_batch(chunk, true, res);
        }
        store
    };
    let now = START + 5;
    let random = fill(8 * MANY_USERS);
    black_box(random.total(WINDOW, now));
    let mut g = c.benchmark_group("top");
    g.bench_function("random/users_count10_window", |b| {
        b.iter(|| black_box(random.top_now(Ranked::Users, 10, WINDOW, now)))
    });
    g.bench_function("random/users_count1000_window", |b| {
        b.iter(|| black_box(random.top_now(Ranked::Users, 1000, WINDOW, now)))
    });
    g.bench_function("random/scan_step_window3", |b| {
        b.iter_batched(
            || random.top(Ranked::Users, 10, 3, now),
            |mut scan| {
                // The first step of the first shard: the ranking cannot answer (no user
                // has an event in the last 3 seconds), then SCAN_BUDGET records.
                random.top_step(&mut scan, SCAN_BUDGET);
                black_box(scan)
            },
            BatchSize::SmallInput,
        )
    });
    g.sample_size(10);
    g.bench_function("random/users_window3_whole_scan", |b| {
        b.iter(|| black_box(random.top_now(Ranked::Users, 10, 3, now)))
    });
    drop(random);
    let ties = fill(0);
    black_box(ties.total(WINDOW, now));
    g.bench_function("ties/users_count10_window", |b| {
        b.iter(|| black_box(ties.top_now(Ranked::Users, 10, WINDOW, now)))
    });
    g.finish();
}

criterion_group!(
    benches,
    bench_ingest,
    bench_queries,
    bench_expire,
    bench_compact,
    bench_top
);
criterion_main!(benches);
