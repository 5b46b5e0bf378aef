//! AudioBridge through the plugin contract with a recording `CoreServices` (no engine): rooms,
//! joins and their events in Janus's order and shapes, moderation, errors, permanent rooms;
//! and the mix itself, with Opus packets fed to the handles' media callbacks and what the
//! mixing threads send decoded back and checked tone by tone.

use jano_audiobridge::codec::{Codec, Decoder, Encoder, EncoderSettings};
use jano_audiobridge::AudioBridge;
use jano_plugin::{
    HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaCtx, MediaKind, NegotiatedMedia, Outbox,
    Plugin, PluginResult, RtpExtensions, RtpPacket, SessionRef, Value,
};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

use jano_plugin::testing::{Pushed, RecordingServices as Rec};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

struct T {
    rec: Arc<Rec>,
    ab: AudioBridge,
    handles: Vec<(HandleRef, SessionRef)>,
}

impl T {
    fn new(config: Option<&str>, folder: Option<std::path::PathBuf>) -> T {
        let rec = Arc::new(Rec {
            folder,
            ..Rec::default()
        });
        let cfg = config.map(|c| Jcfg::parse(c, "test.jcfg").expect("config"));
        let ab = AudioBridge::new(cfg.as_ref(), rec.clone());
        T {
            rec,
            ab,
            handles: Vec::new(),
        }
    }

    fn attach(&mut self) -> usize {
        let n = self.handles.len() as u64 + 1;
        let h = HandleRef {
            session_id: 1,
            handle_id: n,
            opaque_id: None,
            token: None,
        };
        let s = self.ab.create_session(&h).expect("session");
        self.handles.push((h, s));
        self.handles.len() - 1
    }

    fn sync(&self, i: usize, body: Value) -> Map<String, Value> {
        let (h, s) = &self.handles[i];
        match self.ab.handle_message(h, s, "tx", obj(body), None) {
            PluginResult::Ok(m) => m,
            other => panic!("not synchronous: {other:?}"),
        }
    }

    /// An asynchronous request: its event (the last one pushed to the handle).
    fn req(&self, i: usize, body: Value, jsep: Option<Jsep>) -> Pushed {
        let (h, s) = &self.handles[i];
        let before = self.pushed_to(i).len();
        match self.ab.handle_message(h, s, "tx", obj(body), jsep) {
            PluginResult::OkWait(_) => {}
            other => panic!("not asynchronous: {other:?}"),
        }
        let all = self.pushed_to(i);
        assert!(all.len() > before, "no event");
        all.last().cloned().unwrap()
    }

    fn pushed_to(&self, i: usize) -> Vec<Pushed> {
        let id = self.handles[i].0.handle_id;
        self.rec
            .pushed
            .lock()
            .unwrap()
            .iter()
            .filter(|p| p.handle == id)
            .cloned()
            .collect()
    }

    fn clear(&self) {
        self.rec.pushed.lock().unwrap().clear();
    }

    /// The PeerConnection came up with one audio m-line (audio levels negotiated).
    fn media_up(&self, i: usize) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        s.negotiated(
            &mut ctx,
            &[NegotiatedMedia {
                mindex: 0,
                mid: "0".into(),
                kind: Some(MediaKind::Audio),
                send: true,
                recv: true,
                codecs: Vec::new(),
                extensions: vec![(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level".into())],
                rids: Vec::new(),
            }],
        );
        s.setup_media(&mut ctx);
    }

    fn rtp(&self, i: usize, seq: u64, payload: &[u8], level: Option<i8>) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        s.incoming_rtp(
            &mut ctx,
            &RtpPacket {
                mindex: 0,
                kind: MediaKind::Audio,
                pt: 111,
                codec: "opus",
                seq,
                timestamp: (seq * 960) as u32,
                marker: false,
                ssrc: 1000 + i as u32,
                substream: None,
                ext: RtpExtensions {
                    audio_level: level,
                    ..RtpExtensions::default()
                },
                payload: Arc::from(payload),
                svc: None,
            },
        );
    }
}

