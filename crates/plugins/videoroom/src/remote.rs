//! Remote publishers: a room on one server fed by a publisher on another (cascading).
//!
//! * Target side — `add_remote_publisher` makes a participant without a PeerConnection whose
//!   streams arrive as plain RTP on one UDP port, told apart by SSRC: stream `mindex`, layer
//!   `l` comes as SSRC `1000 + 10 × mindex + l` (Janus's numbering, so either server can feed
//!   the other); data-channel messages come in an RTP envelope (payload type 1 = binary). A
//!   second port takes RTCP from the source: its address is where keyframe requests go.
//! * Source side — `publish_remotely` adds RTP forwarders with those SSRCs to the target's
//!   port, and, with an `rtcp_port`, sends the target a receiver report every second from a
//!   socket whose incoming PLI/FIR become keyframe requests to the publisher.
//!
//! The sockets are read by tasks on the plugins' runtime (no thread per publisher); packets
//! then take the same path as a local publisher's.

use crate::error::{VrError, VrResult};
use crate::forward::{resolve, socket, NEXT_STREAM_ID};
use crate::json::{objects, opt_bool, opt_str, opt_u64, req_str, req_u64, Body};
use crate::media::StreamMedia;
use crate::publisher::{Phase, PubStream, Publisher};
use crate::sdp::SdpKind;
use crate::taps::Forwarder;
use crate::Shared;
use jano_plugin::rtp::{parse_rtp, SeqExt};
use jano_plugin::srtp::SrtpReceiver;
use jano_plugin::{DataMessage, HandleRef, Map, MediaKind, RtpExtensions, RtpPacket, Value};
use serde_json::json;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const BASE_SSRC: u32 = 1000;
pub const SSRC_STEP: u32 = 10;

/// The SSRC a remote publisher's stream (and simulcast layer) travels with.
pub fn ssrc_of(mindex: usize, layer: u8) -> u32 {
    BASE_SSRC + SSRC_STEP * mindex as u32 + u32::from(layer)
}

/// Codec names as `'static` (what [`RtpPacket::codec`] holds).
fn static_codec(name: &str) -> &'static str {
    jano_plugin::rtp::codec_name(name).unwrap_or("unknown")
}

/// The target side of a remote publisher: its sockets and where its source listens for RTCP.
pub struct RemoteFeed {
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    rtcp_peer: Mutex<Option<SocketAddr>>,
    stop: AtomicBool,
    pub received: AtomicU64,
    /// Checks and decrypts what arrives (`srtp_suite`/`srtp_crypto`; data comes plain).
    srtp: Option<Mutex<SrtpReceiver>>,
}

