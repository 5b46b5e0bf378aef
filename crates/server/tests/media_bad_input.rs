//! Bad input on the media path, against the real server with EchoTest and a real media engine
//! (on 127.0.0.1): malformed and unusable JSEPs, bogus trickle candidates once a PeerConnection
//! exists, and garbage datagrams on the media port of a connected PeerConnection (per-PC port
//! and single port). After each, the server must still serve, and where a PeerConnection is
//! involved, a str0m client must still get its media echoed.

mod common;

use common::*;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpPendingOffer};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite::Message;

/// Bound on getting a PeerConnection up (ICE + DTLS on loopback take well under a second).
const CONNECT: Duration = Duration::from_secs(15);

fn media_config(single_port: Option<u16>) -> jano_config::ConfigSet {
    let mut cfg = jano_config::ConfigSet::builtin();
    cfg.janus.nat.ice_enforce_list = vec!["127.0.0.1".into()];
    cfg.janus.media.single_port = single_port;
    cfg
}

async fn media_server(single_port: Option<u16>) -> Server {
    let s = Server::start_with(Opts::default(), media_config(single_port)).await;
    assert!(
        s.running().media.is_some(),
        "the media engine did not start on 127.0.0.1"
    );
    s
}

fn stats(s: &Server) -> (u64, u64, u64) {
    let m = s.running().media.as_ref().expect("media engine");
    let st = m.stats();
    (
        st.rejected.load(Ordering::Relaxed),
        st.unmatched.load(Ordering::Relaxed),
        st.queue_drops.load(Ordering::Relaxed),
    )
}

/// A tiny deterministic PRNG (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// A str0m WebRTC client (RTP mode, audio + video, one UDP socket on 127.0.0.1)

struct Peer {
    rtc: Rtc,
    sock: UdpSocket,
    local: SocketAddr,
    candidate: Candidate,
    pending: Option<SdpPendingOffer>,
    audio: Mid,
    video: Mid,
    connected: bool,
    disconnected: bool,
    echoed: u64,
    seq: u64,
}

impl Peer {
    /// A client and its offer; `with_candidate: false` leaves its host candidate out of the SDP
    /// (to be trickled).
    async fn new(with_candidate: bool) -> (Peer, String) {
        let sock = UdpSocket::bind("127.0.0.1:0").await.expect("client socket");
        let local = sock.local_addr().expect("client addr");
        let mut rtc = RtcConfig::new()
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            .set_stats_interval(None)
            .build(Instant::now());
        let candidate = Candidate::host(local, "udp").expect("host candidate");
        if with_candidate {
            rtc.add_local_candidate(candidate.clone())
                .expect("candidate added");
        }
        let mut api = rtc.sdp_api();
        let audio = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = api.apply().expect("an offer");
        if !with_candidate {
            rtc.add_local_candidate(candidate.clone())
                .expect("candidate added");
        }
        let peer = Peer {
            rtc,
            sock,
            local,
            candidate,
            pending: Some(pending),
            audio,
            video,
            connected: false,
            disconnected: false,
            echoed: 0,
            seq: 0,
        };
        (peer, offer.to_sdp_string())
    }

