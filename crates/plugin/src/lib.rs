//! The plugin contract, shaped like Janus's plugin API so that every Janus plugin can be written
//! against it.
//!
//! The gateway calls a [`Plugin`] (attach, messages, media from the handle's PeerConnection,
//! hang-ups, detach); a plugin calls back through [`CoreServices`] (events to the client, media to
//! a handle's PeerConnection, closing a PeerConnection, ending a handle).
//!
//! Each handle has its own plugin state, a [`PluginSession`] made at attach time: the gateway
//! hands it to every signalling call for that handle and the media engine calls its media
//! callbacks directly on the handle's media worker (see [`session`] for which thread runs what).
//! Fan-out to many handles goes through a [`Fanout`] (see [`fanout`]); shared RTP mechanics for
//! forwarding plugins are in [`rtp`].
//!
//! Two rules keep this free of the deadlocks Janus plugins are known for:
//! - `Plugin` methods must not block: work that takes time goes to the plugin's own task and is
//!   reported later with [`CoreServices::push_event`] (an `ack` now, an `event` later).
//! - `CoreServices` never calls back into the plugin synchronously: everything it receives is
//!   queued and applied by the gateway after the current call returns. A plugin may therefore call
//!   it from anywhere, including from inside `handle_message`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

pub mod audio_file;
pub mod clock;
pub mod dd;
pub mod fanout;
pub mod fields;
pub mod g711;
pub mod ids;
pub mod layers;
pub mod persist;
pub mod record;
pub mod rooms;
pub mod rtp;
pub mod sdp;
pub mod session;
pub mod srtp;
pub mod talk;
pub mod testing;
pub mod udp;

pub use fanout::{Dest, Fanout, KeyframeThrottle, MediaRouter, Playout};
pub use jano_api::{Map, Value};
pub use jano_config::Jcfg;
pub use session::{
    session_arc, session_as, MediaCtx, NegotiatedCodec, NegotiatedMedia, NoState, OutData, Outbox,
    PluginSession, SessionRef,
};

/// Identifies one attachment of a client to a plugin. Cheap to clone; plugins key their
/// per-handle state by `handle_id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandleRef {
    pub session_id: u64,
    pub handle_id: u64,
    pub opaque_id: Option<Arc<str>>,
    /// The token used at attach time, if any (plugins may use it for their own checks).
    pub token: Option<Arc<str>>,
}

/// What `info` reports about a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// Unique package name, e.g. `janus.plugin.echotest`.
    pub package: &'static str,
    pub name: &'static str,
    pub author: &'static str,
    pub description: &'static str,
    pub version: i64,
    pub version_string: &'static str,
}

/// How a plugin answered a `message`.
#[derive(Debug, Clone, PartialEq)]
pub enum PluginResult {
    /// Synchronous answer: the object becomes `plugindata.data` of a `success` response.
    Ok(Map<String, Value>),
    /// Accepted; the answer follows as an `event` carrying the same transaction. The optional
    /// text is sent as the `ack`'s `hint`.
    OkWait(Option<String>),
    /// A severe failure reported as Janus error 462 with this text (plugins normally report
    /// their own errors inside `Ok` data instead).
    Error(String),
}

/// A JSEP as the gateway hands it to a plugin (ICE/DTLS details already taken care of).
#[derive(Debug, Clone, PartialEq)]
pub struct Jsep {
    /// `offer` or `answer`.
    pub kind: JsepType,
    pub sdp: String,
    /// Everything else the client or core attached (`simulcast`, `svc`, `update`, `e2ee`…).
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsepType {
    Offer,
    Answer,
}

impl JsepType {
    pub fn as_str(self) -> &'static str {
        match self {
            JsepType::Offer => "offer",
            JsepType::Answer => "answer",
        }
    }
}

/// Which kind of media an m-line carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
        }
    }
}

/// Header extension values the media engine parsed (or is to write) for one RTP packet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtpExtensions {
    /// `ssrc-audio-level`: level in -dBov (0..127) and the voice-activity flag.
    pub audio_level: Option<i8>,
    pub voice_activity: Option<bool>,
    /// `urn:3gpp:video-orientation` (CVO) bits.
    pub video_orientation: Option<u8>,
    /// Playout delay (`playout-delay` extension), in 10 ms units, to ask of the receiver.
    pub min_delay: Option<u16>,
    pub max_delay: Option<u16>,
    /// The AV1 dependency descriptor ([`dd::DD_URI`]), relayed as it came.
    pub dd: Option<Arc<[u8]>>,
}

