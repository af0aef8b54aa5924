//! The command layer: every command the server knows, each defined once.
//!
//! A command is one type implementing [`Cmd`]: its [`Spec`] (name, arity, flags,
//! documentation), its parser (from a [`Cursor`] over the arguments) and its
//! executor. The [`commands!`] list below gives each one a typed [`CommandId`];
//! everything else — lookup by name, the arity check, `COMMAND INFO`/`DOCS`, INFO's
//! per-command figures, `CLIENT LIST`'s `cmd=` — is derived from that list. Adding a
//! command is one new type in the file of its family plus one line in the list
//! (`docs/architecture.md` walks through it).
//!
//! [`Session`] is a connection's command-layer state: it runs requests, keeps the
//! batch of pipelined events ([`crate::ingest::Batch`]) and encodes replies. The
//! connection drives it without knowing which command it is running.

mod client;
mod client_control;
mod cluster;
pub(crate) mod command;
mod config;
mod conn;
mod cursor;
mod evt_add;
mod evt_clock;
mod evt_query;
mod evt_series;
mod evt_top;
mod glob;
mod global;
mod info;
mod observe;
mod server;
mod session;
pub mod spec;
mod tx;

use std::sync::OnceLock;

pub use cursor::{Cursor, parse_int};
pub use evt_top::MAX_TOP_COUNT;
pub use session::{Flow, Session};
pub use spec::Spec;

use crate::clients::ClientInfo;
use crate::error::{ReplyError, quote};
use crate::ingest::Submitted;
use crate::persist::log::Ticket;
use crate::protocol::{Args, Reply};
use crate::shared::Shared;
use session::ClientState;

/// What a command may touch while it runs.
pub struct Ctx<'s> {
    pub shared: &'s Shared,
    pub client: &'s mut ClientState,
    /// What the connection does once the reply is written.
    pub after: After,
    /// The instant a transaction runs at (every command of an `EXEC` reads one `now`);
    /// `None` outside transactions: read the clock.
    pub now: Option<i64>,
    /// A reply still on its way; see [`Ctx::reply_later`].
    pub later: Option<Later>,
    /// A reply that must wait for the log (`appendfsync always`); see [`Ctx::defer`].
    pub deferred: Option<Deferred>,
}

/// Builds a held reply.
pub type Finish = Box<dyn FnOnce(&Shared, &ClientInfo) -> Reply + Send>;

/// A reply built once a log ticket is fulfilled.
pub struct Deferred {
    pub ticket: Ticket,
    pub finish: Finish,
}

/// A reply that is not ready when the command returns — a cluster-wide answer
/// waiting for the other nodes' shares. The connection awaits it (its thread goes on
/// serving other connections meanwhile) and runs nothing else of its pipeline first.
pub type Later =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Reply, ReplyError>> + Send>>;

impl Ctx<'_> {
    /// The server's `now` for this command.
    pub fn now(&self) -> i64 {
        self.now.unwrap_or_else(|| self.shared.clock.now())
    }

    /// Whether the command runs inside `EXEC`, where it cannot wait for anything.
    pub fn in_transaction(&self) -> bool {
        self.now.is_some()
    }

    /// Answers with what `reply` yields, once it does; the value the command returns
    /// is then dropped. Not inside a transaction ([`Ctx::in_transaction`]), which
    /// must run at one instant without waiting.
    pub fn reply_later(&mut self, reply: Later) {
        self.later = Some(reply);
    }

    /// Holds the command's reply until `ticket` is fulfilled (its events are on
    /// disk); `finish` builds it then, and the value the command returns is dropped.
    /// The connection runs nothing else of its pipeline meanwhile.
    pub fn defer(
        &mut self,
        ticket: Ticket,
        finish: impl FnOnce(&Shared, &ClientInfo) -> Reply + Send + 'static,
    ) {
        self.deferred = Some(Deferred {
            ticket,
            finish: Box::new(finish),
        });
    }
}

