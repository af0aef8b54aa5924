//! A serving thread's lane: the events it accepted, waiting for the log thread.
//!
//! A serving thread appends its accepted events here as plain bytes — ids copied,
//! no dictionary, no system call — under its own lane's lock, which only the log
//! thread also takes, for the moment it swaps the buffer out. The log thread turns
//! them into segment records.
//!
//! # Items (native byte order, in memory only)
//!
//! ```text
//! item    kind u8 | flags u8 | events u32 | bytes u32 | now i64 | events ...
//! event   now i64 | second u32 | has value u8 | value f64 | user len u16 | user
//!         | type len u16 | type
//! ```
//!
//! Kinds: [`APPLIED`] events are already counted by the store (`everysec`, `no`);
//! [`PENDING`] events are counted by the log thread once they are on disk
//! (`always`), and the item's reply waits on a [`Promise`]; [`CLOCK`] records a move
//! of the manual clock; [`MARK`] holds a connection back until the lane is written.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::ticket::Promise;

/// Events the store has counted.
pub const APPLIED: u8 = 1;
/// Events to count once durable.
pub const PENDING: u8 = 2;
/// A clock move.
pub const CLOCK: u8 = 3;
/// No event: its promise is fulfilled once what the lane held before it is
/// written (a connection held back while the lane is too full).
pub const MARK: u8 = 4;

/// The item's events may create records (the memory limit was not reached).
pub const FLAG_GROW: u8 = 1;
/// The item has a promise (the next one in the lane's list).
pub const FLAG_PROMISE: u8 = 2;

const ITEM_HEADER: usize = 1 + 1 + 4 + 4 + 8;

/// One event as the log takes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogEvent<'a> {
    pub user: &'a str,
    pub event_type: &'a str,
    /// Its second, already clamped to at most `now`.
    pub second: u32,
    pub value: Option<f64>,
    /// `now` as admission read it for this event.
    pub now: i64,
}

/// An event read back from a lane: its ids as bytes (they came from `&str`s).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RawEvent<'a> {
    pub user: &'a [u8],
    pub event_type: &'a [u8],
    pub second: u32,
    pub value: Option<f64>,
    pub now: i64,
}

/// What a lane holds.
#[derive(Debug, Default)]
pub struct LaneBuf {
    /// Whether events are logged (appendonly), changed only under this lock.
    pub on: bool,
    pub raw: Vec<u8>,
    pub promises: Vec<Promise>,
}

/// A serving thread's lane.
#[derive(Debug, Default)]
pub struct Lane(Mutex<LaneBuf>);

impl Lane {
    pub fn new(on: bool) -> Self {
        Lane(Mutex::new(LaneBuf {
            on,
            ..LaneBuf::default()
        }))
    }

    /// The lane's buffer. Held for microseconds, never across an `.await`; nothing
    /// panics while holding it, and the buffer is whole between items, so a
    /// poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, LaneBuf> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl LaneBuf {
    /// Appends an item of `kind`; `events` yields the events to keep. Returns how
    /// many were kept (an item without events is not kept, but for [`CLOCK`]).
    pub fn push<'e>(
        &mut self,
        kind: u8,
        flags: u8,
        events: impl Iterator<Item = LogEvent<'e>>,
        promise: Option<Promise>,
    ) -> u32 {
        let start = self.raw.len();
        self.raw.extend_from_slice(&[0u8; ITEM_HEADER]);
        let mut n = 0u32;
        let mut now = i64::MIN;
        for ev in events {
            now = now.max(ev.now);
            push_event(&mut self.raw, &ev);
            n += 1;
        }
        if n == 0 && kind != CLOCK && kind != MARK {
            // Nothing to keep: leave no empty item behind.
            self.raw.truncate(start);
            return 0;
        }
        let bytes = (self.raw.len() - start - ITEM_HEADER) as u32;
        let flags = flags | if promise.is_some() { FLAG_PROMISE } else { 0 };
        let head = &mut self.raw[start..start + ITEM_HEADER];
        head[0] = kind;
        head[1] = flags;
        head[2..6].copy_from_slice(&n.to_ne_bytes());
        head[6..10].copy_from_slice(&bytes.to_ne_bytes());
        head[10..18].copy_from_slice(&now.to_ne_bytes());
        if let Some(p) = promise {
            self.promises.push(p);
        }
        n
    }

    /// Appends a mark whose promise is fulfilled once what comes before is written.
    pub fn push_mark(&mut self, promise: Promise) {
        self.push(MARK, 0, std::iter::empty(), Some(promise));
    }

    /// Appends a clock move to `now`.
    pub fn push_clock(&mut self, now: i64, promise: Option<Promise>) {
        let start = self.raw.len();
        self.push(CLOCK, 0, std::iter::empty(), promise);
        self.raw[start + 10..start + 18].copy_from_slice(&now.to_ne_bytes());
    }
}

/// Bytes of an event before its ids: now, second, has value, value, user length.
const EVENT_HEAD: usize = 8 + 4 + 1 + 8 + 2;

