//! Listeners, routing and the HTTP-specific rules (status codes, CORS, path ids, long polls).

use crate::longpoll::Queues;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming as Body};
use hyper::header::{HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jano_api::json::JsonFormat;
use jano_api::{msg, ErrorCode, JanusError, Map, Value};
use jano_runtime::{listen, Listener, Runtime, TransportHandle};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long a request body may take to arrive.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an idle long poll waits before answering `keepalive`.
const LONG_POLL: Duration = Duration::from_secs(30);

/// The HTTP transport's settings (the server fills them from `janus.transport.http.jcfg`).
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub api: Option<Listener>,
    pub admin: Option<Listener>,
    pub base_path: String,
    pub admin_base_path: String,
    pub json: JsonFormat,
    /// `Access-Control-Allow-Origin` value; `None` = `*`.
    pub allow_origin: Option<String>,
    pub enforce_cors: bool,
    /// Most simultaneous connections per listener (Janus: `mhd_connection_limit`).
    pub connection_limit: usize,
    /// Largest request body accepted, in bytes.
    pub max_body: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            api: None,
            admin: None,
            base_path: "/janus".into(),
            admin_base_path: "/admin".into(),
            json: JsonFormat::Compact,
            allow_origin: None,
            enforce_cors: false,
            connection_limit: 1020,
            max_body: 1 << 20,
        }
    }
}

struct State {
    handle: TransportHandle,
    queues: Arc<Queues>,
    settings: HttpSettings,
}

/// A running HTTP transport.
pub struct HttpServer {
    /// The addresses actually bound (useful with port 0).
    pub api_addr: Option<SocketAddr>,
    pub admin_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    state: Arc<State>,
}

impl HttpServer {
    /// Stops accepting connections.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Sessions with an event queue (for diagnostics and tests).
    pub fn queued_sessions(&self) -> usize {
        self.state.queues.len()
    }
}

/// Binds the configured listeners and serves until [`HttpServer::stop`].
pub async fn serve(rt: &Runtime, settings: HttpSettings) -> std::io::Result<HttpServer> {
    let queues = Arc::new(Queues::default());
    let handle = rt.register_transport(crate::INFO, queues.clone());
    let state = Arc::new(State {
        handle,
        queues,
        settings: settings.clone(),
    });
    let (stop, stopped) = watch::channel(false);
    let limit = settings.connection_limit;
    let mut api_addr = None;
    let mut admin_addr = None;
    for (spec, admin) in [(&settings.api, false), (&settings.admin, true)] {
        let Some(spec) = spec else { continue };
        let what = if admin {
            "HTTP Admin API"
        } else {
            "HTTP Janus API"
        };
        let state = state.clone();
        let conn_stopped = stopped.clone();
        let addr = listen(spec, what, limit, stopped.clone(), move |stream, _peer| {
            serve_connection(stream, admin, state.clone(), conn_stopped.clone())
        })
        .await?;
        if admin {
            admin_addr = Some(addr);
        } else {
            api_addr = Some(addr);
        }
    }
    Ok(HttpServer {
        api_addr,
        admin_addr,
        stop,
        state,
    })
}