/// What the connection does after a command's reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    Continue,
    /// Close once the replies so far are written (QUIT).
    Close,
    /// Stop the server (SHUTDOWN): the command's reply is not sent.
    Shutdown,
}

/// One command: its description, its parser and its executor.
pub trait Cmd<'a>: Sized {
    /// Name, arity, flags and documentation.
    const SPEC: &'static Spec;

    /// Parses the arguments after the name (and subcommand). The arity is already
    /// checked; arguments left over are refused by the dispatcher.
    fn parse(c: &mut Cursor<'a>) -> Result<Self, ReplyError>;

    /// Runs the command.
    fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError>;

    /// An event that may wait in the pipeline's batch and be admitted together with
    /// its neighbours (`EVT.ADD`): slices of the read buffer.
    fn batched_event(&self) -> Option<Submitted<'a>> {
        None
    }
}

/// Declares the command list: the [`CommandId`] and [`Command`] enums and their
/// dispatch. `$lt` names the lifetime of borrowed arguments in the types.
macro_rules! commands {
    ($lt:lifetime; $($id:ident => $ty:ty,)*) => {
        /// A command's identity.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CommandId {
            $($id,)*
        }

        /// A parsed request; borrowed arguments are slices of the read buffer.
        // `Command::CommandDocs` is `COMMAND DOCS`: the names follow Redis's.
        #[allow(clippy::enum_variant_names)]
        pub enum Command<$lt> {
            $($id($ty),)*
        }

        impl CommandId {
            /// Every command, in table order.
            pub const ALL: &'static [CommandId] = &[$(CommandId::$id,)*];

            /// The command's description.
            pub fn spec(self) -> &'static Spec {
                // The lifetime only names the command types; specs are 'static.
                #[allow(clippy::extra_unused_lifetimes)]
                fn of<$lt>(id: CommandId) -> &'static Spec {
                    match id {
                        $(CommandId::$id => <$ty as Cmd<$lt>>::SPEC,)*
                    }
                }
                of(self)
            }

            fn parse<$lt>(self, c: &mut Cursor<$lt>) -> Result<Command<$lt>, ReplyError> {
                match self {
                    $(CommandId::$id => <$ty as Cmd<$lt>>::parse(c).map(Command::$id),)*
                }
            }
        }

        impl<$lt> Command<$lt> {
            /// Which command this is.
            pub fn id(&self) -> CommandId {
                match self {
                    $(Command::$id(_) => CommandId::$id,)*
                }
            }

            /// Runs it.
            pub fn run(self, ctx: &mut Ctx<'_>) -> Result<Reply, ReplyError> {
                match self {
                    $(Command::$id(c) => c.run(ctx),)*
                }
            }

            /// See [`Cmd::batched_event`].
            pub fn batched_event(&self) -> Option<Submitted<$lt>> {
                match self {
                    $(Command::$id(c) => c.batched_event(),)*
                }
            }
        }
    };
}

