//! A timer wheel of one-second slots that says which keys to look at when a second
//! leaves the window.
//!
//! Slot `s % window` lists the keys whose *oldest* non-empty second was `s` when they
//! were registered; a key is registered again whenever its oldest second changes, so
//! expiring a second visits only the keys that hold data in it, never every key. An
//! entry is a hint, not a promise: the owner re-checks the key when the entry comes due
//! (it may have been expired on access meanwhile, or removed and its slot reused), so a
//! stale entry costs one check and is dropped. A `u64` bitmap of occupied slots lets a
//! sweep skip empty seconds with one trailing-zeros lookup, as tokio's wheel levels do.
//!
//! Sweeping is incremental: [`Wheel::begin`] extends the sweep to a new cutoff, and the
//! owner pulls due entries one at a time ([`Wheel::next_due`]) so that it can stop
//! after a bounded number and let other clients in.

use super::ring::{full_mask, seconds_mask, slot_of};

/// The wheel; see the module doc.
#[derive(Debug)]
pub struct Wheel {
    slots: Box<[Vec<u32>]>,
    /// Slots holding at least one entry.
    occupied: u64,
    /// Seconds up to here are covered by the current sweep.
    cutoff: i64,
    /// Slots due in the current sweep and not yet taken.
    due: u64,
    /// Entries taken from a due slot and not yet handed out.
    draining: Vec<u32>,
    /// The slot `draining` was taken from.
    draining_slot: u32,
}

impl Wheel {
    /// A wheel for a window of `slots` seconds whose sweeps start after second `start`.
    pub fn new(slots: u32, start: i64) -> Self {
        Wheel {
            slots: (0..slots).map(|_| Vec::new()).collect(),
            occupied: 0,
            cutoff: start,
            due: 0,
            draining: Vec::new(),
            draining_slot: 0,
        }
    }

    fn window(&self) -> u32 {
        self.slots.len() as u32
    }

    /// Files `key` under second `second`.
    pub fn register(&mut self, key: u32, second: i64) {
        let slot = slot_of(second, self.window());
        if let Some(list) = self.slots.get_mut(slot as usize) {
            list.push(key);
            self.occupied |= 1 << slot;
        }
    }

    /// Extends the sweep so that every second up to `cutoff` comes due.
    pub fn begin(&mut self, cutoff: i64) {
        if cutoff > self.cutoff {
            self.due |= seconds_mask(self.cutoff, cutoff, self.window()) & full_mask(self.window());
            self.cutoff = cutoff;
        }
    }

    /// The cutoff of the current sweep: keys handed out expire every second up to it.
    pub fn cutoff(&self) -> i64 {
        self.cutoff
    }

    /// The next entry due in the current sweep, with the slot it was filed under.
    pub fn next_due(&mut self) -> Option<(u32, u32)> {
        loop {
            if let Some(key) = self.draining.pop() {
                return Some((key, self.draining_slot));
            }
            let ready = self.due & self.occupied;
            if ready == 0 {
                self.due = 0;
                return None;
            }
            let slot = ready.trailing_zeros();
            self.due &= !(1 << slot);
            self.occupied &= !(1 << slot);
            self.draining_slot = slot;
            if let Some(list) = self.slots.get_mut(slot as usize) {
                // Swap rather than take, so the slot keeps one buffer and the drain keeps
                // the other: steady-state sweeping allocates nothing.
                std::mem::swap(list, &mut self.draining);
                list.clear();
            }
        }
    }

    /// Whether the current sweep has entries left.
    pub fn pending(&self) -> bool {
        !self.draining.is_empty() || self.due & self.occupied != 0
    }

    /// Entries filed, stale ones included.
    pub fn entries(&self) -> usize {
        self.slots.iter().map(Vec::len).sum::<usize>() + self.draining.len()
    }

    /// Every key filed, stale hints and repeats included.
    pub fn keys(&self) -> impl Iterator<Item = u32> + '_ {
        self.slots
            .iter()
            .flatten()
            .chain(self.draining.iter())
            .copied()
    }

    /// Entries the slots' buffers can hold: a slot keeps the buffer of its busiest
    /// second until the wheel is rebuilt.
    pub fn capacity(&self) -> usize {
        self.slots.iter().map(Vec::capacity).sum::<usize>() + self.draining.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(w: &mut Wheel) -> Vec<u32> {
        let mut out = Vec::new();
        while let Some((key, _)) = w.next_due() {
            out.push(key);
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn keys_come_due_when_their_second_leaves() {
        let mut w = Wheel::new(60, 1000);
        w.register(1, 1001);
        w.register(2, 1001);
        w.register(3, 1030);
        w.register(4, 1060);
        w.begin(1000);
        assert_eq!(drain(&mut w), Vec::<u32>::new(), "nothing is due yet");
        w.begin(1001);
        assert_eq!(drain(&mut w), vec![1, 2]);
        w.begin(1029);
        assert_eq!(drain(&mut w), Vec::<u32>::new());
        w.begin(1030);
        assert_eq!(drain(&mut w), vec![3]);
        assert!(!w.pending());
        assert_eq!(w.entries(), 1);
        w.begin(1060);
        assert_eq!(drain(&mut w), vec![4]);
        assert_eq!(w.entries(), 0);
    }

    #[test]
    fn a_jump_past_the_window_visits_every_slot_once() {
        let mut w = Wheel::new(60, 0);
        for s in 1..=60 {
            w.register(s as u32, s);
        }
        w.begin(10_000);
        assert_eq!(drain(&mut w), (1..=60).collect::<Vec<u32>>());
        assert_eq!(w.cutoff(), 10_000);
    }

    #[test]
    fn an_entry_filed_again_under_the_slot_being_swept_waits_for_its_turn() {
        let mut w = Wheel::new(60, 0);
        w.register(7, 5);
        w.begin(5);
        let (key, slot) = w.next_due().expect("due");
        assert_eq!((key, slot), (7, 5));
        // Its next oldest second is 65: the same slot, one window later.
        w.register(7, 65);
        assert_eq!(w.next_due(), None, "not handed out twice in one sweep");
        w.begin(64);
        assert_eq!(w.next_due(), None);
        w.begin(65);
        assert_eq!(w.next_due(), Some((7, 5)));
    }

    #[test]
    fn sweeps_can_stop_and_resume_between_entries() {
        let mut w = Wheel::new(60, 0);
        for k in 0..10 {
            w.register(k, 3);
        }
        w.begin(3);
        let first: Vec<u32> = (0..4)
            .filter_map(|_| w.next_due().map(|(k, _)| k))
            .collect();
        assert_eq!(first.len(), 4);
        assert!(w.pending());
        let mut rest = drain(&mut w);
        rest.extend(first);
        rest.sort_unstable();
        assert_eq!(rest, (0..10).collect::<Vec<u32>>());
    }
}
