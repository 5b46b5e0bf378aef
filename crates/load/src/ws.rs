//! Janus API over WebSockets (sub-protocol `janus-protocol`).

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::janus;
use crate::stats::{Failure, Kind, Unsolicited};

pub struct WsConn {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// Messages read that did not answer the pending request (e.g. `detached` events), by kind.
    pub unsolicited: Unsolicited,
}

impl WsConn {
    pub async fn connect(url: &str, deadline: Instant) -> Result<WsConn, Failure> {
        let k = Kind::Connect;
        let mut req = url
            .into_client_request()
            .map_err(|e| Failure::new(k, "invalid URL", format!("{url}: {e}")))?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("janus-protocol"),
        );
        let fut = tokio_tungstenite::connect_async_with_config(req, None, true);
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(Ok((ws, _resp))) => Ok(WsConn {
                ws,
                unsolicited: Unsolicited::default(),
            }),
            Ok(Err(e)) => Err(Failure::new(
                k,
                "WebSocket connect failed",
                format!("{url}: {e}"),
            )),
            Err(_) => Err(Failure::new(k, "timeout", format!("connecting to {url}"))),
        }
    }

    pub async fn send(
        &mut self,
        kind: Kind,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        match tokio::time::timeout_at(deadline, self.ws.send(Message::text(body))).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(Failure::new(kind, "WebSocket send failed", e.to_string())),
            Err(_) => Err(Failure::new(kind, "timeout", "sending")),
        }
    }

    /// Next JSON message from the server (pings are answered by tungstenite while reading).
    pub async fn recv(&mut self, kind: Kind, deadline: Instant) -> Result<Value, Failure> {
        loop {
            let msg = match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Err(Failure::new(kind, "timeout", "waiting for an answer")),
                Ok(None) => {
                    return Err(Failure::new(
                        kind,
                        "WebSocket closed by server",
                        "end of stream",
                    ))
                }
                Ok(Some(Err(e))) => {
                    return Err(Failure::new(kind, "WebSocket error", e.to_string()))
                }
                Ok(Some(Ok(m))) => m,
            };
            match msg {
                Message::Text(t) => return janus::parse(kind, t.as_bytes()),
                Message::Binary(b) => return janus::parse(kind, &b),
                Message::Close(c) => {
                    return Err(Failure::new(
                        kind,
                        "WebSocket closed by server",
                        format!("{c:?}"),
                    ))
                }
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
            }
        }
    }

    /// Next message answering transaction `tx`. Messages with another transaction, or without
    /// one (events such as `detached`), are skipped — except a transaction-less `error`, which
    /// Janus sends for first-level validation failures (e.g. unknown session) and is the answer.
    pub async fn recv_tx(
        &mut self,
        kind: Kind,
        tx: &str,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        loop {
            let v = self.recv(kind, deadline).await?;
            match janus::transaction(&v) {
                Some(t) if t == tx => return Ok(v),
                None if janus::janus_kind(&v) == "error" => return Ok(v),
                _ => self.unsolicited.add(&v),
            }
        }
    }

    /// Reads and discards whatever arrives until `deadline` (answers pings meanwhile).
    /// Returns an error only if the connection broke.
    pub async fn drain_until(&mut self, deadline: Instant) -> Result<(), Failure> {
        loop {
            match tokio::time::timeout_at(deadline, self.ws.next()).await {
                Err(_) => return Ok(()),
                Ok(None) => {
                    return Err(Failure::new(
                        Kind::Keepalive,
                        "WebSocket closed by server",
                        "end of stream",
                    ))
                }
                Ok(Some(Err(e))) => {
                    return Err(Failure::new(
                        Kind::Keepalive,
                        "WebSocket error",
                        e.to_string(),
                    ))
                }
                Ok(Some(Ok(Message::Close(c)))) => {
                    return Err(Failure::new(
                        Kind::Keepalive,
                        "WebSocket closed by server",
                        format!("{c:?}"),
                    ))
                }
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {}
                Ok(Some(Ok(Message::Text(t)))) => self.unsolicited.add_raw(t.as_bytes()),
                Ok(Some(Ok(Message::Binary(b)))) => self.unsolicited.add_raw(&b),
            }
        }
    }

    /// Polite close (bounded).
    pub async fn close(mut self, deadline: Instant) {
        let _ = tokio::time::timeout_at(deadline, self.ws.close(None)).await;
    }
}
