//! Fuzz harnesses for what jano itself parses on the media path, shared by the `media_*`
//! `cargo fuzz` targets (through the `jano_fuzz` library) and by the stable replay test
//! `crates/media/tests/fuzz_corpus.rs`, which includes this file with `#[path]`. It may
//! therefore only use crates both have: `jano-core`, `jano-plugin`, `jano-media`, `str0m` and
//! `serde_json`.
//!
//! - [`run_sdp`] (target `media_sdp`): the bytes as an SDP (lossy UTF-8) through
//!   `jano_media::sdp::check` (offer and answer), `m_lines` and `candidates`, then, when the check
//!   passes, what the PeerConnection does with it: str0m parses it and a fresh `Rtc` answers it
//!   (jano's own answer must parse back), and every line that parses as a candidate is added.
//! - [`run_stun`] (target `media_stun`): the bytes as a datagram on the single media port, through
//!   the demultiplexer's `stun_local_ufrag` (passed in, it is private to `jano-media`).
//! - [`run_jsep`] (target `media_jsep`): a script of `message` (with a `jsep`) and `trickle`
//!   requests against a gateway with a media backend whose `check_sdp` is jano's, and a plugin
//!   that answers offers; what the gateway lets through goes where the engine would take it.
//!
//! # `run_jsep` input format
//!
//! Operations, one opcode byte each (modulo 6), until the input ends or [`MAX_OPS`] ran:
//!
//! | op | operands | effect |
//! |----|----------|--------|
//! | 0 | `sel`, `len: u16 LE`, `len` bytes | `message` with a `jsep` built from `sel` around those bytes (the SDP, or raw JSON) |
//! | 1 | `sel`, `len: u8`, `len` bytes | `trickle` with a `candidate`/`candidates` built from `sel` around those bytes |
//! | 2 | `len: u16 LE`, `len` bytes | raw bytes as a whole request (JSON), placeholders `$S`/`$H` replaced |
//! | 3 | — | `message` asking the plugin to offer (the client then may answer) |
//! | 4 | `n: u8` | deliver queued plugin events and engine reports (`0` = all) |
//! | 5 | — | `hangup` the handle |

use jano_core::{
    CoreConfig, Gateway, InstanceId, LocalSdp, MediaBackend, MediaCommand, MediaEvent, Now,
    PluginEvent, PluginRegistry,
};
use jano_media::sdp;
use jano_plugin::{
    CoreServices, DataMessage, HandleRef, Jsep, JsepType, LocalJsep, Map, MediaKind, MediaPrefs,
    NoState, OfferMedia, Plugin, PluginInfo, PluginResult, PushError, RtpPacket, SessionRef, Value,
};
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;
use str0m::change::{SdpAnswer, SdpOffer};
use str0m::config::DtlsCert;
use str0m::{Candidate, Rtc, RtcConfig};

/// Operations per `run_jsep` script at most.
pub const MAX_OPS: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One DTLS certificate for every `Rtc` (making one per input would dominate the run time).
fn cert() -> DtlsCert {
    static CERT: OnceLock<DtlsCert> = OnceLock::new();
    CERT.get_or_init(|| {
        str0m::crypto::from_feature_flags()
            .dtls_provider
            .generate_certificate()
            .expect("DTLS certificate")
    })
    .clone()
}

fn rtc() -> Rtc {
    RtcConfig::new()
        .set_rtp_mode(true)
        .set_dtls_cert(cert())
        .set_stats_interval(None)
        .build(Instant::now())
}

/// What `jano-media` does with a client SDP, as `pc.rs` does it: check, parse, answer, remember
/// the m-lines; and the candidates of the SDP. Panics (a bug) when an invariant breaks.
fn engine_offer(text: &str) -> Option<String> {
    sdp::check(true, text).ok()?;
    // `check` passed, so str0m parses it (check uses the same parser).
    let offer = SdpOffer::from_sdp_string(text).expect("check passed but the offer doesn't parse");
    let mut rtc = rtc();
    let answer = rtc.sdp_api().accept_offer(offer).ok()?;
    let local = answer.to_sdp_string();
    // jano's own answer must read back, and its m-lines (set_mids) must be sane.
    SdpAnswer::from_sdp_string(&local)
        .unwrap_or_else(|e| panic!("our answer doesn't parse back ({e}):\n{local}"));
    for m in sdp::m_lines(&local) {
        assert!(!m.media.is_empty(), "empty media in our answer:\n{local}");
    }
    for c in sdp::candidates(text) {
        if let Ok(cand) = Candidate::from_sdp_string(&c) {
            rtc.add_remote_candidate(cand);
        }
    }
    let _ = rtc.poll_output();
    Some(local)
}

