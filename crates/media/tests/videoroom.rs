//! `janus.plugin.videoroom` through the real media engine, with str0m clients over UDP on
//! 127.0.0.1: one publisher's packets reach many subscribers (spread over both media workers)
//! whole and in order; RTP forwarders send them as plain RTP and stop when told; recordings
//! hold every packet sent, read back with `jano_mjr`.
//!
//! Payloads carry a tag and a counter (`common::payload`); video payloads start with a VP8
//! payload descriptor (and the first one of a run is a keyframe), so they look like VP8 to
//! anything on the way that inspects them.

mod common;

use common::videoroom::*;
use common::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::Duration;
use str0m::media::{MediaTime, Mid};
use str0m::rtp::{Extension, ExtensionValues};
use str0m::RtcConfig;

fn subscribers() -> usize {
    std::env::var("JANO_VR_SUBSCRIBERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_to_many_subscribers_every_packet_in_order() {
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 1234;
    create_room(&gw, sid, ROOM, json!({"publishers": 3}));
    let mut p = publisher(&mut gw, sid, ROOM).await;

    let n_subs = subscribers();
    let mut subs = Vec::new();
    for _ in 0..n_subs {
        subs.push(subscriber(&mut gw, sid, ROOM, p.id).await);
    }
    let workers: HashSet<u64> = subs.iter().map(|s| s.hid % 2).collect();
    assert_eq!(workers.len(), 2.min(n_subs), "subscribers on both workers");

    // Every subscriber drives its client on its own task; the publisher is driven here.
    const K: u32 = 60;
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for mut s in subs {
        let up = up_tx.clone();
        tasks.push(tokio::spawn(async move {
            let ok =
                s.c.run_until(Duration::from_secs(60), |c| c.connected)
                    .await;
            let _ = up.send(ok);
            let (a, v) = (s.audio, s.video);
            let done = |c: &Client| {
                got(c, a, false, b'S').last().is_some_and(|x| x.0 == K - 1)
                    && got(c, v, true, b'S').last().is_some_and(|x| x.0 == K - 1)
            };
            s.c.run_until(Duration::from_secs(120), done).await;
            s
        }));
    }
    drop(up_tx);
    for _ in 0..n_subs {
        assert_eq!(up_rx.recv().await, Some(true), "a subscriber connected");
    }
    for _ in 0..n_subs {
        gw.event("subscriber webrtcup", |e| {
            e["janus"] == "webrtcup" && e["sender"] != p.hid
        })
        .await;
    }

    p.send(b'S', 0..K, Duration::from_millis(10)).await;

    let mut ssrcs = HashSet::new();
    for t in tasks {
        let s = t.await.expect("subscriber task");
        for (mid, video) in [(s.audio, false), (s.video, true)] {
            let g = got(&s.c, mid, video, b'S');
            let counters: Vec<u32> = g.iter().map(|x| x.0).collect();
            assert_eq!(
                counters,
                (0..K).collect::<Vec<_>>(),
                "handle {} ({}): every packet, in order",
                s.hid,
                if video { "video" } else { "audio" }
            );
            let pt = s.c.rtc.media(mid).expect("media").remote_pts()[0];
            assert!(g.iter().all(|x| x.1 == *pt), "handle {}: pt {pt}", s.hid);
            assert!(
                g.iter().all(|x| x.2 == g[0].2),
                "handle {}: one SSRC",
                s.hid
            );
            assert!(ssrcs.insert(g[0].2), "handle {}: an SSRC of its own", s.hid);
            if video {
                let keys: Vec<u32> = g.iter().filter(|x| x.3).map(|x| x.0).collect();
                assert_eq!(
                    keys,
                    vec![0],
                    "handle {}: the VP8 keyframe arrives intact",
                    s.hid
                );
            }
        }
        let info = gw.handle_info(sid, s.hid);
        assert_eq!(info["webrtc"]["relay"]["dropped-queue"], 0, "{info}");
    }
    gw.stop();
}

/// Every datagram waiting on a non-blocking socket.
fn drain(s: &UdpSocket, into: &mut Vec<Vec<u8>>) {
    let mut buf = [0u8; 2048];
    while let Ok(n) = s.recv(&mut buf) {
        into.push(buf[..n].to_vec());
    }
}

/// A plain RTP packet: (payload type, sequence number, SSRC, payload); `None` unless version 2.
fn parse_rtp(b: &[u8]) -> Option<(u8, u16, u32, &[u8])> {
    if b.len() < 12 || b[0] >> 6 != 2 {
        return None;
    }
    let mut at = 12 + 4 * usize::from(b[0] & 0x0f);
    if b[0] & 0x10 != 0 {
        let words = u16::from_be_bytes(b.get(at + 2..at + 4)?.try_into().ok()?);
        at += 4 + 4 * usize::from(words);
    }
    let mut end = b.len();
    if b[0] & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    let seq = u16::from_be_bytes([b[2], b[3]]);
    let ssrc = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
    Some((b[1] & 0x7f, seq, ssrc, b.get(at..end)?))
}

/// Checks forwarded datagrams: all RTP v2 with payload type `pt`, one SSRC, sequence numbers
/// one apart, and tag `tag` with exactly the counters in `want`; returns the SSRC.
fn check_forwarded(
    what: &str,
    dgrams: &[Vec<u8>],
    video: bool,
    pt: u8,
    tag: u8,
    want: std::ops::Range<u32>,
) -> u32 {
    let parsed: Vec<_> = dgrams
        .iter()
        .map(|d| parse_rtp(d).unwrap_or_else(|| panic!("{what}: not RTP v2: {d:02x?}")))
        .collect();
    assert!(!parsed.is_empty(), "{what}: nothing forwarded");
    let ssrc = parsed[0].2;
    for (p, _, s, _) in &parsed {
        assert_eq!(*p, pt, "{what}: payload type");
        assert_eq!(*s, ssrc, "{what}: one SSRC");
    }
    let seqs: Vec<u16> = parsed.iter().map(|x| x.1).collect();
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
        "{what}: sequence numbers one apart: {seqs:?}"
    );
    let counters: Vec<u32> = parsed
        .iter()
        .map(|x| match parse_media(video, x.3) {
            Some((t, n)) if t == tag => n,
            other => panic!("{what}: unexpected payload {other:?}: {:02x?}", x.3),
        })
        .collect();
    assert_eq!(
        counters,
        want.collect::<Vec<_>>(),
        "{what}: every packet in order"
    );
    ssrc
}

