//! `janus.transport.mqtt`: the Janus API and the Admin API over an MQTT broker, in MQTT 3.1.1
//! or MQTT 5, with Janus's configuration keys and defaults.
//!
//! - One client, one transport instance: every session created or claimed over MQTT has its
//!   events published to `publish_topic`; the instance is never reported gone.
//! - Requests arrive on `subscribe_topic` (Janus API) or the `[admin]` `subscribe_topic`; the
//!   topic decides which API. Empty messages are ignored; anything else gets an answer, errors
//!   included (454 for what is not JSON).
//! - MQTT 5: a reply goes to the request's Response Topic with its Correlation Data (and the
//!   configured user properties). The route of an acknowledged request is kept, by transaction,
//!   for the plugin events that follow it, until `vacuum_interval`. Unlike Janus, requests
//!   without a string transaction (unparsable ones included) are answered, not dropped.
//! - Unlike Janus, an unreachable broker does not stop jano: the client keeps retrying with
//!   backoff, and what is produced meanwhile waits in a bounded outbox (`max_buffered`; what
//!   does not fit is counted and logged). Messages the broker had not confirmed when the
//!   connection dropped are published again after the reconnection, and the subscriptions are
//!   made again.
//! - `[status]`: `connect_message` on every connection, `disconnect_message` as the last will
//!   and on a clean stop.

mod client;
mod link;
mod settings;
mod tls;

pub use settings::{parse_url, Broker, Settings, Status, Tls, Version};

use bytes::Bytes;
use client::{Client, Ev, EventLoop};
use jano_api::Value;
use jano_runtime::{Runtime, TransportHandle, TransportSink};
use link::{Link, Out, Props, Pushed, Route, Routes};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

/// What `info` says about this transport.
pub const INFO: jano_runtime::TransportInfo = jano_runtime::TransportInfo {
    package: "janus.transport.mqtt",
    name: "JANUS MQTT transport plugin",
    author: "jano",
    description: "The Janus API and Admin API over MQTT 3.1.1 and 5, on rumqttc.",
    version: 1,
    version_string: "0.0.1",
};

/// Outbox bound while connected: a burst beyond the in-flight window waits here.
const MAX_QUEUED: usize = 65_536;
/// MQTT 5 reply routes kept at once.
const MAX_ROUTES: usize = 65_536;
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long `serve` waits for the first connection and subscriptions before returning (it
/// returns at once when the broker refuses the connection).
const FIRST_CONNECT_WAIT: Duration = Duration::from_secs(5);

/// Counters of a running transport (diagnostics and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub connected: bool,
    /// Messages waiting to be handed to the broker.
    pub queued: usize,
    /// Messages handed over, not yet confirmed.
    pub in_flight: usize,
    /// Messages dropped because the outbox was full.
    pub dropped: u64,
    /// Successful connections so far (1 + reconnections).
    pub connections: u64,
    /// MQTT 5 reply routes currently kept.
    pub routes: usize,
}

struct Shared {
    settings: Settings,
    client: Client,
    link: Mutex<Link>,
    routes: Mutex<Routes>,
    stopping: AtomicBool,
    connections: AtomicU64,
}

impl Shared {
    fn link(&self) -> MutexGuard<'_, Link> {
        // Link updates cannot panic half-way; a poisoned lock still holds a usable state.
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn routes(&self) -> MutexGuard<'_, Routes> {
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pump(&self, link: &mut Link) {
        let too_large = link.pump(|o| self.client.publish(o));
        if too_large > 0 {
            tracing::error!(
                dropped = too_large,
                "MQTT: message larger than the broker accepts (its maximum packet size): dropped"
            );
        }
    }

    /// Queues a message for the broker (never blocks: called with the gateway lock held).
    fn enqueue(&self, out: Out) {
        let mut link = self.link();
        if link.push(out) == Pushed::Dropped {
            let n = link.dropped_total();
            if n == 1 || n.is_multiple_of(100) {
                tracing::warn!(
                    dropped = n,
                    connected = link.connected(),
                    max_buffered = self.settings.max_buffered,
                    "MQTT outbox full: message dropped"
                );
            }
            return;
        }
        self.pump(&mut link);
    }

