//! One VideoCall handle: its registration and call (signalling side, [`CallState`]) and its
//! media path: what its peer sends goes out to it through the peer's streams
//! ([`Outgoing`]), one per m-line, built when both PeerConnections are negotiated. Simulcast
//! layer switches (the receiver's `substream`/`temporal`) happen on the sender's stream, on a
//! keyframe of the new layer, and the engine keeps the receiver's sequence numbers gapless.
//!
//! The `PluginSession` callbacks run on the handle's media worker; they take short locks only.

use crate::Shared;
use jano_plugin::layers::{LayerEvent, Link, StreamMedia};
use jano_plugin::record::MediaRecorder;
use jano_plugin::{
    DataMessage, HandleRef, MediaCtx, MediaKind, NegotiatedMedia, PluginSession, RtcpFeedback,
    RtpPacket,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};

/// What the receiver gets when no `bitrate` is set: Janus's "no cap".
pub const NO_CAP: u64 = 10_000_000;
/// A simulcast layer with no packet for this long is given up for a lower one (`fallback`).
pub const DEFAULT_FALLBACK_US: u64 = 250_000;

/// Where a call stands for one side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Placed a call; waiting for `accept`, or in it.
    Caller,
    /// Got an `incomingcall`; `accept` answers it.
    Callee,
}

/// The signalling state of a handle.
pub struct CallState {
    pub username: Option<String>,
    pub peer: Option<Arc<VcHandle>>,
    pub role: Option<Role>,
    /// The callee accepted: media flows both ways.
    pub accepted: bool,
    /// Codecs agreed for the call (Janus's names), from the callee's answer.
    pub acodec: Option<String>,
    pub vcodec: Option<String>,
    /// What this side receives of the peer's simulcast: the layer and temporal layer wanted,
    /// and how long a layer may be silent before a lower one is used.
    pub substream: u8,
    pub temporal: u8,
    pub fallback_us: u64,
    /// `bitrate`: the REMB cap on what this side sends (0 = none).
    pub bitrate: u64,
    pub e2ee: bool,
}

impl Default for CallState {
    fn default() -> Self {
        CallState {
            username: None,
            peer: None,
            role: None,
            accepted: false,
            acodec: None,
            vcodec: None,
            substream: 2,
            temporal: 2,
            fallback_us: DEFAULT_FALLBACK_US,
            bitrate: 0,
            e2ee: false,
        }
    }
}

/// One negotiated m-line of a handle's PeerConnection.
#[derive(Debug, Clone)]
pub struct Line {
    pub mindex: usize,
    pub mid: String,
    pub kind: Option<MediaKind>,
    /// The peer sends simulcast on it.
    pub simulcast: bool,
}

/// One stream this handle sends to its peer.
pub struct Outgoing {
    pub mindex: usize,
    pub kind: MediaKind,
    pub stream: StreamMedia,
    /// The peer's m-line it goes to.
    pub link: Arc<Link>,
}

pub struct VcHandle {
    pub href: HandleRef,
    pub shared: Arc<Shared>,
    pub me: Weak<VcHandle>,
    st: Mutex<CallState>,
    /// The m-lines as last negotiated.
    lines: Mutex<Vec<Line>>,
    /// This handle's streams to its peer (empty outside a call).
    out: RwLock<Vec<Arc<Outgoing>>>,
    /// `set` `audio`/`video`: whether what this side sends reaches the peer.
    pub audio_active: AtomicBool,
    pub video_active: AtomicBool,
    pub rec: MediaRecorder,
    pub peer_bitrate: AtomicU64,
    pub slowlinks: AtomicU64,
}

impl VcHandle {
    pub fn new(href: HandleRef, shared: Arc<Shared>) -> Arc<VcHandle> {
        Arc::new_cyclic(|me| VcHandle {
            href,
            shared,
            me: me.clone(),
            st: Mutex::new(CallState::default()),
            lines: Mutex::new(Vec::new()),
            out: RwLock::new(Vec::new()),
            audio_active: AtomicBool::new(true),
            video_active: AtomicBool::new(true),
            rec: MediaRecorder::default(),
            peer_bitrate: AtomicU64::new(0),
            slowlinks: AtomicU64::new(0),
        })
    }