fn offer() -> Jsep {
    Jsep {
        kind: JsepType::Offer,
        sdp: "v=0\r\n".into(),
        extra: Map::new(),
    }
}

fn code(m: &Map<String, Value>) -> Option<i64> {
    m.get("error_code").and_then(Value::as_i64)
}

#[test]
fn rooms_create_list_exists_edit_destroy() {
    let mut t = T::new(Some("general: { admin_key = \"adm\" }\nroom-1234: { description = \"Demo\" sampling_rate = 16000 }\n"), None);
    let a = t.attach();
    // admin_key required to create.
    assert_eq!(
        code(&t.sync(a, json!({"request": "create", "room": 5}))),
        Some(483)
    );
    assert_eq!(
        code(&t.sync(
            a,
            json!({"request": "create", "room": 5, "admin_key": "no"})
        )),
        Some(489)
    );
    let r = t.sync(
        a,
        json!({"request": "create", "room": 5, "admin_key": "adm", "is_private": true, "secret": "s", "sampling_rate": 48000}),
    );
    assert_eq!(
        r,
        obj(json!({"audiobridge": "created", "room": 5, "permanent": false}))
    );
    assert_eq!(
        code(&t.sync(
            a,
            json!({"request": "create", "room": 5, "admin_key": "adm"})
        )),
        Some(486)
    );
    // An unsupported rate is Janus's 499.
    let bad = t.sync(
        a,
        json!({"request": "create", "admin_key": "adm", "sampling_rate": 44100}),
    );
    assert_eq!(code(&bad), Some(499));
    assert_eq!(bad["error"], json!("Unsupported sampling rate 44100"));
    // A random id when none is given.
    let r = t.sync(a, json!({"request": "create", "admin_key": "adm"}));
    assert!(r["room"].as_u64().unwrap() > 0);
    // Private rooms only with the admin key.
    let list = t.sync(a, json!({"request": "list"}));
    let ids: Vec<u64> = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["room"].as_u64().unwrap())
        .collect();
    assert!(ids.contains(&1234) && !ids.contains(&5));
    let list = t.sync(a, json!({"request": "list", "admin_key": "adm"}));
    let five = list["list"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["room"] == json!(5))
        .cloned()
        .unwrap();
    assert_eq!(
        five,
        json!({"room": 5, "description": "Room 5", "pin_required": false, "sampling_rate": 48000,
               "spatial_audio": false, "record": false, "muted": false, "num_participants": 0})
    );
    assert_eq!(
        t.sync(a, json!({"request": "exists", "room": 5})),
        obj(json!({"audiobridge": "success", "room": 5, "exists": true}))
    );
    assert_eq!(
        t.sync(a, json!({"request": "exists", "room": 6}))["exists"],
        json!(false)
    );
    // edit and destroy need the room's secret.
    assert_eq!(
        code(&t.sync(a, json!({"request": "edit", "room": 5}))),
        Some(483)
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "edit", "room": 5, "secret": "x"}))),
        Some(489)
    );
    assert_eq!(
        t.sync(
            a,
            json!({"request": "edit", "room": 5, "secret": "s", "new_description": "New"})
        ),
        obj(json!({"audiobridge": "edited", "room": 5, "permanent": false}))
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "destroy", "room": 77}))),
        Some(485)
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "destroy", "room": "x"}))),
        Some(484)
    );
    assert_eq!(
        t.sync(a, json!({"request": "destroy", "room": 5, "secret": "s"})),
        obj(json!({"audiobridge": "destroyed", "room": 5, "permanent": false}))
    );
    // No configuration folder: nothing can be permanent.
    assert_eq!(
        code(&t.sync(
            a,
            json!({"request": "create", "admin_key": "adm", "permanent": true})
        )),
        Some(499)
    );
    // Generic errors.
    assert_eq!(code(&t.sync(a, json!({"request": "nope"}))), Some(482));
    assert_eq!(code(&t.sync(a, json!({"foo": 1}))), Some(483));
    assert_eq!(code(&t.sync(a, json!({"request": 5}))), Some(484));
}

