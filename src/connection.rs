//! One client connection: bytes in, bytes out. It knows no command by name.
//!
//! Each wake-up reads what the socket has, hands *every* complete request in the read
//! buffer to the command layer ([`Session`]) in order, and writes all their replies
//! with one write: a pipeline of 10,000 commands costs a handful of system calls, not
//! 20,000.
//!
//! A command error (`-ERR ...`) is answered and the connection goes on; a protocol
//! error is answered and the connection closes, because the byte stream no longer has
//! a known command boundary. Either way other connections never notice.
//!
//! Memory per connection is bounded both ways: unread input by
//! `--client-query-buffer-limit`; unsent output by pausing — while more than
//! [`OUTPUT_PAUSE_BYTES`] (or half the hard limit) wait in our buffer, the connection
//! neither reads nor runs commands — and by `--client-output-buffer-limit`: when the
//! replies the client has not taken (our buffer plus what the kernel still holds in
//! the socket's send queue) pass it, the client is disconnected. Buffers that grew
//! for one large request go back to a small size once they are empty again.
//!
//! Before login (when a password is set) a connection is held on a short leash: a
//! deadline counted from connect, whatever it sends; small buffers; and a cap on the
//! bytes all such connections hold together ([`LOGIN_BUFFERS_LIMIT`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::clients::ClientInfo;
use crate::cmd::{Flow, Session};
use crate::config::Settings;
use crate::error::ErrorKind;
use crate::observe::MonitorFeed;
use crate::protected::{DENIED, protected_mode_denies};
use crate::protocol::{self, ArgBuf, Limits, Parsed};
use crate::shared::Shared;

/// Bytes asked of the socket per read when the buffer has less room than this.
const READ_CHUNK: usize = 16 * 1024;

/// Unsent reply bytes at which a connection stops reading and running commands until
/// the client catches up.
pub const OUTPUT_PAUSE_BYTES: usize = 1024 * 1024;

/// Before login (when a password is set), as Redis: at most this many arguments...
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// ...of at most this many bytes each.
pub const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;
/// How long a client may stay connected without logging in, counted from connect
/// whatever it sends: a byte every few seconds cannot hold a slot.
pub const UNAUTHENTICATED_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of buffers that all connections not logged in may hold together; a
/// connection that would take more is closed. 2,500 such connections held 121 MB
/// before this bound, 1,500 with half-sent commands 420 MB.
pub const LOGIN_BUFFERS_LIMIT: usize = 32 * 1024 * 1024;
/// Bytes asked of the socket per read before login: a login needs little, and a
/// thousand idle unauthenticated connections should not hold 16 KiB each.
const LOGIN_READ_CHUNK: usize = 512;
/// A buffer that grew past this for one request is replaced by a small one once
/// it is empty again, so an idle connection does not keep its largest request.
pub const IDLE_BUFFER_KEEP: usize = 64 * 1024;
/// How long a closing connection may take to hand its last replies to the kernel.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// What one pass over the read buffer ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Processed {
    flow: Flow,
    /// Complete requests are left because the output is paused.
    more: bool,
}

/// How the wait for the socket ended.
enum Woke {
    /// Go round again (read something, or the socket became writable).
    Again,
    /// Close the connection after writing what is pending.
    Finish,
    /// Close now.
    Close,
}

/// Why a connection's attention was called ([`ClientInfo::attention`]): the server
/// shuts down (finish), it was killed (close), or neither (go on).
fn woken(shared: &Shared, info: &ClientInfo) -> Woke {
    if shared.shutting_down() {
        Woke::Finish
    } else if info.is_killed() {
        Woke::Close
    } else {
        Woke::Again
    }
}

/// Waits for `over`, unless the connection is killed or the server shuts down first.
async fn unless_woken(shared: &Shared, info: &ClientInfo, over: impl Future<Output = ()>) -> Woke {
    tokio::select! {
        _ = over => Woke::Again,
        _ = info.attention() => woken(shared, info),
    }
}