/// Target `media_sdp`.
pub fn run_sdp(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let as_offer = sdp::check(true, text);
    let _ = sdp::check(false, text);
    if let Err(e) = &as_offer {
        assert!(e.starts_with("JSEP error: "), "odd reason: {e}");
    }
    let lines = sdp::m_lines(text);
    let expected = text
        .lines()
        .filter(|l| l.trim_end_matches('\r').starts_with("m="))
        .count();
    assert_eq!(
        lines.len(),
        expected,
        "m_lines missed or invented an m-line"
    );
    for m in &lines {
        assert!(!m.media.contains(' '), "media with a space: {m:?}");
        if let Some(mid) = &m.mid {
            assert_eq!(mid.trim(), mid, "untrimmed mid {mid:?}");
        }
    }
    for c in sdp::candidates(text) {
        assert!(c.starts_with("candidate:"), "not a candidate: {c:?}");
        // As a trickle would carry it.
        let v = json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": c});
        match sdp::trickle(&v) {
            sdp::Trickle::Candidate(s) => {
                let _ = Candidate::from_sdp_string(&s);
            }
            sdp::Trickle::Completed => assert!(c.trim().is_empty()),
            sdp::Trickle::Ignored => panic!("mline 0 ignored: {v}"),
        }
    }
    if as_offer.is_ok() {
        engine_offer(text);
    }
    // Every line as a trickled candidate string, as the engine takes it.
    for line in text.lines().take(16) {
        let v = json!({"sdpMLineIndex": 0, "candidate": line});
        if let sdp::Trickle::Candidate(s) = sdp::trickle(&v) {
            if let Ok(c) = Candidate::from_sdp_string(&s) {
                let back = c.to_sdp_string();
                let _ = Candidate::from_sdp_string(back.trim_start_matches("a="));
            }
        }
    }
}

/// Target `media_stun`: `ufrag` is `jano-media`'s `net::stun_local_ufrag`.
pub fn run_stun(data: &[u8], ufrag: fn(&[u8]) -> Option<&str>) {
    let Some(u) = ufrag(data) else {
        return;
    };
    assert!(
        data.len() >= 20,
        "ufrag from a datagram shorter than a STUN header"
    );
    assert_eq!(&data[4..8], &[0x21, 0x12, 0xA4, 0x42], "no magic cookie");
    assert_eq!(&data[..2], &[0, 1], "not a binding request");
    assert!(!u.contains(':'), "ufrag {u:?} contains the separator");
    // The ufrag is bytes of the message body.
    let body = &data[20..];
    assert!(
        body.windows(u.len().max(1))
            .any(|w| u.is_empty() || w == u.as_bytes()),
        "ufrag {u:?} not in the datagram"
    );
    let declared = usize::from(u16::from_be_bytes([data[2], data[3]]));
    assert!(u.len() <= declared, "ufrag longer than the declared body");
}

// ---------------------------------------------------------------------------------------------
// run_jsep

const PLUGIN: &str = "jano.plugin.fuzzmedia";
const INST: InstanceId = InstanceId {
    transport: 0,
    conn: 0,
};

