//! The list of connected clients, for `CLIENT LIST` / `CLIENT INFO` and
//! `connected_clients`: what each connection shows of itself to others.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use slab::Slab;

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
}

/// Connected clients.
#[derive(Debug, Default)]
pub struct Clients {
    next_id: AtomicU64,
    // A plain mutex: taken on connect, disconnect and CLIENT LIST only.
    list: Mutex<Slab<Arc<ClientInfo>>>,
}

impl Clients {
    /// Registers a new connection, active as of `now_ms` (server uptime); the returned
    /// key unregisters it.
    pub fn register(
        &self,
        addr: SocketAddr,
        laddr: SocketAddr,
        now_ms: u64,
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
        });
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
            list.remove(key);
        }
    }

    /// A snapshot of every connection, by id.
    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        let list = self.list.lock().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = list.iter().map(|(_, c)| c.clone()).collect();
        v.sort_by_key(|c| c.id);
        v
    }
}
