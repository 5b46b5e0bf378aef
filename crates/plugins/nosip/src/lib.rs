//! `janus.plugin.nosip`: a WebRTC PeerConnection bridged to a plain RTP (or SDES-SRTP) peer,
//! with the signalling left to the application, wire-compatible with Janus's NoSIP.
//!
//! The application hands the plugin the WebRTC user's JSEP (`generate`) and gets a barebone SDP
//! for its legacy peer, and hands it the peer's SDP (`process`) to get a JSEP for the user.
//!
//! Modules: [`sdp`] (the barebone SDP), [`media`] (the plain side's sockets), [`handle`] (a
//! handle's state and media callbacks), [`error`] (codes).
//!
//! Threads: requests on the signalling path (binding sockets does not block); what the user
//! sends goes to the peer from the handle's media worker; the peer's packets are read by a task
//! of the plugins' runtime per leg (no thread per call, as Janus has).

pub mod error;
pub mod handle;
pub mod media;
pub mod sdp;

use base64::Engine;
use error::{NsError, NsResult};
use handle::{Call, NsHandle, Recorders};
use jano_plugin::fields::{opt_bool, opt_str, req_str, Body};
use jano_plugin::record::RecKind;
use jano_plugin::srtp::{SrtcpSender, SrtpReceiver, SrtpSender, SrtpSuite};
use jano_plugin::{
    session_arc, CoreServices, HandleRef, Jcfg, Jsep, JsepType, LocalJsep, Map, MediaKind,
    MediaPrefs, OfferMedia, Plugin, PluginInfo, PluginResult, SessionRef, Value,
};
use media::{Leg, ToUser};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

pub const PACKAGE: &str = "janus.plugin.nosip";

const INFO: PluginInfo = PluginInfo {
    package: PACKAGE,
    name: "JANUS NoSIP plugin",
    author: "Meetecho s.r.l.",
    description: "This is a simple RTP bridging plugin that leaves signalling details (e.g., SIP) up to the application.",
    version: 1,
    version_string: "0.0.1",
};

pub struct Shared {
    pub services: Arc<dyn CoreServices>,
    /// Where the plain sockets are bound, and the address written in the SDP.
    pub local_ip: IpAddr,
    pub sdp_ip: IpAddr,
    pub ports: jano_plugin::udp::PortRange,
}

pub struct NoSip {
    shared: Arc<Shared>,
}

/// The address this host uses on its default route (a UDP `connect` only looks it up), else
/// loopback: where plain sockets go without `local_ip`.
fn default_ip() -> IpAddr {
    jano_plugin::udp::route_ip(SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 9)))
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

impl NoSip {
    pub fn new(config: Option<&Jcfg>, services: Arc<dyn CoreServices>) -> NoSip {
        let general = config.and_then(|c| c.root.group("general"));
        let ip = |k: &str| {
            general
                .and_then(|g| g.get_str(k))
                .and_then(|v| v.parse::<IpAddr>().ok())
        };
        let local_ip = ip("local_ip").unwrap_or_else(default_ip);
        NoSip {
            shared: Arc::new(Shared {
                services,
                local_ip,
                sdp_ip: ip("sdp_ip").unwrap_or(local_ip),
                ports: jano_plugin::udp::PortRange::parse(
                    general.and_then(|g| g.get_str("rtp_port_range")).as_deref(),
                ),
            }),
        }
    }

    /// The [`jano_plugin::PluginFactory`].
    pub fn factory(
        config: Option<&Jcfg>,
        services: Arc<dyn CoreServices>,
    ) -> Result<Arc<dyn Plugin>, String> {
        Ok(Arc::new(NoSip::new(config, services)))
    }
}

fn result(r: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("nosip".into(), json!("event"));
    m.insert("result".into(), r);
    m
}

