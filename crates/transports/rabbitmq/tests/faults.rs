//! Broker faults against the real RabbitMQ: jano started while the broker is down connects by
//! itself once it is up; a broker restart in the middle of a conversation loses nothing.
//!
//! These stop the shared broker (`rabbitmqctl stop_app`), so they are one #[test] whose steps
//! run in order, and a guard starts the broker again whatever happens.

mod common;

use common::*;
use jano_runtime::{TransportInfo, TransportSink};
use serde_json::{json, Value};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const ECHO: &str = "janus.plugin.echotest";

/// Stops and starts the broker's application; starts it again when dropped (even on panic).
struct Broker {
    stopped: bool,
}

fn rabbitmqctl(cmd: &str) -> bool {
    // Bounded: `timeout` kills a hung rabbitmqctl.
    Command::new("timeout")
        .args(["60", "rabbitmqctl", "-q", cmd])
        .status()
        .is_ok_and(|s| s.success())
}

impl Broker {
    fn stop(&mut self) {
        self.stopped = true;
        assert!(rabbitmqctl("stop_app"), "rabbitmqctl stop_app failed");
        assert!(!broker_answers(), "the broker still answers after stop_app");
    }

    fn start(&mut self) {
        assert!(rabbitmqctl("start_app"), "rabbitmqctl start_app failed");
        self.stopped = false;
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if self.stopped {
            eprintln!("restarting the broker after a failed step");
            rabbitmqctl("start_app");
        }
    }
}

/// A second transport standing in for another client of the same sessions.
struct Nowhere;
impl TransportSink for Nowhere {
    fn send_event(&self, _conn: u64, _session_id: u64, _event: Value) {}
}
const SIDE: TransportInfo = TransportInfo {
    package: "test.side",
    name: "side",
    author: "test",
    description: "",
    version: 1,
    version_string: "1",
};

