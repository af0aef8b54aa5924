//! How a command describes itself: name, arity, flags and documentation, rendered by
//! `COMMAND INFO` / `COMMAND DOCS` and checked by the dispatcher (arity, login).
//!
//! Arity follows Redis's convention: `n` is exactly `n` arguments counting the name;
//! `-n` is at least `n`.

/// One argument in `COMMAND DOCS`.
#[derive(Debug)]
pub struct ArgDoc {
    pub name: &'static str,
    /// Redis's argument types: `string`, `integer`, `pure-token`, `oneof`, `block`.
    pub kind: &'static str,
    pub token: Option<&'static str>,
    pub optional: bool,
    pub multiple: bool,
    pub args: &'static [ArgDoc],
}

/// A required argument.
pub const fn arg(name: &'static str, kind: &'static str) -> ArgDoc {
    ArgDoc {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        args: &[],
    }
}

/// An optional `TOKEN <value>` argument.
pub const fn token(name: &'static str, token: &'static str, kind: &'static str) -> ArgDoc {
    ArgDoc {
        name,
        kind,
        token: Some(token),
        optional: true,
        multiple: false,
        args: &[],
    }
}

/// A required `TOKEN <value>` argument.
pub const fn required_token(name: &'static str, token: &'static str, kind: &'static str) -> ArgDoc {
    ArgDoc {
        optional: false,
        ..self::token(name, token, kind)
    }
}

/// A required `TOKEN` standing alone (Redis's `pure-token`).
pub const fn pure_token(name: &'static str, token: &'static str) -> ArgDoc {
    required_token(name, token, "pure-token")
}

/// A group of `args` (optional), introduced by `token` when given.
pub const fn block(
    name: &'static str,
    token: Option<&'static str>,
    args: &'static [ArgDoc],
) -> ArgDoc {
    ArgDoc {
        name,
        kind: "block",
        token,
        optional: true,
        multiple: false,
        args,
    }
}

/// `a`, required.
pub const fn required(mut a: ArgDoc) -> ArgDoc {
    a.optional = false;
    a
}

/// `a`, optional.
pub const fn optional(mut a: ArgDoc) -> ArgDoc {
    a.optional = true;
    a
}

/// `a`, repeatable.
pub const fn multiple(mut a: ArgDoc) -> ArgDoc {
    a.multiple = true;
    a
}

/// One of `args` (optional).
pub const fn one_of(name: &'static str, args: &'static [ArgDoc]) -> ArgDoc {
    ArgDoc {
        name,
        kind: "oneof",
        token: None,
        optional: true,
        multiple: false,
        args,
    }
}

/// `WINDOW <seconds>`, taken by every query over the window.
pub const WINDOW_ARG: ArgDoc = token("seconds", "WINDOW", "integer");

/// `LOCAL`, taken by every cluster-wide query: this node's share only.
pub const LOCAL_ARG: ArgDoc = optional(pure_token("local", "LOCAL"));

/// Where a command names a user, so cluster clients send it to that user's node and a
/// node serving another slot answers `-MOVED`. Declared once in the [`Spec`]: the
/// dispatcher's routing, `COMMAND INFO` (key positions and Redis 7 key specs),
/// `COMMAND DOCS` and `COMMAND GETKEYS` all read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPos {
    /// No user: any node answers (global queries, connection commands).
    None,
    /// Argument `n` (the command's name is 0) is a user id.
    At(usize),
    /// Argument `at` is a user id when the command has exactly `argc` arguments
    /// (`EVT.ADD <user_id> <json>`); the other forms name no user.
    AtWhen { at: usize, argc: usize },
    /// The argument after argument 1 when argument 1 is one of these words (any case):
    /// `EVT.SERIES USER <u>`. Clients learn this key through `COMMAND GETKEYS`
    /// (`movablekeys`).
    AfterWord(&'static [&'static str]),
    /// Every argument from `n` on is a user id (`WATCH u1 u2 ...`); in a cluster they
    /// must share a slot.
    From(usize),
}

