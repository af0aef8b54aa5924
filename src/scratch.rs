//! Vectors a batch needs only while it runs, kept by each serving thread between
//! batches.
//!
//! Admitting a batch of events builds a few vectors that die with it: the batch's
//! events, what admission made of each, the store's view of the admitted ones and
//! its results, the store's grouping of them by shard (and the same for a run of
//! point queries). Allocated afresh, an unpipelined `EVT.ADD` paid five allocations
//! and five frees: reusing them took it from 10,243 to ~9,140 instructions
//! (callgrind). A thread runs one batch at a time and nothing in a batch awaits, so
//! the thread keeps the last batch's buffers and the next one takes them.
//!
//! The vectors hold slices of a connection's read buffer, a lifetime no
//! thread-local can name: they are kept as `'static` and [`recycle`]d, which moves
//! an *empty* vector's allocation from one type to the same type under another
//! lifetime.

use std::cell::Cell;
use std::mem::{ManuallyDrop, align_of, size_of};
use std::thread::LocalKey;

/// Largest buffer a thread keeps, in elements: a bigger one (a huge `EVT.MADD`) is
/// freed after its batch, so a thread holds at most a pipeline's worth of scratch.
pub const KEEP_MAX: usize = 1024;

/// One kind of scratch vector, as a thread keeps it.
pub type Spare<T> = LocalKey<Cell<Vec<T>>>;

/// An empty vector of `U` on `v`'s allocation when `T` and `U` have one size and
/// alignment (here: one type under two lifetimes); a new empty vector otherwise.
///
/// The standard library's in-place `collect` does the same in safe code, but not for
/// free: ~40 instructions a call, which ate half of what the reuse saved.
pub fn recycle<T, U>(v: Vec<T>) -> Vec<U> {
    let same = size_of::<T>() == size_of::<U>() && align_of::<T>() == align_of::<U>();
    if !same || size_of::<T>() == 0 {
        return Vec::new();
    }
    let mut v = ManuallyDrop::new(v);
    v.clear();
    let (ptr, cap) = (v.as_mut_ptr(), v.capacity());
    // SAFETY: the allocation came from a `Vec<T>` of capacity `cap`, and `U` has
    // `T`'s size and alignment, so it has the layout a `Vec<U>` of capacity `cap`
    // frees; the length is 0, so no `T` is ever read as a `U`; `v` is not dropped,
    // so the allocation has one owner.
    unsafe { Vec::from_raw_parts(ptr.cast::<U>(), 0, cap) }
}

/// The thread's spare vector of this kind, empty, or a new one.
pub fn take<T: 'static, U>(spare: &'static Spare<T>) -> Vec<U> {
    recycle(spare.try_with(Cell::take).unwrap_or_default())
}

/// Gives `v`'s allocation back to the thread for the next batch.
pub fn give<T: 'static, U>(spare: &'static Spare<T>, v: Vec<U>) {
    if v.capacity() == 0 || v.capacity() > KEEP_MAX {
        return;
    }
    let v = recycle(v);
    // During the thread's teardown there is nowhere to keep it: it is freed.
    let _ = spare.try_with(|s| s.set(v));
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SPARE: Cell<Vec<(&'static str, u64)>> = const { Cell::new(Vec::new()) };
    }

    /// The point of the module: the buffer given back is the one taken next, for
    /// elements that borrow from a local.
    #[test]
    fn a_buffer_given_back_is_taken_again() {
        let text = String::from("user1");
        let mut v: Vec<(&str, u64)> = take(&SPARE);
        v.extend([(text.as_str(), 1), (text.as_str(), 2)]);
        let (ptr, cap) = (v.as_ptr() as usize, v.capacity());
        give(&SPARE, v);
        drop(text);
        let again: Vec<(&str, u64)> = take(&SPARE);
        assert_eq!((again.as_ptr() as usize, again.capacity()), (ptr, cap));
        assert!(again.is_empty());
        // Taken: the thread has none left until it is given back.
        let none: Vec<(&str, u64)> = take(&SPARE);
        assert_eq!(none.capacity(), 0);
    }

    /// Elements are dropped, never reinterpreted, and another layout is not reused.
    #[test]
    fn recycling_drops_the_elements_and_checks_the_layout() {
        let counted = std::rc::Rc::new(());
        let v = vec![counted.clone(), counted.clone()];
        let ptr = v.as_ptr() as usize;
        let w: Vec<std::rc::Rc<()>> = recycle(v);
        assert_eq!((w.as_ptr() as usize, w.len()), (ptr, 0));
        assert_eq!(std::rc::Rc::strong_count(&counted), 1);
        let bytes: Vec<u8> = recycle(vec![1u64, 2]);
        assert_eq!(bytes.capacity(), 0);
    }

    #[test]
    fn a_buffer_over_the_limit_is_not_kept() {
        let v: Vec<(&str, u64)> = Vec::with_capacity(KEEP_MAX + 1);
        give(&SPARE, v);
        let next: Vec<(&str, u64)> = take(&SPARE);
        assert_eq!(next.capacity(), 0);
    }
}
