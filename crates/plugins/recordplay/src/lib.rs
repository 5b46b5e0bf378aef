//! `janus.plugin.recordplay`: records what a WebRTC peer sends into `.mjr` files (with the
//! `.nfo` index Janus writes) and plays recordings back; wire-compatible with Janus's
//! Record&Play. Recordings made by Janus play here and the other way round.
//!
//! Modules: [`library`] (the recordings and their index files), [`recorder`] (the recording
//! side), [`player`] (loading and paced playback), [`handle`] (a handle's state and media
//! callbacks), [`error`] (codes).
//!
//! Threads: requests run on the signalling path; file work (creating, closing, reading
//! recordings) on the blocking pool; playback on a task of the plugins' runtime (none per
//! viewer); the media callbacks only queue frames to the writers.

pub mod error;
pub mod handle;
pub mod library;
pub mod player;
pub mod recorder;

use error::{RpError, RpResult};
use handle::{Mode, RpHandle};
use jano_plugin::fields::{opt_bool, opt_str, opt_u64, req_u64, Body};
use jano_plugin::ids::Id;
use jano_plugin::rooms::Registry;
use jano_plugin::sdp::{self, SdpKind, SdpMedia};
use jano_plugin::{
    session_arc, CoreServices, HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaKind,
    MediaPrefs, OfferMedia, Plugin, PluginInfo, PluginResult, SessionRef, Value,
};
use library::Recording;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const PACKAGE: &str = "janus.plugin.recordplay";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS Record&Play plugin",
    author: "Meetecho s.r.l.",
    description:
        "This is a trivial Record&Play plugin for Janus, to record WebRTC sessions and replay them.",
    version: 4,
    version_string: "0.0.4",
};

/// Janus's codec preference when a `record` offer does not say.
const AUDIO_PREFERENCE: &[&str] = &[
    "opus",
    "multiopus",
    "pcmu",
    "pcma",
    "g722",
    "isac32",
    "isac16",
];
const VIDEO_PREFERENCE: &[&str] = &["vp8", "vp9", "h264", "av1", "h265"];

pub struct Shared {
    pub services: Arc<dyn CoreServices>,
    /// Where recordings are written and looked for (`path`).
    pub dir: PathBuf,
    pub recordings: Registry<Recording>,
}

impl Shared {
    /// A recording is closed: its index is written and it can be listed and played.
    pub fn complete(&self, rec: &Recording) {
        let path = self.dir.join(format!("{}.nfo", rec.id));
        match std::fs::write(&path, rec.nfo()) {
            Ok(()) => rec.completed.store(true, Ordering::Release),
            Err(e) => tracing::warn!("recordplay: can't write {}: {e}", path.display()),
        }
    }

    /// `update`: the folder read again; recordings whose index went away are forgotten
    /// (those being made are kept).
    pub fn rescan(&self) {
        let found = library::scan(&self.dir);
        let ids: Vec<u64> = found.iter().map(|r| r.id).collect();
        for r in found {
            let id = Id::Num(r.id);
            if !self.recordings.contains(&id) {
                self.recordings.insert_new(id, Arc::new(r));
            }
        }
        let mut map = self.recordings.write();
        map.retain(|id, r| !r.is_complete() || matches!(id, Id::Num(n) if ids.contains(n)));
    }

    fn list(&self) -> Vec<Value> {
        let mut all: Vec<Arc<Recording>> = self
            .recordings
            .all()
            .into_iter()
            .filter(|r| r.is_complete())
            .collect();
        all.sort_by_key(|r| r.id);
        all.iter().map(|r| r.list_entry()).collect()
    }
}

pub struct RecordPlay {
    shared: Arc<Shared>,
}

