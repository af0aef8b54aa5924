//! `CONFIG GET|SET|RESETSTAT|HELP`: the settings, by Redis's names.

use std::sync::atomic::{AtomicU64, Ordering};

use super::spec::{ArgDoc, Spec, arg, multiple};
use super::{Cmd, Ctx, Cursor};
use crate::config::{
    CLIENT_OUTPUT_BUFFER_LIMIT, CLIENT_QUERY_BUFFER_LIMIT, Limit, MAX_ARGS, MAX_CLOCK_JUMP,
    MAX_FUTURE_SKEW, MAX_ID_LEN, MAXCLIENTS, MAXMEMORY, PROTO_MAX_BULK_LEN, Settings,
    TCP_KEEPALIVE, TIMEOUT,
};
use crate::error::ReplyError;
use crate::persist::log::Fsync;
use crate::protocol::Reply;
use crate::shared::Shared;

const SUB: &[&str] = &["admin", "noscript", "loading", "stale"];

/// The `CONFIG` container.
pub const CONTAINER: &Spec = &Spec::new(
    "config",
    -2,
    &[],
    "server",
    "A container for server configuration commands.",
    &[],
);

/// `CONFIG GET pattern [pattern ...]`.
#[derive(Debug)]
pub struct Get<'a> {
    patterns: Vec<&'a [u8]>,
}

impl<'a> Cmd<'a> for Get<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "config|get",
        -3,
        SUB,
        "server",
        "Returns the effective values of configuration parameters.",
        &[multiple(arg("parameter", "string"))],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Get { patterns: c.rest() })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        // Each parameter is in the reply at most once, however many patterns match
        // it; repeated patterns are matched once.
        let mut matched = [false; PARAMS.len()];
        let mut seen = std::collections::HashSet::new();
        for pattern in self.patterns.iter().filter(|p| seen.insert(**p)) {
            let pattern = pattern.to_ascii_lowercase();
            for (m, p) in matched.iter_mut().zip(&PARAMS) {
                *m = *m || glob_match(&pattern, p.name.as_bytes());
            }
            if matched.iter().all(|&m| m) {
                break;
            }
        }
        let out = PARAMS
            .iter()
            .zip(matched)
            .filter(|(_, m)| *m)
            .map(|(p, _)| (Reply::bulk(p.name), Reply::bulk(p.value(ctx.shared))))
            .collect();
        Ok(Reply::Map(out))
    }
}

/// `CONFIG SET parameter value [parameter value ...]`.
#[derive(Debug)]
pub struct Set<'a> {
    pairs: Vec<(&'a [u8], &'a [u8])>,
}

const SET_ARGS: &[ArgDoc] = &[arg("parameter", "string"), arg("value", "string")];

impl<'a> Cmd<'a> for Set<'a> {
    const SPEC: &'static Spec = &Spec::new(
        "config|set",
        -4,
        SUB,
        "server",
        "Sets configuration parameters that can change at run time.",
        &[ArgDoc {
            name: "data",
            kind: "block",
            token: None,
            optional: false,
            multiple: true,
            args: SET_ARGS,
        }],
    );

    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        let rest = c.rest();
        if !rest.len().is_multiple_of(2) {
            return Err(ReplyError::arity(Self::SPEC.name));
        }
        Ok(Set {
            pairs: rest
                .chunks_exact(2)
                .filter_map(|p| Some((*p.first()?, *p.get(1)?)))
                .collect(),
        })
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        config_set(ctx.shared, &self.pairs)
    }
}

/// `CONFIG RESETSTAT`.
#[derive(Debug)]
pub struct ResetStat;

impl<'a> Cmd<'a> for ResetStat {
    const SPEC: &'static Spec = &Spec::new(
        "config|resetstat",
        2,
        SUB,
        "server",
        "Resets the server's statistics.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(ResetStat)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        ctx.shared.stats.reset();
        Ok(Reply::Ok)
    }
}

/// `CONFIG HELP`.
#[derive(Debug)]
pub struct Help;

impl<'a> Cmd<'a> for Help {
    const SPEC: &'static Spec = &Spec::new(
        "config|help",
        2,
        &["loading", "stale"],
        "server",
        "Returns helpful text about the different subcommands.",
        &[],
    );

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Help)
    }

    fn run(self, _: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        Ok(super::command::help(CONTAINER))
    }
}

