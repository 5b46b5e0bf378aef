//! Sessions and handles as the core keeps them.

use crate::gateway::PluginEvent;
use crate::media::RemoteSdp;
use crate::InstanceId;
use jano_plugin::{HandleRef, Plugin, SessionRef, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Trickle candidates that arrived before there was a PeerConnection to give them to.
#[derive(Debug, Clone)]
pub(crate) struct PendingTrickle {
    pub received_us: u64,
    /// Handed to the PeerConnection once the media engine creates one.
    pub candidate: Value,
}

/// The most early candidates kept per handle; more are dropped (and counted) so a client
/// cannot grow the server's memory without bound.
pub(crate) const MAX_PENDING_TRICKLES: usize = 256;

/// The most plugin events held back per handle while its requests are in the plugin; more
/// `push_event`s are dropped (and counted). `end_session`/`close_pc` are still kept, once each.
pub(crate) const MAX_HELD_EVENTS: usize = 256;

pub(crate) struct Handle {
    pub href: HandleRef,
    pub plugin: Arc<dyn Plugin>,
    /// The plugin's state for this handle.
    pub state: SessionRef,
    pub created_us: u64,
    pub pending_trickles: Vec<PendingTrickle>,
    pub dropped_trickles: u64,
    /// The handle has a PeerConnection (or one is being made) in the media engine.
    pub pc: bool,
    /// The client's offer, waiting for the plugin's answer.
    pub remote_offer: Option<RemoteSdp>,
    /// We sent an offer and wait for the client's answer.
    pub offered: bool,
    /// The PeerConnection carries end-to-end encrypted media (the client's JSEP or the
    /// plugin's said so); cleared when it goes away, as Janus's handle flag.
    pub e2ee: bool,
    /// Unique for the gateway's lifetime (handle ids may be reused): ties a plugin call to the
    /// handle it started on.
    pub serial: u64,
    /// `message` requests handed to the plugin and not finished yet.
    pub calls: u32,
    /// Plugin events that arrived while `calls > 0`: they go out after the response.
    pub held: VecDeque<PluginEvent>,
    pub dropped_events: u64,
}

impl Handle {
    /// Keeps a plugin event for after the in-flight requests' responses, within the bound.
    pub(crate) fn hold(&mut self, ev: PluginEvent) {
        if self.held.len() < MAX_HELD_EVENTS {
            self.held.push_back(ev);
            return;
        }
        match ev {
            PluginEvent::Push { .. } => {
                self.dropped_events += 1;
                tracing::warn!(
                    handle = self.href.handle_id,
                    dropped = self.dropped_events,
                    "too many plugin events while a request is in the plugin: event dropped"
                );
            }
            // Hang-up and end-of-handle requests are idempotent: one of each is enough.
            ev => {
                if !self.held.contains(&ev) {
                    self.held.push_back(ev);
                }
            }
        }
    }
}

pub(crate) struct Session {
    pub id: u64,
    pub source: InstanceId,
    pub last_activity_us: u64,
    /// The owning transport instance went away; the session waits to be claimed.
    pub transport_gone: bool,
    /// Admin override: `None` = global timeout, `Some(0)` = never, `Some(n)` = n seconds.
    pub timeout_override: Option<u64>,
    pub handles: HashMap<u64, Handle>,
}

impl Session {
    pub(crate) fn new(id: u64, source: InstanceId, now_us: u64) -> Self {
        Session {
            id,
            source,
            last_activity_us: now_us,
            transport_gone: false,
            timeout_override: None,
            handles: HashMap::new(),
        }
    }
}
