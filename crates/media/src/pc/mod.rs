//! One PeerConnection: a str0m `Rtc` driven by one task on its worker thread, from its first
//! negotiation to its hang-up.
//!
//! - `mod.rs`: the task (its socket, queues and timer), str0m's outputs and events, teardown;
//! - `negotiate.rs`: building the `Rtc`, offers and answers, trickles, what was agreed;
//! - `rtp.rs`: media in (to the plugin's session) and out (relays, rewritten per peer);
//! - `info.rs`: the once-a-second work (`media`/`slowlink` events) and `handle_info`.
//!
//! The `Pc` lives in an `Rc<RefCell<_>>` registered with its worker, so the worker can write a
//! fan-out batch into many PeerConnections without a queue per destination. It is borrowed only
//! in synchronous stretches; plugin callbacks run inside them and never reach another `Pc`
//! directly (their fan-out batches are delivered after the borrow ends).

mod info;
mod negotiate;

pub(crate) use info::PcInfo;
mod rtp;

use crate::net::Datagram;
use crate::rewrite::{SeqTs, Vp8Ids};
use crate::{mmsg, worker, PcLink, PcMsg, Shared};
use jano_core::{MediaCommand, MediaEvent, Negotiation};
use jano_plugin::{
    DataMessage, HandleRef, LocalJsep, MediaCtx, MediaKind, OfferMids, Outbox, PluginSession,
    RtcpFeedback, SessionRef, Value,
};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::bwe::BweKind;
use str0m::change::SdpPendingOffer;
use str0m::channel::ChannelId;
use str0m::media::{KeyframeRequestKind, Mid};
use str0m::net::{DatagramSend, Protocol, Receive};
use str0m::{Event, IceConnectionState, Input, Output, Rtc};

/// The label of the channel plugins' messages go on when they name none (Janus's).
pub(crate) const DEFAULT_CHANNEL: &str = "JanusDataChannel";
/// The SCTP stream of the out-of-band placeholder channel (see `negotiate`): far above the
/// ids browsers and aiortc number their channels from.
pub(crate) const PLACEHOLDER_STREAM: u16 = 1021;
/// Messages kept while a channel the engine opened is not open yet.
const MAX_PENDING_DATA: usize = 256;
use tokio::sync::{mpsc, Notify};

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

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counters {
    packets: u64,
    bytes: u64,
}

