//! Every TextRoom request, from the data channel or the Janus API (the management ones), with
//! Janus's order of checks and its replies.
//!
//! A message is serialised once and the same buffer goes to every recipient
//! ([`SharedData`]): a room of thousands costs one copy of the text, not one per participant.

use crate::error::{TrError, TrResult};
use crate::handle::TrHandle;
use crate::room::{allowed_list, Participant, Room, RoomConfig};
use crate::wire::local_date;
use crate::Shared;
use jano_plugin::fields::{check_secret, opt_array, opt_bool, opt_str, req_str, Body};
use jano_plugin::ids::Id;
use jano_plugin::{Map, SharedData, Value};
use serde_json::json;
use std::sync::Arc;

/// Who sent a request.
#[derive(Clone, Copy)]
pub enum Origin<'a> {
    /// Over the handle's data channel: the reply goes back there, with the transaction.
    Data(&'a TrHandle),
    /// A `message` on the Janus API: the reply is the synchronous answer.
    Api(&'a TrHandle),
    /// The Admin API's `message_plugin`.
    Admin,
}

impl<'a> Origin<'a> {
    fn handle(self) -> Option<&'a TrHandle> {
        match self {
            Origin::Data(h) | Origin::Api(h) => Some(h),
            Origin::Admin => None,
        }
    }

    fn is_data(self) -> bool {
        matches!(self, Origin::Data(_))
    }

    /// The reply's `textroom` for a management request: the Janus API reads `created`,
    /// `edited`, `destroyed`; the data channel `success`.
    fn verb(self, api: &'static str) -> &'static str {
        if self.is_data() {
            "success"
        } else {
            api
        }
    }
}

/// A request that came over the data channel: answered there (unless it asked for no `ack`).
pub fn from_data_channel(sh: &Shared, h: &TrHandle, buf: &[u8]) {
    // Janus ignores what does not parse as JSON; an array fails the field checks.
    let root = match serde_json::from_slice::<Value>(buf) {
        Ok(Value::Object(o)) => o,
        Ok(Value::Array(_)) => Map::new(),
        _ => return,
    };
    // The reply names the transaction only once the envelope was read (as Janus).
    let (reply, transaction) = match request_name(&root) {
        Ok((name, tx)) => (process(sh, Origin::Data(h), name, &root), Some(tx)),
        Err(e) => (Err(e), None),
    };
    let mut reply = match reply {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => e.to_data("error"),
    };
    if let Some(tx) = transaction {
        reply.insert("transaction".into(), json!(tx));
    }
    send(sh, h, &sh.shared_text(&Value::Object(reply)));
}

/// The data-channel envelope: `textroom` and `transaction`, both strings and mandatory.
fn request_name(root: &Body) -> TrResult<(&str, &str)> {
    let name = req_str(root, "textroom")?;
    let tx = req_str(root, "transaction")?;
    Ok((name, tx))
}

/// Runs one request; `Ok(None)` means no reply (`message` with `ack: false`).
pub fn process(
    sh: &Shared,
    from: Origin<'_>,
    name: &str,
    b: &Body,
) -> TrResult<Option<Map<String, Value>>> {
    let reply = match name.to_ascii_lowercase().as_str() {
        "message" => return message(sh, from, b),
        "join" => join(sh, from, b)?,
        "leave" => {
            let id = sh.ids.req(b, "room")?;
            sh.room(&id)?;
            let h = from
                .handle()
                .ok_or_else(|| TrError::NotInRoom(id.to_string()))?;
            if !leave_room(sh, h, &id, true) {
                return Err(TrError::NotInRoom(id.to_string()));
            }
            success()
        }
        "list" => list(sh, b)?,
        "listparticipants" => {
            let id = sh.ids.req(b, "room")?;
            let room = sh.live_room(&id)?;
            let st = room.state();
            let list: Vec<Value> = st.participants.values().map(|p| p.to_json()).collect();
            // Janus 1.1.2 answers this one without `"textroom": "success"`.
            let mut m = Map::new();
            m.insert("room".into(), room.id_json());
            m.insert("participants".into(), Value::Array(list));
            m
        }
        "allowed" => allowed(sh, b)?,
        "kick" => kick(sh, b)?,
        "announcement" => announcement(sh, b)?,
        "create" => create(sh, from, b)?,
        "exists" => {
            let id = sh.ids.req(b, "room")?;
            let exists = sh.rooms.contains(&id);
            let mut m = success();
            m.insert("room".into(), id.to_json());
            m.insert("exists".into(), json!(exists));
            m
        }
        "edit" => edit(sh, from, b)?,
        "destroy" => destroy(sh, from, b)?,
        _ => return Err(TrError::Unsupported(name.to_owned())),
    };
    Ok(Some(reply))
}

fn success() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("textroom".into(), json!("success"));
    m
}