    fn encode(&self, v: &Value) -> Bytes {
        Bytes::from(self.settings.json.to_vec(v))
    }

    /// A Janus message to `default_topic`, or where an MQTT 5 route says.
    fn out_for(&self, default_topic: &str, route: Option<&Route>, payload: Bytes) -> Out {
        let s = &self.settings;
        let mut topic = default_topic;
        let mut props = None;
        if let (Version::V5, Some(r)) = (s.version, route) {
            match r.response_topic.as_deref() {
                Some(t) if valid_topic_name(t) => topic = t,
                Some(t) => tracing::debug!(topic = t, "invalid MQTT response topic: ignored"),
                None => {}
            }
            let mut user = r.user_properties.clone();
            user.extend(s.add_transaction_user_properties.iter().cloned());
            if r.correlation_data.is_some() || !user.is_empty() {
                props = Some(Props {
                    correlation_data: r.correlation_data.clone(),
                    user_properties: user,
                });
            }
        }
        Out {
            topic: topic.to_string(),
            payload,
            qos: s.publish_qos,
            retain: false,
            props,
        }
    }

    fn status_out(&self, st: &Status, message: &str) -> Out {
        Out {
            topic: st.topic.clone(),
            payload: Bytes::from(message.as_bytes().to_vec()),
            qos: st.qos,
            retain: st.retain,
            props: None,
        }
    }

    /// Whether a route carries anything an event should follow.
    fn route_matters(&self, r: &Route) -> bool {
        r.response_topic.is_some()
            || r.correlation_data.is_some()
            || !r.user_properties.is_empty()
            || !self.settings.add_transaction_user_properties.is_empty()
    }
}

impl TransportSink for Shared {
    fn send_event(&self, _conn: u64, _session_id: u64, event: Value) {
        let route = match self.settings.version {
            Version::V5 => event
                .get("transaction")
                .and_then(Value::as_str)
                .and_then(|tx| self.routes().get(tx).cloned()),
            Version::V311 => None,
        };
        let out = self.out_for(
            &self.settings.publish_topic,
            route.as_ref(),
            self.encode(&event),
        );
        self.enqueue(out);
    }
}

/// A topic jano may publish to: no wildcards, not empty.
fn valid_topic_name(t: &str) -> bool {
    !t.is_empty() && !t.contains(['+', '#', '\0']) && t.len() <= 65_535
}

/// A running MQTT transport.
pub struct Server {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Stops serving: publishes the status disconnect message, waits up to
    /// `disconnect_timeout` for what is queued, disconnects cleanly, and ends the tasks.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// [`Server::stop`], then waits (bounded) until the client has disconnected.
    pub async fn shutdown(&self) {
        self.stop();
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let bound = self.shared.settings.disconnect_timeout + Duration::from_secs(1);
            let _ = tokio::time::timeout(bound, task).await;
        }
    }

    pub fn stats(&self) -> Stats {
        let link = self.shared.link();
        Stats {
            connected: link.connected(),
            queued: link.queued(),
            in_flight: link.in_flight(),
            dropped: link.dropped_total(),
            connections: self.shared.connections.load(Ordering::Relaxed),
            routes: self.shared.routes().len(),
        }
    }
}

fn check_topics(s: &Settings) -> Result<(), String> {
    let mut filters = Vec::new();
    let mut names = Vec::new();
    if s.api_enabled {
        filters.push(("subscribe_topic", &s.subscribe_topic));
        names.push(("publish_topic", &s.publish_topic));
    }
    if s.admin_enabled {
        filters.push(("[admin] subscribe_topic", &s.admin_subscribe_topic));
        names.push(("[admin] publish_topic", &s.admin_publish_topic));
    }
    if let Some(st) = &s.status {
        names.push(("[status] topic", &st.topic));
    }
    for (key, f) in filters {
        if !rumqttc::valid_filter(f) {
            return Err(format!("invalid MQTT topic filter for {key}: '{f}'"));
        }
    }
    for (key, t) in names {
        if !valid_topic_name(t) {
            return Err(format!("invalid MQTT topic for {key}: '{t}'"));
        }
    }
    Ok(())
}

