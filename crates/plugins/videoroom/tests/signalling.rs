//! VideoRoom's signalling, driven straight through the plugin contract with a recording
//! `CoreServices` (no engine): rooms, participants, subscriptions and their events, errors,
//! permanent rooms. The media paths are covered by the engine tests and the client suites.

use jano_plugin::{
    HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaCtx, OfferMids, Outbox, Plugin,
    PluginResult, SessionRef, Value,
};
use jano_videoroom::VideoRoom;
use serde_json::json;
use std::sync::Arc;

use jano_plugin::testing::{Pushed, RecordingServices as Rec};

const VR: &str = "janus.plugin.videoroom";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

struct T {
    rec: Arc<Rec>,
    vr: VideoRoom,
    handles: Vec<(HandleRef, SessionRef)>,
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendrecv\r\n\
a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 98\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\n\
a=rtpmap:96 VP8/90000\r\na=rtpmap:98 VP9/90000\r\na=rid:h send\r\na=rid:l send\r\n\
a=simulcast:send h;l\r\n";

impl T {
    fn new(config: Option<&str>, folder: Option<std::path::PathBuf>) -> T {
        T::with_secret(config, folder, None)
    }

    fn with_secret(
        config: Option<&str>,
        folder: Option<std::path::PathBuf>,
        secret: Option<&str>,
    ) -> T {
        let signer = secret.map(|secret| {
            let secret = secret.to_owned();
            let check: jano_plugin::testing::Signer =
                Arc::new(move |token: &str, descriptor: &str| {
                    jano_core::signed_contains(token, &secret, VR, descriptor, now())
                });
            check
        });
        let rec = Arc::new(Rec {
            folder,
            signer,
            ..Default::default()
        });
        let cfg = config.map(|c| Jcfg::parse(c, "test.jcfg").expect("config"));
        let vr = VideoRoom::new(cfg.as_ref(), rec.clone());
        T {
            rec,
            vr,
            handles: Vec::new(),
        }
    }

    /// Attaches a handle; its index.
    fn attach(&mut self) -> usize {
        let id = self.handles.len() as u64 + 100;
        let h = HandleRef {
            session_id: 1,
            handle_id: id,
            opaque_id: None,
            token: None,
        };
        let s = self.vr.create_session(&h).expect("attach");
        self.handles.push((h, s));
        self.handles.len() - 1
    }

    fn hid(&self, i: usize) -> u64 {
        self.handles[i].0.handle_id
    }

    fn take(&self) -> Vec<Pushed> {
        std::mem::take(&mut *self.rec.pushed.lock().unwrap())
    }

    /// A synchronous request: its data.
    fn sync(&mut self, i: usize, body: Value) -> Map<String, Value> {
        let (h, s) = self.handles[i].clone();
        match self.vr.handle_message(&h, &s, "tx", obj(body), None) {
            PluginResult::Ok(m) => m,
            other => panic!("not synchronous: {other:?}"),
        }
    }

    /// An asynchronous request: the event answering it (with its JSEP), plus every other
    /// event pushed meanwhile.
    fn req(&mut self, i: usize, body: Value, jsep: Option<Jsep>) -> (Pushed, Vec<Pushed>) {
        let (h, s) = self.handles[i].clone();
        match self.vr.handle_message(&h, &s, "tx-a", obj(body), jsep) {
            PluginResult::OkWait(_) => {}
            other => panic!("not asynchronous: {other:?}"),
        }
        let all = self.take();
        let (mine, rest): (Vec<_>, Vec<_>) = all
            .into_iter()
            .partition(|p| p.handle == h.handle_id && p.transaction.as_deref() == Some("tx-a"));
        assert_eq!(mine.len(), 1, "one answer: {mine:?}");
        (mine.into_iter().next().unwrap(), rest)
    }

    fn offer() -> Option<Jsep> {
        Some(Jsep {
            kind: JsepType::Offer,
            sdp: OFFER.into(),
            extra: Map::new(),
        })
    }

    fn answer() -> Option<Jsep> {
        Some(Jsep {
            kind: JsepType::Answer,
            sdp: "v=0\r\n".into(),
            extra: Map::new(),
        })
    }

    /// The engine's part of a plugin offer: runs its fill with made-up mids.
    fn fill(p: &mut Pushed, mids: &[&str]) {
        let Some(LocalJsep::Offer {
            fill: Some(f),
            media,
            ..
        }) = &p.jsep
        else {
            panic!("no offer with a fill: {p:?}");
        };
        assert_eq!(media.len(), mids.len(), "m-lines offered");
        let m = OfferMids {
            media: mids.iter().map(|s| s.to_string()).collect(),
            data: None,
            all: mids.iter().map(|s| s.to_string()).collect(),
        };
        (f.0)(&mut p.data, &m);
    }

