//! One PeerConnection: a str0m `Rtc` driven by one task on its worker thread, from its first
//! negotiation to its hang-up.

use crate::net::Datagram;
use crate::{sdp, PcLink, PcMsg, Shared};
use jano_core::{LocalSdp, MediaCommand, MediaEvent, Negotiation, RemoteSdp};
use jano_plugin::{
    DataMessage, HandleRef, LocalJsep, MediaKind, MediaPrefs, Plugin, RtcpFeedback, RtpExtensions,
    RtpPacket, Value,
};
use serde_json::{json, Map};
use std::cell::RefCell;
use std::net::{SocketAddr, UdpSocket};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::bwe::Bitrate;
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::MediaTime;
use str0m::media::{Direction, KeyframeRequestKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::rtp::{Extension, ExtensionValues, RtpWrite};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc, RtcConfig};
use tokio::sync::mpsc;

/// What a plugin relayed to the handle whose packet it was handling (EchoTest), collected while
/// the plugin runs and applied right after by the same task.
#[derive(Default)]
pub(crate) struct Outbox {
    pub rtp: Vec<RtpPacket>,
    pub data: Vec<(Option<String>, bool, Vec<u8>)>,
    pub pli: Vec<Option<usize>>,
    pub remb: Option<u64>,
}

thread_local! {
    static CURRENT: RefCell<Option<(u64, Outbox)>> = const { RefCell::new(None) };
}

/// Applies `f` to the outbox when this thread is inside a plugin call for `handle_id`.
pub(crate) fn local_relay(handle_id: u64, f: impl FnOnce(&mut Outbox)) -> bool {
    CURRENT.with(|c| match c.try_borrow_mut() {
        Ok(mut cur) => match cur.as_mut() {
            Some((h, o)) if *h == handle_id => {
                f(o);
                true
            }
            _ => false,
        },
        Err(_) => false,
    })
}

/// Runs `f` (a plugin call) with the outbox open for `handle_id`; returns what it relayed.
fn with_outbox(handle_id: u64, f: impl FnOnce()) -> Outbox {
    CURRENT.with(|c| {
        if let Ok(mut cur) = c.try_borrow_mut() {
            *cur = Some((handle_id, Outbox::default()));
        }
    });
    f();
    CURRENT.with(|c| {
        c.try_borrow_mut()
            .ok()
            .and_then(|mut cur| cur.take())
            .map(|(_, o)| o)
            .unwrap_or_default()
    })
}

/// One incoming RTP stream of an m-line (a simulcast layer, or the only one).
#[derive(Default, Clone, Copy)]
struct Flow {
    last_in: Option<Instant>,
    receiving: bool,
    /// Loss accounting for `slowlink`: first and highest sequence number seen and packets
    /// received in the current second.
    window_first: Option<u64>,
    window_max: u64,
    window_received: u64,
}

#[derive(Default, Clone, Copy)]
struct Counters {
    packets: u64,
    bytes: u64,
}

