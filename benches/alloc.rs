//! The counting allocator against the system allocator it wraps: allocate + free of
//! small blocks from two threads at once, the pattern of two serving threads.
//!
//! Run with `cargo bench --bench alloc`. The target (issue 8) is that counting costs
//! at most 1.3× the system allocator alone. Before the fix, a flag stored on every
//! allocation — one cache line written by both cores — made it ~3×.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use scalable_analytics::Counting;

/// Threads allocating at once.
const THREADS: usize = 2;
/// Sizes cycled through, as the store's spills and small vectors ask.
const SIZES: [usize; 4] = [16, 48, 96, 200];

/// Time for `iters` allocate+free pairs on each of [`THREADS`] threads at once.
fn run<A: GlobalAlloc + Sync>(alloc: &A, iters: u64) -> Duration {
    let start = Barrier::new(THREADS);
    let elapsed: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let start = &start;
                s.spawn(move || {
                    start.wait();
                    let t = Instant::now();
                    for i in 0..iters {
                        let size = SIZES[(i % SIZES.len() as u64) as usize];
                        let Ok(layout) = Layout::from_size_align(size, 8) else {
                            continue;
                        };
                        // SAFETY: the layout has a non-zero size; the block is freed
                        // with the same layout by the same allocator right after.
                        unsafe {
                            let p = alloc.alloc(layout);
                            if !p.is_null() {
                                black_box(p).write(1);
                                alloc.dealloc(p, layout);
                            }
                        }
                    }
                    t.elapsed()
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    elapsed.into_iter().max().unwrap_or_default()
}

fn alloc_free(c: &mut Criterion) {
    let mut g = c.benchmark_group("alloc_free_two_threads");
    g.throughput(Throughput::Elements(1));
    g.bench_function("system", |b| b.iter_custom(|iters| run(&System, iters)));
    let counting = Counting(System);
    g.bench_function("counting", |b| b.iter_custom(|iters| run(&counting, iters)));
    g.finish();
}

criterion_group!(benches, alloc_free);
criterion_main!(benches);
