//! The synchronous requests: room management, participant lists, moderation, recording
//! switches and RTP forwarders. Also reachable through the Admin API (no handle then).

use crate::config::{token_list, RoomConfig};
use crate::error::{VrError, VrResult};
use crate::handle::VrHandle;
use crate::json::{opt_array, opt_bool, req_bool, req_str, Body, Id};
use crate::publisher::Publisher;
use crate::room::Room;
use crate::{forward, participant, remote, Shared};
use jano_plugin::{Map, Value};
use serde_json::json;
use std::sync::Arc;

pub fn handle(
    shared: &Shared,
    _me: Option<&VrHandle>,
    request: &str,
    b: &Body,
) -> VrResult<Map<String, Value>> {
    match request {
        "create" => create(shared, b),
        "edit" => edit(shared, b),
        "destroy" => destroy(shared, b),
        "list" => list(shared, b),
        "exists" => exists(shared, b),
        "allowed" => allowed(shared, b),
        "kick" => kick(shared, b),
        "moderate" => moderate(shared, b),
        "listparticipants" => list_participants(shared, b),
        "enable_recording" => enable_recording(shared, b),
        "listforwarders" => forward::list(shared, b),
        "rtp_forward" => forward::start(shared, b),
        "stop_rtp_forward" => forward::stop(shared, b),
        "add_remote_publisher" => remote::add(shared, b),
        "update_remote_publisher" => remote::update(shared, b),
        "remove_remote_publisher" => remote::remove(shared, b),
        "publish_remotely" => remote::publish(shared, b),
        "unpublish_remotely" => remote::unpublish(shared, b),
        "listremotes" => remote::list(shared, b),
        other => Err(VrError::Unknown(format!(
            "Request '{other}' is not supported by this server yet"
        ))),
    }
}

fn ok(kind: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("videoroom".into(), json!(kind));
    m
}

fn create(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    shared.check_admin_key(b)?;
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let wanted = shared.ids.opt(b, "room")?;
    // Validate the settings before taking the rooms lock.
    let probe = wanted.clone().unwrap_or(Id::Num(0));
    let mut cfg = RoomConfig::from_request(&probe, b)?;
    // Signed room tokens need the core in signed mode; otherwise the setting is ignored.
    cfg.signed_tokens &= shared.services.auth_is_signed();
    if permanent && !shared.persist.available() {
        return Err(VrError::Unknown(
            "No configuration file, can't create permanent room".into(),
        ));
    }
    let mut rooms = shared.rooms_mut();
    let id = match wanted.filter(|w| !w.is_zero()) {
        Some(id) => {
            if rooms.contains_key(&id) {
                return Err(VrError::RoomExists(id.to_string()));
            }
            id
        }
        None => loop {
            let id = Id::random(shared.ids.strings);
            if !rooms.contains_key(&id) {
                break id;
            }
        },
    };
    if crate::json::opt_str(b, "description")?.is_none_or(str::is_empty) {
        cfg.description = format!("Room {id}");
    }
    if permanent {
        shared
            .persist
            .save(&*shared.services, &room_category(&id), Some(cfg.to_group()));
    }
    let room = Arc::new(Room::new(id.clone(), cfg));
    crate::dummy::create(shared, &room)?;
    rooms.insert(id.clone(), room);
    drop(rooms);
    let mut m = ok("created");
    m.insert("room".into(), id.to_json());
    m.insert("permanent".into(), json!(permanent));
    Ok(m)
}

fn edit(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.room_of(b)?;
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let mut rs = room.state();
    Shared::check_secret(rs.cfg.secret.as_deref(), b)?;
    let mut next = rs.cfg.clone();
    next.edit(b)?;
    if permanent {
        if !shared.persist.available() {
            return Err(VrError::Unknown(
                "No configuration file, can't edit room permanently".into(),
            ));
        }
        shared.persist.save(
            &*shared.services,
            &room_category(&room.id),
            Some(next.to_group()),
        );
    }
    rs.cfg = next;
    drop(rs);
    let mut m = ok("edited");
    m.insert("room".into(), room.id_json());
    m.insert("permanent".into(), json!(permanent));
    Ok(m)
}

