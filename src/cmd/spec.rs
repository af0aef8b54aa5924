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
}
