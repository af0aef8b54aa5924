//! The window log's bytes on disk: segment header, frames, records.
//!
//! # Segment file (`appendonlydir/log-<generation>-<seq>.sal`, little-endian)
//!
//! ```text
//! header   41 bytes
//!   magic    8   "SALOG\0\0\x01"
//!   generation      u64  generation: a snapshot saved at generation G covers every
//!                 segment of a lower generation
//!   seq      u64  order within the generation
//!   clock    u8   0 wall, 1 event, 2 manual
//!   window   u32  seconds, for the reader's information
//!   now      i64  the newest `now` the log held when this segment was opened
//!   crc      u32  CRC-32 of the 37 bytes before it
//! frame ...
//!   len      u32  bytes of the body
//!   crc      u32  CRC-32 of the body
//!   hcrc     u32  CRC-32 of the 8 bytes before it (a damaged length is told from
//!                 a torn write)
//!   body     varint now, then records
//! ```
//!
//! A frame is the unit the writer appends at once (one group commit, or a part of
//! it of about [`FRAME_TARGET`] bytes); it is whole or it is not there. Records:
//!
//! ```text
//! 0x01 varint len, bytes           defines the next user id  (refs 0, 1, 2 ...)
//! 0x02 varint len, bytes           defines the next event type
//! 0x10|k user, type, age, [value]  one event; `age` = frame now - its second;
//!                                  k = 0 no value, 1 zig-zag varint integer,
//!                                  2 f32, 3 f64 (the narrowest that is exact)
//! 0x21 user, type, age, count, varint low, varint high, f64 × (low + high)
//!                                  `count` events of that second at once (the
//!                                  window as it was when the log was switched on),
//!                                  their sum exact: the partials the store keeps
//!                                  (`store/exact.rs`)
//! 0x20 user, type, age, count, f64 sum
//!                                  the same with a rounded sum (older segments:
//!                                  read, no longer written)
//! ```
//!
//! Ids are defined once per segment, at their first use, so an event of a user
//! seen before in the segment costs 1 tag + 1–3 bytes of user ref + 1 of type ref +
//! 1 of age + 0–8 of value: 5 bytes without a value, 9 with `10.5`.
//!
//! # Reading
//!
//! A frame cut short by the end of the file, or whose body fails its CRC while
//! ending exactly at the end of the file, or followed only by zero bytes, is a
//! *torn* tail (a crash cut the last write): it is dropped and counted. Anything
//! else that fails a check is *damage*, reported with its offset.

use super::dict::Dict;
use crate::clock::ClockMode;
use crate::store::Exact;

/// The first bytes of every segment.
pub const MAGIC: &[u8; 8] = b"SALOG\0\0\x01";
/// Bytes of the segment header.
pub const HEADER_LEN: usize = 8 + 8 + 8 + 1 + 4 + 8 + 4;
/// Bytes of a frame header.
pub const FRAME_HEADER: usize = 12;
/// A frame is closed once its body passes this many bytes: a torn write loses at
/// most one frame, and the reader never needs much memory for one.
pub const FRAME_TARGET: usize = 1024 * 1024;
/// The largest frame body a reader accepts; a length above it is damage.
pub const MAX_FRAME: usize = 64 * 1024 * 1024;

const TAG_USER: u8 = 0x01;
const TAG_TYPE: u8 = 0x02;
const TAG_EVENT: u8 = 0x10;
const TAG_AGG: u8 = 0x20;
const TAG_AGG_EXACT: u8 = 0x21;

/// A segment's header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub generation: u64,
    pub seq: u64,
    pub clock: ClockMode,
    pub window: u32,
    pub now: i64,
}

impl Header {
    /// The header's bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..8].copy_from_slice(MAGIC);
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..24].copy_from_slice(&self.seq.to_le_bytes());
        b[24] = self.clock.to_byte();
        b[25..29].copy_from_slice(&self.window.to_le_bytes());
        b[29..37].copy_from_slice(&self.now.to_le_bytes());
        let crc = crc32fast::hash(&b[..37]);
        b[37..41].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Reads a header; `None` when `bytes` do not start with a whole, valid one.
    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let b = bytes.get(..HEADER_LEN)?;
        if &b[..8] != MAGIC || crc32fast::hash(&b[..37]).to_le_bytes() != b[37..41] {
            return None;
        }
        let u64_at = |i: usize| b.get(i..i + 8).and_then(|s| s.try_into().ok());
        let clock = ClockMode::from_byte(b[24])?;
        Some(Header {
            generation: u64::from_le_bytes(u64_at(8)?),
            seq: u64::from_le_bytes(u64_at(16)?),
            clock,
            window: u32::from_le_bytes(b[25..29].try_into().ok()?),
            now: i64::from_le_bytes(u64_at(29)?),
        })
    }
}

