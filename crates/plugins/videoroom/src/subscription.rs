//! The asynchronous requests of subscriptions: `join` as subscriber, `start`, `pause`,
//! `configure`, `subscribe`, `unsubscribe`, `update`, `switch`, `leave`.

use crate::error::{VrError, VrResult};
use crate::handle::{Role, VrHandle};
use crate::json::{objects, opt_array, opt_bool, opt_i64, opt_str, opt_u64, Body, Ids};
use crate::participant::Reply;
use crate::room::Room;
use crate::sdp::SdpKind;
use crate::subscriber::{
    check_e2ee, join_e2ee, resolve, KindFilter, LayerReq, StreamReq, SubState, Subscriber,
};
use crate::Shared;
use jano_plugin::{Jsep, JsepType, Map, Value};
use serde_json::json;
use std::sync::Arc;

fn event(room: &Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("event"));
    m.insert("room".into(), room.clone());
    m
}

fn stream_reqs(ids: Ids, list: &[Value]) -> VrResult<Vec<StreamReq>> {
    let mut out = Vec::new();
    for o in objects(list, "streams")? {
        out.push(StreamReq::parse(ids, o)?);
    }
    Ok(out)
}

/// `join` with `ptype: "subscriber"`: the subscription is made and offered.
pub fn join(
    shared: &Shared,
    me: &VrHandle,
    room: &Arc<Room>,
    b: &Body,
    tx: Option<String>,
) -> VrResult<Reply> {
    let private_id = opt_u64(b, "private_id")?;
    let autoupdate = opt_bool(b, "autoupdate")?.unwrap_or(true);
    let use_msid = opt_bool(b, "use_msid")?.unwrap_or(false);
    let (reqs, filter, legacy) = match opt_array(b, "streams")? {
        Some(list) if !list.is_empty() => {
            (stream_reqs(shared.ids, list)?, KindFilter::default(), false)
        }
        _ => {
            // The single-publisher form: `feed` and the offer_* switches.
            let feed = shared.ids.req(b, "feed")?;
            let flag = |a: &'static str, b2: &'static str| -> VrResult<bool> {
                Ok(opt_bool(b, a)?.or(opt_bool(b, b2)?).unwrap_or(true))
            };
            let filter = KindFilter {
                audio: flag("offer_audio", "audio")?,
                video: flag("offer_video", "video")?,
                data: flag("offer_data", "data")?,
            };
            let req = StreamReq {
                feed,
                mid: None,
                crossrefid: None,
                send: None,
                layers: LayerReq::parse(b)?,
                min_delay: None,
                max_delay: None,
            };
            (vec![req], filter, true)
        }
    };
    let sub = {
        let mut role = me.role();
        if !matches!(*role, Role::None) {
            return Err(VrError::AlreadyJoined(
                "Already in as a subscriber on this handle",
            ));
        }
        let mut rs = room.state();
        crate::participant::check_signed(shared, &room.id, &rs.cfg, b)?;
        crate::check_secret(rs.cfg.pin.as_deref(), b, "pin")?;
        let owner_ok = private_id.is_some_and(|id| rs.by_private_id(id).is_some());
        if rs.cfg.require_pvtid && !owner_ok {
            return Err(VrError::Unauthorized(
                "Unauthorized (this room requires a valid private_id)",
            ));
        }
        if private_id.is_some_and(|id| u32::try_from(id).is_ok_and(|v| rs.kicked.contains(&v))) {
            return Err(VrError::Unauthorized("Unauthorized (you have been kicked)"));
        }
        let (streams, data) = resolve(&rs, &reqs, filter)?;
        let e2ee = join_e2ee(&rs, &reqs)?;
        let sub = Arc::new(Subscriber::new(
            me.href.clone(),
            room.clone(),
            private_id,
            autoupdate,
            use_msid,
        ));
        {
            let mut st = sub.state();
            st.e2ee = e2ee;
            Subscriber::add(&mut st, streams, data);
        }
        rs.subscribers.insert(me.href.handle_id, sub.clone());
        me.set_subscriber(&mut role, sub.clone());
        sub
    };
    let mut data = Map::new();
    data.insert("videoroom".into(), json!("attached"));
    data.insert("room".into(), room.id_json());
    data.insert("streams".into(), Value::Array(Vec::new()));
    if legacy {
        if let Some(feed) = reqs
            .first()
            .and_then(|r| room.state().participants.get(&r.feed).cloned())
        {
            let st = feed.state();
            data.insert("id".into(), feed.id.to_json());
            if let Some(d) = &st.display {
                data.insert("display".into(), json!(d));
            }
            if let Some(md) = &st.metadata {
                data.insert("metadata".into(), md.clone());
            }
            data.insert("warning".into(), json!("deprecated_api"));
        }
    }
    let mut st = sub.state();
    sub.send_offer(&mut st, &*shared.services, tx, data, false);
    Ok(None)
}

