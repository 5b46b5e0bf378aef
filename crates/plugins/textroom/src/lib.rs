//! `janus.plugin.textroom`: chat rooms over data channels, wire-compatible with Janus's
//! TextRoom.
//!
//! A handle asks for `setup`, gets an offer with only a data channel, answers with `ack`; chat
//! requests (`join`, `message`, …) then travel inside the data channel as JSON. The management
//! requests also work over the Janus API and the Admin API.
//!
//! Modules: [`requests`] (every request), [`room`] (room settings, participants, history),
//! [`handle`] (a handle's state and its data-channel callback), [`post`] (the HTTP backend),
//! [`wire`] (JSON layout, dates), [`error`] (codes).
//!
//! Threads: `Plugin` methods run on the signalling path; data-channel requests are handled in
//! [`handle::TrHandle`]'s `incoming_data`, on the handle's media worker. Neither waits on IO:
//! what goes to other handles is queued to their PeerConnections, posts to the backend go to a
//! task.

pub mod error;
pub mod handle;
pub mod post;
pub mod requests;
pub mod room;
pub mod wire;

use error::{TrError, TrResult};
use handle::TrHandle;
use jano_plugin::fields::Body;
use jano_plugin::ids::{Id, Ids};
use jano_plugin::persist::Persist;
use jano_plugin::rooms::Registry;
use jano_plugin::{
    session_arc, CoreServices, HandleRef, Jcfg, Jsep, LocalJsep, Map, MediaPrefs, Plugin,
    PluginInfo, PluginResult, SessionRef, SharedData, Value,
};
use requests::Origin;
use room::{Room, RoomConfig};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use wire::JsonFormat;

pub const PACKAGE: &str = "janus.plugin.textroom";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS TextRoom plugin",
    author: "Meetecho s.r.l.",
    description: "This is a plugin implementing a text-only room for Janus, using DataChannels.",
    version: 2,
    version_string: "0.0.2",
};

/// Requests the Janus API (and the Admin API) may send; `join`, `leave` and `message` only
/// make sense on the data channel.
const MANAGEMENT: &[&str] = &[
    "list",
    "listparticipants",
    "exists",
    "create",
    "edit",
    "announcement",
    "allowed",
    "kick",
    "destroy",
];

pub struct Shared {
    pub services: Arc<dyn CoreServices>,
    pub ids: Ids,
    pub admin_key: Option<String>,
    pub json: JsonFormat,
    pub rooms: Registry<Room>,
    pub persist: Persist,
    pub poster: post::Poster,
}

impl Shared {
    pub fn room(&self, id: &Id) -> TrResult<Arc<Room>> {
        self.rooms
            .get(id)
            .ok_or_else(|| TrError::NoSuchRoom(id.to_string()))
    }

    /// A room not being destroyed.
    pub fn live_room(&self, id: &Id) -> TrResult<Arc<Room>> {
        self.room(id).and_then(|r| {
            if r.state().destroyed {
                Err(TrError::NoSuchRoom(id.to_string()))
            } else {
                Ok(r)
            }
        })
    }

    /// A message or event as it goes out on data channels, serialised once.
    pub fn shared_text(&self, v: &Value) -> SharedData {
        SharedData::text(wire::dump(self.json, v))
    }
}

pub struct TextRoom {
    shared: Arc<Shared>,
}

