//! `janus.transport.nanomsg`: the Janus API and the Admin API over Scalability Protocols pair
//! sockets (nanomsg's `NN_PAIR`, nng's `pair0`), on `tcp://` and `ipc://`, in our own
//! implementation of the wire protocol (see [`sp`]).
//!
//! As in Janus, each API is one transport instance: one logical client, whichever peer is
//! connected at the moment. A pair socket has exactly one peer at a time; while it is there,
//! further connections are closed (as nanomsg and nng do), and when it leaves another may
//! come. The sessions live on meanwhile (no "transport gone", as Janus): responses and events
//! produced while no peer is connected wait in a bounded buffer for the next one. In `connect`
//! mode the socket redials with backoff whenever the peer is not there.

pub mod address;
pub mod client;
pub mod sp;

pub use address::Address;

use jano_api::json::JsonFormat;
use jano_api::{msg, ErrorCode, JanusError, Value};
use jano_config::Jcfg;
use jano_runtime::{Runtime, TransportHandle, TransportSink};
use sp::{Frame, Framing, PAIR_V0};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.nanomsg",
    name: "JANUS Nanomsg transport plugin",
    author: "jano",
    description: "The Janus API over Nanomsg (SP pair sockets on tcp:// and ipc://).",
    version: 1,
    version_string: "0.0.1",
};

/// Largest message accepted (Janus reads 8192 bytes and truncates the rest).
pub const MAX_MESSAGE: usize = 1 << 20;
/// Responses and events kept per API while the peer is away or slow.
pub const OUTBOX_LIMIT: usize = 8192;
/// Messages written to the socket in one go.
const BATCH: usize = 128;
/// Redial backoff in `connect` mode: 100 ms, ×1.5, up to 5 s.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// TCP keepalive: a peer that vanished without closing (host down, cable cut) would hold the
/// pair forever, refusing its successor; probing frees it within about a minute.
const KEEPALIVE_IDLE: Duration = Duration::from_secs(30);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_PROBES: u32 = 3;

/// Whether a socket binds its address (and waits for the peer) or connects to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Bind,
    Connect,
}

impl Mode {
    fn parse(text: Option<String>, key: &str) -> Result<Mode, String> {
        match text {
            None => Ok(Mode::Bind),
            Some(t) if t.trim().eq_ignore_ascii_case("bind") => Ok(Mode::Bind),
            Some(t) if t.trim().eq_ignore_ascii_case("connect") => Ok(Mode::Connect),
            Some(t) => Err(format!("{key}: {t:?} is not \"bind\" or \"connect\"")),
        }
    }
}

/// One API's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub mode: Mode,
    pub address: Address,
}

/// Settings from `janus.transport.nanomsg.jcfg`, with Janus's keys and defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether anything is served (the Janus API, the Admin API or both).
    pub enabled: bool,
    /// The Janus API socket (`general`: `enabled`, `mode`, `address`).
    pub api: Option<Endpoint>,
    /// The Admin API socket (`admin`: `admin_enabled`, `admin_mode`, `admin_address`).
    pub admin: Option<Endpoint>,
    pub json: JsonFormat,
    /// Largest incoming message, in bytes; larger ones are answered with an error.
    pub max_message: usize,
    /// Outgoing messages kept per API while no peer reads them; beyond, they are dropped
    /// (counted and logged).
    pub outbox_limit: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: false,
            api: None,
            admin: None,
            json: JsonFormat::Compact,
            max_message: MAX_MESSAGE,
            outbox_limit: OUTBOX_LIMIT,
        }
    }
}