impl RecordPlay {
    pub fn new(config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> RecordPlay {
        let general = config.and_then(|c| c.root.group("general"));
        // Janus will not start the plugin without a `path`; with jano's built-in
        // configuration recordings go to a folder of the system's temporary directory.
        let dir = general
            .and_then(|g| g.get_str("path"))
            .filter(|p| !p.is_empty())
            .map_or_else(
                || std::env::temp_dir().join("jano-recordings"),
                PathBuf::from,
            );
        if let Err(e) = std::fs::create_dir_all(&dir) {
            tracing::warn!("recordplay: can't create {}: {e}", dir.display());
        }
        let shared = Arc::new(Shared {
            services,
            dir,
            recordings: Registry::new(),
        });
        shared.rescan();
        RecordPlay { shared }
    }

    /// The [`jano_plugin::PluginFactory`].
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(RecordPlay::new(config, services)))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

fn reply(kind: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("recordplay".into(), json!(kind));
    m
}

/// An event with its `result` (none for `Null`: Janus's answer to `pause` with nothing going).
fn event(result: Value) -> Map<String, Value> {
    let mut m = reply("event");
    if !result.is_null() {
        m.insert("result".into(), result);
    }
    m
}

/// The first codec of `preference` an m-line offers.
fn preferred(m: &SdpMedia, preference: &[&'static str]) -> Option<&'static str> {
    preference
        .iter()
        .copied()
        .find(|c| m.codecs.iter().any(|x| x.name == *c))
}

impl Plugin for RecordPlay {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(RpHandle::new(handle.clone(), self.shared.clone())))
    }

    fn handle_message(
        &self,
        _handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(h) = session_arc::<RpHandle>(session) else {
            return PluginResult::Ok(
                RpError::Unknown("No session associated with this handle...".into()).to_data(),
            );
        };
        let request = match jano_plugin::fields::req_str(&body, "request") {
            Ok(r) => r.to_ascii_lowercase(),
            Err(e) => return PluginResult::Ok(RpError::from(e).to_data()),
        };
        let sh = &self.shared;
        let sync = match request.as_str() {
            "update" => {
                sh.rescan();
                Ok(reply("ok"))
            }
            "list" => {
                let mut m = reply("list");
                m.insert("list".into(), Value::Array(sh.list()));
                Ok(m)
            }
            "configure" => configure(&h, &body),
            "record" | "play" | "start" | "stop" | "pause" | "resume" => {
                let push = |res: RpResult<(Value, Option<LocalJsep>)>| {
                    let (data, jsep) = match res {
                        Ok((result, jsep)) => (event(result), jsep),
                        Err(e) => (e.to_data(), None),
                    };
                    let _ =
                        sh.services
                            .push_event(&h.href, Some(transaction.to_owned()), data, jsep);
                };
                match request.as_str() {
                    "record" => push(record(sh, &h, &body, jsep)),
                    "play" => {
                        // Answered once the files are read (on the blocking pool).
                        if let Err(e) = play(sh, &h, &body, jsep, transaction) {
                            push(Err(e));
                        }
                    }
                    "start" => push(start(&h, jsep)),
                    "stop" => push(Ok(stop(sh, &h))),
                    _ => push(Ok(pause(sh, &h, request == "pause"))),
                }
                return PluginResult::OkWait(None);
            }
            _ => Err(RpError::UnknownRequest(request)),
        };
        PluginResult::Ok(sync.unwrap_or_else(|e| e.to_data()))
    }

    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        let Value::Object(body) = request else {
            return Some(Value::Object(RpError::NotAnObject.to_data()));
        };
        let reply = match jano_plugin::fields::req_str(&body, "request") {
            Ok(r) if r.eq_ignore_ascii_case("update") => {
                self.shared.rescan();
                reply("ok")
            }
            Ok(r) => RpError::UnknownRequest(r.to_owned()).to_data(),
            Err(e) => RpError::from(e).to_data(),
        };
        Some(Value::Object(reply))
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        if let Some(h) = session_arc::<RpHandle>(session) {
            h.finish(false);
        }
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(h) = session_arc::<RpHandle>(session) else {
            return json!({});
        };
        let (kind, rec) = match &*h.mode() {
            Mode::Idle => ("none", None),
            Mode::Recording { rec, .. } => ("recorder", Some(rec.clone())),
            Mode::Playing { rec, .. } => ("player", Some(rec.clone())),
        };
        let mut info = json!({"type": kind, "hangingup": 0, "destroyed": 0});
        if let Some(r) = rec {
            info["recording_id"] = json!(r.id);
            info["recording_name"] = json!(r.name);
            if r.e2ee {
                info["e2ee"] = json!(true);
            }
        }
        info
    }
}

