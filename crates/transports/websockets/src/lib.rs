//! `janus.transport.websockets`: the Janus API over WebSockets (`janus-protocol`) and the Admin
//! API (`janus-admin-protocol`) on its own listener.
//!
//! Each socket is one transport instance: sessions created or claimed on it get their events on
//! it, and die with it (or wait for `reclaim_session_timeout`). A frame may carry several JSON
//! objects. Pings from clients are answered at once (Janode drops a socket whose pings go
//! unanswered), and the server can ping idle clients itself (`pingpong_trigger`/`_timeout`).

use futures_util::{SinkExt, StreamExt};
use jano_api::json::JsonFormat;
use jano_api::{msg, ErrorCode, JanusError, Value};
use jano_runtime::{listen, Listener, Runtime, TransportHandle, TransportSink};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch, Notify};
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.websockets",
    name: "JANUS WebSockets transport plugin",
    author: "jano",
    description: "The Janus API over WebSockets, on tokio-tungstenite.",
    version: 1,
    version_string: "0.0.1",
};

pub const API_PROTOCOL: &str = "janus-protocol";
pub const ADMIN_PROTOCOL: &str = "janus-admin-protocol";

/// Messages waiting for a slow client. Requests are backpressured (a client that does not read
/// stops being read from), so this fills only with events; when it is full the socket is closed
/// rather than growing memory or silently losing events.
const OUTBOUND_QUEUE: usize = 8192;
/// Initial read buffer per socket (see `connection`).
const READ_BUFFER: usize = 8 * 1024;
/// Most simultaneous WebSocket connections per listener (each costs a file descriptor).
const CONNECTION_LIMIT: usize = 65_536;
/// Room kept free for events: a request is only taken when this much is free after its response.
const EVENT_HEADROOM: usize = 1024;

/// The WebSocket transport's settings (filled from `janus.transport.websockets.jcfg`).
#[derive(Debug, Clone)]
pub struct WsSettings {
    pub api: Option<Listener>,
    pub admin: Option<Listener>,
    pub json: JsonFormat,
    /// Idle seconds before the server pings a client (0 = never).
    pub pingpong_trigger: u64,
    /// Seconds to wait for the pong before closing (0 = never).
    pub pingpong_timeout: u64,
    pub allow_origin: Option<String>,
    pub enforce_cors: bool,
    /// Largest message accepted, in bytes.
    pub max_message: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            api: None,
            admin: None,
            json: JsonFormat::Compact,
            pingpong_trigger: 0,
            pingpong_timeout: 0,
            allow_origin: None,
            enforce_cors: false,
            max_message: 1 << 20,
        }
    }
}

enum Out {
    Json(Value),
    Pong(tokio_tungstenite::tungstenite::Bytes),
    Ping,
    Close,
}

/// One socket's outbound side: its queue, and the alarm that closes it when the client stops
/// reading (a full queue closes the socket instead of dropping messages or growing memory).
#[derive(Clone)]
struct Link {
    tx: mpsc::Sender<Out>,
    kill: Arc<Notify>,
    /// Poked by the writer whenever it takes a message: room may have come back.
    room: Arc<Notify>,
}

impl Link {
    fn push(&self, conn: u64, out: Out) {
        if self.tx.try_send(out).is_err() {
            tracing::warn!(
                conn,
                "WebSocket client too slow (outbound queue full): closing"
            );
            self.kill.notify_one();
        }
    }
}

/// The sockets by instance id: the transport's [`TransportSink`].
#[derive(Default)]
struct Conns {
    map: Mutex<HashMap<u64, Link>>,
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Link>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl TransportSink for Conns {
    fn send_event(&self, conn: u64, _session_id: u64, event: Value) {
        if let Some(link) = self.lock().get(&conn) {
            link.push(conn, Out::Json(event));
        }
    }
}

struct Shared {
    handle: TransportHandle,
    conns: Arc<Conns>,
    settings: WsSettings,
}

/// A running WebSocket transport.
pub struct WsServer {
    pub api_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    shared: Arc<Shared>,
}

impl WsServer {
    /// Stops accepting and closes every socket.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
        let links: Vec<Link> = self.shared.conns.lock().values().cloned().collect();
        for link in links {
            link.kill.notify_one();
        }
    }

    /// Open sockets (diagnostics and tests).
    pub fn connections(&self) -> usize {
        self.shared.conns.lock().len()
    }
}

