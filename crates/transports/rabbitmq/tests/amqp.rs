//! The RabbitMQ transport against the real broker: correlation ids, events, the admin queue,
//! malformed payloads, exchange variants, stop.

mod common;

use common::*;
use jano_rabbitmq::Settings;
use serde_json::{json, Value};
use std::time::Duration;

const ECHO: &str = "janus.plugin.echotest";

fn req(verb: &str, fields: Value) -> Value {
    let mut v = json!({"janus": verb, "transaction": tx()});
    if let (Some(m), Some(f)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in f {
            m.insert(k.clone(), x.clone());
        }
    }
    v
}

/// Every message jano publishes carries these properties.
fn assert_props(m: &Msg) {
    assert_eq!(m.reply_to.as_deref(), Some("Janus"), "{m:?}");
    assert_eq!(m.content_type.as_deref(), Some("application/json"), "{m:?}");
}

struct Env {
    rt: jano_runtime::Runtime,
    server: jano_rabbitmq::Server,
    peer: Peer,
    s: Settings,
}

/// A transport on fresh queues (default exchange) and a peer consuming both outgoing queues.
async fn env_with(s: Settings) -> Env {
    init_logs();
    let rt = runtime(60);
    let server = start(&rt, s.clone()).await;
    let mut peer = Peer::connect().await;
    for q in [&s.api, &s.admin].into_iter().flatten() {
        // jano declared them; the peer declares too (same flags) so it can delete them after.
        peer.declare(&q.from_janus).await;
        peer.declare(q.incoming_queue()).await;
        peer.consume(&q.from_janus).await;
    }
    Env {
        rt,
        server,
        peer,
        s,
    }
}

