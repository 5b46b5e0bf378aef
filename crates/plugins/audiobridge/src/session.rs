//! The asynchronous requests: `join`, `configure`, `changeroom`, `leave`, `hangup`, and the
//! SDP that comes with them. Notifications to the others go out while a request is handled,
//! so they always precede the requester's own answer (as in Janus).

use crate::codec::Codec;
use crate::config::{RoomConfig, MAX_PREBUFFERING};
use crate::error::{AbError, AbResult};
use crate::handle::{AbHandle, Offerer};
use crate::manage::obj;
use crate::participant::{Participant, Settings};
use crate::room::Room;
use crate::{check_secret, Shared};
use jano_plugin::fields::{opt_bool, opt_str, opt_u64, Body};
use jano_plugin::ids::Id;
use jano_plugin::talk::TalkCfg;
use jano_plugin::{Jsep, JsepType, LocalJsep, Map, MediaKind, MediaPrefs, OfferMedia, Value};
use serde_json::json;
use std::sync::Arc;

pub type Reply = Option<(Map<String, Value>, Option<LocalJsep>)>;

pub fn handle(
    shared: &Shared,
    me: &AbHandle,
    request: &str,
    b: &Body,
    jsep: Option<Jsep>,
) -> AbResult<Reply> {
    if let Some(j) = &jsep {
        if j.extra.get("e2ee").and_then(Value::as_bool) == Some(true) {
            return Err(AbError::Invalid(
                "Media encryption unsupported by this plugin".into(),
            ));
        }
    }
    let (data, generate) = match request {
        "join" => join(shared, me, b, jsep.is_some())?,
        "configure" => configure(shared, me, b)?,
        "changeroom" => (changeroom(shared, me, b)?, false),
        "leave" => (leave(shared, me)?, false),
        "hangup" => {
            shared.services.close_pc(&me.href);
            (obj(json!({"audiobridge": "hangingup"})), false)
        }
        other => return Err(AbError::UnknownRequest(other.to_owned())),
    };
    let local = negotiate(me, jsep.as_ref(), generate)?;
    Ok(Some((data, local)))
}

/// What the request's JSEP (or `generate_offer`) asks of the PeerConnection.
fn negotiate(me: &AbHandle, jsep: Option<&Jsep>, generate: bool) -> AbResult<Option<LocalJsep>> {
    if jsep.is_none() && !generate {
        return Ok(None);
    }
    let p = me
        .participant()
        .filter(|p| !p.has_left())
        .ok_or(AbError::NotJoined("Can't handle SDP (not in a room)"))?;
    let codec = p.settings().codec;
    let stereo = p.room.state().cfg.spatial_audio;
    let prefs = MediaPrefs {
        audio_codec: Some(codec.name().to_owned()),
        // A spatial room's mix is stereo: the browser must play both channels.
        opus_stereo: stereo && codec == Codec::Opus,
        ..MediaPrefs::default()
    };
    let mut st = me.state();
    match jsep.map(|j| j.kind) {
        Some(JsepType::Offer) => {
            if st.offerer == Offerer::Plugin {
                return Err(AbError::InvalidSdp(
                    "Received an offer on a plugin-offered session".into(),
                ));
            }
            st.offerer = Offerer::Client;
            Ok(Some(LocalJsep::Answer(prefs)))
        }
        Some(JsepType::Answer) => {
            if st.offerer != Offerer::Plugin {
                return Err(AbError::InvalidSdp(
                    "Received an answer when we didn't send an offer".into(),
                ));
            }
            st.offer_pending = false;
            // The core hands the answer to the PeerConnection; nothing to send back.
            Ok(None)
        }
        None => {
            st.offerer = Offerer::Plugin;
            st.offer_pending = true;
            let mut m = OfferMedia::new(MediaKind::Audio, true, true);
            m.codec = Some(codec.name().to_owned());
            Ok(Some(LocalJsep::Offer {
                media: vec![m],
                data: false,
                prefs,
                restart: false,
                fill: None,
            }))
        }
    }
}

/// A plain-RTP participant's `rtp` object.
struct RtpAsk {
    ip: Option<String>,
    port: Option<u64>,
    payload_type: Option<u64>,
}

