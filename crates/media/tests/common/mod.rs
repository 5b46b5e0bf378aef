//! Shared pieces of the media engine's integration tests: a real gateway (core + runtime +
//! `MediaEngine` + EchoTest, plus any test plugin) driven through a `TransportHandle`, and a
//! str0m `Rtc` in RTP mode as the WebRTC client, over real UDP sockets on 127.0.0.1.
//!
//! Every wait is bounded: `Gw::event` and `Client::run_until` take a timeout and report failure
//! instead of hanging.

#![allow(dead_code)]

pub mod videoroom;

use jano_core::{CoreConfig, MediaBackend};
use jano_media::{candidate_ips, IpFilter, MediaConfig, MediaEngine};
use jano_plugin::{
    CoreServices, DataMessage, HandleRef, Jsep, JsepType, LocalJsep, Map, MediaPrefs, NoState,
    OfferFill, OfferMedia, Plugin, PluginInfo, PluginResult, RtpPacket, SessionRef,
};
use jano_runtime::{
    PluginQueue, PluginRegistry, Runtime, TransportHandle, TransportInfo, TransportSink,
};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::ChannelId;
use str0m::media::{Direction, MediaKind, Mid};
type PluginKind = jano_plugin::MediaKind;
use str0m::net::{Protocol, Receive};
use str0m::rtp::{ExtensionValues, RtpWrite};
use str0m::{Candidate, Event, Input, Output, Rtc, RtcConfig};
use tokio::sync::mpsc;

pub const ECHO: &str = "janus.plugin.echotest";
pub const ADMIN_SECRET: &str = "adminpw";
pub const WAIT: Duration = Duration::from_secs(5);
pub const ECHO_PREFIX: &str = "Janus EchoTest here! You wrote: ";

static TX: AtomicU64 = AtomicU64::new(1);

pub fn tx() -> String {
    format!("tx{}", TX.fetch_add(1, Ordering::Relaxed))
}

/// Open file descriptors of this process.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// A UDP port free right now on 127.0.0.1.
pub fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    s.local_addr().expect("addr").port()
}

struct Sink(mpsc::UnboundedSender<Value>);

impl TransportSink for Sink {
    fn send_event(&self, _conn: u64, _session_id: u64, event: Value) {
        let _ = self.0.send(event);
    }
}

const INFO: TransportInfo = TransportInfo {
    package: "janus.transport.test",
    name: "test transport",
    author: "jano",
    description: "in-process transport for the media tests",
    version: 1,
    version_string: "0.0.1",
};

/// Builds extra plugins from the queue (a test plugin needs its services).
pub type MakePlugins = Box<dyn FnOnce(&PluginQueue) -> Vec<Arc<dyn Plugin>>>;

/// How to build a gateway for a test.
pub struct Opts {
    pub session_timeout: u64,
    pub single_port: Option<u16>,
    pub workers: usize,
    pub plugins: MakePlugins,
    pub ice_lite: bool,
    pub full_trickle: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            session_timeout: 60,
            single_port: None,
            workers: 2,
            plugins: Box::new(|_| Vec::new()),
            ice_lite: false,
            full_trickle: false,
        }
    }
}

/// A running gateway with a media engine, and the events its one client connection got.
pub struct Gw {
    pub rt: Runtime,
    pub th: TransportHandle,
    pub conn: u64,
    pub engine: MediaEngine,
    events: mpsc::UnboundedReceiver<Value>,
    /// Events received but not yet taken by `event`.
    pub seen: Vec<Value>,
}

