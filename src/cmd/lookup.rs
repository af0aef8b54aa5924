//! From a request's first words to a [`CommandId`]: the table of names derived from
//! the [`commands!`](super) list (containers with their subcommands), the lookup by
//! name (any case, through a bucket index), and Redis's refusals for unknown
//! commands, subcommands and wrong arities.

use std::sync::OnceLock;

use super::{Command, CommandId, Cursor, Spec, client, cluster, command, config, observe};
use crate::error::{ReplyError, quote};
use crate::protocol::Args;

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
    #[inline]
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
    #[inline]
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
#[inline]
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
#[inline]
fn bucket(name: &[u8]) -> usize {
    let first = name.first().map_or(0, u8::to_ascii_lowercase);
    ((name.len() & 15) << 5) | usize::from(first & 31)
}

/// A name of at most 16 bytes in lower case, as one number (zero-padded), for
/// comparing names in one step; `None` for longer names.
#[inline]
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
#[inline]
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
#[inline]
pub fn parse<'a>(args: Args<'a>, window: u32) -> Result<Command<'a>, Refused> {
    parse_in(args, window, &mut LastName::default())
}

/// The name of the last command a connection named, exactly as sent, and its table
/// entry: the requests of a pipeline mostly name one command, whose lookup is then a
/// compare of two numbers.
#[derive(Debug, Default, Clone, Copy)]
pub struct LastName {
    /// The name's [`word`] (names of at most 16 bytes are kept).
    bytes: u128,
    len: usize,
    entry: Option<&'static Entry>,
}

impl LastName {
    /// Whether `name` is, byte for byte, the name the connection named last.
    #[inline]
    pub fn is(&self, name: &[u8]) -> bool {
        self.entry.is_some() && self.len == name.len() && word(name) == Some(self.bytes)
    }

    /// The entry called `name`, remembered for the next request.
    #[inline]
    fn lookup(&mut self, name: &[u8]) -> Option<&'static Entry> {
        if self.is(name) {
            return self.entry;
        }
        let entry = lookup(name)?;
        if let Some(bytes) = word(name) {
            *self = LastName {
                bytes,
                len: name.len(),
                entry: Some(entry),
            };
        }
        Some(entry)
    }
}

/// A name of at most 16 bytes as one number that, with its length, tells it apart
/// from any other: its first and its last 8 (or 4) bytes, overlapping when shorter.
/// Copying the name into a zeroed array instead called `memcpy` for every request.
#[inline]
fn word(name: &[u8]) -> Option<u128> {
    let n = name.len();
    let (lo, hi) = match n {
        8..=16 => (
            u64::from_le_bytes(name.get(..8)?.try_into().ok()?),
            u64::from_le_bytes(name.get(n - 8..)?.try_into().ok()?),
        ),
        4..=7 => (
            u64::from(u32::from_le_bytes(name.get(..4)?.try_into().ok()?)),
            u64::from(u32::from_le_bytes(name.get(n - 4..)?.try_into().ok()?)),
        ),
        0..=3 => (name.iter().fold(0, |w, &b| (w << 8) | u64::from(b)), 0),
        _ => return None,
    };
    Some(u128::from(lo) | (u128::from(hi) << 64))
}

/// [`parse`], with the connection's last command name.
#[inline]
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
#[inline]
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

    /// Two names of one length have one word only when they are the same bytes, and
    /// a connection's last name matches exactly its own bytes (any case differs).
    #[test]
    fn words_tell_names_of_one_length_apart() {
        for len in 0..=16usize {
            let base: Vec<u8> = (0..len as u8).map(|i| b'a' + i).collect();
            assert!(word(&base).is_some(), "{len}");
            for at in 0..len {
                for b in [0u8, b'A', 0x80, 0xff] {
                    let mut other = base.clone();
                    other[at] = b;
                    assert_ne!(word(&other), word(&base), "len {len}, byte {at} = {b}");
                }
            }
        }
        assert_eq!(word(&[b'x'; 17]), None);
        let mut last = LastName::default();
        assert!(!last.is(b"EVT.ADD"));
        assert!(last.lookup(b"EVT.ADD").is_some());
        assert!(last.is(b"EVT.ADD"));
        assert!(!last.is(b"evt.add") && !last.is(b"EVT.AD") && !last.is(b"EVT.ADDX"));
        assert!(last.lookup(b"nosuch").is_none());
        assert!(last.is(b"EVT.ADD"), "an unknown name leaves the last one");
    }

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
