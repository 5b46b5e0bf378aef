//! `janus.transport.rabbitmq`: the Janus API and the Admin API over AMQP 0-9-1 (RabbitMQ), with
//! `lapin`.
//!
//! As in Janus, the whole broker is one transport instance: requests are consumed (auto-ack)
//! from `to_janus` (or `queue_name`) and the admin queue, and every response and event is
//! published with routing key `from_janus` (`from_janus_admin` for the Admin API) on
//! `janus_exchange` (default: the default exchange). A request's `correlation_id` is copied into
//! its response, never into events; every message has `reply_to = "Janus"` and
//! `content_type = "application/json"`.
//!
//! Unlike Janus, an unreachable broker never stops the server: a background task connects,
//! declares, consumes, and on any loss reconnects with backoff (100 ms ×1.5 up to 5 s), logging.
//! Outgoing messages wait in a bounded buffer while the broker is away and are published,
//! with publisher confirms, once it is back; whatever is not confirmed is sent again.

mod outbox;
mod settings;
mod tls;

pub use settings::{Queues, Settings, Tls};

use futures_util::stream::{self, BoxStream, StreamExt};
use jano_api::{msg, ErrorCode, JanusError, Value};
use jano_runtime::{Runtime, TransportHandle};
use lapin::message::Delivery;
use lapin::options::{
    BasicConsumeOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions,
};
use lapin::tcp::{AMQPUriTcpExt, RustlsConnector, TLSConfig};
use lapin::types::FieldTable;
use lapin::uri::{AMQPAuthority, AMQPQueryString, AMQPScheme, AMQPUri, AMQPUserInfo};
use lapin::{
    BasicProperties, Channel, Confirmation, Connection, ConnectionProperties, ExchangeKind,
};
use outbox::{Out, Outbox};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.rabbitmq",
    name: "JANUS RabbitMQ transport plugin",
    author: "jano",
    description: "The Janus API over RabbitMQ, with lapin.",
    version: 1,
    version_string: "0.0.1",
};

/// Janus's reconnect backoff: 100 ms, ×1.5 each failure, at most 5 s.
const BACKOFF_INITIAL: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const BACKOFF_FACTOR: f64 = 1.5;
/// One connection attempt (TCP, TLS, AMQP handshake, declarations) may take this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a publisher confirm may take before the link is deemed broken.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages published before waiting for their confirms.
const BATCH: usize = 256;
/// A link that lived this long resets the backoff.
const STABLE: Duration = Duration::from_secs(5);
/// How often an idle link checks that its connection is still up.
const LIVENESS_CHECK: Duration = Duration::from_secs(1);

struct Shared {
    handle: TransportHandle,
    /// The single transport instance standing for the broker.
    conn: u64,
    outbox: Arc<Outbox>,
    settings: Settings,
    tls: Option<Arc<rustls::ClientConfig>>,
    connected: watch::Sender<bool>,
    connects: AtomicU64,
}

