//! The MQTT transport against the real Mosquitto (127.0.0.1:1883): conversations over MQTT
//! 3.1.1 and 5, MQTT 5 reply routing, the admin topics, the status messages and malformed
//! payloads.

mod common;

use bytes::Bytes;
use common::*;
use serde_json::json;
use std::time::Duration;

macro_rules! need_broker {
    () => {
        if !ensure_broker() {
            return;
        }
    };
}

/// create → attach → message (ack, event) → detach (success, detached) → destroy, over 3.1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v311_conversation() {
    need_broker!();
    let t = Topics::new("v311");
    let rt = runtime(60);
    let srv = serve(&rt, &t.jcfg("3.1.1", "", "")).await;
    assert!(srv.stats().connected);
    let mut c = Peer::connect(false, &[&t.from_janus]).await;
    let r = c.call(&t.to_janus, json!({"janus": "info"})).await;
    assert_eq!(r["janus"], "server_info");
    assert_eq!(
        r["transports"]["janus.transport.mqtt"]["name"],
        "JANUS MQTT transport plugin"
    );
    let r = c.call(&t.to_janus, json!({"janus": "create"})).await;
    let sid = r["data"]["id"].as_u64().expect("sid");
    let r = c
        .call(
            &t.to_janus,
            json!({"janus": "attach", "session_id": sid, "plugin": ECHO}),
        )
        .await;
    let hid = r["data"]["id"].as_u64().expect("hid");
    let tm = tx();
    c.send(
        &t.to_janus,
        &json!({"janus": "message", "transaction": tm, "session_id": sid, "handle_id": hid, "body": {"audio": true}}),
    )
    .await;
    let ack = c.wait(|m| m.json["transaction"] == tm).await.expect("ack");
    assert_eq!(ack.json["janus"], "ack");
    // Janus's default layout on MQTT: indented with three spaces.
    let text = String::from_utf8_lossy(&ack.payload).into_owned();
    assert!(text.contains("\n   \"janus\""), "{text}");
    let ev = c
        .wait(|m| m.json["transaction"] == tm)
        .await
        .expect("event");
    assert_eq!(ev.json["janus"], "event");
    assert_eq!(ev.json["sender"], hid);
    assert_eq!(ev.topic, t.from_janus);
    let r = c
        .call(
            &t.to_janus,
            json!({"janus": "detach", "session_id": sid, "handle_id": hid}),
        )
        .await;
    assert_eq!(r["janus"], "success");
    let d = c
        .wait(|m| m.json["janus"] == "detached")
        .await
        .expect("detached");
    assert_eq!(d.json["sender"], hid);
    let r = c
        .call(&t.to_janus, json!({"janus": "destroy", "session_id": sid}))
        .await;
    assert_eq!(r["janus"], "success");
    let r = c
        .call(
            &t.to_janus,
            json!({"janus": "keepalive", "session_id": sid}),
        )
        .await;
    assert_eq!(code(&r), 458);
    let st = srv.stats();
    assert_eq!((st.dropped, st.connections), (0, 1));
    c.close().await;
    srv.shutdown().await;
    rt.shutdown();
}

