//! RTP forwarders of a room's mix (`rtp_forward`, `stop_rtp_forward`, `listforwarders`, and
//! the `rtp_forward_*` keys of a room in the configuration file): the whole mix, or one
//! group's, encoded once per tick per (group, codec) however many forwarders take it, sent
//! from the mixing thread on a non-blocking socket, optionally SRTP-protected.

use crate::codec::{Codec, Encoder, EncoderSettings};
use crate::error::{AbError, AbResult};
use crate::manage::obj;
use crate::room::{MixState, Room};
use crate::Shared;
use jano_plugin::fields::{opt_bool, opt_str, opt_u64, req_str, Body};
use jano_plugin::srtp::{SrtpSender, SrtpSuite};
use jano_plugin::udp::TargetError;
use jano_plugin::{Map, MediaKind, RtpPacket, Value};
use serde_json::json;
use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub struct MixForwarder {
    pub stream_id: u32,
    /// The group whose mix it sends (by its position in the room's `groups`), or the whole mix.
    pub group: Option<(usize, String)>,
    pub addr: SocketAddr,
    pub codec: Codec,
    pub pt: u8,
    pub ssrc: u32,
    pub always_on: bool,
    socket: UdpSocket,
    srtp: Option<SrtpSender>,
    seq: u16,
    ts: u32,
    pub sent: u64,
    pub dropped: u64,
}

impl MixForwarder {
    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("stream_id".into(), json!(self.stream_id));
        if let Some((_, g)) = &self.group {
            m.insert("group".into(), json!(g));
        }
        m.insert("ip".into(), json!(self.addr.ip().to_string()));
        m.insert("port".into(), json!(self.addr.port()));
        m.insert("ssrc".into(), json!(self.ssrc));
        m.insert("codec".into(), json!(self.codec.name()));
        m.insert("ptype".into(), json!(self.pt));
        if self.srtp.is_some() {
            m.insert("srtp".into(), json!(true));
        }
        m.insert("always_on".into(), json!(self.always_on));
        Value::Object(m)
    }
}

/// What a forwarder is asked to be (from a request or the configuration file).
pub struct Spec {
    pub group: Option<String>,
    pub ssrc: Option<u32>,
    pub codec: Codec,
    pub pt: u8,
    pub host: String,
    pub port: u64,
    pub v6: bool,
    pub srtp: Option<(SrtpSuite, String)>,
    pub always_on: bool,
    pub stream_id: Option<u32>,
}

fn target_error(e: TargetError) -> AbError {
    match e {
        TargetError::Port(p) => AbError::Invalid(format!("Invalid port number ({p})")),
        TargetError::Host(h) => AbError::Invalid(format!("Could not resolve address ({h})...")),
    }
}

/// Adds a forwarder to a room; its stream id.
pub fn add(room: &Room, spec: Spec) -> AbResult<(u32, SocketAddr)> {
    let addr = jano_plugin::udp::resolve(&spec.host, spec.port, spec.v6).map_err(target_error)?;
    let group = match &spec.group {
        None => None,
        Some(g) => {
            let groups = room.state().cfg.groups.clone();
            match groups.iter().position(|x| x == g) {
                Some(i) => Some((i, g.clone())),
                None => return Err(AbError::NoSuchGroup("No such group".into())),
            }
        }
    };
    let socket = jano_plugin::udp::sender_socket(&addr)
        .map_err(|_| AbError::Unknown("Could not open UDP socket for RTP forwarder".into()))?;
    let srtp = match &spec.srtp {
        Some((suite, crypto)) => {
            Some(SrtpSender::new(*suite, crypto).map_err(|e| AbError::Invalid(e.to_string()))?)
        }
        None => None,
    };
    let mut mix = room.mix_state();
    let stream_id = match spec.stream_id {
        Some(id) if !mix.forwarders.iter().any(|f| f.stream_id == id) => id,
        _ => loop {
            let id = rand::random::<u32>().max(1);
            if !mix.forwarders.iter().any(|f| f.stream_id == id) {
                break id;
            }
        },
    };
    mix.forwarders.push(MixForwarder {
        stream_id,
        group,
        addr,
        codec: spec.codec,
        pt: spec.pt,
        // Janus uses the stream id when no SSRC is given.
        ssrc: spec.ssrc.filter(|s| *s != 0).unwrap_or(stream_id),
        always_on: spec.always_on,
        socket,
        srtp,
        seq: 0,
        ts: 0,
        sent: 0,
        dropped: 0,
    });
    count_always_on(room, &mix);
    Ok((stream_id, addr))
}

