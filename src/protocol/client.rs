//! The client side of the wire, for the cluster's fan-out: a request encoded as a
//! multibulk array, and a RESP3 reply decoded back into a [`Reply`] — the same value
//! this node would have built for its own share, so shares merge without caring
//! which node they came from.

use redis_protocol::resp3::decode::complete::decode;
use redis_protocol::resp3::types::{OwnedFrame, Resp3Frame};

use super::Reply;
use crate::error::{ErrorKind, ReplyError};

/// `args` as a RESP multibulk request.
pub fn encode_request<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let len: usize = args.iter().map(|a| a.as_ref().len() + 16).sum();
    let mut out = Vec::with_capacity(len + 16);
    out.extend_from_slice(format!("*{}\r\n", args.len()).as_bytes());
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The first complete RESP3 reply in `buf` and its length; `None` while it has not
/// fully arrived.
pub fn decode_reply(buf: &[u8]) -> Result<Option<(Reply, usize)>, String> {
    match decode(buf) {
        Ok(Some((frame, used))) => Ok(Some((reply_of(frame)?, used))),
        Ok(None) => Ok(None),
        Err(e) => Err(format!("not a RESP3 reply: {e}")),
    }
}

/// An error reply's text back into its kind and message (`MOVED 12 h:1` is a
/// [`ErrorKind::Moved`]); an unknown code stays in the message of a plain `ERR`.
fn error_of(text: &str) -> ReplyError {
    let (code, msg) = text.split_once(' ').unwrap_or((text, ""));
    match ErrorKind::ALL.iter().find(|k| k.code() == code) {
        Some(&kind) => ReplyError::new(kind, msg.to_string()),
        None => ReplyError::err(text.to_string()),
    }
}

fn reply_of(frame: OwnedFrame) -> Result<Reply, String> {
    let text = |data: Vec<u8>| String::from_utf8_lossy(&data).into_owned();
    Ok(match frame {
        OwnedFrame::BlobString { data, .. } => Reply::Bulk(data),
        OwnedFrame::SimpleString { data, .. } if data == b"OK" => Reply::Ok,
        OwnedFrame::SimpleString { data, .. } => Reply::Simple(text(data).into()),
        OwnedFrame::SimpleError { data, .. } => Reply::Error(error_of(&data)),
        OwnedFrame::BlobError { data, .. } => Reply::Error(error_of(&text(data))),
        OwnedFrame::Number { data, .. } => Reply::Int(data),
        OwnedFrame::Double { data, .. } => Reply::Double(data),
        OwnedFrame::Null => Reply::Null,
        OwnedFrame::VerbatimString { data, .. } => Reply::Verbatim(text(data)),
        OwnedFrame::Array { data, .. } => {
            Reply::Array(data.into_iter().map(reply_of).collect::<Result<_, _>>()?)
        }
        OwnedFrame::Set { data, .. } => {
            Reply::Set(data.into_iter().map(reply_of).collect::<Result<_, _>>()?)
        }
        OwnedFrame::Map { data, .. } => Reply::Map(
            data.into_iter()
                .map(|(k, v)| Ok((reply_of(k)?, reply_of(v)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => return Err(format!("unexpected {:?} reply", other.kind())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Resp, encode};

    #[test]
    fn requests_are_multibulk() {
        assert_eq!(
            encode_request(&["EVT.TOTAL", "LOCAL"]),
            b"*2\r\n$9\r\nEVT.TOTAL\r\n$5\r\nLOCAL\r\n"
        );
    }

    #[test]
    fn replies_round_trip_through_resp3() {
        let replies = [
            Reply::Ok,
            Reply::Int(-42),
            Reply::Double(0.1),
            Reply::Bulk(b"x\r\ny".to_vec()),
            Reply::Null,
            Reply::Error(ReplyError::new(ErrorKind::Moved, "12 127.0.0.1:7002")),
            Reply::Error(ReplyError::err("syntax error")),
            Reply::Array(vec![
                Reply::Array(vec![Reply::bulk("u1"), Reply::Int(3)]),
                Reply::Array(vec![]),
            ]),
            Reply::Map(vec![(Reply::bulk("k"), Reply::Int(1))]),
            Reply::Verbatim("a:1\r\n".into()),
        ];
        for r in replies {
            let mut out = bytes::BytesMut::new();
            encode(&r, Resp::V3, &mut out);
            let (back, used) = decode_reply(&out).unwrap().unwrap();
            assert_eq!((back, used), (r, out.len()));
            assert_eq!(decode_reply(&out[..out.len() - 1]).unwrap(), None);
        }
        assert!(decode_reply(b"?what\r\n").is_err());
        // A set of maps cannot be hashed: refused, not a panic.
        assert!(decode_reply(b"~1\r\n%0\r\n").is_err());
    }
}