/// Destroys a room: everyone in it (participants and subscriptions) hears `destroyed` and
/// their PeerConnections close.
fn destroy(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.room_of(b)?;
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    Shared::check_secret(room.state().cfg.secret.as_deref(), b)?;
    if permanent && !shared.persist.available() {
        return Err(VrError::Unknown(
            "No configuration file, can't destroy room permanently".into(),
        ));
    }
    if shared.rooms_mut().remove(&room.id).is_none() {
        return Err(VrError::NoSuchRoom(room.id.to_string()));
    }
    room.mark_destroyed();
    if permanent {
        shared
            .persist
            .save(&*shared.services, &room_category(&room.id), None);
    }
    let mut ev = ok("destroyed");
    ev.insert("room".into(), room.id_json());
    let (pubs, subs) = {
        let rs = room.state();
        let pubs: Vec<Arc<Publisher>> = rs.participants.values().cloned().collect();
        (pubs, rs.subscribers.values().cloned().collect::<Vec<_>>())
    };
    for p in pubs.iter().filter(|p| p.has_handle()) {
        shared.push(&p.href, None, ev.clone(), None);
    }
    // Janus leaves subscriptions uninformed; they are told here too.
    for s in &subs {
        shared.push(&s.href, None, ev.clone(), None);
    }
    for p in &pubs {
        shared.leave(p, false);
    }
    for s in &subs {
        shared.drop_subscriber(s);
        shared.services.close_pc(&s.href);
    }
    let mut m = ok("destroyed");
    m.insert("room".into(), room.id_json());
    m.insert("permanent".into(), json!(permanent));
    Ok(m)
}

fn list(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    // A valid admin_key also shows private rooms.
    let admin = match (&shared.admin_key, crate::json::opt_str(b, "admin_key")?) {
        (Some(want), Some(got)) => crate::json::same_secret(got, want),
        _ => false,
    };
    let rooms: Vec<Arc<Room>> = shared.rooms().values().cloned().collect();
    let mut list: Vec<(Id, Value)> = rooms
        .iter()
        .filter_map(|r| {
            let rs = r.state();
            if rs.cfg.is_private && !admin {
                return None;
            }
            Some((
                r.id.clone(),
                Value::Object(rs.cfg.to_list_entry(&r.id, rs.participants.len())),
            ))
        })
        .collect();
    list.sort_by(|a, b| a.0.cmp(&b.0));
    let mut m = ok("success");
    m.insert(
        "list".into(),
        Value::Array(list.into_iter().map(|(_, v)| v).collect()),
    );
    Ok(m)
}

fn exists(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let id = shared.ids.req(b, "room")?;
    let exists = shared.rooms().contains_key(&id);
    let mut m = ok("success");
    m.insert("room".into(), id.to_json());
    m.insert("exists".into(), json!(exists));
    Ok(m)
}

fn allowed(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let action = req_str(b, "action")?;
    let tokens = opt_array(b, "allowed")?;
    if !matches!(action, "enable" | "disable" | "add" | "remove") {
        return Err(VrError::Invalid(
            "Unsupported action '".to_owned() + action + "' (allowed)",
        ));
    }
    let room = shared.room_of(b)?;
    let mut rs = room.state();
    Shared::check_secret(rs.cfg.secret.as_deref(), b)?;
    match action {
        "enable" => {
            let set = rs.cfg.allowed.get_or_insert_with(Default::default);
            if let Some(t) = tokens {
                set.extend(token_list(t)?);
            }
        }
        "disable" => rs.cfg.allowed = None,
        _ => {
            let Some(t) = tokens.filter(|t| !t.is_empty()) else {
                return Err(VrError::Missing("allowed"));
            };
            let list = token_list(t)?;
            let set = rs.cfg.allowed.get_or_insert_with(Default::default);
            if action == "add" {
                set.extend(list);
            } else {
                for x in &list {
                    set.remove(x);
                }
            }
        }
    }
    let mut m = ok("success");
    m.insert("room".into(), room.id_json());
    if let Some(set) = &rs.cfg.allowed {
        m.insert("allowed".into(), json!(set.iter().collect::<Vec<_>>()));
    }
    Ok(m)
}