/// A real offer (str0m's, audio + video + data) the SDP operands are spliced into.
const OFFER: &str = "v=0\r\no=- 5907470106036346549 2 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1 2\r\na=msid-semantic: WMS\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 2C:1B:3C:1E:0F:09:AF:4B:24:1B:26:29:B0:70:74:73:2E:8F:B2:D0:3F:B8:D4:3E:B7:56:3C:07:1C:2B:B8:57\r\na=setup:actpass\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 2C:1B:3C:1E:0F:09:AF:4B:24:1B:26:29:B0:70:74:73:2E:8F:B2:D0:3F:B8:D4:3E:B7:56:3C:07:1C:2B:B8:57\r\na=setup:actpass\r\na=sendrecv\r\na=rtcp-mux\r\na=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=fingerprint:sha-256 2C:1B:3C:1E:0F:09:AF:4B:24:1B:26:29:B0:70:74:73:2E:8F:B2:D0:3F:B8:D4:3E:B7:56:3C:07:1C:2B:B8:57\r\na=setup:actpass\r\na=sctp-port:5000\r\n";

struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    fn take(&mut self, n: usize) -> &'a [u8] {
        let n = n.min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
}

/// `CoreServices` as the runtime implements it: a queue the harness applies later.
struct Services {
    queue: Arc<Mutex<VecDeque<PluginEvent>>>,
}

impl CoreServices for Services {
    fn push_event(
        &self,
        handle: &HandleRef,
        transaction: Option<String>,
        message: Map<String, Value>,
        jsep: Option<LocalJsep>,
    ) -> Result<(), PushError> {
        lock(&self.queue).push_back(PluginEvent::Push {
            plugin: PLUGIN,
            handle: handle.clone(),
            transaction,
            message,
            jsep,
        });
        Ok(())
    }
    fn end_session(&self, handle: &HandleRef) {
        lock(&self.queue).push_back(PluginEvent::EndSession {
            handle: handle.clone(),
        });
    }
    fn close_pc(&self, handle: &HandleRef) {
        lock(&self.queue).push_back(PluginEvent::ClosePc {
            handle: handle.clone(),
        });
    }
}

const INFO: PluginInfo = PluginInfo {
    package: PLUGIN,
    name: "fuzz media",
    author: "jano",
    description: "Answers offers, offers on request; records the JSEPs it was given.",
    version: 1,
    version_string: "0.0.1",
};

/// Answers a client offer (as EchoTest does), offers when the body says `offer`, and records
/// every JSEP the gateway handed it (each must have passed the SDP check).
struct Answerer {
    services: Services,
    seen: Mutex<Vec<Jsep>>,
}

impl Plugin for Answerer {
    fn info(&self) -> &PluginInfo {
        &INFO
    }
    fn create_session(&self, _handle: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(NoState))
    }
    fn handle_message(
        &self,
        handle: &HandleRef,
        _session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let reply = if body.get("offer").is_some() {
            Some(LocalJsep::Offer {
                media: vec![
                    OfferMedia::new(MediaKind::Audio, true, true),
                    OfferMedia::new(MediaKind::Video, true, true),
                ],
                data: true,
                prefs: MediaPrefs::default(),
                restart: false,
                fill: None,
            })
        } else {
            match &jsep {
                Some(j) if j.kind == JsepType::Offer => {
                    Some(LocalJsep::Answer(MediaPrefs::default()))
                }
                _ => None,
            }
        };
        if let Some(j) = jsep {
            lock(&self.seen).push(j);
        }
        let _ = self
            .services
            .push_event(handle, Some(transaction.to_owned()), Map::new(), reply);
        PluginResult::OkWait(None)
    }
    fn destroy_session(&self, _handle: &HandleRef, _session: &SessionRef) -> Result<(), i32> {
        Ok(())
    }
}

/// The engine as far as the core sees it: jano's SDP check, nothing else.
struct Backend;

