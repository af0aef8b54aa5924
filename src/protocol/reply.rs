//! Replies: the [`Reply`] value and its encoding in RESP2 or RESP3.

use std::borrow::Cow;

use bytes::BytesMut;

use crate::error::ReplyError;
use redis_protocol::resp2::encode::extend_encode_borrowed as encode2;
use redis_protocol::resp2::types::{BorrowedFrame as Frame2, OwnedFrame as Owned2};
use redis_protocol::resp3::encode::complete::extend_encode_borrowed as encode3;
use redis_protocol::resp3::types::{
    BorrowedFrame as Frame3, FrameMap, OwnedFrame as Owned3, VerbatimStringFormat,
};

/// Protocol version a connection speaks, switched by `HELLO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resp {
    #[default]
    V2,
    V3,
}

/// A reply, independent of the protocol version it will be encoded in.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// `+OK`.
    Ok,
    /// A simple (status) string.
    Simple(Cow<'static, str>),
    /// An error.
    Error(ReplyError),
    Int(i64),
    Bulk(Vec<u8>),
    /// RESP2 `$-1`, RESP3 `_`.
    Null,
    /// RESP2 `*-1` (a failed `EXEC`), RESP3 `_`.
    NullArray,
    /// RESP3 double; in RESP2 a bulk string formatted as Redis formats doubles.
    Double(f64),
    Array(Vec<Reply>),
    /// RESP3 map; in RESP2 a flat array of keys and values.
    Map(Vec<(Reply, Reply)>),
    /// RESP3 set; in RESP2 an array.
    Set(Vec<Reply>),
    /// RESP3 verbatim text (as `INFO` replies); in RESP2 a bulk string.
    Verbatim(String),
}

impl Reply {
    /// A bulk string of text.
    pub fn bulk(text: impl Into<Vec<u8>>) -> Self {
        Reply::Bulk(text.into())
    }
}

/// Formats a double as Redis does for `INCRBYFLOAT` and RESP2 `ZSCORE`: the shortest text
/// that reads back as the same double, no exponent; `inf` / `-inf` beyond the range.
pub fn format_double(v: f64) -> Cow<'static, str> {
    // The same text the codec writes for a RESP3 double, so RESP2 and RESP3 agree.
    if v.is_nan() {
        Cow::Borrowed("nan")
    } else if v.is_infinite() {
        Cow::Borrowed(if v < 0.0 { "-inf" } else { "inf" })
    } else {
        Cow::Owned(v.to_string())
    }
}

/// Appends the encoding of `reply` to `out`.
///
/// Scalars (the hot path: `+OK`, integers, doubles, short bulks) are encoded from
/// borrowed frames without allocating; aggregates become the codec's owned frame tree.
pub fn encode(reply: &Reply, version: Resp, out: &mut BytesMut) {
    if let Reply::Ok = reply {
        // The reply to every accepted event: encoded by the codec once, then copied.
        out.extend_from_slice(ok_bytes(version));
        return;
    }
    if let (Reply::NullArray, Resp::V2) = (reply, version) {
        // The codec's RESP2 null is the bulk one (`$-1`).
        out.extend_from_slice(b"*-1\r\n");
        return;
    }
    // The replies of the queries (`EVT.USER`, `EVT.SUM` ...), written here: the codec
    // spent ~550 instructions on an integer (it sizes the text with a `log10`). A
    // property test holds these bytes to the codec's.
    match reply {
        Reply::Int(i) => {
            put_int(b':', *i, out);
            return;
        }
        Reply::Bulk(b) => {
            put_int(b'$', b.len() as i64, out);
            out.extend_from_slice(b);
            out.extend_from_slice(b"\r\n");
            return;
        }
        Reply::Double(d) if version == Resp::V2 => {
            // `EVT.SUM`'s reply: formatting through `to_string` and the codec was
            // ~1,400 instructions; most sums have few decimals.
            let mut buf = [0u8; SHORT_DECIMAL_LEN];
            if let Some(text) = short_decimal(*d, &mut buf) {
                put_int(b'$', text.len() as i64, out);
                out.extend_from_slice(text);
                out.extend_from_slice(b"\r\n");
                return;
            }
        }
        _ => {}
    }
    // The `extend_` encoders grow the buffer before writing and the owned encoders are
    // given a buffer of exactly `encode_len` bytes, so the codec has no reason to fail;
    // if it ever did, that is a bug to log, never a panic reachable from a client.
    let result = match (version, reply) {
        (_, Reply::Array(_) | Reply::Map(_) | Reply::Set(_)) => encode_owned(reply, version, out),
        (Resp::V2, _) => scalar2(reply, &mut |f| encode2(out, f, false).map(drop)),
        (Resp::V3, _) => scalar3(reply, &mut |f| encode3(out, f, false).map(drop)),
    };
    if let Err(e) = result {
        tracing::error!(error = %e, "reply encoding failed");
    }
}

