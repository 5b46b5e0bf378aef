//! `janus.plugin.audiobridge`: an audio conference, wire-compatible with Janus's AudioBridge.
//!
//! Every participant sends one audio stream (Opus, or G.711); the plugin decodes, mixes and
//! sends each participant the mix without its own voice. Mixing runs on a small pool of
//! threads ([`mixer`]), never a thread per room or per participant as in Janus; listeners who
//! hear the same mix share one encode.
//!
//! Modules: [`config`] (room settings), [`room`] and [`participant`] (state), [`handle`] (the
//! media callbacks), [`jitter`], [`codec`] and [`mix`] (the audio path), [`mixer`] (the pool),
//! and the request handlers: [`manage`] (synchronous) and [`session`] (join and the rest).
//!
//! Threads: `Plugin` methods and request handlers run on the signalling path; the
//! `PluginSession` callbacks of [`handle::AbHandle`] on the handle's media worker (they only
//! queue packets); decoding, mixing and encoding on the mixing threads.

pub mod announce;
pub mod codec;
pub mod config;
pub mod error;
pub mod forward;
pub mod handle;
pub mod jitter;
pub mod manage;
pub mod mix;
pub mod mixer;
pub mod mjrs;
pub mod participant;
pub mod plainrtp;
pub mod room;
pub mod room_media;
pub mod session;
pub mod wav;

use error::{AbError, AbResult};
use handle::AbHandle;
use jano_plugin::fields::{Body, SecretError};
use jano_plugin::ids::{Id, Ids};
use jano_plugin::persist::Persist;
use jano_plugin::rooms::Registry;
use jano_plugin::{
    session_as, CoreServices, HandleRef, Jcfg, Jsep, LocalJsep, Map, Plugin, PluginInfo,
    PluginResult, SessionRef, Value,
};
use participant::Participant;
use room::Room;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLockReadGuard, RwLockWriteGuard};

pub const PACKAGE: &str = "janus.plugin.audiobridge";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS AudioBridge plugin",
    author: "Meetecho s.r.l.",
    description:
        "This is a plugin implementing an audio conference bridge for Janus, mixing Opus streams.",
    version: 12,
    version_string: "0.0.12",
};

/// Requests answered synchronously (also through the Admin API's `message_plugin`).
const SYNC: &[&str] = &[
    "create",
    "edit",
    "destroy",
    "exists",
    "allowed",
    "kick",
    "kick_all",
    "suspend",
    "resume",
    "list",
    "listparticipants",
    "resetdecoder",
    "mute",
    "unmute",
    "mute_room",
    "unmute_room",
    "enable_recording",
    "play_file",
    "is_playing",
    "stop_file",
    "stop_all_files",
    "listannouncements",
    "enable_mjrs",
    "rtp_forward",
    "stop_rtp_forward",
    "listforwarders",
];

/// Requests acknowledged at once and answered with an event.
const ASYNC: &[&str] = &["join", "configure", "changeroom", "leave", "hangup"];

/// State shared by the plugin, its handles and its mixing threads.
pub struct Shared {
    pub services: Arc<dyn CoreServices>,
    pub ids: Ids,
    pub admin_key: Option<String>,
    /// `lock_rtp_forward` (only with an `admin_key`): forwarders need the admin key.
    pub lock_rtp_forward: bool,
    /// `local_ip`: the address plain-RTP participants are told to send to.
    pub local_ip: Option<std::net::IpAddr>,
    /// `rtp_port_range`: where plain-RTP participants' ports come from.
    pub ports: jano_plugin::udp::PortRange,
    rooms: Registry<Room>,
    pub persist: Persist,
    pub pool: mixer::MixerPool,
}

