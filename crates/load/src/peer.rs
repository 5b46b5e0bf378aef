//! One WebRTC peer of the `media` benchmark: a str0m `Rtc` in RTP mode with its own UDP socket
//! and its own WebSocket session on the server's EchoTest. It negotiates (non-trickle offer with
//! all its candidates), waits for `webrtcup`, then sends synthetic Opus and VP8 RTP on a shared
//! schedule and counts what comes back.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use str0m::change::SdpAnswer;
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
/// Bytes before our marker: room for a VP8 payload descriptor (video) or an Opus TOC (audio).
const PREFIX: usize = 4;
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

/// What a peer does: echo itself (EchoTest), or, on `jano.plugin.fanout`, publish (peer 0) or
/// subscribe to the publisher.
#[derive(Clone)]
pub enum Role {
    Echo,
    /// Announces its handle id once its `publish` is done.
    Publisher(Arc<watch::Sender<Option<u64>>>),
    /// Waits for the publisher's handle id, subscribes, sends nothing and counts what it is
    /// forwarded (the publisher's packets).
    Subscriber(watch::Receiver<Option<u64>>),
}

pub struct PeerCfg {
    pub index: u32,
    pub role: Role,
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
                let _ = ready.send(false).await;
                return Err(Failure::new(
                    Kind::Connect,
                    "no setup slot",
                    "waited too long for other peers to connect",
                ));
            }
        };
        let setup = self.setup().await;
        drop(permit);
        let (mut rtc, sock, mut tracks) = match setup {
            Ok(x) => x,
            Err(f) => {
                let _ = ready.send(false).await;
                return Err(f);
            }
        };
        self.res.connected = true;
        let _ = ready.send(true).await;
        self.media(&mut rtc, &sock, &mut tracks, &mut go).await
    }

    /// create → attach → offer → answer → ICE/DTLS up and `webrtcup`.
    async fn setup(&mut self) -> Result<(Rtc, UdpSocket, [Track; 2]), Failure> {
        let ws = WsConn::connect(&self.cfg.url, tdeadline(self.cfg.timeout)).await?;
        self.ws = Some(ws);
        let (v, tx) = self.call(Kind::Create, json!({"janus": "create"})).await?;
        let sid = janus::check_create(&v, &tx)?;
        self.session = Some(sid);
        let plugin = match self.cfg.role {
            Role::Echo => janus::ECHOTEST,
            Role::Publisher(_) | Role::Subscriber(_) => janus::FANOUT,
        };
        let (v, tx) = self
            .call(
                Kind::Attach,
                json!({"janus": "attach", "plugin": plugin, "session_id": sid}),
            )
            .await?;
        let hid = janus::check_attach(&v, &tx, sid)?;

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
        let mut api = rtc.sdp_api();
        let audio_mid = api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None);
        let video_mid = api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None);
        let (offer, pending) = api
            .apply()
            .ok_or_else(|| Failure::new(Kind::Message, "no offer", "str0m made no offer"))?;

        let request = match &self.cfg.role {
            Role::Echo => json!({"audio": true, "video": true}),
            Role::Publisher(_) => json!({"request": "publish"}),
            Role::Subscriber(feed) => {
                let mut feed = feed.clone();
                let id = tokio::time::timeout(
                    self.cfg.connect_timeout * 4,
                    feed.wait_for(Option::is_some),
                )
                .await
                .ok()
                .and_then(|r| r.ok().and_then(|v| *v))
                .ok_or_else(|| Failure::new(Kind::Message, "no publisher", "never announced"))?;
                json!({"request": "subscribe", "feed": id})
            }
        };
        let offer_sent = Instant::now();
        let tx = self.tx.next();
        let body = json!({
            "janus": "message", "session_id": sid, "handle_id": hid, "transaction": tx,
            "body": request,
            "jsep": {"type": "offer", "sdp": offer.to_sdp_string(), "trickle": false},
        });
        let deadline = tdeadline(self.cfg.timeout);
        let ws = self.ws()?;
        ws.send(Kind::Message, body.to_string(), deadline).await?;
        let ack = ws.recv_tx(Kind::Message, &tx, deadline).await?;
        // Janus answers an async plugin message with `ack`, then the `event`; accept the event
        // directly too (nothing requires the ack to come first).
        let ev = if janus::janus_kind(&ack) == "ack" {
            ws.recv_tx(Kind::Event, &tx, deadline).await?
        } else {
            ack
        };
        match self.cfg.role {
            Role::Echo => janus::check_event(&ev, &tx, sid, hid)?,
            _ => janus::check_plugin_event(&ev, &tx, sid, hid, janus::FANOUT, "fanout")?,
        }
        if let Role::Publisher(announce) = &self.cfg.role {
            let _ = announce.send(Some(hid));
        }
        let sdp = ev
            .pointer("/jsep/sdp")
            .and_then(Value::as_str)
            .ok_or_else(|| Failure::new(Kind::Event, "no jsep answer", janus::short(&ev)))?;
        let sdp = keep_candidates_on(sdp, self.cfg.bind_ip);
        let answer = SdpAnswer::from_sdp_string(&sdp)
            .map_err(|e| Failure::new(Kind::Event, "bad SDP answer", e.to_string()))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| Failure::new(Kind::Event, "answer rejected", e.to_string()))?;

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
        Ok((rtc, sock, tracks))
    }

    /// Negotiated payload type and send schedule of one m-line.
    fn track(&self, rtc: &Rtc, mid: Mid, codec: Codec) -> Result<Track, Failure> {
        let remote = rtc
            .media(mid)
            .map(|m| m.remote_pts().to_vec())
            .unwrap_or_default();
        let pt = rtc
            .codec_config()
            .params()
            .iter()
            .find(|p| p.spec().codec == codec && remote.contains(&p.pt()))
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
        if matches!(self.cfg.role, Role::Subscriber(_)) {
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
        // A subscriber counts the publisher's (peer 0's) packets, and one-way latency.
        let forwarded = matches!(self.cfg.role, Role::Subscriber(_));
        let expect_from = if forwarded { 0 } else { index };
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
                            send_one(rtc, t, k, index, measured, epoch, &mut res.counts[k]);
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

    /// Destroys the session (bounded) and closes the socket. Problems are soft failures.
    async fn hangup(&mut self) {
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

fn send_one(
    rtc: &mut Rtc,
    t: &mut Track,
    kind: usize,
    index: u32,
    measured: bool,
    epoch: Instant,
    c: &mut Counts,
) {
    let mut p = vec![0u8; t.bytes];
    if kind == 1 {
        // VP8 payload descriptor: S=1, partition 0; then an inter-frame payload header.
        p[0] = 0x10;
        p[1] = 0x01;
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
        return;
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
    fn seen_counts_once() {
        let mut s = Seen::default();
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(1000));
        assert!(s.insert(0));
    }
}