struct MidState {
    mid: Mid,
    kind: Option<MediaKind>,
    /// Arrival per simulcast layer (index = substream; the last slot without simulcast): for
    /// `media` events and loss accounting, since each layer has its own sequence numbers.
    flows: [Flow; 4],
    rx: Counters,
    tx: Counters,
    /// The codec of the last payload type seen, so the lookup is done once per change.
    codec: Option<(u8, &'static str)>,
}

/// A socket the PeerConnection sends from: its own (also read by its task), or one it shares
/// (the single port, or one of several addresses' sockets read by reader tasks).
enum SendSocket {
    Own(Rc<tokio::net::UdpSocket>),
    Shared(Arc<UdpSocket>),
}

impl SendSocket {
    /// Never waits: a full socket buffer drops the datagram, as the network would.
    fn send_to(&self, data: &[u8], to: SocketAddr) -> std::io::Result<usize> {
        match self {
            // Straight to the kernel: tokio's `try_send_to` refuses until the reactor has seen
            // the socket writable, which drops the first handshake packets of a new socket.
            SendSocket::Own(s) => socket2::SockRef::from(&**s).send_to(data, &to.into()),
            SendSocket::Shared(s) => s.send_to(data, to),
        }
    }
}

/// Why a PeerConnection ends, and whether the client is told.
struct Ending {
    reason: String,
    notify: bool,
}

struct Pc {
    handle_id: u64,
    shared: Arc<Shared>,
    link: PcLink,
    rtc: Option<Rtc>,
    href: Option<HandleRef>,
    plugin: Option<Arc<dyn Plugin>>,
    /// Local address → socket we send from.
    sockets: Vec<(SocketAddr, SendSocket)>,
    readers: Vec<tokio::task::JoinHandle<()>>,
    /// The PeerConnection's own socket when it has exactly one (the usual case): the task reads
    /// it itself, with no reader task or queue in between.
    direct: Option<(SocketAddr, Rc<tokio::net::UdpSocket>)>,
    mids: Vec<MidState>,
    pending_offer: Option<SdpPendingOffer>,
    connected: bool,
    ice_state: &'static str,
    disconnected_since: Option<Instant>,
    channels: Vec<(ChannelId, String)>,
    local_candidates: Vec<String>,
    remote_candidates: Vec<String>,
    local_sdp: Option<String>,
    remote_sdp: Option<String>,
    got_offer: bool,
    got_answer: bool,
    remote_addr: Option<(SocketAddr, SocketAddr)>,
    dtls_in: Counters,
    dtls_out: Counters,
    next_tick: Instant,
    created: Instant,
    ending: Option<Ending>,
}

pub(crate) async fn run(
    handle_id: u64,
    shared: Arc<Shared>,
    link: PcLink,
    mut ctrl: mpsc::UnboundedReceiver<PcMsg>,
    mut pkt: mpsc::Receiver<PcMsg>,
) {
    shared.stats.peerconnections.fetch_add(1, Ordering::Relaxed);
    let now = Instant::now();
    let mut pc = Pc {
        handle_id,
        shared: shared.clone(),
        link,
        rtc: None,
        href: None,
        plugin: None,
        sockets: Vec::new(),
        readers: Vec::new(),
        direct: None,
        mids: Vec::new(),
        pending_offer: None,
        connected: false,
        ice_state: "gathering",
        disconnected_since: None,
        channels: Vec::new(),
        local_candidates: Vec::new(),
        remote_candidates: Vec::new(),
        local_sdp: None,
        remote_sdp: None,
        got_offer: false,
        got_answer: false,
        remote_addr: None,
        dtls_in: Counters::default(),
        dtls_out: Counters::default(),
        next_tick: now + Duration::from_secs(1),
        created: now,
        ending: None,
    };
    let mut buf = vec![0u8; 2048];
    loop {
        let deadline = pc.drive();
        if pc.ending.is_some() {
            break;
        }
        let wake = tokio::time::Instant::from_std(deadline.min(pc.next_tick));
        let direct = pc.direct.clone();
        tokio::select! {
            biased;
            m = ctrl.recv() => match m {
                Some(m) => pc.on_msg(m),
                None => pc.end("Shutdown", false),
            },
            m = pkt.recv() => {
                if let Some(m) = m {
                    pc.on_msg(m);
                    // Take what else is already queued without going back to the scheduler;
                    // str0m holds one received packet until polled, so drive after each.
                    for _ in 0..64 {
                        pc.drive();
                        match pkt.try_recv() {
                            Ok(m) => pc.on_msg(m),
                            Err(_) => break,
                        }
                    }
                }
            }
            r = recv_direct(&direct, &mut buf) => {
                if let (Ok((n, source)), Some((local, sock))) = (r, &direct) {
                    pc.on_udp(Instant::now(), source, *local, buf.get(..n).unwrap_or_default());
                    // Drain what the socket already holds before sleeping again.
                    for _ in 0..64 {
                        pc.drive();
                        match sock.try_recv_from(&mut buf) {
                            Ok((n, source)) => pc.on_udp(
                                Instant::now(),
                                source,
                                *local,
                                buf.get(..n).unwrap_or_default(),
                            ),
                            Err(_) => break,
                        }
                    }
                }
            }
            _ = tokio::time::sleep_until(wake) => pc.on_timeout(Instant::now()),
        }
    }
    pc.finish();
    shared.stats.peerconnections.fetch_sub(1, Ordering::Relaxed);
}

impl Pc {
    fn end(&mut self, reason: &str, notify: bool) {
        if self.ending.is_none() {
            self.ending = Some(Ending {
                reason: reason.to_owned(),
                notify,
            });
        }
    }

    fn ids(&self) -> (u64, u64) {
        (
            self.href.as_ref().map_or(0, |h| h.session_id),
            self.handle_id,
        )
    }

    fn emit(&self, ev: MediaEvent) {
        (self.shared.events)(ev);
    }

    fn on_msg(&mut self, m: PcMsg) {
        match m {
            PcMsg::Command(c) => self.on_command(c),
            PcMsg::Datagram(d) => self.on_datagram(d),
            PcMsg::Rtp(p) => self.send_rtp(&p),
            PcMsg::Data {
                label,
                binary,
                data,
            } => self.send_data(label.as_deref(), binary, &data),
            PcMsg::Pli(m) => self.request_keyframe(m),
            PcMsg::Remb(b) => self.send_remb(b),
        }
    }

    fn on_command(&mut self, c: MediaCommand) {
        match c {
            MediaCommand::Negotiate(n) => {
                let Negotiation {
                    handle,
                    plugin,
                    remote_offer,
                    jsep,
                    candidates,
                    event,
                } = *n;
                let (sid, hid) = (handle.session_id, handle.handle_id);
                self.href = Some(handle);
                self.plugin = Some(plugin);
                let result = self.negotiate(remote_offer, &jsep);
                let failed = result.is_err();
                // The Admin API sees the new SDPs as soon as the client can.
                self.refresh_info();
                self.emit(MediaEvent::Negotiated {
                    session_id: sid,
                    handle_id: hid,
                    result,
                    event,
                });
                if failed && self.rtc.is_none() {
                    self.end("Gathering error", false);
                    return;
                }
                self.trickle(&candidates);
                if self.shared.cfg.full_trickle {
                    self.trickle_local();
                }
                self.refresh_info();
            }
            MediaCommand::RemoteAnswer { sdp, .. } => {
                if let Err(e) = self.remote_answer(&sdp) {
                    tracing::warn!(handle = self.handle_id, "answer refused: {e}");
                    self.end("Error processing SDP", true);
                }
                self.refresh_info();
            }
            MediaCommand::Trickle { candidates, .. } => self.trickle(&candidates),
            MediaCommand::Hangup { reason, notify, .. } => {
                if let Some(rtc) = self.rtc.as_mut() {
                    rtc.disconnect();
                }
                self.end(reason, notify);
            }
        }
    }

