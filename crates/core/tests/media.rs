//! The core's side of media, with a fake engine: when JSEPs and trickles reach the engine, how
//! its reports become Janus events, and which errors the client gets. No sockets: the engine's
//! commands are read from the core's outputs and its reports are fed back by hand.

mod common;

use common::*;
use jano_core::{LocalSdp, MediaBackend, MediaCommand, MediaEvent, Negotiation, Output, RemoteSdp};
use jano_plugin::{DataMessage, LocalJsep, MediaKind, RtpPacket, Value};
use serde_json::json;
use std::sync::Arc;

/// Accepts an SDP when it has an audio m-line; everything else is the core's business.
struct FakeEngine;

impl MediaBackend for FakeEngine {
    fn check_sdp(&self, _offer: bool, sdp: &str) -> Result<(), String> {
        if sdp.contains("m=audio") {
            Ok(())
        } else {
            Err("JSEP error: no usable m-line".into())
        }
    }
    fn command(&self, _cmd: MediaCommand) {}
    fn handle_info(&self, _handle_id: u64) -> Option<Value> {
        Some(json!({"webrtc": {"ice": {"state": "connected"}}, "flags": {"ready": true}}))
    }
    fn relay_rtp(&self, _handle_id: u64, _packet: &RtpPacket) {}
    fn relay_data(&self, _handle_id: u64, _message: &DataMessage<'_>) {}
    fn send_pli(&self, _handle_id: u64, _mindex: Option<usize>) {}
    fn send_remb(&self, _handle_id: u64, _bitrate: u64) {}
}

const OFFER: &str = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\n";

fn harness() -> Harness {
    let mut h = Harness::default();
    h.gw.set_media(Arc::new(FakeEngine));
    h
}

/// Feeds an engine report to the core, as the runtime's queue does.
fn feed(h: &mut Harness, ev: MediaEvent) {
    h.gw.handle_media_event(h.now, ev);
    h.pump();
}

fn media_commands(h: &mut Harness) -> Vec<MediaCommand> {
    h.take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Media(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn echo_offer(h: &mut Harness, sid: u64, hid: u64, tx: &str) -> Value {
    h.req(
        json!({"janus":"message","session_id":sid,"handle_id":hid,"transaction":tx,
        "body":{"audio":true},"jsep":{"type":"offer","sdp":OFFER,"trickle":false}}),
    )
}

/// Offer → EchoTest's answer becomes one Negotiate command carrying the offer and the event.
fn negotiate(h: &mut Harness, sid: u64, hid: u64) -> Box<Negotiation> {
    let r = echo_offer(h, sid, hid, "neg");
    assert_eq!(r["janus"], "ack", "{r}");
    let mut cmds = media_commands(h);
    assert_eq!(cmds.len(), 1, "{cmds:?}");
    match cmds.remove(0) {
        MediaCommand::Negotiate(n) => n,
        other => panic!("expected Negotiate, got {other:?}"),
    }
}

#[test]
fn an_offer_is_answered_through_the_engine() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    let n = negotiate(&mut h, sid, hid);
    assert_eq!(n.handle.handle_id, hid);
    assert_eq!(
        n.remote_offer,
        Some(RemoteSdp {
            sdp: OFFER.into(),
            trickle: false
        })
    );
    assert!(matches!(n.jsep, LocalJsep::Answer(_)));
    // Nothing reaches the client until the engine has the SDP.
    assert!(h.events_for(A).is_empty());
    feed(
        &mut h,
        MediaEvent::Negotiated {
            session_id: sid,
            handle_id: hid,
            result: Ok(LocalSdp {
                kind: "answer",
                sdp: "v=0\r\nanswer".into(),
            }),
            event: n.event,
        },
    );
    let ev = h.events_for(A);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["janus"], "event");
    assert_eq!(ev[0]["transaction"], "neg");
    assert_eq!(ev[0]["plugindata"]["data"]["result"], "ok");
    assert_eq!(
        ev[0]["jsep"],
        json!({"type":"answer","sdp":"v=0\r\nanswer"})
    );
}

#[test]
fn a_failed_negotiation_reaches_the_client_as_an_error() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    let n = negotiate(&mut h, sid, hid);
    feed(
        &mut h,
        MediaEvent::Negotiated {
            session_id: sid,
            handle_id: hid,
            result: Err("no free port".into()),
            event: n.event,
        },
    );
    let ev = h.events_for(A);
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0]["janus"], "error");
    assert_eq!(ev[0]["transaction"], "neg");
    assert_eq!(code(&ev[0]), 465);
    assert!(reason(&ev[0]).contains("no free port"), "{}", ev[0]);
}