fn send(sh: &Shared, h: &TrHandle, data: &SharedData) {
    sh.services.relay_shared_data(&h.href, data);
}

/// `message`: to everyone in the room (the sender included), or to `to`/`tos` as a whisper.
fn message(sh: &Shared, from: Origin<'_>, b: &Body) -> TrResult<Option<Map<String, Value>>> {
    let text = req_str(b, "text")?;
    let to = opt_str(b, "to")?;
    let tos = opt_array(b, "tos")?;
    let ack = opt_bool(b, "ack")?.unwrap_or(true);
    let id = sh.ids.req(b, "room")?;
    let room = sh.room(&id)?;
    let h = from
        .handle()
        .ok_or_else(|| TrError::NotInRoom(id.to_string()))?;
    let mut st = room.state();
    let Some(me) = h.rooms().get(&id).cloned() else {
        return Err(TrError::NotInRoom(id.to_string()));
    };
    if to.is_some() && tos.is_some() {
        return Err(TrError::Invalid("Both to and tos array provided".into()));
    }
    let mut msg = Map::new();
    msg.insert("textroom".into(), json!("message"));
    msg.insert("room".into(), room.id_json());
    msg.insert("from".into(), json!(me.username));
    msg.insert("date".into(), json!(local_date()));
    msg.insert("text".into(), json!(text));
    let whisper = to.is_some() || tos.is_some();
    if whisper {
        msg.insert("whisper".into(), json!(true));
    }
    let out = sh.shared_text(&Value::Object(msg.clone()));
    let mut reply = success();
    if whisper {
        let names: Vec<&str> = match (to, tos) {
            (Some(t), _) => vec![t],
            (None, Some(list)) => list.iter().filter_map(Value::as_str).collect(),
            (None, None) => Vec::new(),
        };
        let mut sent = Map::new();
        for name in names {
            let found = st.participants.get(name);
            if let Some(p) = found {
                sh.services.relay_shared_data(&p.handle, &out);
            }
            sent.insert(name.to_owned(), json!(found.is_some()));
        }
        reply.insert("sent".into(), Value::Object(sent));
    } else {
        for p in st.participants.values() {
            sh.services.relay_shared_data(&p.handle, &out);
        }
        if st.cfg.history > 0 {
            // What newcomers get also says who wrote it, by display name.
            if let Some(d) = &me.display {
                msg.insert("display".into(), json!(d));
            }
            let kept = sh.shared_text(&Value::Object(msg));
            st.remember(kept);
        }
        if let Some(url) = &st.cfg.post {
            sh.poster.post(url, out.data.clone());
        }
    }
    drop(st);
    Ok(ack.then_some(reply))
}

fn join(sh: &Shared, from: Origin<'_>, b: &Body) -> TrResult<Map<String, Value>> {
    let username = req_str(b, "username")?;
    opt_str(b, "pin")?;
    let token = opt_str(b, "token")?;
    let display = opt_str(b, "display")?;
    let history = opt_bool(b, "history")?.unwrap_or(true);
    let id = sh.ids.req(b, "room")?;
    let room = sh.room(&id)?;
    let h = from.handle().ok_or(TrError::Unknown("No handle"))?;
    let mut st = room.state();
    check_secret(st.cfg.pin.as_deref(), b, "pin")?;
    let mut mine = h.rooms();
    if mine.contains_key(&id) {
        return Err(TrError::AlreadyInRoom(id.to_string()));
    }
    if st.participants.contains_key(username) {
        return Err(TrError::UsernameTaken);
    }
    if st.check_tokens && !token.is_some_and(|t| st.allowed.contains(t)) {
        return Err(TrError::Unauthorized(
            "Unauthorized (not in the allowed list)",
        ));
    }
    let p = Arc::new(Participant {
        username: username.to_owned(),
        display: display.map(str::to_owned),
        handle: h.href.clone(),
        owner: h.me.clone(),
    });
    mine.insert(id.clone(), p.clone());
    drop(mine);
    let others: Vec<Value> = st.participants.values().map(|o| o.to_json()).collect();
    st.participants.insert(p.username.clone(), p.clone());
    if history {
        for m in &st.history {
            send(sh, h, m);
        }
    }
    let mut ev = Map::new();
    ev.insert("textroom".into(), json!("join"));
    ev.insert("room".into(), room.id_json());
    ev.insert("username".into(), json!(username));
    if let Some(d) = display {
        ev.insert("display".into(), json!(d));
    }
    // Everyone hears of it, the newcomer first.
    let out = sh.shared_text(&Value::Object(ev));
    send(sh, h, &out);
    for o in st.participants.values() {
        if !Arc::ptr_eq(o, &p) {
            sh.services.relay_shared_data(&o.handle, &out);
        }
    }
    drop(st);
    let mut reply = success();
    reply.insert("participants".into(), Value::Array(others));
    Ok(reply)
}

