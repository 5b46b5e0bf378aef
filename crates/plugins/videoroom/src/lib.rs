//! `janus.plugin.videoroom`: the SFU, wire-compatible with Janus's VideoRoom.
//!
//! Participants join a room and publish one PeerConnection with any number of streams;
//! subscriptions are PeerConnections the plugin offers, carrying streams of any publishers.
//! A publisher's packets reach its subscribers through per-stream, per-layer fan-outs
//! ([`media`]): one shared copy per packet, one hand-over per media worker.
//!
//! Modules: [`config`] (room settings), [`room`], [`publisher`] and [`subscriber`] (state),
//! [`media`] (the packet path), [`taps`] (forwarders, recorders), and the request handlers
//! ([`manage`] for the synchronous ones, [`participant`] and [`subscription`] for the
//! asynchronous ones).
//!
//! Threads: `Plugin` methods and request handlers run on the signalling path; the
//! `PluginSession` callbacks of [`handle::VrHandle`] on the handle's media worker; a timer
//! task (layer fallback, `fir_freq`, REMB caps) on the plugins' runtime.

pub mod config;
pub mod dummy;
pub mod error;
pub mod forward;
pub mod handle;
pub mod json;
pub mod manage;
pub mod media;
pub mod participant;
pub mod publisher;
pub mod remote;
pub mod room;
pub use jano_plugin::sdp;
pub mod subscriber;
pub mod subscription;
pub mod taps;

use error::{VrError, VrResult};
use handle::VrHandle;
use jano_plugin::rooms::Registry;
use jano_plugin::{
    session_as, CoreServices, HandleRef, Jcfg, Jsep, LocalJsep, Map, MediaRouter, Plugin,
    PluginInfo, PluginResult, SessionRef, Value,
};
use json::{Body, Id, Ids};
use publisher::{Phase, Publisher, TalkCfg};
use room::Room;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::{Duration, Instant};
use subscriber::{SubState, Subscriber};

pub const PACKAGE: &str = "janus.plugin.videoroom";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS VideoRoom plugin",
    author: "Meetecho s.r.l.",
    description: "This is a plugin implementing a videoconferencing SFU (Selective Forwarding Unit) for Janus, that is an audio/video router.",
    version: 10,
    version_string: "0.0.10",
};

/// Requests answered synchronously (also through the Admin API's `message_plugin`).
const SYNC: &[&str] = &[
    "create",
    "edit",
    "destroy",
    "list",
    "exists",
    "allowed",
    "kick",
    "moderate",
    "listparticipants",
    "listforwarders",
    "enable_recording",
    "rtp_forward",
    "stop_rtp_forward",
    "add_remote_publisher",
    "update_remote_publisher",
    "remove_remote_publisher",
    "publish_remotely",
    "unpublish_remotely",
    "listremotes",
];

/// Requests acknowledged at once and answered with an event.
const ASYNC: &[&str] = &[
    "join",
    "joinandconfigure",
    "configure",
    "publish",
    "unpublish",
    "start",
    "pause",
    "switch",
    "subscribe",
    "unsubscribe",
    "update",
    "leave",
];

/// State shared by the plugin, its handles and its timer.
pub struct Shared {
    pub services: Arc<dyn CoreServices>,
    /// The timer task runs (started with the first handle: the plugins' runtime does not
    /// exist yet when the plugin is built).
    timer: std::sync::Once,
    pub ids: Ids,
    pub admin_key: Option<String>,
    pub lock_rtp_forward: bool,
    rooms: Registry<Room>,
    pub persist: jano_plugin::persist::Persist,
}

impl Shared {
    /// The media engine's fan-out side (it exists only once the server runs, after the
    /// plugin was built).
    pub fn router(&self) -> Option<Arc<dyn MediaRouter>> {
        self.services.media_router()
    }