/// MQTT 5: replies go to the Response Topic with the Correlation Data, the proxied user
/// properties and the added ones; the event of an acknowledged request follows its route;
/// requests without a route are answered on the default topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_response_topic_routing() {
    need_broker!();
    let t = Topics::new("v5");
    let reply = format!("{}/reply", t.prefix);
    let rt = runtime(60);
    let cfg = t.jcfg(
        "5",
        r#"proxy_transaction_user_properties = ["trace-id"]
           add_transaction_user_properties = (["served-by", "jano"])
           json = "compact""#,
        "",
    );
    let srv = serve(&rt, &cfg).await;
    let mut c = Peer::connect(true, &[&t.from_janus, &reply]).await;
    let props = |corr: &'static [u8]| ReqProps {
        response_topic: Some(reply.clone()),
        correlation: Some(Bytes::from_static(corr)),
        user: vec![
            ("trace-id".into(), "t-1".into()),
            ("secret".into(), "not copied".into()),
        ],
    };
    let t1 = tx();
    c.publish_raw(
        &t.to_janus,
        json!({"janus": "create", "transaction": t1}).to_string(),
        props(b"corr-1"),
    )
    .await;
    let m = c
        .wait(|m| m.json["transaction"] == t1)
        .await
        .expect("reply");
    assert_eq!(m.topic, reply);
    assert_eq!(m.correlation.as_deref(), Some(&b"corr-1"[..]));
    assert_eq!(
        m.user,
        vec![
            ("trace-id".to_string(), "t-1".to_string()),
            ("served-by".to_string(), "jano".to_string())
        ]
    );
    assert!(
        !String::from_utf8_lossy(&m.payload).contains('\n'),
        "compact"
    );
    let sid = m.json["data"]["id"].as_u64().expect("sid");
    let r = c
        .call(
            &t.to_janus,
            json!({"janus": "attach", "session_id": sid, "plugin": ECHO}),
        )
        .await;
    let hid = r["data"]["id"].as_u64().expect("hid");

    // The event of an acknowledged message follows the request's route.
    let tm = tx();
    c.publish_raw(
        &t.to_janus,
        json!({"janus": "message", "transaction": tm, "session_id": sid, "handle_id": hid, "body": {"video": false}}).to_string(),
        props(b"corr-2"),
    )
    .await;
    let ack = c.wait(|m| m.json["transaction"] == tm).await.expect("ack");
    assert_eq!(
        (ack.json["janus"].as_str(), ack.topic.as_str()),
        (Some("ack"), reply.as_str())
    );
    let ev = c
        .wait(|m| m.json["transaction"] == tm)
        .await
        .expect("event");
    assert_eq!(ev.json["janus"], "event");
    assert_eq!(ev.topic, reply);
    assert_eq!(ev.correlation.as_deref(), Some(&b"corr-2"[..]));
    assert_eq!(srv.stats().routes, 1);

    // Without properties: the default topic.
    let r = c.call(&t.to_janus, json!({"janus": "ping"})).await;
    assert_eq!(r["janus"], "pong");

    // Better than Janus: no transaction, or not JSON at all, still gets its error, on the
    // request's route when it has one.
    c.publish_raw(&t.to_janus, b"{not json".to_vec(), props(b"corr-3"))
        .await;
    let m = c
        .wait(|m| m.correlation.as_deref() == Some(&b"corr-3"[..]))
        .await
        .expect("454");
    assert_eq!((code(&m.json), m.topic.as_str()), (454, reply.as_str()));
    c.publish_raw(
        &t.to_janus,
        json!({"janus": "ping"}).to_string(),
        ReqProps::default(),
    )
    .await;
    let m = c.wait(|m| m.json["janus"] == "error").await.expect("456");
    assert_eq!(
        (code(&m.json), m.topic.as_str()),
        (456, t.from_janus.as_str())
    );
    assert!(m.correlation.is_none());

    // Events without a transaction go to the default topic.
    let r = c
        .call(
            &t.to_janus,
            json!({"janus": "detach", "session_id": sid, "handle_id": hid}),
        )
        .await;
    assert_eq!(r["janus"], "success");
    let d = c
        .wait(|m| m.json["janus"] == "detached")
        .await
        .expect("detached");
    assert_eq!(d.topic, t.from_janus);

    c.close().await;
    srv.shutdown().await;
    rt.shutdown();
}

/// MQTT 5 reply routes are forgotten after `vacuum_interval`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v5_routes_vacuumed() {
    need_broker!();
    let t = Topics::new("vacuum");
    let reply = format!("{}/reply", t.prefix);
    let rt = runtime(60);
    let srv = serve(&rt, &t.jcfg("5", "vacuum_interval = 1", "")).await;
    let mut c = Peer::connect(true, &[&t.from_janus, &reply]).await;
    let sid = c.call(&t.to_janus, json!({"janus": "create"})).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = c
        .call(
            &t.to_janus,
            json!({"janus": "attach", "session_id": sid, "plugin": ECHO}),
        )
        .await["data"]["id"]
        .as_u64()
        .expect("hid");
    let tm = tx();
    c.publish_raw(
        &t.to_janus,
        json!({"janus": "message", "transaction": tm, "session_id": sid, "handle_id": hid, "body": {}}).to_string(),
        ReqProps {
            response_topic: Some(reply.clone()),
            correlation: Some(Bytes::from_static(b"x")),
            user: vec![],
        },
    )
    .await;
    c.wait(|m| m.json["janus"] == "event").await.expect("event");
    assert_eq!(srv.stats().routes, 1);
    let end = tokio::time::Instant::now() + Duration::from_secs(5);
    while srv.stats().routes > 0 && tokio::time::Instant::now() < end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(srv.stats().routes, 0, "routes vacuumed");
    c.close().await;
    srv.shutdown().await;
    rt.shutdown();
}

