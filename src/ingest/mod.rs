//! Events in: a run of pipelined `EVT.ADD`s (or the events of one `EVT.MADD`)
//! admitted as one batch.
//!
//! Admission reads the clock once for the batch, parses each event in place (its
//! JSON is a slice of the connection's read buffer), refuses what is late, too far
//! ahead or invalid, and hands the rest to the store, which takes each shard's lock
//! once for the batch. Each event gets its own reply, in order.
//!
//! In cluster mode an event must be for a user this node serves: a keyed
//! `EVT.ADD <user_id> <json>` was routed by the dispatcher already; an unkeyed one is
//! routed here by its JSON's `user_id`, and one for another node's user is answered
//! `-MOVED` without being counted. `EVT.MADD` is all-or-nothing: one foreign user
//! refuses the whole command before anything is applied.
//!
//! With the window log on ([`crate::persist::log`]), the accepted events are logged
//! too; with `appendfsync always` they are counted only once durable, and
//! [`admit`] hands back a [`Pending`] whose replies wait for the log's ticket.

use std::cell::Cell;

use crate::clients::ClientInfo;
use crate::config::Settings;
use crate::error::ReplyError;
use crate::event::{self, Event};
use crate::persist::log::{Appended, LogEvent, Outcome, Ticket};
use crate::protocol::Reply;
use crate::scratch;
use crate::shared::Shared;
use crate::store::{AddError, Ingest};

mod refusal;

use refusal::{Admission, Tally};
pub use refusal::{MAX_EVENT_REPLY, Rejection};

thread_local! {
    /// A batch's events, as [`Batch::flush`] finds them in the read buffer.
    static SUBMITTED: Cell<Vec<Submitted<'static>>> = const { Cell::new(Vec::new()) };
    /// The events admission parsed and accepted, with their `now`.
    static PARSED: Cell<Vec<(Event<'static>, i64)>> = const { Cell::new(Vec::new()) };
    /// What admission made of each event.
    static OUTCOMES: Cell<Vec<Result<(), Rejection>>> = const { Cell::new(Vec::new()) };
    /// The accepted events as the store takes them.
    static INGESTS: Cell<Vec<Ingest<'static>>> = const { Cell::new(Vec::new()) };
    /// What the store made of each.
    static STORED: Cell<Vec<Result<(), AddError>>> = const { Cell::new(Vec::new()) };
}

/// One event as a client sent it: its JSON, and the user id given before it
/// (`EVT.ADD <user_id> <json>`), if any.
#[derive(Debug, Clone, Copy)]
pub struct Submitted<'a> {
    pub key: Option<&'a [u8]>,
    pub json: &'a [u8],
}

impl<'a> Submitted<'a> {
    /// An event given as its JSON alone.
    pub fn json(json: &'a [u8]) -> Self {
        Submitted { key: None, json }
    }
}

/// Where an event's bytes are in the connection's read buffer.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    json: (usize, usize),
    key: Option<(usize, usize)>,
}

/// Pipelined events waiting to be admitted together: byte ranges of their JSON (and
/// key) in the connection's read buffer.
#[derive(Debug, Default)]
pub struct Batch {
    waiting: Vec<Waiting>,
}

/// The range of `part`, a slice of `buf`.
pub(crate) fn range_in(buf: &[u8], part: &[u8]) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
    (start <= buf.len() && part.len() <= buf.len() - start).then_some((start, start + part.len()))
}

/// [`range_in`] of an optional part: `None` when it is given but not in `buf`.
pub(crate) fn maybe_range_in(buf: &[u8], part: Option<&[u8]>) -> Option<Option<(usize, usize)>> {
    match part {
        Some(p) => range_in(buf, p).map(Some),
        None => Some(None),
    }
}

impl Batch {
    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Adds `event`, whose slices are slices of `buf`.
    pub fn push(&mut self, buf: &[u8], event: Submitted<'_>) {
        if let (Some(key), Some(json)) = (maybe_range_in(buf, event.key), range_in(buf, event.json))
        {
            self.waiting.push(Waiting { json, key });
        }
    }