struct Conn {
    shared: Arc<Shared>,
    socket: TcpStream,
    peer: SocketAddr,
    session: Session,
    rbuf: BytesMut,
    wbuf: BytesMut,
    args: ArgBuf,
    /// The most bytes each buffer held since it was last replaced: `BytesMut`'s
    /// capacity shrinks as it is consumed, while its allocation does not.
    rbuf_peak: usize,
    wbuf_peak: usize,
    /// Buffer bytes this connection last reported to the client list, and whether
    /// it was logged in then.
    accounted: usize,
    accounted_logged_in: bool,
    /// When a client that has not logged in is closed.
    login_deadline: Instant,
}

impl Conn {
    fn limits(&self) -> Limits {
        let s = &self.shared.settings;
        let full = Limits {
            max_bulk_len: Settings::size(&s.proto_max_bulk_len),
            max_args: Settings::size(&s.max_args),
        };
        if self.session.authenticated(&self.shared) {
            full
        } else {
            Limits {
                max_bulk_len: full.max_bulk_len.min(UNAUTHENTICATED_MAX_BULK),
                max_args: full.max_args.min(UNAUTHENTICATED_MAX_ARGS),
            }
        }
    }

    /// Hands complete requests from the read buffer to the session, replies going
    /// into the write buffer (a `HELLO` in the middle of a pipeline changes the
    /// protocol of what follows), until the buffer holds no complete request or
    /// `pause_at` reply bytes wait to be sent.
    fn process(&mut self, pause_at: usize) -> Processed {
        let shared: &Shared = &self.shared;
        let buf: &[u8] = &self.rbuf;
        let mut pos = 0;
        let mut commands = 0u64;
        let mut flow = Flow::Continue;
        let mut more = false;
        while flow == Flow::Continue {
            if self.wbuf.len() >= pause_at {
                more = true;
                break;
            }
            let limits = self.limits();
            let rest = buf.get(pos..).unwrap_or_default();
            match protocol::parse_request(rest, &limits, &mut self.args) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Empty { consumed }) => pos += consumed,
                Ok(Parsed::Command { consumed, inline }) => {
                    let args = self.args.args(rest);
                    flow = self
                        .session
                        .request(shared, buf, args, inline, &mut self.wbuf);
                    // A postponed request, or one that must wait for the replies
                    // before it, stays in the buffer, to be handed over again.
                    if !matches!(flow, Flow::Postpone(_) | Flow::Wait { again: true }) {
                        commands += 1;
                        pos += consumed;
                    }
                }
                Err(e) => {
                    flow = self.session.flush(shared, buf, &mut self.wbuf);
                    if flow != Flow::Continue {
                        break;
                    }
                    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %self.peer, error = %e, "protocol error");
                    self.session.reply_error(shared, e.reply(), &mut self.wbuf);
                    flow = Flow::Close;
                }
            }
        }
        let last = self.session.flush(shared, buf, &mut self.wbuf);
        if last != Flow::Continue {
            flow = last;
        }
        if commands > 0 {
            shared.stats.total_commands_processed.add(commands);
        }
        self.rbuf.advance(pos);
        // A throttled connection comes back for the requests it has already read.
        let more = more || (matches!(flow, Flow::Throttle(_)) && !self.rbuf.is_empty());
        Processed { flow, more }
    }

    /// Hands the kernel as much of the write buffer as it takes without waiting.
    fn write_some(&mut self) -> std::io::Result<()> {
        while !self.wbuf.is_empty() {
            match self.socket.try_write(&self.wbuf) {
                Ok(n) => {
                    self.shared.stats.net_output_bytes.add(n as u64);
                    self.wbuf.advance(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Reply bytes the client has not taken: ours, plus the kernel's send queue.
    fn unsent(&self) -> usize {
        if self.wbuf.is_empty() {
            0
        } else {
            self.wbuf.len() + kernel_unsent(&self.socket)
        }
    }

    /// How long the client may stay idle: `timeout`, and a short leash before login.
    fn idle_limit(&self) -> Option<Duration> {
        let idle = match self.shared.settings.timeout.load(Ordering::Relaxed) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        };
        if self.session.authenticated(&self.shared) {
            idle
        } else {
            let left = self
                .login_deadline
                .saturating_duration_since(Instant::now());
            Some(idle.map_or(left, |d| d.min(left)))
        }
    }

    /// Reports this connection's buffer bytes to the client list; `false` when it has
    /// not logged in and all such connections together hold too much.
    fn account(&mut self) -> bool {
        let logged_in = self.session.authenticated(&self.shared);
        let clients = &self.shared.clients;
        if logged_in != self.accounted_logged_in {
            clients.move_login_buffers(self.accounted, logged_in);
            self.accounted_logged_in = logged_in;
        }
        self.rbuf_peak = self.rbuf_peak.max(self.rbuf.len());
        self.wbuf_peak = self.wbuf_peak.max(self.wbuf.len());
        let now =
            self.rbuf_peak.max(self.rbuf.capacity()) + self.wbuf_peak.max(self.wbuf.capacity());
        if now == self.accounted {
            return true;
        }
        let login_total = clients.account_buffers(self.accounted, now, logged_in);
        self.accounted = now;
        logged_in || login_total <= LOGIN_BUFFERS_LIMIT
    }

    /// Gives back buffers that grew for one large request once they are empty.
    fn shrink_idle_buffers(&mut self) {
        if self.wbuf.is_empty() && self.wbuf_peak > IDLE_BUFFER_KEEP {
            self.wbuf = BytesMut::with_capacity(READ_CHUNK);
            self.wbuf_peak = 0;
        }
        if self.rbuf.is_empty() && self.rbuf_peak > IDLE_BUFFER_KEEP {
            // No request is half-read, so the parser's scratch space can go too.
            self.rbuf = BytesMut::with_capacity(READ_CHUNK);
            self.args = ArgBuf::default();
            self.session.shrink();
            self.rbuf_peak = 0;
        }
    }

    /// Writes what is left, for a bounded time, and closes the write side.
    async fn finish(&mut self) {
        if !self.wbuf.is_empty() {
            let _ =
                tokio::time::timeout(FINAL_WRITE_TIMEOUT, self.socket.write_all(&self.wbuf)).await;
            self.wbuf.clear();
        }
        let _ = self.socket.shutdown().await;
    }

    /// Logs (at a bounded rate) why the connection is being closed by us.
    fn warn(&self, what: &str, bytes: usize, limit: usize) {
        if let Some(suppressed) = self.shared.may_log() {
            tracing::warn!(peer = %self.peer, bytes, limit, suppressed, "{what}");
        }
    }

    /// Waits until the socket can be read (or written, while output is pending), the
    /// server shuts down, or the client has been idle too long.
    async fn wait(&mut self, paused: bool) -> Woke {
        let info = self.session.info().clone();
        let mut feed = self.session.take_monitor();
        let woke = self.wait_on(paused, &info, feed.as_mut()).await;
        self.session.put_monitor(feed);
        woke
    }

    async fn wait_on(
        &mut self,
        paused: bool,
        info: &ClientInfo,
        feed: Option<&mut MonitorFeed>,
    ) -> Woke {
        // A monitor is never idle: it only listens (as in Redis).
        let idle = self.idle_limit().filter(|_| feed.is_none());
        let idle_timer = async {
            match idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        // A monitor's lines: taken into the write buffer as they come.
        let monitored = async {
            match feed {
                Some(f) => {
                    let mut lines = Vec::new();
                    if f.rx.recv_many(&mut lines, 1024).await == 0 {
                        return None;
                    }
                    let bytes: usize = lines.iter().map(|l| l.len()).sum();
                    f.pending.fetch_sub(bytes, Ordering::Relaxed);
                    Some(lines)
                }
                None => std::future::pending().await,
            }
        };
        if paused {
            // The client must read its replies before we read its commands.
            return tokio::select! {
                biased;
                _ = info.attention() => woken(&self.shared, info),
                w = self.socket.writable() => if w.is_err() { Woke::Close } else { Woke::Again },
                _ = idle_timer => {
                    tracing::debug!(peer = %self.peer, "closing idle client (replies unread)");
                    Woke::Close
                }
            };
        }
        let chunk = if self.session.authenticated(&self.shared) {
            READ_CHUNK
        } else {
            LOGIN_READ_CHUNK
        };
        if self.rbuf.capacity() - self.rbuf.len() < chunk {
            self.rbuf.reserve(chunk);
        }
        let pending = !self.wbuf.is_empty();
        // Read as `AsyncRead`, not `readable` + `try_read`: tokio then takes a read
        // that left room in the buffer as the socket drained, so the next wait costs
        // no `recvfrom` that only answers EAGAIN (one system call of three a request).
        let (mut rd, wr) = self.socket.split();
        tokio::select! {
            biased;
            _ = info.attention() => woken(&self.shared, info),
            r = rd.read_buf(&mut self.rbuf) => match r {
                Ok(0) | Err(_) => Woke::Close,
                Ok(n) => {
                    self.shared.stats.net_input_bytes.add(n as u64);
                    Woke::Again
                }
            },
            w = wr.as_ref().writable(), if pending => if w.is_err() { Woke::Close } else { Woke::Again },
            lines = monitored => match lines {
                Some(lines) => {
                    for l in lines {
                        self.wbuf.extend_from_slice(&l);
                    }
                    Woke::Again
                }
                None => Woke::Close,
            },
            _ = idle_timer => {
                tracing::debug!(peer = %self.peer, "closing idle client");
                Woke::Close
            }
        }
    }

    /// Serves until the client leaves, errs, or the server shuts down.
    async fn run(&mut self) {
        loop {
            let settings = &self.shared.settings;
            let hard = Settings::size(&settings.client_output_buffer_limit).max(1);
            let pause_at = OUTPUT_PAUSE_BYTES.min(hard / 2).max(1);
            if self.session.info().is_killed() {
                return;
            }
            let done = self.process(pause_at);
            if done.flow == Flow::Drop {
                if let Some(suppressed) = self.shared.may_log() {
                    tracing::warn!(peer = %self.peer, suppressed,
                        "possible security attack: a POST or Host: command (an HTTP request) was sent; connection closed");
                }
                return;
            }
            if self.write_some().is_err() {
                return;
            }
            let unsent = self.unsent();
            if unsent > hard {
                let s = &self.shared.stats;
                s.output_buffer_disconnections
                    .fetch_add(1, Ordering::Relaxed);
                self.warn(
                    "client scheduled to be closed for overcoming of output buffer limits",
                    unsent,
                    hard,
                );
                return;
            }
            match done.flow {
                Flow::Continue | Flow::Drop => {}
                Flow::Postpone(until) => {
                    let shared = self.shared.clone();
                    let over = async {
                        tokio::select! {
                            _ = tokio::time::sleep_until(until.into()) => {}
                            _ = shared.pause.ended() => {}
                        }
                    };
                    let info = self.session.info().clone();
                    match unless_woken(&self.shared, &info, over).await {
                        Woke::Finish => return self.finish().await,
                        Woke::Close => return,
                        Woke::Again => continue,
                    }
                }
                Flow::Throttle(delay) => {
                    let info = self.session.info().clone();
                    match unless_woken(&self.shared, &info, tokio::time::sleep(delay)).await {
                        Woke::Finish => return self.finish().await,
                        Woke::Close => return,
                        Woke::Again => {}
                    }
                }
                Flow::Wait { .. } => {
                    // Shutdown does not cut the wait short: the replies to requests
                    // already read are written (the wait is bounded by the cluster's
                    // timeout, or by the log's fsync).
                    let info = self.session.info().clone();
                    let settle = self.session.settle(&self.shared, &mut self.wbuf);
                    tokio::pin!(settle);
                    let killed = loop {
                        tokio::select! {
                            _ = &mut settle => break false,
                            _ = info.attention() => if info.is_killed() {
                                break true;
                            },
                        }
                    };
                    if killed {
                        return;
                    }
                    continue;
                }
                Flow::Close => return self.finish().await,
                Flow::Shutdown => {
                    tracing::info!(peer = %self.peer, "SHUTDOWN requested by a client");
                    self.shared.begin_shutdown();
                    return self.finish().await;
                }
            }
            if self.shared.shutting_down() {
                return self.finish().await;
            }
            let limit = Settings::size(&self.shared.settings.client_query_buffer_limit);
            if self.rbuf.len() > limit {
                let s = &self.shared.stats;
                s.query_buffer_disconnections
                    .fetch_add(1, Ordering::Relaxed);
                self.warn(
                    "closing client that reached max query buffer length",
                    self.rbuf.len(),
                    limit,
                );
                return;
            }
            self.shrink_idle_buffers();
            if !self.account() {
                self.warn(
                    "closing a client that has not logged in: connections without login hold too much buffer memory",
                    self.accounted,
                    LOGIN_BUFFERS_LIMIT,
                );
                return;
            }
            if done.more && self.wbuf.is_empty() {
                // The output drained: run the requests still buffered before reading more.
                continue;
            }
            let paused = done.more || self.wbuf.len() >= pause_at;
            match self.wait(paused).await {
                Woke::Again => {}
                Woke::Finish => return self.finish().await,
                Woke::Close => return,
            }
        }
    }
}

/// Reply bytes handed to the kernel that the peer has not acknowledged yet: the
/// socket's send queue (`SIOCOUTQ`). A client that stops reading leaves them there.
fn kernel_unsent(socket: &TcpStream) -> usize {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut queued: libc::c_int = 0;
        // SAFETY: TIOCOUTQ (SIOCOUTQ) writes one int through the pointer, which points
        // at a live `c_int`; the descriptor belongs to `socket`, open for this call.
        let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if rc == 0 {
            return usize::try_from(queued).unwrap_or(0);
        }
    }
    let _ = socket;
    0
}

/// Keeps `connected` exact however a connection ends.
struct Registered<'a> {
    shared: &'a Shared,
    key: usize,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.shared.clients.unregister(self.key);
        self.shared.connected.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves one client until it leaves, errs, or the server shuts down. The caller
/// has counted it in `shared.connected`.
pub async fn serve(shared: Arc<Shared>, mut socket: TcpStream, peer: SocketAddr) {
    let laddr = socket.local_addr().unwrap_or(shared.local_addr);
    let logged_in = !shared.settings.has_password();
    let (key, info) = shared
        .clients
        .register(peer, laddr, shared.uptime_ms(), logged_in);
    let _registered = Registered {
        shared: &shared,
        key,
    };
    crate::server::make_room_for_logins(&shared);
    shared
        .stats
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
    let settings = &shared.settings;
    if protected_mode_denies(
        shared.config.protected_mode,
        shared.config.bind,
        settings.has_password(),
        peer.ip(),
    ) {
        shared.stats.count_error(ErrorKind::Denied);
        if let Some(suppressed) = shared.may_log() {
            tracing::warn!(%peer, suppressed, "protected mode: non-loopback client refused");
        }
        let _ =
            tokio::time::timeout(FINAL_WRITE_TIMEOUT, socket.write_all(DENIED.as_bytes())).await;
        let _ = socket.shutdown().await;
        return;
    }
    tracing::debug!(%peer, id = info.id, "client connected");
    // Before login, buffers start empty and grow only as the client sends.
    let first = if logged_in { READ_CHUNK } else { 0 };
    let mut conn = Conn {
        session: Session::new(info, logged_in),
        shared: shared.clone(),
        socket,
        peer,
        rbuf: BytesMut::with_capacity(first),
        wbuf: BytesMut::with_capacity(first),
        args: ArgBuf::default(),
        rbuf_peak: 0,
        wbuf_peak: 0,
        accounted: 0,
        accounted_logged_in: logged_in,
        login_deadline: Instant::now() + UNAUTHENTICATED_TIMEOUT,
    };
    conn.account();
    conn.run().await;
    conn.session.close(&shared);
    let (held, logged_in) = (conn.accounted, conn.accounted_logged_in);
    shared.clients.account_buffers(held, 0, logged_in);
    let _ = conn.socket.shutdown().await;
    tracing::debug!(%peer, "client disconnected");
}