/// `srtp` and `srtp_profile`: (negotiate SDES, require it, suite name).
fn srtp_options(b: &Body) -> NsResult<(bool, bool, &'static str)> {
    let (on, required) = match opt_str(b, "srtp")? {
        None => (false, false),
        Some(s) if s.eq_ignore_ascii_case("sdes_optional") => (true, false),
        Some(s) if s.eq_ignore_ascii_case("sdes_mandatory") => (true, true),
        Some(_) => {
            return Err(NsError::Invalid(
                "Invalid element (srtp can only be sdes_optional or sdes_mandatory)".into(),
            ))
        }
    };
    let suite = match opt_str(b, "srtp_profile")? {
        None | Some("AES_CM_128_HMAC_SHA1_80") => "AES_CM_128_HMAC_SHA1_80",
        Some("AES_CM_128_HMAC_SHA1_32") => "AES_CM_128_HMAC_SHA1_32",
        Some(_) => {
            return Err(NsError::Invalid(
                "Invalid element (unsupported SRTP profile)".into(),
            ))
        }
    };
    Ok((on, required, suite))
}

fn suite_of(name: &str) -> Option<SrtpSuite> {
    match name {
        "AES_CM_128_HMAC_SHA1_80" => Some(SrtpSuite::Sha1_80),
        "AES_CM_128_HMAC_SHA1_32" => Some(SrtpSuite::Sha1_32),
        _ => None,
    }
}

/// A random UUID (version 4) naming a handle's call in `generated`/`processed`.
fn unique_id() -> String {
    let b: [u8; 16] = rand::random();
    let h = |r: std::ops::Range<usize>| {
        b.get(r)
            .unwrap_or_default()
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect::<String>()
    };
    let v = format!("{:x}{}", 4, &h(6..8)[1..]);
    let variant = format!("{:x}{}", 8 | (b[8] & 0x3), &h(8..10)[1..]);
    format!("{}-{}-{}-{}-{}", h(0..4), h(4..6), v, variant, h(10..16))
}

/// A fresh SDES master key and salt, base64 as `inline:` carries it.
fn new_key() -> String {
    let key: [u8; 30] = rand::random();
    base64::engine::general_purpose::STANDARD.encode(key)
}

fn kind_of(l: &sdp::Line) -> MediaKind {
    if l.video {
        MediaKind::Video
    } else {
        MediaKind::Audio
    }
}

impl NoSip {
    fn leg(&self, kind: MediaKind) -> NsResult<Arc<Leg>> {
        Leg::open(kind, &self.shared.ports, self.shared.local_ip)
            .map(Arc::new)
            .map_err(|_| NsError::Io)
    }

    /// Writes our barebone SDP from what the call holds.
    fn barebone(&self, call: &mut Call, sides: &[(MediaKind, bool, bool)]) -> String {
        if call.sdp_session == 0 {
            call.sdp_session = (rand::random::<u64>() >> 12).max(1);
        }
        call.sdp_version += 1;
        let mut lines = Vec::new();
        for (kind, sends, receives) in sides {
            let (leg, codecs, key, tag) = match kind {
                MediaKind::Audio => (
                    &call.audio,
                    &call.audio_codecs,
                    &call.audio_key,
                    call.audio_tag,
                ),
                MediaKind::Video => (
                    &call.video,
                    &call.video_codecs,
                    &call.video_key,
                    call.video_tag,
                ),
            };
            let Some(leg) = leg else { continue };
            lines.push(sdp::Local {
                video: *kind == MediaKind::Video,
                port: leg.local_port,
                codecs,
                sends: *sends,
                receives: *receives,
                crypto: key
                    .as_deref()
                    .filter(|_| call.srtp_local)
                    .map(|k| (tag.max(1), call.srtp_suite, k)),
            });
        }
        sdp::write(
            call.sdp_session,
            call.sdp_version,
            self.shared.sdp_ip,
            // Janus says RTP/SAVP only when SDES is mandatory (optional: RTP/AVP with keys).
            call.srtp_local && call.require_srtp,
            &lines,
        )
    }

