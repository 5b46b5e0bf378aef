//! Plugin offers that change a running PeerConnection, checked from the client's side: m-lines
//! added, removed (inactive, kept in place), recycled for a new stream, and the mids the plugin
//! is told in its event.

mod common;

use common::*;
use serde_json::{json, Value};
use std::time::Duration;

/// Asks the offer plugin for an offer with these m-lines; returns (SDP, mids from the event).
async fn plugin_offer(gw: &mut Gw, sid: u64, hid: u64, media: Value) -> (String, Vec<String>) {
    let body = json!({"request": "offer", "media": media, "data": false});
    let ev = plugin_offer_event(gw, sid, hid, body).await;
    let mids = ev["plugindata"]["data"]["mids"]
        .as_array()
        .expect("the event names the mids")
        .iter()
        .map(|m| m.as_str().expect("mid").to_owned())
        .collect();
    (ev["jsep"]["sdp"].as_str().expect("sdp").to_owned(), mids)
}

/// (media, mid, direction) of each m-line of an SDP, in order.
fn lines(sdp: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for section in sdp.split("\r\nm=").skip(1) {
        let media = section.split(' ').next().unwrap_or_default().to_owned();
        let attr = |name: &str| {
            section
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::to_owned)
        };
        let dir = ["sendrecv", "sendonly", "recvonly", "inactive"]
            .into_iter()
            .find(|d| section.lines().any(|l| l == format!("a={d}")))
            .unwrap_or("sendrecv")
            .to_owned();
        out.push((media, attr("a=mid:").unwrap_or_default(), dir));
    }
    out
}

