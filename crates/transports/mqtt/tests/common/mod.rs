//! Shared pieces of the MQTT transport's tests: the real Mosquitto on 127.0.0.1:1883, a jano
//! runtime with EchoTest, and an MQTT test client (3.1.1 or 5) built on rumqttc. Every wait is
//! bounded; topics and client ids are unique per test.

#![allow(dead_code)]

use bytes::Bytes;
use jano_mqtt::{Server, Settings};
use jano_runtime::{PluginQueue, PluginRegistry, Runtime};
use rumqttc::v5 as r5;
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub const BROKER: &str = "127.0.0.1:1883";
pub const ADMIN_SECRET: &str = "secret";
pub const ECHO: &str = "janus.plugin.echotest";
pub const WAIT: Duration = Duration::from_secs(5);

static N: AtomicU64 = AtomicU64::new(1);

/// A name no other test (or test run) uses.
pub fn unique(what: &str) -> String {
    format!(
        "jano-test/{}-{}-{}",
        what,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub fn tx() -> String {
    format!("tx{}", N.fetch_add(1, Ordering::Relaxed))
}

pub fn broker_answers() -> bool {
    let addr: SocketAddr = BROKER.parse().expect("addr");
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Waits up to `d` for the broker's port to answer (or, with `up = false`, to stop answering).
pub fn wait_broker(up: bool, d: Duration) -> bool {
    let end = std::time::Instant::now() + d;
    while std::time::Instant::now() < end {
        if broker_answers() == up {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    broker_answers() == up
}

pub fn start_broker() -> bool {
    let conf = "/etc/mosquitto/mosquitto.conf";
    let mut cmd = std::process::Command::new("mosquitto");
    if std::path::Path::new(conf).exists() {
        cmd.args(["-d", "-c", conf]);
    } else {
        cmd.arg("-d");
    }
    match cmd.status() {
        Ok(_) => wait_broker(true, Duration::from_secs(10)),
        Err(e) => {
            eprintln!("cannot start mosquitto: {e}");
            false
        }
    }
}

/// Makes sure Mosquitto answers; false (with a loud message) if it cannot be had.
pub fn ensure_broker() -> bool {
    if broker_answers() || start_broker() {
        return true;
    }
    eprintln!(
        "\n*** SKIPPED: no MQTT broker at {BROKER} and `mosquitto -d` did not start one ***\n"
    );
    false
}

/// A gateway with EchoTest and an admin secret.
pub fn runtime(session_timeout: u64) -> Runtime {
    let queue = PluginQueue::new();
    let mut registry = PluginRegistry::new();
    registry.add(Arc::new(jano_echotest::EchoTest::new(
        queue.services_for(ECHO),
    )));
    let cfg = jano_core::CoreConfig {
        session_timeout,
        admin_secret: Some(ADMIN_SECRET.into()),
        ..Default::default()
    };
    Runtime::start(cfg, registry, queue, None)
}

/// The topics of one test.
#[derive(Clone, Debug)]
pub struct Topics {
    pub prefix: String,
    pub to_janus: String,
    pub from_janus: String,
    pub to_admin: String,
    pub from_admin: String,
    pub status: String,
}

impl Topics {
    pub fn new(what: &str) -> Topics {
        let prefix = unique(what);
        Topics {
            to_janus: format!("{prefix}/to-janus"),
            from_janus: format!("{prefix}/from-janus"),
            to_admin: format!("{prefix}/to-janus-admin"),
            from_admin: format!("{prefix}/from-janus-admin"),
            status: format!("{prefix}/status"),
            prefix,
        }
    }

    /// A jano configuration for these topics, admin enabled; `extra_general` is added to
    /// `general`, `extra` at the top level.
    pub fn jcfg(&self, version: &str, extra_general: &str, extra: &str) -> String {
        format!(
            r#"general: {{
                enabled = true
                url = "tcp://{BROKER}"
                mqtt_version = "{version}"
                client_id = "{prefix}-jano"
                cleansession = 1
                subscribe_topic = "{to}"
                publish_topic = "{from}"
                {extra_general}
            }}
            admin: {{
                admin_enabled = true
                subscribe_topic = "{to_admin}"
                publish_topic = "{from_admin}"
            }}
            {extra}"#,
            prefix = self.prefix,
            to = self.to_janus,
            from = self.from_janus,
            to_admin = self.to_admin,
            from_admin = self.from_admin,
        )
    }
}

pub fn settings(text: &str) -> Settings {
    let j = jano_config::Jcfg::parse(text, "janus.transport.mqtt.jcfg").expect("jcfg");
    Settings::from_jcfg(&j).expect("settings")
}

pub async fn serve(rt: &Runtime, text: &str) -> Server {
    tokio::time::timeout(
        Duration::from_secs(10),
        jano_mqtt::serve(rt, settings(text)),
    )
    .await
    .expect("serve in time")
    .expect("serve")
}

/// A message the test client received.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: Bytes,
    pub json: Value,
    pub retain: bool,
    pub correlation: Option<Bytes>,
    pub user: Vec<(String, String)>,
}

/// MQTT 5 properties of a request.
#[derive(Debug, Clone, Default)]
pub struct ReqProps {
    pub response_topic: Option<String>,
    pub correlation: Option<Bytes>,
    pub user: Vec<(String, String)>,
}

#[derive(Clone)]
enum Raw {
    V4(rumqttc::AsyncClient),
    V5(r5::AsyncClient),
}

/// An MQTT client for tests: subscribes to `subs` on every connection, and reconnects by
/// itself (like an application would).
pub struct Peer {
    raw: Raw,
    rx: mpsc::UnboundedReceiver<Msg>,
    connections: watch::Receiver<u64>,
    task: tokio::task::JoinHandle<()>,
    pub id: String,
    v5: bool,
    port: u16,
}

pub struct PeerOpts {
    pub v5: bool,
    pub id: String,
    pub subs: Vec<String>,
    /// Keep the session across disconnections (3.1.1 clean session off; 5 with an expiry).
    pub persistent: bool,
    /// The broker's port on 127.0.0.1.
    pub port: u16,
}

impl Default for PeerOpts {
    fn default() -> Self {
        PeerOpts {
            v5: false,
            id: unique("peer").replace('/', "-"),
            subs: Vec::new(),
            persistent: false,
            port: 1883,
        }
    }
}

fn qos1() -> rumqttc::QoS {
    rumqttc::QoS::AtLeastOnce
}

impl Peer {
    pub async fn connect(v5: bool, subs: &[&str]) -> Peer {
        Peer::connect_with(PeerOpts {
            v5,
            subs: subs.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        })
        .await
    }

    pub async fn connect_with(o: PeerOpts) -> Peer {
        let (tx, rx) = mpsc::unbounded_channel();
        let (conn_tx, connections) = watch::channel(0u64);
        let (host, port) = ("127.0.0.1", o.port);
        let subs = o.subs.clone();
        let (raw, task) = if o.v5 {
            let mut opts = r5::MqttOptions::new(&o.id, host, port);
            opts.set_keep_alive(Duration::from_secs(30));
            opts.set_clean_start(!o.persistent);
            if o.persistent {
                opts.set_session_expiry_interval(Some(300));
            }
            opts.set_max_packet_size(Some(16 << 20));
            let (c, mut el) = r5::AsyncClient::new(opts, 64);
            let c2 = c.clone();
            let task = tokio::spawn(async move {
                let mut n = 0;
                loop {
                    match el.poll().await {
                        Ok(r5::Event::Incoming(r5::mqttbytes::v5::Packet::ConnAck(_))) => {
                            for s in &subs {
                                let _ = c2
                                    .subscribe(s.as_str(), r5::mqttbytes::QoS::AtLeastOnce)
                                    .await;
                            }
                        }
                        Ok(r5::Event::Incoming(r5::mqttbytes::v5::Packet::SubAck(_))) => {
                            n += 1;
                            if n % subs.len().max(1) == 0 {
                                conn_tx.send_modify(|c| *c += 1);
                            }
                        }
                        Ok(r5::Event::Incoming(r5::mqttbytes::v5::Packet::Publish(p))) => {
                            let props = p.properties.unwrap_or_default();
                            let _ = tx.send(Msg {
                                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                json: serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
                                payload: p.payload,
                                retain: p.retain,
                                correlation: props.correlation_data,
                                user: props.user_properties,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
            (Raw::V5(c), task)
        } else {
            let mut opts = rumqttc::MqttOptions::new(&o.id, host, port);
            opts.set_keep_alive(Duration::from_secs(30));
            opts.set_clean_session(!o.persistent);
            opts.set_max_packet_size(16 << 20, 16 << 20);
            let (c, mut el) = rumqttc::AsyncClient::new(opts, 64);
            let c2 = c.clone();
            let task = tokio::spawn(async move {
                let mut n = 0;
                loop {
                    match el.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            for s in &subs {
                                let _ = c2.subscribe(s.as_str(), qos1()).await;
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            n += 1;
                            if n % subs.len().max(1) == 0 {
                                conn_tx.send_modify(|c| *c += 1);
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            let _ = tx.send(Msg {
                                topic: p.topic.clone(),
                                json: serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
                                payload: p.payload,
                                retain: p.retain,
                                correlation: None,
                                user: Vec::new(),
                            });
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
            (Raw::V4(c), task)
        };
        let mut peer = Peer {
            raw,
            rx,
            connections,
            task,
            id: o.id,
            v5: o.v5,
            port: o.port,
        };
        peer.wait_connections(1, Duration::from_secs(10)).await;
        peer
    }

    /// Waits until the client has (re)subscribed `n` times in all.
    pub async fn wait_connections(&mut self, n: u64, d: Duration) {
        let r = tokio::time::timeout(d, self.connections.wait_for(|c| *c >= n)).await;
        assert!(
            matches!(r, Ok(Ok(_))),
            "test client {} not subscribed in time",
            self.id
        );
    }

    pub async fn publish_raw(&self, topic: &str, payload: impl Into<Vec<u8>>, props: ReqProps) {
        let payload: Vec<u8> = payload.into();
        match &self.raw {
            Raw::V4(c) => c
                .publish(topic, qos1(), false, payload)
                .await
                .expect("publish"),
            Raw::V5(c) => {
                let p = r5::mqttbytes::v5::PublishProperties {
                    response_topic: props.response_topic,
                    correlation_data: props.correlation,
                    user_properties: props.user,
                    ..Default::default()
                };
                c.publish_with_properties(topic, r5::mqttbytes::QoS::AtLeastOnce, false, payload, p)
                    .await
                    .expect("publish")
            }
        }
    }

    /// Publishes a retained message (an empty one clears the topic's retained message).
    pub async fn publish_retained(&self, topic: &str, payload: Vec<u8>) {
        match &self.raw {
            Raw::V4(c) => c
                .publish(topic, qos1(), true, payload)
                .await
                .expect("publish"),
            Raw::V5(c) => c
                .publish(topic, r5::mqttbytes::QoS::AtLeastOnce, true, payload)
                .await
                .expect("publish"),
        }
    }

    pub async fn send(&self, topic: &str, v: &Value) {
        self.publish_raw(topic, v.to_string(), ReqProps::default())
            .await;
    }

    pub async fn recv(&mut self, d: Duration) -> Option<Msg> {
        tokio::time::timeout(d, self.rx.recv()).await.ok().flatten()
    }

    /// The next message matching `pred` within [`WAIT`]; others are dropped.
    pub async fn wait(&mut self, pred: impl Fn(&Msg) -> bool) -> Option<Msg> {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let left = end.saturating_duration_since(tokio::time::Instant::now());
            let m = self.recv(left).await?;
            if pred(&m) {
                return Some(m);
            }
        }
    }

    /// Sends a request and returns its (non-event) response.
    pub async fn call(&mut self, topic: &str, mut req: Value) -> Value {
        let t = tx();
        req["transaction"] = json!(t);
        self.send(topic, &req).await;
        self.wait(|m| m.json["transaction"] == t && m.json["janus"] != "event")
            .await
            .unwrap_or_else(|| panic!("no response to {req}"))
            .json
    }

    /// Ends the connection (clean DISCONNECT) and the task.
    pub async fn close(self) {
        match &self.raw {
            Raw::V4(c) => {
                let _ = c.disconnect().await;
            }
            Raw::V5(c) => {
                let _ = c.disconnect().await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }

    /// Removes a persistent session from the broker: connects with a clean session, leaves.
    pub async fn forget(self) {
        let (id, v5, port) = (self.id.clone(), self.v5, self.port);
        self.close().await;
        let p = Peer::connect_with(PeerOpts {
            v5,
            id,
            subs: vec![unique("none")],
            port,
            ..Default::default()
        })
        .await;
        p.close().await;
    }
}

pub fn code(v: &Value) -> u64 {
    if v["janus"] == "error" {
        v["error"]["code"].as_u64().unwrap_or(1)
    } else {
        0
    }
}
