//! `CONFIG GET|SET|RESETSTAT|HELP`: the settings, by Redis's names.

use std::sync::atomic::{AtomicU64, Ordering};

use super::glob::glob_match;
use super::spec::{ArgDoc, Spec, arg, block, multiple, required};
use super::{Cmd, Ctx, Cursor};
use crate::config::{
    CLIENT_OUTPUT_BUFFER_LIMIT, CLIENT_QUERY_BUFFER_LIMIT, DEFAULT_LOG_LEVEL, Limit, MAX_ARGS,
    MAX_CLOCK_JUMP, MAX_FUTURE_SKEW, MAX_ID_LEN, MAXCLIENTS, MAXMEMORY, PROTO_MAX_BULK_LEN,
    Settings, TCP_KEEPALIVE, TIMEOUT, parse_yes_no,
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
        &[multiple(required(block("data", None, SET_ARGS)))],
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

/// `CONFIG REWRITE`: writes the settings changed at run time back into the
/// configuration file the server was started with.
#[derive(Debug)]
pub struct Rewrite;

impl<'a> Cmd<'a> for Rewrite {
    const SPEC: &'static Spec = &Spec {
        since: "2.8.0",
        ..Spec::new(
            "config|rewrite",
            2,
            SUB,
            "server",
            "Persists the effective configuration to file.",
            &[],
        )
    };

    fn parse(_: &mut Cursor<'a>) -> Result<Self, ReplyError> {
        Ok(Rewrite)
    }

    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
        let shared = ctx.shared;
        let Some(path) = shared.config.config_file.as_ref() else {
            return Err(ReplyError::err(
                "The server is running without a config file",
            ));
        };
        let settings: Vec<(&str, String, bool)> = PARAMS
            .iter()
            .filter_map(|p| {
                let value = p.value(shared);
                let changed = match &p.kind {
                    Kind::Number(limit, _) => value != limit.default.to_string(),
                    Kind::Password => !value.is_empty(),
                    Kind::LogLevel => value != DEFAULT_LOG_LEVEL,
                    Kind::Custom { default, .. } => value != default.to_string(),
                    Kind::AppendOnly => value != "no",
                    Kind::AppendFsync => value != "everysec",
                    Kind::Fixed(_) | Kind::Off { .. } => return None,
                };
                Some((p.name, value, changed))
            })
            .collect();
        crate::config::file::rewrite(path, &settings)
            .map(|()| Reply::Ok)
            .map_err(|e| ReplyError::err(format!("Rewriting config file: {e}")))
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

super::command::container_help!(
    /// `CONFIG HELP`.
    Help,
    "config|help",
    "server",
    CONTAINER
);

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
    /// Read and written through its own functions (settings kept outside
    /// [`Settings`]: the slow log's, the latency monitor's).
    Custom {
        get: fn(&Shared) -> String,
        /// The range of values.
        range: (i64, i64),
        default: i64,
        set: fn(&Shared, i64),
    },
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

impl Param {
    /// A number in `limit`'s range, named as `limit` is, held where `cell` says.
    const fn number(limit: &'static Limit, cell: fn(&Settings) -> &AtomicU64) -> Param {
        Param {
            name: limit.name,
            kind: Kind::Number(limit, cell),
        }
    }
}

/// Every parameter, in `CONFIG GET *` order.
static PARAMS: [Param; 32] = [
    Param {
        name: "bind",
        kind: Kind::Fixed(|s| s.config.bind.to_string()),
    },
    Param {
        name: "port",
        kind: Kind::Fixed(|s| s.local_addr.port().to_string()),
    },
    // The HTTP view's port as bound; 0 when it is off.
    Param {
        name: "http-port",
        kind: Kind::Fixed(|s| s.http.addr().map_or(0, |a| a.port()).to_string()),
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
    Param::number(&MAX_FUTURE_SKEW, |s| &s.max_future_skew),
    Param::number(&MAX_CLOCK_JUMP, |s| &s.max_clock_jump),
    Param::number(&MAX_ID_LEN, |s| &s.max_id_len),
    Param::number(&PROTO_MAX_BULK_LEN, |s| &s.proto_max_bulk_len),
    Param::number(&MAX_ARGS, |s| &s.max_args),
    Param::number(&CLIENT_QUERY_BUFFER_LIMIT, |s| &s.client_query_buffer_limit),
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
    Param::number(&MAXCLIENTS, |s| &s.maxclients),
    Param::number(&TIMEOUT, |s| &s.timeout),
    Param::number(&TCP_KEEPALIVE, |s| &s.tcp_keepalive),
    Param::number(&CLIENT_OUTPUT_BUFFER_LIMIT, |s| {
        &s.client_output_buffer_limit
    }),
    Param::number(&MAXMEMORY, |s| &s.maxmemory),
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
    Param {
        name: "slowlog-log-slower-than",
        kind: Kind::Custom {
            get: |s| s.slowlog.threshold.load(Ordering::Relaxed).to_string(),
            range: (-1, i64::MAX),
            default: crate::observe::SLOWLOG_DEFAULT_THRESHOLD_US,
            set: |s, v| s.slowlog.threshold.store(v, Ordering::Relaxed),
        },
    },
    Param {
        name: "slowlog-max-len",
        kind: Kind::Custom {
            get: |s| s.slowlog.max_len.load(Ordering::Relaxed).to_string(),
            range: (0, i32::MAX as i64),
            default: crate::observe::SLOWLOG_DEFAULT_MAX_LEN as i64,
            set: |s, v| s.slowlog.max_len.store(v as usize, Ordering::Relaxed),
        },
    },
    Param {
        name: "latency-monitor-threshold",
        kind: Kind::Custom {
            get: |s| s.latency.threshold_ms.load(Ordering::Relaxed).to_string(),
            range: (0, i64::MAX),
            default: 0,
            set: |s, v| s.latency.threshold_ms.store(v as u64, Ordering::Relaxed),
        },
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
    Param {
        name: "huge-pages",
        kind: Kind::Fixed(|s| yes_no(s.config.huge_pages)),
    },
];

/// An integer in `min..=max`, or why not (Redis's wording).
fn parse_in(text: &str, min: i64, max: i64) -> Result<i64, String> {
    let v: i64 = text
        .trim()
        .parse()
        .map_err(|_| "argument couldn't be parsed into an integer".to_string())?;
    if v < min || v > max {
        return Err(format!(
            "argument must be between {min} and {max} inclusive"
        ));
    }
    Ok(v)
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

impl Param {
    fn value(&self, shared: &Shared) -> String {
        match &self.kind {
            Kind::Number(_, cell) => Settings::get(cell(&shared.settings)).to_string(),
            Kind::Password => shared.settings.password().unwrap_or_default(),
            Kind::LogLevel => shared.settings.log_level(),
            Kind::Fixed(get) | Kind::Custom { get, .. } => get(shared),
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
        Kind::Custom { range, set, .. } => {
            let v = parse_in(&value, range.0, range.1).map_err(|e| bad(&e))?;
            let set = *set;
            Box::new(move || {
                set(shared, v);
                Ok(())
            })
        }
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
            let on = parse_yes_no(&value).map_err(|_| bad("argument must be 'yes' or 'no'"))?;
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