    fn setup_media(&self, i: usize) {
        let (h, s) = &self.handles[i];
        let mut out = Outbox::default();
        let mut ctx = MediaCtx::new(h, &mut out);
        s.setup_media(&mut ctx);
    }
}

fn code(m: &Map<String, Value>) -> Option<(u64, String)> {
    Some((
        m.get("error_code")?.as_u64()?,
        m.get("error")?.as_str()?.to_owned(),
    ))
}

#[test]
fn room_management() {
    let mut t = T::new(Some("general: {}\nroom-1234: { description = \"Demo\" secret = \"adminpwd\" publishers = 6 }\n"), None);
    let a = t.attach();
    let d = t.sync(a, json!({"request": "exists", "room": 1234}));
    assert_eq!(
        Value::Object(d),
        json!({"videoroom": "success", "room": 1234, "exists": true})
    );
    let d = t.sync(a, json!({"request": "create", "room": 99, "description": "x", "is_private": true, "audiocodec": "opus,pcmu"}));
    assert_eq!(
        Value::Object(d),
        json!({"videoroom": "created", "room": 99, "permanent": false})
    );
    let d = t.sync(a, json!({"request": "create", "room": 99}));
    assert_eq!(code(&d), Some((427, "Room 99 already exists".into())));
    let d = t.sync(a, json!({"request": "list"}));
    let list = d["list"].as_array().unwrap();
    assert_eq!(list.len(), 1, "private rooms are not listed: {list:?}");
    assert_eq!(list[0]["room"], 1234);
    assert_eq!(list[0]["max_publishers"], 6);
    assert_eq!(list[0]["description"], "Demo");
    let d = t.sync(a, json!({"request": "destroy", "room": 1234}));
    assert_eq!(
        code(&d),
        Some((429, "Missing mandatory element (secret)".into()))
    );
    let d = t.sync(
        a,
        json!({"request": "destroy", "room": 1234, "secret": "nope"}),
    );
    assert_eq!(code(&d), Some((433, "Unauthorized (wrong secret)".into())));
    let d = t.sync(a, json!({"request": "edit", "room": 1234, "secret": "adminpwd", "new_description": "Renamed", "new_publishers": 2}));
    assert_eq!(d["videoroom"], "edited");
    let d = t.sync(a, json!({"request": "list"}));
    assert_eq!(d["list"][0]["description"], "Renamed");
    assert_eq!(d["list"][0]["max_publishers"], 2);
    let d = t.sync(
        a,
        json!({"request": "destroy", "room": 1234, "secret": "adminpwd"}),
    );
    assert_eq!(
        Value::Object(d),
        json!({"videoroom": "destroyed", "room": 1234, "permanent": false})
    );
    let d = t.sync(a, json!({"request": "exists", "room": 1234}));
    assert_eq!(d["exists"], false);
    // Bad input.
    assert_eq!(
        code(&t.sync(a, json!({}))),
        Some((429, "Missing mandatory element (request)".into()))
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": 5}))),
        Some((
            430,
            "Invalid element type (request should be a string)".into()
        ))
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "nope"}))),
        Some((423, "Unknown request 'nope'".into()))
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "exists", "room": "x"}))),
        Some((
            430,
            "Invalid element type (room should be a positive integer)".into()
        ))
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "create", "videocodec": "foo"}))),
        Some((
            430,
            "Invalid element (videocodec can only be or contain vp8, vp9, av1, h264 or h265)"
                .into()
        ))
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "listparticipants", "room": 5}))),
        Some((426, "No such room (5)".into()))
    );
    // The Admin API reaches the same requests.
    let v =
        t.vr.handle_admin_message(json!({"request": "exists", "room": 99}))
            .unwrap();
    assert_eq!(v["exists"], true);
    let v =
        t.vr.handle_admin_message(json!({"request": "join"}))
            .unwrap();
    assert_eq!(v["error_code"], 423);
}

#[test]
fn string_ids() {
    let mut t = T::new(
        Some("general: { string_ids = true }\nroom-lobby: { }\n"),
        None,
    );
    let a = t.attach();
    assert_eq!(
        t.sync(a, json!({"request": "exists", "room": "lobby"}))["exists"],
        true
    );
    assert_eq!(
        code(&t.sync(a, json!({"request": "exists", "room": 5}))),
        Some((430, "Invalid element type (room should be a string)".into()))
    );
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": "lobby", "id": "alice"}),
        None,
    );
    assert_eq!(ev.data["id"], "alice");
    assert_eq!(ev.data["room"], "lobby");
}