pub fn request(
    shared: &Shared,
    sub: &Arc<Subscriber>,
    request: &str,
    b: &Body,
    jsep: Option<Jsep>,
    tx: Option<String>,
) -> VrResult<Reply> {
    if jsep.as_ref().is_some_and(|j| j.kind == JsepType::Offer) {
        return Err(VrError::InvalidSdpType(
            "Only publishers send offers".into(),
        ));
    }
    let room = sub.room.id_json();
    if sub.room.is_destroyed() || sub.state().left {
        return Err(VrError::RoomGone);
    }
    match request {
        "start" => {
            let mut st = sub.state();
            if jsep.is_some() {
                st.started = true;
                st.offer_pending = false;
                for s in st.streams.iter_mut().filter(|s| s.mid.is_some()) {
                    s.ready = true;
                }
                if let Some(d) = st.data.as_mut() {
                    d.ready = d.mid.is_some();
                }
            } else if !st.started && st.offer_pending {
                // Resuming before any answer: nothing to start yet.
                st.started = false;
            }
            st.paused = false;
            // `started` first: the layer a simulcast stream starts on is told after it.
            let mut ev = event(&room);
            ev.insert("started".into(), json!("ok"));
            shared.push(&sub.href, tx, ev, None);
            sub.sync(&mut st);
            if st.update_pending && !st.offer_pending {
                st.update_pending = false;
                shared.renegotiate(sub, &mut st, None);
            }
            Ok(None)
        }
        "pause" => {
            let mut st = sub.state();
            st.paused = true;
            sub.sync(&mut st);
            let mut ev = event(&room);
            ev.insert("paused".into(), json!("ok"));
            Ok(Some((ev, None)))
        }
        "configure" => configure(shared, sub, b, tx),
        "subscribe" | "unsubscribe" | "update" => update(shared, sub, request, b, tx),
        "switch" => switch(shared, sub, b),
        "leave" => {
            // The handle keeps its subscriber role (its state says `left`): later requests
            // answer as Janus does for a subscriber that left, offers first (431), then 426.
            shared.drop_subscriber(sub);
            shared.services.close_pc(&sub.href);
            let mut ev = event(&room);
            ev.insert("left".into(), json!("ok"));
            Ok(Some((ev, None)))
        }
        "join" | "joinandconfigure" => Err(VrError::AlreadyJoined(
            "Already in as a subscriber on this handle",
        )),
        _ => Err(VrError::UnknownRequest(request.to_owned())),
    }
}

fn configure(
    shared: &Shared,
    sub: &Arc<Subscriber>,
    b: &Body,
    tx: Option<String>,
) -> VrResult<Reply> {
    let restart = opt_bool(b, "restart")?.unwrap_or(false);
    let update = opt_bool(b, "update")?.unwrap_or(false);
    let list = opt_array(b, "streams")?;
    // Legacy single-stream form: top-level `audio`/`video`/`data` and layer choices.
    let legacy = (
        opt_bool(b, "audio")?,
        opt_bool(b, "video")?,
        opt_bool(b, "data")?,
        LayerReq::parse(b)?,
    );
    let mut changes = Vec::new();
    let mut delays = Vec::new();
    if let Some(list) = list {
        for o in objects(list, "streams")? {
            let mid = crate::json::req_str(o, "mid")?.to_owned();
            let (min, max) = (opt_i64(o, "min_delay")?, opt_i64(o, "max_delay")?);
            if min.is_some() || max.is_some() {
                delays.push((mid.clone(), min, max));
            }
            changes.push((Some(mid), None, opt_bool(o, "send")?, LayerReq::parse(o)?));
        }
    }
    let mut st = sub.state();
    for (mid, kind, send, layers) in changes {
        let Some(s) = st
            .streams
            .iter_mut()
            .find(|s| s.mid == mid || (mid.is_none() && Some(s.kind) == kind))
        else {
            continue;
        };
        apply(s, send, &layers, sub, &*shared.services);
    }
    for (mid, min, max) in delays {
        let Some(s) = st.streams.iter_mut().find(|s| s.mid.as_ref() == Some(&mid)) else {
            continue;
        };
        s.playout.apply(min, max);
        let sm = s.feed.as_ref().zip(s.feed_mid.as_ref());
        if let (Some(link), Some(sm)) = (&s.link, sm.and_then(|(f, m)| f.stream_media(m))) {
            sm.set_link_playout(link, s.playout.ext());
        }
    }
    let (a, v, d, layers) = legacy;
    for s in st.streams.iter_mut() {
        let send = match s.kind {
            SdpKind::Audio => a,
            SdpKind::Video => v,
            SdpKind::Data => d,
        };
        let layers = if s.kind == SdpKind::Video {
            layers
        } else {
            LayerReq::default()
        };
        if send.is_some() || !layers.is_empty() {
            apply(s, send, &layers, sub, &*shared.services);
        }
    }
    sub.sync(&mut st);
    drop(st);
    sub.check_layers();
    let mut ev = event(&sub.room.id_json());
    ev.insert("configured".into(), json!("ok"));
    if restart || update {
        let mut st = sub.state();
        if st.offer_pending {
            st.update_pending = true;
            return Ok(Some((ev, None)));
        }
        sub.send_offer(&mut st, &*shared.services, tx, ev, restart);
        return Ok(None);
    }
    Ok(Some((ev, None)))
}

