//! Session lifetime (timeouts, what keeps a session alive) and clean shutdown.

mod common;

use common::*;
use hyper::Method;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http_session_times_out_and_frees_its_handle() {
    let s = Server::start(Opts {
        session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    // A second session, exempted from the timeout by the Admin API.
    let forever = s.create().await;
    let v = s
        .admin(
            &format!("/admin/{forever}"),
            json!({"janus":"set_session_timeout","timeout":0}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    assert_eq!(s.running().runtime.counts(), (2, 1));

    s.wait_session_listed(sid, false, Duration::from_secs(6))
        .await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","transaction":"k"}),
        )
        .await;
    assert_error(&v, 458);
    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"hangup","transaction":"h"}),
        )
        .await;
    assert_error(&v, 458);
    assert!(
        s.list_sessions().await.contains(&forever),
        "timeout 0 = never"
    );
    assert_eq!(s.running().runtime.counts(), (1, 0), "the handle is freed");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_long_polls_keep_a_session_alive() {
    let s = Server::start(Opts {
        session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    let sid = s.create().await;
    let idle = s.create().await;
    // Poll for about twice the timeout; each poll is abandoned after 400 ms and a new one
    // started (each start counts as activity). The admin checks do not refresh anything.
    let until = tokio::time::Instant::now() + Duration::from_millis(4500);
    while tokio::time::Instant::now() < until {
        let r = http_request_timeout(
            s.http,
            Method::GET,
            &format!("/janus/{sid}"),
            &[],
            None,
            Duration::from_millis(400),
        )
        .await;
        if let Ok(r) = r {
            // Only a keepalive could come back early (nothing else happens on it).
            assert_ne!(
                r.json()["janus"],
                "timeout",
                "session timed out while polled"
            );
        }
    }
    let sessions = s.list_sessions().await;
    assert!(sessions.contains(&sid), "polled session must be alive");
    assert!(
        !sessions.contains(&idle),
        "the unpolled one timed out meanwhile"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_session_timeout_event_keeps_the_socket() {
    let s = Server::start(Opts {
        session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    let _hid = c.attach(sid).await;
    let ev = c
        .next_json(Duration::from_secs(6))
        .await
        .expect("timeout event on the socket");
    assert_eq!(ev, json!({"janus":"timeout","session_id":sid}));
    // The socket stays open and usable.
    let r = c.request(json!({"janus":"ping","transaction":"p"})).await;
    assert_eq!(r["janus"], "pong");
    let r = c
        .request(json!({"janus":"keepalive","session_id":sid,"transaction":"k"}))
        .await;
    assert_error(&r, 458);
    assert_eq!(s.running().runtime.counts(), (0, 0));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalives_keep_a_websocket_session_alive() {
    let s = Server::start(Opts {
        session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    let mut c = s.ws().await;
    let sid = c.create().await;
    for i in 0..5 {
        tokio::time::sleep(Duration::from_millis(800)).await;
        let r = c
            .request(json!({"janus":"keepalive","session_id":sid,"transaction":format!("k{i}")}))
            .await;
        assert_eq!(r["janus"], "ack", "keepalive {i}: {r}");
    }
    assert!(s.list_sessions().await.contains(&sid));
    c.close().await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clean_shutdown_closes_sockets_and_listeners() {
    let mut s = Server::default().await;
    let mut c1 = s.ws().await;
    let sid = c1.create().await;
    let _hid = c1.attach(sid).await;
    let mut c2 = s.ws().await;
    let mut admin = s.admin_ws().await;
    let http_sid = s.create().await;
    let (http, ws, admin_http, admin_ws) = (s.http, s.ws, s.admin_http, s.admin_ws);
    // A long poll pending across the shutdown must end (an answer or a closed connection).
    let poll_path = format!("/janus/{http_sid}");
    let poll = tokio::spawn(async move {
        http_request_timeout(
            http,
            Method::GET,
            &poll_path,
            &[],
            None,
            Duration::from_secs(20),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!poll.is_finished(), "poll returned with nothing queued");

    let running = s.running.take().unwrap();
    let runtime = running.runtime.clone();
    tokio::time::timeout(IO_TIMEOUT, running.shutdown())
        .await
        .expect("shutdown hangs");
    assert_eq!(runtime.counts(), (0, 0), "every session destroyed");

    for (name, c) in [("c1", &mut c1), ("c2", &mut c2), ("admin", &mut admin)] {
        match c.next_json(Duration::from_secs(5)).await {
            Err(WsEnd::Closed) | Err(WsEnd::Error(_)) => {}
            Err(WsEnd::Timeout) => panic!("{name}: socket not closed by shutdown"),
            Ok(v) => {
                // Nothing is owed to the client, but if something arrives the close must follow.
                let end = c.next_json(Duration::from_secs(5)).await;
                assert!(
                    matches!(end, Err(WsEnd::Closed) | Err(WsEnd::Error(_))),
                    "{name}: got {v} and then {end:?}"
                );
            }
        }
    }

    for (name, addr) in [
        ("http", http),
        ("ws", ws),
        ("admin_http", admin_http),
        ("admin_ws", admin_ws),
    ] {
        let stopped = wait_until(Duration::from_secs(5), || async move {
            tokio::net::TcpStream::connect(addr).await.is_err()
        })
        .await;
        assert!(stopped, "{name} listener still accepting after shutdown");
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .expect("pending long poll still hanging after shutdown")
        .unwrap();
    if let Ok(r) = ended {
        assert_ne!(r.status, hyper::StatusCode::INTERNAL_SERVER_ERROR, "{r:?}");
    }
    // HTTP requests fail rather than being served.
    let r = http_request(
        http,
        Method::POST,
        "/janus",
        &[],
        Some(br#"{"janus":"ping","transaction":"p"}"#.to_vec()),
    )
    .await;
    assert!(r.is_err(), "HTTP still served after shutdown: {r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lowering_the_global_timeout_applies_to_existing_sessions() {
    let s = Server::default().await;
    let sid = s.create().await;
    let v = s
        .admin("/admin", json!({"janus":"set_session_timeout","timeout":1}))
        .await;
    assert_eq!(v["timeout"], 1, "{v}");
    s.wait_session_listed(sid, false, Duration::from_secs(5))
        .await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_session_timeout_override_expires_that_session_only() {
    let s = Server::default().await;
    let short = s.create().await;
    let other = s.create().await;
    let v = s
        .admin(
            &format!("/admin/{short}"),
            json!({"janus":"set_session_timeout","timeout":1}),
        )
        .await;
    assert_eq!(v["janus"], "success", "{v}");
    s.wait_session_listed(short, false, Duration::from_secs(5))
        .await;
    assert!(s.list_sessions().await.contains(&other));
    s.shutdown().await;
}
