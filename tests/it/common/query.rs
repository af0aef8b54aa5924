//! Helpers over a `redis` crate connection: a command from its words, its reply or its
//! error text, the window's four queries and its clock, INFO figures, and polling with
//! a deadline.

use std::time::{Duration, Instant};

use redis::{Connection, Value};

use super::*;

/// A server whose time moves only when the test moves it (`EVT.CLOCK`).
pub fn manual() -> TestServer {
    TestServer::start(&["--clock", "manual"])
}

/// The text of the `-OOM` refusal under `--maxmemory`, as Redis words it.
pub const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

/// A `redis` crate connection to `url` (to give a password or the protocol).
pub fn redis_at(url: String) -> redis::Connection {
    redis::Client::open(url.clone())
        .and_then(|c| c.get_connection())
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// A command from its words: `cmd(&["EVT.USER", "u"])`.
pub fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    for a in &args[1..] {
        c.arg(*a);
    }
    c
}

/// Runs `args`: the reply, or the server error as `"<CODE> <detail>"`.
pub fn q(c: &mut redis::Connection, args: &[&str]) -> Result<Value, String> {
    cmd(args).query(c).map_err(|e| err_text(&e))
}

/// Runs `args`, which must fail with a server error, and returns that error's text.
pub fn q_err(c: &mut redis::Connection, args: &[&str]) -> String {
    query_err(c, &cmd(args))
}

/// The integer reply to `args`; the test fails on an error reply.
pub fn q_i64(c: &mut redis::Connection, args: &[&str]) -> i64 {
    cmd(args)
        .query(c)
        .unwrap_or_else(|e| panic!("{args:?}: {}", err_text(&e)))
}

/// The double reply to `args`; the test fails on an error reply.
pub fn q_f64(c: &mut redis::Connection, args: &[&str]) -> f64 {
    cmd(args)
        .query(c)
        .unwrap_or_else(|e| panic!("{args:?}: {}", err_text(&e)))
}

// ---------------------------------------------------------------------------------
// The window's queries and clock.
// ---------------------------------------------------------------------------------

/// `cmd` with `WINDOW <window>` appended when a window is given.
pub fn with_window(mut c: redis::Cmd, window: Option<u32>) -> redis::Cmd {
    if let Some(w) = window {
        c.arg("WINDOW").arg(w);
    }
    c
}

/// `EVT.TOTAL [WINDOW w]`.
pub fn total(con: &mut Connection, window: Option<u32>) -> i64 {
    with_window(redis::cmd("EVT.TOTAL"), window)
        .query(con)
        .expect("EVT.TOTAL")
}

/// `EVT.USER user [WINDOW w]`.
pub fn user(con: &mut Connection, user: &str, window: Option<u32>) -> i64 {
    let mut c = redis::cmd("EVT.USER");
    c.arg(user);
    with_window(c, window).query(con).expect("EVT.USER")
}

/// `EVT.TYPE type [WINDOW w]`.
pub fn typ(con: &mut Connection, ty: &str, window: Option<u32>) -> i64 {
    let mut c = redis::cmd("EVT.TYPE");
    c.arg(ty);
    with_window(c, window).query(con).expect("EVT.TYPE")
}

/// `EVT.SUM user type [WINDOW w]`, as the RESP2 bulk string.
pub fn sum(con: &mut Connection, u: &str, t: &str, window: Option<u32>) -> String {
    let mut c = redis::cmd("EVT.SUM");
    c.arg(u).arg(t);
    with_window(c, window).query(con).expect("EVT.SUM")
}

/// `EVT.CLOCK ADVANCE by`: the new `now`.
pub fn advance(con: &mut Connection, by: i64) -> i64 {
    redis::cmd("EVT.CLOCK")
        .arg("ADVANCE")
        .arg(by)
        .query(con)
        .expect("EVT.CLOCK ADVANCE")
}

/// `EVT.CLOCK SET to`: the new `now`, or the error text.
pub fn clock_set(con: &mut Connection, to: i64) -> Result<i64, String> {
    redis::cmd("EVT.CLOCK")
        .arg("SET")
        .arg(to)
        .query(con)
        .map_err(|e| err_text(&e))
}

/// `DBSIZE`.
pub fn dbsize(con: &mut Connection) -> i64 {
    redis::cmd("DBSIZE").query(con).expect("DBSIZE")
}

// ---------------------------------------------------------------------------------
// INFO figures and polling.
// ---------------------------------------------------------------------------------

/// A numeric field of an INFO text; the test fails when it is missing.
pub fn num_field(info: &str, field: &str) -> i64 {
    info_field(info, field)
        .unwrap_or_else(|| panic!("INFO has no {field}:\n{info}"))
        .parse()
        .unwrap_or_else(|_| panic!("INFO {field} is not a number"))
}

/// `errorstat_<kind>:count=N` (0 when absent).
pub fn errorstat(info: &str, kind: &str) -> i64 {
    info_field(info, &format!("errorstat_{kind}"))
        .and_then(|v| v.strip_prefix("count=").and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// Polls `cond` every 20 ms until it holds or `timeout` passes.
pub fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
