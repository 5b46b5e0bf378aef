//! Single-port mode: every PeerConnection on one UDP port, demultiplexed by ICE ufrag and then
//! by address. Several PeerConnections at once each get only their own echo, and all of the
//! server's datagrams come from that one port.

mod common;

use common::*;
use std::net::SocketAddr;
use std::time::Duration;
use str0m::media::Mid;

async fn connect(gw: &mut Gw, sid: u64) -> (u64, Client, Mid) {
    let hid = gw.attach(sid, ECHO);
    let mut c = Client::new().await;
    let (offer, pending, _) = c.offer(true, false, false);
    let answer = gw.echo_offer(sid, hid, &offer, false).await;
    let audio = mids_in(&answer, "audio")[0];
    c.accept_answer(pending, &answer);
    (hid, c, audio)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_peerconnections_on_one_port_each_get_their_own_echo() {
    let port = free_udp_port();
    let mut gw = Gw::start(Opts {
        single_port: Some(port),
        ..Opts::default()
    });
    let server: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let sid = gw.create_session();
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(connect(&mut gw, sid).await);
    }
    // Bring all three up, interleaving the clients so their ICE runs concurrently.
    let deadline = std::time::Instant::now() + WAIT;
    while !peers.iter().all(|(_, c, _)| c.connected) {
        assert!(std::time::Instant::now() < deadline, "not all connected");
        for (_, c, _) in peers.iter_mut() {
            c.run_for(Duration::from_millis(20)).await;
        }
    }
    for (hid, _, _) in &peers {
        gw.event("webrtcup", is("webrtcup", *hid)).await;
    }
    assert_eq!(gw.engine.peerconnections(), 3);

    // Every client sends its own tag, interleaved; each must get back exactly its own.
    let tags = [b'X', b'Y', b'Z'];
    for i in 0..30u32 {
        for ((_, c, mid), tag) in peers.iter_mut().zip(tags) {
            c.send_rtp(*mid, payload(tag, i));
            c.run_for(Duration::from_millis(3)).await;
        }
    }
    for ((_, c, _), tag) in peers.iter_mut().zip(tags) {
        let mine = |c: &Client| {
            let mut v: Vec<u32> = c
                .rtp
                .iter()
                .filter_map(|(_, p)| parse_payload(p))
                .filter(|(t, _)| *t == tag)
                .map(|(_, n)| n)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        c.run_until(WAIT, |c| mine(c).len() >= 30).await;
        assert_eq!(mine(c), (0..30).collect::<Vec<u32>>(), "{}", tag as char);
        let foreign: Vec<u8> = c
            .rtp
            .iter()
            .filter_map(|(_, p)| parse_payload(p))
            .map(|(t, _)| t)
            .filter(|t| *t != tag)
            .collect();
        assert!(
            foreign.is_empty(),
            "{} got others' packets: {foreign:?}",
            tag as char
        );
        assert_eq!(c.sources, vec![server], "everything from the single port");
    }
    gw.stop();
}

/// A client-initiated ICE restart in single-port mode: the server's new ufrag (str0m makes one
/// when it accepts an offer with new remote credentials) must be routable. Failed before the
/// fix in `pc.rs` `negotiate` (the ufrag was re-registered only for plugin restart offers).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_ice_restart_on_the_single_port() {
    let port = free_udp_port();
    let mut gw = Gw::start(Opts {
        single_port: Some(port),
        ..Opts::default()
    });
    let sid = gw.create_session();
    let (hid, mut c, audio) = connect(&mut gw, sid).await;
    assert!(c.run_until(WAIT, |c| c.connected).await);
    let back = c.echo_round(audio, b'1', 10, WAIT).await;
    assert_eq!(back, (0..10).collect::<Vec<u32>>());

    let engine = gw.engine.clone();
    let unmatched = move || {
        engine
            .stats()
            .unmatched
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    let before = unmatched();
    c.ice.clear();
    let (offer2, pending2) = c.restart_offer();
    let answer2 = gw.echo_offer(sid, hid, &offer2, false).await;
    c.accept_answer(pending2, &answer2);
    let formed = c.run_until(WAIT, Client::ice_restarted).await;
    assert!(
        formed,
        "the new ICE session never formed on the single port: client ICE {:?}, datagrams \
         unmatched {} -> {}, server ICE {}",
        c.ice,
        before,
        unmatched(),
        gw.handle_info(sid, hid)["webrtc"]["ice"]
    );
    let back = c.echo_round(audio, b'2', 10, WAIT).await;
    assert_eq!(
        back,
        (0..10).collect::<Vec<u32>>(),
        "echo after ICE restart on the single port (unmatched datagrams: {})",
        gw.engine
            .stats()
            .unmatched
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    gw.stop();
}

/// A plugin-initiated ICE restart (`LocalJsep::Offer { restart: true }`) in single-port mode.
///
/// str0m switches to the new local ICE credentials only when the client's answer is accepted,
/// so the single port must learn the new ufrag then (this test failed before it did).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_ice_restart_on_the_single_port() {
    let port = free_udp_port();
    let mut gw = Gw::start(Opts {
        single_port: Some(port),
        ..offerer_opts()
    });
    let sid = gw.create_session();
    let hid = gw.attach(sid, OFFERER);
    let mut c = Client::new().await;
    let offer = offer_from_plugin(&mut gw, sid, hid, false).await;
    let answer = c.accept_offer(&offer);
    answer_to_plugin(&mut gw, sid, hid, &answer).await;
    assert!(c.run_until(WAIT, |c| c.connected).await, "ICE+DTLS up");

    c.ice.clear();
    let offer2 = offer_from_plugin(&mut gw, sid, hid, true).await;
    assert_ne!(ice_ufrag(&offer2), ice_ufrag(&offer), "restart offer");
    let answer2 = c.accept_offer(&offer2);
    answer_to_plugin(&mut gw, sid, hid, &answer2).await;
    let formed = c.run_until(WAIT, Client::ice_restarted).await;
    assert!(
        formed,
        "the new ICE session never formed on the single port: client ICE {:?}, unmatched {}",
        c.ice,
        gw.engine
            .stats()
            .unmatched
            .load(std::sync::atomic::Ordering::Relaxed)
    );
    gw.stop();
}