impl RtpAsk {
    fn read(o: &Body) -> AbResult<RtpAsk> {
        // Janus's names and types (its own check looks at the wrong object; this one does not).
        opt_u64(o, "audiolevel_ext")?;
        opt_bool(o, "fec")?;
        Ok(RtpAsk {
            ip: opt_str(o, "ip")?.map(str::to_owned),
            port: opt_u64(o, "port")?,
            payload_type: opt_u64(o, "payload_type")?,
        })
    }
}

/// The fields `join` and `changeroom` share, read and checked (types, ranges, access).
struct Joining {
    room: Arc<Room>,
    cfg: RoomConfig,
    id: Option<Id>,
    admin: bool,
    group: Option<String>,
}

fn u64_field(b: &Body, name: &'static str) -> AbResult<Option<u64>> {
    Ok(opt_u64(b, name)?)
}

/// Every typed field of the join schema, checked before anything else (Janus's order).
fn check_join_types(b: &Body) -> AbResult<()> {
    for s in ["display", "token", "group", "codec", "filename", "secret"] {
        opt_str(b, s)?;
    }
    for s in ["muted", "record", "generate_offer"] {
        opt_bool(b, s)?;
    }
    for s in [
        "prebuffer",
        "bitrate",
        "quality",
        "expected_loss",
        "volume",
        "spatial_position",
        "audio_level_average",
        "audio_active_packets",
    ] {
        u64_field(b, s)?;
    }
    match b.get("rtp") {
        None | Some(Value::Null) | Some(Value::Object(_)) => Ok(()),
        Some(_) => Err(AbError::invalid_type("rtp", "an object")),
    }
}

fn access(shared: &Shared, b: &Body, id_checked: bool) -> AbResult<Joining> {
    let rid = shared.ids.req(b, "room")?;
    let id = if id_checked {
        shared.ids.opt(b, "id")?
    } else {
        shared.ids.opt(b, "id").ok().flatten()
    };
    let room = shared.room(&rid)?;
    let cfg = room.state().cfg.clone();
    if b.get("rtp").is_some_and(|v| !v.is_null()) && !cfg.allow_rtp_participants {
        return Err(AbError::Unauthorized(
            "Plain RTP participants not allowed in this room",
        ));
    }
    if cfg.signed_tokens {
        let token = opt_str(b, "token")?.unwrap_or("");
        if !shared
            .services
            .signature_contains(token, &format!("room={rid}"))
        {
            return Err(AbError::Unauthorized("Unauthorized (wrong token)"));
        }
    }
    check_secret(cfg.pin.as_deref(), b, "pin")?;
    if let Some(allowed) = &cfg.allowed {
        match opt_str(b, "token").ok().flatten() {
            Some(t) if allowed.contains(t) => {}
            _ => {
                return Err(AbError::Unauthorized(
                    "Unauthorized (not in the allowed list)",
                ))
            }
        }
    }
    // Presenting the room's secret makes the participant an admin (immune to mute_room).
    let admin = if b.get("secret").is_some() {
        check_secret(cfg.secret.as_deref(), b, "secret")?;
        true
    } else {
        false
    };
    let group = if cfg.groups.is_empty() {
        None
    } else {
        let g = jano_plugin::fields::req_str(b, "group")?;
        if !cfg.groups.iter().any(|x| x == g) {
            return Err(AbError::NoSuchGroup(format!("No such group ({g})")));
        }
        Some(g.to_owned())
    };
    Ok(Joining {
        room,
        cfg,
        id,
        admin,
        group,
    })
}

fn group_index(cfg: &RoomConfig, group: Option<&str>) -> Option<usize> {
    group.and_then(|g| cfg.groups.iter().position(|x| x == g))
}

fn quality(b: &Body) -> AbResult<Option<u8>> {
    match u64_field(b, "quality")? {
        None => Ok(None),
        Some(q @ 1..=10) => Ok(Some(q as u8)),
        Some(_) => Err(AbError::Invalid(
            "Invalid element (quality should be a positive integer between 1 and 10)".into(),
        )),
    }
}

fn expected_loss(b: &Body) -> AbResult<Option<u8>> {
    match u64_field(b, "expected_loss")? {
        None => Ok(None),
        Some(l @ 0..=20) => Ok(Some(l as u8)),
        Some(_) => Err(AbError::Invalid(
            "Invalid element (expected_loss should be a positive integer between 0 and 20)".into(),
        )),
    }
}

