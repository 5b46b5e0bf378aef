//! VideoRoom through the real media engine: the requests and str0m clients the VideoRoom
//! tests share (a room, a connected publisher, a started subscription, what a client got).

use super::*;
use jano_plugin::Plugin;
use jano_videoroom::{VideoRoom, PACKAGE as VR};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use str0m::media::Mid;

pub fn vr_opts() -> Opts {
    Opts {
        workers: 2,
        plugins: Box::new(|q| {
            vec![Arc::new(VideoRoom::new(None, q.services_for(VR))) as Arc<dyn Plugin>]
        }),
        ..Opts::default()
    }
}

/// A VP8 payload: descriptor (S=1, partition 0), then a payload header whose P bit is clear
/// on a keyframe, then the tag and counter.
pub fn vp8(tag: u8, n: u32, key: bool) -> Vec<u8> {
    let mut p = vec![0x10, if key { 0x00 } else { 0x01 }];
    p.extend_from_slice(&payload(tag, n));
    p
}

/// Tag and counter of an audio (plain) or video (VP8, see [`vp8`]) payload.
pub fn parse_media(video: bool, p: &[u8]) -> Option<(u8, u32)> {
    if video {
        (p.first() == Some(&0x10))
            .then(|| p.get(2..))
            .flatten()
            .and_then(parse_payload)
    } else {
        parse_payload(p)
    }
}

/// A synchronous request: the `plugindata.data` of its `success`.
pub fn sync(gw: &Gw, sid: u64, hid: u64, body: Value) -> Value {
    let r = gw.message(sid, hid, body, None);
    assert_eq!(r["janus"], "success", "{r}");
    assert_eq!(r["plugindata"]["plugin"], VR, "{r}");
    r["plugindata"]["data"].clone()
}

/// An asynchronous request: its `event` (same transaction).
pub async fn request(gw: &mut Gw, sid: u64, hid: u64, body: Value, jsep: Option<Value>) -> Value {
    let r = gw.message(sid, hid, body, jsep);
    assert_eq!(r["janus"], "ack", "{r}");
    let t = r["transaction"].clone();
    gw.event("videoroom reply", |e| {
        e["janus"] == "event" && e["transaction"] == t
    })
    .await
}

/// Creates room `room` with these extra settings, from a handle of its own.
pub fn create_room(gw: &Gw, sid: u64, room: u64, extra: Value) {
    let hid = gw.attach(sid, VR);
    let mut body = json!({"request": "create", "room": room});
    if let (Some(b), Value::Object(x)) = (body.as_object_mut(), extra) {
        b.extend(x);
    }
    let d = sync(gw, sid, hid, body);
    assert_eq!(d["videoroom"], "created", "{d}");
    assert_eq!(d["room"], room, "{d}");
}

/// A connected publisher.
pub struct Pub {
    pub hid: u64,
    pub id: u64,
    pub c: Client,
    pub audio: Mid,
    pub video: Mid,
}

impl Pub {
    /// The payload type it sends on `mid` (what `Client::send_rtp` picks).
    pub fn pt(&self, mid: Mid) -> u8 {
        *self.c.rtc.media(mid).expect("media").remote_pts()[0]
    }

    /// One audio and one video packet per counter in `range`, tagged `tag`, `gap` apart (the
    /// first video packet is a keyframe).
    pub async fn send(&mut self, tag: u8, range: std::ops::Range<u32>, gap: Duration) {
        let first = range.start;
        for i in range {
            self.c.send_rtp(self.audio, payload(tag, i));
            self.c.send_rtp(self.video, vp8(tag, i, i == first));
            self.c.run_for(gap).await;
        }
    }
}

/// Joins `room` as a publisher of audio (Opus) and video (VP8) and waits until it is active.
pub async fn publisher(gw: &mut Gw, sid: u64, room: u64) -> Pub {
    publisher_with(gw, sid, room, false).await
}

/// [`publisher`], with a data channel when `data`.
pub async fn publisher_with(gw: &mut Gw, sid: u64, room: u64, data: bool) -> Pub {
    let opts = PubOpts {
        data,
        ..PubOpts::default()
    };
    publisher_of(gw, sid, room, &opts).await
}

/// How a test publisher offers.
pub struct PubOpts {
    /// With a data channel.
    pub data: bool,
    /// The room's video codec, which the publisher ends up sending.
    pub codec: &'static str,
    /// The offer's JSEP lists the video m-line as SVC, as janus.js does.
    pub svc: bool,
    /// Rewrites the offer's SDP before it is sent (the str0m client's own SDP stays).
    pub munge: Option<fn(&str) -> String>,
    /// The client's str0m configuration (header extensions, codecs), if not the default.
    pub config: Option<fn() -> str0m::RtcConfig>,
}

impl Default for PubOpts {
    fn default() -> PubOpts {
        PubOpts {
            data: false,
            codec: "vp8",
            svc: false,
            munge: None,
            config: None,
        }
    }
}

