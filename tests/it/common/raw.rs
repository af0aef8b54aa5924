//! One raw RESP client, for tests that talk to the server below a client library:
//! [`Raw`] writes bytes or commands and reads whole replies as [`R`] values (RESP2 and
//! RESP3), and [`parse_all`] checks that a byte string is complete replies and nothing
//! else. Tests whose point is the exact bytes on the wire compare bytes instead
//! ([`send_recv`], [`read_until_closed`], [`expect_reply_then_close`]).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::*;

/// One reply, as the wire carries it.
#[derive(Debug, Clone, PartialEq)]
pub enum R {
    Simple(String),
    Err(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<R>),
    Map(Vec<(R, R)>),
    Double(String),
    Bool(bool),
}

impl R {
    /// A string, bulk, error, double or integer reply as text (anything else as its
    /// debug form, which no expected text matches).
    pub fn text(&self) -> String {
        match self {
            R::Simple(s) | R::Err(s) | R::Double(s) => s.clone(),
            R::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            R::Int(i) => i.to_string(),
            other => format!("{other:?}"),
        }
    }

    /// An integer reply; the test fails on any other.
    pub fn int(&self) -> i64 {
        match self {
            R::Int(i) => *i,
            other => panic!("expected an integer reply, got {other:?}"),
        }
    }
}

/// A client connection that reads whole replies. Writes go straight to the socket and
/// reads through a buffer, so a test can pipeline any bytes and then read the replies
/// one by one.
pub struct Raw {
    pub w: TcpStream,
    pub r: BufReader<TcpStream>,
}

impl Raw {
    /// Connects, with a 20 s read timeout: a reply that never comes fails the test.
    pub fn connect(addr: SocketAddr) -> Raw {
        let s = TcpStream::connect(addr).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).ok();
        s.set_nodelay(true).ok();
        Raw {
            r: BufReader::new(s.try_clone().expect("clone")),
            w: s,
        }
    }

    /// How long a read waits before the test fails (or `until_closed` gives up).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.w.set_read_timeout(Some(timeout)).ok();
    }

    /// Writes `bytes` as they are.
    pub fn send(&mut self, bytes: &[u8]) {
        self.w.write_all(bytes).expect("write");
    }

    /// Sends a command (multibulk) and reads its reply.
    pub fn cmd(&mut self, args: &[&str]) -> R {
        self.send(&resp_str(args));
        self.reply()
    }

    /// The next reply.
    pub fn reply(&mut self) -> R {
        read_reply(&mut self.r).expect("a reply")
    }

    /// Exactly `n` bytes (panics on close or time-out).
    pub fn exact(&mut self, n: usize) -> String {
        let mut buf = vec![0; n];
        self.r.read_exact(&mut buf).expect("reply bytes");
        String::from_utf8_lossy(&buf).into_owned()
    }

    /// Everything until the server closes; the flag says whether it did close.
    pub fn until_closed(&mut self) -> (Vec<u8>, bool) {
        let mut out = self.r.buffer().to_vec();
        let n = out.len();
        self.r.consume(n);
        let (rest, closed) = read_until_closed(self.r.get_mut());
        out.extend_from_slice(&rest);
        (out, closed)
    }

    /// The default INFO text.
    pub fn info(&mut self) -> String {
        self.cmd(&["INFO"]).text()
    }

    /// `EVT.MADD` with `events`: the reply to each event, or the error that refused
    /// them all.
    pub fn madd(&mut self, events: &[String]) -> Result<Vec<R>, String> {
        // Debug builds of the server take a while over 100,000 events.
        self.set_timeout(Duration::from_secs(120));
        let mut args = vec!["EVT.MADD"];
        args.extend(events.iter().map(String::as_str));
        match self.cmd(&args) {
            R::Array(replies) => Ok(replies),
            R::Err(e) => Err(e),
            other => panic!("EVT.MADD replied {other:?}"),
        }
    }
}