/// Starts the transport. Returns once subscribed, or at once if the broker cannot be reached
/// (the client then keeps trying in the background).
pub async fn serve(rt: &Runtime, settings: Settings) -> Result<Server, String> {
    if !settings.enabled {
        return Err("MQTT: neither the Janus API nor the Admin API is enabled".into());
    }
    check_topics(&settings)?;
    if settings.api_enabled
        && settings.admin_enabled
        && settings.subscribe_topic == settings.admin_subscribe_topic
    {
        tracing::warn!("MQTT: the Janus API and the Admin API share one subscribe topic: everything on it is taken as Admin API, as in Janus");
    }
    let (client, el) = client::build(&settings)?;
    let shared = Arc::new(Shared {
        link: Mutex::new(Link::new(
            usize::from(settings.max_inflight),
            settings.max_buffered,
            MAX_QUEUED,
        )),
        routes: Mutex::new(Routes::new(MAX_ROUTES)),
        settings,
        client,
        stopping: AtomicBool::new(false),
        connections: AtomicU64::new(0),
    });
    let handle = rt.register_transport(INFO, shared.clone());
    let conn = handle.new_instance();
    let (stop, stopped) = watch::channel(false);
    let (ready_tx, ready_rx) = oneshot::channel();
    let s = &shared.settings;
    tracing::info!(
        broker = %format!("{}:{}", s.broker.host, s.broker.port),
        tls = s.broker.tls,
        version = ?s.version,
        client_id = %s.client_id,
        api = s.api_enabled,
        admin = s.admin_enabled,
        "MQTT transport starting"
    );
    let task = tokio::spawn(drive(
        shared.clone(),
        el,
        handle,
        conn,
        stopped.clone(),
        ready_tx,
    ));
    if s.version == Version::V5 {
        tokio::spawn(vacuum(shared.clone(), stopped));
    }
    match tokio::time::timeout(FIRST_CONNECT_WAIT, ready_rx).await {
        Ok(Ok(true)) => tracing::info!("MQTT transport connected and subscribed"),
        // The driver has logged why.
        Ok(Ok(false)) | Ok(Err(_)) => {}
        Err(_) => tracing::warn!("MQTT broker has not answered yet: connecting in the background"),
    }
    Ok(Server {
        shared,
        stop,
        task: Mutex::new(Some(task)),
    })
}

/// MQTT 5: forgets reply routes older than `vacuum_interval`.
async fn vacuum(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let ttl = shared.settings.vacuum_interval;
    let mut tick = tokio::time::interval(Duration::from_secs(1).min(ttl));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => shared.routes().vacuum(Instant::now(), ttl),
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
}