// The analytics commands first: lookup scans from the top, and EVT.ADD is the hot one.
commands! { 'a;
    EvtAdd => evt_add::Add<'a>,
    EvtMadd => evt_add::MultiAdd<'a>,
    EvtTotal => evt_query::Total,
    EvtUser => evt_query::User<'a>,
    EvtType => evt_query::Type<'a>,
    EvtSum => evt_query::Sum<'a>,
    EvtTop => evt_top::Top<'a>,
    EvtActive => evt_top::Active,
    EvtSeries => evt_series::Series<'a>,
    EvtProfile => evt_series::Profile<'a>,
    EvtClock => evt_clock::EvtClock,
    Ping => conn::Ping<'a>,
    Echo => conn::Echo<'a>,
    Hello => conn::Hello<'a>,
    Auth => conn::Auth<'a>,
    Select => conn::Select,
    Quit => conn::Quit,
    Reset => conn::Reset,
    ClientSetName => client::SetName<'a>,
    ClientGetName => client::GetName,
    ClientId => client::Id,
    ClientSetInfo => client::SetInfo<'a>,
    ClientInfo => client::Info,
    ClientList => client::List,
    ClientKill => client_control::Kill,
    ClientPause => client_control::Pause,
    ClientUnpause => client_control::Unpause,
    ClientReply => client_control::ReplySwitch,
    ClientNoEvict => client_control::NoEvict,
    ClientNoTouch => client_control::NoTouch,
    ClientHelp => client::Help,
    CommandAll => command::All,
    CommandCount => command::Count,
    CommandDocs => command::Docs<'a>,
    CommandGetKeys => command::GetKeys<'a>,
    CommandInfo => command::Info<'a>,
    CommandList => command::List,
    CommandHelp => command::Help,
    ConfigGet => config::Get<'a>,
    ConfigSet => config::Set<'a>,
    ConfigResetStat => config::ResetStat,
    ConfigRewrite => config::Rewrite,
    ConfigHelp => config::Help,
    Info => info::Info<'a>,
    Time => server::Time,
    DbSize => server::DbSize,
    FlushAll => server::FlushAll,
    FlushDb => server::FlushDb,
    Save => server::Save,
    Shutdown => server::Shutdown,
    Multi => tx::Multi,
    Exec => tx::Exec,
    Discard => tx::Discard,
    Watch => tx::Watch<'a>,
    Unwatch => tx::Unwatch,
    SlowlogGet => observe::SlowlogGet,
    SlowlogLen => observe::SlowlogLen,
    SlowlogReset => observe::SlowlogReset,
    SlowlogHelp => observe::SlowlogHelp,
    LatencyLatest => observe::LatencyLatest,
    LatencyHistory => observe::LatencyHistory<'a>,
    LatencyReset => observe::LatencyReset<'a>,
    LatencyHistogram => observe::LatencyHistogram<'a>,
    LatencyHelp => observe::LatencyHelp,
    Monitor => observe::Monitor,
    ClusterSlots => cluster::Slots,
    ClusterShards => cluster::Shards,
    ClusterNodes => cluster::Nodes,
    ClusterInfo => cluster::Info,
    ClusterMyId => cluster::MyId,
    ClusterKeySlot => cluster::KeySlot<'a>,
    ClusterHelp => cluster::Help,
    ReadOnly => cluster::ReadOnly,
    ReadWrite => cluster::ReadWrite,
}

/// A command with subcommands (`CLIENT`, `COMMAND`, `CONFIG`).
#[derive(Debug)]
pub struct Container {
    pub spec: &'static Spec,
    /// Its subcommands, in table order (their spec names are `container|sub`).
    pub subs: Vec<CommandId>,
    /// What the container alone runs (`COMMAND`), if anything.
    pub bare: Option<CommandId>,
}

impl Container {
    /// The subcommand called `name` (any case).
    pub fn sub(&self, name: &[u8]) -> Option<CommandId> {
        self.subs
            .iter()
            .copied()
            .find(|id| id.spec().short_name().as_bytes().eq_ignore_ascii_case(name))
    }
}

/// A top-level name: a command, or a container of subcommands.
#[derive(Debug)]
pub enum Entry {
    Command(CommandId),
    Container(Container),
}

impl Entry {
    /// The spec of the command or container.
    pub fn spec(&self) -> &'static Spec {
        match self {
            Entry::Command(id) => id.spec(),
            Entry::Container(c) => c.spec,
        }
    }
}

