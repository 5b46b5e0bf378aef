//! A participant: who it is in the room, the streams it publishes, and its media path (what it
//! sends goes to the subscribers of each stream; its audio levels make `talking` events).

use crate::json::Id;
use crate::media::StreamMedia;
use crate::remote::{RemoteFeed, Remotized};
use crate::room::Room;
use crate::sdp::SdpKind;
use crate::taps::Taps;
use jano_plugin::{
    CoreServices, DataMessage, HandleRef, KeyframeThrottle, Map, MediaKind, RtpPacket, Value,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::{Duration, Instant};

/// Where a participant is in publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Joined, not publishing.
    Idle,
    /// An offer was answered; waiting for the PeerConnection.
    Negotiating,
    /// The PeerConnection is up: others see it in `publishers`.
    Active,
}

/// One m-line of what a participant publishes, as events describe it.
#[derive(Debug, Clone)]
pub struct PubStream {
    pub kind: SdpKind,
    pub mindex: usize,
    pub mid: String,
    pub disabled: bool,
    pub codec: Option<String>,
    pub description: Option<String>,
    pub fec: bool,
    pub dtx: bool,
    pub stereo: bool,
    pub h264_profile: Option<String>,
    pub vp9_profile: Option<String>,
    pub simulcast: bool,
    pub svc: bool,
    pub moderated: bool,
    pub audiolevel_ext_id: Option<u8>,
    pub videoorient_ext_id: Option<u8>,
    pub playoutdelay_ext_id: Option<u8>,
    pub talking: bool,
    /// The packet path of an audio or video stream.
    pub media: Option<Arc<StreamMedia>>,
}

impl PubStream {
    /// The stream as `joined`/`publishers` list it (`configured` adds the extension ids).
    pub fn to_json(&self, talking_events: bool, with_ext_ids: bool) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert("mindex".into(), json!(self.mindex));
        m.insert("mid".into(), json!(self.mid));
        if self.disabled {
            m.insert("disabled".into(), json!(true));
            return Value::Object(m);
        }
        if let Some(d) = &self.description {
            m.insert("description".into(), json!(d));
        }
        if self.moderated {
            m.insert("moderated".into(), json!(true));
        }
        if let Some(c) = &self.codec {
            m.insert("codec".into(), json!(c));
        }
        if self.codec.as_deref() == Some("opus") {
            if self.stereo {
                m.insert("stereo".into(), json!(true));
            }
            if self.fec {
                m.insert("fec".into(), json!(true));
            }
            if self.dtx {
                m.insert("dtx".into(), json!(true));
            }
        }
        if let Some(p) = &self.h264_profile {
            m.insert("h264_profile".into(), json!(p));
        }
        if let Some(p) = &self.vp9_profile {
            m.insert("vp9_profile".into(), json!(p));
        }
        if self.simulcast {
            m.insert("simulcast".into(), json!(true));
        }
        if self.svc {
            m.insert("svc".into(), json!(true));
        }
        if self.kind == SdpKind::Audio && talking_events {
            m.insert("talking".into(), json!(self.talking));
        }
        if with_ext_ids {
            if let Some(id) = self.audiolevel_ext_id {
                m.insert("audiolevel_ext_id".into(), json!(id));
            }
            if let Some(id) = self.videoorient_ext_id {
                m.insert("videoorient_ext_id".into(), json!(id));
            }
            if let Some(id) = self.playoutdelay_ext_id {
                m.insert("playoutdelay_ext_id".into(), json!(id));
            }
        }
        Value::Object(m)
    }
}

pub struct PubState {
    pub display: Option<String>,
    pub metadata: Option<Value>,
    pub phase: Phase,
    pub streams: Vec<PubStream>,
    /// Bitrate cap asked of the publisher (REMB), 0 = the room's.
    pub bitrate: u64,
    pub talking: bool,
    /// Recording asked by `configure`/`publish` (`record`, `filename`).
    pub record: Option<bool>,
    pub filename: Option<String>,
    pub audio_level_average: Option<u64>,
    pub audio_active_packets: Option<u64>,
}

