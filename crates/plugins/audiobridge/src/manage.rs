//! The synchronous requests: rooms (`create`, `edit`, `destroy`, `exists`, `list`, `allowed`),
//! moderation (`kick`, `kick_all`, `suspend`, `resume`, `mute`, `unmute`, `mute_room`,
//! `unmute_room`), `listparticipants` and `resetdecoder`.

use crate::config::RoomConfig;
use crate::error::{AbError, AbResult};
use crate::handle::AbHandle;
use crate::participant::Participant;
use crate::room::Room;
use crate::Shared;
use jano_plugin::fields::{opt_array, opt_bool, opt_str, req_str, Body};
use jano_plugin::ids::Id;
use jano_plugin::{Map, Value};
use serde_json::json;
use std::sync::Arc;

pub fn handle(
    shared: &Shared,
    me: Option<&AbHandle>,
    request: &str,
    b: &Body,
) -> AbResult<Map<String, Value>> {
    match request {
        "create" => create(shared, b),
        "edit" => edit(shared, b),
        "destroy" => destroy(shared, b),
        "exists" => {
            let id = shared.ids.req(b, "room")?;
            let exists = shared.rooms().contains_key(&id);
            Ok(obj(
                json!({"audiobridge": "success", "room": id.to_json(), "exists": exists}),
            ))
        }
        "list" => list(shared, b),
        "allowed" => allowed(shared, b),
        "kick" => kick(shared, b),
        "kick_all" => kick_all(shared, b),
        "suspend" | "resume" => suspend(shared, b, request == "suspend"),
        "mute" | "unmute" => mute(shared, b, request == "mute"),
        "mute_room" | "unmute_room" => mute_room(shared, b, request == "mute_room"),
        "listparticipants" => {
            let room = shared.room_of(b)?;
            let spatial = room.state().cfg.spatial_audio;
            let list: Vec<Value> = room.mixing().iter().map(|p| p.to_json(spatial)).collect();
            Ok(obj(
                json!({"audiobridge": "participants", "room": room.id_json(), "participants": list}),
            ))
        }
        "resetdecoder" => {
            let p = me
                .and_then(AbHandle::participant)
                .filter(|p| !p.has_left())
                .ok_or(AbError::NotJoined("Can't reset (not in a room)"))?;
            let mut m = p.media();
            m.decoder.reset();
            m.jitter.reset();
            Ok(obj(json!({"audiobridge": "success"})))
        }
        "enable_recording" => crate::room_media::enable_recording(shared, b),
        "enable_mjrs" => crate::room_media::enable_mjrs(shared, b),
        "play_file" => crate::room_media::play_file(shared, b),
        "is_playing" => crate::room_media::is_playing(shared, b),
        "stop_file" => crate::room_media::stop_file(shared, b),
        "stop_all_files" => crate::room_media::stop_all_files(shared, b),
        "listannouncements" => crate::room_media::list(shared, b),
        "rtp_forward" => crate::forward::rtp_forward(shared, b),
        "stop_rtp_forward" => crate::forward::stop_rtp_forward(shared, b),
        "listforwarders" => crate::forward::listforwarders(shared, b),
        other => Err(AbError::UnknownRequest(other.to_owned())),
    }
}

pub fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn create(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let id = shared.ids.opt(b, "room")?;
    shared.check_admin_key(b)?;
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    if permanent && !shared.persist.available() {
        return Err(AbError::Unknown(
            "No configuration file, can't create permanent room".into(),
        ));
    }
    // 0 (or an empty string) asks for a random id, as no id does.
    let wanted = id.filter(|i| !i.is_zero());
    if let Some(id) = &wanted {
        if shared.rooms().contains_key(id) {
            return Err(AbError::RoomExists(id.to_string()));
        }
    }
    let id = match wanted {
        Some(id) => id,
        None => loop {
            let id = Id::random(shared.ids.strings);
            if !shared.rooms().contains_key(&id) {
                break id;
            }
        },
    };
    let mut cfg = RoomConfig::from_request(&id, b)?;
    cfg.signed_tokens &= shared.services.auth_is_signed();
    if let Some(dir) = &cfg.record_dir {
        // Janus only warns when it cannot create it.
        if let Err(e) = std::fs::create_dir_all(dir) {
            tracing::warn!("audiobridge: cannot create {dir}: {e}");
        }
    }
    {
        let mut rooms = shared.rooms_mut();
        if rooms.contains_key(&id) {
            return Err(AbError::RoomExists(id.to_string()));
        }
        let room = Arc::new(Room::new(id.clone(), cfg.clone()));
        rooms.insert(id.clone(), room.clone());
        drop(rooms);
        shared.pool.add(&room);
    }
    if permanent {
        shared.persist.save(
            &*shared.services,
            &format!("room-{id}"),
            Some(cfg.to_group()),
        );
    }
    Ok(obj(
        json!({"audiobridge": "created", "room": id.to_json(), "permanent": permanent}),
    ))
}

