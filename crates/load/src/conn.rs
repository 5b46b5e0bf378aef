//! Message-oriented transports behind one face: every transport but HTTP carries one JSON
//! message per request and delivers answers and events on the same channel.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::janus::{self, Tx};
use crate::mux::{Link, Mux, MuxClient, Router};
use crate::stats::{Failure, Kind, Unsolicited};
use crate::target::{unix_path, Target, Transport};
use crate::unix::{DgramConn, SeqConn, SocketDir};
use crate::ws::WsConn;
use crate::{amqp, mqtt, nano};

/// Options only some transports use.
#[derive(Clone, Debug, Default)]
pub struct WireOpts {
    /// RabbitMQ: the queue the server consumes (Janus's `to_janus`); MQTT: the topic it
    /// subscribes to (`subscribe_topic`).
    pub to_janus: Option<String>,
    /// RabbitMQ: the queue the server's answers go to (`from_janus`); MQTT: the topic it
    /// publishes on (`publish_topic`).
    pub from_janus: Option<String>,
    /// MQTT QoS of our publishes and subscription.
    pub mqtt_qos: u8,
    /// RabbitMQ: delete the `from_janus` queue when done.
    pub amqp_delete_reply_queue: bool,
}

/// What the clients of one run connect to.
pub enum Endpoint {
    Ws(String),
    Seq(PathBuf),
    Dgram {
        server: PathBuf,
        dir: SocketDir,
        next: AtomicU64,
    },
    Mux(Arc<Mux>),
}

fn names(w: &WireOpts, t: Transport) -> Result<(String, String), String> {
    match (&w.to_janus, &w.from_janus) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => Ok((a.clone(), b.clone())),
        _ => Err(format!(
            "--transport {} needs --to-janus and --from-janus",
            t.name()
        )),
    }
}

impl Endpoint {
    /// Prepares the run: for shared channels this connects (and subscribes) once.
    pub async fn open(
        target: &Target,
        w: &WireOpts,
        deadline: Instant,
    ) -> Result<Endpoint, String> {
        let url = target.url.as_str();
        let path = || unix_path(url).ok_or_else(|| format!("{url:?}: not a socket path"));
        Ok(match target.transport {
            Transport::Http => return Err("HTTP is not message-oriented".into()),
            Transport::Ws => Endpoint::Ws(url.to_string()),
            Transport::UnixSeqpacket => Endpoint::Seq(path()?),
            Transport::UnixDgram => Endpoint::Dgram {
                server: path()?,
                dir: SocketDir::create()?,
                next: AtomicU64::new(0),
            },
            Transport::Rabbitmq => {
                let (to, from) = names(w, target.transport)?;
                let router = Arc::new(Router::default());
                let l = amqp::open(
                    url,
                    &to,
                    &from,
                    w.amqp_delete_reply_queue,
                    router.clone(),
                    deadline,
                )
                .await?;
                Endpoint::Mux(Arc::new(Mux::new(router, Link::Amqp(Box::new(l)))))
            }
            Transport::Mqtt => {
                let (to, from) = names(w, target.transport)?;
                let q = mqtt::qos(w.mqtt_qos)?;
                let router = Arc::new(Router::default());
                let l = mqtt::open(url, &to, &from, q, router.clone(), deadline).await?;
                Endpoint::Mux(Arc::new(Mux::new(router, Link::Mqtt(l))))
            }
            Transport::Nanomsg => {
                let router = Arc::new(Router::default());
                let l = nano::open(url, router.clone(), deadline).await?;
                Endpoint::Mux(Arc::new(Mux::new(router, Link::Nano(l))))
            }
        })
    }

    /// One client's channel. `tx` is the client's transaction generator (shared channels route
    /// by its prefix).
    pub async fn connect(&self, tx: &Tx, deadline: Instant) -> Result<Conn, Failure> {
        let inner = match self {
            Endpoint::Ws(url) => Inner::Ws(Box::new(WsConn::connect(url, deadline).await?)),
            Endpoint::Seq(p) => Inner::Seq(SeqConn::connect(p, deadline).await?),
            Endpoint::Dgram { server, dir, next } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                Inner::Dgram(DgramConn::open(dir.path().join(format!("c{n}")), server)?)
            }
            Endpoint::Mux(m) => Inner::Mux(m.client(tx.prefix())?),
        };
        Ok(Conn {
            inner,
            unsolicited: Unsolicited::default(),
        })
    }

    /// Closes a shared channel; returns what it received that no client claimed.
    pub async fn shutdown(&self, deadline: Instant) -> Unsolicited {
        match self {
            Endpoint::Mux(m) => {
                m.shutdown(deadline).await;
                m.take_unsolicited()
            }
            _ => Unsolicited::default(),
        }
    }
}