/// The containers: their own specs, and what each runs alone.
fn containers() -> [(&'static Spec, Option<CommandId>); 6] {
    [
        (client::CONTAINER, None),
        (cluster::CONTAINER, None),
        (command::CONTAINER, Some(CommandId::CommandAll)),
        (config::CONTAINER, None),
        (observe::SLOWLOG, None),
        (observe::LATENCY, None),
    ]
}

/// Every top-level name in table order, built once from [`CommandId::ALL`].
pub fn table() -> &'static [Entry] {
    static TABLE: OnceLock<Vec<Entry>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let containers = containers();
        let mut top: Vec<Entry> = Vec::new();
        for &id in CommandId::ALL {
            if containers.iter().any(|(_, bare)| *bare == Some(id)) {
                continue;
            }
            let name = id.spec().name;
            let Some((parent, _)) = name.split_once('|') else {
                top.push(Entry::Command(id));
                continue;
            };
            let existing = top.iter_mut().find_map(|e| match e {
                Entry::Container(c) if c.spec.name == parent => Some(c),
                _ => None,
            });
            match existing {
                Some(c) => c.subs.push(id),
                None => {
                    if let Some(&(spec, bare)) = containers.iter().find(|(s, _)| s.name == parent) {
                        top.push(Entry::Container(Container {
                            spec,
                            subs: vec![id],
                            bare,
                        }));
                    }
                }
            }
        }
        top
    })
}

/// Buckets of [`lookup`]'s index: 16 lengths × 32 first letters.
const LOOKUP_BUCKETS: usize = 512;

/// The bucket of a command name: its length (mod 16) and its first byte folded to
/// lower case (mod 32, which keeps the 26 letters apart).
fn bucket(name: &[u8]) -> usize {
    let first = name.first().map_or(0, u8::to_ascii_lowercase);
    ((name.len() & 15) << 5) | usize::from(first & 31)
}

/// A name of at most 16 bytes in lower case, as one number (zero-padded), for
/// comparing names in one step; `None` for longer names.
fn folded(name: &[u8]) -> Option<u128> {
    let mut bytes = [0u8; 16];
    bytes.get_mut(..name.len())?.copy_from_slice(name);
    let x = u128::from_le_bytes(bytes);
    // A byte is an upper-case letter when, without its high bit, it is at least
    // `A` and at most `Z`, and its high bit is clear (bit tricks byte by byte:
    // adding to 7-bit bytes never carries into the next one).
    const LOW7: u128 = 0x7f7f_7f7f_7f7f_7f7f_7f7f_7f7f_7f7f_7f7f;
    const ONES: u128 = 0x0101_0101_0101_0101_0101_0101_0101_0101;
    let low = x & LOW7;
    let at_least_a = low + ONES * u128::from(0x80 - b'A');
    let above_z = low + ONES * u128::from(0x80 - b'Z' - 1);
    let upper = at_least_a & !above_z & !x & (ONES * 0x80);
    Some(x | (upper >> 2))
}

/// The top-level entry called `name` (any case).
///
/// Every pipelined request is looked up: a walk of the whole table comparing with
/// `eq_ignore_ascii_case` was ~160 instructions per `EVT.ADD` (callgrind); the index
/// narrows it to the names of the same length and first letter, compared folded.
pub fn lookup(name: &[u8]) -> Option<&'static Entry> {
    type Bucket = Vec<(Option<u128>, &'static Entry)>;
    static INDEX: OnceLock<Vec<Bucket>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut index = vec![Vec::new(); LOOKUP_BUCKETS];
        for e in table() {
            let n = e.spec().name.as_bytes();
            if let Some(b) = index.get_mut(bucket(n)) {
                b.push((folded(n), e));
            }
        }
        index
    });
    let candidates = index.get(bucket(name))?;
    match folded(name) {
        Some(f) => candidates
            .iter()
            .find(|(n, e)| *n == Some(f) && e.spec().name.len() == name.len())
            .map(|&(_, e)| e),
        None => candidates
            .iter()
            .find(|(_, e)| e.spec().name.as_bytes().eq_ignore_ascii_case(name))
            .map(|&(_, e)| e),
    }
}