    fn build_rtc(&mut self, prefs: &MediaPrefs) -> Result<(), String> {
        let cfg = &self.shared.cfg;
        let mut rc = RtcConfig::new()
            // Janus negotiates playout-delay too; the id is only used when we offer.
            .set_extension(6, Extension::PlayoutDelay)
            .set_rtp_mode(true)
            .set_ice_lite(cfg.ice_lite)
            .set_dtls_cert(self.shared.cert.clone())
            .set_stats_interval(None);
        if prefs.audio_codec.is_some() || prefs.video_codec.is_some() || prefs.opus_red {
            rc = codec_config(rc, prefs);
        }
        let mut rtc = rc.build(Instant::now());
        // Sockets: the shared single port, or a port of our own from the range.
        if let Some(single) = &self.shared.single {
            for s in single.sockets() {
                let local = s.local_addr().map_err(|e| e.to_string())?;
                self.sockets.push((local, SendSocket::Shared(s)));
            }
        } else {
            let socks = self
                .shared
                .ports
                .bind(&self.shared.cfg.ips)
                .map_err(|e| format!("can't bind a media port: {e}"))?;
            let one = socks.len() == 1;
            for s in socks {
                let local = s.local_addr().map_err(|e| e.to_string())?;
                if one {
                    // One descriptor per PeerConnection: the task reads and writes it.
                    let tokio_sock = tokio::net::UdpSocket::from_std(s)
                        .map_err(|e| format!("can't register the media socket: {e}"))?;
                    let tokio_sock = Rc::new(tokio_sock);
                    self.direct = Some((local, tokio_sock.clone()));
                    self.sockets.push((local, SendSocket::Own(tokio_sock)));
                } else {
                    let s = Arc::new(s);
                    self.readers.push(spawn_reader(
                        &s,
                        local,
                        self.link.pkt.clone(),
                        self.shared.clone(),
                    ));
                    self.sockets.push((local, SendSocket::Shared(s)));
                }
            }
        }
        for (i, (local, _)) in self.sockets.iter().enumerate() {
            let public = cfg
                .nat_1_1
                .get(i)
                .or_else(|| (cfg.nat_1_1.len() == 1).then(|| &cfg.nat_1_1[0]))
                .copied();
            let mut cands = Vec::new();
            if public.is_none() || cfg.keep_private_host {
                cands.push(Candidate::host(*local, "udp"));
            }
            if let Some(ip) = public {
                cands.push(Candidate::server_reflexive(
                    SocketAddr::new(ip, local.port()),
                    *local,
                    "udp",
                ));
            }
            for c in cands.into_iter().flatten() {
                if let Some(added) = rtc.add_local_candidate(c) {
                    self.local_candidates.push(added.to_sdp_string());
                }
            }
        }
        if let Some(single) = &self.shared.single {
            let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
            single.register(&ufrag, self.handle_id);
        }
        self.rtc = Some(rtc);
        Ok(())
    }

    fn negotiate(
        &mut self,
        remote: Option<RemoteSdp>,
        jsep: &LocalJsep,
    ) -> Result<LocalSdp, String> {
        let prefs = match jsep {
            LocalJsep::Answer(p) => p,
            LocalJsep::Offer { prefs, .. } => prefs,
        };
        if self.rtc.is_none() {
            self.build_rtc(prefs)?;
        }
        let single = self.shared.single.is_some();
        let Some(rtc) = self.rtc.as_mut() else {
            return Err("no PeerConnection".into());
        };
        let (kind, text) = match (jsep, remote) {
            (LocalJsep::Answer(_), Some(remote)) => {
                let offer = SdpOffer::from_sdp_string(&remote.sdp)
                    .map_err(|e| format!("Error parsing offer: {e}"))?;
                let answer = rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| format!("Error processing SDP: {e}"))?;
                self.got_offer = true;
                self.remote_sdp = Some(remote.sdp.clone());
                self.remote_candidates.extend(sdp::candidates(&remote.sdp));
                ("answer", answer.to_sdp_string())
            }
            (LocalJsep::Answer(_), None) => return Err("no offer to answer".into()),
            (
                LocalJsep::Offer {
                    media,
                    data,
                    restart,
                    ..
                },
                _,
            ) => {
                let mut api = rtc.sdp_api();
                if *restart {
                    api.ice_restart(true);
                }
                for m in media {
                    let dir = match (m.send, m.recv) {
                        (true, true) => Direction::SendRecv,
                        (true, false) => Direction::SendOnly,
                        (false, true) => Direction::RecvOnly,
                        (false, false) => Direction::Inactive,
                    };
                    let kind = match m.kind {
                        MediaKind::Audio => str0m::media::MediaKind::Audio,
                        MediaKind::Video => str0m::media::MediaKind::Video,
                    };
                    api.add_media(kind, dir, None, None, None);
                }
                if *data {
                    api.add_channel("JanusDataChannel".into());
                }
                let Some((offer, pending)) = api.apply() else {
                    return Err("nothing to offer".into());
                };
                self.pending_offer = Some(pending);
                ("offer", offer.to_sdp_string())
            }
        };
        // New local ICE credentials (an answer may carry the peer's ICE restart; our own restart
        // offer is registered again when its answer comes): the single port must know them.
        let new_creds = matches!(
            jsep,
            LocalJsep::Answer(_) | LocalJsep::Offer { restart: true, .. }
        );
        if single && new_creds {
            let ufrag = rtc.direct_api().local_ice_credentials().ufrag;
            if let Some(s) = &self.shared.single {
                s.register(&ufrag, self.handle_id);
            }
        }
        self.set_mids(&text);
        if let Some(rtc) = self.rtc.as_mut() {
            ensure_send_streams(rtc, &self.mids);
        }
        tracing::debug!(handle = self.handle_id, "local {kind}:\n{text}");
        self.local_sdp = Some(text.clone());
        Ok(LocalSdp { kind, sdp: text })
    }

