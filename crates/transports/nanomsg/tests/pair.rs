//! The transport against a Rust pair v0 peer (and raw sockets for the exact bytes): framing,
//! bind and connect modes over tcp:// and ipc://, one peer at a time, the Admin API, bad
//! input, events kept for the next peer, stale socket files and stop.

mod common;

use common::*;
use jano_config::Jcfg;
use jano_nanomsg::client::{PairClient, PairListener, RecvError};
use jano_nanomsg::{serve, Address, Mode, Settings};
use serde_json::{json, Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// ---------------------------------------------------------------------------------------------
// Wire format, byte by byte
// ---------------------------------------------------------------------------------------------

async fn raw_exchange<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    ipc: bool,
) {
    let mut h = [0u8; 8];
    s.write_all(&[0, b'S', b'P', 0, 0x00, 0x10, 0, 0])
        .await
        .unwrap();
    tokio::time::timeout(WAIT, s.read_exact(&mut h))
        .await
        .expect("header in time")
        .unwrap();
    assert_eq!(h, [0, b'S', b'P', 0, 0x00, 0x10, 0, 0], "pair v0 header");
    let body = br#"{"janus":"ping","transaction":"raw"}"#;
    let mut frame = Vec::new();
    if ipc {
        frame.push(1);
    }
    frame.extend_from_slice(&(body.len() as u64).to_be_bytes());
    frame.extend_from_slice(body);
    s.write_all(&frame).await.unwrap();
    if ipc {
        // The draft's message type 0 is accepted too.
        frame[0] = 0;
        s.write_all(&frame).await.unwrap();
    }
    for _ in 0..if ipc { 2 } else { 1 } {
        if ipc {
            let mut ty = [0u8; 1];
            s.read_exact(&mut ty).await.unwrap();
            assert_eq!(ty, [1], "in-band message type, as nanomsg and nng send it");
        }
        let mut len = [0u8; 8];
        tokio::time::timeout(WAIT, s.read_exact(&mut len))
            .await
            .expect("reply in time")
            .unwrap();
        let len = u64::from_be_bytes(len) as usize;
        let mut payload = vec![0u8; len];
        s.read_exact(&mut payload).await.unwrap();
        let v: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v, json!({"janus":"pong","transaction":"raw"}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_bytes_tcp() {
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, tcp_any_port())), None))
        .await
        .unwrap();
    let addr = srv.api_tcp_addr().unwrap();
    raw_exchange(tokio::net::TcpStream::connect(addr).await.unwrap(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wire_bytes_ipc() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let rt = runtime(60);
    let _srv = serve(&rt, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .unwrap();
    let Address::Ipc(p) = &a else { unreachable!() };
    raw_exchange(tokio::net::UnixStream::connect(p).await.unwrap(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_protocols_are_refused() {
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, tcp_any_port())), None))
        .await
        .unwrap();
    let a = reach(&tcp_any_port(), srv.api_tcp_addr());
    // nng's pair1 (0x11) and a req socket (0x30): the connection is closed after the headers.
    for proto in [0x0011u16, 0x0030] {
        let mut c = PairClient::dial_as(&a, proto)
            .await
            .expect("headers exchanged");
        let _ = c.send_json(&req("ping", json!({}))).await;
        assert_eq!(
            c.recv(WAIT).await,
            Err(RecvError::Closed),
            "proto {proto:#x}"
        );
    }
    // Not SP at all.
    let Address::Tcp { host, port } = &a else {
        unreachable!()
    };
    let mut s = tokio::net::TcpStream::connect((host.as_str(), *port))
        .await
        .unwrap();
    s.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(WAIT, s.read_to_end(&mut buf))
        .await
        .expect("closed in time");
    // Closed: a clean end, or a reset since our request bytes were left unread.
    assert!(
        n.as_ref().map_or_else(
            |e| e.kind() == std::io::ErrorKind::ConnectionReset,
            |_| true
        ),
        "{n:?}"
    );
    // The pair is free again for a real peer.
    let mut c = dial_retry(&a).await;
    conversation(&mut c).await;
}

// ---------------------------------------------------------------------------------------------
// Bind and connect, tcp and ipc
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_tcp() {
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, tcp_any_port())), None))
        .await
        .unwrap();
    let mut c = dial_retry(&reach(&tcp_any_port(), srv.api_tcp_addr())).await;
    conversation(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bind_ipc() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .unwrap();
    let mut c = dial_retry(&a).await;
    conversation(&mut c).await;
    srv.stop();
    let Address::Ipc(p) = &a else { unreachable!() };
    assert!(!p.exists(), "stop removes the socket file");
    // The peer's connection is closed by stop.
    assert_eq!(c.recv(WAIT).await, Err(RecvError::Closed));
}

