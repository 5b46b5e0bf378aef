//! Renegotiation on a live PeerConnection (a second offer adding m-lines and a data channel) and
//! ICE restarts (client offer with new credentials; plugin offer with `restart`): media keeps
//! flowing, on the same PeerConnection.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn renegotiation_adds_video_and_data() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    assert!(mids_in(&answer, "video").is_empty());
    let audio = mids_in(&answer, "audio")[0];
    c.accept_answer(pending, &answer);
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    gw.event("webrtcup", is("webrtcup", hid)).await;
    let back = c.echo_round(audio, b'a', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>());

    // Second offer on the same PeerConnection: video and a data channel added.
    let (offer2, pending2, _) = c.offer(false, true, true);
    let answer2 = gw.echo_offer(sid, hid, &offer2, false).await;
    let video = mids_in(&answer2, "video");
    assert_eq!(video.len(), 1, "{answer2}");
    assert_eq!(mids_in(&answer2, "audio"), vec![audio], "audio m-line kept");
    assert_eq!(mids_in(&answer2, "application").len(), 1, "{answer2}");
    c.accept_answer(pending2, &answer2);
    assert_eq!(gw.engine.peerconnections(), 1, "same PeerConnection");

    let back = c.echo_round(video[0], b'v', 20, WAIT).await;
    assert_eq!(
        back,
        (0..20).collect::<Vec<u32>>(),
        "new video m-line echoes"
    );
    let back = c.echo_round(audio, b'b', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>(), "audio still echoes");
    assert!(
        c.run_until(WAIT, |c| !c.channels.is_empty()).await,
        "data channel open after renegotiation"
    );
    c.send_text("after update");
    assert!(c.run_until(WAIT, |c| !c.data.is_empty()).await);
    assert_eq!(
        String::from_utf8_lossy(&c.data[0].1),
        format!("{ECHO_PREFIX}after update")
    );
    let info = gw.handle_info(sid, hid);
    assert_eq!(info["flags"]["has-video"], true, "{info:#}");
    gw.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ice_restart_keeps_media_flowing() {
    let mut gw = Gw::start(Opts::default());
    let sid = gw.create_session();
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    let audio = mids_in(&answer, "audio")[0];
    c.accept_answer(pending, &answer);
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    let back = c.echo_round(audio, b'1', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>());

    c.ice.clear();
    let (offer2, pending2) = c.restart_offer();
    assert_ne!(
        ice_ufrag(&offer2),
        ice_ufrag(&offer),
        "client restarted ICE"
    );
    let answer2 = gw.echo_offer(sid, hid, &offer2, false).await;
    assert_ne!(
        ice_ufrag(&answer2),
        ice_ufrag(&answer),
        "the server answers an ICE restart with new credentials"
    );
    c.accept_answer(pending2, &answer2);
    let back = c.echo_round(audio, b'2', 20, WAIT).await;
    assert_eq!(
        back,
        (0..20).collect::<Vec<u32>>(),
        "media after ICE restart"
    );
    assert!(
        c.run_until(WAIT, Client::ice_restarted).await,
        "the new ICE session connects: {:?}",
        c.ice
    );
    // Still flowing a while later (the old ICE session is not what carries it).
    c.run_for(Duration::from_millis(1500)).await;
    let back = c.echo_round(audio, b'3', 20, WAIT).await;
    assert_eq!(back, (0..20).collect::<Vec<u32>>());
    assert_eq!(gw.engine.peerconnections(), 1);
    gw.stop();
}

/// A plugin's offer with `restart: true` on a live PeerConnection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_ice_restart_keeps_media_flowing() {
    let mut gw = Gw::start(offerer_opts());
    let sid = gw.create_session();
    let hid = gw.attach(sid, OFFERER);
    let mut c = Client::new().await;
    let offer = offer_from_plugin(&mut gw, sid, hid, false).await;
    let answer = c.accept_offer(&offer);
    answer_to_plugin(&mut gw, sid, hid, &answer).await;
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");
    let pt = first_pt(&answer, "audio");
    assert_eq!(plugin_send(&mut gw, &mut c, sid, hid, pt, 0).await, 20);

    c.ice.clear();
    let offer2 = offer_from_plugin(&mut gw, sid, hid, true).await;
    assert_ne!(ice_ufrag(&offer2), ice_ufrag(&offer), "restart offer");
    let answer2 = c.accept_offer(&offer2);
    assert_ne!(ice_ufrag(&answer2), ice_ufrag(&answer));
    answer_to_plugin(&mut gw, sid, hid, &answer2).await;
    assert!(
        c.run_until(WAIT, Client::ice_restarted).await,
        "the new ICE session connects: {:?}",
        c.ice
    );
    assert_eq!(
        plugin_send(&mut gw, &mut c, sid, hid, pt, 1).await,
        20,
        "plugin media after the ICE restart"
    );
    assert_eq!(gw.engine.peerconnections(), 1);
    gw.stop();
}

/// Asks the plugin for 20 packets (fresh sequence numbers per round: SRTP refuses replays);
/// returns how many distinct ones arrived.
pub async fn plugin_send(
    gw: &mut Gw,
    c: &mut Client,
    sid: u64,
    hid: u64,
    pt: u8,
    round: u64,
) -> usize {
    c.rtp.clear();
    let r = gw.message(
        sid,
        hid,
        json!({"request": "send", "pt": pt, "count": 20, "base": 5000 + 100 * round}),
        None,
    );
    assert_eq!(r["janus"], "ack", "{r}");
    let got = |c: &Client| {
        let mut v: Vec<u32> = c
            .rtp
            .iter()
            .filter_map(|(_, p)| parse_payload(p))
            .filter(|(t, _)| *t == b'P')
            .map(|(_, n)| n)
            .collect();
        v.sort_unstable();
        v.dedup();
        v.len()
    };
    c.run_until(WAIT, |c| got(c) >= 20).await;
    got(c)
}
