//! `janus.transport.pfunix`: the Janus API and the Admin API over Unix sockets, each endpoint
//! `SOCK_SEQPACKET` (the default) or `SOCK_DGRAM`. One JSON message per packet, both ways.
//!
//! - SEQPACKET: each accepted connection is a transport instance. Its sessions' events are
//!   written on it; when it closes, its sessions die (or wait for `reclaim_session_timeout`);
//!   when one of its sessions times out, the connection is closed after the `timeout` event is
//!   flushed, as Janus does.
//! - DGRAM: each bound sender path is a transport instance; responses and events are sent to
//!   that path. Senders without a path (unbound or abstract) cannot be answered and are refused.
//!   A DGRAM client never "goes away": only timeouts end its sessions. Its entry is freed when
//!   its last session ends, so memory does not grow with every client ever seen.
//!
//! Stale socket files are replaced at start-up, the files get the configured permissions, and
//! `stop()` removes the files this process created.

mod bind;
mod dgram;
mod recv;
mod seqpacket;
mod settings;

pub use settings::{
    Endpoint, Settings, SocketType, DEFAULT_ADMIN_MODE, DEFAULT_MAX_MESSAGE, DEFAULT_MODE,
};

use jano_api::json::JsonFormat;
use jano_api::{msg, ErrorCode, JanusError, Value};
use jano_runtime::{Runtime, TransportHandle, TransportSink};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::{mpsc, watch, Notify};

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.pfunix",
    name: "JANUS Unix Sockets transport plugin",
    author: "jano",
    description: "The Janus API over Unix sockets (SOCK_SEQPACKET and SOCK_DGRAM).",
    version: 1,
    version_string: "0.0.1",
};

/// Messages waiting for a slow SEQPACKET client beyond this close its connection rather than
/// growing memory.
const OUTBOUND_QUEUE: usize = 8192;
/// Messages waiting to be sent on a DGRAM socket (all its clients share it) beyond this are
/// dropped and counted.
const DGRAM_QUEUE: usize = 16384;

/// Something to write on a SEQPACKET connection.
enum Out {
    Json(Value),
    /// Close after what is queued before it (a session of this connection timed out).
    Close,
}

/// A datagram to send: where, and what.
type DgramOut = (Arc<Path>, Value);

struct SeqClient {
    tx: mpsc::Sender<Out>,
    /// Closes the connection now (its queue overflowed).
    kill: Arc<Notify>,
}

struct DgramClient {
    path: Arc<Path>,
    out: mpsc::Sender<DgramOut>,
    sessions: HashSet<u64>,
    /// A request from this client is being handled: keep the entry even without sessions.
    pinned: bool,
}

#[derive(Default)]
struct Maps {
    seq: HashMap<u64, SeqClient>,
    dgram: HashMap<u64, DgramClient>,
    dgram_by_path: HashMap<Arc<Path>, u64>,
}

/// Counters of what could not be delivered or accepted (logged when they grow).
#[derive(Default)]
struct Stats {
    dropped: AtomicU64,
    refused: AtomicU64,
    too_large: AtomicU64,
}

/// Adds one to `counter`; logs at 1, 2, 4, 8… so that a flood cannot flood the log too.
fn count(counter: &AtomicU64, what: &str) {
    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
    if n.is_power_of_two() {
        tracing::warn!(total = n, "Unix sockets transport: {what}");
    }
}

/// The clients by instance id: the transport's [`TransportSink`]. Every method only queues.
#[derive(Default)]
struct Clients {
    maps: Mutex<Maps>,
    stats: Stats,
}

impl Clients {
    fn lock(&self) -> MutexGuard<'_, Maps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message for a SEQPACKET connection; a full queue closes it.
    fn seq_send(c: &SeqClient, conn: u64, out: Out) {
        if c.tx.try_send(out).is_err() {
            tracing::warn!(conn, "Unix socket client too slow: closing its connection");
            c.kill.notify_one();
        }
    }

    fn dgram_send(&self, out: &mpsc::Sender<DgramOut>, path: Arc<Path>, v: Value) {
        if out.try_send((path, v)).is_err() {
            count(
                &self.stats.dropped,
                "DGRAM send queue full: message dropped",
            );
        }
    }

