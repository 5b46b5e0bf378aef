//! The Janus API over RabbitMQ (the broker on 127.0.0.1:5672, guest/guest): requests are
//! published to `to_janus` / `to_janus_admin` with a fresh `correlation_id`; responses and
//! events are consumed from `from_janus` / `from_janus_admin`. Each setup uses its own queue
//! names, so scenarios run in parallel. The client checks the transport's AMQP rules on every
//! message: `reply_to = "Janus"`, `content_type = "application/json"`, a `correlation_id` only
//! on responses (and always one it sent), never on events.

use crate::clients::Setup;
use crate::server::{Options, TestServer};
use crate::Client;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};
use serde_json::Value;
use std::collections::HashSet;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Queue names of one setup.
#[derive(Clone, Debug)]
pub struct Names {
    pub to_janus: String,
    pub from_janus: String,
    pub to_janus_admin: String,
    pub from_janus_admin: String,
}

pub struct RabbitSetup {
    pub names: Names,
}

impl Default for RabbitSetup {
    fn default() -> Self {
        Self::new()
    }
}

impl RabbitSetup {
    /// Fresh queue names (process id, a counter and the clock: no collision across runs).
    pub fn new() -> Self {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let p = format!(
            "jano-conf-{}-{}-{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        RabbitSetup {
            names: Names {
                to_janus: format!("{p}-to-janus"),
                from_janus: format!("{p}-from-janus"),
                to_janus_admin: format!("{p}-to-janus-admin"),
                from_janus_admin: format!("{p}-from-janus-admin"),
            },
        }
    }

    /// The `janus.transport.rabbitmq.jcfg` for these queues. The incoming queues auto-delete
    /// and the client owns the outgoing ones (exclusive), so nothing outlives a scenario.
    pub fn jcfg(&self) -> String {
        let n = &self.names;
        format!(
            r#"general: {{
    enabled = true
    host = "127.0.0.1"
    port = 5672
    to_janus = "{}"
    from_janus = "{}"
    declare_outgoing_queue = false
    queue_autodelete = true
}}
admin: {{
    admin_enabled = true
    to_janus_admin = "{}"
    from_janus_admin = "{}"
    declare_outgoing_queue_admin = false
    queue_autodelete_admin = true
}}
"#,
            n.to_janus, n.from_janus, n.to_janus_admin, n.from_janus_admin
        )
    }
}

