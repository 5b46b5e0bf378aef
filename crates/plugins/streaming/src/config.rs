//! A mountpoint's settings, from `create` or a category of `janus.plugin.streaming.jcfg`:
//! its streams (multistream `media` list or the legacy single-stream keys), or the file of a
//! `live`/`ondemand` mountpoint; and the port range streams take free ports from.

use crate::error::{StError, StResult};
use crate::file::FileFormat;
use crate::mountpoint::{MpId, StreamKind};
use jano_plugin::fields::{opt_array, opt_bool, opt_str, opt_u64, Body};
use jano_plugin::srtp::{SrtpReceiver, SrtpSuite};
use std::net::IpAddr;

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
    /// `mcast`: the multicast group the stream comes to (joined on `iface`).
    pub mcast: Option<std::net::Ipv4Addr>,
    pub pt: Option<u8>,
    /// Janus's codec name (`opus`, `vp8`…), from `codec` or the `rtpmap`.
    pub codec: Option<&'static str>,
    pub rtpmap: Option<String>,
    pub fmtp: Option<String>,
    /// Data: binary rather than text.
    pub binary: bool,
    /// Video: keep the latest keyframe, for new viewers to start with (`bufferkf`).
    pub bufferkf: bool,
    /// Video: simulcast on three ports (`port` the lowest layer, `port2`, `port3`; 0 = any).
    pub simulcast: bool,
    pub port2: u16,
    pub port3: u16,
    /// Data: keep the latest message, for new viewers to get at once (`buffermsg`).
    pub buffermsg: bool,
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
    /// A stream of a kind with a mid and nothing else set yet.
    pub fn new_of(kind: StreamKind, mid: &str) -> StreamCfg {
        StreamCfg::new(kind, mid.to_owned())
    }

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
            mcast: None,
            pt: None,
            codec: None,
            rtpmap: None,
            fmtp: None,
            binary: false,
            bufferkf: false,
            buffermsg: false,
            simulcast: false,
            port2: 0,
            port3: 0,
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
        s.mcast = mcast(opt_str(o, "mcast")?)?;
        s.pt = opt_u64(o, "pt")?.map(|v| (v & 0x7f) as u8);
        s.codec = opt_str(o, "codec")?.and_then(codec_of);
        s.rtpmap = opt_str(o, "rtpmap")?.map(str::to_owned);
        s.fmtp = opt_str(o, "fmtp")?.map(str::to_owned);
        s.binary = datatype(opt_str(o, "datatype")?)?;
        s.bufferkf = s.kind == StreamKind::Video && opt_bool(o, "bufferkf")?.unwrap_or(false);
        if s.kind == StreamKind::Video && opt_bool(o, "simulcast")?.unwrap_or(false) {
            s.simulcast = true;
            s.port2 = port(opt_u64(o, "port2")?)?;
            s.port3 = port(opt_u64(o, "port3")?)?;
        }
        s.buffermsg = s.kind == StreamKind::Data && opt_bool(o, "buffermsg")?.unwrap_or(false);
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
        s.mcast = mcast(opt_str(b, key("mcast"))?)?;
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
            s.buffermsg = opt_bool(b, "databuffermsg")?.unwrap_or(false);
        }
        if kind == StreamKind::Video {
            s.bufferkf = opt_bool(b, "videobufferkf")?.unwrap_or(false);
            if opt_bool(b, "videosimulcast")?.unwrap_or(false) {
                s.simulcast = true;
                s.port2 = port(opt_u64(b, "videoport2")?)?;
                s.port3 = port(opt_u64(b, "videoport3")?)?;
            }
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
        (StreamKind::Audio, "mcast") => "audiomcast",
        (StreamKind::Video, "mcast") => "videomcast",
        (StreamKind::Data, "mcast") => "datamcast",
        _ => "unknown",
    }
}

/// An IPv4 multicast group (Janus takes IPv4 only for multicast).
fn mcast(v: Option<&str>) -> StResult<Option<std::net::Ipv4Addr>> {
    match v {
        None => Ok(None),
        Some(s) => match s.parse::<std::net::Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Ok(Some(a)),
            _ => Err(StError::CantCreate(format!(
                "Invalid multicast address '{s}' (only IPv4 multicast is supported)"
            ))),
        },
    }
}

fn port(v: Option<u64>) -> StResult<u16> {
    match v {
        None => Ok(0),
        Some(p) => u16::try_from(p).map_err(|_| StError::Invalid("Invalid port".into())),
    }
}