/// The send side of an m-line: the payload types the peer agreed to per codec, and the
/// sequence/timestamp continuity of what we relay to it.
struct TxState {
    /// (codec, payload type, clock rate), in the peer's order of preference.
    pts: Vec<(&'static str, u8, u32)>,
    /// Continuity of the one stream of the m-line, or (simulcast we send) of each layer:
    /// index = substream (0 `l`, 1 `m`, 2 `h`), 3 = the stream without a rid.
    seq: [SeqTs; 4],
    /// VP8 picture ID continuity, per slot as `seq`.
    vp8: [Vp8Ids; 4],
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
    out: TxState,
    /// The peer's ssrc-based simulcast SSRCs on this m-line (`a=ssrc-group:SIM`), lowest
    /// layer first: what substream a packet without a rid is.
    sim: Vec<u32>,
    /// The AV1 dependency descriptor structure the peer sends on this m-line.
    dd: jano_plugin::dd::DdReader,
}

/// A socket the PeerConnection sends from: its own (also read by its task), or one it shares
/// (the single port, or one of several addresses' sockets read by reader tasks).
enum SendSocket {
    Own(Rc<tokio::net::UdpSocket>),
    Shared(Arc<UdpSocket>),
}

impl SendSocket {
    /// The descriptor datagrams are written to, straight to the kernel (`mmsg::send`, never
    /// waiting): tokio's `try_send_to` refuses until the reactor has seen the socket writable,
    /// which drops the first handshake packets of a new socket.
    fn fd(&self) -> RawFd {
        match self {
            SendSocket::Own(s) => s.as_raw_fd(),
            SendSocket::Shared(s) => s.as_raw_fd(),
        }
    }
}

/// A queued datagram: (index in `Pc::sockets`, destination, bytes).
type QueuedTx = (usize, SocketAddr, DatagramSend);

impl mmsg::Outgoing for QueuedTx {
    fn to(&self) -> SocketAddr {
        self.1
    }
    fn data(&self) -> &[u8] {
        &self.2
    }
}

/// Why a PeerConnection ends, and whether the client is told.
struct Ending {
    reason: String,
    notify: bool,
}

pub(crate) struct Pc {
    handle_id: u64,
    shared: Arc<Shared>,
    link: PcLink,
    rtc: Option<Rtc>,
    href: Option<HandleRef>,
    /// The plugin's state for the handle; its media callbacks are called directly.
    session: Option<SessionRef>,
    /// Reused for every plugin callback, so a relay does not allocate per packet.
    outbox: Outbox,
    /// Local address → socket we send from.
    sockets: Vec<(SocketAddr, SendSocket)>,
    /// Datagrams str0m produced, not yet written: (index in `sockets`, destination, bytes).
    /// Written together (`flush_tx`) at the end of each stretch of work, in order.
    tx_queue: Vec<QueuedTx>,
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
    /// The out-of-band channel that only makes an offer carry an application m-line: never
    /// used to send (the peer does not know it).
    placeholder: Option<ChannelId>,
    /// The `o=` version of our last local description.
    sdp_version: Option<u64>,
    /// Channels the engine opened to send on, and what waits for them to open.
    opening: Vec<(ChannelId, String)>,
    pending_data: VecDeque<(String, bool, Vec<u8>)>,
    // Shared with the `handle_info` snapshot (copy on write), never copied once a second.
    local_candidates: Arc<Vec<String>>,
    remote_candidates: Arc<Vec<String>>,
    local_sdp: Option<Arc<str>>,
    remote_sdp: Option<Arc<str>>,
    /// Our DTLS fingerprint (fixed for the PeerConnection's life) and role (`a=setup` of our
    /// last SDP), for `handle_info`.
    fingerprint: Arc<str>,
    dtls_role: &'static str,
    got_offer: bool,
    got_answer: bool,
    remote_addr: Option<(SocketAddr, SocketAddr)>,
    dtls_in: Counters,
    dtls_out: Counters,
    /// The mid each entry of the plugin's last offer got, in its order.
    offer_mids: Vec<String>,
    /// Relayed packets that could not be sent (no m-line or codec for them).
    tx_dropped: u64,
    /// The `min_nack_queue` generation applied to the send streams, and its value (ms).
    nack_gen: u64,
    nack_applied: Option<u64>,
    /// Send streams whose retransmission cache is sized for that generation.
    rtx_sized: Vec<str0m::rtp::Ssrc>,
    next_tick: Instant,
    created: Instant,
    ending: Option<Ending>,
    /// When the task's timer is armed for; a relay written from outside the task that makes
    /// str0m want an earlier wake-up pokes `wake`.
    armed: Instant,
    wake: Rc<Notify>,
}

/// Timer slack: str0m's future timeouts (reports, NACK and TWCC feedback, ICE keepalives) are
/// rounded up to a shared 5 ms grid, so the PeerConnections of a worker wake together instead of
/// one by one; nothing there needs better than a few milliseconds. Work already due (written
/// packets) is served inside `drive`, never through this timer.
const TIMER_GRID: Duration = Duration::from_millis(5);

fn coalesce(deadline: Instant) -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    if deadline <= Instant::now() {
        return deadline;
    }
    let grid = TIMER_GRID.as_micros();
    let since = deadline.saturating_duration_since(epoch).as_micros();
    let rounded = since.div_ceil(grid) * grid;
    epoch + Duration::from_micros(u64::try_from(rounded).unwrap_or(u64::MAX))
}