fn req(verb: &str, fields: Value) -> Value {
    let mut v = json!({"janus": verb, "transaction": tx()});
    if let (Some(m), Some(f)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in f {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

/// Connects a peer once the broker accepts connections again (bounded).
async fn peer_when_up() -> Peer {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(Ok(conn)) = tokio::time::timeout(
            Duration::from_secs(2),
            lapin::Connection::connect(AMQP, lapin::ConnectionProperties::default()),
        )
        .await
        {
            let _ = conn.close(200, "probe".into()).await;
            return Peer::connect().await;
        }
        assert!(Instant::now() < deadline, "the broker did not come back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn attach_peer(peer: &mut Peer, s: &jano_rabbitmq::Settings) {
    for q in [&s.api, &s.admin].into_iter().flatten() {
        peer.declare(&q.from_janus).await;
        peer.declare(&q.to_janus).await;
        peer.consume(&q.from_janus).await;
    }
}

async fn scenario(broker: &mut Broker) {
    init_logs();
    let rt = runtime(0);
    let s = settings(&unique("fault"));
    let to = s.api.as_ref().expect("api").to_janus.clone();

    // (b) The broker is down when the transport starts: serve() returns at once, and the
    // transport connects by itself when the broker comes up.
    broker.stop();
    let t = Instant::now();
    let server = jano_rabbitmq::serve(&rt, s.clone())
        .await
        .expect("serve with the broker down");
    assert!(t.elapsed() < Duration::from_secs(1), "serve() waited");
    assert!(!server.is_connected());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!server.is_connected());
    broker.start();
    let up = Instant::now();
    assert!(
        server.wait_connected(Duration::from_secs(20)).await,
        "no connection after the broker came up"
    );
    eprintln!(
        "FAULT (b): connected {:?} after start_app returned",
        up.elapsed()
    );
    let mut peer = peer_when_up().await;
    attach_peer(&mut peer, &s).await;
    let r = peer.call(&to, req("ping", json!({}))).await;
    assert_eq!(r.body["janus"], "pong");
    let sid = peer.call(&to, req("create", json!({}))).await.body["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = peer
        .call(
            &to,
            req("attach", json!({"session_id": sid, "plugin": ECHO})),
        )
        .await
        .body["data"]["id"]
        .as_u64()
        .expect("hid");
    assert_eq!(server.connections(), 1);
    // A second transport with a tiny outgoing buffer, to see overflow counted, not hidden.
    let mut small = settings(&unique("small"));
    small.admin = None;
    small.outgoing_buffer = 5;
    let to_small = small.api.as_ref().expect("api").to_janus.clone();
    let small_server = start(&rt, small.clone()).await;
    attach_peer(&mut peer, &small).await;
    let sid3 = peer.call(&to_small, req("create", json!({}))).await.body["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid3 = peer
        .call(
            &to_small,
            req("attach", json!({"session_id": sid3, "plugin": ECHO})),
        )
        .await
        .body["data"]["id"]
        .as_u64()
        .expect("hid");

    // (a) The broker restarts in the middle of the conversation.
    broker.stop();
    let down = Instant::now();
    while server.is_connected() {
        assert!(
            down.elapsed() < Duration::from_secs(10),
            "the transport did not notice the broker going away"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "FAULT (a): loss noticed {:?} after stop_app returned",
        down.elapsed()
    );
    // Meanwhile the session keeps living: another client makes EchoTest send events to it.
    let side = rt.register_transport(SIDE, Arc::new(Nowhere));
    let side_conn = side.new_instance();
    let mut pending = Vec::new();
    let mut small_pending = Vec::new();
    for _ in 0..20 {
        let m = req(
            "message",
            json!({"session_id": sid3, "handle_id": hid3, "body": {"audio": false}}),
        );
        small_pending.push(m["transaction"].clone());
        let r = side.request(side_conn, Ok(m), |r| r);
        assert_eq!(r["janus"], "ack", "{r}");
        let m = req(
            "message",
            json!({"session_id": sid, "handle_id": hid, "body": {"audio": false}}),
        );
        pending.push(m["transaction"].clone());
        let r = side.request(side_conn, Ok(m), |r| r);
        assert_eq!(r["janus"], "ack", "{r}");
    }
    let wait = Instant::now();
    while server.buffered() < 20 || small_server.dropped() < 15 {
        assert!(
            wait.elapsed() < Duration::from_secs(5),
            "events not buffered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(small_server.buffered(), 5);
    assert_eq!(small_server.dropped(), 15);
    broker.start();
    let up = Instant::now();
    // The old peer connection died with the broker; the application reconnects too and asks
    // something at once, possibly before jano is back: the request waits in the queue.
    let mut peer = peer_when_up().await;
    attach_peer(&mut peer, &s).await;
    attach_peer(&mut peer, &small).await;
    let early = req("keepalive", json!({"session_id": sid}));
    let early_corr = peer.corr();
    peer.publish("", &to, Some(&early_corr), early.to_string().as_bytes())
        .await;
    assert!(
        server.wait_connected(Duration::from_secs(20)).await,
        "no reconnection after the broker came back"
    );
    eprintln!(
        "FAULT (a): reconnected {:?} after start_app returned",
        up.elapsed()
    );
    for t in &pending {
        let ev = peer
            .wait_for(|m| m.body["janus"] == "event" && m.body["transaction"] == *t)
            .await
            .unwrap_or_else(|| panic!("event {t} produced during the outage was lost"));
        assert_eq!(ev.correlation_id, None);
        assert_eq!(ev.reply_to.as_deref(), Some("Janus"));
    }
    // The small buffer kept the newest 5 events, in order; the 15 older ones were dropped.
    assert!(small_server.wait_connected(Duration::from_secs(20)).await);
    for t in &small_pending[15..] {
        peer.wait_for(|m| m.body["janus"] == "event" && m.body["transaction"] == *t)
            .await
            .unwrap_or_else(|| panic!("buffered event {t} lost"));
    }
    assert!(
        !peer
            .stash
            .iter()
            .any(|m| small_pending[..15].contains(&m.body["transaction"])),
        "a dropped event was delivered"
    );
    small_server.shutdown().await;
    let c = early_corr.clone();
    let r = peer
        .wait_for(move |m| m.correlation_id.as_deref() == Some(c.as_str()))
        .await
        .expect("the response to the request sent while jano reconnected");
    assert_eq!(r.body["janus"], "ack");
    // And the conversation simply goes on.
    let r = peer
        .call(
            &to,
            req("detach", json!({"session_id": sid, "handle_id": hid})),
        )
        .await;
    assert_eq!(r.body["janus"], "success");
    let r = peer
        .call(&to, req("destroy", json!({"session_id": sid})))
        .await;
    assert_eq!(r.body["janus"], "success");
    assert_eq!(server.connections(), 2);
    assert_eq!(server.dropped(), 0);
    assert_eq!(server.buffered(), 0);
    server.shutdown().await;
    peer.close().await;
    rt.shutdown();
}

#[test]
fn broker_down_at_start_then_restart_mid_conversation() {
    if !ensure_broker() {
        return;
    }
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio");
    let mut broker = Broker { stopped: false };
    let started = Instant::now();
    tokio_rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(55), scenario(&mut broker))
            .await
            .expect("the fault scenario took more than 55 s");
    });
    eprintln!("FAULT tests took {:?}", started.elapsed());
    drop(broker);
}