/// Appends `v` as a LEB128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint at `*pos`, moving `*pos` past it.
pub fn get_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *b.get(*pos)?;
        *pos += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// The narrowest exact encoding of a value: its kind (0–3) and bytes.
fn value_kind(v: Option<f64>) -> u8 {
    match v {
        None => 0,
        // Integers below 2^53 as varints; -0.0 keeps its sign through f32.
        Some(x) if x.fract() == 0.0 && x.abs() < 9.0e15 && !(x == 0.0 && x.is_sign_negative()) => 1,
        Some(x) if f64::from(x as f32) == x => 2,
        Some(_) => 3,
    }
}

fn put_value(out: &mut Vec<u8>, kind: u8, v: f64) {
    match kind {
        1 => put_varint(out, zigzag(v as i64)),
        2 => out.extend_from_slice(&(v as f32).to_le_bytes()),
        3 => out.extend_from_slice(&v.to_le_bytes()),
        _ => {}
    }
}

/// Encodes records into frames for one segment, defining ids at first use.
#[derive(Debug, Default)]
pub struct Encoder {
    users: Dict,
    types: Dict,
    /// The last event type and its ref.
    last_type: Option<(Vec<u8>, u32)>,
}

impl Encoder {
    /// The hash [`Encoder::event`] wants for a user id.
    pub fn user_hash(&self, user: &[u8]) -> u64 {
        self.users.hash(user)
    }

    /// Starts loading what interning the user of hash `h` will read: its slot
    /// (`far`: further ahead) or its bytes.
    pub fn prefetch(&self, h: u64, far: bool) {
        if far {
            self.users.prefetch_slot(h);
        } else {
            self.users.prefetch_id(h);
        }
    }

    fn refs(&mut self, out: &mut Vec<u8>, user: &[u8], uh: u64, ty: &[u8]) -> (u32, u32) {
        let mut define = |dict: &mut Dict, tag: u8, id: &[u8], h: u64| {
            let (r, new) = dict.intern(id, h);
            if new {
                out.push(tag);
                put_varint(out, id.len() as u64);
                out.extend_from_slice(id);
            }
            r
        };
        let u = define(&mut self.users, TAG_USER, user, uh);
        // Most events of a run share their type.
        let t = match &self.last_type {
            Some((bytes, r)) if bytes.as_slice() == ty => *r,
            _ => {
                let th = self.types.hash(ty);
                let t = define(&mut self.types, TAG_TYPE, ty, th);
                self.last_type = Some((ty.to_vec(), t));
                t
            }
        };
        (u, t)
    }

    /// Appends one event to the frame being built in `out`; `uh` is
    /// [`Encoder::user_hash`] of `user`.
    pub fn event(
        &mut self,
        out: &mut Vec<u8>,
        user: &[u8],
        uh: u64,
        ty: &[u8],
        age: u64,
        v: Option<f64>,
    ) {
        let (u, t) = self.refs(out, user, uh, ty);
        let kind = value_kind(v);
        out.push(TAG_EVENT | kind);
        put_varint(out, u64::from(u));
        put_varint(out, u64::from(t));
        put_varint(out, age);
        put_value(out, kind, v.unwrap_or(0.0));
    }

    /// Appends `count` events of one second whose values add up exactly to `sum`.
    pub fn aggregate(
        &mut self,
        out: &mut Vec<u8>,
        user: &[u8],
        ty: &[u8],
        age: u64,
        count: u64,
        sum: &Exact,
    ) {
        let uh = self.users.hash(user);
        let (u, t) = self.refs(out, user, uh, ty);
        out.push(TAG_AGG_EXACT);
        put_varint(out, u64::from(u));
        put_varint(out, u64::from(t));
        put_varint(out, age);
        put_varint(out, count);
        put_varint(out, sum.low().len() as u64);
        put_varint(out, sum.high().len() as u64);
        for x in sum.low().iter().chain(sum.high()) {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

/// Starts a frame at the end of `out` whose `now` is `now`; returns where it starts.
pub fn begin_frame(out: &mut Vec<u8>, now: i64) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER]);
    put_varint(out, u64::try_from(now).unwrap_or(0));
    start
}