impl Env {
    fn to_janus(&self) -> String {
        self.s.api.as_ref().expect("api").to_janus.clone()
    }
    fn to_admin(&self) -> String {
        self.s.admin.as_ref().expect("admin").to_janus.clone()
    }
    fn out_api(&self) -> String {
        self.s.api.as_ref().expect("api").from_janus.clone()
    }
    fn out_admin(&self) -> String {
        self.s.admin.as_ref().expect("admin").from_janus.clone()
    }
    async fn end(self) {
        self.server.shutdown().await;
        self.peer.close().await;
        self.rt.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correlation_id_on_responses_never_on_events() {
    if !ensure_broker() {
        return;
    }
    let mut e = env_with(settings(&unique("corr"))).await;
    let to = e.to_janus();
    let r = e.peer.call(&to, req("ping", json!({}))).await;
    assert_eq!(r.body["janus"], "pong");
    assert_eq!(r.queue, e.out_api());
    assert_props(&r);
    let r = e.peer.call(&to, req("create", json!({}))).await;
    let sid = r.body["data"]["id"].as_u64().expect("sid");
    let r = e
        .peer
        .call(
            &to,
            req("attach", json!({"session_id": sid, "plugin": ECHO})),
        )
        .await;
    let hid = r.body["data"]["id"].as_u64().expect("hid");
    // The ack carries the request's correlation id; the plugin's event carries none.
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"audio": true}}),
    );
    let t = m["transaction"].clone();
    let ack = e.peer.call(&to, m).await;
    assert_eq!(ack.body["janus"], "ack", "{:?}", ack.body);
    let ev = e
        .peer
        .wait_for(|m| m.body["janus"] == "event" && m.body["transaction"] == t)
        .await
        .expect("event");
    assert_eq!(ev.correlation_id, None, "events carry no correlation_id");
    assert_props(&ev);
    assert_eq!(ev.queue, e.out_api());
    // detach: the response has the id, the `detached` event has none.
    let r = e
        .peer
        .call(
            &to,
            req("detach", json!({"session_id": sid, "handle_id": hid})),
        )
        .await;
    assert_eq!(r.body["janus"], "success");
    let d = e
        .peer
        .wait_for(|m| m.body["janus"] == "detached")
        .await
        .expect("detached");
    assert_eq!(d.correlation_id, None);
    // A request without a correlation id gets a response without one.
    let m = req("keepalive", json!({"session_id": sid}));
    let t = m["transaction"].clone();
    e.peer
        .publish("", &to, None, m.to_string().as_bytes())
        .await;
    let r = e
        .peer
        .wait_for(|m| m.body["transaction"] == t)
        .await
        .expect("keepalive ack");
    assert_eq!(r.body["janus"], "ack");
    assert_eq!(r.correlation_id, None);
    // The correlation id is copied verbatim, whatever it looks like.
    let odd = "  weird / id ✓ ";
    let m = req("ping", json!({}));
    e.peer
        .publish("", &to, Some(odd), m.to_string().as_bytes())
        .await;
    let r = e
        .peer
        .wait_for(|m| m.correlation_id.as_deref() == Some(odd))
        .await
        .expect("pong");
    assert_eq!(r.body["janus"], "pong");
    assert_eq!(e.server.connections(), 1);
    e.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_queue_with_and_without_secret() {
    if !ensure_broker() {
        return;
    }
    let mut e = env_with(settings(&unique("admin"))).await;
    let (to, admin) = (e.to_janus(), e.to_admin());
    let r = e.peer.call(&admin, req("ping", json!({}))).await;
    assert_eq!(r.body["janus"], "pong");
    assert_eq!(r.queue, e.out_admin(), "admin responses on the admin queue");
    assert_props(&r);
    let r = e.peer.call(&admin, req("info", json!({}))).await;
    assert_eq!(r.body["janus"], "server_info");
    let r = e.peer.call(&admin, req("list_sessions", json!({}))).await;
    assert_eq!(r.body["error"]["code"], 403, "{:?}", r.body);
    let r = e
        .peer
        .call(
            &admin,
            req("list_sessions", json!({"admin_secret": "wrong"})),
        )
        .await;
    assert_eq!(r.body["error"]["code"], 403);
    let sid = e.peer.call(&to, req("create", json!({}))).await.body["data"]["id"]
        .as_u64()
        .expect("sid");
    let r = e
        .peer
        .call(
            &admin,
            req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
        )
        .await;
    assert_eq!(r.body["janus"], "success", "{:?}", r.body);
    assert_eq!(r.body["sessions"], json!([sid]));
    assert_eq!(r.queue, e.out_admin());
    // Admin verbs on the Janus API queue, and Janus verbs on the admin queue: 457.
    let r = e
        .peer
        .call(
            &to,
            req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
        )
        .await;
    assert_eq!(r.body["error"]["code"], 457);
    assert_eq!(r.queue, e.out_api());
    let r = e
        .peer
        .call(&admin, req("create", json!({"admin_secret": ADMIN_SECRET})))
        .await;
    assert_eq!(r.body["error"]["code"], 457);
    assert_eq!(r.queue, e.out_admin());
    e.end().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_get_janus_errors_and_serving_goes_on() {
    if !ensure_broker() {
        return;
    }
    let mut s = settings(&unique("bad"));
    s.max_message = 4096;
    let mut e = env_with(s).await;
    let (to, admin) = (e.to_janus(), e.to_admin());
    let big = format!(
        "{{\"janus\":\"ping\",\"transaction\":\"x\",\"pad\":\"{}\"}}",
        "a".repeat(5000)
    );
    let cases: Vec<(&[u8], u64)> = vec![
        (b"{not json", 454),
        (b"", 454),
        (b"\xff\xfe", 454),
        (b"[1,2]", 456),
        (b"42", 456),
        (b"{\"janus\":\"ping\"}", 456),
        (b"{\"janus\":\"ping\",\"transaction\":5}", 467),
        (big.as_bytes(), 450),
    ];
    for queue in [&to, &admin] {
        for (payload, code) in &cases {
            let r = e.peer.call_raw("", queue, payload).await;
            assert_eq!(r.body["janus"], "error", "{:?}", r.body);
            assert_eq!(
                r.body["error"]["code"],
                *code,
                "{} on {queue}: {:?}",
                String::from_utf8_lossy(payload),
                r.body
            );
            assert_props(&r);
        }
    }
    // Still serving, on both queues.
    let r = e.peer.call(&to, req("ping", json!({}))).await;
    assert_eq!(r.body["janus"], "pong");
    let r = e.peer.call(&admin, req("ping", json!({}))).await;
    assert_eq!(r.body["janus"], "pong");
    assert_eq!(e.server.connections(), 1);
    e.end().await;
}

/// `janus_exchange` of type topic/direct with `queue_name`: the incoming queue is bound with
/// routing key `to_janus`; everything goes out on the exchange with routing key `from_janus`.
async fn exchange_with_queue_name(kind: &str) {
    init_logs();
    let prefix = unique(kind);
    let exchange = format!("{prefix}-x");
    let mut s = settings(&prefix);
    s.exchange = Some(exchange.clone());
    s.exchange_type = kind.into();
    for (q, tag) in [(&mut s.api, "api"), (&mut s.admin, "admin")] {
        let q = q.as_mut().expect("queues");
        q.queue_name = Some(format!("{prefix}-{tag}-in"));
        q.to_janus = format!("{tag}.to.janus");
        q.from_janus = format!("{tag}.from.janus");
        q.declare_outgoing_queue = false;
        q.autodelete = true;
    }
    let rt = runtime(60);
    let server = start(&rt, s.clone()).await;
    let mut peer = Peer::connect().await;
    let out = peer.bound_queue(&exchange, "api.from.janus").await;
    let out_admin = peer.bound_queue(&exchange, "admin.from.janus").await;
    peer.consume(&out).await;
    peer.consume(&out_admin).await;
    let r = peer
        .call_raw(
            &exchange,
            "api.to.janus",
            req("ping", json!({})).to_string().as_bytes(),
        )
        .await;
    assert_eq!(r.body["janus"], "pong", "[{kind}]");
    assert_eq!(r.routing_key, "api.from.janus");
    assert_eq!(r.queue, out);
    assert_props(&r);
    let r = peer
        .call_raw(
            &exchange,
            "admin.to.janus",
            req("list_sessions", json!({"admin_secret": ADMIN_SECRET}))
                .to_string()
                .as_bytes(),
        )
        .await;
    assert_eq!(r.body["janus"], "success", "[{kind}] {:?}", r.body);
    assert_eq!(r.routing_key, "admin.from.janus");
    assert_eq!(r.queue, out_admin);
    // Events go the same way, without a correlation id.
    let sid = peer
        .call_raw(
            &exchange,
            "api.to.janus",
            req("create", json!({})).to_string().as_bytes(),
        )
        .await
        .body["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = peer
        .call_raw(
            &exchange,
            "api.to.janus",
            req("attach", json!({"session_id": sid, "plugin": ECHO}))
                .to_string()
                .as_bytes(),
        )
        .await
        .body["data"]["id"]
        .as_u64()
        .expect("hid");
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"video": false}}),
    );
    let t = m["transaction"].clone();
    peer.call_raw(&exchange, "api.to.janus", m.to_string().as_bytes())
        .await;
    let ev = peer
        .wait_for(|m| m.body["janus"] == "event" && m.body["transaction"] == t)
        .await
        .expect("event");
    assert_eq!(ev.correlation_id, None);
    assert_eq!(ev.routing_key, "api.from.janus");
    server.shutdown().await;
    // The exchange is non-durable and ours: remove it.
    let _ = peer
        .ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    peer.close().await;
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_exchange_with_queue_name() {
    if !ensure_broker() {
        return;
    }
    exchange_with_queue_name("topic").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_exchange_with_queue_name() {
    if !ensure_broker() {
        return;
    }
    exchange_with_queue_name("direct").await;
}

/// A fanout `janus_exchange` without `queue_name`: requests still come on the `to_janus` queue,
/// responses go to whoever is bound to the exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_exchange_default_queues() {
    if !ensure_broker() {
        return;
    }
    init_logs();
    let prefix = unique("fanout");
    let exchange = format!("{prefix}-x");
    let mut s = settings(&prefix);
    s.exchange = Some(exchange.clone());
    s.admin = None;
    let rt = runtime(60);
    let server = start(&rt, s.clone()).await;
    let mut peer = Peer::connect().await;
    let api = s.api.clone().expect("api");
    peer.declare(&api.to_janus).await;
    peer.declare(&api.from_janus).await;
    let out = peer.bound_queue(&exchange, "").await;
    peer.consume(&out).await;
    let r = peer.call(&api.to_janus, req("ping", json!({}))).await;
    assert_eq!(r.body["janus"], "pong");
    assert_eq!(r.routing_key, api.from_janus);
    server.shutdown().await;
    let _ = peer
        .ch
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await;
    peer.close().await;
    rt.shutdown();
}

/// `stop()` cancels the consumers and closes the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_the_connection() {
    if !ensure_broker() {
        return;
    }
    let e = env_with(settings(&unique("stop"))).await;
    let q = e.to_janus();
    let consumers = |peer: &Peer, q: String| {
        let ch = peer.ch.clone();
        async move {
            ch.queue_declare(
                q.as_str().into(),
                lapin::options::QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                Default::default(),
            )
            .await
            .expect("passive declare")
            .consumer_count()
        }
    };
    assert_eq!(consumers(&e.peer, q.clone()).await, 1);
    e.server.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if consumers(&e.peer, q.clone()).await == 0 && !e.server.is_connected() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the consumer is still there after stop()"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    e.end().await;
}