/// Runs the connection: (re)connects with backoff, subscribes, dispatches requests and keeps
/// the outbox moving, until stopped.
async fn drive(
    sh: Arc<Shared>,
    mut el: EventLoop,
    handle: TransportHandle,
    conn: u64,
    mut stopped: watch::Receiver<bool>,
    ready: oneshot::Sender<bool>,
) {
    let s = &sh.settings;
    let broker = format!("{}:{}", s.broker.host, s.broker.port);
    let mut ready = Some(ready);
    let mut backoff = BACKOFF_START;
    let mut failures: u64 = 0;
    let mut awaiting_subacks = 0usize;
    let mut down_since: Option<Instant> = None;
    loop {
        let polled = tokio::select! {
            r = el.poll() => r,
            _ = stopped.wait_for(|s| *s) => break,
        };
        match polled {
            Ok(Ev::ConnAck { max_packet }) => {
                backoff = BACKOFF_START;
                failures = 0;
                sh.connections.fetch_add(1, Ordering::Relaxed);
                match down_since.take() {
                    Some(t) => tracing::info!(
                        %broker,
                        down_ms = t.elapsed().as_millis() as u64,
                        "MQTT: connected to the broker again"
                    ),
                    None => tracing::info!(%broker, "MQTT: connected to the broker"),
                }
                // Subscriptions are made on every connection: a clean session has none.
                awaiting_subacks = 0;
                if s.api_enabled && sh.client.subscribe(&s.subscribe_topic, s.subscribe_qos) {
                    awaiting_subacks += 1;
                }
                let same = s.api_enabled && s.admin_subscribe_topic == s.subscribe_topic;
                if s.admin_enabled
                    && !same
                    && sh
                        .client
                        .subscribe(&s.admin_subscribe_topic, s.admin_subscribe_qos)
                {
                    awaiting_subacks += 1;
                }
                let mut link = sh.link();
                let dropped = link.take_dropped_recent();
                if dropped > 0 {
                    tracing::warn!(
                        dropped,
                        max_buffered = s.max_buffered,
                        "MQTT: messages were dropped while the broker was unreachable"
                    );
                }
                if let Some(st) = &s.status {
                    if let Some(m) = &st.connect_message {
                        link.push_front(sh.status_out(st, m));
                    }
                }
                let waiting = link.queued();
                link.set_connected(max_packet);
                sh.pump(&mut link);
                drop(link);
                if waiting > 0 {
                    tracing::info!(waiting, "MQTT: publishing what was kept while offline");
                }
                if awaiting_subacks == 0 {
                    if let Some(r) = ready.take() {
                        let _ = r.send(true);
                    }
                }
            }
            Ok(Ev::SubAck { ok }) => {
                if !ok {
                    tracing::error!(
                        "MQTT: the broker refused a subscription: no requests will arrive on it"
                    );
                }
                awaiting_subacks = awaiting_subacks.saturating_sub(1);
                if awaiting_subacks == 0 {
                    if let Some(r) = ready.take() {
                        let _ = r.send(true);
                    }
                }
            }
            Ok(Ev::Message {
                topic,
                payload,
                route,
            }) => on_message(&sh, &handle, conn, &topic, &payload, route),
            Ok(Ev::Published(pkid)) => {
                let mut link = sh.link();
                link.published(pkid);
                if pkid == 0 {
                    sh.pump(&mut link);
                }
            }
            Ok(Ev::Held(pkid)) => sh.link().held(pkid),
            Ok(Ev::Confirmed(pkid)) => {
                let mut link = sh.link();
                link.confirmed(pkid);
                sh.pump(&mut link);
            }
            Ok(Ev::Disconnected | Ev::Other) => {}
            Err(e) => {
                let was_connected = {
                    let mut link = sh.link();
                    let was = link.set_disconnected();
                    // Under the lock: nothing can be handed to the client in between.
                    el.forget_pending();
                    was
                };
                if was_connected {
                    down_since = Some(Instant::now());
                    tracing::warn!(%broker, error = %e, "MQTT: lost the connection to the broker: reconnecting");
                } else if failures == 0 {
                    down_since.get_or_insert_with(Instant::now);
                    tracing::warn!(%broker, error = %e, "MQTT: cannot reach the broker: retrying in the background");
                } else if failures.is_multiple_of(20) {
                    tracing::warn!(%broker, error = %e, failures, "MQTT: still cannot reach the broker");
                } else {
                    tracing::debug!(%broker, error = %e, failures, "MQTT: connection attempt failed");
                }
                failures += 1;
                if let Some(r) = ready.take() {
                    let _ = r.send(false);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stopped.wait_for(|s| *s) => break,
                }
                backoff = (backoff * 3 / 2).min(BACKOFF_MAX);
            }
        }
    }
    shutdown(&sh, &mut el).await;
}

