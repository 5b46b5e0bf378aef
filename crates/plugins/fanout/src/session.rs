//! One handle of the fan-out plugin: a publisher (its [`Source`]: what it sends is forwarded)
//! or a subscriber (a destination in a publisher's fan-outs). The media callbacks run on the
//! handle's media worker; the publisher's packet path reads one `RwLock` per packet and hands
//! the packet to the engine once per worker.

use crate::error::FanoutError;
use crate::{role_name, Shared};
use jano_plugin::{
    CoreServices, Dest, Fanout, HandleRef, KeyframeThrottle, MediaCtx, MediaKind, NegotiatedMedia,
    PluginSession, RtcpFeedback, RtpPacket, Value,
};
use serde_json::json;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock};
use std::time::Instant;

/// What a publisher's packets go to, per kind.
pub(crate) struct Source {
    href: HandleRef,
    audio: RwLock<Option<Fanout>>,
    video: RwLock<Option<Fanout>>,
    throttle: Mutex<KeyframeThrottle>,
}

impl Source {
    fn fanout(&self, kind: MediaKind) -> &RwLock<Option<Fanout>> {
        match kind {
            MediaKind::Audio => &self.audio,
            MediaKind::Video => &self.video,
        }
    }

    fn edit(&self, f: impl Fn(&mut Fanout, MediaKind)) {
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let mut g = self.fanout(kind).write().unwrap_or_else(|e| e.into_inner());
            if let Some(fan) = g.as_mut() {
                f(fan, kind);
            }
        }
    }

    fn add(&self, sub: u64, mlines: (Option<usize>, Option<usize>), epoch: u32) {
        self.edit(|fan, kind| {
            let m = match kind {
                MediaKind::Audio => mlines.0,
                MediaKind::Video => mlines.1,
            };
            if let Some(mindex) = m {
                let mut d = Dest::new(sub, mindex);
                d.epoch = epoch;
                fan.insert(d);
            }
        });
    }

    fn remove(&self, sub: u64) {
        self.edit(|fan, _| {
            fan.remove(sub);
        });
    }

    fn subscribers(&self) -> usize {
        self.video
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, Fanout::len)
    }

    /// A subscriber asked for a keyframe: the publisher is asked, at most every `fir_freq`.
    fn keyframe(&self, services: &dyn CoreServices) -> bool {
        let allow = self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now());
        if allow {
            services.send_pli(&self.href, None);
        }
        allow
    }
}

pub(crate) enum Role {
    None,
    Publisher(Arc<Source>),
    Subscriber { feed: u64, paused: bool },
}

pub(crate) struct FanHandle {
    shared: Arc<Shared>,
    href: HandleRef,
    role: Mutex<Role>,
    /// Set once at `publish`: the packet path reads it without the role lock.
    publisher: OnceLock<Arc<Source>>,
    /// A subscriber's first audio and video m-lines we send on (from `negotiated`).
    mlines: Mutex<(Option<usize>, Option<usize>)>,
    /// The PeerConnection is up (a subscription made later starts at once).
    up: AtomicBool,
    /// Bumped on every resume and switch: the engine starts a new sequence segment.
    epoch: AtomicU32,
    remb: AtomicU64,
    keyframe_requests: AtomicU64,
    keyframes_forwarded: AtomicU64,
}

impl FanHandle {
    pub fn new(shared: Arc<Shared>, href: HandleRef) -> Self {
        FanHandle {
            shared,
            href,
            role: Mutex::new(Role::None),
            publisher: OnceLock::new(),
            mlines: Mutex::new((None, None)),
            up: AtomicBool::new(false),
            epoch: AtomicU32::new(0),
            remb: AtomicU64::new(0),
            keyframe_requests: AtomicU64::new(0),
            keyframes_forwarded: AtomicU64::new(0),
        }
    }

    pub fn id(&self) -> u64 {
        self.href.handle_id
    }

    fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn source(&self, feed: u64) -> Result<Arc<Source>, FanoutError> {
        self.shared
            .sources()
            .get(&feed)
            .cloned()
            .ok_or(FanoutError::NoSuchFeed(feed))
    }

    fn start(&self, source: &Source) {
        let mlines = *self.mlines.lock().unwrap_or_else(|e| e.into_inner());
        source.add(self.id(), mlines, self.epoch.load(Ordering::Relaxed));
    }

    pub fn publish(&self) -> Result<(), FanoutError> {
        let mut role = self.role();
        if !matches!(*role, Role::None) {
            return Err(FanoutError::AlreadyInRole(role_name(&role)));
        }
        let router = self.shared.services.media_router();
        let source = Arc::new(Source {
            href: self.href.clone(),
            audio: RwLock::new(router.clone().map(Fanout::new)),
            video: RwLock::new(router.map(Fanout::new)),
            throttle: Mutex::new(KeyframeThrottle::new(self.shared.fir_freq)),
        });
        let _ = self.publisher.set(source.clone());
        self.shared.sources().insert(self.id(), source.clone());
        *role = Role::Publisher(source);
        Ok(())
    }