type EncodeResult = Result<(), redis_protocol::error::RedisProtocolError>;

/// Longest `<tag><i64>\r\n`: a tag, a sign and 19 digits, and CRLF.
const MAX_INT_LINE: usize = 1 + 20 + 2;

/// Appends `<tag><n>\r\n` (`:` an integer reply, `$` a bulk string's length).
fn put_int(tag: u8, n: i64, out: &mut BytesMut) {
    let mut buf = [0u8; MAX_INT_LINE];
    let mut at = MAX_INT_LINE - 2;
    buf[at..].copy_from_slice(b"\r\n");
    let mut v = n.unsigned_abs();
    loop {
        at -= 1;
        buf[at] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if n < 0 {
        at -= 1;
        buf[at] = b'-';
    }
    at -= 1;
    buf[at] = tag;
    out.extend_from_slice(&buf[at..]);
}

/// Longest text of [`short_decimal`]: a sign, 10 integer digits, a point, 4 decimals.
const SHORT_DECIMAL_LEN: usize = 16;

/// Most decimals [`short_decimal`] writes.
const SHORT_DECIMALS: u32 = 4;

/// `v` as [`format_double`] writes it, when `v` is not zero, is below 2^31 in
/// magnitude and has a text of at most 4 decimals; `None` otherwise.
///
/// Why this is the shortest text that reads back as `v`: the decimals are tried from
/// none up, and the first `k` whose `m / 10^k` (`m` the nearest integer to
/// `v · 10^k`) reads back as `v` (checked: the division of two exact doubles is
/// correctly rounded, so it is the double that text reads as) wins. With fewer
/// decimals nothing reads back; with `k`, only one text can, because below 2^31 a
/// double's spacing (at most 2^-21) is far finer than 10^-4.
fn short_decimal(v: f64, buf: &mut [u8; SHORT_DECIMAL_LEN]) -> Option<&[u8]> {
    const LIMIT: f64 = 2147483648.0;
    if v == 0.0 || !v.is_finite() || v.abs() >= LIMIT {
        return None;
    }
    let a = v.abs();
    let (m, k) = (0..=SHORT_DECIMALS).find_map(|k| {
        let scale = 10f64.powi(k as i32);
        let m = (a * scale).round();
        (m / scale == a).then_some((m as u64, k))
    })?;
    let scale = 10u64.pow(k);
    let (int, frac) = (m / scale, m % scale);
    let mut at = SHORT_DECIMAL_LEN;
    let mut put = |d: u8, at: &mut usize| {
        *at -= 1;
        buf[*at] = d;
    };
    let mut f = frac;
    for _ in 0..k {
        put(b'0' + (f % 10) as u8, &mut at);
        f /= 10;
    }
    if k > 0 {
        put(b'.', &mut at);
    }
    let mut i = int;
    loop {
        put(b'0' + (i % 10) as u8, &mut at);
        i /= 10;
        if i == 0 {
            break;
        }
    }
    if v < 0.0 {
        put(b'-', &mut at);
    }
    buf.get(at..)
}

/// Appends `n` replies `+OK`: a pipeline of accepted events is answered by copying
/// runs of them, not reply by reply.
pub fn encode_oks(mut n: usize, version: Resp, out: &mut BytesMut) {
    const RUN: usize = 64;
    static RUNS: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let [v2, v3] = RUNS.get_or_init(|| [Resp::V2, Resp::V3].map(|v| ok_bytes(v).repeat(RUN)));
    let (run, one) = match version {
        Resp::V2 => (v2, ok_bytes(Resp::V2)),
        Resp::V3 => (v3, ok_bytes(Resp::V3)),
    };
    out.reserve(n * one.len());
    while n > 0 {
        let k = n.min(RUN);
        out.extend_from_slice(run.get(..k * one.len()).unwrap_or_default());
        n -= k;
    }
}

/// `+OK` as the codec encodes it, per protocol version.
fn ok_bytes(version: Resp) -> &'static [u8] {
    static OK: std::sync::OnceLock<[Vec<u8>; 2]> = std::sync::OnceLock::new();
    let [v2, v3] = OK.get_or_init(|| {
        [Resp::V2, Resp::V3].map(|v| {
            let mut b = BytesMut::new();
            let result = match v {
                Resp::V2 => scalar2(&Reply::Ok, &mut |f| encode2(&mut b, f, false).map(drop)),
                Resp::V3 => scalar3(&Reply::Ok, &mut |f| encode3(&mut b, f, false).map(drop)),
            };
            if result.is_err() {
                // Cannot happen (see `encode`); the literal keeps replies flowing.
                b = BytesMut::from(&b"+OK\r\n"[..]);
            }
            b.to_vec()
        })
    });
    match version {
        Resp::V2 => v2,
        Resp::V3 => v3,
    }
}

