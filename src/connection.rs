//! One client connection: bytes in, bytes out.
//!
//! Each wake-up reads what the socket has, runs *every* complete command in the read
//! buffer in order, and writes all their replies with one write: a pipeline of 10,000
//! commands costs a handful of system calls, not 20,000. Consecutive `EVT.ADD`s are
//! gathered into one run and admitted together (see [`crate::exec::ingest`]).
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
//! the socket's send queue) pass it, the client is disconnected.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::cmd::{self, Command, table};
use crate::config::Settings;
use crate::exec::{self, After, ClientState};
use crate::protocol::{self, ArgBuf, Limits, Parsed, Reply};
use crate::state::Shared;

/// Bytes asked of the socket per read when the buffer has less room than this.
const READ_CHUNK: usize = 16 * 1024;

/// Unsent reply bytes at which a connection stops reading and running commands until
/// the client catches up.
pub const OUTPUT_PAUSE_BYTES: usize = 1024 * 1024;

/// Before login (when a password is set), as Redis: at most this many arguments...
pub const UNAUTHENTICATED_MAX_ARGS: usize = 10;
/// ...of at most this many bytes each.
pub const UNAUTHENTICATED_MAX_BULK: usize = 16 * 1024;
/// Seconds a client that has not logged in may stay connected idle.
pub const UNAUTHENTICATED_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection may take to hand its last replies to the kernel.
const FINAL_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why processing stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Close,
    Shutdown,
    /// A browser's request (`POST`, `Host:`) reached us: drop it, answer nothing.
    CrossProtocol,
}

struct Conn {
    shared: Arc<Shared>,
    client: ClientState,
    rbuf: BytesMut,
    wbuf: BytesMut,
    args: ArgBuf,
    replies: Vec<Reply>,
    /// Byte ranges (in `rbuf`) of the JSON of consecutive `EVT.ADD`s not yet run.
    run: Vec<(usize, usize)>,
}

/// Encodes `replies` into `wbuf` in protocol `resp`, counting error replies.
fn encode_replies(
    shared: &Shared,
    replies: &mut Vec<Reply>,
    resp: protocol::Resp,
    wbuf: &mut BytesMut,
) {
    for reply in replies.drain(..) {
        if let Reply::Error(text) = &reply {
            shared.stats.count_error(text);
        }
        protocol::encode(&reply, resp, wbuf);
    }
}

/// Commands a client may send before it has logged in.
fn allowed_before_auth(name: &[u8]) -> bool {
    [&b"auth"[..], b"hello", b"quit"]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name))
}

/// A browser talking HTTP to us: `POST / HTTP/1.1` or a `Host:` header line.
fn cross_protocol(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"post") || name.eq_ignore_ascii_case(b"host:")
}

/// Whether protected mode turns `peer` away: the server listens on a non-loopback
/// address, no password is set, and the peer is not on the loopback interface.
pub fn protected_mode_denies(
    enabled: bool,
    bind: IpAddr,
    has_password: bool,
    peer: IpAddr,
) -> bool {
    enabled
        && !has_password
        && !bind.to_canonical().is_loopback()
        && !peer.to_canonical().is_loopback()
}

/// The reply a protected-mode refusal gets before the connection closes.
pub const DENIED: &str = "-DENIED ScalableAnalytics is running in protected mode because it listens on a non-loopback address and no password is set, so only loopback clients are accepted. To accept this client, either set a password (--requirepass, or CONFIG SET requirepass from a loopback client), or listen on loopback only (--bind 127.0.0.1), or, if you are sure the network is private, disable protected mode (--protected-mode no).\r\n";

impl Conn {
    fn limits(&self) -> Limits {
        let s = &self.shared.settings;
        Limits {
            max_bulk_len: Settings::get(&s.proto_max_bulk_len),
            max_args: Settings::get(&s.max_args),
        }
    }

