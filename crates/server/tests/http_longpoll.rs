//! HTTP long polls: concurrent polls, the `timeout` event to a pending poll, polls and claims.

mod common;

use common::*;
use hyper::StatusCode;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

/// Gives spawned polls time to reach the server and start waiting. This orders the test's
/// steps; nothing is asserted about how long anything takes.
async fn let_polls_start() {
    tokio::time::sleep(Duration::from_millis(400)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_concurrent_polls_both_complete_on_one_event() {
    let s = Arc::new(Server::default().await);
    let sid = s.create().await;
    let hid = s.attach(sid).await;

    let p1 = {
        let s = s.clone();
        tokio::spawn(async move { s.poll(sid, "", Duration::from_secs(15)).await })
    };
    let p2 = {
        let s = s.clone();
        tokio::spawn(async move { s.poll(sid, "", Duration::from_secs(15)).await })
    };
    let_polls_start().await;
    assert!(
        !p1.is_finished() && !p2.is_finished(),
        "polls returned with nothing queued"
    );

    let v = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"transaction":"m1"}),
        )
        .await;
    assert_eq!(v["janus"], "ack", "{v}");

    let r1 = tokio::time::timeout(Duration::from_secs(8), p1)
        .await
        .expect("first poll not completed by the event")
        .unwrap();
    let r2 = tokio::time::timeout(Duration::from_secs(8), p2)
        .await
        .expect("second poll not completed by the event")
        .unwrap();
    r1.assert_json_200();
    r2.assert_json_200();
    let (a, b) = (r1.json(), r2.json());
    let (event, other) = if a["janus"] == "event" {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(
        event["janus"], "event",
        "one poll gets the event: {event} / {other}"
    );
    assert_eq!(event["transaction"], "m1");
    assert_eq!(event["sender"], hid);
    assert_eq!(
        other,
        json!({"janus":"keepalive"}),
        "the other gets the bare keepalive"
    );

    let s = Arc::try_unwrap(s).ok().expect("server still shared");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_polls_with_maxev_get_array_keepalive() {
    let s = Arc::new(Server::default().await);
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let polls: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.poll(sid, "maxev=3", Duration::from_secs(15)).await })
        })
        .collect();
    let_polls_start().await;
    s.post(
        &format!("/janus/{sid}/{hid}"),
        json!({"janus":"message","body":{"audio":true},"transaction":"m1"}),
    )
    .await;
    let mut answers: Vec<Value> = Vec::new();
    for p in polls {
        let r = tokio::time::timeout(Duration::from_secs(8), p)
            .await
            .expect("poll not completed")
            .unwrap();
        r.assert_json_200();
        answers.push(r.json());
    }
    for a in &answers {
        assert!(a.is_array(), "maxev>1 always gives an array: {a}");
    }
    let events: Vec<&Value> = answers.iter().flat_map(|a| a.as_array().unwrap()).collect();
    assert!(
        events.iter().any(|e| e["janus"] == "event"),
        "event delivered: {answers:?}"
    );
    assert!(
        answers.contains(&json!([{"janus":"keepalive"}])),
        "the other poll gets [keepalive]: {answers:?}"
    );
    let s = Arc::try_unwrap(s).ok().expect("server still shared");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_poll_receives_timeout_event() {
    let s = Server::start(Opts {
        session_timeout: Some(2),
        ..Default::default()
    })
    .await;
    let sid = s.create().await;
    let _hid = s.attach(sid).await;
    // The poll refreshes the session only when it starts; then the session idles out.
    let r = s.poll(sid, "", Duration::from_secs(8)).await;
    r.assert_json_200();
    let v = r.json();
    assert_eq!(
        v,
        json!({"janus":"timeout","session_id":sid}),
        "timeout event expected"
    );

    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"keepalive","transaction":"k"}),
        )
        .await;
    assert_error(&v, 458);
    let r = s.poll(sid, "", IO_TIMEOUT).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(s.running().runtime.counts(), (0, 0));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_queue_until_polled() {
    let s = Server::default().await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    for t in ["q1", "q2"] {
        s.post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus":"message","body":{"audio":true},"transaction":t}),
        )
        .await;
    }
    // One event per poll with the default maxev, in order.
    let a = s.poll_json(sid, "").await;
    let b = s.poll_json(sid, "").await;
    assert_eq!(a["transaction"], "q1", "{a}");
    assert_eq!(b["transaction"], "q2", "{b}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_completes_pending_poll() {
    // A poll waiting on a session that is destroyed must not hang for 30 s.
    let s = Arc::new(Server::default().await);
    let sid = s.create().await;
    let p = {
        let s = s.clone();
        tokio::spawn(async move { s.poll(sid, "", Duration::from_secs(15)).await })
    };
    let_polls_start().await;
    let v = s
        .post(
            &format!("/janus/{sid}"),
            json!({"janus":"destroy","transaction":"d"}),
        )
        .await;
    assert_eq!(v["janus"], "success");
    let r = tokio::time::timeout(Duration::from_secs(8), p)
        .await
        .expect("pending poll not completed by destroy")
        .unwrap();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"janus":"keepalive"}));
    let s = Arc::try_unwrap(s).ok().expect("server still shared");
    s.shutdown().await;
}
