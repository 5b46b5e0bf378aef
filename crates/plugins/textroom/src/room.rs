//! A chat room: its settings, who is in it, and the last messages kept for newcomers.

use crate::error::{TrError, TrResult};
use jano_config::{Group, Value as CfgValue};
use jano_plugin::fields::{opt_array, opt_bool, opt_str, opt_u64, Body};
use jano_plugin::ids::Id;
use jano_plugin::{HandleRef, Map, SharedData, Value};
use serde_json::json;
use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

/// What `create` sets and `edit` changes; what a `permanent` room saves.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoomConfig {
    pub description: String,
    pub is_private: bool,
    pub secret: Option<String>,
    pub pin: Option<String>,
    /// How many messages newcomers get (0 = none kept).
    pub history: usize,
    /// `post`: the HTTP backend every message is also POSTed to.
    pub post: Option<String>,
}

/// Janus keeps at most this many messages per room (`history` is read as a 16-bit number
/// from the configuration file); a request asking for more gets this many.
pub const MAX_HISTORY: u64 = 65_535;

impl RoomConfig {
    /// From a `create` request (types already checked by the caller's order of checks).
    pub fn from_request(id: &Id, b: &Body) -> TrResult<RoomConfig> {
        let description = opt_str(b, "description")?
            .filter(|d| !d.is_empty())
            .map_or_else(|| format!("Room {id}"), str::to_owned);
        Ok(RoomConfig {
            description,
            is_private: opt_bool(b, "is_private")?.unwrap_or(false),
            secret: opt_str(b, "secret")?.map(str::to_owned),
            pin: opt_str(b, "pin")?.map(str::to_owned),
            history: history_len(opt_u64(b, "history")?.unwrap_or(0)),
            post: opt_str(b, "post")?.map(str::to_owned),
        })
    }

    /// From a `room-<id>` category of the configuration file.
    pub fn from_group(name: &str, g: &Group) -> RoomConfig {
        let s = |k: &str| g.get_str(k);
        RoomConfig {
            description: s("description")
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| name.to_owned()),
            is_private: g.get_bool("is_private").unwrap_or(false),
            secret: s("secret"),
            pin: s("pin"),
            history: g
                .get_int("history")
                .and_then(|n| u64::try_from(n).ok())
                .map_or(0, history_len),
            post: s("post"),
        }
    }

    pub fn to_group(&self) -> Group {
        let mut g = Group::new();
        g.insert("description", CfgValue::Str(self.description.clone()));
        if self.is_private {
            g.insert("is_private", CfgValue::Bool(true));
        }
        if let Some(v) = &self.secret {
            g.insert("secret", CfgValue::Str(v.clone()));
        }
        if let Some(v) = &self.pin {
            g.insert("pin", CfgValue::Str(v.clone()));
        }
        if self.history > 0 {
            g.insert("history", CfgValue::Int(self.history as i64));
        }
        if let Some(v) = &self.post {
            g.insert("post", CfgValue::Str(v.clone()));
        }
        g
    }

    /// `edit`: the `new_*` fields; empty strings change nothing, as in Janus.
    pub fn edit(&mut self, b: &Body) -> TrResult<()> {
        let set = |field: &mut String, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                *field = v.to_owned();
            }
        };
        let set_opt = |field: &mut Option<String>, v: Option<&str>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                *field = Some(v.to_owned());
            }
        };
        set(&mut self.description, opt_str(b, "new_description")?);
        if let Some(p) = opt_bool(b, "new_is_private")? {
            self.is_private = p;
        }
        set_opt(&mut self.secret, opt_str(b, "new_secret")?);
        set_opt(&mut self.post, opt_str(b, "new_post")?);
        set_opt(&mut self.pin, opt_str(b, "new_pin")?);
        Ok(())
    }
}

fn history_len(n: u64) -> usize {
    usize::try_from(n.min(MAX_HISTORY)).unwrap_or(0)
}

/// Checks that every entry of an `allowed` array is a string, and collects them.
pub fn allowed_list(b: &Body) -> TrResult<Option<Vec<String>>> {
    let Some(list) = opt_array(b, "allowed")? else {
        return Ok(None);
    };
    list.iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| {
            TrError::Invalid("Invalid element in the allowed array (not a string)".into())
        })
}

/// Someone in a room: the handle's data channel is where their messages go.
pub struct Participant {
    pub username: String,
    pub display: Option<String>,
    pub handle: HandleRef,
    /// The handle's state, to take the room off its list when kicked or the room goes.
    pub owner: Weak<crate::handle::TrHandle>,
}

impl Participant {
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("username".into(), json!(self.username));
        if let Some(d) = &self.display {
            m.insert("display".into(), json!(d));
        }
        Value::Object(m)
    }
}

pub struct RoomState {
    pub cfg: RoomConfig,
    pub participants: HashMap<String, Arc<Participant>>,
    /// The last `cfg.history` messages and announcements, as sent.
    pub history: VecDeque<SharedData>,
    /// `allowed` tokens are checked on `join`.
    pub check_tokens: bool,
    pub allowed: BTreeSet<String>,
    pub destroyed: bool,
}

pub struct Room {
    pub id: Id,
    state: Mutex<RoomState>,
}

impl Room {
    pub fn new(id: Id, cfg: RoomConfig, allowed: Option<Vec<String>>) -> Room {
        Room {
            id,
            state: Mutex::new(RoomState {
                cfg,
                participants: HashMap::new(),
                history: VecDeque::new(),
                check_tokens: allowed.is_some(),
                allowed: allowed.unwrap_or_default().into_iter().collect(),
                destroyed: false,
            }),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, RoomState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn id_json(&self) -> Value {
        self.id.to_json()
    }

    /// One entry of `list`.
    pub fn list_entry(&self, st: &RoomState) -> Value {
        json!({
            "room": self.id_json(),
            "description": st.cfg.description,
            "pin_required": st.cfg.pin.is_some(),
            "num_participants": st.participants.len(),
            "history": st.cfg.history,
        })
    }
}

impl RoomState {
    /// Keeps a message for newcomers, dropping the oldest past the room's `history`.
    pub fn remember(&mut self, msg: SharedData) {
        if self.cfg.history == 0 {
            return;
        }
        self.history.push_back(msg);
        while self.history.len() > self.cfg.history {
            self.history.pop_front();
        }
    }
}
