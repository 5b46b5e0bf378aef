//! Per-handle plugin state and the callbacks that run on the media path.
//!
//! A plugin creates one [`PluginSession`] per handle at attach time
//! ([`crate::Plugin::create_session`]). The gateway keeps it with the handle and gives it to
//! every signalling callback; the media engine keeps it with the handle's PeerConnection and
//! calls its media callbacks directly, so the packet path never looks a handle up in a map or
//! takes a lock of the plugin's to find its state. It is dropped when the handle is detached
//! and the PeerConnection (if any) is gone.
//!
//! ## Which thread runs what
//! - **Media worker** (the handle's PeerConnection task): every method of [`PluginSession`].
//!   They must not block, allocate without bound or wait on a lock held across IO: one slow
//!   callback delays every PeerConnection of that worker. Blocking work (opening a file) goes
//!   to [`crate::CoreServices::spawn_blocking`]; timers and tasks to
//!   [`crate::CoreServices::spawn`].
//! - **Signalling path** (a transport's task, never under the gateway lock): the [`crate::Plugin`]
//!   methods (`handle_message`, `create_session`, `destroy_session`, `query_session`, admin).
//!   They may take a plugin's own locks, but must not block either.

use crate::{DataMessage, HandleRef, MediaKind, RtcpFeedback, RtpPacket};
use std::any::Any;
use std::sync::Arc;

/// A plugin's state for one handle. See the module docs for the threading rules.
pub trait PluginSession: Any + Send + Sync {
    /// The PeerConnection is up (same moment as `webrtcup`).
    fn setup_media(&self, _ctx: &mut MediaCtx<'_>) {}
    /// A negotiation completed: what was agreed per m-line (codecs and payload types,
    /// extension ids, mids, directions). Called after every (re)negotiation.
    fn negotiated(&self, _ctx: &mut MediaCtx<'_>, _media: &[NegotiatedMedia]) {}
    /// RTP from the peer.
    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, _packet: &RtpPacket) {}
    /// RTCP feedback from the peer about what we send it.
    fn incoming_rtcp(&self, _ctx: &mut MediaCtx<'_>, _feedback: &RtcpFeedback) {}
    fn incoming_data(&self, _ctx: &mut MediaCtx<'_>, _message: &DataMessage<'_>) {}
    /// The data channel can take more data.
    fn data_ready(&self, _ctx: &mut MediaCtx<'_>) {}
    /// Packet loss crossed `slowlink_threshold` in one direction.
    fn slow_link(&self, _ctx: &mut MediaCtx<'_>, _mindex: usize, _video: bool, _uplink: bool) {}
    /// The PeerConnection was torn down (not called when the handle itself is going away).
    fn hangup_media(&self, _handle: &HandleRef) {}
}

/// A shared reference to a handle's plugin state.
pub type SessionRef = Arc<dyn PluginSession>;

/// The plugin's own type behind a [`SessionRef`] (a type id comparison, no lookup).
pub fn session_as<T: PluginSession>(session: &SessionRef) -> Option<&T> {
    let any: &dyn Any = &**session;
    any.downcast_ref::<T>()
}

/// The same, as an owned `Arc` (for keeping a handle's state in a room, a fan-out set…).
pub fn session_arc<T: PluginSession>(session: &SessionRef) -> Option<Arc<T>> {
    let any: Arc<dyn Any + Send + Sync> = session.clone();
    any.downcast::<T>().ok()
}

/// One negotiated codec of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedCodec {
    /// Lowercase as Janus names them (`opus`, `vp8`, `h264`…).
    pub name: &'static str,
    pub pt: u8,
    pub clock_rate: u32,
    /// The retransmission payload type, if RTX was agreed for it.
    pub rtx: Option<u8>,
    /// The codec's format parameters as written in the SDP (`a=fmtp`), e.g. H.264's
    /// `profile-level-id`.
    pub fmtp: String,
}

/// What was agreed for one m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiatedMedia {
    pub mindex: usize,
    pub mid: String,
    /// `None` for the data channel's m-line.
    pub kind: Option<MediaKind>,
    /// We send on it / we receive on it.
    pub send: bool,
    pub recv: bool,
    /// In the peer's order of preference.
    pub codecs: Vec<NegotiatedCodec>,
    /// Header extensions: (id, URI).
    pub extensions: Vec<(u8, String)>,
    /// Simulcast layers the peer sends (by `rid`), highest first as offered.
    pub rids: Vec<String>,
}

/// What a media callback asked of its own handle's PeerConnection; the engine applies it
/// right after the callback returns, on the same thread, without a queue.
#[derive(Debug, Default)]
pub struct Outbox {
    pub rtp: Vec<RtpPacket>,
    pub data: Vec<OutData>,
    pub keyframe: Vec<Option<usize>>,
    pub remb: Option<u64>,
}

impl Outbox {
    pub fn is_empty(&self) -> bool {
        self.rtp.is_empty()
            && self.data.is_empty()
            && self.keyframe.is_empty()
            && self.remb.is_none()
    }
}

/// A data-channel message to send.
#[derive(Debug, Clone)]
pub struct OutData {
    pub label: Option<String>,
    pub binary: bool,
    pub data: Vec<u8>,
}

/// What a media callback can do with its own handle's PeerConnection.
pub struct MediaCtx<'a> {
    handle: &'a HandleRef,
    out: &'a mut Outbox,
}

impl<'a> MediaCtx<'a> {
    pub fn new(handle: &'a HandleRef, out: &'a mut Outbox) -> Self {
        MediaCtx { handle, out }
    }

    pub fn handle(&self) -> &HandleRef {
        self.handle
    }

    /// Sends RTP to this handle's peer (on `packet.mindex`, or the first m-line of its kind).
    pub fn send_rtp(&mut self, packet: RtpPacket) {
        self.out.rtp.push(packet);
    }

    /// Sends a data-channel message to this handle's peer.
    pub fn send_data(&mut self, message: &DataMessage<'_>) {
        self.out.data.push(OutData {
            label: message.label.map(str::to_owned),
            binary: message.binary,
            data: message.buffer.to_vec(),
        });
    }

    /// Asks this handle's peer for a keyframe (every video m-line, or one).
    pub fn request_keyframe(&mut self, mindex: Option<usize>) {
        self.out.keyframe.push(mindex);
    }

    /// Caps what this handle's peer sends us (REMB); 0 = no cap.
    pub fn send_remb(&mut self, bitrate: u64) {
        self.out.remb = Some(bitrate);
    }
}

/// A handle state with nothing in it, for plugins (and tests) that keep none or keep it
/// elsewhere.
#[derive(Debug, Default)]
pub struct NoState;

impl PluginSession for NoState {}
