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
mod client_state;
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
mod lookup;
mod observe;
mod reads;
mod server;
mod session;
pub mod spec;
mod timing;
mod tx;

pub use cursor::{Cursor, parse_int};
pub use evt_top::{DEFAULT_TOP_COUNT, MAX_TOP_COUNT};
pub use lookup::{Described, LastName, lookup, lookup_full, parse, parse_in, resolve, table};
pub use session::{Flow, Session};
pub use spec::Spec;

use crate::clients::ClientInfo;
use crate::error::ReplyError;
use crate::ingest::Submitted;
use crate::persist::log::Ticket;
use crate::protocol::Reply;
use crate::shared::Shared;
use client_state::ClientState;

/// A user or type id argument: ids come from JSON strings, which are UTF-8, so any
/// other bytes name nobody.
fn id_arg(arg: &[u8]) -> Option<&str> {
    crate::event::text_of(arg)
}

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

    /// A point query that may wait in the pipeline's run of queries and be answered
    /// together with its neighbours (`EVT.USER`, `EVT.SUM`; see `reads.rs`).
    fn batched_read(&self) -> Option<reads::PointRead<'a>> {
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

            #[inline]
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

            /// See [`Cmd::batched_read`].
            pub fn batched_read(&self) -> Option<reads::PointRead<$lt>> {
                match self {
                    $(Command::$id(c) => c.batched_read(),)*
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
