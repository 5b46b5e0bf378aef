//! One shared channel (an AMQP connection, an MQTT client, an SP pair socket) carrying many
//! logical clients, as Janus's broker and Nanomsg transports see them: a single transport
//! instance. Every message from the server is routed to the client whose transaction prefix
//! (see [`crate::janus::Tx`]) it carries; the others (`detached` events, answers to requests
//! that already gave up, ...) are counted as unsolicited.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::amqp::AmqpLink;
use crate::janus;
use crate::mqtt::MqttLink;
use crate::nano::NanoLink;
use crate::stats::{Failure, Kind, Unsolicited};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Routes what the server sends to the logical clients.
#[derive(Default)]
pub struct Router {
    routes: Mutex<HashMap<String, mpsc::UnboundedSender<Value>>>,
    unsolicited: Mutex<Unsolicited>,
    /// Why the shared channel broke, if it did.
    broken: Mutex<Option<String>>,
}

impl Router {
    /// One message from the server.
    pub fn dispatch(&self, bytes: &[u8]) {
        let v: Value = match serde_json::from_slice(bytes) {
            Ok(v @ Value::Object(_)) => v,
            _ => {
                lock(&self.unsolicited).add_raw(bytes);
                return;
            }
        };
        let v = match janus::transaction(&v).and_then(janus::tx_prefix) {
            Some(key) => match lock(&self.routes).get(key) {
                // A closed receiver hands the message back.
                Some(client) => match client.send(v) {
                    Ok(()) => return,
                    Err(e) => e.0,
                },
                None => v,
            },
            None => v,
        };
        lock(&self.unsolicited).add(&v);
    }

    /// The shared channel is gone: every waiting client learns it at once.
    pub fn break_link(&self, why: String) {
        let mut b = lock(&self.broken);
        if b.is_none() {
            *b = Some(why);
        }
        drop(b);
        lock(&self.routes).clear();
    }

    fn broken(&self) -> Option<String> {
        lock(&self.broken).clone()
    }

    pub fn take_unsolicited(&self) -> Unsolicited {
        std::mem::take(&mut *lock(&self.unsolicited))
    }
}

/// The shared channel itself.
pub enum Link {
    Amqp(Box<AmqpLink>),
    Mqtt(MqttLink),
    Nano(NanoLink),
}

pub struct Mux {
    router: Arc<Router>,
    link: Link,
}

impl Mux {
    pub fn new(router: Arc<Router>, link: Link) -> Mux {
        Mux { router, link }
    }

    /// A logical client, answered by transactions starting with `prefix`.
    pub fn client(self: &Arc<Self>, prefix: &str) -> Result<MuxClient, Failure> {
        let k = Kind::Connect;
        if let Some(why) = self.router.broken() {
            return Err(Failure::new(k, "shared channel broken", why));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let mut routes = lock(&self.router.routes);
        if routes.contains_key(prefix) {
            return Err(Failure::new(
                k,
                "duplicate transaction prefix",
                prefix.to_string(),
            ));
        }
        routes.insert(prefix.to_string(), tx);
        Ok(MuxClient {
            mux: Arc::clone(self),
            key: prefix.to_string(),
            rx,
        })
    }

    async fn publish(
        &self,
        kind: Kind,
        tx: &str,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        if let Some(why) = self.router.broken() {
            return Err(Failure::new(kind, "shared channel broken", why));
        }
        match &self.link {
            Link::Amqp(l) => l.publish(kind, tx, body, deadline).await,
            Link::Mqtt(l) => l.publish(kind, body, deadline).await,
            Link::Nano(l) => l.publish(kind, body, deadline).await,
        }
    }

    /// Messages no client claimed.
    pub fn take_unsolicited(&self) -> Unsolicited {
        self.router.take_unsolicited()
    }

    /// Closes the shared channel (bounded by `deadline`).
    pub async fn shutdown(&self, deadline: Instant) {
        match &self.link {
            Link::Amqp(l) => l.shutdown(deadline).await,
            Link::Mqtt(l) => l.shutdown(deadline).await,
            Link::Nano(l) => l.shutdown(deadline).await,
        }
    }
}

/// One logical client on the shared channel.
pub struct MuxClient {
    mux: Arc<Mux>,
    key: String,
    rx: mpsc::UnboundedReceiver<Value>,
}

impl MuxClient {
    pub async fn send(
        &mut self,
        kind: Kind,
        tx: &str,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        self.mux.publish(kind, tx, body, deadline).await
    }

    /// The next message routed to this client.
    pub async fn recv(&mut self, kind: Kind, deadline: Instant) -> Result<Value, Failure> {
        match tokio::time::timeout_at(deadline, self.rx.recv()).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(Failure::new(
                kind,
                "shared channel broken",
                self.mux.router.broken().unwrap_or_default(),
            )),
            Err(_) => Err(Failure::new(kind, "timeout", "waiting for an answer")),
        }
    }
}

impl Drop for MuxClient {
    fn drop(&mut self) {
        lock(&self.mux.router.routes).remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_transaction_prefix() {
        let r = Router::default();
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&r.routes).insert("abcdefgh".into(), tx);
        r.dispatch(br#"{"janus":"ack","transaction":"abcdefgh12"}"#);
        r.dispatch(br#"{"janus":"ack","transaction":"zzzzzzzz1"}"#);
        r.dispatch(br#"{"janus":"detached","session_id":1}"#);
        r.dispatch(b"not json");
        r.dispatch(br#"{"janus":"ack","transaction":"short"}"#);
        let got = rx.try_recv().unwrap();
        assert_eq!(got["transaction"], "abcdefgh12");
        assert!(rx.try_recv().is_err());
        let u = r.take_unsolicited().to_json();
        assert_eq!(u["ack (other transaction)"]["count"], 2);
        assert_eq!(u["detached"]["count"], 1);
        assert_eq!(u["(invalid JSON)"]["count"], 1);
        r.break_link("gone".into());
        assert!(lock(&r.routes).is_empty());
        assert_eq!(r.broken().as_deref(), Some("gone"));
    }
}
