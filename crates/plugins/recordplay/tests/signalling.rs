//! Record&Play through the plugin contract with a recording `CoreServices`: a recording made
//! from RTP fed to the handle's media callback, its `.nfo` and `.mjr` files, `list`, and its
//! playback offer and paced packets; the requests' errors.

use jano_plugin::testing::{handle, obj, RecordingServices};
use jano_plugin::{
    HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaCtx, MediaKind, Outbox, Plugin,
    PluginResult, RtpExtensions, RtpPacket, SessionRef, Value,
};
use jano_recordplay::RecordPlay;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 98\r\na=mid:1\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=sendrecv\r\n";

struct T {
    rec: Arc<RecordingServices>,
    rp: RecordPlay,
    handles: Vec<(HandleRef, SessionRef)>,
    dir: std::path::PathBuf,
}

impl T {
    fn new(tag: &str) -> T {
        let dir = std::env::temp_dir().join(format!("jano-rp-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cfg = Jcfg::parse(
            &format!("general: {{ path = \"{}\" }}", dir.display()),
            "recordplay.jcfg",
        )
        .expect("config");
        let rec = Arc::new(RecordingServices::default());
        let rp = RecordPlay::new(Some(&cfg), rec.clone());
        T {
            rec,
            rp,
            handles: Vec::new(),
            dir,
        }
    }

    fn attach(&mut self) -> usize {
        let h = handle(self.handles.len() as u64 + 1);
        let s = self.rp.create_session(&h).expect("session");
        self.handles.push((h, s));
        self.handles.len() - 1
    }

    fn sync(&self, i: usize, body: Value) -> Map<String, Value> {
        let (h, s) = &self.handles[i];
        match self.rp.handle_message(h, s, "tx", obj(body), None) {
            PluginResult::Ok(m) => m,
            other => panic!("not synchronous: {other:?}"),
        }
    }

    fn req(
        &self,
        i: usize,
        body: Value,
        jsep: Option<Jsep>,
    ) -> (Map<String, Value>, Option<LocalJsep>) {
        let (h, s) = &self.handles[i];
        match self.rp.handle_message(h, s, "tx", obj(body), jsep) {
            PluginResult::OkWait(_) => {}
            other => panic!("not asynchronous: {other:?}"),
        }
        let p = self
            .rec
            .pushed_to(h.handle_id)
            .into_iter()
            .rfind(|p| p.transaction.as_deref() == Some("tx"))
            .expect("an event");
        (p.data, p.jsep)
    }

    fn rtp(&self, i: usize, kind: MediaKind, seq: u64, ts: u32) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        let video = kind == MediaKind::Video;
        let p = RtpPacket {
            mindex: usize::from(video),
            kind,
            pt: if video { 96 } else { 111 },
            codec: if video { "vp8" } else { "opus" },
            seq,
            timestamp: ts,
            marker: video,
            ssrc: 7,
            substream: None,
            ext: RtpExtensions::default(),
            payload: Arc::from(vec![0x90u8, 0x80, 0x01, 2, 3, 4]),
            svc: None,
        };
        s.incoming_rtp(&mut ctx, &p);
    }
}

fn offer() -> Option<Jsep> {
    Some(Jsep {
        kind: JsepType::Offer,
        sdp: OFFER.into(),
        extra: Map::new(),
    })
}

