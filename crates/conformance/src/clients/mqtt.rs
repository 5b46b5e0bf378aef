//! The Janus API over MQTT (3.1.1 or 5) as an application uses it: requests are published to
//! jano's subscribe topics, responses and events are read from its publish topics, through the
//! real Mosquitto at 127.0.0.1:1883 (started here if it does not answer).
//!
//! With MQTT 5 every request carries a Response Topic (this client's own) and Correlation
//! Data; whatever arrives on the response topic must carry the Correlation Data of a request
//! this client sent, and the transaction of that request, or the client panics.

use crate::clients::Setup;
use crate::server::{Options, TestServer};
use crate::Client;
use rumqttc::v5 as r5;
use serde_json::Value;
use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

pub const BROKER_HOST: &str = "127.0.0.1";
pub const BROKER_PORT: u16 = 1883;

static N: AtomicU64 = AtomicU64::new(1);

fn next() -> u64 {
    N.fetch_add(1, Ordering::Relaxed)
}

fn broker_answers() -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], BROKER_PORT));
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
}

/// Makes sure Mosquitto answers, starting it as this machine does if needed.
fn ensure_broker() {
    if broker_answers() {
        return;
    }
    let conf = "/etc/mosquitto/mosquitto.conf";
    let mut cmd = std::process::Command::new("mosquitto");
    if std::path::Path::new(conf).exists() {
        cmd.args(["-d", "-c", conf]);
    } else {
        cmd.arg("-d");
    }
    let _ = cmd.status();
    for _ in 0..100 {
        if broker_answers() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "\n*** no MQTT broker at {BROKER_HOST}:{BROKER_PORT} and `mosquitto -d` did not start one: \
         the MQTT conversation suite cannot run (install and start mosquitto) ***\n"
    );
}

/// The MQTT transport in the suite: one protocol version, topics of its own.
pub struct MqttSetup {
    v5: bool,
    prefix: String,
}

impl MqttSetup {
    fn new(v5: bool) -> MqttSetup {
        MqttSetup {
            v5,
            prefix: format!(
                "jano-conf/{}-{}-{}",
                if v5 { "v5" } else { "v311" },
                std::process::id(),
                next()
            ),
        }
    }

    pub fn v311() -> MqttSetup {
        MqttSetup::new(false)
    }

    pub fn v5() -> MqttSetup {
        MqttSetup::new(true)
    }

    fn topic(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }
}

impl Setup for MqttSetup {
    type C = MqttClient;

    fn configure(&self, opts: &mut Options) {
        ensure_broker();
        let text = format!(
            r#"general: {{
                enabled = true
                url = "tcp://{BROKER_HOST}:{BROKER_PORT}"
                mqtt_version = "{version}"
                client_id = "{prefix}-jano"
                # Nothing left behind in the broker by the test runs.
                cleansession = 1
                subscribe_topic = "{to}"
                publish_topic = "{from}"
            }}
            admin: {{
                admin_enabled = true
                subscribe_topic = "{to_admin}"
                publish_topic = "{from_admin}"
            }}"#,
            version = if self.v5 { "5" } else { "3.1.1" },
            prefix = self.prefix.replace('/', "-"),
            to = self.topic("to-janus"),
            from = self.topic("from-janus"),
            to_admin = self.topic("to-janus-admin"),
            from_admin = self.topic("from-janus-admin"),
        );
        opts.transports.push(("janus.transport.mqtt".into(), text));
    }

    async fn connect(&self, _srv: &TestServer) -> MqttClient {
        MqttClient::connect(self).await
    }
}

#[derive(Clone)]
enum Raw {
    V4(rumqttc::AsyncClient),
    V5(r5::AsyncClient),
}

/// What came from the broker: the topic, the JSON, and the MQTT 5 Correlation Data.
struct Received {
    topic: String,
    json: Value,
    correlation: Option<Vec<u8>>,
}

pub struct MqttClient {
    raw: Raw,
    rx: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
    to_janus: String,
    to_admin: String,
    /// MQTT 5: this client's response topic.
    reply: String,
    /// MQTT 5: correlation data sent → the request's transaction (if it had a string one).
    sent: HashMap<Vec<u8>, Option<String>>,
}

