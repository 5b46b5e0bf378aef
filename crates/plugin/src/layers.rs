//! The media path of a forwarded stream with layers (a VideoRoom publisher's, a Streaming
//! mountpoint's): the receivers it goes to, per simulcast layer, and the switches of a receiver
//! from one layer to another, made on a keyframe of the new layer; SVC and temporal layers
//! capped per receiver at the points a decoder can follow.
//!
//! Runs on the source's media worker or reader ([`StreamMedia::forward`]); the signalling path
//! and the layer timer only edit the sets. A packet is handed to the engine once per media
//! worker that has receivers of its layer (see [`crate::Fanout`]).

use crate::{CoreServices, Dest, Fanout, HandleRef, Map, MediaRouter, RtpPacket, Value};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use crate::fanout::Playout;

/// Builds the event a receiver is told a layer change with: (mid, key, value) → the plugin's
/// event (`{"videoroom":"event","room":…,"mid":…,"substream":1}`, say).
pub type LayerEvent = Arc<dyn Fn(&str, &str, Value) -> Map<String, Value> + Send + Sync>;

/// Simulcast layers a stream can have (Janus's substreams 0–2).
pub const LAYERS: usize = 3;
const NO_LAYER: u8 = u8::MAX;

/// A receiver's m-line fed by a forwarded stream.
pub struct Link {
    pub href: HandleRef,
    pub mindex: usize,
    pub mid: String,
    /// How the receiver is told of a layer change.
    event: LayerEvent,
    /// The layer it is on now, and the one it moves to on that layer's next keyframe.
    pub layer: AtomicU8,
    pending: AtomicU8,
    /// Bumped on every (re)install: the engine starts a new sequence segment.
    pub epoch: AtomicU32,
    /// Temporal layers (VP8 simulcast, SVC): the cap the engine applies now (`NO_LAYER`:
    /// none yet, every packet goes), and the wanted one, taken at a point the receiver can
    /// decode from.
    temporal: AtomicU8,
    temporal_target: AtomicU8,
    /// SVC spatial layers, likewise.
    spatial: AtomicU8,
    spatial_target: AtomicU8,
    /// The subscriber's playout delay for this stream (packed, `u32::MAX`: the publisher's).
    playout: AtomicU32,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("handle", &self.href.handle_id)
            .field("mid", &self.mid)
            .finish_non_exhaustive()
    }
}

impl Link {
    pub fn new(href: HandleRef, mindex: usize, mid: String, event: LayerEvent) -> Link {
        Link {
            href,
            mindex,
            mid,
            event,
            layer: AtomicU8::new(NO_LAYER),
            pending: AtomicU8::new(NO_LAYER),
            epoch: AtomicU32::new(0),
            temporal: AtomicU8::new(NO_LAYER),
            temporal_target: AtomicU8::new(NO_LAYER),
            spatial: AtomicU8::new(NO_LAYER),
            spatial_target: AtomicU8::new(NO_LAYER),
            playout: AtomicU32::new(u32::MAX),
        }
    }

    fn dest(&self) -> Dest {
        let mut d = Dest::new(self.href.handle_id, self.mindex);
        d.epoch = self.epoch.load(Ordering::Relaxed);
        d.temporal = self.temporal.load(Ordering::Relaxed);
        d.spatial = self.spatial.load(Ordering::Relaxed);
        d.playout = Playout::unpack(self.playout.load(Ordering::Relaxed));
        d
    }

    /// Tells the receiver what changed on this m-line (`substream`, `temporal`…).
    pub fn tell(&self, services: &dyn CoreServices, key: &str, value: Value) {
        let ev = (self.event)(&self.mid, key, value);
        let _ = services.push_event(&self.href, None, ev, None);
    }

    /// The temporal layer cap in force, if any.
    pub fn temporal(&self) -> Option<u8> {
        let t = self.temporal.load(Ordering::Relaxed);
        (t != NO_LAYER).then_some(t)
    }

    /// The spatial layer cap in force, if any.
    pub fn spatial(&self) -> Option<u8> {
        let t = self.spatial.load(Ordering::Relaxed);
        (t != NO_LAYER).then_some(t)
    }

    pub fn current(&self) -> Option<usize> {
        let l = self.layer.load(Ordering::Relaxed);
        (l != NO_LAYER).then_some(usize::from(l))
    }