fn broker_answers() -> bool {
    let addr: SocketAddr = ([127, 0, 0, 1], 5672).into();
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// The broker answers, or is started with `rabbitmq-server -detached` (bounded wait).
pub fn ensure_broker() {
    if broker_answers() {
        return;
    }
    eprintln!("RabbitMQ does not answer on 127.0.0.1:5672: trying `rabbitmq-server -detached`");
    let _ = std::process::Command::new("rabbitmq-server")
        .arg("-detached")
        .status();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if broker_answers() {
            std::thread::sleep(Duration::from_secs(1));
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("RabbitMQ is not running on 127.0.0.1:5672 and could not be started");
}

impl Setup for RabbitSetup {
    type C = RabbitClient;

    fn configure(&self, opts: &mut Options) {
        opts.transports
            .push(("janus.transport.rabbitmq".into(), self.jcfg()));
    }

    async fn connect(&self, _srv: &TestServer) -> RabbitClient {
        RabbitClient::connect(self.names.clone()).await
    }
}

struct Received {
    body: Value,
    queue: String,
    correlation_id: Option<String>,
    reply_to: Option<String>,
    content_type: Option<String>,
}

pub struct RabbitClient {
    _conn: Connection,
    tasks: Vec<tokio::task::AbortHandle>,
    ch: Channel,
    names: Names,
    rx: mpsc::UnboundedReceiver<Received>,
    next: u64,
    /// Correlation ids sent, so a response's can be checked.
    sent: HashSet<String>,
}

fn short(v: &Option<lapin::types::ShortString>) -> Option<String> {
    v.as_ref().map(|s| s.as_str().to_owned())
}

impl RabbitClient {
    pub async fn connect(names: Names) -> RabbitClient {
        tokio::task::spawn_blocking(ensure_broker)
            .await
            .expect("broker check");
        let conn = Connection::connect(AMQP, ConnectionProperties::default())
            .await
            .unwrap_or_else(|e| panic!("rabbitmq client connect: {e}"));
        let ch = conn.create_channel().await.expect("channel");
        let (tx, rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        for q in [&names.from_janus, &names.from_janus_admin] {
            // Ours alone, gone with our connection; jano publishes to it by routing key.
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions {
                    exclusive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap_or_else(|e| panic!("declare {q}: {e}"));
            let mut consumer = ch
                .basic_consume(
                    q.as_str().into(),
                    "".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .unwrap_or_else(|e| panic!("consume {q}: {e}"));
            let tx = tx.clone();
            let queue = q.clone();
            let task = tokio::spawn(async move {
                while let Some(Ok(d)) = consumer.next().await {
                    let r = Received {
                        body: serde_json::from_slice(&d.data).unwrap_or(Value::Null),
                        queue: queue.clone(),
                        correlation_id: short(d.properties.correlation_id()),
                        reply_to: short(d.properties.reply_to()),
                        content_type: short(d.properties.content_type()),
                    };
                    if tx.send(r).is_err() {
                        break;
                    }
                }
            });
            tasks.push(task.abort_handle());
        }
        // jano connects in the background: wait (bounded) until it consumes both queues, so
        // no request is published before anyone listens. Declaring with jano's flags is
        // idempotent and keeps what we publish early.
        let deadline = Instant::now() + Duration::from_secs(10);
        for q in [&names.to_janus, &names.to_janus_admin] {
            loop {
                let declared = ch
                    .queue_declare(
                        q.as_str().into(),
                        QueueDeclareOptions {
                            auto_delete: true,
                            ..Default::default()
                        },
                        FieldTable::default(),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("declare {q}: {e}"));
                if declared.consumer_count() > 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "jano does not consume {q} after 10 s"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        RabbitClient {
            _conn: conn,
            tasks,
            ch,
            names,
            rx,
            next: 0,
            sent: HashSet::new(),
        }
    }

    async fn publish(&mut self, bytes: &[u8], admin: bool) -> Result<(), String> {
        self.next += 1;
        let corr = format!("conf-{}-{}", std::process::id(), self.next);
        self.sent.insert(corr.clone());
        let queue = if admin {
            &self.names.to_janus_admin
        } else {
            &self.names.to_janus
        };
        self.ch
            .basic_publish(
                "".into(),
                queue.as_str().into(),
                BasicPublishOptions::default(),
                bytes,
                BasicProperties::default().with_correlation_id(corr.as_str().into()),
            )
            .await
            .map_err(|e| e.to_string())?
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// The AMQP rules of the transport, checked on everything received.
    fn check(&self, r: &Received) {
        assert_eq!(
            r.reply_to.as_deref(),
            Some("Janus"),
            "reply_to of {}",
            r.body
        );
        assert_eq!(
            r.content_type.as_deref(),
            Some("application/json"),
            "content_type of {}",
            r.body
        );
        if r.body["janus"] == "event" {
            assert_eq!(
                r.correlation_id, None,
                "an event carries a correlation_id: {}",
                r.body
            );
        }
        if let Some(c) = &r.correlation_id {
            assert!(
                self.sent.contains(c),
                "correlation_id {c} was never sent: {}",
                r.body
            );
        }
        let admin_like = r.queue == self.names.from_janus_admin;
        assert!(
            admin_like || r.queue == self.names.from_janus,
            "message on an unexpected queue {}",
            r.queue
        );
    }
}

impl Drop for RabbitClient {
    fn drop(&mut self) {
        // The consumers hold the connection open; with them gone, lapin closes it on drop,
        // which deletes our exclusive queues.
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Client for RabbitClient {
    fn name(&self) -> &'static str {
        "rabbitmq"
    }

    async fn send(&mut self, req: Value, admin: bool) -> Result<(), String> {
        self.publish(req.to_string().as_bytes(), admin).await
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, admin: bool) -> Result<(), String> {
        self.publish(&bytes, admin).await
    }

    async fn recv(&mut self, timeout: Duration) -> Option<Value> {
        let r = tokio::time::timeout(timeout, self.rx.recv())
            .await
            .ok()
            .flatten()?;
        self.check(&r);
        Some(r.body)
    }
}
