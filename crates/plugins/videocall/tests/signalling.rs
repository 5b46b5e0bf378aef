//! VideoCall through the plugin contract with a recording `CoreServices` (no engine): register,
//! call, accept and hang-up events in Janus's order and shapes, the offer the callee gets and
//! the answer the caller gets, media relayed between the two handles and the `set` switches,
//! errors.

use jano_plugin::testing::{handle, obj, Pushed, RecordingServices};
use jano_plugin::{
    HandleRef, Jsep, JsepType, LocalJsep, Map, MediaCtx, MediaKind, NegotiatedMedia, Outbox,
    Plugin, PluginResult, RtpExtensions, RtpPacket, SessionRef, Value,
};
use jano_videocall::VideoCall;
use serde_json::json;
use std::sync::Arc;

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\na=sendrecv\r\n\
m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
const ANSWER: &str = "v=0\r\no=- 2 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=sendrecv\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\na=sendrecv\r\n";

struct T {
    rec: Arc<RecordingServices>,
    vc: VideoCall,
    handles: Vec<(HandleRef, SessionRef)>,
}

fn jsep(kind: JsepType, sdp: &str) -> Option<Jsep> {
    Some(Jsep {
        kind,
        sdp: sdp.into(),
        extra: Map::new(),
    })
}

impl T {
    fn new() -> T {
        let rec = Arc::new(RecordingServices::default());
        let vc = VideoCall::new(None, rec.clone());
        T {
            rec,
            vc,
            handles: Vec::new(),
        }
    }

    fn attach(&mut self) -> usize {
        let h = handle(self.handles.len() as u64 + 1);
        let s = self.vc.create_session(&h).expect("session");
        self.handles.push((h, s));
        self.handles.len() - 1
    }

    fn id(&self, i: usize) -> u64 {
        self.handles[i].0.handle_id
    }

    /// A request: its event (the last pushed to the handle with the transaction).
    fn req(&self, i: usize, body: Value, jsep: Option<Jsep>) -> Pushed {
        let (h, s) = &self.handles[i];
        match self.vc.handle_message(h, s, "tx", obj(body), jsep) {
            PluginResult::OkWait(_) => {}
            other => panic!("not asynchronous: {other:?}"),
        }
        self.rec
            .pushed_to(h.handle_id)
            .into_iter()
            .rfind(|p| p.transaction.as_deref() == Some("tx"))
            .expect("an event")
    }

    fn result(&self, i: usize, body: Value, jsep: Option<Jsep>) -> Value {
        let p = self.req(i, body, jsep);
        p.data
            .get("result")
            .cloned()
            .unwrap_or(Value::Object(p.data))
    }

    /// The events pushed to a handle without a transaction (from the other side).
    fn told(&self, i: usize) -> Vec<Pushed> {
        self.rec
            .pushed_to(self.id(i))
            .into_iter()
            .filter(|p| p.transaction.is_none())
            .collect()
    }

    fn negotiated(&self, i: usize) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        let m = |mindex: usize, kind: Option<MediaKind>| NegotiatedMedia {
            mindex,
            mid: mindex.to_string(),
            kind,
            send: true,
            recv: true,
            codecs: Vec::new(),
            extensions: Vec::new(),
            rids: Vec::new(),
        };
        s.negotiated(
            &mut ctx,
            &[
                m(0, Some(MediaKind::Audio)),
                m(1, Some(MediaKind::Video)),
                m(2, None),
            ],
        );
    }

    fn rtp(&self, i: usize, kind: MediaKind, seq: u64) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        let p = RtpPacket {
            mindex: if kind == MediaKind::Audio { 0 } else { 1 },
            kind,
            pt: 111,
            codec: if kind == MediaKind::Audio {
                "opus"
            } else {
                "vp8"
            },
            seq,
            timestamp: seq as u32 * 960,
            marker: false,
            ssrc: 42,
            substream: None,
            ext: RtpExtensions::default(),
            payload: Arc::from(vec![1u8, 2, 3]),
            svc: None,
        };
        s.incoming_rtp(&mut ctx, &p);
    }
}

