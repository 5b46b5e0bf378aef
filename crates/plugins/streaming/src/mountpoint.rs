//! A mountpoint: its settings (from `create` or a category of `janus.plugin.streaming.jcfg`),
//! its sources (one UDP socket per RTP stream, read by a task on the gateway's runtime) and
//! the viewers its packets fan out to.

use crate::error::{StError, StResult};
use jano_plugin::fields::{opt_array, opt_bool, opt_str, opt_u64, Body};
use jano_plugin::rtp::{parse_rtp, SeqExt};
use jano_plugin::{
    CoreServices, Dest, Fanout, HandleRef, MediaKind, MediaRouter, RtpExtensions, RtpPacket, Value,
};
use serde_json::json;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// A mountpoint id: an integer, or a string with `string_ids`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MpId {
    Num(u64),
    Str(String),
}

impl fmt::Display for MpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MpId::Num(n) => write!(f, "{n}"),
            MpId::Str(s) => f.write_str(s),
        }
    }
}

impl MpId {
    pub fn to_json(&self) -> Value {
        match self {
            MpId::Num(n) => json!(n),
            MpId::Str(s) => json!(s),
        }
    }

    /// `id` of a request (`Ok(None)` when absent).
    pub fn opt(b: &Body, strings: bool) -> StResult<Option<MpId>> {
        match (b.get("id"), strings) {
            (None | Some(Value::Null), _) => Ok(None),
            (Some(Value::String(s)), true) => Ok(Some(MpId::Str(s.clone()))),
            (Some(v), false) if v.as_u64().is_some() => Ok(v.as_u64().map(MpId::Num)),
            (_, true) => Err(StError::invalid_type("id", "a string")),
            (_, false) => Err(StError::invalid_type("id", "a positive integer")),
        }
    }

    pub fn req(b: &Body, strings: bool) -> StResult<MpId> {
        MpId::opt(b, strings)?.ok_or(StError::Missing("id"))
    }

    pub fn random(strings: bool) -> MpId {
        // JS-safe, as Janus keeps them.
        let n = rand::random::<u64>() & ((1 << 53) - 1);
        if strings {
            MpId::Str(n.to_string())
        } else {
            MpId::Num(n.max(1))
        }
    }
}

/// What kind of media a stream carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    Audio,
    Video,
    Data,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Audio => "audio",
            StreamKind::Video => "video",
            StreamKind::Data => "data",
        }
    }

    fn media(self) -> Option<MediaKind> {
        match self {
            StreamKind::Audio => Some(MediaKind::Audio),
            StreamKind::Video => Some(MediaKind::Video),
            StreamKind::Data => None,
        }
    }
}

/// One stream of a mountpoint, as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamCfg {
    pub kind: StreamKind,
    pub mid: String,
    pub label: String,
    pub msid: Option<String>,
    /// The port asked for (0: a free one).
    pub port: u16,
    /// `rtcpport`: a port for the source's RTCP, where keyframe requests go back (0: a free
    /// one); none: no feedback to the source.
    pub rtcp_port: Option<u16>,
    /// Where to bind (`iface`): an address; all interfaces when absent.
    pub iface: Option<IpAddr>,
    pub pt: Option<u8>,
    /// Janus's codec name (`opus`, `vp8`…), from `codec` or the `rtpmap`.
    pub codec: Option<&'static str>,
    pub rtpmap: Option<String>,
    pub fmtp: Option<String>,
    /// Data: binary rather than text.
    pub binary: bool,
}

fn codec_of(name: &str) -> Option<&'static str> {
    jano_plugin::rtp::codec_name(name)
}

/// The codec an `rtpmap` (`opus/48000/2`, or `111 opus/48000/2`) names.
fn codec_of_rtpmap(rtpmap: &str) -> Option<&'static str> {
    let enc = rtpmap.split_whitespace().last()?;
    codec_of(enc.split('/').next()?)
}