    /// The peer's side of the plain SDP applies: where it is, its codecs, its keys; media can
    /// flow.
    fn connect(&self, h: &Arc<NsHandle>, call: &mut Call, peer: &[sdp::Line]) -> NsResult<()> {
        for l in peer.iter().filter(|l| l.port != 0) {
            let Some(leg) = call.leg(kind_of(l)).cloned() else {
                continue;
            };
            let ip = l
                .addr
                .ok_or(NsError::InvalidSdp("No remote IP addresses"))?;
            let rtp = SocketAddr::new(ip, l.port);
            let rtcp = SocketAddr::new(ip, l.rtcp_port.unwrap_or(l.port.saturating_add(1)));
            let mut st = leg.state();
            st.peer = Some((rtp, rtcp));
            st.peer_receives = l.receives;
            st.pts = l
                .codecs
                .iter()
                .filter_map(|c| Some((c.pt, c.name?)))
                .collect();
            if call.srtp_local {
                let key = match leg.kind {
                    MediaKind::Audio => call.audio_key.clone(),
                    MediaKind::Video => call.video_key.clone(),
                };
                st.srtcp_out = key.as_deref().and_then(|k| SrtcpSender::new(k).ok());
                st.srtp_out =
                    key.and_then(|k| SrtpSender::new(suite_of(call.srtp_suite)?, &k).ok());
            }
            st.srtp_in = l
                .crypto
                .iter()
                .find_map(|(_, suite, key)| SrtpReceiver::new(suite_of(suite)?, key).ok());
        }
        if !call.ready {
            call.ready = true;
            let svc = &*self.shared.services;
            for (i, leg) in call.legs().enumerate() {
                let rec = match leg.kind {
                    MediaKind::Audio => h.rec.peer_audio.clone(),
                    MediaKind::Video => h.rec.peer_video.clone(),
                };
                let sink = Arc::new(ToUser {
                    services: self.shared.services.clone(),
                    handle: h.href.clone(),
                    rec,
                });
                media::spawn_reader(svc, leg, i, sink);
            }
        }
        Ok(())
    }

