//! The Unix sockets transport against real sockets, for both types.

mod common;

use common::*;
use jano_pfunix::SocketType::{self, Dgram, SeqPacket};
use serde_json::{json, Value};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::Duration;

async fn flow(kind: SocketType) {
    let srv = Srv::start(kind, kind, Core::default()).await;
    let c = srv.connect(kind, false).await;
    let mut st = Vec::new();
    let r = c.call(&mut st, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "{r}");
    assert!(r["transports"]["janus.transport.pfunix"].is_object(), "{r}");
    let (sid, hid) = session_with_echo(&c, &mut st).await;
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"audio": true}}),
    );
    let t = m["transaction"].clone();
    let r = c.call(&mut st, m).await;
    assert_eq!(r["janus"], "ack", "{r}");
    let ev = c
        .wait(&mut st, |v| v["janus"] == "event" && v["transaction"] == t)
        .await
        .expect("event");
    assert_eq!(ev["sender"], hid);
    assert_eq!(ev["plugindata"]["data"]["result"], "ok", "{ev}");
    let r = c
        .call(
            &mut st,
            req("detach", json!({"session_id": sid, "handle_id": hid})),
        )
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    let d = c.wait(&mut st, |v| v["janus"] == "detached").await;
    assert!(d.is_some(), "detached event");
    let r = c
        .call(&mut st, req("destroy", json!({"session_id": sid})))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    let r = c
        .call(&mut st, req("keepalive", json!({"session_id": sid})))
        .await;
    assert_eq!(code(&r), 458, "{r}");
    if kind == Dgram {
        // The DGRAM client owned no session any more: its entry is gone.
        assert!(
            eventually(WAIT, || srv.server.clients() == 0).await,
            "DGRAM client entry freed"
        );
    }
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_flow() {
    flow(SeqPacket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_flow() {
    flow(Dgram).await;
}

async fn admin(api: SocketType, admin: SocketType) {
    let srv = Srv::start(api, admin, Core::default()).await;
    let c = srv.connect(api, false).await;
    let a = srv.connect(admin, true).await;
    let mut st = Vec::new();
    let r = a.call(&mut st, req("info", json!({}))).await;
    assert_eq!(r["janus"], "server_info", "{r}");
    let r = a.call(&mut st, req("list_sessions", json!({}))).await;
    assert_eq!(code(&r), 403, "no secret: {r}");
    let r = a
        .call(
            &mut st,
            req("list_sessions", json!({"admin_secret": "nope"})),
        )
        .await;
    assert_eq!(code(&r), 403, "wrong secret: {r}");
    let (sid, _) = session_with_echo(&c, &mut st).await;
    assert_eq!(sessions(&a).await, vec![sid]);
    let r = a
        .call(
            &mut st,
            req("create", json!({"admin_secret": ADMIN_SECRET})),
        )
        .await;
    assert_eq!(code(&r), 457, "Janus verb on the admin socket: {r}");
    let r = c
        .call(
            &mut st,
            req("list_sessions", json!({"admin_secret": ADMIN_SECRET})),
        )
        .await;
    assert_eq!(code(&r), 457, "admin verb on the Janus API socket: {r}");
    // Admin DGRAM peers own nothing: no entry is kept for them.
    if api == SeqPacket {
        assert_eq!(srv.server.clients(), if admin == SeqPacket { 2 } else { 1 });
    }
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_seqpacket() {
    admin(SeqPacket, SeqPacket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_dgram() {
    admin(Dgram, Dgram).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mixed_types() {
    admin(SeqPacket, Dgram).await;
    admin(Dgram, SeqPacket).await;
}

async fn malformed(kind: SocketType) {
    let srv = Srv::start_with(kind, kind, Core::default(), |s| s.max_message = 16384).await;
    let c = srv.connect(kind, false).await;
    let a = srv.connect(kind, true).await;
    let mut st = Vec::new();
    c.send_raw(b"{not json").await.expect("send");
    let r = c
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 454, "{r}");
    assert!(r.get("transaction").is_none(), "{r}");
    // Wrong types still reach the core's checks.
    c.send(&json!({"janus": 5, "transaction": "x"})).await;
    let r = c
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert!(code(&r) > 400, "{r}");
    // An empty packet is bad input, not a disconnect.
    c.send_raw(b"").await.expect("send");
    let r = c
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 454, "{r}");
    // C clients that send the terminating NUL are understood, as by Janus.
    let t = tx();
    c.send_raw(format!("{{\"janus\":\"ping\",\"transaction\":\"{t}\"}}\0").as_bytes())
        .await
        .expect("send");
    let r = c
        .wait(&mut st, |v| v["transaction"] == t)
        .await
        .expect("pong");
    assert_eq!(r["janus"], "pong", "{r}");
    // Over the limit: a Janus error, not silence.
    let big = json!({"janus": "ping", "transaction": "big", "pad": "x".repeat(20000)});
    c.send(&big).await;
    let r = c
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 450, "{r}");
    assert!(
        r["error"]["reason"]
            .as_str()
            .unwrap_or("")
            .contains("16384"),
        "{r}"
    );
    assert_eq!(srv.server.too_large(), 1);
    // Under the limit but over Janus's 8 KiB: served.
    let r = c
        .call(&mut st, req("ping", json!({"pad": "y".repeat(12000)})))
        .await;
    assert_eq!(r["janus"], "pong", "{r}");
    // The admin socket too.
    a.send_raw(b"[1,").await.expect("send");
    let r = a
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 454, "{r}");
    a.send(&json!({"janus": "ping", "transaction": "big", "pad": "x".repeat(20000)}))
        .await;
    let r = a
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 450, "{r}");
    // Still serving.
    let r = c.call(&mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong");
    let r = a.call(&mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_malformed() {
    malformed(SeqPacket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_malformed() {
    malformed(Dgram).await;
}

/// With the default 1 MiB limit: a request of most of a megabyte is served, one over the limit
/// is answered with an error (when the kernel lets the client send that much at once).
async fn default_limit(kind: SocketType) {
    let srv = Srv::start(kind, kind, Core::default()).await;
    let c = srv.connect(kind, false).await;
    let granted = c.set_send_buffer(4 << 20);
    if granted < (2 << 20) + 65536 {
        eprintln!(
            "SKIPPED: the kernel grants a {granted}-byte send buffer (net.core.wmem_max): cannot send a 1 MiB packet"
        );
        srv.stop();
        return;
    }
    let mut st = Vec::new();
    let r = c
        .call(
            &mut st,
            req("ping", json!({"pad": "z".repeat(1000 * 1000)})),
        )
        .await;
    assert_eq!(r["janus"], "pong", "{r}");
    c.send(&json!({"janus": "ping", "transaction": "big", "pad": "x".repeat(1 << 20)}))
        .await;
    let r = c
        .wait(&mut st, |v| v["janus"] == "error")
        .await
        .expect("error");
    assert_eq!(code(&r), 450, "{r}");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_megabyte() {
    default_limit(SeqPacket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_megabyte() {
    default_limit(Dgram).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_file_replaced_and_permissions() {
    let dir = TempDir::new();
    let api = dir.path("api.sock");
    let admin = dir.path("admin.sock");
    // A stale socket file, as a crashed server leaves behind.
    drop(std::os::unix::net::UnixDatagram::bind(&api).expect("stale"));
    assert!(std::fs::metadata(&api).unwrap().file_type().is_socket());
    let rt = runtime(Core::default());
    let settings = jano_pfunix::Settings {
        enabled: true,
        api: Some(jano_pfunix::Endpoint {
            path: api.clone(),
            kind: SeqPacket,
            mode: 0o640,
        }),
        admin: Some(jano_pfunix::Endpoint {
            path: admin.clone(),
            kind: Dgram,
            mode: jano_pfunix::DEFAULT_ADMIN_MODE,
        }),
        ..Default::default()
    };
    let server = jano_pfunix::serve(&rt, settings.clone())
        .await
        .expect("serve over a stale file");
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&api), 0o640);
    assert_eq!(mode(&admin), 0o600);
    let c = Client::connect(SeqPacket, &api, &dir).await;
    let mut st = Vec::new();
    assert_eq!(
        c.call(&mut st, req("ping", json!({}))).await["janus"],
        "pong"
    );

    // A second server takes the paths over; stopping the first must not remove its files.
    let rt2 = runtime(Core::default());
    let server2 = jano_pfunix::serve(&rt2, settings.clone())
        .await
        .expect("second serve");
    server.stop();
    assert!(
        api.exists() && admin.exists(),
        "files of the second server kept"
    );
    let c2 = Client::connect(SeqPacket, &api, &dir).await;
    assert_eq!(
        c2.call(&mut st, req("ping", json!({}))).await["janus"],
        "pong"
    );
    server2.stop();
    assert!(!api.exists() && !admin.exists(), "stop() removes its files");
    rt.shutdown();
    rt2.shutdown();

    // Something that is not a socket is never deleted.
    std::fs::write(&api, b"precious").unwrap();
    let rt3 = runtime(Core::default());
    let e = jano_pfunix::serve(&rt3, settings)
        .await
        .err()
        .expect("refused");
    assert!(e.contains("not a socket"), "{e}");
    assert_eq!(std::fs::read(&api).unwrap(), b"precious");
    assert!(!admin.exists(), "nothing left behind by a failed start");
    rt3.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_too_long_is_an_error() {
    let dir = TempDir::new();
    let rt = runtime(Core::default());
    let settings = jano_pfunix::Settings {
        enabled: true,
        api: Some(jano_pfunix::Endpoint {
            path: dir.path(&"x".repeat(120)),
            kind: SeqPacket,
            mode: 0o660,
        }),
        ..Default::default()
    };
    assert!(jano_pfunix::serve(&rt, settings).await.is_err());
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_disconnect_destroys_sessions() {
    let srv = Srv::start(SeqPacket, SeqPacket, Core::default()).await;
    let a = srv.connect(SeqPacket, true).await;
    let c = srv.connect(SeqPacket, false).await;
    let mut st = Vec::new();
    let (sid, _) = session_with_echo(&c, &mut st).await;
    assert_eq!(sessions(&a).await, vec![sid]);
    drop(c);
    let mut left = vec![sid];
    for _ in 0..50 {
        left = sessions(&a).await;
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        left.is_empty(),
        "sessions die with the connection: {left:?}"
    );
    assert!(eventually(WAIT, || srv.server.clients() == 1).await);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_disconnect_starts_reclaim_window() {
    let srv = Srv::start(
        SeqPacket,
        SeqPacket,
        Core {
            reclaim_session_timeout: 30,
            ..Default::default()
        },
    )
    .await;
    let a = srv.connect(SeqPacket, true).await;
    let c = srv.connect(SeqPacket, false).await;
    let mut st = Vec::new();
    let (sid, hid) = session_with_echo(&c, &mut st).await;
    drop(c);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sessions(&a).await, vec![sid], "kept for the reclaim window");
    let c2 = srv.connect(SeqPacket, false).await;
    let r = c2
        .call(&mut st, req("claim", json!({"session_id": sid})))
        .await;
    assert_eq!(r["janus"], "success", "{r}");
    let m = req(
        "message",
        json!({"session_id": sid, "handle_id": hid, "body": {"video": true}}),
    );
    let t = m["transaction"].clone();
    assert_eq!(c2.call(&mut st, m).await["janus"], "ack");
    let ev = c2
        .wait(&mut st, |v| v["janus"] == "event" && v["transaction"] == t)
        .await;
    assert!(ev.is_some(), "events follow the claim");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_session_timeout_closes_connection() {
    let srv = Srv::start(
        SeqPacket,
        SeqPacket,
        Core {
            session_timeout: 1,
            ..Default::default()
        },
    )
    .await;
    let c = srv.connect(SeqPacket, false).await;
    let other = srv.connect(SeqPacket, false).await;
    let mut st = Vec::new();
    let (sid, _) = session_with_echo(&c, &mut st).await;
    let mut got_timeout = false;
    let mut eof = false;
    for _ in 0..10 {
        match c.recv_within(Duration::from_secs(1)).await {
            Got::Msg(v) => {
                if v == json!({"janus": "timeout", "session_id": sid}) {
                    got_timeout = true;
                }
            }
            Got::Eof => {
                eof = true;
                break;
            }
            Got::Nothing => {}
        }
    }
    assert!(got_timeout, "the timeout event is flushed before the close");
    assert!(eof, "the connection is closed after a session timeout");
    // Other connections are not affected.
    let r = other.call(&mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong");
    assert!(eventually(WAIT, || srv.server.clients() == 1).await);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_unbound_sender_refused() {
    let srv = Srv::start(Dgram, Dgram, Core::default()).await;
    let unbound = tokio::net::UnixDatagram::unbound().expect("unbound");
    let ping = req("ping", json!({})).to_string();
    unbound
        .send_to(ping.as_bytes(), &srv.api)
        .await
        .expect("send");
    unbound
        .send_to(ping.as_bytes(), &srv.admin)
        .await
        .expect("send");
    assert!(
        eventually(WAIT, || srv.server.refused() == 2).await,
        "refused: {}",
        srv.server.refused()
    );
    let mut buf = [0u8; 1024];
    let r = tokio::time::timeout(Duration::from_millis(200), unbound.recv(&mut buf)).await;
    assert!(r.is_err(), "nothing can come back to an unbound socket");
    // An abstract-namespace sender has no path either.
    #[cfg(target_os = "linux")]
    {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("jano-pfunix-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let s = std::os::unix::net::UnixDatagram::bind_addr(&addr).expect("abstract");
        s.send_to(ping.as_bytes(), &srv.api).expect("send");
        assert!(eventually(WAIT, || srv.server.refused() == 3).await);
    }
    // Bound clients are still served.
    let c = srv.connect(Dgram, false).await;
    let mut st = Vec::new();
    assert_eq!(
        c.call(&mut st, req("ping", json!({}))).await["janus"],
        "pong"
    );
    assert_eq!(srv.server.clients(), 0, "no entry for sessionless clients");
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_clients_are_freed_and_gone_peers_counted() {
    let srv = Srv::start(
        Dgram,
        Dgram,
        Core {
            session_timeout: 1,
            ..Default::default()
        },
    )
    .await;
    let a = srv.connect(Dgram, true).await;
    let mut st = Vec::new();
    // A client that disappears without a word: its session lives until it times out, and the
    // timeout event, which cannot be delivered, is counted.
    let c = srv.connect(Dgram, false).await;
    let (sid, _) = session_with_echo(&c, &mut st).await;
    assert_eq!(srv.server.clients(), 1);
    drop(c);
    assert_eq!(
        sessions(&a).await,
        vec![sid],
        "DGRAM clients are never 'gone'"
    );
    assert!(
        eventually(Duration::from_secs(5), || srv.server.clients() == 0).await,
        "entry freed when the last session ended"
    );
    assert!(eventually(WAIT, || srv.server.dropped() >= 1).await);
    assert!(sessions(&a).await.is_empty());
    // A live client gets its own timeout event.
    let c = srv.connect(Dgram, false).await;
    let (sid, _) = session_with_echo(&c, &mut st).await;
    let t = c.wait(&mut st, |v| v["janus"] == "timeout").await;
    assert_eq!(t, Some(json!({"janus": "timeout", "session_id": sid})));
    assert!(eventually(WAIT, || srv.server.clients() == 0).await);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_many_clients_one_socket() {
    let srv = Srv::start(Dgram, Dgram, Core::default()).await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(srv.connect(Dgram, false).await);
    }
    let mut ids = Vec::new();
    for c in &clients {
        let mut st = Vec::new();
        let (sid, hid) = session_with_echo(c, &mut st).await;
        ids.push((sid, hid));
    }
    assert_eq!(srv.server.clients(), 20);
    // Each client gets the events of its own session only.
    for (c, (sid, hid)) in clients.iter().zip(&ids) {
        let mut st: Vec<Value> = Vec::new();
        let m = req(
            "message",
            json!({"session_id": sid, "handle_id": hid, "body": {"audio": false}}),
        );
        let t = m["transaction"].clone();
        assert_eq!(c.call(&mut st, m).await["janus"], "ack");
        let ev = c
            .wait(&mut st, |v| v["janus"] == "event" && v["transaction"] == t)
            .await
            .expect("event");
        assert_eq!(ev["session_id"], *sid);
    }
    for (c, (sid, _)) in clients.iter().zip(&ids) {
        let mut st = Vec::new();
        let r = c
            .call(&mut st, req("destroy", json!({"session_id": sid})))
            .await;
        assert_eq!(r["janus"], "success");
    }
    assert!(eventually(WAIT, || srv.server.clients() == 0).await);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_from_jcfg_serves() {
    let dir = TempDir::new();
    let api = dir.path("j.sock");
    let text = format!(
        "general: {{\n enabled = true\n path = \"{}\"\n type = \"SOCK_DGRAM\"\n json = \"indented\"\n}}\n",
        api.display()
    );
    let j = jano_config::Jcfg::parse(&text, "janus.transport.pfunix.jcfg").unwrap();
    let settings = jano_pfunix::Settings::from_jcfg(&j).unwrap();
    assert!(settings.enabled && settings.admin.is_none());
    let rt = runtime(Core::default());
    let server = jano_pfunix::serve(&rt, settings).await.unwrap();
    let c = Client::connect(Dgram, &api, &dir).await;
    let t = tx();
    c.send(&json!({"janus": "ping", "transaction": t})).await;
    let mut buf = vec![0u8; 4096];
    let Client::Dgram(s, _) = &c else {
        unreachable!()
    };
    let n = tokio::time::timeout(WAIT, s.recv(&mut buf))
        .await
        .expect("reply")
        .unwrap();
    let text = std::str::from_utf8(&buf[..n]).unwrap();
    assert!(
        text.contains("\n   \"janus\": \"pong\""),
        "indented: {text}"
    );
    server.stop();
    rt.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_client_that_never_reads_does_not_hold_up_others() {
    let srv = Srv::start(SeqPacket, SeqPacket, Core::default()).await;
    let lazy = srv.connect(SeqPacket, false).await;
    // Pings until the sockets' buffers are full and the sends block: the server stops reading
    // from this client instead of queueing without bound.
    let mut sent = 0;
    let ping = req("ping", json!({})).to_string();
    while let Ok(Ok(())) =
        tokio::time::timeout(Duration::from_millis(300), lazy.send_raw(ping.as_bytes())).await
    {
        sent += 1;
        assert!(sent < 1_000_000, "the server never pushed back");
    }
    let c = srv.connect(SeqPacket, false).await;
    let mut st = Vec::new();
    let r = c.call(&mut st, req("ping", json!({}))).await;
    assert_eq!(r["janus"], "pong", "other clients are served");
    drop(lazy);
    assert!(eventually(WAIT, || srv.server.clients() == 1).await);
    srv.stop();
}

/// A response far larger than a socket's default send buffer (~200 KB) still goes out whole:
/// EchoTest's Admin API hook echoes the request back.
async fn large_response(kind: SocketType) {
    let srv = Srv::start(kind, kind, Core::default()).await;
    let a = srv.connect(kind, true).await;
    if a.set_send_buffer(4 << 20) < (1 << 20) + 65536 {
        eprintln!("SKIPPED: the kernel grants too small a send buffer (net.core.wmem_max)");
        srv.stop();
        return;
    }
    let pad = "e".repeat(600 * 1000);
    let mut st = Vec::new();
    let r = a
        .call(
            &mut st,
            req(
                "message_plugin",
                json!({"admin_secret": ADMIN_SECRET, "plugin": ECHOTEST, "request": {"pad": pad}}),
            ),
        )
        .await;
    assert_eq!(r["janus"], "success", "{}", &r.to_string()[..200]);
    assert_eq!(
        r["response"]["pad"].as_str().map(str::len),
        Some(600 * 1000)
    );
    assert_eq!(srv.server.dropped(), 0);
    srv.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seqpacket_large_response() {
    large_response(SeqPacket).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgram_large_response() {
    large_response(Dgram).await;
}
