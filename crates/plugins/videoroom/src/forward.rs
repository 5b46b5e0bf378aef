//! RTP forwarders: `rtp_forward`, `stop_rtp_forward`, `listforwarders`. A forwarder sends one
//! publisher stream (or one simulcast layer of it) as plain RTP to a UDP host and port.

use crate::error::{VrError, VrResult};
use crate::json::{objects, opt_array, opt_bool, opt_str, opt_u64, req_str, Body};
use crate::publisher::Publisher;
use crate::sdp::SdpKind;
use crate::taps::Forwarder;
use crate::Shared;
use jano_plugin::srtp::{SrtpSender, SrtpSuite};
use jano_plugin::{Map, Value};
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

pub(crate) static NEXT_STREAM_ID: AtomicU32 = AtomicU32::new(1);

fn locked(shared: &Shared, b: &Body) -> VrResult<()> {
    if shared.lock_rtp_forward {
        shared.check_admin_key(b)?;
    }
    Ok(())
}

fn publisher(shared: &Shared, b: &Body) -> VrResult<(Arc<crate::room::Room>, Arc<Publisher>)> {
    let room = shared.managed_room(b)?;
    let id = shared.ids.req(b, "publisher_id")?;
    let p = room.state().publisher(&id, Publisher::is_publishing)?;
    Ok((room, p))
}

pub(crate) fn resolve(host: &str, port: u64, v6: bool) -> VrResult<SocketAddr> {
    jano_plugin::udp::resolve(host, port, v6).map_err(|e| match e {
        jano_plugin::udp::TargetError::Port(_) => VrError::Invalid("Invalid element (port)".into()),
        jano_plugin::udp::TargetError::Host(h) => {
            VrError::Invalid(format!("Invalid host address '{h}'"))
        }
    })
}

pub(crate) fn socket(addr: &SocketAddr) -> VrResult<Arc<UdpSocket>> {
    jano_plugin::udp::sender_socket(addr)
        .map(Arc::new)
        .map_err(|e| VrError::Unknown(format!("Error binding socket: {e}")))
}

fn fwd_json(f: &Forwarder) -> Value {
    let mut m = Map::new();
    m.insert("stream_id".into(), json!(f.stream_id));
    m.insert("type".into(), json!(f.kind));
    m.insert("host".into(), json!(f.host));
    m.insert("port".into(), json!(f.addr.port()));
    if let Some(s) = f.ssrc {
        m.insert("ssrc".into(), json!(s));
    }
    if let Some(pt) = f.pt {
        m.insert("pt".into(), json!(pt));
    }
    if let Some(l) = f.substream {
        m.insert("substream".into(), json!(l));
    }
    if f.srtp.is_some() {
        m.insert("srtp".into(), json!(true));
    }
    Value::Object(m)
}

/// `srtp_suite` and `srtp_crypto` of a request: SRTP when both are there (as in Janus), 430
/// for a suite other than 32 or 80 or a key that is not 30 bytes of base64.
pub(crate) fn srtp_of(b: &Body) -> VrResult<Option<(SrtpSuite, String)>> {
    let suite = opt_u64(b, "srtp_suite")?.map(|v| i64::try_from(v).unwrap_or(i64::MAX));
    let crypto = opt_str(b, "srtp_crypto")?;
    let (Some(suite), Some(crypto)) = (suite, crypto) else {
        return Ok(None);
    };
    let suite = SrtpSuite::from_janus(suite).map_err(|e| VrError::Invalid(e.to_string()))?;
    SrtpSender::new(suite, crypto).map_err(|e| VrError::Invalid(e.to_string()))?;
    Ok(Some((suite, crypto.to_owned())))
}

/// The SRTP context of one forwarder of kind `kind` (data goes plain).
pub(crate) fn srtp_sender(
    srtp: Option<&(SrtpSuite, String)>,
    kind: &str,
) -> VrResult<Option<std::sync::Mutex<SrtpSender>>> {
    match srtp {
        Some((suite, key)) if kind != "data" => SrtpSender::new(*suite, key)
            .map(|s| Some(std::sync::Mutex::new(s)))
            .map_err(|e| VrError::Invalid(e.to_string())),
        _ => Ok(None),
    }
}