impl StreamCfg {
    fn new(kind: StreamKind, mid: String) -> StreamCfg {
        StreamCfg {
            kind,
            label: match kind {
                StreamKind::Audio => "audio",
                StreamKind::Video => "video",
                StreamKind::Data => "data",
            }
            .to_owned(),
            mid,
            msid: None,
            port: 0,
            rtcp_port: None,
            iface: None,
            pt: None,
            codec: None,
            rtpmap: None,
            fmtp: None,
            binary: false,
        }
    }

    /// Fills codec/rtpmap from each other and checks what a stream needs.
    fn finish(mut self) -> StResult<StreamCfg> {
        if self.kind != StreamKind::Data {
            if self.codec.is_none() {
                self.codec = self.rtpmap.as_deref().and_then(codec_of_rtpmap);
            }
            if self.codec.is_none() {
                return Err(StError::CantCreate(format!(
                    "Can't add 'rtp' stream, missing codec or rtpmap for {}",
                    self.kind.as_str()
                )));
            }
            // Janus reads a missing payload type as 0.
            self.pt.get_or_insert(0);
        }
        Ok(self)
    }

    /// One element of a multistream `media` list.
    fn from_json(o: &Body) -> StResult<StreamCfg> {
        let kind = match opt_str(o, "type")?.ok_or(StError::Missing("type"))? {
            "audio" => StreamKind::Audio,
            "video" => StreamKind::Video,
            "data" => StreamKind::Data,
            _ => {
                return Err(StError::CantCreate(
                    "Unsupported media type in media stream".into(),
                ))
            }
        };
        let mid = opt_str(o, "mid")?
            .ok_or(StError::Missing("mid"))?
            .to_owned();
        let mut s = StreamCfg::new(kind, mid);
        if let Some(l) = opt_str(o, "label")? {
            s.label = l.to_owned();
        }
        s.msid = opt_str(o, "msid")?.map(str::to_owned);
        s.port = port(opt_u64(o, "port")?)?;
        if s.kind != StreamKind::Data {
            s.rtcp_port = opt_u64(o, "rtcpport")?.map(|p| port(Some(p))).transpose()?;
        }
        s.iface = iface(opt_str(o, "iface")?)?;
        s.pt = opt_u64(o, "pt")?.map(|v| (v & 0x7f) as u8);
        s.codec = opt_str(o, "codec")?.and_then(codec_of);
        s.rtpmap = opt_str(o, "rtpmap")?.map(str::to_owned);
        s.fmtp = opt_str(o, "fmtp")?.map(str::to_owned);
        s.binary = datatype(opt_str(o, "datatype")?)?;
        s.finish()
    }

    /// The legacy single-stream keys (`audio`, `audioport`, `audiopt`, `audiocodec`…) for one
    /// kind, when that kind is on.
    fn from_legacy(b: &Body, kind: StreamKind) -> StResult<Option<StreamCfg>> {
        let k = kind.as_str();
        let key = |suffix: &str| -> &'static str { legacy_key(kind, suffix) };
        if !opt_bool(b, k)?.unwrap_or(false) {
            return Ok(None);
        }
        let mid = match kind {
            StreamKind::Audio => "a",
            StreamKind::Video => "v",
            StreamKind::Data => "d",
        };
        let mut s = StreamCfg::new(kind, mid.to_owned());
        s.port = port(opt_u64(b, key("port"))?)?;
        s.iface = iface(opt_str(b, key("iface"))?)?;
        if kind != StreamKind::Data {
            s.rtcp_port = opt_u64(b, key("rtcpport"))?
                .map(|p| port(Some(p)))
                .transpose()?;
            // Required in this syntax (not in the multistream one), as Janus validates it.
            let pt = opt_u64(b, key("pt"))?.ok_or(StError::Missing(key("pt")))?;
            s.pt = Some((pt & 0x7f) as u8);
            s.codec = opt_str(b, key("codec"))?.and_then(codec_of);
            s.rtpmap = opt_str(b, key("rtpmap"))?.map(str::to_owned);
            s.fmtp = opt_str(b, key("fmtp"))?.map(str::to_owned);
        } else {
            s.binary = datatype(opt_str(b, "datatype")?)?;
        }
        s.finish().map(Some)
    }
}

