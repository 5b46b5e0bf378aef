//! Requests about what a room plays and records: `play_file`, `is_playing`, `stop_file`,
//! `stop_all_files`, `listannouncements` (announcements mixed in for everyone) and
//! `enable_recording` (the mix to a WAV file).

use crate::announce::Announcement;
use crate::error::{AbError, AbResult};
use crate::manage::obj;
use crate::Shared;
use jano_plugin::audio_file::{FileFormat, Track};
use jano_plugin::fields::{opt_bool, opt_str, req_str, Body};
use jano_plugin::{Map, Value};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub fn play_file(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let filename = req_str(b, "filename")?;
    let file_id = opt_str(b, "file_id")?;
    let group = opt_str(b, "group")?;
    let looping = opt_bool(b, "loop")?.unwrap_or(false);
    let room = shared.managed_room(b)?;
    let (rate, groups) = {
        let st = room.state();
        (st.cfg.sampling_rate, st.cfg.groups.clone())
    };
    let group = match (groups.is_empty(), group) {
        (true, _) => None,
        (false, None) => return Err(AbError::Missing("group")),
        (false, Some(g)) if groups.iter().any(|x| x == g) => Some(g.to_owned()),
        (false, Some(g)) => return Err(AbError::NoSuchGroup(format!("No such group ({g})"))),
    };
    let file_id = match file_id {
        Some(id) => id.to_owned(),
        None => format!("{:032x}", rand::random::<u128>()),
    };
    if room
        .mix_state()
        .announcements
        .iter()
        .any(|a| a.file_id == file_id)
    {
        return Err(AbError::FileIdExists(file_id.clone()));
    }
    // Janus plays Opus files only. The file is read now, once (a short read on the signalling
    // path, as Janus opens it there); playback never touches the disk.
    let track = Track::load(filename, FileFormat::Opus).map_err(|e| {
        tracing::warn!("audiobridge: play_file {filename}: {e}");
        AbError::Unknown("Error opening file".into())
    })?;
    let a = Announcement::new(
        file_id.clone(),
        filename.to_owned(),
        Arc::new(track),
        rate,
        looping,
        group,
    )
    .map_err(|e| AbError::Libopus(e.0))?;
    {
        let mut mix = room.mix_state();
        if mix.announcements.iter().any(|x| x.file_id == file_id) {
            return Err(AbError::FileIdExists(file_id.clone()));
        }
        mix.announcements.push(a);
        room.announcing
            .store(mix.announcements.len(), Ordering::Release);
    }
    // A room with nobody in it is mixed again.
    shared.pool.wake();
    Ok(obj(
        json!({"audiobridge": "success", "room": room.id_json(), "file_id": file_id}),
    ))
}

pub fn is_playing(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let file_id = req_str(b, "file_id")?;
    let room = shared.managed_room(b)?;
    let playing = room
        .mix_state()
        .announcements
        .iter()
        .any(|a| a.file_id == file_id && a.started);
    Ok(obj(json!({
        "audiobridge": "success", "room": room.id_json(), "file_id": file_id, "playing": playing
    })))
}

/// Stops the files `which` selects; those that had started are announced as stopped.
fn stop(shared: &Shared, room: &crate::room::Room, which: impl Fn(&str) -> bool) -> Vec<String> {
    let mut stopped = Vec::new();
    let mut announce = Vec::new();
    {
        let mut mix = room.mix_state();
        mix.announcements.retain(|a| {
            if !which(&a.file_id) {
                return true;
            }
            stopped.push(a.file_id.clone());
            if a.started {
                announce.push(a.file_id.clone());
            }
            false
        });
        room.announcing
            .store(mix.announcements.len(), Ordering::Release);
    }
    for id in announce {
        let ev = obj(
            json!({"audiobridge": "announcement-stopped", "room": room.id_json(), "file_id": id}),
        );
        room.notify(&*shared.services, None, &ev);
    }
    stopped
}

pub fn stop_file(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let file_id = req_str(b, "file_id")?.to_owned();
    let room = shared.managed_room(b)?;
    stop(shared, &room, |id| id == file_id);
    Ok(obj(
        json!({"audiobridge": "success", "room": room.id_json(), "file_id": file_id}),
    ))
}

pub fn stop_all_files(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let room = shared.managed_room(b)?;
    let ids = stop(shared, &room, |_| true);
    Ok(obj(
        json!({"audiobridge": "success", "room": room.id_json(), "file_id_list": ids}),
    ))
}

pub fn list(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let room = shared.managed_room(b)?;
    let list: Vec<Value> = room
        .mix_state()
        .announcements
        .iter()
        .map(|a| {
            json!({"file_id": a.file_id, "filename": a.filename, "playing": a.started, "loop": a.looping})
        })
        .collect();
    Ok(obj(json!({
        "audiobridge": "announcements", "room": room.id_json(), "announcements": list
    })))
}

pub fn enable_mjrs(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let mjrs = match opt_bool(b, "mjrs")? {
        Some(r) => r,
        None => return Err(AbError::Missing("mjrs")),
    };
    let dir = opt_str(b, "mjrs_dir")?;
    let room = shared.managed_room(b)?;
    let changed = {
        let mut st = room.state();
        if mjrs {
            if let Some(d) = dir {
                st.cfg.mjrs_dir = Some(d.to_owned());
            }
        }
        let changed = st.cfg.mjrs != mjrs;
        st.cfg.mjrs = mjrs;
        changed
    };
    if changed {
        for p in room.mixing().iter() {
            if mjrs {
                crate::mjrs::start(shared, p);
            } else {
                crate::mjrs::stop(shared, p);
            }
        }
    }
    Ok(obj(json!({"audiobridge": "success", "mjrs": mjrs})))
}

pub fn enable_recording(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let record = match opt_bool(b, "record")? {
        Some(r) => r,
        None => return Err(AbError::Missing("record")),
    };
    let file = opt_str(b, "record_file")?;
    let dir = opt_str(b, "record_dir")?;
    let room = shared.managed_room(b)?;
    if record {
        if let Some(d) = dir {
            std::fs::create_dir_all(d).map_err(|e| {
                AbError::Unknown(format!(
                    "mkdir error: {} ({e})",
                    e.raw_os_error().unwrap_or(0)
                ))
            })?;
        }
    }
    {
        let mut st = room.state();
        if st.cfg.record != record {
            st.cfg.record = record;
            if record {
                if let Some(f) = file {
                    st.cfg.record_file = Some(f.to_owned());
                }
                if let Some(d) = dir {
                    st.cfg.record_dir = Some(d.to_owned());
                }
            }
        }
    }
    // A new attempt, even after a failed one.
    room.mix_state().record_failed = false;
    Ok(obj(json!({"audiobridge": "success", "record": record})))
}