/// One HTTP/1.1 connection (keep-alive), until it ends or the server stops.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    admin: bool,
    state: Arc<State>,
    mut stopped: watch::Receiver<bool>,
) {
    let svc = hyper::service::service_fn(move |req| {
        let state = state.clone();
        async move { Ok::<_, std::convert::Infallible>(route(&state, admin, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::trace!(error = %e, "HTTP connection ended");
            }
        }
        _ = stopped.changed() => {}
    }
}

type Resp = Response<Full<Bytes>>;

/// The request headers a CORS answer echoes.
struct Preflight {
    methods: Option<HeaderValue>,
    headers: Option<HeaderValue>,
}

fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = status;
    r
}

impl State {
    fn json(&self, v: &Value) -> Resp {
        self.json_status(StatusCode::OK, v)
    }

    fn json_status(&self, status: StatusCode, v: &Value) -> Resp {
        let mut r = Response::new(Full::new(Bytes::from(self.settings.json.to_vec(v))));
        *r.status_mut() = status;
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }

    fn cors(&self, preflight: Preflight, resp: &mut Resp) {
        let h = resp.headers_mut();
        match &self.settings.allow_origin {
            None => {
                h.insert("Access-Control-Allow-Origin", HeaderValue::from_static("*"));
            }
            Some(o) => {
                if let Ok(v) = HeaderValue::from_str(o) {
                    h.insert("Access-Control-Allow-Origin", v);
                }
                h.insert(
                    "Access-Control-Allow-Credentials",
                    HeaderValue::from_static("true"),
                );
                h.insert("Vary", HeaderValue::from_static("Origin"));
            }
        }
        h.insert("Access-Control-Max-Age", HeaderValue::from_static("86400"));
        if let Some(m) = preflight.methods {
            h.insert("Access-Control-Allow-Methods", m);
        }
        if let Some(m) = preflight.headers {
            h.insert("Access-Control-Allow-Headers", m);
        }
    }

    fn origin_allowed(&self, headers: &HeaderMap) -> bool {
        let (true, Some(allowed)) = (self.settings.enforce_cors, &self.settings.allow_origin)
        else {
            return true;
        };
        let origin = headers
            .get("origin")
            .or_else(|| headers.get("referer"))
            .and_then(|v| v.to_str().ok());
        origin.is_some_and(|o| o.starts_with(allowed.as_str()))
    }
}

/// The path below the base, split into components, or `None` when not under the base.
fn components<'a>(path: &'a str, base: &str) -> Option<Vec<&'a str>> {
    let rest = path.strip_prefix(base)?;
    if !(rest.is_empty() || rest.starts_with('/')) {
        return None;
    }
    Some(rest.split('/').filter(|c| !c.is_empty()).collect())
}

/// A path id. Janus reads them as unsigned 64-bit numbers; anything else is no valid path.
fn path_id(s: &str) -> Option<u64> {
    s.parse::<u64>().ok()
}

/// A query-string value, percent-decoded (janus.js encodes secrets and signed tokens, whose
/// base64 has `+`, `/` and `=`). A `+` stays a `+`: raw tokens are base64, not form data.
fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| percent_decode(v))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|c| (*c as char).to_digit(16));
        match (bytes.get(i), hex(i + 1), hex(i + 2)) {
            (Some(b'%'), Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (Some(c), _, _) => {
                out.push(*c);
                i += 1;
            }
            (None, _, _) => break,
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn route(state: &Arc<State>, admin: bool, req: Request<Body>) -> Resp {
    // Only what CORS needs is kept from the request headers (no copy of the whole map).
    let preflight = Preflight {
        methods: req.headers().get("access-control-request-method").cloned(),
        headers: req.headers().get("access-control-request-headers").cloned(),
    };
    let mut resp = if !state.origin_allowed(req.headers()) {
        empty(StatusCode::FORBIDDEN)
    } else if admin {
        route_admin(state, req).await
    } else {
        route_api(state, req).await
    };
    state.cors(preflight, &mut resp);
    resp
}

fn transport_error(state: &State, text: String) -> Resp {
    let e = JanusError::new(ErrorCode::TransportSpecific, text);
    state.json(&msg::error(0, None, &e))
}

/// Reads the body within the size limit: `Err` is the response to send instead.
async fn read_body(state: &State, req: Request<Body>) -> Result<Bytes, Resp> {
    let limit = state.settings.max_body;
    // Janus ends a request that is not answered within 10 s; here answering is immediate, so
    // the only thing that can take that long is a client trickling its body in.
    let collected = tokio::time::timeout(
        REQUEST_TIMEOUT,
        Limited::new(req.into_body(), limit).collect(),
    );
    let Ok(collected) = collected.await else {
        return Err(empty(StatusCode::REQUEST_TIMEOUT));
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                let err = JanusError::new(
                    ErrorCode::TransportSpecific,
                    format!("Request too large (the limit is {limit} bytes)"),
                );
                Err(state.json_status(StatusCode::PAYLOAD_TOO_LARGE, &msg::error(0, None, &err)))
            } else {
                Err(empty(StatusCode::BAD_REQUEST))
            }
        }
    }
}

/// Parses a request body. Like Janus's HTTP transport, only a JSON object is handed on: a
/// parse failure or a bare scalar is 454, an array 455 — answered here, as Janus does.
fn parse(body: &[u8]) -> Result<Map<String, Value>, JanusError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(Value::Array(_)) => Err(JanusError::new(
            ErrorCode::InvalidJsonObject,
            "JSON error: not an object",
        )),
        Ok(_) => Err(JanusError::new(
            ErrorCode::InvalidJson,
            "JSON error: on line 1: '[' or '{' expected",
        )),
        Err(e) => Err(JanusError::new(
            ErrorCode::InvalidJson,
            format!(
                "JSON error: on line {}: {}",
                e.line(),
                jano_api::json::parser_text(&e)
            ),
        )),
    }
}

