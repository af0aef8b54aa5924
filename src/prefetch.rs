//! Prefetching for runs of lookups over tables too large for the cache: the CPU's
//! hint, and how far ahead a run asks for its loads (the store's users, the window
//! log's dictionary of ids).

/// How many lookups ahead of the one being made a run asks for a table slot, and for
/// what the slot names (a user's record, an id's bytes): a miss takes longer than one
/// lookup's work, so the record is asked for a few lookups early, and its slot (which
/// must have arrived for the record's address to be known) earlier still. A shard's
/// share of a 64-request run is ~16, so the first loads are asked for before the
/// first lookup. Measured: 6/3 against 2/1, `benches/store` batch64_random_users_1m
/// (4 shards), 24–35 against 34–43 µs a batch; 16/8 against 6/3, same-run server
/// A/B, `EVT.USER -P 64` 0.33× → 0.30× `GET`'s CPU; the log thread, 16/8 against
/// 4/1, 188 → 158 ns of CPU per event.
pub const SLOT_AHEAD: usize = 16;
pub const RECORD_AHEAD: usize = 8;

/// Hints the CPU to start loading the cache line at `p`.
#[inline]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint: it never faults and reads or writes nothing the
    // program can observe, whatever the address; SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// To call before lookup `i` of a run: `slot(j)` and `record(j)` ask for lookup
/// `j`'s loads, and answer `false` past the run's end.
#[inline]
pub fn ahead(i: usize, mut slot: impl FnMut(usize) -> bool, mut record: impl FnMut(usize) -> bool) {
    if i == 0 {
        (0..SLOT_AHEAD).take_while(|&j| slot(j)).for_each(drop);
        (0..RECORD_AHEAD).take_while(|&j| record(j)).for_each(drop);
    }
    slot(i + SLOT_AHEAD);
    record(i + RECORD_AHEAD);
}