fn configure(h: &RpHandle, b: &Body) -> RpResult<Map<String, Value>> {
    let bitrate = opt_u64(b, "video-bitrate-max")?;
    let interval = opt_u64(b, "video-keyframe-interval")?;
    if let Some(v) = bitrate {
        h.video_bitrate.store(v, Ordering::Relaxed);
    }
    if let Some(v) = interval {
        h.keyframe_interval_ms.store(v, Ordering::Relaxed);
    }
    let mut m = reply("configure");
    m.insert("status".into(), json!("ok"));
    m.insert(
        "settings".into(),
        json!({
            "video-keyframe-interval": h.keyframe_interval_ms.load(Ordering::Relaxed),
            "video-bitrate-max": h.video_bitrate.load(Ordering::Relaxed),
        }),
    );
    Ok(m)
}

type Answer = (Value, Option<LocalJsep>);

fn record(sh: &Shared, h: &Arc<RpHandle>, b: &Body, jsep: Option<Jsep>) -> RpResult<Answer> {
    let Some(jsep) = jsep.filter(|j| j.kind == JsepType::Offer && !j.sdp.is_empty()) else {
        return Err(RpError::Missing("Missing SDP offer".into()));
    };
    let name = jano_plugin::fields::req_str(b, "name")?;
    if name.is_empty() {
        return Err(RpError::Invalid(
            "Invalid element type (name should be a non-empty string)".into(),
        ));
    }
    let wanted = opt_u64(b, "id")?;
    let filename = opt_str(b, "filename")?;
    let audiocodec = opt_str(b, "audiocodec")?;
    let videocodec = opt_str(b, "videocodec")?;
    let videoprofile = opt_str(b, "videoprofile")?;
    let opusred = opt_bool(b, "opusred")?.unwrap_or(false);
    let textdata = opt_bool(b, "textdata")?;
    opt_bool(b, "update")?;
    let e2ee = jsep.extra.get("e2ee") == Some(&Value::Bool(true));
    let renegotiation = jsep.extra.get("update") == Some(&Value::Bool(true));
    if renegotiation {
        // An ICE restart or other renegotiation of a recorder: answered as before.
        let mode = h.mode();
        let Mode::Recording { rec, .. } = &*mode else {
            return Err(RpError::InvalidState(
                "Not a recording session, can't update",
            ));
        };
        let prefs = MediaPrefs {
            audio_codec: rec.acodec.map(str::to_owned),
            video_codec: rec.vcodec.map(str::to_owned),
            recv_only: true,
            e2ee: rec.e2ee,
            ..MediaPrefs::default()
        };
        return Ok((
            json!({"status": "recording", "id": rec.id}),
            Some(LocalJsep::Answer(prefs)),
        ));
    }
    if !sdp::looks_valid(&jsep.sdp) {
        return Err(RpError::InvalidSdp(
            "Error parsing offer: invalid SDP".into(),
        ));
    }
    let lines = sdp::parse(&jsep.sdp);
    let first = |k: SdpKind| lines.iter().find(|m| m.kind == k && !m.disabled);
    let pick = |k: SdpKind, forced: Option<&str>, pref: &[&'static str]| {
        let m = first(k)?;
        if !m.sends {
            return None;
        }
        match forced {
            Some(c) => jano_plugin::rtp::codec_name(c),
            None => preferred(m, pref),
        }
    };
    let acodec = pick(SdpKind::Audio, audiocodec, AUDIO_PREFERENCE);
    let vcodec = pick(SdpKind::Video, videocodec, VIDEO_PREFERENCE);
    let vfmtp = vcodec.and_then(|c| {
        let m = first(SdpKind::Video)?;
        let mut same = m.codecs.iter().filter(|x| x.name == c);
        let chosen = match videoprofile {
            Some(p) => m.codecs.iter().find(|x| x.name == c && x.fmtp.contains(p)),
            None => same.next(),
        };
        chosen.map(|x| x.fmtp.clone()).filter(|f| !f.is_empty())
    });
    let opusred_pt = (opusred && acodec == Some("opus"))
        .then(|| first(SdpKind::Audio))
        .flatten()
        .and_then(|m| m.codecs.iter().find(|x| x.name == "red").map(|x| x.pt));
    let data = first(SdpKind::Data).is_some();
    let id = match wanted.filter(|id| *id > 0) {
        Some(id) if sh.recordings.contains(&Id::Num(id)) => return Err(RpError::Exists(id)),
        Some(id) => id,
        None => loop {
            let id = (rand::random::<u64>() & ((1 << 53) - 1)).max(1);
            if !sh.recordings.contains(&Id::Num(id)) {
                break id;
            }
        },
    };
    let base = filename.map_or_else(|| format!("rec-{id}"), str::to_owned);
    let rec = Arc::new(Recording {
        id,
        name: name.to_owned(),
        date: jano_plugin::clock::local_time(c"%Y-%m-%d %H:%M:%S"),
        audio: acodec.map(|_| format!("{base}-audio")),
        video: vcodec.map(|_| format!("{base}-video")),
        data: data.then(|| format!("{base}-data")),
        acodec,
        vcodec,
        afmtp: None,
        vfmtp: vfmtp.clone(),
        opusred_pt,
        textdata: textdata.unwrap_or(true),
        e2ee,
        completed: AtomicBool::new(false),
    });
    if !sh.recordings.insert_new(Id::Num(id), rec.clone()) {
        return Err(RpError::Exists(id));
    }
    let plan = recorder::Plan {
        dir: sh.dir.clone(),
        audio: rec.audio.clone().zip(acodec),
        video: rec.video.clone().zip(vcodec).map(|(n, c)| (n, c, vfmtp)),
        data: rec.data.clone().map(|n| (n, rec.textdata)),
        opusred_pt,
    };
    // A handle that was already recording or playing starts over.
    h.finish(false);
    let capture = recorder::Capture::start(&*sh.services, plan);
    *h.mode() = Mode::Recording {
        rec,
        capture,
        paused: false,
    };
    h.negotiated.store(true, Ordering::Release);
    let prefs = MediaPrefs {
        audio_codec: acodec.map(str::to_owned),
        video_codec: vcodec.map(str::to_owned),
        video_profile: videoprofile.map(str::to_owned),
        opus_red: opusred_pt.is_some(),
        recv_only: true,
        e2ee,
        ..MediaPrefs::default()
    };
    Ok((
        json!({"status": "recording", "id": id}),
        Some(LocalJsep::Answer(prefs)),
    ))
}

