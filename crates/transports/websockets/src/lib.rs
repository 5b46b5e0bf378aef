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
use jano_runtime::{acl_allows, Listener, Runtime, TransportHandle, TransportSink};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
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

/// Messages waiting for a slow client beyond this close its socket rather than growing memory.
const OUTBOUND_QUEUE: usize = 8192;

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

/// The sockets by instance id: the transport's [`TransportSink`].
#[derive(Default)]
struct Conns {
    map: Mutex<HashMap<u64, mpsc::Sender<Out>>>,
}

impl Conns {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<Out>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, conn: u64, out: Out) {
        let full = match self.lock().get(&conn) {
            Some(tx) => tx.try_send(out).is_err(),
            None => false,
        };
        if full {
            tracing::warn!(conn, "WebSocket client too slow: closing");
            self.lock().remove(&conn);
        }
    }
}

impl TransportSink for Conns {
    fn send_event(&self, conn: u64, _session_id: u64, event: Value) {
        self.send(conn, Out::Json(event));
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
        let conns: Vec<mpsc::Sender<Out>> = self.shared.conns.lock().values().cloned().collect();
        for tx in conns {
            let _ = tx.try_send(Out::Close);
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
    if let Some(l) = &settings.api {
        let listener = TcpListener::bind(l.addr).await?;
        api_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %l.addr, "WebSockets Janus API listening");
        tokio::spawn(accept_loop(
            listener,
            l.acl.clone(),
            false,
            shared.clone(),
            stopped.clone(),
        ));
    }
    if let Some(l) = &settings.admin {
        let listener = TcpListener::bind(l.addr).await?;
        admin_addr = Some(listener.local_addr()?);
        tracing::info!(addr = %l.addr, "WebSockets Admin API listening");
        tokio::spawn(accept_loop(
            listener,
            l.acl.clone(),
            true,
            shared.clone(),
            stopped,
        ));
    }
    Ok(WsServer {
        api_addr,
        admin_addr,
        stop,
        shared,
    })
}

async fn accept_loop(
    listener: TcpListener,
    acl: Vec<String>,
    admin: bool,
    shared: Arc<Shared>,
    mut stopped: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stopped.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "WebSocket accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if !acl_allows(&acl, &peer) {
            tracing::debug!(%peer, "WebSocket connection refused by ACL");
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let stopped = stopped.clone();
        tokio::spawn(async move {
            connection(stream, peer, admin, shared, stopped).await;
        });
    }
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
    let config = WebSocketConfig::default()
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
    shared.conns.lock().insert(conn, tx.clone());
    tracing::debug!(%peer, conn, admin, "WebSocket connected");
    let (mut sink, mut stream) = ws.split();
    let format = settings.json;
    let writer = tokio::spawn(async move {
        while let Some(out) = rx.recv().await {
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
                let _ = tx.try_send(Out::Ping);
                awaiting_pong = Some(tokio::time::Instant::now() + pong_wait);
                continue;
            }
            _ = stopped.changed() => break,
        };
        let Some(Ok(m)) = next else { break };
        awaiting_pong = None;
        match m {
            Message::Text(t) => frame(&shared, conn, admin, t.as_bytes(), &tx),
            Message::Binary(b) => frame(&shared, conn, admin, &b, &tx),
            Message::Ping(p) => {
                let _ = tx.try_send(Out::Pong(p));
            }
            Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(_) => break,
        }
    }
    shared.conns.lock().remove(&conn);
    // The socket is gone: its sessions die now or wait for a claim (core's decision).
    shared.handle.gone(conn);
    let _ = tx.try_send(Out::Close);
    drop(tx);
    let _ = writer.await;
    tracing::debug!(%peer, conn, "WebSocket closed");
}

/// One WebSocket message: one or more concatenated JSON values. If any fails to parse, none is
/// processed and a single 454 is answered, as Janus does.
fn frame(shared: &Shared, conn: u64, admin: bool, data: &[u8], tx: &mpsc::Sender<Out>) {
    let mut values = Vec::new();
    for item in serde_json::Deserializer::from_slice(data).into_iter::<Value>() {
        match item {
            Ok(v) => values.push(v),
            Err(e) => {
                // The core words it: "Invalid Janus API request - <string>(line,col): text".
                let detail = format!(
                    "<string>({},{}): {}",
                    e.line(),
                    e.column(),
                    strip_position(&e.to_string())
                );
                let respond = |resp: Value| {
                    let _ = tx.try_send(Out::Json(resp));
                };
                if admin {
                    shared.handle.admin_request(conn, Err(detail), respond);
                } else {
                    shared.handle.request(conn, Err(detail), respond);
                }
                return;
            }
        }
    }
    if values.is_empty() {
        let err = JanusError::new(
            ErrorCode::InvalidJson,
            "Invalid Janus API request - empty message",
        );
        let _ = tx.try_send(Out::Json(msg::error(0, None, &err)));
        return;
    }
    for v in values {
        let respond = |resp: Value| {
            if tx.try_send(Out::Json(resp)).is_err() {
                tracing::warn!(conn, "WebSocket outbound queue full");
            }
        };
        if admin {
            shared.handle.admin_request(conn, Ok(v), respond);
        } else {
            shared.handle.request(conn, Ok(v), respond);
        }
    }
}

fn strip_position(s: &str) -> &str {
    s.rsplit_once(" at line ").map(|(a, _)| a).unwrap_or(s)
}