/// `srtpsuite` (32 or 80) and `srtpcrypto` (the SDES base64 key and salt).
fn srtp_of(b: &Body) -> StResult<Option<(SrtpSuite, String)>> {
    let suite = opt_u64(b, "srtpsuite")?;
    let suite = match suite {
        None => return Ok(None),
        Some(n) => SrtpSuite::from_janus(i64::try_from(n).unwrap_or(0)).map_err(|_| {
            StError::CantCreate("Can't add 'rtp' stream, invalid SRTP suite...".into())
        })?,
    };
    let Some(crypto) = opt_str(b, "srtpcrypto")? else {
        return Ok(None);
    };
    SrtpReceiver::new(suite, crypto).map_err(|_| {
        StError::CantCreate("Can't add 'rtp' stream, invalid SRTP crypto...".into())
    })?;
    Ok(Some((suite, crypto.to_owned())))
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

pub use jano_plugin::udp::PortRange;

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
    /// A `live` or `ondemand` mountpoint's file (its one audio stream is in `streams`).
    pub file: Option<FileCfg>,
    /// An `rtsp` mountpoint's server (its streams are known once it answered).
    pub rtsp: Option<RtspCfg>,
    /// `srtpsuite`/`srtpcrypto`: the RTP (not data) comes SRTP-protected with this key.
    pub srtp: Option<(SrtpSuite, String)>,
    /// `collision` (ms): a packet of another SSRC is dropped unless the current one has been
    /// silent this long (0: any SSRC goes, the latest wins).
    pub collision: u64,
    /// `playoutdelay_ext`: viewers may ask for a playout delay on the video (`configure`).
    pub playoutdelay_ext: bool,
}

/// What an `rtsp` mountpoint pulls from, with Janus's keys and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtspCfg {
    pub url: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub quirk: bool,
    /// `rtsp_tcp` (jano's own): media interleaved on the control connection rather than over
    /// UDP (a server that refuses UDP gets it anyway).
    pub tcp: bool,
    /// `rtsp_failcheck`: a server that cannot be reached makes `create` fail (default); else
    /// the mountpoint is made and keeps trying.
    pub failcheck: bool,
    pub iface: Option<IpAddr>,
    /// Seconds: no media for this long means the server went away (`rtsp_reconnect_delay`).
    pub reconnect_delay: u64,
    /// Seconds: caps the keep-alive period at half of it (`rtsp_session_timeout`, 0 = the
    /// server's own timeout decides).
    pub session_timeout: u64,
    /// Seconds: each request (`rtsp_timeout`) and the TCP connect (`rtsp_conn_timeout`).
    pub timeout: u64,
    pub conn_timeout: u64,
    pub audio: bool,
    pub video: bool,
    /// Codec overrides (`audiopt`, `audiocodec`/`audiortpmap`, `audiofmtp`, same for video).
    pub audio_pt: Option<u8>,
    pub audio_codec: Option<String>,
    pub audio_fmtp: Option<String>,
    pub video_pt: Option<u8>,
    pub video_codec: Option<String>,
    pub video_fmtp: Option<String>,
}

/// The file a `live` or `ondemand` mountpoint plays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCfg {
    pub filename: String,
    pub format: FileFormat,
    /// `live`: one playback every viewer hears; `ondemand`: each viewer's own from the start.
    pub live: bool,
}