fn read_line(r: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = Vec::new();
    r.read_until(b'\n', &mut line)?;
    if !line.ends_with(b"\r\n") {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete line {:?}", String::from_utf8_lossy(&line)),
        ));
    }
    line.truncate(line.len() - 2);
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn bad(what: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

pub fn read_reply(r: &mut impl BufRead) -> std::io::Result<R> {
    let line = read_line(r)?;
    let Some(kind) = line.chars().next() else {
        return Err(bad("an empty reply line".into()));
    };
    let rest = &line[1..];
    let num = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| bad(format!("bad number {s:?}")))
    };
    let bulk = |r: &mut dyn BufRead, n: i64| -> std::io::Result<Vec<u8>> {
        let mut b = vec![0; n as usize + 2];
        r.read_exact(&mut b)?;
        if !b.ends_with(b"\r\n") {
            return Err(bad("bulk without CRLF".into()));
        }
        b.truncate(n as usize);
        Ok(b)
    };
    Ok(match kind {
        '+' => R::Simple(rest.into()),
        '-' => R::Err(rest.into()),
        ':' => R::Int(num(rest)?),
        '(' => R::Simple(rest.into()),
        ',' => R::Double(rest.into()),
        '#' => R::Bool(rest == "t"),
        '_' => R::Nil,
        '$' | '=' | '!' => match num(rest)? {
            -1 => R::Nil,
            n if n < 0 => return Err(bad(format!("bulk length {n}"))),
            n => {
                let b = bulk(r, n)?;
                if kind == '!' {
                    R::Err(String::from_utf8_lossy(&b).into_owned())
                } else if kind == '=' {
                    // Verbatim: "txt:" then the text.
                    R::Bulk(b.get(4..).unwrap_or_default().to_vec())
                } else {
                    R::Bulk(b)
                }
            }
        },
        '*' | '~' | '>' => match num(rest)? {
            -1 => R::Nil,
            n if n < 0 => return Err(bad(format!("array length {n}"))),
            n => R::Array((0..n).map(|_| read_reply(r)).collect::<Result<_, _>>()?),
        },
        '%' | '|' => {
            let n = num(rest)?;
            let mut pairs = Vec::new();
            for _ in 0..n {
                pairs.push((read_reply(r)?, read_reply(r)?));
            }
            if kind == '|' {
                // An attribute precedes the real reply.
                return read_reply(r);
            }
            R::Map(pairs)
        }
        other => return Err(bad(format!("unknown reply type {other:?}"))),
    })
}

/// Parses a whole byte string as a sequence of complete replies.
pub fn parse_all(bytes: &[u8]) -> std::io::Result<Vec<R>> {
    let mut r = BufReader::new(bytes);
    let mut out = Vec::new();
    while !r.fill_buf()?.is_empty() {
        out.push(read_reply(&mut r)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------
// Small helpers over raw connections.
// ---------------------------------------------------------------------------------

/// A fresh connection answers PING (within 10 s).
pub fn pings(addr: SocketAddr) -> bool {
    ping_within(addr, None, Duration::from_secs(10))
}

/// Whether another client's PING answers within `within` (logging in first when
/// `password` is given).
pub fn ping_within(addr: SocketAddr, password: Option<&str>, within: Duration) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    s.set_read_timeout(Some(within)).ok();
    if let Some(p) = password
        && send_recv(&mut s, &resp_str(&["AUTH", p]), 5) != b"+OK\r\n"
    {
        return false;
    }
    let t = Instant::now();
    send_recv(&mut s, b"PING\r\n", 7) == b"+PONG\r\n" && t.elapsed() <= within
}

/// Bytes as text for assertion messages (replies are ASCII apart from echoed data).
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Asserts that the connection sends exactly `want` and then closes.
#[track_caller]
pub fn expect_reply_then_close(s: &mut TcpStream, want: &[u8]) {
    let (got, closed) = read_until_closed(s);
    assert_eq!(text(&got), text(want), "reply before the close");
    assert!(
        closed,
        "the server should close the connection after {:?}",
        text(want)
    );
}

/// Polls INFO until `field` is `want`, and returns that INFO text.
pub fn wait_info_num(c: &mut Raw, field: &str, want: i64) -> String {
    let mut text = String::new();
    let ok = eventually(Duration::from_secs(10), || {
        text = c.info();
        num_field(&text, field) == want
    });
    assert!(ok, "INFO {field} never became {want}:\n{text}");
    text
}

/// Sends `events` in `EVT.MADD`s of 5,000; returns which were accepted, checking
/// that every refusal is `-OOM`.
pub fn madd_accepted(s: &mut Raw, events: &[String]) -> Vec<bool> {
    let mut accepted = Vec::with_capacity(events.len());
    for chunk in events.chunks(5_000) {
        let replies = s
            .madd(chunk)
            .unwrap_or_else(|e| panic!("EVT.MADD refused: {e}"));
        assert_eq!(replies.len(), chunk.len());
        for r in replies {
            match r {
                R::Simple(ok) if ok == "OK" => accepted.push(true),
                R::Err(e) => {
                    assert_eq!(e, OOM);
                    accepted.push(false);
                }
                other => panic!("EVT.MADD replied {other:?}"),
            }
        }
    }
    accepted
}
