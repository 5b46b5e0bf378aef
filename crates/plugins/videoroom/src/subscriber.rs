//! A subscription: one PeerConnection carrying streams of any number of publishers, offered by
//! the plugin. Each subscriber m-line maps to one publisher stream (or, for the data channel,
//! to every publisher's data); `subscribe`/`unsubscribe`/`update` change the set and send a new
//! offer (`updated`), or `updating` while an earlier offer is still unanswered.

use crate::error::{VrError, VrResult};
use crate::json::{opt_bool, opt_i64, opt_str, opt_u64, Body, Id, Ids};
use crate::media::{pick_layer, Link};
use crate::publisher::Publisher;
use crate::room::{Room, RoomState};
use crate::sdp::{fmtp_param, SdpKind};
use jano_plugin::{
    CoreServices, HandleRef, LocalJsep, Map, MediaKind, MediaPrefs, OfferFill, OfferMedia,
    OfferMids, Value,
};
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard};

/// Default time a simulcast layer may be silent before a subscriber falls back (µs).
pub const DEFAULT_FALLBACK_US: u64 = 250_000;

pub struct SubStream {
    pub kind: SdpKind,
    pub mid: Option<String>,
    pub mindex: Option<usize>,
    /// The publisher stream behind it; `None`: inactive (its publisher went away).
    pub feed: Option<Arc<Publisher>>,
    pub feed_mid: Option<String>,
    pub codec: Option<String>,
    pub h264_profile: Option<String>,
    pub vp9_profile: Option<String>,
    pub simulcast: bool,
    /// The publisher stream is VP9 SVC (`spatial_layer`/`temporal_layer` apply).
    pub svc: bool,
    pub send: bool,
    pub crossrefid: Option<String>,
    pub substream: u8,
    pub temporal: u8,
    pub fallback_us: u64,
    /// SVC targets.
    pub spatial_layer: u8,
    pub temporal_layer: u8,
    /// `min_delay`/`max_delay` asked for this stream (the publisher's when unset).
    pub playout: crate::media::Playout,
    /// Installed in the publisher stream's fan-out.
    pub link: Option<Arc<Link>>,
    /// Whether the last offer sent it active (to tell whether an update changes the SDP).
    pub offered: bool,
    /// The peer answered an offer that had it.
    pub ready: bool,
}

impl SubStream {
    fn new(kind: SdpKind) -> SubStream {
        SubStream {
            kind,
            mid: None,
            mindex: None,
            feed: None,
            feed_mid: None,
            codec: None,
            h264_profile: None,
            vp9_profile: None,
            simulcast: false,
            svc: false,
            send: true,
            crossrefid: None,
            substream: 2,
            temporal: 2,
            fallback_us: DEFAULT_FALLBACK_US,
            spatial_layer: 2,
            temporal_layer: 2,
            playout: Default::default(),
            link: None,
            offered: false,
            ready: false,
        }
    }

    pub fn active(&self) -> bool {
        self.feed.is_some()
    }

    /// Takes the targets a request names (the live link is the caller's business).
    pub fn set_layers(&mut self, l: &LayerReq) {
        if let Some(v) = l.substream {
            self.substream = v;
        }
        if let Some(v) = l.temporal {
            self.temporal = v;
        }
        if let Some(v) = l.fallback {
            self.fallback_us = v;
        }
        if let Some(v) = l.spatial_layer {
            self.spatial_layer = v;
        }
        if let Some(v) = l.temporal_layer {
            self.temporal_layer = v;
        }
    }

