//! The command table: every command's name, arity, flags and documentation, declared
//! once. Parsing looks names up here, `COMMAND INFO`/`DOCS`/`COUNT`/`LIST` describe
//! what is here, and the arity check uses Redis's convention (`n`: exactly `n`
//! arguments counting the name; `-n`: at least `n`).

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

const fn arg(name: &'static str, kind: &'static str) -> ArgDoc {
    ArgDoc {
        name,
        kind,
        token: None,
        optional: false,
        multiple: false,
        args: &[],
    }
}

const fn token(name: &'static str, token: &'static str, kind: &'static str) -> ArgDoc {
    ArgDoc {
        name,
        kind,
        token: Some(token),
        optional: true,
        multiple: false,
        args: &[],
    }
}

const fn optional(mut a: ArgDoc) -> ArgDoc {
    a.optional = true;
    a
}

const fn multiple(mut a: ArgDoc) -> ArgDoc {
    a.multiple = true;
    a
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
    pub subcommands: &'static [Spec],
}

impl Spec {
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

    /// The subcommand called `name`.
    pub fn subcommand(&self, name: &[u8]) -> Option<&'static Spec> {
        self.subcommands.iter().find(|s| {
            s.name
                .split_once('|')
                .is_some_and(|(_, sub)| sub.as_bytes().eq_ignore_ascii_case(name))
        })
    }
}

const fn spec(
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
        subcommands: &[],
    }
}

const WINDOW_ARG: ArgDoc = token("seconds", "WINDOW", "integer");