    pub fn subscribe(&self, feed: u64) -> Result<(), FanoutError> {
        let source = self.source(feed)?;
        let mut role = self.role();
        if !matches!(*role, Role::None) {
            return Err(FanoutError::AlreadyInRole(role_name(&role)));
        }
        *role = Role::Subscriber {
            feed,
            paused: false,
        };
        if self.up.load(Ordering::Relaxed) {
            self.start(&source);
        }
        Ok(())
    }

    pub fn switch(&self, feed: u64) -> Result<(), FanoutError> {
        let new = self.source(feed)?;
        let mut role = self.role();
        let Role::Subscriber { feed: old, paused } = &mut *role else {
            return Err(FanoutError::NotSubscriber);
        };
        if let Ok(s) = self.source(*old) {
            s.remove(self.id());
        }
        *old = feed;
        self.epoch.fetch_add(1, Ordering::Relaxed);
        if self.up.load(Ordering::Relaxed) && !*paused {
            self.start(&new);
        }
        Ok(())
    }

    pub fn set_paused(&self, pause: bool) -> Result<(), FanoutError> {
        let mut role = self.role();
        let Role::Subscriber { feed, paused } = &mut *role else {
            return Err(FanoutError::NotSubscriber);
        };
        if *paused == pause {
            return Ok(());
        }
        *paused = pause;
        let source = self.source(*feed)?;
        if pause {
            source.remove(self.id());
        } else {
            self.epoch.fetch_add(1, Ordering::Relaxed);
            if self.up.load(Ordering::Relaxed) {
                self.start(&source);
            }
        }
        Ok(())
    }

    /// The handle goes away: a publisher's subscribers stop receiving; a subscriber leaves.
    pub fn leave(&self) {
        let role = std::mem::replace(&mut *self.role(), Role::None);
        match role {
            Role::Publisher(s) => {
                self.shared.sources().remove(&self.id());
                s.edit(|fan, _| {
                    let ids: Vec<u64> = fan.iter().map(|d| d.handle_id).collect();
                    for id in ids {
                        fan.remove(id);
                    }
                });
            }
            Role::Subscriber { feed, .. } => {
                if let Ok(s) = self.source(feed) {
                    s.remove(self.id());
                }
            }
            Role::None => {}
        }
    }

    pub fn describe(&self) -> Value {
        let role = self.role();
        let mut v = json!({
            "role": role_name(&role),
            "remb": self.remb.load(Ordering::Relaxed),
            "keyframe_requests": self.keyframe_requests.load(Ordering::Relaxed),
            "keyframes_forwarded": self.keyframes_forwarded.load(Ordering::Relaxed),
        });
        match &*role {
            Role::Publisher(s) => v["subscribers"] = json!(s.subscribers()),
            Role::Subscriber { feed, paused } => {
                v["feed"] = json!(feed);
                v["paused"] = json!(paused);
            }
            Role::None => {}
        }
        v
    }
}

impl PluginSession for FanHandle {
    fn negotiated(&self, _ctx: &mut MediaCtx<'_>, media: &[NegotiatedMedia]) {
        let first = |k: MediaKind| {
            media
                .iter()
                .find(|m| m.kind == Some(k) && m.send)
                .map(|m| m.mindex)
        };
        *self.mlines.lock().unwrap_or_else(|e| e.into_inner()) =
            (first(MediaKind::Audio), first(MediaKind::Video));
    }

    fn setup_media(&self, _ctx: &mut MediaCtx<'_>) {
        self.up.store(true, Ordering::Relaxed);
        let role = self.role();
        if let Role::Subscriber {
            feed,
            paused: false,
        } = &*role
        {
            if let Ok(s) = self.source(*feed) {
                self.start(&s);
            }
        }
    }

    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        let Some(source) = self.publisher.get() else {
            return;
        };
        let fan = source
            .fanout(packet.kind)
            .read()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(f) = fan.as_ref() {
            f.send(packet);
        }
    }

    fn incoming_rtcp(&self, _ctx: &mut MediaCtx<'_>, feedback: &RtcpFeedback) {
        match feedback {
            RtcpFeedback::KeyframeRequest { .. } => {
                self.keyframe_requests.fetch_add(1, Ordering::Relaxed);
                let feed = match &*self.role() {
                    Role::Subscriber { feed, .. } => Some(*feed),
                    _ => None,
                };
                if let Some(s) = feed.and_then(|f| self.source(f).ok()) {
                    if s.keyframe(&*self.shared.services) {
                        self.keyframes_forwarded.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            RtcpFeedback::Bitrate { bitrate, .. } => {
                self.remb.store(*bitrate, Ordering::Relaxed);
            }
        }
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        self.up.store(false, Ordering::Relaxed);
        let role = self.role();
        if let Role::Subscriber { feed, .. } = &*role {
            if let Ok(s) = self.source(*feed) {
                s.remove(self.id());
            }
        }
    }
}
