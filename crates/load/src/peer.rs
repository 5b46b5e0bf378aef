//! One WebRTC peer of the `media` benchmark: a str0m `Rtc` in RTP mode with its own UDP socket
//! and its own WebSocket session on the server's EchoTest (or fan-out / VideoRoom). It
//! negotiates (non-trickle offer with all its candidates; a VideoRoom subscriber answers the
//! server's offer instead), waits for `webrtcup`, then sends synthetic Opus and VP8 RTP on a
//! shared schedule and counts what comes back (or what it is forwarded).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};

use crate::janus;
use crate::stats::{Failure, Kind};
use crate::ws::WsConn;

/// Marks our payloads, so anything else coming back is counted as foreign, not as an echo.
const MAGIC: [u8; 4] = *b"JLD1";
/// Bytes before our marker: room for a VP8 payload descriptor and a keyframe's payload header
/// (1 + 10 bytes, video) or an Opus TOC (audio).
const PREFIX: usize = 12;
/// A periodic VP8 keyframe this often (besides the first frame and any PLI/FIR).
const KEYFRAME_EVERY: Duration = Duration::from_secs(2);
/// prefix + magic + peer id + kind + measured flag + 2 spare + counter + send time.
pub const MIN_PAYLOAD: usize = PREFIX + 4 + 4 + 1 + 1 + 2 + 8 + 8;
/// Cap on RTT samples kept per peer (memory stays bounded on long runs).
const MAX_RTT_SAMPLES: usize = 20_000;

/// What every peer is told once all of them are connected: when to send, when to measure.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    pub start: Instant,
    pub measure_from: Instant,
    pub measure_to: Instant,
    /// Keep reading echoes until then, then hang up.
    pub drain_to: Instant,
}

/// Set by the coordinator: `None` while peers connect; `Abort` if the run is called off.
#[derive(Clone, Copy, Debug)]
pub enum Go {
    Wait,
    Run(Schedule),
    Abort,
}

/// A publisher's feed, as its subscribers learn it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feed {
    /// The publisher is still connecting.
    Pending,
    /// Up: the id to subscribe to (fan-out: its handle id; VideoRoom: its participant id).
    Up(u64),
    /// The publisher failed: its subscribers give up at once.
    Failed,
}

/// What a peer does: echo itself (EchoTest), or, on `jano.plugin.fanout` or in a VideoRoom,
/// publish (the first peer of its group) or subscribe to its group's publisher.
#[derive(Clone)]
pub enum Role {
    Echo,
    /// Announces its feed once it is up (or that it failed).
    Publisher(Arc<watch::Sender<Feed>>),
    /// Waits for its publisher's feed, subscribes, sends nothing and counts what it is
    /// forwarded (the packets of the publisher, peer number `from`).
    Subscriber {
        feed: watch::Receiver<Feed>,
        from: u32,
    },
}

pub struct PeerCfg {
    pub index: u32,
    pub role: Role,
    /// Publisher / subscriber roles: `None` = `jano.plugin.fanout`; `Some(room)` = the
    /// VideoRoom room of the group (the publisher creates it, and destroys it at the end).
    pub room: Option<u64>,
    pub url: String,
    pub bind_ip: IpAddr,
    pub audio_pps: u32,
    pub video_pps: u32,
    pub audio_bytes: usize,
    pub video_bytes: usize,
    /// Per request/answer.
    pub timeout: Duration,
    /// From sending the offer to `webrtcup` and a connected DTLS on our side.
    pub connect_timeout: Duration,
    pub keepalive: Duration,
    pub provider: Arc<CryptoProvider>,
    pub cert: DtlsCert,
}

/// Per media kind counters (index 0 = audio, 1 = video).
#[derive(Default, Clone, Debug)]
pub struct Counts {
    pub sent: u64,
    pub sent_measured: u64,
    /// Unique echoes of packets sent in the measured window.
    pub echoed_measured: u64,
    pub echoed_total: u64,
    pub duplicates: u64,
    /// Local sends that failed (socket buffer full, ...): lost before reaching the server.
    pub send_errors: u64,
}

#[derive(Default)]
pub struct PeerResult {
    pub connected: bool,
    /// Offer sent → `webrtcup` received, microseconds.
    pub webrtcup_us: Option<u32>,
    pub counts: [Counts; 2],
    /// Packets that carried neither our marker nor our peer id.
    pub foreign: u64,
    /// Echo round trips of measured packets, microseconds.
    pub rtt_us: Vec<u32>,
    pub failure: Option<Failure>,
    /// VP8 keyframes sent (first frame, periodic, on request) and PLI/FIR received.
    pub keyframes_sent: u64,
    pub keyframe_requests: u64,
    /// Non-fatal problems (keepalive/destroy trouble), counted as errors too.
    pub soft_failures: Vec<Failure>,
    pub events: Vec<String>,
}

/// A bitset of counters already seen (duplicate echoes, e.g. NACK retransmissions, count once).
#[derive(Default)]
struct Seen(Vec<u64>);

