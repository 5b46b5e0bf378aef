//! Sending one packet to many handles.
//!
//! A plugin keeps a [`Fanout`] per source it forwards (a publisher's m-line): the handles that
//! receive it, grouped by the media worker their PeerConnection lives on. Sending is one shared
//! copy of the packet handed to each worker once ([`MediaRouter::send_batch`]); the worker
//! writes every one of its destinations' copies in a batch. The engine rewrites what differs
//! per destination (payload type, SSRC, sequence numbers and timestamps, SRTP rollover), so the
//! plugin never copies or edits a packet per subscriber.
//!
//! The set is changed on the signalling path (join, leave, pause) and read on the packet path:
//! changes rebuild the per-worker lists (copy on write), sends only clone `Arc`s.

use crate::RtpPacket;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One destination of a fan-out: a handle, the m-line of its PeerConnection the packet goes out
/// on, and an epoch: when it changes, the engine starts a new sequence/timestamp segment for
/// that destination (after a pause, or when the source behind the m-line changes without an
/// SSRC change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Dest {
    pub handle_id: u64,
    pub mindex: u32,
    pub epoch: u32,
    /// The highest VP8 or VP9 temporal layer (TID) this destination gets; the engine drops
    /// the packets above it and keeps the sequence numbers gapless. `u8::MAX`: no cap.
    pub temporal: u8,
    /// The highest VP9 spatial layer (SID) it gets, likewise; the last packet of that layer's
    /// frame then carries the marker bit (the end of the picture for this receiver).
    pub spatial: u8,
    /// Playout delay (min, max in 10 ms units) this destination's packets carry instead of the
    /// packet's own (VideoRoom's per-subscriber `min_delay`/`max_delay`).
    pub playout: Option<(u16, u16)>,
}

impl Dest {
    pub fn new(handle_id: u64, mindex: usize) -> Dest {
        Dest {
            handle_id,
            mindex: u32::try_from(mindex).unwrap_or(u32::MAX),
            epoch: 0,
            temporal: u8::MAX,
            spatial: u8::MAX,
            playout: None,
        }
    }
}

/// The media engine as a fan-out sees it. Implemented by the engine; never blocks.
pub trait MediaRouter: Send + Sync {
    /// Number of media workers.
    fn workers(&self) -> usize;
    /// The worker a handle's PeerConnection runs on (fixed for the handle's life).
    fn worker_of(&self, handle_id: u64) -> usize;
    /// Delivers one packet to destinations that all live on `worker`. From that worker's own
    /// thread the copies are written right after the current callback; from elsewhere the
    /// batch crosses to the worker once. A full queue drops the batch and counts the drop on
    /// every destination.
    fn send_batch(&self, worker: usize, packet: Arc<RtpPacket>, dests: Arc<[Dest]>);
    /// Packets dropped on the way to this handle's peer (full queues, no PeerConnection, no
    /// negotiated codec for the packet).
    fn dropped(&self, handle_id: u64) -> u64;
}

/// A set of destinations for one source. Clone it to snapshot it.
#[derive(Clone)]
pub struct Fanout {
    router: Arc<dyn MediaRouter>,
    by_worker: Vec<Arc<[Dest]>>,
    len: usize,
}

impl std::fmt::Debug for Fanout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fanout").field("len", &self.len).finish()
    }
}