    fn accept_answer(&mut self, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).expect("server answer parses");
        let pending = self.pending.take().expect("an offer pending");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("server answer accepted");
    }

    /// Drives the client (its socket and timers) until `done` holds or `limit` passes.
    async fn pump(&mut self, limit: Duration, done: impl Fn(&Peer) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        let mut buf = vec![0u8; 2048];
        loop {
            let next = loop {
                match self.rtc.poll_output() {
                    Ok(Output::Timeout(t)) => break t,
                    Ok(Output::Transmit(t)) => {
                        let _ = self.sock.try_send_to(&t.contents, t.destination);
                    }
                    Ok(Output::Event(e)) => match e {
                        Event::Connected => self.connected = true,
                        Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                            self.disconnected = true
                        }
                        Event::RtpPacket(_) => self.echoed += 1,
                        _ => {}
                    },
                    Err(e) => panic!("client str0m error: {e}"),
                }
            };
            if done(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wake = tokio::time::Instant::from_std(next.min(deadline).max(now));
            tokio::select! {
                r = self.sock.recv_from(&mut buf) => {
                    if let Ok((n, source)) = r {
                        if let Ok(contents) = buf[..n].try_into() {
                            let input = Input::Receive(Instant::now(), Receive {
                                proto: Protocol::Udp,
                                source,
                                destination: self.local,
                                contents,
                            });
                            self.rtc.handle_input(input).expect("client input");
                        }
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.rtc
                .handle_input(Input::Timeout(Instant::now()))
                .expect("client timeout");
        }
    }

    fn payload_type(&self, mid: Mid, codec: Codec) -> str0m::format::PayloadParams {
        let remote = self
            .rtc
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default();
        *self
            .rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
            .unwrap_or_else(|| panic!("{codec:?} not negotiated"))
    }

    /// Sends one RTP packet on `mid` (`video`: VP8) with `payload`.
    fn send(&mut self, video: bool, payload: Vec<u8>) {
        let (mid, codec) = if video {
            (self.video, Codec::Vp8)
        } else {
            (self.audio, Codec::Opus)
        };
        let pt = self.payload_type(mid, codec).pt();
        self.seq += 1;
        let ts = (self.seq as u32).wrapping_mul(960);
        let w = RtpWrite::new(pt, SeqNo::from(self.seq), ts, Instant::now(), payload).marker(video);
        if let Some(tx) = self.rtc.direct_api().stream_tx_by_mid(mid, None) {
            tx.write_rtp(w);
        }
    }

    /// Sends audio (and a few VP8 keyframe-looking video packets) until `n` more packets came
    /// back, within `limit`.
    async fn echo(&mut self, n: u64, limit: Duration) -> bool {
        let target = self.echoed + n;
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            // Opus TOC + filler; VP8 descriptor (S=1, partition 0) + keyframe header bit.
            self.send(false, vec![0xF8, 1, 2, 3, 4, 5, 6, 7]);
            self.send(true, vec![0x10, 0x00, 0x9d, 0x01, 0x2a, 1, 2, 3]);
            if self
                .pump(Duration::from_millis(20), |p| p.echoed >= target)
                .await
            {
                return true;
            }
        }
        false
    }
}

/// The server's host candidate (address) in an answer SDP.
fn server_addr(sdp: &str) -> SocketAddr {
    sdp.lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=candidate:"))
        .find_map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            let ip = f.get(4)?.parse().ok()?;
            let port = f.get(5)?.parse().ok()?;
            Some(SocketAddr::new(ip, port))
        })
        .unwrap_or_else(|| panic!("no candidate in the answer:\n{sdp}"))
}

/// Waits (bounded) for the next message whose `janus` is `kind`; other messages are skipped
/// unless they are a `hangup`, which fails the test.
async fn ws_wait(ws: &mut WsClient, kind: &str, limit: Duration) -> Value {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_json(left).await {
            Ok(v) if v["janus"] == kind => return v,
            Ok(v) if v["janus"] == "hangup" => panic!("PeerConnection hung up: {v}"),
            Ok(_) => continue,
            Err(e) => panic!("waiting for {kind}: {e:?}"),
        }
    }
}

/// Reads events for `d`; a `hangup` fails the test.
async fn no_hangup(ws: &mut WsClient, d: Duration) {
    let deadline = tokio::time::Instant::now() + d;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_json(left).await {
            Ok(v) => assert_ne!(v["janus"], "hangup", "PeerConnection hung up: {v}"),
            Err(WsEnd::Timeout) => return,
            Err(e) => panic!("WebSocket: {e:?}"),
        }
    }
}

/// Sends `v` and returns the message answering its transaction (events in between skipped;
/// a `hangup` fails the test).
async fn ws_call(ws: &mut WsClient, v: Value) -> Value {
    let t = v["transaction"].as_str().expect("transaction").to_owned();
    ws.send_json(&v).await;
    ws_reply(ws, &t).await
}

async fn ws_reply(ws: &mut WsClient, t: &str) -> Value {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_json(left).await {
            Ok(v) if v["transaction"] == t => return v,
            Ok(v) if v["janus"] == "hangup" => panic!("PeerConnection hung up: {v}"),
            Ok(_) => continue,
            Err(e) => panic!("waiting for the reply to {t}: {e:?}"),
        }
    }
}

/// The next `ack` or `error` (for requests whose error cannot carry the transaction).
async fn ws_answer(ws: &mut WsClient) -> Value {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match ws.next_json(left).await {
            Ok(v) if v["janus"] == "ack" || v["janus"] == "error" => return v,
            Ok(_) => continue,
            Err(e) => panic!("waiting for an ack or error: {e:?}"),
        }
    }
}