fn count_always_on(room: &Room, mix: &MixState) {
    let n = mix.forwarders.iter().filter(|f| f.always_on).count();
    room.always_on.store(n, Ordering::Release);
}

/// Janus's `rtp_forward_*` keys of a configured room: one forwarder, if they name a target.
pub fn spec_from_group(g: &jano_config::Group) -> Option<Spec> {
    let host = g.get_str("rtp_forward_host")?;
    let port = u64::try_from(g.get_int("rtp_forward_port")?).ok()?;
    let codec = g
        .get_str("rtp_forward_codec")
        .and_then(|c| Codec::parse(&c))
        .unwrap_or(Codec::Opus);
    let srtp = match (
        g.get_int("rtp_forward_srtp_suite"),
        g.get_str("rtp_forward_srtp_crypto"),
    ) {
        (Some(suite), Some(crypto)) => SrtpSuite::from_janus(suite).ok().map(|s| (s, crypto)),
        _ => None,
    };
    Some(Spec {
        group: g.get_str("rtp_forward_group"),
        ssrc: g
            .get_int("rtp_forward_ssrc")
            .and_then(|v| u32::try_from(v).ok()),
        codec,
        pt: fixed_pt(
            codec,
            g.get_int("rtp_forward_ptype")
                .and_then(|v| u8::try_from(v).ok())
                .filter(|v| *v < 128)
                .unwrap_or(100),
        ),
        host,
        port,
        v6: g.get_str("rtp_forward_host_family").as_deref() == Some("ipv6"),
        srtp,
        always_on: g.get_bool("rtp_forward_always_on").unwrap_or(false),
        stream_id: g
            .get_int("rtp_forward_id")
            .and_then(|v| u32::try_from(v).ok())
            .filter(|v| *v > 0),
    })
}

/// G.711 always goes out with its static payload type.
fn fixed_pt(codec: Codec, pt: u8) -> u8 {
    match codec {
        Codec::Opus => pt,
        Codec::Pcmu => 0,
        Codec::Pcma => 8,
    }
}

/// `lock_rtp_forward`: the plugin's admin key is needed to add or remove forwarders.
fn locked(shared: &Shared, b: &Body) -> AbResult<()> {
    if shared.lock_rtp_forward {
        shared.check_admin_key(b)?;
    }
    Ok(())
}

pub fn rtp_forward(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let group = opt_str(b, "group")?;
    let ssrc = opt_u64(b, "ssrc")?;
    let codec_name = opt_str(b, "codec")?;
    let ptype = opt_u64(b, "ptype")?;
    let port = jano_plugin::fields::req_u64(b, "port")?;
    let host = req_str(b, "host")?;
    let family = opt_str(b, "host_family")?;
    let suite = opt_u64(b, "srtp_suite")?;
    let crypto = opt_str(b, "srtp_crypto")?;
    let always_on = opt_bool(b, "always_on")?.unwrap_or(false);
    shared.ids.req(b, "room")?;
    locked(shared, b)?;
    let codec = match codec_name {
        None => Codec::Opus,
        Some(c) => Codec::parse(&c.to_ascii_lowercase())
            .ok_or_else(|| AbError::Invalid(format!("Unsupported codec ({c})")))?,
    };
    if port == 0 {
        return Err(AbError::Invalid("Invalid port number (0)".into()));
    }
    let v6 = match family {
        None | Some("ipv4") => false,
        Some("ipv6") => true,
        Some(f) => {
            return Err(AbError::Invalid(format!(
                "Unsupported protocol family ({f})"
            )))
        }
    };
    let srtp = match (suite, crypto) {
        (Some(s), Some(c)) => {
            let s = SrtpSuite::from_janus(i64::try_from(s).unwrap_or(i64::MAX))
                .map_err(|_| AbError::Invalid(format!("Invalid SRTP suite ({s})")))?;
            Some((s, c.to_owned()))
        }
        _ => None,
    };
    let room = shared.managed_room(b)?;
    let spec = Spec {
        group: group
            .filter(|_| !room.state().cfg.groups.is_empty())
            .map(str::to_owned),
        ssrc: ssrc.and_then(|s| u32::try_from(s).ok()),
        codec,
        pt: fixed_pt(
            codec,
            ptype.and_then(|p| u8::try_from(p).ok()).unwrap_or(100) & 0x7f,
        ),
        host: host.to_owned(),
        port,
        v6,
        srtp,
        always_on,
        stream_id: None,
    };
    let group_name = spec.group.clone();
    let (stream_id, addr) = add(&room, spec)?;
    shared.pool.wake();
    let mut out = obj(json!({"audiobridge": "success", "room": room.id_json()}));
    if let Some(g) = group_name {
        out.insert("group".into(), json!(g));
    }
    out.insert("stream_id".into(), json!(stream_id));
    out.insert("host".into(), json!(addr.ip().to_string()));
    out.insert("port".into(), json!(addr.port()));
    Ok(out)
}