impl Seen {
    /// true if `n` was not seen before.
    fn insert(&mut self, n: u64) -> bool {
        let (w, b) = ((n / 64) as usize, n % 64);
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let fresh = self.0[w] & (1 << b) == 0;
        self.0[w] |= 1 << b;
        fresh
    }
}

struct Track {
    mid: Mid,
    pt: str0m::format::PayloadParams,
    interval: Duration,
    next: Instant,
    counter: u64,
    rtp_ts: u32,
    ts_step: u32,
    bytes: usize,
    seen: Seen,
    /// Video: the next frame is a keyframe (first frame, or after a PLI/FIR).
    key_due: bool,
    next_key: Instant,
}

pub async fn run(
    cfg: PeerCfg,
    go: watch::Receiver<Go>,
    ready: tokio::sync::mpsc::Sender<bool>,
    setup_gate: Arc<Semaphore>,
    epoch: Instant,
) -> PeerResult {
    let mut res = PeerResult::default();
    let mut p = Peer {
        cfg,
        res: &mut res,
        ws: None,
        session: None,
        handle: None,
        created_room: None,
        tx: janus::Tx::new(),
        epoch,
    };
    let outcome = p.run(go, ready, setup_gate).await;
    if let Err(f) = outcome {
        p.res.failure = Some(f);
    }
    p.hangup().await;
    res
}

struct Peer<'a> {
    cfg: PeerCfg,
    res: &'a mut PeerResult,
    ws: Option<WsConn>,
    session: Option<u64>,
    handle: Option<u64>,
    /// The VideoRoom room this peer created (destroyed when it hangs up).
    created_room: Option<u64>,
    tx: janus::Tx,
    epoch: Instant,
}

fn tdeadline(d: Duration) -> tokio::time::Instant {
    tokio::time::Instant::now() + d
}