fn edit(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let id = shared.ids.req(b, "room")?;
    if permanent && !shared.persist.available() {
        return Err(AbError::Unknown(
            "No configuration file, can't edit room permanently".into(),
        ));
    }
    let room = shared.managed_room(b)?;
    let group = {
        let mut st = room.state();
        let mut cfg = st.cfg.clone();
        cfg.edit(b)?;
        st.cfg = cfg;
        st.cfg.to_group()
    };
    if permanent {
        shared
            .persist
            .save(&*shared.services, &format!("room-{id}"), Some(group));
    }
    Ok(obj(
        json!({"audiobridge": "edited", "room": id.to_json(), "permanent": permanent}),
    ))
}

fn destroy(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let permanent = opt_bool(b, "permanent")?.unwrap_or(false);
    let id = shared.ids.req(b, "room")?;
    if permanent && !shared.persist.available() {
        return Err(AbError::Unknown(
            "No configuration file, can't destroy room permanently".into(),
        ));
    }
    let room = shared.managed_room(b)?;
    shared.rooms_mut().remove(&id);
    room.mark_destroyed();
    {
        // The recording ends now (the writer completes the file), and so do the files.
        let mut mix = room.mix_state();
        mix.recorder = None;
        mix.announcements.clear();
        mix.forwarders.clear();
    }
    let parts: Vec<Arc<Participant>> = {
        let mut st = room.state();
        let all: Vec<Arc<Participant>> = st.participants.values().cloned().collect();
        for p in &all {
            p.mark_left();
            room.remove(&mut st, &p.id);
        }
        all
    };
    for p in &parts {
        crate::mjrs::stop(shared, p);
    }
    let ev = obj(json!({"audiobridge": "destroyed", "room": id.to_json()}));
    for p in &parts {
        shared.push(&p.href, None, ev.clone(), None);
        shared.services.close_pc(&p.href);
    }
    if permanent {
        shared
            .persist
            .save(&*shared.services, &format!("room-{id}"), None);
    }
    Ok(obj(
        json!({"audiobridge": "destroyed", "room": id.to_json(), "permanent": permanent}),
    ))
}

fn list(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    // Private rooms only for whoever shows the plugin's admin key.
    let admin = match (&shared.admin_key, opt_str(b, "admin_key").ok().flatten()) {
        (Some(_), Some(k)) if !k.is_empty() => {
            shared.check_admin_key(b)?;
            true
        }
        _ => false,
    };
    let rooms: Vec<Arc<Room>> = shared.rooms().values().cloned().collect();
    let mut list = Vec::new();
    for r in rooms {
        let st = r.state();
        if st.cfg.is_private && !admin {
            continue;
        }
        list.push(Value::Object(st.cfg.to_list_entry(
            &r.id,
            st.participants.len(),
            st.muted,
        )));
    }
    Ok(obj(json!({"audiobridge": "success", "list": list})))
}

fn allowed(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let action = req_str(b, "action")?;
    let list = opt_array(b, "allowed")?;
    if !matches!(action, "enable" | "disable" | "add" | "remove") {
        return Err(AbError::Invalid(format!(
            "Unsupported action '{action}' (allowed)"
        )));
    }
    let tokens: Vec<String> = match list {
        Some(l) => l
            .iter()
            .map(|v| {
                v.as_str().map(str::to_owned).ok_or_else(|| {
                    AbError::Invalid("Invalid element in the allowed array (not a string)".into())
                })
            })
            .collect::<AbResult<_>>()?,
        None => Vec::new(),
    };
    let room = shared.managed_room(b)?;
    let mut st = room.state();
    match action {
        "enable" => {
            st.cfg.allowed.get_or_insert_with(Default::default);
        }
        "disable" => st.cfg.allowed = None,
        "add" => {
            if let Some(set) = st.cfg.allowed.as_mut() {
                set.extend(tokens);
            }
        }
        _ => {
            if let Some(set) = st.cfg.allowed.as_mut() {
                for t in &tokens {
                    set.remove(t);
                }
            }
        }
    }
    let mut out = obj(json!({"audiobridge": "success", "room": room.id_json()}));
    if action != "disable" {
        let list: Vec<&String> = st.cfg.allowed.iter().flatten().collect();
        out.insert("allowed".into(), json!(list));
    }
    Ok(out)
}