fn legacy_key(kind: StreamKind, suffix: &str) -> &'static str {
    match (kind, suffix) {
        (StreamKind::Audio, "port") => "audioport",
        (StreamKind::Audio, "rtcpport") => "audiortcpport",
        (StreamKind::Video, "rtcpport") => "videortcpport",
        (StreamKind::Audio, "iface") => "audioiface",
        (StreamKind::Audio, "pt") => "audiopt",
        (StreamKind::Audio, "codec") => "audiocodec",
        (StreamKind::Audio, "rtpmap") => "audiortpmap",
        (StreamKind::Audio, "fmtp") => "audiofmtp",
        (StreamKind::Video, "port") => "videoport",
        (StreamKind::Video, "iface") => "videoiface",
        (StreamKind::Video, "pt") => "videopt",
        (StreamKind::Video, "codec") => "videocodec",
        (StreamKind::Video, "rtpmap") => "videortpmap",
        (StreamKind::Video, "fmtp") => "videofmtp",
        (StreamKind::Data, "port") => "dataport",
        (StreamKind::Data, "iface") => "dataiface",
        _ => "unknown",
    }
}

fn port(v: Option<u64>) -> StResult<u16> {
    match v {
        None => Ok(0),
        Some(p) => u16::try_from(p).map_err(|_| StError::Invalid("Invalid port".into())),
    }
}

fn iface(v: Option<&str>) -> StResult<Option<IpAddr>> {
    match v {
        None => Ok(None),
        Some(s) => s.parse().map(Some).map_err(|_| {
            StError::CantCreate("Invalid network interface configuration for media stream".into())
        }),
    }
}

fn datatype(v: Option<&str>) -> StResult<bool> {
    match v {
        None | Some("text") => Ok(false),
        Some("binary") => Ok(true),
        Some(_) => Err(StError::Invalid(
            "Invalid element (datatype can only be text or binary)".into(),
        )),
    }
}

/// `rtp_port_range`: where streams asked to take any port (`port = 0`) take one, in turn.
#[derive(Debug)]
pub struct PortRange {
    lo: u16,
    hi: u16,
    next: std::sync::atomic::AtomicU32,
}

impl PortRange {
    /// From `min-max` (Janus's format; default 10000-60000, the bounds swapped if reversed).
    pub fn parse(text: Option<&str>) -> PortRange {
        let (mut lo, mut hi) = text
            .and_then(|t| t.split_once('-'))
            .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)))
            .unwrap_or((10000u16, 60000u16));
        if lo > hi {
            std::mem::swap(&mut lo, &mut hi);
        }
        PortRange {
            lo: lo.max(1),
            hi: hi.max(1),
            next: std::sync::atomic::AtomicU32::new(0),
        }
    }

    /// Binds the next free port of the range on `ip`.
    fn bind(&self, ip: IpAddr) -> std::io::Result<UdpSocket> {
        let span = u32::from(self.hi - self.lo) + 1;
        let mut last = None;
        for _ in 0..span {
            let off = self.next.fetch_add(1, Ordering::Relaxed) % span;
            let port = self.lo.saturating_add(off as u16);
            match UdpSocket::bind(SocketAddr::new(ip, port)) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| std::io::Error::other("empty port range")))
    }
}

/// A mountpoint's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MpConfig {
    pub name: String,
    pub description: String,
    pub metadata: Option<String>,
    pub is_private: bool,
    pub secret: Option<String>,
    pub pin: Option<String>,
    pub streams: Vec<StreamCfg>,
    /// Created with the single-stream keys: `create` answers with the flat port fields.
    pub legacy: bool,
}