    fn to_json(&self, data_sources: &[Arc<Publisher>]) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), json!(self.kind.as_str()));
        m.insert(
            "active".into(),
            json!(self.kind == SdpKind::Data || self.active()),
        );
        if let Some(i) = self.mindex {
            m.insert("mindex".into(), json!(i));
        }
        if let Some(mid) = &self.mid {
            m.insert("mid".into(), json!(mid));
        }
        if let Some(c) = &self.crossrefid {
            m.insert("crossrefid".into(), json!(c));
        }
        m.insert("ready".into(), json!(self.ready));
        m.insert("send".into(), json!(self.send));
        if self.kind == SdpKind::Data {
            m.insert("sources".into(), json!(data_sources.len()));
            let ids: Vec<Value> = data_sources.iter().map(|p| p.id.to_json()).collect();
            m.insert("source_ids".into(), Value::Array(ids));
            return Value::Object(m);
        }
        let Some(feed) = &self.feed else {
            return Value::Object(m);
        };
        m.insert("feed_id".into(), feed.id.to_json());
        {
            let st = feed.state();
            if let Some(d) = &st.display {
                m.insert("feed_display".into(), json!(d));
            }
            if let Some(md) = &st.metadata {
                m.insert("feed_metadata".into(), md.clone());
            }
            if let Some(desc) = st
                .streams
                .iter()
                .find(|s| Some(&s.mid) == self.feed_mid.as_ref())
                .and_then(|s| s.description.clone())
            {
                m.insert("feed_description".into(), json!(desc));
            }
        }
        if let Some(fm) = &self.feed_mid {
            m.insert("feed_mid".into(), json!(fm));
        }
        if let Some(c) = &self.codec {
            m.insert("codec".into(), json!(c));
        }
        if let Some(p) = &self.h264_profile {
            m.insert("h264-profile".into(), json!(p));
        }
        if let Some(p) = &self.vp9_profile {
            m.insert("vp9-profile".into(), json!(p));
        }
        if let Some((min, max)) = self.playout.ext() {
            m.insert(
                "playout-delay".into(),
                json!({"min-delay": min, "max-delay": max}),
            );
        }
        if self.simulcast {
            let current = self
                .link
                .as_ref()
                .and_then(|l| l.current())
                .map_or(-1, |l| l as i64);
            let mut s = Map::new();
            s.insert("substream".into(), json!(current));
            s.insert("substream-target".into(), json!(self.substream));
            // -1 until a packet of the target temporal layer was relayed, as Janus shows it.
            let temporal = self
                .link
                .as_ref()
                .and_then(|l| l.temporal())
                .map_or(-1, i64::from);
            s.insert("temporal-layer".into(), json!(temporal));
            s.insert("temporal-layer-target".into(), json!(self.temporal));
            if self.fallback_us != DEFAULT_FALLBACK_US {
                s.insert("fallback".into(), json!(self.fallback_us));
            }
            m.insert("simulcast".into(), Value::Object(s));
        }
        if self.svc {
            // -1 until the first switch point, as Janus shows it.
            let link = self.link.as_ref();
            let spatial = link.and_then(|l| l.spatial()).map_or(-1, i64::from);
            let temporal = link.and_then(|l| l.temporal()).map_or(-1, i64::from);
            m.insert(
                "svc".into(),
                json!({
                    "spatial-layer": spatial,
                    "target-spatial-layer": self.spatial_layer,
                    "temporal-layer": temporal,
                    "target-temporal-layer": self.temporal_layer,
                }),
            );
        }
        Value::Object(m)
    }
}

pub struct SubState {
    pub streams: Vec<SubStream>,
    /// Publishers whose data channel this subscription receives.
    pub data_sources: Vec<Arc<Publisher>>,
    /// The subscription has a data m-line (offered once, kept).
    pub data: Option<SubStream>,
    pub started: bool,
    pub paused: bool,
    pub offer_pending: bool,
    pub update_pending: bool,
    pub autoupdate: bool,
    pub use_msid: bool,
    pub left: bool,
    /// Its feeds are end-to-end encrypted: all of them, or none (Janus's rule).
    pub e2ee: bool,
}

pub struct Subscriber {
    pub href: HandleRef,
    pub room: Arc<Room>,
    pub private_id: Option<u64>,
    st: Mutex<SubState>,
}

/// One entry of a `streams` list in `join`/`subscribe`.
#[derive(Debug, Clone)]
pub struct StreamReq {
    pub feed: Id,
    pub mid: Option<String>,
    pub crossrefid: Option<String>,
    pub send: Option<bool>,
    pub layers: LayerReq,
    pub min_delay: Option<i64>,
    pub max_delay: Option<i64>,
}

