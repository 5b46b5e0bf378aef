//! One WebRTC peer of the `media` benchmark: a str0m `Rtc` in RTP mode with its own UDP socket
//! and its own WebSocket session on the server's EchoTest (or fan-out / VideoRoom). It
//! negotiates (non-trickle offer with all its candidates; a VideoRoom subscriber answers the
//! server's offer instead), waits for `webrtcup`, then sends synthetic Opus and VP8 RTP on a
//! shared schedule and counts what comes back (or what it is forwarded).
//!
//! Here: the roles, the str0m/UDP side (setup up to ICE/DTLS and `webrtcup`, the media loop
//! with its keepalives). The Janus conversation of each plugin is in `signal`, the packets'
//! format and counting in `payload`.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use str0m::config::{CryptoProvider, DtlsCert};
use str0m::format::Codec;
use str0m::media::Mid;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};

use crate::janus;
use crate::payload::{count_echo, count_mix, send_one, Seen, Track, MIN_PAYLOAD};
use crate::signal::{tdeadline, Negotiated, Signal};
use crate::stats::{Failure, Kind};

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
    /// An AudioBridge participant: sends real Opus audio and counts the mix it gets back (one
    /// packet per 20 ms expected).
    Mixer,
}

pub struct PeerCfg {
    pub index: u32,
    pub role: Role,
    /// An AudioBridge participant that talks (a tone); the others send silence.
    pub talker: bool,
    /// AudioBridge: the room's record of when its talker's bursts started; a listener with
    /// `ear` set times them through the mix (mouth to ear).
    pub bursts: Option<Arc<std::sync::Mutex<Vec<Instant>>>>,
    pub ear: bool,
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
    /// AudioBridge: a talker's burst start → its onset in this listener's mix, microseconds.
    pub ear_us: Vec<u32>,
    pub failure: Option<Failure>,
    /// VP8 keyframes sent (first frame, periodic, on request) and PLI/FIR received.
    pub keyframes_sent: u64,
    pub keyframe_requests: u64,
    /// Non-fatal problems (keepalive/destroy trouble), counted as errors too.
    pub soft_failures: Vec<Failure>,
    pub events: Vec<String>,
}

pub async fn run(
    cfg: PeerCfg,
    go: watch::Receiver<Go>,
    ready: tokio::sync::mpsc::Sender<bool>,
    setup_gate: Arc<Semaphore>,
    epoch: Instant,
) -> PeerResult {
    let mut res = PeerResult::default();
    let sig = Signal::new(cfg.timeout);
    let mut p = Peer {
        cfg,
        res: &mut res,
        sig,
        epoch,
    };
    let outcome = p.run(go, ready, setup_gate).await;
    if let Err(f) = outcome {
        p.res.failure = Some(f);
    }
    p.sig.hangup(&mut p.res.soft_failures).await;
    res
}

struct Peer<'a> {
    cfg: PeerCfg,
    res: &'a mut PeerResult,
    /// The Janus session on the peer's WebSocket.
    sig: Signal,
    epoch: Instant,
}

impl Peer<'_> {
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

    /// create → attach → offer → answer → ICE/DTLS up and `webrtcup` (a VideoRoom subscriber:
    /// join → the server's offer → our answer with `start`). Returns the peer's feed id too
    /// (fan-out: its handle; VideoRoom publisher: its participant id).
    async fn setup(
        &mut self,
        feed_of: Option<u64>,
    ) -> Result<(Rtc, UdpSocket, [Track; 2], u64), Failure> {
        self.sig.attach(&self.cfg).await?;

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

        let Negotiated {
            audio_mid,
            video_mid,
            offer_sent,
            feed_id,
        } = self
            .sig
            .negotiate(&self.cfg, &mut rtc, feed_of, self.res)
            .await?;

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
                .sig
                .conn()
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
        let mixer = matches!(self.cfg.role, Role::Mixer);
        // A subscriber only receives; an AudioBridge participant has no video: what such a
        // track would send with does not matter.
        let silent =
            matches!(self.cfg.role, Role::Subscriber { .. }) || (mixer && codec == Codec::Vp8);
        let params = rtc.codec_config().params();
        let pt = params
            .iter()
            .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
            .or_else(|| params.iter().find(|p| silent && p.spec().codec == codec))
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
        if silent {
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
            // A mixer decodes what it gets: real Opus, not the marked synthetic payload.
            opus: (mixer && codec == Codec::Opus)
                .then(|| crate::payload::opus_frames(self.cfg.talker)),
            talker: (mixer && codec == Codec::Opus).then_some(self.cfg.talker),
            bursts: (mixer && codec == Codec::Opus && self.cfg.talker)
                .then(|| self.cfg.bursts.clone())
                .flatten(),
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
        let sid = self.sig.session().unwrap_or(0);
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
        let mixer = matches!(self.cfg.role, Role::Mixer);
        let mut last_mix: Option<Instant> = None;
        let mut ear = match (&self.cfg.bursts, self.cfg.ear) {
            (Some(b), true) => crate::payload::EarProbe::new(b.clone()),
            _ => None,
        };
        let res = &mut *self.res;
        let ws = self
            .sig
            .conn()
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
                    Event::RtpPacket(p) if mixer => {
                        let now = Instant::now();
                        count_mix(now, sched, &mut last_mix, res);
                        let measured =
                            sched.is_some_and(|s| now >= s.measure_from && now < s.measure_to);
                        if let (Some(probe), true) = (ear.as_mut(), measured) {
                            if let Some(d) = probe.hear(&p.payload, now) {
                                res.ear_us
                                    .push(d.as_micros().min(u128::from(u32::MAX)) as u32);
                            }
                        }
                        Ok(())
                    }
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