    fn remote_answer(&mut self, remote: &RemoteSdp) -> Result<(), String> {
        let (Some(rtc), Some(pending)) = (self.rtc.as_mut(), self.pending_offer.take()) else {
            return Err("no offer of ours is pending".into());
        };
        let answer = SdpAnswer::from_sdp_string(&remote.sdp).map_err(|e| e.to_string())?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| e.to_string())?;
        ensure_send_streams(rtc, &self.mids);
        // An ICE restart we offered takes its new credentials only now.
        if let Some(s) = &self.shared.single {
            s.register(
                &rtc.direct_api().local_ice_credentials().ufrag,
                self.handle_id,
            );
        }
        self.got_answer = true;
        self.remote_sdp = Some(remote.sdp.clone());
        self.remote_candidates.extend(sdp::candidates(&remote.sdp));
        Ok(())
    }

    fn set_mids(&mut self, local: &str) {
        let lines = sdp::m_lines(local);
        let mut next = Vec::with_capacity(lines.len());
        for l in lines {
            let Some(mid) = l.mid.as_deref() else {
                continue;
            };
            let mid = Mid::from(mid);
            match self.mids.iter().position(|m| m.mid == mid) {
                Some(i) => next.push(self.mids.swap_remove(i)),
                None => next.push(MidState {
                    mid,
                    kind: l.kind(),
                    flows: [Flow::default(); 4],
                    rx: Counters::default(),
                    tx: Counters::default(),
                    codec: None,
                }),
            }
        }
        self.mids = next;
    }

    fn trickle(&mut self, candidates: &[Value]) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        for c in candidates {
            match sdp::trickle(c) {
                sdp::Trickle::Candidate(s) => match Candidate::from_sdp_string(&s) {
                    Ok(cand) => {
                        self.remote_candidates.push(s);
                        rtc.add_remote_candidate(cand);
                    }
                    Err(e) => {
                        tracing::debug!(handle = self.handle_id, "bad remote candidate {s:?}: {e}");
                    }
                },
                sdp::Trickle::Completed | sdp::Trickle::Ignored => {}
            }
        }
    }

    /// `full_trickle`: our candidates as `trickle` events, then end-of-candidates.
    fn trickle_local(&self) {
        let (sid, hid) = self.ids();
        let mid = self
            .mids
            .first()
            .map(|m| m.mid.to_string())
            .unwrap_or_else(|| "0".into());
        for c in &self.local_candidates {
            self.emit(MediaEvent::LocalCandidate {
                session_id: sid,
                handle_id: hid,
                candidate: json!({"sdpMid": mid, "sdpMLineIndex": 0, "candidate": c}),
            });
        }
        self.emit(MediaEvent::LocalCandidate {
            session_id: sid,
            handle_id: hid,
            candidate: json!({"completed": true}),
        });
    }

    fn on_datagram(&mut self, d: Datagram) {
        self.on_udp(d.at, d.source, d.destination, &d.data);
    }

    fn on_udp(&mut self, at: Instant, source: SocketAddr, destination: SocketAddr, data: &[u8]) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let Ok(contents) = data.try_into() else {
            self.shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        };
        self.dtls_in.packets += 1;
        self.dtls_in.bytes += data.len() as u64;
        let input = Input::Receive(
            at,
            Receive {
                proto: Protocol::Udp,
                source,
                destination,
                contents,
            },
        );
        if !rtc.accepts(&input) {
            self.shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Err(e) = rtc.handle_input(input) {
            self.shared.stats.rejected.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(handle = self.handle_id, "datagram refused: {e}");
            return;
        }
        if self.connected {
            self.remote_addr = Some((destination, source));
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        if let Some(rtc) = self.rtc.as_mut() {
            if let Err(e) = rtc.handle_input(Input::Timeout(now)) {
                tracing::debug!(handle = self.handle_id, "timeout input: {e}");
            }
        }
    }

    /// Once a second: `media` silence, `slowlink`, ICE give-up, the `handle_info` snapshot.
    fn tick(&mut self, now: Instant) {
        let (sid, hid) = self.ids();
        let timer = self.shared.cfg.no_media_timer;
        let threshold = self.shared.cfg.slowlink_threshold;
        let mut events = Vec::new();
        let mut slow = Vec::new();
        for m in &mut self.mids {
            let Some(kind) = m.kind else { continue };
            let mid = m.mid.to_string();
            for (i, f) in m.flows.iter_mut().enumerate() {
                let substream = u8::try_from(i).ok().filter(|i| *i < 3);
                if timer > 0 && f.receiving {
                    let idle = f
                        .last_in
                        .map_or(0, |last| now.saturating_duration_since(last).as_secs());
                    if idle >= timer {
                        f.receiving = false;
                        events.push(MediaEvent::Media {
                            session_id: sid,
                            handle_id: hid,
                            mid: mid.clone(),
                            kind,
                            substream,
                            receiving: false,
                            seconds: (timer > 1).then_some(idle),
                        });
                    }
                }
                let Some(first) = f.window_first.take() else {
                    continue;
                };
                let expected = f.window_max.saturating_sub(first) + 1;
                let lost = expected.saturating_sub(f.window_received);
                f.window_received = 0;
                if threshold > 0 && lost >= threshold {
                    events.push(MediaEvent::SlowLink {
                        session_id: sid,
                        handle_id: hid,
                        mid: mid.clone(),
                        kind,
                        uplink: true,
                        lost,
                    });
                    slow.push(kind);
                }
            }
        }
        for e in events {
            self.emit(e);
        }
        if let (Some(p), Some(h)) = (&self.plugin, &self.href) {
            for kind in slow {
                p.slow_link(h, 0, kind == MediaKind::Video, true);
            }
        }
        // A connection that never comes up (or went away) is given up on, as Janus does when
        // ICE fails.
        let give_up = match self.disconnected_since {
            Some(t) => {
                now.saturating_duration_since(t)
                    >= Duration::from_secs(if self.connected { 5 } else { 15 })
            }
            None => {
                !self.connected
                    && self.rtc.is_some()
                    && now.saturating_duration_since(self.created) >= Duration::from_secs(60)
            }
        };
        if give_up {
            if self.connected {
                self.emit(MediaEvent::IceFailed {
                    session_id: sid,
                    handle_id: hid,
                });
            }
            self.end("ICE failed", true);
        }
        self.refresh_info();
    }

    /// Drains the Rtc's outputs: sends datagrams, handles events; returns when it wants a
    /// timeout.
    fn drive(&mut self) -> Instant {
        let now = Instant::now();
        // The once-a-second work, whichever input woke the task (a steady stream of datagrams
        // may keep the timer branch from being chosen).
        if now >= self.next_tick {
            self.next_tick = now + Duration::from_secs(1);
            self.tick(now);
        }
        let far = now + Duration::from_secs(1);
        // str0m asks for a timeout "now" whenever it has work queued (a written packet for the
        // pacer, feedback to send). Serve it here rather than through the task's timer: under
        // a steady stream of datagrams the timer branch may wait, and a trip through it costs a
        // scheduler round anyway. Bounded, so a str0m that keeps asking cannot spin us.
        let mut due = 0;
        loop {
            let Some(rtc) = self.rtc.as_mut() else {
                return far;
            };
            let out = match rtc.poll_output() {
                Ok(o) => o,
                Err(e) => {
                    tracing::debug!(handle = self.handle_id, "PeerConnection error: {e}");
                    self.end("DTLS error", true);
                    return far;
                }
            };
            match out {
                Output::Timeout(t) => {
                    let now = Instant::now();
                    if t > now || due >= 16 {
                        return t;
                    }
                    due += 1;
                    if let Err(e) = rtc.handle_input(Input::Timeout(now)) {
                        tracing::debug!(handle = self.handle_id, "timeout input: {e}");
                    }
                }
                Output::Transmit(t) => {
                    if let Some((_, s)) = self.sockets.iter().find(|(a, _)| *a == t.source) {
                        // A full socket buffer drops the datagram, as the network would.
                        match s.send_to(&t.contents, t.destination) {
                            Ok(_) => {
                                self.dtls_out.packets += 1;
                                self.dtls_out.bytes += t.contents.len() as u64;
                            }
                            Err(e) => tracing::debug!(handle = self.handle_id, "send: {e}"),
                        }
                    }
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    fn on_event(&mut self, e: Event) {
        let (sid, hid) = self.ids();
        match e {
            Event::Connected => {
                self.connected = true;
                self.emit(MediaEvent::WebrtcUp {
                    session_id: sid,
                    handle_id: hid,
                });
                if let (Some(p), Some(h)) = (&self.plugin, &self.href) {
                    p.setup_media(h);
                }
                self.refresh_info();
            }
            Event::IceConnectionStateChange(s) => {
                self.ice_state = match s {
                    IceConnectionState::New => "gathering",
                    IceConnectionState::Checking => "connecting",
                    IceConnectionState::Connected => "connected",
                    IceConnectionState::Completed => "ready",
                    IceConnectionState::Disconnected => "disconnected",
                };
                self.disconnected_since =
                    (s == IceConnectionState::Disconnected).then(Instant::now);
            }
            Event::RtpPacket(p) => self.on_rtp(p),
            Event::KeyframeRequest(k) => {
                tracing::debug!(handle = self.handle_id, mid = %k.mid, "keyframe request from the peer");
                let mindex = self.mindex(k.mid);
                let fir = k.kind == KeyframeRequestKind::Fir;
                if let (Some(p), Some(h)) = (self.plugin.clone(), self.href.clone()) {
                    let out = with_outbox(self.handle_id, || {
                        p.incoming_rtcp(&h, &RtcpFeedback::KeyframeRequest { mindex, fir })
                    });
                    self.apply(out);
                }
            }
            Event::ChannelOpen(id, label) => {
                self.channels.push((id, label));
                if let (Some(p), Some(h)) = (&self.plugin, &self.href) {
                    p.data_ready(h);
                }
            }
            Event::ChannelData(d) => {
                let label = self
                    .channels
                    .iter()
                    .find(|(id, _)| *id == d.id)
                    .map(|(_, l)| l.clone());
                if let (Some(p), Some(h)) = (self.plugin.clone(), self.href.clone()) {
                    let out = with_outbox(self.handle_id, || {
                        p.incoming_data(
                            &h,
                            &DataMessage {
                                label: label.as_deref(),
                                protocol: None,
                                binary: d.binary,
                                buffer: &d.data,
                            },
                        )
                    });
                    self.apply(out);
                }
            }
            Event::ChannelClose(id) => self.channels.retain(|(c, _)| *c != id),
            Event::Closed => self.end("DTLS alert", true),
            _ => {}
        }
    }

    fn mindex(&self, mid: Mid) -> usize {
        self.mids.iter().position(|m| m.mid == mid).unwrap_or(0)
    }

    fn on_rtp(&mut self, p: str0m::rtp::RtpPacket) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let ssrc = p.header.ssrc;
        let Some((mid, rid)) = rtc
            .direct_api()
            .stream_rx(&ssrc)
            .map(|s| (s.mid(), s.rid()))
        else {
            return;
        };
        let Some(idx) = self.mids.iter().position(|m| m.mid == mid) else {
            return;
        };
        let now = Instant::now();
        let (sid, hid) = self.ids();
        let seq = *p.seq_no;
        let substream = rid.and_then(|r| rid_index(&r));
        let pt = *p.header.payload_type;
        let codec = match self.mids.get(idx).and_then(|m| m.codec) {
            Some((cpt, name)) if cpt == pt => name,
            _ => self.rtc.as_ref().map_or("unknown", |r| codec_name(r, pt)),
        };
        let Some(m) = self.mids.get_mut(idx) else {
            return;
        };
        let Some(kind) = m.kind else { return };
        m.codec = Some((pt, codec));
        m.rx.packets += 1;
        m.rx.bytes += p.payload.len() as u64;
        let slot = substream.map_or(3, |l| usize::from(l.min(2)));
        let Some(f) = m.flows.get_mut(slot) else {
            return;
        };
        f.last_in = Some(now);
        match f.window_first {
            None => {
                f.window_first = Some(seq);
                f.window_max = seq;
            }
            Some(_) => f.window_max = f.window_max.max(seq),
        }
        f.window_received += 1;
        if !f.receiving {
            // Per simulcast layer, as Janus reports them.
            f.receiving = true;
            let ev = MediaEvent::Media {
                session_id: sid,
                handle_id: hid,
                mid: m.mid.to_string(),
                kind,
                substream,
                receiving: true,
                seconds: None,
            };
            self.emit(ev);
        }
        let ext = &p.header.ext_vals;
        let packet = RtpPacket {
            mindex: idx,
            kind,
            pt,
            codec,
            seq,
            timestamp: p.header.timestamp,
            marker: p.header.marker,
            ssrc: *ssrc,
            substream,
            ext: RtpExtensions {
                audio_level: ext.audio_level,
                voice_activity: ext.voice_activity,
                video_orientation: ext.video_orientation.map(|o| o as u8),
                min_delay: None,
                max_delay: None,
            },
            payload: p.payload.clone(),
        };
        if let (Some(pl), Some(h)) = (self.plugin.clone(), self.href.clone()) {
            let out = with_outbox(self.handle_id, || pl.incoming_rtp(&h, &packet));
            self.apply(out);
        }
    }

    fn apply(&mut self, out: Outbox) {
        for p in &out.rtp {
            self.send_rtp(p);
        }
        for (label, binary, data) in &out.data {
            self.send_data(label.as_deref(), *binary, data);
        }
        for m in out.pli {
            self.request_keyframe(m);
        }
        if let Some(b) = out.remb {
            self.send_remb(b);
        }
    }

    /// The m-line a relayed packet goes out on: the one it names if the kind matches, else the
    /// first of its kind.
    fn target_mid(&self, mindex: usize, kind: MediaKind) -> Option<usize> {
        match self.mids.get(mindex) {
            Some(m) if m.kind == Some(kind) => Some(mindex),
            _ => self.mids.iter().position(|m| m.kind == Some(kind)),
        }
    }

    fn send_rtp(&mut self, p: &RtpPacket) {
        let Some(idx) = self.target_mid(p.mindex, p.kind) else {
            return;
        };
        let Some(rtc) = self.rtc.as_mut() else { return };
        let Some(m) = self.mids.get_mut(idx) else {
            return;
        };
        let mut api = rtc.direct_api();
        let Some(tx) = api.stream_tx_by_mid(m.mid, None) else {
            return;
        };
        let delay = |d: Option<u16>| d.map(|v| MediaTime::from_hundredths(u64::from(v)));
        let ev = ExtensionValues {
            audio_level: p.ext.audio_level,
            voice_activity: p.ext.voice_activity,
            play_delay_min: delay(p.ext.min_delay),
            play_delay_max: delay(p.ext.max_delay),
            ..ExtensionValues::default()
        };
        let w = RtpWrite::new(
            p.pt.into(),
            p.seq.into(),
            p.timestamp,
            Instant::now(),
            p.payload.clone(),
        )
        .marker(p.marker)
        .ext_vals(ev)
        .nackable(p.kind == MediaKind::Video);
        tx.write_rtp(w);
        m.tx.packets += 1;
        m.tx.bytes += p.payload.len() as u64;
    }

    fn send_data(&mut self, label: Option<&str>, binary: bool, data: &[u8]) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let id = match label {
            Some(l) => self
                .channels
                .iter()
                .find(|(_, n)| n == l)
                .map(|(id, _)| *id),
            None => None,
        }
        .or_else(|| self.channels.first().map(|(id, _)| *id));
        let Some(id) = id else { return };
        if let Some(mut ch) = rtc.channel(id) {
            if let Err(e) = ch.write(binary, data) {
                tracing::debug!(handle = self.handle_id, "data channel write: {e}");
            }
        }
    }

    fn request_keyframe(&mut self, mindex: Option<usize>) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let mids: Vec<Mid> = self
            .mids
            .iter()
            .enumerate()
            .filter(|(i, m)| m.kind == Some(MediaKind::Video) && mindex.is_none_or(|x| x == *i))
            .map(|(_, m)| m.mid)
            .collect();
        for mid in mids {
            for rid in [None, Some("h".into()), Some("m".into()), Some("l".into())] {
                if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, rid) {
                    rx.request_keyframe(KeyframeRequestKind::Pli);
                }
            }
        }
    }

    fn send_remb(&mut self, bitrate: u64) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        if bitrate == 0 {
            return;
        }
        let mids: Vec<Mid> = self
            .mids
            .iter()
            .filter(|m| m.kind == Some(MediaKind::Video))
            .map(|m| m.mid)
            .collect();
        for mid in mids {
            if let Some(rx) = rtc.direct_api().stream_rx_by_mid(mid, None) {
                rx.request_remb(Bitrate::bps(bitrate));
            }
        }
    }

    /// The `handle_info` view of this PeerConnection, laid out as Janus does.
    fn refresh_info(&mut self) {
        let Some(rtc) = self.rtc.as_mut() else { return };
        let fingerprint = rtc.direct_api().local_dtls_fingerprint().to_string();
        let remote_fp = rtc
            .direct_api()
            .remote_dtls_fingerprint()
            .map(|f| f.to_string());
        let setup = self
            .local_sdp
            .as_deref()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.trim_end().strip_prefix("a=setup:"))
            })
            .unwrap_or("actpass")
            .to_owned();
        let mut media = Map::new();
        for (i, m) in self.mids.iter().enumerate() {
            let kind = m.kind.map_or("data", |k| k.as_str());
            let dir = rtc.media(m.mid).map(|x| x.direction());
            let (send, recv) = match dir {
                Some(Direction::SendRecv) => (true, true),
                Some(Direction::SendOnly) => (true, false),
                Some(Direction::RecvOnly) => (false, true),
                _ => (false, false),
            };
            let mut v = json!({
                "type": kind,
                "mindex": i,
                "mid": m.mid.to_string(),
            });
            if m.kind.is_some() {
                v["direction"] = json!({"send": send, "recv": recv});
                v["stats"] = json!({
                    "in": {"packets": m.rx.packets, "bytes": m.rx.bytes},
                    "out": {"packets": m.tx.packets, "bytes": m.tx.bytes},
                });
            }
            media.insert(m.mid.to_string(), v);
        }
        let selected = self.remote_addr.map(|(l, r)| {
            let rtype = self
                .remote_candidates
                .iter()
                .find(|c| c.contains(&format!(" {} {} ", r.ip(), r.port())))
                .and_then(|c| c.split(" typ ").nth(1))
                .and_then(|t| t.split(' ').next())
                .unwrap_or("prflx")
                .to_owned();
            format!("{} [host,udp] <-> {} [{rtype},udp]", l, r)
        });
        let mut ice = json!({
            "stream_id": 1,
            "component_id": 1,
            "state": self.ice_state,
            "local-candidates": self.local_candidates,
            "remote-candidates": self.remote_candidates,
            "ready": i32::from(self.connected),
        });
        if let Some(s) = selected {
            ice["selected-pair"] = Value::String(s);
        }
        let has_kind = |k| self.mids.iter().any(|m| m.kind == Some(k));
        let info = json!({
            "flags": {
                "got-offer": self.got_offer,
                "got-answer": self.got_answer || self.got_offer,
                "negotiated": self.local_sdp.is_some() && self.remote_sdp.is_some(),
                "ready": self.connected,
                "has-audio": has_kind(MediaKind::Audio),
                "has-video": has_kind(MediaKind::Video),
                "data-channels": self.mids.iter().any(|m| m.kind.is_none()),
                "trickle": true,
            },
            "agent-created": self.created.elapsed().as_micros() as u64,
            "ice-mode": if self.shared.cfg.ice_lite { "lite" } else { "full" },
            "ice-role": if self.got_offer { "controlled" } else { "controlling" },
            "sdps": {"local": self.local_sdp, "remote": self.remote_sdp},
            "webrtc": {
                "ice": ice,
                "dtls": {
                    "fingerprint": fingerprint,
                    "remote-fingerprint": remote_fp,
                    "remote-fingerprint-hash": "sha-256",
                    "dtls-role": setup,
                    "dtls-state": if self.connected { "connected" } else { "trying" },
                    "retransmissions": 0,
                    "valid": self.connected,
                    "ready": i32::from(self.connected),
                    "stats": {
                        "in": {"packets": self.dtls_in.packets, "bytes": self.dtls_in.bytes},
                        "out": {"packets": self.dtls_out.packets, "bytes": self.dtls_out.bytes},
                    },
                },
                "media": media,
            },
        });
        *self.link.info.lock().unwrap_or_else(|e| e.into_inner()) = info;
    }

    /// Frees everything and tells the core (and the plugin) the PeerConnection is gone.
    fn finish(&mut self) {
        let ending = self.ending.take().unwrap_or(Ending {
            reason: "Shutdown".into(),
            notify: false,
        });
        // Flush a DTLS close_notify if there is one.
        self.drive();
        for r in self.readers.drain(..) {
            r.abort();
        }
        self.direct = None;
        self.sockets.clear();
        if let Some(s) = &self.shared.single {
            s.unregister(self.handle_id);
        }
        self.shared.pcs.remove(self.handle_id);
        self.rtc = None;
        let (sid, hid) = self.ids();
        // A detached handle's plugin session is already gone; nobody to tell.
        let tell_plugin = !matches!(ending.reason.as_str(), "Detach" | "Shutdown");
        if tell_plugin {
            if let (Some(p), Some(h)) = (&self.plugin, &self.href) {
                p.hangup_media(h);
            }
        }
        tracing::debug!(handle = hid, reason = %ending.reason, "PeerConnection closed");
        self.emit(MediaEvent::Hangup {
            session_id: sid,
            handle_id: hid,
            reason: ending.reason,
            notify: ending.notify,
        });
    }
}