impl Gw {
    pub fn start(opts: Opts) -> Gw {
        let queue = PluginQueue::new();
        // As the server: the runtime and the media engine exist before the plugins are built.
        queue.set_runtime(tokio::runtime::Handle::current());
        let ips = candidate_ips(&IpFilter {
            enforce: vec!["127.0.0.1".into()],
            ..Default::default()
        });
        assert_eq!(ips, vec!["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
        let mc = MediaConfig {
            workers: opts.workers,
            ips,
            single_port: opts.single_port,
            ice_lite: opts.ice_lite,
            full_trickle: opts.full_trickle,
            ..MediaConfig::default()
        };
        let engine = MediaEngine::start(mc, queue.media_sink()).expect("media engine");
        queue.set_media(Arc::new(engine.clone()));
        let mut registry = PluginRegistry::new();
        registry.add(Arc::new(jano_echotest::EchoTest::new(
            queue.services_for(ECHO),
        )));
        for p in (opts.plugins)(&queue) {
            registry.add(p);
        }
        let cfg = CoreConfig {
            session_timeout: opts.session_timeout,
            admin_secret: Some(ADMIN_SECRET.into()),
            ..Default::default()
        };
        let media: Arc<dyn MediaBackend> = Arc::new(engine.clone());
        let rt = Runtime::start(cfg, registry, queue, Some(media));
        let (etx, erx) = mpsc::unbounded_channel();
        let th = rt.register_transport(INFO, Arc::new(Sink(etx)));
        let conn = th.new_instance();
        Gw {
            rt,
            th,
            conn,
            engine,
            events: erx,
            seen: Vec::new(),
        }
    }

    /// A Janus API request; returns the response.
    pub fn req(&self, v: Value) -> Value {
        self.th.request(self.conn, Ok(v), |r| r)
    }

    pub fn admin(&self, mut v: Value) -> Value {
        v["admin_secret"] = json!(ADMIN_SECRET);
        self.th.admin_request(self.conn, Ok(v), |r| r)
    }

    pub fn create_session(&self) -> u64 {
        let r = self.req(json!({"janus": "create", "transaction": tx()}));
        assert_eq!(r["janus"], "success", "{r}");
        r["data"]["id"].as_u64().expect("session id")
    }

    pub fn attach(&self, sid: u64, plugin: &str) -> u64 {
        let r = self.req(
            json!({"janus": "attach", "session_id": sid, "plugin": plugin, "transaction": tx()}),
        );
        assert_eq!(r["janus"], "success", "{r}");
        r["data"]["id"].as_u64().expect("handle id")
    }

    /// A `message` with an optional JSEP; returns the response.
    pub fn message(&self, sid: u64, hid: u64, body: Value, jsep: Option<Value>) -> Value {
        let mut m = json!({"janus": "message", "session_id": sid, "handle_id": hid,
            "transaction": tx(), "body": body});
        if let Some(j) = jsep {
            m["jsep"] = j;
        }
        self.req(m)
    }

    pub fn trickle(&self, sid: u64, hid: u64, field: &str, value: Value) -> Value {
        let mut m = json!({"janus": "trickle", "session_id": sid, "handle_id": hid,
            "transaction": tx()});
        m[field] = value;
        self.req(m)
    }

    pub fn handle_info(&self, sid: u64, hid: u64) -> Value {
        let r = self.admin(
            json!({"janus": "handle_info", "session_id": sid, "handle_id": hid,
            "transaction": tx()}),
        );
        assert_eq!(r["janus"], "success", "{r}");
        r["info"].clone()
    }

    /// Waits up to `d` for an event matching `pred` (earlier unmatched events count too); it
    /// is removed from `seen`.
    pub async fn event_within(
        &mut self,
        d: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + d;
        loop {
            if let Some(i) = self.seen.iter().position(&pred) {
                return Some(self.seen.remove(i));
            }
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(ev)) => self.seen.push(ev),
                _ => return None,
            }
        }
    }

    pub async fn event(&mut self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        match self.event_within(WAIT, pred).await {
            Some(v) => v,
            None => panic!("no {what} event within {WAIT:?}; seen: {:#?}", self.seen),
        }
    }

    /// Takes every event already received (no waiting beyond `d`).
    pub async fn drain(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(Some(ev)) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            self.seen.push(ev);
        }
    }

    /// Sends the client's offer to EchoTest and returns the answer SDP from the event.
    pub async fn echo_offer(&mut self, sid: u64, hid: u64, sdp: &str, trickle: bool) -> String {
        let r = self.message(
            sid,
            hid,
            json!({"audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": sdp, "trickle": trickle})),
        );
        assert_eq!(r["janus"], "ack", "{r}");
        let tx = r["transaction"].clone();
        let ev = self
            .event("echotest answer", |e| {
                e["janus"] == "event" && e["transaction"] == tx
            })
            .await;
        assert_eq!(ev["plugindata"]["plugin"], ECHO, "{ev}");
        assert_eq!(ev["plugindata"]["data"]["result"], "ok", "{ev}");
        assert_eq!(ev["jsep"]["type"], "answer", "{ev}");
        ev["jsep"]["sdp"].as_str().expect("answer sdp").to_owned()
    }

    /// Stops everything this gateway started.
    pub fn stop(self) {
        self.rt.shutdown();
        self.engine.shutdown(Duration::from_secs(2));
    }
}

