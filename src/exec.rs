//! Runs typed commands against the shared state and answers with [`Reply`] values.
//!
//! Events go through [`ingest`], which admits a whole run of pipelined `EVT.ADD`s (and
//! the events of an `EVT.MADD`) at once: the clock is read once, each event is parsed
//! in place, and the store takes each shard's lock once for the run.

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::cmd::{ClientAttr, ClockOp, Command, Hello, docs};
use crate::config::{ClockMode, Settings, parse_memory};
use crate::event::{self, EventError};
use crate::info;
use crate::protocol::{Reply, Resp};
use crate::state::{ClientInfo, REDIS_COMPAT_VERSION, Shared};
use crate::store::{AddError, Ingest};

/// A connection's own state: protocol version, name, login.
#[derive(Debug)]
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub resp: Resp,
    /// Whether the client may run commands: true from the start when no password is
    /// set, else after a successful AUTH or HELLO ... AUTH.
    pub authenticated: bool,
}

/// Whether `given` is the password, compared in constant time so that the reply's
/// timing says nothing about how much of it matched.
pub fn password_matches(given: &[u8], password: &[u8]) -> bool {
    let mut diff = given.len() ^ password.len();
    for i in 0..given.len().max(password.len()) {
        let a = given.get(i).copied().unwrap_or(0);
        let b = password.get(i).copied().unwrap_or(0);
        diff |= usize::from(a ^ b);
    }
    std::hint::black_box(diff) == 0
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// Checks AUTH credentials: `user` may be absent or `default`.
fn check_auth(shared: &Shared, user: Option<&[u8]>, password: &[u8]) -> Result<(), Reply> {
    let user_ok = user.is_none_or(|u| u == b"default");
    match shared.settings.password() {
        None if user.is_none() => Err(Reply::error(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        )),
        // No password: the default user needs none, so any password is accepted.
        None if user_ok => Ok(()),
        None => Err(Reply::error(WRONGPASS)),
        Some(p) => {
            if password_matches(password, p.as_bytes()) && user_ok {
                Ok(())
            } else {
                Err(Reply::error(WRONGPASS))
            }
        }
    }
}

impl ClientState {
    /// State of a new connection.
    pub fn new(info: Arc<ClientInfo>, authenticated: bool) -> Self {
        ClientState {
            info,
            resp: Resp::V2,
            authenticated,
        }
    }

    fn set_resp(&mut self, resp: Resp) {
        self.resp = resp;
        let v = if resp == Resp::V3 { 3 } else { 2 };
        self.info.resp.store(v, Ordering::Relaxed);
    }
}

/// What the connection does after replying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Continue,
    /// Close once the replies so far are written (QUIT).
    Close,
    /// Stop the server (SHUTDOWN): no reply, the connection closes.
    Shutdown,
}

/// Why an event was refused, and how INFO counts it.
#[derive(Debug, Clone, PartialEq)]
pub enum Rejection {
    Invalid(EventError),
    Late {
        timestamp: u64,
        now: i64,
        window: u32,
    },
    Future {
        timestamp: u64,
        now: i64,
        skew: u64,
    },
    NoMemory,
}

impl Rejection {
    /// The error reply.
    pub fn text(&self) -> String {
        match self {
            Rejection::Invalid(e) => format!("ERR invalid event: {e}"),
            Rejection::Late {
                timestamp,
                now,
                window,
            } => format!(
                "ERR event is older than the window: timestamp {timestamp} <= now {now} - window {window}"
            ),
            Rejection::Future {
                timestamp,
                now,
                skew,
            } => format!(
                "ERR event is too far in the future: timestamp {timestamp} > now {now} + max-future-skew {skew}"
            ),
            Rejection::NoMemory => {
                "OOM command not allowed when used memory > 'maxmemory'.".to_string()
            }
        }
    }
}