/// Fills in the header of the frame that starts at `start` and runs to the end of
/// `out`.
pub fn end_frame(out: &mut [u8], start: usize) {
    let body = start + FRAME_HEADER;
    let len = (out.len() - body) as u32;
    let crc = crc32fast::hash(&out[body..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    let hcrc = crc32fast::hash(&out[start..start + 8]);
    out[start + 8..start + 12].copy_from_slice(&hcrc.to_le_bytes());
}

/// The next thing in a segment after a position.
#[derive(Debug, PartialEq, Eq)]
pub enum Next<'a> {
    /// A whole frame: its body, and where the next one starts.
    Frame { body: &'a [u8], end: usize },
    /// The end of the file.
    End,
    /// A torn last frame: a crash cut the write that began here.
    Torn,
    /// Damage at this offset.
    Damaged(&'static str),
}

/// Reads the frame at `pos` of a segment's bytes.
pub fn next_frame(b: &[u8], pos: usize) -> Next<'_> {
    let rest = b.get(pos..).unwrap_or_default();
    if rest.is_empty() {
        return Next::End;
    }
    let zeros = || rest.iter().all(|&x| x == 0);
    let Some(head) = rest.get(..FRAME_HEADER) else {
        return Next::Torn;
    };
    let word = |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
    if crc32fast::hash(&head[..8]) != word(8) {
        return if zeros() {
            Next::Torn
        } else {
            Next::Damaged("frame header checksum mismatch")
        };
    }
    let len = word(0) as usize;
    if len == 0 || len > MAX_FRAME {
        return Next::Damaged("frame length out of range");
    }
    let Some(body) = rest.get(FRAME_HEADER..FRAME_HEADER + len) else {
        return Next::Torn;
    };
    let end = pos + FRAME_HEADER + len;
    if crc32fast::hash(body) != word(4) {
        return if end == b.len() || b[end..].iter().all(|&x| x == 0) {
            Next::Torn
        } else {
            Next::Damaged("frame checksum mismatch")
        };
    }
    Next::Frame { body, end }
}

/// One record of a frame: `count` events of `user`/`ty` in `second` whose values
/// add up to `value` (`None`: no value), exactly to `exact` when it is given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Record<'a> {
    pub user: &'a str,
    pub ty: &'a str,
    /// The user's and the type's refs in the segment (dense from 0).
    pub user_ref: u32,
    pub type_ref: u32,
    pub second: i64,
    pub count: u64,
    pub value: Option<f64>,
    pub exact: Option<Parts<'a>>,
}

/// An exact sum as a record holds it: little-endian partials, low then high.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Parts<'a> {
    low: &'a [u8],
    high: &'a [u8],
}

impl Parts<'_> {
    /// The sum. Each partial is added as a value, so even partials this server did
    /// not write sum exactly; a high one too large to be a scaled value is refused
    /// at decoding.
    pub fn exact(&self) -> Exact {
        let read = |b: &[u8]| -> Vec<f64> {
            b.chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
                .collect()
        };
        Exact::from_untrusted(&read(self.low), &read(self.high))
    }
}

/// The ids defined so far in a segment being read (slices of its bytes).
#[derive(Debug, Default)]
pub struct Names<'a> {
    users: Vec<&'a str>,
    types: Vec<&'a str>,
}

impl<'a> Names<'a> {
    /// The user of a ref.
    pub fn user(&self, r: u32) -> Option<&'a str> {
        self.users.get(r as usize).copied()
    }

    /// The event type of a ref.
    pub fn ty(&self, r: u32) -> Option<&'a str> {
        self.types.get(r as usize).copied()
    }

    /// Users defined so far (refs are below it).
    pub fn users(&self) -> usize {
        self.users.len()
    }
}

