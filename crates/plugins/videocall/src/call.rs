//! The requests: `list`, `register`, `call`, `accept`, `set`, `hangup`, with Janus's order of
//! checks, events and replies; and what happens when a PeerConnection goes away.
//!
//! Janus relays the caller's SDP to the callee and back. Here each side's PeerConnection ends
//! at the server, so the callee gets an offer the engine writes with the caller's m-lines
//! (kinds, directions, the caller's preferred codec on each), and the caller gets an answer
//! with the codecs the callee chose: both sides agree on codecs and no media needs changing.

use crate::error::{VcError, VcResult};
use crate::handle::{Role, VcHandle, NO_CAP};
use crate::Shared;
use jano_plugin::fields::{opt_bool, opt_str, opt_u64, req_str, Body};
use jano_plugin::record::RecKind;
use jano_plugin::sdp::{self, SdpKind, SdpMedia};
use jano_plugin::{Jsep, JsepType, LocalJsep, Map, MediaKind, MediaPrefs, OfferMedia, Value};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a request answers: the `result` of its event, and a JSEP to go with it.
pub type Answer = (Value, Option<LocalJsep>);

fn event(result: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("videocall".into(), json!("event"));
    m.insert("result".into(), result);
    m
}

/// Tells a handle something outside a request (no transaction).
fn tell(sh: &Shared, h: &VcHandle, result: Value, jsep: Option<LocalJsep>) {
    let _ = sh.services.push_event(&h.href, None, event(result), jsep);
}

/// Runs a request and pushes its event (or error) with the transaction.
pub fn handle(sh: &Shared, h: &Arc<VcHandle>, tx: &str, body: &Body, jsep: Option<Jsep>) {
    let data = match run(sh, h, body, jsep) {
        Ok((result, jsep)) => {
            let _ = sh
                .services
                .push_event(&h.href, Some(tx.to_owned()), event(result), jsep);
            return;
        }
        Err(e) => e.to_data(),
    };
    let _ = sh
        .services
        .push_event(&h.href, Some(tx.to_owned()), data, None);
}

fn run(sh: &Shared, h: &Arc<VcHandle>, b: &Body, jsep: Option<Jsep>) -> VcResult<Answer> {
    let request = req_str(b, "request")?.to_ascii_lowercase();
    if jsep
        .as_ref()
        .is_some_and(|j| j.extra.get("e2ee") == Some(&Value::Bool(true)))
    {
        h.state().e2ee = true;
    }
    match request.as_str() {
        "list" => Ok((json!({"list": sh.usernames()}), None)),
        "register" => register(sh, h, b),
        "call" => call(sh, h, b, jsep),
        "accept" => accept(sh, h, jsep),
        "set" => set(sh, h, b, jsep),
        "hangup" => Ok(hangup(sh, h, b)),
        _ => Err(VcError::UnknownRequest(request)),
    }
}

fn register(sh: &Shared, h: &Arc<VcHandle>, b: &Body) -> VcResult<Answer> {
    if let Some(u) = h.state().username.clone() {
        return Err(VcError::AlreadyRegistered(u));
    }
    let username = req_str(b, "username")?;
    {
        let mut users = sh.users();
        if users.contains_key(username) {
            return Err(VcError::UsernameTaken(username.to_owned()));
        }
        users.insert(username.to_owned(), h.clone());
    }
    h.state().username = Some(username.to_owned());
    Ok((json!({"event": "registered", "username": username}), None))
}

/// A codec the engine can offer for an m-line of the caller's offer: its first real one.
fn first_codec(m: &SdpMedia) -> Option<String> {
    const NOT_MEDIA: &[&str] = &[
        "red",
        "rtx",
        "ulpfec",
        "flexfec-03",
        "telephone-event",
        "cn",
    ];
    m.codecs
        .iter()
        .map(|c| c.name.as_str())
        .find(|n| !NOT_MEDIA.contains(n))
        .map(str::to_owned)
}