/// The participant a moderation request names (`id`), in a room whose secret was checked.
fn target(shared: &Shared, b: &Body) -> AbResult<(Arc<Room>, Arc<Participant>)> {
    let rid = shared.ids.req(b, "room")?;
    let uid = shared.ids.req(b, "id")?;
    let room = shared.managed_room(b)?;
    let p = room
        .state()
        .participants
        .get(&uid)
        .cloned()
        .ok_or_else(|| AbError::NoSuchUser(uid.to_string(), rid.to_string()))?;
    Ok((room, p))
}

fn kick(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let (room, p) = target(shared, b)?;
    let ev = obj(json!({"audiobridge": "event", "room": room.id_json(), "kicked": p.id.to_json()}));
    // Everyone, the kicked participant included.
    room.notify(&*shared.services, None, &ev);
    kick_out(shared, &p);
    Ok(obj(json!({"audiobridge": "success"})))
}

/// Closes a kicked participant's PeerConnection; its hang-up takes it out of the room. One
/// without a PeerConnection leaves now (Janus would keep it until it detaches).
fn kick_out(shared: &Shared, p: &Arc<Participant>) {
    if p.is_setup() {
        shared.services.close_pc(&p.href);
    } else {
        shared.leave(p, true);
    }
}

fn kick_all(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let parts: Vec<Arc<Participant>> = room.mixing().to_vec();
    for p in &parts {
        let ev = obj(
            json!({"audiobridge": "event", "room": room.id_json(), "kicked_all": p.id.to_json()}),
        );
        shared.push(&p.href, None, ev, None);
        kick_out(shared, p);
    }
    Ok(obj(json!({"audiobridge": "success"})))
}

fn suspend(shared: &Shared, b: &Body, on: bool) -> AbResult<Map<String, Value>> {
    let (room, p) = target(shared, b)?;
    let pause_events = opt_bool(b, "pause_events")?;
    let changed = {
        let mut st = p.settings();
        let changed = st.suspended != on;
        st.suspended = on;
        changed
    };
    if let Some(pe) = pause_events.filter(|_| on) {
        p.pause_events
            .store(pe, std::sync::atomic::Ordering::Release);
    }
    if !on {
        p.pause_events
            .store(false, std::sync::atomic::Ordering::Release);
    }
    if changed {
        let muted = room.state().muted;
        p.sync_params(muted);
        p.media().jitter.reset();
        let key = if on { "suspended" } else { "resumed" };
        let ev = obj(json!({"audiobridge": "event", "room": room.id_json(), key: p.id.to_json()}));
        room.notify(&*shared.services, Some(&p.id), &ev);
    }
    Ok(obj(json!({"audiobridge": "success"})))
}

fn mute(shared: &Shared, b: &Body, on: bool) -> AbResult<Map<String, Value>> {
    let (room, p) = target(shared, b)?;
    {
        let mut st = p.settings();
        if st.muted == on {
            return Ok(obj(json!({"audiobridge": "success"})));
        }
        st.muted = on;
    }
    let (muted, spatial) = {
        let st = room.state();
        (st.muted, st.cfg.spatial_audio)
    };
    p.sync_params(muted);
    if on {
        p.media().jitter.reset();
    }
    let entry = p.update_json(spatial);
    let ev = obj(json!({"audiobridge": "event", "room": room.id_json(), "participants": [entry]}));
    room.notify(&*shared.services, None, &ev);
    Ok(obj(
        json!({"audiobridge": "success", "room": room.id_json()}),
    ))
}

fn mute_room(shared: &Shared, b: &Body, on: bool) -> AbResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    {
        let mut st = room.state();
        if st.muted == on {
            return Ok(obj(json!({"audiobridge": "success"})));
        }
        st.muted = on;
    }
    for p in room.mixing().iter() {
        p.sync_params(on);
    }
    let ev = obj(json!({"audiobridge": "event", "room": room.id_json(), "muted": on}));
    room.notify(&*shared.services, None, &ev);
    Ok(obj(
        json!({"audiobridge": "success", "room": room.id_json()}),
    ))
}