    /// Runs complete commands from the read buffer, encoding replies as it goes (a
    /// `HELLO` in the middle of a pipeline changes the protocol of what follows), until
    /// the buffer holds no complete command or `pause_at` reply bytes wait to be sent.
    /// Returns why it stopped and whether complete commands are left.
    fn process(&mut self, pause_at: usize) -> (End, bool) {
        let full_limits = self.limits();
        let login_limits = Limits {
            max_bulk_len: full_limits.max_bulk_len.min(UNAUTHENTICATED_MAX_BULK),
            max_args: full_limits.max_args.min(UNAUTHENTICATED_MAX_ARGS),
        };
        let window = self.shared.store.window();
        // Field by field, so that arguments can borrow `rbuf` while replies are written.
        let Conn {
            shared,
            client,
            rbuf,
            wbuf,
            args: argbuf,
            replies,
            run,
        } = self;
        let shared: &Shared = shared;
        let base = rbuf.as_ptr() as usize;
        let flush_run = |run: &mut Vec<(usize, usize)>,
                         client: &ClientState,
                         replies: &mut Vec<Reply>,
                         wbuf: &mut BytesMut| {
            if run.is_empty() {
                return;
            }
            let jsons: Vec<&[u8]> = run.iter().filter_map(|&(s, e)| rbuf.get(s..e)).collect();
            exec::ingest(shared, &jsons, &client.info, replies);
            run.clear();
            encode_replies(shared, replies, client.resp, wbuf);
        };
        let mut pos = 0;
        let mut commands = 0u64;
        let mut end = End::Open;
        let mut last_cmd = None;
        let mut more = false;
        while end == End::Open {
            if wbuf.len() >= pause_at {
                more = true;
                break;
            }
            let buf = rbuf.get(pos..).unwrap_or_default();
            let limits = if client.authenticated {
                &full_limits
            } else {
                &login_limits
            };
            match protocol::parse_request(buf, limits, argbuf) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Empty { consumed }) => pos += consumed,
                Ok(Parsed::Command { consumed, inline }) => {
                    commands += 1;
                    pos += consumed;
                    let args = argbuf.args(buf);
                    let name = args.get(0).unwrap_or_default();
                    if cross_protocol(name) {
                        end = End::CrossProtocol;
                        break;
                    }
                    if !client.authenticated && !allowed_before_auth(name) {
                        flush_run(run, client, replies, wbuf);
                        replies.push(Reply::error("NOAUTH Authentication required."));
                        encode_replies(shared, replies, client.resp, wbuf);
                        continue;
                    }
                    match cmd::parse(args, window) {
                        Ok(Command::EvtAdd { json }) if !inline => {
                            // Kept as offsets into `rbuf` and admitted with the rest of
                            // the run, before any other command or the end of the batch.
                            let start = json.as_ptr() as usize - base;
                            run.push((start, start + json.len()));
                            last_cmd = Some(0);
                        }
                        Ok(command) => {
                            last_cmd = table::position(name);
                            flush_run(run, client, replies, wbuf);
                            let after = exec::execute(shared, client, command, replies);
                            encode_replies(shared, replies, client.resp, wbuf);
                            end = match after {
                                After::Continue => End::Open,
                                After::Close => End::Close,
                                After::Shutdown => End::Shutdown,
                            };
                        }
                        Err(e) => {
                            flush_run(run, client, replies, wbuf);
                            replies.push(Reply::Error(e.text()));
                            encode_replies(shared, replies, client.resp, wbuf);
                        }
                    }
                }
                Err(e) => {
                    flush_run(run, client, replies, wbuf);
                    shared.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer = %client.info.addr, error = %e, "protocol error");
                    replies.push(Reply::Error(e.0.into()));
                    encode_replies(shared, replies, client.resp, wbuf);
                    end = End::Close;
                }
            }
        }
        flush_run(run, client, replies, wbuf);
        if commands > 0 {
            shared.stats.total_commands_processed.add(commands);
            let info = &client.info;
            info.last_active_ms
                .store(shared.uptime_ms(), Ordering::Relaxed);
            if let Some(i) = last_cmd {
                info.last_cmd.store(i, Ordering::Relaxed);
            }
        }
        rbuf.advance(pos);
        (end, more)
    }
}