struct Spec {
    mindex: Option<usize>,
    kind: &'static str,
    host: String,
    port: u64,
    ssrc: Option<u32>,
    pt: Option<u8>,
    substream: Option<u8>,
}

pub fn start(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    locked(shared, b)?;
    // Janus checks the SRTP suite before it looks for the room.
    let srtp = srtp_of(b)?;
    let (room, p) = publisher(shared, b)?;
    let host = req_str(b, "host")?.to_owned();
    let v6 = opt_str(b, "host_family")? == Some("ipv6");
    let streams = p.state().streams.clone();
    let find = |kind: SdpKind| streams.iter().find(|s| s.kind == kind && !s.disabled);
    let u32_of = |o: &Body, k: &'static str| -> VrResult<Option<u32>> {
        Ok(opt_u64(o, k)?.map(|v| v as u32))
    };
    let mut specs = Vec::new();
    let legacy = opt_array(b, "streams")?.is_none();
    if let Some(list) = opt_array(b, "streams")? {
        for o in objects(list, "streams")? {
            let mid = req_str(o, "mid")?;
            let s = streams
                .iter()
                .find(|s| s.mid == mid)
                .ok_or_else(|| VrError::NoSuchFeed(format!("No such stream ({mid})")))?;
            let host = opt_str(o, "host")?.unwrap_or(&host).to_owned();
            let port = crate::json::req_u64(o, "port")?;
            let kind = s.kind.as_str();
            let mindex = (s.kind != SdpKind::Data).then_some(s.mindex);
            let ssrc = u32_of(o, "ssrc")?;
            let pt = opt_u64(o, "pt")?.map(|v| v as u8);
            if let Some(p2) = opt_u64(o, "port_2")? {
                // One forwarder per layer.
                specs.push(Spec {
                    mindex,
                    kind,
                    host: host.clone(),
                    port,
                    ssrc,
                    pt,
                    substream: Some(0),
                });
                specs.push(Spec {
                    mindex,
                    kind,
                    host: host.clone(),
                    port: p2,
                    ssrc: u32_of(o, "ssrc_2")?,
                    pt: opt_u64(o, "pt_2")?.map(|v| v as u8),
                    substream: Some(1),
                });
                if let Some(p3) = opt_u64(o, "port_3")? {
                    specs.push(Spec {
                        mindex,
                        kind,
                        host: host.clone(),
                        port: p3,
                        ssrc: u32_of(o, "ssrc_3")?,
                        pt: opt_u64(o, "pt_3")?.map(|v| v as u8),
                        substream: Some(2),
                    });
                }
            } else {
                let sim = opt_bool(o, "simulcast")?.unwrap_or(false) && s.simulcast;
                specs.push(Spec {
                    mindex,
                    kind,
                    host,
                    port,
                    ssrc,
                    pt,
                    substream: sim.then_some(2).or(s.simulcast.then_some(2)),
                });
            }
        }
    } else {
        for (kind, prefix) in [
            (SdpKind::Audio, "audio"),
            (SdpKind::Video, "video"),
            (SdpKind::Data, "data"),
        ] {
            let port_key: &'static str = match kind {
                SdpKind::Audio => "audio_port",
                SdpKind::Video => "video_port",
                SdpKind::Data => "data_port",
            };
            let Some(port) = opt_u64(b, port_key)? else {
                continue;
            };
            let Some(s) = find(kind) else { continue };
            let mindex = (kind != SdpKind::Data).then_some(s.mindex);
            let (ssrc_k, pt_k): (&'static str, &'static str) = match kind {
                SdpKind::Audio => ("audio_ssrc", "audio_pt"),
                _ => ("video_ssrc", "video_pt"),
            };
            let _ = prefix;
            let ssrc = if kind == SdpKind::Data {
                None
            } else {
                u32_of(b, ssrc_k)?
            };
            let pt = if kind == SdpKind::Data {
                None
            } else {
                opt_u64(b, pt_k)?.map(|v| v as u8)
            };
            let layered = kind == SdpKind::Video && s.simulcast;
            specs.push(Spec {
                mindex,
                kind: kind.as_str(),
                host: host.clone(),
                port,
                ssrc,
                pt,
                substream: layered.then_some(2),
            });
        }
    }
    if specs.is_empty() {
        return Err(VrError::Missing("streams"));
    }
    let mut made = Vec::new();
    for sp in specs {
        let addr = resolve(&sp.host, sp.port, v6)?;
        let f = Arc::new(Forwarder {
            stream_id: NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed),
            mindex: sp.mindex,
            kind: sp.kind,
            host: sp.host,
            addr,
            ssrc: sp.ssrc,
            pt: sp.pt,
            substream: sp.substream,
            socket: socket(&addr)?,
            sent: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            remote_id: None,
            envelope_seq: Default::default(),
            srtp: srtp_sender(srtp.as_ref(), sp.kind)?,
        });
        made.push(f);
    }
    for f in &made {
        p.taps.add_forwarder(f.clone());
        if let Some(m) = f.mindex.filter(|_| f.kind == "video") {
            // A forwarder starts with a keyframe (Janus waits for the next natural one).
            shared.services.send_pli(&p.href, Some(m));
        }
    }
    let mut out = Map::new();
    out.insert("videoroom".into(), json!("rtp_forward"));
    out.insert("room".into(), room.id_json());
    out.insert("publisher_id".into(), p.id.to_json());
    if legacy {
        let mut rs = Map::new();
        rs.insert("host".into(), json!(host));
        for f in &made {
            let suffix = match f.substream {
                Some(1)
                    if f.kind == "video"
                        && made.iter().filter(|x| x.kind == "video").count() > 1 =>
                {
                    "_2"
                }
                _ => "",
            };
            rs.insert(format!("{}_stream_id{suffix}", f.kind), json!(f.stream_id));
            rs.insert(format!("{}{suffix}", f.kind), json!(f.addr.port()));
        }
        rs.insert("warning".into(), json!("deprecated_api"));
        out.insert("rtp_stream".into(), Value::Object(rs));
    } else {
        out.insert(
            "forwarders".into(),
            Value::Array(made.iter().map(|f| fwd_json(f)).collect()),
        );
    }
    Ok(out)
}