impl KeyPos {
    /// The user id `args` (the whole request, name included) names, if any.
    #[inline]
    pub fn find<'a>(self, args: crate::protocol::Args<'a>) -> Option<&'a [u8]> {
        match self {
            KeyPos::None => None,
            KeyPos::At(n) | KeyPos::From(n) => args.get(n),
            KeyPos::AtWhen { at, argc } => (args.len() == argc).then(|| args.get(at)).flatten(),
            KeyPos::AfterWord(words) => {
                let word = args.get(1)?;
                words
                    .iter()
                    .any(|w| w.as_bytes().eq_ignore_ascii_case(word))
                    .then(|| args.get(2))
                    .flatten()
            }
        }
    }

    /// Every user id `args` names, in order (`COMMAND GETKEYS`).
    pub fn all<'a>(self, args: crate::protocol::Args<'a>) -> Vec<&'a [u8]> {
        match self {
            KeyPos::From(n) => (n..args.len()).filter_map(|i| args.get(i)).collect(),
            k => k.find(args).into_iter().collect(),
        }
    }

    /// Cluster mode: `Ok` when this node serves the users `args` names (or it names
    /// none); else `-MOVED` to the node of the first, or `-CROSSSLOT` when they are
    /// in different slots, as Redis Cluster answers a multi-key command.
    #[inline]
    pub fn route(
        self,
        cluster: &crate::cluster::Cluster,
        args: crate::protocol::Args<'_>,
    ) -> Result<(), crate::error::ReplyError> {
        let Some(first) = self.find(args) else {
            return Ok(());
        };
        if let KeyPos::From(n) = self {
            let slot = crate::cluster::key_slot(first);
            if (n + 1..args.len())
                .filter_map(|i| args.get(i))
                .any(|k| crate::cluster::key_slot(k) != slot)
            {
                return Err(crate::error::ReplyError::new(
                    crate::error::ErrorKind::CrossSlot,
                    "Keys in request don't hash to the same slot",
                ));
            }
        }
        cluster.route(first)
    }
}

/// A command (or subcommand) as `COMMAND` describes it.
#[derive(Debug)]
pub struct Spec {
    /// Lowercase, as Redis shows names (`evt.add`, `client|setname` for subcommands).
    pub name: &'static str,
    pub arity: i32,
    pub flags: &'static [&'static str],
    pub group: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    pub summary: &'static str,
    pub args: &'static [ArgDoc],
    /// Which argument names a user ([`KeyPos::None`] by default).
    pub key: KeyPos,
}

impl Spec {
    /// A spec with the common defaults (since 1.0.0, O(1)).
    pub const fn new(
        name: &'static str,
        arity: i32,
        flags: &'static [&'static str],
        group: &'static str,
        summary: &'static str,
        args: &'static [ArgDoc],
    ) -> Spec {
        Spec {
            name,
            arity,
            flags,
            group,
            since: "1.0.0",
            complexity: "O(1)",
            summary,
            args,
            key: KeyPos::None,
        }
    }

    /// Whether `argc` arguments (the name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let argc = argc as i64;
        let arity = i64::from(self.arity);
        if arity >= 0 {
            argc == arity
        } else {
            argc >= -arity
        }
    }

    /// Whether the command carries `flag`.
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.contains(&flag)
    }

    /// The part after `container|`, or the whole name.
    pub fn short_name(&self) -> &'static str {
        self.name.split_once('|').map_or(self.name, |(_, s)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arity_follows_redis_convention() {
        let echo = Spec::new("echo", 2, &[], "connection", "", &[]);
        assert!(echo.arity_ok(2) && !echo.arity_ok(1) && !echo.arity_ok(3));
        let ping = Spec::new("ping", -1, &[], "connection", "", &[]);
        assert!(ping.arity_ok(1) && ping.arity_ok(2));
    }

    #[test]
    fn key_positions_find_the_user() {
        let find = |k: KeyPos, a: &[&str]| {
            let line = format!("{}\r\n", a.join(" "));
            let limits = crate::protocol::Limits {
                max_bulk_len: 1024,
                max_args: 16,
            };
            let mut buf = crate::protocol::ArgBuf::default();
            crate::protocol::parse_request(line.as_bytes(), &limits, &mut buf).unwrap();
            let args = buf.args(line.as_bytes());
            k.find(args)
                .map(|b| String::from_utf8_lossy(b).into_owned())
        };
        assert_eq!(find(KeyPos::At(1), &["evt.user", "u1"]), Some("u1".into()));
        assert_eq!(find(KeyPos::None, &["evt.total"]), None);
        let add = KeyPos::AtWhen { at: 1, argc: 3 };
        assert_eq!(find(add, &["evt.add", "u1", "{}"]), Some("u1".into()));
        assert_eq!(find(add, &["evt.add", "{}"]), None);
        let series = KeyPos::AfterWord(&["USER", "SUM"]);
        assert_eq!(
            find(series, &["evt.series", "user", "u1"]),
            Some("u1".into())
        );
        assert_eq!(find(series, &["evt.series", "TYPE", "USER"]), None);
        assert_eq!(find(series, &["evt.series", "SUM"]), None);
    }
}