/// Admits a run of events (JSON texts), appending one reply per event to `replies`.
pub fn ingest(shared: &Shared, jsons: &[&[u8]], peer: &ClientInfo, replies: &mut Vec<Reply>) {
    let store = &shared.store;
    let window = store.window();
    let max_id = Settings::get(&shared.settings.max_id_len);
    let skew = shared.settings.max_future_skew.load(Ordering::Relaxed);
    let event_clock = shared.clock.mode() == ClockMode::Event;
    // One reading of the clock serves the whole run (the event clock moves per event).
    let batch_now = shared.clock.now();

    let mut parsed = Vec::with_capacity(jsons.len());
    let mut outcome: Vec<Result<(), Rejection>> = Vec::with_capacity(jsons.len());
    for json in jsons {
        let admitted = event::parse_event(json, max_id)
            .map_err(Rejection::Invalid)
            .and_then(|ev| {
                let ts = i64::from(ev.timestamp);
                let now = if event_clock {
                    shared.clock.observe(ts)
                } else {
                    batch_now
                };
                if ts <= now - i64::from(window) {
                    Err(Rejection::Late {
                        timestamp: ev.timestamp.into(),
                        now,
                        window,
                    })
                } else if ts > now.saturating_add(skew as i64) {
                    Err(Rejection::Future {
                        timestamp: ev.timestamp.into(),
                        now,
                        skew,
                    })
                } else {
                    Ok((ev, now))
                }
            });
        match admitted {
            Ok(ev) => {
                parsed.push(ev);
                outcome.push(Ok(()));
            }
            Err(r) => outcome.push(Err(r)),
        }
    }

    let ingests: Vec<Ingest<'_>> = parsed
        .iter()
        .map(|(ev, now)| Ingest {
            user: &ev.user_id,
            event_type: &ev.event_type,
            second: ev.timestamp.min(u32::try_from(*now).unwrap_or(u32::MAX)),
            value: ev.value,
            now: *now,
            count: 1,
        })
        .collect();
    let mut results = vec![Ok(()); ingests.len()];
    store.add_batch(&ingests, memory_available(shared), &mut results);

    let mut stored = results.iter();
    let (mut accepted, mut rejected, mut late, mut future) = (0u64, 0u64, 0u64, 0u64);
    for (o, json) in outcome.into_iter().zip(jsons) {
        let o = match o {
            Ok(()) => match stored.next() {
                Some(Ok(())) => Ok(()),
                Some(Err(AddError::NoMemory)) => Err(Rejection::NoMemory),
                // The store's clock had moved past the event's second (another
                // connection read a later `now` first).
                Some(Err(AddError::Late)) | None => Err(Rejection::Late {
                    timestamp: 0,
                    now: shared.clock.now(),
                    window,
                }),
            },
            Err(r) => Err(r),
        };
        match o {
            Ok(()) => {
                accepted += 1;
                replies.push(Reply::Ok);
            }
            Err(r) => {
                rejected += 1;
                match r {
                    Rejection::Late { .. } => late += 1,
                    Rejection::Future { .. } => future += 1,
                    Rejection::Invalid(_) | Rejection::NoMemory => {}
                }
                let text = r.text();
                if let Some(suppressed) = shared.bad_input_log.allow(shared.uptime_ms() / 1000) {
                    tracing::warn!(
                        peer = %peer.addr,
                        client_id = peer.id,
                        error = %text,
                        bytes = json.len(),
                        suppressed,
                        "event rejected"
                    );
                }
                replies.push(Reply::error(text));
            }
        }
    }
    let s = &shared.stats;
    if accepted > 0 {
        s.events_accepted.add(accepted);
    }
    if rejected > 0 {
        s.events_rejected.fetch_add(rejected, Ordering::Relaxed);
        s.events_late.fetch_add(late, Ordering::Relaxed);
        s.events_future.fetch_add(future, Ordering::Relaxed);
    }
}

/// Whether events may create new records: below `--maxmemory`, or no limit set.
fn memory_available(shared: &Shared) -> bool {
    let limit = Settings::get(&shared.settings.maxmemory) as u64;
    limit == 0 || used_memory() <= limit
}

/// Bytes the process holds: from the counting allocator when installed (the server
/// binary installs it), else the resident set size.
pub fn used_memory() -> u64 {
    crate::alloc::allocated_bytes().unwrap_or_else(crate::info::rss_bytes)
}