/// The clean end: the status disconnect message, what is still queued (within
/// `disconnect_timeout`), then DISCONNECT (so the broker drops the last will).
async fn shutdown(sh: &Shared, el: &mut EventLoop) {
    sh.stopping.store(true, Ordering::Relaxed);
    let s = &sh.settings;
    {
        let mut link = sh.link();
        if !link.connected() {
            tracing::info!("MQTT transport stopped");
            return;
        }
        if let Some(st) = &s.status {
            if let Some(m) = &st.disconnect_message {
                // Last, after what is queued; never dropped.
                let out = sh.status_out(st, m);
                if link.push(out.clone()) == Pushed::Dropped {
                    link.push_front(out);
                }
            }
        }
        sh.pump(&mut link);
    }
    let mut deadline = tokio::time::Instant::now() + s.disconnect_timeout;
    let mut disconnecting = false;
    loop {
        if !disconnecting && sh.link().idle() {
            disconnecting = sh.client.disconnect();
        }
        match tokio::time::timeout_at(deadline, el.poll()).await {
            Ok(Ok(Ev::Disconnected)) | Ok(Err(_)) => break,
            Ok(Ok(Ev::Published(pkid))) => sh.link().published(pkid),
            Ok(Ok(Ev::Held(pkid))) => sh.link().held(pkid),
            Ok(Ok(Ev::Confirmed(pkid))) => {
                let mut link = sh.link();
                link.confirmed(pkid);
                sh.pump(&mut link);
            }
            Ok(Ok(_)) => {}
            Err(_) if !disconnecting => {
                let link = sh.link();
                tracing::warn!(
                    queued = link.queued(),
                    in_flight = link.in_flight(),
                    "MQTT: stopping before the broker confirmed everything (disconnect_timeout)"
                );
                drop(link);
                disconnecting = sh.client.disconnect();
                deadline = tokio::time::Instant::now() + Duration::from_millis(200);
            }
            Err(_) => break,
        }
    }
    sh.link().set_disconnected();
    tracing::info!("MQTT transport stopped");
}

/// A request from the broker: which API by topic, parsed, answered.
fn on_message(
    sh: &Shared,
    handle: &TransportHandle,
    conn: u64,
    topic: &str,
    payload: &[u8],
    route: Option<Route>,
) {
    let s = &sh.settings;
    // The admin topic first: with one topic for both, Janus takes everything as Admin API.
    let admin = if s.admin_enabled && link::topic_matches(topic, &s.admin_subscribe_topic) {
        true
    } else if s.api_enabled && link::topic_matches(topic, &s.subscribe_topic) {
        false
    } else {
        tracing::debug!(topic, "MQTT message on another topic: ignored");
        return;
    };
    if payload.is_empty() {
        tracing::debug!(topic, "empty MQTT message: ignored");
        return;
    }
    if sh.stopping.load(Ordering::Relaxed) {
        return;
    }
    let route = route.map(|mut r| {
        r.user_properties
            .retain(|(k, _)| s.proxy_transaction_user_properties.contains(k));
        r
    });
    let input = parse(payload, s.max_message_size);
    // MQTT 5 Janus API: the route of an acknowledged request is kept for its events.
    let transaction = match (&route, admin, &input) {
        (Some(_), false, Ok(v)) => v
            .get("transaction")
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    };
    let default_topic = if admin {
        &s.admin_publish_topic
    } else {
        &s.publish_topic
    };
    let respond = |resp: Value| {
        if let (Some(tx), Some(r)) = (&transaction, &route) {
            let ack = resp.get("janus").and_then(Value::as_str) == Some("ack");
            if ack && sh.route_matters(r) {
                let mut routes = sh.routes();
                if !routes.insert(tx, r.clone(), Instant::now()) {
                    let n = routes.dropped();
                    if n == 1 || n.is_multiple_of(1000) {
                        tracing::warn!(
                            dropped = n,
                            "MQTT 5 reply routes full: events of this transaction go to the default topic"
                        );
                    }
                }
            }
        }
        sh.enqueue(sh.out_for(default_topic, route.as_ref(), sh.encode(&resp)));
    };
    if admin {
        handle.admin_request(conn, input, respond);
    } else {
        handle.request(conn, input, respond);
    }
}

/// The payload as JSON, or the parser's complaint as the core words it (it answers 454).
fn parse(payload: &[u8], max: usize) -> Result<Value, String> {
    if payload.len() > max {
        return Err(format!(
            "message too large ({} bytes, the limit is {max})",
            payload.len()
        ));
    }
    jano_api::json::decode(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_are_454_details() {
        let e = parse(b"{not json", 100).expect_err("error");
        assert!(e.starts_with("<string>(1,2): "), "{e}");
        assert!(parse(b"{}", 1).is_err());
        assert!(parse(b"[1]", 100).is_ok());
    }

    #[test]
    fn topic_names() {
        assert!(valid_topic_name("a/b"));
        assert!(!valid_topic_name(""));
        assert!(!valid_topic_name("a/+"));
        assert!(!valid_topic_name("a/#"));
    }
}