#[test]
fn publish_subscribe_unpublish() {
    let mut t = T::new(None, None);
    let adm = t.attach();
    let d = t.sync(adm, json!({"request": "create", "room": 7, "secret": "s", "notify_joining": true, "publishers": 1}));
    assert_eq!(d["videoroom"], "created");
    let (alice, bob, sub, carol) = (t.attach(), t.attach(), t.attach(), t.attach());
    // A request before joining.
    let (ev, _) = t.req(alice, json!({"request": "configure"}), None);
    assert_eq!(
        code(&ev.data),
        Some((424, "Invalid request on unconfigured participant".into()))
    );
    let (ev, _) = t.req(
        bob,
        json!({"request": "join", "ptype": "publisher", "room": 7, "display": "bob"}),
        None,
    );
    assert_eq!(ev.data["videoroom"], "joined");
    assert_eq!(ev.data["attendees"], json!([]));
    let (ev, others) = t.req(
        alice,
        json!({"request": "join", "ptype": "publisher", "room": 7, "display": "alice", "id": 11}),
        None,
    );
    assert_eq!(ev.data["id"], 11);
    assert_eq!(
        ev.data["attendees"].as_array().unwrap().len(),
        1,
        "bob is an attendee"
    );
    let pvt = ev.data["private_id"].as_u64().unwrap();
    assert!(others
        .iter()
        .any(|p| p.handle == t.hid(bob) && p.data["joining"]["id"] == 11));
    let (ev, _) = t.req(
        alice,
        json!({"request": "join", "ptype": "publisher", "room": 7}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((425, "Already in as a publisher on this handle".into()))
    );
    let (ev, _) = t.req(
        carol,
        json!({"request": "join", "ptype": "publisher", "room": 7, "id": 11}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((436, "User ID 11 already exists".into()))
    );
    // Not publishing yet: no such feed.
    let (ev, _) = t.req(
        sub,
        json!({"request": "join", "ptype": "subscriber", "room": 7, "streams": [{"feed": 11}]}),
        None,
    );
    assert_eq!(code(&ev.data), Some((428, "No such feed (11)".into())));
    // An answer is not what a publisher sends.
    let (ev, _) = t.req(alice, json!({"request": "publish"}), T::answer());
    assert_eq!(ev.data["error_code"], 431);
    // Publish: configured with the streams and a receive-only answer.
    let (ev, _) = t.req(
        alice,
        json!({"request": "publish", "descriptions": [{"mid": "1", "description": "cam"}]}),
        T::offer(),
    );
    assert_eq!(ev.data["configured"], "ok");
    assert_eq!(ev.data["audio_codec"], "opus");
    assert_eq!(ev.data["video_codec"], "vp8");
    let streams = ev.data["streams"].as_array().unwrap();
    assert_eq!(
        streams[0],
        json!({"type": "audio", "mindex": 0, "mid": "0", "codec": "opus", "fec": true, "audiolevel_ext_id": 1})
    );
    assert_eq!(streams[1]["simulcast"], true);
    assert_eq!(streams[1]["description"], "cam");
    match &ev.jsep {
        Some(LocalJsep::Answer(p)) => {
            assert!(p.recv_only);
            assert_eq!(p.video_codec.as_deref(), Some("vp8"));
        }
        other => panic!("expected an answer: {other:?}"),
    }
    // The room hears of it once the PeerConnection is up.
    t.setup_media(alice);
    let evs = t.take();
    let pubs = evs
        .iter()
        .find(|p| p.handle == t.hid(bob))
        .expect("bob told");
    assert_eq!(pubs.data["publishers"][0]["id"], 11);
    assert_eq!(pubs.data["publishers"][0]["display"], "alice");
    // A second publisher does not fit (publishers = 1).
    let (ev, _) = t.req(bob, json!({"request": "publish"}), T::offer());
    assert_eq!(
        code(&ev.data),
        Some((
            432,
            "Maximum number of publishers (1) already reached".into()
        ))
    );
    let d = t.sync(adm, json!({"request": "listparticipants", "room": 7}));
    let parts = d["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 2);
    assert!(parts
        .iter()
        .any(|p| p["id"] == 11 && p["publisher"] == true));
    // Subscribe: an offer with one m-line per stream, sendonly, in the publisher's codecs.
    let (mut ev, _) = t.req(sub, json!({"request": "join", "ptype": "subscriber", "room": 7, "streams": [{"feed": 11}], "private_id": pvt}), None);
    match &ev.jsep {
        Some(LocalJsep::Offer { media, data, .. }) => {
            assert_eq!(media.len(), 2);
            assert!(media.iter().all(|m| m.send && !m.recv));
            assert_eq!(media[1].codec.as_deref(), Some("vp8"));
            assert!(!data);
        }
        other => panic!("expected an offer: {other:?}"),
    }
    T::fill(&mut ev, &["a0", "v1"]);
    assert_eq!(ev.data["videoroom"], "attached");
    let s = ev.data["streams"].as_array().unwrap();
    assert_eq!(s[0]["mid"], "a0");
    assert_eq!(s[1]["mid"], "v1");
    assert_eq!(s[1]["feed_id"], 11);
    assert_eq!(s[1]["feed_mid"], "1");
    assert_eq!(s[1]["feed_description"], "cam");
    assert_eq!(s[1]["simulcast"]["substream"], -1);
    // A subscriber sends no offers; start with the answer.
    let (ev, _) = t.req(sub, json!({"request": "start"}), T::offer());
    assert_eq!(
        code(&ev.data),
        Some((431, "Only publishers send offers".into()))
    );
    let (ev, _) = t.req(sub, json!({"request": "start"}), T::answer());
    assert_eq!(ev.data["started"], "ok");
    let (ev, _) = t.req(sub, json!({"request": "pause"}), None);
    assert_eq!(ev.data["paused"], "ok");
    let (ev, _) = t.req(
        sub,
        json!({"request": "configure", "streams": [{"mid": "v1", "substream": 5}]}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((
            430,
            "Invalid value (substream/spatial_layer should be 0, 1 or 2)".into()
        ))
    );
    let (ev, _) = t.req(
        sub,
        json!({"request": "subscribe", "streams": [{"feed": 11, "mid": "7"}]}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((428, "No such mid '7' in feed (11)".into()))
    );
    // Unpublish: the publisher's PC closes, bob hears `unpublished`, the subscription gets an
    // update with its streams inactive.
    let (ev, others) = t.req(alice, json!({"request": "unpublish"}), None);
    assert_eq!(
        Value::Object(ev.data),
        json!({"videoroom": "event", "room": 7, "unpublished": "ok"})
    );
    assert!(others
        .iter()
        .any(|p| p.handle == t.hid(bob) && p.data["unpublished"] == 11));
    let mut upd = others
        .into_iter()
        .find(|p| p.handle == t.hid(sub))
        .expect("subscriber updated");
    assert_eq!(upd.data["videoroom"], "updated");
    assert!(upd.transaction.is_none());
    if let Some(LocalJsep::Offer { media, .. }) = &upd.jsep {
        assert!(media.is_empty(), "every m-line goes inactive");
    }
    let m = OfferMids {
        media: vec![],
        data: None,
        all: vec!["a0".into(), "v1".into()],
    };
    if let Some(LocalJsep::Offer { fill: Some(f), .. }) = &upd.jsep {
        (f.0)(&mut upd.data, &m);
    }
    assert!(upd.data["streams"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s["active"] == false));
    assert!(t.rec.closed.lock().unwrap().contains(&t.hid(alice)));
    let (ev, _) = t.req(alice, json!({"request": "unpublish"}), None);
    assert_eq!(
        code(&ev.data),
        Some((435, "Can't unpublish, not published".into()))
    );
    // Kick bob: he hears leaving/kicked, alice hears kicked; after that he is out.
    let d = t.sync(
        adm,
        json!({"request": "kick", "room": 7, "secret": "s", "id": bob_id(&t, bob)}),
    );
    assert_eq!(Value::Object(d), json!({"videoroom": "success"}));
    let evs = t.take();
    assert!(evs.iter().any(|p| p.handle == t.hid(bob)
        && p.data["leaving"] == "ok"
        && p.data["reason"] == "kicked"));
    assert!(evs
        .iter()
        .any(|p| p.handle == t.hid(alice) && p.data.contains_key("kicked")));
    let (ev, _) = t.req(bob, json!({"request": "configure"}), None);
    assert_eq!(code(&ev.data), Some((426, "No such room".into())));
    let (ev, _) = t.req(
        bob,
        json!({"request": "join", "ptype": "publisher", "room": 7}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((425, "Not in a room (create a new handle)".into()))
    );
    // Leave, then destroy: everyone left is told, subscriptions included.
    let (ev, others) = t.req(alice, json!({"request": "leave"}), None);
    assert_eq!(ev.data["leaving"], "ok");
    assert!(others.is_empty(), "nobody else is in the room: {others:?}");
    let d = t.sync(adm, json!({"request": "destroy", "room": 7, "secret": "s"}));
    assert_eq!(d["videoroom"], "destroyed");
    let evs = t.take();
    assert!(evs
        .iter()
        .any(|p| p.handle == t.hid(sub) && p.data["videoroom"] == "destroyed"));
}

fn bob_id(t: &T, bob: usize) -> Value {
    let (h, s) = &t.handles[bob];
    t.vr.query_session(h, s)["id"].clone()
}

#[test]
fn pins_tokens_and_private_ids() {
    let mut t = T::new(None, None);
    let adm = t.attach();
    t.sync(adm, json!({"request": "create", "room": 3, "secret": "s", "pin": "1234", "require_pvtid": true, "allowed": ["tok"]}));
    let a = t.attach();
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 3, "token": "tok"}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((429, "Missing mandatory element (pin)".into()))
    );
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 3, "pin": "0", "token": "tok"}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((433, "Unauthorized (wrong pin)".into()))
    );
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 3, "pin": "1234"}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((433, "Unauthorized (not in the allowed list)".into()))
    );
    let d = t.sync(
        adm,
        json!({"request": "allowed", "room": 3, "secret": "s", "action": "add", "allowed": ["t2"]}),
    );
    assert_eq!(d["allowed"], json!(["t2", "tok"]));
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 3, "pin": "1234", "token": "t2"}),
        None,
    );
    assert_eq!(ev.data["videoroom"], "joined");
    t.req(a, json!({"request": "publish"}), T::offer());
    t.setup_media(a);
    let feed = ev.data["id"].clone();
    let s = t.attach();
    let (ev, _) = t.req(s, json!({"request": "join", "ptype": "subscriber", "room": 3, "pin": "1234", "streams": [{"feed": feed}]}), None);
    assert_eq!(
        code(&ev.data),
        Some((
            433,
            "Unauthorized (this room requires a valid private_id)".into()
        ))
    );
    let d = t.sync(
        adm,
        json!({"request": "allowed", "room": 3, "secret": "s", "action": "disable"}),
    );
    assert!(!d.contains_key("allowed"));
    let l = t.attach();
    let (ev, _) = t.req(
        l,
        json!({"request": "join", "ptype": "lurker", "room": 3}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((430, "Invalid element (ptype)".into()))
    );
}