impl MediaBackend for Backend {
    fn check_sdp(&self, offer: bool, text: &str) -> Result<(), String> {
        sdp::check(offer, text)
    }
    fn command(&self, _cmd: MediaCommand) {}
    fn handle_info(&self, _handle_id: u64) -> Option<Value> {
        None
    }
    fn relay_rtp(&self, _handle_id: u64, _packet: &RtpPacket) {}
    fn relay_data(&self, _handle_id: u64, _message: &DataMessage<'_>) {}
    fn send_pli(&self, _handle_id: u64, _mindex: Option<usize>) {}
    fn send_remb(&self, _handle_id: u64, _bitrate: u64) {}
}

struct Harness {
    gw: Gateway,
    plugin: Arc<Answerer>,
    queue: Arc<Mutex<VecDeque<PluginEvent>>>,
    reports: VecDeque<MediaEvent>,
    sid: u64,
    hid: u64,
    /// A PeerConnection exists (the engine got a `Negotiate`).
    pc: bool,
    /// The last local SDP we offered, for the client answer to refer to.
    offered: Option<String>,
    tx: u64,
}

fn is_error(v: &Value) -> Option<u64> {
    (v.get("janus")?.as_str()? == "error").then(|| v.pointer("/error/code")?.as_u64())?
}

impl Harness {
    fn new() -> Harness {
        let queue: Arc<Mutex<VecDeque<PluginEvent>>> = Arc::default();
        let plugin = Arc::new(Answerer {
            services: Services {
                queue: queue.clone(),
            },
            seen: Mutex::default(),
        });
        let mut reg = PluginRegistry::new();
        reg.add(plugin.clone());
        let mut gw = Gateway::new(CoreConfig::default(), reg, 0x5eed);
        gw.set_media(Arc::new(Backend));
        let mut h = Harness {
            gw,
            plugin,
            queue,
            reports: VecDeque::new(),
            sid: 0,
            hid: 0,
            pc: false,
            offered: None,
            tx: 0,
        };
        let r = h.request(json!({"janus": "create"}));
        h.sid = r
            .pointer("/data/id")
            .and_then(Value::as_u64)
            .expect("create");
        let r = h.request(json!({"janus": "attach", "session_id": h.sid, "plugin": PLUGIN}));
        h.hid = r
            .pointer("/data/id")
            .and_then(Value::as_u64)
            .expect("attach");
        h
    }

    fn request(&mut self, mut v: Value) -> Value {
        self.tx += 1;
        if let Some(o) = v.as_object_mut() {
            o.entry("transaction")
                .or_insert_with(|| Value::String(format!("t{}", self.tx)));
        }
        let r = self
            .gw
            .handle_request(Now::from_secs(1), INST, Ok(v.clone()));
        self.check(&v, &r);
        self.drain();
        r
    }

