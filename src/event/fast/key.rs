//! The members an event names: a key told from the block that holds it (its length
//! and two words), and the key-and-colon patterns of the members services send, in
//! the order they send them.

use super::block::{Pattern, le, words};

/// A member's key, as far as the event cares.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Key {
    User,
    Type,
    Time,
    Attributes,
    Value,
    Other,
}

impl Key {
    /// The key of `len` bytes at the start of `block` (`len` below 16).
    #[inline(always)]
    pub(super) fn of_block(block: &[u8; 16], len: usize) -> Key {
        let (lo, hi) = words(block);
        // Only the key's own bytes count; past them, anything.
        let hi2 = hi & 0xffff;
        match len {
            5 if lo & 0xff_ffff_ffff == le(b"value\0\0\0") => Key::Value,
            7 if lo & 0xff_ffff_ffff_ffff == le(b"user_id\0") => Key::User,
            9 if lo == le(b"timestam") && hi & 0xff == u64::from(b'p') => Key::Time,
            10 if lo == le(b"event_ty") && hi2 == le(b"pe\0\0\0\0\0\0") => Key::Type,
            10 if lo == le(b"attribut") && hi2 == le(b"es\0\0\0\0\0\0") => Key::Attributes,
            _ => Key::Other,
        }
    }

    pub(super) fn of(name: &[u8]) -> Key {
        match name {
            b"user_id" => Key::User,
            b"event_type" => Key::Type,
            b"timestamp" => Key::Time,
            b"attributes" => Key::Attributes,
            b"value" => Key::Value,
            _ => Key::Other,
        }
    }
}

pub(super) const USER_ID: Pattern = Pattern::of(b"\"user_id\":");
pub(super) const EVENT_TYPE: Pattern = Pattern::of(b"\"event_type\":");
pub(super) const TIMESTAMP: Pattern = Pattern::of(b"\"timestamp\":");
pub(super) const ATTRIBUTES: Pattern = Pattern::of(b"\"attributes\":");
pub(super) const VALUE: Pattern = Pattern::of(b"\"value\":");