/// Binds the configured listeners and serves until [`WsServer::stop`].
pub async fn serve(rt: &Runtime, settings: WsSettings) -> std::io::Result<WsServer> {
    let conns = Arc::new(Conns::default());
    let handle = rt.register_transport(INFO, conns.clone());
    let shared = Arc::new(Shared {
        handle,
        conns,
        settings: settings.clone(),
    });
    let (stop, stopped) = watch::channel(false);
    let mut api_addr = None;
    let mut admin_addr = None;
    for (spec, admin) in [(&settings.api, false), (&settings.admin, true)] {
        let Some(spec) = spec else { continue };
        let what = if admin {
            "WebSockets Admin API"
        } else {
            "WebSockets Janus API"
        };
        let shared = shared.clone();
        let conn_stopped = stopped.clone();
        let addr = listen(
            spec,
            what,
            CONNECTION_LIMIT,
            stopped.clone(),
            move |stream, peer| {
                connection(stream, peer, admin, shared.clone(), conn_stopped.clone())
            },
        )
        .await?;
        if admin {
            admin_addr = Some(addr);
        } else {
            api_addr = Some(addr);
        }
    }
    Ok(WsServer {
        api_addr,
        admin_addr,
        stop,
        shared,
    })
}

fn refuse(status: StatusCode, text: &str) -> ErrorResponse {
    let mut r = ErrorResponse::new(Some(text.to_owned()));
    *r.status_mut() = status;
    r
}

/// The handshake rule: the right subprotocol must be offered (and the origin allowed).
// The error type is tungstenite's callback contract, not ours to shrink.
#[allow(clippy::result_large_err)]
fn check_handshake(
    req: &Request,
    mut resp: Response,
    protocol: &'static str,
    settings: &WsSettings,
) -> Result<Response, ErrorResponse> {
    let offered = req
        .headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim() == protocol);
    if !offered {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            &format!("the '{protocol}' WebSocket subprotocol is required"),
        ));
    }
    if let (true, Some(allowed)) = (settings.enforce_cors, &settings.allow_origin) {
        let origin = req.headers().get("origin").and_then(|v| v.to_str().ok());
        if !origin.is_some_and(|o| o.starts_with(allowed.as_str())) {
            return Err(refuse(StatusCode::FORBIDDEN, "origin not allowed"));
        }
    }
    let h = resp.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
    if let Some(o) = &settings.allow_origin {
        if let Ok(v) = HeaderValue::from_str(o) {
            h.insert("Access-Control-Allow-Origin", v);
        }
    }
    Ok(resp)
}

#[allow(clippy::result_large_err)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    admin: bool,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    let protocol = if admin { ADMIN_PROTOCOL } else { API_PROTOCOL };
    let settings = shared.settings.clone();
    // tungstenite zeroes the spare capacity of its read buffer on every read: with its 128 KiB
    // default that memset was the largest single cost per message (and memory per socket).
    // Janus messages are small; the buffer still grows for the rare large one.
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(READ_BUFFER)
        .max_message_size(Some(settings.max_message))
        .max_frame_size(Some(settings.max_message));
    let handshake = tokio_tungstenite::accept_hdr_async_with_config(
        stream,
        |req: &Request, resp: Response| check_handshake(req, resp, protocol, &settings),
        Some(config),
    );
    let ws = match tokio::time::timeout(Duration::from_secs(10), handshake).await {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            tracing::debug!(%peer, error = %e, "WebSocket handshake refused");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "WebSocket handshake timed out");
            return;
        }
    };
    let conn = shared.handle.new_instance();
    let (tx, mut rx) = mpsc::channel::<Out>(OUTBOUND_QUEUE);
    let link = Link {
        tx: tx.clone(),
        kill: Arc::new(Notify::new()),
        room: Arc::new(Notify::new()),
    };
    let room = link.room.clone();
    shared.conns.lock().insert(conn, link.clone());
    tracing::debug!(%peer, conn, admin, "WebSocket connected");
    let (mut sink, mut stream) = ws.split();
    let format = settings.json;
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
            room.notify_one();
            let m = match out {
                Out::Json(v) => Message::text(format.to_string(&v)),
                Out::Pong(p) => Message::Pong(p),
                Out::Ping => Message::Ping(Default::default()),
                Out::Close => {
                    let _ = sink.close().await;
                    break;
                }
            };
            // Batch: flush once per burst of queued messages.
            if sink.feed(m).await.is_err() {
                break;
            }
            if rx.is_empty() && sink.flush().await.is_err() {
                break;
            }
        }
    });
    let pingpong = settings.pingpong_trigger > 0 && settings.pingpong_timeout > 0;
    let idle = Duration::from_secs(settings.pingpong_trigger.max(1));
    let pong_wait = Duration::from_secs(settings.pingpong_timeout.max(1));
    let mut awaiting_pong: Option<tokio::time::Instant> = None;
    loop {
        let deadline = match awaiting_pong {
            Some(t) => t,
            None => tokio::time::Instant::now() + idle,
        };
        let next = tokio::select! {
            m = stream.next() => m,
            _ = tokio::time::sleep_until(deadline), if pingpong => {
                if awaiting_pong.is_some() {
                    tracing::debug!(conn, "no pong from WebSocket client: closing");
                    break;
                }
                link.push(conn, Out::Ping);
                awaiting_pong = Some(tokio::time::Instant::now() + pong_wait);
                continue;
            }
            _ = stopped.changed() => break,
            _ = link.kill.notified() => break,
        };
        let Some(Ok(m)) = next else { break };
        awaiting_pong = None;
        match m {
            Message::Text(t) => frame(&shared, conn, admin, t.as_bytes(), &link).await,
            Message::Binary(b) => frame(&shared, conn, admin, &b, &link).await,
            Message::Ping(p) => link.push(conn, Out::Pong(p)),
            Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(_) => break,
        }
    }
    shared.conns.lock().remove(&conn);
    // The socket is gone: its sessions die now or wait for a claim (core's decision).
    shared.handle.gone(conn);
    let killed = tx.try_send(Out::Close).is_err();
    drop(tx);
    drop(link);
    if killed {
        // The client stopped reading: don't wait for it to drain the queue.
        writer.abort();
    } else {
        let _ = tokio::time::timeout(Duration::from_secs(5), writer).await;
    }
    tracing::debug!(%peer, conn, "WebSocket closed");
}