impl Settings {
    pub fn from_jcfg(j: &Jcfg) -> Result<Settings, String> {
        let api_enabled = j.get_bool("general", "enabled").unwrap_or(false);
        let admin_enabled = j.get_bool("admin", "admin_enabled").unwrap_or(false);
        let mut s = Settings {
            enabled: api_enabled || admin_enabled,
            ..Default::default()
        };
        if !s.enabled {
            return Ok(s);
        }
        if let Some(t) = j.get_str("general", "json") {
            s.json = match JsonFormat::parse(&t) {
                Some(f) => f,
                None => {
                    return Err(format!(
                        "general.json: {t:?} is not \"compact\", \"indented\" or \"plain\""
                    ))
                }
            };
        }
        if api_enabled {
            let address = j.get_str("general", "address").ok_or(
                "general.address is required (e.g. \"ipc:///tmp/janus.ipc\" or \"tcp://127.0.0.1:5555\")",
            )?;
            s.api = Some(Endpoint {
                mode: Mode::parse(j.get_str("general", "mode"), "general.mode")?,
                address: Address::parse(&address).map_err(|e| format!("general.address: {e}"))?,
            });
        }
        if admin_enabled {
            let address = j.get_str("admin", "admin_address").ok_or(
                "admin.admin_address is required with admin_enabled (e.g. \"ipc:///tmp/janus-admin.ipc\")",
            )?;
            s.admin = Some(Endpoint {
                mode: Mode::parse(j.get_str("admin", "admin_mode"), "admin.admin_mode")?,
                address: Address::parse(&address)
                    .map_err(|e| format!("admin.admin_address: {e}"))?,
            });
        }
        if let (Some(a), Some(b)) = (&s.api, &s.admin) {
            if a.address == b.address {
                return Err(format!(
                    "the Janus API and the Admin API cannot share {}",
                    a.address
                ));
            }
        }
        Ok(s)
    }
}

// ---------------------------------------------------------------------------------------------
// Outgoing messages
// ---------------------------------------------------------------------------------------------

/// One API's outgoing messages, kept across peers: what no peer has taken yet waits here.
struct Outbox {
    state: Mutex<OutState>,
    /// Wakes the writer of the current peer.
    wake: Notify,
    limit: usize,
    label: &'static str,
}

#[derive(Default)]
struct OutState {
    items: VecDeque<Value>,
    dropped: u64,
}

