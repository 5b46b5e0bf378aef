//! Addresses and sockets: which local addresses become ICE candidates, the `rtp_port_range`
//! pool, and the single-port demultiplexer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;

/// Janus's `interface`, `ice_enforce_list` and `ice_ignore_list`: each entry is an interface
/// name or an address prefix (`10.0.0.` or `10.0.0.1`).
#[derive(Debug, Clone, Default)]
pub struct IpFilter {
    pub enforce: Vec<String>,
    pub ignore: Vec<String>,
    pub ipv6: bool,
}

fn matches(entry: &str, name: &str, ip: &IpAddr) -> bool {
    let entry = entry.trim();
    !entry.is_empty() && (name == entry || ip.to_string().starts_with(entry))
}

impl IpFilter {
    /// Whether an interface address may carry media.
    pub fn allows(&self, name: &str, ip: &IpAddr) -> bool {
        if ip.is_unspecified() || ip.is_multicast() {
            return false;
        }
        // Loopback carries no real peer, so it is only used when named explicitly (tests, or a
        // peer on the same host).
        if ip.is_loopback() && !self.enforce.iter().any(|e| matches(e, name, ip)) {
            return false;
        }
        if let IpAddr::V6(v6) = ip {
            // Link-local IPv6 needs a scope id ICE candidates cannot carry.
            if !self.ipv6 || (v6.segments()[0] & 0xffc0) == 0xfe80 {
                return false;
            }
        }
        if self.ignore.iter().any(|e| matches(e, name, ip)) {
            return false;
        }
        self.enforce.is_empty() || self.enforce.iter().any(|e| matches(e, name, ip))
    }
}

/// The machine's addresses that pass `filter`, in interface order.
pub fn candidate_ips(filter: &IpFilter) -> Vec<IpAddr> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in ifaces {
        let ip = i.ip();
        if filter.allows(&i.name, &ip) && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Hands out ports from `rtp_port_range`, round robin, so a port just freed is not reused at
/// once (late packets of the old PeerConnection would reach the new one).
pub(crate) struct PortPool {
    range: Option<(u16, u16)>,
    next: AtomicU32,
}

impl PortPool {
    pub fn new(range: Option<(u16, u16)>) -> Self {
        PortPool {
            range: range.map(|(a, b)| (a.min(b), a.max(b))),
            next: AtomicU32::new(0),
        }
    }

    /// Binds one socket per address on one port (from the range, or any). The sockets are
    /// non-blocking.
    pub fn bind(&self, ips: &[IpAddr]) -> std::io::Result<Vec<UdpSocket>> {
        let Some((lo, hi)) = self.range else {
            // Any port: bind the first address to port 0, the rest to the same port if free.
            let mut out: Vec<UdpSocket> = Vec::new();
            let mut port = 0;
            for ip in ips {
                let s = match UdpSocket::bind(SocketAddr::new(*ip, port)) {
                    Ok(s) => s,
                    Err(_) if port != 0 => UdpSocket::bind(SocketAddr::new(*ip, 0))?,
                    Err(e) => return Err(e),
                };
                port = s.local_addr()?.port();
                s.set_nonblocking(true)?;
                out.push(s);
            }
            return Ok(out);
        };
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = lo + (self.next.fetch_add(1, Ordering::Relaxed) % span) as u16;
            let mut out = Vec::new();
            for ip in ips {
                match UdpSocket::bind(SocketAddr::new(*ip, port)) {
                    Ok(s) => out.push(s),
                    Err(_) => break,
                }
            }
            if out.len() == ips.len() {
                for s in &out {
                    s.set_nonblocking(true)?;
                }
                return Ok(out);
            }
        }
        Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            "no free port left in rtp_port_range",
        ))
    }
}

/// A datagram with where it came from and which local address received it.
pub(crate) struct Datagram {
    pub at: Instant,
    pub source: SocketAddr,
    pub destination: SocketAddr,
    pub data: Vec<u8>,
}

/// One UDP port shared by every PeerConnection: a socket per address, and the routing tables
/// from ICE username fragment and from remote address to handle.
pub(crate) struct SinglePort {
    sockets: Vec<Arc<UdpSocket>>,
    by_ufrag: RwLock<HashMap<String, u64>>,
    by_addr: RwLock<HashMap<SocketAddr, u64>>,
}

