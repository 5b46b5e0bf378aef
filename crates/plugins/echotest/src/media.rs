//! The packet path of one EchoTest handle: its [`EchoHandle`] state, what is echoed (audio
//! and video switches, simulcast layer, VP8 temporal layer, playout delay), and recording.
//! Every method here runs on the handle's media worker; opening and closing recordings goes to
//! the plugins' blocking pool.

use crate::{event_map, EchoSession};
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
        if s.recording && e.record.is_none() && e.recorders.is_empty() {
            let base = s.filename.clone().unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_micros());
                format!("echotest-{}-{now}", handle.handle_id)
            });
            e.record = Some(base);
        } else if !s.recording {
            e.stop_recording(&*self.services);
        }
        e.temporal = s.temporal.map_or(2, |v| v.min(2) as u8);
        e.substream = s.substream.map_or(2, |v| v.min(2) as u8);
    }

    /// Records a packet (or a data message) of `kind`; the file is opened off the packet path
    /// on first use, and what arrives before it is open is not recorded.
    fn record(&self, e: &mut Echo, kind: RecKind, codec: &'static str, data: Recorded<'_>) {
        if e.record.is_none() {
            return;
        }
        if let Some((_, h, _)) = e.recorders.iter().find(|(k, _, _)| *k == kind) {
            // A full queue drops the packet (counted by the recorder) rather than stalling
            // the echo.
            let _ = match data {
                Recorded::Rtp(p) => h.save_rtp(&rtp_bytes(p)),
                Recorded::Data(d) => h.save_data(d),
            };
            return;
        }
        if e.opening.contains(&kind) {
            return;
        }
        let Some(base) = e.record.clone() else { return };
        e.opening.push(kind);
        let echo = self.echo.clone();
        self.services.spawn_blocking(Box::new(move || {
            let name = format!("{base}-{}", kind.suffix());
            let opened = jano_mjr::Recorder::create(None, &name, kind.mjr(), codec, None)
                .and_then(|r| r.spawn(RECORDER_QUEUE));
            let mut e = echo.lock().unwrap_or_else(|e| e.into_inner());
            e.opening.retain(|k| *k != kind);
            match opened {
                // Still recording to the same files: keep it; else close it again at once.
                Ok((h, w)) if e.record.as_deref() == Some(base.as_str()) => {
                    e.recorders.push((kind, h, w))
                }
                Ok((_, w)) => {
                    let _ = w.finish();
                }
                Err(err) => {
                    tracing::warn!("echotest: can't record {name}: {err}");
                    // Don't try again on every packet.
                    e.record = None;
                }
            }
        }));
    }
}

enum Recorded<'a> {
    Rtp(&'a RtpPacket),
    Data(&'a [u8]),
}

/// The packet path's view of one handle.
pub(crate) struct Echo {
    pub audio: bool,
    pub video: bool,
    /// Playout delay to ask of the peer (10 ms units), from `min_delay`/`max_delay`.
    pub delay: (Option<u16>, Option<u16>),
    /// Recording: the base name, the recorders open (one per kind, opened when the first
    /// packet says which codec), and those being opened.
    pub record: Option<String>,
    recorders: Vec<(RecKind, jano_mjr::RecorderHandle, jano_mjr::RecorderWriter)>,
    opening: Vec<RecKind>,
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
            record: None,
            recorders: Vec::new(),
            opening: Vec::new(),
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
        self.record = None;
        let writers: Vec<_> = self.recorders.drain(..).map(|(_, _, w)| w).collect();
        if writers.is_empty() {
            return;
        }
        services.spawn_blocking(Box::new(move || {
            for w in writers {
                match w.finish() {
                    Ok(s) => tracing::info!(path = %s.path.display(), frames = s.frames, dropped = s.dropped, "recording closed"),
                    Err(e) => tracing::warn!("recording: {e}"),
                }
            }
        }));
    }

    /// Back to the defaults, as a new PeerConnection on the handle starts in Janus.
    pub fn reset(&mut self, services: &dyn CoreServices) {
        self.stop_recording(services);
        *self = Echo {
            opening: std::mem::take(&mut self.opening),
            ..Echo::new()
        };
    }
}

/// What a recorder of a handle records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecKind {
    Audio,
    Video,
    Data,
}

impl RecKind {
    fn suffix(self) -> &'static str {
        match self {
            RecKind::Audio => "audio",
            RecKind::Video => "video",
            RecKind::Data => "data",
        }
    }

    fn mjr(self) -> jano_mjr::MediaKind {
        match self {
            RecKind::Audio => jano_mjr::MediaKind::Audio,
            RecKind::Video => jano_mjr::MediaKind::Video,
            RecKind::Data => jano_mjr::MediaKind::Data,
        }
    }
}

/// Packets a recorder may have queued before it drops (and counts) instead of blocking media.
const RECORDER_QUEUE: usize = 1024;

/// A plain RTP packet (12-byte header, no extensions) for the recorder, as Janus records.
fn rtp_bytes(p: &RtpPacket) -> Vec<u8> {
    let mut b = Vec::with_capacity(12 + p.payload.len());
    b.push(0x80);
    b.push((u8::from(p.marker) << 7) | (p.pt & 0x7f));
    b.extend_from_slice(&(p.seq as u16).to_be_bytes());
    b.extend_from_slice(&p.timestamp.to_be_bytes());
    b.extend_from_slice(&p.ssrc.to_be_bytes());
    b.extend_from_slice(&p.payload);
    b
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
        let kind = match packet.kind {
            MediaKind::Audio => RecKind::Audio,
            MediaKind::Video => RecKind::Video,
        };
        self.record(&mut e, kind, packet.codec, Recorded::Rtp(packet));
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
        {
            let mut e = self.echo();
            self.record(
                &mut e,
                RecKind::Data,
                "text",
                Recorded::Data(message.buffer),
            );
        }
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
