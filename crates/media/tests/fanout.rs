//! Fan-out through the plugin contract: a test plugin forwards one str0m publisher to many str0m
//! subscribers spread over every media worker with a `Fanout`, and the engine rewrites each
//! copy for its subscriber (payload type, SSRC, sequence numbers, SRTP rollover).

mod common;

use common::*;
use jano_plugin::{
    session_as, CoreServices, Dest, Fanout, HandleRef, Jsep, JsepType, LocalJsep, Map, MediaCtx,
    MediaKind, MediaPrefs, Plugin, PluginInfo, PluginResult, PluginSession, RtpPacket, SessionRef,
    Value,
};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, Mid};
use str0m::RtcConfig;

const FAN: &str = "janus.plugin.fanouttest";

const FAN_INFO: PluginInfo = PluginInfo {
    package: FAN,
    name: "fan-out test",
    author: "jano",
    description: "forwards a publisher to its subscribers",
    version: 1,
    version_string: "0.0.1",
};

/// One publisher's forwarding sets, per m-line kind.
struct Source {
    audio: RwLock<Option<Fanout>>,
    video: RwLock<Option<Fanout>>,
}

impl Source {
    fn fanout(&self, kind: MediaKind) -> &RwLock<Option<Fanout>> {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }
}

struct Inner {
    services: Arc<dyn CoreServices>,
    sources: Mutex<HashMap<u64, Arc<Source>>>,
}

impl Inner {
    fn source(&self, id: u64) -> Arc<Source> {
        self.sources
            .lock()
            .unwrap()
            .entry(id)
            .or_insert_with(|| {
                let router = self.services.media_router().expect("a media engine");
                Arc::new(Source {
                    audio: RwLock::new(Some(Fanout::new(router.clone()))),
                    video: RwLock::new(Some(Fanout::new(router))),
                })
            })
            .clone()
    }

    /// Makes `sub` receive `feed` (audio on m-line 0, video on 1), leaving its old feed.
    fn follow(&self, sub: u64, old: Option<u64>, feed: u64) {
        if let Some(o) = old {
            let s = self.source(o);
            for kind in [MediaKind::Audio, MediaKind::Video] {
                if let Some(f) = s.fanout(kind).write().unwrap().as_mut() {
                    f.remove(sub);
                }
            }
        }
        let s = self.source(feed);
        for (kind, mindex) in [(MediaKind::Audio, 0), (MediaKind::Video, 1)] {
            if let Some(f) = s.fanout(kind).write().unwrap().as_mut() {
                f.insert(Dest::new(sub, mindex));
            }
        }
    }
}

/// A handle of the fan-out plugin: a publisher (its own id is its feed) or a subscriber.
struct FanHandle {
    inner: Arc<Inner>,
    id: u64,
    /// The subscriber's feed, set by `subscribe`/`switch`.
    feed: Mutex<Option<u64>>,
    publisher: Mutex<Option<Arc<Source>>>,
}

impl PluginSession for FanHandle {
    fn setup_media(&self, _ctx: &mut MediaCtx<'_>) {
        // A subscriber starts receiving once its PeerConnection is up.
        if let Some(feed) = *self.feed.lock().unwrap() {
            self.inner.follow(self.id, None, feed);
        }
    }

    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        let source = self.publisher.lock().unwrap().clone();
        if let Some(s) = source {
            if let Some(f) = s.fanout(packet.kind).read().unwrap().as_ref() {
                f.send(packet);
            }
        }
    }
}

struct FanPlugin {
    inner: Arc<Inner>,
}

impl Plugin for FanPlugin {
    fn info(&self) -> &PluginInfo {
        &FAN_INFO
    }