/// The offer a viewer of a recording gets: what the recording has, sent only.
fn playback_offer(rec: &Recording, restart: bool) -> LocalJsep {
    let mut media = Vec::new();
    if let (Some(_), Some(c)) = (&rec.audio, rec.acodec) {
        let mut m = OfferMedia::new(MediaKind::Audio, true, false);
        m.codec = Some(c.to_owned());
        media.push(m);
    }
    if let (Some(_), Some(c)) = (&rec.video, rec.vcodec) {
        let mut m = OfferMedia::new(MediaKind::Video, true, false);
        m.codec = Some(c.to_owned());
        m.profile = rec.vfmtp.as_deref().and_then(|f| {
            sdp::fmtp_param(f, "profile-level-id")
                .map(|p| p.get(..4).unwrap_or(p))
                .or_else(|| sdp::fmtp_param(f, "profile-id"))
                .map(str::to_owned)
        });
        media.push(m);
    }
    LocalJsep::Offer {
        media,
        data: rec.data.is_some(),
        prefs: MediaPrefs {
            e2ee: rec.e2ee,
            ..MediaPrefs::default()
        },
        restart,
        fill: None,
    }
}

fn play(sh: &Shared, h: &Arc<RpHandle>, b: &Body, jsep: Option<Jsep>, tx: &str) -> RpResult<()> {
    if jsep.is_some_and(|j| !j.sdp.is_empty()) {
        return Err(RpError::Invalid(
            "A play request can't contain an SDP".into(),
        ));
    }
    let id = req_u64(b, "id")?;
    let restart = opt_bool(b, "restart")?.unwrap_or(false);
    if restart {
        let mode = h.mode();
        let Mode::Playing { rec, .. } = &*mode else {
            return Err(RpError::InvalidState(
                "Not a playout session, can't restart",
            ));
        };
        let offer = playback_offer(rec, true);
        let data = event(json!({"status": "restarting", "id": rec.id}));
        let _ = sh
            .services
            .push_event(&h.href, Some(tx.to_owned()), data, Some(offer));
        return Ok(());
    }
    let rec = sh
        .recordings
        .get(&Id::Num(id))
        .filter(|r| r.is_complete())
        .ok_or(RpError::NotFound)?;
    let (services, dir, h2, tx) = (
        sh.services.clone(),
        sh.dir.clone(),
        h.clone(),
        tx.to_owned(),
    );
    sh.services.spawn_blocking(Box::new(move || {
        let loaded = player::load(&dir, &rec);
        if !loaded.has_media() {
            let data = RpError::InvalidRecording.to_data();
            let _ = services.push_event(&h2.href, Some(tx), data, None);
            return;
        }
        let mut result = json!({"status": "preparing", "id": rec.id});
        if let Some(w) = loaded.warning {
            result["warning"] = json!(w);
        }
        let offer = playback_offer(&rec, false);
        h2.finish(false);
        *h2.mode() = Mode::Playing {
            rec,
            loaded: Some(loaded),
            started: false,
            stop: Arc::new(AtomicBool::new(false)),
        };
        h2.negotiated.store(true, Ordering::Release);
        let _ = services.push_event(&h2.href, Some(tx), event(result), Some(offer));
    }));
    Ok(())
}

