//! The gate that makes `EXEC` atomic: every command (and every step of the sweep)
//! passes it as a reader; `EXEC` closes it as the one writer, so no event from
//! another connection is applied, and no second expires, between the commands of a
//! transaction.
//!
//! Readers are many and frequent (one pass per batch of requests), the writer rare,
//! so this is a "big reader" lock: each reader counts itself in the stripe of its
//! own thread ([`crate::stripe`]) — a line no other core writes — and reads the
//! writer's flag, a line that stays shared in every cache until an `EXEC` comes. The
//! writer raises the flag, then waits for every stripe to drain. Both sides use
//! sequentially consistent operations: a reader that saw the flag down is counted
//! before the writer looks at the stripes (the Dekker pattern).
//!
//! No reader waits while holding the gate, and nothing holds it across an `.await`,
//! so the writer's wait is as short as the longest command in flight; a reader that
//! finds the gate closed yields its thread until the transaction is done (bounded by
//! the transaction limits in `cmd/tx.rs`).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

use crate::stripe::{STRIPES, stripe_index};

#[derive(Debug, Default)]
#[repr(align(128))]
struct Readers(AtomicUsize);

/// See the module doc.
#[derive(Debug)]
pub struct Gate {
    closed: AtomicBool,
    readers: [Readers; STRIPES],
    /// One writer at a time.
    writer: Mutex<()>,
}

impl Default for Gate {
    fn default() -> Self {
        Gate {
            closed: AtomicBool::new(false),
            readers: std::array::from_fn(|_| Readers::default()),
            writer: Mutex::new(()),
        }
    }
}

/// A reader's pass; the gate cannot close while it is held.
#[derive(Debug)]
pub struct Pass<'a> {
    stripe: &'a AtomicUsize,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        self.stripe.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The writer's hold; no reader passes while it is held.
#[derive(Debug)]
pub struct Closed<'a> {
    gate: &'a Gate,
    _one_writer: MutexGuard<'a, ()>,
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        self.gate.closed.store(false, Ordering::SeqCst);
    }
}

impl Gate {
    /// Passes the gate, waiting while a transaction holds it.
    pub fn pass(&self) -> Pass<'_> {
        let stripe = &self.readers[stripe_index() % STRIPES].0;
        loop {
            stripe.fetch_add(1, Ordering::SeqCst);
            if !self.closed.load(Ordering::SeqCst) {
                return Pass { stripe };
            }
            stripe.fetch_sub(1, Ordering::SeqCst);
            while self.closed.load(Ordering::SeqCst) {
                std::thread::yield_now();
            }
        }
    }

    /// Closes the gate once every reader in flight has passed. `pass` held by the
    /// caller's own thread would never drain: a transaction must not hold one.
    pub fn close(&self) -> Closed<'_> {
        let one = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.closed.store(true, Ordering::SeqCst);
        while self.readers.iter().any(|r| r.0.load(Ordering::SeqCst) != 0) {
            std::thread::yield_now();
        }
        Closed {
            gate: self,
            _one_writer: one,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    /// A writer moves two counters together; readers must never see them apart.
    #[test]
    fn readers_never_see_a_writer_half_done() {
        let gate = Arc::new(Gate::default());
        let a = Arc::new(AtomicU64::new(0));
        let b = Arc::new(AtomicU64::new(0));
        let reads = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (gate, a, b) = (gate.clone(), a.clone(), b.clone());
                let (reads, stop) = (reads.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let _pass = gate.pass();
                        let x = a.load(Ordering::Relaxed);
                        assert_eq!(x, b.load(Ordering::Relaxed), "a transaction seen half done");
                        reads.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        let mut writes = 0;
        // Until the readers have really run against the writer, however the threads
        // are scheduled.
        while writes < 2000 || reads.load(Ordering::Relaxed) < 10_000 {
            let _closed = gate.close();
            a.fetch_add(1, Ordering::Relaxed);
            std::hint::spin_loop();
            b.fetch_add(1, Ordering::Relaxed);
            writes += 1;
        }
        stop.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().expect("reader");
        }
        assert_eq!(a.load(Ordering::Relaxed), writes);
    }
}
