//! The Janus API over WebSockets: one socket for the Janus API, one for the Admin API.

use crate::clients::Setup;
use crate::server::TestServer;
use crate::Client;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct WsClient {
    api: Ws,
    admin: Ws,
    /// Messages read from the admin socket while waiting on the API one, and vice versa.
    pending: std::collections::VecDeque<Value>,
}

pub struct WsSetup;

impl Setup for WsSetup {
    type C = WsClient;
    async fn connect(&self, srv: &TestServer) -> WsClient {
        WsClient::connect(srv.ws, srv.admin_ws).await
    }
}

/// Opens a WebSocket with a subprotocol.
pub async fn open(addr: SocketAddr, protocol: &str) -> Ws {
    let mut req = format!("ws://{addr}/")
        .into_client_request()
        .expect("request");
    req.headers_mut()
        .insert("Sec-WebSocket-Protocol", protocol.parse().expect("header"));
    let (ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .unwrap_or_else(|e| panic!("ws connect {addr}: {e}"));
    ws
}

impl WsClient {
    pub async fn connect(api: SocketAddr, admin: SocketAddr) -> WsClient {
        WsClient {
            api: open(api, "janus-protocol").await,
            admin: open(admin, "janus-admin-protocol").await,
            pending: Default::default(),
        }
    }

    /// Closes the Janus API socket (the server sees the transport instance go away).
    pub async fn close(mut self) {
        let _ = self.api.close(None).await;
    }
}

fn parse(m: Message) -> Option<Value> {
    match m {
        Message::Text(t) => serde_json::from_str(t.as_str()).ok(),
        Message::Binary(b) => serde_json::from_slice(&b).ok(),
        _ => None,
    }
}

impl Client for WsClient {
    fn name(&self) -> &'static str {
        "ws"
    }

    fn reports_gone(&self) -> bool {
        true
    }

    async fn send(&mut self, req: Value, admin: bool) -> Result<(), String> {
        let sock = if admin {
            &mut self.admin
        } else {
            &mut self.api
        };
        sock.send(Message::text(req.to_string()))
            .await
            .map_err(|e| e.to_string())
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, admin: bool) -> Result<(), String> {
        let sock = if admin {
            &mut self.admin
        } else {
            &mut self.api
        };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        sock.send(Message::text(text))
            .await
            .map_err(|e| e.to_string())
    }

    async fn recv(&mut self, timeout: Duration) -> Option<Value> {
        if let Some(v) = self.pending.pop_front() {
            return Some(v);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let m = tokio::select! {
                m = self.api.next() => m,
                m = self.admin.next() => m,
                _ = tokio::time::sleep_until(deadline) => return None,
            };
            match m {
                Some(Ok(m)) => {
                    if let Some(v) = parse(m) {
                        return Some(v);
                    }
                }
                _ => return None,
            }
        }
    }
}
