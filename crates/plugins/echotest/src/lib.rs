//! `janus.plugin.echotest`: the first plugin a Janus user tries. It answers every message
//! asynchronously (an `ack` with a hint, then an `event` carrying the request's transaction), as
//! Janus's EchoTest does, and keeps the per-handle settings (audio/video on or off, REMB cap,
//! simulcast and SVC targets, recording) that the media engine will apply to the echoed stream.

use jano_api::fields::{self, Kind};
use jano_api::JanusError;
use jano_plugin::{
    CoreServices, DataMessage, HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaKind,
    MediaPrefs, Plugin, PluginInfo, PluginResult, RtcpFeedback, RtpPacket, Value,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

pub const PACKAGE: &str = "janus.plugin.echotest";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS EchoTest plugin",
    author: "jano",
    description: "Echoes back whatever a peer sends: audio, video and data channel messages.",
    version: 7,
    version_string: "0.0.7",
};

/// EchoTest's own error codes (inside `plugindata.data`).
mod code {
    pub const INVALID_ELEMENT: u16 = 413;
}

/// The hint Janus's EchoTest puts in its `ack`; some clients log it.
const ACK_HINT: &str = "I'm taking my time!";

/// Per-handle settings.
#[derive(Debug, Clone)]
struct EchoSession {
    audio_active: bool,
    video_active: bool,
    bitrate: u64,
    substream: Option<u64>,
    temporal: Option<u64>,
    fallback: Option<u64>,
    spatial_layer: Option<u64>,
    temporal_layer: Option<u64>,
    audiocodec: Option<String>,
    videocodec: Option<String>,
    videoprofile: Option<String>,
    opusred: bool,
    min_delay: Option<i64>,
    max_delay: Option<i64>,
    recording: bool,
    filename: Option<String>,
}

impl Default for EchoSession {
    fn default() -> Self {
        EchoSession {
            audio_active: true,
            video_active: true,
            bitrate: 0,
            substream: None,
            temporal: None,
            fallback: None,
            spatial_layer: None,
            temporal_layer: None,
            audiocodec: None,
            videocodec: None,
            videoprofile: None,
            opusred: false,
            min_delay: None,
            max_delay: None,
            recording: false,
            filename: None,
        }
    }
}

/// The fields EchoTest understands, with their types.
const FIELDS: &[(&str, Kind)] = &[
    ("audio", Kind::Bool),
    ("video", Kind::Bool),
    ("bitrate", Kind::PositiveInteger),
    ("record", Kind::Bool),
    ("filename", Kind::String),
    ("substream", Kind::PositiveInteger),
    ("temporal", Kind::PositiveInteger),
    ("fallback", Kind::PositiveInteger),
    ("svc", Kind::Bool),
    ("spatial_layer", Kind::PositiveInteger),
    ("temporal_layer", Kind::PositiveInteger),
    ("audiocodec", Kind::String),
    ("videocodec", Kind::String),
    ("videoprofile", Kind::String),
    ("opusred", Kind::Bool),
    ("min_delay", Kind::Integer),
    ("max_delay", Kind::Integer),
];

pub struct EchoTest {
    services: Arc<dyn CoreServices>,
    sessions: Mutex<HashMap<u64, EchoSession>>,
    /// What the packet path needs per handle, apart from the signalling state so that a slow
    /// request never holds up media (and media never takes the signalling lock).
    media: RwLock<HashMap<u64, Arc<Mutex<Echo>>>>,
}

