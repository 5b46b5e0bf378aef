//! The plain side of a NoSIP handle: an RTP and an RTCP socket per medium (an even/odd pair
//! of `rtp_port_range`), connected to the peer once its SDP is known. What the WebRTC user
//! sends goes out from the media worker (a non-blocking `send`); what the peer sends is read by
//! a task on the plugins' runtime (none per call) and relayed to the PeerConnection. SDES-SRTP
//! protects RTP both ways (RTCP stays plain: keyframe requests only).

use jano_plugin::rtp::{parse_rtp, SeqExt};
use jano_plugin::srtp::{SrtcpSender, SrtpReceiver, SrtpSender};
use jano_plugin::{CoreServices, HandleRef, MediaKind, RtpExtensions, RtpPacket};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// How often the peer gets a receiver report.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One medium's plain side.
pub struct Leg {
    pub kind: MediaKind,
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    pub local_port: u16,
    st: Mutex<LegState>,
    /// The peer's SSRC (from its RTP), for our keyframe requests; the user's, as our RTCP
    /// sender SSRC.
    pub peer_ssrc: AtomicU32,
    pub user_ssrc: AtomicU32,
    pub to_peer: AtomicU64,
    pub from_peer: AtomicU64,
    pub closed: Arc<AtomicBool>,
}