    fn generate(
        &self,
        h: &Arc<NsHandle>,
        b: &Body,
        jsep: Option<Jsep>,
    ) -> NsResult<(Value, Option<LocalJsep>)> {
        opt_str(b, "info")?;
        let (srtp, require, suite) = srtp_options(b)?;
        opt_bool(b, "update")?;
        let Some(jsep) = jsep.filter(|j| !j.sdp.is_empty()) else {
            return Err(NsError::MissingSdp("Missing SDP".into()));
        };
        if jsep.sdp.contains("m=application") {
            return Err(NsError::MissingSdp(
                "The NoSIP plugin does not support DataChannels".into(),
            ));
        }
        if jsep.extra.get("e2ee") == Some(&Value::Bool(true)) {
            return Err(NsError::Invalid(
                "Media encryption unsupported by this plugin".into(),
            ));
        }
        let user = sdp::parse(&jsep.sdp);
        let mut call = h.call();
        let offer = jsep.kind == JsepType::Offer;
        if offer {
            // The user calls: our offer to the peer carries the user's codecs.
            let update = call.sdp_session != 0;
            let mut sides = Vec::new();
            for l in user.iter().filter(|l| l.port != 0) {
                let kind = kind_of(l);
                if call.leg(kind).is_none() {
                    let leg = self.leg(kind)?;
                    match kind {
                        MediaKind::Audio => call.audio = Some(leg),
                        MediaKind::Video => call.video = Some(leg),
                    }
                }
                let codecs = l.plain_codecs();
                match kind {
                    MediaKind::Audio => call.audio_codecs = codecs,
                    MediaKind::Video => call.video_codecs = codecs,
                }
                sides.push((kind, l.sends, l.receives));
            }
            if !update {
                call.srtp_local = srtp;
                call.require_srtp = require;
                call.srtp_suite = suite;
                if srtp {
                    call.audio_key = Some(new_key());
                    call.video_key = Some(new_key());
                }
            }
            let text = self.barebone(&mut call, &sides);
            drop(call);
            h.publish_legs();
            let mut r = json!({"event": "generated", "type": "offer", "sdp": text, "unique_id": h.unique_id});
            if update {
                r["update"] = json!(true);
            }
            return Ok((r, None));
        }
        // The user answered our offer (the peer called): our answer to the peer.
        let Some(peer) = call.peer_offer.clone() else {
            return Err(NsError::WrongState(
                "Can't generate an answer: no offer from the peer",
            ));
        };
        let srtp = srtp || call.srtp_remote;
        if call.require_srtp && !call.srtp_remote {
            return Err(NsError::TooStrict(
                "Can't generate answer: SDES-SRTP required, but caller didn't offer it",
            ));
        }
        call.srtp_local = srtp;
        if srtp && call.audio_key.is_none() {
            call.audio_key = Some(new_key());
            call.video_key = Some(new_key());
        }
        if srtp {
            // Our key in the peer's suite.
            if let Some((_, s, _)) = peer.iter().flat_map(|l| l.crypto.iter()).next() {
                call.srtp_suite = if s == "AES_CM_128_HMAC_SHA1_32" {
                    "AES_CM_128_HMAC_SHA1_32"
                } else {
                    "AES_CM_128_HMAC_SHA1_80"
                };
            }
        }
        let mut sides = Vec::new();
        for l in peer.iter().filter(|l| l.port != 0) {
            let kind = kind_of(l);
            // An answer's key goes with the tag of the offer's crypto line.
            if let Some((tag, _, _)) = l.crypto.first() {
                match kind {
                    MediaKind::Audio => call.audio_tag = *tag,
                    MediaKind::Video => call.video_tag = *tag,
                }
            }
            // The codec the user accepted, with the peer's payload type.
            let chosen = user
                .iter()
                .find(|u| kind_of(u) == kind && u.port != 0)
                .and_then(|u| u.first_codec())
                .and_then(|c| c.name);
            let codecs: Vec<sdp::Codec> = l
                .codecs
                .iter()
                .filter(|c| c.name.is_some() && c.name == chosen)
                .take(1)
                .cloned()
                .collect();
            match kind {
                MediaKind::Audio => call.audio_codecs = codecs,
                MediaKind::Video => call.video_codecs = codecs,
            }
            sides.push((kind, l.receives, l.sends));
        }
        let text = self.barebone(&mut call, &sides);
        self.connect(h, &mut call, &peer)?;
        drop(call);
        h.publish_legs();
        Ok((
            json!({"event": "generated", "type": "answer", "sdp": text, "unique_id": h.unique_id}),
            None,
        ))
    }