/// The packet path's view of one handle.
#[derive(Default)]
struct Echo {
    audio: bool,
    video: bool,
    /// Playout delay to ask of the peer (10 ms units), from `min_delay`/`max_delay`.
    delay: (Option<u16>, Option<u16>),
    /// Recording: the base name, and the recorders opened so far (one per kind, opened on
    /// the first packet, when the codec is known).
    record: Option<String>,
    recorders: Vec<(RecKind, jano_mjr::RecorderHandle, jano_mjr::RecorderWriter)>,
    /// Simulcast: the layer to echo (0 lowest … 2 highest).
    substream: u8,
    /// The layer being echoed now, and the sequence/timestamp continuity across switches.
    current: Option<u8>,
    video_out: Rewriter,
    /// VP8 temporal layer to echo up to (2 = all), and the one last announced.
    temporal: u8,
    current_temporal: Option<u8>,
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

impl Echo {
    /// The recorder for `kind`, opened on first use; `None` when not recording or it failed.
    fn recorder(&mut self, kind: RecKind, codec: &str) -> Option<&jano_mjr::RecorderHandle> {
        let base = self.record.as_ref()?;
        if !self.recorders.iter().any(|(k, _, _)| *k == kind) {
            let name = format!("{base}-{}", kind.suffix());
            let opened = jano_mjr::Recorder::create(None, &name, kind.mjr(), codec, None)
                .and_then(|r| r.spawn(RECORDER_QUEUE));
            match opened {
                Ok((h, w)) => self.recorders.push((kind, h, w)),
                Err(e) => {
                    tracing::warn!("echotest: can't record {name}: {e}");
                    // Don't retry on every packet.
                    self.record = None;
                    return None;
                }
            }
        }
        self.recorders
            .iter()
            .find(|(k, _, _)| *k == kind)
            .map(|(_, h, _)| h)
    }

    /// Stops recording; the files are closed by a helper thread (closing waits for the writer).
    fn stop_recording(&mut self) {
        self.record = None;
        let writers: Vec<_> = self.recorders.drain(..).map(|(_, _, w)| w).collect();
        if writers.is_empty() {
            return;
        }
        let closer = std::thread::Builder::new()
            .name("echotest-rec-close".into())
            .spawn(move || {
                for w in writers {
                    match w.finish() {
                        Ok(s) => tracing::info!(path = %s.path.display(), frames = s.frames, dropped = s.dropped, "recording closed"),
                        Err(e) => tracing::warn!("recording: {e}"),
                    }
                }
            });
        if let Err(e) = closer {
            tracing::warn!("recording: can't close the files: {e}");
        }
    }
}

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

/// Keeps the outgoing sequence numbers and timestamps continuous when the source changes
/// (simulcast layer switches), as the receiver sees one stream.
#[derive(Debug, Default)]
struct Rewriter {
    ssrc: Option<u32>,
    seq_off: i64,
    ts_off: u32,
    last_seq: u64,
    last_ts: u32,
    /// VP8 picture ID and TL0PICIDX continuity (each layer numbers its pictures itself).
    pid_off: u16,
    tl0_off: u8,
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
}

impl Rewriter {
    /// A packet of the current source that is deliberately not forwarded (a temporal layer
    /// above the target): later ones move down by one, keeping the sequence gapless.
    fn skip(&mut self, p: &RtpPacket) {
        if self.ssrc == Some(p.ssrc) {
            self.seq_off -= 1;
        }
    }

