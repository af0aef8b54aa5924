//! `CONFIG GET|SET|RESETSTAT|HELP`: the settings, by Redis's names.

use std::sync::atomic::Ordering;

use super::spec::{ArgDoc, Spec, arg, multiple};
use super::{Cmd, Ctx, Cursor};
use crate::config::{Settings, parse_memory};
use crate::error::ReplyError;
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
        let patterns: Vec<Vec<u8>> = self
            .patterns
            .iter()
            .map(|p| p.to_ascii_lowercase())
            .collect();
        let out = config_items(ctx.shared)
            .into_iter()
            .filter(|(name, _)| patterns.iter().any(|p| glob_match(p, name.as_bytes())))
            .map(|(name, value)| (Reply::bulk(name), Reply::bulk(value)))
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
    let s = &shared.settings;
    let bad = |why: &str| {
        ReplyError::err(format!(
            "CONFIG SET failed (possibly related to argument '{name}') - {why}"
        ))
    };
    let size = || parse_memory(&value).and_then(|v| usize::try_from(v).ok());
    let change: Change<'s> = match name {
        "max-future-skew" | "timeout" => {
            let v: u64 = value
                .parse()
                .map_err(|_| bad("argument couldn't be parsed into an integer"))?;
            let cell = if name == "timeout" {
                &s.timeout
            } else {
                &s.max_future_skew
            };
            Box::new(move || {
                cell.store(v, Ordering::Relaxed);
                Ok(())
            })
        }
        "requirepass" => Box::new(move || {
            if let Ok(mut p) = s.requirepass.lock() {
                *p = Some(value).filter(|v| !v.is_empty());
            }
            Ok(())
        }),
        "maxmemory" => {
            let v = size().ok_or_else(|| bad("argument must be a memory value"))?;
            Box::new(move || {
                s.maxmemory.store(v, Ordering::Relaxed);
                Ok(())
            })
        }
        "max-id-len"
        | "proto-max-bulk-len"
        | "max-args"
        | "client-query-buffer-limit"
        | "maxclients"
        | "client-output-buffer-limit" => {
            let v = size()
                .filter(|&v| v > 0)
                .ok_or_else(|| bad("argument must be a positive memory or count value"))?;
            let cell = match name {
                "max-id-len" => &s.max_id_len,
                "proto-max-bulk-len" => &s.proto_max_bulk_len,
                "max-args" => &s.max_args,
                "maxclients" => &s.maxclients,
                "client-output-buffer-limit" => &s.client_output_buffer_limit,
                _ => &s.client_query_buffer_limit,
            };
            Box::new(move || {
                cell.store(v, Ordering::Relaxed);
                Ok(())
            })
        }
        "loglevel" => {
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
        "save" | "appendonly" => {
            // Accepted as no-ops so tools that turn persistence off still work;
            // the window is kept by --snapshot, not by RDB/AOF.
            let ok = if name == "save" {
                value.is_empty()
            } else {
                value.eq_ignore_ascii_case("no")
            };
            if !ok {
                return Err(bad(
                    "RDB and AOF persistence are not supported; use --snapshot",
                ));
            }
            return Ok(None);
        }
        known if config_items(shared).iter().any(|(n, _)| *n == known) => {
            return Err(bad("can't set immutable config"));
        }
        _ => {
            return Err(ReplyError::err(format!(
                "Unknown option or number of arguments for CONFIG SET - '{name}'"
            )));
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