fn bind_nonblocking() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.set_nonblocking(true).expect("nonblocking");
    s
}

/// Sends `range` tagged `tag` and drives the publisher until `audio`/`video` hold `want_a`
/// and `want_v` datagrams (or 20 s pass).
#[allow(clippy::too_many_arguments)]
async fn forward_round(
    p: &mut Pub,
    tag: u8,
    range: std::ops::Range<u32>,
    socks: (&UdpSocket, &UdpSocket),
    got: (&mut Vec<Vec<u8>>, &mut Vec<Vec<u8>>),
    want: (usize, usize),
) {
    p.send(tag, range, Duration::from_millis(5)).await;
    for _ in 0..400 {
        drain(socks.0, got.0);
        drain(socks.1, got.1);
        if got.0.len() >= want.0 && got.1.len() >= want.1 {
            break;
        }
        p.c.run_for(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtp_forward_sends_plain_rtp_until_stopped() {
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 4321;
    create_room(&gw, sid, ROOM, json!({"secret": "roomsecret"}));
    let mut p = publisher(&mut gw, sid, ROOM).await;
    let (sa, sv) = (bind_nonblocking(), bind_nonblocking());
    let (pa, pv) = (
        sa.local_addr().expect("addr").port(),
        sv.local_addr().expect("addr").port(),
    );
    let (ma, mv) = (p.audio.to_string(), p.video.to_string());
    let (phid, pid) = (p.hid, p.id);

    // The room's secret is required.
    let fwd = json!({"request": "rtp_forward", "room": ROOM, "publisher_id": pid,
        "host": "127.0.0.1", "streams": [{"mid": ma, "port": pa}, {"mid": mv, "port": pv}]});
    let d = sync(&gw, sid, phid, fwd.clone());
    assert!(d["error_code"].is_number(), "no secret: {d}");
    let mut with_secret = fwd;
    with_secret["secret"] = json!("roomsecret");
    let d = sync(&gw, sid, phid, with_secret);
    assert_eq!(d["videoroom"], "rtp_forward", "{d}");
    assert_eq!(d["publisher_id"], pid, "{d}");
    let fws = d["forwarders"].as_array().expect("forwarders").clone();
    assert_eq!(fws.len(), 2, "{d}");
    let id_of = |kind: &str, port: u16| -> u64 {
        let f = fws
            .iter()
            .find(|f| f["type"] == kind)
            .unwrap_or_else(|| panic!("a {kind} forwarder: {d}"));
        assert_eq!(f["port"], port, "{d}");
        assert_eq!(f["host"], "127.0.0.1", "{d}");
        f["stream_id"].as_u64().expect("stream_id")
    };
    let (ida, idv) = (id_of("audio", pa), id_of("video", pv));
    assert_ne!(ida, idv);

    let listed = |gw: &Gw| -> Vec<u64> {
        let d = sync(
            gw,
            sid,
            phid,
            json!({"request": "listforwarders", "room": ROOM, "secret": "roomsecret"}),
        );
        assert_eq!(d["videoroom"], "forwarders", "{d}");
        let mut ids: Vec<u64> = d["publishers"]
            .as_array()
            .expect("publishers")
            .iter()
            .inspect(|x| assert_eq!(x["publisher_id"], pid, "{d}"))
            .flat_map(|x| x["forwarders"].as_array().cloned().unwrap_or_default())
            .filter_map(|f| f["stream_id"].as_u64())
            .collect();
        ids.sort_unstable();
        ids
    };
    let mut both = vec![ida, idv];
    both.sort_unstable();
    assert_eq!(listed(&gw), both);

    // Both forwarders send every packet as plain RTP.
    const K: u32 = 40;
    let (mut ga, mut gv) = (Vec::new(), Vec::new());
    let (pta, ptv) = (p.pt(p.audio), p.pt(p.video));
    let socks = (&sa, &sv);
    forward_round(&mut p, b'F', 0..K, socks, (&mut ga, &mut gv), (40, 40)).await;
    let ssrc_a = check_forwarded("audio", &ga, false, pta, b'F', 0..K);
    let ssrc_v = check_forwarded("video", &gv, true, ptv, b'F', 0..K);
    assert_ne!(ssrc_a, ssrc_v);
    assert!(jano_plugin::rtp::vp8_keyframe(
        parse_rtp(&gv[0]).expect("rtp").3
    ));

    // Audio stops; video goes on (and shows the publisher still sends).
    let stop = |id: u64| {
        json!({"request": "stop_rtp_forward", "room": ROOM, "publisher_id": pid,
            "stream_id": id, "secret": "roomsecret"})
    };
    let d = sync(&gw, sid, phid, stop(ida));
    assert_eq!(d["videoroom"], "stop_rtp_forward", "{d}");
    assert_eq!(d["stream_id"], ida, "{d}");
    assert_eq!(listed(&gw), vec![idv]);
    let (mut ga, mut gv) = (Vec::new(), Vec::new());
    drain(&sa, &mut ga);
    drain(&sv, &mut gv);
    assert!(ga.is_empty() && gv.is_empty(), "nothing left over");
    forward_round(&mut p, b'G', 0..K, socks, (&mut ga, &mut gv), (0, 40)).await;
    check_forwarded("video after audio stopped", &gv, true, ptv, b'G', 0..K);
    p.c.run_for(Duration::from_millis(300)).await;
    drain(&sa, &mut ga);
    assert!(ga.is_empty(), "audio stopped: {} datagrams", ga.len());

    // Video stops too: nothing arrives any more.
    let d = sync(&gw, sid, phid, stop(idv));
    assert_eq!(d["videoroom"], "stop_rtp_forward", "{d}");
    assert_eq!(listed(&gw), Vec::<u64>::new());
    let d = sync(&gw, sid, phid, stop(idv));
    assert_eq!(d["error_code"], 428, "stopping twice: {d}");
    drain(&sv, &mut gv);
    let (mut ga, mut gv) = (Vec::new(), Vec::new());
    p.send(b'H', 0..20, Duration::from_millis(5)).await;
    p.c.run_for(Duration::from_secs(1)).await;
    drain(&sa, &mut ga);
    drain(&sv, &mut gv);
    assert!(ga.is_empty() && gv.is_empty(), "forwarders stopped");
    // The publisher still published all along.
    let info = gw.handle_info(sid, phid);
    let ins: Vec<u64> = info["webrtc"]["media"]
        .as_object()
        .map(|m| {
            m.values()
                .filter_map(|v| v["stats"]["in"]["packets"].as_u64())
                .collect()
        })
        .unwrap_or_default();
    assert!(ins.iter().all(|n| *n >= 60), "packets in: {ins:?}");
    gw.stop();
}

/// A fresh, empty folder under the system's temporary folder.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// The one file in `dir` whose name ends with `suffix`.
fn file_ending(dir: &Path, suffix: &str) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    assert!(found.len() <= 1, "one {suffix} file: {found:?}");
    found.pop()
}

/// The (tag, counter) of every frame of a recording, in file order.
fn frames(rec: &jano_mjr::Recording, video: bool) -> Vec<(u8, u32)> {
    rec.frames
        .iter()
        .map(|f| {
            let (_, _, _, body) = parse_rtp(&f.data).expect("an RTP frame");
            parse_media(video, body).unwrap_or_else(|| panic!("payload {body:02x?}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recording_holds_every_packet() {
    let dir = temp_dir("jano-videoroom-rec");
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 777;
    create_room(
        &gw,
        sid,
        ROOM,
        json!({"record": true, "rec_dir": dir.to_string_lossy()}),
    );
    let mut p = publisher(&mut gw, sid, ROOM).await;
    let (fa, fv) = ("-audio-0.mjr", "-video-1.mjr");

    // Recording starts with the publisher; once both files have a frame beyond the magic
    // (written out after the writer's idle flush) every later packet is recorded. Warm-up
    // packets, tagged W, until then.
    let magic = 8;
    let size = |suffix: &str| {
        file_ending(&dir, suffix)
            .and_then(|f| std::fs::metadata(f).ok())
            .map_or(0, |m| m.len())
    };
    let mut w = 0;
    while !(size(fa) > magic && size(fv) > magic) {
        assert!(w < 60, "recordings written: {:?}", std::fs::read_dir(&dir));
        p.send(b'W', w..w + 1, Duration::from_millis(700)).await;
        w += 1;
    }

    // A few seconds of media.
    const K: u32 = 150;
    p.send(b'R', 0..K, Duration::from_millis(20)).await;
    let ev = request(&mut gw, sid, p.hid, json!({"request": "unpublish"}), None).await;
    assert_eq!(ev["plugindata"]["data"]["unpublished"], "ok", "{ev}");

    // The files are finished off the signalling path: wait until both read whole, to the end.
    let read = |suffix: &str, video: bool| -> Option<jano_mjr::Recording> {
        let rec = jano_mjr::read_file(file_ending(&dir, suffix)?).ok()?;
        let last = frames(&rec, video).last().copied();
        (last == Some((b'R', K - 1))).then_some(rec)
    };
    let mut recs = None;
    for _ in 0..200 {
        if let (Some(a), Some(v)) = (read(fa, false), read(fv, true)) {
            recs = Some((a, v));
            break;
        }
        p.c.run_for(Duration::from_millis(100)).await;
    }
    let (ra, rv) = recs.expect("both recordings finished");
    for (rec, video, kind, codec) in [
        (&ra, false, jano_mjr::MediaKind::Audio, "opus"),
        (&rv, true, jano_mjr::MediaKind::Video, "vp8"),
    ] {
        assert_eq!(rec.info.kind, kind);
        assert_eq!(rec.info.codec, codec);
        let fr = frames(rec, video);
        let warm: Vec<u32> = fr.iter().filter(|x| x.0 == b'W').map(|x| x.1).collect();
        let real: Vec<u32> = fr.iter().filter(|x| x.0 == b'R').map(|x| x.1).collect();
        assert_eq!(
            real,
            (0..K).collect::<Vec<_>>(),
            "{codec}: every packet, in order"
        );
        assert_eq!(warm.len() + real.len(), fr.len(), "{codec}: nothing else");
        assert!(
            warm.windows(2).all(|x| x[1] == x[0] + 1) && warm.last() == Some(&(w - 1)),
            "{codec}: warm-up packets from the first recorded on: {warm:?} (sent {w})"
        );
        assert!(fr.iter().position(|x| x.0 == b'R') == Some(warm.len()));
        let seqs: Vec<u16> = rec.frames.iter().filter_map(|f| f.rtp_seq()).collect();
        assert!(
            seqs.windows(2).all(|x| x[1] == x[0].wrapping_add(1)),
            "{seqs:?}"
        );
    }
    let names: Vec<String> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect();
    assert_eq!(names.len(), 2, "one file per stream: {names:?}");
    let prefix = format!("videoroom-{ROOM}-user-{}-", p.id);
    assert!(names.iter().all(|n| n.starts_with(&prefix)), "{names:?}");
    gw.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A VP8 payload whose descriptor carries a 15-bit picture ID (X, I and M bits set).
fn vp8_with_pid(tag: u8, n: u32, key: bool, pid: u16) -> Vec<u8> {
    let [hi, lo] = (pid & 0x7fff).to_be_bytes();
    let mut p = vec![0x90, 0x80, 0x80 | hi, lo, if key { 0x00 } else { 0x01 }];
    p.extend_from_slice(&payload(tag, n));
    p
}

/// (tag, counter, picture ID) of what a client got on its video m-line, in arrival order.
fn got_pids(c: &Client, mid: Mid) -> Vec<(u8, u32, u16)> {
    c.rtp
        .iter()
        .filter(|(m, _)| *m == mid)
        .filter_map(|(_, p)| {
            let (pid, _) = jano_plugin::rtp::vp8_ids(p);
            let (t, n) = parse_payload(p.get(5..)?)?;
            Some((t, n, pid?))
        })
        .collect()
}

/// A subscriber switched from one publisher to another (whose picture IDs number from
/// elsewhere, here backwards) keeps getting consecutive VP8 picture IDs: a receiver that sees
/// them jump back takes the new frames for stale ones and freezes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_keeps_vp8_picture_ids_continuous() {
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 4321;
    create_room(&gw, sid, ROOM, json!({"publishers": 3}));
    let mut a = publisher(&mut gw, sid, ROOM).await;
    let mut b = publisher(&mut gw, sid, ROOM).await;
    let mut s = subscriber(&mut gw, sid, ROOM, a.id).await;
    let (sub_video, b_video, s_hid) = (s.video, b.video, s.hid);
    const K: u32 = 20;
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let v = s.video;
        let has = |c: &Client, tag: u8| got_pids(c, v).iter().any(|x| x.0 == tag && x.1 == K - 1);
        let up =
            s.c.run_until(Duration::from_secs(60), |c| c.connected)
                .await;
        let ok = up
            && s.c
                .run_until(Duration::from_secs(60), |c| has(c, b'A'))
                .await;
        let _ = a_tx.send(ok);
        s.c.run_until(Duration::from_secs(60), |c| has(c, b'B'))
            .await;
        s
    });
    gw.event("subscriber webrtcup", |e| {
        e["janus"] == "webrtcup" && e["sender"] != a.hid && e["sender"] != b.hid
    })
    .await;

    for i in 0..K {
        let pkt = vp8_with_pid(b'A', i, i == 0, 20_000 + i as u16);
        a.c.send_rtp(a.video, pkt);
        a.c.run_for(Duration::from_millis(10)).await;
    }
    let mut a_done = None;
    while a_done.is_none() {
        tokio::select! {
            r = a_rx.recv() => a_done = Some(r == Some(true)),
            _ = a.c.run_for(Duration::from_millis(50)) => {}
        }
    }
    assert_eq!(a_done, Some(true), "the subscriber got A's frames");

    let body = json!({"request": "switch", "streams": [
        {"feed": b.id, "mid": b_video.to_string(), "sub_mid": sub_video.to_string()}]});
    let ev = request(&mut gw, sid, s_hid, body, None).await;
    assert_eq!(ev["plugindata"]["data"]["switched"], "ok", "{ev}");
    for i in 0..K {
        let pkt = vp8_with_pid(b'B', i, i == 0, 5 + i as u16);
        b.c.send_rtp(b.video, pkt);
        b.c.run_for(Duration::from_millis(10)).await;
    }
    let s = task.await.expect("subscriber task");
    let got = got_pids(&s.c, s.video);
    let tags: Vec<(u8, u32)> = got.iter().map(|x| (x.0, x.1)).collect();
    let want: Vec<(u8, u32)> = (0..K)
        .map(|i| (b'A', i))
        .chain((0..K).map(|i| (b'B', i)))
        .collect();
    assert_eq!(tags, want, "every frame of A, then every frame of B");
    let pids: Vec<u16> = got.iter().map(|x| x.2).collect();
    assert!(
        pids.windows(2).all(|w| w[1] == (w[0] + 1) & 0x7fff),
        "consecutive picture IDs across the switch: {pids:?}"
    );
    gw.stop();
}

/// Data-channel messages of a publisher reach every subscriber of its data stream, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_channel_messages_reach_subscribers() {
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 5555;
    create_room(&gw, sid, ROOM, json!({"publishers": 3}));
    let mut p = publisher_with(&mut gw, sid, ROOM, true).await;
    assert!(
        p.c.run_until(WAIT, |c| !c.channels.is_empty()).await,
        "the publisher's channel opens"
    );
    let mut subs = Vec::new();
    for _ in 0..3 {
        subs.push(subscriber_with(&mut gw, sid, ROOM, p.id, 3).await);
    }
    // A subscriber's channel counts as ready once a probe went through end to end (its
    // client seeing the channel open is not enough: the server's side may still be opening,
    // and what is relayed before then is lost).
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::unbounded_channel();
    const K: usize = 20;
    const PROBE: &[u8] = b"probe";
    let real = |c: &Client| c.data.iter().filter(|d| d.1 != PROBE).count();
    let mut tasks = Vec::new();
    for mut s in subs {
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let ok =
                s.c.run_until(WAIT, |c| c.data.iter().any(|d| d.1 == PROBE))
                    .await;
            let _ = ready.send(ok);
            s.c.run_until(WAIT, |c| real(c) >= K).await;
            s
        }));
    }
    drop(ready_tx);
    let mut ready = 0;
    let mut probe_at = tokio::time::Instant::now();
    while ready < tasks.len() {
        if probe_at.elapsed() >= Duration::from_millis(100) {
            p.c.send_text("probe");
            probe_at = tokio::time::Instant::now();
        }
        tokio::select! {
            r = ready_rx.recv() => match r {
                Some(ok) => { assert!(ok, "a subscriber's data channel carries messages"); ready += 1 }
                None => break,
            },
            _ = p.c.run_for(Duration::from_millis(50)) => {}
        }
    }
    for i in 0..K {
        p.c.send_text(&format!("message {i}"));
        p.c.run_for(Duration::from_millis(10)).await;
    }
    let want: Vec<(bool, Vec<u8>)> = (0..K)
        .map(|i| (false, format!("message {i}").into_bytes()))
        .collect();
    for t in tasks {
        let s = t.await.expect("subscriber task");
        let got: Vec<(bool, Vec<u8>)> = s.c.data.iter().filter(|d| d.1 != PROBE).cloned().collect();
        assert_eq!(
            got, want,
            "handle {}: every message, in order, as text",
            s.hid
        );
    }
    gw.stop();
}