impl MpConfig {
    /// The settings of an `rtp` mountpoint from a `create` request (or a configuration
    /// category turned into the same shape).
    pub fn rtp_from(b: &Body, id: &MpId) -> StResult<MpConfig> {
        let mut streams = Vec::new();
        let media = opt_array(b, "media")?;
        let legacy = media.is_none();
        match media {
            Some(list) => {
                for v in list {
                    let o = v
                        .as_object()
                        .ok_or_else(|| StError::invalid_type("media", "an array of objects"))?;
                    let s = StreamCfg::from_json(o)?;
                    if streams.iter().any(|x: &StreamCfg| x.mid == s.mid) {
                        return Err(StError::CantCreate(format!("Duplicate mid {}", s.mid)));
                    }
                    streams.push(s);
                }
            }
            None => {
                for kind in [StreamKind::Audio, StreamKind::Video, StreamKind::Data] {
                    if let Some(s) = StreamCfg::from_legacy(b, kind)? {
                        streams.push(s);
                    }
                }
            }
        }
        if streams.is_empty() {
            return Err(StError::CantCreate(
                "Can't add 'rtp' stream, no audio or video have to be streamed...".into(),
            ));
        }
        let name = opt_str(b, "name")?
            .map(str::to_owned)
            .unwrap_or_else(|| id.to_string());
        Ok(MpConfig {
            description: opt_str(b, "description")?
                .map(str::to_owned)
                .unwrap_or_else(|| name.clone()),
            name,
            metadata: opt_str(b, "metadata")?.map(str::to_owned),
            is_private: opt_bool(b, "is_private")?.unwrap_or(false),
            secret: opt_str(b, "secret")?.map(str::to_owned),
            pin: opt_str(b, "pin")?.map(str::to_owned),
            streams,
            legacy,
        })
    }
}

/// One RTP (or data) source of a mountpoint: its socket and the viewers of its packets.
pub struct Source {
    pub cfg: StreamCfg,
    pub mindex: usize,
    pub socket: Arc<UdpSocket>,
    pub local_port: u16,
    /// The RTCP socket (`rtcpport`), and where the source's own RTCP came from: keyframe
    /// requests go there.
    rtcp: Option<Arc<UdpSocket>>,
    pub rtcp_local_port: Option<u16>,
    rtcp_peer: Mutex<Option<SocketAddr>>,
    /// The SSRC the source sends with (what a PLI names).
    last_ssrc: std::sync::atomic::AtomicU32,
    throttle: Mutex<jano_plugin::KeyframeThrottle>,
    fan: RwLock<Option<Fanout>>,
    /// Viewers of a data stream (data goes through the plugin, not the fan-out).
    data_viewers: RwLock<Vec<HandleRef>>,
    pub packets: AtomicU64,
    /// The mountpoint is enabled: packets go to the viewers.
    enabled: AtomicBool,
    /// Milliseconds since `epoch` of the last packet (0: none yet).
    last_ms: AtomicU64,
    epoch: Instant,
    stop: AtomicBool,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source")
            .field("mid", &self.cfg.mid)
            .field("port", &self.local_port)
            .finish_non_exhaustive()
    }
}

impl Source {
    fn bind(
        cfg: StreamCfg,
        mindex: usize,
        router: Option<&Arc<dyn MediaRouter>>,
        ports: &PortRange,
    ) -> StResult<Source> {
        let ip = cfg.iface.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let socket = match cfg.port {
            0 => ports.bind(ip),
            p => UdpSocket::bind(SocketAddr::new(ip, p)),
        }
        .map_err(|e| {
            StError::CantCreate(format!(
                "Can't add 'rtp' stream, error creating {} source stream: {e}",
                cfg.kind.as_str()
            ))
        })?;
        let local_port = socket.local_addr().map(|a| a.port()).unwrap_or(0);
        let rtcp = match cfg.rtcp_port {
            None => None,
            Some(0) => Some(ports.bind(ip)),
            Some(p) => Some(UdpSocket::bind(SocketAddr::new(ip, p))),
        }
        .transpose()
        .map_err(|e| {
            StError::CantCreate(format!(
                "Can't add 'rtp' stream, error creating {} RTCP socket: {e}",
                cfg.kind.as_str()
            ))
        })?;
        let rtcp_local_port = rtcp
            .as_ref()
            .and_then(|s| s.local_addr().ok())
            .map(|a| a.port());
        Ok(Source {
            cfg,
            mindex,
            socket: Arc::new(socket),
            local_port,
            rtcp: rtcp.map(Arc::new),
            rtcp_local_port,
            rtcp_peer: Mutex::new(None),
            last_ssrc: std::sync::atomic::AtomicU32::new(0),
            throttle: Mutex::new(jano_plugin::KeyframeThrottle::new(Duration::from_millis(
                500,
            ))),
            fan: RwLock::new(router.map(|r| Fanout::new(r.clone()))),
            data_viewers: RwLock::new(Vec::new()),
            packets: AtomicU64::new(0),
            enabled: AtomicBool::new(true),
            last_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
        })
    }