/// A running RabbitMQ transport.
pub struct Server {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Stops serving: the background task closes the channel and connection and ends.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops and waits (bounded) until the channel and connection are closed.
    pub async fn shutdown(&self) {
        self.stop();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = task {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
    }

    /// Whether the broker connection is up (channel open, queues consumed).
    pub fn is_connected(&self) -> bool {
        *self.shared.connected.borrow()
    }

    /// Waits up to `timeout` for the connection to be up.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.shared.connected.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Successful connections so far (1 + reconnections).
    pub fn connections(&self) -> u64 {
        self.shared.connects.load(Ordering::Relaxed)
    }

    /// Messages waiting to be published.
    pub fn buffered(&self) -> usize {
        self.shared.outbox.len()
    }

    /// Messages dropped because the outgoing buffer was full.
    pub fn dropped(&self) -> u64 {
        self.shared.outbox.dropped()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the transport. The broker need not be reachable: the connection is made (and remade)
/// in the background, unless `block_startup_until_connected` asks to wait for it.
pub async fn serve(rt: &Runtime, settings: Settings) -> Result<Server, String> {
    if !settings.enabled {
        return Err("neither the Janus API nor the Admin API is enabled".into());
    }
    let tls = settings.tls.as_ref().map(tls::client_config).transpose()?;
    let outbox = Arc::new(Outbox::new(settings.outgoing_buffer));
    let handle = rt.register_transport(INFO, outbox.clone());
    let conn = handle.new_instance();
    if let Some(q) = &settings.api {
        tracing::info!(
            host = %settings.host, port = settings.port, to_janus = %q.to_janus,
            from_janus = %q.from_janus, exchange = settings.exchange.as_deref().unwrap_or(""),
            exchange_type = %settings.exchange_type, "RabbitMQ support for Janus API enabled"
        );
    }
    if let Some(q) = &settings.admin {
        tracing::info!(
            host = %settings.host, port = settings.port, to_janus_admin = %q.to_janus,
            from_janus_admin = %q.from_janus, "RabbitMQ support for Admin API enabled"
        );
    }
    let block = settings.block_startup_until_connected;
    let (connected, _) = watch::channel(false);
    let shared = Arc::new(Shared {
        handle,
        conn,
        outbox,
        settings,
        tls,
        connected,
        connects: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(supervise(shared.clone(), stopped));
    let server = Server {
        shared,
        stop,
        task: Mutex::new(Some(task)),
    };
    if block {
        tracing::info!("waiting for RabbitMQ before going on (block_startup_until_connected)");
        let mut rx = server.shared.connected.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }
    Ok(server)
}

/// Connects, serves until the link breaks, and reconnects, until stopped.
async fn supervise(s: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut delay = BACKOFF_INITIAL;
    let mut failures: u32 = 0;
    loop {
        if *stop.borrow() {
            break;
        }
        let attempt = tokio::select! {
            r = tokio::time::timeout(CONNECT_TIMEOUT, Link::open(&s)) => r,
            _ = stop.changed() => break,
        };
        let attempt = attempt.unwrap_or_else(|_| Err("timed out".into()));
        let (link, deliveries) = match attempt {
            Ok(x) => x,
            Err(e) => {
                failures = failures.saturating_add(1);
                backoff_log(&s, failures, delay, &e);
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => break,
                }
                delay = delay.mul_f64(BACKOFF_FACTOR).min(BACKOFF_MAX);
                continue;
            }
        };
        let n = s.connects.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::info!(
            host = %s.settings.host, port = s.settings.port, connection = n,
            failed_attempts = failures, buffered = s.outbox.len(),
            dropped_total = s.outbox.dropped(), "RabbitMQ connected"
        );
        failures = 0;
        s.connected.send_replace(true);
        let since = tokio::time::Instant::now();
        let end = link.run(&s, deliveries, &mut stop).await;
        s.connected.send_replace(false);
        match end {
            End::Stopped => {
                link.close(&s, true).await;
                break;
            }
            End::Lost(e) => {
                tracing::warn!(
                    error = %e, buffered = s.outbox.len(),
                    "RabbitMQ connection lost: reconnecting"
                );
                link.close(&s, false).await;
                if since.elapsed() < STABLE {
                    // A link that breaks right away (e.g. a queue deleted under us) must not
                    // make us spin: keep backing off.
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = stop.changed() => break,
                    }
                    delay = delay.mul_f64(BACKOFF_FACTOR).min(BACKOFF_MAX);
                } else {
                    delay = BACKOFF_INITIAL;
                }
            }
        }
    }
    s.connected.send_replace(false);
    tracing::info!("RabbitMQ transport stopped");
}

fn backoff_log(s: &Shared, failures: u32, delay: Duration, e: &str) {
    // Every failure is worth a line: the retry interval caps them at one per 5 s.
    tracing::warn!(
        host = %s.settings.host, port = s.settings.port, attempt = failures,
        retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
        buffered = s.outbox.len(), error = %e,
        "can't connect to RabbitMQ: retrying"
    );
}

enum End {
    Stopped,
    Lost(String),
}

type Deliveries = BoxStream<'static, Option<(bool, lapin::Result<Delivery>)>>;

/// One live connection: its channel and consumers.
struct Link {
    conn: Connection,
    ch: Channel,
}

fn exchange_kind(t: &str) -> ExchangeKind {
    match t {
        "fanout" => ExchangeKind::Fanout,
        "direct" => ExchangeKind::Direct,
        "topic" => ExchangeKind::Topic,
        "headers" => ExchangeKind::Headers,
        other => ExchangeKind::Custom(other.to_owned()),
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

impl Link {
    async fn open(s: &Shared) -> Result<(Link, Deliveries), String> {
        let st = &s.settings;
        let uri = AMQPUri {
            // TLS, when on, is layered by our own connector below.
            scheme: AMQPScheme::AMQP,
            authority: AMQPAuthority {
                userinfo: AMQPUserInfo {
                    username: st.username.clone(),
                    password: st.password.clone(),
                },
                host: st.host.clone(),
                port: st.port,
            },
            vhost: st.vhost.clone(),
            query: AMQPQueryString {
                heartbeat: (st.heartbeat > 0).then_some(st.heartbeat),
                ..Default::default()
            },
        };
        let props = ConnectionProperties::default().with_connection_name("jano".into());
        let conn = match &s.tls {
            None => Connection::connect_uri(uri, props).await,
            Some(cfg) => {
                let connector = RustlsConnector::from(cfg.clone());
                let host = st.host.clone();
                let runtime = lapin::runtime::default_runtime().map_err(|e| err("runtime", e))?;
                Connection::connector(
                    uri,
                    runtime,
                    async move |uri: AMQPUri, runtime| {
                        let plain = uri
                            .connect_with_config_async(TLSConfig::default(), &runtime)
                            .await?;
                        Ok(plain.into_rustls(&connector, &host).await?)
                    },
                    props,
                )
                .await
            }
        }
        .map_err(|e| err("connect", e))?;
        match Self::setup(s, &conn).await {
            Ok((ch, deliveries)) => Ok((Link { conn, ch }, deliveries)),
            Err(e) => {
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    conn.close(200, "setup failed".into()),
                )
                .await;
                Err(e)
            }
        }
    }

    /// Declares what Janus declares, in Janus's order, and starts consuming.
    async fn setup(s: &Shared, conn: &Connection) -> Result<(Channel, Deliveries), String> {
        let st = &s.settings;
        let ch = conn
            .create_channel()
            .await
            .map_err(|e| err("opening channel", e))?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| err("enabling publisher confirms", e))?;
        let exchange = st.exchange.clone().unwrap_or_default();
        if let Some(x) = &st.exchange {
            // Non-durable, as Janus declares it.
            ch.exchange_declare(
                x.as_str().into(),
                exchange_kind(&st.exchange_type),
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| err("declaring exchange", e))?;
        }
        let bind = st.exchange_type == "topic" || st.exchange_type == "direct";
        let mut streams: Vec<Deliveries> = Vec::new();
        for (admin, q) in [(false, &st.api), (true, &st.admin)] {
            let Some(q) = q else { continue };
            let declared = ch
                .queue_declare(
                    q.incoming_queue().into(),
                    QueueDeclareOptions {
                        durable: q.durable,
                        exclusive: q.exclusive,
                        auto_delete: q.autodelete,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| err("declaring incoming queue", e))?;
            let name = declared.name().clone();
            if q.queue_name.is_some() && bind {
                if exchange.is_empty() {
                    // The default exchange refuses bindings (and would close the channel).
                    tracing::warn!(
                        queue = %name, "janus_exchange_type is {} but no janus_exchange is set: \
                         queue not bound", st.exchange_type
                    );
                } else {
                    ch.queue_bind(
                        name.clone(),
                        exchange.as_str().into(),
                        q.to_janus.as_str().into(),
                        QueueBindOptions::default(),
                        FieldTable::default(),
                    )
                    .await
                    .map_err(|e| err("binding incoming queue", e))?;
                }
            }
            if q.declare_outgoing_queue {
                ch.queue_declare(
                    q.from_janus.as_str().into(),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|e| err("declaring outgoing queue", e))?;
            }
            let consumer = ch
                .basic_consume(
                    name,
                    "".into(),
                    BasicConsumeOptions {
                        no_ack: true,
                        ..Default::default()
                    },
                    FieldTable::default(),
                )
                .await
                .map_err(|e| err("consuming", e))?;
            // A `None` after the last delivery tells the reader this consumer is over.
            streams.push(
                consumer
                    .map(move |d| Some((admin, d)))
                    .chain(stream::once(async { None }))
                    .boxed(),
            );
        }
        Ok((ch, stream::select_all(streams).boxed()))
    }

    /// Serves requests and publishes until stopped or the connection breaks.
    async fn run(
        &self,
        s: &Arc<Shared>,
        deliveries: Deliveries,
        stop: &mut watch::Receiver<bool>,
    ) -> End {
        let mut reader = AbortOnDrop(tokio::spawn(read(s.clone(), deliveries)));
        let mut check = tokio::time::interval(LIVENESS_CHECK);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // What waited while the broker was away, or arrived since, goes first.
            if let Err(e) = self.flush(s).await {
                return End::Lost(e);
            }
            tokio::select! {
                biased;
                _ = stop.changed() => return End::Stopped,
                r = &mut reader.0 => {
                    return End::Lost(r.unwrap_or_else(|e| format!("reader task: {e}")));
                }
                _ = s.outbox.notify.notified() => {}
                _ = check.tick() => {
                    if !self.conn.status().connected() {
                        return End::Lost("connection closed".into());
                    }
                }
            }
        }
    }

    /// Publishes everything buffered.
    async fn flush(&self, s: &Shared) -> Result<(), String> {
        loop {
            let batch = s.outbox.take(BATCH);
            if batch.is_empty() {
                return Ok(());
            }
            self.publish(s, batch).await?;
        }
    }

    /// Publishes a batch and waits for the broker's confirms. What is not confirmed goes back
    /// to the front of the buffer (so a message may arrive twice, never zero times).
    async fn publish(&self, s: &Shared, batch: Vec<Out>) -> Result<(), String> {
        let st = &s.settings;
        let exchange = st.exchange.as_deref().unwrap_or("");
        let mut pending = Vec::with_capacity(batch.len());
        let mut failure = None;
        for m in &batch {
            let routing_key = if m.admin { &st.admin } else { &st.api };
            let Some(routing_key) = routing_key.as_ref().map(|q| q.from_janus.as_str()) else {
                // Nothing of this API can be asked for when it is disabled; keep the slot.
                tracing::debug!(admin = m.admin, "message for a disabled API dropped");
                pending.push(None);
                continue;
            };
            let payload = st.json.to_vec(&m.msg);
            let mut props = BasicProperties::default()
                .with_reply_to("Janus".into())
                .with_content_type("application/json".into());
            if let Some(c) = &m.correlation_id {
                props = props.with_correlation_id(c.as_str().into());
            }
            match self
                .ch
                .basic_publish(
                    exchange.into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    &payload,
                    props,
                )
                .await
            {
                Ok(c) => pending.push(Some(c)),
                Err(e) => {
                    failure = Some(err("publishing", e));
                    break;
                }
            }
        }
        let mut confirmed = 0;
        for c in pending {
            if failure.is_some() {
                break;
            }
            let Some(c) = c else {
                confirmed += 1;
                continue;
            };
            match tokio::time::timeout(CONFIRM_TIMEOUT, c).await {
                Ok(Ok(Confirmation::Ack(_) | Confirmation::NotRequested)) => confirmed += 1,
                Ok(Ok(Confirmation::Nack(_))) => {
                    failure = Some("the broker refused a message (nack)".into())
                }
                Ok(Err(e)) => failure = Some(err("publisher confirm", e)),
                Err(_) => failure = Some("no publisher confirm within 10 s".into()),
            }
        }
        match failure {
            None => Ok(()),
            Some(e) => {
                s.outbox
                    .requeue(batch.into_iter().skip(confirmed).collect());
                Err(e)
            }
        }
    }

    /// Closes the channel and connection (bounded); on a clean stop, publishes what is left.
    async fn close(self, s: &Shared, flush: bool) {
        if flush {
            let _ = tokio::time::timeout(Duration::from_secs(2), self.flush(s)).await;
        }
        let bye = Duration::from_secs(2);
        if self.ch.status().connected() {
            let _ = tokio::time::timeout(bye, self.ch.close(200, "Bye".into())).await;
        }
        if self.conn.status().connected() {
            let _ = tokio::time::timeout(bye, self.conn.close(200, "Bye".into())).await;
        }
    }
}

struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Hands every delivery to the core; returns why the consumers stopped.
async fn read(s: Arc<Shared>, mut deliveries: Deliveries) -> String {
    while let Some(item) = deliveries.next().await {
        match item {
            Some((admin, Ok(d))) => incoming(&s, admin, &d),
            Some((_, Err(e))) => return err("consumer", e),
            None => return "consumer cancelled".into(),
        }
    }
    "consumers ended".into()
}

/// One request. A delivery is an Admin API request iff it came from the admin queue.
fn incoming(s: &Shared, admin: bool, d: &Delivery) {
    let correlation_id = d
        .properties
        .correlation_id()
        .as_ref()
        .map(|c| c.as_str().to_owned());
    let respond = |resp: Value| {
        s.outbox.push(Out {
            admin,
            correlation_id: correlation_id.clone(),
            msg: resp,
        })
    };
    let max = s.settings.max_message;
    if d.data.len() > max {
        tracing::debug!(bytes = d.data.len(), max, "RabbitMQ request too large");
        // Worded as the HTTP transport words it.
        let e = JanusError::new(
            ErrorCode::TransportSpecific,
            format!("Request too large (the limit is {max} bytes)"),
        );
        respond(msg::error(0, None, &e));
        return;
    }
    // Parse failures go to the core, which answers 454.
    let input = jano_api::json::decode(&d.data);
    if admin {
        s.handle.admin_request(s.conn, input, respond);
    } else {
        s.handle.request(s.conn, input, respond);
    }
}
