//! Janus API over HTTP: one keep-alive hyper connection pool shared by all clients.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, ACCEPT, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use tokio::time::Instant;

use crate::janus;
use crate::stats::{Failure, Kind};

#[derive(Clone)]
pub struct HttpApi {
    client: Client<HttpConnector, Full<Bytes>>,
    /// e.g. `http://127.0.0.1:8088/janus` (no trailing slash).
    base: String,
}

/// Outcome of a long poll.
pub enum Poll {
    /// A JSON object (event, keepalive, ...).
    Object(Value),
    /// HTTP 404: the session is unknown to the transport.
    NotFound,
}

impl HttpApi {
    pub fn new(base: &str, connect_timeout: Duration) -> HttpApi {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(connect_timeout));
        conn.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(usize::MAX)
            .build(conn);
        HttpApi {
            client,
            base: base.trim_end_matches('/').to_string(),
        }
    }

    /// `POST <base><path>` with a JSON body; the answer must be HTTP 200 with a JSON object.
    pub async fn post(
        &self,
        kind: Kind,
        path: &str,
        body: String,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        let (status, bytes) = self
            .call(kind, Method::POST, path, Some(body), deadline)
            .await?;
        if status != StatusCode::OK {
            return Err(status_failure(kind, status, &bytes));
        }
        janus::parse(kind, &bytes)
    }

    /// Long poll `GET <base>/<sid>?maxev=1&rid=<ms>`.
    pub async fn poll(&self, kind: Kind, sid: u64, deadline: Instant) -> Result<Poll, Failure> {
        let rid = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let path = format!("/{sid}?maxev=1&rid={rid}");
        let (status, bytes) = self.call(kind, Method::GET, &path, None, deadline).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Poll::NotFound);
        }
        if status != StatusCode::OK {
            return Err(status_failure(kind, status, &bytes));
        }
        janus::parse(kind, &bytes).map(Poll::Object)
    }

    async fn call(
        &self,
        kind: Kind,
        method: Method,
        path: &str,
        body: Option<String>,
        deadline: Instant,
    ) -> Result<(StatusCode, Bytes), Failure> {
        let uri = format!("{}{}", self.base, path);
        let mut builder = Request::builder()
            .method(method)
            .uri(&uri)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if body.is_some() {
            builder = builder.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let req = builder
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| Failure::new(kind, "cannot build request", format!("{uri}: {e}")))?;
        let fut = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let cat = if e.is_connect() {
                    "connect error"
                } else {
                    "HTTP error (connection closed?)"
                };
                Failure::new(kind, cat, format!("{uri}: {e:?}"))
            })?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| Failure::new(kind, "HTTP body error", format!("{uri}: {e}")))?
                .to_bytes();
            Ok((status, bytes))
        };
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(r) => r,
            Err(_) => Err(Failure::new(
                kind,
                "timeout",
                format!("no answer for {uri}"),
            )),
        }
    }
}

fn status_failure(kind: Kind, status: StatusCode, bytes: &[u8]) -> Failure {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    Failure::new(kind, format!("HTTP status {}", status.as_u16()), text)
}
