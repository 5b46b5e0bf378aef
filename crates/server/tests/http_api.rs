//! The Janus API over HTTP: every core request, the HTTP-specific routes, CORS and status codes.

mod common;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn info_by_get_and_post() {
    let s = Server::default().await;

    let r = http_request(s.http, Method::GET, "/janus/info", &[], None)
        .await
        .unwrap();
    r.assert_json_200();
    let v = r.json();
    assert_eq!(v["janus"], "server_info", "{v}");
    assert_eq!(v["name"], "Janus WebRTC Server");
    assert!(v["version"].is_u64(), "{v}");
    let t = v["transaction"]
        .as_str()
        .expect("GET info carries a synthetic transaction");
    assert!(
        t.len() == 11 && t.chars().all(|c| c.is_ascii_alphanumeric()),
        "synthetic transaction is 11 alphanumeric characters, as Janus's: {t:?}"
    );
    assert!(v.get("session_id").is_none(), "{v}");
    assert!(v["plugins"].get(ECHOTEST).is_some(), "echotest listed: {v}");
    assert!(
        v["plugins"].get("jano.plugin.fanout").is_none(),
        "jano's own fan-out plugin is opt-in: {v}"
    );
    assert!(v["transports"].get("janus.transport.http").is_some(), "{v}");
    assert!(
        v["transports"].get("janus.transport.websockets").is_some(),
        "{v}"
    );
    assert_eq!(v["session-timeout"], 60);
    assert_eq!(v["accepting-new-sessions"], true);

