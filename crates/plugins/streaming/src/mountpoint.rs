//! A mountpoint: its id, its settings (from `create` or a category of
//! `janus.plugin.streaming.jcfg`), its sources (see [`crate::source`]) and its viewers.

pub use crate::config::{FileCfg, MpConfig, PortRange, RtspCfg, StreamCfg};
use crate::error::{StError, StResult};
pub use crate::source::Source;
pub(crate) use crate::source::{spawn_reader, spawn_rtcp_reader};
use jano_plugin::fields::Body;
use jano_plugin::{CoreServices, HandleRef, MediaKind, Value};
use serde_json::json;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// A mountpoint id: an integer, or a string with `string_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MpId {
    Num(u64),
    Str(String),
}

impl fmt::Display for MpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpId::Num(n) => write!(f, "{n}"),
            MpId::Str(s) => f.write_str(s),
        }
    }
}

impl MpId {
    pub fn to_json(&self) -> Value {
        match self {
            MpId::Num(n) => json!(n),
            MpId::Str(s) => json!(s),
        }
    }

    /// `id` of a request (`Ok(None)` when absent).
    pub fn opt(b: &Body, strings: bool) -> StResult<Option<MpId>> {
        match (b.get("id"), strings) {
            (None | Some(Value::Null), _) => Ok(None),
            (Some(Value::String(s)), true) => Ok(Some(MpId::Str(s.clone()))),
            (Some(v), false) if v.as_u64().is_some() => Ok(v.as_u64().map(MpId::Num)),
            (_, true) => Err(StError::invalid_type("id", "a string")),
            (_, false) => Err(StError::invalid_type("id", "a positive integer")),
        }
    }

    pub fn req(b: &Body, strings: bool) -> StResult<MpId> {
        MpId::opt(b, strings)?.ok_or(StError::Missing("id"))
    }

    pub fn random(strings: bool) -> MpId {
        // JS-safe, as Janus keeps them.
        let n = rand::random::<u64>() & ((1 << 53) - 1);
        if strings {
            MpId::Str(n.to_string())
        } else {
            MpId::Num(n.max(1))
        }
    }
}

/// What kind of media a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Audio,
    Video,
    Data,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Audio => "audio",
            StreamKind::Video => "video",
            StreamKind::Data => "data",
        }
    }

    pub(crate) fn media(self) -> Option<MediaKind> {
        match self {
            StreamKind::Audio => Some(MediaKind::Audio),
            StreamKind::Video => Some(MediaKind::Video),
            StreamKind::Data => None,
        }
    }
}

/// A mountpoint and its viewers.
pub struct Mountpoint {
    pub id: MpId,
    cfg: Mutex<MpConfig>,
    pub sources: Vec<Arc<Source>>,
    /// Handles watching it (for `destroyed`, `kick_all`…).
    viewers: Mutex<Vec<HandleRef>>,
    destroyed: AtomicBool,
}