impl Shared {
    pub fn rooms(&self) -> RwLockReadGuard<'_, HashMap<Id, Arc<Room>>> {
        self.rooms.read()
    }

    pub fn rooms_mut(&self) -> RwLockWriteGuard<'_, HashMap<Id, Arc<Room>>> {
        self.rooms.write()
    }

    pub fn room(&self, id: &Id) -> AbResult<Arc<Room>> {
        self.rooms()
            .get(id)
            .cloned()
            .ok_or_else(|| AbError::NoSuchRoom(id.to_string()))
    }

    /// The room a request names (`room` mandatory).
    pub fn room_of(&self, b: &Body) -> AbResult<Arc<Room>> {
        let id = self.ids.req(b, "room")?;
        self.room(&id)
    }

    /// The room a management request names, its `secret` checked.
    pub fn managed_room(&self, b: &Body) -> AbResult<Arc<Room>> {
        let room = self.room_of(b)?;
        let secret = room.state().cfg.secret.clone();
        check_secret(secret.as_deref(), b, "secret")?;
        Ok(room)
    }

    /// The plugin-wide `admin_key` check (`create`).
    pub fn check_admin_key(&self, b: &Body) -> AbResult<()> {
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

    /// Adds a room and gives it to a mixing thread.
    pub fn add_room(&self, room: Arc<Room>) {
        self.rooms_mut().insert(room.id.clone(), room.clone());
        self.pool.add(&room);
    }

    /// A participant's talking state changed: everyone in the room hears of it, the speaker
    /// included.
    pub fn talking(&self, p: &Arc<Participant>, talking: bool) {
        let mut ev = Map::new();
        ev.insert(
            "audiobridge".into(),
            json!(if talking {
                "talking"
            } else {
                "stopped-talking"
            }),
        );
        ev.insert("room".into(), p.room.id_json());
        ev.insert("id".into(), p.id.to_json());
        p.room.notify(&*self.services, None, &ev);
    }

    /// A participant's media is up (its PeerConnection, or a plain-RTP participant's first
    /// packet): it is mixed and gets the mix, and the others hear it is set up.
    pub fn media_up(&self, p: &Arc<Participant>) {
        p.set_setup(true);
        let (muted, spatial) = {
            let st = p.room.state();
            (st.muted, st.cfg.spatial_audio)
        };
        p.sync_params(muted);
        let mut ev = Map::new();
        ev.insert("audiobridge".into(), json!("event"));
        ev.insert("room".into(), p.room.id_json());
        ev.insert("participants".into(), json!([p.update_json(spatial)]));
        p.room.notify(&*self.services, Some(&p.id), &ev);
    }

    /// A participant leaves its room (request, detach, kick, room destroyed). `notify`: the
    /// others hear `leaving`.
    pub fn leave(&self, p: &Arc<Participant>, notify: bool) {
        if p.has_left() {
            return;
        }
        p.mark_left();
        mjrs::stop(self, p);
        {
            let mut st = p.room.state();
            p.room.remove(&mut st, &p.id);
        }
        if notify {
            let mut ev = Map::new();
            ev.insert("audiobridge".into(), json!("event"));
            ev.insert("room".into(), p.room.id_json());
            ev.insert("leaving".into(), p.id.to_json());
            p.room.notify(&*self.services, Some(&p.id), &ev);
        }
    }
}

/// Janus's `secret`/`pin`/`admin_key` check: 483 when missing, 489 when wrong.
pub fn check_secret(want: Option<&str>, b: &Body, field: &'static str) -> AbResult<()> {
    jano_plugin::fields::check_secret(want, b, field).map_err(|e| match e {
        SecretError::Field(f) => f.into(),
        SecretError::Wrong(text) => AbError::Unauthorized(text),
    })
}

pub struct AudioBridge {
    shared: Arc<Shared>,
}

