//! Teardown frees the PeerConnection: `hangup`, `detach`, `destroy` and a session timeout each
//! end with `MediaEngine::peerconnections() == 0` and the process's open file descriptors back
//! to where they were before the PeerConnection existed (its UDP socket and the reader's
//! duplicate are closed). The tests in this file run one at a time: descriptors are counted
//! process-wide.

mod common;

use common::*;
use serde_json::json;
use std::time::{Duration, Instant};
use str0m::media::Mid;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A connected EchoTest PeerConnection with audio echoing; returns the fd count from before it
/// was negotiated.
async fn live_pc(gw: &mut Gw, sid: u64, hid: u64, c: &mut Client) -> (usize, Mid) {
    // Let the engine's and runtime's own descriptors settle before counting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let before = open_fds();
    let (offer, pending, _) = c.offer(true, false, true);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    let audio = mids_in(&answer, "audio")[0];
    c.accept_answer(pending, &answer);
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    let back = c.echo_round(audio, b'E', 10, WAIT).await;
    assert_eq!(back, (0..10).collect::<Vec<u32>>());
    assert_eq!(gw.engine.peerconnections(), 1);
    assert!(
        open_fds() > before,
        "a live PeerConnection holds descriptors"
    );
    (before, audio)
}

/// Waits (bounded) for the PeerConnection to be gone and the descriptors to be back.
async fn assert_freed(gw: &Gw, before: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (pcs, fds) = (gw.engine.peerconnections(), open_fds());
        if pcs == 0 && fds <= before {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "not freed: {pcs} PeerConnections, {fds} descriptors open (were {before})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// After teardown nothing echoes any more.
async fn assert_no_echo(c: &mut Client, audio: Mid) {
    c.rtp.clear();
    for i in 0..5 {
        c.send_rtp(audio, payload(b'Q', i));
    }
    c.run_for(Duration::from_millis(400)).await;
    assert!(c.rtp.is_empty(), "echo after teardown: {}", c.rtp.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hangup_request() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (before, audio) = live_pc(&mut gw, sid, hid, &mut c).await;

    let r = gw.req(
        json!({"janus": "hangup", "session_id": sid, "handle_id": hid,
        "transaction": tx()}),
    );
    assert_eq!(r["janus"], "success", "{r}");
    let ev = gw.event("hangup", is("hangup", hid)).await;
    assert_eq!(ev["reason"], "Janus API", "{ev}");
    let done = gw
        .event("echotest done", |e| {
            e["janus"] == "event" && e["plugindata"]["data"]["result"] == "done"
        })
        .await;
    assert_eq!(done["sender"], hid);
    assert_freed(&gw, before).await;
    assert_no_echo(&mut c, audio).await;

    // The handle lives on and can negotiate a new PeerConnection.
    let mut c2 = Client::new().await;
    let (offer, pending, _) = c2.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    c2.accept_answer(pending, &answer);
    let audio2 = mids_in(&answer, "audio")[0];
    assert!(c2.run_until(WAIT, |c| c.connected).await, "new PC up");
    let back = c2.echo_round(audio2, b'N', 10, WAIT).await;
    assert_eq!(back, (0..10).collect::<Vec<u32>>());
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detach_frees_the_peerconnection() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (before, audio) = live_pc(&mut gw, sid, hid, &mut c).await;

    let r = gw.req(
        json!({"janus": "detach", "session_id": sid, "handle_id": hid,
        "transaction": tx()}),
    );
    assert_eq!(r["janus"], "success", "{r}");
    gw.event("detached", is("detached", hid)).await;
    assert_freed(&gw, before).await;
    assert_no_echo(&mut c, audio).await;
    gw.drain(Duration::from_millis(100)).await;
    assert!(
        !gw.seen.iter().any(|e| e["janus"] == "hangup"),
        "no hangup event after detach (Janus sends none): {:?}",
        gw.seen
    );
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destroy_frees_the_peerconnection() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (before, audio) = live_pc(&mut gw, sid, hid, &mut c).await;

    let r = gw.req(json!({"janus": "destroy", "session_id": sid, "transaction": tx()}));
    assert_eq!(r["janus"], "success", "{r}");
    assert_freed(&gw, before).await;
    assert_no_echo(&mut c, audio).await;
    assert_eq!(gw.rt.counts(), (0, 0));
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_timeout_frees_the_peerconnection() {
    let _serial = SERIAL.lock().await;
    let mut gw = Gw::start(Opts {
        session_timeout: 2,
        ..Opts::default()
    });
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (before, audio) = live_pc(&mut gw, sid, hid, &mut c).await;
    // Media does not keep a session alive; only requests do.
    let r = gw.req(json!({"janus": "keepalive", "session_id": sid, "transaction": tx()}));
    assert_eq!(r["janus"], "ack", "{r}");
    let t0 = Instant::now();
    let ev = gw
        .event_within(Duration::from_secs(5), |e| {
            e["janus"] == "timeout" && e["session_id"] == sid
        })
        .await;
    assert!(ev.is_some(), "no timeout event: {:?}", gw.seen);
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "timed out too early"
    );
    assert_freed(&gw, before).await;
    assert_no_echo(&mut c, audio).await;
    assert_eq!(gw.rt.counts(), (0, 0));
    gw.stop();
}