/// Decodes a frame's body: returns its `now`, handing each record to `f`.
pub fn decode_frame<'a>(
    body: &'a [u8],
    names: &mut Names<'a>,
    f: &mut dyn FnMut(Record<'a>),
) -> Result<i64, &'static str> {
    let mut pos = 0;
    let now = get_varint(body, &mut pos).ok_or("bad frame time")?;
    let now = i64::try_from(now).map_err(|_| "bad frame time")?;
    let var = |pos: &mut usize| get_varint(body, pos).ok_or("truncated record");
    while let Some(&tag) = body.get(pos) {
        pos += 1;
        match tag {
            TAG_USER | TAG_TYPE => {
                let len = usize::try_from(var(&mut pos)?).map_err(|_| "bad id")?;
                let id = body
                    .get(pos..pos.saturating_add(len))
                    .ok_or("truncated id")?;
                pos += len;
                let id = std::str::from_utf8(id).map_err(|_| "id is not UTF-8")?;
                if tag == TAG_USER {
                    names.users.push(id);
                } else {
                    names.types.push(id);
                }
            }
            t if t & 0xf0 == TAG_EVENT || t == TAG_AGG || t == TAG_AGG_EXACT => {
                let user_ref = u32::try_from(var(&mut pos)?).map_err(|_| "undefined user ref")?;
                let user = names.user(user_ref).ok_or("undefined user ref")?;
                let type_ref = u32::try_from(var(&mut pos)?).map_err(|_| "undefined type ref")?;
                let ty = names.ty(type_ref).ok_or("undefined type ref")?;
                let age = i64::try_from(var(&mut pos)?).map_err(|_| "bad age")?;
                let mut exact = None;
                let (count, value) = if t == TAG_AGG_EXACT {
                    let count = var(&mut pos)?;
                    let (nl, nh) = (var(&mut pos)?, var(&mut pos)?);
                    if nl.max(nh) > u64::from(crate::persist::snapshot::MAX_PARTS) {
                        return Err("bad sum");
                    }
                    let (nl, nh) = (nl as usize * 8, nh as usize * 8);
                    let low = body.get(pos..pos + nl).ok_or("truncated sum")?;
                    let high = body.get(pos + nl..pos + nl + nh).ok_or("truncated sum")?;
                    pos += nl + nh;
                    let finite = |b: &[u8], limit: f64| {
                        b.chunks_exact(8).all(|c| {
                            let x = f64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
                            x.is_finite() && x.abs() < limit
                        })
                    };
                    if !finite(low, f64::INFINITY) || !finite(high, crate::store::exact_huge()) {
                        return Err("bad sum");
                    }
                    let parts = Parts { low, high };
                    let rounded = parts.exact().round();
                    exact = Some(parts);
                    (count, Some(rounded))
                } else if t == TAG_AGG {
                    let count = var(&mut pos)?;
                    let sum = body.get(pos..pos + 8).ok_or("truncated sum")?;
                    pos += 8;
                    (
                        count,
                        Some(f64::from_le_bytes(sum.try_into().unwrap_or([0; 8]))),
                    )
                } else {
                    let value = match t & 0x0f {
                        0 => None,
                        1 => Some(unzigzag(var(&mut pos)?) as f64),
                        2 => {
                            let b = body.get(pos..pos + 4).ok_or("truncated value")?;
                            pos += 4;
                            Some(f64::from(f32::from_le_bytes(
                                b.try_into().unwrap_or([0; 4]),
                            )))
                        }
                        3 => {
                            let b = body.get(pos..pos + 8).ok_or("truncated value")?;
                            pos += 8;
                            Some(f64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                        }
                        _ => return Err("unknown value kind"),
                    };
                    (1, value)
                };
                f(Record {
                    user,
                    ty,
                    user_ref,
                    type_ref,
                    second: now - age,
                    count,
                    value,
                    exact,
                });
            }
            _ => return Err("unknown record"),
        }
    }
    Ok(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(enc: &mut Encoder, now: i64, events: &[(&str, &str, u64, Option<f64>)]) -> Vec<u8> {
        let mut out = Vec::new();
        let start = begin_frame(&mut out, now);
        for (u, t, age, v) in events {
            let h = enc.user_hash(u.as_bytes());
            enc.event(&mut out, u.as_bytes(), h, t.as_bytes(), *age, *v);
        }
        end_frame(&mut out, start);
        out
    }

    fn decode_all(bytes: &[u8]) -> (Vec<Record<'_>>, Next<'_>) {
        let mut names = Names::default();
        let mut out = Vec::new();
        let mut pos = 0;
        loop {
            match next_frame(bytes, pos) {
                Next::Frame { body, end } => {
                    decode_frame(body, &mut names, &mut |r| out.push(r)).unwrap();
                    pos = end;
                }
                other => return (out, other),
            }
        }
    }

    #[test]
    fn values_round_trip_exactly_in_their_narrowest_form() {
        let values = [
            None,
            Some(10.5),
            Some(0.0),
            Some(-0.0),
            Some(-3.0),
            Some(1e300),
            Some(0.1),
            Some(f64::MIN_POSITIVE),
            Some(9.0e15 - 1.0),
            Some(4_503_599_627_370_497.0),
        ];
        let mut enc = Encoder::default();
        let events: Vec<_> = values.iter().map(|v| ("u", "t", 0, *v)).collect();
        let bytes = frame_of(&mut enc, 1000, &events);
        let (recs, end) = decode_all(&bytes);
        assert_eq!(end, Next::End);
        for (r, v) in recs.iter().zip(values) {
            assert_eq!(r.value.map(f64::to_bits), v.map(f64::to_bits), "{v:?}");
        }
        // 10.5 fits an f32: tag, user, type, age and 4 bytes.
        let mut one = Vec::new();
        let h = enc.user_hash(b"u");
        enc.event(&mut one, b"u", h, b"t", 0, Some(10.5));
        assert_eq!(one.len(), 1 + 1 + 1 + 1 + 4);
    }

    #[test]
    fn ids_are_defined_once_per_encoder() {
        let mut enc = Encoder::default();
        let a = frame_of(
            &mut enc,
            50,
            &[("alice", "click", 0, None), ("bob", "click", 3, Some(2.0))],
        );
        let b = frame_of(&mut enc, 51, &[("alice", "click", 1, None)]);
        // The second frame refers to alice and click without defining them again.
        assert!(b.len() < FRAME_HEADER + 1 + 5 + 1);
        let mut all = a.clone();
        all.extend_from_slice(&b);
        let (recs, end) = decode_all(&all);
        assert_eq!(end, Next::End);
        let got: Vec<_> = recs
            .iter()
            .map(|r| (r.user, r.ty, r.second, r.value))
            .collect();
        assert_eq!(
            got,
            vec![
                ("alice", "click", 50, None),
                ("bob", "click", 47, Some(2.0)),
                ("alice", "click", 50, None)
            ]
        );
    }

    #[test]
    fn a_cut_tail_is_torn_and_a_flipped_byte_inside_is_damage() {
        let mut enc = Encoder::default();
        let mut all = frame_of(&mut enc, 7, &[("u1", "t", 0, Some(1.0))]);
        let last = all.len();
        all.extend_from_slice(&frame_of(&mut enc, 8, &[("u2", "t", 0, Some(1.0))]));
        for cut in last + 1..all.len() {
            let (recs, end) = decode_all(&all[..cut]);
            assert_eq!(recs.len(), 1, "cut at {cut}");
            assert_eq!(end, Next::Torn, "cut at {cut}");
        }
        // Zeros after the last frame (a file extended but never written) are torn too.
        let mut zeros = all.clone();
        zeros.extend_from_slice(&[0; 40]);
        assert_eq!(decode_all(&zeros).1, Next::Torn);
        for i in 0..last {
            let mut bad = all.clone();
            bad[i] ^= 0x20;
            let (_, end) = decode_all(&bad);
            assert!(matches!(end, Next::Damaged(_)), "flip at {i}: {end:?}");
        }
    }

    #[test]
    fn headers_round_trip_and_reject_damage() {
        let h = Header {
            generation: 3,
            seq: 9,
            clock: ClockMode::Manual,
            window: 60,
            now: 1_700_000_000,
        };
        let b = h.encode();
        assert_eq!(Header::decode(&b), Some(h));
        for i in 0..HEADER_LEN {
            let mut bad = b;
            bad[i] ^= 1;
            assert_eq!(Header::decode(&bad), None, "flip at {i}");
        }
        assert_eq!(Header::decode(&b[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn aggregates_carry_count_and_sum() {
        let mut enc = Encoder::default();
        let mut out = Vec::new();
        let start = begin_frame(&mut out, 100);
        let mut sum = Exact::new();
        for v in [1e308, 1e308, 0.1, 0.2] {
            sum.add(v);
        }
        enc.aggregate(&mut out, b"u", b"t", 5, 7, &sum);
        end_frame(&mut out, start);
        let (recs, _) = decode_all(&out);
        assert_eq!(recs.len(), 1);
        let r = recs[0];
        assert_eq!(
            (r.user, r.ty, r.second, r.count, r.value),
            ("u", "t", 95, 7, Some(f64::INFINITY))
        );
        let back = r.exact.expect("exact parts").exact();
        assert_eq!(back, sum, "the exact sum comes back as it was");
        let mut rest = back;
        rest.add(-1e308);
        rest.add(-1e308);
        assert_eq!(rest.round(), 0.30000000000000004);
    }
}