impl AudioBridge {
    pub fn new(config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> AudioBridge {
        let general = config.and_then(|c| c.root.group("general"));
        let strings = general
            .and_then(|g| g.get_bool("string_ids"))
            .unwrap_or(false);
        let admin_key = general
            .and_then(|g| g.get_str("admin_key"))
            .filter(|k| !k.is_empty());
        // jano's own setting: the mixing threads (default: one per core).
        let threads = general
            .and_then(|g| g.get_int("mixing_threads"))
            .and_then(|n| usize::try_from(n).ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let lock_rtp_forward = admin_key.is_some()
            && general
                .and_then(|g| g.get_bool("lock_rtp_forward"))
                .unwrap_or(false);
        let persist = Persist::new(services.configs_folder(), PACKAGE, config.cloned());
        let shared = Arc::new(Shared {
            ids: Ids { strings },
            admin_key,
            lock_rtp_forward,
            local_ip: general
                .and_then(|g| g.get_str("local_ip"))
                .and_then(|ip| ip.parse().ok()),
            ports: jano_plugin::udp::PortRange::parse(
                general.and_then(|g| g.get_str("rtp_port_range")).as_deref(),
            ),
            rooms: Registry::new(),
            persist,
            pool: mixer::MixerPool::new(threads, services.clone()),
            services,
        });
        if let Some(cfg) = config {
            for (name, group) in cfg.categories() {
                let Some(rest) = name.strip_prefix("room-") else {
                    continue;
                };
                let Some(id) = Id::parse_text(rest, strings) else {
                    tracing::warn!("audiobridge: skipping category {name}: not a valid room id");
                    continue;
                };
                match config::RoomConfig::from_group(&id, group) {
                    Ok(mut rc) => {
                        rc.signed_tokens &= shared.services.auth_is_signed();
                        let room = Arc::new(Room::new(id, rc));
                        if let Some(spec) = forward::spec_from_group(group) {
                            if let Err(e) = forward::add(&room, spec) {
                                tracing::warn!("audiobridge: room {}: no forwarder: {e}", room.id);
                            }
                        }
                        shared.add_room(room);
                    }
                    Err(e) => tracing::warn!("audiobridge: skipping room {id}: {e}"),
                }
            }
        }
        AudioBridge { shared }
    }

    /// The [`jano_plugin::PluginFactory`].
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(AudioBridge::new(config, services)))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    fn sync_request(
        &self,
        me: Option<&AbHandle>,
        request: &str,
        body: &Body,
    ) -> Map<String, Value> {
        match manage::handle(&self.shared, me, request, body) {
            Ok(data) => data,
            Err(e) => e.to_data(),
        }
    }
}

fn request_name(body: &Body) -> AbResult<&str> {
    Ok(jano_plugin::fields::req_str(body, "request")?)
}

impl Plugin for AudioBridge {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(AbHandle::new(self.shared.clone(), handle.clone())))
    }

    fn handle_message(
        &self,
        handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(me) = session_as::<AbHandle>(session) else {
            return PluginResult::Error("no AudioBridge state for this handle".into());
        };
        let request = match request_name(&body) {
            Ok(r) => r.to_owned(),
            Err(e) => return PluginResult::Ok(e.to_data()),
        };
        if SYNC.contains(&request.as_str()) {
            return PluginResult::Ok(self.sync_request(Some(me), &request, &body));
        }
        if !ASYNC.contains(&request.as_str()) {
            return PluginResult::Ok(AbError::UnknownRequest(request).to_data());
        }
        let tx = Some(transaction.to_owned());
        match session::handle(&self.shared, me, &request, &body, jsep) {
            Ok(Some((data, answer))) => self.shared.push(handle, tx, data, answer),
            Ok(None) => {}
            Err(e) => self.shared.push(handle, tx, e.to_data(), None),
        }
        PluginResult::OkWait(None)
    }

    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        let Value::Object(body) = request else {
            return Some(Value::Object(AbError::NotAnObject.to_data()));
        };
        let data = match request_name(&body) {
            // jano's own: how late the mixing threads' ticks start.
            Ok("mixer_stats") => {
                let mut m = Map::new();
                m.insert("audiobridge".into(), json!("success"));
                m.insert("threads".into(), self.shared.pool.stats());
                m
            }
            Ok(r) if SYNC.contains(&r) => self.sync_request(None, r, &body),
            Ok(r) => AbError::UnknownRequest(r.to_owned()).to_data(),
            Err(e) => e.to_data(),
        };
        Some(Value::Object(data))
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        let me = session_as::<AbHandle>(session).ok_or(-1)?;
        let p = me.state().participant.take();
        if let Some(p) = p {
            self.shared.leave(&p, true);
        }
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(me) = session_as::<AbHandle>(session) else {
            return json!({});
        };
        let Some(p) = me.participant() else {
            return json!({});
        };
        let st = p.settings().clone();
        let m = p.media();
        json!({
            "room": p.room.id_json(),
            "id": p.id.to_json(),
            "display": st.display,
            "muted": st.muted,
            "suspended": st.suspended,
            "codec": st.codec.name(),
            "volume_gain": st.volume,
            "prebuffering": !m.jitter.playing(),
            "prebuffer_count": st.prebuffer,
            "queue_in": m.jitter.len(),
            "dropped_in": m.jitter.dropped,
            "talking": m.talk.talking(),
        })
    }

    fn shutdown(&self) {
        self.shared.pool.stop();
        let rooms: Vec<Arc<Room>> = self.shared.rooms_mut().drain().map(|(_, r)| r).collect();
        for r in rooms {
            r.mark_destroyed();
        }
    }
}