impl TextRoom {
    pub fn new(config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> TextRoom {
        let general = config.and_then(|c| c.root.group("general"));
        let strings = general
            .and_then(|g| g.get_bool("string_ids"))
            .unwrap_or(false);
        let shared = Arc::new(Shared {
            ids: Ids { strings },
            admin_key: general
                .and_then(|g| g.get_str("admin_key"))
                .filter(|k| !k.is_empty()),
            json: wire::json_format(general.and_then(|g| g.get_str("json")).as_deref()),
            rooms: Registry::new(),
            persist: Persist::new(services.configs_folder(), PACKAGE, config.cloned()),
            poster: post::Poster::start(&*services),
            services,
        });
        for (name, group) in config
            .map(|c| c.categories().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            if name == "general" {
                continue;
            }
            let text = name.strip_prefix("room-").unwrap_or(name);
            let Some(id) = Id::parse_text(text, strings).filter(|id| !id.is_zero()) else {
                tracing::warn!("textroom: skipping category {name}: not a valid room id");
                continue;
            };
            let cfg = RoomConfig::from_group(name, group);
            shared
                .rooms
                .insert_new(id.clone(), Arc::new(Room::new(id, cfg, None)));
        }
        TextRoom { shared }
    }

    /// The [`jano_plugin::PluginFactory`].
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(TextRoom::new(config, services)))
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// `setup`, `ack` and `restart`: answered with an event (and, but for `ack`, an offer of
    /// a data channel).
    fn negotiate(&self, h: &TrHandle, tx: &str, name: &str) {
        let sh = &self.shared;
        let res = match name {
            "setup" => {
                if h.setup.swap(true, Ordering::AcqRel) {
                    Err(TrError::Setup("PeerConnection already setup"))
                } else {
                    Ok(Some(false))
                }
            }
            "restart" => {
                if h.setup.load(Ordering::Acquire) {
                    Ok(Some(true))
                } else {
                    Err(TrError::Setup("PeerConnection not setup"))
                }
            }
            _ => Ok(None),
        };
        let (data, jsep) = match res {
            Ok(offer) => {
                let mut m = Map::new();
                m.insert("textroom".into(), json!("event"));
                m.insert("result".into(), json!("ok"));
                let jsep = offer.map(|restart| LocalJsep::Offer {
                    media: Vec::new(),
                    data: true,
                    prefs: MediaPrefs::default(),
                    restart,
                    fill: None,
                });
                (m, jsep)
            }
            Err(e) => (e.to_data("error"), None),
        };
        let _ = sh
            .services
            .push_event(&h.href, Some(tx.to_owned()), data, jsep);
    }
}

/// The request name of a Janus-API or Admin-API message, or its error.
fn request_of(body: &Body) -> TrResult<String> {
    Ok(jano_plugin::fields::req_str(body, "request")?.to_ascii_lowercase())
}

impl Plugin for TextRoom {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(TrHandle::new(handle.clone(), self.shared.clone()))
    }

    fn handle_message(
        &self,
        _handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        _jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(h) = session_arc::<TrHandle>(session) else {
            return PluginResult::Ok(
                TrError::Unknown("No session associated with this handle...").to_data("event"),
            );
        };
        let name = match request_of(&body) {
            Ok(n) => n,
            Err(e) => return PluginResult::Ok(e.to_data("event")),
        };
        if MANAGEMENT.contains(&name.as_str()) {
            let reply = requests::process(&self.shared, Origin::Api(&h), &name, &body);
            return PluginResult::Ok(match reply {
                Ok(Some(m)) => m,
                Ok(None) => TrError::Unknown("Invalid response").to_data("error"),
                Err(e) => e.to_data("error"),
            });
        }
        match name.as_str() {
            // Answered from here, after the ack.
            "setup" | "ack" | "restart" => {
                self.negotiate(&h, transaction, &name);
                PluginResult::OkWait(None)
            }
            _ => PluginResult::Ok(TrError::UnknownRequest(name).to_data("event")),
        }
    }

    fn handle_admin_message(&self, request: Value) -> Option<Value> {
        let Value::Object(body) = request else {
            return Some(Value::Object(TrError::NotAnObject.to_data("event")));
        };
        let reply = match request_of(&body) {
            Ok(name) if MANAGEMENT.contains(&name.as_str()) => {
                match requests::process(&self.shared, Origin::Admin, &name, &body) {
                    Ok(Some(m)) => m,
                    Ok(None) => TrError::Unknown("Invalid response").to_data("error"),
                    Err(e) => e.to_data("error"),
                }
            }
            Ok(name) => TrError::UnknownRequest(name).to_data("event"),
            Err(e) => e.to_data("event"),
        };
        Some(Value::Object(reply))
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        if let Some(h) = session_arc::<TrHandle>(session) {
            h.leave_all();
        }
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(h) = session_arc::<TrHandle>(session) else {
            return json!({});
        };
        let rooms: Vec<Value> = h
            .rooms()
            .iter()
            .map(|(id, p)| json!({"room": id.to_json(), "username": p.username}))
            .collect();
        json!({
            "setup": h.setup.load(Ordering::Acquire),
            "rooms": rooms,
            "destroyed": 0,
        })
    }
}
