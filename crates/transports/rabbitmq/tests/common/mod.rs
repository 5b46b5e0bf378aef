//! Shared by the integration tests: the real broker on 127.0.0.1:5672 (guest/guest), a jano
//! runtime with EchoTest, and an AMQP peer that plays the application.

#![allow(dead_code)]

use futures_util::StreamExt;
use jano_core::{CoreConfig, PluginRegistry};
use jano_rabbitmq::{Queues, Server, Settings};
use jano_runtime::{PluginQueue, Runtime};
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::collections::VecDeque;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
pub const ADMIN_SECRET: &str = "rabbit-secret";
pub const WAIT: Duration = Duration::from_secs(5);

pub fn broker_answers() -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], 5672).into();
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// The broker answers, or is started (`rabbitmq-server -detached`, bounded wait). `false` means
/// the test must be skipped (loudly); with `JANO_REQUIRE_BROKERS` set it fails instead.
pub fn ensure_broker() -> bool {
    if broker_answers() {
        return true;
    }
    eprintln!("RabbitMQ does not answer on 127.0.0.1:5672: trying `rabbitmq-server -detached`");
    let started = std::process::Command::new("rabbitmq-server")
        .arg("-detached")
        .status()
        .is_ok_and(|s| s.success());
    if started {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if broker_answers() {
                // The port opens a moment before the broker accepts logins.
                std::thread::sleep(Duration::from_secs(1));
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    let msg = "RabbitMQ is not running on 127.0.0.1:5672 and could not be started";
    if std::env::var_os("JANO_REQUIRE_BROKERS").is_some() {
        panic!("{msg}");
    }
    eprintln!("\n*** SKIPPED: {msg} ***\n");
    false
}

/// A name no other test or run uses.
pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "jano-test-{}-{}-{nanos}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "jano_rabbitmq=info".into()),
        )
        .with_test_writer()
        .try_init();
}

/// A runtime with EchoTest and an admin secret.
pub fn runtime(session_timeout: u64) -> Runtime {
    let queue = PluginQueue::new();
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(jano_echotest::EchoTest::new(
        queue.services_for(jano_echotest::PACKAGE),
    )));
    let cfg = CoreConfig {
        admin_secret: Some(ADMIN_SECRET.into()),
        session_timeout,
        ..Default::default()
    };
    Runtime::start(cfg, registry, queue, None)
}

pub fn queues(prefix: &str) -> Queues {
    Queues {
        to_janus: format!("{prefix}-to-janus"),
        from_janus: format!("{prefix}-from-janus"),
        queue_name: None,
        declare_outgoing_queue: true,
        durable: false,
        exclusive: false,
        autodelete: false,
    }
}

/// Janus API and Admin API on the default exchange, with fresh queue names.
pub fn settings(prefix: &str) -> Settings {
    Settings {
        enabled: true,
        host: "127.0.0.1".into(),
        api: Some(queues(prefix)),
        admin: Some(queues(&format!("{prefix}-admin"))),
        ..Default::default()
    }
}

/// A message the peer received.
#[derive(Debug, Clone)]
pub struct Msg {
    pub body: Value,
    pub raw: Vec<u8>,
    pub queue: String,
    pub routing_key: String,
    pub correlation_id: Option<String>,
    pub reply_to: Option<String>,
    pub content_type: Option<String>,
}

/// The application side: publishes requests, consumes responses and events.
pub struct Peer {
    pub conn: Connection,
    pub ch: Channel,
    tx: mpsc::UnboundedSender<Msg>,
    rx: mpsc::UnboundedReceiver<Msg>,
    pub stash: VecDeque<Msg>,
    next_corr: u64,
    /// Queues to delete at the end.
    pub owned: Vec<String>,
}

impl Peer {
    pub async fn connect() -> Peer {
        let conn = Connection::connect(AMQP, ConnectionProperties::default())
            .await
            .expect("peer connects to RabbitMQ");
        let ch = conn.create_channel().await.expect("peer channel");
        let (tx, rx) = mpsc::unbounded_channel();
        Peer {
            conn,
            ch,
            tx,
            rx,
            stash: VecDeque::new(),
            next_corr: 1,
            owned: Vec::new(),
        }
    }