/// [`publisher_with`] as `opts` say.
pub async fn publisher_of(gw: &mut Gw, sid: u64, room: u64, opts: &PubOpts) -> Pub {
    let (data, codec, svc) = (opts.data, opts.codec, opts.svc);
    let hid = gw.attach(sid, VR);
    let mut c = match opts.config {
        Some(f) => Client::with_config(f()).await,
        None => Client::new().await,
    };
    let (offer, pending, mids) = c.offer(true, true, data);
    let offer = match opts.munge {
        Some(f) => f(&offer),
        None => offer,
    };
    let body = json!({"request": "joinandconfigure", "ptype": "publisher", "room": room,
        "display": "p"});
    let mut jsep = json!({"type": "offer", "sdp": offer});
    if svc {
        jsep["svc"] = json!([{"mindex": 1, "mid": mids[1].to_string(), "svc": "L3T3_KEY"}]);
    }
    let ev = request(gw, sid, hid, body, Some(jsep)).await;
    let d = &ev["plugindata"]["data"];
    assert_eq!(d["videoroom"], "joined", "{ev}");
    assert_eq!(d["configured"], "ok", "{ev}");
    assert_eq!(d["audio_codec"], "opus", "{ev}");
    assert_eq!(d["video_codec"], codec, "{ev}");
    if svc {
        assert_eq!(d["streams"][1]["svc"], true, "{ev}");
    }
    let id = d["id"].as_u64().expect("publisher id");
    assert_eq!(ev["jsep"]["type"], "answer", "{ev}");
    c.accept_answer(pending, ev["jsep"]["sdp"].as_str().expect("answer sdp"));
    assert!(c.run_until(WAIT, |c| c.connected).await, "publisher up");
    gw.event("publisher webrtcup", is("webrtcup", hid)).await;
    // Active once the plugin has seen its PeerConnection up: listed as a publisher.
    let mut active = false;
    for _ in 0..100 {
        let d = sync(
            gw,
            sid,
            hid,
            json!({"request": "listparticipants", "room": room}),
        );
        let list = d["participants"].as_array().cloned().unwrap_or_default();
        if list.iter().any(|p| p["id"] == id && p["publisher"] == true) {
            active = true;
            break;
        }
        c.run_for(Duration::from_millis(50)).await;
    }
    assert!(active, "publisher {id} listed as publishing");
    Pub {
        hid,
        id,
        c,
        audio: mids[0],
        video: mids[1],
    }
}

/// A started subscription (not yet connected: the caller drives its client).
pub struct Sub {
    pub hid: u64,
    pub c: Client,
    pub audio: Mid,
    pub video: Mid,
}

pub async fn subscriber(gw: &mut Gw, sid: u64, room: u64, feed: u64) -> Sub {
    subscriber_with(gw, sid, room, feed, 2).await
}

/// [`subscriber`] to a feed of `n_streams` streams (3: with its data channel).
pub async fn subscriber_with(gw: &mut Gw, sid: u64, room: u64, feed: u64, n_streams: usize) -> Sub {
    subscriber_on(gw, sid, room, feed, n_streams, Client::new().await).await
}

/// [`subscriber_with`] on a client of the caller's.
pub async fn subscriber_on(
    gw: &mut Gw,
    sid: u64,
    room: u64,
    feed: u64,
    n_streams: usize,
    c: Client,
) -> Sub {
    subscriber_of(gw, sid, room, json!([{"feed": feed}]), n_streams, "VP8", c).await
}

/// [`subscriber_on`] with the request's `streams` and the video codec (`VP8`…) the offer must
/// have.
pub async fn subscriber_of(
    gw: &mut Gw,
    sid: u64,
    room: u64,
    streams: Value,
    n_streams: usize,
    video_codec: &str,
    mut c: Client,
) -> Sub {
    let feed = streams[0]["feed"].clone();
    let hid = gw.attach(sid, VR);
    let body = json!({"request": "join", "ptype": "subscriber", "room": room,
        "streams": streams});
    let ev = request(gw, sid, hid, body, None).await;
    let d = &ev["plugindata"]["data"];
    assert_eq!(d["videoroom"], "attached", "{ev}");
    let streams = d["streams"].as_array().expect("streams");
    assert_eq!(streams.len(), n_streams, "{ev}");
    // The data stream names its sources instead (Janus's `sources`/`source_ids`).
    assert!(
        streams
            .iter()
            .all(|s| s["feed_id"] == feed
                || (s["type"] == "data" && s["source_ids"] == json!([feed]))),
        "{ev}"
    );
    assert_eq!(ev["jsep"]["type"], "offer", "{ev}");
    let offer = ev["jsep"]["sdp"].as_str().expect("offer sdp").to_owned();
    let (audio, video) = (mids_in(&offer, "audio"), mids_in(&offer, "video"));
    assert_eq!((audio.len(), video.len()), (1, 1), "{offer}");
    for (media, codec) in [
        ("audio", "opus/48000"),
        ("video", &format!("{video_codec}/90000")),
    ] {
        let rtpmap = format!("a=rtpmap:{} {codec}", first_pt(&offer, media));
        assert!(offer.contains(&rtpmap), "{rtpmap}: {offer}");
    }
    let answer = c.accept_offer(&offer);
    let jsep = json!({"type": "answer", "sdp": answer});
    let ev = request(gw, sid, hid, json!({"request": "start"}), Some(jsep)).await;
    assert_eq!(ev["plugindata"]["data"]["started"], "ok", "{ev}");
    Sub {
        hid,
        c,
        audio: audio[0],
        video: video[0],
    }
}

/// What a client got of `tag` on `mid`: (counter, payload type, SSRC, keyframe) in arrival
/// order.
pub fn got(c: &Client, mid: Mid, video: bool, tag: u8) -> Vec<(u32, u8, u32, bool)> {
    c.rtp
        .iter()
        .zip(&c.rtp_meta)
        .filter(|((m, _), _)| *m == mid)
        .filter_map(|((_, p), (_, pt, _, ssrc))| {
            let (t, n) = parse_media(video, p)?;
            let key = video && jano_plugin::rtp::vp8_keyframe(p);
            (t == tag).then_some((n, *pt, *ssrc, key))
        })
        .collect()
}