fn id_arg(arg: &[u8]) -> Option<&str> {
    // Ids come from JSON strings, which are UTF-8: any other bytes name nobody.
    std::str::from_utf8(arg).ok()
}

fn span(shared: &Shared, span: Option<u32>) -> u32 {
    span.unwrap_or(shared.store.window())
}

/// Runs one command (anything but `EVT.ADD` runs, which go through [`ingest`]).
pub fn execute(
    shared: &Shared,
    client: &mut ClientState,
    cmd: Command<'_>,
    replies: &mut Vec<Reply>,
) -> After {
    let store = &shared.store;
    let reply = match cmd {
        Command::EvtAdd { json } => {
            ingest(shared, &[json], &client.info, replies);
            return After::Continue;
        }
        Command::EvtMadd { events } => {
            let mut each = Vec::with_capacity(events.len());
            ingest(shared, &events, &client.info, &mut each);
            Reply::Array(each)
        }
        Command::EvtTotal { span: s } => {
            Reply::Int(store.total(span(shared, s), shared.clock.now()) as i64)
        }
        Command::EvtUser { user, span: s } => Reply::Int(id_arg(user).map_or(0, |u| {
            store.user_count(u, span(shared, s), shared.clock.now()) as i64
        })),
        Command::EvtType {
            event_type,
            span: s,
        } => Reply::Int(id_arg(event_type).map_or(0, |t| {
            store.type_count(t, span(shared, s), shared.clock.now()) as i64
        })),
        Command::EvtSum {
            user,
            event_type,
            span: s,
        } => Reply::Double(match (id_arg(user), id_arg(event_type)) {
            (Some(u), Some(t)) => store.sum(u, t, span(shared, s), shared.clock.now()),
            _ => 0.0,
        }),
        Command::EvtClock(op) => {
            let moved = match op {
                ClockOp::Get => Ok(shared.clock.now()),
                ClockOp::Set(to) => shared.clock.set(to),
                ClockOp::Advance(by) => shared.clock.advance(by),
            };
            if matches!(op, ClockOp::Set(_) | ClockOp::Advance(_)) {
                shared.expiry_wake.notify_one();
            }
            match moved {
                Ok(now) => Reply::Int(now),
                Err(e) => Reply::error(format!("ERR {e}")),
            }
        }
        Command::Ping { message } => match (message, client.resp) {
            (Some(m), _) => Reply::bulk(m),
            (None, _) => Reply::Simple(Cow::Borrowed("PONG")),
        },
        Command::Echo { message } => Reply::bulk(message),
        Command::Hello(hello) => return run_hello(shared, client, hello, replies),
        Command::Auth { user, password } => match check_auth(shared, user, password) {
            Ok(()) => {
                client.authenticated = true;
                Reply::Ok
            }
            Err(e) => {
                log_auth_failure(shared, client);
                e
            }
        },
        Command::Select { db } => {
            if db == 0 {
                Reply::Ok
            } else {
                Reply::error("ERR DB index is out of range")
            }
        }
        Command::Quit => {
            replies.push(Reply::Ok);
            return After::Close;
        }
        Command::Reset => {
            client.set_resp(Resp::V2);
            client.info.update(|n| n.name.clear());
            client.authenticated = !shared.settings.has_password();
            Reply::Simple(Cow::Borrowed("RESET"))
        }
        Command::ClientSetName { name } => {
            let name = String::from_utf8_lossy(name).into_owned();
            client.info.update(|n| n.name = name);
            Reply::Ok
        }
        Command::ClientGetName => {
            let name = client.info.names().name;
            if name.is_empty() {
                Reply::Null
            } else {
                Reply::bulk(name)
            }
        }
        Command::ClientId => Reply::Int(client.info.id as i64),
        Command::ClientSetInfo { attr, value } => {
            let value = String::from_utf8_lossy(value).into_owned();
            client.info.update(|n| match attr {
                ClientAttr::LibName => n.lib_name = value,
                ClientAttr::LibVer => n.lib_ver = value,
            });
            Reply::Ok
        }
        Command::ClientInfo => Reply::Verbatim(info::client_line(shared, &client.info)),
        Command::ClientList => {
            let mut text = String::new();
            for c in shared.clients.all() {
                text.push_str(&info::client_line(shared, &c));
            }
            Reply::Verbatim(text)
        }
        Command::CommandAll => docs::command_info(&[]),
        Command::CommandCount => docs::command_count(),
        Command::CommandDocs { names } => docs::command_docs(&names),
        Command::CommandInfo { names } => docs::command_info(&names),
        Command::CommandList => docs::command_list(),
        Command::ConfigGet { patterns } => config_get(shared, &patterns),
        Command::ConfigSet { pairs } => config_set(shared, &pairs),
        Command::ConfigResetStat => {
            shared.stats.reset();
            Reply::Ok
        }
        Command::Info { sections } => Reply::Verbatim(info::render(shared, &sections)),
        Command::Time => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Reply::Array(vec![
                Reply::bulk(now.as_secs().to_string()),
                Reply::bulk(now.subsec_micros().to_string()),
            ])
        }
        Command::DbSize => {
            let s = store.stats(shared.clock.now());
            Reply::Int((s.active_users + s.active_event_types + s.active_user_event_types) as i64)
        }
        Command::Flush => {
            store.clear();
            Reply::Ok
        }
        Command::Save => match crate::snapshot::save_configured(shared) {
            Ok(()) => Reply::Ok,
            Err(e) => Reply::error(format!("ERR {e}")),
        },
        Command::Shutdown { save } => {
            if save == Some(false) {
                shared.skip_snapshot.store(true, Ordering::Relaxed);
            }
            return After::Shutdown;
        }
        Command::Help { command } => docs::help(command),
    };
    replies.push(reply);
    After::Continue
}