/// A bitrate Opus accepts, else `fallback`.
fn bitrate(v: Option<u64>, fallback: u64) -> u32 {
    let v = v.unwrap_or(fallback);
    let v = if (500..=512_000).contains(&v) {
        v
    } else {
        fallback
    };
    u32::try_from(v).unwrap_or(0)
}

/// Puts a new participant in the room: a free id, the others told first (`setup: false`, as
/// Janus says even when the PeerConnection is already up), then the participant list for the
/// newcomer's own answer.
fn enter(
    shared: &Shared,
    me: &AbHandle,
    j: &Joining,
    settings: Settings,
) -> AbResult<(Arc<Participant>, Vec<Value>)> {
    let stereo = j.cfg.spatial_audio;
    let spatial = j.cfg.spatial_audio;
    let (pc_up, mindex, level) = {
        let st = me.state();
        (st.pc_up, st.audio_mindex, st.audio_level)
    };
    let (p, others) = {
        let mut st = j.room.state();
        let id = match j.id.clone().filter(|i| !i.is_zero()) {
            Some(id) if st.participants.contains_key(&id) => {
                return Err(AbError::IdExists(id.to_string()))
            }
            Some(id) => id,
            None => loop {
                let id = Id::random(shared.ids.strings);
                if !st.participants.contains_key(&id) {
                    break id;
                }
            },
        };
        let p = Participant::new(
            id,
            me.href.clone(),
            j.room.clone(),
            settings,
            stereo,
            j.cfg.sampling_rate,
        )
        .map_err(|e| AbError::Libopus(e.0))?;
        p.set_setup(pc_up);
        {
            let mut m = p.media();
            m.mindex = mindex;
            m.has_audio_level = level;
        }
        let p = Arc::new(p);
        let others: Vec<Arc<Participant>> = st.participants.values().cloned().collect();
        j.room.add(&mut st, p.clone());
        p.sync_params(st.muted);
        (p, others)
    };
    let mut entry = p.to_json(spatial);
    if let Value::Object(m) = &mut entry {
        m.insert("setup".into(), json!(false));
        m.remove("talking");
    }
    let ev =
        obj(json!({"audiobridge": "joined", "room": j.room.id_json(), "participants": [entry]}));
    Room::notify_list(&*shared.services, &others, &ev);
    let list = others.iter().map(|o| o.to_json(spatial)).collect();
    me.state().participant = Some(p.clone());
    // A thread idling on an empty room starts mixing it now.
    shared.pool.wake();
    Ok((p, list))
}