pub fn is(kind: &'static str, hid: u64) -> impl Fn(&Value) -> bool {
    move |e: &Value| e["janus"] == kind && e["sender"] == hid
}

/// Strips `a=candidate` and `a=end-of-candidates` lines from an SDP.
pub fn strip_candidates(sdp: &str) -> String {
    sdp.split("\r\n")
        .filter(|l| !l.starts_with("a=candidate") && !l.starts_with("a=end-of-candidates"))
        .collect::<Vec<_>>()
        .join("\r\n")
}

pub fn ice_ufrag(sdp: &str) -> Option<String> {
    sdp.lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ice-ufrag:"))
        .map(str::to_owned)
}

/// An RTP payload: a tag byte, a 32-bit counter, filler.
pub fn payload(tag: u8, n: u32) -> Vec<u8> {
    let mut p = vec![tag];
    p.extend_from_slice(&n.to_be_bytes());
    p.extend_from_slice(&[0xAB; 20]);
    p
}

pub fn parse_payload(p: &[u8]) -> Option<(u8, u32)> {
    let tag = *p.first()?;
    let n = u32::from_be_bytes(p.get(1..5)?.try_into().ok()?);
    (p.get(5..) == Some(&[0xAB; 20][..])).then_some((tag, n))
}

/// A WebRTC client: a str0m `Rtc` in RTP mode on a UDP socket on 127.0.0.1.
pub struct Client {
    pub rtc: Rtc,
    sock: tokio::net::UdpSocket,
    pub local: SocketAddr,
    pub connected: bool,
    /// RTP received: (mid, payload).
    pub rtp: Vec<(Mid, Vec<u8>)>,
    /// The same packets' headers: (mid, payload type, extended sequence number, SSRC).
    pub rtp_meta: Vec<(Mid, u8, u64, u32)>,
    /// The same packets' header extension values.
    pub rtp_ext: Vec<ExtensionValues>,
    /// The same packets' marker bits.
    pub rtp_marker: Vec<bool>,
    pub channels: Vec<(ChannelId, String)>,
    /// The offer had a data m-line: once connected, open "JanusDataChannel" as janus.js does
    /// (a server's offer announces no channel of its own).
    open_channel: bool,
    /// Data-channel messages received: (binary, data).
    pub data: Vec<(bool, Vec<u8>)>,
    pub closed: bool,
    /// Keyframe requests (PLI/FIR) the server sent us, by mid.
    pub keyframe_requests: Vec<Mid>,
    /// ICE connection states, in order.
    pub ice: Vec<str0m::IceConnectionState>,
    seq: HashMap<Mid, u64>,
    /// Datagrams that came from somewhere (the servers' addresses).
    pub sources: Vec<SocketAddr>,
    buf: Vec<u8>,
}

impl Client {
    pub async fn new() -> Client {
        Client::with_config(RtcConfig::new()).await
    }

    /// A client with its own codec configuration (payload types…).
    pub async fn with_config(config: RtcConfig) -> Client {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let local = sock.local_addr().expect("addr");
        let mut rtc = config.set_rtp_mode(true).build(Instant::now());
        let c = Candidate::host(local, "udp").expect("candidate");
        rtc.add_local_candidate(c);
        Client {
            rtc,
            sock,
            local,
            connected: false,
            rtp: Vec::new(),
            rtp_meta: Vec::new(),
            rtp_ext: Vec::new(),
            rtp_marker: Vec::new(),
            channels: Vec::new(),
            open_channel: false,
            data: Vec::new(),
            closed: false,
            keyframe_requests: Vec::new(),
            ice: Vec::new(),
            seq: HashMap::new(),
            sources: Vec::new(),
            buf: vec![0; 2048],
        }
    }