    /// The instance id of the DGRAM client at `path`, created if new, pinned until
    /// [`Clients::dgram_unpin`] so that it outlives the request even with no session yet.
    fn dgram_pin(
        &self,
        path: PathBuf,
        out: &mpsc::Sender<DgramOut>,
        handle: &TransportHandle,
    ) -> (u64, Arc<Path>) {
        let mut m = self.lock();
        if let Some(&conn) = m.dgram_by_path.get(path.as_path()) {
            if let Some(c) = m.dgram.get_mut(&conn) {
                c.pinned = true;
                return (conn, c.path.clone());
            }
        }
        let conn = handle.new_instance();
        let path: Arc<Path> = Arc::from(path);
        m.dgram_by_path.insert(path.clone(), conn);
        m.dgram.insert(
            conn,
            DgramClient {
                path: path.clone(),
                out: out.clone(),
                sessions: HashSet::new(),
                pinned: true,
            },
        );
        tracing::debug!(conn, path = %path.display(), "new Unix DGRAM client");
        (conn, path)
    }

    fn dgram_unpin(&self, conn: u64) {
        let mut m = self.lock();
        if let Some(c) = m.dgram.get_mut(&conn) {
            c.pinned = false;
        }
        Self::dgram_release(&mut m, conn);
    }

    /// Forgets a DGRAM client that owns no session and has no request in flight.
    fn dgram_release(m: &mut Maps, conn: u64) {
        let idle = m
            .dgram
            .get(&conn)
            .is_some_and(|c| c.sessions.is_empty() && !c.pinned);
        if idle {
            if let Some(c) = m.dgram.remove(&conn) {
                m.dgram_by_path.remove(&c.path);
                tracing::debug!(conn, path = %c.path.display(), "Unix DGRAM client forgotten");
            }
        }
    }

    fn len(&self) -> usize {
        let m = self.lock();
        m.seq.len() + m.dgram.len()
    }
}

impl TransportSink for Clients {
    fn send_event(&self, conn: u64, _session_id: u64, event: Value) {
        let m = self.lock();
        if let Some(c) = m.seq.get(&conn) {
            Self::seq_send(c, conn, Out::Json(event));
        } else if let Some(c) = m.dgram.get(&conn) {
            self.dgram_send(&c.out, c.path.clone(), event);
        }
    }

    fn session_created(&self, conn: u64, session_id: u64) {
        if let Some(c) = self.lock().dgram.get_mut(&conn) {
            c.sessions.insert(session_id);
        }
    }

    fn session_claimed(&self, conn: u64, session_id: u64) {
        if let Some(c) = self.lock().dgram.get_mut(&conn) {
            c.sessions.insert(session_id);
        }
    }

    fn session_over(&self, conn: u64, session_id: u64, timeout: bool, _claimed: bool) {
        let mut m = self.lock();
        if let Some(c) = m.seq.get(&conn) {
            // Janus closes a SEQPACKET client whose session timed out; the `timeout` event is
            // already queued ahead of this, so it is flushed first.
            if timeout {
                Self::seq_send(c, conn, Out::Close);
            }
        } else if let Some(c) = m.dgram.get_mut(&conn) {
            c.sessions.remove(&session_id);
            Self::dgram_release(&mut m, conn);
        }
    }
}

/// What every task of the transport shares.
struct Shared {
    handle: TransportHandle,
    clients: Arc<Clients>,
    json: JsonFormat,
    max_message: usize,
}

impl Shared {
    /// The send buffer that lets a message up to the limit go out in one packet.
    fn send_buffer(&self) -> usize {
        self.max_message.saturating_mul(2).max(256 * 1024)
    }

    /// The error answered for a packet over the limit (the same words as the HTTP transport).
    fn too_large(&self) -> Value {
        count(
            &self.clients.stats.too_large,
            "request over the size limit refused",
        );
        let err = JanusError::new(
            ErrorCode::TransportSpecific,
            format!(
                "Request too large (the limit is {} bytes)",
                self.max_message
            ),
        );
        msg::error(0, None, &err)
    }