    let v = s
        .post("/janus", json!({"janus":"info","transaction":"i1"}))
        .await;
    assert_eq!(v["janus"], "server_info");
    assert_eq!(v["transaction"], "i1");
    assert!(v.get("session_id").is_none());

    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_by_post_and_get() {
    let s = Server::default().await;
    let v = s
        .post("/janus", json!({"janus":"ping","transaction":"p1"}))
        .await;
    assert_eq!(v, json!({"janus":"pong","transaction":"p1"}));

    let r = http_request(s.http, Method::GET, "/janus/ping", &[], None)
        .await
        .unwrap();
    r.assert_json_200();
    let v = r.json();
    assert_eq!(v["janus"], "pong", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_returns_id_in_data_only() {
    let s = Server::default().await;
    let v = s
        .post("/janus", json!({"janus":"create","transaction":"c1"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["transaction"], "c1");
    assert!(
        v.get("session_id").is_none(),
        "no top-level session_id: {v}"
    );
    let id = v["data"]["id"].as_u64().expect("data.id integer");
    assert!((1..=MAX_ID).contains(&id), "id {id} out of [1, 2^53-1]");
    // Ids are distinct.
    let other = s.create().await;
    assert_ne!(id, other);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_chosen_id_and_conflict() {
    let s = Server::default().await;
    let v = s
        .post(
            "/janus",
            json!({"janus":"create","id":4242,"transaction":"c1"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["data"]["id"], 4242);
    // The session is usable at that id.
    let v = s
        .post(
            "/janus/4242",
            json!({"janus":"keepalive","transaction":"k"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");

    let v = s
        .post(
            "/janus",
            json!({"janus":"create","id":4242,"transaction":"c2"}),
        )
        .await;
    assert_error(&v, 468);
    assert_eq!(v["transaction"], "c2");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attach_echotest_and_unknown_plugin() {
    let s = Server::default().await;
    let sid = s.create().await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":ECHOTEST,"opaque_id":"my-opaque","transaction":"a1"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(v["session_id"], sid);
    assert_eq!(v["transaction"], "a1");
    let hid = v["data"]["id"].as_u64().expect("handle id");
    assert!((1..=MAX_ID).contains(&hid));

    // The opaque id is stored on the handle (visible to the Admin API).
    let info = s
        .admin(
            &format!("/admin/{sid}/{hid}"),
            json!({"janus":"handle_info"}),
        )
        .await;
    assert_eq!(info["info"]["opaque_id"], "my-opaque", "{info}");

    // Session id from the body instead of the path.
    let v = s
        .post(
            "/janus",
            json!({"janus":"attach","session_id":sid,"plugin":ECHOTEST,"transaction":"a2"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");

    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":"janus.plugin.nope","transaction":"a3"}),
        )
        .await;
    let reason = assert_error(&v, 460);
    assert!(reason.contains("janus.plugin.nope"), "{reason}");
    assert_eq!(v["transaction"], "a3");
    assert_eq!(v["session_id"], sid);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ack_with_hint_then_event_by_long_poll() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"transaction":"m1"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    assert_eq!(v["session_id"], sid);
    assert_eq!(v["transaction"], "m1");
    assert_eq!(v["hint"], "I'm taking my time!");

    // maxev=1 (and the default) is a single object.
    let ev = s.poll_json(sid, "maxev=1").await;
    assert!(ev.is_object(), "maxev=1 gives an object: {ev}");
    assert_eq!(ev["janus"], "event", "{ev}");
    assert_eq!(ev["session_id"], sid);
    assert_eq!(ev["sender"], hid);
    assert_eq!(ev["transaction"], "m1");
    assert_eq!(ev["plugindata"]["plugin"], ECHOTEST);
    assert_eq!(
        ev["plugindata"]["data"],
        json!({"echotest":"event","result":"ok"})
    );
    assert!(ev.get("jsep").is_none(), "no jsep without an offer: {ev}");

    // The same with the handle id in the body and no maxev at all.
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"message","handle_id":hid,"body":{"video":false},"transaction":"m2"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    let ev = s.poll_json(sid, "").await;
    assert!(ev.is_object());
    assert_eq!(ev["transaction"], "m2", "{ev}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_poll_maxev_array() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    for t in ["e1", "e2", "e3"] {
        let v = s
            .post(
                &format!("/janus/{sid}/{hid}"),
                json!({"janus":"message","body":{"audio":true},"transaction":t}),
            )
            .await;
        assert_eq!(v["janus"], "ack", "{v}");
    }
    // Every answer with maxev=5 is an array; together they hold the three events in order.
    let mut got: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 3 && tokio::time::Instant::now() < deadline {
        let v = s.poll_json(sid, "maxev=5").await;
        let arr = v
            .as_array()
            .unwrap_or_else(|| panic!("maxev=5 gives an array: {v}"));
        assert!(!arr.is_empty() && arr.len() <= 5, "{v}");
        got.extend(arr.iter().cloned());
    }
    let ok = got.len() == 3;
    assert!(ok, "three events never arrived: {got:?}");
    let txs: Vec<&str> = got
        .iter()
        .map(|e| e["transaction"].as_str().unwrap())
        .collect();
    assert_eq!(txs, ["e1", "e2", "e3"]);
    for e in &got {
        assert_eq!(e["janus"], "event");
        assert_eq!(e["sender"], hid);
    }

    // maxev=0 counts as 1: a single object.
    s.post(
        &format!("/janus/{sid}/{hid}"),
        json!({"janus":"message","body":{"audio":true},"transaction":"e4"}),
    )
    .await;
    let v = s.poll_json(sid, "maxev=0").await;
    assert!(v.is_object(), "maxev=0 gives an object: {v}");
    assert_eq!(v["transaction"], "e4");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_acks() {
    let s = Server::default().await;
    let sid = s.create().await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","transaction":"k1"}),
        )
        .await;
    assert_eq!(
        v,
        json!({"janus":"ack","session_id":sid,"transaction":"k1"})
    );
    // Janus also accepts it with a handle.
    let hid = s.attach(sid).await;
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"keepalive","transaction":"k2"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trickle_variants() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let path = format!("/janus/{sid}/{hid}");
    let cand = json!({"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host"});

    let v = s
        .post(
            &path,
            json!({"janus":"trickle","candidate":cand,"transaction":"t1"}),
        )
        .await;
    assert_eq!(
        v,
        json!({"janus":"ack","session_id":sid,"transaction":"t1"}),
        "single"
    );

    let v = s
        .post(
            &path,
            json!({"janus":"trickle","candidates":[cand, cand],"transaction":"t2"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "array: {v}");
    assert!(v.get("sender").is_none());

    let v = s
        .post(
            &path,
            json!({"janus":"trickle","candidate":{"completed":true},"transaction":"t3"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "completed: {v}");

    let v = s
        .post(
            &path,
            json!({"janus":"trickle","candidate":cand,"candidates":[cand],"transaction":"t4"}),
        )
        .await;
    assert_error(&v, 454);
    assert_eq!(v["transaction"], "t4");

    let v = s
        .post(&path, json!({"janus":"trickle","transaction":"t5"}))
        .await;
    assert_error(&v, 456);
    assert_eq!(v["transaction"], "t5");

    // Trickle at session level is a path error.
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"trickle","candidate":cand,"transaction":"t6"}),
        )
        .await;
    assert_error(&v, 457);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_without_peerconnection_is_success() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"hangup","transaction":"h1"}),
        )
        .await;
    assert_eq!(
        v,
        json!({"janus":"success","session_id":sid,"transaction":"h1"})
    );
    // Without a handle: path error.
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"hangup","transaction":"h2"}),
        )
        .await;
    assert_error(&v, 457);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_then_detached_event_then_459() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let path = format!("/janus/{sid}/{hid}");
    let v = s
        .post(&path, json!({"janus":"detach","transaction":"d1"}))
        .await;
    assert_eq!(
        v,
        json!({"janus":"success","session_id":sid,"transaction":"d1"})
    );

    let ev = s.poll_json(sid, "").await;
    assert_eq!(ev["janus"], "detached", "{ev}");
    assert_eq!(ev["session_id"], sid);
    assert_eq!(ev["sender"], hid);
    assert!(ev.get("transaction").is_none(), "{ev}");

    let v = s
        .post(&path, json!({"janus":"detach","transaction":"d2"}))
        .await;
    assert_error(&v, 459);
    assert_eq!(v["transaction"], "d2");

    // Detach without a handle is a path error.
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"detach","transaction":"d3"}),
        )
        .await;
    assert_error(&v, 457);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_then_session_gone() {
    let s = Server::default().await;
    let sid = s.create().await;
    let _hid = s.attach(sid).await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"destroy","transaction":"x1"}),
        )
        .await;
    assert_eq!(
        v,
        json!({"janus":"success","session_id":sid,"transaction":"x1"})
    );

    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","transaction":"x2"}),
        )
        .await;
    let reason = assert_error(&v, 458);
    assert!(reason.contains(&sid.to_string()), "{reason}");
    assert_eq!(v["session_id"], sid);

    let r = s.poll(sid, "", IO_TIMEOUT).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "poll on destroyed session");
    assert!(!s.list_sessions().await.contains(&sid));
    assert_eq!(s.running().runtime.counts(), (0, 0), "handles freed too");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_unknown_session_is_404_and_handle_get_redirects() {
    let s = Server::default().await;
    let r = s.poll(123456789, "", IO_TIMEOUT).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let r = http_request(
        s.http,
        Method::GET,
        &format!("/janus/{sid}/{hid}"),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::FOUND);
    assert_eq!(
        r.header("location").as_deref(),
        Some(&*format!("/janus/{sid}"))
    );

    // GET on the root is not a poll.
    let r = http_request(s.http, Method::GET, "/janus", &[], None)
        .await
        .unwrap();
    r.assert_json_200();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_methods_get_450() {
    let s = Server::default().await;
    for (m, path) in [
        (Method::PUT, "/janus"),
        (Method::DELETE, "/janus"),
        (Method::PATCH, "/janus/1"),
    ] {
        let r = http_request(s.http, m.clone(), path, &[], None)
            .await
            .unwrap();
        r.assert_json_200();
        let v = r.json();
        let reason = assert_error(&v, 450);
        assert!(reason.contains(m.as_str()), "{m}: {reason}");
    }
    // With a body too (Janus drops the connection; answering is better).
    let r = http_request(
        s.http,
        Method::PUT,
        "/janus",
        &[],
        Some(br#"{"janus":"create","transaction":"x"}"#.to_vec()),
    )
    .await
    .unwrap();
    assert_error(&r.json(), 450);
    assert!(s.list_sessions().await.is_empty(), "PUT must not create");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn options_preflight_and_cors_headers() {
    let s = Server::default().await;
    let r = http_request(
        s.http,
        Method::OPTIONS,
        "/janus",
        &[
            ("Origin", "http://example.com"),
            ("Access-Control-Request-Method", "POST"),
            ("Access-Control-Request-Headers", "content-type, x-custom"),
        ],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.is_empty(), "preflight body: {:?}", r.text());
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        r.header("access-control-allow-methods").as_deref(),
        Some("POST")
    );
    assert_eq!(
        r.header("access-control-allow-headers").as_deref(),
        Some("content-type, x-custom")
    );
    assert_eq!(r.header("access-control-max-age").as_deref(), Some("86400"));

    // Preflight on a session path too.
    let r = http_request(
        s.http,
        Method::OPTIONS,
        "/janus/12345/678",
        &[("Access-Control-Request-Method", "GET")],
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.header("access-control-allow-methods").as_deref(),
        Some("GET")
    );

    // Every answer has the CORS origin header.
    let r = http_request(
        s.http,
        Method::POST,
        "/janus",
        &[("Origin", "http://example.com")],
        Some(br#"{"janus":"ping","transaction":"p"}"#.to_vec()),
    )
    .await
    .unwrap();
    r.assert_json_200();
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_and_body_id_conflicts_are_457() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","session_id":sid + 1,"transaction":"c1"}),
        )
        .await;
    let reason = assert_error(&v, 457);
    assert!(reason.contains("session"), "{reason}");

    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"hangup","handle_id":hid + 1,"transaction":"c2"}),
        )
        .await;
    let reason = assert_error(&v, 457);
    assert!(reason.contains("handle"), "{reason}");

    // The same id in both places is fine.
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"hangup","session_id":sid,"handle_id":hid,"transaction":"c3"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbs_are_case_insensitive() {
    let s = Server::default().await;
    let v = s
        .post("/janus", json!({"janus":"PING","transaction":"p"}))
        .await;
    assert_eq!(v["janus"], "pong", "{v}");
    let v = s
        .post("/janus", json!({"janus":"Create","transaction":"c"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    let sid = v["data"]["id"].as_u64().unwrap();
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"KeepAlive","transaction":"k"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"ATTACH","plugin":ECHOTEST,"transaction":"a"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_http_200_json() {
    let s = Server::default().await;
    // A handful of Janus-level errors: all HTTP 200 with application/json (asserted by post).
    for body in [
        json!({"janus":"nope","transaction":"a"}),
        json!({"janus":"keepalive","session_id":999,"transaction":"b"}),
        json!({"transaction":"c"}),
        json!({"janus":"create","id":"x","transaction":"d"}),
    ] {
        let v = s.post("/janus", body).await;
        assert_eq!(v["janus"], "error", "{v}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connection_serves_several_requests() {
    use http_body_util::{BodyExt, Full};
    use hyper::body::Bytes;
    use hyper_util::rt::TokioIo;
    let s = Server::default().await;
    let stream = tokio::net::TcpStream::connect(s.http).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut sid = 0;
    for (i, body) in [
        json!({"janus":"create","transaction":"a"}),
        json!({"janus":"ping","transaction":"b"}),
        json!({"janus":"info","transaction":"c"}),
    ]
    .into_iter()
    .enumerate()
    {
        let req = hyper::Request::post("/janus")
            .header("host", s.http.to_string())
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        tokio::time::timeout(IO_TIMEOUT, sender.ready())
            .await
            .expect("connection never ready")
            .expect("connection closed between requests");
        let resp = tokio::time::timeout(IO_TIMEOUT, sender.send_request(req))
            .await
            .expect("timed out")
            .unwrap_or_else(|e| panic!("request {i} on a kept-alive connection: {e}"));
        assert_eq!(resp.status(), StatusCode::OK);
        let b = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["transaction"], body["transaction"], "{v}");
        if i == 0 {
            sid = v["data"]["id"].as_u64().unwrap();
        }
    }
    // A GET after POSTs on the same connection.
    let req = hyper::Request::get(format!("/janus/{sid}/1"))
        .header("host", s.http.to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    tokio::time::timeout(IO_TIMEOUT, sender.ready())
        .await
        .expect("connection never ready")
        .expect("connection closed between requests");
    let resp = tokio::time::timeout(IO_TIMEOUT, sender.send_request(req))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    task.abort();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_allow_origin_and_enforce_cors() {
    let mut cfg = jano_config::ConfigSet::builtin();
    cfg.http.allow_origin = Some("http://good.example".into());
    cfg.http.enforce_cors = true;
    let s = Server::start_with(Opts::default(), cfg).await;
    let ping = br#"{"janus":"ping","transaction":"p"}"#.to_vec();
    let r = http_request(
        s.http,
        Method::POST,
        "/janus",
        &[("Origin", "http://good.example")],
        Some(ping.clone()),
    )
    .await
    .unwrap();
    r.assert_json_200();
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("http://good.example")
    );
    assert_eq!(
        r.header("access-control-allow-credentials").as_deref(),
        Some("true")
    );
    assert_eq!(r.header("vary").as_deref(), Some("Origin"));
    // Referer is the fallback.
    let r = http_request(
        s.http,
        Method::POST,
        "/janus",
        &[("Referer", "http://good.example/page.html")],
        Some(ping.clone()),
    )
    .await
    .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    for headers in [vec![("Origin", "http://evil.example")], vec![]] {
        let r = http_request(s.http, Method::POST, "/janus", &headers, Some(ping.clone()))
            .await
            .unwrap();
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{headers:?}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn content_type_is_not_checked() {
    // janus.js's sendBeacon sends text/plain.
    let s = Server::default().await;
    let r = http_request(
        s.http,
        Method::POST,
        "/janus",
        &[("Content-Type", "text/plain;charset=UTF-8")],
        Some(br#"{"janus":"create","transaction":"c"}"#.to_vec()),
    )
    .await
    .unwrap();
    r.assert_json_200();
    assert_eq!(r.json()["janus"], "success");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_claim_completes_pending_polls_with_keepalive() {
    // core-api.md §7.1: "claim over HTTP replaces the per-session event queue; pending long
    // polls on the old queue are completed with a keepalive".
    let s = std::sync::Arc::new(Server::default().await);
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let p = {
        let s = s.clone();
        tokio::spawn(async move { s.poll(sid, "", Duration::from_secs(15)).await })
    };
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!p.is_finished());
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
    let r = tokio::time::timeout(Duration::from_secs(5), p)
        .await
        .expect("pending poll not completed by the claim")
        .unwrap();
    r.assert_json_200();
    assert_eq!(r.json(), json!({"janus":"keepalive"}));
    // Events still reach the session's (new) queue.
    s.post(
        &format!("/janus/{sid}/{hid}"),
        json!({"janus":"message","body":{"audio":true},"transaction":"m"}),
    )
    .await;
    let ev = s.poll_json(sid, "").await;
    assert_eq!(ev["transaction"], "m", "{ev}");
    let s = std::sync::Arc::try_unwrap(s).ok().unwrap();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_get_distinct_ids() {
    let s = std::sync::Arc::new(Server::default().await);
    let tasks: Vec<_> = (0..40)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.create().await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 40, "duplicate session ids: {ids:?}");
    let mut listed = s.list_sessions().await;
    listed.sort_unstable();
    assert_eq!(listed, unique);
    let s = std::sync::Arc::try_unwrap(s).ok().unwrap();
    s.shutdown().await;
}

/// `jano.plugin.fanout` is loaded when its file enables it, and answers its requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_plugin_when_its_file_enables_it() {
    let mut cfg = jano_config::ConfigSet::builtin();
    let file = jano_config::Jcfg::parse("general: { enabled = true }", "jano.plugin.fanout.jcfg")
        .expect("jcfg");
    cfg.plugins.insert("jano.plugin.fanout".into(), file);
    let s = Server::start_with(Opts::default(), cfg).await;
    let v = s
        .post("/janus", json!({"janus":"info","transaction":tx()}))
        .await;
    assert!(v["plugins"].get("jano.plugin.fanout").is_some(), "{v}");
    let sid = s.create().await;
    let r = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"attach","plugin":"jano.plugin.fanout","transaction":tx()}),
        )
        .await;
    let hid = r["data"]["id"].as_u64().expect("handle");
    // An unknown feed is an error event with the plugin's code, not a crash.
    let r = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"request":"subscribe","feed":42},"transaction":"t1"}),
        )
        .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let ev = s.poll_json(sid, "").await;
    assert_eq!(ev["transaction"], "t1", "{ev}");
    assert_eq!(ev["plugindata"]["data"]["error_code"], 455, "{ev}");
    s.shutdown().await;
}