/// Hands the borrowed RESP2 frame of a scalar reply to `f`.
fn scalar2(reply: &Reply, f: &mut dyn FnMut(&Frame2) -> EncodeResult) -> EncodeResult {
    match reply {
        Reply::Ok => f(&Frame2::SimpleString(b"OK")),
        Reply::Simple(s) => f(&Frame2::SimpleString(s.as_bytes())),
        Reply::Error(e) => f(&Frame2::Error(&e.text())),
        Reply::Int(i) => f(&Frame2::Integer(*i)),
        Reply::Bulk(b) => f(&Frame2::BulkString(b)),
        Reply::Verbatim(s) => f(&Frame2::BulkString(s.as_bytes())),
        Reply::Double(d) => f(&Frame2::BulkString(format_double(*d).as_bytes())),
        Reply::Null | Reply::NullArray | Reply::Array(_) | Reply::Map(_) | Reply::Set(_) => {
            f(&Frame2::Null)
        }
    }
}

/// Hands the borrowed RESP3 frame of a scalar reply to `f`.
fn scalar3(reply: &Reply, f: &mut dyn FnMut(&Frame3) -> EncodeResult) -> EncodeResult {
    let attributes = None;
    match reply {
        Reply::Ok => f(&Frame3::SimpleString {
            data: b"OK",
            attributes,
        }),
        Reply::Simple(s) => f(&Frame3::SimpleString {
            data: s.as_bytes(),
            attributes,
        }),
        Reply::Error(e) => f(&Frame3::SimpleError {
            data: &e.text(),
            attributes,
        }),
        Reply::Int(i) => f(&Frame3::Number {
            data: *i,
            attributes,
        }),
        Reply::Bulk(b) => f(&Frame3::BlobString {
            data: b,
            attributes,
        }),
        Reply::Verbatim(s) => f(&Frame3::VerbatimString {
            data: s.as_bytes(),
            format: VerbatimStringFormat::Text,
            attributes,
        }),
        Reply::Double(d) => f(&Frame3::Double {
            data: *d,
            attributes,
        }),
        Reply::Null | Reply::NullArray | Reply::Array(_) | Reply::Map(_) | Reply::Set(_) => {
            f(&Frame3::Null)
        }
    }
}

fn encode_owned(reply: &Reply, version: Resp, out: &mut BytesMut) -> EncodeResult {
    use redis_protocol::resp2::types::Resp2Frame;
    use redis_protocol::resp3::types::Resp3Frame;
    let start = out.len();
    match version {
        Resp::V2 => {
            let frame = owned2(reply);
            out.resize(start + frame.encode_len(false), 0);
            redis_protocol::resp2::encode::encode(&mut out[start..], &frame, false)?;
        }
        Resp::V3 => {
            let frame = owned3(reply);
            out.resize(start + frame.encode_len(false), 0);
            redis_protocol::resp3::encode::complete::encode(&mut out[start..], &frame, false)?;
        }
    }
    Ok(())
}

fn owned2(reply: &Reply) -> Owned2 {
    match reply {
        Reply::Ok => Owned2::SimpleString(b"OK".to_vec()),
        Reply::Simple(s) => Owned2::SimpleString(s.as_bytes().to_vec()),
        Reply::Error(e) => Owned2::Error(e.text()),
        Reply::Int(i) => Owned2::Integer(*i),
        Reply::Bulk(b) => Owned2::BulkString(b.clone()),
        Reply::Verbatim(s) => Owned2::BulkString(s.as_bytes().to_vec()),
        Reply::Double(d) => Owned2::BulkString(format_double(*d).as_bytes().to_vec()),
        Reply::Null | Reply::NullArray => Owned2::Null,
        Reply::Array(items) | Reply::Set(items) => {
            Owned2::Array(items.iter().map(owned2).collect())
        }
        Reply::Map(pairs) => Owned2::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [owned2(k), owned2(v)])
                .collect(),
        ),
    }
}