#[test]
fn join_configure_leave_events_in_janus_order() {
    let mut t = T::new(Some("room-1: { sampling_rate = 16000 }\n"), None);
    let (a, b) = (t.attach(), t.attach());
    // Before joining.
    let e = t.req(a, json!({"request": "configure", "muted": true}), None);
    assert_eq!(code(&e.data), Some(487));
    assert_eq!(e.data["error"], json!("Can't configure (not in a room)"));
    assert_eq!(
        code(&t.req(a, json!({"request": "leave"}), None).data),
        Some(487)
    );
    assert_eq!(
        code(&t.req(a, json!({"request": "join", "room": 9}), None).data),
        Some(485)
    );
    assert_eq!(
        code(
            &t.req(a, json!({"request": "join", "room": 1, "quality": 0}), None)
                .data
        ),
        Some(484)
    );
    assert_eq!(
        code(
            &t.req(
                a,
                json!({"request": "join", "room": 1, "codec": "g729"}),
                None
            )
            .data
        ),
        Some(484)
    );
    assert_eq!(
        code(
            &t.req(
                a,
                json!({"request": "join", "room": 1, "expected_loss": 21}),
                None
            )
            .data
        ),
        Some(484)
    );
    // Alice joins with an offer: the answer comes with `joined`.
    let e = t.req(
        a,
        json!({"request": "join", "room": 1, "id": 11, "display": "Alice"}),
        Some(offer()),
    );
    assert_eq!(
        e.data,
        obj(json!({"audiobridge": "joined", "room": 1, "id": 11, "participants": []}))
    );
    assert!(matches!(e.jsep, Some(LocalJsep::Answer(_))));
    assert_eq!(
        code(&t.req(a, json!({"request": "join", "room": 1}), None).data),
        Some(491)
    );
    t.media_up(a);
    t.clear();
    // Bob: the id taken, then his own.
    assert_eq!(
        code(
            &t.req(b, json!({"request": "join", "room": 1, "id": 11}), None)
                .data
        ),
        Some(490)
    );
    t.clear();
    let e = t.req(
        b,
        json!({"request": "join", "room": 1, "id": 22, "display": "Bob"}),
        None,
    );
    assert_eq!(
        e.data,
        obj(
            json!({"audiobridge": "joined", "room": 1, "id": 22, "participants": [
                {"id": 11, "display": "Alice", "setup": true, "muted": false, "talking": false}
            ]})
        )
    );
    let to_a = t.pushed_to(a);
    assert_eq!(
        to_a[0].data,
        obj(json!({"audiobridge": "joined", "room": 1, "participants": [
            {"id": 22, "display": "Bob", "setup": false, "muted": false}
        ]}))
    );
    // Bob's PeerConnection comes up: only the others hear it.
    t.clear();
    t.media_up(b);
    assert!(t.pushed_to(b).is_empty());
    assert_eq!(
        t.pushed_to(a)[0].data,
        obj(json!({"audiobridge": "event", "room": 1, "participants": [
            {"id": 22, "display": "Bob", "setup": true, "muted": false}
        ]}))
    );
    // Mute by configure: the others hear it; the answer has no room.
    t.clear();
    let e = t.req(b, json!({"request": "configure", "muted": true}), None);
    assert_eq!(e.data, obj(json!({"audiobridge": "event", "result": "ok"})));
    assert_eq!(
        t.pushed_to(a)[0].data,
        obj(json!({"audiobridge": "event", "room": 1, "participants": [
            {"id": 22, "display": "Bob", "setup": true, "muted": true}
        ]}))
    );
    // listparticipants.
    let l = t.sync(a, json!({"request": "listparticipants", "room": 1}));
    assert_eq!(l["audiobridge"], json!("participants"));
    assert_eq!(l["participants"].as_array().unwrap().len(), 2);
    // A plugin offer cannot be answered by another offer.
    t.clear();
    let e = t.req(
        b,
        json!({"request": "configure", "generate_offer": true}),
        None,
    );
    assert!(matches!(e.jsep, Some(LocalJsep::Offer { .. })));
    let e = t.req(b, json!({"request": "configure"}), Some(offer()));
    assert_eq!(code(&e.data), Some(493));
    // Bob leaves: Alice hears `leaving` before Bob's `left`.
    t.clear();
    let e = t.req(b, json!({"request": "leave"}), None);
    assert_eq!(
        e.data,
        obj(json!({"audiobridge": "left", "room": 1, "id": 22}))
    );
    assert_eq!(
        t.pushed_to(a)[0].data,
        obj(json!({"audiobridge": "event", "room": 1, "leaving": 22}))
    );
    // Alice's PeerConnection goes away: she is out of the room.
    t.clear();
    let (h, s) = &t.handles[a];
    s.hangup_media(h);
    let l = t.sync(a, json!({"request": "listparticipants", "room": 1}));
    assert_eq!(l["participants"], json!([]));
}

