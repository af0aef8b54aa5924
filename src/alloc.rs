//! Memory accounting at the allocator: `used_memory` in INFO and the `--maxmemory`
//! check read the bytes the program holds from the allocator, not an estimate.
//!
//! [`Counting`] wraps any global allocator and adds each allocation's size to the
//! counter of the calling thread's stripe ([`crate::stripe`]), so two cores
//! allocating at once never write the same cache line. A thread may free what another
//! allocated, so single stripes can go negative; only the sum matters.
//!
//! Nothing shared is written on the allocation path: the flag saying the wrapper is
//! installed is stored once and only read afterwards. Storing it on every call — one
//! line written by every core — cost 77–88 ns per allocate+free with two threads
//! against 23–27 ns when only read (`benches/alloc.rs` keeps the comparison).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};

use crate::stripe::{STRIPES, stripe_index};

/// Bytes allocated minus bytes freed by one stripe's threads.
#[repr(align(128))]
struct Stripe {
    net: AtomicIsize,
}

static COUNTERS: [Stripe; STRIPES] = [const {
    Stripe {
        net: AtomicIsize::new(0),
    }
}; STRIPES];
static INSTALLED: AtomicBool = AtomicBool::new(false);

fn stripe() -> &'static Stripe {
    &COUNTERS[stripe_index() % STRIPES]
}

fn count_alloc(size: usize) {
    stripe().net.fetch_add(size as isize, Ordering::Relaxed);
    // Read, and written only the first time: the line stays shared in every core's
    // cache instead of bouncing between them.
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
}

/// Allocations at least this large are backed by transparent huge pages where the
/// kernel allows it (`madvise(MADV_HUGEPAGE)`; THP in "madvise" mode, Debian's
/// default). They are the store's index and record tables: each event touches them at
/// a random place, and with 4 KiB pages most of those touches also miss the TLB, which
/// under virtualisation costs a two-level page walk. 4 MiB keeps small buffers out.
pub const HUGE_PAGE_MIN: usize = 4 << 20;

const HUGE_PAGE: usize = 2 << 20;

/// Whether large allocations ask for huge pages (`--huge-pages`); read on every large
/// allocation, written once at start.
static HUGE_PAGES: AtomicBool = AtomicBool::new(true);

/// Sets whether allocations of [`HUGE_PAGE_MIN`] bytes and more ask for transparent
/// huge pages (the server's `--huge-pages`; on by default). Off, for a machine where
/// the kernel's synchronous compaction for them costs more than the TLB misses save.
pub fn use_huge_pages(on: bool) {
    HUGE_PAGES.store(on, Ordering::Relaxed);
}

fn advise_huge(p: *mut u8, size: usize) {
    #[cfg(target_os = "linux")]
    if size >= HUGE_PAGE_MIN && HUGE_PAGES.load(Ordering::Relaxed) {
        let start = (p as usize).next_multiple_of(HUGE_PAGE);
        let end = (p as usize + size) & !(HUGE_PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside the allocation just returned; MADV_HUGEPAGE
            // only changes how the kernel backs those pages, never their contents.
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
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
            count_alloc(layout.size());
            advise_huge(p, layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.alloc_zeroed(layout) };
        if !p.is_null() {
            count_alloc(layout.size());
            advise_huge(p, layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { self.0.dealloc(ptr, layout) };
        stripe()
            .net
            .fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { self.0.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            stripe().net.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
            advise_huge(p, new_size);
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
    let total: isize = COUNTERS.iter().map(|s| s.net.load(Ordering::Relaxed)).sum();
    Some(total.max(0) as u64)
}

/// Bytes the process holds: from the counting allocator when installed (the server
/// binary installs it), else the resident set size.
pub fn used_memory() -> u64 {
    allocated_bytes().unwrap_or_else(rss_bytes)
}

/// Resident set size of this process, from `/proc/self/statm`.
pub fn rss_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Asks the allocator to return free pages to the system (glibc's `malloc_trim`):
/// glibc keeps freed small chunks in its heap, so without it a window that empties
/// after a busy minute would keep the peak's resident memory.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim only walks the allocator's own free lists and madvises
        // free pages away; it takes the allocator's locks and touches no memory the
        // program owns.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::debug!(released, "freed memory returned to the system");
    }
}