    /// Whether ICE reached connected/completed since `ice` was last cleared (after an ICE
    /// restart: the new ICE session formed).
    pub fn ice_restarted(&self) -> bool {
        use str0m::IceConnectionState as S;
        self.ice
            .iter()
            .any(|s| matches!(s, S::Connected | S::Completed))
    }

    /// The client's host candidate as a Janus trickle object.
    pub fn candidate(&self) -> Value {
        let c = Candidate::host(self.local, "udp").expect("candidate");
        json!({"sdpMid": "0", "sdpMLineIndex": 0, "candidate": c.to_sdp_string()})
    }

    /// An offer with these m-lines (and a data channel).
    pub fn offer(
        &mut self,
        audio: bool,
        video: bool,
        data: bool,
    ) -> (String, SdpPendingOffer, Vec<Mid>) {
        let mut api = self.rtc.sdp_api();
        let mut mids = Vec::new();
        if audio {
            mids.push(api.add_media(MediaKind::Audio, Direction::SendRecv, None, None, None));
        }
        if video {
            mids.push(api.add_media(MediaKind::Video, Direction::SendRecv, None, None, None));
        }
        if data {
            api.add_channel("chat".into());
        }
        let (offer, pending) = api.apply().expect("offer");
        (offer.to_sdp_string(), pending, mids)
    }

    /// An ICE-restart offer (same m-lines, new credentials).
    pub fn restart_offer(&mut self) -> (String, SdpPendingOffer) {
        let mut api = self.rtc.sdp_api();
        api.ice_restart(true);
        let (offer, pending) = api.apply().expect("restart offer");
        (offer.to_sdp_string(), pending)
    }

    pub fn accept_answer(&mut self, pending: SdpPendingOffer, sdp: &str) {
        let answer = SdpAnswer::from_sdp_string(sdp).expect("answer parses");
        self.rtc
            .sdp_api()
            .accept_answer(pending, answer)
            .expect("answer accepted");
    }

    pub fn accept_offer(&mut self, sdp: &str) -> String {
        self.open_channel |= sdp.contains("m=application");
        let offer = SdpOffer::from_sdp_string(sdp).expect("offer parses");
        self.rtc
            .sdp_api()
            .accept_offer(offer)
            .expect("offer accepted")
            .to_sdp_string()
    }

    /// Sends one RTP packet on `mid` with the first payload type the remote accepts.
    pub fn send_rtp(&mut self, mid: Mid, payload: Vec<u8>) {
        self.send_rtp_ext(mid, payload, ExtensionValues::default());
    }

    /// [`Client::send_rtp`] with header extension values (an audio level, say).
    pub fn send_rtp_ext(&mut self, mid: Mid, payload: Vec<u8>, ext: ExtensionValues) {
        self.send_rtp_with(mid, payload, ext, true);
    }

    /// [`Client::send_rtp_ext`] with this marker bit (it is set otherwise: one packet per
    /// frame).
    pub fn send_rtp_with(
        &mut self,
        mid: Mid,
        payload: Vec<u8>,
        ext: ExtensionValues,
        marker: bool,
    ) {
        let pt = {
            let media = self.rtc.media(mid).expect("media for mid");
            *media
                .remote_pts()
                .first()
                .expect("a negotiated payload type")
        };
        let kind = self.rtc.media(mid).map(|m| m.kind());
        let seq = self.seq.entry(mid).or_insert(1000);
        *seq += 1;
        let n = *seq;
        let rate: u64 = if kind == Some(MediaKind::Video) {
            3000
        } else {
            960
        };
        let mut api = self.rtc.direct_api();
        let tx = api.stream_tx_by_mid(mid, None).expect("tx stream for mid");
        let w = RtpWrite::new(pt, n.into(), (n * rate) as u32, Instant::now(), payload)
            .marker(marker)
            .ext_vals(ext);
        tx.write_rtp(w);
    }

    /// The next sequence number sent on `mid` will be `next` (to cross a rollover quickly, or
    /// to leave a gap).
    pub fn set_seq(&mut self, mid: Mid, next: u64) {
        self.seq.insert(mid, next.saturating_sub(1));
    }