    /// Declares a plain queue (jano's default flags), to be deleted at the end.
    pub async fn declare(&mut self, name: &str) {
        self.ch
            .queue_declare(
                name.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("declare {name}: {e}"));
        self.owned.push(name.to_owned());
    }

    /// Declares a server-named exclusive queue bound to `exchange` with `key`; returns its name.
    pub async fn bound_queue(&mut self, exchange: &str, key: &str) -> String {
        let q = self
            .ch
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .expect("declare");
        let name = q.name().as_str().to_owned();
        self.ch
            .queue_bind(
                name.as_str().into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
        name
    }

    /// Consumes `queue` (auto-ack); what arrives goes to [`Peer::recv`].
    pub async fn consume(&mut self, queue: &str) {
        let mut consumer = self
            .ch
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("consume {queue}: {e}"));
        let tx = self.tx.clone();
        let queue = queue.to_owned();
        tokio::spawn(async move {
            while let Some(Ok(d)) = consumer.next().await {
                let p = &d.properties;
                let s = |v: &Option<lapin::types::ShortString>| {
                    v.as_ref().map(|x| x.as_str().to_owned())
                };
                let m = Msg {
                    body: serde_json::from_slice(&d.data).unwrap_or(Value::Null),
                    raw: d.data.clone(),
                    queue: queue.clone(),
                    routing_key: d.routing_key.as_str().to_owned(),
                    correlation_id: s(p.correlation_id()),
                    reply_to: s(p.reply_to()),
                    content_type: s(p.content_type()),
                };
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
    }

    pub async fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        correlation_id: Option<&str>,
        body: &[u8],
    ) {
        let mut props = BasicProperties::default();
        if let Some(c) = correlation_id {
            props = props.with_correlation_id(c.into());
        }
        self.ch
            .basic_publish(
                exchange.into(),
                routing_key.into(),
                BasicPublishOptions::default(),
                body,
                props,
            )
            .await
            .expect("publish")
            .await
            .expect("publish confirm");
    }

    pub fn corr(&mut self) -> String {
        self.next_corr += 1;
        format!("corr-{}-{}", std::process::id(), self.next_corr)
    }

    /// The next message, stashed ones first.
    pub async fn recv(&mut self, timeout: Duration) -> Option<Msg> {
        if let Some(m) = self.stash.pop_front() {
            return Some(m);
        }
        tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()
    }

    /// Waits for a message matching `pred`; others are stashed.
    pub async fn wait_for(&mut self, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        if let Some(i) = self.stash.iter().position(&pred) {
            return self.stash.remove(i);
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let m = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .ok()
                .flatten()?;
            if pred(&m) {
                return Some(m);
            }
            self.stash.push_back(m);
        }
    }

    /// Publishes `body` to the default exchange's `queue` with a fresh correlation id and
    /// returns the message carrying that id.
    pub async fn call_raw(&mut self, exchange: &str, key: &str, body: &[u8]) -> Msg {
        let corr = self.corr();
        self.publish(exchange, key, Some(&corr), body).await;
        let c = corr.clone();
        self.wait_for(move |m| m.correlation_id.as_deref() == Some(c.as_str()))
            .await
            .unwrap_or_else(|| {
                panic!(
                    "no response with correlation_id {corr} to {}",
                    String::from_utf8_lossy(body)
                )
            })
    }

    pub async fn call(&mut self, queue: &str, req: Value) -> Msg {
        self.call_raw("", queue, req.to_string().as_bytes()).await
    }

    pub async fn delete_owned(&self) {
        for q in &self.owned {
            let _ = self
                .ch
                .queue_delete(q.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }

    pub async fn close(self) {
        self.delete_owned().await;
        let _ = self.conn.close(200, "bye".into()).await;
    }
}

/// Starts the transport and waits (bounded) until it consumes.
pub async fn start(rt: &Runtime, s: Settings) -> Server {
    let server = jano_rabbitmq::serve(rt, s).await.expect("serve");
    assert!(
        server.wait_connected(Duration::from_secs(10)).await,
        "the transport did not connect to RabbitMQ"
    );
    server
}

pub fn tx() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    format!("t{}", N.fetch_add(1, Ordering::Relaxed))
}