/// An RTP packet from or to a handle's PeerConnection, already decrypted and parsed by the
/// media engine. The payload is shared, so relaying to many handles never copies it.
#[derive(Debug, Clone)]
pub struct RtpPacket {
    /// The m-line index the packet belongs to (`mid` resolved by the engine).
    pub mindex: usize,
    pub kind: MediaKind,
    pub pt: u8,
    /// The negotiated codec of `pt`, lowercase as Janus names them (`opus`, `vp8`, `h264`…).
    pub codec: &'static str,
    /// Extended sequence number (never wraps).
    pub seq: u64,
    pub timestamp: u32,
    pub marker: bool,
    pub ssrc: u32,
    /// The simulcast layer (`0` = the only or highest one as offered, by `rid` order).
    pub substream: Option<u8>,
    pub ext: RtpExtensions,
    pub payload: Arc<[u8]>,
    /// The SVC layers of the packet's frame, when the engine read them on the way in (VP9
    /// descriptors, AV1 dependency descriptors); see [`RtpPacket::layers`].
    pub svc: Option<rtp::SvcLayers>,
}

impl RtpPacket {
    /// The packet's SVC layers: as read on the way in, else from a VP9 payload descriptor
    /// (packets a plugin made itself).
    pub fn layers(&self) -> Option<rtp::SvcLayers> {
        match self.svc {
            Some(l) => Some(l),
            None if self.codec == "vp9" => rtp::vp9_layers(&self.payload),
            None => None,
        }
    }
}

/// RTCP feedback the engine surfaces to plugins (the engine itself answers NACKs, sends and
/// reads reports, and generates transport-wide feedback).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpFeedback {
    /// The peer asks for a keyframe on this m-line (PLI, or FIR when `fir`): a plugin forwards
    /// it to the publisher of what it sends there, throttled ([`KeyframeThrottle`]).
    KeyframeRequest { mindex: usize, fir: bool },
    /// The peer's receiver estimate (REMB) for what we send on this m-line, in bits per
    /// second: what a plugin may cap a publisher with or pick a simulcast layer by.
    Bitrate { mindex: usize, bitrate: u64 },
}

/// What a plugin asks of the PeerConnection when it pushes a JSEP; the engine writes the SDP
/// (codecs, ICE, DTLS, BUNDLE) from it, as Janus's core merges its parts into a plugin's SDP.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPrefs {
    /// Preferred codec names (`opus`, `pcmu`, `vp8`, `h264`…); `None` = any the engine has.
    pub audio_codec: Option<String>,
    pub video_codec: Option<String>,
    /// VP9 profile (`0`/`2`) or H.264 `profile-level-id`.
    pub video_profile: Option<String>,
    /// Negotiate RED for Opus.
    pub opus_red: bool,
    /// Opus in stereo (`stereo=1; sprop-stereo=1`): what is sent is a stereo mix
    /// (AudioBridge's `spatial_audio` rooms).
    pub opus_stereo: bool,
    /// Answer that we only receive (a VideoRoom publisher): `sendrecv` m-lines are answered
    /// `recvonly`, `sendonly` ones `inactive`.
    pub recv_only: bool,
    /// The media is end-to-end encrypted by the clients (insertable streams): the core marks
    /// the handle and tells the client (`"e2ee": true` in the JSEP) so it decrypts what it
    /// gets; payloads stay opaque to plugins.
    pub e2ee: bool,
    /// Header extensions left out of what the engine offers or answers (a VideoRoom room's
    /// `audiolevel_ext: false`, say).
    pub without_extensions: Extensions,
}

/// A set of the header extensions a plugin can switch off, as Janus's rooms can.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Extensions(u8);

impl Extensions {
    pub const AUDIO_LEVEL: Extensions = Extensions(1);
    pub const VIDEO_ORIENTATION: Extensions = Extensions(2);
    pub const PLAYOUT_DELAY: Extensions = Extensions(4);
    pub const TRANSPORT_WIDE_CC: Extensions = Extensions(8);