    fn rewrite(&mut self, p: &mut RtpPacket) {
        let vp8 = p.codec == "vp8";
        if self.ssrc != Some(p.ssrc) {
            if self.ssrc.is_some() {
                self.seq_off = self.last_seq as i64 + 1 - p.seq as i64;
                // A small step forward (one 30 fps frame at 90 kHz) keeps time monotonic.
                self.ts_off = self.last_ts.wrapping_add(3000).wrapping_sub(p.timestamp);
                if vp8 {
                    let (pid, tl0) = vp8_ids(&p.payload);
                    if let (Some(last), Some(new)) = (self.last_pid, pid) {
                        self.pid_off = last.wrapping_add(1).wrapping_sub(new) & 0x7fff;
                    }
                    if let (Some(last), Some(new)) = (self.last_tl0, tl0) {
                        self.tl0_off = last.wrapping_add(1).wrapping_sub(new);
                    }
                }
            }
            self.ssrc = Some(p.ssrc);
        }
        p.seq = (p.seq as i64 + self.seq_off).max(0) as u64;
        p.timestamp = p.timestamp.wrapping_add(self.ts_off);
        if vp8 {
            if self.pid_off != 0 || self.tl0_off != 0 {
                let mut payload = p.payload.to_vec();
                vp8_shift_ids(&mut payload, self.pid_off, self.tl0_off);
                p.payload = payload.into();
            }
            let (pid, tl0) = vp8_ids(&p.payload);
            self.last_pid = pid.or(self.last_pid);
            self.last_tl0 = tl0.or(self.last_tl0);
        }
        if p.seq >= self.last_seq {
            self.last_seq = p.seq;
            self.last_ts = p.timestamp;
        }
    }
}

/// Where the VP8 payload descriptor keeps its picture ID and TL0PICIDX (RFC 7741 §4.2):
/// (offset, two-byte picture id) and the TL0PICIDX offset.
fn vp8_id_offsets(payload: &[u8]) -> (Option<(usize, bool)>, Option<usize>) {
    let (Some(&b0), Some(&x)) = (payload.first(), payload.get(1)) else {
        return (None, None);
    };
    if b0 & 0x80 == 0 {
        return (None, None);
    }
    let mut at = 2;
    let mut pid = None;
    if x & 0x80 != 0 {
        let Some(&p) = payload.get(at) else {
            return (None, None);
        };
        let long = p & 0x80 != 0;
        pid = Some((at, long));
        at += if long { 2 } else { 1 };
    }
    let tl0 = (x & 0x40 != 0 && at < payload.len()).then_some(at);
    (pid, tl0)
}

/// The temporal layer index (TID) of a VP8 packet, when its descriptor carries one.
fn vp8_tid(payload: &[u8]) -> Option<u8> {
    let x = *payload.get(1)?;
    if payload.first()? & 0x80 == 0 || x & 0x30 == 0 {
        return None;
    }
    let (pid, tl0) = vp8_id_offsets(payload);
    let at = match (tl0, pid) {
        (Some(t), _) => t + 1,
        (None, Some((p, long))) => p + if long { 2 } else { 1 },
        (None, None) => 2,
    };
    // TID is only meaningful with the T bit; K alone carries just KEYIDX.
    if x & 0x20 == 0 {
        return None;
    }
    payload.get(at).map(|b| b >> 6)
}

fn vp8_ids(payload: &[u8]) -> (Option<u16>, Option<u8>) {
    let (pid, tl0) = vp8_id_offsets(payload);
    let pid = pid.and_then(|(at, long)| {
        if long {
            let hi = *payload.get(at)?;
            let lo = *payload.get(at + 1)?;
            Some(u16::from_be_bytes([hi & 0x7f, lo]))
        } else {
            payload.get(at).map(|b| u16::from(b & 0x7f))
        }
    });
    (pid, tl0.and_then(|at| payload.get(at).copied()))
}

/// Adds the offsets to the picture ID (15-bit, or 7-bit when short) and TL0PICIDX in place.
fn vp8_shift_ids(payload: &mut [u8], pid_off: u16, tl0_off: u8) {
    let (pid, tl0) = vp8_id_offsets(payload);
    if let Some((at, long)) = pid {
        if long {
            if let (Some(&hi), Some(&lo)) = (payload.get(at), payload.get(at + 1)) {
                let v = u16::from_be_bytes([hi & 0x7f, lo]).wrapping_add(pid_off) & 0x7fff;
                let [h, l] = v.to_be_bytes();
                payload[at] = 0x80 | h;
                payload[at + 1] = l;
            }
        } else if let Some(b) = payload.get_mut(at) {
            *b = (b.wrapping_add(pid_off as u8)) & 0x7f;
        }
    }
    if let Some(b) = tl0.and_then(|at| payload.get_mut(at)) {
        *b = b.wrapping_add(tl0_off);
    }
}

/// Whether a VP8 RTP payload starts a keyframe (RFC 7741: descriptor, then the frame header's
/// inverse key-frame bit).
fn vp8_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !start {
        return false;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: one or two bytes.
            match payload.get(at) {
                Some(p) if p & 0x80 != 0 => at += 2,
                Some(_) => at += 1,
                None => return false,
            }
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|h| h & 0x01 == 0)
}

impl EchoTest {
    pub fn new(services: Arc<dyn CoreServices>) -> Self {
        EchoTest {
            services,
            sessions: Mutex::new(HashMap::new()),
            media: RwLock::new(HashMap::new()),
        }
    }