fn join(
    shared: &Shared,
    me: &AbHandle,
    b: &Body,
    has_sdp: bool,
) -> AbResult<(Map<String, Value>, bool)> {
    if me.participant().is_some_and(|p| !p.has_left()) {
        return Err(AbError::AlreadyJoined(
            "Already in a room (use changeroom to join another one)",
        ));
    }
    check_join_types(b)?;
    let j = access(shared, b, true)?;
    // With an SDP the `rtp` object is ignored, as Janus does.
    let rtp = match jano_plugin::fields::opt_object(b, "rtp")? {
        Some(o) if !has_sdp => Some(RtpAsk::read(o)?),
        _ => None,
    };
    let prebuffer = match u64_field(b, "prebuffer")? {
        Some(v) if v <= MAX_PREBUFFERING => v,
        _ => j.cfg.default_prebuffering,
    };
    let spatial_position = if j.cfg.spatial_audio {
        u64_field(b, "spatial_position")?.unwrap_or(50).min(100) as u8
    } else {
        50
    };
    let q = quality(b)?.unwrap_or(4);
    let loss = expected_loss(b)?.unwrap_or(j.cfg.default_expectedloss.min(20) as u8);
    let codec = match opt_str(b, "codec")? {
        None => Codec::Opus,
        Some(c) => Codec::parse(&c.to_ascii_lowercase()).ok_or_else(|| {
            AbError::Invalid("Invalid element (codec must opus, pcmu or pcma)".into())
        })?,
    };
    let talk = TalkCfg {
        packets: u64_field(b, "audio_active_packets")?
            .filter(|v| *v > 0)
            .unwrap_or(j.cfg.audio_active_packets),
        average: u64_field(b, "audio_level_average")?
            .filter(|v| *v > 0)
            .unwrap_or(j.cfg.audio_level_average),
    };
    let settings = Settings {
        display: opt_str(b, "display")?.map(str::to_owned),
        muted: opt_bool(b, "muted")?.unwrap_or(false),
        suspended: false,
        admin: j.admin,
        codec,
        bitrate: bitrate(u64_field(b, "bitrate")?, j.cfg.default_bitrate),
        quality: q,
        expected_loss: loss,
        volume: u32::try_from(u64_field(b, "volume")?.unwrap_or(100)).unwrap_or(u32::MAX),
        spatial_position,
        prebuffer,
        group: j.group.clone(),
        group_index: group_index(&j.cfg, j.group.as_deref()),
        record: opt_bool(b, "record")?.unwrap_or(false),
        filename: opt_str(b, "filename")?.map(str::to_owned),
        talk,
        talk_events: j.cfg.audiolevel_event,
    };
    let plain = match &rtp {
        Some(ask) => Some(
            crate::plainrtp::open(shared, codec, ask.ip.as_deref(), ask.port, ask.payload_type)
                .map_err(AbError::Unknown)?,
        ),
        None => None,
    };
    let record = settings.record || j.cfg.mjrs;
    let (p, list) = enter(shared, me, &j, settings)?;
    if record {
        crate::mjrs::start(shared, &p);
    }
    let mut data = obj(json!({
        "audiobridge": "joined",
        "room": j.room.id_json(),
        "id": p.id.to_json(),
        "participants": list,
    }));
    if let Some(plain) = plain {
        p.media().plain = Some(crate::plainrtp::PlainOut {
            socket: plain.socket.clone(),
            peer: plain.peer,
            pt: plain.pt,
            sent: 0,
            dropped: 0,
        });
        crate::plainrtp::spawn_reader(&me.shared, &p, &plain);
        data.insert(
            "rtp".into(),
            json!({"ip": plain.local.ip().to_string(), "port": plain.local.port(), "payload_type": plain.pt}),
        );
        // No offer to make: its media is plain RTP.
        return Ok((data, false));
    }
    Ok((data, opt_bool(b, "generate_offer")?.unwrap_or(false)))
}

fn configure(shared: &Shared, me: &AbHandle, b: &Body) -> AbResult<(Map<String, Value>, bool)> {
    let p = me
        .participant()
        .filter(|p| !p.has_left())
        .ok_or(AbError::NotJoined("Can't configure (not in a room)"))?;
    for s in ["group", "filename", "display"] {
        opt_str(b, s)?;
    }
    for s in ["muted", "record", "generate_offer", "update"] {
        opt_bool(b, s)?;
    }
    for s in ["prebuffer", "bitrate", "volume", "spatial_position"] {
        u64_field(b, s)?;
    }
    let (cfg, room_muted) = {
        let st = p.room.state();
        (st.cfg.clone(), st.muted)
    };
    let muted = opt_bool(b, "muted")?;
    let display = opt_str(b, "display")?;
    let spatial = u64_field(b, "spatial_position")?.filter(|_| cfg.spatial_audio);
    {
        // Applied in Janus's order; an error part-way leaves the earlier changes in place.
        let mut st = p.settings();
        if let Some(v) = u64_field(b, "prebuffer")?.filter(|v| *v <= MAX_PREBUFFERING) {
            st.prebuffer = v;
        }
        if let Some(v) = u64_field(b, "volume")? {
            st.volume = u32::try_from(v).unwrap_or(u32::MAX);
        }
        if let Some(v) = u64_field(b, "bitrate")? {
            st.bitrate = bitrate(Some(v), 0);
        }
        if let Some(q) = quality(b)? {
            st.quality = q;
        }
        if let Some(l) = expected_loss(b)? {
            st.expected_loss = l;
        }
        if !cfg.groups.is_empty() {
            if let Some(g) = opt_str(b, "group")? {
                if !cfg.groups.iter().any(|x| x == g) {
                    return Err(AbError::NoSuchGroup(format!("No such group ({g})")));
                }
                st.group = Some(g.to_owned());
                st.group_index = group_index(&cfg, Some(g));
            }
        }
        if let Some(m) = muted {
            st.muted = m;
        }
        if let Some(d) = display {
            st.display = Some(d.to_owned());
        }
        if let Some(s) = spatial {
            st.spatial_position = s.min(100) as u8;
        }
    }
    p.sync_params(room_muted);
    if muted == Some(true) {
        p.media().jitter.reset();
    }
    if let Some(f) = opt_str(b, "filename")? {
        p.settings().filename = Some(f.to_owned());
    }
    match opt_bool(b, "record")? {
        Some(true) => crate::mjrs::start(shared, &p),
        Some(false) => crate::mjrs::stop(shared, &p),
        None => {}
    }
    if muted.is_some() || display.is_some() || spatial.is_some() {
        let entry = p.update_json(cfg.spatial_audio);
        let ev =
            obj(json!({"audiobridge": "event", "room": p.room.id_json(), "participants": [entry]}));
        p.room.notify(&*shared.services, Some(&p.id), &ev);
    }
    let plugin_offered = me.state().offerer == Offerer::Plugin;
    let generate = (opt_bool(b, "update")? == Some(true) && plugin_offered)
        || opt_bool(b, "generate_offer")? == Some(true);
    Ok((
        obj(json!({"audiobridge": "event", "result": "ok"})),
        generate,
    ))
}