    fn raw(&mut self, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes)
            .replace("$S", &self.sid.to_string())
            .replace("$H", &self.hid.to_string());
        let input = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string());
        let r = self
            .gw
            .handle_request(Now::from_secs(1), INST, input.clone());
        if let Ok(v) = &input {
            self.check(v, &r);
        }
        self.drain();
    }

    /// The response is a Janus response, and a JSEP error is one of the codes Janus uses.
    fn check(&self, req: &Value, resp: &Value) {
        let kind = resp.get("janus").and_then(Value::as_str);
        assert!(
            matches!(
                kind,
                Some("success" | "ack" | "error" | "server_info" | "pong")
            ),
            "bad response {resp} to {req}"
        );
        if let Some(code) = is_error(resp) {
            assert!((403..=490).contains(&code), "code {code}: {resp}");
            assert!(resp.pointer("/error/reason").is_some_and(Value::is_string));
            if req.get("jsep").is_some() && req.get("body").is_some_and(Value::is_object) {
                assert!(
                    matches!(
                        code,
                        455 | 456 | 457 | 458 | 459 | 464 | 465 | 467 | 469 | 471
                    ),
                    "unexpected code for a jsep: {resp} to {req}"
                );
            }
        }
        // Whatever the gateway took as an SDP went through jano's check.
        if req.get("janus").and_then(Value::as_str) == Some("message") && is_error(resp).is_none() {
            if let Some(j) = req.get("jsep").and_then(Value::as_object) {
                let sdp = j.get("sdp").and_then(Value::as_str).unwrap_or_default();
                let offer = j
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| t.eq_ignore_ascii_case("offer"));
                if let Err(e) = sdp::check(offer, sdp) {
                    panic!("jsep accepted although check says {e}: {req}");
                }
            }
        }
    }

    fn drain(&mut self) {
        while let Some(o) = self.gw.poll_output() {
            if let jano_core::Output::Media(cmd) = o {
                self.engine(cmd);
            }
        }
    }

    /// What the engine would do with a command, with the engine's own parsers.
    fn engine(&mut self, cmd: MediaCommand) {
        match cmd {
            MediaCommand::Negotiate(n) => {
                let (sid, hid) = (n.handle.session_id, n.handle.handle_id);
                self.pc = true;
                let result = match (&n.jsep, &n.remote_offer) {
                    (LocalJsep::Answer(_), Some(remote)) => {
                        engine_offer(&remote.sdp).ok_or_else(|| "refused".to_owned())
                    }
                    (LocalJsep::Answer(_), None) => Err("no offer to answer".into()),
                    (LocalJsep::Offer { .. }, _) => {
                        let mut rtc = rtc();
                        let mut api = rtc.sdp_api();
                        api.add_media(
                            str0m::media::MediaKind::Audio,
                            str0m::media::Direction::SendRecv,
                            None,
                            None,
                            None,
                        );
                        let (offer, _) = api.apply().expect("an offer");
                        let s = offer.to_sdp_string();
                        self.offered = Some(s.clone());
                        Ok(s)
                    }
                };
                for c in &n.candidates {
                    self.trickle_one(c);
                }
                let kind = if matches!(n.jsep, LocalJsep::Answer(_)) {
                    "answer"
                } else {
                    "offer"
                };
                self.reports.push_back(MediaEvent::Negotiated {
                    session_id: sid,
                    handle_id: hid,
                    result: result.map(|sdp| LocalSdp { kind, sdp }),
                    event: n.event,
                });
            }
            MediaCommand::RemoteAnswer { sdp: remote, .. } => {
                assert!(
                    sdp::check(false, &remote.sdp).is_ok(),
                    "unchecked answer reached the engine"
                );
                let _ = SdpAnswer::from_sdp_string(&remote.sdp);
            }
            MediaCommand::Trickle { candidates, .. } => {
                for c in &candidates {
                    self.trickle_one(c);
                }
            }
            MediaCommand::Settings(_) => {}
            MediaCommand::Hangup {
                session_id,
                handle_id,
                reason,
                ..
            } => {
                self.pc = false;
                self.reports.push_back(MediaEvent::Hangup {
                    session_id,
                    handle_id,
                    reason: reason.to_owned(),
                    notify: false,
                });
            }
        }
    }

    fn trickle_one(&mut self, c: &Value) {
        // Only validated candidates reach the engine.
        if let Some(o) = c.as_object() {
            if !o.contains_key("completed") {
                assert!(
                    o.get("candidate").is_some_and(Value::is_string),
                    "unvalidated candidate reached the engine: {c}"
                );
            }
        }
        if let sdp::Trickle::Candidate(s) = sdp::trickle(c) {
            if let Ok(cand) = Candidate::from_sdp_string(&s) {
                let _ = cand.to_sdp_string();
            }
        }
    }

    fn deliver(&mut self, limit: usize) {
        let mut n = 0;
        while limit == 0 || n < limit {
            if let Some(ev) = self.reports.pop_front() {
                self.gw.handle_media_event(Now::from_secs(1), ev);
            } else if let Some(ev) = lock(&self.queue).pop_front() {
                self.gw.handle_plugin_event(Now::from_secs(1), ev);
            } else {
                break;
            }
            n += 1;
            self.drain();
        }
    }

    fn sdp_from(&self, sel: u8, bytes: &[u8]) -> String {
        let s = String::from_utf8_lossy(bytes);
        match sel % 6 {
            0 => s.into_owned(),
            1 => format!("v=0\r\n{s}"),
            2 => {
                // Splice into the real offer at a byte offset chosen by the operand.
                let at = bytes
                    .first()
                    .map_or(0, |b| usize::from(*b) * OFFER.len() / 256);
                let at = (0..=at)
                    .rev()
                    .find(|i| OFFER.is_char_boundary(*i))
                    .unwrap_or(0);
                format!("{}{s}{}", &OFFER[..at], &OFFER[at..])
            }
            3 => {
                // Truncate the real offer.
                let at = bytes
                    .first()
                    .map_or(0, |b| usize::from(*b) * OFFER.len() / 256);
                OFFER[..at].to_owned()
            }
            4 => format!("{OFFER}{s}"),
            _ => self
                .offered
                .clone()
                .map(|o| {
                    o.replace("a=setup:actpass", "a=setup:active")
                        .replace("m=", &format!("{s}m="))
                })
                .unwrap_or_else(|| OFFER.to_owned()),
        }
    }

    fn jsep_message(&mut self, sel: u8, bytes: &[u8]) {
        let sdp = self.sdp_from(sel, bytes);
        let kind = ["offer", "answer", "OFFER", "pranswer", "", "Answer"][usize::from(sel / 6 % 6)];
        let jsep = match sel / 36 {
            0..=4 => json!({"type": kind, "sdp": sdp}),
            5 => json!({"type": kind, "sdp": sdp, "trickle": false}),
            6 => json!({"sdp": sdp}),
            _ => serde_json::from_slice(bytes).unwrap_or(Value::Null),
        };
        self.request(json!({
            "janus": "message", "session_id": self.sid, "handle_id": self.hid,
            "body": {}, "jsep": jsep,
        }));
    }

    fn trickle(&mut self, sel: u8, bytes: &[u8]) {
        let s = String::from_utf8_lossy(bytes).into_owned();
        let cand = match sel % 8 {
            0 => json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": s}),
            1 => json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": format!("candidate:{s}")}),
            2 => json!({"sdpMid": "0", "sdpMLineIndex": 0,
                         "candidate": format!("candidate:1 1 udp 2130706431 {s} 5000 typ host")}),
            3 => json!({"sdpMid": "0", "sdpMLineIndex": 0,
                         "candidate": format!("a=candidate:1 1 UDP 1 127.0.0.1 {s} typ {s}")}),
            4 => json!({"sdpMLineIndex": -1, "candidate": s}),
            5 => json!({"sdpMid": s}),
            6 => json!({"completed": true}),
            _ => serde_json::from_slice(bytes).unwrap_or(Value::String(s)),
        };
        let v = if sel & 8 != 0 {
            json!({"janus": "trickle", "session_id": self.sid, "handle_id": self.hid,
                   "candidates": [cand, {"sdpMid": 5}, {"completed": true}]})
        } else {
            json!({"janus": "trickle", "session_id": self.sid, "handle_id": self.hid,
                   "candidate": cand})
        };
        let r = self.request(v);
        if sel & 8 != 0 {
            assert!(
                r["janus"] == "ack" || matches!(is_error(&r), Some(458 | 459)),
                "an array of candidates is always acked: {r}"
            );
        }
    }
}

