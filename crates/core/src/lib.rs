//! The jano gateway core.
//!
//! A deterministic state machine with no IO and no clock of its own: transports hand it decoded
//! requests together with the transport instance they came from and the current time
//! ([`Now`]); it answers each request with exactly one response, and queues [`Output`]s —
//! events for the transport instance that owns a session, and session lifecycle notices — for
//! the caller to drain with [`Gateway::poll_output`] *after* delivering the response (so a
//! `detached` event never overtakes the `success` of the `detach` that caused it).
//!
//! Time only moves when the caller says so ([`Gateway::handle_timeout`]), which is what lets the
//! session-timeout and reclaim rules be tested without sleeping.

mod admin;
mod auth;
mod call;
mod config;
mod events;
mod gateway;
mod info;
mod jsep;
mod lifecycle;
mod media;
mod registry;
mod rng;
mod session;

pub use auth::{sign_token, signed_contains, TokenStore};
pub use call::{CallDone, PluginCall, Step};
pub use config::CoreConfig;
pub use gateway::{Gateway, Incoming, PluginEvent};
pub use media::{
    LocalSdp, MediaBackend, MediaCommand, MediaEvent, MediaSetting, Negotiation, RemoteSdp,
};
pub use registry::{PluginRegistry, TransportInfo};

use jano_api::Value;

/// The current time as the core needs it: a monotonic clock for activity and timeouts, and the
/// wall clock (UNIX seconds) for signed-token expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// Monotonic microseconds since an arbitrary origin.
    pub mono_us: u64,
    /// Seconds since the UNIX epoch.
    pub unix_s: u64,
}

impl Now {
    pub fn from_secs(mono_s: u64) -> Now {
        Now {
            mono_us: mono_s * 1_000_000,
            unix_s: 1_700_000_000 + mono_s,
        }
    }
}

/// One client context of one transport: a WebSocket connection, a Unix-socket peer, the single
/// client of a broker transport, or the HTTP transport as a whole (HTTP routes events by session).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId {
    /// Index given by [`Gateway::register_transport`].
    pub transport: u16,
    /// Chosen by the transport; unique within it.
    pub conn: u64,
}

/// What the core asks of the world after handling an input.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Deliver an event to the transport instance that owns `session_id`.
    Event {
        to: InstanceId,
        session_id: u64,
        event: Value,
    },
    /// `to` now owns a new session (HTTP creates its event queue here).
    SessionCreated { to: InstanceId, session_id: u64 },
    /// The session is gone for `to`: destroyed, timed out, or claimed by another instance.
    SessionOver {
        to: InstanceId,
        session_id: u64,
        timeout: bool,
        claimed: bool,
    },
    /// `to` took over the session with `claim`.
    SessionClaimed { to: InstanceId, session_id: u64 },
    /// The Admin API changed the log level (0..=7).
    SetLogLevel(u8),
    /// Work for the media engine (a handle's PeerConnection).
    Media(MediaCommand),
}
