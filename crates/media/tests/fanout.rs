//! Fan-out through the plugin contract: `jano.plugin.fanout` forwards one str0m publisher to many str0m
//! subscribers spread over every media worker with a `Fanout`, and the engine rewrites each
//! copy for its subscriber (payload type, SSRC, sequence numbers, SRTP rollover).

mod common;

use common::*;
use jano_fanout::{FanoutPlugin, PACKAGE as FAN};
use jano_plugin::Plugin;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use str0m::format::{Codec, FormatParams};
use str0m::media::{Frequency, KeyframeRequestKind, Mid};
use str0m::RtcConfig;

fn fan_opts() -> Opts {
    Opts {
        workers: 2,
        plugins: Box::new(|q| {
            vec![Arc::new(FanoutPlugin::new(
                q.services_for(FAN),
                Duration::from_secs(3),
            )) as Arc<dyn Plugin>]
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

/// A connected publisher.
async fn join_publisher(gw: &mut Gw, sid: u64) -> (u64, Client, Vec<Mid>) {
    let (hid, mut c, mids) =
        join(gw, sid, Client::new().await, json!({"request": "publish"})).await;
    assert!(c.run_until(WAIT, |c| c.connected).await, "publisher up");
    (hid, c, mids)
}

/// A subscriber of `feed` (not yet driven): handle, client, mids, its opus and VP8 PTs.
async fn join_subscriber(
    gw: &mut Gw,
    sid: u64,
    feed: u64,
    n: u8,
) -> (u64, Client, Vec<Mid>, u8, u8) {
    let (c, opus, vp8) = subscriber_client(n).await;
    let (hid, c, mids) = join(gw, sid, c, json!({"request": "subscribe", "feed": feed})).await;
    (hid, c, mids, opus, vp8)
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
    let (pa, mut pub_a, mids_a) = join_publisher(&mut gw, sid).await;
    let (pb, mut pub_b, mids_b) = join_publisher(&mut gw, sid).await;

    let n_subs = subscribers();
    let mut subs = Vec::new();
    for i in 0..n_subs {
        subs.push(join_subscriber(&mut gw, sid, pa, i as u8).await);
    }
    let sub_ids: Vec<u64> = subs.iter().map(|(h, ..)| *h).collect();
    let workers: HashSet<u64> = sub_ids.iter().map(|h| h % 2).collect();
    assert_eq!(workers.len(), 2, "subscribers on both workers");

    // Every subscriber drives its client on its own task; the publishers are driven here.
    const K: u32 = 30;
    let (up_tx, mut up_rx) = tokio::sync::mpsc::unbounded_channel();
    let (a_tx, mut a_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for (hid, mut c, mids, opus, vp8) in subs {
        let up = up_tx.clone();
        let a_done = a_tx.clone();
        tasks.push(tokio::spawn(async move {
            let ok = c.run_until(Duration::from_secs(60), |c| c.connected).await;
            let _ = up.send(ok);
            let (a, v) = (mids[0], mids[1]);
            let all_a =
                |c: &Client| got(c, a, b'A').len() as u32 >= K && got(c, v, b'A').len() as u32 >= K;
            c.run_until(Duration::from_secs(60), all_a).await;
            let _ = a_done.send(());
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
    // Switch only once every subscriber has A's packets (or gave up waiting for them): a
    // switch drops what is still queued for the old feed, and a loaded machine may be slow.
    drop(a_tx);
    let mut a_seen = 0;
    while a_seen < n_subs {
        tokio::select! {
            r = a_rx.recv() => match r { Some(()) => a_seen += 1, None => break },
            _ = pub_a.run_for(Duration::from_millis(50)) => {}
        }
    }
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
    let (pa, mut publisher, mids) = join_publisher(&mut gw, sid).await;
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
    // The server has taken (nearly) all of them — on a loaded machine it may need a moment, and
    // a few may be lost on the way; handle_info's snapshot is refreshed once a second.
    let received = |gw: &Gw| -> Vec<u64> {
        gw.handle_info(sid, pa)["webrtc"]["media"]
            .as_object()
            .map(|m| {
                m.values()
                    .filter_map(|v| v["stats"]["in"]["packets"].as_u64())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen = Vec::new();
    for _ in 0..30 {
        publisher.run_for(Duration::from_millis(500)).await;
        seen = received(&gw);
        if seen.len() == 2 && seen.iter().all(|n| *n >= 6_000) {
            break;
        }
    }
    assert!(
        seen.len() == 2 && seen.iter().all(|n| *n > 5_500),
        "the publisher's packets reached the server, past sequence number 70,000: {seen:?}"
    );

    let (hid, mut sub, smids, opus, vp8) = join_subscriber(&mut gw, sid, pa, 3).await;
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

/// Subscribers' keyframe requests reach the publisher through the plugin, at most once per
/// `fir_freq` however many ask; a subscriber's REMB estimate reaches the plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyframe_requests_are_throttled_and_remb_reaches_the_plugin() {
    let mut gw = Gw::start(fan_opts());
    let sid = gw.create_session();
    let (pa, mut publisher, mids) = join_publisher(&mut gw, sid).await;
    let mut subs = Vec::new();
    for i in 0..2u8 {
        let (hid, mut c, smids, _, _) = join_subscriber(&mut gw, sid, pa, i).await;
        assert!(c.run_until(WAIT, |c| c.connected).await, "subscriber up");
        gw.event("subscriber webrtcup", is("webrtcup", hid)).await;
        subs.push((hid, c, smids));
    }
    // Some video first, so the subscribers have a stream to send feedback about.
    let tasks: Vec<_> = subs
        .into_iter()
        .map(|(hid, mut c, smids)| {
            tokio::spawn(async move {
                c.run_until(WAIT, |c| got(c, smids[1], b'V').len() >= 5)
                    .await;
                // Both ask for keyframes, several times, and one reports its bandwidth.
                for _ in 0..3 {
                    if let Some(rx) = c.rtc.direct_api().stream_rx_by_mid(smids[1], None) {
                        rx.request_keyframe(KeyframeRequestKind::Pli);
                        rx.request_remb(str0m::bwe::Bitrate::bps(200_000));
                    }
                    c.run_for(Duration::from_millis(100)).await;
                }
                c.run_for(Duration::from_millis(500)).await;
                (hid, c)
            })
        })
        .collect();
    for i in 0..5 {
        publisher.send_rtp(mids[1], payload(b'V', i));
        publisher.run_for(Duration::from_millis(20)).await;
    }
    publisher.run_for(Duration::from_millis(1_500)).await;
    for t in tasks {
        let (hid, _c) = t.await.expect("subscriber task");
        // handle_info's plugin part is read live from the plugin.
        let info = gw.handle_info(sid, hid);
        let ps = &info["plugin_specific"];
        assert!(ps["keyframe_requests"].as_u64() >= Some(1), "{ps}");
        assert_eq!(ps["remb"], 200_000, "{ps}");
    }
    assert_eq!(
        publisher.keyframe_requests.len(),
        1,
        "six requests from two subscribers within fir_freq: one keyframe request"
    );
    let info = gw.handle_info(sid, pa);
    assert_eq!(info["plugin_specific"]["subscribers"], 2, "{info}");
    gw.stop();
}