impl std::fmt::Debug for Mountpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mountpoint")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Mountpoint {
    /// Binds every source socket (all or nothing) and starts reading them.
    pub fn start(
        id: MpId,
        cfg: MpConfig,
        services: &Arc<dyn CoreServices>,
        ports: &Arc<PortRange>,
    ) -> StResult<Arc<Mountpoint>> {
        let router = services.media_router();
        if let Some(r) = cfg.rtsp.clone() {
            return crate::pull::start(id, cfg, r, services, ports, router);
        }
        let mut sources = Vec::new();
        match (&cfg.file, cfg.streams.first()) {
            (Some(f), Some(s)) => sources.push(Arc::new(Source::of_file(
                s.clone(),
                f.clone(),
                services,
                router.as_ref(),
            )?)),
            _ => {
                for (i, s) in cfg.streams.iter().enumerate() {
                    let mut src = Source::bind(s.clone(), i, router.as_ref(), ports)?;
                    src.collision_ms = cfg.collision;
                    // Data comes plain; audio and video each keep their own SRTP state.
                    if let (Some((suite, key)), false) = (&cfg.srtp, s.kind == StreamKind::Data) {
                        let rx = jano_plugin::srtp::SrtpReceiver::new(*suite, key)
                            .map_err(|e| StError::CantCreate(e.to_string()))?;
                        src.srtp = Some(Mutex::new(rx));
                    }
                    sources.push(Arc::new(src));
                }
            }
        }
        let mp = Arc::new(Mountpoint {
            id,
            cfg: Mutex::new(cfg),
            sources,
            viewers: Mutex::new(Vec::new()),
            destroyed: AtomicBool::new(false),
        });
        for s in &mp.sources {
            match &s.file {
                Some(f) if f.cfg.live => {
                    let src = s.clone();
                    let stream = s.play_stream(&f.track);
                    crate::play::spawn_live(services, stream, s.ctl.clone(), move |p| {
                        src.count();
                        src.deliver(p);
                    });
                }
                Some(_) => {}
                None => {
                    spawn_reader(services, s);
                    spawn_rtcp_reader(services, s);
                }
            }
        }
        Ok(mp)
    }

    /// A mountpoint of these sources, none watching yet.
    pub(crate) fn assemble(id: MpId, cfg: MpConfig, sources: Vec<Arc<Source>>) -> Arc<Mountpoint> {
        Arc::new(Mountpoint {
            id,
            cfg: Mutex::new(cfg),
            sources,
            viewers: Mutex::new(Vec::new()),
            destroyed: AtomicBool::new(false),
        })
    }

    pub fn cfg(&self) -> MutexGuard<'_, MpConfig> {
        self.cfg.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn viewers(&self) -> Vec<HandleRef> {
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn add_viewer(&self, h: &HandleRef) {
        let mut g = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if !g.iter().any(|x| x.handle_id == h.handle_id) {
            g.push(h.clone());
        }
    }

    pub fn remove_viewer(&self, handle_id: u64) {
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.handle_id != handle_id);
        for s in &self.sources {
            s.remove_viewer(handle_id, s.mindex);
            s.forget_viewer(handle_id);
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.sources
            .iter()
            .all(|s| s.ctl.enabled.load(Ordering::Relaxed))
    }

    pub fn set_enabled(&self, on: bool) {
        for s in &self.sources {
            s.ctl.enabled.store(on, Ordering::Relaxed);
        }
    }

    /// Gone from the plugin (its viewers no longer watch it).
    pub fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
        self.stop();
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Stops reading the sources (their sockets close when the readers end).
    pub fn stop(&self) {
        for s in &self.sources {
            s.stop();
        }
    }

    /// The `media` list `list`/`info` show.
    pub fn media_json(&self, full: bool) -> Vec<Value> {
        self.sources
            .iter()
            .map(|s| {
                let mut m = jano_plugin::Map::new();
                if s.file.is_some() {
                    // Janus describes a file's one stream by its codec alone.
                    m.insert("type".into(), json!("audio"));
                    m.insert("pt".into(), json!(s.cfg.pt));
                    m.insert("codec".into(), json!(s.cfg.codec));
                    m.insert("rtpmap".into(), json!(s.cfg.rtpmap));
                    if let Some(f) = &s.cfg.fmtp {
                        m.insert("fmtp".into(), json!(f));
                    }
                    return Value::Object(m);
                }
                m.insert("mid".into(), json!(s.cfg.mid));
                if full {
                    m.insert("mindex".into(), json!(s.mindex));
                }
                m.insert("type".into(), json!(s.cfg.kind.as_str()));
                m.insert("label".into(), json!(s.cfg.label));
                if let Some(msid) = &s.cfg.msid {
                    m.insert("msid".into(), json!(msid));
                }
                if let Some(age) = s.age_ms() {
                    m.insert("age_ms".into(), json!(age));
                }
                if full {
                    if let Some(pt) = s.cfg.pt {
                        m.insert("pt".into(), json!(pt));
                    }
                    if let Some(c) = s.cfg.codec {
                        m.insert("codec".into(), json!(c));
                    }
                    if let Some(p) = s.rtcp_local_port {
                        m.insert("rtcp_port".into(), json!(p));
                    }
                    if let Some(r) = &s.cfg.rtpmap {
                        m.insert("rtpmap".into(), json!(r));
                    }
                    if let Some(f) = &s.cfg.fmtp {
                        m.insert("fmtp".into(), json!(f));
                    }
                }
                Value::Object(m)
            })
            .collect()
    }
}

impl Drop for Mountpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Body {
        match v {
            Value::Object(m) => m,
            _ => Body::new(),
        }
    }

    #[test]
    fn multistream_and_legacy_settings() {
        let c = MpConfig::rtp_from(
            &body(json!({"media": [
                {"type": "audio", "mid": "a1", "port": 0, "pt": 111, "rtpmap": "opus/48000/2"},
                {"type": "video", "mid": "v1", "port": 0, "pt": 96, "codec": "VP8"},
                {"type": "data", "mid": "d1", "datatype": "binary"}
            ]})),
            &MpId::Num(7),
        )
        .expect("config");
        assert!(!c.legacy);
        assert_eq!(c.name, "7");
        let codecs: Vec<_> = c.streams.iter().map(|s| s.codec).collect();
        assert_eq!(codecs, vec![Some("opus"), Some("vp8"), None]);
        assert!(c.streams[2].binary);
        let c = MpConfig::rtp_from(
            &body(
                json!({"name": "cam", "audio": true, "audioport": 5002, "audiopt": 0,
                         "audiortpmap": "PCMU/8000", "video": false}),
            ),
            &MpId::Num(1),
        )
        .expect("legacy");
        assert!(c.legacy);
        assert_eq!(c.streams.len(), 1);
        assert_eq!(
            (c.streams[0].port, c.streams[0].codec),
            (5002, Some("pcmu"))
        );
        let e = MpConfig::rtp_from(&body(json!({"video": true, "videopt": 96})), &MpId::Num(1));
        assert_eq!(e.map(|_| ()).map_err(|e| e.code()), Err(456));
        let e = MpConfig::rtp_from(
            &body(json!({"video": true, "videocodec": "vp8"})),
            &MpId::Num(1),
        );
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.to_string()),
            Err("Missing mandatory element (videopt)".into())
        );
        let e = MpConfig::rtp_from(&body(json!({"audio": false})), &MpId::Num(1));
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.to_string()),
            Err("Can't add 'rtp' stream, no audio or video have to be streamed...".into())
        );
    }
}
