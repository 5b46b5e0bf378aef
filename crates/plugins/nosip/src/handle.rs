//! One NoSIP handle: the plain side's legs and SDP state, and the media callbacks (on the
//! handle's media worker) that send what the user sends to the peer.

use crate::media::Leg;
use crate::sdp::Codec;
use jano_plugin::record::MediaRecorder;
use jano_plugin::{HandleRef, MediaCtx, MediaKind, PluginSession, RtcpFeedback, RtpPacket};
use std::sync::{Arc, Mutex, MutexGuard};

/// The negotiation with the plain peer.
#[derive(Default)]
pub struct Call {
    pub audio: Option<Arc<Leg>>,
    pub video: Option<Arc<Leg>>,
    /// Our barebone SDP's `o=` session id and version.
    pub sdp_session: u64,
    pub sdp_version: u64,
    /// The codecs of our side of the plain SDP per medium (offered or answered).
    pub audio_codecs: Vec<Codec>,
    pub video_codecs: Vec<Codec>,
    /// The peer's SDP offer, kept until the user's answer comes with `generate`.
    pub peer_offer: Option<Vec<crate::sdp::Line>>,
    /// SDES: ours (suite, key) per medium, and whether the peer used it.
    pub srtp_local: bool,
    pub require_srtp: bool,
    pub srtp_suite: &'static str,
    pub audio_key: Option<String>,
    pub video_key: Option<String>,
    /// The `a=crypto` tags (an answer echoes the offer's; ours offer 1).
    pub audio_tag: u32,
    pub video_tag: u32,
    pub srtp_remote: bool,
    /// Media flows (an answer was generated or processed).
    pub ready: bool,
}

impl Call {
    pub fn legs(&self) -> impl Iterator<Item = &Arc<Leg>> {
        self.audio.iter().chain(self.video.iter())
    }

    pub fn leg(&self, kind: MediaKind) -> Option<&Arc<Leg>> {
        match kind {
            MediaKind::Audio => self.audio.as_ref(),
            MediaKind::Video => self.video.as_ref(),
        }
    }
}

/// What is recorded: the user's audio and video, the peer's.
#[derive(Default)]
pub struct Recorders {
    pub user_audio: MediaRecorder,
    pub user_video: MediaRecorder,
    pub peer_audio: MediaRecorder,
    pub peer_video: MediaRecorder,
}

/// The legs media goes out on.
#[derive(Default)]
pub struct OutLegs {
    pub audio: Option<Arc<Leg>>,
    pub video: Option<Arc<Leg>>,
}

pub struct NsHandle {
    pub href: HandleRef,
    pub call: Mutex<Call>,
    /// The legs the packet path sends on (copied out of `call`, so a packet never waits for
    /// a request).
    pub out: Mutex<OutLegs>,
    pub rec: Recorders,
    pub services: Arc<dyn jano_plugin::CoreServices>,
    /// Names this handle's call in `generated`/`processed` (later Janus versions' `unique_id`).
    pub unique_id: String,
}

impl NsHandle {
    pub fn call(&self) -> MutexGuard<'_, Call> {
        self.call.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn publish_legs(&self) {
        let (a, v) = {
            let c = self.call();
            (c.audio.clone(), c.video.clone())
        };
        *self.out.lock().unwrap_or_else(|e| e.into_inner()) = OutLegs { audio: a, video: v };
    }

    fn out_leg(&self, kind: MediaKind) -> Option<Arc<Leg>> {
        let g = self.out.lock().unwrap_or_else(|e| e.into_inner());
        match kind {
            MediaKind::Audio => g.audio.clone(),
            MediaKind::Video => g.video.clone(),
        }
    }

    /// Everything of the plain side goes: sockets, readers, recordings.
    pub fn reset(&self) {
        let old = std::mem::take(&mut *self.call());
        for l in old.legs() {
            l.close();
        }
        *self.out.lock().unwrap_or_else(|e| e.into_inner()) = OutLegs::default();
        let svc = &*self.services;
        for r in [
            &self.rec.user_audio,
            &self.rec.user_video,
            &self.rec.peer_audio,
            &self.rec.peer_video,
        ] {
            r.stop(svc);
        }
    }
}

impl PluginSession for NsHandle {
    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        // A simulcasting user: only its lowest layer goes to the plain peer.
        if packet.substream.is_some_and(|l| l != 0) {
            return;
        }
        let rec = match packet.kind {
            MediaKind::Audio => &self.rec.user_audio,
            MediaKind::Video => &self.rec.user_video,
        };
        rec.rtp(&*self.services, packet);
        if let Some(leg) = self.out_leg(packet.kind) {
            leg.send_to_peer(packet);
        }
    }

    fn incoming_rtcp(&self, _ctx: &mut MediaCtx<'_>, feedback: &RtcpFeedback) {
        // The user wants a keyframe of what the peer sends.
        if let RtcpFeedback::KeyframeRequest { .. } = feedback {
            if let Some(leg) = self.out_leg(MediaKind::Video) {
                leg.pli_to_peer();
            }
        }
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        self.reset();
    }
}
