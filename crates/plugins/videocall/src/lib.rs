//! `janus.plugin.videocall`: one-to-one calls between two registered users, their media
//! relayed between the two PeerConnections; wire-compatible with Janus's VideoCall.
//!
//! Modules: [`call`] (the requests and hang-ups), [`handle`] (a handle's state and its media
//! path), [`error`] (codes).
//!
//! Threads: every request is acknowledged and answered from the signalling path (nothing in
//! it waits); the `PluginSession` callbacks run on the handles' media workers and only relay;
//! a task on the plugins' runtime watches simulcast layers for `fallback`.

pub mod call;
pub mod error;
pub mod handle;

use handle::VcHandle;
use jano_plugin::layers::pick_layer;
use jano_plugin::{
    session_arc, CoreServices, HandleRef, Jcfg, Jsep, Map, MediaKind, Plugin, PluginInfo,
    PluginResult, SessionRef, Value,
};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

pub const PACKAGE: &str = "janus.plugin.videocall";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS VideoCall plugin",
    author: "Meetecho s.r.l.",
    description: "This is a simple video call plugin for Janus, allowing two WebRTC peers to call each other through a server.",
    version: 6,
    version_string: "0.0.6",
};

/// How often simulcast layers are checked for `fallback`.
const LAYER_CHECK: Duration = Duration::from_millis(100);

pub struct Shared {
    pub services: Arc<dyn CoreServices>,
    /// Registered users; a name is freed when its handle goes.
    users: Mutex<HashMap<String, Arc<VcHandle>>>,
    /// Calls are linked and unlinked one at a time.
    link: Mutex<()>,
    /// Media goes through the engine's fan-out (else, without an engine, straight to the
    /// peer with `relay_rtp`).
    pub has_router: bool,
}

impl Shared {
    pub fn users(&self) -> MutexGuard<'_, HashMap<String, Arc<VcHandle>>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn linking(&self) -> MutexGuard<'_, ()> {
        self.link.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn usernames(&self) -> Vec<String> {
        let mut v: Vec<String> = self.users().keys().cloned().collect();
        v.sort();
        v
    }

    /// `fallback`: a receiver whose simulcast layer went quiet moves to the best layer still
    /// arriving, and back up when its layer returns.
    fn check_layers(&self) {
        let handles: Vec<Arc<VcHandle>> = self.users().values().cloned().collect();
        for h in handles {
            let Some(peer) = h.peer() else { continue };
            let (target, fallback_ms) = {
                let st = h.state();
                (usize::from(st.substream), (st.fallback_us / 1000).max(1))
            };
            for o in peer.outgoing() {
                if o.kind != MediaKind::Video || !o.stream.simulcast {
                    continue;
                }
                let want = pick_layer(target, |l| o.stream.layer_active(l, fallback_ms));
                let at = o.link.pending().or(o.link.current());
                if at != Some(want) && o.stream.layer_active(want, fallback_ms) {
                    o.stream.switch_to(&o.link, want);
                    self.services.send_pli(&peer.href, None);
                }
            }
        }
    }
}

pub struct VideoCall {
    shared: Arc<Shared>,
}

impl VideoCall {
    pub fn new(_config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> VideoCall {
        let shared = Arc::new(Shared {
            has_router: services.media_router().is_some(),
            services,
            users: Mutex::new(HashMap::new()),
            link: Mutex::new(()),
        });
        if shared.has_router {
            let weak: Weak<Shared> = Arc::downgrade(&shared);
            shared.services.spawn(Box::pin(async move {
                let mut tick = tokio::time::interval(LAYER_CHECK);
                loop {
                    tick.tick().await;
                    let Some(sh) = weak.upgrade() else { return };
                    sh.check_layers();
                }
            }));
        }
        VideoCall { shared }
    }

    /// The [`jano_plugin::PluginFactory`].
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(VideoCall::new(config, services)))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Plugin for VideoCall {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(VcHandle::new(handle.clone(), self.shared.clone()))
    }

    fn handle_message(
        &self,
        _handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(h) = session_arc::<VcHandle>(session) else {
            return PluginResult::Error("No session associated with this handle".into());
        };
        // Every request is acknowledged first; its event follows.
        call::handle(&self.shared, &h, transaction, &body, jsep);
        PluginResult::OkWait(None)
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        let Some(h) = session_arc::<VcHandle>(session) else {
            return Err(-2);
        };
        call::media_gone(&h);
        let name = h.state().username.take();
        if let Some(name) = name {
            let mut users = self.shared.users();
            if users.get(&name).is_some_and(|u| Arc::ptr_eq(u, &h)) {
                users.remove(&name);
            }
        }
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(h) = session_arc::<VcHandle>(session) else {
            return json!({});
        };
        let st = h.state();
        let mut info = json!({
            "state": if st.peer.is_some() { "incall" } else { "idle" },
            "username": st.username,
            "incall": u8::from(st.peer.is_some()),
            "hangingup": 0,
            "destroyed": 0,
        });
        if let Some(peer) = &st.peer {
            info["peer"] = json!(peer.state().username);
            info["audio_active"] = json!(h.audio_active.load(Ordering::Relaxed));
            info["video_active"] = json!(h.video_active.load(Ordering::Relaxed));
            if let Some(c) = &st.acodec {
                info["audio_codec"] = json!(c);
            }
            if let Some(c) = &st.vcodec {
                info["video_codec"] = json!(c);
            }
            info["bitrate"] = json!(st.bitrate);
            info["peer-bitrate"] = json!(h.peer_bitrate.load(Ordering::Relaxed));
            info["slowlink_count"] = json!(h.slowlinks.load(Ordering::Relaxed));
        }
        let files = h.rec.files();
        if !files.is_empty() {
            let mut rec = Map::new();
            for (kind, path) in files {
                let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
                rec.insert(kind.suffix().into(), json!(name));
            }
            info["recording"] = Value::Object(rec);
        }
        if st.e2ee {
            info["e2ee"] = json!(true);
        }
        info
    }
}
