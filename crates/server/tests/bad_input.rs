//! Malformed and invalid requests over HTTP and WebSockets: the right Janus error (and whether it
//! carries the transaction), the HTTP-level refusals, and the server still serving afterwards.

mod common;

use common::*;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=rtpmap:111 opus/48000/2\r\n";

/// One bad request: the raw text (with `{sid}`/`{hid}` placeholders), the expected error code,
/// and whether the error echoes the transaction.
struct Case {
    name: &'static str,
    raw: String,
    code: u64,
    echoes_tx: bool,
}

fn case(name: &'static str, raw: &str, code: u64, echoes_tx: bool) -> Case {
    Case {
        name,
        raw: raw.to_owned(),
        code,
        echoes_tx,
    }
}

/// Requests that carry their ids in the body, so they mean the same on every transport.
fn cases(sid: u64, hid: u64) -> Vec<Case> {
    let v = |v: Value| v.to_string();
    let msg = |extra: Value| {
        let mut m = json!({"janus":"message","session_id":sid,"handle_id":hid,"transaction":"T"});
        for (k, x) in extra.as_object().unwrap() {
            m[k] = x.clone();
        }
        m.to_string()
    };
    vec![
        case("invalid JSON", "{\"janus\":\"ping\",", 454, false),
        case("missing transaction", r#"{"janus":"ping"}"#, 456, false),
        case(
            "non-string transaction",
            r#"{"janus":"ping","transaction":5}"#,
            467,
            false,
        ),
        case("missing janus", r#"{"transaction":"T"}"#, 456, false),
        case(
            "non-string janus",
            r#"{"janus":7,"transaction":"T"}"#,
            467,
            false,
        ),
        case(
            "negative id",
            r#"{"janus":"create","id":-1,"transaction":"T"}"#,
            467,
            false,
        ),
        case(
            "string id",
            r#"{"janus":"create","id":"abc","transaction":"T"}"#,
            467,
            false,
        ),
        case(
            "fractional id",
            r#"{"janus":"create","id":1.5,"transaction":"T"}"#,
            467,
            false,
        ),
        case(
            "bad id on any request",
            r#"{"janus":"ping","id":-3,"transaction":"T"}"#,
            467,
            false,
        ),
        case(
            "unknown verb at root",
            r#"{"janus":"nope","transaction":"T"}"#,
            457,
            true,
        ),
        case(
            "session verb at root",
            r#"{"janus":"keepalive","transaction":"T"}"#,
            457,
            true,
        ),
        case(
            "string session_id is absent",
            r#"{"janus":"keepalive","session_id":"123","transaction":"T"}"#,
            457,
            true,
        ),
        case(
            "unknown session",
            &v(json!({"janus":"keepalive","session_id":987654321u64,"transaction":"T"})),
            458,
            true,
        ),
        case(
            "unknown verb at session",
            &v(json!({"janus":"nope","session_id":sid,"transaction":"T"})),
            453,
            true,
        ),
        case(
            "info with a session",
            &v(json!({"janus":"info","session_id":sid,"transaction":"T"})),
            453,
            true,
        ),
        case(
            "create with a session",
            &v(json!({"janus":"create","session_id":sid,"transaction":"T"})),
            453,
            true,
        ),
        case(
            "unknown handle",
            &v(
                json!({"janus":"hangup","session_id":sid,"handle_id":987654321u64,"transaction":"T"}),
            ),
            459,
            true,
        ),
        case(
            "attach without plugin",
            &v(json!({"janus":"attach","session_id":sid,"transaction":"T"})),
            456,
            true,
        ),
        case(
            "attach with numeric plugin",
            &v(json!({"janus":"attach","session_id":sid,"plugin":5,"transaction":"T"})),
            467,
            true,
        ),
        case(
            "attach with numeric opaque_id",
            &v(
                json!({"janus":"attach","session_id":sid,"plugin":ECHOTEST,"opaque_id":5,"transaction":"T"}),
            ),
            467,
            true,
        ),
        case("message without body", &msg(json!({})), 456, true),
        case(
            "message with string body",
            &msg(json!({"body":"x"})),
            467,
            true,
        ),
        case(
            "message with array body",
            &msg(json!({"body":[1]})),
            467,
            true,
        ),
        case(
            "jsep not an object",
            &msg(json!({"body":{"audio":true},"jsep":"offer"})),
            455,
            true,
        ),
        case(
            "jsep with unknown type",
            &msg(json!({"body":{"audio":true},"jsep":{"type":"bogus","sdp":SDP}})),
            464,
            true,
        ),
        case(
            "jsep without sdp",
            &msg(json!({"body":{"audio":true},"jsep":{"type":"offer"}})),
            456,
            true,
        ),
    ]
}

/// Non-object JSON over HTTP: the transport answers itself, as Janus's does (an array is
/// "not an object"; jansson refuses a scalar at the top level).
fn http_only_cases() -> Vec<Case> {
    vec![
        case("JSON array", "[1,2,3]", 455, false),
        case("JSON number", "42", 454, false),
        case("JSON string", "\"ping\"", 454, false),
    ]
}

/// Non-object JSON over WebSockets: an array reaches the core, which finds no transaction.
fn ws_only_cases() -> Vec<Case> {
    vec![case("JSON array", "[1,2]", 456, false)]
}

#[track_caller]
fn check(c: &Case, v: &Value) {
    assert_eq!(
        v["janus"], "error",
        "{}: expected error {}, got {v}",
        c.name, c.code
    );
    assert_eq!(v["error"]["code"], c.code, "{}: {v}", c.name);
    assert!(v["error"]["reason"].is_string(), "{}: {v}", c.name);
    if c.echoes_tx {
        assert_eq!(v["transaction"], "T", "{}: transaction echoed: {v}", c.name);
    } else {
        assert!(
            v.get("transaction").is_none(),
            "{}: no transaction: {v}",
            c.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_over_http() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    for c in cases(sid, hid).into_iter().chain(http_only_cases()) {
        let v = post_raw(s.http, "/janus", c.raw.clone().into_bytes()).await;
        check(&c, &v);
        s.assert_alive().await;
    }
    // The session and handle are untouched by all that.
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"hangup","transaction":"h"}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_over_websockets() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    let hid = c.attach(sid).await;
    for k in cases(sid, hid).into_iter().chain(ws_only_cases()) {
        c.send_text(&k.raw).await;
        let v = c.recv().await;
        check(&k, &v);
        let r = c
            .request(json!({"janus":"ping","transaction":"alive"}))
            .await;
        assert_eq!(
            r,
            json!({"janus":"pong","transaction":"alive"}),
            "after {}",
            k.name
        );
    }
    c.close().await;
    s.assert_alive().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_error_texts() {
    let s = Server::default().await;
    let v = post_raw(s.http, "/janus", b"{oops".to_vec()).await;
    let reason = assert_error(&v, 454);
    assert!(reason.starts_with("JSON error: on line 1"), "{reason}");
    assert!(v.get("session_id").is_none(), "{v}");
    let v = post_raw(s.http, "/janus", b"[]".to_vec()).await;
    let reason = assert_error(&v, 455);
    assert!(reason.contains("not an object"), "{reason}");
    // Invalid JSON on a session path carries no session id either (nothing was parsed).
    let sid = s.create().await;
    let v = post_raw(s.http, &format!("/janus/{sid}"), b"nope".to_vec()).await;
    assert_error(&v, 454);
    s.shutdown().await;
}

/// Without a usable address the media engine does not start: a JSEP is refused with 490,
/// never answered with a fake SDP, and the plugin never sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_jsep_without_a_media_address_is_an_error_never_a_fake_answer() {
    let mut cfg = jano_config::ConfigSet::builtin();
    cfg.janus.nat.ice_enforce_list = vec!["no-such-interface".into()];
    let s = Server::start_with(Opts::default(), cfg).await;
    assert!(
        s.running.as_ref().is_some_and(|r| r.media.is_none()),
        "no address, no media engine"
    );
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"jsep":{"type":"offer","sdp":SDP},"transaction":"j"}),
        )
        .await;
    assert_error(&v, 490);
    assert_eq!(v["transaction"], "j");
    // The plugin never saw it: the next event is for the next message, with no jsep.
    s.post(
        &format!("/janus/{sid}/{hid}"),
        json!({"janus":"message","body":{"audio":true},"transaction":"after"}),
    )
    .await;
    let ev = s.poll_json(sid, "").await;
    assert_eq!(ev["transaction"], "after", "{ev}");
    assert!(ev.get("jsep").is_none(), "{ev}");

    // Same over WebSockets.
    let mut c = s.ws().await;
    let wsid = c.create().await;
    let whid = c.attach(wsid).await;
    let v = c
        .request(json!({"janus":"message","session_id":wsid,"handle_id":whid,"body":{},"jsep":{"type":"OFFER","sdp":SDP},"transaction":"j"}))
        .await;
    assert_error(&v, 490);
    c.expect_silence(Duration::from_millis(300)).await;
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_http_body_is_413_json() {
    let s = Server::default().await;
    let pad = "x".repeat((1 << 20) + 1024);
    let body = format!(r#"{{"janus":"ping","transaction":"big","pad":"{pad}"}}"#);
    let r = http_request(s.http, Method::POST, "/janus", &[], Some(body.into_bytes()))
        .await
        .expect("an answer to an oversized body");
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.text());
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let v = r.json();
    assert_eq!(v["janus"], "error", "{v}");
    s.assert_alive().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_websocket_message_is_refused() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    let pad = "x".repeat((1 << 20) + 1024);
    let body = format!(r#"{{"janus":"ping","transaction":"big","pad":"{pad}"}}"#);
    // The send itself may fail if the server already closed.
    let _ = tokio::time::timeout(IO_TIMEOUT, async {
        use futures_util::SinkExt;
        c.ws.send(Message::text(body)).await
    })
    .await;
    match c.next_json(IO_TIMEOUT).await {
        Ok(v) => assert_eq!(v["janus"], "error", "oversized message answered: {v}"),
        Err(WsEnd::Closed) | Err(WsEnd::Error(_)) => {}
        Err(WsEnd::Timeout) => panic!("oversized message neither refused nor answered"),
    }
    // A fresh socket works.
    let mut c2 = s.ws().await;
    let r = c2.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    c2.close().await;
    s.assert_alive().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_websocket_message_is_454() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    c.send_text("").await;
    let v = c.recv().await;
    assert_error(&v, 454);
    c.send_text("   \n ").await;
    let v = c.recv().await;
    assert_error(&v, 454);
    let r = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_post_is_454_payload_missing() {
    let s = Server::default().await;
    let sid = s.create().await;
    for path in ["/janus".to_string(), format!("/janus/{sid}")] {
        let r = http_request(s.http, Method::POST, &path, &[], Some(Vec::new()))
            .await
            .expect("an answer to an empty POST");
        r.assert_json_200();
        let v = r.json();
        let reason = assert_error(&v, 454);
        assert_eq!(reason, "Request payload missing");
    }
    s.assert_alive().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_paths_and_methods() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let ping = br#"{"janus":"ping","transaction":"p"}"#.to_vec();
    for (m, path, want) in [
        (
            Method::POST,
            format!("/janus/{sid}/{hid}/extra"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::GET,
            format!("/janus/{sid}/{hid}/extra"),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/janus/1/2/3/4".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            "/janus/abc".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (Method::GET, "/janus/abc".to_string(), StatusCode::NOT_FOUND),
        (Method::GET, "/janus/0".to_string(), StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/elsewhere".to_string(),
            StatusCode::NOT_FOUND,
        ),
        (Method::POST, "/janusx".to_string(), StatusCode::NOT_FOUND),
        (
            Method::POST,
            "/janus/info".to_string(),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::POST,
            "/janus/ping".to_string(),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let r = http_request(s.http, m.clone(), &path, &[], Some(ping.clone()))
            .await
            .unwrap_or_else(|e| panic!("{m} {path}: {e}"));
        assert_eq!(r.status, want, "{m} {path}: {:?}", r.text());
        s.assert_alive().await;
    }
    // A trailing slash is the same path.
    let v = post_raw(s.http, "/janus/", ping.clone()).await;
    assert_eq!(v["janus"], "pong");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_the_tcp_socket() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::default().await;
    for addr in [s.http, s.ws, s.admin_http, s.admin_ws] {
        let mut t = tokio::net::TcpStream::connect(addr).await.unwrap();
        let _ = t.write_all(b"\x00\x01\x02 NOT HTTP\r\n\r\n").await;
        let mut buf = [0u8; 256];
        // Whatever the answer (400 or a close), it must come.
        let r = tokio::time::timeout(IO_TIMEOUT, t.read(&mut buf)).await;
        assert!(r.is_ok(), "{addr}: no reaction to garbage");
    }
    s.assert_alive().await;
    let mut c = s.ws().await;
    let r = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]

async fn websocket_scalar_json_is_454() {
    let s = Server::default().await;
    let mut c = s.ws().await;
    for raw in ["42", "\"ping\"", "true", "null"] {
        c.send_text(raw).await;
        let v = c.recv().await;
        assert_error(&v, 454);
        assert!(v.get("transaction").is_none(), "{v}");
    }
    // A scalar after a valid object makes the whole frame unparsable: one 454, no pong.
    c.send_text(r#"{"janus":"ping","transaction":"first"} 5"#)
        .await;
    let v = c.recv().await;
    assert_error(&v, 454);
    let r = c
        .request(json!({"janus":"ping","transaction":"after"}))
        .await;
    assert_eq!(r, json!({"janus":"pong","transaction":"after"}));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_json_does_not_crash() {
    let s = Server::default().await;
    let depth = 200_000;
    let nested = format!(
        r#"{{"janus":"ping","transaction":"deep","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let v = post_raw(s.http, "/janus", nested.clone().into_bytes()).await;
    assert_error(&v, 454);
    s.assert_alive().await;
    let mut c = s.ws().await;
    c.send_text(&nested).await;
    let v = c.recv().await;
    assert_error(&v, 454);
    let r = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_but_valid_values() {
    let s = Server::default().await;
    // Unicode transactions are echoed intact.
    let t = "tx-\u{fc}-\u{2713}-\u{1f600}";
    let v = s
        .post("/janus", json!({"janus":"ping","transaction":t}))
        .await;
    assert_eq!(v["transaction"], t);
    let mut c = s.ws().await;
    let v = c.request(json!({"janus":"ping","transaction":t})).await;
    assert_eq!(v["transaction"], t);
    c.close().await;
    // An empty transaction is still a string.
    let v = s
        .post("/janus", json!({"janus":"ping","transaction":""}))
        .await;
    assert_eq!(v, json!({"janus":"pong","transaction":""}));
    // id 0 means "pick one".
    let v = s
        .post("/janus", json!({"janus":"create","id":0,"transaction":"z"}))
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert!(v["data"]["id"].as_u64().unwrap() > 0);
    // A float session id is no integer: treated as absent.
    let v = s
        .post(
            "/janus",
            json!({"janus":"keepalive","session_id":1.0,"transaction":"f"}),
        )
        .await;
    assert_error(&v, 457);
    // A negative session id is an invalid session.
    let v = s
        .post(
            "/janus",
            json!({"janus":"keepalive","session_id":-5,"transaction":"n"}),
        )
        .await;
    assert_error(&v, 458);
    // Leading zeros in a path id.
    let sid = s.create().await;
    let v = s
        .post(
            &format!("/janus/000{sid}"),
            json!({"janus":"keepalive","transaction":"z"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_that_never_arrives_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let s = Server::default().await;
    // Announce 100 bytes, send 10, then stall: the request ends after 10 s with HTTP 408
    // instead of holding the connection forever.
    let mut c = tokio::net::TcpStream::connect(s.http).await.unwrap();
    c.write_all(b"POST /janus HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{\"janus\":")
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(15), c.read(&mut buf))
        .await
        .expect("no answer within 15 s")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
    s.assert_alive().await;
    s.shutdown().await;
}