    pub fn rooms(&self) -> RwLockReadGuard<'_, HashMap<Id, Arc<Room>>> {
        self.rooms.read()
    }

    pub fn rooms_mut(&self) -> RwLockWriteGuard<'_, HashMap<Id, Arc<Room>>> {
        self.rooms.write()
    }

    pub fn room(&self, id: &Id) -> VrResult<Arc<Room>> {
        self.rooms()
            .get(id)
            .cloned()
            .ok_or_else(|| VrError::NoSuchRoom(id.to_string()))
    }

    /// A room id from a request (`room` mandatory).
    pub fn room_of(&self, b: &Body) -> VrResult<Arc<Room>> {
        let id = self.ids.req(b, "room")?;
        self.room(&id)
    }

    /// The room a management request names, its `secret` checked.
    pub fn managed_room(&self, b: &Body) -> VrResult<Arc<Room>> {
        let room = self.room_of(b)?;
        let secret = room.state().cfg.secret.clone();
        Shared::check_secret(secret.as_deref(), b)?;
        Ok(room)
    }

    /// The `secret` check for room management (absent secret in the room: anyone).
    pub fn check_secret(room_secret: Option<&str>, b: &Body) -> VrResult<()> {
        check_secret(room_secret, b, "secret")
    }

    /// The plugin-wide `admin_key` check (`create`, locked forwarding).
    pub fn check_admin_key(&self, b: &Body) -> VrResult<()> {
        check_secret(self.admin_key.as_deref(), b, "admin_key")
    }

    pub fn push(
        &self,
        h: &HandleRef,
        tx: Option<String>,
        data: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) {
        let _ = self.services.push_event(h, tx, data, jsep);
    }

    /// A publisher's PeerConnection is up: it becomes active and the room hears of it.
    pub fn publisher_up(&self, p: &Arc<Publisher>) {
        let (talk, bitrate, record) = {
            let rs = p.room.state();
            let cfg = &rs.cfg;
            let st = p.state();
            let talk = cfg.audiolevel_event.then(|| TalkCfg {
                packets: st.audio_active_packets.unwrap_or(cfg.audio_active_packets),
                average: st.audio_level_average.unwrap_or(cfg.audio_level_average),
            });
            let bitrate = if st.bitrate > 0 {
                st.bitrate
            } else {
                cfg.bitrate
            };
            (talk, bitrate, st.record.unwrap_or(cfg.record))
        };
        p.state().phase = Phase::Active;
        p.activate(talk);
        if bitrate > 0 {
            self.services.send_remb(&p.href, bitrate);
        }
        if record {
            participant::start_recording(self, p);
        }
        self.announce(p);
    }

    /// Tells everyone else in the room what `p` publishes.
    pub fn announce(&self, p: &Arc<Publisher>) {
        let talking = p.room.state().cfg.audiolevel_event;
        let mut ev = Map::new();
        ev.insert("videoroom".into(), json!("event"));
        ev.insert("room".into(), p.room.id_json());
        ev.insert("publishers".into(), json!([p.to_json(talking)]));
        p.room.notify(&*self.services, Some(&p.id), &ev);
    }

    /// `p` stops publishing (request, hang-up, leave, kick): the room hears `unpublished`,
    /// subscriptions lose its streams (and get a new offer when they auto-update), its
    /// PeerConnection is closed unless it is what went away. Whether it was publishing.
    pub fn unpublish(&self, p: &Arc<Publisher>, pc_gone: bool) -> bool {
        let was_active = p.deactivate();
        p.set_e2ee(false);
        let was_any = {
            let mut st = p.state();
            let was = st.phase != Phase::Idle;
            st.phase = Phase::Idle;
            st.streams.clear();
            st.talking = false;
            was
        };
        if was_active {
            let mut ev = Map::new();
            ev.insert("videoroom".into(), json!("event"));
            ev.insert("room".into(), p.room.id_json());
            ev.insert("unpublished".into(), p.id.to_json());
            p.room.notify(&*self.services, Some(&p.id), &ev);
            for sub in p.room.subscribers() {
                let mut st = sub.state();
                if sub.drop_feed(&mut st, p) && st.autoupdate && !st.left {
                    self.renegotiate(&sub, &mut st, None);
                }
            }
        }
        if was_any && !pc_gone && p.has_handle() {
            self.services.close_pc(&p.href);
        }
        was_any
    }

    /// Sends a subscription its new offer (`updated`), or `updating` if the last one is
    /// unanswered (the new offer follows the answer), or a bare `updated` when nothing changed.
    pub fn renegotiate(&self, sub: &Arc<Subscriber>, st: &mut SubState, tx: Option<String>) {
        let mut ev = Map::new();
        ev.insert("room".into(), sub.room.id_json());
        if st.offer_pending {
            st.update_pending = true;
            ev.insert("videoroom".into(), json!("updating"));
            self.push(&sub.href, tx, ev, None);
            return;
        }
        ev.insert("videoroom".into(), json!("updated"));
        if !Subscriber::needs_offer(st) {
            self.push(&sub.href, tx, ev, None);
            return;
        }
        ev.insert("streams".into(), Value::Array(Vec::new()));
        sub.send_offer(st, &*self.services, tx, ev, false);
    }

    /// A participant leaves its room (request, detach, kick, room destroyed).
    pub fn leave(&self, p: &Arc<Publisher>, notify: bool) {
        if p.has_left() {
            return;
        }
        self.unpublish(p, false);
        p.mark_left();
        p.room.state().participants.remove(&p.id);
        if notify {
            let mut ev = Map::new();
            ev.insert("videoroom".into(), json!("event"));
            ev.insert("room".into(), p.room.id_json());
            ev.insert("leaving".into(), p.id.to_json());
            p.room.notify(&*self.services, Some(&p.id), &ev);
        }
    }

    /// A participant is kicked: it leaves without the room hearing `unpublished` or
    /// `leaving` (the caller tells them `kicked`).
    pub fn leave_quietly(&self, p: &Arc<Publisher>) {
        if p.has_left() {
            return;
        }
        let was_active = p.deactivate();
        {
            let mut st = p.state();
            st.phase = Phase::Idle;
            st.streams.clear();
        }
        p.mark_left();
        p.room.state().participants.remove(&p.id);
        if was_active {
            for sub in p.room.subscribers() {
                let mut st = sub.state();
                if sub.drop_feed(&mut st, p) && st.autoupdate && !st.left {
                    self.renegotiate(&sub, &mut st, None);
                }
            }
        }
        if p.has_handle() {
            self.services.close_pc(&p.href);
        }
    }

    /// A subscription ends (request, detach, room destroyed).
    pub fn drop_subscriber(&self, s: &Arc<Subscriber>) {
        {
            let mut st = s.state();
            if st.left {
                return;
            }
            s.stop_all(&mut st);
        }
        s.room.state().subscribers.remove(&s.href.handle_id);
    }

    /// Periodic work: simulcast fallback, `fir_freq` keyframes, REMB caps.
    fn tick(&self, now: Instant, remb: bool) {
        let rooms: Vec<Arc<Room>> = self.rooms().values().cloned().collect();
        for room in rooms {
            let (fir, bitrate, pubs) = {
                let rs = room.state();
                let pubs: Vec<Arc<Publisher>> = rs
                    .participants
                    .values()
                    .filter(|p| p.is_publishing())
                    .cloned()
                    .collect();
                (rs.cfg.fir_freq, rs.cfg.bitrate, pubs)
            };
            for p in &pubs {
                if fir > 0 {
                    let due = {
                        let mut last = p.last_fir.lock().unwrap_or_else(|e| e.into_inner());
                        let due =
                            last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(fir));
                        if due {
                            *last = Some(now);
                        }
                        due
                    };
                    if due {
                        p.request_keyframe(None);
                    }
                }
                if remb && p.has_handle() {
                    let own = p.state().bitrate;
                    let cap = if own > 0 { own } else { bitrate };
                    if cap > 0 {
                        self.services.send_remb(&p.href, cap);
                    }
                }
            }
            for s in room.subscribers() {
                s.check_layers();
            }
        }
    }
}