/// One WebSocket message: one or more concatenated JSON values. If any fails to parse, none is
/// processed and a single 454 is answered, as Janus does. Like Janus's parser, a bare scalar is
/// no valid message (only objects and arrays are).
async fn frame(shared: &Shared, conn: u64, admin: bool, data: &[u8], link: &Link) {
    let mut values = Vec::new();
    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
    let mut failure = None;
    loop {
        let start = stream.byte_offset();
        match stream.next() {
            None => break,
            Some(Ok(v)) if v.is_object() || v.is_array() => values.push(Ok(v)),
            Some(Ok(_)) => {
                let (line, col) = position(data, start);
                failure = Some(format!("<string>({line},{col}): '[' or '{{' expected"));
                break;
            }
            Some(Err(e)) => {
                failure = Some(jano_api::json::complaint(&e));
                break;
            }
        }
    }
    if let Some(detail) = failure {
        // The core words it: "Invalid Janus API request - <detail>"; nothing else is processed.
        values = vec![Err(detail)];
    } else if values.is_empty() {
        let err = JanusError::new(
            ErrorCode::InvalidJson,
            "Invalid Janus API request - empty message",
        );
        link.push(conn, Out::Json(msg::error(0, None, &err)));
        return;
    }
    for input in values {
        // Backpressure: take the request only when its response has a slot and events keep
        // their headroom. A client that does not read is simply not read from. The wait holds
        // no slot (a pending multi-slot reservation would take the headroom from events).
        let permit = loop {
            if link.tx.capacity() > EVENT_HEADROOM {
                match link.tx.try_reserve() {
                    Ok(p) => break p,
                    Err(mpsc::error::TrySendError::Closed(())) => return,
                    Err(mpsc::error::TrySendError::Full(())) => {}
                }
            }
            tokio::select! {
                _ = link.room.notified() => {}
                _ = link.kill.notified() => {
                    // Pass the alarm on to the connection loop, which closes the socket.
                    link.kill.notify_one();
                    return;
                }
            }
        };
        let respond = |resp: Value| permit.send(Out::Json(resp));
        if admin {
            shared.handle.admin_request(conn, input, respond);
        } else {
            shared.handle.request(conn, input, respond);
        }
    }
}

/// 1-based line and column of a byte offset, for parser messages.
fn position(data: &[u8], offset: usize) -> (usize, usize) {
    let before = data.get(..offset).unwrap_or(data);
    let line = 1 + before.iter().filter(|b| **b == b'\n').count();
    let col = 1 + before.iter().rev().take_while(|b| **b != b'\n').count();
    (line, col)
}