/// Takes a handle out of a room; the others (and, when it asked, the handle itself) hear
/// `leave`. False when the handle was not in it.
pub fn leave_room(sh: &Shared, h: &TrHandle, id: &Id, tell_self: bool) -> bool {
    let Some(room) = sh.rooms.get(id) else {
        h.rooms().remove(id);
        return false;
    };
    let mut st = room.state();
    let Some(p) = h.rooms().remove(id) else {
        return false;
    };
    st.participants.remove(&p.username);
    let ev = json!({"textroom": "leave", "room": room.id_json(), "username": p.username});
    let out = sh.shared_text(&ev);
    if tell_self {
        send(sh, h, &out);
    }
    for o in st.participants.values() {
        sh.services.relay_shared_data(&o.handle, &out);
    }
    true
}

fn list(sh: &Shared, b: &Body) -> TrResult<Map<String, Value>> {
    // Private rooms are listed only for a valid `admin_key`; a wrong one is an error, a
    // missing or empty one just hides them.
    let mut show_private = false;
    if let Some(key) = &sh.admin_key {
        if b.get("admin_key")
            .and_then(Value::as_str)
            .is_some_and(|k| !k.is_empty())
        {
            check_secret(Some(key), b, "admin_key")?;
            show_private = true;
        }
    }
    let list: Vec<Value> = sh
        .rooms
        .all()
        .iter()
        .filter_map(|r| {
            let st = r.state();
            (show_private || !st.cfg.is_private).then(|| r.list_entry(&st))
        })
        .collect();
    let mut m = success();
    m.insert("list".into(), Value::Array(list));
    Ok(m)
}

fn allowed(sh: &Shared, b: &Body) -> TrResult<Map<String, Value>> {
    opt_str(b, "secret")?;
    let action = req_str(b, "action")?;
    opt_array(b, "allowed")?;
    let id = sh.ids.req(b, "room")?;
    let action = action.to_ascii_lowercase();
    if !matches!(action.as_str(), "enable" | "disable" | "add" | "remove") {
        return Err(TrError::Invalid(format!(
            "Unsupported action '{action}' (allowed)"
        )));
    }
    let room = sh.room(&id)?;
    let mut st = room.state();
    check_secret(st.cfg.secret.as_deref(), b, "secret")?;
    match action.as_str() {
        "enable" => st.check_tokens = true,
        "disable" => st.check_tokens = false,
        add_or_remove => {
            let list = allowed_list(b)?.unwrap_or_default();
            for t in list {
                if add_or_remove == "add" {
                    st.allowed.insert(t);
                } else {
                    st.allowed.remove(&t);
                }
            }
        }
    }
    let mut m = success();
    m.insert("room".into(), room.id_json());
    if action != "disable" {
        m.insert(
            "allowed".into(),
            json!(st.allowed.iter().collect::<Vec<_>>()),
        );
    }
    Ok(m)
}

fn kick(sh: &Shared, b: &Body) -> TrResult<Map<String, Value>> {
    opt_str(b, "secret")?;
    let username = req_str(b, "username")?;
    let id = sh.ids.req(b, "room")?;
    let room = sh.room(&id)?;
    let mut st = room.state();
    check_secret(st.cfg.secret.as_deref(), b, "secret")?;
    let Some(p) = st.participants.get(username).cloned() else {
        return Err(TrError::NoSuchUser(username.to_owned(), id.to_string()));
    };
    // Everyone hears of it, the one kicked included.
    let ev = json!({"textroom": "kicked", "room": room.id_json(), "username": username});
    let out = sh.shared_text(&ev);
    for o in st.participants.values() {
        sh.services.relay_shared_data(&o.handle, &out);
    }
    st.participants.remove(username);
    if let Some(owner) = p.owner.upgrade() {
        owner.rooms().remove(&id);
    }
    // Janus 1.1.2 answers `{"textbridge": "success"}` here, a typo no client can rely on.
    Ok(success())
}