impl RemoteFeed {
    /// Asks the source for a keyframe (RTCP PLI) once it has told us where it is.
    pub fn request_keyframe(&self, mindex: usize) {
        let Some(peer) = *self.rtcp_peer.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 1];
        pli.extend_from_slice(&ssrc_of(mindex, 0).to_be_bytes());
        let _ = self.rtcp.send_to(&pli, peer);
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// One `publish_remotely` of a local publisher.
pub struct Remotized {
    pub remote_id: String,
    pub host: String,
    pub port: u16,
    pub rtcp_port: Option<u16>,
    stop: Arc<AtomicBool>,
}

impl Drop for Remotized {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

fn stream_from(o: &Body) -> VrResult<PubStream> {
    let kind = match req_str(o, "type")? {
        "audio" => SdpKind::Audio,
        "video" => SdpKind::Video,
        "data" => SdpKind::Data,
        _ => return Err(VrError::Invalid("Invalid element (type)".into())),
    };
    let mindex = req_u64(o, "mindex")? as usize;
    let mid = req_str(o, "mid")?.to_owned();
    let codec = opt_str(o, "codec")?.map(str::to_ascii_lowercase);
    let flag = |k: &'static str| opt_bool(o, k).map(|v| v.unwrap_or(false));
    let ext = |k: &'static str| opt_u64(o, k).map(|v| v.and_then(|v| u8::try_from(v).ok()));
    Ok(PubStream {
        kind,
        mindex,
        mid,
        disabled: flag("disabled")?,
        codec: match kind {
            SdpKind::Data => None,
            SdpKind::Audio => Some(codec.unwrap_or_else(|| "opus".into())),
            SdpKind::Video => Some(codec.unwrap_or_else(|| "vp8".into())),
        },
        description: opt_str(o, "description")?.map(str::to_owned),
        fec: flag("fec")?,
        dtx: flag("dtx")?,
        stereo: flag("stereo")?,
        h264_profile: opt_str(o, "h264_profile")?.map(str::to_owned),
        vp9_profile: opt_str(o, "vp9_profile")?.map(str::to_owned),
        simulcast: flag("simulcast")?,
        svc: flag("svc")?,
        moderated: false,
        audiolevel_ext_id: ext("audiolevel_ext_id")?,
        videoorient_ext_id: ext("videoorient_ext_id")?,
        playoutdelay_ext_id: ext("playoutdelay_ext_id")?,
        talking: false,
        media: None,
    })
}

fn streams_of(shared: &Shared, b: &Body) -> VrResult<Vec<PubStream>> {
    let list = crate::json::opt_array(b, "streams")?.ok_or(VrError::Missing("streams"))?;
    let mut out = Vec::new();
    for o in objects(list, "streams")? {
        let mut s = stream_from(o)?;
        if !s.disabled && s.kind != SdpKind::Data {
            s.svc &= s.codec.as_deref() == Some("vp9");
            s.media = Some(Arc::new(
                StreamMedia::new(
                    shared.router().as_ref(),
                    s.mindex,
                    s.mid.clone(),
                    s.kind == SdpKind::Video,
                    s.simulcast,
                )
                .with_svc(s.svc),
            ));
        }
        out.push(s);
    }
    out.sort_by_key(|s| s.mindex);
    Ok(out)
}

/// `add_remote_publisher` (target side).
pub fn add(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let srtp = match crate::forward::srtp_of(b)? {
        Some((suite, key)) => Some(Mutex::new(
            SrtpReceiver::new(suite, &key).map_err(|e| VrError::Invalid(e.to_string()))?,
        )),
        None => None,
    };
    let display = opt_str(b, "display")?.map(str::to_owned);
    let metadata = b.get("metadata").filter(|v| !v.is_null()).cloned();
    let wanted = shared.ids.opt(b, "id")?.filter(|i| !i.is_zero());
    let port = opt_u64(b, "port")?.unwrap_or(0);
    let iface = opt_str(b, "iface")?.unwrap_or("0.0.0.0").to_owned();
    let streams = streams_of(shared, b)?;
    let bind = |p: u64| -> VrResult<Arc<UdpSocket>> {
        let p = u16::try_from(p).map_err(|_| VrError::Invalid("Invalid element (port)".into()))?;
        let s = UdpSocket::bind((iface.as_str(), p))
            .map_err(|e| VrError::Unknown(format!("Error binding socket: {e}")))?;
        Ok(Arc::new(s))
    };
    let rtp = bind(port)?;
    let rtcp = bind(0)?;
    let local = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
    let (rtp_port, rtcp_port) = (local(&rtp), local(&rtcp));
    let feed = Arc::new(RemoteFeed {
        rtp,
        rtcp,
        rtcp_peer: Mutex::new(None),
        stop: AtomicBool::new(false),
        received: AtomicU64::new(0),
        srtp,
    });
    let p = {
        let mut rs = room.state();
        let id = rs.new_participant_id(wanted, shared.ids.strings)?;
        let href = HandleRef {
            session_id: 0,
            handle_id: 0,
            opaque_id: None,
            token: None,
        };
        let p = Arc::new(Publisher::new(
            shared.services.clone(),
            id.clone(),
            rand::random(),
            href,
            room.clone(),
            display,
            metadata,
        ));
        p.set_remote(feed.clone());
        {
            let mut st = p.state();
            st.streams = streams;
            st.phase = Phase::Active;
        }
        p.activate(None);
        rs.participants.insert(id, p.clone());
        p
    };
    spawn_reader(shared, &p, &feed);
    shared.announce(&p);
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    m.insert("room".into(), room.id_json());
    m.insert("id".into(), p.id.to_json());
    m.insert("ip".into(), json!(iface));
    m.insert("port".into(), json!(rtp_port));
    m.insert("rtcp_port".into(), json!(rtcp_port));
    Ok(m)
}

fn remote_of(shared: &Shared, b: &Body) -> VrResult<(Arc<crate::room::Room>, Arc<Publisher>)> {
    let room = shared.managed_room(b)?;
    let id = shared.ids.req(b, "id")?;
    let p = room
        .state()
        .participants
        .get(&id)
        .filter(|p| p.is_remote())
        .cloned()
        .ok_or_else(|| VrError::NoSuchFeed(format!("No such remote publisher ({id})")))?;
    Ok((room, p))
}

/// `update_remote_publisher`: new or changed streams, display, metadata.
pub fn update(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let (_room, p) = remote_of(shared, b)?;
    let streams = streams_of(shared, b)?;
    {
        let mut st = p.state();
        if let Some(d) = opt_str(b, "display")? {
            st.display = Some(d.to_owned());
        }
        if let Some(md) = b.get("metadata").filter(|v| !v.is_null()) {
            st.metadata = Some(md.clone());
        }
        for s in streams {
            match st.streams.iter_mut().find(|x| x.mindex == s.mindex) {
                Some(x) => *x = s,
                None => st.streams.push(s),
            }
        }
        st.streams.sort_by_key(|s| s.mindex);
    }
    p.activate(None);
    shared.announce(&p);
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    Ok(m)
}

/// `remove_remote_publisher`: the room hears `leaving`.
pub fn remove(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let (room, p) = remote_of(shared, b)?;
    shared.leave_quietly(&p);
    let mut ev = Map::new();
    ev.insert("videoroom".into(), json!("event"));
    ev.insert("room".into(), room.id_json());
    ev.insert("leaving".into(), p.id.to_json());
    room.notify(&*shared.services, Some(&p.id), &ev);
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    Ok(m)
}

/// Reads a remote publisher's RTP and RTCP ports until it goes away.
fn spawn_reader(shared: &Shared, p: &Arc<Publisher>, feed: &Arc<RemoteFeed>) {
    let (p2, f2) = (p.clone(), feed.clone());
    shared.services.spawn(Box::pin(async move {
        let Ok(sock) = f2.rtp.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        }) else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        let mut seqs: std::collections::HashMap<u32, SeqExt> = Default::default();
        loop {
            if f2.stop.load(Ordering::Acquire) || p2.has_left() {
                return;
            }
            let n =
                match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) | Err(_) => continue,
                };
            let Some(data) = buf.get(..n) else { continue };
            f2.received.fetch_add(1, Ordering::Relaxed);
            handle_rtp(&p2, data, &mut seqs, f2.srtp.as_ref());
        }
    }));
    let f3 = feed.clone();
    let p3 = p.clone();
    shared.services.spawn(Box::pin(async move {
        let Ok(sock) = f3.rtcp.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        }) else {
            return;
        };
        let mut buf = vec![0u8; 2048];
        loop {
            if f3.stop.load(Ordering::Acquire) || p3.has_left() {
                return;
            }
            if let Ok(Ok((_, from))) =
                tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
            {
                let first = f3
                    .rtcp_peer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(from)
                    .is_none();
                if first {
                    // The source is known now: its subscribers here need a keyframe.
                    let mindexes: Vec<usize> = p3
                        .state()
                        .streams
                        .iter()
                        .filter(|s| s.kind == SdpKind::Video)
                        .map(|s| s.mindex)
                        .collect();
                    for m in mindexes {
                        f3.request_keyframe(m);
                    }
                }
            }
        }
    }));
}