    fn process(&self, h: &Arc<NsHandle>, b: &Body) -> NsResult<(Value, Option<LocalJsep>)> {
        let kind = req_str(b, "type")?;
        let text = req_str(b, "sdp")?;
        opt_str(b, "info")?;
        let (srtp, require, suite) = srtp_options(b)?;
        opt_bool(b, "update")?;
        let offer = if kind.eq_ignore_ascii_case("offer") {
            true
        } else if kind.eq_ignore_ascii_case("answer") {
            false
        } else {
            return Err(NsError::MissingSdp("Missing or invalid SDP type".into()));
        };
        if text.contains("m=application") {
            return Err(NsError::MissingSdp(
                "The NoSIP plugin does not support DataChannels".into(),
            ));
        }
        sdp::check(text).map_err(|e| NsError::MissingSdp(format!("Error parsing SDP: {e}")))?;
        let peer = sdp::parse(text);
        let live: Vec<&sdp::Line> = peer.iter().filter(|l| l.port != 0).collect();
        if live.is_empty() {
            return Err(NsError::InvalidSdp(
                "No audio and no video being negotiated",
            ));
        }
        if live.iter().all(|l| l.addr.is_none()) {
            return Err(NsError::InvalidSdp("No remote IP addresses"));
        }
        let mut call = h.call();
        let remote_srtp = live.iter().any(|l| l.srtp || !l.crypto.is_empty());
        call.require_srtp |= require || live.iter().any(|l| l.srtp);
        if call.require_srtp && !remote_srtp {
            return Err(NsError::TooStrict(
                "Can't process request: SDES-SRTP required, but caller didn't offer it",
            ));
        }
        call.srtp_remote = remote_srtp;
        let update = call.ready;
        let jsep;
        if offer {
            // The peer calls: the user gets an offer of the peer's media.
            let mut media = Vec::new();
            for l in &live {
                let k = kind_of(l);
                if call.leg(k).is_none() {
                    let leg = self.leg(k)?;
                    match k {
                        MediaKind::Audio => call.audio = Some(leg),
                        MediaKind::Video => call.video = Some(leg),
                    }
                }
                let mut m = OfferMedia::new(k, l.sends, l.receives);
                m.codec = l.first_codec().and_then(|c| c.name).map(str::to_owned);
                media.push(m);
            }
            if srtp {
                call.srtp_local = true;
                call.srtp_suite = suite;
            }
            call.peer_offer = Some(peer.clone());
            // The engine's codec set for the offer must have the peer's codecs (G.711…).
            let first = |video: bool| {
                live.iter()
                    .find(|l| l.video == video)
                    .and_then(|l| l.first_codec())
                    .and_then(|c| c.name)
                    .map(str::to_owned)
            };
            jsep = LocalJsep::Offer {
                media,
                data: false,
                prefs: MediaPrefs {
                    audio_codec: first(false),
                    video_codec: first(true),
                    ..MediaPrefs::default()
                },
                restart: false,
                fill: None,
            };
        } else {
            // The peer answered our offer: the user's offer is answered with its codecs.
            let pick = |video: bool| {
                live.iter()
                    .find(|l| l.video == video)
                    .and_then(|l| l.first_codec())
                    .and_then(|c| c.name)
                    .map(str::to_owned)
            };
            jsep = LocalJsep::Answer(MediaPrefs {
                audio_codec: pick(false),
                video_codec: pick(true),
                ..MediaPrefs::default()
            });
            self.connect(h, &mut call, &peer)?;
        }
        let mut r = json!({"event": "processed", "unique_id": h.unique_id});
        if remote_srtp {
            r["srtp"] = json!(if call.require_srtp {
                "sdes_mandatory"
            } else {
                "sdes_optional"
            });
        }
        if update {
            r["update"] = json!(true);
        }
        drop(call);
        h.publish_legs();
        Ok((r, Some(jsep)))
    }

    fn recording(&self, h: &Arc<NsHandle>, b: &Body) -> NsResult<(Value, Option<LocalJsep>)> {
        let action = req_str(b, "action")?;
        let flag = |k: &'static str| opt_bool(b, k).map(|v| v.unwrap_or(false));
        let (audio, video, peer_audio, peer_video) = (
            flag("audio")?,
            flag("video")?,
            flag("peer_audio")?,
            flag("peer_video")?,
        );
        let filename = opt_str(b, "filename")?;
        let start = if action.eq_ignore_ascii_case("start") {
            true
        } else if action.eq_ignore_ascii_case("stop") {
            false
        } else {
            return Err(NsError::Invalid(
                "Invalid action (should be start|stop)".into(),
            ));
        };
        if !(audio || video || peer_audio || peer_video) {
            return Err(NsError::Recording(
                "Invalid request (at least one of audio, video, peer_audio and peer_video should be true)",
            ));
        }
        let svc = &*self.shared.services;
        let now = jano_plugin::clock::unix_us();
        let base = |who: &str, fallback: &str| match filename {
            Some(f) => format!("{f}-{who}"),
            None => format!("nosip-{}-{now}-{fallback}", h.href.handle_id),
        };
        let codec = |kind: MediaKind| {
            let call = h.call();
            let leg = call.leg(kind)?;
            let st = leg.state();
            st.pts.first().map(|(_, n)| *n)
        };
        let r: &Recorders = &h.rec;
        for (on, rec, who, fallback, kind, user) in [
            (audio, &r.user_audio, "user", "own", MediaKind::Audio, true),
            (video, &r.user_video, "user", "own", MediaKind::Video, true),
            (
                peer_audio,
                &r.peer_audio,
                "peer",
                "peer",
                MediaKind::Audio,
                false,
            ),
            (
                peer_video,
                &r.peer_video,
                "peer",
                "peer",
                MediaKind::Video,
                false,
            ),
        ] {
            if !on {
                continue;
            }
            if !start {
                rec.stop(svc);
                continue;
            }
            rec.start(svc, base(who, fallback));
            if let Some(c) = codec(kind) {
                let then: Option<Box<dyn FnOnce() + Send>> = match (kind, user) {
                    // The user's video file should start with a keyframe.
                    (MediaKind::Video, true) => {
                        let (s, me) = (self.shared.services.clone(), h.href.clone());
                        Some(Box::new(move || s.send_pli(&me, None)))
                    }
                    _ => None,
                };
                rec.open(svc, RecKind::of(kind), c, then);
            }
        }
        Ok((json!({"event": "recordingupdated"}), None))
    }

