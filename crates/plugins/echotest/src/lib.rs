//! `janus.plugin.echotest`: the first plugin a Janus user tries. It answers every message
//! asynchronously (an `ack` with a hint, then an `event` carrying the request's transaction), as
//! Janus's EchoTest does, and keeps the per-handle settings (audio/video on or off, REMB cap,
//! simulcast and SVC targets, recording) that the media engine will apply to the echoed stream.

mod media;

use jano_api::fields::{self, Kind};
use jano_api::JanusError;
use jano_plugin::{
    session_as, CoreServices, HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaPrefs, Plugin,
    PluginInfo, PluginResult, SessionRef, Value,
};
use media::EchoHandle;
use serde_json::json;
use std::sync::Arc;

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
pub(crate) struct EchoSession {
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
}

impl EchoTest {
    pub fn new(services: Arc<dyn CoreServices>) -> Self {
        EchoTest { services }
    }

    /// The [`jano_plugin::PluginFactory`] for the registry.
    pub fn factory(
        _config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(EchoTest::new(services)))
    }

    /// Applies a request to the handle's settings; the error is EchoTest's (code, text).
    fn apply(
        &self,
        state: &EchoHandle,
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
        let mut s = state.settings();
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

pub(crate) fn event_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

impl Plugin for EchoTest {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, _handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(EchoHandle::new(self.services.clone())))
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(state) = session_as::<EchoHandle>(session) else {
            return PluginResult::Error("No session associated with this handle".into());
        };
        let applied = self.apply(state, &body, jsep.is_some());
        let ok = applied.is_ok();
        let data = match applied {
            Ok(()) => json!({"echotest": "event", "result": "ok"}),
            Err((code, text)) => json!({"echotest": "event", "error_code": code, "error": text}),
        };
        let mut answer = None;
        let s = state.settings().clone();
        state.sync_media(handle, &s);
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
                opus_stereo: false,
                recv_only: false,
                // The core keeps the client's `e2ee` flag and echoes it in the answer.
                e2ee: false,
                without_extensions: Default::default(),
            }));
        }
        if ok && body.contains_key("substream") {
            self.services.send_pli(handle, None);
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

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        let state = session_as::<EchoHandle>(session).ok_or(-1)?;
        state.echo().stop_recording(&*self.services);
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(state) = session_as::<EchoHandle>(session) else {
            return json!({});
        };
        let s = state.settings();
        json!({
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
        })
    }
}