fn announcement(sh: &Shared, b: &Body) -> TrResult<Map<String, Value>> {
    opt_str(b, "secret")?;
    let text = req_str(b, "text")?;
    let id = sh.ids.req(b, "room")?;
    let room = sh.room(&id)?;
    let mut st = room.state();
    check_secret(st.cfg.secret.as_deref(), b, "secret")?;
    let ev = json!({
        "textroom": "announcement",
        "room": room.id_json(),
        "date": local_date(),
        "text": text,
    });
    let out = sh.shared_text(&ev);
    for o in st.participants.values() {
        sh.services.relay_shared_data(&o.handle, &out);
    }
    if let Some(url) = &st.cfg.post {
        sh.poster.post(url, out.data.clone());
    }
    st.remember(out);
    Ok(success())
}

fn create(sh: &Shared, from: Origin<'_>, b: &Body) -> TrResult<Map<String, Value>> {
    for name in ["description", "secret", "pin", "post"] {
        opt_str(b, name)?;
    }
    opt_bool(b, "is_private")?;
    jano_plugin::fields::opt_u64(b, "history")?;
    opt_array(b, "allowed")?;
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let wanted = sh.ids.opt(b, "room")?.filter(|id| !id.is_zero());
    if let Some(key) = &sh.admin_key {
        req_str(b, "admin_key")?;
        check_secret(Some(key), b, "admin_key")?;
    }
    let allowed = allowed_list(b)?;
    if permanent && !sh.persist.available() {
        return Err(TrError::Unknown(
            "No configuration file, can't create permanent room",
        ));
    }
    if let Some(id) = &wanted {
        if sh.rooms.contains(id) {
            return Err(TrError::RoomExists(id.to_string()));
        }
    }
    let id = wanted.unwrap_or_else(|| sh.rooms.free_id(sh.ids.strings));
    let cfg = RoomConfig::from_request(&id, b)?;
    let group = cfg.to_group();
    let room = Arc::new(Room::new(id.clone(), cfg, allowed));
    if !sh.rooms.insert_new(id.clone(), room) {
        return Err(TrError::RoomExists(id.to_string()));
    }
    if permanent {
        sh.persist
            .save(&*sh.services, &format!("room-{id}"), Some(group));
    }
    let mut m = Map::new();
    m.insert("textroom".into(), json!(from.verb("created")));
    m.insert("room".into(), id.to_json());
    m.insert("permanent".into(), json!(permanent));
    Ok(m)
}

fn edit(sh: &Shared, from: Origin<'_>, b: &Body) -> TrResult<Map<String, Value>> {
    for name in [
        "secret",
        "new_description",
        "new_secret",
        "new_pin",
        "new_post",
    ] {
        opt_str(b, name)?;
    }
    opt_bool(b, "new_is_private")?;
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let id = sh.ids.req(b, "room")?;
    if permanent && !sh.persist.available() {
        return Err(TrError::Unknown(
            "No configuration file, can't edit room permanently",
        ));
    }
    let room = sh.room(&id)?;
    let mut st = room.state();
    check_secret(st.cfg.secret.as_deref(), b, "secret")?;
    st.cfg.edit(b)?;
    if permanent {
        sh.persist.save(
            &*sh.services,
            &format!("room-{id}"),
            Some(st.cfg.to_group()),
        );
    }
    let mut m = Map::new();
    m.insert("textroom".into(), json!(from.verb("edited")));
    m.insert("room".into(), id.to_json());
    m.insert("permanent".into(), json!(permanent));
    Ok(m)
}

fn destroy(sh: &Shared, from: Origin<'_>, b: &Body) -> TrResult<Map<String, Value>> {
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let id = sh.ids.req(b, "room")?;
    if permanent && !sh.persist.available() {
        return Err(TrError::Unknown(
            "No configuration file, can't destroy room permanently",
        ));
    }
    let room = sh.room(&id)?;
    {
        let st = room.state();
        check_secret(st.cfg.secret.as_deref(), b, "secret")?;
    }
    if sh.rooms.remove(&id).is_none() {
        return Err(TrError::NoSuchRoom(id.to_string()));
    }
    if permanent {
        sh.persist.save(&*sh.services, &format!("room-{id}"), None);
    }
    let mut st = room.state();
    st.destroyed = true;
    let out = sh.shared_text(&json!({"textroom": "destroyed", "room": room.id_json()}));
    // The one destroying it hears of it too (once, even when it is in the room).
    if let Some(h) = from.handle() {
        if !st.participants.values().any(|p| p.handle == h.href) {
            send(sh, h, &out);
        }
    }
    for p in std::mem::take(&mut st.participants).into_values() {
        sh.services.relay_shared_data(&p.handle, &out);
        if let Some(owner) = p.owner.upgrade() {
            owner.rooms().remove(&id);
        }
    }
    st.history.clear();
    let mut m = Map::new();
    m.insert("textroom".into(), json!(from.verb("destroyed")));
    m.insert("room".into(), id.to_json());
    m.insert("permanent".into(), json!(permanent));
    Ok(m)
}