fn call(sh: &Shared, h: &Arc<VcHandle>, b: &Body, jsep: Option<Jsep>) -> VcResult<Answer> {
    // Until the call is placed, a failed attempt also hangs up the caller's PeerConnection.
    let fail = |e: VcError| {
        sh.services.close_pc(&h.href);
        e
    };
    let me = {
        let st = h.state();
        let Some(me) = st.username.clone() else {
            return Err(fail(VcError::RegisterFirst));
        };
        if st.peer.is_some() {
            return Err(fail(VcError::AlreadyInCall));
        }
        me
    };
    let target = req_str(b, "username").map_err(|e| fail(e.into()))?;
    if target == me {
        return Err(fail(VcError::UseEchoTest));
    }
    let Some(peer) = sh.users().get(target).cloned() else {
        return Err(fail(VcError::NoSuchUsername(target.to_owned())));
    };
    if peer.state().peer.is_some() {
        sh.services.close_pc(&h.href);
        return Ok((
            json!({"event": "hangup", "username": me, "reason": "User busy"}),
            None,
        ));
    }
    let Some(jsep) = jsep.filter(|j| !j.sdp.is_empty()) else {
        return Err(VcError::MissingSdp);
    };
    if !sdp::looks_valid(&jsep.sdp) {
        return Err(VcError::InvalidSdp(
            "Error parsing offer: invalid SDP".into(),
        ));
    }
    let lines = sdp::parse(&jsep.sdp);
    let mut media = Vec::new();
    let mut data = false;
    for m in lines.iter().filter(|m| !m.disabled) {
        let kind = match m.kind {
            SdpKind::Audio => MediaKind::Audio,
            SdpKind::Video => MediaKind::Video,
            SdpKind::Data => {
                data = true;
                continue;
            }
        };
        // The callee gets what the caller sends, and sends what the caller receives.
        let mut om = OfferMedia::new(kind, m.sends, m.receives);
        om.codec = first_codec(m);
        media.push(om);
    }
    // Link both sides, unless someone got there first (one link at a time, so two users
    // calling each other at once cannot both succeed, and no two call states are ever
    // locked together).
    let e2ee = {
        let _linking = sh.linking();
        let busy = |sh: &Shared| {
            sh.services.close_pc(&h.href);
            Ok((
                json!({"event": "hangup", "username": me, "reason": "User busy"}),
                None,
            ))
        };
        if peer.state().peer.is_some() {
            return busy(sh);
        }
        if h.state().peer.is_some() {
            return Err(fail(VcError::AlreadyInCall));
        }
        {
            let mut ps = peer.state();
            ps.peer = Some(h.clone());
            ps.role = Some(Role::Callee);
            ps.accepted = false;
        }
        let mut st = h.state();
        st.peer = Some(peer.clone());
        st.role = Some(Role::Caller);
        st.accepted = false;
        st.acodec = lines
            .iter()
            .find(|m| m.kind == SdpKind::Audio)
            .and_then(first_codec);
        st.vcodec = lines
            .iter()
            .find(|m| m.kind == SdpKind::Video)
            .and_then(first_codec);
        st.e2ee
    };
    let offer = LocalJsep::Offer {
        media,
        data,
        // The engine's codec set for the offer must have the caller's codecs (G.711…).
        prefs: MediaPrefs {
            audio_codec: codec_of(&lines, SdpKind::Audio),
            video_codec: codec_of(&lines, SdpKind::Video),
            e2ee,
            ..MediaPrefs::default()
        },
        restart: false,
        fill: None,
    };
    tell(
        sh,
        &peer,
        json!({"event": "incomingcall", "username": me}),
        Some(offer),
    );
    Ok((json!({"event": "calling"}), None))
}

/// The codec of the first m-line of a kind in an SDP.
fn codec_of(lines: &[SdpMedia], kind: SdpKind) -> Option<String> {
    lines
        .iter()
        .find(|m| m.kind == kind && !m.disabled)
        .and_then(first_codec)
}