impl StreamReq {
    pub fn parse(ids: Ids, b: &Body) -> VrResult<StreamReq> {
        Ok(StreamReq {
            feed: ids.req(b, "feed")?,
            mid: opt_str(b, "mid")?.map(str::to_owned),
            crossrefid: opt_str(b, "crossrefid")?.map(str::to_owned),
            send: opt_bool(b, "send")?,
            layers: LayerReq::parse(b)?,
            min_delay: opt_i64(b, "min_delay")?,
            max_delay: opt_i64(b, "max_delay")?,
        })
    }
}

/// The layer choices a request makes for a video stream (each `None`: unchanged): simulcast
/// `substream`/`temporal`/`fallback`, SVC `spatial_layer`/`temporal_layer`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerReq {
    pub substream: Option<u8>,
    pub temporal: Option<u8>,
    pub fallback: Option<u64>,
    pub spatial_layer: Option<u8>,
    pub temporal_layer: Option<u8>,
}

impl LayerReq {
    pub fn parse(b: &Body) -> VrResult<LayerReq> {
        let spatial = |k| layer_value(b, k, "substream/spatial_layer");
        let temporal = |k| layer_value(b, k, "temporal/temporal_layer");
        Ok(LayerReq {
            substream: spatial("substream")?,
            spatial_layer: spatial("spatial_layer")?,
            temporal: temporal("temporal")?,
            temporal_layer: temporal("temporal_layer")?,
            fallback: opt_u64(b, "fallback")?,
        })
    }

    pub fn is_empty(&self) -> bool {
        *self == LayerReq::default()
    }
}

/// A layer index, 0–2 (430 with Janus's wording, which names both keys it shares).
fn layer_value(b: &Body, key: &'static str, names: &str) -> VrResult<Option<u8>> {
    match opt_u64(b, key)? {
        None => Ok(None),
        Some(v @ 0..=2) => Ok(Some(v as u8)),
        Some(_) => Err(VrError::Invalid(format!(
            "Invalid value ({names} should be 0, 1 or 2)"
        ))),
    }
}

/// Which kinds a legacy subscription wants (`offer_audio`/`audio`…).
#[derive(Debug, Clone, Copy)]
pub struct KindFilter {
    pub audio: bool,
    pub video: bool,
    pub data: bool,
}

impl Default for KindFilter {
    fn default() -> Self {
        KindFilter {
            audio: true,
            video: true,
            data: true,
        }
    }
}

/// Whether a new subscription to these feeds is end-to-end encrypted: when the room requires
/// it, or when its first feed is; a feed that disagrees is refused (438).
pub fn join_e2ee(rs: &RoomState, reqs: &[StreamReq]) -> VrResult<bool> {
    let mut e2ee = rs.cfg.require_e2ee;
    for (i, r) in reqs.iter().enumerate() {
        let Some(p) = rs.participants.get(&r.feed) else {
            continue;
        };
        match (e2ee, p.is_e2ee()) {
            (true, false) => {
                return Err(VrError::InvalidFeed(format!(
                    "Can't have not end-to-end encrypted feed in this subscription ({})",
                    r.feed
                )))
            }
            (false, true) if i == 0 => e2ee = true,
            (false, true) => {
                return Err(VrError::InvalidFeed(format!(
                    "Can't have end-to-end encrypted feed in this subscription ({})",
                    r.feed
                )))
            }
            _ => {}
        }
    }
    Ok(e2ee)
}

/// An existing subscription takes only feeds as encrypted as it is (438).
pub fn check_e2ee(p: &Publisher, e2ee: bool) -> VrResult<()> {
    if p.is_e2ee() != e2ee {
        return Err(VrError::InvalidFeed(
            "Can't mix normal and end-to-end encrypted subscriptions".into(),
        ));
    }
    Ok(())
}

