//! The conversation suite: the same Janus API scenarios, written once against [`Client`], run
//! over every transport jano speaks. A `Client` is what a Janus application sees of a
//! transport: it sends requests (Janus or Admin API) and receives responses and events in the
//! order the server delivers them.

pub mod clients;
pub mod scenarios;
pub mod server;

use serde_json::{json, Value};
use std::future::Future;
use std::time::Duration;

/// How long a scenario waits for an expected message.
pub const WAIT: Duration = Duration::from_secs(5);

/// One client connection over some transport.
pub trait Client: Send {
    /// Which transport (for messages).
    fn name(&self) -> &'static str;
    /// Sends a Janus API request (`admin = false`) or an Admin API request.
    fn send(&mut self, req: Value, admin: bool) -> impl Future<Output = Result<(), String>> + Send;
    /// Sends bytes that may not be valid JSON.
    fn send_raw(
        &mut self,
        bytes: Vec<u8>,
        admin: bool,
    ) -> impl Future<Output = Result<(), String>> + Send;
    /// The next message from the server (a response or an event), waiting up to `timeout`.
    fn recv(&mut self, timeout: Duration) -> impl Future<Output = Option<Value>> + Send;
    /// Whether the transport reports a lost client to the core (so a reconnect needs `claim`).
    fn reports_gone(&self) -> bool {
        false
    }
}

/// Sends `req` and returns the first message carrying its transaction that is not an `event`
/// (the response); events received meanwhile are kept in `stash`.
pub async fn call<C: Client>(c: &mut C, stash: &mut Vec<Value>, req: Value) -> Value {
    call_as(c, stash, req, false).await
}

/// [`call`] on the Admin API.
pub async fn admin<C: Client>(c: &mut C, stash: &mut Vec<Value>, req: Value) -> Value {
    call_as(c, stash, req, true).await
}

async fn call_as<C: Client>(c: &mut C, stash: &mut Vec<Value>, req: Value, admin: bool) -> Value {
    let tx = req["transaction"].clone();
    let name = c.name();
    if let Err(e) = c.send(req.clone(), admin).await {
        panic!("[{name}] sending {req}: {e}");
    }
    wait_for(c, stash, |m| {
        m["transaction"] == tx && m["janus"] != "event"
    })
    .await
    .unwrap_or_else(|| panic!("[{name}] no response to {req}"))
}

/// Waits for a message matching `pred`; others are stashed. Checks the stash first.
pub async fn wait_for<C: Client>(
    c: &mut C,
    stash: &mut Vec<Value>,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    if let Some(i) = stash.iter().position(&pred) {
        return Some(stash.remove(i));
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        let m = c.recv(left).await?;
        if pred(&m) {
            return Some(m);
        }
        stash.push(m);
    }
}

/// A fresh transaction id.
pub fn tx() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("tx{}", N.fetch_add(1, Ordering::Relaxed))
}

/// `{"janus": verb, "transaction": <fresh>}` plus the given fields.
pub fn req(verb: &str, fields: Value) -> Value {
    let mut v = json!({"janus": verb, "transaction": tx()});
    if let (Some(m), Some(f)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in f {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

/// The error code of a response, or 0 if it is not an error.
pub fn code(v: &Value) -> u64 {
    if v["janus"] == "error" {
        v["error"]["code"].as_u64().unwrap_or(1)
    } else {
        0
    }
}