    /// Hands one request to the core; `respond` queues the response.
    fn request<R>(
        &self,
        conn: u64,
        admin: bool,
        input: recv::Input,
        respond: impl FnOnce(Value) -> R,
    ) -> R {
        if admin {
            self.handle.admin_request(conn, input, respond)
        } else {
            self.handle.request(conn, input, respond)
        }
    }
}

/// A running Unix sockets transport.
pub struct Server {
    stop: watch::Sender<bool>,
    stopped: AtomicBool,
    files: Vec<bind::BoundFile>,
    shared: Arc<Shared>,
}

impl Server {
    /// [`Server::stop`]; nothing to wait for afterwards (the same shape as the broker
    /// transports' `shutdown`, which wait for their clean disconnect).
    pub async fn shutdown(&self) {
        self.stop();
    }

    /// Stops serving: closes the sockets and every connection, and removes the socket files
    /// this process created.
    pub fn stop(&self) {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return;
        }
        let _ = self.stop.send(true);
        for f in &self.files {
            f.remove();
        }
        tracing::info!("Unix sockets transport stopped");
    }

    /// Paths of the socket files being served.
    pub fn paths(&self) -> Vec<&Path> {
        self.files.iter().map(|f| f.path()).collect()
    }

    /// Clients currently known: open SEQPACKET connections and DGRAM peers that own sessions.
    pub fn clients(&self) -> usize {
        self.shared.clients.len()
    }

    /// Messages that could not be delivered (queue full, peer gone, too large to send).
    pub fn dropped(&self) -> u64 {
        self.shared.clients.stats.dropped.load(Ordering::Relaxed)
    }

    /// Datagrams refused because their sender had no path to answer to.
    pub fn refused(&self) -> u64 {
        self.shared.clients.stats.refused.load(Ordering::Relaxed)
    }

    /// Requests refused for being over `max_message_size`.
    pub fn too_large(&self) -> u64 {
        self.shared.clients.stats.too_large.load(Ordering::Relaxed)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds the configured sockets and serves until [`Server::stop`].
pub async fn serve(rt: &Runtime, settings: Settings) -> Result<Server, String> {
    let clients = Arc::new(Clients::default());
    let handle = rt.register_transport(INFO, clients.clone());
    let shared = Arc::new(Shared {
        handle,
        clients,
        json: settings.json,
        max_message: settings.max_message,
    });
    let (stop, stopped) = watch::channel(false);
    let mut server = Server {
        stop,
        stopped: AtomicBool::new(false),
        files: Vec::new(),
        shared: shared.clone(),
    };
    for (ep, admin) in [(&settings.api, false), (&settings.admin, true)] {
        let Some(ep) = ep else { continue };
        // On error, dropping `server` stops what already started and removes its files.
        let (fd, file) = bind::bind(ep, shared.send_buffer())?;
        let api = if admin { "Admin API" } else { "Janus API" };
        tracing::info!(path = %ep.path.display(), kind = ep.kind.name(), mode = format!("{:o}", ep.mode), "Unix sockets {api} listening");
        server.files.push(file);
        match ep.kind {
            SocketType::SeqPacket => {
                let listener = tokio_seqpacket::UnixSeqpacketListener::try_from(fd)
                    .map_err(|e| format!("{}: {e}", ep.path.display()))?;
                tokio::spawn(seqpacket::accept_loop(
                    listener,
                    admin,
                    shared.clone(),
                    stopped.clone(),
                ));
            }
            SocketType::Dgram => {
                let std_sock = std::os::unix::net::UnixDatagram::from(fd);
                let sock = tokio::net::UnixDatagram::from_std(std_sock)
                    .map_err(|e| format!("{}: {e}", ep.path.display()))?;
                dgram::start(Arc::new(sock), admin, shared.clone(), stopped.clone());
            }
        }
    }
    if settings.api.is_none() && settings.admin.is_none() {
        tracing::warn!("Unix sockets transport enabled with nothing to serve");
    }
    Ok(server)
}
