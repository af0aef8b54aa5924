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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cmd::{self, Command, table};
use crate::config::Settings;
use crate::exec::{self, After, ClientState};
use crate::protocol::{self, ArgBuf, Limits, Parsed, Reply};
use crate::state::Shared;

/// Bytes asked of the socket per read when the buffer has less room than this.
const READ_CHUNK: usize = 16 * 1024;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Open,
    Close,
    Shutdown,
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

impl Conn {
    fn limits(&self) -> Limits {
        let s = &self.shared.settings;
        Limits {
            max_bulk_len: Settings::get(&s.proto_max_bulk_len),
            max_args: Settings::get(&s.max_args),
        }
    }

    /// Runs every complete command in the read buffer, encoding replies as it goes
    /// (a `HELLO` in the middle of a pipeline changes the protocol of what follows).
    fn process(&mut self) -> End {
        let limits = self.limits();
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
        while end == End::Open {
            let buf = rbuf.get(pos..).unwrap_or_default();
            match protocol::parse_request(buf, &limits, argbuf) {
                Ok(Parsed::Incomplete) => break,
                Ok(Parsed::Empty { consumed }) => pos += consumed,
                Ok(Parsed::Command { consumed, inline }) => {
                    commands += 1;
                    pos += consumed;
                    let args = argbuf.args(buf);
                    match cmd::parse(args, window) {
                        Ok(Command::EvtAdd { json }) if !inline => {
                            // Kept as offsets into `rbuf` and admitted with the rest of
                            // the run, before any other command or the end of the batch.
                            let start = json.as_ptr() as usize - base;
                            run.push((start, start + json.len()));
                            last_cmd = Some(0);
                        }
                        Ok(command) => {
                            last_cmd = args.get(0).and_then(table::position);
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
            shared
                .stats
                .total_commands_processed
                .fetch_add(commands, Ordering::Relaxed);
            let info = &client.info;
            info.last_active_ms
                .store(shared.uptime_ms(), Ordering::Relaxed);
            if let Some(i) = last_cmd {
                info.last_cmd.store(i, Ordering::Relaxed);
            }
        }
        rbuf.advance(pos);
        end
    }
}

/// Serves one client until it leaves, errs, or the server shuts down.
pub async fn serve(shared: Arc<Shared>, mut socket: TcpStream, peer: SocketAddr) {
    let laddr = socket.local_addr().unwrap_or(shared.local_addr);
    let (key, info) = shared.clients.register(peer, laddr);
    shared
        .stats
        .total_connections_received
        .fetch_add(1, Ordering::Relaxed);
    let mut shutdown = shared.shutdown.subscribe();
    let mut conn = Conn {
        shared: shared.clone(),
        client: ClientState::new(info),
        rbuf: BytesMut::with_capacity(READ_CHUNK),
        wbuf: BytesMut::with_capacity(READ_CHUNK),
        args: ArgBuf::default(),
        replies: Vec::new(),
        run: Vec::new(),
    };
    tracing::debug!(%peer, id = conn.client.info.id, "client connected");
    loop {
        let end = conn.process();
        if !conn.wbuf.is_empty() {
            let n = conn.wbuf.len() as u64;
            if socket.write_all(&conn.wbuf).await.is_err() {
                break;
            }
            shared
                .stats
                .net_output_bytes
                .fetch_add(n, Ordering::Relaxed);
            conn.wbuf.clear();
        }
        match end {
            End::Open => {}
            End::Close => break,
            End::Shutdown => {
                tracing::info!(%peer, "SHUTDOWN requested by a client");
                shared.begin_shutdown();
                break;
            }
        }
        if shared.shutting_down() {
            break;
        }
        let limit = Settings::get(&shared.settings.client_query_buffer_limit);
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
        if conn.rbuf.capacity() - conn.rbuf.len() < READ_CHUNK {
            conn.rbuf.reserve(READ_CHUNK);
        }
        let read = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            r = socket.read_buf(&mut conn.rbuf) => r,
        };
        match read {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                shared
                    .stats
                    .net_input_bytes
                    .fetch_add(n as u64, Ordering::Relaxed);
            }
        }
    }
    let _ = socket.shutdown().await;
    shared.clients.unregister(key);
    tracing::debug!(%peer, "client disconnected");
}