fn owned3(reply: &Reply) -> Owned3 {
    let attributes = None;
    match reply {
        Reply::Ok => Owned3::SimpleString {
            data: b"OK".to_vec(),
            attributes,
        },
        Reply::Simple(s) => Owned3::SimpleString {
            data: s.as_bytes().to_vec(),
            attributes,
        },
        Reply::Error(e) => Owned3::SimpleError {
            data: e.to_string(),
            attributes,
        },
        Reply::Int(i) => Owned3::Number {
            data: *i,
            attributes,
        },
        Reply::Bulk(b) => Owned3::BlobString {
            data: b.clone(),
            attributes,
        },
        Reply::Verbatim(s) => Owned3::VerbatimString {
            data: s.as_bytes().to_vec(),
            format: VerbatimStringFormat::Text,
            attributes,
        },
        Reply::Double(d) => Owned3::Double {
            data: *d,
            attributes,
        },
        Reply::Null | Reply::NullArray => Owned3::Null,
        Reply::Array(items) => Owned3::Array {
            data: items.iter().map(owned3).collect(),
            attributes,
        },
        Reply::Set(items) => Owned3::Set {
            data: items.iter().map(owned3).collect(),
            attributes,
        },
        Reply::Map(pairs) => {
            let mut data = FrameMap::default();
            for (k, v) in pairs {
                data.insert(owned3(k), owned3(v));
            }
            Owned3::Map { data, attributes }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_is_encoded_by_the_codec() {
        let mut out = BytesMut::new();
        encode(&Reply::Ok, Resp::V2, &mut out);
        encode(&Reply::Ok, Resp::V3, &mut out);
        assert_eq!(&out[..], b"+OK\r\n+OK\r\n");
    }

    /// The codec's encoding, for comparing ours with.
    fn by_codec(reply: &Reply, version: Resp) -> Vec<u8> {
        let mut out = BytesMut::new();
        let result = match version {
            Resp::V2 => scalar2(reply, &mut |f| encode2(&mut out, f, false).map(drop)),
            Resp::V3 => scalar3(reply, &mut |f| encode3(&mut out, f, false).map(drop)),
        };
        assert!(result.is_ok());
        out.to_vec()
    }

    proptest::proptest! {
        #[test]
        fn ints_and_bulks_are_encoded_as_the_codec_does(
            i in proptest::prop_oneof![
                proptest::num::i64::ANY,
                -1000i64..1000,
                proptest::strategy::Just(i64::MIN),
                proptest::strategy::Just(i64::MAX),
            ],
            b in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            v3 in proptest::bool::ANY,
        ) {
            let version = if v3 { Resp::V3 } else { Resp::V2 };
            for reply in [Reply::Int(i), Reply::Bulk(b.clone())] {
                let mut ours = BytesMut::new();
                encode(&reply, version, &mut ours);
                proptest::prop_assert_eq!(&ours[..], &by_codec(&reply, version)[..]);
            }
        }
    }

    proptest::proptest! {
        /// The short text of a double, when there is one, is `format_double`'s.
        #[test]
        fn short_decimals_are_the_shortest_text(
            m in proptest::num::i64::ANY,
            k in 0u32..8,
            bits in proptest::num::u64::ANY,
        ) {
            let decimal = (m % 100_000_000_000_000) as f64 / 10f64.powi(k as i32);
            for v in [decimal, f64::from_bits(bits), (m % 1000) as f64 * 0.1 + 10.5] {
                let mut buf = [0u8; SHORT_DECIMAL_LEN];
                if let Some(text) = short_decimal(v, &mut buf) {
                    let want = format_double(v);
                    proptest::prop_assert_eq!(text, want.as_bytes(), "{}", v);
                }
            }
        }
    }

    #[test]
    fn short_decimals_of_sums() {
        let mut buf = [0u8; SHORT_DECIMAL_LEN];
        for (v, text) in [
            (10.5, "10.5"),
            (-0.05, "-0.05"),
            (3.0, "3"),
            (1234.5678, "1234.5678"),
        ] {
            assert_eq!(short_decimal(v, &mut buf), Some(text.as_bytes()));
        }
        for v in [0.0, -0.0, 0.1 + 0.2, 1e-5, 3e9, f64::NAN] {
            assert_eq!(short_decimal(v, &mut buf), None, "{v}");
        }
        let mut out = BytesMut::new();
        encode(&Reply::Double(10.5), Resp::V2, &mut out);
        assert_eq!(&out[..], b"$4\r\n10.5\r\n");
    }

    #[test]
    fn runs_of_ok_are_ok_replies() {
        for version in [Resp::V2, Resp::V3] {
            for n in [0, 1, 63, 64, 65, 200] {
                let mut out = BytesMut::new();
                encode_oks(n, version, &mut out);
                assert_eq!(&out[..], b"+OK\r\n".repeat(n).as_slice());
            }
        }
    }

    #[test]
    fn doubles_format_like_redis() {
        assert_eq!(format_double(10.5), "10.5");
        assert_eq!(format_double(3.0), "3");
        assert_eq!(format_double(0.0), "0");
        assert_eq!(format_double(f64::INFINITY), "inf");
        assert_eq!(format_double(0.1 + 0.2), "0.30000000000000004");
    }
}