    /// Milliseconds since the last packet, if one came.
    pub fn age_ms(&self) -> Option<u64> {
        let last = self.last_ms.load(Ordering::Relaxed);
        (last != 0).then(|| (self.epoch.elapsed().as_millis() as u64).saturating_sub(last))
    }

    /// Asks the source for a keyframe (RTCP PLI to where its RTCP comes from), at most twice
    /// a second; nothing without `rtcpport` or before the source sent RTCP.
    pub fn request_keyframe(&self) {
        let (Some(sock), Some(peer)) = (
            &self.rtcp,
            *self.rtcp_peer.lock().unwrap_or_else(|e| e.into_inner()),
        ) else {
            return;
        };
        let allow = self
            .throttle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .allow(Instant::now());
        if !allow {
            return;
        }
        let mut pli = vec![0x81, 206, 0, 2, 0, 0, 0, 1];
        pli.extend_from_slice(&self.last_ssrc.load(Ordering::Relaxed).to_be_bytes());
        let _ = sock.send_to(&pli, peer);
    }

    /// A viewer's m-line starts receiving this stream; a new `epoch` (after a pause) makes the
    /// engine start a new sequence segment, so the viewer sees no gap for what it missed.
    pub fn add_viewer(&self, h: &HandleRef, mindex: usize, epoch: u32) {
        if self.cfg.kind == StreamKind::Data {
            let mut g = self.data_viewers.write().unwrap_or_else(|e| e.into_inner());
            if !g.iter().any(|x| x.handle_id == h.handle_id) {
                g.push(h.clone());
            }
            return;
        }
        let mut g = self.fan.write().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.as_mut() {
            let mut d = Dest::new(h.handle_id, mindex);
            d.epoch = epoch;
            f.insert(d);
        }
    }

    pub fn remove_viewer(&self, handle_id: u64, mindex: usize) {
        self.data_viewers
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.handle_id != handle_id);
        let mut g = self.fan.write().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.as_mut() {
            f.remove_dest(handle_id, mindex);
        }
    }

    pub fn viewers(&self) -> usize {
        let fan = self
            .fan
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, Fanout::len);
        fan + self
            .data_viewers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// One datagram from the source.
    fn on_datagram(&self, data: &[u8], seq: &mut SeqExt, services: &dyn CoreServices) {
        self.packets.fetch_add(1, Ordering::Relaxed);
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        self.last_ms.store(now, Ordering::Relaxed);
        if !self.enabled.load(Ordering::Relaxed) {
            return;
        }
        if self.cfg.kind == StreamKind::Data {
            let viewers = self
                .data_viewers
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            for h in viewers {
                services.relay_data(
                    &h,
                    &jano_plugin::DataMessage {
                        label: None,
                        protocol: None,
                        binary: self.cfg.binary,
                        buffer: data,
                    },
                );
            }
            return;
        }
        let (Some(h), Some(kind), Some(codec)) =
            (parse_rtp(data), self.cfg.kind.media(), self.cfg.codec)
        else {
            return;
        };
        self.last_ssrc.store(h.ssrc, Ordering::Relaxed);
        let payload = data.get(h.payload_at..h.payload_end).unwrap_or_default();
        let packet = RtpPacket {
            mindex: self.mindex,
            kind,
            pt: h.pt,
            codec,
            seq: seq.extend(h.seq),
            timestamp: h.ts,
            marker: h.marker,
            ssrc: h.ssrc,
            substream: None,
            ext: RtpExtensions::default(),
            payload: Arc::from(payload),
            svc: None,
        };
        let g = self.fan.read().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = g.as_ref() {
            f.send(&packet);
        }
    }

    fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}