fn run_hello(
    shared: &Shared,
    client: &mut ClientState,
    hello: Hello<'_>,
    replies: &mut Vec<Reply>,
) -> After {
    let resp = match hello.protover {
        None => client.resp,
        Some(2) => Resp::V2,
        Some(3) => Resp::V3,
        Some(_) => {
            replies.push(Reply::error("NOPROTO unsupported protocol version"));
            return After::Continue;
        }
    };
    if let Some((user, password)) = hello.auth {
        if let Err(e) = check_auth(shared, Some(user), password) {
            log_auth_failure(shared, client);
            replies.push(e);
            return After::Continue;
        }
        client.authenticated = true;
    }
    if !client.authenticated {
        replies.push(Reply::error(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time",
        ));
        return After::Continue;
    }
    if let Some(name) = hello.setname {
        if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
            replies.push(Reply::error(
                "ERR Client names cannot contain spaces, newlines or special characters.",
            ));
            return After::Continue;
        }
        let name = String::from_utf8_lossy(name).into_owned();
        client.info.update(|n| n.name = name);
    }
    client.set_resp(resp);
    replies.push(Reply::Map(vec![
        (Reply::bulk("server"), Reply::bulk("redis")),
        (Reply::bulk("version"), Reply::bulk(REDIS_COMPAT_VERSION)),
        (
            Reply::bulk("proto"),
            Reply::Int(if resp == Resp::V3 { 3 } else { 2 }),
        ),
        (Reply::bulk("id"), Reply::Int(client.info.id as i64)),
        (Reply::bulk("mode"), Reply::bulk("standalone")),
        (Reply::bulk("role"), Reply::bulk("master")),
        (Reply::bulk("modules"), Reply::Array(Vec::new())),
    ]));
    After::Continue
}

fn log_auth_failure(shared: &Shared, client: &ClientState) {
    // The password itself is never logged.
    if let Some(suppressed) = shared.bad_input_log.allow(shared.uptime_ms() / 1000) {
        tracing::warn!(peer = %client.info.addr, client_id = client.info.id, suppressed, "authentication failed");
    }
}

