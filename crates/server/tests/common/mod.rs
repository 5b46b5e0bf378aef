//! Shared helpers for the jano integration tests: an in-process server, a tiny HTTP client
//! (hyper 1, one connection per request), a WebSocket client (tokio-tungstenite), and a few
//! Janus API shortcuts. Every network wait is bounded.

#![allow(dead_code)]

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The default bound on a single request/response exchange.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// The admin secret every test server uses.
pub const ADMIN_SECRET: &str = "secret";
pub const ECHOTEST: &str = "janus.plugin.echotest";
pub const MAX_ID: u64 = (1 << 53) - 1;

static TX: AtomicU64 = AtomicU64::new(1);

/// A fresh transaction string.
pub fn tx() -> String {
    format!("tx{}", TX.fetch_add(1, Ordering::Relaxed))
}

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// What a test server should look like.
#[derive(Clone, Default)]
pub struct Opts {
    pub session_timeout: Option<u64>,
    pub reclaim_session_timeout: Option<u64>,
    pub apisecret: Option<String>,
    pub token_auth: bool,
}

pub struct Server {
    pub running: Option<jano::Running>,
    pub http: SocketAddr,
    pub admin_http: SocketAddr,
    pub ws: SocketAddr,
    pub admin_ws: SocketAddr,
}

impl Server {
    pub async fn start(opts: Opts) -> Server {
        Server::start_with(opts, jano_config::ConfigSet::builtin()).await
    }

    /// Starts with a given configuration (e.g. the built-in one with a few fields changed).
    pub async fn start_with(opts: Opts, cfg: jano_config::ConfigSet) -> Server {
        let args = jano::Args {
            http_port: Some(0),
            ws_port: Some(0),
            admin_http_port: Some(0),
            admin_ws_port: Some(0),
            bind: Some("127.0.0.1".into()),
            session_timeout: Some(opts.session_timeout.unwrap_or(60)),
            reclaim_session_timeout: opts.reclaim_session_timeout,
            apisecret: opts.apisecret.clone(),
            token_auth: opts.token_auth,
            admin_secret: Some(ADMIN_SECRET.into()),
            ..Default::default()
        };
        let running = tokio::time::timeout(IO_TIMEOUT, jano::start(&args, cfg, |_| {}))
            .await
            .expect("server start timed out")
            .expect("server start failed");
        let http = running.http_addr().expect("http addr");
        let admin_http = running.admin_http_addr().expect("admin http addr");
        let ws = running.ws_addr().expect("ws addr");
        let admin_ws = running.admin_ws_addr().expect("admin ws addr");
        for a in [http, admin_http, ws, admin_ws] {
            assert!(a.ip().is_loopback(), "listener not on loopback: {a}");
        }
        Server {
            running: Some(running),
            http,
            admin_http,
            ws,
            admin_ws,
        }
    }

    pub async fn default() -> Server {
        Server::start(Opts::default()).await
    }

    pub async fn shutdown(mut self) {
        if let Some(r) = self.running.take() {
            tokio::time::timeout(IO_TIMEOUT, r.shutdown())
                .await
                .expect("shutdown timed out");
        }
    }

    pub fn running(&self) -> &jano::Running {
        self.running.as_ref().expect("server running")
    }

    // --- Janus API over HTTP ------------------------------------------------------------------

    /// POSTs `body` to `path` on the Janus API and returns the JSON (asserting HTTP 200 + JSON).
    pub async fn post(&self, path: &str, body: Value) -> Value {
        post_json(self.http, path, &body).await
    }

    /// `create` and return the new session id.
    pub async fn create(&self) -> u64 {
        let r = self
            .post("/janus", json!({"janus":"create","transaction":tx()}))
            .await;
        assert_eq!(r["janus"], "success", "create failed: {r}");
        r["data"]["id"].as_u64().expect("data.id")
    }

    /// With token auth on: stores a token for every plugin and creates a session with it.
    pub async fn create_with_token_admin(&self) -> u64 {
        let v = self
            .admin(
                "/admin",
                json!({"janus":"add_token","token":"helper-token"}),
            )
            .await;
        assert_eq!(v["janus"], "success", "add_token: {v}");
        let r = self
            .post(
                "/janus",
                json!({"janus":"create","token":"helper-token","transaction":tx()}),
            )
            .await;
        assert_eq!(r["janus"], "success", "create: {r}");
        r["data"]["id"].as_u64().expect("data.id")
    }

    /// `attach` to EchoTest and return the handle id.
    pub async fn attach(&self, sid: u64) -> u64 {
        let r = self
            .post(
                &format!("/janus/{sid}"),
                json!({"janus":"attach","plugin":ECHOTEST,"transaction":tx()}),
            )
            .await;
        assert_eq!(r["janus"], "success", "attach failed: {r}");
        r["data"]["id"].as_u64().expect("data.id")
    }