fn apply(
    s: &mut crate::subscriber::SubStream,
    send: Option<bool>,
    layers: &LayerReq,
    sub: &Subscriber,
    services: &dyn jano_plugin::CoreServices,
) {
    if let Some(v) = send {
        s.send = v;
    }
    s.set_layers(layers);
    let tell_now = |key: &str, v: u8| {
        let mut ev = event(&sub.room.id_json());
        ev.insert("mid".into(), json!(s.mid));
        ev.insert(key.into(), json!(v));
        let _ = services.push_event(&sub.href, None, ev, None);
    };
    let feed = s.feed.as_ref().zip(s.feed_mid.as_ref());
    let sm = feed.and_then(|(f, m)| f.stream_media(m));
    if let (Some(link), Some(sm)) = (&s.link, &sm) {
        if let (Some(v), true) = (layers.temporal, sm.simulcast && sm.video) {
            sm.set_temporal(link, v);
        }
        if sm.svc {
            if let Some(v) = layers.temporal_layer {
                sm.set_temporal(link, v);
            }
            if let Some(v) = layers.spatial_layer {
                match link.spatial() {
                    // Janus tells the current layer right away when the target is already it.
                    Some(cur) if cur == v => tell_now("spatial_layer", v),
                    cur => {
                        sm.set_spatial(link, v);
                        // Going up waits for a keyframe: ask for one.
                        if cur.is_some_and(|c| v > c) {
                            if let Some((f, _)) = feed {
                                f.keyframe_now(sm.mindex);
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(v) = layers.substream {
        if s.link.as_ref().and_then(|l| l.current()) == Some(usize::from(v)) {
            tell_now("substream", v);
        }
    }
}

/// `subscribe`, `unsubscribe` and `update`: change the streams, then one new offer.
fn update(
    shared: &Shared,
    sub: &Arc<Subscriber>,
    request: &str,
    b: &Body,
    tx: Option<String>,
) -> VrResult<Reply> {
    let (add, remove) = match request {
        "subscribe" => (Some(required_streams(b, "streams")?), None),
        "unsubscribe" => (None, Some(required_streams(b, "streams")?)),
        _ => {
            let add = opt_array(b, "subscribe")?;
            let rem = opt_array(b, "unsubscribe")?;
            if add.is_none() && rem.is_none() {
                return Err(VrError::Missing("subscribe"));
            }
            (add.cloned(), rem.cloned())
        }
    };
    let add_reqs = match &add {
        Some(list) => stream_reqs(shared.ids, list)?,
        None => Vec::new(),
    };
    let resolved = if add_reqs.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        let rs = sub.room.state();
        let resolved = resolve(&rs, &add_reqs, KindFilter::default())?;
        let e2ee = sub.state().e2ee;
        for p in resolved.0.iter().filter_map(|s| s.feed.as_ref()) {
            check_e2ee(p, e2ee)?;
        }
        for p in &resolved.1 {
            check_e2ee(p, e2ee)?;
        }
        resolved
    };
    let mut st = sub.state();
    if let Some(list) = &remove {
        for o in objects(list, "streams")? {
            unsubscribe_one(shared.ids, sub, &mut st, o)?;
        }
    }
    Subscriber::add(&mut st, resolved.0, resolved.1);
    sub.sync(&mut st);
    shared.renegotiate(sub, &mut st, tx);
    Ok(None)
}

fn required_streams(b: &Body, name: &'static str) -> VrResult<Vec<Value>> {
    match opt_array(b, name)? {
        Some(l) if !l.is_empty() => Ok(l.clone()),
        _ => Err(VrError::Missing(name)),
    }
}

fn unsubscribe_one(ids: Ids, sub: &Subscriber, st: &mut SubState, o: &Body) -> VrResult<()> {
    let feed = ids.opt(o, "feed")?;
    let mid = opt_str(o, "mid")?;
    let sub_mid = opt_str(o, "sub_mid")?;
    if feed.is_none() && sub_mid.is_none() {
        return Err(VrError::Missing("feed"));
    }
    for s in st.streams.iter_mut() {
        let hit = match (&feed, sub_mid) {
            (_, Some(sm)) => s.mid.as_deref() == Some(sm),
            (Some(f), None) => {
                s.feed.as_ref().is_some_and(|p| &p.id == f)
                    && mid.is_none_or(|m| s.feed_mid.as_deref() == Some(m))
            }
            (None, None) => false,
        };
        if hit {
            if let (Some(link), Some(feed)) = (s.link.take(), &s.feed) {
                if let Some(sm) = s.feed_mid.as_ref().and_then(|m| feed.stream_media(m)) {
                    sm.detach(&link);
                }
            }
            s.feed = None;
            s.ready = false;
        }
    }
    if let Some(f) = &feed {
        if mid.is_none() && sub_mid.is_none() {
            st.data_sources.retain(|p| {
                let keep = &p.id != f;
                if !keep {
                    p.remove_data_sub(sub.href.handle_id);
                }
                keep
            });
        }
    }
    Ok(())
}

/// `switch`: a subscriber m-line gets another publisher stream of the same kind, without a
/// renegotiation (the engine keeps its sequence numbers continuous).
fn switch(shared: &Shared, sub: &Arc<Subscriber>, b: &Body) -> VrResult<Reply> {
    let list = required_streams(b, "streams")?;
    let mut wanted = Vec::new();
    for o in objects(&list, "streams")? {
        let feed = shared.ids.req(o, "feed")?;
        let mid = crate::json::req_str(o, "mid")?.to_owned();
        let sub_mid = crate::json::req_str(o, "sub_mid")?.to_owned();
        wanted.push((feed, mid, sub_mid, LayerReq::parse(o)?));
    }
    let mut changes = 0;
    {
        let rs = sub.room.state();
        let mut st = sub.state();
        for (feed, mid, sub_mid, layers) in wanted {
            let p = rs
                .participants
                .get(&feed)
                .filter(|p| p.is_publishing())
                .cloned()
                .ok_or_else(|| VrError::NoSuchFeed(format!("No such feed ({feed})")))?;
            check_e2ee(&p, st.e2ee)?;
            let ps = p
                .state()
                .streams
                .iter()
                .find(|s| s.mid == mid && !s.disabled)
                .cloned()
                .ok_or_else(|| {
                    VrError::NoSuchFeed(format!("No such mid '{mid}' in feed ({feed})"))
                })?;
            let Some(s) = st
                .streams
                .iter_mut()
                .find(|s| s.mid.as_deref() == Some(sub_mid.as_str()))
            else {
                return Err(VrError::NoSuchFeed(format!(
                    "No such mid '{sub_mid}' in subscription"
                )));
            };
            if s.kind != ps.kind {
                return Err(VrError::Invalid(format!(
                    "Can't switch from {} to {}",
                    s.kind.as_str(),
                    ps.kind.as_str()
                )));
            }
            if s.feed.as_ref().is_some_and(|f| Arc::ptr_eq(f, &p))
                && s.feed_mid.as_deref() == Some(mid.as_str())
            {
                continue;
            }
            if let (Some(link), Some(old)) = (s.link.take(), &s.feed) {
                if let Some(sm) = s.feed_mid.as_ref().and_then(|m| old.stream_media(m)) {
                    sm.detach(&link);
                }
            }
            s.feed = Some(p.clone());
            s.feed_mid = Some(mid);
            s.codec = ps.codec.clone();
            s.simulcast = ps.simulcast;
            s.svc = ps.svc;
            s.set_layers(&layers);
            changes += 1;
        }
        drop(rs);
        sub.sync(&mut st);
    }
    let st = sub.state();
    let mut ev = event(&sub.room.id_json());
    ev.insert("switched".into(), json!("ok"));
    ev.insert("changes".into(), json!(changes));
    ev.insert(
        "streams".into(),
        Value::Array(Subscriber::streams_json(&st)),
    );
    Ok(Some((ev, None)))
}