    pub fn state(&self) -> MutexGuard<'_, CallState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lines(&self) -> MutexGuard<'_, Vec<Line>> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn outgoing(&self) -> Vec<Arc<Outgoing>> {
        self.out.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set_outgoing(&self, v: Vec<Arc<Outgoing>>) {
        *self.out.write().unwrap_or_else(|e| e.into_inner()) = v;
    }

    pub fn peer(&self) -> Option<Arc<VcHandle>> {
        self.state().peer.clone()
    }

    /// Builds this side's streams to `peer`: its k-th audio (video) m-line feeds the peer's
    /// k-th audio (video) m-line. Called whenever either side (re)negotiates.
    pub fn wire_to(&self, peer: &VcHandle) {
        let mine = self.lines().clone();
        let theirs = peer.lines().clone();
        let (substream, temporal, vcodec) = {
            let ps = peer.state();
            (ps.substream, ps.temporal, ps.vcodec.clone())
        };
        let router = self.shared.services.media_router();
        let mut out = Vec::new();
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let a = mine.iter().filter(|l| l.kind == Some(kind));
            let b = theirs.iter().filter(|l| l.kind == Some(kind));
            for (m, t) in a.zip(b) {
                let video = kind == MediaKind::Video;
                let stream =
                    StreamMedia::new(router.as_ref(), m.mindex, m.mid.clone(), video, m.simulcast);
                let codec = vcodec.clone().unwrap_or_else(|| "none".into());
                let event: LayerEvent = Arc::new(move |_mid, key, value| {
                    let mut m = jano_plugin::Map::new();
                    m.insert("videocall".into(), json!("event"));
                    m.insert(
                        "result".into(),
                        json!({"event": "simulcast", "videocodec": codec, key: value}),
                    );
                    m
                });
                let link = Arc::new(Link::new(peer.href.clone(), t.mindex, t.mid.clone(), event));
                if m.simulcast {
                    // The receiver starts on the layer it wants, at that layer's keyframe.
                    stream.switch_to(&link, usize::from(substream));
                    stream.set_temporal(&link, temporal);
                } else {
                    stream.attach(&link, 0);
                }
                out.push(Arc::new(Outgoing {
                    mindex: m.mindex,
                    kind,
                    stream,
                    link,
                }));
            }
        }
        self.set_outgoing(out);
        if router.is_some() {
            self.shared.services.send_pli(&self.href, None);
        }
    }

    /// Stops sending to the peer (call over).
    pub fn unwire(&self) {
        for o in self.outgoing() {
            o.stream.clear();
        }
        self.set_outgoing(Vec::new());
    }

    /// Back to the defaults after a PeerConnection is gone, as Janus does.
    pub fn reset_media(&self) {
        self.unwire();
        self.rec.stop(&*self.shared.services);
        self.audio_active.store(true, Ordering::Relaxed);
        self.video_active.store(true, Ordering::Relaxed);
        self.peer_bitrate.store(0, Ordering::Relaxed);
        self.lines().clear();
        let mut st = self.state();
        st.bitrate = 0;
        st.e2ee = false;
        st.acodec = None;
        st.vcodec = None;
        st.substream = 2;
        st.temporal = 2;
        st.fallback_us = DEFAULT_FALLBACK_US;
    }

    fn forward(&self, p: &RtpPacket) {
        let active = match p.kind {
            MediaKind::Audio => &self.audio_active,
            MediaKind::Video => &self.video_active,
        };
        if !active.load(Ordering::Relaxed) {
            return;
        }
        let out = self.out.read().unwrap_or_else(|e| e.into_inner());
        let Some(o) = out.iter().find(|o| o.mindex == p.mindex) else {
            return;
        };
        self.rec.rtp(&*self.shared.services, p);
        if self.shared.has_router {
            o.stream.forward(p, &*self.shared.services);
        } else {
            // No engine (tests): straight to the peer.
            let mut q = p.clone();
            q.mindex = o.link.mindex;
            self.shared.services.relay_rtp(&o.link.href, &q);
        }
    }
}

impl PluginSession for VcHandle {
    fn negotiated(&self, _ctx: &mut MediaCtx<'_>, media: &[NegotiatedMedia]) {
        *self.lines() = media
            .iter()
            .map(|m| Line {
                mindex: m.mindex,
                mid: m.mid.clone(),
                kind: m.kind,
                simulcast: m.recv && m.rids.len() > 1,
            })
            .collect();
        let peer = {
            let st = self.state();
            st.peer.clone().filter(|_| st.accepted)
        };
        if let Some(peer) = peer {
            self.wire_to(&peer);
            peer.wire_to(self);
        }
    }

    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        self.forward(packet);
    }

    fn incoming_rtcp(&self, ctx: &mut MediaCtx<'_>, feedback: &RtcpFeedback) {
        match *feedback {
            // A keyframe for what this side receives comes from the peer.
            RtcpFeedback::KeyframeRequest { .. } => {
                if let Some(peer) = self.peer() {
                    self.shared.services.send_pli(&peer.href, None);
                }
            }
            // This side's estimate of what it receives: Janus answers it with this side's
            // own cap, so `bitrate` keeps holding.
            RtcpFeedback::Bitrate { bitrate, .. } => {
                self.peer_bitrate.store(bitrate, Ordering::Relaxed);
                let cap = self.state().bitrate;
                ctx.send_remb(if cap > 0 { cap } else { NO_CAP });
            }
        }
    }

    fn incoming_data(&self, _ctx: &mut MediaCtx<'_>, message: &DataMessage<'_>) {
        if message.buffer.is_empty() {
            return;
        }
        let Some(peer) = self.peer() else { return };
        self.rec.data(&*self.shared.services, message.buffer);
        self.shared.services.relay_data(&peer.href, message);
    }

    fn slow_link(&self, ctx: &mut MediaCtx<'_>, _mindex: usize, video: bool, uplink: bool) {
        self.slowlinks.fetch_add(1, Ordering::Relaxed);
        // Only trouble on the way to this side is worth telling it (as Janus).
        if uplink {
            return;
        }
        let mut result =
            json!({"event": "slow_link", "media": if video { "video" } else { "audio" }});
        if video {
            result["current-bitrate"] = json!(self.state().bitrate);
        }
        let mut m = jano_plugin::Map::new();
        m.insert("videocall".into(), json!("event"));
        m.insert("result".into(), result);
        let _ = self.shared.services.push_event(ctx.handle(), None, m, None);
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        crate::call::media_gone(self);
    }
}