    pub fn pending(&self) -> Option<usize> {
        let l = self.pending.load(Ordering::Relaxed);
        (l != NO_LAYER).then_some(usize::from(l))
    }
}

/// Subscribers waiting for something on the packet path, with a flag the packet path reads
/// without taking the lock.
#[derive(Default)]
struct Waiting {
    links: Mutex<Vec<Arc<Link>>>,
    any: AtomicBool,
}

impl Waiting {
    fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn edit<R>(&self, f: impl FnOnce(&mut Vec<Arc<Link>>) -> R) -> R {
        let mut v = self.links.lock().unwrap_or_else(|e| e.into_inner());
        let r = f(&mut v);
        self.any.store(!v.is_empty(), Ordering::Release);
        r
    }

    fn push(&self, link: &Arc<Link>) {
        self.edit(|v| v.push(link.clone()));
    }

    fn remove(&self, link: &Link) {
        self.edit(|v| v.retain(|l| !std::ptr::eq(&**l, link)));
    }

    /// Takes out the links `pred` picks.
    fn take(&self, pred: impl Fn(&Link) -> bool) -> Vec<Arc<Link>> {
        self.edit(|v| {
            let (go, stay): (Vec<_>, Vec<_>) = v.drain(..).partition(|l| pred(l));
            *v = stay;
            go
        })
    }
}

/// One published stream's receivers.
pub struct StreamMedia {
    pub mindex: usize,
    pub mid: String,
    pub video: bool,
    pub simulcast: bool,
    /// VP9 or AV1 with spatial and temporal layers in one RTP stream (the publisher said `svc`).
    pub svc: bool,
    fans: [RwLock<Option<Fanout>>; LAYERS],
    /// Milliseconds since `epoch0` of the last packet per layer (0 = never).
    last_seen: [AtomicU64; LAYERS],
    epoch0: Instant,
    /// Subscribers waiting for a keyframe of their next layer.
    switches: Waiting,
    /// Subscribers waiting for a packet of their target temporal layer.
    tswitches: Waiting,
    /// Subscribers waiting for a point where their target spatial layer can start or stop.
    sswitches: Waiting,
    pub packets: AtomicU64,
    /// The publisher's playout delay for this stream (packed as in [`Link`]).
    playout: AtomicU32,
    /// Muted by a moderator: nothing is forwarded.
    pub muted: AtomicBool,
}

impl std::fmt::Debug for StreamMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamMedia")
            .field("mid", &self.mid)
            .finish_non_exhaustive()
    }
}

impl StreamMedia {
    pub fn new(
        router: Option<&Arc<dyn MediaRouter>>,
        mindex: usize,
        mid: String,
        video: bool,
        simulcast: bool,
    ) -> StreamMedia {
        let fan = || RwLock::new(router.map(|r| Fanout::new(r.clone())));
        StreamMedia {
            mindex,
            mid,
            video,
            simulcast,
            svc: false,
            fans: [fan(), fan(), fan()],
            last_seen: Default::default(),
            epoch0: Instant::now(),
            switches: Waiting::default(),
            tswitches: Waiting::default(),
            sswitches: Waiting::default(),
            packets: AtomicU64::new(0),
            playout: AtomicU32::new(u32::MAX),
            muted: AtomicBool::new(false),
        }
    }

    /// Marks a VP9 or AV1 stream as layered (SVC).
    pub fn with_svc(mut self, svc: bool) -> StreamMedia {
        self.svc = svc;
        self
    }

    fn now_ms(&self) -> u64 {
        (self.epoch0.elapsed().as_millis() as u64).max(1)
    }

    fn edit(&self, layer: usize, f: impl FnOnce(&mut Fanout)) {
        if let Some(lock) = self.fans.get(layer) {
            let mut g = lock.write().unwrap_or_else(|e| e.into_inner());
            if let Some(fan) = g.as_mut() {
                f(fan);
            }
        }
    }

    /// Starts sending this stream to a subscriber m-line, on `layer` (0 without simulcast).
    pub fn attach(&self, link: &Arc<Link>, layer: usize) {
        self.detach(link);
        link.epoch.fetch_add(1, Ordering::Relaxed);
        let layer = layer.min(LAYERS - 1);
        link.layer.store(layer as u8, Ordering::Relaxed);
        let d = link.dest();
        self.edit(layer, |f| f.insert(d));
    }