impl MpConfig {
    /// What every mountpoint type reads alike (`name`, `description`, `metadata`,
    /// `is_private`, `secret`, `pin`), no streams yet and nothing else on.
    fn base(b: &Body, id: &MpId) -> StResult<MpConfig> {
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
            streams: Vec::new(),
            legacy: false,
            file: None,
            rtsp: None,
            srtp: None,
            collision: 0,
            playoutdelay_ext: false,
        })
    }

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
        let srtp = srtp_of(b)?;
        Ok(MpConfig {
            streams,
            legacy,
            srtp,
            collision: opt_u64(b, "collision")?.unwrap_or(0),
            playoutdelay_ext: opt_bool(b, "playoutdelay_ext")?.unwrap_or(false),
            ..MpConfig::base(b, id)?
        })
    }

    /// The settings of an `rtsp` mountpoint (legacy single audio/video syntax, as Janus 1.1.2
    /// takes it); its streams come from the server's SDP when it connects.
    pub fn rtsp_from(b: &Body, id: &MpId) -> StResult<MpConfig> {
        let url = opt_str(b, "url")?.ok_or(StError::Missing("url"))?;
        let audio = opt_bool(b, "audio")?.unwrap_or(false);
        let video = opt_bool(b, "video")?.unwrap_or(false);
        if !audio && !video {
            return Err(StError::CantCreate(
                "Can't add 'rtsp' stream, no audio or video have to be streamed...".into(),
            ));
        }
        let secs = |key: &'static str, default: u64| -> StResult<u64> {
            Ok(opt_u64(b, key)?.unwrap_or(default).min(3600))
        };
        let pt = |key: &'static str| -> StResult<Option<u8>> {
            Ok(opt_u64(b, key)?.map(|p| (p & 0x7f) as u8))
        };
        let codec = |name: &'static str, rtpmap: &'static str| -> StResult<Option<String>> {
            Ok(match opt_str(b, name)? {
                Some(c) => Some(c.to_ascii_lowercase()),
                None => opt_str(b, rtpmap)?
                    .and_then(|r| r.split('/').next())
                    .map(str::to_ascii_lowercase),
            })
        };
        let failcheck = match opt_bool(b, "rtsp_failcheck")? {
            Some(v) => v,
            // An old typo Janus still reads.
            None => opt_bool(b, "rtsp_check")?.unwrap_or(true),
        };
        Ok(MpConfig {
            playoutdelay_ext: opt_bool(b, "playoutdelay_ext")?.unwrap_or(false),
            rtsp: Some(RtspCfg {
                url: url.to_owned(),
                user: opt_str(b, "rtsp_user")?.map(str::to_owned),
                pass: opt_str(b, "rtsp_pwd")?.map(str::to_owned),
                quirk: opt_bool(b, "rtsp_quirk")?.unwrap_or(false),
                tcp: opt_bool(b, "rtsp_tcp")?.unwrap_or(false),
                failcheck,
                iface: iface(opt_str(b, "rtspiface")?)?,
                reconnect_delay: secs("rtsp_reconnect_delay", 5)?.max(1),
                session_timeout: secs("rtsp_session_timeout", 0)?,
                timeout: secs("rtsp_timeout", 10)?.max(1),
                conn_timeout: secs("rtsp_conn_timeout", 5)?.max(1),
                audio,
                video,
                audio_pt: pt("audiopt")?,
                audio_codec: codec("audiocodec", "audiortpmap")?,
                audio_fmtp: opt_str(b, "audiofmtp")?.map(str::to_owned),
                video_pt: pt("videopt")?,
                video_codec: codec("videocodec", "videortpmap")?,
                video_fmtp: opt_str(b, "videofmtp")?.map(str::to_owned),
            }),
            ..MpConfig::base(b, id)?
        })
    }

    /// The settings of a `live` (or, not `live`, `ondemand`) file mountpoint: audio only, an
    /// `.opus`, `.alaw` or `.mulaw` file, as Janus takes them.
    pub fn file_from(b: &Body, id: &MpId, live: bool) -> StResult<MpConfig> {
        let kind = if live { "live" } else { "ondemand" };
        let filename = opt_str(b, "filename")?.ok_or(StError::Missing("filename"))?;
        let audio = opt_bool(b, "audio")?.unwrap_or(false);
        let video = opt_bool(b, "video")?.unwrap_or(false);
        if !audio || video {
            return Err(StError::CantCreate(format!(
                "Can't add '{kind}' stream, we only support audio file streaming right now..."
            )));
        }
        let format = FileFormat::of(filename).ok_or_else(|| {
            StError::CantCreate(format!(
                "Can't add '{kind}' stream, unsupported format (we only support Opus and raw \
                 mu-Law/a-Law files right now)"
            ))
        })?;
        let codec = match opt_str(b, "audiocodec")? {
            Some(c) => Some(c.to_ascii_lowercase()),
            None => opt_str(b, "audiortpmap")?
                .and_then(|r| r.split('/').next())
                .map(str::to_ascii_lowercase),
        };
        if format == FileFormat::Opus && codec.as_deref() != Some("opus") {
            return Err(StError::CantCreate(format!(
                "Error creating '{kind}' stream"
            )));
        }
        // Janus takes a missing Opus payload type as 0 (PCMU's); the usual dynamic one is
        // better than an offer that names the wrong codec.
        let pt = match format.static_pt() {
            Some(pt) => pt,
            None => match opt_u64(b, "audiopt")? {
                Some(pt) if (1..=127).contains(&pt) => pt as u8,
                Some(_) => return Err(StError::invalid_type("audiopt", "a payload type")),
                None => 111,
            },
        };
        let mut s = StreamCfg::new(StreamKind::Audio, "0".into());
        s.label = "audio".into();
        s.pt = Some(pt);
        s.codec = Some(format.codec());
        s.rtpmap = Some(format.rtpmap().into());
        s.fmtp = match format {
            FileFormat::Opus => opt_str(b, "audiofmtp")?.map(str::to_owned),
            _ => None,
        };
        Ok(MpConfig {
            streams: vec![s],
            file: Some(FileCfg {
                filename: filename.to_owned(),
                format,
                live,
            }),
            ..MpConfig::base(b, id)?
        })
    }

    /// `live` or `on demand`, as `list`, `info` and `create` say.
    pub fn type_str(&self) -> &'static str {
        match &self.file {
            Some(f) if !f.live => "on demand",
            _ => "live",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn port_pairs_are_even_and_odd_and_in_the_range() {
        let r = PortRange::parse(Some("41001-41006"));
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let (a1, a2) = r.bind_pair(ip).expect("a pair");
        let (b1, b2) = r.bind_pair(ip).expect("another pair");
        for (rtp, rtcp) in [(&a1, &a2), (&b1, &b2)] {
            let p = rtp.local_addr().expect("addr").port();
            assert_eq!(p % 2, 0, "RTP on an even port");
            assert_eq!(rtcp.local_addr().expect("addr").port(), p + 1);
            assert!((41002..=41005).contains(&p), "{p} in the range");
        }
        // Both pairs of the range are taken: no third.
        assert!(r.bind_pair(ip).is_err());
    }
}