fn changeroom(shared: &Shared, me: &AbHandle, b: &Body) -> AbResult<Map<String, Value>> {
    check_join_types(b)?;
    let old = me
        .participant()
        .filter(|p| !p.has_left())
        .ok_or(AbError::NotJoined(
            "Can't change room (not in a room in the first place)",
        ))?;
    let rid = shared.ids.req(b, "room")?;
    if rid == old.room.id {
        return Err(AbError::AlreadyJoined("Already in this room"));
    }
    // Janus does not type-check `id` here: a malformed one means "pick one".
    let j = access(shared, b, false)?;
    let prev = old.settings().clone();
    let q = quality(b)?.unwrap_or(prev.quality);
    let loss = expected_loss(b)?.unwrap_or(prev.expected_loss);
    let settings = Settings {
        display: opt_str(b, "display")?.map(str::to_owned).or(prev.display),
        muted: opt_bool(b, "muted")?.unwrap_or(false),
        suspended: false,
        admin: j.admin,
        codec: prev.codec,
        bitrate: bitrate(u64_field(b, "bitrate")?, j.cfg.default_bitrate),
        quality: q,
        expected_loss: loss,
        volume: u32::try_from(u64_field(b, "volume")?.unwrap_or(100)).unwrap_or(u32::MAX),
        // Janus's changeroom default is 64, not join's 50.
        spatial_position: u64_field(b, "spatial_position")?.unwrap_or(64).min(100) as u8,
        prebuffer: prev.prebuffer,
        group: j.group.clone(),
        group_index: group_index(&j.cfg, j.group.as_deref()),
        // Janus stops a participant's recording on changeroom and does not restart it.
        record: false,
        filename: prev.filename.clone(),
        talk: TalkCfg {
            packets: j.cfg.audio_active_packets,
            average: j.cfg.audio_level_average,
        },
        talk_events: j.cfg.audiolevel_event,
    };
    // Out of the old room first (its others hear `leaving`), then into the new one.
    shared.leave(&old, true);
    let (p, list) = match enter(shared, me, &j, settings) {
        Ok(x) => x,
        Err(e) => {
            me.state().participant = None;
            return Err(e);
        }
    };
    Ok(obj(json!({
        "audiobridge": "roomchanged",
        "room": j.room.id_json(),
        "id": p.id.to_json(),
        "participants": list,
    })))
}

fn leave(shared: &Shared, me: &AbHandle) -> AbResult<Map<String, Value>> {
    let p = me
        .participant()
        .filter(|p| !p.has_left())
        .ok_or(AbError::NotJoined("Can't leave (not in a room)"))?;
    shared.leave(&p, true);
    Ok(obj(
        json!({"audiobridge": "left", "room": p.room.id_json(), "id": p.id.to_json()}),
    ))
}