enum Inner {
    Ws(Box<WsConn>),
    Seq(SeqConn),
    Dgram(DgramConn),
    Mux(MuxClient),
}

/// One client's channel to the server.
pub struct Conn {
    inner: Inner,
    /// Messages read that did not answer the pending request, by kind.
    pub unsolicited: Unsolicited,
}

impl Conn {
    pub async fn send(
        &mut self,
        kind: Kind,
        tx: &str,
        body: String,
        deadline: Instant,
    ) -> Result<(), Failure> {
        match &mut self.inner {
            Inner::Ws(c) => c.send(kind, body, deadline).await,
            Inner::Seq(c) => c.send(kind, &body, deadline).await,
            Inner::Dgram(c) => c.send(kind, &body, deadline).await,
            Inner::Mux(c) => c.send(kind, tx, body, deadline).await,
        }
    }

    async fn recv(&mut self, kind: Kind, deadline: Instant) -> Result<Value, Failure> {
        match &mut self.inner {
            Inner::Ws(c) => c.recv(kind, deadline).await,
            Inner::Seq(c) => c.recv(kind, deadline).await,
            Inner::Dgram(c) => c.recv(kind, deadline).await,
            Inner::Mux(c) => c.recv(kind, deadline).await,
        }
    }

    /// Next message answering transaction `tx`. Messages with another transaction, or without
    /// one (events such as `detached`), are skipped — except a transaction-less `error`, which
    /// Janus sends for first-level validation failures (e.g. unknown session) and is the answer
    /// (on a shared channel those cannot be told apart and never reach a client).
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

    /// Whether closing this channel makes the server drop its sessions (so a failed cycle
    /// starts afresh on a new one); otherwise its session is destroyed explicitly.
    pub fn owns_sessions(&self) -> bool {
        matches!(self.inner, Inner::Ws(_) | Inner::Seq(_))
    }

    /// Request/answer on this channel (ping, best-effort destroy).
    pub async fn call(
        &mut self,
        kind: Kind,
        tx: &str,
        body: String,
        deadline: Instant,
    ) -> Result<Value, Failure> {
        self.send(kind, tx, body, deadline).await?;
        self.recv_tx(kind, tx, deadline).await
    }

    /// Polite close (bounded).
    pub async fn close(self, deadline: Instant) {
        if let Inner::Ws(c) = self.inner {
            c.close(deadline).await;
        }
    }
}

/// `ping` until the server answers `pong`, retrying until `wait` is over (for scripts that
/// start a server: brokers and sockets give no other sign of readiness).
pub async fn ping(
    target: &Target,
    w: &WireOpts,
    wait: Duration,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let end = start + wait;
    let mut tx = Tx::new();
    loop {
        let attempt_end =
            (Instant::now() + timeout).min(end.max(Instant::now() + Duration::from_millis(100)));
        let last = match ping_once(target, w, &mut tx, attempt_end).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(e) => e,
        };
        if Instant::now() >= end {
            return Err(format!(
                "no pong within {:.1} s: {last}",
                wait.as_secs_f64()
            ));
        }
        tokio::time::sleep_until((Instant::now() + Duration::from_millis(200)).min(end)).await;
    }
}

async fn ping_once(
    target: &Target,
    w: &WireOpts,
    tx: &mut Tx,
    deadline: Instant,
) -> Result<(), String> {
    let id = tx.next();
    let v = if target.transport == Transport::Http {
        let api = crate::http::HttpApi::new(&target.url, Duration::from_secs(2));
        api.post(Kind::Connect, "", janus::ping(&id), deadline)
            .await
            .map_err(|f| f.to_string())?
    } else {
        let ep = Endpoint::open(target, w, deadline).await?;
        let r = async {
            let mut c = ep.connect(tx, deadline).await.map_err(|f| f.to_string())?;
            let v = c
                .call(Kind::Connect, &id, janus::ping(&id), deadline)
                .await
                .map_err(|f| f.to_string());
            c.close(deadline).await;
            v
        }
        .await;
        ep.shutdown(Instant::now() + Duration::from_secs(1)).await;
        r?
    };
    if janus::janus_kind(&v) == "pong" && janus::transaction(&v) == Some(id.as_str()) {
        Ok(())
    } else {
        Err(format!("unexpected answer to ping: {}", janus::short(&v)))
    }
}