#[test]
fn a_call_from_register_to_hangup() {
    let mut t = T::new();
    let (a, b, c) = (t.attach(), t.attach(), t.attach());
    assert_eq!(
        t.result(a, json!({"request": "list"}), None),
        json!({"list": []})
    );
    assert_eq!(
        t.result(a, json!({"request": "register", "username": "alice"}), None),
        json!({"event": "registered", "username": "alice"})
    );
    t.result(b, json!({"request": "register", "username": "bob"}), None);
    assert_eq!(
        t.result(c, json!({"request": "list"}), None),
        json!({"list": ["alice", "bob"]})
    );

    // alice calls bob: bob hears of it first, with an offer of the caller's media.
    let r = t.result(
        a,
        json!({"request": "call", "username": "bob"}),
        jsep(JsepType::Offer, OFFER),
    );
    assert_eq!(r, json!({"event": "calling"}));
    let told = t.told(b);
    assert_eq!(told.len(), 1);
    assert_eq!(
        told[0].data.get("result"),
        Some(&json!({"event": "incomingcall", "username": "alice"}))
    );
    match &told[0].jsep {
        Some(LocalJsep::Offer { media, data, .. }) => {
            assert_eq!(media.len(), 2);
            assert_eq!(media[0].kind, MediaKind::Audio);
            assert_eq!(media[0].codec.as_deref(), Some("opus"));
            assert_eq!(media[1].codec.as_deref(), Some("vp8"));
            assert!(media[1].send && media[1].recv);
            assert!(*data);
        }
        other => panic!("no offer: {other:?}"),
    }
    // carol finds bob busy.
    t.result(c, json!({"request": "register", "username": "carol"}), None);
    let r = t.result(
        c,
        json!({"request": "call", "username": "bob"}),
        jsep(JsepType::Offer, OFFER),
    );
    assert_eq!(
        r,
        json!({"event": "hangup", "username": "carol", "reason": "User busy"})
    );
    assert!(t.rec.closed().contains(&t.id(c)));

    // bob accepts: alice gets an answer with bob's codecs.
    let r = t.result(
        b,
        json!({"request": "accept"}),
        jsep(JsepType::Answer, ANSWER),
    );
    assert_eq!(r, json!({"event": "accepted"}));
    let told = t.told(a);
    assert_eq!(
        told[0].data.get("result"),
        Some(&json!({"event": "accepted", "username": "bob"}))
    );
    match &told[0].jsep {
        Some(LocalJsep::Answer(p)) => {
            assert_eq!(p.audio_codec.as_deref(), Some("opus"));
            assert_eq!(p.video_codec.as_deref(), Some("vp8"));
        }
        other => panic!("no answer: {other:?}"),
    }

    // Media both ways once both PeerConnections are up.
    t.negotiated(a);
    t.negotiated(b);
    t.rtp(a, MediaKind::Audio, 1);
    t.rtp(a, MediaKind::Video, 2);
    t.rtp(b, MediaKind::Video, 3);
    let to_b = t.rec.rtp_to(t.id(b));
    assert_eq!(
        to_b.iter().map(|p| (p.seq, p.mindex)).collect::<Vec<_>>(),
        vec![(1, 0), (2, 1)]
    );
    assert_eq!(t.rec.rtp_to(t.id(a)).len(), 1);
    // alice mutes her audio: bob stops getting it, not the video.
    assert_eq!(
        t.result(
            a,
            json!({"request": "set", "audio": false, "bitrate": 128000}),
            None
        ),
        json!({"event": "set"})
    );
    assert!(t.rec.remb.lock().unwrap().contains(&(t.id(a), 128000)));
    t.rtp(a, MediaKind::Audio, 4);
    t.rtp(a, MediaKind::Video, 5);
    let seqs: Vec<u64> = t.rec.rtp_to(t.id(b)).iter().map(|p| p.seq).collect();
    assert_eq!(seqs, vec![1, 2, 5]);

    // bob hangs up: alice hears bob's reason; both PeerConnections close.
    t.rec.clear();
    let r = t.result(b, json!({"request": "hangup", "reason": "bye"}), None);
    assert_eq!(
        r,
        json!({"event": "hangup", "username": "bob", "reason": "Explicit hangup"})
    );
    assert_eq!(
        t.told(a)[0].data.get("result"),
        Some(&json!({"event": "hangup", "username": "bob", "reason": "bye"}))
    );
    let closed = t.rec.closed();
    assert!(closed.contains(&t.id(a)) && closed.contains(&t.id(b)));
    t.rtp(a, MediaKind::Video, 6);
    assert!(t.rec.rtp_to(t.id(b)).is_empty());
    // The PeerConnections going away afterwards tells no one anything more.
    t.handles[a].1.hangup_media(&t.handles[a].0);
    assert_eq!(t.told(b).len(), 0);
    // They can call again; a PeerConnection lost mid-call tells the other side.
    t.result(
        b,
        json!({"request": "call", "username": "alice"}),
        jsep(JsepType::Offer, OFFER),
    );
    t.result(
        a,
        json!({"request": "accept"}),
        jsep(JsepType::Answer, ANSWER),
    );
    t.rec.clear();
    t.handles[b].1.hangup_media(&t.handles[b].0);
    assert_eq!(
        t.told(a)[0].data.get("result"),
        Some(&json!({"event": "hangup", "username": "bob", "reason": "Remote WebRTC hangup"}))
    );
    // Detaching frees the name.
    assert!(t
        .vc
        .destroy_session(&t.handles[b].0, &t.handles[b].1)
        .is_ok());
    assert_eq!(
        t.result(c, json!({"request": "list"}), None),
        json!({"list": ["alice", "carol"]})
    );
}

