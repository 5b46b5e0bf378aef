//! The Janus API over WebSockets: the session flow, framing rules, the handshake's
//! sub-protocol rule, socket close vs. sessions, reclaim and claim.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_session_flow() {
    let s = Server::default().await;
    let mut c = s.ws().await;

    let r = c
        .request(json!({"janus":"create","transaction":"c1"}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    assert_eq!(r["transaction"], "c1");
    assert!(r.get("session_id").is_none(), "{r}");
    let sid = r["data"]["id"].as_u64().unwrap();
    assert!((1..=MAX_ID).contains(&sid));

    let r = c
        .request(json!({"janus":"attach","session_id":sid,"plugin":ECHOTEST,"opaque_id":"o","transaction":"a1"}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    assert_eq!(r["session_id"], sid);
    let hid = r["data"]["id"].as_u64().unwrap();

    c.send_json(&json!({"janus":"message","session_id":sid,"handle_id":hid,"body":{"audio":true},"transaction":"m1"}))
        .await;
    let ack = c.recv().await;
    assert_eq!(ack["janus"], "ack", "ack first: {ack}");
    assert_eq!(ack["transaction"], "m1");
    assert_eq!(ack["session_id"], sid);
    assert_eq!(ack["hint"], "I'm taking my time!");
    let ev = c.recv().await;
    assert_eq!(ev["janus"], "event", "{ev}");
    assert_eq!(ev["transaction"], "m1");
    assert_eq!(ev["sender"], hid);
    assert_eq!(ev["session_id"], sid);
    assert_eq!(ev["plugindata"]["plugin"], ECHOTEST);
    assert_eq!(ev["plugindata"]["data"]["result"], "ok");

    let r = c
        .request(json!({"janus":"keepalive","session_id":sid,"transaction":"k1"}))
        .await;
    assert_eq!(
        r,
        json!({"janus":"ack","session_id":sid,"transaction":"k1"})
    );

    let r = c
        .request(json!({"janus":"trickle","session_id":sid,"handle_id":hid,"candidate":{"completed":true},"transaction":"t1"}))
        .await;
    assert_eq!(r["janus"], "ack", "{r}");

    let r = c
        .request(json!({"janus":"hangup","session_id":sid,"handle_id":hid,"transaction":"h1"}))
        .await;
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"h1"})
    );
    // No core `hangup` event without a PeerConnection, but the plugin is told (as in Janus
    // 1.1.2) and EchoTest answers with its "done" event, after the success.
    let ev = c.recv().await;
    assert_eq!(ev["janus"], "event", "{ev}");
    assert_eq!(ev["sender"], hid);
    assert_eq!(
        ev["plugindata"]["data"],
        json!({"echotest":"event","result":"done"})
    );
    assert!(ev.get("transaction").is_none(), "{ev}");

    c.send_json(&json!({"janus":"detach","session_id":sid,"handle_id":hid,"transaction":"d1"}))
        .await;
    let r = c.recv().await;
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"d1"}),
        "success comes before detached"
    );
    let ev = c.recv().await;
    assert_eq!(ev["janus"], "detached", "{ev}");
    assert_eq!(ev["sender"], hid);
    assert_eq!(ev["session_id"], sid);

    let r = c
        .request(json!({"janus":"detach","session_id":sid,"handle_id":hid,"transaction":"d2"}))
        .await;
    assert_error(&r, 459);

    let r = c
        .request(json!({"janus":"destroy","session_id":sid,"transaction":"x1"}))
        .await;
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"x1"})
    );
    let r = c
        .request(json!({"janus":"keepalive","session_id":sid,"transaction":"x2"}))
        .await;
    assert_error(&r, 458);
    // No stray events (e.g. a `detached` for the destroyed session).
    c.expect_silence(Duration::from_millis(300)).await;
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_objects_in_one_frame_answered_in_order() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    c.send_text(
        "{\"janus\":\"ping\",\"transaction\":\"a\"}{\"janus\":\"info\",\"transaction\":\"b\"}\n  {\"janus\":\"ping\",\"transaction\":\"c\"}",
    )
    .await;
    let a = c.recv().await;
    let b = c.recv().await;
    let cc = c.recv().await;
    assert_eq!(a, json!({"janus":"pong","transaction":"a"}));
    assert_eq!(b["janus"], "server_info");
    assert_eq!(b["transaction"], "b");
    assert_eq!(cc, json!({"janus":"pong","transaction":"c"}));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_json_frame_gets_454_and_socket_keeps_working() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    c.send_text("{not json").await;
    let r = c.recv().await;
    assert_error(&r, 454);
    assert!(r.get("transaction").is_none(), "{r}");
    assert!(r.get("session_id").is_none(), "{r}");
    let r = c
        .request(json!({"janus":"ping","transaction":"after"}))
        .await;
    assert_eq!(r, json!({"janus":"pong","transaction":"after"}));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_object_then_garbage_is_one_454_and_nothing_processed() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    c.send_text("{\"janus\":\"create\",\"transaction\":\"first\"} garbage{")
        .await;
    let r = c.recv().await;
    assert_error(&r, 454);
    assert!(r.get("transaction").is_none(), "{r}");
    // The next message answers the next request: nothing else was produced in between.
    let r = c
        .request(json!({"janus":"ping","transaction":"after"}))
        .await;
    assert_eq!(r, json!({"janus":"pong","transaction":"after"}));
    assert!(
        s.list_sessions().await.is_empty(),
        "the create must not run"
    );
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_frames_are_text() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    c.send(Message::binary(
        br#"{"janus":"ping","transaction":"bin"}"#.to_vec(),
    ))
    .await;
    let r = c.recv().await;
    assert_eq!(r, json!({"janus":"pong","transaction":"bin"}));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ping_gets_pong() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    c.send(Message::Ping(b"hello".to_vec().into())).await;
    let got = tokio::time::timeout(IO_TIMEOUT, async {
        use futures_util::StreamExt;
        loop {
            match c.ws.next().await {
                Some(Ok(Message::Pong(p))) => return Some(p),
                Some(Ok(_)) => continue,
                _ => return None,
            }
        }
    })
    .await
    .expect("no pong");
    assert_eq!(got.as_deref(), Some(&b"hello"[..]));
    // Still usable.
    let r = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_requires_the_right_subprotocol() {
    let s = Server::default().await;
    for (addr, proto, what) in [
        (s.ws, None, "no subprotocol on API port"),
        (
            s.ws,
            Some("janus-admin-protocol"),
            "admin protocol on API port",
        ),
        (s.ws, Some("something-else"), "unknown protocol on API port"),
        (s.admin_ws, None, "no subprotocol on admin port"),
        (
            s.admin_ws,
            Some("janus-protocol"),
            "API protocol on admin port",
        ),
    ] {
        let r = WsClient::connect(addr, proto).await;
        assert!(r.is_err(), "{what}: handshake must be refused");
    }
    // The URL path is ignored.
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut req = format!("ws://{}/some/path?x=1", s.ws)
            .into_client_request()
            .unwrap();
        req.headers_mut()
            .insert("Sec-WebSocket-Protocol", "janus-protocol".parse().unwrap());
        let (mut ws, _) = tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::connect_async(req))
            .await
            .unwrap()
            .expect("any path accepted");
        let _ = ws.close(None).await;
    }
    // A list that includes the right one is accepted.
    let mut c = WsClient::connect(s.ws, Some("foo, janus-protocol"))
        .await
        .expect("list with janus-protocol accepted");
    let r = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    c.close().await;
    let mut a = WsClient::connect(s.admin_ws, Some("janus-admin-protocol, x"))
        .await
        .expect("list with janus-admin-protocol accepted");
    let r = a.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    a.close().await;
    s.assert_alive().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_the_socket_destroys_its_sessions() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    let _hid = c.attach(sid).await;
    // Several sessions on the same socket all go.
    let sid2 = c.create().await;
    let _ = c.attach(sid2).await;
    let _ = c.attach(sid2).await;
    // A session on another socket survives.
    let mut other = s.ws().await;
    let keep = other.create().await;
    assert!(s.list_sessions().await.contains(&sid));
    c.close().await;
    s.wait_session_listed(sid, false, Duration::from_secs(5))
        .await;
    s.wait_session_listed(sid2, false, Duration::from_secs(5))
        .await;
    assert!(s.list_sessions().await.contains(&keep));
    assert_eq!(
        s.running().runtime.counts(),
        (1, 0),
        "the handle is gone too"
    );
    other.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reclaim_after_reconnect_and_unclaimed_sessions_expire() {
    let s = Server::start(Opts {
        reclaim_session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    // Session A: created on socket 1, claimed on socket 2.
    let mut c1 = s.ws().await;
    let sid = c1.create().await;
    let hid = c1.attach(sid).await;
    // Session B: created on socket 3, never claimed.
    let mut c3 = s.ws().await;
    let lost = c3.create().await;
    c1.close().await;
    c3.close().await;
    assert!(
        s.list_sessions().await.contains(&sid),
        "session lives on after close"
    );

    let mut c2 = s.ws().await;
    let r = c2
        .request(json!({"janus":"claim","session_id":sid,"transaction":"cl"}))
        .await;
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"cl"})
    );
    c2.send_json(&json!({"janus":"message","session_id":sid,"handle_id":hid,"body":{"audio":true},"transaction":"m"}))
        .await;
    let ack = c2.recv().await;
    assert_eq!(ack["janus"], "ack", "{ack}");
    let ev = c2.recv().await;
    assert_eq!(
        ev["janus"], "event",
        "the event comes on the claiming socket: {ev}"
    );
    assert_eq!(ev["transaction"], "m");
    assert_eq!(ev["sender"], hid);

    // The unclaimed one dies after the reclaim timeout.
    s.wait_session_listed(lost, false, Duration::from_secs(6))
        .await;
    // The claimed one does not.
    assert!(
        s.list_sessions().await.contains(&sid),
        "claimed session must survive"
    );
    let r = c2
        .request(json!({"janus":"keepalive","session_id":sid,"transaction":"k"}))
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    c2.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_of_http_session_moves_events_to_websocket() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    // A long poll pending on the HTTP side is completed by the claim.
    let poll_addr = s.http;
    let poll = tokio::spawn(async move {
        http_request_timeout(
            poll_addr,
            hyper::Method::GET,
            &format!("/janus/{sid}"),
            &[],
            None,
            Duration::from_secs(15),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!poll.is_finished());
    let mut c = s.ws().await;
    let r = c
        .request(json!({"janus":"claim","session_id":sid,"transaction":"cl"}))
        .await;
    assert_eq!(
        r,
        json!({"janus":"success","session_id":sid,"transaction":"cl"})
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("pending HTTP poll not completed by the WebSocket claim")
        .unwrap()
        .unwrap();
    assert_eq!(ended.json(), json!({"janus":"keepalive"}));
    // A message sent over HTTP: the ack on HTTP, the event on the WebSocket.
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"transaction":"m"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    let ev = c.recv().await;
    assert_eq!(ev["janus"], "event", "{ev}");
    assert_eq!(ev["transaction"], "m");
    assert_eq!(ev["sender"], hid);
    // Now the socket owns the session: closing it destroys the session (reclaim is 0).
    c.close().await;
    s.wait_session_listed(sid, false, Duration::from_secs(5))
        .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_go_to_the_creating_socket() {
    let s = Server::default().await;
    let mut owner = s.ws().await;
    let mut other = s.ws().await;
    let sid = owner.create().await;
    let hid = owner.attach(sid).await;
    // The other socket sends the message: it gets the ack, the owner gets the event.
    let r = other
        .request(json!({"janus":"message","session_id":sid,"handle_id":hid,"body":{"audio":false},"transaction":"m"}))
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let ev = owner.recv().await;
    assert_eq!(ev["janus"], "event", "{ev}");
    assert_eq!(ev["transaction"], "m");
    other.expect_silence(Duration::from_millis(300)).await;
    owner.close().await;
    other.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_between_live_sockets_moves_ownership() {
    let s = Server::default().await;
    let mut a = s.ws().await;
    let mut b = s.ws().await;
    let sid = a.create().await;
    let hid = a.attach(sid).await;
    let r = b
        .request(json!({"janus":"claim","session_id":sid,"transaction":"cl"}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    // Claiming again from the owner is a plain success.
    let r = b
        .request(json!({"janus":"claim","session_id":sid,"transaction":"cl2"}))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    let r = a
        .request(json!({"janus":"message","session_id":sid,"handle_id":hid,"body":{"audio":true},"transaction":"m"}))
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let ev = b.recv().await;
    assert_eq!(ev["janus"], "event", "event goes to the claimer: {ev}");
    assert_eq!(ev["transaction"], "m");
    a.expect_silence(Duration::from_millis(300)).await;
    // The old socket no longer owns it: closing it leaves the session alone.
    a.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        s.list_sessions().await.contains(&sid),
        "closing the old owner killed it"
    );
    // Closing the new owner does destroy it.
    b.close().await;
    s.wait_session_listed(sid, false, Duration::from_secs(5))
        .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_of_unknown_session_is_458() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let r = c
        .request(json!({"janus":"claim","session_id":424242,"transaction":"cl"}))
        .await;
    assert_error(&r, 458);
    assert_eq!(r["transaction"], "cl");
    let r = c
        .request(json!({"janus":"claim","transaction":"cl2"}))
        .await;
    assert_error(&r, 457);
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_claim_of_websocket_session_moves_events_to_long_poll() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    let hid = c.attach(sid).await;
    // Before the claim HTTP has no queue for it: polls on a WebSocket session are 404.
    let r = s.poll(sid, "", IO_TIMEOUT).await;
    assert_eq!(r.status, hyper::StatusCode::NOT_FOUND);
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"claim","transaction":"cl"}),
        )
        .await;
    assert_eq!(
        v,
        json!({"janus":"success","session_id":sid,"transaction":"cl"})
    );
    let r = c
        .request(json!({"janus":"message","session_id":sid,"handle_id":hid,"body":{"audio":true},"transaction":"m"}))
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let ev = s.poll_json(sid, "").await;
    assert_eq!(
        ev["janus"], "event",
        "event by long poll after the HTTP claim: {ev}"
    );
    assert_eq!(ev["transaction"], "m");
    c.expect_silence(Duration::from_millis(300)).await;
    // The socket no longer owns the session.
    c.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(s.list_sessions().await.contains(&sid));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_pings_idle_clients_and_drops_silent_ones() {
    let mut cfg = jano_config::ConfigSet::builtin();
    cfg.websockets.pingpong_trigger = 1;
    cfg.websockets.pingpong_timeout = 1;
    let s = Server::start_with(Opts::default(), cfg).await;

    let mut live = s.ws().await;
    let sid = live.create().await;
    let mut silent = s.ws().await;
    let silent_sid = silent.create().await;
    // `live` keeps reading (tungstenite answers pings while reading); `silent` never reads,
    // so it never answers. Both are idle for several ping periods.
    let mut pings = 0;
    let until = tokio::time::Instant::now() + Duration::from_millis(3500);
    while let Ok(next) = tokio::time::timeout_at(until, {
        use futures_util::StreamExt;
        live.ws.next()
    })
    .await
    {
        match next {
            Some(Ok(Message::Ping(_))) => pings += 1,
            Some(Ok(m)) => panic!("unexpected message on the idle socket: {m:?}"),
            other => panic!("answering client dropped: {other:?}"),
        }
    }
    assert!(pings >= 1, "no server ping on an idle socket");
    match silent.next_json(Duration::from_secs(5)).await {
        Err(WsEnd::Closed) | Err(WsEnd::Error(_)) => {}
        other => panic!("silent client not dropped: {other:?}"),
    }
    s.wait_session_listed(silent_sid, false, Duration::from_secs(3))
        .await;
    // The answering client is still fine.
    let r = live
        .request(json!({"janus":"keepalive","session_id":sid,"transaction":"k"}))
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    live.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_enforce_cors() {
    let mut cfg = jano_config::ConfigSet::builtin();
    cfg.websockets.allow_origin = Some("http://good.example".into());
    cfg.websockets.enforce_cors = true;
    let s = Server::start_with(Opts::default(), cfg).await;
    let connect = |origin: Option<&'static str>| {
        let addr = s.ws;
        async move {
            use tokio_tungstenite::tungstenite::client::IntoClientRequest;
            let mut req = format!("ws://{addr}/").into_client_request().unwrap();
            req.headers_mut()
                .insert("Sec-WebSocket-Protocol", "janus-protocol".parse().unwrap());
            if let Some(o) = origin {
                req.headers_mut().insert("Origin", o.parse().unwrap());
            }
            tokio::time::timeout(IO_TIMEOUT, tokio_tungstenite::connect_async(req))
                .await
                .expect("handshake timed out")
        }
    };
    let ok = connect(Some("http://good.example")).await;
    let (mut ws, resp) = ok.expect("allowed origin accepted");
    assert_eq!(
        resp.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("http://good.example")
    );
    let _ = ws.close(None).await;
    assert!(
        connect(Some("http://evil.example")).await.is_err(),
        "bad origin accepted"
    );
    assert!(connect(None).await.is_err(), "missing origin accepted");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fragmented_messages_are_reassembled() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    let s = Server::default().await;
    let mut c = s.ws().await;
    let text = r#"{"janus":"ping","transaction":"fragmented"}"#.as_bytes();
    let (a, rest) = text.split_at(10);
    let (b, d) = rest.split_at(15);
    c.send(Message::Frame(Frame::message(
        a.to_vec(),
        OpCode::Data(Data::Text),
        false,
    )))
    .await;
    c.send(Message::Frame(Frame::message(
        b.to_vec(),
        OpCode::Data(Data::Continue),
        false,
    )))
    .await;
    // A control frame may come between fragments.
    c.send(Message::Ping(b"mid".to_vec().into())).await;
    c.send(Message::Frame(Frame::message(
        d.to_vec(),
        OpCode::Data(Data::Continue),
        true,
    )))
    .await;
    let r = c.recv().await;
    assert_eq!(r, json!({"janus":"pong","transaction":"fragmented"}));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn slow_reader_is_served_fully_or_disconnected() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    // Many requests with big answers (server_info), without reading anything meanwhile.
    let per_frame = 500;
    let frames = 40;
    for f in 0..frames {
        let mut text = String::new();
        for k in 0..per_frame {
            text.push_str(&format!(
                r#"{{"janus":"info","transaction":"i{}"}}"#,
                f * per_frame + k
            ));
        }
        c.send_text(&text).await;
    }
    let total = frames * per_frame;
    let mut got = 0;
    let closed = loop {
        match c.next_json(Duration::from_secs(3)).await {
            Ok(v) => {
                assert_eq!(v["janus"], "server_info", "{v}");
                got += 1;
                if got == total {
                    break false;
                }
            }
            Err(WsEnd::Timeout) => break false,
            Err(WsEnd::Closed) | Err(WsEnd::Error(_)) => break true,
        }
    };
    assert!(
        closed || got == total,
        "socket still open but only {got} of {total} responses arrived"
    );
    s.assert_alive().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn events_still_delivered_after_a_slow_reader_catches_up() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    let hid = c.attach(sid).await;
    // Fill the socket's outbound queue without reading.
    for f in 0..40 {
        let mut text = String::new();
        for k in 0..500 {
            text.push_str(&format!(r#"{{"janus":"info","transaction":"i{f}-{k}"}}"#));
        }
        c.send_text(&text).await;
    }
    // Let the server get through the frames, then cause an event for the socket's session.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"transaction":"during"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    // Catch up: read whatever is there.
    while c.next_json(Duration::from_secs(2)).await.is_ok() {}
    // Now a normal exchange: the ack, and the event.
    c.send_json(&json!({"janus":"message","session_id":sid,"handle_id":hid,"body":{"audio":true},"transaction":"after"}))
        .await;
    let mut saw_ack = false;
    let mut saw_event = false;
    while let Ok(v) = c.next_json(Duration::from_secs(3)).await {
        if v["transaction"] == "after" {
            saw_ack |= v["janus"] == "ack";
            saw_event |= v["janus"] == "event";
        }
        if saw_ack && saw_event {
            break;
        }
    }
    assert!(saw_ack, "no ack after catching up");
    assert!(
        saw_event,
        "socket open and answering, but its session's events are gone"
    );
    c.close().await;
    s.shutdown().await;
}