fn start(h: &RpHandle, jsep: Option<Jsep>) -> RpResult<Answer> {
    if !matches!(&*h.mode(), Mode::Playing { .. }) {
        return Err(RpError::InvalidState("Not a playout session, can't start"));
    }
    if jsep.is_none_or(|j| j.sdp.is_empty()) {
        return Err(RpError::Missing("Missing SDP answer".into()));
    }
    Ok((json!({"status": "playing"}), None))
}

fn stop(sh: &Shared, h: &RpHandle) -> Answer {
    let id = match &*h.mode() {
        Mode::Recording { rec, .. } | Mode::Playing { rec, .. } => Some(rec.id),
        Mode::Idle => None,
    };
    let mut result = json!({"status": "stopped"});
    if let Some(id) = id {
        result["id"] = json!(id);
    }
    // The PeerConnection goes; the hang-up closes the recording or the playback and says
    // `done`. Without one, `done` is said here (Janus's hang-up says it anyway).
    sh.services.close_pc(&h.href);
    if !h.negotiated.load(Ordering::Acquire) {
        h.finish(false);
        let mut done = reply("event");
        done.insert("result".into(), json!("done"));
        let services = sh.services.clone();
        let href = h.href.clone();
        // After the `stopped` event this request answers with.
        sh.services.spawn(Box::pin(async move {
            let _ = services.push_event(&href, None, done, None);
        }));
    }
    (result, None)
}

fn pause(sh: &Shared, h: &RpHandle, pause: bool) -> Answer {
    let mut mode = h.mode();
    let id = match &mut *mode {
        Mode::Recording {
            rec,
            capture,
            paused,
        } => {
            if *paused != pause {
                *paused = pause;
                capture.pause(pause);
                if !pause {
                    sh.services.send_pli(&h.href, None);
                }
            }
            rec.id
        }
        Mode::Playing { rec, .. } => rec.id,
        // Janus answers an event without a result here.
        Mode::Idle => return (Value::Null, None),
    };
    (
        json!({"status": if pause { "paused" } else { "resumed" }, "id": id}),
        None,
    )
}