pub struct VideoRoom {
    shared: Arc<Shared>,
}

impl VideoRoom {
    pub fn new(config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> VideoRoom {
        let general = config.and_then(|c| c.root.group("general"));
        let strings = general
            .and_then(|g| g.get_bool("string_ids"))
            .unwrap_or(false);
        let ids = Ids { strings };
        let admin_key = general
            .and_then(|g| g.get_str("admin_key"))
            .filter(|k| !k.is_empty());
        let lock_rtp_forward = general
            .and_then(|g| g.get_bool("lock_rtp_forward"))
            .unwrap_or(false);
        let persist =
            jano_plugin::persist::Persist::new(services.configs_folder(), PACKAGE, config.cloned());
        let mut rooms = HashMap::new();
        if let Some(cfg) = config {
            for (name, group) in cfg.categories() {
                let Some(rest) = name.strip_prefix("room-") else {
                    continue;
                };
                let Some(id) = Id::parse_text(rest, strings) else {
                    tracing::warn!("videoroom: skipping category {name}: not a valid room id");
                    continue;
                };
                let mut rc = config::RoomConfig::from_group(&id, group);
                // Signed room tokens need the core in signed mode (as in Janus).
                rc.signed_tokens &= services.auth_is_signed();
                rooms.insert(id.clone(), Arc::new(Room::new(id, rc)));
            }
        }
        let shared = Arc::new(Shared {
            timer: std::sync::Once::new(),
            services,
            ids,
            admin_key,
            lock_rtp_forward,
            rooms: Registry::from_map(rooms),
            persist,
        });
        let rooms: Vec<Arc<Room>> = shared.rooms().values().cloned().collect();
        for room in rooms {
            if let Err(e) = dummy::create(&shared, &room) {
                tracing::warn!("videoroom: room {}: no dummy publisher: {e}", room.id);
            }
        }
        VideoRoom { shared }
    }

    /// The [`jano_plugin::PluginFactory`].
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(VideoRoom::new(config, services)))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn sync_request(
        &self,
        me: Option<&VrHandle>,
        request: &str,
        body: &Body,
    ) -> Map<String, Value> {
        match manage::handle(&self.shared, me, request, body) {
            Ok(data) => data,
            Err(e) => e.to_data(),
        }
    }
}