/// Every command the server knows, the analytics commands first (the hot path scans
/// from the top).
pub static COMMANDS: &[Spec] = &[
    Spec {
        complexity: "O(1)",
        ..spec(
            "evt.add",
            2,
            &["write", "fast"],
            "module",
            "Counts one event given as a JSON object.",
            &[arg("json", "string")],
        )
    },
    Spec {
        complexity: "O(N) where N is the number of events",
        ..spec(
            "evt.madd",
            -2,
            &["write"],
            "module",
            "Counts several events; replies with one result per event.",
            &[multiple(arg("json", "string"))],
        )
    },
    Spec {
        complexity: "O(S) where S is the number of shards",
        ..spec(
            "evt.total",
            -1,
            &["readonly", "fast"],
            "module",
            "Events in the window, or in its last WINDOW seconds.",
            &[WINDOW_ARG],
        )
    },
    spec(
        "evt.user",
        -2,
        &["readonly", "fast"],
        "module",
        "Events of one user in the window.",
        &[arg("user_id", "string"), WINDOW_ARG],
    ),
    Spec {
        complexity: "O(S) where S is the number of shards",
        ..spec(
            "evt.type",
            -2,
            &["readonly", "fast"],
            "module",
            "Events of one event type in the window.",
            &[arg("event_type", "string"), WINDOW_ARG],
        )
    },
    spec(
        "evt.sum",
        -3,
        &["readonly", "fast"],
        "module",
        "Sum of attributes.value over one user's events of one type in the window.",
        &[
            arg("user_id", "string"),
            arg("event_type", "string"),
            WINDOW_ARG,
        ],
    ),
    spec(
        "evt.clock",
        -1,
        &["fast"],
        "module",
        "Returns the server's now; SET or ADVANCE move the manual clock.",
        &[optional(ArgDoc {
            name: "move",
            kind: "oneof",
            token: None,
            optional: true,
            multiple: false,
            args: &[
                ArgDoc {
                    optional: false,
                    ..token("unix-seconds", "SET", "integer")
                },
                ArgDoc {
                    optional: false,
                    ..token("seconds", "ADVANCE", "integer")
                },
            ],
        })],
    ),
    spec(
        "ping",
        -1,
        &["fast", "stale"],
        "connection",
        "Returns PONG, or the message.",
        &[optional(arg("message", "string"))],
    ),
    spec(
        "echo",
        2,
        &["fast"],
        "connection",
        "Returns the given string.",
        &[arg("message", "string")],
    ),
    Spec {
        since: "6.0.0",
        ..spec(
            "hello",
            -1,
            &["noscript", "loading", "stale", "fast", "no_auth"],
            "connection",
            "Handshakes with the server: protocol version, authentication, client name.",
            &[optional(ArgDoc {
                name: "arguments",
                kind: "block",
                token: None,
                optional: true,
                multiple: false,
                args: &[
                    arg("protover", "integer"),
                    ArgDoc {
                        name: "auth",
                        kind: "block",
                        token: Some("AUTH"),
                        optional: true,
                        multiple: false,
                        args: &[arg("username", "string"), arg("password", "string")],
                    },
                    token("clientname", "SETNAME", "string"),
                ],
            })],
        )
    },
    spec(
        "auth",
        -2,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        "connection",
        "Authenticates the connection.",
        &[
            optional(arg("username", "string")),
            arg("password", "string"),
        ],
    ),
    spec(
        "select",
        2,
        &["loading", "stale", "fast"],
        "connection",
        "Selects database 0, the only one.",
        &[arg("index", "integer")],
    ),
    spec(
        "quit",
        -1,
        &["noscript", "loading", "stale", "fast", "no_auth"],
        "connection",
        "Closes the connection.",
        &[],
    ),
    Spec {
        since: "6.2.0",
        ..spec(
            "reset",
            1,
            &["noscript", "loading", "stale", "fast", "no_auth"],
            "connection",
            "Resets the connection: RESP2, no name, not authenticated when a password is set.",
            &[],
        )
    },
    Spec {
        subcommands: CLIENT_SUBCOMMANDS,
        ..spec(
            "client",
            -2,
            &[],
            "connection",
            "A container for client connection commands.",
            &[],
        )
    },
    Spec {
        subcommands: COMMAND_SUBCOMMANDS,
        complexity: "O(N) where N is the total number of commands",
        ..spec(
            "command",
            -1,
            &["loading", "stale"],
            "server",
            "Returns detailed information about all commands.",
            &[],
        )
    },
    Spec {
        subcommands: CONFIG_SUBCOMMANDS,
        ..spec(
            "config",
            -2,
            &[],
            "server",
            "A container for server configuration commands.",
            &[],
        )
    },
    spec(
        "info",
        -1,
        &["loading", "stale"],
        "server",
        "Returns information and statistics about the server.",
        &[optional(multiple(arg("section", "string")))],
    ),
    spec(
        "time",
        1,
        &["loading", "stale", "fast"],
        "server",
        "Returns the server time (seconds and microseconds).",
        &[],
    ),
    spec(
        "dbsize",
        1,
        &["readonly", "fast"],
        "server",
        "Returns the number of active keys: users, event types and (user, type) pairs.",
        &[],
    ),
    spec(
        "flushall",
        -1,
        &["write"],
        "server",
        "Empties the window.",
        &[optional(ArgDoc {
            name: "flush-type",
            kind: "oneof",
            token: None,
            optional: true,
            multiple: false,
            args: &[arg("async", "pure-token"), arg("sync", "pure-token")],
        })],
    ),
    spec(
        "flushdb",
        -1,
        &["write"],
        "server",
        "Empties the window.",
        &[optional(ArgDoc {
            name: "flush-type",
            kind: "oneof",
            token: None,
            optional: true,
            multiple: false,
            args: &[arg("async", "pure-token"), arg("sync", "pure-token")],
        })],
    ),
    spec(
        "save",
        1,
        &["admin", "noscript"],
        "server",
        "Writes the window to the snapshot file.",
        &[],
    ),
    spec(
        "shutdown",
        -1,
        &[
            "admin",
            "noscript",
            "loading",
            "stale",
            "no_multi",
            "allow_busy",
        ],
        "server",
        "Stops the server after finishing the commands already read.",
        &[optional(ArgDoc {
            name: "save-selector",
            kind: "oneof",
            token: None,
            optional: true,
            multiple: false,
            args: &[arg("nosave", "pure-token"), arg("save", "pure-token")],
        })],
    ),
];