    /// Stops sending to a subscriber m-line (and forgets a switch it was waiting for).
    pub fn detach(&self, link: &Link) {
        if let Some(l) = link.current() {
            self.edit(l, |f| f.remove_dest(link.href.handle_id, link.mindex));
        }
        link.layer.store(NO_LAYER, Ordering::Relaxed);
        self.cancel_switch(link);
        self.tswitches.remove(link);
        self.sswitches.remove(link);
    }

    /// The spatial layer a subscriber wants (SVC streams): down at the end of a frame of
    /// that layer, up on a keyframe; told with a `spatial_layer` event then.
    pub fn set_spatial(&self, link: &Arc<Link>, target: u8) {
        link.spatial_target.store(target, Ordering::Relaxed);
        self.sswitches.remove(link);
        if link.spatial() != Some(target) {
            self.sswitches.push(link);
        }
    }

    /// The temporal layer a subscriber wants (VP8 simulcast or SVC streams): taken on the
    /// next packet where the receiver can switch, and told with a `temporal` (simulcast) or
    /// `temporal_layer` (SVC) event then.
    pub fn set_temporal(&self, link: &Arc<Link>, target: u8) {
        link.temporal_target.store(target, Ordering::Relaxed);
        self.tswitches.remove(link);
        if link.temporal() != Some(target) {
            self.tswitches.push(link);
        }
    }

    fn cancel_switch(&self, link: &Link) {
        if link.pending.swap(NO_LAYER, Ordering::Relaxed) != NO_LAYER {
            self.switches.remove(link);
        }
    }

    /// Moves a subscriber to another layer on that layer's next keyframe (a switch on any
    /// other packet would hand its decoder frames that refer to pictures it never got).
    pub fn switch_to(&self, link: &Arc<Link>, layer: usize) {
        let layer = layer.min(LAYERS - 1);
        if link.current() == Some(layer) {
            self.cancel_switch(link);
            return;
        }
        if link.pending() == Some(layer) {
            return;
        }
        self.cancel_switch(link);
        link.pending.store(layer as u8, Ordering::Relaxed);
        self.switches.push(link);
    }

    /// The publisher's playout delay for this stream.
    pub fn playout(&self) -> Playout {
        Playout::unpack(self.playout.load(Ordering::Relaxed)).map_or_else(
            Playout::default,
            |(a, b)| Playout {
                min: i64::from(a),
                max: i64::from(b),
            },
        )
    }

    /// The publisher's playout delay for every subscriber of this stream.
    pub fn set_playout(&self, v: Option<(u16, u16)>) {
        self.playout.store(Playout::pack(v), Ordering::Relaxed);
    }

    /// A subscriber's own playout delay for this stream (`None`: the publisher's).
    pub fn set_link_playout(&self, link: &Link, v: Option<(u16, u16)>) {
        link.playout.store(Playout::pack(v), Ordering::Relaxed);
        if let Some(l) = link.current() {
            let d = link.dest();
            self.edit(l, |f| f.insert(d));
        }
    }

    /// Whether a layer had a packet within `window_ms`.
    pub fn layer_active(&self, layer: usize, window_ms: u64) -> bool {
        let Some(seen) = self.last_seen.get(layer) else {
            return false;
        };
        let t = seen.load(Ordering::Relaxed);
        t != 0 && self.now_ms().saturating_sub(t) <= window_ms
    }

    /// Subscribers on any layer.
    pub fn receivers(&self) -> usize {
        self.fans
            .iter()
            .map(|f| {
                f.read()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map_or(0, Fanout::len)
            })
            .sum()
    }

