//! What else a publisher's packets feed besides subscribers: RTP forwarders (plain UDP to a
//! host and port) and `.mjr` recorders. Both are read on the publisher's media worker and
//! never block it: forwarders send on a non-blocking socket (a full socket buffer drops the
//! packet), recorders queue to their own writer thread (a full queue drops and counts).

use jano_mjr::{RecorderHandle, RecorderWriter};
use jano_plugin::srtp::SrtpSender;
use jano_plugin::{DataMessage, RtpPacket};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// An RTP forwarder of one publisher stream (or one simulcast layer of it).
#[derive(Debug)]
pub struct Forwarder {
    pub stream_id: u32,
    /// The publisher m-line it forwards; `None` for the data channel.
    pub mindex: Option<usize>,
    pub kind: &'static str,
    pub host: String,
    pub addr: SocketAddr,
    pub ssrc: Option<u32>,
    pub pt: Option<u8>,
    /// Only this simulcast layer (`port_2`/`port_3` forwarders, or `substream`).
    pub substream: Option<u8>,
    pub socket: Arc<UdpSocket>,
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
    /// Set for the forwarders of a `publish_remotely`: its `remote_id`. Their data messages
    /// travel in an RTP envelope (payload type 1 = binary), as a remote publisher reads them.
    pub remote_id: Option<String>,
    pub envelope_seq: std::sync::atomic::AtomicU16,
    /// SRTP-protects what it sends (`srtp_suite`/`srtp_crypto`; never data).
    pub srtp: Option<std::sync::Mutex<SrtpSender>>,
}

impl Forwarder {
    fn wants(&self, p: &RtpPacket) -> bool {
        self.mindex == Some(p.mindex)
            && match (self.substream, p.substream) {
                (Some(want), Some(got)) => want == got,
                (Some(want), None) => want == 0,
                (None, _) => true,
            }
    }

    /// Sends an RTP packet, SRTP-protected when the forwarder is.
    fn send_rtp(&self, bytes: &[u8]) {
        match &self.srtp {
            None => self.send(bytes),
            Some(tx) => match tx.lock().unwrap_or_else(|e| e.into_inner()).protect(bytes) {
                Ok(out) => self.send(&out),
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
    }

    fn send(&self, bytes: &[u8]) {
        match self.socket.send_to(bytes, self.addr) {
            Ok(_) => {
                self.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A recorder of one publisher stream. Dropping the last clone finishes the file (a blocking
/// join of its writer thread): do that off the media and signalling paths.
#[derive(Debug, Clone)]
pub struct Recording {
    pub mindex: Option<usize>,
    pub handle: RecorderHandle,
    pub writer: Arc<std::sync::Mutex<Option<RecorderWriter>>>,
}

#[derive(Debug, Default)]
struct TapSet {
    forwarders: Vec<Arc<Forwarder>>,
    recorders: Vec<Recording>,
}

#[derive(Debug, Default)]
pub struct Taps {
    set: RwLock<TapSet>,
    any: AtomicBool,
}

/// Writes a packet as plain RTP (no header extensions) with an optional SSRC and payload type.
pub use jano_plugin::udp::serialize_rtp as serialize;

impl Taps {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, TapSet> {
        self.set.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, TapSet> {
        self.set.write().unwrap_or_else(|e| e.into_inner())
    }

    fn refresh(&self, s: &TapSet) {
        self.any.store(
            !s.forwarders.is_empty() || !s.recorders.is_empty(),
            Ordering::Release,
        );
    }

    pub fn add_forwarder(&self, f: Arc<Forwarder>) {
        let mut s = self.write();
        s.forwarders.push(f);
        self.refresh(&s);
    }

    /// Removes the forwarders of one `publish_remotely`; how many there were.
    pub fn remove_remote(&self, remote_id: &str) -> usize {
        let mut s = self.write();
        let before = s.forwarders.len();
        s.forwarders
            .retain(|f| f.remote_id.as_deref() != Some(remote_id));
        self.refresh(&s);
        before - s.forwarders.len()
    }

    pub fn remove_forwarder(&self, stream_id: u32) -> bool {
        let mut s = self.write();
        let before = s.forwarders.len();
        s.forwarders.retain(|f| f.stream_id != stream_id);
        self.refresh(&s);
        before != s.forwarders.len()
    }

    pub fn forwarders(&self) -> Vec<Arc<Forwarder>> {
        self.read().forwarders.clone()
    }

    pub fn add_recording(&self, r: Recording) {
        let mut s = self.write();
        s.recorders.push(r);
        self.refresh(&s);
    }

    /// Stops every recording (their writer threads close the files).
    pub fn take_recordings(&self) -> Vec<Recording> {
        let mut s = self.write();
        let out = std::mem::take(&mut s.recorders);
        self.refresh(&s);
        out
    }

    pub fn recordings(&self) -> Vec<Recording> {
        self.read().recorders.clone()
    }

    /// Forwarders go when the publisher stops publishing; so do recordings (returned, to be
    /// finished off the packet path).
    pub fn clear(&self) -> Vec<Recording> {
        let mut s = self.write();
        s.forwarders.clear();
        let out = std::mem::take(&mut s.recorders);
        self.refresh(&s);
        out
    }

    pub fn rtp(&self, p: &RtpPacket) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let s = self.read();
        let mut buf = Vec::with_capacity(12 + p.payload.len());
        for f in s.forwarders.iter().filter(|f| f.wants(p)) {
            serialize(p, f.ssrc, f.pt, &mut buf);
            f.send_rtp(&buf);
        }
        // Recordings keep one layer of a simulcast stream: the highest.
        let top = p.substream.is_none_or(|l| l == 2);
        for r in s.recorders.iter().filter(|r| r.mindex == Some(p.mindex)) {
            if top {
                serialize(p, None, None, &mut buf);
                let _ = r.handle.save_rtp(&buf);
            }
        }
    }

    pub fn data(&self, m: &DataMessage<'_>) {
        if !self.any.load(Ordering::Acquire) {
            return;
        }
        let s = self.read();
        for f in s.forwarders.iter().filter(|f| f.mindex.is_none()) {
            if f.remote_id.is_some() {
                let seq = f.envelope_seq.fetch_add(1, Ordering::Relaxed);
                let mut buf = Vec::with_capacity(12 + m.buffer.len());
                buf.extend_from_slice(&[0x80, u8::from(m.binary)]);
                buf.extend_from_slice(&seq.to_be_bytes());
                buf.extend_from_slice(&0u32.to_be_bytes());
                buf.extend_from_slice(&f.ssrc.unwrap_or(0).to_be_bytes());
                buf.extend_from_slice(m.buffer);
                f.send(&buf);
            } else {
                f.send(m.buffer);
            }
        }
        for r in s.recorders.iter().filter(|r| r.mindex.is_none()) {
            let _ = r.handle.save_data(m.buffer);
        }
    }
}
