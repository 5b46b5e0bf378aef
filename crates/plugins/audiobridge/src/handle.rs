//! A handle's AudioBridge state and its media callbacks (on the handle's media worker: they
//! only queue packets and count audio levels; decoding happens on the mixing threads).

use crate::participant::Participant;
use crate::Shared;
use jano_plugin::{HandleRef, MediaCtx, MediaKind, NegotiatedMedia, PluginSession, RtpPacket};
use std::sync::{Arc, Mutex, MutexGuard};

/// Who sent the last offer of the handle's PeerConnection (plugin-offered sessions must be
/// renegotiated by the plugin).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Offerer {
    #[default]
    None,
    Client,
    Plugin,
}

#[derive(Default)]
pub struct HandleState {
    pub participant: Option<Arc<Participant>>,
    pub offerer: Offerer,
    /// The plugin's offer awaits the client's answer.
    pub offer_pending: bool,
    /// The PeerConnection is up (a participant who leaves and joins again keeps it).
    pub pc_up: bool,
    /// The negotiated audio m-line, and whether it carries the audio-level extension.
    pub audio_mindex: usize,
    pub audio_level: bool,
}

pub struct AbHandle {
    pub shared: Arc<Shared>,
    pub href: HandleRef,
    st: Mutex<HandleState>,
}

impl AbHandle {
    pub fn new(shared: Arc<Shared>, href: HandleRef) -> AbHandle {
        AbHandle {
            shared,
            href,
            st: Mutex::new(HandleState::default()),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, HandleState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn participant(&self) -> Option<Arc<Participant>> {
        self.state().participant.clone()
    }
}

impl PluginSession for AbHandle {
    fn setup_media(&self, _ctx: &mut MediaCtx<'_>) {
        self.state().pc_up = true;
        if let Some(p) = self.participant().filter(|p| !p.has_left()) {
            self.shared.media_up(&p);
        }
    }

    fn negotiated(&self, _ctx: &mut MediaCtx<'_>, media: &[NegotiatedMedia]) {
        let Some(a) = media.iter().find(|m| m.kind == Some(MediaKind::Audio)) else {
            return;
        };
        let level = a
            .extensions
            .iter()
            .any(|(_, uri)| uri == "urn:ietf:params:rtp-hdrext:ssrc-audio-level");
        {
            let mut st = self.state();
            st.audio_mindex = a.mindex;
            st.audio_level = level;
        }
        if let Some(p) = self.participant() {
            let mut m = p.media();
            m.mindex = a.mindex;
            m.has_audio_level = level;
        }
    }

    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        if packet.kind != MediaKind::Audio {
            return;
        }
        let Some(p) = self.participant().filter(|p| !p.has_left()) else {
            return;
        };
        let talk = {
            let mut m = p.media();
            if !m.params.listening {
                return;
            }
            // The level is -dBov (the engine may hand it negative): 127 is silence.
            let silent = packet.ext.audio_level.map(i8::unsigned_abs) == Some(127);
            m.jitter
                .push_marked(packet.seq, packet.payload.clone(), silent);
            // Recorded as it came, unless muted (as Janus does).
            if !m.params.silent {
                if let Some(rec) = m.mjr.as_mut() {
                    rec.save(packet);
                }
            }
            match packet.ext.audio_level {
                Some(level) if !m.params.silent => match m.params.talk {
                    Some(cfg) => m.talk.feed(level, cfg),
                    None => None,
                },
                _ => None,
            }
        };
        if let Some((talking, _avg)) = talk {
            self.shared.talking(&p, talking);
        }
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        {
            let mut st = self.state();
            st.offerer = Offerer::None;
            st.offer_pending = false;
            st.pc_up = false;
            st.audio_level = false;
        }
        // As in Janus, the participant is out of the room (the others hear `leaving`) and
        // must join again.
        if let Some(p) = self.participant() {
            self.shared.leave(&p, true);
        }
    }
}