static CLIENT_SUBCOMMANDS: &[Spec] = &[
    spec(
        "client|setname",
        3,
        &["noscript", "loading", "stale"],
        "connection",
        "Sets the connection name.",
        &[arg("connection-name", "string")],
    ),
    spec(
        "client|getname",
        2,
        &["noscript", "loading", "stale"],
        "connection",
        "Returns the connection name.",
        &[],
    ),
    spec(
        "client|id",
        2,
        &["noscript", "loading", "stale"],
        "connection",
        "Returns the connection's unique id.",
        &[],
    ),
    Spec {
        since: "7.2.0",
        ..spec(
            "client|setinfo",
            4,
            &["noscript", "loading", "stale"],
            "connection",
            "Sets information about the client library (lib-name, lib-ver).",
            &[ArgDoc {
                name: "attr",
                kind: "oneof",
                token: None,
                optional: false,
                multiple: false,
                args: &[
                    ArgDoc {
                        optional: false,
                        ..token("libname", "LIB-NAME", "string")
                    },
                    ArgDoc {
                        optional: false,
                        ..token("libver", "LIB-VER", "string")
                    },
                ],
            }],
        )
    },
    spec(
        "client|info",
        2,
        &["noscript", "loading", "stale"],
        "connection",
        "Returns information about this connection.",
        &[],
    ),
    Spec {
        complexity: "O(N) where N is the number of client connections",
        ..spec(
            "client|list",
            -2,
            &["admin", "noscript", "loading", "stale"],
            "connection",
            "Lists open connections.",
            &[],
        )
    },
    spec(
        "client|help",
        2,
        &["loading", "stale"],
        "connection",
        "Returns helpful text about the different subcommands.",
        &[],
    ),
];

static COMMAND_SUBCOMMANDS: &[Spec] = &[
    spec(
        "command|count",
        2,
        &["loading", "stale"],
        "server",
        "Returns a count of commands.",
        &[],
    ),
    spec(
        "command|docs",
        -2,
        &["loading", "stale"],
        "server",
        "Returns documentary information about one, multiple or all commands.",
        &[optional(multiple(arg("command-name", "string")))],
    ),
    spec(
        "command|info",
        -2,
        &["loading", "stale"],
        "server",
        "Returns information about one, multiple or all commands.",
        &[optional(multiple(arg("command-name", "string")))],
    ),
    spec(
        "command|list",
        -2,
        &["loading", "stale"],
        "server",
        "Returns a list of command names.",
        &[],
    ),
    spec(
        "command|help",
        2,
        &["loading", "stale"],
        "server",
        "Returns helpful text about the different subcommands.",
        &[],
    ),
];

static CONFIG_SUBCOMMANDS: &[Spec] = &[
    spec(
        "config|get",
        -3,
        &["admin", "noscript", "loading", "stale"],
        "server",
        "Returns the effective values of configuration parameters.",
        &[multiple(arg("parameter", "string"))],
    ),
    spec(
        "config|set",
        -4,
        &["admin", "noscript", "loading", "stale"],
        "server",
        "Sets configuration parameters that can change at run time.",
        &[multiple(ArgDoc {
            name: "data",
            kind: "block",
            token: None,
            optional: false,
            multiple: true,
            args: &[arg("parameter", "string"), arg("value", "string")],
        })],
    ),
    spec(
        "config|resetstat",
        2,
        &["admin", "noscript", "loading", "stale"],
        "server",
        "Resets the server's statistics.",
        &[],
    ),
    spec(
        "config|help",
        2,
        &["loading", "stale"],
        "server",
        "Returns helpful text about the different subcommands.",
        &[],
    ),
];

/// Index in [`COMMANDS`] of the command called `name` (any case).
pub fn position(name: &[u8]) -> Option<usize> {
    COMMANDS
        .iter()
        .position(|s| s.name.len() == name.len() && s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// The command called `name` (any case).
pub fn lookup(name: &[u8]) -> Option<&'static Spec> {
    COMMANDS
        .iter()
        .find(|s| s.name.len() == name.len() && s.name.as_bytes().eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_found() {
        let mut names: Vec<&str> = COMMANDS.iter().map(|s| s.name).collect();
        for s in COMMANDS {
            assert_eq!(s.name, s.name.to_ascii_lowercase());
            assert!(std::ptr::eq(
                lookup(s.name.to_uppercase().as_bytes()).unwrap(),
                s
            ));
            for sub in s.subcommands {
                let (parent, child) = sub.name.split_once('|').unwrap();
                assert_eq!(parent, s.name);
                assert!(std::ptr::eq(s.subcommand(child.as_bytes()).unwrap(), sub));
            }
        }
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn arity_follows_redis_convention() {
        let echo = lookup(b"echo").unwrap();
        assert!(echo.arity_ok(2) && !echo.arity_ok(1) && !echo.arity_ok(3));
        let ping = lookup(b"PING").unwrap();
        assert!(ping.arity_ok(1) && ping.arity_ok(2));
    }
}