#[derive(Default)]
pub struct LegState {
    /// The peer's RTP and RTCP addresses (none: not negotiated yet).
    pub peer: Option<(SocketAddr, SocketAddr)>,
    /// Whether the peer wants what the user sends.
    pub peer_receives: bool,
    /// The plain side's payload type per codec name, and back.
    pub pts: Vec<(u8, &'static str)>,
    pub srtp_out: Option<SrtpSender>,
    pub srtcp_out: Option<SrtcpSender>,
    pub srtp_in: Option<SrtpReceiver>,
}

impl Leg {
    /// Binds an RTP/RTCP pair of the range on `ip`.
    pub fn open(
        kind: MediaKind,
        range: &jano_plugin::udp::PortRange,
        ip: std::net::IpAddr,
    ) -> std::io::Result<Leg> {
        let (rtp, rtcp) = range.bind_pair(ip)?;
        rtp.set_nonblocking(true)?;
        rtcp.set_nonblocking(true)?;
        let local_port = rtp.local_addr()?.port();
        Ok(Leg {
            kind,
            rtp: Arc::new(rtp),
            rtcp: Arc::new(rtcp),
            local_port,
            st: Mutex::new(LegState::default()),
            peer_ssrc: AtomicU32::new(0),
            user_ssrc: AtomicU32::new(0),
            to_peer: AtomicU64::new(0),
            from_peer: AtomicU64::new(0),
            closed: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, LegState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What the WebRTC user sent, to the peer (from the media worker; never waits).
    pub fn send_to_peer(&self, p: &RtpPacket) {
        let mut st = self.state();
        let Some((addr, _)) = st.peer.filter(|_| st.peer_receives) else {
            return;
        };
        let Some(pt) = st
            .pts
            .iter()
            .find(|(_, n)| *n == p.codec)
            .map(|(pt, _)| *pt)
        else {
            return;
        };
        self.user_ssrc.store(p.ssrc, Ordering::Relaxed);
        let mut buf = Vec::with_capacity(12 + p.payload.len());
        jano_plugin::udp::serialize_rtp(p, None, Some(pt), &mut buf);
        let out = match st.srtp_out.as_mut() {
            Some(s) => match s.protect(&buf) {
                Ok(b) => b,
                Err(_) => return,
            },
            None => buf,
        };
        drop(st);
        if self.rtp.send_to(&out, addr).is_ok() {
            self.to_peer.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Asks the peer for a keyframe (an RTCP PLI to its RTCP port).
    pub fn pli_to_peer(&self) {
        let mut pli = vec![0x81, 206, 0, 2];
        pli.extend_from_slice(&self.user_ssrc.load(Ordering::Relaxed).max(1).to_be_bytes());
        pli.extend_from_slice(&self.peer_ssrc.load(Ordering::Relaxed).to_be_bytes());
        self.send_rtcp(&pli);
    }

    /// A receiver report (no report blocks: the engine keeps the statistics of the WebRTC
    /// side), so the peer sees RTCP from us as it does from Janus.
    pub fn report_to_peer(&self) {
        let mut rr = vec![0x80, 201, 0, 1];
        rr.extend_from_slice(&self.user_ssrc.load(Ordering::Relaxed).max(1).to_be_bytes());
        self.send_rtcp(&rr);
    }

    fn send_rtcp(&self, packet: &[u8]) {
        let mut st = self.state();
        let Some((_, to)) = st.peer else { return };
        let out = match st.srtcp_out.as_mut() {
            Some(s) => match s.protect(packet) {
                Ok(p) => p,
                Err(_) => return,
            },
            None => packet.to_vec(),
        };
        drop(st);
        let _ = self.rtcp.send_to(&out, to);
    }

    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// Whether an RTCP compound packet asks for a keyframe (PLI or FIR).
fn asks_keyframe(mut b: &[u8]) -> bool {
    while b.len() >= 4 {
        let (fmt, pt) = (b[0] & 0x1f, b[1]);
        if pt == 206 && (fmt == 1 || fmt == 4) {
            return true;
        }
        let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
        b = b.get(len..).unwrap_or_default();
    }
    false
}

/// What the reader of a leg hands the PeerConnection.
pub trait Sink: Send + Sync + 'static {
    /// An RTP packet from the peer (already decrypted and mapped to a codec).
    fn rtp(&self, p: &RtpPacket);
    /// The peer asked for a keyframe.
    fn keyframe(&self);
}

/// Reads the peer's RTP and RTCP until the leg is closed.
pub fn spawn_reader(
    services: &dyn CoreServices,
    leg: &Arc<Leg>,
    mindex: usize,
    sink: Arc<dyn Sink>,
) {
    let (Ok(rtp), Ok(rtcp)) = (leg.rtp.try_clone(), leg.rtcp.try_clone()) else {
        return;
    };
    let leg = leg.clone();
    services.spawn(Box::pin(async move {
        let (Ok(rtp), Ok(rtcp)) = (
            tokio::net::UdpSocket::from_std(rtp),
            tokio::net::UdpSocket::from_std(rtcp),
        ) else {
            return;
        };
        let mut buf = vec![0u8; 2048];
        let mut cbuf = vec![0u8; 1500];
        let mut seq = SeqExt::default();
        let kind = leg.kind;
        let mut last_report = std::time::Instant::now();
        while !leg.closed.load(Ordering::Acquire) {
            tokio::select! {
                got = rtp.recv_from(&mut buf) => {
                    let Ok((n, from)) = got else { continue };
                    let data = buf.get(..n).unwrap_or_default();
                    let (plain, codec) = {
                        let mut st = leg.state();
                        // Only the peer's datagrams (as Janus, whose socket is connected to it).
                        if st.peer.is_none_or(|(p, _)| p != from) {
                            continue;
                        }
                        let plain = match st.srtp_in.as_mut() {
                            Some(s) => match s.unprotect(data) {
                                Ok(p) => p,
                                Err(_) => continue,
                            },
                            None => data.to_vec(),
                        };
                        let Some(h) = parse_rtp(&plain) else { continue };
                        let Some(codec) = st.pts.iter().find(|(pt, _)| *pt == h.pt).map(|(_, n)| *n) else {
                            continue;
                        };
                        (plain, codec)
                    };
                    let Some(h) = parse_rtp(&plain) else { continue };
                    let Some(payload) = plain.get(h.payload_at..h.payload_end) else { continue };
                    leg.peer_ssrc.store(h.ssrc, Ordering::Relaxed);
                    leg.from_peer.fetch_add(1, Ordering::Relaxed);
                    sink.rtp(&RtpPacket {
                        mindex,
                        kind,
                        pt: h.pt,
                        codec,
                        seq: seq.extend(h.seq),
                        timestamp: h.ts,
                        marker: h.marker,
                        ssrc: h.ssrc,
                        substream: None,
                        ext: RtpExtensions::default(),
                        payload: Arc::from(payload),
                        svc: None,
                    });
                }
                got = rtcp.recv_from(&mut cbuf) => {
                    let Ok((n, _)) = got else { continue };
                    if asks_keyframe(cbuf.get(..n).unwrap_or_default()) {
                        sink.keyframe();
                    }
                }
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
            if last_report.elapsed() >= REPORT_EVERY {
                last_report = std::time::Instant::now();
                leg.report_to_peer();
            }
        }
    }));
}

/// Relays the peer's media to the user's PeerConnection.
pub struct ToUser {
    pub services: Arc<dyn CoreServices>,
    pub handle: HandleRef,
    pub rec: jano_plugin::record::MediaRecorder,
}

impl Sink for ToUser {
    fn rtp(&self, p: &RtpPacket) {
        self.rec.rtp(&*self.services, p);
        self.services.relay_rtp(&self.handle, p);
    }

    fn keyframe(&self) {
        self.services.send_pli(&self.handle, None);
    }
}
