//! The asynchronous requests of participants: `join`/`joinandconfigure` (and the subscriber
//! `join`, handed to [`crate::subscription`]), `publish`, `configure`, `unpublish`, `leave`;
//! kicking and recording.

use crate::config::RoomConfig;
use crate::error::{VrError, VrResult};
use crate::handle::{Role, VrHandle};
use crate::json::{objects, opt_array, opt_bool, opt_object, opt_str, opt_u64, req_str, Body, Id};
use crate::media::StreamMedia;
use crate::publisher::{Phase, PubStream, Publisher};
use crate::sdp::{self, fmtp_param, SdpKind, SdpMedia};
use crate::taps::Recording;
use crate::{subscription, Shared};
use jano_plugin::{Jsep, JsepType, LocalJsep, Map, MediaPrefs, Value};
use serde_json::json;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// What an async request answers: the event's data and a JSEP, or `None` when the handler
/// pushed its event itself (offers whose mids fill the event).
pub type Reply = Option<(Map<String, Value>, Option<LocalJsep>)>;

fn event(room: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("event"));
    m.insert("room".into(), room.clone());
    m
}

pub fn join(
    shared: &Shared,
    me: &VrHandle,
    request: &str,
    b: &Body,
    jsep: Option<Jsep>,
    tx: Option<String>,
) -> VrResult<Reply> {
    let ptype = req_str(b, "ptype")?;
    let room = shared.room_of(b)?;
    match &*me.role() {
        Role::None => {}
        Role::Publisher(p) if p.has_left() => {
            return Err(VrError::AlreadyJoined(
                "Not in a room (create a new handle)",
            ))
        }
        Role::Publisher(_) => {
            return Err(VrError::AlreadyJoined(
                "Already in as a publisher on this handle",
            ))
        }
        Role::Subscriber(s) if !s.state().left => {
            return Err(VrError::AlreadyJoined(
                "Already in as a subscriber on this handle",
            ))
        }
        Role::Subscriber(_) | Role::Left => {
            return Err(VrError::AlreadyJoined(
                "Not in a room (create a new handle)",
            ))
        }
    }
    match ptype {
        "publisher" => join_publisher(shared, me, &room, request, b, jsep),
        "subscriber" | "listener" => subscription::join(shared, me, &room, b, tx),
        _ => Err(VrError::Invalid("Invalid element (ptype)".into())),
    }
}

/// A `signed_tokens` room's check, before any other: the `token` is signed with the core's
/// secret, of VideoRoom's realm, naming `room=<id>`.
pub fn check_signed(shared: &Shared, room: &Id, cfg: &RoomConfig, b: &Body) -> VrResult<()> {
    if !cfg.signed_tokens || !shared.services.auth_is_signed() {
        return Ok(());
    }
    let token = opt_str(b, "token").ok().flatten().unwrap_or("");
    if shared
        .services
        .signature_contains(token, &format!("room={room}"))
    {
        Ok(())
    } else {
        Err(VrError::Unauthorized("Unauthorized (wrong token)"))
    }
}

/// The room's access checks for a participant: PIN, then the `allowed` tokens.
fn check_access(cfg: &RoomConfig, b: &Body) -> VrResult<()> {
    crate::check_secret(cfg.pin.as_deref(), b, "pin")?;
    if let Some(allowed) = &cfg.allowed {
        match opt_str(b, "token")? {
            Some(t) if allowed.contains(t) => {}
            _ => {
                return Err(VrError::Unauthorized(
                    "Unauthorized (not in the allowed list)",
                ))
            }
        }
    }
    Ok(())
}

