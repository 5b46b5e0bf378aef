//! The scenarios, written once. Each starts its own server configured for the transport under
//! test, so scenarios run in parallel without sharing state.

use crate::clients::Setup;
use crate::server::{self, Options, ADMIN_SECRET};
use crate::{admin, call, code, req, wait_for, Client};
use serde_json::{json, Value};
use std::time::Duration;

const ECHO: &str = "janus.plugin.echotest";

async fn serve<S: Setup>(setup: &S, mut opts: Options) -> server::TestServer {
    setup.configure(&mut opts);
    server::start(opts).await
}

/// create → attach → message (ack, then the event with the same transaction) → keepalive →
/// trickle → hangup → detach (success, then `detached`) → destroy → 458 afterwards.
pub async fn core_flow<S: Setup>(setup: &S) {
    let srv = serve(setup, Options::default()).await;
    let mut c = setup.connect(&srv).await;
    let n = c.name();
    let mut st = Vec::new();
    let r = call(&mut c, &mut st, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "[{n}] {r}");
    assert!(r["plugins"][ECHO].is_object(), "[{n}] {r}");
    let r = call(&mut c, &mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong", "[{n}]");
    let r = call(&mut c, &mut st, req("create", json!({}))).await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    assert!(
        r.get("session_id").is_none(),
        "[{n}] create has no session_id: {r}"
    );
    let sid = r["data"]["id"].as_u64().expect("session id");
    let r = call(
        &mut c,
        &mut st,
        req(
            "attach",
            json!({"session_id": sid, "plugin": ECHO, "opaque_id": "conf"}),
        ),
    )
    .await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    assert_eq!(r["session_id"], sid);
    let hid = r["data"]["id"].as_u64().expect("handle id");
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"audio": true}}),
    );
    let t = m["transaction"].clone();
    let r = call(&mut c, &mut st, m).await;
    assert_eq!(r["janus"], "ack", "[{n}] {r}");
    assert_eq!(r["hint"], "I'm taking my time!");
    let ev = wait_for(&mut c, &mut st, |v| {
        v["janus"] == "event" && v["transaction"] == t
    })
    .await
    .unwrap_or_else(|| panic!("[{n}] no event for the message"));
    assert_eq!(ev["sender"], hid, "[{n}] {ev}");
    assert_eq!(ev["session_id"], sid);
    assert_eq!(
        ev["plugindata"],
        json!({"plugin": ECHO, "data": {"echotest": "event", "result": "ok"}})
    );
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(r["janus"], "ack", "[{n}] {r}");
    let cand = json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host"});
    for body in [
        json!({"candidate": cand}),
        json!({"candidates": [cand, cand]}),
        json!({"candidate": {"completed": true}}),
    ] {
        let mut t = req("trickle", json!({"session_id": sid, "handle_id": hid}));
        for (k, v) in body.as_object().unwrap() {
            t[k] = v.clone();
        }
        let r = call(&mut c, &mut st, t).await;
        assert_eq!(r["janus"], "ack", "[{n}] {r}");
        assert!(r.get("sender").is_none());
    }
    let r = call(
        &mut c,
        &mut st,
        req("hangup", json!({"session_id": sid, "handle_id": hid})),
    )
    .await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    let done = wait_for(&mut c, &mut st, |v| {
        v["janus"] == "event" && v["plugindata"]["data"]["result"] == "done"
    })
    .await;
    assert!(done.is_some(), "[{n}] EchoTest's done event after hangup");
    let r = call(
        &mut c,
        &mut st,
        req("detach", json!({"session_id": sid, "handle_id": hid})),
    )
    .await;
    assert_eq!(
        r,
        json!({"janus": "success", "session_id": sid, "transaction": r["transaction"]}),
        "[{n}]"
    );
    let d = wait_for(&mut c, &mut st, |v| v["janus"] == "detached").await;
    assert_eq!(
        d,
        Some(json!({"janus": "detached", "session_id": sid, "sender": hid})),
        "[{n}]"
    );
    let r = call(&mut c, &mut st, req("destroy", json!({"session_id": sid}))).await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(code(&r), 458, "[{n}] {r}");
    srv.running.shutdown().await;
}