impl Outbox {
    fn new(limit: usize, label: &'static str) -> Outbox {
        Outbox {
            state: Mutex::new(OutState::default()),
            wake: Notify::new(),
            limit: limit.max(1),
            label,
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutState> {
        // Only plain queue operations run under this lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message. Called with the gateway lock held: no IO, no waiting.
    fn push(&self, v: Value) {
        let mut st = self.lock();
        if st.items.len() >= self.limit {
            st.dropped += 1;
            let dropped = st.dropped;
            drop(st);
            // Powers of two: the first loss is always logged, a flood only logarithmically.
            if dropped.is_power_of_two() {
                tracing::warn!(
                    api = self.label,
                    dropped,
                    limit = self.limit,
                    "Nanomsg outgoing buffer full (no peer, or it does not read): message dropped"
                );
            }
            return;
        }
        st.items.push_back(v);
        drop(st);
        self.wake.notify_one();
    }

    fn take(&self, max: usize) -> Vec<Value> {
        let mut st = self.lock();
        let n = st.items.len().min(max);
        st.items.drain(..n).collect()
    }

    /// Puts back, in order, messages whose write failed: the next peer gets them.
    fn requeue(&self, batch: Vec<Value>) {
        let mut st = self.lock();
        for v in batch.into_iter().rev() {
            st.items.push_front(v);
        }
    }

    fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

/// Routes what the core sends on its own (events) to the API's outbox.
struct Sink {
    api: Arc<Outbox>,
    admin: Arc<Outbox>,
    api_conn: AtomicU64,
    admin_conn: AtomicU64,
}

impl TransportSink for Sink {
    fn send_event(&self, conn: u64, _session_id: u64, event: Value) {
        if conn != 0 && conn == self.api_conn.load(Ordering::Relaxed) {
            self.api.push(event);
        } else if conn != 0 && conn == self.admin_conn.load(Ordering::Relaxed) {
            self.admin.push(event);
        } else {
            tracing::debug!(conn, "Nanomsg: event for an unknown instance dropped");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One API: its socket, its single peer
// ---------------------------------------------------------------------------------------------

struct Channel {
    admin: bool,
    /// The one transport instance of this API, whoever the peer is.
    conn: u64,
    label: &'static str,
    address: Address,
    framing: Framing,
    json: JsonFormat,
    max_message: usize,
    outbox: Arc<Outbox>,
    handle: TransportHandle,
    /// A peer holds the pair (from accept or dial until it is gone).
    busy: AtomicBool,
    /// Connections closed because the pair already had its peer.
    refused: AtomicU64,
}

/// The right to be the pair's peer; released when dropped.
struct PeerSlot(Arc<Channel>);

impl PeerSlot {
    fn take(chan: &Arc<Channel>) -> Option<PeerSlot> {
        chan.busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| PeerSlot(chan.clone()))
    }
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

impl Channel {
    /// One SP message: one JSON request. Parse failures go to the core, which answers 454.
    fn incoming(&self, data: &[u8]) {
        let input = jano_api::json::decode(data);
        let respond = |resp: Value| self.outbox.push(resp);
        if self.admin {
            self.handle.admin_request(self.conn, input, respond);
        } else {
            self.handle.request(self.conn, input, respond);
        }
    }

    fn too_large(&self, len: u64) {
        tracing::warn!(
            api = self.label,
            len,
            limit = self.max_message,
            "Nanomsg message too large: answered with an error"
        );
        let err = JanusError::new(
            ErrorCode::TransportSpecific,
            format!(
                "Request too large (the limit is {} bytes)",
                self.max_message
            ),
        );
        self.outbox.push(msg::error(0, None, &err));
    }
}

/// Serves one connected peer until it goes away or the transport stops. Returns whether the
/// protocol headers were exchanged (a real peer, not a refused connection).
async fn serve_peer<S>(mut s: S, chan: &Arc<Channel>, stop: &CancellationToken) -> bool
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let hs = tokio::select! {
        biased;
        _ = stop.cancelled() => return false,
        r = sp::handshake(&mut s, PAIR_V0, PAIR_V0) => r,
    };
    if let Err(e) = hs {
        tracing::warn!(api = chan.label, address = %chan.address, error = %e, "Nanomsg peer refused");
        return false;
    }
    let buffered = chan.outbox.len();
    tracing::info!(api = chan.label, address = %chan.address, buffered, "Nanomsg peer connected");
    let (r, w) = tokio::io::split(s);
    let done = stop.child_token();
    let writer = tokio::spawn(write_loop(w, chan.clone(), done.clone(), stop.clone()));
    read_loop(r, chan, &done).await;
    done.cancel();
    let _ = writer.await;
    tracing::info!(api = chan.label, address = %chan.address, "Nanomsg peer gone");
    true
}

async fn read_loop<R: AsyncRead + Unpin>(r: R, chan: &Channel, done: &CancellationToken) {
    let mut r = BufReader::with_capacity(64 * 1024, r);
    loop {
        let frame = tokio::select! {
            f = sp::read_frame(&mut r, chan.framing, chan.max_message) => f,
            _ = done.cancelled() => return,
        };
        match frame {
            Ok(None) => return,
            Ok(Some(Frame::Message(data))) => chan.incoming(&data),
            Ok(Some(Frame::TooLarge(len))) => {
                // Answer first, then read past the payload: the peer may go on after it.
                chan.too_large(len);
                let skipped = tokio::select! {
                    r = sp::skip(&mut r, len) => r,
                    _ = done.cancelled() => return,
                };
                if let Err(e) = skipped {
                    tracing::debug!(api = chan.label, error = %e, "Nanomsg peer lost");
                    return;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                tracing::warn!(api = chan.label, error = %e, "Nanomsg protocol error: closing");
                return;
            }
            Err(e) => {
                tracing::debug!(api = chan.label, error = %e, "Nanomsg peer lost");
                return;
            }
        }
    }
}

/// How long a stopping transport keeps writing what is already queued for its peer.
const FINAL_FLUSH: Duration = Duration::from_millis(200);

async fn write_loop<W: AsyncWrite + Unpin>(
    mut w: W,
    chan: Arc<Channel>,
    done: CancellationToken,
    stop: CancellationToken,
) {
    let mut buf = Vec::with_capacity(8192);
    loop {
        let batch = chan.outbox.take(BATCH);
        if batch.is_empty() {
            tokio::select! {
                _ = chan.outbox.wake.notified() => continue,
                _ = done.cancelled() => break,
            }
        }
        encode_batch(&chan, &batch, &mut buf);
        let written = tokio::select! {
            r = write_flush(&mut w, &buf) => r,
            _ = done.cancelled() => Err(std::io::ErrorKind::Interrupted.into()),
        };
        if let Err(e) = written {
            // Not (surely) delivered: the next peer, or the final flush, gets these.
            chan.outbox.requeue(batch);
            if e.kind() != std::io::ErrorKind::Interrupted {
                tracing::debug!(api = chan.label, error = %e, "Nanomsg write failed");
                done.cancel();
                return;
            }
            break;
        }
        if buf.capacity() > 4 * MAX_MESSAGE {
            // One burst should not pin a large buffer for the peer's lifetime.
            buf = Vec::with_capacity(8192);
        }
    }
    if stop.is_cancelled() {
        // The server is stopping, the peer is still there: hand it what is queued, briefly.
        let flush = async {
            loop {
                let batch = chan.outbox.take(BATCH);
                if batch.is_empty() {
                    return;
                }
                encode_batch(&chan, &batch, &mut buf);
                if write_flush(&mut w, &buf).await.is_err() {
                    return;
                }
            }
        };
        let _ = tokio::time::timeout(FINAL_FLUSH, flush).await;
    }
}

fn encode_batch(chan: &Channel, batch: &[Value], buf: &mut Vec<u8>) {
    buf.clear();
    for v in batch {
        sp::encode(chan.framing, &chan.json.to_vec(v), buf);
    }
}

async fn write_flush<W: AsyncWrite + Unpin>(w: &mut W, buf: &[u8]) -> std::io::Result<()> {
    w.write_all(buf).await?;
    w.flush().await
}

/// Low latency (small JSON messages) and dead-peer detection for a TCP connection.
fn tune_tcp(s: &TcpStream) {
    let _ = s.set_nodelay(true);
    let ka = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    if let Err(e) = socket2::SockRef::from(s).set_tcp_keepalive(&ka) {
        tracing::debug!(error = %e, "could not enable TCP keepalive");
    }
}

/// A stream accepted or dialed: serve it if the pair has no peer, else close it.
fn on_connected<S>(s: S, chan: &Arc<Channel>, stop: &CancellationToken)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let Some(slot) = PeerSlot::take(chan) else {
        // A second dialer retries every few hundred ms: log the refusals logarithmically.
        let refused = chan.refused.fetch_add(1, Ordering::Relaxed) + 1;
        if refused.is_power_of_two() {
            tracing::info!(
                api = chan.label,
                address = %chan.address,
                refused,
                "Nanomsg connection refused: the pair socket already has its peer"
            );
        }
        return;
    };
    let chan = chan.clone();
    let stop = stop.clone();
    tokio::spawn(async move {
        let _slot = slot;
        serve_peer(s, &chan, &stop).await;
    });
}

async fn accept_tcp(l: TcpListener, chan: Arc<Channel>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = l.accept() => r,
        };
        match accepted {
            Ok((s, peer)) => {
                tune_tcp(&s);
                tracing::debug!(api = chan.label, %peer, "Nanomsg TCP connection");
                on_connected(s, &chan, &stop);
            }
            Err(e) => {
                tracing::warn!(api = chan.label, error = %e, "Nanomsg accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn accept_ipc(l: UnixListener, chan: Arc<Channel>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = l.accept() => r,
        };
        match accepted {
            Ok((s, _)) => {
                tracing::debug!(api = chan.label, "Nanomsg IPC connection");
                on_connected(s, &chan, &stop);
            }
            Err(e) => {
                tracing::warn!(api = chan.label, error = %e, "Nanomsg accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

enum Dialed {
    Tcp(TcpStream),
    Ipc(UnixStream),
}

async fn dial(address: &Address) -> std::io::Result<Dialed> {
    let connect = async {
        match address {
            Address::Tcp { host, port } => {
                let s = TcpStream::connect((host.as_str(), *port)).await?;
                tune_tcp(&s);
                Ok(Dialed::Tcp(s))
            }
            Address::Ipc(path) => Ok(Dialed::Ipc(UnixStream::connect(path).await?)),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, connect)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// `connect` mode: dial, serve the peer, and dial again whenever it is gone or not there.
async fn dial_loop(chan: Arc<Channel>, stop: CancellationToken) {
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    loop {
        let dialed = tokio::select! {
            r = dial(&chan.address) => r,
            _ = stop.cancelled() => return,
        };
        match dialed {
            Ok(s) => {
                failing = false;
                // Only this task ever takes the slot in connect mode.
                let slot = PeerSlot::take(&chan);
                let served = match s {
                    Dialed::Tcp(s) => serve_peer(s, &chan, &stop).await,
                    Dialed::Ipc(s) => serve_peer(s, &chan, &stop).await,
                };
                drop(slot);
                if served {
                    backoff = BACKOFF_MIN;
                }
            }
            Err(e) => {
                // Log when the peer becomes unreachable, not at every retry.
                if failing {
                    tracing::debug!(api = chan.label, address = %chan.address, error = %e, "Nanomsg peer still unreachable");
                } else {
                    tracing::warn!(api = chan.label, address = %chan.address, error = %e, "Nanomsg peer unreachable: retrying with backoff");
                }
                failing = true;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.cancelled() => return,
        }
        backoff = (backoff * 3 / 2).min(BACKOFF_MAX);
    }
}

/// A socket file we created, recognised by its inode so a stop never removes someone else's.
struct IpcFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path)
        .ok()
        .map(|m| (m.dev(), m.ino()))
}

/// Before binding: a socket file nobody listens on is a leftover of an earlier run and is
/// removed; one with a live listener, or a file that is not a socket, is left alone.
fn clear_stale(path: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    if !meta.file_type().is_socket() {
        return Err(format!(
            "{}: exists and is not a socket (not removing it)",
            path.display()
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(format!(
            "{}: another process is listening on this socket",
            path.display()
        ));
    }
    std::fs::remove_file(path).map_err(|e| format!("{}: {e}", path.display()))?;
    tracing::info!(path = %path.display(), "removed a stale Nanomsg socket file");
    Ok(())
}

/// What an API's socket is bound to.
#[derive(Default)]
struct Bound {
    tcp: Option<SocketAddr>,
    ipc: Option<IpcFile>,
}

async fn start(
    ep: &Endpoint,
    chan: Arc<Channel>,
    stop: CancellationToken,
) -> Result<Bound, String> {
    let label = chan.label;
    match (ep.mode, &ep.address) {
        (Mode::Bind, Address::Tcp { host, port }) => {
            let l = TcpListener::bind((Address::bind_host(host), *port))
                .await
                .map_err(|e| format!("binding {}: {e}", ep.address))?;
            let local = l.local_addr().ok();
            tracing::info!(api = label, address = %ep.address, ?local, "Nanomsg pair socket bound");
            tokio::spawn(accept_tcp(l, chan, stop));
            Ok(Bound {
                tcp: local,
                ipc: None,
            })
        }
        (Mode::Bind, Address::Ipc(path)) => {
            clear_stale(path)?;
            let l = UnixListener::bind(path).map_err(|e| format!("binding {}: {e}", ep.address))?;
            let ipc = file_id(path).map(|(dev, ino)| IpcFile {
                path: path.clone(),
                dev,
                ino,
            });
            tracing::info!(api = label, address = %ep.address, "Nanomsg pair socket bound");
            tokio::spawn(accept_ipc(l, chan, stop));
            Ok(Bound { tcp: None, ipc })
        }
        (Mode::Connect, _) => {
            tracing::info!(api = label, address = %ep.address, "Nanomsg pair socket connecting");
            tokio::spawn(dial_loop(chan, stop));
            Ok(Bound::default())
        }
    }
}

/// A running transport.
pub struct Server {
    stop: CancellationToken,
    api: Option<(Arc<Channel>, Bound)>,
    admin: Option<(Arc<Channel>, Bound)>,
}

impl Server {
    /// [`Server::stop`]; nothing to wait for afterwards (the same shape as the broker
    /// transports' `shutdown`, which wait for their clean disconnect).
    pub async fn shutdown(&self) {
        self.stop();
    }

    /// Stops serving: closes the sockets and the peer connections, stops redialing, and
    /// removes the socket files it created.
    pub fn stop(&self) {
        self.stop.cancel();
        for (_, bound) in [&self.api, &self.admin].into_iter().flatten() {
            if let Some(f) = &bound.ipc {
                if file_id(&f.path) == Some((f.dev, f.ino)) {
                    if let Err(e) = std::fs::remove_file(&f.path) {
                        tracing::warn!(path = %f.path.display(), error = %e, "could not remove the Nanomsg socket file");
                    }
                }
            }
        }
    }

    /// The TCP address the Janus API socket is bound to (`tcp://…:0` picks a free port).
    pub fn api_tcp_addr(&self) -> Option<SocketAddr> {
        self.api.as_ref().and_then(|(_, b)| b.tcp)
    }

    /// The TCP address the Admin API socket is bound to.
    pub fn admin_tcp_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().and_then(|(_, b)| b.tcp)
    }

    /// Whether the Janus API (or Admin API) socket has its peer right now.
    pub fn peer_connected(&self, admin: bool) -> bool {
        let c = if admin { &self.admin } else { &self.api };
        c.as_ref()
            .is_some_and(|(c, _)| c.busy.load(Ordering::Acquire))
    }

    /// Messages waiting for a peer (Janus API or Admin API).
    pub fn buffered(&self, admin: bool) -> usize {
        let c = if admin { &self.admin } else { &self.api };
        c.as_ref().map_or(0, |(c, _)| c.outbox.len())
    }

    /// Messages dropped because the buffer was full (Janus API or Admin API).
    pub fn dropped(&self, admin: bool) -> u64 {
        let c = if admin { &self.admin } else { &self.api };
        c.as_ref().map_or(0, |(c, _)| c.outbox.dropped())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the transport: binds (or starts dialing) the configured sockets.
pub async fn serve(rt: &Runtime, settings: Settings) -> Result<Server, String> {
    let sink = Arc::new(Sink {
        api: Arc::new(Outbox::new(settings.outbox_limit, "Janus API")),
        admin: Arc::new(Outbox::new(settings.outbox_limit, "Admin API")),
        api_conn: AtomicU64::new(0),
        admin_conn: AtomicU64::new(0),
    });
    let handle = rt.register_transport(INFO, sink.clone());
    let mut server = Server {
        stop: CancellationToken::new(),
        api: None,
        admin: None,
    };
    for (admin, ep) in [(false, &settings.api), (true, &settings.admin)] {
        let Some(ep) = ep else { continue };
        let conn = handle.new_instance();
        let (outbox, slot) = if admin {
            (sink.admin.clone(), &sink.admin_conn)
        } else {
            (sink.api.clone(), &sink.api_conn)
        };
        slot.store(conn, Ordering::Relaxed);
        let chan = Arc::new(Channel {
            admin,
            conn,
            label: outbox.label,
            address: ep.address.clone(),
            framing: ep.address.framing(),
            json: settings.json,
            max_message: settings.max_message,
            outbox,
            handle: handle.clone(),
            busy: AtomicBool::new(false),
            refused: AtomicU64::new(0),
        });
        // On error, dropping `server` stops what was already started.
        let bound = start(ep, chan.clone(), server.stop.child_token()).await?;
        if admin {
            server.admin = Some((chan, bound));
        } else {
            server.api = Some((chan, bound));
        }
    }
    if server.api.is_none() && server.admin.is_none() {
        return Err("no address configured".into());
    }
    Ok(server)
}