fn join_publisher(
    shared: &Shared,
    me: &VrHandle,
    room: &Arc<crate::room::Room>,
    request: &str,
    b: &Body,
    jsep: Option<Jsep>,
) -> VrResult<Reply> {
    let display = opt_str(b, "display")?.map(str::to_owned);
    let metadata = b.get("metadata").filter(|v| !v.is_null()).cloned();
    let wanted = shared.ids.opt(b, "id")?.filter(|i| !i.is_zero());
    let p = {
        let mut role = me.role();
        if !matches!(*role, Role::None) {
            return Err(VrError::AlreadyJoined(
                "Already in as a publisher on this handle",
            ));
        }
        let mut rs = room.state();
        check_signed(shared, &room.id, &rs.cfg, b)?;
        check_access(&rs.cfg, b)?;
        let id = rs.new_participant_id(wanted, shared.ids.strings)?;
        let private_id = loop {
            let v: u32 = rand::random();
            if v != 0 && rs.by_private_id(u64::from(v)).is_none() {
                break v;
            }
        };
        let p = Arc::new(Publisher::new(
            shared.services.clone(),
            id.clone(),
            private_id,
            me.href.clone(),
            room.clone(),
            display,
            metadata,
        ));
        rs.participants.insert(id, p.clone());
        me.set_publisher(&mut role, p.clone());
        p
    };
    let (description, notify_joining, talking) = {
        let rs = room.state();
        (
            rs.cfg.description.clone(),
            rs.cfg.notify_joining,
            rs.cfg.audiolevel_event,
        )
    };
    let mut data = Map::new();
    data.insert("videoroom".into(), json!("joined"));
    data.insert("room".into(), room.id_json());
    data.insert("description".into(), json!(description));
    data.insert("id".into(), p.id.to_json());
    data.insert("private_id".into(), json!(p.private_id));
    let others: Vec<Arc<Publisher>> = room
        .state()
        .participants
        .values()
        .filter(|o| !Arc::ptr_eq(o, &p))
        .cloned()
        .collect();
    let publishers: Vec<Value> = others
        .iter()
        .filter(|o| o.is_publishing())
        .map(|o| o.to_json(talking))
        .collect();
    data.insert("publishers".into(), Value::Array(publishers));
    if notify_joining {
        let attendees: Vec<Value> = others
            .iter()
            .filter(|o| !o.is_publishing())
            .map(|o| {
                let mut m = Map::new();
                o.identity("id", &mut m);
                Value::Object(m)
            })
            .collect();
        data.insert("attendees".into(), Value::Array(attendees));
        let mut ev = event(&room.id_json());
        let mut who = Map::new();
        p.identity("id", &mut who);
        ev.insert("joining".into(), Value::Object(who));
        room.notify(&*shared.services, Some(&p.id), &ev);
    }
    if let Some(v) = opt_u64(b, "audio_level_average")? {
        p.state().audio_level_average = Some(v);
        data.insert("audio_level_average".into(), json!(v));
    }
    if let Some(v) = opt_u64(b, "audio_active_packets")? {
        p.state().audio_active_packets = Some(v);
        data.insert("audio_active_packets".into(), json!(v));
    }
    if request == "joinandconfigure" {
        let (conf, answer) = configure(shared, &p, b, jsep, false)?;
        for (k, v) in conf {
            if k != "videoroom" && k != "room" {
                data.insert(k, v);
            }
        }
        return Ok(Some((data, answer)));
    }
    Ok(Some((data, None)))
}

/// Requests of a handle that joined as a participant.
pub fn request(
    shared: &Shared,
    _me: &VrHandle,
    p: &Arc<Publisher>,
    request: &str,
    b: &Body,
    jsep: Option<Jsep>,
    _tx: Option<String>,
) -> VrResult<Reply> {
    if p.has_left() {
        // Kicked, or the room was destroyed: Janus has cleared the handle's room by now.
        return Err(if matches!(request, "join" | "joinandconfigure") {
            VrError::AlreadyJoined("Not in a room (create a new handle)")
        } else {
            VrError::RoomGone
        });
    }
    match request {
        "publish" | "configure" => {
            let (data, answer) = configure(shared, p, b, jsep, request == "publish")?;
            Ok(Some((data, answer)))
        }
        "unpublish" => {
            if p.state().phase == Phase::Idle {
                return Err(VrError::NotPublished);
            }
            shared.unpublish(p, false);
            let mut ev = event(&p.room.id_json());
            ev.insert("unpublished".into(), json!("ok"));
            Ok(Some((ev, None)))
        }
        "leave" => {
            let room = p.room.id_json();
            shared.leave(p, true);
            *_me.role() = Role::Left;
            let mut ev = event(&room);
            ev.insert("leaving".into(), json!("ok"));
            Ok(Some((ev, None)))
        }
        "join" | "joinandconfigure" => Err(VrError::AlreadyJoined(
            "Already in as a publisher on this handle",
        )),
        _ => Err(VrError::UnknownRequest(request.to_owned())),
    }
}