#[test]
fn permanent_rooms_keep_the_rest_of_the_file() {
    let dir = std::env::temp_dir().join(format!("jano-vr-perm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("janus.plugin.videoroom.jcfg");
    let text = "general: { admin_key = \"k\" events = false }\nroom-1: { description = \"one\" }\n";
    std::fs::write(&path, text).unwrap();
    let mut t = T::new(Some(text), Some(dir.clone()));
    let a = t.attach();
    let d = t.sync(
        a,
        json!({"request": "create", "room": 2, "permanent": true}),
    );
    assert_eq!(
        code(&d),
        Some((429, "Missing mandatory element (admin_key)".into()))
    );
    let d = t.sync(a, json!({"request": "create", "room": 2, "permanent": true, "admin_key": "k", "description": "two", "publishers": 9}));
    assert_eq!(d["permanent"], true);
    let saved = Jcfg::load(&path).unwrap();
    assert_eq!(saved.get_str("general", "admin_key").as_deref(), Some("k"));
    assert_eq!(
        saved.get_str("room-1", "description").as_deref(),
        Some("one")
    );
    assert_eq!(
        saved.get_str("room-2", "description").as_deref(),
        Some("two")
    );
    assert_eq!(saved.get_int("room-2", "publishers"), Some(9));
    // A restart reads the room back.
    let mut t2 = T::new(
        Some(&std::fs::read_to_string(&path).unwrap()),
        Some(dir.clone()),
    );
    let b = t2.attach();
    assert_eq!(
        t2.sync(b, json!({"request": "exists", "room": 2}))["exists"],
        true
    );
    let d = t2.sync(
        b,
        json!({"request": "destroy", "room": 2, "permanent": true}),
    );
    assert_eq!(d["videoroom"], "destroyed");
    let saved = Jcfg::load(&path).unwrap();
    assert!(saved.category("room-2").is_none());
    assert!(saved.category("room-1").is_some());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `signed_tokens` rooms (core in signed mode): `join` needs a token signed with the core's
/// secret, of VideoRoom's realm, naming the room; checked before the PIN. Without signed mode
/// the setting is ignored, as Janus does.
#[test]
fn signed_room_tokens() {
    let mut t = T::with_secret(None, None, Some("sekrit"));
    let adm = t.attach();
    t.sync(
        adm,
        json!({"request": "create", "room": 9, "pin": "1", "signed_tokens": true}),
    );
    let far = now() + 3600;
    let good = jano_core::sign_token("sekrit", far, VR, &["room=9"]);
    let refused = [
        None,
        Some(jano_core::sign_token("sekrit", far, VR, &["room=8"])),
        Some(jano_core::sign_token(
            "sekrit",
            far,
            "janus",
            &[VR, "room=9"],
        )),
        Some(jano_core::sign_token(
            "sekrit",
            now().saturating_sub(10),
            VR,
            &["room=9"],
        )),
        Some(jano_core::sign_token("other", far, VR, &["room=9"])),
    ];
    let a = t.attach();
    for token in refused {
        let mut body = json!({"request": "join", "ptype": "publisher", "room": 9});
        if let Some(tok) = &token {
            body["token"] = json!(tok);
        }
        let (ev, _) = t.req(a, body, None);
        assert_eq!(
            code(&ev.data),
            Some((433, "Unauthorized (wrong token)".into())),
            "token {token:?}"
        );
    }
    // The token passes; the PIN is checked after it.
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 9, "token": good}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((429, "Missing mandatory element (pin)".into()))
    );
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 9, "token": good, "pin": "1"}),
        None,
    );
    assert_eq!(ev.data["videoroom"], "joined", "{:?}", ev.data);
    let s = t.attach();
    let feed = ev.data["id"].clone();
    let (ev, _) = t.req(
        s,
        json!({"request": "join", "ptype": "subscriber", "room": 9, "pin": "1", "streams": [{"feed": feed}]}),
        None,
    );
    assert_eq!(
        code(&ev.data),
        Some((433, "Unauthorized (wrong token)".into()))
    );

    // Not in signed mode: the setting does not hold.
    let mut t = T::new(None, None);
    let adm = t.attach();
    t.sync(
        adm,
        json!({"request": "create", "room": 9, "signed_tokens": true}),
    );
    let a = t.attach();
    let (ev, _) = t.req(
        a,
        json!({"request": "join", "ptype": "publisher", "room": 9}),
        None,
    );
    assert_eq!(ev.data["videoroom"], "joined", "{:?}", ev.data);
}