async fn connect_mode(listen_on: Address) {
    let l = PairListener::bind(&listen_on).await.unwrap();
    let target = l.address().unwrap();
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Connect, target)), None))
        .await
        .unwrap();
    let mut c = tokio::time::timeout(WAIT, l.accept())
        .await
        .expect("jano dials")
        .unwrap();
    conversation(&mut c).await;
    // A session that outlives its peer: the transport never reports it gone.
    let mut st = Vec::new();
    let sid = call(&mut c, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .unwrap();
    c.close().await;
    let mut c = tokio::time::timeout(Duration::from_secs(10), l.accept())
        .await
        .expect("jano dials again after its peer left")
        .unwrap();
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(r["janus"], "ack", "{r}");
    conversation(&mut c).await;
    srv.stop();
    assert_eq!(c.recv(WAIT).await, Err(RecvError::Closed), "stop closes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_tcp() {
    connect_mode(tcp_any_port()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_ipc() {
    let dir = TempDir::new();
    connect_mode(dir.ipc("peer.ipc")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_before_the_peer_is_there() {
    let dir = TempDir::new();
    let a = dir.ipc("late.ipc");
    let rt = runtime(60);
    let _srv = serve(&rt, settings(Some(ep(Mode::Connect, a.clone())), None))
        .await
        .expect("starts without its peer");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let l = PairListener::bind(&a).await.unwrap();
    let mut c = tokio::time::timeout(Duration::from_secs(10), l.accept())
        .await
        .expect("jano keeps dialing")
        .unwrap();
    conversation(&mut c).await;
}

// ---------------------------------------------------------------------------------------------
// One peer at a time
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_peer_at_a_time() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .unwrap();
    let mut first = dial_retry(&a).await;
    assert!(srv.peer_connected(false));
    // A second connection is closed without a protocol header.
    match PairClient::dial(&a).await {
        Err(_) => {}
        Ok(mut second) => {
            assert_eq!(second.recv(WAIT).await, Err(RecvError::Closed));
        }
    }
    // The first peer is undisturbed.
    let mut st = Vec::new();
    let sid = call(&mut first, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .unwrap();
    first.close().await;
    until("the peer is let go", || !srv.peer_connected(false)).await;
    // The next peer takes over the same transport instance: the session is there.
    let mut next = dial_retry(&a).await;
    let r = call(
        &mut next,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let (_, _) = create_attach_message(&mut next, &mut st).await;
}

// ---------------------------------------------------------------------------------------------
// Admin API
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_channel() {
    let dir = TempDir::new();
    let api = dir.ipc("api.ipc");
    let rt = runtime(60);
    let srv = serve(
        &rt,
        settings(
            Some(ep(Mode::Bind, api.clone())),
            Some(ep(Mode::Bind, tcp_any_port())),
        ),
    )
    .await
    .unwrap();
    let admin_addr = reach(&tcp_any_port(), srv.admin_tcp_addr());
    let mut c = dial_retry(&api).await;
    let mut ad = PairClient::dial(&admin_addr).await.unwrap();
    let (mut st, mut sa) = (Vec::new(), Vec::new());
    let sid = call(&mut c, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .unwrap();
    let r = call(&mut ad, &mut sa, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "info needs no secret: {r}");
    let r = call(&mut ad, &mut sa, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong", "{r}");
    let r = call(&mut ad, &mut sa, req("list_sessions", json!({}))).await;
    assert_eq!(code(&r), 403, "{r}");
    let r = call(
        &mut ad,
        &mut sa,
        req("list_sessions", json!({"admin_secret": "wrong"})),
    )
    .await;
    assert_eq!(code(&r), 403, "{r}");
    let r = call(
        &mut ad,
        &mut sa,
        req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert_eq!(r["sessions"], json!([sid]), "{r}");
    // Admin verbs are not Janus API verbs, and the other way round.
    let r = call(
        &mut c,
        &mut st,
        req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert_eq!(code(&r), 457, "{r}");
    let r = call(
        &mut ad,
        &mut sa,
        req("create", json!({"admin_secret": ADMIN_SECRET})),
    )
    .await;
    assert_eq!(code(&r), 457, "{r}");
    // Malformed on the admin socket: 454, and it keeps serving.
    ad.send(b"{nope").await.unwrap();
    let r = ad.recv_json(WAIT).await.expect("error");
    assert_eq!(code(&r), 454, "{r}");
    let r = call(
        &mut ad,
        &mut sa,
        req(
            "destroy_session",
            json!({"admin_secret": ADMIN_SECRET, "session_id": sid}),
        ),
    )
    .await;
    assert_eq!(r["janus"], "success", "{r}");
    let r = call(
        &mut c,
        &mut st,
        req("keepalive", json!({"session_id": sid})),
    )
    .await;
    assert_eq!(code(&r), 458, "{r}");
}

// ---------------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversize_messages() {
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, tcp_any_port())), None))
        .await
        .unwrap();
    let mut c = dial_retry(&reach(&tcp_any_port(), srv.api_tcp_addr())).await;
    let mut st = Vec::new();
    for bad in [
        &b"{not json"[..],
        b"",
        b"\xff\xfe",
        b"{\"janus\":\"ping\",\"transaction\":\"a\"} trailing",
    ] {
        c.send(bad).await.unwrap();
        let r = c.recv_json(WAIT).await.expect("an error");
        assert_eq!(code(&r), 454, "{r}");
        assert!(r.get("transaction").is_none(), "{r}");
    }
    // Not an object / wrong types: the core's codes.
    c.send(b"[1,2]").await.unwrap();
    let r = c.recv_json(WAIT).await.expect("an error");
    assert_eq!(code(&r), 456, "{r}");
    c.send_json(&json!({"janus": "ping", "transaction": 5}))
        .await
        .unwrap();
    let r = c.recv_json(WAIT).await.expect("an error");
    assert_eq!(code(&r), 467, "{r}");
    // Larger than Janus's 8192-byte buffer, well within ours: served.
    let big = req("ping", json!({"padding": "x".repeat(200_000)}));
    let r = call(&mut c, &mut st, big).await;
    assert_eq!(r["janus"], "pong", "{r}");
    // Over 1 MiB: an error, never a silent truncation, and the stream stays in step.
    let huge = req(
        "ping",
        json!({"padding": "x".repeat(jano_nanomsg::MAX_MESSAGE)}),
    );
    c.send_json(&huge).await.unwrap();
    let r = c.recv_json(WAIT).await.expect("an error");
    assert_eq!(code(&r), 450, "{r}");
    assert!(
        r["error"]["reason"].as_str().unwrap().contains("too large"),
        "{r}"
    );
    let r = call(&mut c, &mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong", "still serving");
    // An unknown ipc/tcp framing violation closes the connection; the pair is free again.
    c.send_raw(&[0xff; 8]).await.unwrap(); // a length of 2^64-1: answered, then skipped
    let r = c.recv_json(WAIT).await.expect("an error");
    assert_eq!(code(&r), 450, "{r}");
    c.close().await;
    let mut c = dial_retry(&reach(&tcp_any_port(), srv.api_tcp_addr())).await;
    conversation(&mut c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ipc_message_type_closes_the_connection() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let rt = runtime(60);
    let _srv = serve(&rt, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .unwrap();
    let mut c = dial_retry(&a).await;
    c.send_raw(&[7, 0, 0, 0, 0, 0, 0, 0, 2, b'{', b'}'])
        .await
        .unwrap();
    assert_eq!(c.recv(WAIT).await, Err(RecvError::Closed));
    let mut c = dial_retry(&a).await;
    conversation(&mut c).await;
}

// ---------------------------------------------------------------------------------------------
// Events while no peer is connected
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_wait_for_the_next_peer() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let rt = runtime(1);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .unwrap();
    let mut c = dial_retry(&a).await;
    let mut st = Vec::new();
    let sid = call(&mut c, &mut st, req("create", json!({}))).await["data"]["id"]
        .as_u64()
        .unwrap();
    c.close().await;
    until("the peer is let go", || !srv.peer_connected(false)).await;
    // The session times out with nobody connected: its `timeout` event is kept.
    until("the timeout event is buffered", || srv.buffered(false) == 1).await;
    let mut c = PairClient::dial(&a).await.unwrap();
    let t = c.recv_json(WAIT).await.expect("the buffered event");
    assert_eq!(t, json!({"janus": "timeout", "session_id": sid}));
    assert_eq!(srv.buffered(false), 0);
    assert_eq!(srv.dropped(false), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffer_overflow_is_counted() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let rt = runtime(1);
    let srv = serve(
        &rt,
        Settings {
            outbox_limit: 3,
            ..settings(Some(ep(Mode::Bind, a.clone())), None)
        },
    )
    .await
    .unwrap();
    let mut c = dial_retry(&a).await;
    let mut st = Vec::new();
    let mut sids = Vec::new();
    for _ in 0..5 {
        let r = call(&mut c, &mut st, req("create", json!({}))).await;
        sids.push(r["data"]["id"].as_u64().unwrap());
    }
    c.close().await;
    until("the peer is let go", || !srv.peer_connected(false)).await;
    until("five timeouts, two dropped", || srv.dropped(false) == 2).await;
    assert_eq!(srv.buffered(false), 3);
    let mut c = PairClient::dial(&a).await.unwrap();
    for _ in 0..3 {
        let t = c.recv_json(WAIT).await.expect("a buffered event");
        assert_eq!(t["janus"], "timeout", "{t}");
        assert!(sids.contains(&t["session_id"].as_u64().unwrap()));
    }
    assert_eq!(
        c.recv(Duration::from_millis(300)).await,
        Err(RecvError::Timeout)
    );
}

// ---------------------------------------------------------------------------------------------
// Socket files, start-up errors, configuration
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_socket_files() {
    let dir = TempDir::new();
    let a = dir.ipc("api.ipc");
    let Address::Ipc(p) = a.clone() else {
        unreachable!()
    };
    // A leftover of an earlier run: a socket file nobody listens on.
    drop(std::os::unix::net::UnixListener::bind(&p).unwrap());
    assert!(p.exists());
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .expect("a stale file is replaced");
    let mut c = dial_retry(&a).await;
    conversation(&mut c).await;
    // A live listener is not taken over.
    let rt2 = runtime(60);
    let err = serve(&rt2, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .err()
        .expect("refused");
    assert!(err.contains("listening"), "{err}");
    srv.stop();
    assert!(!p.exists());
    // A file that is not a socket is never removed.
    std::fs::write(&p, b"keep me").unwrap();
    let err = serve(&rt2, settings(Some(ep(Mode::Bind, a.clone())), None))
        .await
        .err()
        .expect("refused");
    assert!(err.contains("not a socket"), "{err}");
    assert_eq!(std::fs::read(&p).unwrap(), b"keep me");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_start_cleans_up() {
    let dir = TempDir::new();
    let api = dir.ipc("api.ipc");
    let Address::Ipc(p) = api.clone() else {
        unreachable!()
    };
    let rt = runtime(60);
    // The admin socket cannot bind (a busy TCP port): the API's socket file is removed again.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let err = serve(
        &rt,
        settings(
            Some(ep(Mode::Bind, api.clone())),
            Some(ep(
                Mode::Bind,
                Address::Tcp {
                    host: "127.0.0.1".into(),
                    port,
                },
            )),
        ),
    )
    .await
    .err()
    .expect("admin bind fails");
    assert!(err.contains("binding"), "{err}");
    assert!(!p.exists(), "no socket file left behind");
}

#[test]
fn settings_from_jcfg() {
    let parse = |t: &str| Settings::from_jcfg(&Jcfg::parse(t, "nanomsg.jcfg").unwrap());
    let s = parse("general: { enabled = false }").unwrap();
    assert!(!s.enabled);
    let s = parse("general: { enabled = true, address = \"ipc:///tmp/janus.ipc\" }").unwrap();
    assert!(s.enabled);
    let api = s.api.unwrap();
    assert_eq!(api.mode, Mode::Bind);
    assert_eq!(api.address, Address::Ipc("/tmp/janus.ipc".into()));
    assert!(s.admin.is_none());
    assert_eq!(s.max_message, jano_nanomsg::MAX_MESSAGE);
    let s = parse(
        "general: { enabled = true, mode = \"connect\", address = \"tcp://127.0.0.1:5555\", json = \"indented\" }
         admin: { admin_enabled = true, admin_mode = \"bind\", admin_address = \"ipc:///tmp/a.ipc\" }",
    )
    .unwrap();
    assert_eq!(s.api.as_ref().unwrap().mode, Mode::Connect);
    assert_eq!(s.json, jano_api::json::JsonFormat::Indented);
    assert_eq!(s.admin.unwrap().address, Address::Ipc("/tmp/a.ipc".into()));
    // Admin API only, as Janus allows.
    let s = parse(
        "general: { enabled = false }
         admin: { admin_enabled = true, admin_address = \"tcp://127.0.0.1:7555\" }",
    )
    .unwrap();
    assert!(s.enabled && s.api.is_none() && s.admin.is_some());
    for bad in [
        "general: { enabled = true }",
        "general: { enabled = true, address = \"udp://x:1\" }",
        "general: { enabled = true, address = \"ipc:///tmp/x\", mode = \"both\" }",
        "general: { enabled = true, address = \"ipc:///tmp/x\", json = \"pretty\" }",
        "general: { enabled = false }\nadmin: { admin_enabled = true }",
        "general: { enabled = true, address = \"ipc:///tmp/x\" }\nadmin: { admin_enabled = true, admin_address = \"ipc:///tmp/x\" }",
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_keep_their_order() {
    let rt = runtime(60);
    let srv = serve(&rt, settings(Some(ep(Mode::Bind, tcp_any_port())), None))
        .await
        .unwrap();
    let mut c = dial_retry(&reach(&tcp_any_port(), srv.api_tcp_addr())).await;
    // Many requests written back to back in one buffer: every one answered, in order.
    let n = 2000;
    let mut bytes = Vec::new();
    for i in 0..n {
        let body = json!({"janus": "ping", "transaction": format!("p{i}")}).to_string();
        bytes.extend_from_slice(&(body.len() as u64).to_be_bytes());
        bytes.extend_from_slice(body.as_bytes());
    }
    c.send_raw(&bytes).await.unwrap();
    for i in 0..n {
        let r = c.recv_json(WAIT).await.expect("a pong");
        assert_eq!(r, json!({"janus": "pong", "transaction": format!("p{i}")}));
    }
    assert_eq!(srv.dropped(false), 0);
}