/// Janus's `secret`/`pin`/`admin_key` check: 429 when missing, 430 mistyped, 433 when wrong.
pub fn check_secret(want: Option<&str>, b: &Body, name: &'static str) -> VrResult<()> {
    use jano_plugin::fields::{FieldError, SecretError};
    jano_plugin::fields::check_secret(want, b, name).map_err(|e| match e {
        SecretError::Field(FieldError::Missing(n)) => VrError::Missing(n),
        SecretError::Field(f @ FieldError::Type(..)) => VrError::Invalid(f.to_string()),
        SecretError::Wrong(text) => VrError::Unauthorized(text),
    })
}

/// One timer for the whole plugin: 4 times a second, layers; every second, REMB and FIR.
fn start_timer(shared: &Arc<Shared>) {
    let weak: Weak<Shared> = Arc::downgrade(shared);
    shared.services.spawn(Box::pin(async move {
        let mut n: u64 = 0;
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let Some(s) = weak.upgrade() else { return };
            n += 1;
            s.tick(Instant::now(), n.is_multiple_of(4));
        }
    }));
}

fn request_name(body: &Body) -> VrResult<&str> {
    match body.get("request") {
        None | Some(Value::Null) => Err(VrError::Missing("request")),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(VrError::invalid_type("request", "a string")),
    }
}