impl Peer<'_> {
    fn ws(&mut self) -> Result<&mut WsConn, Failure> {
        self.ws
            .as_mut()
            .ok_or_else(|| Failure::new(Kind::Connect, "no WebSocket", "not connected"))
    }

    /// Sends a request and waits for the message answering its transaction.
    async fn call(&mut self, kind: Kind, body: Value) -> Result<(Value, String), Failure> {
        let tx = self.tx.next();
        let mut body = body;
        if let Some(o) = body.as_object_mut() {
            o.insert("transaction".into(), json!(tx));
        }
        let deadline = tdeadline(self.cfg.timeout);
        let ws = self.ws()?;
        ws.send(kind, body.to_string(), deadline).await?;
        let v = ws.recv_tx(kind, &tx, deadline).await?;
        Ok((v, tx))
    }

    async fn run(
        &mut self,
        mut go: watch::Receiver<Go>,
        ready: tokio::sync::mpsc::Sender<bool>,
        setup_gate: Arc<Semaphore>,
    ) -> Result<(), Failure> {
        // A subscriber first waits for its publisher (without holding a setup slot, which the
        // publisher may need).
        let feed = match &self.cfg.role {
            Role::Subscriber { feed, .. } => {
                let mut feed = feed.clone();
                let got = tokio::time::timeout(
                    self.cfg.connect_timeout * 20,
                    feed.wait_for(|f| *f != Feed::Pending),
                )
                .await
                .ok()
                .and_then(|r| r.ok().map(|f| *f));
                match got {
                    Some(Feed::Up(id)) => Some(id),
                    _ => {
                        let _ = ready.send(false).await;
                        return Err(Failure::new(
                            Kind::Message,
                            "no publisher",
                            if got == Some(Feed::Failed) {
                                "the publisher failed"
                            } else {
                                "never announced"
                            },
                        ));
                    }
                }
            }
            _ => None,
        };
        // Only a few peers negotiate at once: the measurement is about media, not about a
        // signalling stampede; the permit is held until the peer is up.
        let permit = tokio::time::timeout(
            self.cfg.connect_timeout * 20,
            setup_gate.clone().acquire_owned(),
        )
        .await;
        let permit = match permit {
            Ok(Ok(p)) => p,
            _ => {
                self.announce(Feed::Failed);
                let _ = ready.send(false).await;
                return Err(Failure::new(
                    Kind::Connect,
                    "no setup slot",
                    "waited too long for other peers to connect",
                ));
            }
        };
        let setup = self.setup(feed).await;
        drop(permit);
        let (mut rtc, sock, mut tracks, feed_id) = match setup {
            Ok(x) => x,
            Err(f) => {
                self.announce(Feed::Failed);
                let _ = ready.send(false).await;
                return Err(f);
            }
        };
        self.announce(Feed::Up(feed_id));
        self.res.connected = true;
        let _ = ready.send(true).await;
        self.media(&mut rtc, &sock, &mut tracks, &mut go).await
    }

    /// A publisher tells its subscribers about its feed.
    fn announce(&self, f: Feed) {
        if let Role::Publisher(tx) = &self.cfg.role {
            let _ = tx.send(f);
        }
    }

    /// Sends a plugin message (with an optional JSEP) and returns the plugin's `event` answering
    /// it (after Janus's `ack`, if any) and the transaction.
    async fn message(
        &mut self,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<(Value, String), Failure> {
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let tx = self.tx.next();
        let mut req = json!({
            "janus": "message", "session_id": sid, "handle_id": hid, "transaction": tx,
            "body": body,
        });
        if let Some(j) = jsep {
            req["jsep"] = j;
        }
        let deadline = tdeadline(self.cfg.timeout);
        let ws = self.ws()?;
        ws.send(Kind::Message, req.to_string(), deadline).await?;
        let ack = ws.recv_tx(Kind::Message, &tx, deadline).await?;
        // Janus answers an async plugin message with `ack`, then the `event`; accept the event
        // directly too (nothing requires the ack to come first).
        let ev = if janus::janus_kind(&ack) == "ack" {
            ws.recv_tx(Kind::Event, &tx, deadline).await?
        } else {
            ack
        };
        Ok((ev, tx))
    }

    /// VideoRoom publisher: creates the group's room (an existing one, e.g. a given `--room`
    /// id, is used as it is).
    async fn create_room(&mut self, room: u64) -> Result<(), Failure> {
        let (sid, hid) = (self.session.unwrap_or(0), self.handle.unwrap_or(0));
        let (v, tx) = self
            .call(
                Kind::Message,
                json!({
                    "janus": "message", "session_id": sid, "handle_id": hid,
                    "body": {
                        "request": "create", "room": room, "publishers": 1, "bitrate": 0,
                        "description": "jano-load",
                    },
                }),
            )
            .await?;
        let data = janus::check_videoroom(Kind::Message, &v, &tx, sid, hid, None)?;
        if data["videoroom"] == "created" {
            self.created_room = Some(room);
            return Ok(());
        }
        if data["error_code"].as_u64() == Some(427) {
            // The room exists already.
            return Ok(());
        }
        Err(Failure::new(
            Kind::Message,
            "videoroom create failed",
            janus::short(&v),
        ))
    }

    /// create → attach → offer → answer → ICE/DTLS up and `webrtcup` (a VideoRoom subscriber:
    /// join → the server's offer → our answer with `start`). Returns the peer's feed id too
    /// (fan-out: its handle; VideoRoom publisher: its participant id).
    async fn setup(
        &mut self,
        feed_of: Option<u64>,
    ) -> Result<(Rtc, UdpSocket, [Track; 2], u64), Failure> {
        let ws = WsConn::connect(&self.cfg.url, tdeadline(self.cfg.timeout)).await?;
        self.ws = Some(ws);
        let (v, tx) = self.call(Kind::Create, json!({"janus": "create"})).await?;
        let sid = janus::check_create(&v, &tx)?;
        self.session = Some(sid);
        let room = self.cfg.room;
        let plugin = match (&self.cfg.role, room) {
            (Role::Echo, _) => janus::ECHOTEST,
            (_, None) => janus::FANOUT,
            (_, Some(_)) => janus::VIDEOROOM,
        };
        let (v, tx) = self
            .call(
                Kind::Attach,
                json!({"janus": "attach", "plugin": plugin, "session_id": sid}),
            )
            .await?;
        let hid = janus::check_attach(&v, &tx, sid)?;
        self.handle = Some(hid);

        let sock = UdpSocket::bind(SocketAddr::new(self.cfg.bind_ip, 0))
            .await
            .map_err(|e| Failure::new(Kind::Connect, "UDP bind failed", e.to_string()))?;
        let local = sock
            .local_addr()
            .map_err(|e| Failure::new(Kind::Connect, "UDP bind failed", e.to_string()))?;

        let mut rtc = RtcConfig::new()
            .set_crypto_provider(self.cfg.provider.clone())
            .set_dtls_cert(self.cfg.cert.clone())
            .set_rtp_mode(true)
            .clear_codecs()
            .enable_opus(true, false)
            .enable_vp8(true)
            // Stats events are not used; skip computing them.
            .set_stats_interval(None)
            .build(Instant::now());
        let cand = Candidate::host(local, "udp")
            .map_err(|e| Failure::new(Kind::Connect, "bad local candidate", e.to_string()))?;
        if rtc.add_local_candidate(cand).is_none() {
            return Err(Failure::new(
                Kind::Connect,
                "local candidate refused",
                local.to_string(),
            ));
        }

        let subscriber = matches!(self.cfg.role, Role::Subscriber { .. });
        let offer_sent;
        let mut feed_id = hid;
        let (audio_mid, video_mid) = if let (true, Some(room)) = (subscriber, room) {
            // VideoRoom subscriber: the server offers, we answer.
            let id = feed_of.unwrap_or(0);
            offer_sent = Instant::now();
            let (ev, tx) = self
                .message(
                    json!({"request": "join", "ptype": "subscriber", "room": room,
                        "streams": [{"feed": id}]}),
                    None,
                )
                .await?;
            janus::check_videoroom(Kind::Event, &ev, &tx, sid, hid, Some("attached"))?;
            let sdp = jsep_sdp(&ev, "offer")?;
            let sdp = keep_candidates_on(sdp, self.cfg.bind_ip);
            let mids = mids_of(&sdp)?;
            let offer = SdpOffer::from_sdp_string(&sdp)
                .map_err(|e| Failure::new(Kind::Event, "bad SDP offer", e.to_string()))?;
            let answer = rtc
                .sdp_api()
                .accept_offer(offer)
                .map_err(|e| Failure::new(Kind::Event, "offer rejected", e.to_string()))?;
            let ups = self.ws()?.unsolicited.count("webrtcup");
            let (ev, tx) = self
                .message(
                    json!({"request": "start", "room": room}),
                    Some(json!({"type": "answer", "sdp": answer.to_sdp_string(),
                        "trickle": false})),
                )
                .await?;
            let data = janus::check_videoroom(Kind::Event, &ev, &tx, sid, hid, Some("event"))?;
            if data["started"] != "ok" {
                return Err(Failure::new(
                    Kind::Event,
                    "start: no started ok",
                    janus::short(&ev),
                ));
            }
            if self.ws()?.unsolicited.count("webrtcup") > ups {
                // Came while we waited for the `started` event.
                let us = offer_sent.elapsed().as_micros().min(u32::MAX as u128);
                self.res.webrtcup_us = Some(us as u32);
            }
            mids
        } else {
            let mut api = rtc.sdp_api();
            let audio_mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
            let video_mid = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
            let (offer, pending) = api
                .apply()
                .ok_or_else(|| Failure::new(Kind::Message, "no offer", "str0m made no offer"))?;
            let request = match (&self.cfg.role, room) {
                (Role::Echo, _) => json!({"audio": true, "video": true}),
                (Role::Publisher(_), None) => json!({"request": "publish"}),
                (Role::Publisher(_), Some(room)) => {
                    self.create_room(room).await?;
                    json!({"request": "joinandconfigure", "ptype": "publisher", "room": room,
                        "display": format!("pub{}", self.cfg.index)})
                }
                (Role::Subscriber { .. }, _) => {
                    json!({"request": "subscribe", "feed": feed_of.unwrap_or(0)})
                }
            };
            offer_sent = Instant::now();
            let (ev, tx) = self
                .message(
                    request,
                    Some(json!({"type": "offer", "sdp": offer.to_sdp_string(),
                        "trickle": false})),
                )
                .await?;
            match (&self.cfg.role, room) {
                (Role::Echo, _) => janus::check_event(&ev, &tx, sid, hid)?,
                (_, None) => {
                    janus::check_plugin_event(&ev, &tx, sid, hid, janus::FANOUT, "fanout")?
                }
                (_, Some(_)) => {
                    let data =
                        janus::check_videoroom(Kind::Event, &ev, &tx, sid, hid, Some("joined"))?;
                    feed_id = data["id"].as_u64().ok_or_else(|| {
                        Failure::new(Kind::Event, "joined without an id", janus::short(&ev))
                    })?;
                }
            }
            let sdp = jsep_sdp(&ev, "answer")?;
            let sdp = keep_candidates_on(sdp, self.cfg.bind_ip);
            let answer = SdpAnswer::from_sdp_string(&sdp)
                .map_err(|e| Failure::new(Kind::Event, "bad SDP answer", e.to_string()))?;
            rtc.sdp_api()
                .accept_answer(pending, answer)
                .map_err(|e| Failure::new(Kind::Event, "answer rejected", e.to_string()))?;
            (audio_mid, video_mid)
        };

        let tracks = [
            self.track(&rtc, audio_mid, Codec::Opus)?,
            self.track(&rtc, video_mid, Codec::Vp8)?,
        ];

        // Drive ICE/DTLS until both sides say the PeerConnection is up.
        let end = offer_sent + self.cfg.connect_timeout;
        let mut dtls_up = false;
        let mut buf = vec![0u8; 2048];
        while !(dtls_up && self.res.webrtcup_us.is_some()) {
            let next = drain_output(&mut rtc, &sock, &mut |e| {
                if matches!(e, Event::Connected) {
                    dtls_up = true;
                }
                if let Event::IceConnectionStateChange(IceConnectionState::Disconnected) = e {
                    return Err(Failure::new(
                        Kind::Connect,
                        "ICE disconnected",
                        "during setup",
                    ));
                }
                Ok(())
            })?;
            if dtls_up && self.res.webrtcup_us.is_some() {
                break;
            }
            let now = Instant::now();
            if now >= end {
                let what = match (dtls_up, self.res.webrtcup_us.is_some()) {
                    (false, false) => "neither DTLS connected nor webrtcup",
                    (true, false) => "DTLS connected but no webrtcup",
                    _ => "webrtcup but our DTLS not connected",
                };
                return Err(Failure::new(
                    Kind::Connect,
                    format!("not up within {:?}", self.cfg.connect_timeout),
                    what,
                ));
            }
            let wake = tokio::time::Instant::from_std(next.min(end));
            let ws = self
                .ws
                .as_mut()
                .ok_or_else(|| Failure::new(Kind::Connect, "no WebSocket", "gone"))?;
            tokio::select! {
                r = sock.recv_from(&mut buf) => feed(&mut rtc, &sock, r, &buf)?,
                m = ws.recv(Kind::Connect, tokio::time::Instant::from_std(end)) => {
                    let v = m?;
                    match janus::janus_kind(&v) {
                        "webrtcup" => {
                            let us = offer_sent.elapsed().as_micros().min(u32::MAX as u128);
                            self.res.webrtcup_us = Some(us as u32);
                        }
                        "hangup" => {
                            return Err(Failure::new(Kind::Connect, "hangup during setup", janus::short(&v)));
                        }
                        k => self.res.events.push(k.to_string()),
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            rtc.handle_input(Input::Timeout(Instant::now()))
                .map_err(|e| Failure::new(Kind::Connect, "str0m error", e.to_string()))?;
        }
        Ok((rtc, sock, tracks, feed_id))
    }

    /// Negotiated payload type and send schedule of one m-line.
    fn track(&self, rtc: &Rtc, mid: Mid, codec: Codec) -> Result<Track, Failure> {
        let remote = rtc
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default();
        let subscriber = matches!(self.cfg.role, Role::Subscriber { .. });
        let params = rtc.codec_config().params();
        let pt = params
            .iter()
            .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
            // A subscriber only receives: what it would send with does not matter.
            .or_else(|| {
                params
                    .iter()
                    .find(|p| subscriber && p.spec().codec == codec)
            })
            .cloned()
            .ok_or_else(|| {
                Failure::new(
                    Kind::Event,
                    "codec not negotiated",
                    format!("{codec:?} missing in the answer (remote PTs {remote:?})"),
                )
            })?;
        let (mut pps, bytes, clock) = if codec == Codec::Opus {
            (self.cfg.audio_pps, self.cfg.audio_bytes, 48_000u32)
        } else {
            (self.cfg.video_pps, self.cfg.video_bytes, 90_000)
        };
        if subscriber {
            pps = 0;
        }
        let interval = if pps == 0 {
            Duration::from_secs(86_400)
        } else {
            Duration::from_secs_f64(1.0 / f64::from(pps))
        };
        Ok(Track {
            mid,
            pt,
            interval,
            next: Instant::now(),
            counter: 0,
            rtp_ts: rand::random(),
            ts_step: clock.checked_div(pps).unwrap_or(0),
            bytes: bytes.max(MIN_PAYLOAD),
            seen: Seen::default(),
            key_due: true,
            next_key: Instant::now(),
        })
    }

    async fn media(
        &mut self,
        rtc: &mut Rtc,
        sock: &UdpSocket,
        tracks: &mut [Track; 2],
        go: &mut watch::Receiver<Go>,
    ) -> Result<(), Failure> {
        let mut buf = vec![0u8; 2048];
        let mut next_keepalive = Instant::now() + self.cfg.keepalive;
        let mut keepalive_tx: Option<(String, Instant)> = None;
        let sid = self.session.unwrap_or(0);
        // Until the schedule arrives, only keep the connection alive. The coordinator always
        // decides (Run or Abort) within its own bounded wait; the far deadline is a backstop.
        let mut sched: Option<Schedule> = None;
        let backstop = Instant::now() + self.cfg.connect_timeout * 40 + Duration::from_secs(600);
        let index = self.cfg.index;
        // A subscriber counts its publisher's packets, and one-way latency.
        let (forwarded, expect_from) = match self.cfg.role {
            Role::Subscriber { from, .. } => (true, from),
            _ => (false, index),
        };
        let epoch = self.epoch;
        let res = &mut *self.res;
        let ws = self
            .ws
            .as_mut()
            .ok_or_else(|| Failure::new(Kind::Connect, "no WebSocket", "gone"))?;
        loop {
            if sched.is_none() {
                match *go.borrow_and_update() {
                    Go::Wait => {}
                    Go::Abort => return Ok(()),
                    Go::Run(s) => {
                        // Each peer starts at its own phase so that the packets of all peers
                        // do not leave in bursts on the same millisecond.
                        for t in tracks.iter_mut() {
                            let phase = t.interval.mul_f64(rand::random::<f64>());
                            t.next = s.start + phase;
                        }
                        sched = Some(s);
                    }
                }
            }
            let now = Instant::now();
            if now >= backstop {
                return Err(Failure::new(Kind::Connect, "never started", "no schedule"));
            }
            if let Some(s) = sched {
                if now >= s.drain_to {
                    return Ok(());
                }
                if now < s.measure_to {
                    for (k, t) in tracks.iter_mut().enumerate() {
                        // Catch up after a late wake-up, but never burst more than a few.
                        let mut n = 0;
                        while t.next <= now && n < 4 {
                            let measured = t.next >= s.measure_from && t.next < s.measure_to;
                            if send_one(rtc, t, k, index, measured, epoch, &mut res.counts[k]) {
                                res.keyframes_sent += 1;
                            }
                            t.next += t.interval;
                            n += 1;
                        }
                        if t.next <= now {
                            t.next = now + t.interval;
                        }
                    }
                    rtc.handle_input(Input::Timeout(now))
                        .map_err(|e| Failure::new(Kind::Connect, "str0m error", e.to_string()))?;
                }
            }
            if now >= next_keepalive {
                if let Some((_, at)) = &keepalive_tx {
                    res.soft_failures.push(Failure::new(
                        Kind::Keepalive,
                        "no ack",
                        format!("{:?} ago", now - *at),
                    ));
                }
                let tx = format!("ka{index}-{}", now.duration_since(epoch).as_millis());
                let body = json!({"janus": "keepalive", "session_id": sid, "transaction": tx});
                ws.send(
                    Kind::Keepalive,
                    body.to_string(),
                    tdeadline(self.cfg.timeout),
                )
                .await?;
                keepalive_tx = Some((tx, now));
                next_keepalive = now + self.cfg.keepalive;
            }

            let mut echo = |e: Event| -> Result<(), Failure> {
                match e {
                    Event::RtpPacket(p) => {
                        count_echo(&p.payload, expect_from, forwarded, tracks, res, epoch);
                        Ok(())
                    }
                    Event::KeyframeRequest(r) => {
                        // PLI/FIR: the next video frame is a keyframe.
                        if r.mid == tracks[1].mid {
                            tracks[1].key_due = true;
                        }
                        res.keyframe_requests += 1;
                        Ok(())
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => Err(
                        Failure::new(Kind::Connect, "ICE disconnected", "during media"),
                    ),
                    _ => Ok(()),
                }
            };
            let next_rtc = drain_output(rtc, sock, &mut echo)?;
            let mut wake = next_rtc.min(next_keepalive).min(backstop);
            if let Some(s) = sched {
                wake = wake.min(s.drain_to);
                if Instant::now() < s.measure_to {
                    for t in tracks.iter() {
                        wake = wake.min(t.next);
                    }
                }
            }
            let wake = tokio::time::Instant::from_std(wake);
            tokio::select! {
                r = sock.recv_from(&mut buf) => feed(rtc, sock, r, &buf)?,
                m = ws.recv(Kind::Keepalive, tokio::time::Instant::from_std(backstop)) => {
                    let v = m?;
                    match janus::janus_kind(&v) {
                        "ack" if keepalive_tx.as_ref().map(|k| k.0.as_str()) == janus::transaction(&v) => {
                            keepalive_tx = None;
                        }
                        // After the measured window, the others are hanging up too (a publisher
                        // leaving or destroying its room closes its subscribers' PeerConnections).
                        "hangup" if sched.is_some_and(|s| Instant::now() >= s.measure_to) => {
                            res.events.push("hangup".into());
                            return Ok(());
                        }
                        "hangup" => {
                            return Err(Failure::new(Kind::Connect, "hangup during media", janus::short(&v)));
                        }
                        "error" => {
                            return Err(Failure::new(Kind::Keepalive, "janus error", janus::short(&v)));
                        }
                        k => res.events.push(k.to_string()),
                    }
                }
                r = go.changed(), if sched.is_none() => {
                    if r.is_err() {
                        return Ok(());
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            rtc.handle_input(Input::Timeout(Instant::now()))
                .map_err(|e| Failure::new(Kind::Connect, "str0m error", e.to_string()))?;
        }
    }

    /// Destroys the VideoRoom room it created and the session (bounded), closes the socket.
    /// Problems are soft failures.
    async fn hangup(&mut self) {
        if let (Some(room), Some(sid), Some(hid)) =
            (self.created_room.take(), self.session, self.handle)
        {
            let r = self
                .call(
                    Kind::Destroy,
                    json!({"janus": "message", "session_id": sid, "handle_id": hid,
                        "body": {"request": "destroy", "room": room}}),
                )
                .await
                .and_then(|(v, tx)| {
                    let d = janus::check_videoroom(Kind::Destroy, &v, &tx, sid, hid, None)?;
                    if d["videoroom"] == "destroyed" {
                        Ok(())
                    } else {
                        Err(Failure::new(
                            Kind::Destroy,
                            "videoroom destroy failed",
                            janus::short(&v),
                        ))
                    }
                });
            if let Err(f) = r {
                self.res.soft_failures.push(f);
            }
        }
        let Some(sid) = self.session.take() else {
            if let Some(ws) = self.ws.take() {
                ws.close(tdeadline(Duration::from_secs(1))).await;
            }
            return;
        };
        let r = self
            .call(
                Kind::Destroy,
                json!({"janus": "destroy", "session_id": sid}),
            )
            .await
            .and_then(|(v, tx)| janus::check_success(Kind::Destroy, &v, &tx, sid));
        if let Err(f) = r {
            self.res.soft_failures.push(f);
        }
        if let Some(ws) = self.ws.take() {
            ws.close(tdeadline(Duration::from_secs(1))).await;
        }
    }
}

/// Keeps only the answer's UDP host candidates on `ip`: media stays on this machine's address
/// (e.g. the namespace's), and no checks go to interfaces that cannot be reached.
fn keep_candidates_on(sdp: &str, ip: IpAddr) -> String {
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        let l = line.trim_end();
        if let Some(c) = l.strip_prefix("a=candidate:") {
            // foundation component transport priority address port typ ...
            let f: Vec<&str> = c.split_whitespace().collect();
            let udp = f.get(2).is_some_and(|t| t.eq_ignore_ascii_case("udp"));
            let here = f
                .get(4)
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|a| a == ip);
            if !(udp && here) {
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

/// Polls str0m until it wants a timer: sends what it transmits, hands events to `on_event`.
fn drain_output(
    rtc: &mut Rtc,
    sock: &UdpSocket,
    on_event: &mut dyn FnMut(Event) -> Result<(), Failure>,
) -> Result<Instant, Failure> {
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => return Ok(t),
            Ok(Output::Transmit(t)) => {
                // UDP: a full socket buffer is loss like any other; the echo count shows it.
                let _ = sock.try_send_to(&t.contents, t.destination);
            }
            Ok(Output::Event(e)) => on_event(e)?,
            Err(e) => return Err(Failure::new(Kind::Connect, "str0m error", e.to_string())),
        }
    }
}

fn feed(
    rtc: &mut Rtc,
    sock: &UdpSocket,
    r: std::io::Result<(usize, SocketAddr)>,
    buf: &[u8],
) -> Result<(), Failure> {
    let (n, source) = match r {
        Ok(x) => x,
        // ICMP port unreachable and the like: not fatal for a UDP peer.
        Err(_) => return Ok(()),
    };
    let Ok(destination) = sock.local_addr() else {
        return Ok(());
    };
    let parsed: Result<str0m::net::DatagramRecv, _> = buf[..n].try_into();
    let Ok(contents) = parsed else {
        // Not STUN/DTLS/RTP: ignore.
        return Ok(());
    };
    let input = Input::Receive(
        Instant::now(),
        Receive {
            proto: Protocol::Udp,
            source,
            destination,
            contents,
        },
    );
    rtc.handle_input(input)
        .map_err(|e| Failure::new(Kind::Connect, "str0m error", e.to_string()))
}

/// The `a=mid` of the first audio and of the first video m-line of an offer.
fn mids_of(sdp: &str) -> Result<(Mid, Mid), Failure> {
    let (mut audio, mut video) = (None, None);
    let mut kind = "";
    for l in sdp.lines() {
        let l = l.trim_end();
        if let Some(m) = l.strip_prefix("m=") {
            kind = m.split(' ').next().unwrap_or("");
        } else if let Some(mid) = l.strip_prefix("a=mid:") {
            let slot = match kind {
                "audio" => &mut audio,
                "video" => &mut video,
                _ => continue,
            };
            if slot.is_none() {
                *slot = Some(Mid::from(mid.trim()));
            }
        }
    }
    match (audio, video) {
        (Some(a), Some(v)) => Ok((a, v)),
        _ => Err(Failure::new(
            Kind::Event,
            "offer without audio and video",
            "an audio and a video m-line with a=mid expected",
        )),
    }
}

/// The SDP of an event's JSEP of type `want` (`offer` / `answer`).
fn jsep_sdp<'v>(ev: &'v Value, want: &str) -> Result<&'v str, Failure> {
    if ev.pointer("/jsep/type").and_then(Value::as_str) != Some(want) {
        return Err(Failure::new(
            Kind::Event,
            format!("no jsep {want}"),
            janus::short(ev),
        ));
    }
    ev.pointer("/jsep/sdp")
        .and_then(Value::as_str)
        .ok_or_else(|| Failure::new(Kind::Event, format!("no jsep {want} sdp"), janus::short(ev)))
}

/// A VP8 keyframe's payload header (RFC 6386 §9.1), after a one-byte payload descriptor with
/// S=1, partition 0: key frame (bit 0 clear), version 0, shown, first partition size; the
/// start code; 640 × 480. Janus and jano both see a keyframe here (S bit, P bit clear).
const VP8_KEYFRAME: [u8; 11] = [
    0x10, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
];
/// An inter frame: descriptor S=1, partition 0; payload header with bit 0 (P) set.
const VP8_INTERFRAME: [u8; 4] = [0x10, 0x51, 0x02, 0x00];

/// Sends one packet; true if it was a VP8 keyframe.
fn send_one(
    rtc: &mut Rtc,
    t: &mut Track,
    kind: usize,
    index: u32,
    measured: bool,
    epoch: Instant,
    c: &mut Counts,
) -> bool {
    let mut p = vec![0u8; t.bytes];
    let mut key = false;
    if kind == 1 {
        // Every video packet is a whole (tiny) frame: a keyframe first, then every
        // KEYFRAME_EVERY and after a PLI/FIR; inter frames otherwise.
        let now = Instant::now();
        key = t.key_due || now >= t.next_key;
        if key {
            p[..VP8_KEYFRAME.len()].copy_from_slice(&VP8_KEYFRAME);
            t.key_due = false;
            t.next_key = now + KEYFRAME_EVERY;
        } else {
            p[..VP8_INTERFRAME.len()].copy_from_slice(&VP8_INTERFRAME);
        }
    } else {
        // Opus TOC: CELT fullband 20 ms, mono, one frame.
        p[0] = 0xF8;
    }
    p[PREFIX..PREFIX + 4].copy_from_slice(&MAGIC);
    p[PREFIX + 4..PREFIX + 8].copy_from_slice(&index.to_be_bytes());
    p[PREFIX + 8] = kind as u8;
    p[PREFIX + 9] = u8::from(measured);
    p[PREFIX + 12..PREFIX + 20].copy_from_slice(&t.counter.to_be_bytes());
    let sent_us = Instant::now().duration_since(epoch).as_micros() as u64;
    p[PREFIX + 20..PREFIX + 28].copy_from_slice(&sent_us.to_be_bytes());

    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(t.mid, None) else {
        c.send_errors += 1;
        return false;
    };
    let w = RtpWrite::new(
        t.pt.pt(),
        SeqNo::from(t.counter),
        t.rtp_ts,
        Instant::now(),
        p,
    )
    // Every video packet is a whole (tiny) frame.
    .marker(kind == 1);
    stream.write_rtp(w);
    t.counter += 1;
    t.rtp_ts = t.rtp_ts.wrapping_add(t.ts_step);
    c.sent += 1;
    if measured {
        c.sent_measured += 1;
    }
    key
}

/// Counts a packet that came back (`forwarded`: a subscriber counting the publisher's packets,
/// whose counters it cannot check against its own).
fn count_echo(
    payload: &[u8],
    index: u32,
    forwarded: bool,
    tracks: &mut [Track; 2],
    res: &mut PeerResult,
    epoch: Instant,
) {
    let ok = payload.len() >= MIN_PAYLOAD
        && payload[PREFIX..PREFIX + 4] == MAGIC
        && payload[PREFIX + 4..PREFIX + 8] == index.to_be_bytes();
    let kind = payload.get(PREFIX + 8).copied().unwrap_or(9) as usize;
    if !ok || kind > 1 {
        res.foreign += 1;
        return;
    }
    let num = |r: std::ops::Range<usize>| -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[r]);
        u64::from_be_bytes(b)
    };
    let counter = num(PREFIX + 12..PREFIX + 20);
    let sent_us = num(PREFIX + 20..PREFIX + 28);
    let measured = payload[PREFIX + 9] == 1;
    let t = &mut tracks[kind];
    let c = &mut res.counts[kind];
    if !forwarded && counter >= t.counter {
        // Claims a packet we never sent.
        res.foreign += 1;
        return;
    }
    c.echoed_total += 1;
    if !t.seen.insert(counter) {
        c.duplicates += 1;
        return;
    }
    if measured {
        c.echoed_measured += 1;
        if res.rtt_us.len() < MAX_RTT_SAMPLES {
            let now_us = Instant::now().duration_since(epoch).as_micros() as u64;
            let rtt = now_us.saturating_sub(sent_us).min(u64::from(u32::MAX));
            res.rtt_us.push(rtt as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_filtered_to_bind_ip() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
            a=candidate:1 1 udp 2015363327 10.9.9.1 4000 typ host\r\n\
            a=candidate:2 1 udp 2015363327 172.17.0.2 4001 typ host\r\n\
            a=candidate:3 1 tcp 1015363327 10.9.9.1 9 typ host tcptype active\r\n\
            a=end-of-candidates\r\n";
        let out = keep_candidates_on(sdp, "10.9.9.1".parse().unwrap());
        assert!(out.contains("10.9.9.1 4000"));
        assert!(!out.contains("172.17.0.2"));
        assert!(!out.contains("tcptype"));
        assert!(out.contains("a=end-of-candidates\r\n"));
    }

    #[test]
    fn vp8_frames_are_what_the_servers_see() {
        // What jano (jano_plugin::rtp::vp8_keyframe) and Janus (janus_vp8_is_keyframe) check:
        // descriptor without X, with S and partition 0; then the payload header's P bit.
        let key = |p: &[u8]| p[0] & 0x80 == 0 && p[0] & 0x17 == 0x10 && p[1] & 0x01 == 0;
        assert!(key(&VP8_KEYFRAME));
        assert!(!key(&VP8_INTERFRAME));
        assert!(VP8_INTERFRAME[0] & 0x17 == 0x10);
        assert_eq!(&VP8_KEYFRAME[4..7], &[0x9d, 0x01, 0x2a]);
        assert!(VP8_KEYFRAME.len() <= PREFIX && VP8_INTERFRAME.len() <= PREFIX);
    }

    #[test]
    fn mids_of_an_offer() {
        let sdp = "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v1\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a0\r\nm=application 9 x\r\na=mid:d\r\n";
        let (a, v) = mids_of(sdp).unwrap();
        assert_eq!((a.to_string(), v.to_string()), ("a0".into(), "v1".into()));
        assert!(mids_of("v=0\r\nm=audio 9 x 111\r\na=mid:0\r\n").is_err());
    }

    #[test]
    fn seen_counts_once() {
        let mut s = Seen::default();
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(1000));
        assert!(s.insert(0));
    }
}
