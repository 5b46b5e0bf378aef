//! Negotiation through the real gateway: a client offer answered by EchoTest (audio, video and a
//! data channel echoed back, Janus events, Admin API `handle_info`), a plugin's own offer
//! answered by the client (media flows plugin → client), and the answers the core refuses.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_offer_echotest_answer_echoes_audio_video_and_data() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, true, true);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    let audio = mids_in(&answer, "audio");
    let video = mids_in(&answer, "video");
    assert_eq!((audio.len(), video.len()), (1, 1), "answer:\n{answer}");
    assert_eq!(
        mids_in(&answer, "application").len(),
        1,
        "answer:\n{answer}"
    );
    assert!(
        answer.contains("a=candidate:") && answer.contains("127.0.0.1"),
        "the answer carries the loopback host candidate:\n{answer}"
    );
    c.accept_answer(pending, &answer);

    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;

    // Audio and video: every counter comes back, on the same kind of m-line, content intact.
    let back = c.echo_round(audio[0], b'A', 50, WAIT).await;
    assert_eq!(back, (0..50).collect::<Vec<u32>>(), "audio echo");
    let back = c.echo_round(video[0], b'V', 50, WAIT).await;
    assert_eq!(back, (0..50).collect::<Vec<u32>>(), "video echo");
    // Nothing came back that was not sent.
    assert!(c
        .rtp
        .iter()
        .all(|(_, p)| matches!(parse_payload(p), Some((b'A' | b'V', n)) if n < 50)));

    for (kind, mid) in [("audio", audio[0]), ("video", video[0])] {
        let ev = gw
            .event("media", |e| {
                e["janus"] == "media" && e["sender"] == hid && e["type"] == kind
            })
            .await;
        assert_eq!(ev["receiving"], true, "{ev}");
        assert_eq!(ev["mid"], mid.to_string(), "{ev}");
        assert_eq!(ev["session_id"], sid, "{ev}");
    }

    // Data channel: text comes back with EchoTest's prefix, binary as is.
    assert!(
        c.run_until(WAIT, |c| !c.channels.is_empty()).await,
        "data channel open"
    );
    c.send_text("hello 1");
    assert!(c.run_until(WAIT, |c| !c.data.is_empty()).await, "data echo");
    assert_eq!(
        String::from_utf8_lossy(&c.data[0].1),
        format!("{ECHO_PREFIX}hello 1")
    );
    assert!(!c.data[0].0, "text stays text");
    let id = c.channels[0].0;
    c.rtc
        .channel(id)
        .expect("channel")
        .write(true, &[0, 1, 2, 255])
        .expect("write");
    assert!(
        c.run_until(WAIT, |c| c.data.len() >= 2).await,
        "binary echo"
    );
    assert_eq!(c.data[1], (true, vec![0, 1, 2, 255]));

    // Admin API: handle_info carries ICE, DTLS and per-m-line stats (refreshed once a second).
    let fp = answer
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=fingerprint:sha-256 "))
        .expect("fingerprint in answer")
        .to_owned();
    let deadline = std::time::Instant::now() + WAIT;
    let info = loop {
        let info = gw.handle_info(sid, hid);
        let m = &info["webrtc"]["media"];
        let full = |s: &Value| {
            s["in"]["packets"].as_u64() >= Some(50) && s["out"]["packets"].as_u64() >= Some(50)
        };
        if full(&m[audio[0].to_string()]["stats"]) && full(&m[video[0].to_string()]["stats"]) {
            break info;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stats never reached 50/50: {info:#}"
        );
        c.run_for(Duration::from_millis(200)).await;
    };
    let w = &info["webrtc"];
    assert!(
        w["ice"]["state"] == "connected" || w["ice"]["state"] == "ready",
        "{info:#}"
    );
    assert_eq!(w["ice"]["ready"], 1, "{info:#}");
    assert!(
        w["ice"]["selected-pair"]
            .as_str()
            .is_some_and(|s| s.contains(&c.local.to_string())),
        "selected pair names the client: {info:#}"
    );
    assert!(w["ice"]["local-candidates"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    let local_fp = w["dtls"]["fingerprint"].as_str().unwrap_or_default();
    assert!(
        local_fp.eq_ignore_ascii_case(&fp) || local_fp.ends_with(&fp),
        "handle_info fingerprint {local_fp:?} is the answer's {fp:?}"
    );
    assert!(w["dtls"]["remote-fingerprint"].is_string(), "{info:#}");
    assert_eq!(w["dtls"]["dtls-state"], "connected");
    let v = &w["media"][video[0].to_string()];
    assert_eq!(v["type"], "video");
    assert!(v["stats"]["in"]["packets"].as_u64() >= Some(50), "{v}");
    assert!(v["stats"]["out"]["packets"].as_u64() >= Some(50), "{v}");
    assert_eq!(info["flags"]["got-offer"], true);
    assert_eq!(info["flags"]["ready"], true);
    assert_eq!(info["flags"]["has-audio"], true);
    assert_eq!(info["flags"]["has-video"], true);
    assert_eq!(info["flags"]["data-channels"], true);
    assert_eq!(info["plugin"], ECHO);
    assert_eq!(gw.engine.peerconnections(), 1);
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_sdp_is_refused_with_465() {
    let gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let r = gw.message(
        sid,
        hid,
        json!({"audio": true}),
        Some(json!({"type": "offer", "sdp": "v=0\r\nthis is not sdp\r\n"})),
    );
    assert_eq!(r["janus"], "error", "{r}");
    assert_eq!(r["error"]["code"], 465, "{r}");
    assert_eq!(gw.engine.peerconnections(), 0);
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_offer_client_answer_media_flows_to_client() {
    let mut gw = Gw::start(offerer_opts());
    let sid = gw.create_session();
    let hid = gw.attach(sid, OFFERER);

    // An answer before any offer: 469, and no PeerConnection.
    let mut probe = Client::new().await;
    let (probe_sdp, _, _) = probe.offer(true, false, false);
    let r = gw.message(
        sid,
        hid,
        json!({}),
        Some(json!({"type": "answer", "sdp": probe_sdp})),
    );
    assert_eq!(r["janus"], "error", "{r}");
    assert_eq!(r["error"]["code"], 469, "{r}");
    assert_eq!(gw.engine.peerconnections(), 0);

    let r = gw.message(sid, hid, json!({"request": "offer"}), None);
    assert_eq!(r["janus"], "ack", "{r}");
    let t = r["transaction"].clone();
    let ev = gw
        .event("plugin offer", |e| {
            e["janus"] == "event" && e["transaction"] == t
        })
        .await;
    assert_eq!(ev["jsep"]["type"], "offer", "{ev}");
    let offer = ev["jsep"]["sdp"].as_str().expect("sdp").to_owned();
    assert_eq!(mids_in(&offer, "audio").len(), 1, "{offer}");
    assert_eq!(mids_in(&offer, "video").len(), 1, "{offer}");
    assert_eq!(mids_in(&offer, "application").len(), 1, "{offer}");

    let mut c = Client::new().await;
    let answer = c.accept_offer(&offer);
    let r = gw.message(
        sid,
        hid,
        json!({}),
        Some(json!({"type": "answer", "sdp": answer})),
    );
    assert_eq!(r["janus"], "ack", "{r}");
    let t = r["transaction"].clone();
    let ev = gw
        .event("answer taken", |e| {
            e["janus"] == "event" && e["transaction"] == t
        })
        .await;
    assert_eq!(ev["plugindata"]["data"]["got_answer"], true, "{ev}");
    assert!(ev.get("jsep").is_none(), "{ev}");

    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    assert!(
        c.run_until(WAIT, |c| c
            .channels
            .iter()
            .any(|(_, l)| l == "JanusDataChannel"))
            .await,
        "the plugin's data channel opens: {:?}",
        c.channels
    );

    // The plugin's own packets reach the client, every one, in its payload.
    let pt = first_pt(&answer, "audio");
    let r = gw.message(
        sid,
        hid,
        json!({"request": "send", "pt": pt, "count": 40}),
        None,
    );
    assert_eq!(r["janus"], "ack", "{r}");
    let got = |c: &Client| -> Vec<u32> {
        let mut v: Vec<u32> = c
            .rtp
            .iter()
            .filter_map(|(_, p)| parse_payload(p))
            .filter(|(t, _)| *t == b'P')
            .map(|(_, n)| n)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    c.run_until(WAIT, |c| got(c).len() >= 40 && !c.data.is_empty())
        .await;
    assert_eq!(
        got(&c),
        (0..40).collect::<Vec<u32>>(),
        "plugin → client RTP"
    );
    assert_eq!(
        c.data.first().map(|d| d.1.clone()),
        Some(b"plugin says hi".to_vec())
    );

    // The offer was answered: a second answer is unexpected again.
    let r = gw.message(
        sid,
        hid,
        json!({}),
        Some(json!({"type": "answer", "sdp": answer})),
    );
    assert_eq!(r["error"]["code"], 469, "{r}");
    // ...and the PeerConnection survived the refusal.
    assert_eq!(gw.engine.peerconnections(), 1);
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echotest_answer_without_offer_is_469() {
    let gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (sdp, _, _) = c.offer(true, true, false);
    let r = gw.message(
        sid,
        hid,
        json!({"audio": true}),
        Some(json!({"type": "answer", "sdp": sdp})),
    );
    assert_eq!(r["janus"], "error", "{r}");
    assert_eq!(r["error"]["code"], 469, "{r}");
    assert_eq!(gw.engine.peerconnections(), 0);
    gw.stop();
}