/// Sends an offer over WS to EchoTest and returns the answer SDP.
async fn ws_offer(ws: &mut WsClient, sid: u64, hid: u64, offer: &str, trickle: bool) -> String {
    let t = tx();
    let r = ws
        .request(json!({
            "janus": "message", "session_id": sid, "handle_id": hid, "transaction": t,
            "body": {"audio": true, "video": true},
            "jsep": {"type": "offer", "sdp": offer, "trickle": trickle},
        }))
        .await;
    let ev = if r["janus"] == "ack" {
        ws_wait(ws, "event", IO_TIMEOUT).await
    } else {
        r
    };
    assert_eq!(ev["janus"], "event", "offer: {ev}");
    ev["jsep"]["sdp"]
        .as_str()
        .unwrap_or_else(|| panic!("no answer in {ev}"))
        .to_owned()
}

/// A connected client on a fresh WS session attached to EchoTest, with media echoing.
async fn connected_peer(s: &Server) -> (WsClient, u64, u64, Peer, String) {
    let mut ws = s.ws().await;
    let sid = ws.create().await;
    let hid = ws.attach(sid).await;
    let (mut peer, offer) = Peer::new(true).await;
    let answer = ws_offer(&mut ws, sid, hid, &offer, false).await;
    peer.accept_answer(&answer);
    assert!(
        peer.pump(CONNECT, |p| p.connected).await,
        "client never connected"
    );
    ws_wait(&mut ws, "webrtcup", CONNECT).await;
    assert!(
        peer.echo(5, CONNECT).await,
        "no echo after connecting ({} echoed)",
        peer.echoed
    );
    (ws, sid, hid, peer, answer)
}

// ---------------------------------------------------------------------------------------------
// JSEPs

/// A `message` to EchoTest with `jsep` over HTTP; returns the response.
async fn http_jsep(s: &Server, sid: u64, hid: u64, jsep: Value) -> Value {
    s.post(
        &format!("/janus/{sid}/{hid}"),
        json!({"janus": "message", "transaction": tx(), "body": {"audio": true, "video": true},
               "jsep": jsep}),
    )
    .await
}

/// The next plugin `event` from the session's long poll (other events skipped), bounded.
async fn poll_event(s: &Server, sid: u64) -> Value {
    let deadline = tokio::time::Instant::now() + IO_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        let v = s.poll_json(sid, "maxev=1").await;
        let v = v.as_array().map_or(&v, |a| &a[0]).clone();
        if v["janus"] == "event" {
            return v;
        }
    }
    panic!("no plugin event within {IO_TIMEOUT:?}");
}

