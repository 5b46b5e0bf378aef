//! Plain-RTP participants (`join` with an `rtp` object, in rooms with
//! `allow_rtp_participants`): a UDP socket of the plugin's `rtp_port_range` per participant,
//! read by a task on the plugins' runtime (no thread per participant), its packets queued like
//! a PeerConnection's; the mix goes back from the mixing thread to the address the participant
//! gave, on the same socket.

use crate::codec::Codec;
use crate::participant::Participant;
use crate::Shared;
use jano_plugin::rtp::{parse_rtp, SeqExt};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// Where the mix goes, kept with the participant's media state.
pub struct PlainOut {
    pub socket: Arc<UdpSocket>,
    pub peer: Option<SocketAddr>,
    pub pt: u8,
    pub sent: u64,
    pub dropped: u64,
}

/// What a plain-RTP participant asked for, and what it was given.
pub struct PlainRtp {
    pub socket: Arc<UdpSocket>,
    pub local: SocketAddr,
    pub peer: Option<SocketAddr>,
    pub pt: u8,
    /// Datagrams that were not RTP of the participant's payload type.
    pub garbage: Arc<AtomicU64>,
}

/// The address to tell the participant: `local_ip` if configured, else the one this host
/// would use to reach the participant (a UDP `connect` only looks the route up), else
/// loopback.
fn local_ip(configured: Option<IpAddr>, peer: Option<SocketAddr>) -> IpAddr {
    if let Some(ip) = configured {
        return ip;
    }
    peer.and_then(jano_plugin::udp::route_ip)
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// Binds the participant's socket. `ip`/`port` of the request say where to send the mix
/// (none: the participant only sends).
pub fn open(
    shared: &Shared,
    codec: Codec,
    ip: Option<&str>,
    port: Option<u64>,
    payload_type: Option<u64>,
) -> Result<PlainRtp, String> {
    let peer = match (ip, port) {
        (Some(ip), Some(port)) if port > 0 => {
            Some(jano_plugin::udp::resolve(ip, port, false).map_err(|e| e.to_string())?)
        }
        _ => None,
    };
    let ip = local_ip(shared.local_ip, peer);
    let socket = shared
        .ports
        .bind_even(ip)
        .map_err(|e| format!("Could not bind a port for plain RTP: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    // Connected to the participant's address: only its datagrams are read (as Janus does).
    if let Some(peer) = peer {
        socket.connect(peer).map_err(|e| e.to_string())?;
    }
    let local = socket.local_addr().map_err(|e| e.to_string())?;
    let pt = match codec {
        Codec::Opus => payload_type
            .and_then(|p| u8::try_from(p).ok())
            .filter(|p| *p > 0 && *p < 128)
            .unwrap_or(100),
        Codec::Pcmu => 0,
        Codec::Pcma => 8,
    };
    Ok(PlainRtp {
        socket: Arc::new(socket),
        local,
        peer,
        pt,
        garbage: Arc::new(AtomicU64::new(0)),
    })
}

/// Reads the participant's socket until it leaves: valid RTP of its payload type goes into
/// its jitter buffer; the first one makes it `setup` (as a PeerConnection coming up does).
pub fn spawn_reader(shared: &Arc<Shared>, p: &Arc<Participant>, rtp: &PlainRtp) {
    let weak: Weak<Participant> = Arc::downgrade(p);
    let shared_weak = Arc::downgrade(shared);
    let Ok(sock) = rtp.socket.try_clone() else {
        return;
    };
    let pt = rtp.pt;
    let garbage = rtp.garbage.clone();
    shared.services.spawn(Box::pin(async move {
        let Ok(sock) = tokio::net::UdpSocket::from_std(sock) else {
            return;
        };
        let mut buf = vec![0u8; 2048];
        let mut seq = SeqExt::default();
        loop {
            let got =
                tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await;
            let Some(p) = weak.upgrade().filter(|p| !p.has_left()) else {
                return;
            };
            let n = match got {
                Ok(Ok((n, _from))) => n,
                Ok(Err(_)) | Err(_) => continue,
            };
            let data = buf.get(..n).unwrap_or_default();
            let Some(h) = parse_rtp(data).filter(|h| h.pt == pt) else {
                garbage.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let Some(payload) = data
                .get(h.payload_at..h.payload_end)
                .filter(|x| !x.is_empty())
            else {
                garbage.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let first = !p.is_setup();
            {
                let mut m = p.media();
                if m.params.listening || first {
                    m.jitter.push(seq.extend(h.seq), Arc::from(payload));
                }
            }
            if first {
                if let Some(s) = shared_weak.upgrade() {
                    s.media_up(&p);
                }
            }
        }
    }));
}