/// A mountpoint and its viewers.
pub struct Mountpoint {
    pub id: MpId,
    cfg: Mutex<MpConfig>,
    pub sources: Vec<Arc<Source>>,
    /// Handles watching it (for `destroyed`, `kick_all`…).
    viewers: Mutex<Vec<HandleRef>>,
    destroyed: AtomicBool,
}

impl std::fmt::Debug for Mountpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mountpoint")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Mountpoint {
    /// Binds every source socket (all or nothing) and starts reading them.
    pub fn start(
        id: MpId,
        cfg: MpConfig,
        services: &Arc<dyn CoreServices>,
        ports: &PortRange,
    ) -> StResult<Arc<Mountpoint>> {
        let router = services.media_router();
        let mut sources = Vec::new();
        for (i, s) in cfg.streams.iter().enumerate() {
            sources.push(Arc::new(Source::bind(
                s.clone(),
                i,
                router.as_ref(),
                ports,
            )?));
        }
        let mp = Arc::new(Mountpoint {
            id,
            cfg: Mutex::new(cfg),
            sources,
            viewers: Mutex::new(Vec::new()),
            destroyed: AtomicBool::new(false),
        });
        for s in &mp.sources {
            spawn_reader(services, s);
            spawn_rtcp_reader(services, s);
        }
        Ok(mp)
    }

    pub fn cfg(&self) -> MutexGuard<'_, MpConfig> {
        self.cfg.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn viewers(&self) -> Vec<HandleRef> {
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn add_viewer(&self, h: &HandleRef) {
        let mut g = self.viewers.lock().unwrap_or_else(|e| e.into_inner());
        if !g.iter().any(|x| x.handle_id == h.handle_id) {
            g.push(h.clone());
        }
    }

    pub fn remove_viewer(&self, handle_id: u64) {
        self.viewers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|x| x.handle_id != handle_id);
        for s in &self.sources {
            s.remove_viewer(handle_id, s.mindex);
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.sources
            .iter()
            .all(|s| s.enabled.load(Ordering::Relaxed))
    }

    pub fn set_enabled(&self, on: bool) {
        for s in &self.sources {
            s.enabled.store(on, Ordering::Relaxed);
        }
    }

    /// Gone from the plugin (its viewers no longer watch it).
    pub fn mark_destroyed(&self) {
        self.destroyed.store(true, Ordering::Release);
        self.stop();
    }

    pub fn is_destroyed(&self) -> bool {
        self.destroyed.load(Ordering::Acquire)
    }

    /// Stops reading the sources (their sockets close when the readers end).
    pub fn stop(&self) {
        for s in &self.sources {
            s.stop();
        }
    }

    /// The `media` list `list`/`info` show.
    pub fn media_json(&self, full: bool) -> Vec<Value> {
        self.sources
            .iter()
            .map(|s| {
                let mut m = jano_plugin::Map::new();
                m.insert("mid".into(), json!(s.cfg.mid));
                if full {
                    m.insert("mindex".into(), json!(s.mindex));
                }
                m.insert("type".into(), json!(s.cfg.kind.as_str()));
                m.insert("label".into(), json!(s.cfg.label));
                if let Some(msid) = &s.cfg.msid {
                    m.insert("msid".into(), json!(msid));
                }
                if let Some(age) = s.age_ms() {
                    m.insert("age_ms".into(), json!(age));
                }
                if full {
                    if let Some(pt) = s.cfg.pt {
                        m.insert("pt".into(), json!(pt));
                    }
                    if let Some(c) = s.cfg.codec {
                        m.insert("codec".into(), json!(c));
                    }
                    if let Some(p) = s.rtcp_local_port {
                        m.insert("rtcp_port".into(), json!(p));
                    }
                    if let Some(r) = &s.cfg.rtpmap {
                        m.insert("rtpmap".into(), json!(r));
                    }
                    if let Some(f) = &s.cfg.fmtp {
                        m.insert("fmtp".into(), json!(f));
                    }
                }
                Value::Object(m)
            })
            .collect()
    }
}