    /// A packet of this stream from the publisher: switches waiting for a keyframe of its
    /// layer happen first, then it goes to every subscriber of its layer.
    pub fn forward(&self, packet: &RtpPacket, services: &dyn CoreServices) {
        let layer = usize::from(packet.substream.unwrap_or(0)).min(LAYERS - 1);
        if let Some(s) = self.last_seen.get(layer) {
            s.store(self.now_ms(), Ordering::Relaxed);
        }
        self.packets.fetch_add(1, Ordering::Relaxed);
        if self.muted.load(Ordering::Relaxed) {
            return;
        }
        if self.switches.any() && crate::rtp::is_keyframe(packet.codec, &packet.payload) {
            self.run_switches(layer, services);
        }
        if self.tswitches.any() && packet.codec == "vp8" {
            let (tid, sync) = crate::rtp::vp8_temporal(&packet.payload).unwrap_or((0, false));
            let sync = sync || crate::rtp::vp8_keyframe(&packet.payload);
            self.run_temporal(layer, tid, |c, _| tid > c && sync, "temporal", services);
        }
        if self.svc && (self.sswitches.any() || self.tswitches.any()) {
            if let Some(l) = packet.layers() {
                let key = l.keyframe();
                if self.sswitches.any() {
                    self.run_spatial(&l, key, services);
                }
                if self.tswitches.any() {
                    let up = |c, target| l.switches_up(c, target);
                    self.run_temporal(layer, l.tid, up, "temporal_layer", services);
                }
            }
        }
        let g = self
            .fans
            .get(layer)
            .map(|f| f.read().unwrap_or_else(|e| e.into_inner()));
        if let Some(fan) = g.as_ref().and_then(|g| g.as_ref()) {
            match Playout::unpack(self.playout.load(Ordering::Relaxed)) {
                Some((min, max)) => {
                    let mut p = packet.clone();
                    p.ext.min_delay = Some(min);
                    p.ext.max_delay = Some(max);
                    fan.send(&p);
                }
                None => fan.send(packet),
            }
        }
    }

    fn run_switches(&self, layer: usize, services: &dyn CoreServices) {
        for link in self.switches.take(|l| l.pending() == Some(layer)) {
            link.pending.store(NO_LAYER, Ordering::Relaxed);
            if let Some(old) = link.current() {
                self.edit(old, |f| f.remove_dest(link.href.handle_id, link.mindex));
            }
            link.layer.store(layer as u8, Ordering::Relaxed);
            let d = link.dest();
            self.edit(layer, |f| f.insert(d));
            // The subscriber learns the layer it now receives.
            link.tell(services, "substream", json!(layer));
        }
    }

    fn run_spatial(&self, l: &crate::rtp::SvcLayers, key: bool, services: &dyn CoreServices) {
        let moving = self.sswitches.take(|link| {
            let target = link.spatial_target.load(Ordering::Relaxed);
            spatial_switch_at(link.spatial(), target, l, key)
        });
        for link in moving {
            let target = link.spatial_target.load(Ordering::Relaxed);
            link.spatial.store(target, Ordering::Relaxed);
            if let Some(cur) = link.current() {
                let d = link.dest();
                self.edit(cur, |f| f.insert(d));
            }
            link.tell(services, "spatial_layer", json!(target));
        }
    }

    fn run_temporal(
        &self,
        layer: usize,
        tid: u8,
        up: impl Fn(u8, u8) -> bool,
        event: &str,
        services: &dyn CoreServices,
    ) {
        let moving = self.tswitches.take(|l| {
            let target = l.temporal_target.load(Ordering::Relaxed);
            l.current() == Some(layer)
                && temporal_switch_at(l.temporal(), target, tid, |c| up(c, target))
        });
        for link in moving {
            let target = link.temporal_target.load(Ordering::Relaxed);
            link.temporal.store(target, Ordering::Relaxed);
            let d = link.dest();
            self.edit(layer, |f| f.insert(d));
            link.tell(services, event, json!(target));
        }
    }

    /// Every subscriber leaves (the stream is unpublished).
    pub fn clear(&self) {
        for l in 0..LAYERS {
            self.edit(l, |f| {
                let ids: Vec<(u64, u32)> = f.iter().map(|d| (d.handle_id, d.mindex)).collect();
                for (h, m) in ids {
                    f.remove_dest(h, m as usize);
                }
            });
        }
        for l in self.switches.take(|_| true) {
            l.pending.store(NO_LAYER, Ordering::Relaxed);
        }
        self.tswitches.take(|_| true);
        self.sswitches.take(|_| true);
    }
}

/// Whether the SVC packet `l` is where a subscriber capped at spatial layer `cap` (none yet:
/// every layer goes) moves to `target`: on a keyframe either way (the whole picture starts
/// there); down also at the end of a frame of the target layer, since lower layers never
/// refer to higher ones (the engine marks that packet as the end of the picture).
pub fn spatial_switch_at(
    cap: Option<u8>,
    target: u8,
    l: &crate::rtp::SvcLayers,
    key: bool,
) -> bool {
    let down = cap.is_none_or(|c| target < c);
    key || (down && l.end && l.sid == target)
}