/// Simulcast layer index (0 lowest) from janus.js's and Chrome's conventional rids.
fn rid_index(rid: &str0m::media::Rid) -> Option<u8> {
    match rid.to_string().as_str() {
        "h" => Some(2),
        "m" => Some(1),
        "l" => Some(0),
        _ => None,
    }
}

/// Gives every m-line we send on a stream to send with. str0m makes none for an m-line whose
/// peer offered simulcast (it only makes one per layer *we* send), yet plugins echo or forward
/// one layer back on it; the peer finds that stream by its mid.
fn ensure_send_streams(rtc: &mut Rtc, mids: &[MidState]) {
    for m in mids {
        let Some(media) = rtc.media(m.mid) else {
            continue;
        };
        if m.kind.is_none() || !media.direction().is_sending() {
            continue;
        }
        let video = m.kind == Some(MediaKind::Video);
        let mut api = rtc.direct_api();
        if api.stream_tx_by_mid(m.mid, None).is_some() {
            continue;
        }
        let ssrc = api.new_ssrc();
        let rtx = video.then(|| api.new_ssrc());
        api.declare_stream_tx(ssrc, rtx, m.mid, None);
    }
}

/// Janus's lowercase name of the codec behind a payload type (RTX resolves to its codec).
fn codec_name(rtc: &Rtc, pt: u8) -> &'static str {
    use str0m::format::Codec;
    let params = rtc
        .codec_config()
        .find(|p| *p.pt() == pt || p.resend().is_some_and(|r| *r == pt));
    match params.map(|p| p.spec().codec) {
        Some(Codec::Opus) => "opus",
        Some(Codec::PCMU) => "pcmu",
        Some(Codec::PCMA) => "pcma",
        Some(Codec::G722) => "g722",
        Some(Codec::Vp8) => "vp8",
        Some(Codec::Vp9) => "vp9",
        Some(Codec::H264) => "h264",
        Some(Codec::H265) => "h265",
        Some(Codec::Av1) => "av1",
        _ => "unknown",
    }
}