/// Resolves requested streams against the room's publishers (428 for an unknown or
/// unpublished feed or mid).
pub fn resolve(
    rs: &RoomState,
    reqs: &[StreamReq],
    filter: KindFilter,
) -> VrResult<(Vec<SubStream>, Vec<Arc<Publisher>>)> {
    let mut out = Vec::new();
    let mut data = Vec::new();
    for r in reqs {
        let feed = rs
            .participants
            .get(&r.feed)
            .filter(|p| p.is_publishing())
            .ok_or_else(|| VrError::NoSuchFeed(format!("No such feed ({})", r.feed)))?;
        let st = feed.state();
        let mut found = false;
        for s in st.streams.iter() {
            if let Some(want) = &r.mid {
                if &s.mid != want {
                    continue;
                }
            }
            found = true;
            if s.disabled {
                continue;
            }
            let wanted = match s.kind {
                SdpKind::Audio => filter.audio,
                SdpKind::Video => filter.video,
                SdpKind::Data => filter.data,
            };
            if !wanted {
                continue;
            }
            if s.kind == SdpKind::Data {
                if !data.iter().any(|p: &Arc<Publisher>| Arc::ptr_eq(p, feed)) {
                    data.push(feed.clone());
                }
                continue;
            }
            let mut ss = SubStream::new(s.kind);
            ss.feed = Some(feed.clone());
            ss.feed_mid = Some(s.mid.clone());
            ss.codec = s.codec.clone();
            ss.h264_profile = s.h264_profile.clone();
            ss.vp9_profile = s.vp9_profile.clone();
            ss.simulcast = s.simulcast;
            ss.crossrefid = r.crossrefid.clone();
            if let Some(v) = r.send {
                ss.send = v;
            }
            ss.svc = s.svc;
            ss.set_layers(&r.layers);
            ss.playout.apply(r.min_delay, r.max_delay);
            out.push(ss);
        }
        if !found {
            if let Some(mid) = &r.mid {
                return Err(VrError::NoSuchFeed(format!(
                    "No such mid '{mid}' in feed ({})",
                    r.feed
                )));
            }
        }
    }
    Ok((out, data))
}

