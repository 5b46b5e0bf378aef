//! The Admin API's media setters reach PeerConnections that are already running (before, they
//! only changed the core's copy, and running PeerConnections kept the old values).

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

/// An EchoTest PeerConnection with audio flowing; returns the client and the audio mid.
async fn running_echo(gw: &mut Gw, sid: u64, hid: u64) -> (Client, str0m::media::Mid) {
    let mut client = Client::new().await;
    let (offer, pending, mids) = client.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, true).await;
    client.accept_answer(pending, &answer);
    assert!(client.run_until(WAIT, |c| c.connected).await, "connected");
    let mid = mids[0];
    let back = client.echo_round(mid, b'a', 5, WAIT).await;
    assert_eq!(back.len(), 5, "audio echoed");
    gw.event("media receiving", |e| {
        e["janus"] == "media" && e["sender"] == hid && e["receiving"] == true
    })
    .await;
    (client, mid)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_media_timer_reaches_a_running_peerconnection() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let (mut client, _mid) = running_echo(&mut gw, sid, hid).await;
    // The configured timer is 1 s; the running PeerConnection must take 3 s instead.
    let r =
        gw.admin(json!({"janus": "set_no_media_timer", "no_media_timer": 3, "transaction": tx()}));
    assert_eq!(r["janus"], "success", "{r}");
    // Stop sending; keep the client alive (ICE consent) while waiting.
    let started = std::time::Instant::now();
    let drive = tokio::spawn(async move {
        client.run_for(Duration::from_secs(6)).await;
        client
    });
    let ev = gw
        .event_within(Duration::from_secs(8), |e| {
            e["janus"] == "media" && e["sender"] == hid && e["receiving"] == false
        })
        .await
        .expect("a media event saying receiving: false");
    assert!(
        ev["seconds"].as_u64().is_some_and(|s| s >= 3),
        "the new timer (3 s) was used, not the old one (1 s): {ev}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "not the old 1 s timer"
    );
    let _ = drive.await;
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowlink_threshold_reaches_a_running_peerconnection() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let (mut client, mid) = running_echo(&mut gw, sid, hid).await;
    // The gateway starts with slowlink_threshold 0 (never): losses now cause no event.
    let r = gw.admin(
        json!({"janus": "set_slowlink_threshold", "slowlink_threshold": 2, "transaction": tx()}),
    );
    assert_eq!(r["janus"], "success", "{r}");
    // Send with holes: 2 packets, then skip 4 sequence numbers, for about 2.5 seconds.
    for round in 0..50u32 {
        client.send_rtp(mid, payload(b'g', round * 2));
        client.send_rtp(mid, payload(b'g', round * 2 + 1));
        let next = 2000 + u64::from(round) * 10;
        client.set_seq(mid, next);
        client.run_for(Duration::from_millis(50)).await;
    }
    let ev = gw
        .event_within(Duration::from_secs(3), |e| {
            e["janus"] == "slowlink" && e["sender"] == hid
        })
        .await
        .expect("a slowlink event once the threshold applies");
    assert_eq!(ev["uplink"], true, "{ev}");
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_nack_queue_reaches_a_running_peerconnection() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let (mut client, _mid) = running_echo(&mut gw, sid, hid).await;
    let applied = |gw: &Gw| gw.handle_info(sid, hid)["webrtc"]["nack-queue-ms"].as_u64();
    assert_eq!(applied(&gw), Some(200), "the configured default at first");
    let r = gw
        .admin(json!({"janus": "set_min_nack_queue", "min_nack_queue": 750, "transaction": tx()}));
    assert_eq!(r["janus"], "success", "{r}");
    // The running PeerConnection resizes its send streams' caches at its next tick.
    let mut seen = None;
    for _ in 0..30 {
        client.run_for(Duration::from_millis(100)).await;
        seen = applied(&gw);
        if seen == Some(750) {
            break;
        }
    }
    assert_eq!(
        seen,
        Some(750),
        "the running PeerConnection took the new min_nack_queue"
    );
    gw.stop();
}