pub fn stop_rtp_forward(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    let stream_id = jano_plugin::fields::req_u64(b, "stream_id")?;
    shared.ids.req(b, "room")?;
    locked(shared, b)?;
    let room = shared.managed_room(b)?;
    {
        let mut mix = room.mix_state();
        mix.forwarders
            .retain(|f| u64::from(f.stream_id) != stream_id);
        count_always_on(&room, &mix);
    }
    Ok(obj(
        json!({"audiobridge": "success", "room": room.id_json(), "stream_id": stream_id}),
    ))
}

pub fn listforwarders(shared: &Shared, b: &Body) -> AbResult<Map<String, Value>> {
    shared.ids.req(b, "room")?;
    let room = shared.managed_room(b)?;
    let list: Vec<Value> = room
        .mix_state()
        .forwarders
        .iter()
        .map(MixForwarder::to_json)
        .collect();
    Ok(obj(
        json!({"audiobridge": "forwarders", "room": room.id_json(), "rtp_forwarders": list}),
    ))
}

/// Sends this tick's mix to the forwarders: `mixes` has the whole mix first, then each
/// group's. Each (group, codec) is encoded once.
pub fn send(
    mix: &mut MixState,
    mixes: &[&[i32]],
    rate: u32,
    stereo: bool,
    idle: bool,
    pcm: &mut Vec<i16>,
    buf: &mut Vec<u8>,
) {
    if mix.forwarders.is_empty() {
        return;
    }
    let mut encoded: HashMap<(Option<usize>, Codec), Arc<[u8]>> = HashMap::new();
    let MixState {
        forwarders,
        fwd_encoders,
        ..
    } = mix;
    for f in forwarders.iter_mut().filter(|f| !idle || f.always_on) {
        let g = f.group.as_ref().map(|(i, _)| *i);
        let key = (g, f.codec);
        let payload = match encoded.get(&key) {
            Some(p) => p.clone(),
            None => {
                let Some(total) = mixes.get(g.map_or(0, |i| i + 1)) else {
                    continue;
                };
                pcm.resize(total.len(), 0);
                crate::mix::listener_mix(total, None, pcm);
                let enc = match fwd_encoders.entry(key) {
                    std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let settings = EncoderSettings {
                            codec: f.codec,
                            bitrate: 0,
                            complexity: 4,
                            expected_loss: 0,
                            stereo,
                        };
                        match Encoder::new(settings, rate) {
                            Ok(e) => v.insert(e),
                            Err(_) => continue,
                        }
                    }
                };
                let mut out = Vec::new();
                if enc.encode(pcm, &mut out).is_none() {
                    continue;
                }
                let p: Arc<[u8]> = Arc::from(out);
                encoded.insert(key, p.clone());
                p
            }
        };
        f.seq = f.seq.wrapping_add(1);
        f.ts = f.ts.wrapping_add(f.codec.clock_rate() / 50);
        let packet = RtpPacket {
            mindex: 0,
            kind: MediaKind::Audio,
            pt: f.pt,
            codec: f.codec.name(),
            seq: u64::from(f.seq),
            timestamp: f.ts,
            marker: false,
            ssrc: f.ssrc,
            substream: None,
            ext: Default::default(),
            payload,
            svc: None,
        };
        jano_plugin::udp::serialize_rtp(&packet, None, None, buf);
        let res = match f.srtp.as_mut() {
            Some(s) => match s.protect(buf) {
                Ok(p) => f.socket.send_to(&p, f.addr),
                Err(_) => {
                    f.dropped += 1;
                    continue;
                }
            },
            None => f.socket.send_to(buf, f.addr),
        };
        match res {
            Ok(_) => f.sent += 1,
            Err(_) => f.dropped += 1,
        }
    }
}