/// Audio levels in a publisher's packets (the ssrc-audio-level extension) turn into `talking`
/// and `stopped-talking` for everyone in a room with `audiolevel_event`, averaged over
/// `audio_active_packets` against `audio_level_average`; `listparticipants` follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talking_events_follow_audio_levels() {
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 6666;
    create_room(
        &gw,
        sid,
        ROOM,
        json!({"publishers": 3, "audiolevel_event": true, "audio_active_packets": 5,
            "audio_level_average": 25}),
    );
    let mut p = publisher(&mut gw, sid, ROOM).await;
    let talking = |gw: &Gw| -> Value {
        let d = sync(
            gw,
            sid,
            p.hid,
            json!({"request": "listparticipants", "room": ROOM}),
        );
        let list = d["participants"].as_array().cloned().unwrap_or_default();
        list.iter()
            .find(|x| x["id"] == p.id)
            .map_or(Value::Null, |x| x["talking"].clone())
    };
    assert_eq!(talking(&gw), false, "not talking before any level");

    // dBov levels: 10 is loud (below the average of 25), 127 is silence.
    for (level, kind, now) in [(10i8, "talking", true), (127, "stopped-talking", false)] {
        for i in 0..10u32 {
            let ext = ExtensionValues {
                audio_level: Some(-level),
                voice_activity: Some(level < 100),
                ..Default::default()
            };
            p.c.send_rtp_ext(p.audio, payload(b'L', i), ext);
            p.c.run_for(Duration::from_millis(20)).await;
        }
        let id = p.id;
        let ev = gw
            .event(kind, |e| {
                e["plugindata"]["data"]["videoroom"] == kind && e["plugindata"]["data"]["id"] == id
            })
            .await;
        let d = &ev["plugindata"]["data"];
        assert_eq!(d["room"], ROOM, "{ev}");
        assert_eq!(d["mid"], p.audio.to_string(), "{ev}");
        assert_eq!(d["audio-level-dBov-avg"], f64::from(level), "{ev}");
        assert_eq!(talking(&gw), now, "listparticipants after {kind}");
    }
    gw.stop();
}

