//! The records a shard keeps, and the one layout trick among them: a user with a
//! single event type (the common case) keeps that type and its running sum in its own
//! record; a user with several keeps an index to a table of pairs instead. The trick
//! stays behind [`UserRec::types`] and its setters; nothing outside this file reads
//! the raw fields.

use super::super::name::Name;
use super::super::ring::{Ring, Running};

/// The pair of a user with several event types (a user with one type keeps it in its
/// own record).
#[derive(Debug)]
pub(super) struct PairRec {
    pub ty: u32,
    pub ring: Ring,
    pub running: Running,
}

/// `UserRec::ty` of a user with several event types.
const MANY_TYPES: u32 = u32::MAX;

/// A user with events in the window: 56 bytes (see the layout in `store/mod.rs`).
#[derive(Debug)]
pub(super) struct UserRec {
    pub name: Name,
    /// The newest second the user has held data for.
    pub anchor: u32,
    /// The user's only event type, or [`MANY_TYPES`].
    ty: u32,
    /// The user's per-second counts; with one type also that pair's per-second sums.
    pub ring: Ring,
    /// With one type: that pair's running sum (a [`Running`] word). With several:
    /// the index of the user's pair table in `Shard::many`.
    word: u64,
}

/// What a user's record says about its event types.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Types {
    /// One type: the user's ring is that pair's ring, and `running` its running sum.
    One { ty: u32, running: Running },
    /// Several types: their pairs are in table `Shard::many[_]`.
    Many(usize),
}

impl UserRec {
    /// A user whose only type is `ty`.
    #[inline]
    pub fn new(name: Name, anchor: u32, ty: u32, ring: Ring, running: Running) -> Self {
        UserRec {
            name,
            anchor,
            ty,
            ring,
            word: running.to_bits(),
        }
    }

    /// The user's event types.
    #[inline]
    pub fn types(&self) -> Types {
        if self.ty == MANY_TYPES {
            Types::Many(self.word as usize)
        } else {
            Types::One {
                ty: self.ty,
                running: Running::from_bits(self.word),
            }
        }
    }

    /// The user has one type, `ty`, whose running sum is `running`.
    #[inline]
    pub fn set_one(&mut self, ty: u32, running: Running) {
        self.ty = ty;
        self.word = running.to_bits();
    }

    /// The user has several types, in pair table `table`.
    #[inline]
    pub fn set_many(&mut self, table: usize) {
        self.ty = MANY_TYPES;
        self.word = table as u64;
    }
}

/// This shard's share of one event type.
#[derive(Debug)]
pub(super) struct TypeRec {
    pub name: Name,
    pub anchor: u32,
    pub ring: Ring,
    /// Pairs of this shard that refer to the type: it outlives them, so a pair never
    /// refers to a reused type slot.
    pub pairs: u32,
    /// The type's id in the store's [`Registry`](super::super::registry::Registry).
    pub id: u32,
}

/// The layout of a `slab` slot (its own type is private), for the size test below.
#[cfg(test)]
#[allow(dead_code)]
enum SlabEntry<T> {
    Vacant(usize),
    Occupied(T),
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes per active user in `store/mod.rs` count on these sizes; a field added
    /// without thought shows up here first.
    #[test]
    fn record_sizes_stay_as_documented() {
        assert_eq!(std::mem::size_of::<Ring>(), 16);
        assert_eq!(std::mem::size_of::<Name>(), 24);
        assert_eq!(std::mem::size_of::<UserRec>(), 56);
        assert_eq!(std::mem::size_of::<SlabEntry<UserRec>>(), 56);
        assert_eq!(std::mem::size_of::<PairRec>(), 32);
        assert_eq!(std::mem::size_of::<TypeRec>(), 56);
    }

    #[test]
    fn one_type_and_many_types_read_back() {
        let half = Running::from_bits(2.5f64.to_bits());
        let mut u = UserRec::new(Name::new("u"), 7, 3, Ring::new(), half);
        assert_eq!(
            u.types(),
            Types::One {
                ty: 3,
                running: half
            }
        );
        u.set_many(41);
        assert_eq!(u.types(), Types::Many(41));
        u.set_one(9, Running::ZERO);
        match u.types() {
            Types::One { ty, running } => {
                assert_eq!(ty, 9);
                assert_eq!(running, Running::ZERO);
            }
            other => panic!("expected one type, got {other:?}"),
        }
    }
}