#[test]
fn errors() {
    let mut t = T::new();
    let (a, b) = (t.attach(), t.attach());
    let err = |t: &T, i: usize, body: Value, j: Option<Jsep>| -> (u64, String) {
        let p = t.req(i, body, j);
        (
            p.data
                .get("error_code")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            p.data
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    };
    assert_eq!(
        err(&t, a, json!({}), None),
        (475, "Missing mandatory element (request)".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": 1}), None),
        (
            474,
            "Invalid element type (request should be a string)".into()
        )
    );
    assert_eq!(
        err(&t, a, json!({"request": "dance"}), None),
        (472, "Unknown request (dance)".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": "call", "username": "x"}), None),
        (473, "Register a username first".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": "accept"}), None),
        (481, "No incoming call to accept".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": "register"}), None),
        (475, "Missing mandatory element (username)".into())
    );
    t.result(a, json!({"request": "register", "username": "alice"}), None);
    assert_eq!(
        err(&t, a, json!({"request": "register", "username": "z"}), None),
        (477, "Already registered (alice)".into())
    );
    assert_eq!(
        err(
            &t,
            b,
            json!({"request": "register", "username": "alice"}),
            None
        ),
        (476, "Username 'alice' already taken".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": "call", "username": "alice"}), None),
        (
            479,
            "You can't call yourself... use the EchoTest for that".into()
        )
    );
    assert_eq!(
        err(
            &t,
            a,
            json!({"request": "call", "username": "nobody"}),
            None
        ),
        (478, "Username 'nobody' doesn't exist".into())
    );
    t.result(b, json!({"request": "register", "username": "bob"}), None);
    assert_eq!(
        err(&t, a, json!({"request": "call", "username": "bob"}), None),
        (482, "Missing SDP".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": "set", "substream": 3}), None),
        (474, "Invalid value (substream should be 0, 1 or 2)".into())
    );
    assert_eq!(
        err(&t, a, json!({"request": "set", "bitrate": -1}), None),
        (
            474,
            "Invalid element type (bitrate should be a positive integer)".into()
        )
    );
    assert_eq!(
        err(&t, a, json!({"request": "set", "fallback": "x"}), None),
        (
            474,
            "Invalid value (fallback should be a positive integer)".into()
        )
    );
    // A failed call attempt hangs up the caller's PeerConnection.
    assert!(t.rec.closed().contains(&t.id(a)));
}