/// A command or `container|sub` subcommand by its full name, for `COMMAND INFO/DOCS`.
pub fn lookup_full(name: &[u8]) -> Option<Described> {
    if let Some(pos) = name.iter().position(|&b| b == b'|') {
        let (parent, sub) = (&name[..pos], &name[pos + 1..]);
        return match lookup(parent)? {
            Entry::Container(c) => c.sub(sub).map(Described::Command),
            Entry::Command(_) => None,
        };
    }
    lookup(name).map(Described::from)
}

/// What `COMMAND INFO`/`DOCS` describe: a command or a container with its subcommands.
#[derive(Debug, Clone, Copy)]
pub enum Described {
    Command(CommandId),
    Container(&'static Container),
}

impl From<&'static Entry> for Described {
    fn from(e: &'static Entry) -> Self {
        match e {
            Entry::Command(id) => Described::Command(*id),
            Entry::Container(c) => Described::Container(c),
        }
    }
}

impl Described {
    /// The spec.
    pub fn spec(self) -> &'static Spec {
        match self {
            Described::Command(id) => id.spec(),
            Described::Container(c) => c.spec,
        }
    }

    /// The subcommands (none for a plain command).
    pub fn subs(self) -> &'static [CommandId] {
        match self {
            Described::Command(_) => &[],
            Described::Container(c) => &c.subs,
        }
    }
}

/// A request refused before it ran; the command, when the name was known.
#[derive(Debug)]
pub struct Refused {
    pub id: Option<CommandId>,
    pub error: ReplyError,
}

impl Refused {
    fn new(id: Option<CommandId>, error: ReplyError) -> Self {
        Refused { id, error }
    }
}

/// Parses a request. `window` bounds `WINDOW <s>`.
pub fn parse<'a>(args: Args<'a>, window: u32) -> Result<Command<'a>, Refused> {
    parse_in(args, window, &mut LastName::default())
}

/// The name of the last command a connection named, exactly as sent, and its table
/// entry: the requests of a pipeline mostly name one command, whose lookup is then a
/// compare of two numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct LastName {
    /// The name's bytes, zero-padded (names of at most 16 bytes are kept).
    bytes: u128,
    len: usize,
    entry: Option<&'static Entry>,
}

impl LastName {
    /// The entry called `name`, remembered for the next request.
    fn lookup(&mut self, name: &[u8]) -> Option<&'static Entry> {
        let mut padded = [0u8; 16];
        let Some(head) = padded.get_mut(..name.len()) else {
            return lookup(name);
        };
        head.copy_from_slice(name);
        let bytes = u128::from_le_bytes(padded);
        if let Some(entry) = self.entry
            && self.len == name.len()
            && self.bytes == bytes
        {
            return Some(entry);
        }
        let entry = lookup(name)?;
        *self = LastName {
            bytes,
            len: name.len(),
            entry: Some(entry),
        };
        Some(entry)
    }
}

/// [`parse`], with the connection's last command name.
pub fn parse_in<'a>(
    args: Args<'a>,
    window: u32,
    last: &mut LastName,
) -> Result<Command<'a>, Refused> {
    let name = args.get(0).unwrap_or_default();
    let entry = last
        .lookup(name)
        .ok_or_else(|| Refused::new(None, unknown(args)))?;
    let (id, skip) = resolve_entry(args, entry)?;
    let mut c = Cursor::new(args, skip, window);
    let refused = |e| Refused::new(Some(id), e);
    let cmd = id.parse(&mut c).map_err(refused)?;
    c.finish().map_err(refused)?;
    Ok(cmd)
}

/// Which command `args` names, after the arity checks, and how many arguments
/// name it (1, or 2 for a subcommand).
pub fn resolve(args: Args<'_>) -> Result<(CommandId, usize), Refused> {
    let name = args.get(0).unwrap_or_default();
    let entry = lookup(name).ok_or_else(|| Refused::new(None, unknown(args)))?;
    resolve_entry(args, entry)
}