#[test]
fn record_then_play() {
    let mut t = T::new("rec");
    let (a, b) = (t.attach(), t.attach());
    let (ev, jsep) = t.req(
        a,
        json!({"request": "record", "name": "my talk", "id": 4242, "filename": "talk"}),
        offer(),
    );
    assert_eq!(
        Value::Object(ev),
        json!({"recordplay": "event", "result": {"status": "recording", "id": 4242}})
    );
    match jsep {
        Some(LocalJsep::Answer(p)) => {
            assert_eq!(p.audio_codec.as_deref(), Some("opus"));
            assert_eq!(p.video_codec.as_deref(), Some("vp8"));
            assert!(p.recv_only);
        }
        other => panic!("no answer: {other:?}"),
    }
    // Not listed while it is being made.
    assert_eq!(
        t.sync(b, json!({"request": "list"})).get("list"),
        Some(&json!([]))
    );
    // 50 audio packets (20 ms) and 25 video frames (40 ms).
    for i in 0..50u64 {
        t.rtp(a, MediaKind::Audio, 100 + i, 1000 + 960 * i as u32);
        if i % 2 == 0 {
            t.rtp(
                a,
                MediaKind::Video,
                500 + i / 2,
                9000 + 3600 * (i / 2) as u32,
            );
        }
    }
    let (ev, _) = t.req(a, json!({"request": "pause"}), None);
    assert_eq!(
        ev.get("result"),
        Some(&json!({"status": "paused", "id": 4242}))
    );
    t.rtp(a, MediaKind::Audio, 150, 1000 + 960 * 50);
    let (ev, _) = t.req(a, json!({"request": "resume"}), None);
    assert_eq!(
        ev.get("result"),
        Some(&json!({"status": "resumed", "id": 4242}))
    );
    let (ev, _) = t.req(a, json!({"request": "stop"}), None);
    assert_eq!(
        ev.get("result"),
        Some(&json!({"status": "stopped", "id": 4242}))
    );
    assert!(t.rec.closed().contains(&1));
    // The core hangs the PeerConnection up: the recording is closed and indexed.
    t.handles[a].1.hangup_media(&t.handles[a].0);
    let done = t.rec.pushed_to(1).last().cloned().expect("done");
    assert_eq!(
        Value::Object(done.data),
        json!({"recordplay": "event", "result": "done"})
    );
    let nfo = std::fs::read_to_string(t.dir.join("4242.nfo")).expect("nfo");
    assert!(
        nfo.starts_with("[4242]\r\nname = my talk\r\ndate = "),
        "{nfo}"
    );
    assert!(
        nfo.ends_with("audio = talk-audio.mjr\r\nvideo = talk-video.mjr\r\n"),
        "{nfo}"
    );
    let audio = jano_mjr::read_file(t.dir.join("talk-audio.mjr")).expect("audio file");
    assert_eq!(audio.info.codec, "opus");
    assert_eq!(
        audio.frames.len(),
        50,
        "the packet sent while paused is not kept"
    );
    let list = t.sync(b, json!({"request": "list"}));
    let entry = &list["list"][0];
    assert_eq!(entry["id"], 4242);
    assert_eq!(entry["audio_codec"], "opus");
    assert_eq!(entry["video_codec"], "vp8");
    assert_eq!(entry["data"], false);

    // Playback: an offer of what was recorded, then packets paced by their timestamps.
    let (ev, jsep) = t.req(b, json!({"request": "play", "id": 4242}), None);
    assert_eq!(
        ev.get("result"),
        Some(&json!({"status": "preparing", "id": 4242}))
    );
    match jsep {
        Some(LocalJsep::Offer { media, data, .. }) => {
            assert_eq!(media.len(), 2);
            assert!(media[0].send && !media[0].recv);
            assert_eq!(media[1].codec.as_deref(), Some("vp8"));
            assert!(!data);
        }
        other => panic!("no offer: {other:?}"),
    }
    let answer = Some(Jsep {
        kind: JsepType::Answer,
        sdp: "v=0\r\n".into(),
        extra: Map::new(),
    });
    let (ev, _) = t.req(b, json!({"request": "start"}), answer);
    assert_eq!(ev.get("result"), Some(&json!({"status": "playing"})));
    let started = Instant::now();
    {
        let (h, s) = &t.handles[b];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        s.setup_media(&mut ctx);
    }
    // About a second of media: everything arrives, not much sooner than it was recorded.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !t.rec.closed().contains(&2) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let sent = t.rec.rtp_to(2);
    assert_eq!(
        sent.iter().filter(|p| p.kind == MediaKind::Audio).count(),
        50
    );
    assert_eq!(
        sent.iter().filter(|p| p.kind == MediaKind::Video).count(),
        25
    );
    assert!(took >= Duration::from_millis(800), "played in {took:?}");
    let _ = std::fs::remove_dir_all(&t.dir);
}

#[test]
fn errors() {
    let mut t = T::new("err");
    let a = t.attach();
    let err = |t: &T, body: Value, jsep: Option<Jsep>| -> (u64, String) {
        let (ev, _) = t.req(a, body, jsep);
        (
            ev.get("error_code").and_then(Value::as_u64).unwrap_or(0),
            ev.get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    };
    assert_eq!(
        err(&t, json!({"request": "record", "name": "x"}), None),
        (415, "Missing SDP offer".into())
    );
    assert_eq!(
        err(&t, json!({"request": "record"}), offer()),
        (415, "Missing mandatory element (name)".into())
    );
    assert_eq!(
        err(&t, json!({"request": "record", "name": ""}), offer()),
        (
            414,
            "Invalid element type (name should be a non-empty string)".into()
        )
    );
    assert_eq!(
        err(&t, json!({"request": "play", "id": 99}), None),
        (416, "No such recording".into())
    );
    assert_eq!(
        err(&t, json!({"request": "play"}), None),
        (415, "Missing mandatory element (id)".into())
    );
    assert_eq!(
        err(&t, json!({"request": "start"}), None),
        (418, "Not a playout session, can't start".into())
    );
    let m = t.sync(a, json!({"request": "dance"}));
    assert_eq!(m.get("error_code"), Some(&json!(413)));
    assert_eq!(m.get("error"), Some(&json!("Unknown request 'dance'")));
    let m = t.sync(
        a,
        json!({"request": "configure", "video-bitrate-max": 500000}),
    );
    assert_eq!(
        Value::Object(m),
        json!({"recordplay": "configure", "status": "ok", "settings": {"video-keyframe-interval": 15000, "video-bitrate-max": 500000}})
    );
    let _ = std::fs::remove_dir_all(&t.dir);
}