    /// Admits the waiting events (their bytes still in `buf`), one reply each — or,
    /// with `appendfsync always`, the replies to build once the events are durable.
    pub fn flush(
        &mut self,
        shared: &Shared,
        buf: &[u8],
        peer: &ClientInfo,
        replies: &mut Vec<Reply>,
    ) -> Option<Pending> {
        let mut events: Vec<Submitted<'_>> = scratch::take(&SUBMITTED);
        // Sized up front: collected from a `filter_map`, it grew 4, 8, 16, 32, 64.
        events.reserve(self.waiting.len());
        events.extend(self.waiting.iter().filter_map(|w| {
            Some(Submitted {
                json: buf.get(w.json.0..w.json.1)?,
                key: match w.key {
                    Some((s, e)) => Some(buf.get(s..e)?),
                    None => None,
                },
            })
        }));
        let pending = admit(shared, &events, peer, None, replies);
        scratch::give(&SUBMITTED, events);
        self.waiting.clear();
        pending
    }
}

/// Events admitted with `appendfsync always`: counted by the log thread once
/// durable; their replies are built when the ticket is fulfilled.
#[derive(Debug)]
pub struct Pending {
    /// Each event's admission; `Ok` went to the log.
    outcome: Vec<Result<(), Rejection>>,
    /// The timestamps of those that went to the log (for a late event's reply).
    timestamps: Vec<u32>,
    /// Each event's JSON length (for the log line of a refusal).
    lens: Vec<usize>,
    window: u32,
    /// Already counted (the log's lane was full): what the store made of them.
    stored: Option<Vec<Result<(), Rejection>>>,
    ticket: Ticket,
}

impl Pending {
    /// What the replies wait for.
    pub fn ticket(&self) -> &Ticket {
        &self.ticket
    }

    /// The replies, once the ticket is fulfilled: one per event, in order.
    pub fn finish(mut self, shared: &Shared, peer: &ClientInfo, replies: &mut Vec<Reply>) {
        let outcome = self.ticket.outcome();
        let stored: Vec<Result<(), Rejection>> = match (self.stored, outcome) {
            (Some(stored), _) => stored,
            (None, outcome) => Self::durable(outcome, &self.timestamps, self.window, shared),
        };
        respond(
            shared,
            peer,
            self.lens.into_iter(),
            &mut self.outcome,
            stored.into_iter(),
            self.window,
            replies,
        );
    }

    /// What the log thread made of events counted once durable.
    fn durable(
        outcome: Outcome,
        timestamps: &[u32],
        window: u32,
        shared: &Shared,
    ) -> Vec<Result<(), Rejection>> {
        match outcome {
            Ok(late) => {
                let mut v: Vec<Result<(), Rejection>> = vec![Ok(()); timestamps.len()];
                for i in late {
                    let i = i as usize;
                    if let (Some(slot), Some(&ts)) = (v.get_mut(i), timestamps.get(i)) {
                        *slot = Err(Rejection::late(shared, ts.into(), window));
                    }
                }
                v
            }
            Err(why) => timestamps
                .iter()
                .map(|_| Err(Rejection::Misconf(why.clone())))
                .collect(),
        }
    }
}

/// The event as the log takes it.
fn log_event<'e>(ev: &'e Event<'_>, now: i64) -> LogEvent<'e> {
    LogEvent {
        user: &ev.user_id,
        event_type: &ev.event_type,
        second: second_of(ev, now),
        value: ev.value,
        now,
    }
}

/// An event's second as the store keeps it: at most `now`.
fn second_of(ev: &Event<'_>, now: i64) -> u32 {
    ev.timestamp.min(u32::try_from(now).unwrap_or(u32::MAX))
}