fn kick(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let id = shared.ids.req(b, "id")?;
    let target = room
        .state()
        .participants
        .get(&id)
        .cloned()
        .ok_or_else(|| VrError::NoSuchFeed(format!("No such user {id} in room {}", room.id)))?;
    if target.is_dummy() {
        return Err(VrError::NoSuchFeed("Can't kick dummy users".into()));
    }
    participant::kick(shared, &target);
    Ok(ok("success"))
}

fn moderate(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let id = shared.ids.req(b, "id")?;
    let mid = req_str(b, "mid")?.to_owned();
    let mute = req_bool(b, "mute")?;
    let target = room
        .state()
        .participants
        .get(&id)
        .cloned()
        .ok_or_else(|| VrError::NoSuchFeed(format!("No such user {id} in room {}", room.id)))?;
    {
        let mut st = target.state();
        let s = st
            .streams
            .iter_mut()
            .find(|s| s.mid == mid)
            .ok_or_else(|| VrError::NoSuchFeed(format!("No such mid {mid} in room {}", room.id)))?;
        s.moderated = mute;
    }
    target.set_muted(&mid, mute);
    let mut ev = ok("event");
    ev.insert("room".into(), room.id_json());
    ev.insert("id".into(), id.to_json());
    ev.insert("mid".into(), json!(mid));
    ev.insert(
        "moderation".into(),
        json!(if mute { "muted" } else { "unmuted" }),
    );
    room.notify(&*shared.services, None, &ev);
    Ok(ok("success"))
}

fn list_participants(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.room_of(b)?;
    let rs = room.state();
    let talking_events = rs.cfg.audiolevel_event;
    let list: Vec<Value> = rs
        .participants
        .values()
        .map(|p| {
            let st = p.state();
            let mut m = Map::new();
            m.insert("id".into(), p.id.to_json());
            if let Some(d) = &st.display {
                m.insert("display".into(), json!(d));
            }
            if let Some(md) = &st.metadata {
                m.insert("metadata".into(), md.clone());
            }
            if p.is_dummy() {
                m.insert("dummy".into(), json!(true));
            }
            if p.is_remote() {
                m.insert("remote".into(), json!(true));
            }
            m.insert("publisher".into(), json!(p.is_publishing()));
            if talking_events && p.is_publishing() {
                m.insert("talking".into(), json!(st.talking));
            }
            Value::Object(m)
        })
        .collect();
    let mut m = ok("participants");
    m.insert("room".into(), room.id_json());
    m.insert("participants".into(), Value::Array(list));
    Ok(m)
}

fn enable_recording(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let record = req_bool(b, "record")?;
    let room = shared.managed_room(b)?;
    let pubs: Vec<Arc<Publisher>> = {
        let mut rs = room.state();
        rs.cfg.record = record;
        rs.participants.values().cloned().collect()
    };
    for p in pubs.iter().filter(|p| p.is_publishing() && !p.is_dummy()) {
        if record {
            participant::start_recording(shared, p);
        } else {
            participant::stop_recording(shared, p);
        }
    }
    let mut m = ok("success");
    m.insert("record".into(), json!(record));
    Ok(m)
}

/// The configuration category a permanent room is saved as.
fn room_category(id: &crate::json::Id) -> String {
    format!("room-{id}")
}