/// Waits (bounded) until the engine has no PeerConnection left.
async fn wait_pc_gone(s: &Server) {
    let m = s.running().media.clone().expect("media engine");
    assert!(
        wait_until(IO_TIMEOUT, || {
            let m = m.clone();
            async move { m.peerconnections() == 0 }
        })
        .await,
        "PeerConnection still there"
    );
    // The core learns it from the engine's report, right after.
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[track_caller]
fn assert_refused(v: &Value, code: u64, what: &str) -> String {
    assert_eq!(
        v["janus"], "error",
        "{what}: expected error {code}, got {v}"
    );
    assert_eq!(v["error"]["code"], code, "{what}: wrong code in {v}");
    let reason = v["error"]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(!reason.trim().is_empty(), "{what}: no reason in {v}");
    reason
}

/// An offer's m-lines rewritten by `f` (media, port) → (media, port).
fn rewrite_m_lines(sdp: &str, f: impl Fn(&str, &str) -> (String, String)) -> String {
    sdp.split_inclusive('\n')
        .map(|l| match l.strip_prefix("m=") {
            Some(rest) => {
                let mut it = rest.splitn(3, ' ');
                let (media, port, tail) = (
                    it.next().unwrap_or(""),
                    it.next().unwrap_or(""),
                    it.next().unwrap_or(""),
                );
                let (m, p) = f(media, port);
                format!("m={m} {p} {tail}")
            }
            None => l.to_owned(),
        })
        .collect()
}

#[tokio::test]
async fn malformed_and_unusable_jseps_are_refused() {
    let s = media_server(None).await;
    let sid = s.create().await;
    let hid = s.attach(sid).await;
    let (_peer, offer) = Peer::new(true).await;

    // Malformed SDPs: 465 with a reason.
    let mut rng = Rng(0x5eed_0001);
    let junk: String = rng
        .bytes(600)
        .into_iter()
        .map(|b| char::from_u32(u32::from(b) * 131 % 0xD7FF).unwrap_or('\u{fffd}'))
        .collect();
    let mut huge_junk = String::from("v=0\r\n");
    while huge_junk.len() < 1_000_000 {
        huge_junk
            .push_str("x=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n");
    }
    let malformed: Vec<(&str, String)> = vec![
        ("random text", "hello, this is not an SDP at all".into()),
        ("empty", String::new()),
        ("whitespace", " \r\n\t ".into()),
        ("v=0 only", "v=0".into()),
        ("v=0 line only", "v=0\r\n".into()),
        ("binary junk", junk.clone()),
        ("binary junk after v=0", format!("v=0\r\n{junk}")),
        ("NULs", "v=0\r\n\0\0\0\0m=audio\0 9\r\n".into()),
        (
            "truncated offer (first lines)",
            offer[..offer.len().min(40)].into(),
        ),
        (
            "truncated offer (inside the first m-line)",
            offer[..offer.find("m=audio").unwrap() + 5].into(),
        ),
        ("huge junk near the body limit", huge_junk),
    ];
    for (what, sdp) in malformed {
        let r = http_jsep(&s, sid, hid, json!({"type": "offer", "sdp": sdp})).await;
        assert_refused(&r, 465, what);
        s.assert_alive().await;
    }

    // Every truncation of a real offer is refused or answered; none breaks anything. (Which
    // ones parse is str0m's business; a refusal must be a 465.)
    let mut cut = 1;
    while cut < offer.len() {
        let r = http_jsep(&s, sid, hid, json!({"type": "offer", "sdp": &offer[..cut]})).await;
        match r["janus"].as_str() {
            Some("error") => {
                assert_refused(&r, 465, &format!("offer cut at {cut}"));
            }
            Some("ack") => {
                // Answered: the event (with or without a jsep) must come.
                // Accepted: then the engine must answer it too (a client told `ack` and then
                // given an event without a jsep is stuck).
                let ev = poll_event(&s, sid).await;
                assert_eq!(
                    ev["jsep"]["type"], "answer",
                    "offer cut at {cut} passed the SDP check but got no answer: {ev}"
                );
            }
            _ => panic!("offer cut at {cut}: {r}"),
        }
        cut += 97;
    }
    s.assert_alive().await;

    // Parseable, but nothing usable: 465.
    let all_rejected = rewrite_m_lines(&offer, |m, _| (m.to_owned(), "0".into()));
    let r = http_jsep(&s, sid, hid, json!({"type": "offer", "sdp": all_rejected})).await;
    let reason = assert_refused(&r, 465, "every m-line with port 0");
    assert!(reason.contains("m-line"), "reason: {reason}");
    for media in ["text", "message", "foo"] {
        let unknown = rewrite_m_lines(&offer, |_, p| (media.to_owned(), p.to_owned()));
        let r = http_jsep(&s, sid, hid, json!({"type": "offer", "sdp": unknown})).await;
        assert_refused(&r, 465, &format!("only m={media} lines"));
    }

    // The jsep object itself.
    for (what, jsep) in [
        ("string jsep", json!(offer)),
        ("number jsep", json!(5)),
        ("array jsep", json!([{"type": "offer", "sdp": offer}])),
        ("null jsep", Value::Null),
        ("bool jsep", json!(true)),
    ] {
        let r = http_jsep(&s, sid, hid, jsep).await;
        assert_refused(&r, 455, what);
    }
    for kind in ["pranswer", "rollback", "", "offer ", "OFFERS"] {
        let r = http_jsep(&s, sid, hid, json!({"type": kind, "sdp": offer})).await;
        let reason = assert_refused(&r, 464, &format!("type {kind:?}"));
        assert!(reason.contains("unknown message type"), "reason: {reason}");
    }
    for (what, jsep, code) in [
        ("missing type", json!({"sdp": offer}), 456),
        ("missing sdp", json!({"type": "offer"}), 456),
        ("missing both", json!({}), 456),
        ("non-string type", json!({"type": 1, "sdp": offer}), 467),
        (
            "non-string sdp",
            json!({"type": "offer", "sdp": {"v": 0}}),
            467,
        ),
        ("null sdp", json!({"type": "offer", "sdp": null}), 467),
        (
            "non-bool trickle",
            json!({"type": "offer", "sdp": offer, "trickle": "yes"}),
            467,
        ),
    ] {
        let r = http_jsep(&s, sid, hid, jsep).await;
        assert_refused(&r, code, what);
    }

    // An answer although the server never offered: 469, whatever its SDP.
    for sdp in [offer.clone(), "v=0\r\n".into(), "junk".into()] {
        let r = http_jsep(&s, sid, hid, json!({"type": "answer", "sdp": sdp})).await;
        if sdp.starts_with("v=") {
            assert_refused(&r, 469, "unexpected answer");
        } else {
            // Janus checks the SDP text first.
            assert_eq!(r["janus"], "error", "{r}");
        }
    }
    let r = http_jsep(&s, sid, hid, json!({"type": "ANSWER", "sdp": offer})).await;
    assert_refused(&r, 469, "unexpected ANSWER");

    // A huge but well-formed offer (padded with unknown attributes) is answered or refused
    // with a 465, never anything else.
    let pad = "a=x-pad:0123456789012345678901234567890123456789012345678901234567890123\r\n";
    let mut huge = offer.clone();
    while huge.len() < 1_000_000 {
        huge.push_str(pad);
    }
    let r = http_jsep(&s, sid, hid, json!({"type": "offer", "sdp": huge})).await;
    if r["janus"] == "error" {
        assert_refused(&r, 465, "huge offer");
    } else {
        assert_eq!(r["janus"], "ack", "huge offer: {r}");
        let ev = poll_event(&s, sid).await;
        assert_eq!(ev["janus"], "event", "{ev}");
    }

    // Still serving, and the same handle still negotiates: after a hangup (some truncated
    // offers above were answered, so it has a PeerConnection whose mids a new client's offer
    // would not match), a good offer gets an answer.
    s.assert_alive().await;
    let r = s
        .post(
            &format!("/janus/{sid}/{hid}"),
            json!({"janus": "hangup", "transaction": tx()}),
        )
        .await;
    assert_eq!(r["janus"], "success", "hangup: {r}");
    wait_pc_gone(&s).await;
    let (_peer, offer) = Peer::new(true).await;
    let r = http_jsep(&s, sid, hid, json!({"type": "offer", "sdp": offer})).await;
    assert_eq!(r["janus"], "ack", "good offer after the bad ones: {r}");
    // (EchoTest's "done" for the hangup may come first.)
    let mut ev = poll_event(&s, sid).await;
    if ev["plugindata"]["data"]["result"] == "done" {
        ev = poll_event(&s, sid).await;
    }
    assert_eq!(ev["jsep"]["type"], "answer", "no answer: {ev}");
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Trickles

#[tokio::test]
async fn bogus_trickles_after_a_peerconnection_exists() {
    let s = media_server(None).await;
    let mut ws = s.ws().await;
    let sid = ws.create().await;
    let hid = ws.attach(sid).await;
    // The client's candidate is not in its offer: it is trickled after the garbage.
    let (mut peer, offer) = Peer::new(false).await;
    let answer = ws_offer(&mut ws, sid, hid, &offer, true).await;
    peer.accept_answer(&answer);

    let trickle = |c: Value| json!({"janus": "trickle", "session_id": sid, "handle_id": hid, "transaction": tx(), "candidate": c});
    let good = "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ host";
    // A single bad candidate: the codes of core-api.md §2.11.
    for (what, c, code) in [
        ("no sdpMid/sdpMLineIndex", json!({"candidate": good}), 456),
        (
            "non-string sdpMid",
            json!({"sdpMid": 0, "candidate": good}),
            467,
        ),
        (
            "negative sdpMLineIndex",
            json!({"sdpMLineIndex": -1, "candidate": good}),
            467,
        ),
        (
            "fractional sdpMLineIndex",
            json!({"sdpMLineIndex": 0.5, "candidate": good}),
            467,
        ),
        (
            "string sdpMLineIndex",
            json!({"sdpMLineIndex": "0", "candidate": good}),
            467,
        ),
        (
            "no candidate",
            json!({"sdpMid": "0", "sdpMLineIndex": 0}),
            456,
        ),
        (
            "non-string candidate",
            json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": 5}),
            467,
        ),
        (
            "object candidate",
            json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": {"a": 1}}),
            467,
        ),
    ] {
        let r = ws_call(&mut ws, trickle(c)).await;
        assert_refused(&r, code, what);
    }

    // Absurd candidate strings, well typed: acked (Janus only logs them), then ignored.
    let long = format!(
        "candidate:1 1 udp 1 127.0.0.1 5000 typ host {}",
        "x".repeat(10_000)
    );
    let absurd = [
        "candidate:1 1 udp 2130706431 999.1.1.1 5000 typ host".to_owned(),
        "candidate:1 1 udp 2130706431 127.0.0.1 0 typ host".into(),
        "candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host".into(),
        "candidate:1 1 udp 2130706431 127.0.0.1 -5 typ host".into(),
        "candidate:1 1 udp -1 127.0.0.1 5000 typ host".into(),
        "candidate:1 1 tcp 2130706431 127.0.0.1 5000 typ host tcptype active".into(),
        "candidate:1 1 udp 2130706431 fe80::1%eth0 5000 typ host".into(),
        "candidate:1 1 udp 2130706431 example.invalid 5000 typ host".into(),
        "candidate:1 1 udp 2130706431 127.0.0.1 5000 typ nonsense".into(),
        "candidate:1 1 udp 2130706431 10.0.0.1 5000 typ srflx raddr x rport y".into(),
        "candidate:".into(),
        "candidate".into(),
        "a=".into(),
        "  ".into(),
        "candidate:\u{0}\u{1}\u{7f}\u{fffd}\u{10ffff} 1 udp 1 1.2.3.4 5 typ host".into(),
        "\u{feff}candidate:1 1 udp 1 1.2.3.4 5 typ host".into(),
        long,
    ];
    for c in &absurd {
        let r = ws_call(
            &mut ws,
            trickle(json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": c})),
        )
        .await;
        assert_eq!(r["janus"], "ack", "candidate {:.60?}: {r}", c);
    }
    // For another m-line (ignored under BUNDLE), and an absurd index.
    for idx in [1u64, 7, u64::from(u32::MAX), (1 << 53) - 1] {
        let r = ws_call(
            &mut ws,
            trickle(json!({"sdpMLineIndex": idx, "candidate": good})),
        )
        .await;
        assert_eq!(r["janus"], "ack", "sdpMLineIndex {idx}: {r}");
    }

    // An array with bad entries: acked, the bad ones skipped.
    let r = ws_call(
        &mut ws,
        json!({
            "janus": "trickle", "session_id": sid, "handle_id": hid, "transaction": tx(),
            "candidates": [
                {"candidate": good},
                {"sdpMid": 1, "candidate": good},
                {"sdpMLineIndex": -3, "candidate": good},
                {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": null},
                {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": absurd[0]},
                {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": absurd[16]},
                5, "text", [], null,
                {"sdpMid": "0", "sdpMLineIndex": 0, "candidate": good},
            ],
        }),
    )
    .await;
    assert_eq!(r["janus"], "ack", "array with bad entries: {r}");
    let r = ws_call(
        &mut ws,
        json!({"janus": "trickle", "session_id": sid, "handle_id": hid,
                         "transaction": tx(), "candidates": "not an array"}),
    )
    .await;
    assert!(r["janus"] == "ack" || r["janus"] == "error", "{r}");

    // Escapes: U+0000 and a valid surrogate pair are JSON; a lone surrogate is not (454), and
    // neither are raw non-UTF-8 bytes.
    for (text, ok) in [
        (
            r#""candidate:1 1 udp 1 127.0.0.1 5000 typ host \u0000\uffff""#,
            true,
        ),
        (
            r#""candidate:\ud83d\ude00 1 udp 1 127.0.0.1 5000 typ host""#,
            true,
        ),
        (
            r#""candidate:\ud800 1 udp 1 127.0.0.1 5000 typ host""#,
            false,
        ),
        (
            r#""candidate:\udc00\ud800 1 udp 1 127.0.0.1 5000 typ host""#,
            false,
        ),
    ] {
        let raw = format!(
            r#"{{"janus":"trickle","session_id":{sid},"handle_id":{hid},"transaction":"esc","candidate":{{"sdpMid":"0","sdpMLineIndex":0,"candidate":{text}}}}}"#
        );
        ws.send_text(&raw).await;
        let r = ws_answer(&mut ws).await;
        if ok {
            assert_eq!(r["janus"], "ack", "{text}: {r}");
        } else {
            assert_refused(&r, 454, text);
        }
    }
    let mut raw = format!(
        r#"{{"janus":"trickle","session_id":{sid},"handle_id":{hid},"transaction":"bin","candidate":{{"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:"#
    )
    .into_bytes();
    raw.extend_from_slice(b"\xff\xfe\xc0\x80 1 udp 1 127.0.0.1 5000 typ host\"}}");
    ws.send(Message::binary(raw)).await;
    let r = ws_answer(&mut ws).await;
    assert_refused(&r, 454, "non-UTF-8 bytes");

    // Now the real candidate, and end-of-candidates: the PeerConnection comes up and echoes.
    s.assert_alive().await;
    let r = ws_call(
        &mut ws,
        trickle(json!({"sdpMid": "0", "sdpMLineIndex": 0,
                                "candidate": peer.candidate.to_sdp_string()})),
    )
    .await;
    assert_eq!(r["janus"], "ack", "{r}");
    let r = ws_call(&mut ws, trickle(json!({"completed": true}))).await;
    assert_eq!(r["janus"], "ack", "{r}");
    assert!(
        peer.pump(CONNECT, |p| p.connected).await,
        "client never connected after the bogus trickles"
    );
    ws_wait(&mut ws, "webrtcup", CONNECT).await;
    assert!(
        peer.echo(5, CONNECT).await,
        "no echo after the bogus trickles"
    );
    // And trickles after connecting change nothing either.
    for c in &absurd {
        let r = ws_call(
            &mut ws,
            trickle(json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": c})),
        )
        .await;
        assert_eq!(r["janus"], "ack", "{r}");
    }
    assert!(
        peer.echo(5, CONNECT).await,
        "no echo after late bogus trickles"
    );
    assert!(!peer.disconnected, "client saw ICE disconnect");
    ws.close().await;
    s.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Garbage datagrams

/// What is thrown at the media port: every kind of truncated or random datagram.
fn garbage(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = vec![Vec::new(), vec![0], vec![0x80], vec![0xff; 3]];
    // Random bytes of every size class, with every first byte.
    for first in 0..=255u8 {
        let n = (rng.next() % 300) as usize + 1;
        let mut d = rng.bytes(n);
        d[0] = first;
        out.push(d);
    }
    // Truncated RTP (version 2) and RTCP (PT 200..=206) headers.
    for n in 1..16 {
        let mut d = rng.bytes(n);
        d[0] = 0x80;
        out.push(d);
        let mut d = rng.bytes(n.max(2));
        d[0] = 0x80;
        d[1] = 200 + (n as u8 % 7);
        out.push(d);
    }
    // RTP with a full header, random SSRC, padding and extension bits, lying CSRC count.
    for b0 in [0x80u8, 0x90, 0xA0, 0xBF, 0x8F] {
        let mut d = rng.bytes(64);
        d[0] = b0;
        d[1] = 111;
        out.push(d);
    }
    // Truncated STUN (binding request, magic cookie, short or lying length).
    let mut stun = vec![0x00, 0x01, 0x00, 0x08, 0x21, 0x12, 0xA4, 0x42];
    stun.extend(rng.bytes(12));
    for n in 2..stun.len() {
        out.push(stun[..n].to_vec());
    }
    let mut lying = stun.clone();
    lying[2] = 0xff;
    lying[3] = 0xff;
    lying.extend_from_slice(&[0x00, 0x06, 0x00, 0x40, b'a', b'b']);
    out.push(lying);
    let mut attr_overrun = stun.clone();
    attr_overrun[3] = 8;
    attr_overrun.extend_from_slice(&[0x00, 0x06, 0xff, 0xff, b'a', b'b', b'c', b'd']);
    out.push(attr_overrun);
    // Truncated and random DTLS records (handshake 22, application data 23, alert 21, CCS 20).
    for ct in [20u8, 21, 22, 23] {
        for n in [1usize, 3, 5, 12, 13, 14, 25, 60, 200] {
            let mut d = rng.bytes(n);
            d[0] = ct;
            if n > 2 {
                d[1] = 0xfe;
                d[2] = 0xfd;
            }
            out.push(d);
        }
    }
    // Big datagrams (the readers' buffer is smaller: they arrive truncated).
    out.push(rng.bytes(65_000));
    let mut big_rtp = rng.bytes(60_000);
    big_rtp[0] = 0x80;
    out.push(big_rtp);
    let mut big_dtls = rng.bytes(16_000);
    big_dtls[0] = 23;
    out.push(big_dtls);
    out
}

/// Sends every datagram, pacing so the kernel buffer does not drop them; returns how many left.
async fn blast(sock: &UdpSocket, to: SocketAddr, data: &[Vec<u8>]) -> u64 {
    let mut sent = 0;
    for (i, d) in data.iter().enumerate() {
        if sock.send_to(d, to).await.is_ok() {
            sent += 1;
        }
        if i % 32 == 31 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    sent
}

async fn garbage_on_the_media_port(single_port: Option<u16>) {
    let s = media_server(single_port).await;
    let (mut ws, _sid, _hid, mut peer, answer) = connected_peer(&s).await;
    let port = server_addr(&answer);
    if let Some(p) = single_port {
        assert_eq!(port.port(), p, "answer not on the single port");
    }
    let mut rng = Rng(0x5eed_0002);

    // From a stranger: every datagram refused (per-PC port) or unmatched (single port).
    let (rej0, unm0, drop0) = stats(&s);
    let stranger = UdpSocket::bind("127.0.0.1:0").await.expect("socket");
    let junk = garbage(&mut rng);
    let sent = blast(&stranger, port, &junk).await;
    // Let the engine catch up while the client keeps its connection alive.
    assert!(peer.echo(5, CONNECT).await, "no echo during the garbage");
    let counted = wait_until(Duration::from_secs(5), || async {
        let (r, u, d) = stats(&s);
        (r - rej0) + (u - unm0) + (d - drop0) >= sent * 9 / 10
    })
    .await;
    let (rej1, unm1, drop1) = stats(&s);
    assert!(
        counted,
        "sent {sent} garbage datagrams, engine counted rejected +{} unmatched +{} dropped +{}",
        rej1 - rej0,
        unm1 - unm0,
        drop1 - drop0
    );
    if single_port.is_some() {
        assert!(unm1 > unm0, "single port: nothing unmatched");
    } else {
        assert!(rej1 > rej0, "nothing rejected");
    }

    // From the client's own address (as a spoofer would): the PeerConnection's own parsers see
    // it (DTLS, SRTP, RTCP, STUN); they must drop it, not the connection.
    let (rej2, _, _) = stats(&s);
    let junk = garbage(&mut rng);
    for (i, d) in junk.iter().enumerate() {
        let _ = peer.sock.send_to(d, port).await;
        if i % 32 == 31 {
            // Keep the client's own traffic flowing in between.
            peer.pump(Duration::from_millis(2), |_| false).await;
        }
    }
    assert!(
        peer.echo(20, CONNECT).await,
        "no echo after garbage from the peer's own address ({} echoed)",
        peer.echoed
    );
    let (rej3, _, _) = stats(&s);
    assert!(
        rej3 > rej2,
        "garbage from the peer address: nothing rejected"
    );
    assert!(!peer.disconnected, "client saw ICE disconnect");

    // Still up a while later (consent checks, no delayed hangup), and the server serves.
    assert!(peer.echo(20, Duration::from_secs(10)).await, "echo stopped");
    no_hangup(&mut ws, Duration::from_millis(300)).await;
    assert!(!peer.disconnected, "client saw ICE disconnect");
    s.assert_alive().await;
    assert_eq!(
        s.running().media.as_ref().unwrap().peerconnections(),
        1,
        "the PeerConnection is gone"
    );

    // A second client still gets a working PeerConnection.
    let (ws2, _, _, _peer2, _) = connected_peer(&s).await;
    ws2.close().await;
    ws.close().await;
    s.shutdown().await;
}

#[tokio::test]
async fn garbage_on_a_peerconnection_port() {
    garbage_on_the_media_port(None).await;
}

#[tokio::test]
async fn garbage_on_the_single_port() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free port")
        .port();
    garbage_on_the_media_port(Some(port)).await;
}