fn accept(sh: &Shared, h: &Arc<VcHandle>, jsep: Option<Jsep>) -> VcResult<Answer> {
    let (peer, me) = {
        let st = h.state();
        match &st.peer {
            Some(p) => (p.clone(), st.username.clone()),
            None => return Err(VcError::NoCall),
        }
    };
    let Some(jsep) = jsep.filter(|j| !j.sdp.is_empty()) else {
        return Err(VcError::MissingSdp);
    };
    if jsep.kind != JsepType::Answer || !sdp::looks_valid(&jsep.sdp) {
        return Err(VcError::InvalidSdp(
            "Error parsing answer: invalid SDP".into(),
        ));
    }
    // Only the callee has an offer of ours to answer (the core refuses anyone else's answer
    // before this; this keeps a caller's stray answer from relinking anything).
    if h.state().role != Some(Role::Callee) {
        return Err(VcError::NoCall);
    }
    let lines = sdp::parse(&jsep.sdp);
    let acodec = codec_of(&lines, SdpKind::Audio);
    let vcodec = codec_of(&lines, SdpKind::Video);
    let e2ee = {
        let mut st = h.state();
        st.accepted = true;
        st.acodec = acodec.clone();
        st.vcodec = vcodec.clone();
        st.e2ee
    };
    let caller_e2ee = {
        let mut ps = peer.state();
        ps.accepted = true;
        ps.acodec = acodec.clone();
        ps.vcodec = vcodec.clone();
        ps.e2ee
    };
    // The caller's offer is answered with the codecs the callee chose.
    let answer = LocalJsep::Answer(MediaPrefs {
        audio_codec: acodec,
        video_codec: vcodec,
        e2ee: e2ee || caller_e2ee,
        ..MediaPrefs::default()
    });
    tell(
        sh,
        &peer,
        json!({"event": "accepted", "username": me}),
        Some(answer),
    );
    Ok((json!({"event": "accepted"}), None))
}

fn set(sh: &Shared, h: &Arc<VcHandle>, b: &Body, jsep: Option<Jsep>) -> VcResult<Answer> {
    let audio = opt_bool(b, "audio")?;
    let video = opt_bool(b, "video")?;
    let bitrate = opt_u64(b, "bitrate")?;
    let record = opt_bool(b, "record")?;
    let filename = opt_str(b, "filename")?;
    opt_bool(b, "restart")?;
    let layer = |name: &str| -> VcResult<Option<u8>> {
        match b.get(name) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= 2)
                .map(|n| Some(n as u8))
                .ok_or_else(|| {
                    VcError::Invalid(format!("Invalid value ({name} should be 0, 1 or 2)"))
                }),
        }
    };
    let substream = layer("substream")?;
    let temporal = layer("temporal")?;
    let fallback = match b.get("fallback") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            VcError::Invalid("Invalid value (fallback should be a positive integer)".into())
        })?),
    };
    let svc = &*sh.services;
    if let Some(a) = audio {
        h.audio_active.store(a, Ordering::Relaxed);
    }
    if let Some(v) = video {
        if v && !h.video_active.load(Ordering::Relaxed) {
            // Video back on: the peer should get a keyframe from this side at once.
            svc.send_pli(&h.href, None);
        }
        h.video_active.store(v, Ordering::Relaxed);
    }
    if let Some(br) = bitrate {
        h.state().bitrate = br;
        svc.send_remb(&h.href, if br > 0 { br } else { NO_CAP });
    }
    let peer = h.peer();
    if let Some(f) = fallback {
        h.state().fallback_us = if f == 0 {
            crate::handle::DEFAULT_FALLBACK_US
        } else {
            f
        };
    }
    if substream.is_some() || temporal.is_some() {
        let vcodec = {
            let mut st = h.state();
            if let Some(s) = substream {
                st.substream = s;
            }
            if let Some(t) = temporal {
                st.temporal = t;
            }
            st.vcodec.clone().unwrap_or_else(|| "none".into())
        };
        // The layers come from the peer's simulcast stream to this side.
        let stream = peer.as_ref().and_then(|p| {
            p.outgoing()
                .into_iter()
                .find(|o| o.kind == MediaKind::Video && o.stream.simulcast)
        });
        if let Some(s) = substream {
            match &stream {
                Some(o) if o.link.current() == Some(usize::from(s)) => tell(
                    sh,
                    h,
                    json!({"event": "simulcast", "videocodec": vcodec, "substream": s}),
                    None,
                ),
                Some(o) => {
                    o.stream.switch_to(&o.link, usize::from(s));
                    if let Some(p) = &peer {
                        svc.send_pli(&p.href, None);
                    }
                }
                None => {}
            }
        }
        if let Some(t) = temporal {
            match &stream {
                Some(o) if o.link.temporal() == Some(t) && vcodec == "vp8" => tell(
                    sh,
                    h,
                    json!({"event": "simulcast", "videocodec": vcodec, "temporal": t}),
                    None,
                ),
                Some(o) => o.stream.set_temporal(&o.link, t),
                None => {}
            }
        }
    }
    if let Some(rec) = record {
        if rec {
            let base = match filename {
                Some(f) => f.to_owned(),
                None => {
                    let me = h
                        .state()
                        .username
                        .clone()
                        .unwrap_or_else(|| "unknown".into());
                    let other = peer
                        .as_ref()
                        .and_then(|p| p.state().username.clone())
                        .unwrap_or_else(|| "unknown".into());
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros());
                    format!("videocall-{me}-{other}-{now}")
                }
            };
            h.rec.start(svc, base);
            // The files of the call's codecs open now; the video one asks for a keyframe
            // once open, so that it starts with one.
            let (acodec, vcodec) = {
                let st = h.state();
                (st.acodec.clone(), st.vcodec.clone())
            };
            if let Some(c) = acodec {
                h.rec.open(svc, RecKind::Audio, &c, None);
            }
            if let Some(c) = vcodec {
                let (services, me) = (sh.services.clone(), h.href.clone());
                let pli: Box<dyn FnOnce() + Send> = Box::new(move || services.send_pli(&me, None));
                h.rec.open(svc, RecKind::Video, &c, Some(pli));
            }
        } else {
            h.rec.stop(svc);
        }
    }
    // A renegotiation from this side (an ICE restart, say) is answered here, with the
    // codecs of the call.
    let answer = match jsep {
        Some(j) if j.kind == JsepType::Offer => {
            let st = h.state();
            Some(LocalJsep::Answer(MediaPrefs {
                audio_codec: st.acodec.clone(),
                video_codec: st.vcodec.clone(),
                e2ee: st.e2ee,
                ..MediaPrefs::default()
            }))
        }
        _ => None,
    };
    Ok((json!({"event": "set"}), answer))
}