fn handle_rtp(
    p: &Publisher,
    data: &[u8],
    seqs: &mut std::collections::HashMap<u32, SeqExt>,
    srtp: Option<&Mutex<SrtpReceiver>>,
) {
    let Some(mut h) = parse_rtp(data) else { return };
    let Some(diff) = h.ssrc.checked_sub(BASE_SSRC) else {
        return;
    };
    let mindex = (diff / SSRC_STEP) as usize;
    let layer = (diff % SSRC_STEP) as u8;
    let is_data = p
        .state()
        .streams
        .iter()
        .any(|s| s.mindex == mindex && s.kind == SdpKind::Data);
    let plain;
    let data = match srtp {
        Some(rx) if !is_data => {
            match rx.lock().unwrap_or_else(|e| e.into_inner()).unprotect(data) {
                Ok(v) => plain = v,
                // Not from the server we share the key with, or damaged: dropped.
                Err(_) => return,
            }
            let Some(h2) = parse_rtp(&plain) else { return };
            h = h2;
            &plain[..]
        }
        _ => data,
    };
    let (kind, codec, simulcast) = {
        let st = p.state();
        let Some(s) = st
            .streams
            .iter()
            .find(|s| s.mindex == mindex && !s.disabled)
        else {
            return;
        };
        (s.kind, s.codec.clone(), s.simulcast)
    };
    if layer > 2 || (!simulcast && layer > 0) {
        return;
    }
    let payload = data.get(h.payload_at..h.payload_end).unwrap_or_default();
    let kind = match kind {
        SdpKind::Data => {
            p.incoming_data(&DataMessage {
                label: None,
                protocol: None,
                binary: h.pt != 0,
                buffer: payload,
            });
            return;
        }
        SdpKind::Audio => MediaKind::Audio,
        SdpKind::Video => MediaKind::Video,
    };
    let seq = seqs.entry(h.ssrc).or_default().extend(h.seq);
    let packet = RtpPacket {
        mindex,
        kind,
        pt: h.pt,
        codec: static_codec(codec.as_deref().unwrap_or("")),
        seq,
        timestamp: h.ts,
        marker: h.marker,
        ssrc: h.ssrc,
        substream: simulcast.then_some(layer),
        ext: RtpExtensions::default(),
        payload: Arc::from(payload),
        svc: None,
    };
    p.incoming_rtp(&packet);
}

