//! Layered video in `janus.plugin.videoroom` through the real media engine, with str0m clients
//! over UDP on 127.0.0.1:
//! - VP9 SVC: a publisher sends one VP9 stream of three spatial and three temporal layers
//!   (payload descriptors laid out as Chromium's L3T3_KEY in non-flexible mode); a subscriber
//!   that asked for fewer layers gets exactly its layers, with gapless sequence numbers and the
//!   marker bit on the last packet of its top spatial layer, and hears
//!   `spatial_layer`/`temporal_layer`; moving up waits for a keyframe, which the plugin asks the
//!   publisher for.
//! - AV1 SVC: the same with the layers told by dependency descriptors, which subscribers get
//!   unchanged; the temporal layer moves up at a frame that switches into it.
//! - ssrc-based simulcast: a publisher offers its layers as an `a=ssrc-group:SIM` (no rids) and
//!   sends each on its SSRC; a subscriber gets the layer it asked for, and another on request.

mod common;

use common::videoroom::*;
use common::*;
use jano_media::ext::{dd_extension, DdValue, DD_ID};
use jano_plugin::dd::SimpleSvc;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use str0m::media::Mid;
use str0m::rtp::{ExtensionValues, RtpWrite};

/// Temporal layer of each picture in L3T3's four-picture cycle.
const TIDS: [u8; 4] = [0, 2, 1, 2];

/// One layer frame of a picture, sent as two packets (B, then E).
#[derive(Clone, Copy)]
struct LayerFrame {
    pic: u16,
    sid: u8,
    tid: u8,
    key: bool,
}

impl LayerFrame {
    /// The VP9 payload of one of its packets: descriptor (I with a 15-bit picture id, P unless
    /// a keyframe, L, B/E; layer byte TID|U|SID|D; TL0PICIDX), then the tag and counter.
    fn packet(&self, tag: u8, n: u32, begin: bool) -> Vec<u8> {
        let mut b0 = 0x80 | 0x20;
        if !self.key {
            b0 |= 0x40;
        }
        b0 |= if begin { 0x08 } else { 0x04 };
        let [hi, lo] = self.pic.to_be_bytes();
        let layer = self.tid << 5
            | if self.tid > 0 { 0x10 } else { 0 }
            | self.sid << 1
            | u8::from(self.key && self.sid > 0);
        let mut p = vec![b0, 0x80 | (hi & 0x7f), lo, layer, (self.pic / 4) as u8];
        p.extend_from_slice(&payload(tag, n));
        p
    }
}

/// Sends pictures `pics` (the first a keyframe when `key`): per picture, every spatial layer,
/// two packets each, the marker on the picture's last packet. Returns what was sent, in order:
/// (counter, sid, tid, end of layer frame).
async fn send_pictures(
    p: &mut Pub,
    tag: u8,
    pics: std::ops::Range<u16>,
    key: bool,
    n: &mut u32,
) -> Vec<(u32, u8, u8, bool)> {
    let first = pics.start;
    let mut sent = Vec::new();
    for pic in pics {
        let tid = TIDS[usize::from(pic) % 4];
        let key = key && pic == first;
        for sid in 0..3u8 {
            let f = LayerFrame {
                pic,
                sid,
                tid: if key { 0 } else { tid },
                key,
            };
            for begin in [true, false] {
                *n += 1;
                let last = sid == 2 && !begin;
                let pkt = f.packet(tag, *n, begin);
                p.c.send_rtp_with(p.video, pkt, ExtensionValues::default(), last);
                sent.push((*n, sid, f.tid, !begin));
            }
        }
        p.c.run_for(Duration::from_millis(5)).await;
    }
    sent
}

/// What a subscriber got of `tag` on its video m-line, after a codec header of `skip` bytes:
/// (counter, sequence number, marker).
fn got_after(s: &Sub, tag: u8, skip: usize) -> Vec<(u32, u64, bool)> {
    s.c.rtp
        .iter()
        .zip(&s.c.rtp_meta)
        .zip(&s.c.rtp_marker)
        .filter(|(((m, _), _), _)| *m == s.video)
        .filter_map(|(((_, p), (_, _, seq, _)), marker)| {
            let (t, n) = parse_payload(p.get(skip..)?)?;
            (t == tag).then_some((n, *seq, *marker))
        })
        .collect()
}