    /// A long poll (`GET /janus/<sid>?<query>`), bounded by `limit`.
    pub async fn poll(&self, sid: u64, query: &str, limit: Duration) -> HttpResp {
        let path = if query.is_empty() {
            format!("/janus/{sid}")
        } else {
            format!("/janus/{sid}?{query}")
        };
        http_request_timeout(self.http, Method::GET, &path, &[], None, limit)
            .await
            .expect("long poll failed")
    }

    /// A long poll expected to answer with JSON quickly (an event is already queued or coming).
    pub async fn poll_json(&self, sid: u64, query: &str) -> Value {
        let r = self.poll(sid, query, IO_TIMEOUT).await;
        assert_eq!(r.status, StatusCode::OK, "poll status; body {:?}", r.text());
        r.json()
    }

    /// Whether a fresh `info` still works (the server survived whatever came before).
    pub async fn assert_alive(&self) {
        let r = self
            .post("/janus", json!({"janus":"info","transaction":"alive"}))
            .await;
        assert_eq!(
            r["janus"], "server_info",
            "server no longer answers info: {r}"
        );
    }

    // --- Admin API over HTTP ------------------------------------------------------------------

    /// POSTs an admin request (the admin secret is added unless the body already has one).
    pub async fn admin(&self, path: &str, mut body: Value) -> Value {
        if let Value::Object(m) = &mut body {
            m.entry("admin_secret")
                .or_insert_with(|| Value::String(ADMIN_SECRET.into()));
            m.entry("transaction")
                .or_insert_with(|| Value::String(tx()));
        }
        post_json(self.admin_http, path, &body).await
    }

    /// The session ids admin `list_sessions` reports.
    pub async fn list_sessions(&self) -> Vec<u64> {
        let r = self.admin("/admin", json!({"janus":"list_sessions"})).await;
        assert_eq!(r["janus"], "success", "list_sessions: {r}");
        r["sessions"]
            .as_array()
            .expect("sessions array")
            .iter()
            .map(|v| v.as_u64().expect("session id"))
            .collect()
    }

    /// Waits (bounded) until `list_sessions` does / does not contain `sid`.
    pub async fn wait_session_listed(&self, sid: u64, listed: bool, limit: Duration) {
        let ok = wait_until(limit, || async {
            self.list_sessions().await.contains(&sid) == listed
        })
        .await;
        assert!(
            ok,
            "session {sid} {} in list_sessions after {limit:?}",
            if listed { "never appeared" } else { "still" }
        );
    }

    // --- WebSockets ---------------------------------------------------------------------------

    pub async fn ws(&self) -> WsClient {
        WsClient::connect(self.ws, Some("janus-protocol"))
            .await
            .expect("ws connect")
    }

    pub async fn admin_ws(&self) -> WsClient {
        WsClient::connect(self.admin_ws, Some("janus-admin-protocol"))
            .await
            .expect("admin ws connect")
    }
}

/// Repeats `check` every 100 ms until it holds or `limit` passes.
pub async fn wait_until<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts the standard Janus error shape and code; returns the reason.
#[track_caller]
pub fn assert_error(v: &Value, code: u64) -> String {
    assert_eq!(v["janus"], "error", "expected error {code}, got {v}");
    assert_eq!(v["error"]["code"], code, "wrong error code in {v}");
    v["error"]["reason"]
        .as_str()
        .expect("error.reason string")
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// HTTP client
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
pub struct HttpResp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl HttpResp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[track_caller]
    pub fn assert_json_200(&self) {
        assert_eq!(
            self.status,
            StatusCode::OK,
            "status; body {:?}",
            self.text()
        );
        assert_eq!(
            self.header("content-type").as_deref(),
            Some("application/json"),
            "content-type"
        );
    }
}

pub async fn http_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Result<HttpResp, String> {
    http_request_timeout(addr, method, path, headers, body, IO_TIMEOUT).await
}

/// One request on a fresh connection, bounded by `limit`.
pub async fn http_request_timeout(
    addr: SocketAddr,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
    limit: Duration,
) -> Result<HttpResp, String> {
    let fut = async move {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        let conn_task = tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut b = Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let req = b
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| format!("request: {e}"))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        conn_task.abort();
        Ok(HttpResp {
            status,
            headers,
            body,
        })
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(format!("HTTP request timed out after {limit:?}")),
    }
}

/// POSTs JSON and returns the response JSON, asserting HTTP 200 + `application/json`.
pub async fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Value {
    post_raw(addr, path, serde_json::to_vec(body).unwrap()).await
}