/// A codec set honouring a plugin's preferences; the other kind keeps str0m's defaults.
fn codec_config(rc: RtcConfig, prefs: &MediaPrefs) -> RtcConfig {
    let audio = prefs.audio_codec.as_deref().map(str::to_ascii_lowercase);
    let video = prefs.video_codec.as_deref().map(str::to_ascii_lowercase);
    let a = |n: &str| audio.as_deref().is_none_or(|x| x == n);
    let v = |n: &str| video.as_deref().is_none_or(|x| x == n);
    rc.clear_codecs()
        .enable_opus(a("opus"), prefs.opus_red)
        .enable_pcmu(a("pcmu"), false)
        .enable_pcma(a("pcma"), false)
        .enable_g722(a("g722"), false)
        .enable_vp8(v("vp8"))
        .enable_h264(v("h264"))
        .enable_vp9(v("vp9"))
        .enable_av1(v("av1"))
}

/// Waits for a datagram on the PeerConnection's own socket (forever if it has none).
async fn recv_direct(
    direct: &Option<(SocketAddr, Rc<tokio::net::UdpSocket>)>,
    buf: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match direct {
        Some((_, s)) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

/// Reads one socket of this PeerConnection's own port into its packet queue.
fn spawn_reader(
    sock: &Arc<UdpSocket>,
    local: SocketAddr,
    to: mpsc::Sender<PcMsg>,
    shared: Arc<Shared>,
) -> tokio::task::JoinHandle<()> {
    let sock = sock.try_clone().and_then(tokio::net::UdpSocket::from_std);
    tokio::task::spawn_local(async move {
        let Ok(sock) = sock else {
            tracing::error!("media socket {local}: can't register it");
            return;
        };
        let mut buf = vec![0u8; 2048];
        loop {
            match sock.recv_from(&mut buf).await {
                Ok((n, source)) => {
                    let Some(data) = buf.get(..n) else { continue };
                    let d = Datagram {
                        at: Instant::now(),
                        source,
                        destination: local,
                        data: data.to_vec(),
                    };
                    if to.try_send(PcMsg::Datagram(d)).is_err() {
                        if to.is_closed() {
                            return;
                        }
                        shared.stats.queue_drops.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => tracing::trace!("media socket {local}: {e}"),
            }
        }
    })
}