impl MqttClient {
    async fn connect(setup: &MqttSetup) -> MqttClient {
        let id = format!("{}-app-{}", setup.prefix.replace('/', "-"), next());
        let reply = setup.topic(&format!("reply/{}", next()));
        let mut subs = vec![setup.topic("from-janus"), setup.topic("from-janus-admin")];
        if setup.v5 {
            subs.push(reply.clone());
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let (subscribed_tx, mut subscribed) = watch::channel(false);
        let (raw, task) = if setup.v5 {
            let mut o = r5::MqttOptions::new(&id, BROKER_HOST, BROKER_PORT);
            o.set_keep_alive(Duration::from_secs(30));
            o.set_max_packet_size(Some(16 << 20));
            let (c, mut el) = r5::AsyncClient::new(o, 64);
            let c2 = c.clone();
            let task = tokio::spawn(async move {
                let mut acks = 0;
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
                            acks += 1;
                            if acks == subs.len() {
                                let _ = subscribed_tx.send(true);
                            }
                        }
                        Ok(r5::Event::Incoming(r5::mqttbytes::v5::Packet::Publish(p))) => {
                            let correlation = p
                                .properties
                                .and_then(|pr| pr.correlation_data)
                                .map(|b| b.to_vec());
                            let _ = tx.send(Received {
                                topic: String::from_utf8_lossy(&p.topic).into_owned(),
                                json: serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
                                correlation,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
            (Raw::V5(c), task)
        } else {
            let mut o = rumqttc::MqttOptions::new(&id, BROKER_HOST, BROKER_PORT);
            o.set_keep_alive(Duration::from_secs(30));
            o.set_max_packet_size(16 << 20, 16 << 20);
            let (c, mut el) = rumqttc::AsyncClient::new(o, 64);
            let c2 = c.clone();
            let task = tokio::spawn(async move {
                let mut acks = 0;
                loop {
                    match el.poll().await {
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                            for s in &subs {
                                let _ = c2.subscribe(s.as_str(), rumqttc::QoS::AtLeastOnce).await;
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                            acks += 1;
                            if acks == subs.len() {
                                let _ = subscribed_tx.send(true);
                            }
                        }
                        Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                            let _ = tx.send(Received {
                                topic: p.topic,
                                json: serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
                                correlation: None,
                            });
                        }
                        Ok(_) => {}
                        Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
            });
            (Raw::V4(c), task)
        };
        let ok = tokio::time::timeout(Duration::from_secs(10), subscribed.wait_for(|s| *s)).await;
        assert!(
            matches!(ok, Ok(Ok(_))),
            "MQTT test client {id}: not subscribed within 10 s"
        );
        MqttClient {
            raw,
            rx,
            task,
            to_janus: setup.topic("to-janus"),
            to_admin: setup.topic("to-janus-admin"),
            reply,
            sent: HashMap::new(),
        }
    }

    async fn publish(
        &mut self,
        payload: Vec<u8>,
        admin: bool,
        transaction: Option<String>,
    ) -> Result<(), String> {
        let topic = if admin {
            self.to_admin.clone()
        } else {
            self.to_janus.clone()
        };
        match &self.raw {
            Raw::V4(c) => c
                .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload)
                .await
                .map_err(|e| e.to_string()),
            Raw::V5(c) => {
                let corr = format!("corr-{}", next()).into_bytes();
                self.sent.insert(corr.clone(), transaction);
                let props = r5::mqttbytes::v5::PublishProperties {
                    response_topic: Some(self.reply.clone()),
                    correlation_data: Some(corr.into()),
                    ..Default::default()
                };
                c.publish_with_properties(
                    topic,
                    r5::mqttbytes::QoS::AtLeastOnce,
                    false,
                    payload,
                    props,
                )
                .await
                .map_err(|e| e.to_string())
            }
        }
    }

    /// MQTT 5: a reply on the response topic must answer a request of this client.
    fn check(&self, m: &Received) {
        if m.topic != self.reply {
            return;
        }
        let corr = m
            .correlation
            .as_ref()
            .unwrap_or_else(|| panic!("[mqtt5] reply without correlation data: {}", m.json));
        let tx = self
            .sent
            .get(corr)
            .unwrap_or_else(|| panic!("[mqtt5] reply with unknown correlation data: {}", m.json));
        if let (Some(want), Some(got)) = (tx, m.json["transaction"].as_str()) {
            assert_eq!(
                want, got,
                "[mqtt5] correlation data of another request: {}",
                m.json
            );
        }
    }
}

impl Drop for MqttClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client for MqttClient {
    fn name(&self) -> &'static str {
        match self.raw {
            Raw::V4(_) => "mqtt",
            Raw::V5(_) => "mqtt5",
        }
    }

    async fn send(&mut self, req: Value, admin: bool) -> Result<(), String> {
        let tx = req["transaction"].as_str().map(str::to_owned);
        self.publish(req.to_string().into_bytes(), admin, tx).await
    }

    async fn send_raw(&mut self, bytes: Vec<u8>, admin: bool) -> Result<(), String> {
        self.publish(bytes, admin, None).await
    }

    async fn recv(&mut self, timeout: Duration) -> Option<Value> {
        let m = tokio::time::timeout(timeout, self.rx.recv()).await.ok()??;
        self.check(&m);
        Some(m.json)
    }
}
