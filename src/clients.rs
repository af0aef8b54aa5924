//! The list of connected clients, for `CLIENT LIST` / `CLIENT INFO` and
//! `connected_clients`: what each connection shows of itself to others.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use atomic_waker::AtomicWaker;
use slab::Slab;
use tokio::sync::Notify;

/// `ClientInfo::last_cmd` before the first command.
pub const NO_COMMAND: usize = usize::MAX;

/// What `CLIENT LIST` shows of a connection; written by the connection, read by others.
#[derive(Debug)]
pub struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    pub created: Instant,
    /// Milliseconds since the server started, at the last command.
    pub last_active_ms: AtomicU64,
    pub resp: AtomicU32,
    /// The last command's id as `usize` ([`NO_COMMAND`]: none yet).
    pub last_cmd: AtomicUsize,
    pub names: Mutex<ClientNames>,
    /// Whether the client has logged in (or connected while no password was set).
    pub authenticated: AtomicBool,
    /// Set when someone else closes this connection (eviction, `CLIENT KILL`).
    killed: AtomicBool,
    /// Called when the connection is killed or the server begins to shut down; the
    /// connection then reads which. A flag and the waiting task's waker: a `Notify`
    /// (and before it a `watch` of the shutdown as well) took its lock to register
    /// the waiter, at every poll and again to remove it, at every wait; this takes a
    /// few atomics. Callgrind, unpipelined `EVT.ADD`: 9,071 -> 7,269 instructions a
    /// request.
    called: AtomicBool,
    waiter: AtomicWaker,
}

/// Completes when the connection's attention has been called since the last time
/// this completed; see [`ClientInfo::attention`].
pub struct Attention<'a>(&'a ClientInfo);

impl Future for Attention<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let info = self.0;
        if info.called.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        info.waiter.register(cx.waker());
        // A call between the check and the registration found no waker to wake.
        if info.called.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// The client-set strings of a connection.
#[derive(Debug, Default, Clone)]
pub struct ClientNames {
    pub name: String,
    pub lib_name: String,
    pub lib_ver: String,
}