impl Fanout {
    pub fn new(router: Arc<dyn MediaRouter>) -> Fanout {
        let n = router.workers().max(1);
        Fanout {
            router,
            by_worker: vec![Arc::from(Vec::new()); n],
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn slot(&self, handle_id: u64) -> usize {
        self.router
            .worker_of(handle_id)
            .min(self.by_worker.len().saturating_sub(1))
    }

    fn edit(&mut self, handle_id: u64, f: impl FnOnce(&mut Vec<Dest>)) {
        let w = self.slot(handle_id);
        let Some(list) = self.by_worker.get_mut(w) else {
            return;
        };
        let mut v = list.to_vec();
        let before = v.len();
        f(&mut v);
        self.len = self.len + v.len() - before;
        *list = Arc::from(v);
    }

    /// Adds a destination (replacing one for the same handle and m-line).
    pub fn insert(&mut self, dest: Dest) {
        self.edit(dest.handle_id, |v| {
            match v
                .iter_mut()
                .find(|d| d.handle_id == dest.handle_id && d.mindex == dest.mindex)
            {
                Some(d) => *d = dest,
                None => v.push(dest),
            }
        });
    }

    /// Removes every destination of a handle; whether there was one.
    pub fn remove(&mut self, handle_id: u64) -> bool {
        let before = self.len;
        self.edit(handle_id, |v| v.retain(|d| d.handle_id != handle_id));
        before != self.len
    }

    /// Removes one destination.
    pub fn remove_dest(&mut self, handle_id: u64, mindex: usize) {
        let m = u32::try_from(mindex).unwrap_or(u32::MAX);
        self.edit(handle_id, |v| {
            v.retain(|d| !(d.handle_id == handle_id && d.mindex == m))
        });
    }

    /// Starts a new sequence/timestamp segment for a handle's destinations (resume after a
    /// pause, a new source on the same SSRC).
    pub fn resync(&mut self, handle_id: u64) {
        self.edit(handle_id, |v| {
            for d in v.iter_mut().filter(|d| d.handle_id == handle_id) {
                d.epoch = d.epoch.wrapping_add(1);
            }
        });
    }

    pub fn contains(&self, handle_id: u64) -> bool {
        self.by_worker
            .get(self.slot(handle_id))
            .is_some_and(|l| l.iter().any(|d| d.handle_id == handle_id))
    }

    /// Every destination, worker by worker.
    pub fn iter(&self) -> impl Iterator<Item = &Dest> {
        self.by_worker.iter().flat_map(|l| l.iter())
    }

    /// Sends one packet to every destination: one shared copy, one hand-over per worker.
    pub fn send(&self, packet: &RtpPacket) {
        if self.len == 0 {
            return;
        }
        let shared = Arc::new(packet.clone());
        for (w, list) in self.by_worker.iter().enumerate() {
            if !list.is_empty() {
                self.router.send_batch(w, shared.clone(), list.clone());
            }
        }
    }
}

/// Forwards keyframe requests no more often than every `fir_freq` (VideoRoom's `fir_freq`), so
/// a room of subscribers asking at once costs the publisher one keyframe.
#[derive(Debug, Clone)]
pub struct KeyframeThrottle {
    interval: Duration,
    last: Option<Instant>,
}

impl KeyframeThrottle {
    pub fn new(interval: Duration) -> Self {
        KeyframeThrottle {
            interval,
            last: None,
        }
    }

    /// Whether a request arriving at `now` is to be forwarded.
    pub fn allow(&mut self, now: Instant) -> bool {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.interval => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// A playout delay setting (`min_delay`/`max_delay`, in 10 ms units as Janus takes them):
/// -1 unset. A negative value clears both; each bound pulls the other along so min ≤ max.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Playout {
    pub min: i64,
    pub max: i64,
}

impl Default for Playout {
    fn default() -> Playout {
        Playout { min: -1, max: -1 }
    }
}

impl Playout {
    pub fn apply(&mut self, min: Option<i64>, max: Option<i64>) {
        if let Some(v) = min {
            if v < 0 {
                *self = Playout::default();
            } else {
                self.min = v.min(4095);
                self.max = self.max.max(self.min);
            }
        }
        if let Some(v) = max {
            if v < 0 {
                *self = Playout::default();
            } else {
                self.max = v.min(4095);
                if self.min > self.max {
                    self.min = self.max;
                }
            }
        }
    }

    /// (min, max) for the extension, when both are set.
    pub fn ext(&self) -> Option<(u16, u16)> {
        (self.min >= 0 && self.max >= 0).then_some((self.min as u16, self.max as u16))
    }

    /// One word for an atomic: (min, max), or `u32::MAX` for none.
    pub fn pack(v: Option<(u16, u16)>) -> u32 {
        v.map_or(u32::MAX, |(a, b)| u32::from(a) << 16 | u32::from(b))
    }

    pub fn unpack(v: u32) -> Option<(u16, u16)> {
        (v != u32::MAX).then_some(((v >> 16) as u16, (v & 0xffff) as u16))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn playout_bounds_pull_each_other() {
        let mut p = Playout::default();
        assert_eq!(p.ext(), None);
        p.apply(Some(10), None);
        assert_eq!(p.ext(), Some((10, 10)));
        p.apply(None, Some(50));
        assert_eq!(p.ext(), Some((10, 50)));
        p.apply(None, Some(5));
        assert_eq!(p.ext(), Some((5, 5)));
        p.apply(Some(-1), None);
        assert_eq!(p, Playout::default());
    }

    use super::*;
    use std::sync::Mutex;

    struct Rec {
        n: usize,
        got: Mutex<Vec<(usize, Vec<Dest>)>>,
    }

    impl MediaRouter for Rec {
        fn workers(&self) -> usize {
            self.n
        }
        fn worker_of(&self, h: u64) -> usize {
            (h % self.n as u64) as usize
        }
        fn send_batch(&self, w: usize, _p: Arc<RtpPacket>, d: Arc<[Dest]>) {
            self.got.lock().unwrap().push((w, d.to_vec()));
        }
        fn dropped(&self, _h: u64) -> u64 {
            0
        }
    }

    fn pkt() -> RtpPacket {
        RtpPacket {
            mindex: 0,
            kind: crate::MediaKind::Audio,
            pt: 111,
            codec: "opus",
            seq: 1,
            timestamp: 0,
            marker: false,
            ssrc: 1,
            substream: None,
            ext: Default::default(),
            payload: vec![1, 2, 3].into(),
            svc: None,
        }
    }

    #[test]
    fn one_batch_per_worker() {
        let r = Arc::new(Rec {
            n: 3,
            got: Mutex::new(Vec::new()),
        });
        let mut f = Fanout::new(r.clone());
        for h in 1..=10u64 {
            f.insert(Dest::new(h, 0));
        }
        f.insert(Dest::new(4, 0)); // replaces, no duplicate
        assert_eq!(f.len(), 10);
        f.send(&pkt());
        let got = r.got.lock().unwrap().clone();
        assert_eq!(got.len(), 3, "one hand-over per worker");
        for (w, dests) in &got {
            assert!(dests.iter().all(|d| (d.handle_id % 3) as usize == *w));
        }
        assert_eq!(got.iter().map(|(_, d)| d.len()).sum::<usize>(), 10);
        assert!(f.remove(4));
        assert!(!f.remove(4));
        assert_eq!(f.len(), 9);
        f.resync(5);
        assert_eq!(
            f.iter().find(|d| d.handle_id == 5).map(|d| d.epoch),
            Some(1)
        );
        r.got.lock().unwrap().clear();
        let empty = Fanout::new(r.clone());
        empty.send(&pkt());
        assert!(r.got.lock().unwrap().is_empty());
    }

    #[test]
    fn throttle() {
        let mut t = KeyframeThrottle::new(Duration::from_secs(3));
        let t0 = Instant::now();
        assert!(t.allow(t0));
        assert!(!t.allow(t0 + Duration::from_secs(1)));
        assert!(t.allow(t0 + Duration::from_secs(3)));
    }
}