impl SinglePort {
    pub fn bind(ips: &[IpAddr], port: u16) -> std::io::Result<SinglePort> {
        let mut sockets = Vec::new();
        for ip in ips {
            let s = UdpSocket::bind(SocketAddr::new(*ip, port))?;
            s.set_nonblocking(true)?;
            sockets.push(Arc::new(s));
        }
        Ok(SinglePort {
            sockets,
            by_ufrag: RwLock::new(HashMap::new()),
            by_addr: RwLock::new(HashMap::new()),
        })
    }

    pub fn sockets(&self) -> Vec<Arc<UdpSocket>> {
        self.sockets.clone()
    }

    pub fn register(&self, ufrag: &str, handle_id: u64) {
        self.by_ufrag
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(ufrag.to_owned(), handle_id);
    }

    /// Forgets every route to `handle_id`.
    pub fn unregister(&self, handle_id: u64) {
        self.by_ufrag
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, h| *h != handle_id);
        self.by_addr
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|_, h| *h != handle_id);
    }

    /// Which handle a datagram is for: a STUN binding request names our ufrag (and teaches us
    /// the sender's address); anything else goes by address.
    pub fn route(&self, source: SocketAddr, data: &[u8]) -> Option<u64> {
        if let Some(ufrag) = stun_local_ufrag(data) {
            let h = self
                .by_ufrag
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(ufrag)
                .copied()?;
            let known = self
                .by_addr
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(&source)
                .copied();
            if known != Some(h) {
                self.by_addr
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(source, h);
            }
            return Some(h);
        }
        self.by_addr
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&source)
            .copied()
    }
}

/// The local part (before `:`) of the USERNAME of a STUN binding request, if `data` is one.
pub(crate) fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    // STUN header: type (2), length (2), magic cookie (4), transaction id (12).
    let header = data.get(..20)?;
    if header[0] & 0xC0 != 0 || header[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        return None;
    }
    let msg_type = u16::from_be_bytes([header[0], header[1]]);
    if msg_type != 0x0001 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let body = data.get(20..20 + len)?;
    let mut at = 0;
    while at + 4 <= body.len() {
        let t = u16::from_be_bytes([body[at], body[at + 1]]);
        let l = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + l)?;
        if t == 0x0006 {
            let user = std::str::from_utf8(value).ok()?;
            return user.split(':').next();
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(user: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(user.len() as u16).to_be_bytes());
        attr.extend_from_slice(user.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn ufrag_from_binding_request() {
        assert_eq!(stun_local_ufrag(&binding("abcd:wxyz")), Some("abcd"));
        assert_eq!(stun_local_ufrag(&binding("abc:w")), Some("abc"));
    }

    #[test]
    fn garbage_is_not_stun() {
        assert_eq!(stun_local_ufrag(&[]), None);
        assert_eq!(stun_local_ufrag(&[0x80; 40]), None);
        let mut b = binding("abcd:wxyz");
        b.truncate(26);
        assert_eq!(stun_local_ufrag(&b), None);
        let mut b = binding("abcd:wxyz");
        b[3] = 200; // length beyond the datagram
        assert_eq!(stun_local_ufrag(&b), None);
    }

    #[test]
    fn filters() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let f = IpFilter::default();
        assert!(f.allows("eth0", &ip));
        assert!(!f.allows("lo", &"127.0.0.1".parse().unwrap()));
        let only_lo = IpFilter {
            enforce: vec!["127.0.0.1".into()],
            ..Default::default()
        };
        assert!(only_lo.allows("lo", &"127.0.0.1".parse().unwrap()));
        assert!(!only_lo.allows("eth0", &ip));
        let f = IpFilter {
            enforce: vec!["10.1.".into()],
            ..Default::default()
        };
        assert!(f.allows("eth0", &ip));
        assert!(!f.allows("eth0", &"192.168.0.1".parse().unwrap()));
        let f = IpFilter {
            ignore: vec!["eth0".into()],
            ..Default::default()
        };
        assert!(!f.allows("eth0", &ip));
        assert!(f.allows("eth1", &ip));
    }
}