/// Whether a packet of temporal layer `tid` is where a subscriber capped at `cap` (none yet:
/// everything goes) moves to `target`. Down: on any packet the new cap keeps (a frame the
/// receiver can use). Up: where `up(cap)` says a receiver of the old layers can go on (VP8 and
/// VP9: a layer-sync frame or keyframe of a layer the old cap dropped; AV1: a frame that is a
/// switch point of a decode target above the cap), on a frame the new cap keeps; and once up,
/// a publisher with fewer layers than the target loses nothing. (Janus waits for a packet of
/// exactly the target layer, which never comes when the publisher has fewer, and a subscriber
/// sent down stays down.)
pub fn temporal_switch_at(cap: Option<u8>, target: u8, tid: u8, up: impl Fn(u8) -> bool) -> bool {
    match cap {
        None => tid <= target,
        Some(c) if target < c => tid <= target,
        Some(c) => tid <= target && up(c),
    }
}

/// The layer a subscriber should get: the highest active one at or below its target, else
/// the lowest active one above it, else the target (nothing is arriving yet).
pub fn pick_layer(target: usize, active: impl Fn(usize) -> bool) -> usize {
    let target = target.min(LAYERS - 1);
    (0..=target)
        .rev()
        .find(|l| active(*l))
        .or_else(|| (target + 1..LAYERS).find(|l| active(*l)))
        .unwrap_or(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporal_switch_points() {
        // First packet that fits the target.
        // VP8/VP9: a layer-sync frame of a dropped layer.
        let sync = |tid: u8, sync: bool| move |c: u8| tid > c && sync;
        assert!(temporal_switch_at(None, 2, 0, sync(0, false)));
        assert!(!temporal_switch_at(None, 0, 1, sync(1, false)));
        // Down: on a packet the new cap keeps.
        assert!(temporal_switch_at(Some(2), 0, 0, sync(0, false)));
        assert!(!temporal_switch_at(Some(2), 0, 1, sync(1, true)));
        // Up: only on a layer-sync frame of a layer that was dropped.
        assert!(!temporal_switch_at(Some(0), 2, 1, sync(1, false)));
        assert!(temporal_switch_at(Some(0), 2, 1, sync(1, true)));
        assert!(!temporal_switch_at(Some(0), 2, 0, sync(0, true)));
        assert!(!temporal_switch_at(Some(0), 1, 2, sync(2, true)));
        // AV1 as Chromium's L1T3 lays it out: a temporal-1 frame is the switch point into the
        // decode target of temporal layer 2 (its own target's is the keyframe's).
        let av1 = |tid: u8, switch_to: u8| crate::rtp::SvcLayers {
            sid: 0,
            tid,
            switch_to,
            begin: true,
            end: false,
            intra: false,
        };
        let t1 = av1(1, 0b100);
        assert!(temporal_switch_at(Some(0), 2, 1, |c| t1.switches_up(c, 2)));
        assert!(temporal_switch_at(Some(1), 2, 1, |c| t1.switches_up(c, 2)));
        assert!(!temporal_switch_at(Some(0), 1, 1, |c| t1.switches_up(c, 1)));
        let t2 = av1(2, 0);
        assert!(!temporal_switch_at(Some(0), 2, 2, |c| t2.switches_up(c, 2)));
    }

    #[test]
    fn spatial_switch_points() {
        let l = |sid: u8, end: bool| crate::rtp::SvcLayers {
            sid,
            tid: 0,
            switch_to: 0,
            begin: !end,
            end,
            intra: false,
        };
        // Down: at the end of a frame of the target layer only.
        assert!(spatial_switch_at(Some(2), 0, &l(0, true), false));
        assert!(!spatial_switch_at(Some(2), 0, &l(1, true), false));
        assert!(!spatial_switch_at(Some(2), 0, &l(0, false), false));
        assert!(spatial_switch_at(None, 1, &l(1, true), false));
        // Up: only on a keyframe.
        assert!(!spatial_switch_at(Some(0), 2, &l(0, true), false));
        assert!(spatial_switch_at(Some(0), 2, &l(0, false), true));
    }

    #[test]
    fn layer_choice_falls_back() {
        assert_eq!(pick_layer(2, |_| true), 2);
        assert_eq!(pick_layer(2, |l| l < 2), 1);
        assert_eq!(pick_layer(1, |l| l == 2), 2);
        assert_eq!(pick_layer(0, |_| false), 0);
        assert_eq!(pick_layer(9, |l| l == 0), 0);
    }
}