fn payload_missing(state: &State) -> Resp {
    let e = JanusError::new(ErrorCode::InvalidJson, "Request payload missing");
    state.json(&msg::error(0, None, &e))
}

/// Puts the path's ids into the body; a different id already there is error 457.
fn inject_ids(
    root: &mut Map<String, Value>,
    sid: Option<u64>,
    hid: Option<u64>,
) -> Result<(), Value> {
    for (name, id, what) in [("session_id", sid, "session"), ("handle_id", hid, "handle")] {
        let Some(id) = id else { continue };
        match root.get(name).and_then(Value::as_u64) {
            Some(existing) if existing != id => {
                let e = JanusError::new(
                    ErrorCode::InvalidRequestPath,
                    format!("Conflicting {what} ID (payload and path)"),
                );
                // Janus answers this one with neither session_id nor transaction.
                return Err(msg::error(0, None, &e));
            }
            _ => {
                root.insert(name.into(), id.into());
            }
        }
    }
    Ok(())
}

async fn route_api(state: &Arc<State>, req: Request<Body>) -> Resp {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().map(str::to_owned);
    let Some(parts) = components(&path, &state.settings.base_path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if parts.len() > 2 {
        return empty(StatusCode::NOT_FOUND);
    }
    let method = req.method().clone();
    match method {
        Method::OPTIONS => empty(StatusCode::OK),
        Method::GET => {
            match parts.as_slice() {
                [] => {
                    let e = JanusError::new(
                        ErrorCode::TransportSpecific,
                        "Use POST to create a session",
                    );
                    state.json(&msg::error(0, None, &e))
                }
                ["info"] | ["ping"] => {
                    let verb = parts.first().copied().unwrap_or("info");
                    let tx = state.handle.random_transaction();
                    let body = serde_json::json!({"janus": verb, "transaction": tx});
                    state.handle.request(0, Ok(body), |v| state.json(&v))
                }
                [sid] => match path_id(sid) {
                    Some(sid) if sid > 0 => long_poll(state, sid, query.as_deref()).await,
                    _ => empty(StatusCode::NOT_FOUND),
                },
                [sid, _hid] => match path_id(sid) {
                    Some(sid) if sid > 0 => {
                        // Janus answers a GET on a handle by counting it as session activity
                        // and redirecting to the session's poll endpoint.
                        let _ = keepalive(state, sid, query.as_deref());
                        let mut r = empty(StatusCode::FOUND);
                        let loc = format!("{}/{}", state.settings.base_path, sid);
                        if let Ok(v) = HeaderValue::from_str(&loc) {
                            r.headers_mut().insert(hyper::header::LOCATION, v);
                        }
                        r
                    }
                    _ => empty(StatusCode::NOT_FOUND),
                },
                _ => empty(StatusCode::NOT_FOUND),
            }
        }
        Method::POST => {
            if matches!(parts.as_slice(), ["info"] | ["ping"]) {
                return empty(StatusCode::BAD_REQUEST);
            }
            post(state, req, &parts, false).await
        }
        other => transport_error(state, format!("Unsupported method {other}")),
    }
}

/// What Janus's synthetic keepalive does for a poll: credentials checked, session refreshed.
fn keepalive(state: &State, sid: u64, query: Option<&str>) -> bool {
    let apisecret = query_param(query, "apisecret");
    let token = query_param(query, "token");
    state
        .handle
        .touch_session(sid, apisecret.as_deref(), token.as_deref())
}

async fn long_poll(state: &Arc<State>, sid: u64, query: Option<&str>) -> Resp {
    if !keepalive(state, sid, query) {
        return empty(StatusCode::FORBIDDEN);
    }
    let Some(queue) = state.queues.get(sid) else {
        return empty(StatusCode::NOT_FOUND);
    };
    let maxev = query_param(query, "maxev")
        .and_then(|m| m.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1) as usize;
    let answer = |events: Vec<Value>| -> Resp {
        if maxev == 1 {
            match events.into_iter().next() {
                Some(ev) => state.json(&ev),
                None => state.json(&serde_json::json!({"janus": "keepalive"})),
            }
        } else if events.is_empty() {
            state.json(&serde_json::json!([{"janus": "keepalive"}]))
        } else {
            state.json(&Value::Array(events))
        }
    };
    let notified = queue.notify.notified();
    tokio::pin!(notified);
    notified.as_mut().enable();
    let ready = queue.take(maxev);
    if !ready.is_empty() || queue.is_closed() {
        return answer(ready);
    }
    tokio::select! {
        _ = notified => answer(queue.take(maxev)),
        _ = tokio::time::sleep(LONG_POLL) => answer(Vec::new()),
    }
}

/// A POST on `<base>[/<session>[/<handle>]]`: body → ids from the path → the core.
async fn post(state: &Arc<State>, req: Request<Body>, parts: &[&str], admin: bool) -> Resp {
    let (sid, hid) = match parts {
        [] => (None, None),
        [s] => match path_id(s) {
            Some(s) => (Some(s), None),
            None => return empty(StatusCode::NOT_FOUND),
        },
        [s, h] => match (path_id(s), path_id(h)) {
            (Some(s), Some(h)) => (Some(s), Some(h)),
            _ => return empty(StatusCode::NOT_FOUND),
        },
        _ => return empty(StatusCode::NOT_FOUND),
    };
    let body = match read_body(state, req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.is_empty() {
        return payload_missing(state);
    }
    let mut root = match parse(&body) {
        Ok(root) => root,
        Err(e) => return state.json(&msg::error(0, None, &e)),
    };
    if let Err(v) = inject_ids(&mut root, sid, hid) {
        return state.json(&v);
    }
    let input = Ok(Value::Object(root));
    if admin {
        state.handle.admin_request(0, input, |v| state.json(&v))
    } else {
        // Every HTTP request is a transport instance of its own, as in Janus: the one that
        // creates (or claims) a session owns it, so a `claim` from any other request moves the
        // session to a fresh event queue.
        state
            .handle
            .request(state.handle.new_instance(), input, |v| state.json(&v))
    }
}

async fn route_admin(state: &Arc<State>, req: Request<Body>) -> Resp {
    let path = req.uri().path().to_owned();
    let Some(parts) = components(&path, &state.settings.admin_base_path) else {
        return empty(StatusCode::NOT_FOUND);
    };
    if parts.len() > 2 {
        return empty(StatusCode::NOT_FOUND);
    }
    let method = req.method().clone();
    match method {
        Method::OPTIONS => empty(StatusCode::OK),
        Method::GET => match parts.as_slice() {
            ["info"] | ["ping"] => {
                let verb = parts.first().copied().unwrap_or("info");
                let tx = state.handle.random_transaction();
                let body = serde_json::json!({"janus": verb, "transaction": tx});
                state.handle.admin_request(0, Ok(body), |v| state.json(&v))
            }
            _ => transport_error(state, "Use POST for Admin API requests".into()),
        },
        Method::POST => {
            if matches!(parts.as_slice(), ["info"] | ["ping"]) {
                return transport_error(state, "Use GET for the info endpoint".into());
            }
            post(state, req, &parts, true).await
        }
        other => transport_error(state, format!("Unsupported method {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_components() {
        assert_eq!(components("/janus", "/janus"), Some(vec![]));
        assert_eq!(components("/janus/", "/janus"), Some(vec![]));
        assert_eq!(components("/janus/1/2", "/janus"), Some(vec!["1", "2"]));
        assert_eq!(components("/janusx", "/janus"), None);
        assert_eq!(components("/other", "/janus"), None);
    }

    #[test]
    fn query_params() {
        let q = Some("rid=1&maxev=5&token=abc&flag");
        assert_eq!(query_param(q, "maxev").as_deref(), Some("5"));
        assert_eq!(query_param(q, "token").as_deref(), Some("abc"));
        assert_eq!(query_param(q, "flag").as_deref(), Some(""));
        let t = Some("token=1%2Cjanus%3AAb%2B%2F%3D&raw=a+b&bad=%zz%4");
        assert_eq!(query_param(t, "token").as_deref(), Some("1,janus:Ab+/="));
        assert_eq!(query_param(t, "raw").as_deref(), Some("a+b"));
        assert_eq!(query_param(t, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(query_param(q, "nope"), None);
        assert_eq!(query_param(None, "maxev"), None);
    }

    #[test]
    fn conflicting_ids() {
        let mut m = Map::new();
        m.insert("session_id".into(), 5.into());
        assert!(inject_ids(&mut m, Some(6), None).is_err());
        let mut m = Map::new();
        assert!(inject_ids(&mut m, Some(6), Some(7)).is_ok());
        assert_eq!(m.get("handle_id").and_then(Value::as_u64), Some(7));
    }
}