/// Runs `f` on the PeerConnection and writes the datagrams it produced, then delivers the
/// fan-out batches its plugin callbacks queued for this worker (after the borrow ends, so a
/// batch may include this PeerConnection).
fn with_pc<R>(pc: &RefCell<Pc>, f: impl FnOnce(&mut Pc) -> R) -> R {
    let r = {
        let mut p = pc.borrow_mut();
        let r = f(&mut p);
        p.flush_tx();
        r
    };
    worker::flush_local();
    r
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
    let wake = Rc::new(Notify::new());
    let pc = Rc::new(RefCell::new(Pc {
        handle_id,
        shared: shared.clone(),
        link,
        rtc: None,
        href: None,
        session: None,
        outbox: Outbox::default(),
        sockets: Vec::new(),
        tx_queue: Vec::new(),
        readers: Vec::new(),
        direct: None,
        mids: Vec::new(),
        pending_offer: None,
        connected: false,
        ice_state: "gathering",
        disconnected_since: None,
        channels: Vec::new(),
        placeholder: None,
        sdp_version: None,
        opening: Vec::new(),
        pending_data: VecDeque::new(),
        local_candidates: Arc::new(Vec::new()),
        remote_candidates: Arc::new(Vec::new()),
        local_sdp: None,
        remote_sdp: None,
        fingerprint: Arc::from(""),
        dtls_role: "actpass",
        got_offer: false,
        got_answer: false,
        remote_addr: None,
        dtls_in: Counters::default(),
        dtls_out: Counters::default(),
        offer_mids: Vec::new(),
        tx_dropped: 0,
        nack_gen: shared.settings.nack_gen.load(Ordering::Relaxed),
        nack_applied: None,
        rtx_sized: Vec::new(),
        next_tick: now + Duration::from_secs(1),
        created: now,
        ending: None,
        armed: now,
        wake: wake.clone(),
    }));
    worker::register(handle_id, pc.clone());
    loop {
        let step = with_pc(&pc, |p| {
            let deadline = coalesce(p.drive().min(p.next_tick));
            p.armed = deadline;
            (p.ending.is_none()).then(|| (deadline, p.direct.clone()))
        });
        let Some((deadline, direct)) = step else {
            break;
        };
        let wake_at = tokio::time::Instant::from_std(deadline);
        tokio::select! {
            biased;
            m = ctrl.recv() => with_pc(&pc, |p| match m {
                Some(m) => p.on_msg(m),
                None => p.end("Shutdown", false),
            }),
            m = pkt.recv() => {
                if let Some(m) = m {
                    with_pc(&pc, |p| {
                        p.on_msg(m);
                        // Take what else is already queued without going back to the
                        // scheduler; str0m holds one received packet until polled, so drive
                        // after each.
                        for _ in 0..64 {
                            p.drive();
                            match pkt.try_recv() {
                                Ok(m) => p.on_msg(m),
                                Err(_) => break,
                            }
                        }
                    });
                }
            }
            r = readable(&direct) => {
                if let (Ok(()), Some((local, sock))) = (r, &direct) {
                    with_pc(&pc, |p| p.drain_socket(*local, sock));
                }
            }
            _ = wake.notified() => {}
            _ = tokio::time::sleep_until(wake_at) => with_pc(&pc, |p| p.on_timeout(Instant::now())),
        }
    }
    with_pc(&pc, |p| p.finish());
    worker::unregister(handle_id);
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
            PcMsg::Rtp(p) => {
                self.send_rtp(&p, None, 0);
            }
            PcMsg::Data(d) => self.send_data(d.label.as_deref(), d.binary, &d.data),
            PcMsg::Pli(m) => self.request_keyframe(m),
            PcMsg::Remb(b) => self.send_remb(b),
        }
    }

    fn on_command(&mut self, c: MediaCommand) {
        match c {
            MediaCommand::Negotiate(n) => {
                let Negotiation {
                    handle,
                    session,
                    remote_offer,
                    jsep,
                    candidates,
                    mut event,
                } = *n;
                let (sid, hid) = (handle.session_id, handle.handle_id);
                self.href = Some(handle);
                self.session = Some(session);
                let result = self.negotiate(remote_offer, &jsep);
                let failed = result.is_err();
                // An answer of ours completes the negotiation: the plugin learns what was agreed.
                if result.as_ref().is_ok_and(|l| l.kind == "answer") {
                    self.tell_negotiated();
                }
                // The plugin's event names the mids its offer got.
                if let (Ok(_), LocalJsep::Offer { fill: Some(f), .. }) = (&result, &jsep) {
                    // The event is the Janus envelope by now: the plugin's part is its data.
                    if let Some(Value::Object(data)) =
                        event.get_mut("plugindata").and_then(|p| p.get_mut("data"))
                    {
                        let mids = OfferMids {
                            media: self.offer_mids.clone(),
                            data: self
                                .mids
                                .iter()
                                .find(|m| m.kind.is_none())
                                .map(|m| m.mid.to_string()),
                            all: self.mids.iter().map(|m| m.mid.to_string()).collect(),
                        };
                        (f.0)(data, &mids);
                    }
                }
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
                match self.remote_answer(&sdp) {
                    Ok(()) => self.tell_negotiated(),
                    Err(e) => {
                        tracing::warn!(handle = self.handle_id, "answer refused: {e}");
                        self.end("Error processing SDP", true);
                    }
                }
                self.refresh_info();
            }
            MediaCommand::Trickle { candidates, .. } => self.trickle(&candidates),
            // Engine-wide; applied by the engine, never queued to a PeerConnection.
            MediaCommand::Settings(_) => {}
            MediaCommand::Hangup { reason, notify, .. } => {
                if let Some(rtc) = self.rtc.as_mut() {
                    // A DTLS close_notify (and RTCP BYE) tells the peer at once, as Janus's
                    // DTLS alert does; without it a client notices only when ICE consent
                    // expires.
                    if rtc.close().is_err() {
                        rtc.disconnect();
                    }
                }
                self.end(reason, notify);
            }
        }
    }

    /// Reads what the PeerConnection's own socket holds, a batch per system call, and feeds it
    /// to str0m; stops when the socket is empty (which clears tokio's readiness) or after
    /// `MAX_DRAIN` datagrams, so one busy peer cannot hold the worker.
    fn drain_socket(&mut self, local: SocketAddr, sock: &tokio::net::UdpSocket) {
        const MAX_DRAIN: usize = 2 * mmsg::BATCH;
        mmsg::with_thread_batch(|batch| {
            let mut taken = 0;
            while taken < MAX_DRAIN {
                let n = match sock.try_io(tokio::io::Interest::READABLE, || {
                    batch.recv(sock.as_raw_fd())
                }) {
                    Ok(n) => n,
                    Err(e) => {
                        if e.kind() != std::io::ErrorKind::WouldBlock {
                            // ICMP errors from a peer that went away surface here.
                            tracing::trace!(handle = self.handle_id, "media socket: {e}");
                        }
                        break;
                    }
                };
                taken += n.max(1);
                let at = Instant::now();
                for (source, data) in batch.iter() {
                    self.on_udp(at, source, local, data);
                    // str0m holds one received packet until polled: drive after each.
                    self.drive();
                }
            }
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

    /// Drains the Rtc's outputs (queues datagrams, handles events, serves timeouts already
    /// due) and runs the once-a-second work when it is time; returns when str0m next wants a
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
                    if let Some(i) = self.sockets.iter().position(|(a, _)| *a == t.source) {
                        self.tx_queue.push((i, t.destination, t.contents));
                    }
                }
                Output::Event(e) => self.on_event(e),
            }
        }
    }

    /// Writes the queued datagrams, one `sendmmsg` per run on the same socket, in order. A
    /// datagram the kernel refuses (full socket buffer) is dropped, as the network would.
    pub(super) fn flush_tx(&mut self) {
        if self.tx_queue.is_empty() {
            return;
        }
        let mut at = 0;
        while let Some(&(sock, _, _)) = self.tx_queue.get(at) {
            let run = self
                .tx_queue
                .get(at..)
                .unwrap_or_default()
                .iter()
                .take_while(|(s, _, _)| *s == sock)
                .count();
            let msgs = self.tx_queue.get(at..at + run).unwrap_or_default();
            if let Some((_, s)) = self.sockets.get(sock) {
                let sent = mmsg::send(s.fd(), msgs);
                let bytes: usize = msgs.iter().take(sent).map(|m| m.2.len()).sum();
                self.dtls_out.packets += sent as u64;
                self.dtls_out.bytes += bytes as u64;
                if sent < msgs.len() {
                    tracing::debug!(
                        handle = self.handle_id,
                        dropped = msgs.len() - sent,
                        "send: datagrams refused"
                    );
                }
            }
            at += run;
        }
        self.tx_queue.clear();
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
                self.call(|s, ctx| s.setup_media(ctx));
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
                self.call(|s, ctx| {
                    s.incoming_rtcp(ctx, &RtcpFeedback::KeyframeRequest { mindex, fir })
                });
            }
            Event::ChannelOpen(id, _) if self.placeholder == Some(id) => {}
            Event::ChannelOpen(id, label) => {
                self.opening.retain(|(c, _)| *c != id);
                self.channels.push((id, label));
                self.flush_pending_data();
                self.call(|s, ctx| s.data_ready(ctx));
            }
            Event::ChannelData(d) => {
                let label = self
                    .channels
                    .iter()
                    .find(|(id, _)| *id == d.id)
                    .map(|(_, l)| l.clone());
                self.call(|s, ctx| {
                    s.incoming_data(
                        ctx,
                        &DataMessage {
                            label: label.as_deref(),
                            protocol: None,
                            binary: d.binary,
                            buffer: &d.data,
                        },
                    )
                });
            }
            Event::ChannelClose(id) => self.channels.retain(|(c, _)| *c != id),
            Event::EgressBitrateEstimate(BweKind::Remb { estimate, mid }) => {
                let mindex = self.mindex(mid);
                let bitrate = estimate.as_u64();
                self.call(|s, ctx| {
                    s.incoming_rtcp(ctx, &RtcpFeedback::Bitrate { mindex, bitrate })
                });
            }
            Event::Closed => self.end("DTLS alert", true),
            _ => {}
        }
    }

    /// Calls one of the plugin session's media callbacks with this PeerConnection's context,
    /// then applies what it asked of this PeerConnection (no queue: same thread, right now).
    fn call(&mut self, f: impl FnOnce(&dyn PluginSession, &mut MediaCtx<'_>)) {
        // Taken out for the call instead of cloned: no reference counting per packet.
        let (Some(session), Some(href)) = (self.session.take(), self.href.take()) else {
            return;
        };
        let mut out = std::mem::take(&mut self.outbox);
        f(&*session, &mut MediaCtx::new(&href, &mut out));
        self.session = Some(session);
        self.href = Some(href);
        if !out.is_empty() {
            self.apply(&mut out);
        }
        self.outbox = out;
    }

    fn mindex(&self, mid: Mid) -> usize {
        self.mids.iter().position(|m| m.mid == mid).unwrap_or(0)
    }

    fn finish(&mut self) {
        let ending = self.ending.take().unwrap_or(Ending {
            reason: "Shutdown".into(),
            notify: false,
        });
        // Flush a DTLS close_notify if there is one.
        self.drive();
        self.flush_tx();
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
            if let (Some(s), Some(h)) = (&self.session, &self.href) {
                s.hangup_media(h);
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

/// Waits until the PeerConnection's own socket has datagrams (forever if it has none).
async fn readable(direct: &Option<(SocketAddr, Rc<tokio::net::UdpSocket>)>) -> std::io::Result<()> {
    match direct {
        Some((_, s)) => s.readable().await,
        None => std::future::pending().await,
    }
}

/// Reads one socket of this PeerConnection's own port into its packet queue.
pub(super) fn spawn_reader(
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
        loop {
            if let Err(e) = sock.readable().await {
                tracing::trace!("media socket {local}: {e}");
                continue;
            }
            // The worker's batch, not one per reader: it is only used until the next await.
            let closed = mmsg::with_thread_batch(|batch| {
                let r = sock.try_io(tokio::io::Interest::READABLE, || {
                    batch.recv(sock.as_raw_fd())
                });
                if let Err(e) = r {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        tracing::trace!("media socket {local}: {e}");
                    }
                    return false;
                }
                let at = Instant::now();
                for (source, data) in batch.iter() {
                    let d = Datagram {
                        at,
                        source,
                        destination: local,
                        data: data.to_vec(),
                    };
                    if to.try_send(PcMsg::Datagram(d)).is_err() {
                        if to.is_closed() {
                            return true;
                        }
                        shared.stats.queue_drops.fetch_add(1, Ordering::Relaxed);
                    }
                }
                false
            });
            if closed {
                return;
            }
        }
    })
}
