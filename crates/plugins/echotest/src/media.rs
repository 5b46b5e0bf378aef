//! The packet path of one EchoTest handle: its [`EchoHandle`] state, what is echoed (audio
//! and video switches, simulcast layer, VP8 temporal layer, playout delay), and recording.
//! Every method here runs on the handle's media worker; opening and closing recordings goes to
//! the plugins' blocking pool.

use crate::{event_map, EchoSession};
use jano_plugin::record::MediaRecorder;
use jano_plugin::rtp::{vp8_keyframe, vp8_tid, SourceRewriter};
use jano_plugin::{
    CoreServices, DataMessage, HandleRef, MediaCtx, MediaKind, PluginSession, RtcpFeedback,
    RtpPacket,
};
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};

/// One handle's EchoTest state: the settings requests change, and the packet path's view.
pub(crate) struct EchoHandle {
    pub services: Arc<dyn CoreServices>,
    pub settings: Mutex<EchoSession>,
    /// Kept apart from the settings so a request never holds up media for long; shared with
    /// the blocking task that opens recordings.
    pub echo: Arc<Mutex<Echo>>,
}

impl EchoHandle {
    pub fn new(services: Arc<dyn CoreServices>) -> Self {
        EchoHandle {
            services,
            settings: Mutex::new(EchoSession::default()),
            echo: Arc::new(Mutex::new(Echo::new())),
        }
    }

    pub fn settings(&self) -> MutexGuard<'_, EchoSession> {
        // A poisoned lock only means a panic mid-update of plain settings; still usable.
        self.settings.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn echo(&self) -> MutexGuard<'_, Echo> {
        self.echo.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Copies the settings the packet path uses.
    pub fn sync_media(&self, handle: &HandleRef, s: &EchoSession) {
        let mut e = self.echo();
        e.audio = s.audio_active;
        e.video = s.video_active;
        let units = |v: Option<i64>| v.and_then(|v| u16::try_from(v.clamp(0, 4095)).ok());
        e.delay = (units(s.min_delay), units(s.max_delay));
        if s.recording && !e.rec.is_recording() {
            let base = s.filename.clone().unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                format!("echotest-{}-{now}", handle.handle_id)
            });
            e.rec.start(&*self.services, base);
        } else if !s.recording {
            e.stop_recording(&*self.services);
        }
        e.temporal = s.temporal.map_or(2, |v| v.min(2) as u8);
        e.substream = s.substream.map_or(2, |v| v.min(2) as u8);
    }
}

/// The packet path's view of one handle.
pub(crate) struct Echo {
    pub audio: bool,
    pub video: bool,
    /// Playout delay to ask of the peer (10 ms units), from `min_delay`/`max_delay`.
    pub delay: (Option<u16>, Option<u16>),
    /// Recording what the peer sends (the files open when the first packet of a kind comes).
    pub rec: MediaRecorder,
    /// Simulcast: the layer to echo (0 lowest … 2 highest).
    pub substream: u8,
    /// The layer being echoed now, and the continuity across switches.
    pub current: Option<u8>,
    video_out: SourceRewriter,
    /// VP8 temporal layer to echo up to (2 = all), and the one last announced.
    pub temporal: u8,
    current_temporal: Option<u8>,
}

impl Echo {
    fn new() -> Echo {
        Echo {
            audio: true,
            video: true,
            delay: (None, None),
            rec: MediaRecorder::default(),
            substream: 2,
            current: None,
            video_out: SourceRewriter::default(),
            temporal: 2,
            current_temporal: None,
        }
    }

    /// Stops recording; the files are closed on the blocking pool (closing waits for the
    /// writer).
    pub fn stop_recording(&mut self, services: &dyn CoreServices) {
        self.rec.stop(services);
    }

    /// Back to the defaults, as a new PeerConnection on the handle starts in Janus.
    pub fn reset(&mut self, services: &dyn CoreServices) {
        self.stop_recording(services);
        // The recorder object stays: a file still opening sees it stopped and closes.
        *self = Echo {
            rec: self.rec.clone(),
            ..Echo::new()
        };
    }
}