/// `min_delay`/`max_delay` (10 ms units) reach the subscriber as the playout-delay extension:
/// a subscriber's own setting for its stream, and a publisher's for every subscriber of its
/// stream; a subscriber's wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playout_delay_reaches_the_subscriber() {
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    const ROOM: u64 = 7777;
    create_room(&gw, sid, ROOM, json!({"publishers": 3}));
    let mut p = publisher(&mut gw, sid, ROOM).await;
    // A client that knows the playout-delay extension (str0m's defaults leave it out).
    let cfg = RtcConfig::new().set_extension(6, Extension::PlayoutDelay);
    let client = Client::with_config(cfg).await;
    let mut s = subscriber_on(&mut gw, sid, ROOM, p.id, 2, client).await;
    let (s_hid, s_audio, s_video) = (s.hid, s.audio, s.video);
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        let ok = s.c.run_until(WAIT, |c| c.connected).await;
        let _ = up_tx.send(ok);
        let (a, v) = (s.audio, s.video);
        let last = |c: &Client| {
            got(c, v, true, b'D').iter().any(|x| x.0 == 9)
                && got(c, a, false, b'D').iter().any(|x| x.0 == 9)
        };
        s.c.run_until(WAIT, last).await;
        s
    });
    assert_eq!(up_rx.recv().await, Some(true), "subscriber connected");
    gw.event("subscriber webrtcup", is("webrtcup", s_hid)).await;

    let body = json!({"request": "configure", "streams": [
        {"mid": s_video.to_string(), "min_delay": 0, "max_delay": 20}]});
    let ev = request(&mut gw, sid, s_hid, body, None).await;
    assert_eq!(ev["plugindata"]["data"]["configured"], "ok", "{ev}");
    let body = json!({"request": "configure", "streams": [
        {"mid": p.audio.to_string(), "min_delay": 5, "max_delay": 10},
        {"mid": p.video.to_string(), "min_delay": 7}]});
    let ev = request(&mut gw, sid, p.hid, body, None).await;
    assert_eq!(ev["plugindata"]["data"]["configured"], "ok", "{ev}");
    p.send(b'D', 0..10, Duration::from_millis(10)).await;

    let s = task.await.expect("subscriber task");
    let delays = |mid: Mid| -> Vec<(Option<MediaTime>, Option<MediaTime>)> {
        s.c.rtp
            .iter()
            .zip(&s.c.rtp_ext)
            .filter(|((m, p), _)| {
                *m == mid && parse_media(mid == s_video, p).is_some_and(|x| x.0 == b'D')
            })
            .map(|(_, e)| (e.play_delay_min, e.play_delay_max))
            .collect()
    };
    let hundredths = |v| Some(MediaTime::from_hundredths(v));
    let audio = delays(s_audio);
    assert_eq!(audio.len(), 10, "audio packets");
    assert!(
        audio.iter().all(|d| *d == (hundredths(5), hundredths(10))),
        "the publisher's delay on audio: {audio:?}"
    );
    let video = delays(s_video);
    assert_eq!(video.len(), 10, "video packets");
    assert!(
        video.iter().all(|d| *d == (hundredths(0), hundredths(20))),
        "the subscriber's own delay on video: {video:?}"
    );
    let info = gw.handle_info(sid, s_hid);
    let streams = info["plugin_specific"]["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        streams
            .iter()
            .any(|x| x["playout-delay"] == json!({"min-delay": 0, "max-delay": 20})),
        "handle_info shows the subscriber's delay: {info}"
    );
    gw.stop();
}

