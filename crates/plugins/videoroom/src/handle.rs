//! One handle of the VideoRoom plugin: untyped until it joins, then a participant
//! ([`Publisher`]) or a subscription ([`Subscriber`]). Its media callbacks run on the handle's
//! media worker and go straight to the publisher's or subscriber's media path.

use crate::publisher::{Phase, Publisher};
use crate::subscriber::Subscriber;
use crate::Shared;
use jano_plugin::{
    DataMessage, HandleRef, MediaCtx, NegotiatedMedia, PluginSession, RtcpFeedback, RtpPacket,
};
use serde_json::json;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

pub enum Role {
    None,
    Publisher(Arc<Publisher>),
    Subscriber(Arc<Subscriber>),
    /// Left the room (or the room went away): a new handle is needed to join again.
    Left,
}

pub struct VrHandle {
    pub(crate) shared: Arc<Shared>,
    pub href: HandleRef,
    role: Mutex<Role>,
    /// Set once at `join`: the packet path reads it without the role lock.
    publisher: OnceLock<Arc<Publisher>>,
    subscriber: OnceLock<Arc<Subscriber>>,
}

impl VrHandle {
    pub(crate) fn new(shared: Arc<Shared>, href: HandleRef) -> VrHandle {
        VrHandle {
            shared,
            href,
            role: Mutex::new(Role::None),
            publisher: OnceLock::new(),
            subscriber: OnceLock::new(),
        }
    }

    pub fn role(&self) -> MutexGuard<'_, Role> {
        self.role.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_publisher(&self, role: &mut Role, p: Arc<Publisher>) {
        let _ = self.publisher.set(p.clone());
        *role = Role::Publisher(p);
    }

    pub fn set_subscriber(&self, role: &mut Role, s: Arc<Subscriber>) {
        let _ = self.subscriber.set(s.clone());
        *role = Role::Subscriber(s);
    }

    fn live_publisher(&self) -> Option<&Arc<Publisher>> {
        self.publisher.get().filter(|p| !p.has_left())
    }
}

impl PluginSession for VrHandle {
    fn setup_media(&self, ctx: &mut MediaCtx<'_>) {
        if let Some(p) = self.live_publisher() {
            let phase = p.state().phase;
            if phase == Phase::Negotiating {
                self.shared.publisher_up(p);
            }
            return;
        }
        if let Some(s) = self.subscriber.get() {
            // The subscriber's decoders need a keyframe of everything it gets.
            let feeds: Vec<(Arc<Publisher>, usize)> = {
                let st = s.state();
                st.streams
                    .iter()
                    .filter_map(|x| {
                        let f = x.feed.clone()?;
                        let sm = x.feed_mid.as_ref().and_then(|m| f.stream_media(m))?;
                        sm.video.then_some((f, sm.mindex))
                    })
                    .collect()
            };
            for (f, m) in feeds {
                f.keyframe_now(m);
            }
            let _ = ctx;
        }
    }

    fn negotiated(&self, _ctx: &mut MediaCtx<'_>, media: &[NegotiatedMedia]) {
        // The codec each published stream really got (the answer may differ from the pick).
        if let Some(p) = self.live_publisher() {
            let mut st = p.state();
            for m in media {
                if let Some(s) = st.streams.iter_mut().find(|s| s.mid == m.mid) {
                    if let Some(c) = m.codecs.first() {
                        if s.codec.is_some() {
                            s.codec = Some(c.name.to_owned());
                        }
                    }
                }
            }
        }
    }

    fn incoming_rtp(&self, _ctx: &mut MediaCtx<'_>, packet: &RtpPacket) {
        if let Some(p) = self.publisher.get() {
            p.incoming_rtp(packet);
        }
    }

    fn incoming_rtcp(&self, _ctx: &mut MediaCtx<'_>, feedback: &RtcpFeedback) {
        if let (Some(s), RtcpFeedback::KeyframeRequest { mindex, .. }) =
            (self.subscriber.get(), feedback)
        {
            if let Some((feed, pub_mindex)) = s.feed_at(*mindex) {
                feed.keyframe_now(pub_mindex);
            }
        }
    }

    fn incoming_data(&self, _ctx: &mut MediaCtx<'_>, message: &DataMessage<'_>) {
        if let Some(p) = self.publisher.get() {
            p.incoming_data(message);
        }
    }

    fn slow_link(&self, _ctx: &mut MediaCtx<'_>, _mindex: usize, _video: bool, uplink: bool) {
        let mut ev = jano_plugin::Map::new();
        ev.insert("videoroom".into(), json!("slow_link"));
        if let (Some(p), true) = (self.publisher.get(), uplink) {
            ev.insert("current-bitrate".into(), json!(p.state().bitrate));
        }
        let _ = self.shared.services.push_event(&self.href, None, ev, None);
    }

    fn hangup_media(&self, _handle: &HandleRef) {
        if let Some(p) = self.live_publisher() {
            self.shared.unpublish(p, true);
        }
        if let Some(s) = self.subscriber.get() {
            let mut st = s.state();
            st.started = false;
            st.offer_pending = false;
            for x in st.streams.iter_mut() {
                x.ready = false;
            }
            s.sync(&mut st);
        }
    }
}
