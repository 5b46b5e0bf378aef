//! The core's side of the media engine: what it asks of a handle's PeerConnection
//! ([`MediaCommand`], emitted as [`crate::Output::Media`]) and what the engine reports back
//! ([`MediaEvent`], fed to [`crate::Gateway::handle_media_event`]). The engine itself lives in
//! `jano-media`; the core only decides *when* (negotiation order, trickle queueing, hang-ups) and
//! turns the engine's reports into Janus events.

use jano_plugin::{
    DataMessage, HandleRef, LocalJsep, MediaKind, MediaRouter, RtpPacket, SessionRef, Value,
};
use std::sync::Arc;

/// What the core asks of the media engine.
#[derive(Clone)]
pub enum MediaCommand {
    /// Produce the local SDP for a plugin's JSEP, creating the PeerConnection if there is none.
    /// The engine answers with [`MediaEvent::Negotiated`] carrying the event back.
    Negotiate(Box<Negotiation>),
    /// The client's answer to our offer.
    RemoteAnswer { handle_id: u64, sdp: RemoteSdp },
    /// Trickled candidates (each a Janus candidate object, or end-of-candidates).
    Trickle {
        handle_id: u64,
        candidates: Vec<Value>,
    },
    /// Tear the PeerConnection down; `notify` = send the `hangup` event.
    Hangup {
        session_id: u64,
        handle_id: u64,
        reason: &'static str,
        notify: bool,
    },
    /// An Admin API setter that running PeerConnections must take at once.
    Settings(MediaSetting),
}

/// Engine settings the Admin API can change while PeerConnections run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaSetting {
    /// Seconds without media before `media` says `receiving: false` (0 = never).
    NoMediaTimer(u64),
    /// Lost packets per second that trigger `slowlink` (0 = never).
    SlowlinkThreshold(u64),
    /// Milliseconds of sent packets kept for retransmission on NACK.
    MinNackQueue(u64),
}

impl std::fmt::Debug for MediaCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MediaCommand::Negotiate(n) => f
                .debug_struct("Negotiate")
                .field("handle", &n.handle.handle_id)
                .field("jsep", &n.jsep)
                .finish(),
            MediaCommand::RemoteAnswer { handle_id, .. } => f
                .debug_struct("RemoteAnswer")
                .field("handle", handle_id)
                .finish(),
            MediaCommand::Trickle {
                handle_id,
                candidates,
            } => f
                .debug_struct("Trickle")
                .field("handle", handle_id)
                .field("candidates", &candidates.len())
                .finish(),
            MediaCommand::Hangup {
                handle_id, reason, ..
            } => f
                .debug_struct("Hangup")
                .field("handle", handle_id)
                .field("reason", reason)
                .finish(),
            MediaCommand::Settings(s) => f.debug_tuple("Settings").field(s).finish(),
        }
    }
}

impl PartialEq for MediaCommand {
    fn eq(&self, other: &Self) -> bool {
        format!("{self:?}") == format!("{other:?}")
    }
}

/// What [`MediaCommand::Negotiate`] carries.
#[derive(Clone)]
pub struct Negotiation {
    pub handle: HandleRef,
    /// The plugin's state for the handle: the engine calls its media callbacks.
    pub session: SessionRef,
    /// The client's offer this answers (`None` for a plugin offer).
    pub remote_offer: Option<RemoteSdp>,
    pub jsep: LocalJsep,
    /// Candidates that arrived before the PeerConnection existed.
    pub candidates: Vec<Value>,
    /// The plugin event to send once the SDP is ready (without `jsep`).
    pub event: Value,
}

/// An SDP the client sent.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSdp {
    pub sdp: String,
    /// `false`: the client put all its candidates in the SDP and will not trickle.
    pub trickle: bool,
}

/// What the media engine reports about a handle's PeerConnection.
#[derive(Debug, Clone, PartialEq)]
pub enum MediaEvent {
    /// The local SDP for a [`MediaCommand::Negotiate`] is ready (or negotiation failed).
    Negotiated {
        session_id: u64,
        handle_id: u64,
        result: Result<LocalSdp, String>,
        event: Value,
    },
    /// ICE and DTLS are up.
    WebrtcUp { session_id: u64, handle_id: u64 },
    /// Media started or stopped arriving on an m-line.
    Media {
        session_id: u64,
        handle_id: u64,
        mid: String,
        kind: MediaKind,
        substream: Option<u8>,
        receiving: bool,
        /// Seconds without media, on `receiving: false`.
        seconds: Option<u64>,
    },
    /// Losses crossed `slowlink_threshold`.
    SlowLink {
        session_id: u64,
        handle_id: u64,
        mid: String,
        kind: MediaKind,
        uplink: bool,
        lost: u64,
    },
    /// A server candidate, for `full_trickle`: the `candidate` object of a `trickle` event
    /// (`{"sdpMid","sdpMLineIndex","candidate"}` or `{"completed":true}`).
    LocalCandidate {
        session_id: u64,
        handle_id: u64,
        candidate: Value,
    },
    /// ICE failed after having worked.
    IceFailed { session_id: u64, handle_id: u64 },
    /// The PeerConnection is gone (freed); `notify` = tell the client.
    Hangup {
        session_id: u64,
        handle_id: u64,
        reason: String,
        notify: bool,
    },
}

/// A local SDP ready to go to the client.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalSdp {
    /// `offer` or `answer`.
    pub kind: &'static str,
    pub sdp: String,
}

/// The media engine as the core and the plugins' services see it. Everything here must return
/// at once: commands are queued to the engine's workers.
pub trait MediaBackend: Send + Sync {
    /// Checks a client SDP before anything else happens with it; the text becomes the reason
    /// of a 465.
    fn check_sdp(&self, offer: bool, sdp: &str) -> Result<(), String>;
    /// Queues a command for the handle's PeerConnection.
    fn command(&self, cmd: MediaCommand);
    /// The `webrtc` part of the Admin API's `handle_info`, if the handle has a PeerConnection.
    fn handle_info(&self, handle_id: u64) -> Option<Value>;
    /// Media from a plugin to the handle's peer.
    fn relay_rtp(&self, handle_id: u64, packet: &RtpPacket);
    fn relay_data(&self, handle_id: u64, message: &DataMessage<'_>);
    /// A data-channel message whose buffer is shared with other handles.
    fn relay_shared_data(&self, handle_id: u64, message: &jano_plugin::SharedData) {
        self.relay_data(handle_id, &message.as_message());
    }
    fn send_pli(&self, handle_id: u64, mindex: Option<usize>);
    fn send_remb(&self, handle_id: u64, bitrate: u64);
    /// The fan-out side of the engine, for plugins' [`jano_plugin::Fanout`]s.
    fn router(&self) -> Option<Arc<dyn MediaRouter>> {
        None
    }
}