pub use jano_plugin::talk::TalkCfg;
use jano_plugin::talk::TalkDetector;

pub struct Publisher {
    services: Arc<dyn CoreServices>,
    pub id: Id,
    pub private_id: u32,
    pub href: HandleRef,
    pub room: Arc<Room>,
    st: Mutex<PubState>,
    /// The packet path's view of the streams, by m-line index.
    media: RwLock<Vec<Arc<StreamMedia>>>,
    /// Subscriptions receiving this participant's data channel.
    data_subs: RwLock<Vec<HandleRef>>,
    pub taps: Taps,
    publishing: AtomicBool,
    left: AtomicBool,
    throttle: Mutex<KeyframeThrottle>,
    talk: Mutex<TalkDetector>,
    talk_cfg: Mutex<Option<TalkCfg>>,
    /// The last periodic keyframe request (`fir_freq`).
    pub last_fir: Mutex<Option<Instant>>,
    /// Set for a remote publisher (fed over UDP by another server).
    remote: OnceLock<Arc<RemoteFeed>>,
    /// This publisher's `publish_remotely`s.
    remotes: Mutex<Vec<Remotized>>,
    /// The room's placeholder publisher (`dummy_publisher`): no handle, no media.
    dummy: bool,
    /// What it publishes is end-to-end encrypted (its offer said `e2ee`).
    e2ee: AtomicBool,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher").field("id", &self.id).finish()
    }
}

impl Publisher {
    pub fn new(
        services: Arc<dyn CoreServices>,
        id: Id,
        private_id: u32,
        href: HandleRef,
        room: Arc<Room>,
        display: Option<String>,
        metadata: Option<Value>,
    ) -> Publisher {
        Publisher {
            services,
            id,
            private_id,
            href,
            room,
            st: Mutex::new(PubState {
                display,
                metadata,
                phase: Phase::Idle,
                streams: Vec::new(),
                bitrate: 0,
                talking: false,
                record: None,
                filename: None,
                audio_level_average: None,
                audio_active_packets: None,
            }),
            media: RwLock::new(Vec::new()),
            data_subs: RwLock::new(Vec::new()),
            taps: Taps::default(),
            publishing: AtomicBool::new(false),
            left: AtomicBool::new(false),
            throttle: Mutex::new(KeyframeThrottle::new(Duration::from_millis(500))),
            talk: Mutex::new(TalkDetector::default()),
            talk_cfg: Mutex::new(None),
            last_fir: Mutex::new(None),
            remote: OnceLock::new(),
            remotes: Mutex::new(Vec::new()),
            dummy: false,
            e2ee: AtomicBool::new(false),
        }
    }

    /// Makes this the room's dummy publisher.
    pub fn into_dummy(mut self) -> Publisher {
        self.dummy = true;
        self
    }

    pub fn is_dummy(&self) -> bool {
        self.dummy
    }

    /// Whether a client's handle stands behind it (not a remote or dummy publisher): only
    /// those get events and have a PeerConnection to close or cap.
    pub fn has_handle(&self) -> bool {
        !self.dummy && !self.is_remote()
    }

    pub fn is_e2ee(&self) -> bool {
        self.e2ee.load(Ordering::Acquire)
    }

    pub fn set_e2ee(&self, on: bool) {
        self.e2ee.store(on, Ordering::Release);
    }