/// Kicks a participant: it hears `leaving`/`kicked`, the others `kicked`, its PeerConnection
/// closes and it cannot publish or subscribe again in this room.
pub fn kick(shared: &Shared, p: &Arc<Publisher>) {
    let room = p.room.clone();
    room.state().kicked.insert(p.private_id);
    let mut mine = event(&room.id_json());
    mine.insert("leaving".into(), json!("ok"));
    mine.insert("reason".into(), json!("kicked"));
    shared.push(&p.href, None, mine, None);
    shared.leave_quietly(p);
    let mut ev = event(&room.id_json());
    ev.insert("kicked".into(), p.id.to_json());
    room.notify(&*shared.services, Some(&p.id), &ev);
}

/// `publish`, `configure` (and the configure half of `joinandconfigure`).
fn configure(
    shared: &Shared,
    p: &Arc<Publisher>,
    b: &Body,
    jsep: Option<Jsep>,
    publish: bool,
) -> VrResult<(Map<String, Value>, Option<LocalJsep>)> {
    let cfg = p.room.state().cfg.clone();
    // Validate every field before acting on any.
    let bitrate = opt_u64(b, "bitrate")?;
    let keyframe = opt_bool(b, "keyframe")?.unwrap_or(false);
    let record = opt_bool(b, "record")?;
    let filename = opt_str(b, "filename")?.map(str::to_owned);
    let display = opt_str(b, "display")?.map(str::to_owned);
    let metadata = opt_object(b, "metadata")?.map(|m| Value::Object(m.clone()));
    let descriptions = opt_array(b, "descriptions")?;
    let streams_req = opt_array(b, "streams")?;
    let audiocodec = opt_str(b, "audiocodec")?;
    let videocodec = opt_str(b, "videocodec")?;
    let _ = (
        opt_bool(b, "audio")?,
        opt_bool(b, "video")?,
        opt_bool(b, "data")?,
    );
    if record.is_some() && cfg.lock_record {
        Shared::check_secret(cfg.secret.as_deref(), b)
            .map_err(|_| VrError::Unauthorized("Unauthorized (lock_record enabled)"))?;
    }
    let offer = match jsep {
        Some(j) if j.kind == JsepType::Answer => {
            return Err(VrError::InvalidSdpType(
                "Unsupported SDP type 'answer'".into(),
            ))
        }
        Some(j) => Some(j),
        None => None,
    };
    if publish && offer.is_some() && p.state().phase != Phase::Idle {
        return Err(VrError::AlreadyPublished);
    }
    let mut answer = None;
    let mut data = event(&p.room.id_json());
    if let Some(offer) = &offer {
        if !sdp::looks_valid(&offer.sdp) {
            return Err(VrError::InvalidSdp("Error parsing offer".into()));
        }
        let renegotiating = p.state().phase != Phase::Idle;
        if !renegotiating {
            let rs = p.room.state();
            if rs.active_publishers() >= rs.cfg.publishers as usize {
                return Err(VrError::PublishersFull(rs.cfg.publishers));
            }
        }
        let e2ee = offer.extra.get("e2ee") == Some(&Value::Bool(true));
        if cfg.require_e2ee && !e2ee && !p.is_e2ee() {
            return Err(VrError::Unauthorized(
                "Room requires end-to-end encrypted media",
            ));
        }
        if e2ee {
            p.set_e2ee(true);
        }
        let media = sdp::parse(&offer.sdp);
        let prefs_audio: Vec<String> = match audiocodec {
            Some(c) => vec![c.to_ascii_lowercase()],
            None => cfg.audiocodec.clone(),
        };
        let prefs_video: Vec<String> = match videocodec {
            Some(c) => vec![c.to_ascii_lowercase()],
            None => cfg.videocodec.clone(),
        };
        let old_media: Vec<Arc<StreamMedia>> = p
            .state()
            .streams
            .iter()
            .filter_map(|s| s.media.clone())
            .collect();
        // janus.js lists the m-lines it encodes with SVC: `jsep.svc: [{mindex, mid, svc}]`.
        let svc_mindexes: Vec<u64> = offer
            .extra
            .get("svc")
            .and_then(Value::as_array)
            .map(|l| {
                l.iter()
                    .filter_map(|o| o.get("mindex").and_then(Value::as_u64))
                    .collect()
            })
            .unwrap_or_default();
        let mut streams = Vec::new();
        for (mindex, m) in media.iter().enumerate() {
            let mut s = pub_stream(shared, &cfg, mindex, m, &prefs_audio, &prefs_video);
            // VP9 layers are told by the payload descriptor, AV1's by the dependency
            // descriptor extension (without it an AV1 stream is relayed whole).
            s.svc = !s.simulcast
                && matches!(s.codec.as_deref(), Some("vp9" | "av1"))
                && svc_mindexes.contains(&(mindex as u64));
            if let Some(list) = descriptions {
                for o in objects(list, "descriptions")? {
                    if o.get("mid").and_then(Value::as_str) == Some(s.mid.as_str()) {
                        s.description = o
                            .get("description")
                            .and_then(Value::as_str)
                            .map(str::to_owned);
                    }
                }
            }
            if !s.disabled && s.kind != SdpKind::Data && m.sends {
                // A stream that keeps its mid keeps its subscribers.
                let kept = old_media
                    .iter()
                    .find(|o| {
                        o.mid == s.mid
                            && o.mindex == mindex
                            && o.simulcast == s.simulcast
                            && o.svc == s.svc
                    })
                    .cloned();
                s.media = Some(kept.unwrap_or_else(|| {
                    Arc::new(
                        StreamMedia::new(
                            shared.router().as_ref(),
                            mindex,
                            s.mid.clone(),
                            s.kind == SdpKind::Video,
                            s.simulcast,
                        )
                        .with_svc(s.svc),
                    )
                }));
            }
            streams.push(s);
        }
        let audio_codec = streams
            .iter()
            .find(|s| s.kind == SdpKind::Audio && !s.disabled)
            .and_then(|s| s.codec.clone());
        let video = streams
            .iter()
            .find(|s| s.kind == SdpKind::Video && !s.disabled);
        let video_codec = video.and_then(|s| s.codec.clone());
        let video_profile = video.and_then(|s| s.h264_profile.clone().or(s.vp9_profile.clone()));
        let opus_fec = streams.iter().any(|s| s.fec);
        let _ = opus_fec;
        if let Some(c) = &audio_codec {
            data.insert("audio_codec".into(), json!(c));
        }
        if let Some(c) = &video_codec {
            data.insert("video_codec".into(), json!(c));
        }
        let list: Vec<Value> = streams.iter().map(|s| s.to_json(false, true)).collect();
        data.insert("streams".into(), Value::Array(list));
        {
            let mut st = p.state();
            st.streams = streams;
            if st.phase == Phase::Idle {
                st.phase = Phase::Negotiating;
            }
        }
        if renegotiating && p.is_publishing() {
            // Same PeerConnection, new streams: the packet path and the room learn them now.
            p.activate(None);
            shared.announce(p);
        }
        answer = Some(LocalJsep::Answer(MediaPrefs {
            audio_codec,
            video_codec,
            video_profile,
            opus_red: false,
            opus_stereo: false,
            recv_only: true,
            e2ee: p.is_e2ee(),
            without_extensions: p.room.without_extensions,
        }));
    }
    // Per-stream requests.
    if let Some(list) = streams_req {
        for o in objects(list, "streams")? {
            let mid = o.get("mid").and_then(Value::as_str);
            if o.get("keyframe").and_then(Value::as_bool) == Some(true) {
                if let Some(sm) = mid.and_then(|m| p.stream_media(m)) {
                    shared.services.send_pli(&p.href, Some(sm.mindex));
                }
            }
            // Playout delay for every subscriber of this stream (theirs, if set, wins).
            let min = crate::json::opt_i64(o, "min_delay")?;
            let max = crate::json::opt_i64(o, "max_delay")?;
            if min.is_some() || max.is_some() {
                if let Some(sm) = mid.and_then(|m| p.stream_media(m)) {
                    let mut d = sm.playout();
                    d.apply(min, max);
                    sm.set_playout(d.ext());
                }
            }
        }
    }
    if keyframe {
        shared.services.send_pli(&p.href, None);
    }
    if let Some(br) = bitrate {
        let br = if cfg.bitrate_cap && cfg.bitrate > 0 {
            br.min(cfg.bitrate)
        } else {
            br
        };
        p.state().bitrate = br;
        shared.services.send_remb(&p.href, br);
    }
    let mut changed_identity = None;
    {
        let mut st = p.state();
        if let Some(d) = display {
            st.display = Some(d.clone());
            changed_identity
                .get_or_insert_with(Map::new)
                .insert("display".into(), json!(d));
        }
        if let Some(md) = metadata {
            st.metadata = Some(md.clone());
            changed_identity
                .get_or_insert_with(Map::new)
                .insert("metadata".into(), md);
        }
        if filename.is_some() {
            st.filename = filename;
        }
    }
    if let Some(mut ev) = changed_identity {
        // Janus sends this one without `room`.
        ev.insert("videoroom".into(), json!("event"));
        ev.insert("id".into(), p.id.to_json());
        p.room.notify(&*shared.services, Some(&p.id), &ev);
    }
    if let Some(r) = record {
        let was = p.state().record.unwrap_or(cfg.record);
        p.state().record = Some(r);
        if p.is_publishing() && r != was {
            if r {
                start_recording(shared, p);
            } else {
                stop_recording(shared, p);
            }
        }
    }
    data.insert("configured".into(), json!("ok"));
    Ok((data, answer))
}