/// The error codes a client can provoke, and the transport keeps serving after each.
pub async fn errors<S: Setup>(setup: &S) {
    let srv = serve(setup, Options::default()).await;
    let mut c = setup.connect(&srv).await;
    let n = c.name();
    let mut st = Vec::new();
    // Not JSON: 454 with no transaction.
    c.send_raw(b"{not json".to_vec(), false)
        .await
        .expect("send");
    let r = wait_for(&mut c, &mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 454, "[{n}] {r}");
    // Missing transaction: 456 with no transaction.
    c.send(json!({"janus": "ping"}), false).await.expect("send");
    let r = wait_for(&mut c, &mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 456, "[{n}] {r}");
    assert!(r.get("transaction").is_none());
    // Wrong type of transaction: 467.
    c.send(json!({"janus": "ping", "transaction": 5}), false)
        .await
        .expect("send");
    let r = wait_for(&mut c, &mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 467, "[{n}] {r}");
    let cases: Vec<(Value, u64)> = vec![
        (req("attach", json!({})), 457),
        (req("keepalive", json!({"session_id": 424242})), 458),
    ];
    for (q, want) in cases {
        let r = call(&mut c, &mut st, q.clone()).await;
        assert_eq!(code(&r), want, "[{n}] {q} → {r}");
    }
    let sid = call(&mut c, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = call(
        &mut c,
        &mut st,
        req("attach", json!({"session_id": sid, "plugin": ECHO})),
    )
    .await["data"]["id"]
        .as_u64()
        .expect("hid");
    let cases: Vec<(Value, u64)> = vec![
        (req("frobnicate", json!({"session_id": sid})), 453),
        (
            req("keepalive", json!({"session_id": sid, "handle_id": 7})),
            459,
        ),
        (req("attach", json!({"session_id": sid})), 456),
        (
            req(
                "attach",
                json!({"session_id": sid, "plugin": "janus.plugin.nope"}),
            ),
            460,
        ),
        (req("attach", json!({"session_id": sid, "plugin": 5})), 467),
        (
            req("message", json!({"session_id": sid, "handle_id": hid})),
            456,
        ),
        (
            req(
                "message",
                json!({"session_id": sid, "handle_id": hid, "body": "x"}),
            ),
            467,
        ),
        (
            req(
                "message",
                json!({"session_id": sid, "handle_id": hid, "body": {}, "jsep": 1}),
            ),
            455,
        ),
        (
            req(
                "message",
                json!({"session_id": sid, "handle_id": hid, "body": {}, "jsep": {"type": "x", "sdp": "v=0"}}),
            ),
            464,
        ),
        (
            req("trickle", json!({"session_id": sid, "handle_id": hid})),
            456,
        ),
        (
            req(
                "trickle",
                json!({"session_id": sid, "handle_id": hid, "candidate": {}, "candidates": []}),
            ),
            454,
        ),
        (req("create", json!({"id": sid})), 468),
        (req("detach", json!({"session_id": sid})), 457),
    ];
    for (q, want) in cases {
        let r = call(&mut c, &mut st, q.clone()).await;
        assert_eq!(code(&r), want, "[{n}] {q} → {r}");
    }
    // Still serving.
    let r = call(&mut c, &mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong", "[{n}]");
    srv.running.shutdown().await;
}

/// Admin API over the transport's admin channel: secret required except for info/ping.
pub async fn admin_api<S: Setup>(setup: &S) {
    let srv = serve(setup, Options::default()).await;
    let mut c = setup.connect(&srv).await;
    let n = c.name();
    let mut st = Vec::new();
    let r = admin(&mut c, &mut st, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "[{n}] {r}");
    let r = admin(&mut c, &mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong", "[{n}] {r}");
    let r = admin(&mut c, &mut st, req("list_sessions", json!({}))).await;
    assert_eq!(code(&r), 403, "[{n}] {r}");
    let r = admin(
        &mut c,
        &mut st,
        req("list_sessions", json!({"admin_secret": "wrong"})),
    )
    .await;
    assert_eq!(code(&r), 403, "[{n}] {r}");
    let sid = call(&mut c, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = call(
        &mut c,
        &mut st,
        req("attach", json!({"session_id": sid, "plugin": ECHO})),
    )
    .await["data"]["id"]
        .as_u64()
        .expect("hid");
    let r = admin(
        &mut c,
        &mut st,
        req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert!(
        r["sessions"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(sid))),
        "[{n}] {r}"
    );
    let r = admin(
        &mut c,
        &mut st,
        req(
            "list_handles",
            json!({"admin_secret": ADMIN_SECRET, "session_id": sid}),
        ),
    )
    .await;
    assert_eq!(r["handles"], json!([hid]), "[{n}] {r}");
    let r = admin(
        &mut c,
        &mut st,
        req(
            "handle_info",
            json!({"admin_secret": ADMIN_SECRET, "session_id": sid, "handle_id": hid}),
        ),
    )
    .await;
    assert_eq!(r["info"]["plugin"], ECHO, "[{n}] {r}");
    let r = admin(
        &mut c,
        &mut st,
        req("create", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert_eq!(code(&r), 457, "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert_eq!(code(&r), 457, "[{n}] admin verb on the Janus API: {r}");
    let r = admin(
        &mut c,
        &mut st,
        req(
            "destroy_session",
            json!({"admin_secret": ADMIN_SECRET, "session_id": sid}),
        ),
    )
    .await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(code(&r), 458, "[{n}] {r}");
    srv.running.shutdown().await;
}

/// An idle session times out: the owner gets `timeout`, then the session is gone.
pub async fn session_timeout<S: Setup>(setup: &S) {
    let srv = serve(
        setup,
        Options {
            session_timeout: Some(2),
            ..Default::default()
        },
    )
    .await;
    let mut c = setup.connect(&srv).await;
    let n = c.name();
    let mut st = Vec::new();
    let sid = call(&mut c, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .expect("sid");
    call(
        &mut c,
        &mut st,
        req("attach", json!({"session_id": sid, "plugin": ECHO})),
    )
    .await;
    let t = wait_for(&mut c, &mut st, |v| v["janus"] == "timeout").await;
    assert_eq!(
        t,
        Some(json!({"janus": "timeout", "session_id": sid})),
        "[{n}]"
    );
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(code(&r), 458, "[{n}] {r}");
    let r = admin(
        &mut c,
        &mut st,
        req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert_eq!(
        r["sessions"],
        json!([]),
        "[{n}] handles and sessions freed: {r}"
    );
    srv.running.shutdown().await;
}

/// `apisecret` and stored tokens.
pub async fn auth<S: Setup>(setup: &S) {
    let srv = serve(
        setup,
        Options {
            api_secret: Some("sesame".into()),
            token_auth: true,
            ..Default::default()
        },
    )
    .await;
    let mut c = setup.connect(&srv).await;
    let n = c.name();
    let mut st = Vec::new();
    let r = call(&mut c, &mut st, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "[{n}] info needs no secret");
    let r = call(&mut c, &mut st, req("create", json!({}))).await;
    assert_eq!(code(&r), 403, "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req("create", json!({"apisecret": "sesame"})),
    )
    .await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    let r = admin(
        &mut c,
        &mut st,
        req(
            "add_token",
            json!({"admin_secret": ADMIN_SECRET, "token": "tok-echo", "plugins": [ECHO]}),
        ),
    )
    .await;
    assert_eq!(r["data"]["plugins"], json!([ECHO]), "[{n}] {r}");
    let r = admin(&mut c, &mut st, req("add_token", json!({"admin_secret": ADMIN_SECRET, "token": "tok-none", "plugins": ["janus.plugin.nope"]}))).await;
    assert_eq!(r["data"]["plugins"], json!([]), "[{n}] {r}");
    let sid = call(&mut c, &mut st, req("create", json!({"token": "tok-echo"}))).await["data"]
        ["id"]
        .as_u64()
        .expect("token create");
    let r = call(
        &mut c,
        &mut st,
        req(
            "attach",
            json!({"session_id": sid, "token": "tok-echo", "plugin": ECHO}),
        ),
    )
    .await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req(
            "attach",
            json!({"session_id": sid, "token": "tok-none", "plugin": ECHO}),
        ),
    )
    .await;
    assert_eq!(code(&r), 405, "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid, "token": "nope"})),
    )
    .await;
    assert_eq!(code(&r), 403, "[{n}] {r}");
    let r = admin(
        &mut c,
        &mut st,
        req(
            "remove_token",
            json!({"admin_secret": ADMIN_SECRET, "token": "tok-echo"}),
        ),
    )
    .await;
    assert_eq!(r["janus"], "success", "[{n}] {r}");
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid, "token": "tok-echo"})),
    )
    .await;
    assert_eq!(code(&r), 403, "[{n}] {r}");
    srv.running.shutdown().await;
}

/// A session created on transport `A` is claimed over transport `B`: its events follow.
pub async fn claim_across<SA: Setup, SB: Setup>(a: &SA, b: &SB) {
    let mut opts = Options::default();
    a.configure(&mut opts);
    b.configure(&mut opts);
    let srv = server::start(opts).await;
    let mut ca = a.connect(&srv).await;
    let mut cb = b.connect(&srv).await;
    let names = format!("{}→{}", ca.name(), cb.name());
    let (mut sa, mut sb) = (Vec::new(), Vec::new());
    let sid = call(&mut ca, &mut sa, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .expect("sid");
    let hid = call(
        &mut ca,
        &mut sa,
        req("attach", json!({"session_id": sid, "plugin": ECHO})),
    )
    .await["data"]["id"]
        .as_u64()
        .expect("hid");
    let r = call(&mut cb, &mut sb, req("claim", json!({"session_id": sid}))).await;
    assert_eq!(
        r,
        json!({"janus": "success", "session_id": sid, "transaction": r["transaction"]}),
        "[{names}]"
    );
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"video": false}}),
    );
    let t = m["transaction"].clone();
    let r = call(&mut cb, &mut sb, m).await;
    assert_eq!(r["janus"], "ack", "[{names}] {r}");
    if ca.name() == "http" && cb.name() == "http" {
        // Over HTTP, whoever polls the session's URL gets its events: two HTTP clients of one
        // session cannot be told apart (in Janus either). Only check that the event flows.
        let is_ev = |v: &Value| v["janus"] == "event" && v["transaction"] == t;
        let ev = match wait_for(&mut cb, &mut sb, is_ev).await {
            Some(ev) => Some(ev),
            None => wait_for(&mut ca, &mut sa, is_ev).await,
        };
        assert!(ev.is_some(), "[{names}] no event after the claim");
    } else {
        let is_ev = |v: &Value| v["janus"] == "event" && v["transaction"] == t;
        let ev = wait_for(&mut cb, &mut sb, is_ev).await;
        assert!(
            ev.is_some(),
            "[{names}] the event goes to the claiming transport"
        );
        let stray = wait_for_quiet(&mut ca, &mut sa, Duration::from_millis(300), |v| {
            v["janus"] == "event"
        })
        .await;
        assert!(
            stray.is_none(),
            "[{names}] the old owner still got an event: {stray:?}"
        );
    }
    srv.running.shutdown().await;
}

async fn wait_for_quiet<C: Client>(
    c: &mut C,
    stash: &mut Vec<Value>,
    d: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Option<Value> {
    if let Some(i) = stash.iter().position(&pred) {
        return Some(stash.remove(i));
    }
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return None;
        }
        let m = c.recv(left).await?;
        if pred(&m) {
            return Some(m);
        }
        stash.push(m);
    }
}