#[test]
fn jsep_errors() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    let bad = h.req(
        json!({"janus":"message","session_id":sid,"handle_id":hid,"transaction":"b",
        "body":{},"jsep":{"type":"offer","sdp":"v=0\r\nm=video 9 X 96\r\n"}}),
    );
    assert_eq!(code(&bad), 465, "{bad}");
    assert!(reason(&bad).contains("no usable m-line"), "{bad}");
    let unexpected = h.req(json!({"janus":"message","session_id":sid,"handle_id":hid,
        "transaction":"c","body":{},"jsep":{"type":"answer","sdp":OFFER}}));
    assert_eq!(code(&unexpected), 469, "{unexpected}");
    assert!(media_commands(&mut h).is_empty());
}

#[test]
fn early_trickles_travel_with_the_negotiation_and_later_ones_alone() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    let cand = json!({"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 10.0.0.2 5000 typ host"});
    let r = h.req(json!({"janus":"trickle","session_id":sid,"handle_id":hid,"transaction":"t1","candidate":cand}));
    assert_eq!(r["janus"], "ack");
    // A malformed early candidate is kept now and dropped when applied, as in Janus.
    h.req(json!({"janus":"trickle","session_id":sid,"handle_id":hid,"transaction":"t2","candidate":{"sdpMid":5}}));
    assert!(media_commands(&mut h).is_empty(), "no PeerConnection yet");
    let n = negotiate(&mut h, sid, hid);
    assert_eq!(n.candidates, vec![cand.clone()]);

    // The PeerConnection exists: candidates go straight to it, bad ones are refused.
    let r = h.req(json!({"janus":"trickle","session_id":sid,"handle_id":hid,"transaction":"t3","candidates":[cand, {"sdpMid":1}, {"completed":true}]}));
    assert_eq!(r["janus"], "ack");
    let cmds = media_commands(&mut h);
    match cmds.as_slice() {
        [MediaCommand::Trickle {
            handle_id,
            candidates,
        }] => {
            assert_eq!(*handle_id, hid);
            assert_eq!(candidates.len(), 2, "bad entry skipped: {candidates:?}");
        }
        other => panic!("{other:?}"),
    }
    let r = h.req(json!({"janus":"trickle","session_id":sid,"handle_id":hid,"transaction":"t4","candidate":{"sdpMid":"0","sdpMLineIndex":0}}));
    assert_eq!(code(&r), 456, "{r}");
    let r = h.req(json!({"janus":"trickle","session_id":sid,"handle_id":hid,"transaction":"t5","candidate":{"sdpMid":0,"sdpMLineIndex":0,"candidate":"x"}}));
    assert_eq!(code(&r), 467, "{r}");
    assert!(media_commands(&mut h).is_empty());
}

#[test]
fn engine_reports_become_janus_events() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    negotiate(&mut h, sid, hid);
    feed(
        &mut h,
        MediaEvent::WebrtcUp {
            session_id: sid,
            handle_id: hid,
        },
    );
    feed(
        &mut h,
        MediaEvent::Media {
            session_id: sid,
            handle_id: hid,
            mid: "1".into(),
            kind: MediaKind::Video,
            substream: None,
            receiving: false,
            seconds: Some(3),
        },
    );
    feed(
        &mut h,
        MediaEvent::SlowLink {
            session_id: sid,
            handle_id: hid,
            mid: "0".into(),
            kind: MediaKind::Audio,
            uplink: true,
            lost: 12,
        },
    );
    feed(
        &mut h,
        MediaEvent::LocalCandidate {
            session_id: sid,
            handle_id: hid,
            candidate: json!({"completed": true}),
        },
    );
    let ev = h.events_for(A);
    assert_eq!(
        ev[0],
        json!({"janus":"webrtcup","session_id":sid,"sender":hid})
    );
    assert_eq!(
        ev[1],
        json!({"janus":"media","session_id":sid,"sender":hid,"mid":"1","type":"video","receiving":false,"seconds":3})
    );
    assert_eq!(
        ev[2],
        json!({"janus":"slowlink","session_id":sid,"sender":hid,"mid":"0","media":"audio","uplink":true,"lost":12})
    );
    assert_eq!(
        ev[3],
        json!({"janus":"trickle","session_id":sid,"sender":hid,"candidate":{"completed":true}})
    );
    // handle_info merges what the engine reports.
    let info =
        h.admin(json!({"janus":"handle_info","session_id":sid,"handle_id":hid,"transaction":"i"}));
    assert_eq!(
        info["info"]["webrtc"]["ice"]["state"], "connected",
        "{info}"
    );
    assert_eq!(info["info"]["flags"]["ready"], true);
    assert_eq!(info["info"]["flags"]["got-offer"], false, "core flags kept");
}