/// Drives both clients until `s` got `want` packets of `tag` (or the wait ends).
async fn receive(p: &mut Pub, s: &mut Sub, tag: u8, want: usize) -> Vec<(u32, u64, bool)> {
    receive_after(p, s, tag, want, 5).await
}

/// [`receive`] for payloads whose codec header takes `skip` bytes.
async fn receive_after(
    p: &mut Pub,
    s: &mut Sub,
    tag: u8,
    want: usize,
    skip: usize,
) -> Vec<(u32, u64, bool)> {
    for _ in 0..200 {
        if got_after(s, tag, skip).len() >= want {
            break;
        }
        p.c.run_for(Duration::from_millis(5)).await;
        s.c.run_for(Duration::from_millis(5)).await;
    }
    // A little longer: anything beyond `want` would be a packet it must not get.
    p.c.run_for(Duration::from_millis(50)).await;
    s.c.run_for(Duration::from_millis(50)).await;
    got_after(s, tag, skip)
}

/// What a subscriber capped at (`spatial`, `temporal`) must get of `sent`: counter, and whether
/// it carries the marker (the end of its top layer's frame).
fn expected(sent: &[(u32, u8, u8, bool)], spatial: u8, temporal: u8) -> Vec<(u32, bool)> {
    sent.iter()
        .filter(|(_, sid, tid, _)| *sid <= spatial && *tid <= temporal)
        .map(|(n, sid, _, end)| (*n, *end && *sid == spatial))
        .collect()
}

fn check(got: &[(u32, u64, bool)], want: &[(u32, bool)], what: &str) {
    let counters: Vec<(u32, bool)> = got.iter().map(|(n, _, m)| (*n, *m)).collect();
    assert_eq!(counters, want, "{what}: (counter, marker) received");
    assert!(
        got.windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "{what}: sequence numbers with gaps: {:?}",
        got.iter().map(|g| g.1).collect::<Vec<_>>()
    );
}