impl Subscriber {
    pub fn new(
        href: HandleRef,
        room: Arc<Room>,
        private_id: Option<u64>,
        autoupdate: bool,
        use_msid: bool,
    ) -> Subscriber {
        Subscriber {
            href,
            room,
            private_id,
            st: Mutex::new(SubState {
                streams: Vec::new(),
                data_sources: Vec::new(),
                data: None,
                started: false,
                paused: false,
                offer_pending: false,
                update_pending: false,
                autoupdate,
                use_msid,
                left: false,
                e2ee: false,
            }),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, SubState> {
        self.st.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds resolved streams and data sources (no offer yet).
    pub fn add(st: &mut SubState, streams: Vec<SubStream>, data: Vec<Arc<Publisher>>) {
        st.streams.extend(streams);
        for p in data {
            if !st.data_sources.iter().any(|q| Arc::ptr_eq(q, &p)) {
                st.data_sources.push(p);
            }
        }
        if !st.data_sources.is_empty() && st.data.is_none() {
            st.data = Some(SubStream::new(SdpKind::Data));
        }
    }

    pub fn streams_json(st: &SubState) -> Vec<Value> {
        let mut v: Vec<(Option<usize>, Value)> = st
            .streams
            .iter()
            .map(|s| (s.mindex, s.to_json(&st.data_sources)))
            .collect();
        if let Some(d) = &st.data {
            v.push((d.mindex, d.to_json(&st.data_sources)));
        }
        // In m-line order, as the SDP has them.
        v.sort_by_key(|(i, _)| i.unwrap_or(usize::MAX));
        v.into_iter().map(|(_, j)| j).collect()
    }

    /// Whether an offer now would differ from the last one.
    pub fn needs_offer(st: &SubState) -> bool {
        st.streams
            .iter()
            .any(|s| s.mid.is_none() || s.offered != s.active())
            || st.data.as_ref().is_some_and(|d| d.mid.is_none())
    }

    /// Sends an offer for the current streams, with `data` (the event) completed by the mids
    /// the offer got. The caller has checked no offer is pending.
    pub fn send_offer(
        self: &Arc<Self>,
        st: &mut SubState,
        services: &dyn CoreServices,
        transaction: Option<String>,
        data: Map<String, Value>,
        restart: bool,
    ) {
        let mut media = Vec::new();
        let mut order = Vec::new();
        for (i, s) in st.streams.iter_mut().enumerate() {
            let kind = match s.kind {
                SdpKind::Audio => MediaKind::Audio,
                SdpKind::Video => MediaKind::Video,
                SdpKind::Data => continue,
            };
            s.offered = s.active();
            if !s.active() {
                // Left out: the engine makes its m-line inactive (a later stream may reuse it).
                continue;
            }
            let mut m = OfferMedia::new(kind, true, false);
            m.mid = s.mid.clone();
            m.codec = s.codec.clone();
            m.profile = s.h264_profile.clone().or_else(|| s.vp9_profile.clone());
            if st.use_msid {
                if let Some(f) = &s.feed {
                    m.stream_id = Some(format!("janus{}", f.id));
                    m.track_id = Some(format!(
                        "janus{}{}",
                        f.id,
                        s.feed_mid.as_deref().unwrap_or("")
                    ));
                }
            }
            media.push(m);
            order.push(i);
        }
        let want_data = st.data.is_some();
        st.offer_pending = true;
        let me = self.clone();
        let fill = OfferFill(Arc::new(
            move |ev: &mut Map<String, Value>, mids: &OfferMids| {
                me.filled(ev, mids, &order);
            },
        ));
        let jsep = LocalJsep::Offer {
            media,
            data: want_data,
            prefs: MediaPrefs {
                e2ee: st.e2ee,
                without_extensions: self.room.without_extensions,
                ..MediaPrefs::default()
            },
            restart,
            fill: Some(fill),
        };
        let _ = services.push_event(&self.href, transaction, data, Some(jsep));
    }

    /// The offer exists (on the media worker): streams learn their mids, the event lists them.
    fn filled(&self, ev: &mut Map<String, Value>, mids: &OfferMids, order: &[usize]) {
        let mut st = self.state();
        let mut taken = Vec::new();
        for (j, &i) in order.iter().enumerate() {
            let (Some(mid), Some(s)) = (mids.media.get(j), st.streams.get_mut(i)) else {
                continue;
            };
            if s.mid.as_ref() != Some(mid) {
                s.ready = false;
            }
            s.mindex = mids.mindex(mid);
            s.mid = Some(mid.clone());
            taken.push(mid.clone());
        }
        // An inactive stream whose m-line a new one took is gone.
        st.streams
            .retain(|s| s.active() || s.mid.as_ref().is_none_or(|m| !taken.contains(m)));
        if let Some(d) = st.data.as_mut() {
            if let Some(mid) = &mids.data {
                d.mindex = mids.mindex(mid);
                d.mid = Some(mid.clone());
            }
        }
        if ev.contains_key("streams") {
            ev.insert("streams".into(), Value::Array(Self::streams_json(&st)));
        }
        self.sync(&mut st);
    }

    /// Makes the fan-outs match the state: every active, wanted stream with an m-line gets its
    /// publisher's packets once the subscription is started and not paused.
    pub fn sync(&self, st: &mut SubState) {
        let flowing = st.started && !st.paused && !st.left;
        for s in st.streams.iter_mut() {
            let want = flowing && s.send && s.mindex.is_some();
            let sm = s
                .feed
                .as_ref()
                .zip(s.feed_mid.as_ref())
                .and_then(|(f, m)| f.stream_media(m));
            match (want, sm) {
                (true, Some(sm)) => {
                    let link_ok = s
                        .link
                        .as_ref()
                        .is_some_and(|l| Some(l.mindex) == s.mindex && l.current().is_some());
                    if !link_ok {
                        let (Some(mindex), Some(mid)) = (s.mindex, s.mid.clone()) else {
                            continue;
                        };
                        let room = self.room.id_json();
                        let event: jano_plugin::layers::LayerEvent =
                            Arc::new(move |mid: &str, key: &str, value: Value| {
                                let mut ev = Map::new();
                                ev.insert("videoroom".into(), json!("event"));
                                ev.insert("room".into(), room.clone());
                                ev.insert("mid".into(), json!(mid));
                                ev.insert(key.into(), value);
                                ev
                            });
                        let link = Arc::new(Link::new(self.href.clone(), mindex, mid, event));
                        let layer = if sm.simulcast {
                            let fb = s.fallback_us / 1000;
                            pick_layer(usize::from(s.substream), |l| sm.layer_active(l, fb))
                        } else {
                            0
                        };
                        if let Some(old) = s.link.take() {
                            sm.detach(&old);
                        }
                        sm.attach(&link, layer);
                        if let Some(v) = s.playout.ext() {
                            sm.set_link_playout(&link, Some(v));
                        }
                        if sm.simulcast && sm.video {
                            sm.set_temporal(&link, s.temporal);
                        }
                        if sm.svc {
                            sm.set_spatial(&link, s.spatial_layer);
                            sm.set_temporal(&link, s.temporal_layer);
                        }
                        if sm.simulcast {
                            // The subscriber learns the layer it starts on.
                            if let Some(f) = &s.feed {
                                link.tell(f.services(), "substream", json!(layer));
                            }
                        }
                        s.link = Some(link);
                        if sm.video {
                            if let Some(f) = &s.feed {
                                f.keyframe_now(sm.mindex);
                            }
                        }
                    }
                }
                (_, sm) => {
                    // Without the publisher's stream there is nothing to detach from.
                    if let (Some(link), Some(sm)) = (s.link.take(), sm) {
                        sm.detach(&link);
                    }
                }
            }
        }
        let want_data = flowing && st.data.as_ref().is_some_and(|d| d.mindex.is_some());
        for p in &st.data_sources {
            if want_data {
                p.add_data_sub(&self.href);
            } else {
                p.remove_data_sub(self.href.handle_id);
            }
        }
    }

    /// Re-evaluates simulcast layers (a layer stopped or came back, or a new target).
    pub fn check_layers(&self) {
        let st = self.state();
        for s in st.streams.iter().filter(|s| s.simulcast) {
            let (Some(link), Some(feed), Some(fm)) = (&s.link, &s.feed, &s.feed_mid) else {
                continue;
            };
            let Some(sm) = feed.stream_media(fm) else {
                continue;
            };
            let fb = s.fallback_us / 1000;
            let want = pick_layer(usize::from(s.substream), |l| sm.layer_active(l, fb));
            let going = link.pending().or(link.current());
            if going != Some(want) && sm.layer_active(want, fb) {
                sm.switch_to(link, want);
                feed.keyframe_now(sm.mindex);
            }
        }
    }

    /// A publisher stopped publishing: its streams here become inactive. Whether anything
    /// changed.
    pub fn drop_feed(&self, st: &mut SubState, feed: &Arc<Publisher>) -> bool {
        let mut changed = false;
        for s in st.streams.iter_mut() {
            if s.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, feed)) {
                if let Some(link) = s.link.take() {
                    if let Some(sm) = s.feed_mid.as_ref().and_then(|m| feed.stream_media(m)) {
                        sm.detach(&link);
                    }
                }
                s.feed = None;
                s.ready = false;
                changed = true;
            }
        }
        let before = st.data_sources.len();
        st.data_sources.retain(|p| !Arc::ptr_eq(p, feed));
        feed.remove_data_sub(self.href.handle_id);
        changed || before != st.data_sources.len()
    }

    /// The subscription ends: nothing is sent to it any more.
    pub fn stop_all(&self, st: &mut SubState) {
        st.left = true;
        self.sync(st);
        for p in &st.data_sources {
            p.remove_data_sub(self.href.handle_id);
        }
    }

    /// The publisher behind the subscriber m-line `mindex` (for keyframe requests).
    pub fn feed_at(&self, mindex: usize) -> Option<(Arc<Publisher>, usize)> {
        let st = self.state();
        let s = st.streams.iter().find(|s| s.mindex == Some(mindex))?;
        let feed = s.feed.clone()?;
        let sm = s.feed_mid.as_ref().and_then(|m| feed.stream_media(m))?;
        Some((feed, sm.mindex))
    }
}

/// `h264-profile`: the `profile-level-id` of a publisher's H.264 fmtp.
pub fn h264_profile_of(fmtp: &str) -> Option<String> {
    fmtp_param(fmtp, "profile-level-id").map(str::to_owned)
}