pub fn stop(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    locked(shared, b)?;
    let room = shared.managed_room(b)?;
    let id = shared.ids.req(b, "publisher_id")?;
    let stream_id = crate::json::req_u64(b, "stream_id")?;
    let p = room.state().publisher(&id, |_| true)?;
    let gone = u32::try_from(stream_id).is_ok_and(|s| p.taps.remove_forwarder(s));
    if !gone {
        return Err(VrError::NoSuchFeed(format!("No such stream ({stream_id})")));
    }
    let mut out = Map::new();
    out.insert("videoroom".into(), json!("stop_rtp_forward"));
    out.insert("room".into(), room.id_json());
    out.insert("publisher_id".into(), p.id.to_json());
    out.insert("stream_id".into(), json!(stream_id));
    Ok(out)
}

pub fn list(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let pubs: Vec<Arc<Publisher>> = room.state().participants.values().cloned().collect();
    let list: Vec<Value> = pubs
        .iter()
        .filter_map(|p| {
            let fw = p.taps.forwarders();
            (!fw.is_empty()).then(|| {
                json!({
                    "publisher_id": p.id.to_json(),
                    "forwarders": fw.iter().map(|f| fwd_json(f)).collect::<Vec<_>>(),
                })
            })
        })
        .collect();
    let mut out = Map::new();
    out.insert("videoroom".into(), json!("forwarders"));
    out.insert("room".into(), room.id_json());
    out.insert("publishers".into(), Value::Array(list));
    Ok(out)
}
