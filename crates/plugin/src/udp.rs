//! Plain UDP out of a plugin (RTP forwarders, remote publishers, mixed audio): where to send,
//! a socket that never blocks, and an RTP packet written out as bytes.

use crate::RtpPacket;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::Ordering;

/// Why a forwarding target was refused (each plugin words it as Janus's does).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("invalid port ({0})")]
    Port(u64),
    #[error("cannot resolve '{0}'")]
    Host(String),
}

/// `host:port`, preferring an address of the family asked for (`host_family` `ipv6`).
pub fn resolve(host: &str, port: u64, v6: bool) -> Result<SocketAddr, TargetError> {
    let p = u16::try_from(port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or(TargetError::Port(port))?;
    let all: Vec<SocketAddr> = (host, p)
        .to_socket_addrs()
        .map_err(|_| TargetError::Host(host.to_owned()))?
        .collect();
    all.iter()
        .find(|a| a.is_ipv6() == v6)
        .or(all.first())
        .copied()
        .ok_or_else(|| TargetError::Host(host.to_owned()))
}

/// A non-blocking socket of `target`'s family on any local port: a full socket buffer drops
/// the datagram instead of stalling the thread that sends.
pub fn sender_socket(target: &SocketAddr) -> std::io::Result<UdpSocket> {
    let bind: SocketAddr = if target.is_ipv6() {
        SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, 0))
    } else {
        SocketAddr::from((std::net::Ipv4Addr::UNSPECIFIED, 0))
    };
    let s = UdpSocket::bind(bind)?;
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Writes `p` as an RTP packet (no extensions), with another SSRC or payload type if given.
pub fn serialize_rtp(p: &RtpPacket, ssrc: Option<u32>, pt: Option<u8>, out: &mut Vec<u8>) {
    out.clear();
    out.push(0x80);
    out.push(u8::from(p.marker) << 7 | (pt.unwrap_or(p.pt) & 0x7f));
    out.extend_from_slice(&(p.seq as u16).to_be_bytes());
    out.extend_from_slice(&p.timestamp.to_be_bytes());
    out.extend_from_slice(&ssrc.unwrap_or(p.ssrc).to_be_bytes());
    out.extend_from_slice(&p.payload);
}

/// The local address this host would send to `to` from: a UDP `connect` only looks the route
/// up, nothing is sent. `None` when there is no route.
pub fn route_ip(to: SocketAddr) -> Option<std::net::IpAddr> {
    let any: SocketAddr = if to.is_ipv6() {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(any).ok()?;
    s.connect(to).ok()?;
    s.local_addr()
        .ok()
        .map(|a| a.ip())
        .filter(|ip| !ip.is_unspecified())
}

/// `rtp_port_range`: where a plugin's sockets (Streaming's `port = 0` streams, AudioBridge's
/// plain-RTP participants) take their ports, in turn.
#[derive(Debug)]
pub struct PortRange {
    lo: u16,
    hi: u16,
    next: std::sync::atomic::AtomicU32,
}

impl PortRange {
    /// From `min-max` (Janus's format; default 10000-60000, the bounds swapped if reversed).
    pub fn parse(text: Option<&str>) -> PortRange {
        let (mut lo, mut hi) = text
            .and_then(|t| t.split_once('-'))
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .unwrap_or((10000u16, 60000u16));
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        PortRange {
            lo: lo.max(1),
            hi: hi.max(1),
            next: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Binds the next free port of the range on `ip`.
    /// An even RTP port and the RTCP one above it (RFC 3550's convention), taken in turn as
    /// [`PortRange::bind`] takes single ports.
    pub fn bind_pair(&self, ip: IpAddr) -> std::io::Result<(UdpSocket, UdpSocket)> {
        let first = u32::from(self.lo) + u32::from(self.lo) % 2;
        let pairs = (u32::from(self.hi) + 1).saturating_sub(first) / 2;
        let mut last = None;
        for _ in 0..pairs {
            let off = self.next.fetch_add(1, Ordering::Relaxed) % pairs;
            let Ok(port) = u16::try_from(first + 2 * off) else {
                continue;
            };
            let pair = UdpSocket::bind(SocketAddr::new(ip, port)).and_then(|rtp| {
                let rtcp = UdpSocket::bind(SocketAddr::new(ip, port.wrapping_add(1)))?;
                Ok((rtp, rtcp))
            });
            match pair {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no port pair in the range")))
    }

    /// An even port (an RTP port whose RTCP neighbour is left free), taken in turn.
    pub fn bind_even(&self, ip: IpAddr) -> std::io::Result<UdpSocket> {
        let first = u32::from(self.lo) + u32::from(self.lo) % 2;
        let ports = (u32::from(self.hi) + 1).saturating_sub(first).div_ceil(2);
        let mut last = None;
        for _ in 0..ports {
            let off = self.next.fetch_add(1, Ordering::Relaxed) % ports.max(1);
            let Ok(port) = u16::try_from(first + 2 * off) else {
                continue;
            };
            match UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("no even port in the range")))
    }

    pub fn bind(&self, ip: IpAddr) -> std::io::Result<UdpSocket> {
        let span = u32::from(self.hi - self.lo) + 1;
        let mut last = None;
        for _ in 0..span {
            let off = self.next.fetch_add(1, Ordering::Relaxed) % span;
            let port = self.lo.saturating_add(off as u16);
            match UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("empty port range")))
    }
}