/// A publisher m-line as the room will treat it: the codec picked from the room's list among
/// those offered, or disabled when none fits.
fn pub_stream(
    _shared: &Shared,
    cfg: &RoomConfig,
    mindex: usize,
    m: &SdpMedia,
    audio: &[String],
    video: &[String],
) -> PubStream {
    let mid = m.mid.clone().unwrap_or_else(|| mindex.to_string());
    let ext = |uri: &str| m.extmaps.iter().find(|(_, u)| u == uri).map(|(id, _)| *id);
    let pick = |wanted: &[String]| {
        wanted
            .iter()
            .find_map(|w| m.codecs.iter().find(|c| &c.name == w).cloned())
    };
    let codec = match m.kind {
        SdpKind::Audio => pick(audio),
        SdpKind::Video => pick(video),
        SdpKind::Data => None,
    };
    let disabled = m.disabled || (m.kind != SdpKind::Data && codec.is_none());
    let name = codec.as_ref().map(|c| c.name.clone());
    let fmtp = codec.as_ref().map(|c| c.fmtp.as_str()).unwrap_or("");
    let opus = name.as_deref() == Some("opus");
    PubStream {
        kind: m.kind,
        mindex,
        mid,
        disabled,
        codec: name.clone(),
        description: None,
        fec: opus && cfg.opus_fec && fmtp_param(fmtp, "useinbandfec") == Some("1"),
        dtx: opus && cfg.opus_dtx && fmtp_param(fmtp, "usedtx") == Some("1"),
        stereo: opus && fmtp_param(fmtp, "stereo") == Some("1"),
        h264_profile: (name.as_deref() == Some("h264"))
            .then(|| fmtp_param(fmtp, "profile-level-id").map(str::to_owned))
            .flatten(),
        vp9_profile: (name.as_deref() == Some("vp9"))
            .then(|| fmtp_param(fmtp, "profile-id").map(str::to_owned))
            .flatten(),
        simulcast: m.kind == SdpKind::Video && (m.rids.len() > 1 || m.ssrc_simulcast),
        svc: false,
        moderated: false,
        audiolevel_ext_id: (m.kind == SdpKind::Audio && cfg.audiolevel_ext)
            .then(|| ext(sdp::EXT_AUDIO_LEVEL))
            .flatten(),
        videoorient_ext_id: (m.kind == SdpKind::Video && cfg.videoorient_ext)
            .then(|| ext(sdp::EXT_VIDEO_ORIENT))
            .flatten(),
        playoutdelay_ext_id: (m.kind == SdpKind::Video && cfg.playoutdelay_ext)
            .then(|| ext(sdp::EXT_PLAYOUT_DELAY))
            .flatten(),
        talking: false,
        media: None,
    }
}