    /// The [`jano_plugin::PluginFactory`] for the registry.
    pub fn factory(
        _config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(EchoTest::new(services)))
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<u64, EchoSession>> {
        // A poisoned lock only means another thread panicked mid-update of plain settings;
        // the map is still usable.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn echo(&self, handle_id: u64) -> Option<Arc<Mutex<Echo>>> {
        self.media
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&handle_id)
            .cloned()
    }

    /// Copies the settings the packet path uses.
    fn sync_media(&self, handle: &HandleRef, s: &EchoSession) {
        let Some(e) = self.echo(handle.handle_id) else {
            return;
        };
        let mut e = e.lock().unwrap_or_else(|e| e.into_inner());
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
            e.stop_recording();
        }
        e.temporal = s.temporal.map_or(2, |v| v.min(2) as u8);
        let target = s.substream.map_or(2, |v| v.min(2) as u8);
        if target != e.substream {
            e.substream = target;
        }
    }

    /// Applies a request to the handle's settings; the error is EchoTest's (code, text).
    fn apply(
        &self,
        handle: &HandleRef,
        body: &Map<String, Value>,
        has_jsep: bool,
    ) -> Result<(), (u16, String)> {
        let invalid = |e: JanusError| (code::INVALID_ELEMENT, e.reason);
        for (name, kind) in FIELDS {
            fields::check(body, name, *kind, false).map_err(invalid)?;
        }
        if !has_jsep && !FIELDS.iter().any(|(n, _)| body.contains_key(*n)) {
            return Err((
                code::INVALID_ELEMENT,
                "Message error: no supported attributes found".into(),
            ));
        }
        let mut all = self.sessions();
        let s = all.get_mut(&handle.handle_id).ok_or((
            code::INVALID_ELEMENT,
            "No session associated with this handle".to_string(),
        ))?;
        let b = |n: &str| body.get(n).and_then(Value::as_bool);
        let u = |n: &str| body.get(n).and_then(Value::as_u64);
        let st = |n: &str| body.get(n).and_then(Value::as_str).map(str::to_owned);
        if let Some(v) = b("audio") {
            s.audio_active = v;
        }
        if let Some(v) = b("video") {
            s.video_active = v;
        }
        if let Some(v) = u("bitrate") {
            s.bitrate = v;
        }
        if let Some(v) = u("substream") {
            s.substream = Some(v);
        }
        if let Some(v) = u("temporal") {
            s.temporal = Some(v);
        }
        if let Some(v) = u("fallback") {
            s.fallback = Some(v);
        }
        if let Some(v) = u("spatial_layer") {
            s.spatial_layer = Some(v);
        }
        if let Some(v) = u("temporal_layer") {
            s.temporal_layer = Some(v);
        }
        if let Some(v) = st("audiocodec") {
            s.audiocodec = Some(v);
        }
        if let Some(v) = st("videocodec") {
            s.videocodec = Some(v);
        }
        if let Some(v) = st("videoprofile") {
            s.videoprofile = Some(v);
        }
        if let Some(v) = b("opusred") {
            s.opusred = v;
        }
        if let Some(v) = body.get("min_delay").and_then(Value::as_i64) {
            s.min_delay = Some(v);
        }
        if let Some(v) = body.get("max_delay").and_then(Value::as_i64) {
            s.max_delay = Some(v);
        }
        if let Some(v) = st("filename") {
            s.filename = Some(v);
        }
        if let Some(v) = b("record") {
            s.recording = v;
        }
        Ok(())
    }
}