fn e2ee_offer() -> Option<Jsep> {
    let mut extra = Map::new();
    extra.insert("e2ee".into(), Value::Bool(true));
    Some(Jsep {
        kind: JsepType::Offer,
        sdp: OFFER.into(),
        extra,
    })
}

/// The offer or answer a pushed event carries asks for end-to-end encryption.
fn jsep_e2ee(p: &Pushed) -> bool {
    match &p.jsep {
        Some(LocalJsep::Answer(prefs)) | Some(LocalJsep::Offer { prefs, .. }) => prefs.e2ee,
        None => panic!("no JSEP: {p:?}"),
    }
}

fn publish(t: &mut T, i: usize, room: u64, id: u64, jsep: Option<Jsep>) -> Pushed {
    let (ev, _) = t.req(
        i,
        json!({"request": "joinandconfigure", "ptype": "publisher", "room": room, "id": id}),
        jsep,
    );
    t.setup_media(i);
    t.take();
    ev
}

#[test]
fn dummy_publisher_and_e2ee() {
    let mut t = T::new(None, None);
    let adm = t.attach();
    // A dummy publisher with one stream per room codec that `dummy_streams` names (entries
    // without a codec are skipped), end-to-end encrypted as the room requires.
    let d = t.sync(
        adm,
        json!({"request": "create", "room": 9, "secret": "s", "publishers": 1,
               "require_e2ee": true, "dummy_publisher": true,
               "audiocodec": "opus,pcmu", "videocodec": "vp8,h264",
               "dummy_streams": [{"codec": "opus", "fmtp": "useinbandfec=1"}, {"codec": "h264"},
                                 {"fmtp": "x"}, 5]}),
    );
    assert_eq!(d["videoroom"], "created");
    let d = t.sync(adm, json!({"request": "listparticipants", "room": 9}));
    let parts = d["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["display"], "Dummy publisher");
    assert_eq!(parts[0]["dummy"], true);
    assert_eq!(parts[0]["publisher"], true);
    let dummy_id = parts[0]["id"].clone();
    let (alice, sub, sub2) = (t.attach(), t.attach(), t.attach());
    let (ev, _) = t.req(
        alice,
        json!({"request": "join", "ptype": "publisher", "room": 9, "id": 1}),
        None,
    );
    let pubs = ev.data["publishers"].as_array().unwrap();
    assert_eq!(pubs.len(), 1, "the dummy is listed as a publisher");
    assert_eq!(pubs[0]["dummy"], true);
    assert_eq!(
        pubs[0]["streams"],
        json!([{"type": "audio", "mindex": 0, "mid": "0", "codec": "opus", "fec": true},
               {"type": "video", "mindex": 1, "mid": "1", "codec": "h264"}])
    );
    // A publisher must encrypt here; the dummy does not count against `publishers`.
    let (ev, _) = t.req(alice, json!({"request": "publish"}), T::offer());
    assert_eq!(
        code(&ev.data),
        Some((433, "Room requires end-to-end encrypted media".into()))
    );
    let (ev, _) = t.req(alice, json!({"request": "publish"}), e2ee_offer());
    assert_eq!(ev.data["configured"], "ok");
    assert!(jsep_e2ee(&ev), "the answer is marked e2ee");
    t.setup_media(alice);
    let evs = t.take();
    assert!(
        evs.iter().all(|p| p.handle != 0),
        "nothing goes to the dummy: {evs:?}"
    );
    let (h, s) = t.handles[alice].clone();
    assert_eq!(t.vr.query_session(&h, &s)["e2ee"], true);
    // The dummy cannot be kicked.
    let d = t.sync(
        adm,
        json!({"request": "kick", "room": 9, "secret": "s", "id": dummy_id}),
    );
    assert_eq!(code(&d), Some((428, "Can't kick dummy users".into())));
    // A subscription to placeholders and a real feed: encrypted, as both are.
    let (ev, _) = t.req(
        sub,
        json!({"request": "join", "ptype": "subscriber", "room": 9,
               "streams": [{"feed": dummy_id, "mid": "1"}, {"feed": 1, "mid": "0"}]}),
        None,
    );
    assert!(jsep_e2ee(&ev));
    match &ev.jsep {
        Some(LocalJsep::Offer { media, .. }) => {
            assert_eq!(media.len(), 2);
            assert_eq!(media[0].codec.as_deref(), Some("h264"));
        }
        other => panic!("expected an offer: {other:?}"),
    }
    let (h, s) = t.handles[sub].clone();
    assert_eq!(t.vr.query_session(&h, &s)["e2ee"], true);
    // Destroying the room tells the people, not the dummy.
    let d = t.sync(adm, json!({"request": "destroy", "room": 9, "secret": "s"}));
    assert_eq!(d["videoroom"], "destroyed");
    let evs = t.take();
    assert!(evs.iter().all(|p| p.handle != 0), "{evs:?}");
    assert!(evs.iter().any(|p| p.handle == t.hid(alice)));
    assert!(!t.rec.closed.lock().unwrap().contains(&0));

    // Without require_e2ee a subscription takes the first feed's side, and mixing is refused.
    t.sync(adm, json!({"request": "create", "room": 10}));
    let (bob, carol) = (t.attach(), t.attach());
    publish(&mut t, bob, 10, 2, e2ee_offer());
    let ev = publish(&mut t, carol, 10, 3, T::offer());
    assert!(!jsep_e2ee(&ev));
    let join = |feeds: Value| json!({"request": "join", "ptype": "subscriber", "room": 10, "streams": feeds});
    let (ev, _) = t.req(sub2, join(json!([{"feed": 3}, {"feed": 2}])), None);
    assert_eq!(
        code(&ev.data),
        Some((
            438,
            "Can't have end-to-end encrypted feed in this subscription (2)".into()
        ))
    );
    let (ev, _) = t.req(sub2, join(json!([{"feed": 2}, {"feed": 3}])), None);
    assert_eq!(
        code(&ev.data),
        Some((
            438,
            "Can't have not end-to-end encrypted feed in this subscription (3)".into()
        ))
    );
    let (ev, _) = t.req(sub2, join(json!([{"feed": 3}])), None);
    assert_eq!(ev.data["videoroom"], "attached");
    assert!(!jsep_e2ee(&ev));
    let mixed = Some((
        438,
        "Can't mix normal and end-to-end encrypted subscriptions".into(),
    ));
    let (ev, _) = t.req(
        sub2,
        json!({"request": "subscribe", "streams": [{"feed": 2}]}),
        None,
    );
    assert_eq!(code(&ev.data), mixed);
    let (ev, _) = t.req(
        sub2,
        json!({"request": "switch", "streams": [{"feed": 2, "mid": "1", "sub_mid": "1"}]}),
        None,
    );
    assert_eq!(code(&ev.data), mixed);
}

#[test]
fn dummy_publisher_from_the_config_file() {
    let cfg = "general: {}\nroom-5: {\n description = \"five\"\n dummy_publisher = true\n \
               videocodec = \"vp8,vp9\"\n dummy_streams = ( { codec = \"vp9\", fmtp = \"profile-id=2\" } )\n}\n";
    let mut t = T::new(Some(cfg), None);
    let adm = t.attach();
    let d = t.sync(adm, json!({"request": "listparticipants", "room": 5}));
    let parts = d["participants"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{d:?}");
    assert_eq!(parts[0]["dummy"], true);
    let p = t.attach();
    let (ev, _) = t.req(
        p,
        json!({"request": "join", "ptype": "publisher", "room": 5}),
        None,
    );
    assert_eq!(
        ev.data["publishers"][0]["streams"],
        json!([{"type": "video", "mindex": 0, "mid": "0", "codec": "vp9", "vp9_profile": "2"}])
    );
    let d = t.sync(adm, json!({"request": "list"}));
    let rooms = d["list"].as_array().unwrap();
    assert_eq!(rooms[0]["dummy_publisher"], true);
}

#[test]
fn svc_layers_are_requested_and_shown() {
    let mut t = T::new(None, None);
    let adm = t.attach();
    t.sync(
        adm,
        json!({"request": "create", "room": 12, "videocodec": "vp9"}),
    );
    let (alice, sub) = (t.attach(), t.attach());
    // One VP9 stream (no simulcast rids), listed as SVC.
    let sdp: String = OFFER
        .split_inclusive("\r\n")
        .filter(|l| !l.starts_with("a=rid") && !l.starts_with("a=simulcast"))
        .collect();
    let mut extra = Map::new();
    extra.insert(
        "svc".into(),
        json!([{"mindex": 1, "mid": "1", "svc": "L3T3_KEY"}]),
    );
    let jsep = Some(Jsep {
        kind: JsepType::Offer,
        sdp,
        extra,
    });
    let ev = publish(&mut t, alice, 12, 1, jsep);
    assert_eq!(ev.data["streams"][1]["codec"], "vp9");
    assert_eq!(ev.data["streams"][1]["svc"], true, "{:?}", ev.data);
    // Out-of-range layers: each pair of keys has Janus's wording.
    let join = |extra: Value| {
        let mut s = json!({"feed": 1});
        if let (Some(o), Value::Object(x)) = (s.as_object_mut(), extra) {
            o.extend(x);
        }
        json!({"request": "join", "ptype": "subscriber", "room": 12, "streams": [s]})
    };
    let (ev, _) = t.req(sub, join(json!({"spatial_layer": 3})), None);
    assert_eq!(
        code(&ev.data),
        Some((
            430,
            "Invalid value (substream/spatial_layer should be 0, 1 or 2)".into()
        ))
    );
    let (ev, _) = t.req(sub, join(json!({"temporal": 7})), None);
    assert_eq!(
        code(&ev.data),
        Some((
            430,
            "Invalid value (temporal/temporal_layer should be 0, 1 or 2)".into()
        ))
    );
    let (mut ev, _) = t.req(
        sub,
        join(json!({"spatial_layer": 1, "temporal_layer": 0})),
        None,
    );
    T::fill(&mut ev, &["a", "v"]);
    assert_eq!(
        ev.data["streams"][1]["svc"],
        json!({"spatial-layer": -1, "target-spatial-layer": 1,
               "temporal-layer": -1, "target-temporal-layer": 0})
    );
    let (ev, _) = t.req(
        sub,
        json!({"request": "configure", "streams": [{"mid": "v", "temporal_layer": 3}]}),
        None,
    );
    assert_eq!(ev.data["error_code"], 430);
    let (ev, _) = t.req(
        sub,
        json!({"request": "configure", "streams": [{"mid": "v", "spatial_layer": 2}]}),
        None,
    );
    assert_eq!(ev.data["configured"], "ok");
    let (h, s) = t.handles[sub].clone();
    let q = t.vr.query_session(&h, &s);
    assert_eq!(q["streams"][1]["svc"]["target-spatial-layer"], 2, "{q}");
}