    const URIS: [(u8, &'static str); 4] = [
        (1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
        (2, "urn:3gpp:video-orientation"),
        (
            4,
            "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay",
        ),
        (
            8,
            "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
        ),
    ];

    /// This set with `other` added when `on`.
    pub fn with(self, other: Extensions, on: bool) -> Extensions {
        if on {
            Extensions(self.0 | other.0)
        } else {
            self
        }
    }

    /// The URIs (`a=extmap`) of the set.
    pub fn uris(self) -> Vec<&'static str> {
        Self::URIS
            .iter()
            .filter(|(bit, _)| self.0 & bit != 0)
            .map(|(_, uri)| *uri)
            .collect()
    }
}

/// One m-line of a plugin's offer.
///
/// An offer lists every m-line the plugin wants, in order. On a renegotiation an entry keeps the
/// existing m-line it names by `mid`; an entry without a `mid` takes, in order, an existing
/// active m-line of its kind that no entry names, else recycles an inactive one of its kind,
/// else adds one; existing m-lines no entry took become inactive (VideoRoom's `update` rules).
#[derive(Debug, Clone, PartialEq)]
pub struct OfferMedia {
    pub kind: MediaKind,
    /// `true`: the plugin sends on it; receiving is `recv`.
    pub send: bool,
    pub recv: bool,
    /// The existing m-line this entry is (from an earlier offer's [`OfferFill`] or
    /// [`NegotiatedMedia::mid`]).
    pub mid: Option<String>,
    /// `a=msid` stream and track ids for a new m-line (random when absent).
    pub stream_id: Option<String>,
    pub track_id: Option<String>,
    /// Offer only this codec on the m-line (Janus's name: `vp8`, `h264`…), e.g. the codec the
    /// publisher behind it sends; `None` = every codec the PeerConnection has.
    pub codec: Option<String>,
    /// With `codec`: only this profile (H.264 `profile-level-id` prefix, VP9 `profile-id`).
    pub profile: Option<String>,
    /// Offer only these header extensions (URIs); `None` = all.
    pub extensions: Option<Vec<String>>,
    /// Send simulcast on a new m-line with these `rid`s, highest first as received (`h`, `m`,
    /// `l`): a packet with `substream` 2/1/0 goes out on the `h`/`m`/`l` stream. Without it an
    /// m-line carries one stream, whatever layer a packet came from.
    pub simulcast: Option<Vec<String>>,
}

impl OfferMedia {
    pub fn new(kind: MediaKind, send: bool, recv: bool) -> OfferMedia {
        OfferMedia {
            kind,
            send,
            recv,
            mid: None,
            stream_id: None,
            track_id: None,
            codec: None,
            profile: None,
            extensions: None,
            simulcast: None,
        }
    }
}

/// Fills in a plugin's event once its offer exists: called with the event's data (what the
/// client reads as `plugindata.data`) and the mids the offer's m-lines got (VideoRoom's
/// `attached`/`updated` events name the mids and m-line indexes of the SDP they carry). It runs
/// on the handle's media worker, so it must not block.
#[derive(Clone)]
pub struct OfferFill(pub Arc<FillFn>);

/// What an [`OfferFill`] runs: (the event's data, the offer's mids).
pub type FillFn = dyn Fn(&mut Map<String, Value>, &OfferMids) + Send + Sync;

/// The mids of an offer, as an [`OfferFill`] gets them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OfferMids {
    /// The mid each [`OfferMedia`] got, in the offer's order.
    pub media: Vec<String>,
    /// The data channel's mid, when the PeerConnection has one.
    pub data: Option<String>,
    /// Every m-line's mid in SDP order: the position of a mid is its m-line index.
    pub all: Vec<String>,
}

impl OfferMids {
    /// The m-line index of a mid.
    pub fn mindex(&self, mid: &str) -> Option<usize> {
        self.all.iter().position(|m| m == mid)
    }
}

impl std::fmt::Debug for OfferFill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OfferFill")
    }
}

impl PartialEq for OfferFill {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// A JSEP a plugin pushes with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum LocalJsep {
    /// Answer the offer the client sent with the request being answered.
    Answer(MediaPrefs),
    /// Offer these m-lines (and a data channel when `data`) to the client; `restart` asks for
    /// an ICE restart on an existing PeerConnection; `fill` completes the event with the mids.
    Offer {
        media: Vec<OfferMedia>,
        data: bool,
        prefs: MediaPrefs,
        restart: bool,
        fill: Option<OfferFill>,
    },
}

/// A data-channel message.
#[derive(Debug, Clone, Copy)]
pub struct DataMessage<'a> {
    /// `None` = the default channel.
    pub label: Option<&'a str>,
    pub protocol: Option<&'a str>,
    pub binary: bool,
    pub buffer: &'a [u8],
}

/// A data-channel message whose text is shared by everyone it goes to (a chat message to a
/// room): relaying it to many handles clones the `Arc`s, never the text.
#[derive(Debug, Clone)]
pub struct SharedData {
    /// `None` = the default channel.
    pub label: Option<Arc<str>>,
    pub binary: bool,
    pub data: Arc<[u8]>,
}

impl SharedData {
    /// A text message on the default channel.
    pub fn text(text: impl Into<Arc<str>>) -> SharedData {
        let text: Arc<str> = text.into();
        SharedData {
            label: None,
            binary: false,
            data: Arc::from(text.as_bytes()),
        }
    }

    pub fn as_message(&self) -> DataMessage<'_> {
        DataMessage {
            label: self.label.as_deref(),
            protocol: None,
            binary: self.binary,
            buffer: &self.data,
        }
    }
}

/// Why a `push_event` was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// The message was not a JSON object.
    NotAnObject,
    /// The gateway is shutting down.
    Closed,
}