fn event_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Plugin for EchoTest {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<(), i32> {
        self.sessions()
            .insert(handle.handle_id, EchoSession::default());
        self.media
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                handle.handle_id,
                Arc::new(Mutex::new(Echo {
                    audio: true,
                    video: true,
                    substream: 2,
                    temporal: 2,
                    ..Echo::default()
                })),
            );
        Ok(())
    }

    fn setup_media(&self, handle: &HandleRef) {
        let bitrate = self
            .sessions()
            .get(&handle.handle_id)
            .map_or(0, |s| s.bitrate);
        if bitrate > 0 {
            self.services.send_remb(handle, bitrate);
        }
        self.services.send_pli(handle, None);
    }

    fn incoming_rtp(&self, handle: &HandleRef, packet: &RtpPacket) {
        let Some(e) = self.echo(handle.handle_id) else {
            return;
        };
        let mut e = e.lock().unwrap_or_else(|e| e.into_inner());
        if e.record.is_some() {
            let kind = match packet.kind {
                MediaKind::Audio => RecKind::Audio,
                MediaKind::Video => RecKind::Video,
            };
            if let Some(r) = e.recorder(kind, packet.codec) {
                // A full queue drops the packet (counted by the recorder) rather than
                // stalling the echo.
                let _ = r.save_rtp(&rtp_bytes(packet));
            }
        }
        match packet.kind {
            MediaKind::Audio => {
                if e.audio {
                    self.services.relay_rtp(handle, packet);
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
                            .push_event(handle, None, event_map(data), None);
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
                            .push_event(handle, None, event_map(data), None);
                    }
                }
                e.video_out.rewrite(&mut p);
                p.ext.min_delay = e.delay.0;
                p.ext.max_delay = e.delay.1;
                self.services.relay_rtp(handle, &p);
            }
        }
    }

    fn incoming_rtcp(&self, handle: &HandleRef, feedback: &RtcpFeedback) {
        match feedback {
            // The echoed stream is the peer's own: its keyframe request goes back to it.
            RtcpFeedback::KeyframeRequest { .. } => self.services.send_pli(handle, None),
        }
    }

    fn incoming_data(&self, handle: &HandleRef, message: &DataMessage<'_>) {
        if let Some(e) = self.echo(handle.handle_id) {
            let mut e = e.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = e.recorder(RecKind::Data, "text") {
                let _ = r.save_data(message.buffer);
            }
        }
        if message.binary {
            self.services.relay_data(handle, message);
            return;
        }
        // Text comes back prefixed, as Janus's EchoTest does (clients' demos show this line).
        let text = format!(
            "Janus EchoTest here! You wrote: {}",
            String::from_utf8_lossy(message.buffer)
        );
        self.services.relay_data(
            handle,
            &DataMessage {
                buffer: text.as_bytes(),
                ..*message
            },
        );
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let applied = self.apply(handle, &body, jsep.is_some());
        let ok = applied.is_ok();
        let data = match applied {
            Ok(()) => json!({"echotest": "event", "result": "ok"}),
            Err((code, text)) => json!({"echotest": "event", "error_code": code, "error": text}),
        };
        let mut answer = None;
        if let Some(s) = self.sessions().get(&handle.handle_id).cloned() {
            self.sync_media(handle, &s);
            if s.bitrate > 0 {
                // The cap is told to the peer at once (and again when media starts).
                self.services.send_remb(handle, s.bitrate);
            }
            if ok && jsep.as_ref().is_some_and(|j| j.kind == JsepType::Offer) {
                answer = Some(LocalJsep::Answer(MediaPrefs {
                    audio_codec: s.audiocodec.clone(),
                    video_codec: s.videocodec.clone(),
                    video_profile: s.videoprofile.clone(),
                    opus_red: s.opusred,
                }));
            }
            if ok && body.contains_key("substream") {
                self.services.send_pli(handle, None);
            }
        }
        // The answer is queued behind the ack by the gateway, so the client sees ack → event
        // with the same transaction, as from Janus.
        if self
            .services
            .push_event(
                handle,
                Some(transaction.to_owned()),
                event_map(data),
                answer,
            )
            .is_err()
        {
            tracing::warn!(handle = handle.handle_id, "could not queue echotest event");
        }
        PluginResult::OkWait(Some(ACK_HINT.into()))
    }

    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        // Janus's EchoTest answers admin messages by echoing them.
        Some(request)
    }

    fn slow_link(&self, handle: &HandleRef, _mindex: usize, video: bool, uplink: bool) {
        // As Janus's EchoTest: only problems on the way to the peer are worth telling it.
        if uplink {
            return;
        }
        let data = json!({"echotest": "event", "event": "slow_link", "media": if video { "video" } else { "audio" }});
        let _ = self
            .services
            .push_event(handle, None, event_map(data), None);
    }

    fn hangup_media(&self, handle: &HandleRef) {
        if let Some(e) = self.echo(handle.handle_id) {
            let mut e = e.lock().unwrap_or_else(|e| e.into_inner());
            e.stop_recording();
            e.current = None;
            e.video_out = Rewriter::default();
        }
        // A new PeerConnection on this handle starts from the defaults, as in Janus.
        if let Some(s) = self.sessions().get_mut(&handle.handle_id) {
            *s = EchoSession::default();
        }
        if let Some(e) = self.echo(handle.handle_id) {
            let mut e = e.lock().unwrap_or_else(|e| e.into_inner());
            e.audio = true;
            e.video = true;
            e.substream = 2;
            e.temporal = 2;
            e.current_temporal = None;
            e.delay = (None, None);
        }
        let done = self.sessions().contains_key(&handle.handle_id);
        if done {
            let data = json!({"echotest": "event", "result": "done"});
            let _ = self
                .services
                .push_event(handle, None, event_map(data), None);
        }
    }

    fn destroy_session(&self, handle: &HandleRef) -> Result<(), i32> {
        let echo = self
            .media
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&handle.handle_id);
        if let Some(e) = echo {
            e.lock().unwrap_or_else(|e| e.into_inner()).stop_recording();
        }
        match self.sessions().remove(&handle.handle_id) {
            Some(_) => Ok(()),
            None => Err(-1),
        }
    }

    fn query_session(&self, handle: &HandleRef) -> Value {
        match self.sessions().get(&handle.handle_id) {
            None => json!({}),
            Some(s) => json!({
                "audio_active": s.audio_active,
                "video_active": s.video_active,
                "bitrate": s.bitrate,
                "substream": s.substream,
                "temporal": s.temporal,
                "spatial_layer": s.spatial_layer,
                "temporal_layer": s.temporal_layer,
                "audiocodec": s.audiocodec,
                "videocodec": s.videocodec,
                "videoprofile": s.videoprofile,
                "opusred": s.opusred,
                "recording": s.recording,
                "filename": s.filename,
                "min_delay": s.min_delay,
                "max_delay": s.max_delay,
                "fallback": s.fallback,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_ids_shift_with_wraparound() {
        // X, S; I and L set; 15-bit picture id 0x7ffe; TL0PICIDX 255.
        let mut p = vec![0x90, 0xC0, 0xFF, 0xFE, 0xFF, 0x00];
        assert_eq!(vp8_ids(&p), (Some(0x7ffe), Some(255)));
        vp8_shift_ids(&mut p, 3, 2);
        assert_eq!(vp8_ids(&p), (Some(1), Some(1)));
        assert_eq!(p[2] & 0x80, 0x80, "long form kept");
        // Truncated descriptors are left alone.
        let mut short = vec![0x90, 0xC0];
        vp8_shift_ids(&mut short, 3, 2);
        assert_eq!(short, vec![0x90, 0xC0]);
        assert_eq!(vp8_ids(&[]), (None, None));
    }

    #[test]
    fn temporal_layer_index() {
        // X; I (short picture id), L, T: pid 5, tl0 9, TID 2.
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x09, 0x80]), Some(2));
        // X; T only: TID 1.
        assert_eq!(vp8_tid(&[0x90, 0x20, 0x40]), Some(1));
        // No T bit, or no extension, or truncated: none.
        assert_eq!(vp8_tid(&[0x90, 0x80, 0x05]), None);
        assert_eq!(vp8_tid(&[0x10, 0x00]), None);
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x09]), None);
    }

    #[test]
    fn skipped_packets_leave_no_gap() {
        let mut r = Rewriter::default();
        let pkt = |seq| RtpPacket {
            mindex: 1,
            kind: MediaKind::Video,
            pt: 96,
            codec: "h264",
            seq,
            timestamp: 0,
            marker: false,
            ssrc: 7,
            substream: None,
            ext: Default::default(),
            payload: vec![0u8; 4].into(),
        };
        let mut out = Vec::new();
        for seq in 100..110u64 {
            let mut p = pkt(seq);
            if seq % 3 == 1 {
                r.skip(&p);
                continue;
            }
            r.rewrite(&mut p);
            out.push(p.seq);
        }
        assert!(out.len() >= 5, "{out:?}");
        assert!(out.windows(2).all(|w| w[1] == w[0] + 1), "gapless: {out:?}");
    }

    #[test]
    fn keyframe_detection() {
        // S=1, PID=0, no extension; frame header P bit 0 = keyframe.
        assert!(vp8_keyframe(&[0x10, 0x00]));
        assert!(!vp8_keyframe(&[0x10, 0x01]));
        assert!(!vp8_keyframe(&[0x00, 0x00]), "not a partition start");
        // With X, I (long picture id) and the frame header after it.
        assert!(vp8_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_keyframe(&[0x90, 0x80, 0x81]));
    }
}