/// Starts recording every stream of a publisher (files opened on the blocking pool).
pub fn start_recording(shared: &Shared, p: &Arc<Publisher>) {
    if !p.taps.recordings().is_empty() {
        return;
    }
    let (dir, base) = {
        let rs = p.room.state();
        let st = p.state();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let base = st.filename.clone();
        (
            rs.cfg.rec_dir.clone(),
            base.map(|b| (b, true)).unwrap_or_else(|| {
                (
                    format!("videoroom-{}-user-{}-{now}", p.room.id, p.id),
                    false,
                )
            }),
        )
    };
    let streams: Vec<(usize, SdpKind, String)> = p
        .state()
        .streams
        .iter()
        .filter(|s| !s.disabled)
        .filter_map(|s| {
            let codec = match s.kind {
                SdpKind::Data => "text".to_owned(),
                _ => s.codec.clone()?,
            };
            Some((s.mindex, s.kind, codec))
        })
        .collect();
    let p2 = p.clone();
    let encrypted = p.is_e2ee();
    shared.services.spawn_blocking(Box::new(move || {
        for (mindex, kind, codec) in streams {
            let name = format!("{}-{}-{mindex}", base.0, kind.as_str());
            let mk = match kind {
                SdpKind::Audio => jano_mjr::MediaKind::Audio,
                SdpKind::Video => jano_mjr::MediaKind::Video,
                SdpKind::Data => jano_mjr::MediaKind::Data,
            };
            let dir = dir.as_deref().map(std::path::Path::new);
            let rec = match jano_mjr::Recorder::create(dir, &name, mk, &codec, None) {
                Ok(mut r) => {
                    if encrypted && kind != SdpKind::Data {
                        let _ = r.set_encrypted();
                    }
                    r
                }
                Err(e) => {
                    tracing::warn!("videoroom: cannot record {name}: {e}");
                    continue;
                }
            };
            match rec.spawn(1024) {
                Ok((handle, writer)) => p2.taps.add_recording(Recording {
                    mindex: (kind != SdpKind::Data).then_some(mindex),
                    handle,
                    writer: Arc::new(std::sync::Mutex::new(Some(writer))),
                }),
                Err(e) => tracing::warn!("videoroom: cannot record {name}: {e}"),
            }
        }
    }));
}

/// Stops a publisher's recordings (files finished on the blocking pool).
pub fn stop_recording(shared: &Shared, p: &Arc<Publisher>) {
    let recs = p.taps.take_recordings();
    if !recs.is_empty() {
        shared.services.spawn_blocking(Box::new(move || drop(recs)));
    }
}
