//! NoSIP through the plugin contract with a recording `CoreServices` and a plain RTP peer made
//! of UDP sockets: the barebone SDP both ways, media relayed both ways, SDES-SRTP, errors.

use jano_nosip::NoSip;
use jano_plugin::srtp::{SrtpReceiver, SrtpSender, SrtpSuite};
use jano_plugin::testing::{handle, obj, RecordingServices};
use jano_plugin::{
    HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaCtx, MediaKind, Outbox, Plugin,
    PluginResult, RtpExtensions, RtpPacket, SessionRef, Value,
};
use serde_json::json;
use std::net::UdpSocket;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USER_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
a=group:BUNDLE 0\r\na=ice-ufrag:abcd\r\na=fingerprint:sha-256 00:11\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
a=rtpmap:96 rtx/48000\r\na=sendrecv\r\n";

struct T {
    rec: Arc<RecordingServices>,
    ns: NoSip,
    h: (HandleRef, SessionRef),
}

impl T {
    fn new() -> T {
        let rec = Arc::new(RecordingServices::default());
        let cfg = Jcfg::parse(
            "general: { local_ip = \"127.0.0.1\" rtp_port_range = \"30000-39000\" }",
            "nosip.jcfg",
        )
        .expect("config");
        let ns = NoSip::new(Some(&cfg), rec.clone());
        let h = handle(1);
        let s = ns.create_session(&h).expect("session");
        T { rec, ns, h: (h, s) }
    }

    fn req(&self, body: Value, jsep: Option<Jsep>) -> (Map<String, Value>, Option<LocalJsep>) {
        match self
            .ns
            .handle_message(&self.h.0, &self.h.1, "tx", obj(body), jsep)
        {
            PluginResult::OkWait(_) => {}
            other => panic!("not asynchronous: {other:?}"),
        }
        let mut p = self.rec.pushed_to(1).into_iter().last().expect("an event");
        // Every `generated`/`processed` names the call; the checks below compare the rest.
        if let Some(Value::Object(r)) = p.data.get_mut("result") {
            if let Some(id) = r.remove("unique_id") {
                assert_eq!(id.as_str().map(str::len), Some(36), "a UUID");
            }
        }
        (p.data, p.jsep)
    }

    fn user_rtp(&self, seq: u64, codec: &'static str) {
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(&self.h.0, &mut out);
        self.h.1.incoming_rtp(
            &mut ctx,
            &RtpPacket {
                mindex: 0,
                kind: MediaKind::Audio,
                pt: 111,
                codec,
                seq,
                timestamp: 960 * seq as u32,
                marker: false,
                ssrc: 1234,
                substream: None,
                ext: RtpExtensions::default(),
                payload: Arc::from(vec![1u8, 2, 3, 4]),
                svc: None,
            },
        );
    }
}

fn port_of(sdp: &str, kind: &str) -> u16 {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("m={kind} ")))
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn rtp(pt: u8, seq: u16) -> Vec<u8> {
    let mut b = vec![0x80, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9];
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b.extend_from_slice(&[7, 7, 7]);
    b
}

#[test]
fn user_calls_a_plain_peer() {
    let t = T::new();
    let (ev, _) = t.req(
        json!({"request": "generate"}),
        Some(Jsep {
            kind: JsepType::Offer,
            sdp: USER_OFFER.into(),
            extra: Map::new(),
        }),
    );
    let r = &ev["result"];
    assert_eq!(r["event"], "generated");
    assert_eq!(r["type"], "offer");
    let plain = r["sdp"].as_str().unwrap_or_default().to_owned();
    assert!(
        plain.contains("m=audio ") && plain.contains(" RTP/AVP 111 0\r\n"),
        "{plain}"
    );
    assert!(
        !plain.contains("ice-ufrag") && !plain.contains("fingerprint") && !plain.contains("rtx"),
        "{plain}"
    );
    assert!(plain.contains("c=IN IP4 127.0.0.1"), "{plain}");
    let our = port_of(&plain, "audio");
    assert!((30000..39000).contains(&our));

    // The peer answers PCMU from its own sockets.
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let pport = peer.local_addr().map(|a| a.port()).unwrap_or(0);
    let answer = format!("v=0\r\no=- 9 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {pport} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n");
    let (ev, jsep) = t.req(
        json!({"request": "process", "type": "answer", "sdp": answer}),
        None,
    );
    assert_eq!(ev["result"], json!({"event": "processed"}));
    match jsep {
        Some(LocalJsep::Answer(p)) => assert_eq!(p.audio_codec.as_deref(), Some("pcmu")),
        other => panic!("no answer for the user: {other:?}"),
    }
    // User → peer: payload type of the plain side.
    t.user_rtp(5, "pcmu");
    let mut buf = [0u8; 1500];
    let (n, from) = peer.recv_from(&mut buf).expect("the user's packet");
    assert_eq!(from.port(), our);
    assert_eq!(buf[1] & 0x7f, 0, "PCMU's payload type on the plain side");
    assert_eq!(&buf[12..n], &[1, 2, 3, 4]);
    // Peer → user.
    peer.send_to(&rtp(0, 77), ("127.0.0.1", our)).expect("send");
    let deadline = Instant::now() + Duration::from_secs(3);
    while t.rec.rtp_to(1).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = t.rec.rtp_to(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].codec, "pcmu");
    assert_eq!(&got[0].payload[..], &[7, 7, 7]);

    let (ev, _) = t.req(json!({"request": "hangup"}), None);
    assert_eq!(ev["result"], json!({"event": "hangingup"}));
    assert!(t.rec.closed().contains(&1));
}

