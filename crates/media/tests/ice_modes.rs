//! ICE modes of `janus.jcfg`'s `nat` section: `full_trickle` (the server's candidates also come
//! as `trickle` events) and `ice_lite`.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;
use str0m::Candidate;

/// With `full_trickle`, every server candidate arrives as a `trickle` event for the bundle mid,
/// then `{"completed":true}`; a client that only knows the trickled candidate connects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_trickle_sends_candidates_as_events() {
    let mut gw = Gw::start(Opts {
        full_trickle: true,
        ..Opts::default()
    });
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw
        .echo_offer(sid, hid, &strip_candidates(&offer), true)
        .await;
    let audio = mids_in(&answer, "audio")[0];
    let ev = gw.event("trickle", is("trickle", hid)).await;
    let cand = &ev["candidate"];
    assert_eq!(cand["sdpMLineIndex"], Value::from(0), "{ev}");
    assert_eq!(
        cand["sdpMid"].as_str(),
        Some(audio.to_string().as_str()),
        "{ev}"
    );
    let line = cand["candidate"]
        .as_str()
        .expect("candidate string")
        .to_owned();
    assert!(
        line.starts_with("candidate:") && line.contains("127.0.0.1"),
        "{line}"
    );
    let done = gw.event("trickle completed", is("trickle", hid)).await;
    assert_eq!(done["candidate"]["completed"], Value::Bool(true), "{done}");

    // The client learns the server's address only from the event.
    c.accept_answer(pending, &strip_candidates(&answer));
    c.rtc
        .add_remote_candidate(Candidate::from_sdp_string(&line).expect("parsable candidate"));
    gw.trickle(sid, hid, "candidate", c.candidate());
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    let back = c.echo_round(audio, b'F', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>());
    gw.stop();
}

/// Without `full_trickle` (the default, half-trickle) no `trickle` event is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_trickle_sends_no_trickle_events() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    assert!(answer.contains("a=candidate"), "candidates in the SDP");
    c.accept_answer(pending, &answer);
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    assert!(gw
        .event_within(Duration::from_millis(300), is("trickle", hid))
        .await
        .is_none());
    gw.stop();
}

/// `ice_lite`: the answer says so, the server never checks on its own, and a full-ICE client
/// still connects and gets its media back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_lite_answers_and_connects() {
    let mut gw = Gw::start(Opts {
        ice_lite: true,
        ..Opts::default()
    });
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    assert!(
        answer.contains("a=ice-lite"),
        "ICE-lite announced:\n{answer}"
    );
    let audio = mids_in(&answer, "audio")[0];
    c.accept_answer(pending, &answer);
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    let back = c.echo_round(audio, b'L', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>());
    let info = gw.handle_info(sid, hid);
    assert_eq!(info["ice-mode"], "lite", "{info}");
    gw.stop();
}