#[test]
fn hangup_detach_and_close_pc_tear_the_peerconnection_down() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    negotiate(&mut h, sid, hid);
    let r = h.req(json!({"janus":"hangup","session_id":sid,"handle_id":hid,"transaction":"h"}));
    assert_eq!(r["janus"], "success");
    match media_commands(&mut h).as_slice() {
        [MediaCommand::Hangup {
            handle_id,
            reason,
            notify,
            ..
        }] => {
            assert_eq!((*handle_id, *reason, *notify), (hid, "Janus API", true));
        }
        other => panic!("{other:?}"),
    }
    feed(
        &mut h,
        MediaEvent::Hangup {
            session_id: sid,
            handle_id: hid,
            reason: "Janus API".into(),
            notify: true,
        },
    );
    let ev = h.events_for(A);
    assert_eq!(
        ev,
        vec![json!({"janus":"hangup","session_id":sid,"sender":hid,"reason":"Janus API"})]
    );
    // No PeerConnection any more: a second hangup only tells the plugin (EchoTest: "done").
    h.req(json!({"janus":"hangup","session_id":sid,"handle_id":hid,"transaction":"h2"}));
    assert!(media_commands(&mut h).is_empty());

    // Negotiate again, then detach: the PeerConnection goes without a hangup event.
    negotiate(&mut h, sid, hid);
    h.req(json!({"janus":"detach","session_id":sid,"handle_id":hid,"transaction":"d"}));
    match media_commands(&mut h).as_slice() {
        [MediaCommand::Hangup { reason, notify, .. }] => {
            assert_eq!((*reason, *notify), ("Detach", false));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn destroying_a_session_hangs_up_every_peerconnection() {
    let mut h = harness();
    let sid = h.create();
    let a = h.attach(sid, jano_echotest::PACKAGE);
    let b = h.attach(sid, jano_echotest::PACKAGE);
    negotiate(&mut h, sid, a);
    negotiate(&mut h, sid, b);
    h.req(json!({"janus":"destroy","session_id":sid,"transaction":"x"}));
    let mut hung: Vec<u64> = media_commands(&mut h)
        .into_iter()
        .filter_map(|c| match c {
            MediaCommand::Hangup { handle_id, .. } => Some(handle_id),
            _ => None,
        })
        .collect();
    hung.sort_unstable();
    let mut want = vec![a, b];
    want.sort_unstable();
    assert_eq!(hung, want);
}

#[test]
fn an_e2ee_offer_marks_the_handle_until_hangup() {
    let mut h = harness();
    let sid = h.create();
    let hid = h.attach(sid, jano_echotest::PACKAGE);
    let r = h.req(
        json!({"janus":"message","session_id":sid,"handle_id":hid,"transaction":"e",
        "body":{"audio":true},"jsep":{"type":"offer","sdp":OFFER,"e2ee":true}}),
    );
    assert_eq!(r["janus"], "ack", "{r}");
    let n = match media_commands(&mut h).pop() {
        Some(MediaCommand::Negotiate(n)) => n,
        other => panic!("{other:?}"),
    };
    let flag = |h: &mut Harness| {
        let r = h.admin(
            json!({"janus":"handle_info","transaction":"t","session_id":sid,"handle_id":hid}),
        );
        r["info"]["flags"]["e2ee"].clone()
    };
    assert_eq!(flag(&mut h), true);
    feed(
        &mut h,
        MediaEvent::Negotiated {
            session_id: sid,
            handle_id: hid,
            result: Ok(LocalSdp {
                kind: "answer",
                sdp: "v=0\r\nanswer".into(),
            }),
            event: n.event,
        },
    );
    let ev = h.events_for(A);
    assert_eq!(ev[0]["jsep"]["e2ee"], true, "{ev:?}");
    feed(
        &mut h,
        MediaEvent::Hangup {
            session_id: sid,
            handle_id: hid,
            reason: "DTLS alert".into(),
            notify: true,
        },
    );
    assert_eq!(flag(&mut h), false);
    // A plain offer now gets a plain answer.
    let n = negotiate(&mut h, sid, hid);
    feed(
        &mut h,
        MediaEvent::Negotiated {
            session_id: sid,
            handle_id: hid,
            result: Ok(LocalSdp {
                kind: "answer",
                sdp: "v=0\r\nanswer".into(),
            }),
            event: n.event,
        },
    );
    let ev = h.events_for(A);
    let last = ev.last().expect("answer");
    assert!(last["jsep"].get("e2ee").is_none(), "{last}");
}