fn send_video(mid: &str) -> Value {
    json!({"kind": "video", "send": true, "recv": false, "mid": mid})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_remove_and_recycle_m_lines() {
    let mut gw = Gw::start(offerer_opts());
    let sid = gw.create_session();
    let hid = gw.attach(sid, OFFERER);
    let mut client = Client::new().await;

    // First offer: audio and two videos, all sent by the plugin.
    let (sdp, mids) = plugin_offer(
        &mut gw,
        sid,
        hid,
        json!([
            {"kind": "audio", "send": true},
            {"kind": "video", "send": true},
            {"kind": "video", "send": true}
        ]),
    )
    .await;
    let l = lines(&sdp);
    assert_eq!(l.len(), 3, "{sdp}");
    assert_eq!(
        l.iter().map(|x| x.1.clone()).collect::<Vec<_>>(),
        mids,
        "the event names the SDP's mids in order"
    );
    assert!(l.iter().all(|x| x.2 == "sendonly"), "{l:?}");
    let answer = client.accept_offer(&sdp);
    answer_to_plugin(&mut gw, sid, hid, &answer).await;
    assert!(client.run_until(WAIT, |c| c.connected).await, "connected");
    let (audio, v1, v2) = (mids[0].clone(), mids[1].clone(), mids[2].clone());

    // Remove the first video: it stays in place, inactive; the others are unchanged.
    let (sdp, mids) = plugin_offer(
        &mut gw,
        sid,
        hid,
        json!([{"kind": "audio", "send": true, "mid": audio}, send_video(&v2)]),
    )
    .await;
    assert_eq!(mids, vec![audio.clone(), v2.clone()]);
    let l = lines(&sdp);
    assert_eq!(l.len(), 3, "m-lines are never removed: {sdp}");
    assert_eq!(
        l[1],
        ("video".into(), v1.clone(), "inactive".into()),
        "{l:?}"
    );
    assert_eq!(l[0].2, "sendonly");
    assert_eq!(l[2].2, "sendonly");
    let answer = client.accept_offer(&sdp);
    assert!(
        lines(&answer)[1].2 == "inactive",
        "the client sees the m-line inactive: {answer}"
    );
    answer_to_plugin(&mut gw, sid, hid, &answer).await;

    // A new video stream recycles the inactive m-line instead of adding one.
    let (sdp, mids) = plugin_offer(
        &mut gw,
        sid,
        hid,
        json!([
            {"kind": "audio", "send": true, "mid": audio},
            send_video(&v2),
            {"kind": "video", "send": true}
        ]),
    )
    .await;
    assert_eq!(
        mids,
        vec![audio.clone(), v2.clone(), v1.clone()],
        "recycled"
    );
    let l = lines(&sdp);
    assert_eq!(l.len(), 3, "{sdp}");
    assert_eq!(l[1], ("video".into(), v1.clone(), "sendonly".into()));
    let answer = client.accept_offer(&sdp);
    assert_eq!(lines(&answer)[1].2, "recvonly", "{answer}");
    answer_to_plugin(&mut gw, sid, hid, &answer).await;

    // With no inactive m-line left, another stream adds one at the end.
    let (sdp, mids) = plugin_offer(
        &mut gw,
        sid,
        hid,
        json!([
            {"kind": "audio", "send": true, "mid": audio},
            send_video(&v1),
            send_video(&v2),
            {"kind": "video", "send": true}
        ]),
    )
    .await;
    let l = lines(&sdp);
    assert_eq!(l.len(), 4, "{sdp}");
    assert_eq!(mids[3], l[3].1);
    assert!(![&audio, &v1, &v2].contains(&&mids[3]), "a new mid");
    let answer = client.accept_offer(&sdp);
    answer_to_plugin(&mut gw, sid, hid, &answer).await;
    let v3 = mids[3].clone();

    // A m-line restricted to one codec offers only it (and its retransmissions); the client's
    // answer, and what the engine agreed, follow.
    let (sdp, mids) = plugin_offer(
        &mut gw,
        sid,
        hid,
        json!([
            {"kind": "audio", "send": true, "mid": audio},
            send_video(&v1),
            send_video(&v2),
            send_video(&v3),
            {"kind": "video", "send": true, "codec": "vp9"}
        ]),
    )
    .await;
    assert_eq!(lines(&sdp).len(), 5, "{sdp}");
    let section = sdp
        .split("\r\nm=")
        .find(|s| s.contains(&format!("a=mid:{}", mids[4])))
        .expect("the new m-line");
    let rtpmaps: Vec<&str> = section
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .collect();
    assert!(
        !rtpmaps.is_empty()
            && rtpmaps
                .iter()
                .all(|m| m.contains("VP9/90000") || m.contains("rtx/90000")),
        "only VP9 offered: {rtpmaps:?}"
    );
    let answer = client.accept_offer(&sdp);
    answer_to_plugin(&mut gw, sid, hid, &answer).await;

    // The PeerConnection stayed up through all of it, and the handle knows every m-line.
    client.run_for(Duration::from_millis(300)).await;
    assert!(client.connected && !client.closed);
    let info = gw.handle_info(sid, hid);
    let media = info["webrtc"]["media"].as_object().expect("media");
    assert_eq!(media.len(), 5, "{info}");
    let codecs = &media[&mids[4]]["codecs"];
    assert!(
        codecs
            .as_array()
            .is_some_and(|c| !c.is_empty() && c.iter().all(|x| x["codec"] == "vp9")),
        "the engine agreed VP9 only there: {codecs}"
    );
    gw.stop();
}

/// An m-line offered with simulcast carries each layer on the stream of its rid: the client
/// receives three streams (three SSRCs), each continuous.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulcast_m_line_sends_each_layer_on_its_rid() {
    let mut gw = Gw::start(offerer_opts());
    let sid = gw.create_session();
    let hid = gw.attach(sid, OFFERER);
    let mut client = Client::new().await;
    let (sdp, mids) = plugin_offer(
        &mut gw,
        sid,
        hid,
        json!([{"kind": "video", "send": true, "simulcast": ["h", "m", "l"]}]),
    )
    .await;
    assert!(sdp.contains("a=simulcast:send h;m;l"), "{sdp}");
    for rid in ["h", "m", "l"] {
        assert!(sdp.contains(&format!("a=rid:{rid} send")), "{sdp}");
    }
    let answer = client.accept_offer(&sdp);
    answer_to_plugin(&mut gw, sid, hid, &answer).await;
    assert!(client.run_until(WAIT, |c| c.connected).await, "connected");
    let r = gw.message(sid, hid, json!({"request": "layers", "count": 20}), None);
    assert_eq!(r["janus"], "ack", "{r}");
    let mid = str0m::media::Mid::from(mids[0].as_str());
    let per_layer = |c: &Client, tag: u8| -> Vec<(u32, u64, u32)> {
        c.rtp
            .iter()
            .zip(&c.rtp_meta)
            .filter(|((m, _), _)| *m == mid)
            .filter_map(|((_, p), (_, _, seq, ssrc))| {
                parse_payload(p)
                    .filter(|(t, _)| *t == tag)
                    .map(|(_, n)| (n, *seq, *ssrc))
            })
            .collect()
    };
    client
        .run_until(WAIT, |c| (0..3).all(|l| per_layer(c, b'0' + l).len() >= 20))
        .await;
    let mut ssrcs = std::collections::HashSet::new();
    for l in 0..3u8 {
        let got = per_layer(&client, b'0' + l);
        assert_eq!(got.len(), 20, "layer {l}: every packet");
        let ssrc = got[0].2;
        assert!(got.iter().all(|x| x.2 == ssrc), "layer {l}: one stream");
        assert!(ssrcs.insert(ssrc), "layer {l}: a stream of its own");
        assert!(
            got.windows(2).all(|w| w[1].1 == w[0].1 + 1),
            "layer {l}: continuous sequence numbers"
        );
    }
    gw.stop();
}