/// The settings `CONFIG GET` knows, with their current values.
fn config_items(shared: &Shared) -> Vec<(&'static str, String)> {
    let s = &shared.settings;
    let c = &shared.config;
    vec![
        ("bind", c.bind.to_string()),
        ("port", shared.local_addr.port().to_string()),
        ("loglevel", s.log_level()),
        ("window", c.window.to_string()),
        ("clock", c.clock.name().to_string()),
        (
            "max-future-skew",
            s.max_future_skew.load(Ordering::Relaxed).to_string(),
        ),
        ("max-id-len", Settings::get(&s.max_id_len).to_string()),
        (
            "proto-max-bulk-len",
            Settings::get(&s.proto_max_bulk_len).to_string(),
        ),
        ("max-args", Settings::get(&s.max_args).to_string()),
        (
            "client-query-buffer-limit",
            Settings::get(&s.client_query_buffer_limit).to_string(),
        ),
        ("shards", shared.store.shard_count().to_string()),
        ("threads", shared.config.serving_threads().to_string()),
        ("requirepass", s.password().unwrap_or_default()),
        (
            "protected-mode",
            if c.protected_mode { "yes" } else { "no" }.to_string(),
        ),
        ("maxclients", Settings::get(&s.maxclients).to_string()),
        ("timeout", s.timeout.load(Ordering::Relaxed).to_string()),
        (
            "client-output-buffer-limit",
            Settings::get(&s.client_output_buffer_limit).to_string(),
        ),
        ("maxmemory", Settings::get(&s.maxmemory).to_string()),
        (
            "snapshot",
            c.snapshot
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
        ("databases", "1".to_string()),
        // redis-benchmark and other tools ask about persistence at start.
        ("save", String::new()),
        ("appendonly", "no".to_string()),
    ]
}

fn config_get(shared: &Shared, patterns: &[&[u8]]) -> Reply {
    let items = config_items(shared);
    let mut out = Vec::new();
    for (name, value) in items {
        if patterns
            .iter()
            .any(|p| glob_match(&p.to_ascii_lowercase(), name.as_bytes()))
        {
            out.push((Reply::bulk(name), Reply::bulk(value)));
        }
    }
    Reply::Map(out)
}

fn config_set(shared: &Shared, pairs: &[(&[u8], &[u8])]) -> Reply {
    let s = &shared.settings;
    // Validate everything first, so a failing pair leaves every setting unchanged.
    let mut apply: Vec<Box<dyn FnOnce() -> Result<(), String> + '_>> = Vec::new();
    for (name, value) in pairs {
        let name_l = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = String::from_utf8_lossy(value).into_owned();
        let bad = |why: &str| {
            Reply::error(format!(
                "ERR CONFIG SET failed (possibly related to argument '{name_l}') - {why}"
            ))
        };
        let size = || parse_memory(&value).and_then(|v| usize::try_from(v).ok());
        match name_l.as_str() {
            "max-future-skew" | "timeout" => match value.parse::<u64>() {
                Ok(v) => {
                    let cell = if name_l == "timeout" {
                        &s.timeout
                    } else {
                        &s.max_future_skew
                    };
                    apply.push(Box::new(move || {
                        cell.store(v, Ordering::Relaxed);
                        Ok(())
                    }))
                }
                Err(_) => return bad("argument couldn't be parsed into an integer"),
            },
            "requirepass" => apply.push(Box::new(move || {
                if let Ok(mut p) = s.requirepass.lock() {
                    *p = Some(value).filter(|v| !v.is_empty());
                }
                Ok(())
            })),
            "maxmemory" => {
                let Some(v) = size() else {
                    return bad("argument must be a memory value");
                };
                apply.push(Box::new(move || {
                    s.maxmemory.store(v, Ordering::Relaxed);
                    Ok(())
                }));
            }
            "max-id-len"
            | "proto-max-bulk-len"
            | "max-args"
            | "client-query-buffer-limit"
            | "maxclients"
            | "client-output-buffer-limit" => {
                let Some(v) = size().filter(|&v| v > 0) else {
                    return bad("argument must be a positive memory or count value");
                };
                let cell = match name_l.as_str() {
                    "max-id-len" => &s.max_id_len,
                    "proto-max-bulk-len" => &s.proto_max_bulk_len,
                    "max-args" => &s.max_args,
                    "maxclients" => &s.maxclients,
                    "client-output-buffer-limit" => &s.client_output_buffer_limit,
                    _ => &s.client_query_buffer_limit,
                };
                apply.push(Box::new(move || {
                    cell.store(v, Ordering::Relaxed);
                    Ok(())
                }));
            }
            "loglevel" => {
                let Some(set) = shared.set_log_filter.as_ref() else {
                    return bad("logging is not managed by this server");
                };
                apply.push(Box::new(move || {
                    set(&value)?;
                    if let Ok(mut l) = s.log_level.lock() {
                        *l = value;
                    }
                    Ok(())
                }));
            }
            "save" | "appendonly" => {
                // Accepted as no-ops so tools that turn persistence off still work;
                // the window is kept by --snapshot, not by RDB/AOF.
                let ok = if name_l == "save" {
                    value.is_empty()
                } else {
                    value.eq_ignore_ascii_case("no")
                };
                if !ok {
                    return bad("RDB and AOF persistence are not supported; use --snapshot");
                }
            }
            known if config_items(shared).iter().any(|(n, _)| *n == known) => {
                return bad("can't set immutable config");
            }
            _ => {
                return Reply::error(format!(
                    "ERR Unknown option or number of arguments for CONFIG SET - '{name_l}'"
                ));
            }
        }
    }
    for f in apply {
        if let Err(e) = f() {
            return Reply::error(format!("ERR CONFIG SET failed - {e}"));
        }
    }
    Reply::Ok
}

/// Redis's `stringmatchlen`: `*`, `?`, `[...]` (with `^` and ranges) and `\` escapes.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    fn go(p: &[u8], t: &[u8], depth: usize) -> bool {
        if depth > 64 {
            return false;
        }
        let (mut p, mut t) = (p, t);
        while let Some(&c) = p.first() {
            match c {
                b'*' => {
                    while p.first() == Some(&b'*') {
                        p = &p[1..];
                    }
                    if p.is_empty() {
                        return true;
                    }
                    return (0..=t.len()).any(|i| go(p, &t[i..], depth + 1));
                }
                b'?' => {
                    if t.is_empty() {
                        return false;
                    }
                    t = &t[1..];
                    p = &p[1..];
                }
                b'[' => {
                    let Some(&ch) = t.first() else { return false };
                    let mut i = 1;
                    let negate = p.get(1) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let mut matched = false;
                    while i < p.len() && p[i] != b']' {
                        if p[i] == b'\\' && i + 1 < p.len() {
                            matched |= p[i + 1] == ch;
                            i += 2;
                        } else if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
                            let (lo, hi) = (p[i].min(p[i + 2]), p[i].max(p[i + 2]));
                            matched |= (lo..=hi).contains(&ch);
                            i += 3;
                        } else {
                            matched |= p[i] == ch;
                            i += 1;
                        }
                    }
                    if matched == negate {
                        return false;
                    }
                    p = p.get(i + 1..).unwrap_or_default();
                    t = &t[1..];
                }
                b'\\' if p.len() >= 2 => {
                    if t.first() != Some(&p[1]) {
                        return false;
                    }
                    p = &p[2..];
                    t = &t[1..];
                }
                _ => {
                    if t.first() != Some(&c) {
                        return false;
                    }
                    p = &p[1..];
                    t = &t[1..];
                }
            }
        }
        t.is_empty()
    }
    go(pattern, text, 0)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_as_redis() {
        assert!(glob_match(b"*", b"port"));
        assert!(glob_match(b"max*", b"max-args"));
        assert!(!glob_match(b"max*", b"port"));
        assert!(glob_match(b"p?rt", b"port"));
        assert!(glob_match(b"[ps]ave", b"save"));
        assert!(!glob_match(b"[^s]ave", b"save"));
        assert!(glob_match(b"a[b-d]e", b"ace"));
        assert!(glob_match(b"save", b"save"));
        assert!(!glob_match(b"sav", b"save"));
    }
}