#[test]
fn plain_peer_calls_with_sdes() {
    let t = T::new();
    let peer = UdpSocket::bind("127.0.0.1:0").expect("peer socket");
    peer.set_read_timeout(Some(Duration::from_secs(2))).ok();
    let pport = peer.local_addr().map(|a| a.port()).unwrap_or(0);
    let key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk";
    let offer = format!("v=0\r\no=- 9 9 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {pport} RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{key}\r\n");
    let (ev, jsep) = t.req(
        json!({"request": "process", "type": "offer", "sdp": offer}),
        None,
    );
    assert_eq!(
        ev["result"],
        json!({"event": "processed", "srtp": "sdes_mandatory"})
    );
    match jsep {
        Some(LocalJsep::Offer { media, .. }) => {
            assert_eq!(media.len(), 1);
            assert_eq!(media[0].codec.as_deref(), Some("pcma"));
        }
        other => panic!("no offer for the user: {other:?}"),
    }
    let user_answer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 8\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\n";
    let (ev, _) = t.req(
        json!({"request": "generate"}),
        Some(Jsep {
            kind: JsepType::Answer,
            sdp: user_answer.into(),
            extra: Map::new(),
        }),
    );
    let plain = ev["result"]["sdp"].as_str().unwrap_or_default().to_owned();
    assert_eq!(ev["result"]["type"], "answer");
    assert!(plain.contains(" RTP/SAVP 8\r\n"), "{plain}");
    let our_key = plain
        .lines()
        .find_map(|l| l.strip_prefix("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"))
        .expect("our key")
        .to_owned();
    let our = port_of(&plain, "audio");
    // Both ways encrypted: the peer decrypts with our key, we with its.
    t.user_rtp(9, "pcma");
    let mut buf = [0u8; 1500];
    let (n, _) = peer.recv_from(&mut buf).expect("the user's packet");
    let mut rx = SrtpReceiver::new(SrtpSuite::Sha1_80, &our_key).expect("key");
    let clear = rx.unprotect(&buf[..n]).expect("decrypts with our key");
    assert_eq!(&clear[12..], &[1, 2, 3, 4]);
    let mut tx = SrtpSender::new(SrtpSuite::Sha1_80, key).expect("key");
    peer.send_to(
        &tx.protect(&rtp(8, 3)).expect("protect"),
        ("127.0.0.1", our),
    )
    .expect("send");
    let deadline = Instant::now() + Duration::from_secs(3);
    while t.rec.rtp_to(1).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(t.rec.rtp_to(1).first().map(|p| p.codec), Some("pcma"));
}

#[test]
fn errors() {
    let t = T::new();
    let err = |body: Value, jsep: Option<Jsep>| -> (u64, String) {
        let (ev, _) = t.req(body, jsep);
        (
            ev.get("error_code").and_then(Value::as_u64).unwrap_or(0),
            ev.get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    };
    assert_eq!(
        err(json!({"request": "generate"}), None),
        (446, "Missing SDP".into())
    );
    assert_eq!(
        err(json!({"request": "process", "type": "offer"}), None),
        (443, "Missing mandatory element (sdp)".into())
    );
    assert_eq!(
        err(
            json!({"request": "process", "type": "pranswer", "sdp": "v=0"}),
            None
        ),
        (446, "Missing or invalid SDP type".into())
    );
    assert_eq!(
        err(
            json!({"request": "process", "type": "offer", "sdp": "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\ns=-\r\nm=audio 0 RTP/AVP 0\r\n"}),
            None
        ),
        (447, "No audio and no video being negotiated".into())
    );
    assert_eq!(
        err(json!({"request": "generate", "srtp": "always"}), None),
        (
            444,
            "Invalid element (srtp can only be sdes_optional or sdes_mandatory)".into()
        )
    );
    assert_eq!(
        err(json!({"request": "recording", "action": "start"}), None).0,
        449
    );
    assert_eq!(
        err(
            json!({"request": "recording", "action": "go", "audio": true}),
            None
        )
        .0,
        444
    );
    assert_eq!(
        err(json!({"request": "dance"}), None),
        (442, "Unknown request (dance)".into())
    );
    assert_eq!(
        err(json!({}), None),
        (443, "Missing mandatory element (request)".into())
    );
}