/// Unlinks a call's two sides; what each had going to the other stops.
fn unlink(h: &VcHandle) -> Option<Arc<VcHandle>> {
    let _linking = h.shared.linking();
    let peer = {
        let mut st = h.state();
        st.role = None;
        st.accepted = false;
        st.peer.take()
    }?;
    {
        let mut ps = peer.state();
        if ps.peer.as_ref().is_some_and(|p| std::ptr::eq(&**p, h)) {
            ps.peer = None;
            ps.role = None;
            ps.accepted = false;
        }
    }
    h.unwire();
    peer.unwire();
    Some(peer)
}

fn hangup(sh: &Shared, h: &Arc<VcHandle>, b: &Body) -> Answer {
    // A `reason` that is not a string is ignored, as Janus does.
    let reason = b
        .get("reason")
        .and_then(Value::as_str)
        .unwrap_or("We did the hangup")
        .to_owned();
    let me = h.state().username.clone();
    sh.services.close_pc(&h.href);
    if let Some(peer) = unlink(h) {
        sh.services.close_pc(&peer.href);
        tell(
            sh,
            &peer,
            json!({"event": "hangup", "username": me, "reason": reason}),
            None,
        );
    }
    let mut result = json!({"event": "hangup", "reason": "Explicit hangup"});
    if let Some(u) = me {
        result["username"] = json!(u);
    }
    (result, None)
}

/// A handle's PeerConnection is gone (or the handle is): the other side of its call hears
/// `Remote WebRTC hangup` and is hung up too; this side's settings go back to the defaults.
pub fn media_gone(h: &VcHandle) {
    let sh = &h.shared;
    let me = h.state().username.clone();
    if let Some(peer) = unlink(h) {
        sh.services.close_pc(&peer.href);
        tell(
            sh,
            &peer,
            json!({"event": "hangup", "username": me, "reason": "Remote WebRTC hangup"}),
            None,
        );
        // This side learns that its call is over too, with the other's name (Janus gets
        // there through the other side's hang-up).
        let other = peer.state().username.clone();
        tell(
            sh,
            h,
            json!({"event": "hangup", "username": other, "reason": "Remote WebRTC hangup"}),
            None,
        );
    }
    h.reset_media();
}
