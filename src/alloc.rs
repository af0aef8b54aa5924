//! Memory accounting at the allocator: `used_memory` in INFO and the `--maxmemory`
//! check read the bytes the program holds from the allocator, not an estimate.
//!
//! [`Counting`] wraps any global allocator and adds each allocation's size to one of
//! [`STRIPES`] counters, chosen per thread, so that two cores allocating at once do
//! not fight over one cache line. Reading the total sums the stripes. A thread may free
//! what another allocated, so single stripes can go negative; only the sum matters.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicUsize, Ordering};

/// Counter stripes; more than the cores we expect, fewer than a cache line each
/// would make reading the total slow.
const STRIPES: usize = 16;

#[repr(align(128))]
struct Stripe(AtomicIsize);

static COUNTERS: [Stripe; STRIPES] = [const { Stripe(AtomicIsize::new(0)) }; STRIPES];
static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: AtomicBool = AtomicBool::new(false);

thread_local! {
    // `const` and without a destructor: safe to touch from inside the allocator,
    // even while a thread is being torn down.
    static MY_STRIPE: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// This thread's stripe, `0..STRIPES`: counters that many threads bump use one cache
/// line per stripe, so two cores never write the same line.
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

/// Counter stripes (see [`stripe_index`]).
pub const COUNTER_STRIPES: usize = STRIPES;

fn stripe() -> &'static AtomicIsize {
    let i = MY_STRIPE
        .try_with(|s| {
            let mut i = s.get();
            if i == usize::MAX {
                i = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
                s.set(i);
            }
            i
        })
        .unwrap_or(0);
    &COUNTERS[i % STRIPES].0
}

/// A global allocator that counts the bytes it hands out; see the module doc.
pub struct Counting<A>(pub A);

// SAFETY: every call is forwarded unchanged to the inner allocator, which upholds the
// `GlobalAlloc` contract; the wrapper only updates counters, which never allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for Counting<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc(layout) };
        if !p.is_null() {
            stripe().fetch_add(layout.size() as isize, Ordering::Relaxed);
            INSTALLED.store(true, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            stripe().fetch_add(layout.size() as isize, Ordering::Relaxed);
            INSTALLED.store(true, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) };
        stripe().fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            stripe().fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Bytes currently allocated through [`Counting`], or `None` when the program does
/// not use it as its global allocator.
pub fn allocated_bytes() -> Option<u64> {
    if !INSTALLED.load(Ordering::Relaxed) {
        return None;
    }
    let total: isize = COUNTERS.iter().map(|s| s.0.load(Ordering::Relaxed)).sum();
    Some(total.max(0) as u64)
}