/// How a parameter is read and changed.
enum Kind {
    /// A number in a range, held in one of the [`Settings`] cells.
    Number(&'static Limit, fn(&Settings) -> &AtomicU64),
    /// `requirepass`: setting it to "" removes the password.
    Password,
    /// `loglevel`: a tracing filter.
    LogLevel,
    /// Fixed at start: `CONFIG SET` refuses it.
    Fixed(fn(&Shared) -> String),
    /// Persistence switches tools turn off at start (`save ""`): `value` is what
    /// it is, and the only value `CONFIG SET` accepts.
    Off { value: &'static str },
    /// `appendonly yes|no`: the window log on or off (src/persist/log).
    AppendOnly,
    /// `appendfsync always|everysec|no`.
    AppendFsync,
}

/// One parameter `CONFIG GET`/`SET` knows.
struct Param {
    name: &'static str,
    kind: Kind,
}

/// Every parameter, in `CONFIG GET *` order.
static PARAMS: [Param; 27] = [
    Param {
        name: "bind",
        kind: Kind::Fixed(|s| s.config.bind.to_string()),
    },
    Param {
        name: "port",
        kind: Kind::Fixed(|s| s.local_addr.port().to_string()),
    },
    Param {
        name: "loglevel",
        kind: Kind::LogLevel,
    },
    Param {
        name: "window",
        kind: Kind::Fixed(|s| s.config.window.to_string()),
    },
    Param {
        name: "clock",
        kind: Kind::Fixed(|s| s.config.clock.name().to_string()),
    },
    Param {
        name: MAX_FUTURE_SKEW.name,
        kind: Kind::Number(&MAX_FUTURE_SKEW, |s| &s.max_future_skew),
    },
    Param {
        name: MAX_CLOCK_JUMP.name,
        kind: Kind::Number(&MAX_CLOCK_JUMP, |s| &s.max_clock_jump),
    },
    Param {
        name: MAX_ID_LEN.name,
        kind: Kind::Number(&MAX_ID_LEN, |s| &s.max_id_len),
    },
    Param {
        name: PROTO_MAX_BULK_LEN.name,
        kind: Kind::Number(&PROTO_MAX_BULK_LEN, |s| &s.proto_max_bulk_len),
    },
    Param {
        name: MAX_ARGS.name,
        kind: Kind::Number(&MAX_ARGS, |s| &s.max_args),
    },
    Param {
        name: CLIENT_QUERY_BUFFER_LIMIT.name,
        kind: Kind::Number(&CLIENT_QUERY_BUFFER_LIMIT, |s| &s.client_query_buffer_limit),
    },
    Param {
        name: "shards",
        kind: Kind::Fixed(|s| s.store.shard_count().to_string()),
    },
    Param {
        name: "threads",
        kind: Kind::Fixed(|s| s.config.serving_threads().to_string()),
    },
    Param {
        name: "requirepass",
        kind: Kind::Password,
    },
    Param {
        name: "protected-mode",
        kind: Kind::Fixed(|s| yes_no(s.config.protected_mode)),
    },
    Param {
        name: MAXCLIENTS.name,
        kind: Kind::Number(&MAXCLIENTS, |s| &s.maxclients),
    },
    Param {
        name: TIMEOUT.name,
        kind: Kind::Number(&TIMEOUT, |s| &s.timeout),
    },
    Param {
        name: TCP_KEEPALIVE.name,
        kind: Kind::Number(&TCP_KEEPALIVE, |s| &s.tcp_keepalive),
    },
    Param {
        name: CLIENT_OUTPUT_BUFFER_LIMIT.name,
        kind: Kind::Number(&CLIENT_OUTPUT_BUFFER_LIMIT, |s| {
            &s.client_output_buffer_limit
        }),
    },
    Param {
        name: MAXMEMORY.name,
        kind: Kind::Number(&MAXMEMORY, |s| &s.maxmemory),
    },
    Param {
        name: "snapshot",
        kind: Kind::Fixed(|s| {
            s.config
                .snapshot
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        }),
    },
    Param {
        name: "databases",
        kind: Kind::Fixed(|_| "1".to_string()),
    },
    // redis-benchmark and other tools ask about persistence at start.
    Param {
        name: "save",
        kind: Kind::Off { value: "" },
    },
    Param {
        name: "appendonly",
        kind: Kind::AppendOnly,
    },
    Param {
        name: "appendfsync",
        kind: Kind::AppendFsync,
    },
    Param {
        name: "dir",
        kind: Kind::Fixed(|s| s.config.dir.display().to_string()),
    },
    Param {
        name: "aof-skip-damaged",
        kind: Kind::Fixed(|s| yes_no(s.config.aof_skip_damaged)),
    },
];

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

impl Param {
    fn value(&self, shared: &Shared) -> String {
        match &self.kind {
            Kind::Number(_, cell) => Settings::get(cell(&shared.settings)).to_string(),
            Kind::Password => shared.settings.password().unwrap_or_default(),
            Kind::LogLevel => shared.settings.log_level(),
            Kind::Fixed(get) => get(shared),
            Kind::Off { value } => value.to_string(),
            Kind::AppendOnly => yes_no(shared.log.enabled()),
            Kind::AppendFsync => shared.log.fsync().name().to_string(),
        }
    }
}

/// A validated change, applied once every pair of the command is valid.
type Change<'s> = Box<dyn FnOnce() -> Result<(), String> + 's>;

fn config_set(shared: &Shared, pairs: &[(&[u8], &[u8])]) -> Result<Reply, ReplyError> {
    // Validate everything first, so a failing pair leaves every setting unchanged.
    let mut changes: Vec<Change<'_>> = Vec::new();
    for (name, value) in pairs {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = String::from_utf8_lossy(value).into_owned();
        if let Some(change) = validate(shared, &name, value)? {
            changes.push(change);
        }
    }
    for f in changes {
        f().map_err(|e| ReplyError::err(format!("CONFIG SET failed - {e}")))?;
    }
    Ok(Reply::Ok)
}

/// Checks one `name value` pair; the change to make, if any.
fn validate<'s>(
    shared: &'s Shared,
    name: &str,
    value: String,
) -> Result<Option<Change<'s>>, ReplyError> {
    let bad = |why: &str| {
        ReplyError::err(format!(
            "CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    let Some(param) = PARAMS.iter().find(|p| p.name == name) else {
        return Err(ReplyError::err(format!(
            "Unknown option or number of arguments for CONFIG SET - '{name}'"
        )));
    };
    let s = &shared.settings;
    let change: Change<'s> = match &param.kind {
        Kind::Number(limit, cell) => {
            let v = limit.parse(&value).map_err(|e| bad(&e))?;
            let cell = cell(s);
            Box::new(move || {
                cell.store(v, Ordering::Relaxed);
                Ok(())
            })
        }
        Kind::Password => Box::new(move || {
            s.set_password(value);
            Ok(())
        }),
        Kind::LogLevel => {
            let set = shared
                .set_log_filter
                .as_ref()
                .ok_or_else(|| bad("logging is not managed by this server"))?;
            Box::new(move || {
                set(&value)?;
                if let Ok(mut l) = s.log_level.lock() {
                    *l = value;
                }
                Ok(())
            })
        }
        Kind::Fixed(_) => return Err(bad("can't set immutable config")),
        Kind::Off { value: off } => {
            // Accepted as a no-op so tools that turn persistence off still work;
            // the window is kept by --snapshot and --appendonly, not by RDB.
            if !value.eq_ignore_ascii_case(off) {
                return Err(bad(
                    "RDB persistence is not supported; use --snapshot or --appendonly yes",
                ));
            }
            return Ok(None);
        }
        Kind::AppendOnly => {
            let on = match value.to_ascii_lowercase().as_str() {
                "yes" => true,
                "no" => false,
                _ => return Err(bad("argument must be 'yes' or 'no'")),
            };
            Box::new(move || shared.log.set_enabled(on))
        }
        Kind::AppendFsync => {
            let f = Fsync::parse(&value).ok_or_else(|| {
                bad("argument must be one of the following: always, everysec, no")
            })?;
            Box::new(move || {
                shared.log.set_fsync(f);
                Ok(())
            })
        }
    };
    Ok(Some(change))
}

/// Redis's `stringmatchlen`: `*`, `?`, `[...]` (with `^` and ranges) and `\` escapes,
/// matched in O(pattern × text) time whatever the pattern: on a mismatch only the
/// last `*` is retried one byte further, because an earlier `*` can never do better
/// than the last one (it would only hand the last one less text).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    // Where to resume after the last `*`: its pattern position and the text position
    // it has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        let advanced = match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                star = Some((p, t));
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => class_match(pattern, p, text[t]),
            Some(b'\\') if p + 1 < pattern.len() => (pattern[p + 1] == text[t]).then_some(p + 2),
            Some(&c) => (c == text[t]).then_some(p + 1),
            None => None,
        };
        match (advanced, star) {
            (Some(next), _) => {
                p = next;
                t += 1;
            }
            (None, Some((sp, st))) => {
                p = sp;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    pattern[p.min(pattern.len())..].iter().all(|&c| c == b'*')
}

/// Matches `ch` against the class `[...]` starting at `pattern[start]`; the pattern
/// position after the class when it matches.
fn class_match(pattern: &[u8], start: usize, ch: u8) -> Option<usize> {
    let mut i = start + 1;
    let negate = pattern.get(i) == Some(&b'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    while i < pattern.len() && pattern[i] != b']' {
        if pattern[i] == b'\\' && i + 1 < pattern.len() {
            matched |= pattern[i + 1] == ch;
            i += 2;
        } else if i + 2 < pattern.len() && pattern[i + 1] == b'-' && pattern[i + 2] != b']' {
            let (lo, hi) = (
                pattern[i].min(pattern[i + 2]),
                pattern[i].max(pattern[i + 2]),
            );
            matched |= (lo..=hi).contains(&ch);
            i += 3;
        } else {
            matched |= pattern[i] == ch;
            i += 1;
        }
    }
    (matched != negate).then_some((i + 1).min(pattern.len()))
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
        assert!(glob_match(b"*-*-*", b"client-query-buffer-limit"));
        assert!(!glob_match(b"*x*", b"client-query-buffer-limit"));
        assert!(glob_match(b"a\\*b", b"a*b"));
        assert!(!glob_match(b"a\\*b", b"axb"));
        assert!(glob_match(b"", b""));
        assert!(!glob_match(b"", b"a"));
        assert!(glob_match(b"**", b""));
    }
}