impl Drop for Mountpoint {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a source's socket on the gateway's runtime until the mountpoint goes.
fn spawn_reader(services: &Arc<dyn CoreServices>, s: &Arc<Source>) {
    let (src, svc) = (s.clone(), services.clone());
    services.spawn(Box::pin(async move {
        let Ok(sock) = src.socket.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        }) else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        let mut seq = SeqExt::default();
        loop {
            if src.stop.load(Ordering::Acquire) {
                return;
            }
            let n =
                match tokio::time::timeout(Duration::from_millis(500), sock.recv(&mut buf)).await {
                    Ok(Ok(n)) => n,
                    Ok(Err(_)) | Err(_) => continue,
                };
            if let Some(data) = buf.get(..n) {
                src.on_datagram(data, &mut seq, &*svc);
            }
        }
    }));
}

/// Learns where the source's RTCP comes from (its content is not needed).
fn spawn_rtcp_reader(services: &Arc<dyn CoreServices>, s: &Arc<Source>) {
    let Some(rtcp) = s.rtcp.clone() else { return };
    let src = s.clone();
    services.spawn(Box::pin(async move {
        let Ok(sock) = rtcp.try_clone().and_then(|s| {
            s.set_nonblocking(true)?;
            tokio::net::UdpSocket::from_std(s)
        }) else {
            return;
        };
        let mut buf = vec![0u8; 2048];
        loop {
            if src.stop.load(Ordering::Acquire) {
                return;
            }
            if let Ok(Ok((_, from))) =
                tokio::time::timeout(Duration::from_millis(500), sock.recv_from(&mut buf)).await
            {
                *src.rtcp_peer.lock().unwrap_or_else(|e| e.into_inner()) = Some(from);
            }
        }
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(v: Value) -> Body {
        match v {
            Value::Object(m) => m,
            _ => Body::new(),
        }
    }

    #[test]
    fn multistream_and_legacy_settings() {
        let c = MpConfig::rtp_from(
            &body(json!({"media": [
                {"type": "audio", "mid": "a1", "port": 0, "pt": 111, "rtpmap": "opus/48000/2"},
                {"type": "video", "mid": "v1", "port": 0, "pt": 96, "codec": "VP8"},
                {"type": "data", "mid": "d1", "datatype": "binary"}
            ]})),
            &MpId::Num(7),
        )
        .expect("config");
        assert!(!c.legacy);
        assert_eq!(c.name, "7");
        let codecs: Vec<_> = c.streams.iter().map(|s| s.codec).collect();
        assert_eq!(codecs, vec![Some("opus"), Some("vp8"), None]);
        assert!(c.streams[2].binary);
        let c = MpConfig::rtp_from(
            &body(
                json!({"name": "cam", "audio": true, "audioport": 5002, "audiopt": 0,
                         "audiortpmap": "PCMU/8000", "video": false}),
            ),
            &MpId::Num(1),
        )
        .expect("legacy");
        assert!(c.legacy);
        assert_eq!(c.streams.len(), 1);
        assert_eq!(
            (c.streams[0].port, c.streams[0].codec),
            (5002, Some("pcmu"))
        );
        let e = MpConfig::rtp_from(&body(json!({"video": true, "videopt": 96})), &MpId::Num(1));
        assert_eq!(e.map(|_| ()).map_err(|e| e.code()), Err(456));
        let e = MpConfig::rtp_from(
            &body(json!({"video": true, "videocodec": "vp8"})),
            &MpId::Num(1),
        );
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.to_string()),
            Err("Missing mandatory element (videopt)".into())
        );
        let e = MpConfig::rtp_from(&body(json!({"audio": false})), &MpId::Num(1));
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.to_string()),
            Err("Can't add 'rtp' stream, no audio or video have to be streamed...".into())
        );
    }
}