/// [`resolve`] once the name's entry is known.
fn resolve_entry(args: Args<'_>, entry: &'static Entry) -> Result<(CommandId, usize), Refused> {
    let (id, skip) = match entry {
        Entry::Command(id) => (*id, 1),
        Entry::Container(c) => {
            if !c.spec.arity_ok(args.len()) {
                return Err(Refused::new(None, ReplyError::arity(c.spec.name)));
            }
            match args.get(1) {
                None => match c.bare {
                    Some(id) => (id, 1),
                    None => return Err(Refused::new(None, ReplyError::arity(c.spec.name))),
                },
                Some(sub) => match c.sub(sub) {
                    Some(id) => (id, 2),
                    None => {
                        return Err(Refused::new(
                            None,
                            ReplyError::err(format!(
                                "unknown subcommand '{}'. Try {} HELP.",
                                quote(sub, 128),
                                c.spec.name.to_ascii_uppercase()
                            )),
                        ));
                    }
                },
            }
        }
    };
    // Redis counts the container's name in a subcommand's arity (`config|get` is -3).
    let spec = id.spec();
    if !spec.arity_ok(args.len()) {
        return Err(Refused::new(Some(id), ReplyError::arity(spec.name)));
    }
    Ok((id, skip))
}

/// Redis's unknown-command error: the name, then the first arguments, each quoted and
/// followed by a space, while the list is under 128 bytes.
fn unknown(args: Args<'_>) -> ReplyError {
    let name = quote(args.get(0).unwrap_or_default(), 128);
    let mut list = String::new();
    for arg in args.iter().skip(1) {
        if list.len() >= 128 {
            break;
        }
        let room = 128 - list.len();
        list.push('\'');
        list.push_str(&quote(arg, room));
        list.push_str("' ");
    }
    ReplyError::err(format!(
        "unknown command '{name}', with args beginning with: {list}"
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn folded_names_are_the_lower_case_bytes() {
        for name in [
            &b"EVT.ADD"[..],
            b"evt.add",
            b"Ping",
            b"@[`{Zz",
            b"\x80\xc1\xdaZ",
            b"",
            b"0123456789abcdef",
        ] {
            let mut want = [0u8; 16];
            for (w, b) in want.iter_mut().zip(name) {
                *w = b.to_ascii_lowercase();
            }
            assert_eq!(
                super::folded(name),
                Some(u128::from_le_bytes(want)),
                "{name:?}"
            );
        }
        for b in 0..=255u8 {
            let name = [b'x', b, b'y'];
            let mut want = [0u8; 16];
            for (w, c) in want.iter_mut().zip(&name) {
                *w = c.to_ascii_lowercase();
            }
            assert_eq!(super::folded(&name), Some(u128::from_le_bytes(want)), "{b}");
        }
        assert_eq!(super::folded(b"0123456789abcdefg"), None);
    }

    use super::*;

    #[test]
    fn names_are_unique_lowercase_and_found() {
        let mut names: Vec<&str> = CommandId::ALL.iter().map(|id| id.spec().name).collect();
        for entry in table() {
            let spec = entry.spec();
            assert_eq!(spec.name, spec.name.to_ascii_lowercase());
            let found = lookup(spec.name.to_uppercase().as_bytes()).map(Entry::spec);
            assert!(found.is_some_and(|s| std::ptr::eq(s, spec)));
            if let Entry::Container(c) = entry {
                assert!(!c.subs.is_empty());
                for &sub in &c.subs {
                    let (parent, child) = sub.spec().name.split_once('|').unwrap();
                    assert_eq!(parent, spec.name);
                    assert_eq!(c.sub(child.to_uppercase().as_bytes()), Some(sub));
                }
            }
        }
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn every_subcommand_has_its_container() {
        for &id in CommandId::ALL {
            let name = id.spec().name;
            if let Some((parent, _)) = name.split_once('|') {
                assert!(
                    matches!(lookup(parent.as_bytes()), Some(Entry::Container(_))),
                    "{name} has no container"
                );
            }
        }
    }
}