    fn create_session(&self, h: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(FanHandle {
            inner: self.inner.clone(),
            id: h.handle_id,
            feed: Mutex::new(None),
            publisher: Mutex::new(None),
        }))
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(me) = session_as::<FanHandle>(session) else {
            return PluginResult::Error("no state".into());
        };
        let feed = body.get("feed").and_then(Value::as_u64);
        match body.get("request").and_then(Value::as_str) {
            Some("publish") => {
                *me.publisher.lock().unwrap() = Some(self.inner.source(handle.handle_id));
            }
            Some("subscribe") => *me.feed.lock().unwrap() = feed,
            Some("switch") => {
                let mut cur = me.feed.lock().unwrap();
                if let Some(f) = feed {
                    self.inner.follow(handle.handle_id, *cur, f);
                }
                *cur = feed;
            }
            _ => return PluginResult::Error("unknown request".into()),
        }
        let answer = jsep
            .filter(|j| j.kind == JsepType::Offer)
            .map(|_| LocalJsep::Answer(MediaPrefs::default()));
        let mut ev = Map::new();
        ev.insert("fanout".into(), json!("ok"));
        let _ = self
            .inner
            .services
            .push_event(handle, Some(transaction.into()), ev, answer);
        PluginResult::OkWait(None)
    }

    fn destroy_session(&self, handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        if let Some(me) = session_as::<FanHandle>(session) {
            if let Some(feed) = *me.feed.lock().unwrap() {
                let s = self.inner.source(feed);
                for kind in [MediaKind::Audio, MediaKind::Video] {
                    if let Some(f) = s.fanout(kind).write().unwrap().as_mut() {
                        f.remove(handle.handle_id);
                    }
                }
            }
        }
        Ok(())
    }
}

fn fan_opts() -> Opts {
    Opts {
        workers: 2,
        plugins: Box::new(|q| {
            vec![Arc::new(FanPlugin {
                inner: Arc::new(Inner {
                    services: q.services_for(FAN),
                    sources: Mutex::new(HashMap::new()),
                }),
            }) as Arc<dyn Plugin>]
        }),
        ..Opts::default()
    }
}

/// A connected client on the fan-out plugin: `request` with its offer, answer applied.
async fn join(gw: &mut Gw, sid: u64, mut client: Client, body: Value) -> (u64, Client, Vec<Mid>) {
    let hid = gw.attach(sid, FAN);
    let (offer, pending, mids) = client.offer(true, true, false);
    let r = gw.message(sid, hid, body, Some(json!({"type": "offer", "sdp": offer})));
    assert_eq!(r["janus"], "ack", "{r}");
    let t = r["transaction"].clone();
    let ev = gw
        .event("fan-out answer", |e| {
            e["janus"] == "event" && e["transaction"] == t
        })
        .await;
    let sdp = ev["jsep"]["sdp"].as_str().expect("answer sdp").to_owned();
    client.accept_answer(pending, &sdp);
    (hid, client, mids)
}

/// A subscriber client whose payload types differ from the publisher's (and from other
/// subscribers'): opus on 96 + n, VP8 on 110 + n.
async fn subscriber_client(n: u8) -> (Client, u8, u8) {
    let (opus, vp8) = (96 + n % 10, 110 + n % 10);
    let mut rc = RtcConfig::new().clear_codecs();
    let cc = rc.codec_config();
    cc.add_config(
        opus.into(),
        None,
        Codec::Opus,
        Frequency::FORTY_EIGHT_KHZ,
        Some(2),
        FormatParams {
            min_p_time: Some(10),
            use_inband_fec: Some(true),
            ..Default::default()
        },
    );
    cc.add_config(
        vp8.into(),
        None,
        Codec::Vp8,
        Frequency::NINETY_KHZ,
        None,
        FormatParams::default(),
    );
    (Client::with_config(rc).await, opus, vp8)
}

/// Sends `n` packets of each kind tagged `tag` from the publisher, 5 ms apart.
async fn publish(p: &mut Client, mids: &[Mid], tag: u8, n: u32) {
    for i in 0..n {
        for m in mids {
            p.send_rtp(*m, payload(tag, i));
        }
        p.run_for(Duration::from_millis(5)).await;
    }
}