impl PluginSession for EchoHandle {
    fn setup_media(&self, ctx: &mut MediaCtx<'_>) {
        let bitrate = self.settings().bitrate;
        if bitrate > 0 {
            ctx.send_remb(bitrate);
        }
        ctx.request_keyframe(None);
    }

    fn incoming_rtp(&self, ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        let mut e = self.echo();
        e.rec.rtp(&*self.services, packet);
        match packet.kind {
            MediaKind::Audio => {
                if e.audio {
                    ctx.send_rtp(packet.clone());
                }
            }
            MediaKind::Video => {
                if !e.video {
                    return;
                }
                let mut p = packet.clone();
                if let Some(layer) = packet.substream {
                    // Simulcast: echo one layer; move to the target layer on its keyframe.
                    if e.current != Some(layer) {
                        let switch = layer == e.substream
                            && (e.current.is_none() || vp8_keyframe(&packet.payload));
                        if !switch {
                            return;
                        }
                        e.current = Some(layer);
                        let data =
                            json!({"echotest": "event", "videocodec": "vp8", "substream": layer});
                        let _ = self
                            .services
                            .push_event(ctx.handle(), None, event_map(data), None);
                    }
                }
                if let Some(tid) = vp8_tid(&packet.payload).filter(|_| packet.codec == "vp8") {
                    if tid > e.temporal {
                        // Above the wanted temporal layer: not echoed, and the sequence numbers
                        // close up behind it so the peer sees no loss.
                        e.video_out.skip(&p);
                        return;
                    }
                    if e.current_temporal != Some(e.temporal) {
                        e.current_temporal = Some(e.temporal);
                        let data = json!({"echotest": "event", "videocodec": "vp8", "temporal": e.temporal});
                        let _ = self
                            .services
                            .push_event(ctx.handle(), None, event_map(data), None);
                    }
                }
                e.video_out.rewrite(&mut p);
                p.ext.min_delay = e.delay.0;
                p.ext.max_delay = e.delay.1;
                ctx.send_rtp(p);
            }
        }
    }

    fn incoming_rtcp(&self, ctx: &mut MediaCtx<'_>, feedback: &RtcpFeedback) {
        match feedback {
            // The echoed stream is the peer's own: its keyframe request goes back to it.
            RtcpFeedback::KeyframeRequest { .. } => ctx.request_keyframe(None),
            // EchoTest caps with its own `bitrate`, not the peer's estimate.
            RtcpFeedback::Bitrate { .. } => {}
        }
    }

    fn incoming_data(&self, ctx: &mut MediaCtx<'_>, message: &DataMessage<'_>) {
        self.echo().rec.data(&*self.services, message.buffer);
        if message.binary {
            ctx.send_data(message);
            return;
        }
        // Text comes back prefixed, as Janus's EchoTest does (clients' demos show this line).
        let text = format!(
            "Janus EchoTest here! You wrote: {}",
            String::from_utf8_lossy(message.buffer)
        );
        ctx.send_data(&DataMessage {
            buffer: text.as_bytes(),
            ..*message
        });
    }

    fn slow_link(&self, ctx: &mut MediaCtx<'_>, _mindex: usize, video: bool, uplink: bool) {
        // As Janus's EchoTest: only problems on the way to the peer are worth telling it.
        if uplink {
            return;
        }
        let data = json!({"echotest": "event", "event": "slow_link", "media": if video { "video" } else { "audio" }});
        let _ = self
            .services
            .push_event(ctx.handle(), None, event_map(data), None);
    }

    fn hangup_media(&self, handle: &HandleRef) {
        self.echo().reset(&*self.services);
        // A new PeerConnection on this handle starts from the defaults, as in Janus.
        *self.settings() = EchoSession::default();
        let data = json!({"echotest": "event", "result": "done"});
        let _ = self
            .services
            .push_event(handle, None, event_map(data), None);
    }
}