impl ClientInfo {
    /// The names, copied out.
    pub fn names(&self) -> ClientNames {
        self.names
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Changes the names.
    pub fn update(&self, f: impl FnOnce(&mut ClientNames)) {
        f(&mut self.names.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// Asks the connection to close (it does at its next wake-up, which this causes).
    pub fn kill(&self) {
        self.killed.store(true, Ordering::Relaxed);
        self.call();
    }

    /// Wakes the connection to look at the server's state (shutdown has begun).
    pub fn wake(&self) {
        self.call();
    }

    fn call(&self) {
        self.called.store(true, Ordering::Release);
        self.waiter.wake();
    }

    /// Whether the connection was asked to close.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Completes when the connection is killed or woken ([`ClientInfo::wake`]); a
    /// wake-up that came before the wait is not lost (it completes the next wait).
    /// One task waits: the connection's.
    pub fn attention(&self) -> Attention<'_> {
        Attention(self)
    }
}

/// Connected clients.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    /// Connected clients that have not logged in.
    unauthenticated: AtomicUsize,
    /// Bytes of read and write buffers held by all connections.
    buffers: AtomicUsize,
    /// The share of `buffers` held by connections that have not logged in.
    login_buffers: AtomicUsize,
    // A plain mutex: taken on connect, disconnect and CLIENT LIST only.
    list: Mutex<Slab<Arc<ClientInfo>>>,
}

impl Clients {
    /// Registers a new connection, active as of `now_ms` (server uptime), logged in
    /// from the start or not; the returned key unregisters it.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        now_ms: u64,
        authenticated: bool,
    ) -> (usize, Arc<ClientInfo>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active_ms: AtomicU64::new(now_ms),
            resp: AtomicU32::new(2),
            last_cmd: AtomicUsize::new(NO_COMMAND),
            names: Mutex::new(ClientNames::default()),
            authenticated: AtomicBool::new(authenticated),
            killed: AtomicBool::new(false),
            called: AtomicBool::new(false),
            waiter: AtomicWaker::new(),
        });
        if !authenticated {
            self.unauthenticated.fetch_add(1, Ordering::Relaxed);
        }
        let key = self
            .list
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(info.clone());
        (key, info)
    }

    /// Forgets a connection.
    pub fn unregister(&self, key: usize) {
        let mut list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        if list.contains(key) {
            let info = list.remove(key);
            self.set_authenticated(&info, true);
        }
    }

    /// Records that `info`'s client logged in (or, after `RESET`, is out again).
    pub fn set_authenticated(&self, info: &ClientInfo, authenticated: bool) {
        if info.authenticated.swap(authenticated, Ordering::Relaxed) != authenticated {
            if authenticated {
                self.unauthenticated.fetch_sub(1, Ordering::Relaxed);
            } else {
                self.unauthenticated.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Connected clients that have not logged in.
    pub fn unauthenticated(&self) -> usize {
        self.unauthenticated.load(Ordering::Relaxed)
    }

    /// Records that a connection's buffers went from `before` to `after` bytes;
    /// returns the bytes held by connections that have not logged in, when this one
    /// has not.
    pub fn account_buffers(&self, before: usize, after: usize, logged_in: bool) -> usize {
        let counters = [
            Some(&self.buffers),
            (!logged_in).then_some(&self.login_buffers),
        ];
        let mut login_total = 0;
        for c in counters.into_iter().flatten() {
            login_total = if after >= before {
                c.fetch_add(after - before, Ordering::Relaxed) + (after - before)
            } else {
                c.fetch_sub(before - after, Ordering::Relaxed)
                    .saturating_sub(before - after)
            };
        }
        if logged_in { 0 } else { login_total }
    }

    /// Moves a connection's buffers out of (or back into) the share of connections
    /// that have not logged in.
    pub fn move_login_buffers(&self, bytes: usize, logged_in: bool) {
        if logged_in {
            self.login_buffers.fetch_sub(bytes, Ordering::Relaxed);
        } else {
            self.login_buffers.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Bytes of read and write buffers held by all connections.
    pub fn buffer_bytes(&self) -> usize {
        self.buffers.load(Ordering::Relaxed)
    }

    /// Closes the longest-connected clients that have not logged in, so that at most
    /// `keep` remain; returns how many were closed.
    pub fn evict_unauthenticated(&self, keep: usize) -> usize {
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let mut waiting: Vec<&Arc<ClientInfo>> = list
            .iter()
            .map(|(_, c)| c)
            .filter(|c| !c.authenticated.load(Ordering::Relaxed) && !c.is_killed())
            .collect();
        if waiting.len() <= keep {
            return 0;
        }
        waiting.sort_by_key(|c| c.id);
        let excess = waiting.len() - keep;
        for c in waiting.iter().take(excess) {
            c.kill();
        }
        excess
    }

    /// A snapshot of every connection, by id.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = list.iter().map(|(_, c)| c.clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }
}

/// `CLIENT PAUSE`: until when commands wait, and which.
#[derive(Debug, Default)]
pub struct Pause {
    /// Whether a pause may be on (checked on every request: an atomic, not the lock).
    on: AtomicBool,
    state: Mutex<Option<(Instant, PauseMode)>>,
    /// Wakes paused connections when the pause ends early (`CLIENT UNPAUSE`).
    ended: Notify,
}

/// What `CLIENT PAUSE` holds back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseMode {
    /// Every command.
    All,
    /// Commands that change the window.
    Write,
}

impl Pause {
    /// Holds back commands (per `mode`) until `until`. A longer or wider pause wins
    /// over the one in force, as in Redis.
    pub fn pause(&self, until: Instant, mode: PauseMode) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let merged = match *state {
            Some((t, m)) if t > Instant::now() => {
                let mode = if m == PauseMode::All { m } else { mode };
                (t.max(until), mode)
            }
            _ => (until, mode),
        };
        *state = Some(merged);
        self.on.store(true, Ordering::Relaxed);
    }

    /// Ends the pause now.
    pub fn unpause(&self) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.on.store(false, Ordering::Relaxed);
        self.ended.notify_waiters();
    }

    /// Whether a pause may be in force (one relaxed load: checked per request).
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Relaxed)
    }

    /// Until when a command that writes (`write`) or not must wait, if it must.
    pub fn holds(&self, write: bool) -> Option<Instant> {
        if !self.is_on() {
            return None;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match *state {
            Some((until, _)) if until <= Instant::now() => {
                *state = None;
                self.on.store(false, Ordering::Relaxed);
                None
            }
            Some((until, PauseMode::All)) => Some(until),
            Some((until, PauseMode::Write)) if write => Some(until),
            _ => None,
        }
    }

    /// Completes when `CLIENT UNPAUSE` ends a pause.
    pub async fn ended(&self) {
        self.ended.notified().await;
    }
}
