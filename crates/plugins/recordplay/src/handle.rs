//! One Record&Play handle: a recorder, a player, or neither yet. The `PluginSession`
//! callbacks run on the handle's media worker: a recorder's packets go to its writer queues,
//! a player starts its task when the PeerConnection is up.

use crate::player::Loaded;
use crate::recorder::Capture;
use crate::Shared;
use jano_plugin::{DataMessage, HandleRef, MediaCtx, PluginSession, RtpPacket};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub enum Mode {
    Idle,
    Recording {
        rec: Arc<crate::library::Recording>,
        capture: Arc<Capture>,
        paused: bool,
    },
    Playing {
        rec: Arc<crate::library::Recording>,
        /// Taken by the player task when the PeerConnection is up.
        loaded: Option<Loaded>,
        started: bool,
        stop: Arc<AtomicBool>,
    },
}

pub struct RpHandle {
    pub href: HandleRef,
    pub shared: Arc<Shared>,
    pub mode: Mutex<Mode>,
    /// `configure`: the REMB cap for a recorder's video (bps) and how often it is asked for
    /// a keyframe (ms).
    pub video_bitrate: AtomicU64,
    pub keyframe_interval_ms: AtomicU64,
    /// A JSEP was exchanged since the last hang-up: a PeerConnection exists (or is being set
    /// up), and its hang-up will say `done`.
    pub negotiated: AtomicBool,
}

impl RpHandle {
    pub fn new(href: HandleRef, shared: Arc<Shared>) -> RpHandle {
        RpHandle {
            href,
            shared,
            mode: Mutex::new(Mode::Idle),
            video_bitrate: AtomicU64::new(1024 * 1024),
            keyframe_interval_ms: AtomicU64::new(15_000),
            negotiated: AtomicBool::new(false),
        }
    }

    pub fn mode(&self) -> MutexGuard<'_, Mode> {
        self.mode.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The PeerConnection is gone (or the handle is): a recording is closed and indexed, a
    /// playback stops; the client hears `done`.
    pub fn finish(&self, tell: bool) {
        let old = std::mem::replace(&mut *self.mode(), Mode::Idle);
        match old {
            Mode::Idle => {}
            Mode::Recording { rec, capture, .. } => {
                let shared = self.shared.clone();
                capture.finish(
                    &*self.shared.services,
                    Box::new(move || shared.complete(&rec)),
                );
            }
            Mode::Playing { stop, .. } => stop.store(true, Ordering::Release),
        }
        if tell {
            let mut m = jano_plugin::Map::new();
            m.insert("recordplay".into(), json!("event"));
            m.insert("result".into(), json!("done"));
            let _ = self.shared.services.push_event(&self.href, None, m, None);
        }
    }
}

impl PluginSession for RpHandle {
    fn setup_media(&self, _ctx: &mut MediaCtx<'_>) {
        let mut mode = self.mode();
        if let Mode::Playing {
            rec,
            loaded,
            started,
            stop,
        } = &mut *mode
        {
            if *started {
                return;
            }
            let Some(loaded) = loaded.take() else { return };
            *started = true;
            let task = crate::player::play(
                loaded,
                self.shared.services.clone(),
                self.href.clone(),
                rec.textdata,
                stop.clone(),
            );
            self.shared.services.spawn(Box::pin(task));
        }
    }

    fn incoming_rtp(&self, ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        // While paused the writers drop what comes, but the sender still gets its feedback
        // (as from Janus).
        let capture = match &*self.mode() {
            Mode::Recording { capture, .. } => capture.clone(),
            _ => return,
        };
        let every = Duration::from_millis(self.keyframe_interval_ms.load(Ordering::Relaxed));
        let ask = capture.rtp(packet, self.video_bitrate.load(Ordering::Relaxed), every);
        if let Some(b) = ask.remb {
            ctx.send_remb(b);
        }
        if ask.pli {
            ctx.request_keyframe(None);
        }
    }

    fn incoming_data(&self, _ctx: &mut MediaCtx<'_>, message: &DataMessage<'_>) {
        if let Mode::Recording { capture, .. } = &*self.mode() {
            capture.data(message.buffer);
        }
    }

    fn slow_link(&self, ctx: &mut MediaCtx<'_>, _mindex: usize, video: bool, uplink: bool) {
        let mut result =
            json!({"status": "slow_link", "media": if video { "video" } else { "audio" }});
        if video {
            result["current-bitrate"] = json!(self.video_bitrate.load(Ordering::Relaxed));
        }
        // The server's uplink is the client's downlink.
        result["uplink"] = json!(if uplink { 0 } else { 1 });
        let mut m = jano_plugin::Map::new();
        m.insert("recordplay".into(), json!("event"));
        m.insert("result".into(), result);
        let _ = self.shared.services.push_event(ctx.handle(), None, m, None);
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        self.negotiated.store(false, Ordering::Release);
        self.finish(true);
    }
}