/// What one subscriber got of `tag` on `mid`: (counter, pt, seq, ssrc) in arrival order.
fn got(c: &Client, mid: Mid, tag: u8) -> Vec<(u32, u8, u64, u32)> {
    c.rtp
        .iter()
        .zip(&c.rtp_meta)
        .filter(|((m, _), _)| *m == mid)
        .filter_map(|((_, p), (_, pt, seq, ssrc))| {
            parse_payload(p)
                .filter(|(t, _)| *t == tag)
                .map(|(_, n)| (n, *pt, *seq, *ssrc))
        })
        .collect()
}

fn subscribers() -> usize {
    std::env::var("JANO_FANOUT_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_to_many_subscribers_on_every_worker() {
    let mut gw = Gw::start(fan_opts());
    let sid = gw.create_session();
    let (pa, mut pub_a, mids_a) = join(
        &mut gw,
        sid,
        Client::new().await,
        json!({"request": "publish"}),
    )
    .await;
    let (pb, mut pub_b, mids_b) = join(
        &mut gw,
        sid,
        Client::new().await,
        json!({"request": "publish"}),
    )
    .await;
    assert!(
        pub_a.run_until(WAIT, |c| c.connected).await,
        "publisher A up"
    );
    assert!(
        pub_b.run_until(WAIT, |c| c.connected).await,
        "publisher B up"
    );

    let n_subs = subscribers();
    let mut subs = Vec::new();
    for i in 0..n_subs {
        let (c, opus, vp8) = subscriber_client(i as u8).await;
        let (hid, c, mids) =
            join(&mut gw, sid, c, json!({"request": "subscribe", "feed": pa})).await;
        subs.push((hid, c, mids, opus, vp8));
    }
    let sub_ids: Vec<u64> = subs.iter().map(|(h, ..)| *h).collect();
    let workers: HashSet<u64> = sub_ids.iter().map(|h| h % 2).collect();
    assert_eq!(workers.len(), 2, "subscribers on both workers");

    // Every subscriber drives its client on its own task; the publishers are driven here.
    const K: u32 = 30;
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (hid, mut c, mids, opus, vp8) in subs {
        let up = up_tx.clone();
        tasks.push(tokio::spawn(async move {
            let ok = c.run_until(Duration::from_secs(60), |c| c.connected).await;
            let _ = up.send(ok);
            let (a, v) = (mids[0], mids[1]);
            let done =
                |c: &Client| got(c, a, b'B').len() as u32 >= K && got(c, v, b'B').len() as u32 >= K;
            c.run_until(Duration::from_secs(120), done).await;
            (hid, c, mids, opus, vp8)
        }));
    }
    drop(up_tx);
    for _ in 0..n_subs {
        assert_eq!(up_rx.recv().await, Some(true), "a subscriber connected");
    }
    // The server side is up too (setup_media adds each to the fan-out).
    for _ in 0..n_subs {
        gw.event("subscriber webrtcup", |e| e["janus"] == "webrtcup")
            .await;
    }

    // Phase 1: publisher A → everyone.
    publish(&mut pub_a, &mids_a, b'A', K).await;
    pub_a.run_for(Duration::from_millis(300)).await;
    // Phase 2: everyone switches to publisher B on the same m-lines (another SSRC, other
    // sequence numbers): what they receive must continue without a gap. The plugin has applied
    // a switch by the time its `ack` is back.
    for hid in &sub_ids {
        let r = gw.message(sid, *hid, json!({"request": "switch", "feed": pb}), None);
        assert_eq!(r["janus"], "ack", "{r}");
    }
    publish(&mut pub_b, &mids_b, b'B', K).await;

    let mut ssrcs = HashSet::new();
    for t in tasks {
        let (hid, c, mids, opus, vp8) = t.await.expect("subscriber task");
        for (mid, pt) in [(mids[0], opus), (mids[1], vp8)] {
            let a = got(&c, mid, b'A');
            let b = got(&c, mid, b'B');
            let counters: Vec<u32> = a.iter().map(|x| x.0).collect();
            assert_eq!(
                counters,
                (0..K).collect::<Vec<_>>(),
                "handle {hid}: every A packet, in order"
            );
            let counters: Vec<u32> = b.iter().map(|x| x.0).collect();
            assert_eq!(
                counters,
                (0..K).collect::<Vec<_>>(),
                "handle {hid}: every B packet, in order"
            );
            let all: Vec<_> = a.iter().chain(&b).collect();
            assert!(
                all.iter().all(|x| x.1 == pt),
                "handle {hid}: its own payload type {pt}: {all:?}"
            );
            let ssrc = all[0].3;
            assert!(
                all.iter().all(|x| x.3 == ssrc),
                "handle {hid}: one SSRC across the switch"
            );
            assert!(ssrcs.insert(ssrc), "handle {hid}: an SSRC of its own");
            let seqs: Vec<u64> = all.iter().map(|x| x.2).collect();
            assert!(
                seqs.windows(2).all(|w| w[1] == w[0] + 1),
                "handle {hid}: continuous sequence numbers across the switch: {seqs:?}"
            );
        }
        let info = gw.handle_info(sid, hid);
        assert_eq!(info["webrtc"]["relay"]["dropped-queue"], 0, "{info}");
        assert_eq!(info["webrtc"]["relay"]["dropped-unsendable"], 0, "{info}");
    }
    gw.stop();
}

/// A subscriber that joins after the publisher's sequence numbers went past 70,000 (one SRTP
/// rollover behind them) still decrypts and decodes: the engine starts every destination's
/// numbering low, so its rollover counter starts at 0 as the subscriber expects.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriber_joining_after_a_rollover_decodes() {
    let mut gw = Gw::start(fan_opts());
    let sid = gw.create_session();
    let (pa, mut publisher, mids) = join(
        &mut gw,
        sid,
        Client::new().await,
        json!({"request": "publish"}),
    )
    .await;
    assert!(
        publisher.run_until(WAIT, |c| c.connected).await,
        "publisher up"
    );
    // Start at 64,000 so the run stays short; 6,100 packets per m-line cross 65,535 and end
    // past 70,000 as the server counts them.
    for m in &mids {
        publisher.set_seq(*m, 64_000);
    }
    for i in 0..6_100u32 {
        for m in &mids {
            publisher.send_rtp(*m, payload(b'X', i));
        }
        if i % 50 == 49 {
            publisher.run_for(Duration::from_millis(2)).await;
        }
    }
    // handle_info's snapshot is refreshed once a second.
    publisher.run_for(Duration::from_millis(1_200)).await;
    let info = gw.handle_info(sid, pa);
    let received: Vec<u64> = info["webrtc"]["media"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v["stats"]["in"]["packets"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        received.len() == 2 && received.iter().all(|n| *n > 5_900),
        "the publisher's packets reached the server past 70,000: {received:?}"
    );

    let (client, opus, vp8) = subscriber_client(3).await;
    let (hid, mut sub, smids) = join(
        &mut gw,
        sid,
        client,
        json!({"request": "subscribe", "feed": pa}),
    )
    .await;
    assert!(
        sub.run_until(WAIT, |c| c.connected).await,
        "late subscriber up"
    );
    gw.event("late subscriber webrtcup", is("webrtcup", hid))
        .await;
    const K: u32 = 20;
    let task = tokio::spawn(async move {
        let (a, v) = (smids[0], smids[1]);
        sub.run_until(Duration::from_secs(30), |c| {
            got(c, a, b'L').len() as u32 >= K && got(c, v, b'L').len() as u32 >= K
        })
        .await;
        (sub, smids)
    });
    publish(&mut publisher, &mids, b'L', K).await;
    let (sub, smids) = task.await.expect("subscriber task");
    for (mid, pt) in [(smids[0], opus), (smids[1], vp8)] {
        let l = got(&sub, mid, b'L');
        let counters: Vec<u32> = l.iter().map(|x| x.0).collect();
        assert_eq!(
            counters,
            (0..K).collect::<Vec<_>>(),
            "every packet decrypted, in order"
        );
        assert!(l.iter().all(|x| x.1 == pt));
        let seqs: Vec<u64> = l.iter().map(|x| x.2).collect();
        assert!(
            seqs.iter().all(|s| *s < 0x8000),
            "rollover counter 0: {seqs:?}"
        );
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    gw.stop();
}