#[test]
fn moderation_mute_kick_and_destroy() {
    let mut t = T::new(
        Some("room-1: { sampling_rate = 16000 secret = \"s\" }\n"),
        None,
    );
    let (a, b, c) = (t.attach(), t.attach(), t.attach());
    t.req(a, json!({"request": "join", "room": 1, "id": 1}), None);
    t.req(b, json!({"request": "join", "room": 1, "id": 2}), None);
    // Joining with the room's secret: an admin, immune to mute_room.
    t.req(
        c,
        json!({"request": "join", "room": 1, "id": 3, "secret": "s"}),
        None,
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "mute", "room": 1, "id": 2}))),
        Some(483)
    );
    assert_eq!(
        code(&t.sync(
            a,
            json!({"request": "mute", "room": 1, "id": 9, "secret": "s"})
        )),
        Some(492)
    );
    t.clear();
    assert_eq!(
        t.sync(
            a,
            json!({"request": "mute", "room": 1, "id": 2, "secret": "s"})
        ),
        obj(json!({"audiobridge": "success", "room": 1}))
    );
    // Everyone, the muted one included.
    for i in [a, b, c] {
        assert_eq!(
            t.pushed_to(i)[0].data["participants"][0]["muted"],
            json!(true)
        );
    }
    // No change: no room, no event.
    t.clear();
    assert_eq!(
        t.sync(
            a,
            json!({"request": "mute", "room": 1, "id": 2, "secret": "s"})
        ),
        obj(json!({"audiobridge": "success"}))
    );
    assert!(t.pushed_to(a).is_empty());
    assert_eq!(
        t.sync(a, json!({"request": "mute_room", "room": 1, "secret": "s"})),
        obj(json!({"audiobridge": "success", "room": 1}))
    );
    assert_eq!(
        t.pushed_to(b)[0].data,
        obj(json!({"audiobridge": "event", "room": 1, "muted": true}))
    );
    assert_eq!(
        t.sync(a, json!({"request": "list"}))["list"][0]["muted"],
        json!(true)
    );
    // Kick: everyone hears it; without a PeerConnection the participant leaves at once.
    t.clear();
    assert_eq!(
        t.sync(
            a,
            json!({"request": "kick", "room": 1, "id": 2, "secret": "s"})
        ),
        obj(json!({"audiobridge": "success"}))
    );
    assert_eq!(
        t.pushed_to(b)[0].data,
        obj(json!({"audiobridge": "event", "room": 1, "kicked": 2}))
    );
    let l = t.sync(a, json!({"request": "listparticipants", "room": 1}));
    assert_eq!(l["participants"].as_array().unwrap().len(), 2);
    // Destroy: everyone left gets `destroyed` and loses the PeerConnection.
    t.clear();
    t.sync(a, json!({"request": "destroy", "room": 1, "secret": "s"}));
    for i in [a, c] {
        assert_eq!(
            t.pushed_to(i)[0].data,
            obj(json!({"audiobridge": "destroyed", "room": 1}))
        );
    }
    let closed = t.rec.closed.lock().unwrap().clone();
    assert!(closed.contains(&1) && closed.contains(&3));
    assert_eq!(
        code(&t.req(a, json!({"request": "leave"}), None).data),
        Some(487)
    );
}

