//! Playing a file source in real time: a `live` mountpoint has one playback that feeds the
//! source's fan-out (every viewer hears the same moment, and it goes on with nobody watching,
//! as a radio does); an `ondemand` mountpoint starts a playback per viewer from the top of the
//! file, which holds its place while that viewer is paused. Each playback is a timer task on
//! the gateway's runtime, not a thread.

use crate::file::{Cursor, Track};
use jano_plugin::{CoreServices, Dest, Fanout, MediaKind, MediaRouter, RtpExtensions, RtpPacket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// A source's switches, shared with its playback tasks.
#[derive(Debug)]
pub struct Ctl {
    /// The mountpoint is enabled (`disable` holds playback where it is, as Janus does).
    pub enabled: AtomicBool,
    /// The mountpoint is gone: tasks end.
    pub stop: AtomicBool,
}

impl Default for Ctl {
    fn default() -> Ctl {
        Ctl {
            enabled: AtomicBool::new(true),
            stop: AtomicBool::new(false),
        }
    }
}

/// What a playback needs to make packets.
#[derive(Debug, Clone)]
pub struct Stream {
    pub track: Arc<Track>,
    pub mindex: usize,
    pub pt: u8,
    pub codec: &'static str,
}

/// Plays `stream` into `send` until `ctl` (or `own`, a viewer's playback) stops it; while
/// `playing()` is false the position holds.
async fn run(
    stream: Stream,
    ctl: Arc<Ctl>,
    playing: impl Fn() -> bool + Send,
    ended: impl Fn() -> bool + Send,
    send: impl Fn(&RtpPacket) + Send,
) {
    let mut cur = Cursor::new(stream.track.clone());
    let clock = u64::from(stream.track.clock().max(1));
    let ssrc = rand::random::<u32>();
    let mut next = tokio::time::Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        if ctl.stop.load(Ordering::Acquire) || ended() {
            return;
        }
        let now = tokio::time::Instant::now();
        if !ctl.enabled.load(Ordering::Relaxed) || !playing() {
            next = now + Duration::from_millis(20);
            continue;
        }
        let (payload, timestamp, seq, marker, ticks) = cur.advance();
        send(&RtpPacket {
            mindex: stream.mindex,
            kind: MediaKind::Audio,
            pt: stream.pt,
            codec: stream.codec,
            seq,
            timestamp,
            marker,
            ssrc,
            substream: None,
            ext: RtpExtensions::default(),
            payload,
            svc: None,
        });
        next += Duration::from_micros(u64::from(ticks) * 1_000_000 / clock);
        // After a stall (a busy runtime), go on from now rather than bursting to catch up.
        if next + Duration::from_millis(500) < now {
            next = now;
        }
    }
}

/// Starts a `live` playback: every frame goes to `send` (the source's fan-out).
pub fn spawn_live(
    services: &Arc<dyn CoreServices>,
    stream: Stream,
    ctl: Arc<Ctl>,
    send: impl Fn(&RtpPacket) + Send + 'static,
) {
    services.spawn(Box::pin(run(stream, ctl, || true, || false, send)));
}

/// One viewer's `ondemand` playback.
struct Own {
    fan: RwLock<Fanout>,
    /// The viewer receives (not paused).
    active: AtomicBool,
    /// The viewer left: the task ends.
    ended: AtomicBool,
}

/// The `ondemand` playbacks of a source, by viewer handle.
pub struct OnDemand {
    services: Arc<dyn CoreServices>,
    router: Arc<dyn MediaRouter>,
    stream: Stream,
    ctl: Arc<Ctl>,
    plays: Mutex<HashMap<u64, Arc<Own>>>,
}

impl OnDemand {
    pub fn new(
        services: Arc<dyn CoreServices>,
        router: Arc<dyn MediaRouter>,
        stream: Stream,
        ctl: Arc<Ctl>,
    ) -> OnDemand {
        OnDemand {
            services,
            router,
            stream,
            ctl,
            plays: Mutex::new(HashMap::new()),
        }
    }

    fn plays(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Own>>> {
        self.plays.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The viewer's m-line receives: its playback starts (from the top), or resumes.
    pub fn add(&self, handle_id: u64, mindex: usize, epoch: u32) {
        let mut plays = self.plays();
        let own = plays.entry(handle_id).or_insert_with(|| {
            let own = Arc::new(Own {
                fan: RwLock::new(Fanout::new(self.router.clone())),
                active: AtomicBool::new(false),
                ended: AtomicBool::new(false),
            });
            let (a, b, c) = (own.clone(), own.clone(), own.clone());
            self.services.spawn(Box::pin(run(
                self.stream.clone(),
                self.ctl.clone(),
                move || a.active.load(Ordering::Relaxed),
                move || b.ended.load(Ordering::Acquire),
                move |p| c.fan.read().unwrap_or_else(|e| e.into_inner()).send(p),
            )));
            own
        });
        let mut d = Dest::new(handle_id, mindex);
        d.epoch = epoch;
        own.fan.write().unwrap_or_else(|e| e.into_inner()).insert(d);
        own.active.store(true, Ordering::Relaxed);
    }

    /// The viewer pauses: its playback holds its place.
    pub fn pause(&self, handle_id: u64, mindex: usize) {
        if let Some(own) = self.plays().get(&handle_id) {
            own.active.store(false, Ordering::Relaxed);
            own.fan
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .remove_dest(handle_id, mindex);
        }
    }

    /// The viewer is gone: its playback ends.
    pub fn end(&self, handle_id: u64) {
        if let Some(own) = self.plays().remove(&handle_id) {
            own.active.store(false, Ordering::Relaxed);
            own.ended.store(true, Ordering::Release);
        }
    }

    /// How many viewers receive now.
    pub fn receiving(&self) -> usize {
        self.plays()
            .values()
            .filter(|o| o.active.load(Ordering::Relaxed))
            .count()
    }
}

impl Drop for OnDemand {
    fn drop(&mut self) {
        for own in self.plays().values() {
            own.ended.store(true, Ordering::Release);
        }
    }
}
