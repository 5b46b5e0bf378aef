//! Trickle ICE through the real gateway. The client's offer carries no candidate and the
//! server's candidates are removed from the answer before the client sees it, so the client
//! cannot start ICE by itself: the connection comes up only if the trickled candidate really
//! reached the server's ICE agent (which then checks towards the client). Each test shows the
//! "no candidate, no connection" side as well.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;
use str0m::change::SdpPendingOffer;

/// Client offer without candidates (trickle on) answered by EchoTest; the answer's candidates
/// are stripped before the client takes it.
async fn trickle_offer(
    gw: &mut Gw,
    sid: u64,
    hid: u64,
) -> (Client, SdpPendingOffer, str0m::media::Mid, String) {
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let offer = strip_candidates(&offer);
    assert!(!offer.contains("a=candidate"));
    let answer = gw.echo_offer(sid, hid, &offer, true).await;
    assert!(answer.contains("a=candidate"), "server candidates in SDP");
    let audio = mids_in(&answer, "audio")[0];
    (c, pending, audio, answer)
}

async fn assert_not_connected(c: &mut Client, gw: &mut Gw, hid: u64) {
    assert!(
        !c.run_until(Duration::from_millis(800), |c| c.connected)
            .await,
        "connected without any candidate: the test would prove nothing"
    );
    assert!(gw
        .event_within(Duration::ZERO, is("webrtcup", hid))
        .await
        .is_none());
}

async fn assert_media(c: &mut Client, gw: &mut Gw, hid: u64, audio: str0m::media::Mid) {
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    let back = c.echo_round(audio, b'T', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>());
}

fn remote_candidates(gw: &Gw, sid: u64, hid: u64) -> Vec<String> {
    let info = gw.handle_info(sid, hid);
    info["webrtc"]["ice"]["remote-candidates"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn ack(r: &Value) {
    assert_eq!(r["janus"], "ack", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_candidate_then_completed() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let (mut c, pending, audio, answer) = trickle_offer(&mut gw, sid, hid).await;
    c.accept_answer(pending, &strip_candidates(&answer));
    assert_not_connected(&mut c, &mut gw, hid).await;
    assert!(remote_candidates(&gw, sid, hid).is_empty());

    ack(&gw.trickle(sid, hid, "candidate", c.candidate()));
    ack(&gw.trickle(sid, hid, "candidate", json!({"completed": true})));
    assert_media(&mut c, &mut gw, hid, audio).await;
    let port = c.local.port().to_string();
    assert!(
        remote_candidates(&gw, sid, hid)
            .iter()
            .any(|l| l.contains(&format!("127.0.0.1 {port} typ host"))),
        "handle_info lists the trickled candidate"
    );
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidate_array_and_null_end_of_candidates() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let (mut c, pending, audio, answer) = trickle_offer(&mut gw, sid, hid).await;
    c.accept_answer(pending, &strip_candidates(&answer));
    assert_not_connected(&mut c, &mut gw, hid).await;
    // Bad items of an array are skipped, the good one is applied.
    ack(&gw.trickle(
        sid,
        hid,
        "candidates",
        json!([{"candidate": "no mid"}, c.candidate(), {"completed": true}]),
    ));
    ack(&gw.trickle(sid, hid, "candidate", Value::Null));
    assert_media(&mut c, &mut gw, hid, audio).await;
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_before_the_offer_are_queued_and_applied() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    // Before any PeerConnection exists: queued by the core.
    ack(&gw.trickle(sid, hid, "candidate", c.candidate()));
    ack(&gw.trickle(sid, hid, "candidates", json!([{"completed": true}])));
    let info = gw.handle_info(sid, hid);
    assert_eq!(info["pending-trickles"], 2, "{info:#}");
    assert_eq!(gw.engine.peerconnections(), 0);

    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw
        .echo_offer(sid, hid, &strip_candidates(&offer), true)
        .await;
    let audio = mids_in(&answer, "audio")[0];
    c.accept_answer(pending, &strip_candidates(&answer));
    // No trickle after the offer: only the queued candidate can bring this up.
    assert_media(&mut c, &mut gw, hid, audio).await;
    assert_eq!(gw.handle_info(sid, hid)["pending-trickles"], 0);
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_candidates_are_janus_errors() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let (mut c, pending, audio, answer) = trickle_offer(&mut gw, sid, hid).await;
    c.accept_answer(pending, &strip_candidates(&answer));

    let cases = [
        (
            json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}),
            456,
        ),
        (json!({"sdpMid": 1, "candidate": "x"}), 467),
        (json!({"sdpMLineIndex": -1, "candidate": "x"}), 467),
        (json!({"sdpMid": "0"}), 456),
        (json!({"sdpMid": "0", "candidate": 5}), 467),
    ];
    for (cand, code) in cases {
        let r = gw.trickle(sid, hid, "candidate", cand.clone());
        assert_eq!(r["janus"], "error", "{cand}: {r}");
        assert_eq!(r["error"]["code"], code, "{cand}: {r}");
    }
    let r = gw.req(
        json!({"janus": "trickle", "session_id": sid, "handle_id": hid,
        "transaction": tx()}),
    );
    assert_eq!(r["error"]["code"], 456, "{r}");
    let r = gw.req(
        json!({"janus": "trickle", "session_id": sid, "handle_id": hid,
        "transaction": tx(), "candidate": c.candidate(), "candidates": [c.candidate()]}),
    );
    assert_eq!(r["error"]["code"], 454, "{r}");
    // Well-formed but unparsable candidate text: accepted (and dropped by the engine).
    ack(&gw.trickle(
        sid,
        hid,
        "candidate",
        json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": "candidate:garbage"}),
    ));
    // None of that reached ICE, and the PeerConnection still works with a good one.
    assert_not_connected(&mut c, &mut gw, hid).await;
    ack(&gw.trickle(sid, hid, "candidate", c.candidate()));
    assert_media(&mut c, &mut gw, hid, audio).await;
    gw.stop();
}
