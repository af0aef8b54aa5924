//! Per-thread stripes for counters that every serving thread bumps: one cache line
//! per stripe, summed when read, so threads on two cores never write the same line.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Stripes; more than the cores we expect, few enough that summing them is cheap.
pub const STRIPES: usize = 16;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // `const` and without a destructor: safe to touch from inside the allocator,
    // even while a thread is being torn down.
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe, `0..STRIPES`, handed out round-robin on first use.
pub fn stripe_index() -> usize {
    MY_STRIPE
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(i);
            }
            i
        })
        .unwrap_or(0)
}

/// A counter bumped by every serving thread: one stripe per thread (see the module doc).
#[derive(Debug)]
pub struct Striped([Padded64; STRIPES]);

#[derive(Debug, Default)]
#[repr(align(128))]
struct Padded64(AtomicU64);

impl Default for Striped {
    fn default() -> Self {
        Striped(std::array::from_fn(|_| Padded64::default()))
    }
}

impl Striped {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        if let Some(s) = self.0.get(stripe_index()) {
            s.0.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// The total.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Ordering::Relaxed)).sum()
    }

    /// Back to zero (`CONFIG RESETSTAT`).
    pub fn reset(&self) {
        for s in &self.0 {
            s.0.store(0, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stripes_sum_across_threads() {
        let c = std::sync::Arc::new(Striped::default());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || (0..1000).for_each(|_| c.add(1)))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(c.get(), 4000);
        c.reset();
        assert_eq!(c.get(), 0);
    }
}
