//! A connection's own state (protocol version, login, transaction, watches, reply
//! mode, monitor) and the brake on failed logins.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::client_control::ReplyMode;
use super::tx::Transaction;
use crate::clients::ClientInfo;
use crate::observe::MonitorFeed;
use crate::protocol::Resp;
use crate::watch::Watching;

/// A connection's own state: protocol version, name, login.
#[derive(Debug)]
pub struct ClientState {
    pub info: Arc<ClientInfo>,
    pub resp: Resp,
    /// Whether the client logged in: true from the start when no password is set,
    /// else after a successful AUTH or HELLO ... AUTH. While no password is set,
    /// every client may run commands whatever this says.
    pub authenticated: bool,
    /// Failed AUTH / HELLO ... AUTH attempts on this connection.
    pub auth_failures: u32,
    /// The open transaction, between `MULTI` and `EXEC`/`DISCARD`.
    pub multi: Option<Transaction>,
    /// The users this connection `WATCH`es.
    pub watching: Watching,
    /// `CLIENT REPLY`.
    pub reply_mode: ReplyMode,
    /// Set once the connection is in `MONITOR` mode: the lines to stream.
    pub monitor: Option<MonitorFeed>,
}

/// The first failed login delays the connection's next command this long; each
/// further failure doubles it, up to [`AUTH_DELAY_MAX`].
pub const AUTH_DELAY_FIRST: Duration = Duration::from_millis(10);
/// The longest delay after a failed login.
pub const AUTH_DELAY_MAX: Duration = Duration::from_secs(1);
/// Failed logins after which the connection is closed: a password guesser gets this
/// many tries per connection, spread over several seconds, instead of millions per
/// second; a person who mistypes once waits 10 ms.
pub const MAX_AUTH_FAILURES: u32 = 10;

/// How long to hold a connection after its `failures`-th failed login.
pub fn auth_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    AUTH_DELAY_FIRST
        .saturating_mul(1 << doublings)
        .min(AUTH_DELAY_MAX)
}

impl ClientState {
    /// Switches the protocol version (HELLO, RESET).
    pub fn set_resp(&mut self, resp: Resp) {
        self.resp = resp;
        let v = if resp == Resp::V3 { 3 } else { 2 };
        self.info.resp.store(v, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_delays_double_up_to_the_cap() {
        assert_eq!(auth_delay(1), Duration::from_millis(10));
        assert_eq!(auth_delay(2), Duration::from_millis(20));
        assert_eq!(auth_delay(4), Duration::from_millis(80));
        assert_eq!(auth_delay(9), AUTH_DELAY_MAX);
        assert_eq!(auth_delay(u32::MAX), AUTH_DELAY_MAX);
    }
}