    fn request(
        &self,
        h: &Arc<NsHandle>,
        b: &Body,
        jsep: Option<Jsep>,
    ) -> NsResult<(Value, Option<LocalJsep>)> {
        let request = req_str(b, "request")?.to_ascii_lowercase();
        match request.as_str() {
            "generate" => self.generate(h, b, jsep),
            "process" => self.process(h, b),
            "hangup" => {
                self.shared.services.close_pc(&h.href);
                h.reset();
                Ok((json!({"event": "hangingup"}), None))
            }
            "recording" => self.recording(h, b),
            "keyframe" => {
                if opt_bool(b, "user")?.unwrap_or(false) {
                    self.shared.services.send_pli(&h.href, None);
                }
                if opt_bool(b, "peer")?.unwrap_or(false) {
                    if let Some(leg) = h.call().video.clone() {
                        leg.pli_to_peer();
                    }
                }
                Ok((json!({"event": "keyframesent"}), None))
            }
            _ => Err(NsError::UnknownRequest(request)),
        }
    }
}

impl Plugin for NoSip {
    fn info(&self) -> &PluginInfo {
        &INFO
    }

    fn create_session(&self, handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(NsHandle {
            href: handle.clone(),
            call: Mutex::new(Call::default()),
            out: Mutex::new(handle::OutLegs::default()),
            rec: Recorders::default(),
            services: self.shared.services.clone(),
            unique_id: unique_id(),
        }))
    }

    fn handle_message(
        &self,
        _handle: &HandleRef,
        session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let Some(h) = session_arc::<NsHandle>(session) else {
            return PluginResult::Error("No session associated with this handle".into());
        };
        // Every request is acknowledged first; its event follows.
        let (data, jsep) = match self.request(&h, &body, jsep) {
            Ok((r, jsep)) => (result(r), jsep),
            Err(e) => (e.to_data(), None),
        };
        let _ = self
            .shared
            .services
            .push_event(&h.href, Some(transaction.to_owned()), data, jsep);
        PluginResult::OkWait(None)
    }

    fn destroy_session(&self, _handle: &HandleRef, session: &SessionRef) -> Result<(), i32> {
        if let Some(h) = session_arc::<NsHandle>(session) {
            h.reset();
        }
        Ok(())
    }

    fn query_session(&self, _handle: &HandleRef, session: &SessionRef) -> Value {
        let Some(h) = session_arc::<NsHandle>(session) else {
            return json!({});
        };
        let call = h.call();
        let mut info =
            json!({"ready": call.ready, "srtp": call.srtp_local, "hangingup": 0, "destroyed": 0});
        for leg in call.legs() {
            let st = leg.state();
            let k = leg.kind.as_str();
            info[k] = json!({
                "local_port": leg.local_port,
                "peer": st.peer.map(|(a, _)| a.to_string()),
                "to_peer": leg.to_peer.load(std::sync::atomic::Ordering::Relaxed),
                "from_peer": leg.from_peer.load(std::sync::atomic::Ordering::Relaxed),
            });
        }
        info
    }
}