/// Hands the kernel as much of `wbuf` as it takes without waiting.
fn write_some(socket: &TcpStream, wbuf: &mut BytesMut, shared: &Shared) -> std::io::Result<()> {
    while !wbuf.is_empty() {
        match socket.try_write(wbuf) {
            Ok(n) => {
                shared.stats.net_output_bytes.add(n as u64);
                wbuf.advance(n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    Ok(())
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

/// Writes what is left before the connection closes, for a bounded time.
async fn finish(socket: &mut TcpStream, wbuf: &mut BytesMut) {
    if !wbuf.is_empty() {
        let _ = tokio::time::timeout(FINAL_WRITE_TIMEOUT, socket.write_all(wbuf)).await;
        wbuf.clear();
    }
    let _ = socket.shutdown().await;
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
    let (key, info) = shared.clients.register(peer, laddr);
    let _registered = Registered {
        shared: &shared,
        key,
    };
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
        shared.stats.count_error("DENIED");
        if let Some(suppressed) = shared.bad_input_log.allow(shared.uptime_ms() / 1000) {
            tracing::warn!(%peer, suppressed, "protected mode: non-loopback client refused");
        }
        let mut denied = BytesMut::from(DENIED.as_bytes());
        finish(&mut socket, &mut denied).await;
        return;
    }
    let mut shutdown = shared.shutdown.subscribe();
    let mut conn = Conn {
        shared: shared.clone(),
        client: ClientState::new(info, !settings.has_password()),
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        args: ArgBuf::default(),
        replies: Vec::new(),
        run: Vec::new(),
    };
    tracing::debug!(%peer, id = conn.client.info.id, "client connected");
    loop {
        let hard = Settings::get(&settings.client_output_buffer_limit).max(1);
        let pause_at = OUTPUT_PAUSE_BYTES.min(hard / 2).max(1);
        let (end, more) = conn.process(pause_at);
        if end == End::CrossProtocol {
            if let Some(suppressed) = shared.bad_input_log.allow(shared.uptime_ms() / 1000) {
                tracing::warn!(%peer, suppressed,
                    "possible security attack: a POST or Host: command (an HTTP request) was sent; connection closed");
            }
            break;
        }
        if write_some(&socket, &mut conn.wbuf, &shared).is_err() {
            break;
        }
        let unsent = conn.wbuf.len()
            + if conn.wbuf.is_empty() {
                0
            } else {
                kernel_unsent(&socket)
            };
        if unsent > hard {
            shared
                .stats
                .output_buffer_disconnections
                .fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = shared.bad_input_log.allow(shared.uptime_ms() / 1000) {
                tracing::warn!(%peer, pending = unsent, limit = hard, suppressed,
                    "client scheduled to be closed for overcoming of output buffer limits");
            }
            break;
        }
        match end {
            End::Open | End::CrossProtocol => {}
            End::Close => {
                finish(&mut socket, &mut conn.wbuf).await;
                break;
            }
            End::Shutdown => {
                tracing::info!(%peer, "SHUTDOWN requested by a client");
                shared.begin_shutdown();
                finish(&mut socket, &mut conn.wbuf).await;
                break;
            }
        }
        if shared.shutting_down() {
            finish(&mut socket, &mut conn.wbuf).await;
            break;
        }
        let limit = Settings::get(&settings.client_query_buffer_limit);
        if conn.rbuf.len() > limit {
            shared
                .stats
                .query_buffer_disconnections
                .fetch_add(1, Ordering::Relaxed);
            if let Some(suppressed) = shared.bad_input_log.allow(shared.uptime_ms() / 1000) {
                tracing::warn!(%peer, bytes = conn.rbuf.len(), limit, suppressed,
                    "closing client that reached max query buffer length");
            }
            break;
        }
        let pending = !conn.wbuf.is_empty();
        if more && !pending {
            // The output drained: run the commands still buffered before reading more.
            continue;
        }
        let idle = match settings.timeout.load(Ordering::Relaxed) {
            0 => None,
            secs => Some(Duration::from_secs(secs)),
        };
        let idle = if conn.client.authenticated {
            idle
        } else {
            Some(idle.map_or(UNAUTHENTICATED_TIMEOUT, |d| d.min(UNAUTHENTICATED_TIMEOUT)))
        };
        let idle_timer = async {
            match idle {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        if more || conn.wbuf.len() >= pause_at {
            // Paused: the client must read its replies before we read its commands.
            tokio::select! {
                biased;
                _ = shutdown.changed() => {
                    finish(&mut socket, &mut conn.wbuf).await;
                    break;
                }
                w = socket.writable() => if w.is_err() { break },
                _ = idle_timer => {
                    tracing::debug!(%peer, "closing idle client (replies unread)");
                    break;
                }
            }
            continue;
        }
        if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK {
            conn.rbuf.reserve(READ_CHUNK);
        }
        tokio::select! {
            biased;
            _ = shutdown.changed() => {
                finish(&mut socket, &mut conn.wbuf).await;
                break;
            }
            r = socket.readable() => {
                if r.is_err() {
                    break;
                }
                match socket.try_read_buf(&mut conn.rbuf) {
                    Ok(0) => break,
                    Ok(n) => {
                        shared.stats.net_input_bytes.add(n as u64);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => break,
                }
            }
            w = socket.writable(), if pending => if w.is_err() { break },
            _ = idle_timer => {
                tracing::debug!(%peer, "closing idle client");
                break;
            }
        }
    }
    let _ = socket.shutdown().await;
    tracing::debug!(%peer, "client disconnected");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_decision() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        let any: IpAddr = "0.0.0.0".parse().unwrap();
        let lan: IpAddr = "10.1.2.3".parse().unwrap();
        let mapped_lo: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        // Loopback bind: never denied.
        assert!(!protected_mode_denies(true, lo, false, lan));
        // Non-loopback bind, no password: loopback peers in, others out.
        assert!(!protected_mode_denies(true, any, false, lo));
        assert!(!protected_mode_denies(true, any, false, mapped_lo));
        assert!(protected_mode_denies(true, any, false, lan));
        assert!(protected_mode_denies(true, lan, false, lan));
        // A password, or protected mode off, lets everyone reach AUTH.
        assert!(!protected_mode_denies(true, any, true, lan));
        assert!(!protected_mode_denies(false, any, false, lan));
    }

    #[test]
    fn cross_protocol_words() {
        assert!(cross_protocol(b"POST"));
        assert!(cross_protocol(b"host:"));
        assert!(!cross_protocol(b"host"));
        assert!(allowed_before_auth(b"AUTH") && allowed_before_auth(b"hello"));
        assert!(!allowed_before_auth(b"ping"));
    }
}