    pub fn send_text(&mut self, text: &str) {
        let (id, _) = self.channels.first().cloned().expect("an open channel");
        let mut ch = self.rtc.channel(id).expect("channel");
        ch.write(false, text.as_bytes()).expect("channel write");
    }

    fn on_event(&mut self, e: Event) {
        match e {
            Event::Connected => {
                self.connected = true;
                if std::mem::take(&mut self.open_channel) {
                    self.rtc
                        .direct_api()
                        .create_data_channel(str0m::channel::ChannelConfig {
                            label: "JanusDataChannel".into(),
                            ..Default::default()
                        });
                }
            }
            Event::RtpPacket(p) => {
                let mid = self
                    .rtc
                    .direct_api()
                    .stream_rx(&p.header.ssrc)
                    .map(|s| s.mid());
                if let Some(mid) = mid {
                    self.rtp_meta
                        .push((mid, *p.header.payload_type, *p.seq_no, *p.header.ssrc));
                    self.rtp.push((mid, p.payload.to_vec()));
                    self.rtp_ext.push(p.header.ext_vals.clone());
                    self.rtp_marker.push(p.header.marker);
                }
            }
            Event::ChannelOpen(id, label) => self.channels.push((id, label)),
            Event::ChannelData(d) => self.data.push((d.binary, d.data.clone())),
            Event::Closed => self.closed = true,
            Event::KeyframeRequest(k) => self.keyframe_requests.push(k.mid),
            Event::IceConnectionStateChange(s) => self.ice.push(s),
            _ => {}
        }
    }

    /// Drains the Rtc's outputs; returns when it next wants a timeout.
    async fn drive(&mut self) -> Instant {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => return t,
                Ok(Output::Transmit(t)) => {
                    let _ = self.sock.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(e)) => self.on_event(e),
                Err(e) => panic!("client Rtc error: {e}"),
            }
        }
    }

    /// Runs the client until `pred` holds (true) or `d` passes (false).
    pub async fn run_until(&mut self, d: Duration, mut pred: impl FnMut(&Client) -> bool) -> bool {
        let deadline = Instant::now() + d;
        loop {
            let next = self.drive().await;
            if pred(self) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let wake = tokio::time::Instant::from_std(next.min(deadline).max(now));
            let got = tokio::select! {
                r = self.sock.recv_from(&mut self.buf) => r.ok(),
                _ = tokio::time::sleep_until(wake) => None,
            };
            let now = Instant::now();
            let input = match got {
                Some((n, source)) => {
                    if !self.sources.contains(&source) {
                        self.sources.push(source);
                    }
                    let data = self.buf[..n].to_vec();
                    let Ok(contents) = data.as_slice().try_into() else {
                        continue;
                    };
                    let input = Input::Receive(
                        now,
                        Receive {
                            proto: Protocol::Udp,
                            source,
                            destination: self.local,
                            contents,
                        },
                    );
                    if self.rtc.accepts(&input) {
                        if let Err(e) = self.rtc.handle_input(input) {
                            panic!("client input: {e}");
                        }
                    }
                    continue;
                }
                None => Input::Timeout(now),
            };
            self.rtc.handle_input(input).expect("client timeout input");
        }
    }

    /// Runs for `d` regardless.
    pub async fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false).await;
    }

    /// Sends `n` packets on `mid` tagged `tag` (10 ms apart, driving the client meanwhile) and
    /// waits up to `d` until every counter came back on a mid of the same kind; returns the
    /// counters that came back.
    pub async fn echo_round(&mut self, mid: Mid, tag: u8, n: u32, d: Duration) -> Vec<u32> {
        let kind = self.rtc.media(mid).expect("media").kind();
        let start = self.rtp.len();
        for i in 0..n {
            self.send_rtp(mid, payload(tag, i));
            self.run_for(Duration::from_millis(10)).await;
        }
        let back = |c: &Client| -> Vec<u32> {
            let mut v: Vec<u32> = c.rtp[start..]
                .iter()
                .filter(|(m, _)| c.rtc.media(*m).is_some_and(|x| x.kind() == kind))
                .filter_map(|(_, p)| parse_payload(p))
                .filter(|(t, _)| *t == tag)
                .map(|(_, n)| n)
                .collect();
            v.sort_unstable();
            v.dedup();
            v
        };
        self.run_until(d, |c| back(c).len() as u32 >= n).await;
        back(self)
    }
}

