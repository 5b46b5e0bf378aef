//! The Janus API over HTTP as an application uses it: POSTs to the session/handle paths, and
//! a long poll per session feeding events into the same stream as the responses.

use crate::clients::Setup;
use crate::server::TestServer;
use crate::Client;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::{connect::HttpConnector, Client as HyperClient};
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

type Hyper = HyperClient<HttpConnector, Full<Bytes>>;

pub struct HttpClient {
    api: String,
    admin: String,
    client: Hyper,
    tx: mpsc::UnboundedSender<Value>,
    rx: mpsc::UnboundedReceiver<Value>,
    polling: Arc<Mutex<HashSet<u64>>>,
}

pub struct HttpSetup;

impl Setup for HttpSetup {
    type C = HttpClient;
    async fn connect(&self, srv: &TestServer) -> HttpClient {
        HttpClient::new(srv.http, srv.admin_http)
    }
}

async fn post(client: &Hyper, url: &str, body: Vec<u8>) -> Result<Value, String> {
    let req = hyper::Request::post(url)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "HTTP timeout".to_string())?
        .map_err(|e| e.to_string())?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))
}

impl HttpClient {
    pub fn new(api: SocketAddr, admin: SocketAddr) -> HttpClient {
        let (tx, rx) = mpsc::unbounded_channel();
        HttpClient {
            api: format!("http://{api}/janus"),
            admin: format!("http://{admin}/admin"),
            client: HyperClient::builder(TokioExecutor::new()).build_http(),
            tx,
            rx,
            polling: Arc::new(Mutex::new(HashSet::new())),
        }
    }

    fn start_poll(&self, sid: u64) {
        if !self.polling.lock().unwrap().insert(sid) {
            return;
        }
        let client = self.client.clone();
        let url = format!("{}/{sid}?maxev=10", self.api);
        let tx = self.tx.clone();
        let polling = self.polling.clone();
        tokio::spawn(async move {
            loop {
                let Ok(req) = hyper::Request::get(&url).body(Full::new(Bytes::new())) else {
                    break;
                };
                let Ok(Ok(resp)) =
                    tokio::time::timeout(Duration::from_secs(40), client.request(req)).await
                else {
                    break;
                };
                if resp.status() != 200 {
                    break;
                }
                let Ok(body) = resp.into_body().collect().await else {
                    break;
                };
                let Ok(Value::Array(events)) = serde_json::from_slice::<Value>(&body.to_bytes())
                else {
                    break;
                };
                let mut closed = false;
                for ev in events {
                    if ev["janus"] == "keepalive" {
                        continue;
                    }
                    closed |= ev["janus"] == "timeout";
                    if tx.send(ev).is_err() {
                        closed = true;
                    }
                }
                if closed {
                    break;
                }
            }
            polling.lock().unwrap().remove(&sid);
        });
    }

    fn url_for(&self, req: &Value, admin: bool) -> String {
        let mut url = if admin {
            self.admin.clone()
        } else {
            self.api.clone()
        };
        if let Some(sid) = req["session_id"].as_u64() {
            url.push_str(&format!("/{sid}"));
            if let Some(hid) = req["handle_id"].as_u64() {
                url.push_str(&format!("/{hid}"));
            }
        }
        url
    }
}

impl Client for HttpClient {
    fn name(&self) -> &'static str {
        "http"
    }

    async fn send(&mut self, req: Value, admin: bool) -> Result<(), String> {
        let url = self.url_for(&req, admin);
        let body = serde_json::to_vec(&req).map_err(|e| e.to_string())?;
        let resp = post(&self.client, &url, body).await?;
        let verb = req["janus"].as_str().unwrap_or("").to_ascii_lowercase();
        if !admin && resp["janus"] == "success" {
            if verb == "create" {
                if let Some(sid) = resp["data"]["id"].as_u64() {
                    self.start_poll(sid);
                }
            } else if verb == "claim" {
                if let Some(sid) = resp["session_id"].as_u64() {
                    self.start_poll(sid);
                }
            }
        }
        self.tx.send(resp).map_err(|e| e.to_string())
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, admin: bool) -> Result<(), String> {
        let url = if admin {
            self.admin.clone()
        } else {
            self.api.clone()
        };
        let resp = post(&self.client, &url, bytes).await?;
        self.tx.send(resp).map_err(|e| e.to_string())
    }

    async fn recv(&mut self, timeout: Duration) -> Option<Value> {
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }
}