fn push_event(raw: &mut Vec<u8>, ev: &LogEvent<'_>) {
    // Ids are at most `--max-id-len` bytes, whose ceiling is the u16 length.
    let user = ev.user.as_bytes();
    let ty = ev.event_type.as_bytes();
    let user = user
        .get(..user.len().min(usize::from(u16::MAX)))
        .unwrap_or_default();
    let ty = ty
        .get(..ty.len().min(usize::from(u16::MAX)))
        .unwrap_or_default();
    // The fixed part built in place and copied once: eight small appends, each
    // checking the capacity, were most of this function's cost (callgrind).
    let mut head = [0u8; EVENT_HEAD];
    head[0..8].copy_from_slice(&ev.now.to_ne_bytes());
    head[8..12].copy_from_slice(&ev.second.to_ne_bytes());
    head[12] = u8::from(ev.value.is_some());
    head[13..21].copy_from_slice(&ev.value.unwrap_or(0.0).to_ne_bytes());
    head[21..23].copy_from_slice(&(user.len() as u16).to_ne_bytes());
    raw.reserve(EVENT_HEAD + user.len() + 2 + ty.len());
    raw.extend_from_slice(&head);
    raw.extend_from_slice(user);
    raw.extend_from_slice(&(ty.len() as u16).to_ne_bytes());
    raw.extend_from_slice(ty);
}

/// An item read back.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    pub kind: u8,
    pub flags: u8,
    pub now: i64,
    events: &'a [u8],
}

impl<'a> Item<'a> {
    /// Its events, in order.
    pub fn events(&self) -> Events<'a> {
        Events {
            b: self.events,
            pos: 0,
        }
    }

    /// The item's bytes, header included, for keeping it to write again.
    pub fn bytes_with_header(&self, raw: &'a [u8], start: usize) -> &'a [u8] {
        raw.get(start..start + ITEM_HEADER + self.events.len())
            .unwrap_or_default()
    }
}

/// The items of a swapped-out lane buffer: `(offset, item)`.
pub fn items(raw: &[u8]) -> impl Iterator<Item = (usize, Item<'_>)> {
    let mut pos = 0;
    std::iter::from_fn(move || {
        let head = raw.get(pos..pos + ITEM_HEADER)?;
        let word = |i: usize| u32::from_ne_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
        let bytes = word(6) as usize;
        let mut now = [0u8; 8];
        now.copy_from_slice(&head[10..18]);
        let start = pos;
        let events = raw.get(pos + ITEM_HEADER..pos + ITEM_HEADER + bytes)?;
        pos += ITEM_HEADER + bytes;
        Some((
            start,
            Item {
                kind: head[0],
                flags: head[1],
                now: i64::from_ne_bytes(now),
                events,
            },
        ))
    })
}

/// The events of an item.
#[derive(Debug, Clone)]
pub struct Events<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for Events<'a> {
    type Item = RawEvent<'a>;

    fn next(&mut self) -> Option<RawEvent<'a>> {
        let b = self.b;
        let mut take = |n: usize| {
            let s = b.get(self.pos..self.pos + n)?;
            self.pos += n;
            Some(s)
        };
        let now = i64::from_ne_bytes(take(8)?.try_into().ok()?);
        let second = u32::from_ne_bytes(take(4)?.try_into().ok()?);
        let has = take(1)?[0] != 0;
        let value = f64::from_ne_bytes(take(8)?.try_into().ok()?);
        let ulen = u16::from_ne_bytes(take(2)?.try_into().ok()?);
        let user = take(usize::from(ulen))?;
        let tlen = u16::from_ne_bytes(take(2)?.try_into().ok()?);
        let event_type = take(usize::from(tlen))?;
        Some(RawEvent {
            user,
            event_type,
            second,
            value: has.then_some(value),
            now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_read_back_as_written() {
        let mut lane = LaneBuf::default();
        let evs = [
            LogEvent {
                user: "alice",
                event_type: "click",
                second: 100,
                value: Some(1.5),
                now: 101,
            },
            LogEvent {
                user: "bob \u{e9}",
                event_type: "view",
                second: 99,
                value: None,
                now: 102,
            },
        ];
        assert_eq!(lane.push(APPLIED, FLAG_GROW, evs.iter().copied(), None), 2);
        lane.push_clock(500, None);
        assert_eq!(lane.push(PENDING, 0, evs[..1].iter().copied(), None), 1);
        let got: Vec<_> = items(&lane.raw).map(|(_, i)| i).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(
            (got[0].kind, got[0].flags, got[0].now),
            (APPLIED, FLAG_GROW, 102)
        );
        fn back(e: RawEvent<'_>) -> LogEvent<'_> {
            LogEvent {
                user: std::str::from_utf8(e.user).unwrap(),
                event_type: std::str::from_utf8(e.event_type).unwrap(),
                second: e.second,
                value: e.value,
                now: e.now,
            }
        }
        assert_eq!(got[0].events().map(back).collect::<Vec<_>>(), evs.to_vec());
        assert_eq!(
            (got[1].kind, got[1].now, got[1].events().count()),
            (CLOCK, 500, 0)
        );
        assert_eq!(
            got[2].events().map(back).collect::<Vec<_>>(),
            evs[..1].to_vec()
        );
    }
}