/// Target `media_jsep`.
pub fn run_jsep(data: &[u8]) {
    let mut h = Harness::new();
    let mut r = Reader { data };
    for _ in 0..MAX_OPS {
        if r.data.is_empty() {
            break;
        }
        match r.u8() % 6 {
            0 => {
                let sel = r.u8();
                let n = usize::from(r.u16() % 4096);
                let b = r.take(n);
                h.jsep_message(sel, b);
            }
            1 => {
                let sel = r.u8();
                let n = usize::from(r.u8());
                let b = r.take(n);
                h.trickle(sel, b);
            }
            2 => {
                let n = usize::from(r.u16() % 4096);
                let b = r.take(n);
                h.raw(b);
            }
            3 => {
                let (sid, hid) = (h.sid, h.hid);
                h.request(
                    json!({"janus": "message", "session_id": sid, "handle_id": hid,
                                 "body": {"offer": true}}),
                );
            }
            4 => {
                let n = usize::from(r.u8());
                h.deliver(n);
            }
            _ => {
                let (sid, hid) = (h.sid, h.hid);
                h.request(json!({"janus": "hangup", "session_id": sid, "handle_id": hid}));
            }
        }
    }
    h.deliver(0);
    // Every JSEP the plugin was handed passed jano's SDP check.
    for j in lock(&h.plugin.seen).iter() {
        let offer = j.kind == JsepType::Offer;
        assert!(
            sdp::check(offer, &j.sdp).is_ok(),
            "plugin got an SDP the check refuses: {:?}",
            j.sdp
        );
    }
}