/// POSTs raw bytes and returns the response JSON, asserting HTTP 200 + `application/json`.
pub async fn post_raw(addr: SocketAddr, path: &str, body: Vec<u8>) -> Value {
    let r = http_request(addr, Method::POST, path, &[], Some(body))
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    r.assert_json_200();
    r.json()
}

// ---------------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------------

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    pub ws: Ws,
}

/// What came back instead of a JSON message.
#[derive(Debug)]
pub enum WsEnd {
    Closed,
    Timeout,
    Error(String),
}

impl WsClient {
    /// Connects offering `protocol` (the raw `Sec-WebSocket-Protocol` value), or none.
    pub async fn connect(addr: SocketAddr, protocol: Option<&str>) -> Result<WsClient, String> {
        let mut req = format!("ws://{addr}/")
            .into_client_request()
            .map_err(|e| e.to_string())?;
        if let Some(p) = protocol {
            req.headers_mut().insert(
                "Sec-WebSocket-Protocol",
                HeaderValue::from_str(p).map_err(|e| e.to_string())?,
            );
        }
        match tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::connect_async(req)).await {
            Ok(Ok((ws, _resp))) => Ok(WsClient { ws }),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("WebSocket handshake timed out".into()),
        }
    }

    pub async fn send_json(&mut self, v: &Value) {
        self.send(Message::text(v.to_string())).await;
    }

    pub async fn send_text(&mut self, s: &str) {
        self.send(Message::text(s.to_owned())).await;
    }

    pub async fn send(&mut self, m: Message) {
        tokio::time::timeout(IO_TIMEOUT, self.ws.send(m))
            .await
            .expect("ws send timed out")
            .expect("ws send failed");
    }

    /// The next data message as JSON (control frames skipped), or why there is none.
    pub async fn next_json(&mut self, limit: Duration) -> Result<Value, WsEnd> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(WsEnd::Timeout),
                Ok(None) => return Err(WsEnd::Closed),
                Ok(Some(Err(e))) => return Err(WsEnd::Error(e.to_string())),
                Ok(Some(Ok(m))) => m,
            };
            match next {
                Message::Text(t) => {
                    return Ok(serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server sent non-JSON ({e}): {t}")))
                }
                Message::Binary(b) => {
                    return Ok(serde_json::from_slice(&b)
                        .unwrap_or_else(|e| panic!("server sent non-JSON binary ({e})")))
                }
                Message::Close(_) => return Err(WsEnd::Closed),
                _ => continue,
            }
        }
    }

    /// The next JSON message, which must arrive within [`IO_TIMEOUT`].
    pub async fn recv(&mut self) -> Value {
        match self.next_json(IO_TIMEOUT).await {
            Ok(v) => v,
            Err(e) => panic!("expected a WebSocket message, got {e:?}"),
        }
    }

    /// Asserts nothing arrives for `d`.
    pub async fn expect_silence(&mut self, d: Duration) {
        if let Ok(v) = self.next_json(d).await {
            panic!("unexpected WebSocket message: {v}");
        }
    }

    /// Sends a request and returns the next message (the response, when nothing else is due).
    pub async fn request(&mut self, v: Value) -> Value {
        self.send_json(&v).await;
        self.recv().await
    }

    pub async fn create(&mut self) -> u64 {
        let t = tx();
        let r = self
            .request(json!({"janus":"create","transaction":t}))
            .await;
        assert_eq!(r["janus"], "success", "create: {r}");
        assert_eq!(r["transaction"], t.as_str());
        r["data"]["id"].as_u64().expect("data.id")
    }

    pub async fn attach(&mut self, sid: u64) -> u64 {
        let t = tx();
        let r = self
            .request(json!({"janus":"attach","session_id":sid,"plugin":ECHOTEST,"transaction":t}))
            .await;
        assert_eq!(r["janus"], "success", "attach: {r}");
        assert_eq!(r["transaction"], t.as_str());
        r["data"]["id"].as_u64().expect("data.id")
    }

    /// Admin request over an admin socket (secret added unless present).
    pub async fn admin(&mut self, mut v: Value) -> Value {
        if let Value::Object(m) = &mut v {
            m.entry("admin_secret")
                .or_insert_with(|| Value::String(ADMIN_SECRET.into()));
            m.entry("transaction")
                .or_insert_with(|| Value::String(tx()));
        }
        self.request(v).await
    }

    pub async fn close(mut self) {
        let _ = tokio::time::timeout(IO_TIMEOUT, self.ws.close(None)).await;
        // Drain until the server's close arrives (bounded).
        let _ = tokio::time::timeout(IO_TIMEOUT, async {
            while let Some(Ok(_)) = self.ws.next().await {}
        })
        .await;
    }
}