async fn layer_event(gw: &mut Gw, hid: u64, key: &str, value: u64) -> Value {
    let k = key.to_owned();
    gw.event(&format!("{key} {value} event"), move |e| {
        e["janus"] == "event"
            && e["sender"] == hid
            && e["plugindata"]["data"][k.as_str()] == value
            && e["plugindata"]["data"]["configured"].is_null()
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_svc_subscribers_get_their_layers() {
    const ROOM: u64 = 4242;
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    create_room(&gw, sid, ROOM, json!({"videocodec": "vp9"}));
    let opts = PubOpts {
        codec: "vp9",
        svc: true,
        ..PubOpts::default()
    };
    let mut p = publisher_of(&mut gw, sid, ROOM, &opts).await;
    // One subscription gets everything; the other asks for spatial 0 and temporal 0.
    let all_streams = json!([{"feed": p.id}]);
    let mut all = subscriber_of(
        &mut gw,
        sid,
        ROOM,
        all_streams,
        2,
        "VP9",
        Client::new().await,
    )
    .await;
    let low_streams = json!([{"feed": p.id, "spatial_layer": 0, "temporal_layer": 0}]);
    let mut low = subscriber_of(
        &mut gw,
        sid,
        ROOM,
        low_streams,
        2,
        "VP9",
        Client::new().await,
    )
    .await;
    for s in [&mut all, &mut low] {
        assert!(s.c.run_until(WAIT, |c| c.connected).await, "subscriber up");
    }
    // Twelve pictures from a keyframe: three cycles of L3T3.
    let mut n = 0;
    let sent = send_pictures(&mut p, 1, 0..12, true, &mut n).await;
    let want_all = expected(&sent, 2, 2);
    let got_all = receive(&mut p, &mut all, 1, want_all.len()).await;
    check(&got_all, &want_all, "every layer");
    let want_low = expected(&sent, 0, 0);
    let got_low = receive(&mut p, &mut low, 1, want_low.len()).await;
    check(&got_low, &want_low, "spatial 0, temporal 0");
    layer_event(&mut gw, low.hid, "spatial_layer", 0).await;
    layer_event(&mut gw, low.hid, "temporal_layer", 0).await;

    // Up to spatial 1 (temporal 2): the publisher is asked for a keyframe, and the layer comes
    // in on it; until then the subscriber stays on layer 0. (Past the half-second keyframe
    // request throttle first.)
    p.c.run_for(Duration::from_millis(600)).await;
    let before = p.c.keyframe_requests.len();
    let mid = {
        let r = gw.message(
            sid,
            low.hid,
            json!({"request": "configure", "streams": [{"mid": low.video.to_string(),
                "spatial_layer": 1, "temporal_layer": 2}]}),
            None,
        );
        assert_eq!(r["janus"], "ack", "{r}");
        low.video
    };
    assert!(
        p.c.run_until(WAIT, |c| c.keyframe_requests.len() > before)
            .await,
        "a keyframe request reached the publisher"
    );
    let waiting = send_pictures(&mut p, 2, 12..14, false, &mut n).await;
    let keyed = send_pictures(&mut p, 2, 14..22, true, &mut n).await;
    let mut want = expected(&waiting, 0, 2);
    want.extend(expected(&keyed, 1, 2));
    let got = receive(&mut p, &mut low, 2, want.len()).await;
    check(
        &got,
        &want,
        &format!("spatial 1 on mid {mid} from the keyframe on"),
    );
    layer_event(&mut gw, low.hid, "spatial_layer", 1).await;
    layer_event(&mut gw, low.hid, "temporal_layer", 2).await;
}

/// The AV1 stream's layers: three spatial, three temporal (L3T3), as [`SimpleSvc`] lays out.
const AV1_SVC: SimpleSvc = SimpleSvc {
    spatial: 3,
    temporal: 3,
};

fn dd_config() -> str0m::RtcConfig {
    str0m::RtcConfig::new().set_extension(DD_ID, dd_extension())
}

/// [`send_pictures`] for AV1: the layers go in dependency descriptors; a keyframe's first
/// packet has the aggregation header's N bit and the template structure. Returns what was
/// sent: (counter, sid, tid, end of layer frame, descriptor).
async fn send_av1(
    p: &mut Pub,
    tag: u8,
    pics: std::ops::Range<u16>,
    key: bool,
    n: &mut u32,
) -> Vec<(u32, u8, u8, bool, Vec<u8>)> {
    let first = pics.start;
    let mut sent = Vec::new();
    for pic in pics {
        let key = key && pic == first;
        let tid = if key { 0 } else { TIDS[usize::from(pic) % 4] };
        for sid in 0..3u8 {
            for begin in [true, false] {
                *n += 1;
                let start = key && sid == 0 && begin;
                let dd =
                    AV1_SVC.descriptor(sid, tid, (begin, !begin), pic * 3 + u16::from(sid), start);
                let mut pkt = vec![if start { 0x08 } else { 0x00 }];
                pkt.extend_from_slice(&payload(tag, *n));
                let mut ext = ExtensionValues::default();
                ext.user_values.set(DdValue(dd.clone().into()));
                let last = sid == 2 && !begin;
                p.c.send_rtp_with(p.video, pkt, ext, last);
                sent.push((*n, sid, tid, !begin, dd));
            }
        }
        p.c.run_for(Duration::from_millis(5)).await;
    }
    sent
}

/// Drops the descriptors from what [`send_av1`] returns, for [`expected`].
fn layers_of(sent: &[(u32, u8, u8, bool, Vec<u8>)]) -> Vec<(u32, u8, u8, bool)> {
    sent.iter()
        .map(|(n, s, t, e, _)| (*n, *s, *t, *e))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av1_svc_layers_follow_the_dependency_descriptor() {
    const ROOM: u64 = 4243;
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    create_room(&gw, sid, ROOM, json!({"videocodec": "av1"}));
    let opts = PubOpts {
        codec: "av1",
        svc: true,
        config: Some(dd_config),
        ..PubOpts::default()
    };
    let mut p = publisher_of(&mut gw, sid, ROOM, &opts).await;
    let all_streams = json!([{"feed": p.id}]);
    let mut all = subscriber_of(
        &mut gw,
        sid,
        ROOM,
        all_streams,
        2,
        "AV1",
        Client::with_config(dd_config()).await,
    )
    .await;
    let low_streams = json!([{"feed": p.id, "spatial_layer": 0, "temporal_layer": 0}]);
    let mut low = subscriber_of(
        &mut gw,
        sid,
        ROOM,
        low_streams,
        2,
        "AV1",
        Client::with_config(dd_config()).await,
    )
    .await;
    for s in [&mut all, &mut low] {
        assert!(s.c.run_until(WAIT, |c| c.connected).await, "subscriber up");
    }
    let mut n = 0;
    let sent = send_av1(&mut p, 1, 0..12, true, &mut n).await;
    let layers = layers_of(&sent);
    let want_all = expected(&layers, 2, 2);
    let got_all = receive_after(&mut p, &mut all, 1, want_all.len(), 1).await;
    check(&got_all, &want_all, "every layer");
    // The descriptors go along unchanged (the keyframe's, with its structure, in the two-byte
    // header form).
    let dds: Vec<Vec<u8>> = all
        .c
        .rtp
        .iter()
        .zip(&all.c.rtp_ext)
        .filter(|((m, p), _)| {
            *m == all.video
                && p.get(1..)
                    .and_then(parse_payload)
                    .is_some_and(|(t, _)| t == 1)
        })
        .filter_map(|(_, e)| e.user_values.get::<DdValue>().map(|d| d.0.to_vec()))
        .collect();
    let sent_dds: Vec<Vec<u8>> = sent.iter().map(|s| s.4.clone()).collect();
    assert_eq!(dds, sent_dds, "dependency descriptors relayed as sent");
    assert!(
        sent_dds[0].len() > 16,
        "the structure needs the two-byte form"
    );

    let want_low = expected(&layers, 0, 0);
    let got_low = receive_after(&mut p, &mut low, 1, want_low.len(), 1).await;
    check(&got_low, &want_low, "spatial 0, temporal 0");
    layer_event(&mut gw, low.hid, "spatial_layer", 0).await;
    layer_event(&mut gw, low.hid, "temporal_layer", 0).await;

    // Up to spatial 1, temporal 1: the spatial layer waits for a keyframe, asked of the
    // publisher; the temporal one moves at the first frame that switches into it.
    p.c.run_for(Duration::from_millis(600)).await;
    let before = p.c.keyframe_requests.len();
    let r = gw.message(
        sid,
        low.hid,
        json!({"request": "configure", "streams": [{"mid": low.video.to_string(),
            "spatial_layer": 1, "temporal_layer": 1}]}),
        None,
    );
    assert_eq!(r["janus"], "ack", "{r}");
    assert!(
        p.c.run_until(WAIT, |c| c.keyframe_requests.len() > before)
            .await,
        "a keyframe request reached the publisher"
    );
    let waiting = layers_of(&send_av1(&mut p, 2, 12..16, false, &mut n).await);
    let keyed = layers_of(&send_av1(&mut p, 2, 16..24, true, &mut n).await);
    // Pictures 12..16 are temporal 0, 2, 1, 2: temporal 1 starts at picture 14.
    let mut want = expected(&waiting[..12], 0, 0);
    want.extend(expected(&waiting[12..], 0, 1));
    want.extend(expected(&keyed, 1, 1));
    let got = receive_after(&mut p, &mut low, 2, want.len(), 1).await;
    check(
        &got,
        &want,
        "spatial 1 from the keyframe, temporal 1 from its switch point",
    );
    layer_event(&mut gw, low.hid, "temporal_layer", 1).await;
    layer_event(&mut gw, low.hid, "spatial_layer", 1).await;
}

/// The SSRCs of the simulcast layers, lowest first.
const SIM: [u32; 3] = [0x1111, 0x2222, 0x3333];

/// Adds ssrc-based simulcast to the video m-line of an offer: the three SSRCs in a SIM group,
/// as clients that predate rids offer it.
fn sim_offer(sdp: &str) -> String {
    let group = format!(
        "a=ssrc-group:SIM {} {} {}\r\n{}",
        SIM[0],
        SIM[1],
        SIM[2],
        SIM.iter()
            .map(|s| format!("a=ssrc:{s} cname:sim\r\n"))
            .collect::<String>()
    );
    let mut out = String::new();
    let mut in_video = false;
    for line in sdp.split_inclusive("\r\n") {
        // No rid extensions: the layers are told apart by SSRC alone.
        if line.contains("rtp-stream-id") {
            continue;
        }
        if line.starts_with("m=") {
            if in_video {
                out.push_str(&group);
            }
            in_video = line.starts_with("m=video");
        }
        out.push_str(line);
    }
    if in_video {
        out.push_str(&group);
    }
    out
}

/// One VP8 packet (tag and counter in the payload) on the publisher's stream of `ssrc`. (The
/// client keeps each layer under a rid of its own only so that its pacer serves all three; the
/// rid extension was not negotiated, so no rid goes on the wire.)
fn send_on(c: &mut Client, mid: Mid, ssrc: u32, n: u32, payload: Vec<u8>) {
    let Some(&pt) = c.rtc.media(mid).and_then(|m| m.remote_pts().first()) else {
        panic!("no payload type on {mid}");
    };
    let mut api = c.rtc.direct_api();
    if api.stream_tx(&ssrc.into()).is_none() {
        let rid = format!("s{ssrc}");
        api.declare_stream_tx(ssrc.into(), None, mid, Some(rid.as_str().into()));
    }
    let seq = 5000 + u64::from(n);
    if let Some(tx) = api.stream_tx(&ssrc.into()) {
        let w = RtpWrite::new(pt, seq.into(), n * 3000, Instant::now(), payload).marker(true);
        tx.write_rtp(w);
    }
}

/// Rounds `range` of every layer (layer L tagged 10+L); the first round of the layers in `keys`
/// is a keyframe.
async fn send_layers(p: &mut Pub, range: std::ops::Range<u32>, keys: &[usize]) {
    let first = range.start;
    for i in range {
        for (l, ssrc) in SIM.iter().enumerate() {
            let key = i == first && keys.contains(&l);
            send_on(&mut p.c, p.video, *ssrc, i, vp8(10 + l as u8, i, key));
        }
        p.c.run_for(Duration::from_millis(5)).await;
    }
}

/// Counters of tag `tag` the subscriber got on its video m-line.
fn counters(s: &Sub, tag: u8) -> Vec<u32> {
    got(&s.c, s.video, true, tag).iter().map(|g| g.0).collect()
}

async fn settle(p: &mut Pub, s: &mut Sub) {
    for _ in 0..20 {
        p.c.run_for(Duration::from_millis(5)).await;
        s.c.run_for(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssrc_simulcast_layers_are_told_apart_by_ssrc() {
    const ROOM: u64 = 4343;
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    create_room(&gw, sid, ROOM, json!({}));
    let opts = PubOpts {
        munge: Some(sim_offer),
        ..PubOpts::default()
    };
    let mut p = publisher_of(&mut gw, sid, ROOM, &opts).await;
    let mut s = subscriber(&mut gw, sid, ROOM, p.id).await;
    assert!(s.c.run_until(WAIT, |c| c.connected).await, "subscriber up");
    // The subscriber wants the top layer (the default): it gets layer 2 and nothing else.
    send_layers(&mut p, 0..20, &[0, 1, 2]).await;
    settle(&mut p, &mut s).await;
    let top = counters(&s, 12);
    assert!(top.len() >= 18, "layer 2 packets received: {top:?}");
    assert!(top.windows(2).all(|w| w[1] > w[0]), "in order: {top:?}");
    assert!(
        counters(&s, 10).is_empty() && counters(&s, 11).is_empty(),
        "other layers leaked: {:?} {:?}",
        counters(&s, 10),
        counters(&s, 11)
    );
    // Down to layer 0 while the layers flow: from layer 0's next keyframe on.
    send_layers(&mut p, 20..25, &[]).await;
    let r = gw.message(
        sid,
        s.hid,
        json!({"request": "configure", "streams": [{"mid": s.video.to_string(), "substream": 0}]}),
        None,
    );
    assert_eq!(r["janus"], "ack", "{r}");
    p.c.run_for(Duration::from_millis(20)).await;
    send_layers(&mut p, 25..45, &[0]).await;
    settle(&mut p, &mut s).await;
    let low = counters(&s, 10);
    assert_eq!(low.first(), Some(&25), "layer 0 from its keyframe: {low:?}");
    assert!(low.len() >= 18, "layer 0 packets received: {low:?}");
    // (The client's pacer may put a round's layers on the wire in any order: layer 2 of the
    // keyframe's own round may still go by.)
    assert!(
        counters(&s, 12).iter().all(|n| *n <= 25),
        "layer 2 kept coming: {:?}",
        counters(&s, 12)
    );
    let hid = s.hid;
    gw.event("substream 0 event", move |e| {
        e["janus"] == "event" && e["sender"] == hid && e["plugindata"]["data"]["substream"] == 0
    })
    .await;
}