/// Admits a batch of events, appending one reply per event to `replies` — or, with
/// `appendfsync always`, handing back the replies to build once the events are
/// durable. `now` is the instant of a transaction, or `None` to read the clock.
pub fn admit(
    shared: &Shared,
    events: &[Submitted<'_>],
    peer: &ClientInfo,
    now: Option<i64>,
    replies: &mut Vec<Reply>,
) -> Option<Pending> {
    // Not all-or-nothing: never refused whole.
    admit_events(shared, events, peer, now, false, replies).unwrap_or(None)
}

/// [`admit`] for `EVT.MADD`: in cluster mode, when any event is for a user another
/// node serves, nothing is applied and the error names the first such user and its
/// node.
pub fn admit_all(
    shared: &Shared,
    events: &[Submitted<'_>],
    peer: &ClientInfo,
    now: Option<i64>,
    replies: &mut Vec<Reply>,
) -> Result<Option<Pending>, ReplyError> {
    admit_events(shared, events, peer, now, true, replies)
}

/// `Err` (with `whole`) or [`Rejection::Moved`] when another node serves `ev`'s user;
/// an event given with its key was routed by the dispatcher already.
fn route(
    shared: &Shared,
    sub: &Submitted<'_>,
    ev: &Event<'_>,
    whole: bool,
) -> Result<(), Rejection> {
    let Some(cluster) = shared.cluster.as_deref() else {
        return Ok(());
    };
    if sub.key.is_some() {
        return Ok(());
    }
    match cluster.foreign(ev.user_id.as_bytes()) {
        None => Ok(()),
        Some((slot, owner)) if whole => {
            let node = &cluster.nodes()[owner];
            Err(Rejection::Moved(ReplyError::err(format!(
                "EVT.MADD applied nothing: user '{}' (slot {slot}) lives on node '{}' at {}; \
                 send each user's events to its node (keyed EVT.ADD in a cluster pipeline)",
                crate::error::quote(ev.user_id.as_bytes(), 128),
                node.name,
                node.endpoint()
            ))))
        }
        Some((slot, owner)) => Err(Rejection::Moved(cluster.moved(slot, owner))),
    }
}

fn admit_events(
    shared: &Shared,
    events: &[Submitted<'_>],
    peer: &ClientInfo,
    now: Option<i64>,
    whole: bool,
    replies: &mut Vec<Reply>,
) -> Result<Option<Pending>, ReplyError> {
    let max_id = Settings::size(&shared.settings.max_id_len);
    let grow = memory_available(shared);
    let admission = Admission::new(shared, now);
    let mut parsed: Vec<(Event<'_>, i64)> = scratch::take(&PARSED);
    parsed.reserve(events.len());
    let mut outcome: Vec<Result<(), Rejection>> = scratch::take(&OUTCOMES);
    outcome.reserve(events.len());
    // Matched step by step rather than chained through `Result` combinators, which
    // moved each event (and its error type) from one `Result` to the next: ~70
    // instructions an event (callgrind).
    for sub in events {
        let parsed_event = match sub.key {
            None => event::parse_event(sub.json, max_id),
            Some(user) => event::parse_keyed(sub.json, max_id, user),
        };
        let ev = match parsed_event {
            Ok(ev) => ev,
            Err(e) => {
                outcome.push(Err(Rejection::Invalid(e)));
                continue;
            }
        };
        match route(shared, sub, &ev, whole) {
            Ok(()) => {}
            Err(Rejection::Moved(e)) if whole => {
                // Nothing was applied yet: the store is only touched below. (The
                // event clock, which admission moves, cannot run in a cluster.)
                scratch::give(&PARSED, parsed);
                scratch::give(&OUTCOMES, outcome);
                return Err(e);
            }
            Err(r) => {
                outcome.push(Err(r));
                continue;
            }
        }
        match admission.check(shared, &ev) {
            Ok(now) => {
                parsed.push((ev, now));
                outcome.push(Ok(()));
            }
            Err(r) => outcome.push(Err(r)),
        }
    }
    let appended = if parsed.is_empty() {
        Appended::Stored(Vec::new())
    } else {
        let events = parsed.iter().map(|(ev, now)| log_event(ev, *now));
        shared
            .log
            .append(grow, events, || store(shared, &parsed, grow))
    };
    if shared.watches.active() {
        let touched: Vec<bool> = match &appended {
            Appended::Stored(r) | Appended::Held(r, _) => r.iter().map(Result::is_ok).collect(),
            Appended::Pending(_) => vec![true; parsed.len()],
            Appended::Failing(_) | Appended::NoMemory => Vec::new(),
        };
        for ((ev, _), _) in parsed.iter().zip(touched).filter(|(_, t)| *t) {
            shared.watches.touch(ev.user_id.as_bytes());
        }
    }
    let lens = events.iter().map(|e| e.json.len());
    let window = admission.window;
    let rejection = |r: &Result<(), AddError>, ev: &Event<'_>| match r {
        Ok(()) => Ok(()),
        Err(AddError::NoMemory) => Err(Rejection::NoMemory),
        // The store's clock had moved past the event's second (another connection
        // read a later `now` first).
        Err(AddError::Late) => Err(Rejection::late(shared, ev.timestamp.into(), window)),
    };
    match appended {
        Appended::Stored(results) => {
            let stored = results
                .iter()
                .zip(&parsed)
                .map(|(r, (ev, _))| rejection(r, ev));
            respond(shared, peer, lens, &mut outcome, stored, window, replies);
            scratch::give(&STORED, results);
        }
        Appended::Pending(ticket) => {
            return Ok(Some(Pending {
                timestamps: parsed.iter().map(|(ev, _)| ev.timestamp).collect(),
                outcome,
                lens: lens.collect(),
                window,
                stored: None,
                ticket,
            }));
        }
        Appended::Held(results, ticket) => {
            let stored = results
                .iter()
                .zip(&parsed)
                .map(|(r, (ev, _))| rejection(r, ev));
            return Ok(Some(Pending {
                timestamps: Vec::new(),
                stored: Some(stored.collect()),
                outcome,
                lens: lens.collect(),
                window,
                ticket,
            }));
        }
        Appended::Failing(why) => {
            let all = std::iter::repeat_with(|| Err(Rejection::Misconf(why.clone())));
            respond(shared, peer, lens, &mut outcome, all, window, replies);
        }
        Appended::NoMemory => {
            let all = std::iter::repeat_with(|| Err(Rejection::NoMemory));
            respond(shared, peer, lens, &mut outcome, all, window, replies);
        }
    }
    scratch::give(&PARSED, parsed);
    scratch::give(&OUTCOMES, outcome);
    Ok(None)
}

/// One reply per event: its admission, then (for the admitted ones, in order) what
/// the store or the log made of it.
fn respond(
    shared: &Shared,
    peer: &ClientInfo,
    lens: impl Iterator<Item = usize>,
    outcome: &mut Vec<Result<(), Rejection>>,
    mut stored: impl Iterator<Item = Result<(), Rejection>>,
    window: u32,
    replies: &mut Vec<Reply>,
) {
    let mut tally = Tally::default();
    for (o, bytes) in outcome.drain(..).zip(lens) {
        let o = o.and_then(|()| {
            stored
                .next()
                .unwrap_or_else(|| Err(Rejection::late(shared, 0, window)))
        });
        replies.push(tally.reply(shared, peer, bytes, o));
    }
    tally.record(shared);
}

/// Hands the admitted events to the store; one result each.
fn store(shared: &Shared, parsed: &[(Event<'_>, i64)], grow: bool) -> Vec<Result<(), AddError>> {
    let store = &shared.store;
    let mut ingests: Vec<Ingest<'_>> = scratch::take(&INGESTS);
    ingests.extend(parsed.iter().map(|(ev, now)| Ingest {
        user: &ev.user_id,
        event_type: &ev.event_type,
        second: second_of(ev, *now),
        value: ev.value,
        now: *now,
        count: 1,
    }));
    let mut results = scratch::take(&STORED);
    results.resize(ingests.len(), Ok(()));
    store.add_batch(&ingests, grow, &mut results);
    scratch::give(&INGESTS, ingests);
    results
}

/// Whether events may create new records: below `--maxmemory`, or no limit set.
/// Connections' buffers are not counted (the request being admitted is in one), and
/// the caller asks before the batch allocates its own scratch space, so a large
/// batch is never refused for the memory it occupies only while it runs.
fn memory_available(shared: &Shared) -> bool {
    let limit = Settings::get(&shared.settings.maxmemory);
    let buffers = shared.clients.buffer_bytes() as u64;
    limit == 0 || crate::alloc::used_memory().saturating_sub(buffers) <= limit
}