    pub fn state(&self) -> MutexGuard<'_, PubState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_publishing(&self) -> bool {
        self.publishing.load(Ordering::Acquire)
    }

    pub fn has_left(&self) -> bool {
        self.left.load(Ordering::Acquire)
    }

    pub fn mark_left(&self) {
        self.left.store(true, Ordering::Release);
    }

    /// Installs the packet path of newly negotiated streams and makes the participant active.
    pub fn activate(&self, talk: Option<TalkCfg>) {
        let st = self.state();
        let media: Vec<Arc<StreamMedia>> =
            st.streams.iter().filter_map(|s| s.media.clone()).collect();
        *self.media.write().unwrap_or_else(|e| e.into_inner()) = media;
        *self.talk_cfg.lock().unwrap_or_else(|e| e.into_inner()) = talk;
        self.publishing.store(true, Ordering::Release);
    }

    /// Stops publishing: every subscriber of its streams stops receiving them; forwarders
    /// stop and recordings are finished (on the blocking pool).
    pub fn deactivate(&self) -> bool {
        let was = self.publishing.swap(false, Ordering::AcqRel);
        let media = std::mem::take(&mut *self.media.write().unwrap_or_else(|e| e.into_inner()));
        for m in &media {
            m.clear();
        }
        self.data_subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.remotes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        if let Some(r) = self.remote.get() {
            r.stop();
        }
        let recs = self.taps.clear();
        if !recs.is_empty() {
            self.services.spawn_blocking(Box::new(move || drop(recs)));
        }
        was
    }

    /// The stream with this mid (signalling side).
    pub fn stream_media(&self, mid: &str) -> Option<Arc<StreamMedia>> {
        self.media
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|m| m.mid == mid)
            .cloned()
    }

    /// A moderator muted or unmuted one of its streams.
    pub fn set_muted(&self, mid: &str, muted: bool) {
        if let Some(m) = self.stream_media(mid) {
            m.muted.store(muted, Ordering::Relaxed);
        }
    }

    pub fn add_data_sub(&self, h: &HandleRef) {
        let mut g = self.data_subs.write().unwrap_or_else(|e| e.into_inner());
        if !g.iter().any(|x| x.handle_id == h.handle_id) {
            g.push(h.clone());
        }
    }

    pub fn remove_data_sub(&self, handle_id: u64) {
        self.data_subs
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.handle_id != handle_id);
    }

    /// A subscriber asked for a keyframe (or starts, or switches layer): the publisher is
    /// asked, at most twice a second.
    pub fn keyframe_now(&self, mindex: usize) {
        let allow = self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now());
        if allow {
            self.request_keyframe(Some(mindex));
        }
    }

    /// Asks the publisher for a keyframe now: its PeerConnection, or the server feeding a
    /// remote publisher.
    pub fn request_keyframe(&self, mindex: Option<usize>) {
        match self.remote.get() {
            Some(r) => {
                let st = self.state();
                for s in st
                    .streams
                    .iter()
                    .filter(|s| s.kind == SdpKind::Video && mindex.is_none_or(|m| m == s.mindex))
                {
                    r.request_keyframe(s.mindex);
                }
            }
            None => self.services.send_pli(&self.href, mindex),
        }
    }

    pub fn set_remote(&self, feed: Arc<RemoteFeed>) {
        let _ = self.remote.set(feed);
    }

    pub fn is_remote(&self) -> bool {
        self.remote.get().is_some()
    }

    pub fn remote_feed(&self) -> Option<&Arc<RemoteFeed>> {
        self.remote.get()
    }

    pub fn add_remote(&self, r: Remotized) {
        self.remotes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(r);
    }

    /// Forgets a `publish_remotely`; whether it existed.
    pub fn remove_remote(&self, remote_id: &str) -> bool {
        let mut g = self.remotes.lock().unwrap_or_else(|e| e.into_inner());
        let before = g.len();
        g.retain(|r| r.remote_id != remote_id);
        before != g.len()
    }

    /// The `publish_remotely`s, as `listremotes` shows them.
    pub fn remotes(&self) -> Vec<(String, String, u16, Option<u16>)> {
        self.remotes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| (r.remote_id.clone(), r.host.clone(), r.port, r.rtcp_port))
            .collect()
    }

    pub fn services(&self) -> &dyn CoreServices {
        &*self.services
    }

    /// This participant as `joined`/`publishers` list it.
    pub fn to_json(&self, talking_events: bool) -> Value {
        let st = self.state();
        let mut m = Map::new();
        m.insert("id".into(), self.id.to_json());
        if let Some(d) = &st.display {
            m.insert("display".into(), json!(d));
        }
        if let Some(md) = &st.metadata {
            m.insert("metadata".into(), md.clone());
        }
        if self.dummy {
            m.insert("dummy".into(), json!(true));
        }
        let first = |k: SdpKind| {
            st.streams
                .iter()
                .find(|s| s.kind == k && !s.disabled)
                .and_then(|s| s.codec.clone())
        };
        if let Some(c) = first(SdpKind::Audio) {
            m.insert("audio_codec".into(), json!(c));
        }
        if let Some(c) = first(SdpKind::Video) {
            m.insert("video_codec".into(), json!(c));
        }
        if st
            .streams
            .iter()
            .any(|s| s.kind == SdpKind::Video && s.simulcast)
        {
            m.insert("simulcast".into(), json!(true));
        }
        let streams: Vec<Value> = st
            .streams
            .iter()
            .map(|s| s.to_json(talking_events, false))
            .collect();
        m.insert("streams".into(), Value::Array(streams));
        if talking_events {
            m.insert("talking".into(), json!(st.talking));
        }
        Value::Object(m)
    }

    /// `id`, `display` and `metadata`, as `leaving`/`unpublished`/`kicked` carry them.
    pub fn identity(&self, key: &str, m: &mut Map<String, Value>) {
        let st = self.state();
        m.insert(key.into(), self.id.to_json());
        if let Some(d) = &st.display {
            m.insert("display".into(), json!(d));
        }
        if let Some(md) = &st.metadata {
            m.insert("metadata".into(), md.clone());
        }
    }

    // ---- media path (the publisher's media worker) --------------------------------------

    pub fn incoming_rtp(&self, packet: &RtpPacket) {
        let services = &*self.services;
        let sm = {
            let g = self.media.read().unwrap_or_else(|e| e.into_inner());
            g.iter().find(|m| m.mindex == packet.mindex).cloned()
        };
        if let Some(sm) = sm {
            sm.forward(packet, services);
        }
        self.taps.rtp(packet);
        if packet.kind == MediaKind::Audio {
            if let Some(level) = packet.ext.audio_level {
                self.audio_level(packet.mindex, level);
            }
        }
    }

    pub fn incoming_data(&self, msg: &DataMessage<'_>) {
        let services = &*self.services;
        let subs = self
            .data_subs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for h in &subs {
            services.relay_data(h, msg);
        }
        self.taps.data(msg);
    }

    fn audio_level(&self, mindex: usize, level: i8) {
        let services = &*self.services;
        let Some(cfg) = *self.talk_cfg.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let changed = self
            .talk
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .feed(level, cfg);
        let Some((talking, avg)) = changed else {
            return;
        };
        let mid = {
            let mut st = self.state();
            st.talking = talking;
            let mut mid = None;
            for s in st.streams.iter_mut().filter(|s| s.mindex == mindex) {
                s.talking = talking;
                mid = Some(s.mid.clone());
            }
            mid
        };
        let mut ev = Map::new();
        ev.insert(
            "videoroom".into(),
            json!(if talking {
                "talking"
            } else {
                "stopped-talking"
            }),
        );
        ev.insert("room".into(), self.room.id_json());
        ev.insert("id".into(), self.id.to_json());
        ev.insert("mindex".into(), json!(mindex));
        if let Some(mid) = mid {
            ev.insert("mid".into(), json!(mid));
        }
        ev.insert("audio-level-dBov-avg".into(), json!(avg));
        // Everyone, the speaker included.
        self.room.notify(services, None, &ev);
    }
}