/// A room's `*_ext: false` settings leave those header extensions out of its publishers'
/// answers and its subscribers' offers (so the clients never send them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_extension_settings_shape_the_sdp() {
    const TWCC: &str = "transport-wide-cc-extensions";
    const LEVEL: &str = "ssrc-audio-level";
    let mut gw = Gw::start(vr_opts());
    let sid = gw.create_session();
    for (room, off) in [(7101u64, true), (7102, false)] {
        let settings = if off {
            json!({"transport_wide_cc_ext": false, "audiolevel_ext": false})
        } else {
            json!({})
        };
        create_room(&gw, sid, room, settings);
        let p = publisher_of(&mut gw, sid, room, &PubOpts::default()).await;
        let hid = gw.attach(sid, jano_videoroom::PACKAGE);
        let ev = request(
            &mut gw,
            sid,
            hid,
            json!({"request": "join", "ptype": "subscriber", "room": room,
                "streams": [{"feed": p.id}]}),
            None,
        )
        .await;
        let offer = ev["jsep"]["sdp"].as_str().expect("subscriber offer");
        for uri in [TWCC, LEVEL] {
            assert_eq!(
                offer.contains(uri),
                !off,
                "room {room}: {uri} in the subscriber's offer:\n{offer}"
            );
        }
        // The publisher's answer: a second publisher, whose offer carries both.
        let hid = gw.attach(sid, jano_videoroom::PACKAGE);
        let mut c = Client::new().await;
        let (offer, _pending, _) = c.offer(true, true, false);
        assert!(offer.contains(TWCC) && offer.contains(LEVEL), "{offer}");
        let ev = request(
            &mut gw,
            sid,
            hid,
            json!({"request": "joinandconfigure", "ptype": "publisher", "room": room}),
            Some(json!({"type": "offer", "sdp": offer})),
        )
        .await;
        let answer = ev["jsep"]["sdp"].as_str().expect("answer");
        for uri in [TWCC, LEVEL] {
            assert_eq!(
                answer.contains(uri),
                !off,
                "room {room}: {uri} in the publisher's answer:\n{answer}"
            );
        }
    }
    gw.stop();
}