/// A task for the plugins' runtime.
pub type PluginTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What the gateway offers plugins. Calls are queued and never re-enter the plugin.
pub trait CoreServices: Send + Sync {
    /// Sends a plugin `event` to the handle's client; with `transaction` when it answers a request.
    fn push_event(
        &self,
        handle: &HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) -> Result<(), PushError>;
    /// Detaches the handle from the plugin side (the client gets `detached`).
    fn end_session(&self, handle: &HandleRef);
    /// Hangs up the handle's PeerConnection (reason `Close PC`).
    fn close_pc(&self, handle: &HandleRef);
    /// Sends RTP to one handle's peer, on `packet.mindex` (or the first m-line of its kind),
    /// from any thread. The engine maps the payload type to the one the peer negotiated for the
    /// codec and keeps sequence numbers and timestamps continuous for that peer. To send to
    /// many handles use a [`Fanout`]; from a handle's own media callback, its [`MediaCtx`].
    fn relay_rtp(&self, _handle: &HandleRef, _packet: &RtpPacket) {}
    /// Sends a data-channel message to the handle's peer.
    fn relay_data(&self, _handle: &HandleRef, _message: &DataMessage<'_>) {}
    /// The same with a shared buffer: the engine keeps the `Arc` until the message is written.
    fn relay_shared_data(&self, handle: &HandleRef, message: &SharedData) {
        self.relay_data(handle, &message.as_message());
    }
    /// Asks the peer for a keyframe (all video streams, or one m-line).
    fn send_pli(&self, _handle: &HandleRef, _mindex: Option<usize>) {}
    /// Sends a REMB with this bitrate cap to the peer (0 = stop capping).
    fn send_remb(&self, _handle: &HandleRef, _bitrate: u64) {}
    /// The media engine's fan-out side, to build [`Fanout`]s with (`None` without an engine).
    fn media_router(&self) -> Option<Arc<dyn MediaRouter>> {
        None
    }
    /// Runs a task on the plugins' runtime (never on a media worker): timers, housekeeping,
    /// anything that awaits.
    fn spawn(&self, task: PluginTask) {
        // Without a runtime (tests), a thread of its own drives it.
        std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                rt.block_on(task);
            }
        });
    }
    /// Runs blocking work (opening or closing a file) on the plugins' blocking pool, off the
    /// packet path and off the signalling path.
    fn spawn_blocking(&self, work: Box<dyn FnOnce() + Send + 'static>) {
        std::thread::spawn(work);
    }
    /// The configuration folder, where a plugin writes back what it keeps across restarts
    /// (`permanent` rooms); `None` when the server runs on its built-in configuration.
    fn configs_folder(&self) -> Option<std::path::PathBuf> {
        None
    }
    /// Whether the core authenticates with signed tokens (`token_auth` with a
    /// `token_auth_secret`): only then can rooms require them.
    fn auth_is_signed(&self) -> bool {
        false
    }
    /// Whether `token` is a valid, unexpired token signed with the core's secret, of this
    /// plugin's realm (its package name), naming `descriptor` (e.g. `room=1234`). False when the
    /// core is not in signed mode.
    fn signature_contains(&self, _token: &str, _descriptor: &str) -> bool {
        false
    }
    /// Whether event handlers want this plugin's events.
    fn events_enabled(&self) -> bool {
        false
    }
    /// Hands a plugin event to the event handlers.
    fn notify_event(&self, _plugin: &'static str, _handle: Option<&HandleRef>, _event: Value) {}
}

/// A plugin, as the gateway sees it. Its methods run on the signalling path (see [`session`]);
/// the media callbacks are its handles' [`PluginSession`]s'.
pub trait Plugin: Send + Sync {
    fn info(&self) -> &PluginInfo;

    /// A client attached: make the handle's state. `Err(n)` refuses the attach (Janus 461).
    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32>;

    /// A `message` for this handle. `jsep` is present when the client negotiates.
    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult;

    /// An Admin API `message_plugin` request; `None` when the plugin has no admin hook (490).
    fn handle_admin_message(&self, _request: Value) -> Option<Value> {
        None
    }

    /// The handle is going away: free its state (leave rooms, stop forwarding to it). `Err(n)`
    /// is reported as Janus 463.
    fn destroy_session(&self, handle: &HandleRef, session: &SessionRef) -> Result<(), i32>;

    /// Plugin-specific state for the Admin API's `handle_info`.
    fn query_session(&self, _handle: &HandleRef, _session: &SessionRef) -> Value {
        Value::Object(Map::new())
    }

    /// The server is shutting down.
    fn shutdown(&self) {}
}

/// Builds a plugin from its `.jcfg` (if the configuration folder has one) and the gateway's
/// services.
pub type PluginFactory =
    fn(config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> Result<Arc<dyn Plugin>, String>;