/// The mids of an SDP's m-lines of this media type (`audio`, `video`, `application`), in order.
pub fn mids_in(sdp: &str, media: &str) -> Vec<Mid> {
    jano_media::sdp::m_lines(sdp)
        .into_iter()
        .filter(|m| m.media == media && m.port != 0)
        .filter_map(|m| m.mid)
        .map(|m| Mid::from(m.as_str()))
        .collect()
}

/// A plugin that offers: `{"request":"offer"}` pushes an offer (audio + video sendrecv and a
/// data channel, optionally an ICE restart); `{"request":"send","pt":N,"count":N,"base":N}`
/// sends `count` audio packets of its own (sequence numbers from `base`), tagged `P`, and a data
/// message.
pub struct Offerer {
    services: Arc<dyn CoreServices>,
}

pub const OFFERER: &str = "janus.plugin.offertest";

const OFFERER_INFO: PluginInfo = PluginInfo {
    package: OFFERER,
    name: "offer test",
    author: "jano",
    description: "offers to the client",
    version: 1,
    version_string: "0.0.1",
};

impl Plugin for Offerer {
    fn info(&self) -> &PluginInfo {
        &OFFERER_INFO
    }
    fn create_session(&self, _h: &HandleRef) -> Result<SessionRef, i32> {
        Ok(Arc::new(NoState))
    }
    fn destroy_session(&self, _h: &HandleRef, _session: &SessionRef) -> Result<(), i32> {
        Ok(())
    }
    fn handle_message(
        &self,
        handle: &HandleRef,
        _session: &SessionRef,
        transaction: &str,
        body: Map<String, Value>,
        jsep: Option<Jsep>,
    ) -> PluginResult {
        let ev = |v: Value| match v {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        match body.get("request").and_then(Value::as_str) {
            Some("offer") => {
                let restart = body.get("restart").and_then(Value::as_bool) == Some(true);
                // `"media": [{"kind","send","recv","mid"}…]` picks the m-lines (default: audio
                // and video, both ways); the event gets the mids as `"mids"`.
                let media = match body.get("media").and_then(Value::as_array) {
                    Some(list) => list
                        .iter()
                        .map(|m| {
                            let kind = if m["kind"] == "audio" {
                                PluginKind::Audio
                            } else {
                                PluginKind::Video
                            };
                            let mut o = OfferMedia::new(
                                kind,
                                m["send"].as_bool().unwrap_or(true),
                                m["recv"].as_bool().unwrap_or(false),
                            );
                            o.mid = m["mid"].as_str().map(str::to_owned);
                            o.codec = m["codec"].as_str().map(str::to_owned);
                            o.simulcast = m["simulcast"].as_array().map(|r| {
                                r.iter()
                                    .filter_map(|x| x.as_str().map(str::to_owned))
                                    .collect()
                            });
                            o
                        })
                        .collect(),
                    None => vec![
                        OfferMedia::new(PluginKind::Audio, true, true),
                        OfferMedia::new(PluginKind::Video, true, true),
                    ],
                };
                let offer = LocalJsep::Offer {
                    media,
                    data: body.get("data").and_then(Value::as_bool).unwrap_or(true),
                    prefs: MediaPrefs::default(),
                    restart,
                    fill: Some(OfferFill(Arc::new(|ev, mids| {
                        ev.insert("mids".into(), json!(mids.media));
                    }))),
                };
                let _ = self.services.push_event(
                    handle,
                    Some(transaction.into()),
                    ev(json!({"offertest": "offer"})),
                    Some(offer),
                );
            }
            Some("send") => {
                let pt = body.get("pt").and_then(Value::as_u64).unwrap_or(111) as u8;
                let count = body.get("count").and_then(Value::as_u64).unwrap_or(10) as u32;
                let base = body.get("base").and_then(Value::as_u64).unwrap_or(5000);
                let s = self.services.clone();
                let h = handle.clone();
                std::thread::spawn(move || {
                    for i in 0..count {
                        let p = RtpPacket {
                            mindex: 0,
                            kind: PluginKind::Audio,
                            pt,
                            codec: "opus",
                            seq: base + u64::from(i),
                            timestamp: 960 * (base as u32 + i),
                            marker: false,
                            ssrc: 1234,
                            substream: None,
                            ext: Default::default(),
                            payload: payload(b'P', i).into(),
                            svc: None,
                        };
                        s.relay_rtp(&h, &p);
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    s.relay_data(
                        &h,
                        &DataMessage {
                            label: None,
                            protocol: None,
                            binary: false,
                            buffer: b"plugin says hi",
                        },
                    );
                });
                let _ = self.services.push_event(
                    handle,
                    Some(transaction.into()),
                    ev(json!({"offertest": "sending"})),
                    None,
                );
            }
            Some("layers") => {
                // `count` VP8 packets per simulcast layer (substream 0, 1, 2; SSRC 100 + layer,
                // payload tag b'0' + layer) on m-line `mindex`.
                let count = body.get("count").and_then(Value::as_u64).unwrap_or(10) as u32;
                let mindex = body.get("mindex").and_then(Value::as_u64).unwrap_or(0) as usize;
                let s = self.services.clone();
                let h = handle.clone();
                std::thread::spawn(move || {
                    for i in 0..count {
                        for layer in 0..3u8 {
                            let p = RtpPacket {
                                mindex,
                                kind: PluginKind::Video,
                                pt: 96,
                                codec: "vp8",
                                seq: 20_000 + u64::from(i),
                                timestamp: 3000 * i,
                                marker: true,
                                ssrc: 100 + u32::from(layer),
                                substream: Some(layer),
                                ext: Default::default(),
                                payload: payload(b'0' + layer, i).into(),
                                svc: None,
                            };
                            s.relay_rtp(&h, &p);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
                let _ = self.services.push_event(
                    handle,
                    Some(transaction.into()),
                    ev(json!({"offertest": "sending"})),
                    None,
                );
            }
            _ => {
                let got = jsep.map(|j| j.kind == JsepType::Answer);
                let _ = self.services.push_event(
                    handle,
                    Some(transaction.into()),
                    ev(json!({"offertest": "event", "got_answer": got})),
                    None,
                );
            }
        }
        PluginResult::OkWait(None)
    }
}

pub fn offerer_opts() -> Opts {
    Opts {
        plugins: Box::new(|q| {
            vec![Arc::new(Offerer {
                services: q.services_for(OFFERER),
            }) as Arc<dyn Plugin>]
        }),
        ..Opts::default()
    }
}

/// The first payload type of an m-line of this media type in an SDP.
pub fn first_pt(sdp: &str, media: &str) -> u8 {
    sdp.lines()
        .find_map(|l| l.strip_prefix(&format!("m={media} ")))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|p| p.trim().parse().ok())
        .expect("payload type")
}

/// Sends `body` to the `Offerer` and returns its event, which must carry an offer.
pub async fn plugin_offer_event(gw: &mut Gw, sid: u64, hid: u64, body: Value) -> Value {
    let r = gw.message(sid, hid, body, None);
    assert_eq!(r["janus"], "ack", "{r}");
    let t = r["transaction"].clone();
    let ev = gw
        .event("plugin offer", |e| {
            e["janus"] == "event" && e["transaction"] == t
        })
        .await;
    assert_eq!(ev["jsep"]["type"], "offer", "{ev}");
    ev
}

/// Asks the `Offerer` for an offer (optionally an ICE restart); returns its SDP.
pub async fn offer_from_plugin(gw: &mut Gw, sid: u64, hid: u64, restart: bool) -> String {
    let body = json!({"request": "offer", "restart": restart});
    let ev = plugin_offer_event(gw, sid, hid, body).await;
    ev["jsep"]["sdp"].as_str().expect("sdp").to_owned()
}

/// Sends the client's answer to the `Offerer` and waits for its event.
pub async fn answer_to_plugin(gw: &mut Gw, sid: u64, hid: u64, answer: &str) {
    let r = gw.message(
        sid,
        hid,
        json!({}),
        Some(json!({"type": "answer", "sdp": answer})),
    );
    assert_eq!(r["janus"], "ack", "{r}");
    let t = r["transaction"].clone();
    gw.event("answer taken", |e| {
        e["janus"] == "event" && e["transaction"] == t
    })
    .await;
}