// ---- source side ------------------------------------------------------------------------

/// `publish_remotely`: forward every stream of a local publisher to a remote one.
pub fn publish(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    if shared.lock_rtp_forward {
        shared.check_admin_key(b)?;
    }
    let room = shared.managed_room(b)?;
    let srtp = crate::forward::srtp_of(b)?;
    let pid = shared.ids.req(b, "publisher_id")?;
    let remote_id = req_str(b, "remote_id")?.to_owned();
    let host = req_str(b, "host")?.to_owned();
    let v6 = opt_str(b, "host_family")? == Some("ipv6");
    let port = req_u64(b, "port")?;
    let rtcp_port = opt_u64(b, "rtcp_port")?
        .and_then(|v| u16::try_from(v).ok())
        .filter(|v| *v > 0);
    let p = room.state().publisher(&pid, Publisher::is_publishing)?;
    if p.remotes().iter().any(|r| r.0 == remote_id) {
        return Err(VrError::IdExists(remote_id));
    }
    let addr = resolve(&host, port, v6)?;
    let sock = socket(&addr)?;
    let streams = p.state().streams.clone();
    for s in streams.iter().filter(|s| !s.disabled) {
        let layers: &[u8] = if s.simulcast { &[0, 1, 2] } else { &[0] };
        for &l in layers {
            p.taps.add_forwarder(Arc::new(Forwarder {
                stream_id: NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed),
                mindex: (s.kind != SdpKind::Data).then_some(s.mindex),
                kind: s.kind.as_str(),
                host: host.clone(),
                addr,
                ssrc: Some(ssrc_of(s.mindex, l)),
                pt: None,
                substream: s.simulcast.then_some(l),
                socket: sock.clone(),
                sent: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
                remote_id: Some(remote_id.clone()),
                envelope_seq: Default::default(),
                srtp: crate::forward::srtp_sender(srtp.as_ref(), s.kind.as_str())?,
            }));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    if let Some(rp) = rtcp_port {
        let target = SocketAddr::new(addr.ip(), rp);
        spawn_rtcp_link(shared, &p, target, stop.clone())?;
    }
    // The remote side starts with a keyframe.
    shared.services.send_pli(&p.href, None);
    p.add_remote(Remotized {
        remote_id: remote_id.clone(),
        host,
        port: addr.port(),
        rtcp_port,
        stop,
    });
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    m.insert("room".into(), room.id_json());
    m.insert("id".into(), p.id.to_json());
    m.insert("remote_id".into(), json!(remote_id));
    Ok(m)
}

/// Sends the target a receiver report every second (so it learns where to send keyframe
/// requests) and turns the PLI/FIR it sends back into keyframe requests to the publisher.
fn spawn_rtcp_link(
    shared: &Shared,
    p: &Arc<Publisher>,
    target: SocketAddr,
    stop: Arc<AtomicBool>,
) -> VrResult<()> {
    let std_sock = socket(&target)?;
    let p2 = p.clone();
    let services = shared.services.clone();
    shared.services.spawn(Box::pin(async move {
        let Ok(sock) = std_sock
            .try_clone()
            .and_then(tokio::net::UdpSocket::from_std)
        else {
            return;
        };
        let rr = [0x80u8, 201, 0, 1, 0, 0, 0, 1];
        let mut buf = vec![0u8; 2048];
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            if stop.load(Ordering::Acquire) || !p2.is_publishing() {
                return;
            }
            tokio::select! {
                _ = tick.tick() => {
                    let _ = sock.send_to(&rr, target).await;
                }
                r = sock.recv_from(&mut buf) => {
                    if let Ok((n, _)) = r {
                        if is_keyframe_request(buf.get(..n).unwrap_or_default()) {
                            services.send_pli(&p2.href, None);
                        }
                    }
                }
            }
        }
    }));
    Ok(())
}