/// Admin API on its own topics: the secret is needed except for info/ping; each API refuses
/// the other's verbs; admin replies go to the admin publish topic.
async fn admin_topics(v5: bool) {
    let t = Topics::new(if v5 { "admin5" } else { "admin311" });
    let rt = runtime(60);
    let srv = serve(&rt, &t.jcfg(if v5 { "5" } else { "3.1.1" }, "", "")).await;
    let mut c = Peer::connect(v5, &[&t.from_janus, &t.from_admin]).await;
    let r = c.call(&t.to_admin, json!({"janus": "ping"})).await;
    assert_eq!(r["janus"], "pong");
    let tl = tx();
    c.send(
        &t.to_admin,
        &json!({"janus": "list_sessions", "transaction": tl}),
    )
    .await;
    let m = c.wait(|m| m.json["transaction"] == tl).await.expect("403");
    assert_eq!(
        (code(&m.json), m.topic.as_str()),
        (403, t.from_admin.as_str())
    );
    let sid = c.call(&t.to_janus, json!({"janus": "create"})).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let r = c
        .call(
            &t.to_admin,
            json!({"janus": "list_sessions", "admin_secret": ADMIN_SECRET}),
        )
        .await;
    assert_eq!(r["sessions"], json!([sid]));
    let r = c
        .call(
            &t.to_admin,
            json!({"janus": "create", "admin_secret": ADMIN_SECRET}),
        )
        .await;
    assert_eq!(code(&r), 457);
    let r = c
        .call(
            &t.to_janus,
            json!({"janus": "list_sessions", "admin_secret": ADMIN_SECRET}),
        )
        .await;
    assert_eq!(code(&r), 457);
    c.send(&t.to_admin, &json!({"janus": "ping"})).await;
    let m = c.wait(|m| m.json["janus"] == "error").await.expect("456");
    assert_eq!(
        (code(&m.json), m.topic.as_str()),
        (456, t.from_admin.as_str())
    );
    c.close().await;
    srv.shutdown().await;
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_v311() {
    need_broker!();
    admin_topics(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_v5() {
    need_broker!();
    admin_topics(true).await;
}

/// Not JSON, not UTF-8, too large, wrong types, empty: the right error (or nothing, for the
/// empty message), and the transport keeps serving.
async fn malformed(v5: bool) {
    let t = Topics::new(if v5 { "bad5" } else { "bad311" });
    let rt = runtime(60);
    let srv = serve(
        &rt,
        &t.jcfg(
            if v5 { "5" } else { "3.1.1" },
            "max_message_size = 4096",
            "",
        ),
    )
    .await;
    let mut c = Peer::connect(v5, &[&t.from_janus, &t.from_admin]).await;
    let cases: Vec<(Vec<u8>, u64)> = vec![
        (b"{not json".to_vec(), 454),
        (vec![0xff, 0xfe, b'{'], 454),
        (
            format!(
                "{{\"janus\":\"ping\",\"transaction\":\"{}\"}}",
                "x".repeat(5000)
            )
            .into_bytes(),
            454,
        ),
        (b"{\"janus\":\"ping\",\"transaction\":5}".to_vec(), 467),
        (b"{\"janus\":5,\"transaction\":\"t\"}".to_vec(), 467),
        (b"{\"transaction\":\"t\"}".to_vec(), 456),
        (b"[1,2]".to_vec(), 0),
        (b"{} {}".to_vec(), 454),
    ];
    for (payload, want) in cases {
        let shown = String::from_utf8_lossy(&payload[..payload.len().min(40)]).into_owned();
        c.publish_raw(&t.to_janus, payload, ReqProps::default())
            .await;
        let m = c.wait(|m| m.json["janus"] == "error").await;
        let m = m.unwrap_or_else(|| panic!("no error for {shown}"));
        if want != 0 {
            assert_eq!(code(&m.json), want, "{shown} → {}", m.json);
        }
        assert!(m.json.get("transaction").is_none(), "{}", m.json);
    }
    // The admin topic too.
    c.publish_raw(&t.to_admin, b"nope".to_vec(), ReqProps::default())
        .await;
    let m = c
        .wait(|m| m.json["janus"] == "error")
        .await
        .expect("admin 454");
    assert_eq!(
        (code(&m.json), m.topic.as_str()),
        (454, t.from_admin.as_str())
    );
    // Empty messages are ignored.
    c.publish_raw(&t.to_janus, Vec::new(), ReqProps::default())
        .await;
    assert!(c.recv(Duration::from_millis(300)).await.is_none());
    // Still serving.
    let r = c.call(&t.to_janus, json!({"janus": "ping"})).await;
    assert_eq!(r["janus"], "pong");
    assert!(srv.stats().connected);
    c.close().await;
    srv.shutdown().await;
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_v311() {
    need_broker!();
    malformed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_v5() {
    need_broker!();
    malformed(true).await;
}

/// `[status]`: the connect message (retained) on connection; the disconnect message as the
/// last will when the connection is taken away, then the connect message again after the
/// transport reconnects by itself; the disconnect message on a clean stop.
async fn status_messages(v5: bool) {
    let t = Topics::new(if v5 { "status5" } else { "status311" });
    let rt = runtime(60);
    let cfg = t.jcfg(
        if v5 { "5" } else { "3.1.1" },
        "",
        &format!(
            r#"status: {{ enabled = true, connect_message = "online", disconnect_message = "offline", topic = "{}", retain = true }}"#,
            t.status
        ),
    );
    let srv = serve(&rt, &cfg).await;
    let mut c = Peer::connect(v5, &[&t.status, &t.from_janus]).await;
    let m = c
        .wait(|m| m.topic == t.status)
        .await
        .expect("connect message");
    assert_eq!((&m.payload[..], m.retain), (&b"online"[..], true));

    // Another client takes jano's client id: the broker drops jano's connection and
    // publishes its will.
    let intruder = Peer::connect_with(PeerOpts {
        v5,
        id: format!("{}-jano", t.prefix),
        subs: vec![unique("none")],
        ..Default::default()
    })
    .await;
    let m = c.wait(|m| m.topic == t.status).await.expect("last will");
    assert_eq!(&m.payload[..], b"offline");
    intruder.close().await;
    // jano comes back by itself and says so.
    let m = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(m) = c.recv(Duration::from_secs(10)).await {
                if m.topic == t.status && &m.payload[..] == b"online" {
                    return m;
                }
            }
        }
    })
    .await
    .expect("connect message after the reconnection");
    assert!(!m.payload.is_empty());
    let r = c.call(&t.to_janus, json!({"janus": "ping"})).await;
    assert_eq!(r["janus"], "pong");

    srv.shutdown().await;
    let m = c
        .wait(|m| m.topic == t.status)
        .await
        .expect("disconnect message");
    assert_eq!(&m.payload[..], b"offline");
    // Leave no retained message behind.
    c.publish_retained(&t.status, Vec::new()).await;
    c.close().await;
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_v311() {
    need_broker!();
    status_messages(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_v5() {
    need_broker!();
    status_messages(true).await;
}

/// A broker that is not there: `serve` returns at once and keeps trying; `stop` ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_broker_does_not_block_start() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
        // Dropped: nothing listens there any more.
    };
    let t = Topics::new("nobroker");
    let cfg = t.jcfg("3.1.1", "", "").replace(
        &format!("tcp://{BROKER}"),
        &format!("tcp://127.0.0.1:{port}"),
    );
    let rt = runtime(60);
    let started = std::time::Instant::now();
    let srv = serve(&rt, &cfg).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!srv.stats().connected);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(srv.stats().connections, 0);
    tokio::time::timeout(Duration::from_secs(2), srv.shutdown())
        .await
        .expect("stops while retrying");
    rt.shutdown();
}

/// Configuration errors are reported, not panics.
#[test]
fn bad_configurations() {
    let bad = [
        r#"general: { enabled = true, publish_topic = "b" }"#,
        r#"general: { enabled = true, subscribe_topic = "a", publish_topic = "b", mqtt_version = "4" }"#,
        r#"general: { enabled = true, subscribe_topic = "a", publish_topic = "b", url = "ws://h" }"#,
    ];
    for text in bad {
        let j = jano_config::Jcfg::parse(text, "t.jcfg").expect("jcfg");
        assert!(jano_mqtt::Settings::from_jcfg(&j).is_err(), "{text}");
    }
}

/// Wildcards where a topic name is needed are refused by `serve`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_publish_topic_refused() {
    let rt = runtime(60);
    let s = settings(
        r#"general: { enabled = true, subscribe_topic = "a/#", publish_topic = "b/+", url = "tcp://127.0.0.1:1" }"#,
    );
    assert!(jano_mqtt::serve(&rt, s).await.is_err());
    rt.shutdown();
}