#[test]
fn permanent_rooms_are_saved_and_removed() {
    let dir = std::env::temp_dir().join(format!("jano-ab-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("janus.plugin.audiobridge.jcfg");
    std::fs::write(&file, "general: {\n  string_ids = false\n}\n").unwrap();
    let mut t = T::new(Some("general: { string_ids = false }\n"), Some(dir.clone()));
    let a = t.attach();
    let r = t.sync(
        a,
        json!({"request": "create", "room": 42, "permanent": true, "description": "Kept", "spatial_audio": true}),
    );
    assert_eq!(r["permanent"], json!(true));
    let text = std::fs::read_to_string(&file).unwrap();
    let cfg = Jcfg::parse(&text, "x").unwrap();
    let g = cfg.root.group("room-42").expect("saved");
    assert_eq!(g.get_str("description").as_deref(), Some("Kept"));
    assert_eq!(g.get_bool("spatial_audio"), Some(true));
    assert!(cfg.root.group("general").is_some());
    t.sync(
        a,
        json!({"request": "destroy", "room": 42, "permanent": true}),
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("room-42"));
    let _ = std::fs::remove_dir_all(&dir);
}

fn tone(freq: f64, rate: u32, start: usize, n: usize) -> Vec<i16> {
    (start..start + n)
        .map(|i| {
            (6000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16
        })
        .collect()
}

/// The magnitude of one frequency in `x` (one DFT bin).
fn bin(x: &[i16], freq: f64, rate: u32) -> f64 {
    let (mut re, mut im) = (0.0, 0.0);
    for (i, &s) in x.iter().enumerate() {
        let a = 2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64;
        re += f64::from(s) * a.cos();
        im += f64::from(s) * a.sin();
    }
    (re * re + im * im).sqrt() / x.len() as f64
}

#[test]
fn each_participant_hears_the_others_and_not_itself() {
    let rate = 16000;
    let mut t = T::new(Some("room-1: { sampling_rate = 16000 }\n"), None);
    let (a, b, c) = (t.attach(), t.attach(), t.attach());
    for (i, id) in [(a, 1), (b, 2), (c, 3)] {
        t.req(
            i,
            json!({"request": "join", "room": 1, "id": id, "prebuffer": 2}),
            Some(offer()),
        );
        t.media_up(i);
    }
    let settings = EncoderSettings {
        codec: Codec::Opus,
        bitrate: 32000,
        complexity: 5,
        expected_loss: 0,
        stereo: false,
    };
    // A sends 440 Hz, B 1000 Hz, C nothing (a listener only): paced at 20 ms.
    let mut enc_a = Encoder::new(settings, rate).unwrap();
    let mut enc_b = Encoder::new(settings, rate).unwrap();
    let frame = (rate / 50) as usize;
    let start = Instant::now();
    for k in 0..100u64 {
        let mut pa = Vec::new();
        let mut pb = Vec::new();
        enc_a
            .encode(&tone(440.0, rate, k as usize * frame, frame), &mut pa)
            .unwrap();
        enc_b
            .encode(&tone(1000.0, rate, k as usize * frame, frame), &mut pb)
            .unwrap();
        t.rtp(a, k + 1, &pa, Some(20));
        t.rtp(b, k + 1, &pb, Some(20));
        let due = start + Duration::from_millis(20 * (k + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    std::thread::sleep(Duration::from_millis(100));
    let sent = t.rec.rtp.lock().unwrap().clone();
    let heard = |h: usize| -> Vec<i16> {
        let id = t.handles[h].0.handle_id;
        let mut dec = Decoder::new(Codec::Opus, rate).unwrap();
        let mut pcm = Vec::new();
        let mut last_seq = 0;
        for (_, p) in sent.iter().filter(|(hid, _)| *hid == id) {
            assert_eq!(p.codec, "opus");
            assert!(p.seq > last_seq, "sequence numbers go up");
            last_seq = p.seq;
            let mut f = vec![0i16; frame];
            dec.decode(Some(&p.payload), false, &mut f);
            pcm.extend_from_slice(&f);
        }
        pcm
    };
    let (ha, hb, hc) = (heard(a), heard(b), heard(c));
    // Every listener got a packet per tick for the ~2 s (generous bounds: no timing asserts).
    for h in [&ha, &hb, &hc] {
        assert!(h.len() >= frame * 60, "only {} samples", h.len());
    }
    let tail = |x: &[i16]| x[x.len() / 2..].to_vec();
    let (ta, tb, tc) = (tail(&ha), tail(&hb), tail(&hc));
    // A hears B only, B hears A only, C hears both.
    assert!(bin(&ta, 1000.0, rate) > 10.0 * bin(&ta, 440.0, rate), "A");
    assert!(bin(&ta, 1000.0, rate) > 300.0, "A hears B");
    assert!(bin(&tb, 440.0, rate) > 10.0 * bin(&tb, 1000.0, rate), "B");
    assert!(bin(&tb, 440.0, rate) > 300.0, "B hears A");
    assert!(
        bin(&tc, 440.0, rate) > 300.0 && bin(&tc, 1000.0, rate) > 300.0,
        "C"
    );
    // The talking events (levels of 20 dBov average over 100 packets: talking).
    let talking: Vec<Pushed> = t
        .rec
        .pushed
        .lock()
        .unwrap()
        .iter()
        .filter(|p| p.data["audiobridge"] == json!("talking"))
        .cloned()
        .collect();
    assert!(talking.is_empty(), "audiolevel_event is off by default");
}

/// Feeds `i` a paced tone for `ms` milliseconds (from round `from`), as its PeerConnection
/// would; the next round.
fn talk(t: &T, i: usize, enc: &mut Encoder, freq: f64, from: u64, ms: u64) -> u64 {
    let rate = 16000;
    let frame = (rate / 50) as usize;
    let start = Instant::now();
    let rounds = ms / 20;
    for k in 0..rounds {
        let n = from + k;
        let mut pkt = Vec::new();
        enc.encode(&tone(freq, rate, n as usize * frame, frame), &mut pkt)
            .unwrap();
        t.rtp(i, n + 1, &pkt, Some(20));
        let due = start + Duration::from_millis(20 * (k + 1));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    from + rounds
}

#[test]
fn forwarders_files_and_recordings() {
    let rate = 16000;
    let dir = std::env::temp_dir().join(format!("jano-ab-media-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut t = T::new(Some("room-1: { sampling_rate = 16000 }\n"), None);
    let a = t.attach();
    t.req(
        a,
        json!({"request": "join", "room": 1, "id": 1, "prebuffer": 2}),
        Some(offer()),
    );
    t.media_up(a);
    let settings = EncoderSettings {
        codec: Codec::Opus,
        bitrate: 32000,
        complexity: 5,
        expected_loss: 0,
        stereo: false,
    };
    let mut enc = Encoder::new(settings, rate).unwrap();
    // A forwarder of the mix to a plain UDP socket.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let port = sink.local_addr().unwrap().port();
    let bad = t.sync(a, json!({"request": "rtp_forward", "room": 1, "host": "127.0.0.1", "port": port, "codec": "g729"}));
    assert_eq!(code(&bad), Some(484));
    let r = t.sync(
        a,
        json!({"request": "rtp_forward", "room": 1, "host": "127.0.0.1", "port": port, "ptype": 111, "ssrc": 4242}),
    );
    assert_eq!(r["audiobridge"], json!("success"), "{r:?}");
    let stream_id = r["stream_id"].as_u64().unwrap();
    let l = t.sync(a, json!({"request": "listforwarders", "room": 1}));
    assert_eq!(l["rtp_forwarders"][0]["stream_id"], json!(stream_id));
    assert_eq!(l["rtp_forwarders"][0]["ptype"], json!(111));
    // An announcement: 3 s of 660 Hz as an Ogg Opus file.
    let mut fenc = Encoder::new(
        EncoderSettings {
            codec: Codec::Opus,
            bitrate: 32000,
            complexity: 5,
            expected_loss: 0,
            stereo: false,
        },
        48000,
    )
    .unwrap();
    let packets: Vec<Vec<u8>> = (0..150)
        .map(|k| {
            let mut p = Vec::new();
            fenc.encode(&tone(660.0, 48000, k * 960, 960), &mut p)
                .unwrap();
            p
        })
        .collect();
    let refs: Vec<&[u8]> = packets.iter().map(Vec::as_slice).collect();
    let file = dir.join("annc.opus");
    std::fs::write(
        &file,
        jano_plugin::audio_file::write_ogg_opus(&refs, 1, 48000),
    )
    .unwrap();
    let missing = t.sync(
        a,
        json!({"request": "play_file", "room": 1, "filename": "/nonexistent.opus"}),
    );
    assert_eq!(
        (code(&missing), missing["error"].clone()),
        (Some(499), json!("Error opening file"))
    );
    let r = t.sync(
        a,
        json!({"request": "play_file", "room": 1, "filename": file.to_str().unwrap(), "file_id": "f1"}),
    );
    assert_eq!(
        r,
        obj(json!({"audiobridge": "success", "room": 1, "file_id": "f1"}))
    );
    let again = t.sync(
        a,
        json!({"request": "play_file", "room": 1, "filename": file.to_str().unwrap(), "file_id": "f1"}),
    );
    assert_eq!(
        (code(&again), again["error"].clone()),
        (Some(490), json!("File ID exists (f1)"))
    );
    // Recording the mix and A's own stream.
    let r = t.sync(
        a,
        json!({"request": "enable_recording", "room": 1, "record": true,
        "record_dir": dir.to_str().unwrap(), "record_file": "mix.wav"}),
    );
    assert_eq!(r, obj(json!({"audiobridge": "success", "record": true})));
    let r = t.sync(
        a,
        json!({"request": "enable_mjrs", "room": 1, "mjrs": true,
        "mjrs_dir": dir.to_str().unwrap()}),
    );
    assert_eq!(r, obj(json!({"audiobridge": "success", "mjrs": true})));
    std::thread::sleep(Duration::from_millis(100));
    // A speaks 440 Hz for 1.5 s while the file plays; what the forwarder gets is decoded.
    let rx = std::thread::spawn(move || {
        let mut dec = Decoder::new(Codec::Opus, rate).unwrap();
        let mut pcm = Vec::new();
        let mut buf = [0u8; 1500];
        let mut pts = Vec::new();
        let end = Instant::now() + Duration::from_millis(1500);
        while Instant::now() < end {
            if let Ok(n) = sink.recv(&mut buf) {
                let h = jano_plugin::rtp::parse_rtp(&buf[..n]).unwrap();
                pts.push((h.pt, h.ssrc));
                let mut f = vec![0i16; 320];
                dec.decode(Some(&buf[h.payload_at..h.payload_end]), false, &mut f);
                pcm.extend_from_slice(&f);
            }
        }
        (pcm, pts)
    });
    talk(&t, a, &mut enc, 440.0, 0, 1500);
    let (fwd, pts) = rx.join().unwrap();
    assert!(pts.len() >= 50, "forwarded {} packets", pts.len());
    assert!(pts.iter().all(|x| *x == (111, 4242)));
    let tail = &fwd[fwd.len() / 3..];
    // The forwarder gets the whole mix: A's voice and the file.
    assert!(bin(tail, 440.0, rate) > 300.0, "440 forwarded");
    assert!(bin(tail, 660.0, rate) > 300.0, "660 forwarded");
    assert!(
        t.sync(
            a,
            json!({"request": "is_playing", "room": 1, "file_id": "f1"})
        )["playing"]
            == json!(true)
    );
    let started = t
        .pushed_to(a)
        .iter()
        .any(|p| p.data["audiobridge"] == json!("announcement-started"));
    assert!(started, "announcement-started");
    let l = t.sync(a, json!({"request": "listannouncements", "room": 1}));
    assert_eq!(l["announcements"][0]["file_id"], json!("f1"));
    t.clear();
    let r = t.sync(
        a,
        json!({"request": "stop_file", "room": 1, "file_id": "f1"}),
    );
    assert_eq!(
        r,
        obj(json!({"audiobridge": "success", "room": 1, "file_id": "f1"}))
    );
    assert_eq!(
        t.pushed_to(a)[0].data,
        obj(json!({"audiobridge": "announcement-stopped", "room": 1, "file_id": "f1"}))
    );
    let r = t.sync(
        a,
        json!({"request": "stop_rtp_forward", "room": 1, "stream_id": stream_id}),
    );
    assert_eq!(r["audiobridge"], json!("success"));
    assert_eq!(
        t.sync(a, json!({"request": "listforwarders", "room": 1}))["rtp_forwarders"],
        json!([])
    );
    // Recordings end: the WAV has A's tone and the file's, the .mjr A's packets.
    t.sync(
        a,
        json!({"request": "enable_recording", "room": 1, "record": false}),
    );
    t.sync(
        a,
        json!({"request": "enable_mjrs", "room": 1, "mjrs": false}),
    );
    let wav = dir.join("mix.wav");
    let t0 = Instant::now();
    let mut bytes = Vec::new();
    while t0.elapsed() < Duration::from_secs(5) {
        bytes = std::fs::read(&wav).unwrap_or_default();
        if bytes.len() > 44
            && u32::from_le_bytes(bytes[40..44].try_into().unwrap()) as usize == bytes.len() - 44
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 16000);
    let samples: Vec<i16> = bytes[44..]
        .chunks_exact(2)
        .map(|c| i16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert!(samples.len() > 16000, "{} samples recorded", samples.len());
    let mid = &samples[samples.len() / 3..];
    assert!(
        bin(mid, 440.0, rate) > 300.0 && bin(mid, 660.0, rate) > 300.0,
        "the WAV has both"
    );
    let mjr = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with("-audio.mjr"))
        .expect("an .mjr of the participant");
    let t0 = Instant::now();
    let mut frames = 0;
    while t0.elapsed() < Duration::from_secs(5) {
        frames = jano_mjr::read_file(&mjr)
            .map(|r| r.frames.len())
            .unwrap_or(0);
        if frames >= 50 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(frames >= 50, "{frames} frames in {}", mjr.display());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn spatial_rooms_answer_stereo_opus_and_show_positions() {
    let mut t = T::new(
        Some("room-1: { sampling_rate = 48000 spatial_audio = true }\nroom-2: { sampling_rate = 16000 }\n"),
        None,
    );
    let (a, b) = (t.attach(), t.attach());
    let e = t.req(
        a,
        json!({"request": "join", "room": 1, "id": 1, "spatial_position": 20}),
        Some(offer()),
    );
    match e.jsep {
        Some(LocalJsep::Answer(prefs)) => {
            assert!(prefs.opus_stereo);
            assert_eq!(prefs.audio_codec.as_deref(), Some("opus"));
        }
        other => panic!("no answer: {other:?}"),
    }
    let e = t.req(b, json!({"request": "join", "room": 1, "id": 2}), None);
    assert_eq!(e.data["participants"][0]["spatial_position"], json!(20));
    // configure moves it; the others hear where.
    t.clear();
    t.req(
        a,
        json!({"request": "configure", "spatial_position": 90}),
        None,
    );
    assert_eq!(
        t.pushed_to(b)[0].data["participants"][0]["spatial_position"],
        json!(90)
    );
    t.req(b, json!({"request": "leave"}), None);
    let e = t.req(
        b,
        json!({"request": "join", "room": 2, "id": 3}),
        Some(offer()),
    );
    match e.jsep {
        Some(LocalJsep::Answer(prefs)) => assert!(!prefs.opus_stereo),
        other => panic!("no answer: {other:?}"),
    }
}