impl Plugin for VideoRoom {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        self.shared.timer.call_once(|| start_timer(&self.shared));
        Ok(Arc::new(VrHandle::new(self.shared.clone(), handle.clone())))
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(me) = session_as::<VrHandle>(session) else {
            return PluginResult::Error("no VideoRoom state for this handle".into());
        };
        let request = match request_name(&body) {
            Ok(r) => r.to_owned(),
            Err(e) => return PluginResult::Ok(e.to_data()),
        };
        if SYNC.contains(&request.as_str()) {
            return PluginResult::Ok(self.sync_request(Some(me), &request, &body));
        }
        if !ASYNC.contains(&request.as_str()) {
            return PluginResult::Ok(VrError::UnknownRequest(request).to_data());
        }
        let tx = Some(transaction.to_owned());
        let result = if matches!(request.as_str(), "join" | "joinandconfigure") {
            participant::join(&self.shared, me, &request, &body, jsep, tx.clone())
        } else {
            let role = me.role();
            match &*role {
                handle::Role::Publisher(p) => {
                    let p = p.clone();
                    drop(role);
                    participant::request(&self.shared, me, &p, &request, &body, jsep, tx.clone())
                }
                handle::Role::Subscriber(s) => {
                    let s = s.clone();
                    drop(role);
                    subscription::request(&self.shared, &s, &request, &body, jsep, tx.clone())
                }
                handle::Role::None => Err(VrError::JoinFirst),
                handle::Role::Left => Err(VrError::RoomGone),
            }
        };
        match result {
            Ok(Some((data, answer))) => self.shared.push(handle, tx, data, answer),
            Ok(None) => {}
            Err(e) => self.shared.push(handle, tx, e.to_data(), None),
        }
        PluginResult::OkWait(None)
    }

    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        let Value::Object(body) = request else {
            return Some(Value::Object(VrError::NotAnObject.to_data()));
        };
        let data = match request_name(&body) {
            Ok(r) if SYNC.contains(&r) => self.sync_request(None, r, &body),
            Ok(r) => VrError::UnknownRequest(r.to_owned()).to_data(),
            Err(e) => e.to_data(),
        };
        Some(Value::Object(data))
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        let me = session_as::<VrHandle>(session).ok_or(-1)?;
        let role = std::mem::replace(&mut *me.role(), handle::Role::Left);
        match role {
            handle::Role::Publisher(p) => self.shared.leave(&p, true),
            handle::Role::Subscriber(s) => self.shared.drop_subscriber(&s),
            handle::Role::None | handle::Role::Left => {}
        }
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(me) = session_as::<VrHandle>(session) else {
            return json!({});
        };
        match &*me.role() {
            handle::Role::None => json!({}),
            handle::Role::Left => json!({"left": true}),
            handle::Role::Publisher(p) => {
                let st = p.state();
                let mut v = json!({
                    "type": "publisher",
                    "room": p.room.id_json(),
                    "id": p.id.to_json(),
                    "private_id": p.private_id,
                    "display": st.display,
                    "publishing": p.is_publishing(),
                    "kicked": p.has_left(),
                    "streams": st.streams.iter().map(|s| {
                        let mut v = s.to_json(false, true);
                        if let (Some(m), Value::Object(o)) = (&s.media, &mut v) {
                            o.insert("packets".into(), json!(m.packets.load(std::sync::atomic::Ordering::Relaxed)));
                            o.insert("subscribers".into(), json!(m.receivers()));
                        }
                        v
                    }).collect::<Vec<_>>(),
                });
                if let (true, Value::Object(o)) = (p.is_e2ee(), &mut v) {
                    o.insert("e2ee".into(), json!(true));
                }
                v
            }
            handle::Role::Subscriber(s) => {
                let st = s.state();
                let mut v = json!({
                    "type": "subscriber",
                    "room": s.room.id_json(),
                    "started": st.started,
                    "paused": st.paused,
                    "streams": Subscriber::streams_json(&st),
                });
                if let (true, Value::Object(o)) = (st.e2ee, &mut v) {
                    o.insert("e2ee".into(), json!(true));
                }
                v
            }
        }
    }

    fn shutdown(&self) {
        let rooms: Vec<Arc<Room>> = self.shared.rooms_mut().drain().map(|(_, r)| r).collect();
        for r in rooms {
            let pubs: Vec<Arc<Publisher>> = r.state().participants.values().cloned().collect();
            for p in pubs {
                p.deactivate();
            }
        }
    }
}