/// Whether a compound RTCP packet holds a PLI or FIR.
fn is_keyframe_request(mut b: &[u8]) -> bool {
    while b.len() >= 4 {
        let fmt = b[0] & 0x1f;
        let pt = b[1];
        if pt == 206 && (fmt == 1 || fmt == 4) {
            return true;
        }
        let len = (usize::from(u16::from_be_bytes([b[2], b[3]])) + 1) * 4;
        b = b.get(len..).unwrap_or_default();
    }
    false
}

/// `unpublish_remotely`.
pub fn unpublish(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let pid = shared.ids.req(b, "publisher_id")?;
    let remote_id = req_str(b, "remote_id")?.to_owned();
    let p = room.state().publisher(&pid, |_| true)?;
    if !p.remove_remote(&remote_id) {
        return Err(VrError::NoSuchFeed(format!(
            "No such remotization ({remote_id})"
        )));
    }
    p.taps.remove_remote(&remote_id);
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    m.insert("room".into(), room.id_json());
    m.insert("id".into(), p.id.to_json());
    Ok(m)
}

/// `listremotes`.
pub fn list(shared: &Shared, b: &Body) -> VrResult<Map<String, Value>> {
    let room = shared.managed_room(b)?;
    let pid = shared.ids.req(b, "publisher_id")?;
    let p = room.state().publisher(&pid, |_| true)?;
    let list: Vec<Value> = p
        .remotes()
        .iter()
        .map(|(remote_id, host, port, rtcp_port)| {
            let mut o = Map::new();
            o.insert("remote_id".into(), json!(remote_id));
            o.insert("host".into(), json!(host));
            o.insert("port".into(), json!(port));
            if let Some(rp) = rtcp_port {
                o.insert("rtcp_port".into(), json!(rp));
            }
            Value::Object(o)
        })
        .collect();
    let mut m = Map::new();
    m.insert("videoroom".into(), json!("success"));
    m.insert("room".into(), room.id_json());
    m.insert("id".into(), p.id.to_json());
    m.insert("list".into(), Value::Array(list));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_parse_and_seq_extension() {
        let mut pkt = vec![0x90, 0xe0, 0xff, 0xff, 0, 0, 0, 9, 0, 0, 0x03, 0xf2];
        // One-word header extension, then the payload.
        pkt.extend_from_slice(&[0xbe, 0xde, 0, 1, 1, 2, 3, 4, 9, 9]);
        let h = parse_rtp(&pkt).expect("parses");
        assert_eq!(
            (h.pt, h.marker, h.seq, h.ts, h.ssrc),
            (96, true, 65535, 9, 1010)
        );
        assert_eq!(&pkt[h.payload_at..h.payload_end], &[9, 9]);
        assert!(parse_rtp(&[0x80, 0]).is_none());
        assert!(parse_rtp(&[0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xbe, 0xde, 0, 9]).is_none());
        let mut e = SeqExt::default();
        let a = e.extend(65535);
        let b = e.extend(0);
        let c = e.extend(65534);
        assert_eq!(b, a + 1);
        assert_eq!(c, a - 1);
        assert_eq!(ssrc_of(1, 2), 1012);
        assert!(is_keyframe_request(&[
            0x80, 201, 0, 1, 0, 0, 0, 1, 0x81, 206, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2
        ]));
        assert!(!is_keyframe_request(&[0x80, 201, 0, 1, 0, 0, 0, 1]));
    }
}
