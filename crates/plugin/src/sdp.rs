//! What a plugin reads from a peer's SDP before the engine answers it (or before it offers the
//! same media to another peer): the m-lines (kind, mid, direction), the codecs offered on each,
//! simulcast and header extensions. VideoRoom describes a publisher's streams with it,
//! VideoCall mirrors a caller's offer to the callee.

/// One codec line of an m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpCodec {
    pub pt: u8,
    /// Lowercase, as Janus names codecs (`opus`, `vp8`, `h264`, `multiopus`…).
    pub name: String,
    pub fmtp: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpKind {
    Audio,
    Video,
    Data,
}

impl SdpKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SdpKind::Audio => "audio",
            SdpKind::Video => "video",
            SdpKind::Data => "data",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    pub kind: SdpKind,
    pub mid: Option<String>,
    /// Port 0: the m-line is rejected or removed.
    pub disabled: bool,
    /// The offerer sends on it.
    pub sends: bool,
    /// The offerer receives on it.
    pub receives: bool,
    pub codecs: Vec<SdpCodec>,
    /// `a=rid:<id> send` ids, in order.
    pub rids: Vec<String>,
    /// `a=ssrc-group:SIM` present.
    pub ssrc_simulcast: bool,
    /// `a=extmap` (id, uri).
    pub extmaps: Vec<(u8, String)>,
}

/// Janus's codec name for an `a=rtpmap` encoding name (lowercased).
fn janus_name(encoding: &str, channels: Option<&str>) -> String {
    let e = encoding.to_ascii_lowercase();
    match e.as_str() {
        "g722" => "g722".into(),
        "opus" if channels.is_some_and(|c| c != "2") => "multiopus".into(),
        "pcmu" | "pcma" | "opus" | "vp8" | "vp9" | "h264" | "av1" | "h265" | "isac" | "red"
        | "rtx" | "ulpfec" | "flexfec-03" | "telephone-event" => e,
        "l16" => "l16".into(),
        other => other.to_owned(),
    }
}

/// Parses the m-lines of an SDP. Lines it does not know are ignored; nothing here can fail.
pub fn parse(sdp: &str) -> Vec<SdpMedia> {
    let mut out: Vec<SdpMedia> = Vec::new();
    for raw in sdp.lines() {
        let line = raw.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            let mut parts = rest.split_whitespace();
            let kind = match parts.next() {
                Some("audio") => SdpKind::Audio,
                Some("video") => SdpKind::Video,
                _ => SdpKind::Data,
            };
            let port = parts.next().unwrap_or("0");
            out.push(SdpMedia {
                kind,
                mid: None,
                disabled: port == "0",
                sends: true,
                receives: true,
                codecs: Vec::new(),
                rids: Vec::new(),
                ssrc_simulcast: false,
                extmaps: Vec::new(),
            });
            continue;
        }
        let Some(m) = out.last_mut() else { continue };
        let Some(attr) = line.strip_prefix("a=") else {
            continue;
        };
        if let Some(mid) = attr.strip_prefix("mid:") {
            m.mid = Some(mid.trim().to_owned());
        } else if attr == "recvonly" || attr == "inactive" {
            m.sends = false;
            m.receives &= attr == "recvonly";
        } else if attr == "sendonly" {
            m.receives = false;
        } else if let Some(rest) = attr.strip_prefix("rtpmap:") {
            let mut it = rest.splitn(2, ' ');
            let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
                continue;
            };
            let Ok(pt) = pt.parse::<u8>() else { continue };
            let mut enc = enc.split('/');
            let name = enc.next().unwrap_or("");
            let _clock = enc.next();
            let channels = enc.next();
            m.codecs.push(SdpCodec {
                pt,
                name: janus_name(name, channels),
                fmtp: String::new(),
            });
        } else if let Some(rest) = attr.strip_prefix("fmtp:") {
            let mut it = rest.splitn(2, ' ');
            let (Some(pt), Some(params)) = (it.next(), it.next()) else {
                continue;
            };
            if let Some(c) = m.codecs.iter_mut().find(|c| pt.parse() == Ok(c.pt)) {
                c.fmtp = params.to_owned();
            }
        } else if let Some(rest) = attr.strip_prefix("rid:") {
            let mut it = rest.split_whitespace();
            if let (Some(id), Some("send")) = (it.next(), it.next()) {
                m.rids.push(id.to_owned());
            }
        } else if attr.starts_with("ssrc-group:SIM") {
            m.ssrc_simulcast = true;
        } else if let Some(rest) = attr.strip_prefix("extmap:") {
            let mut it = rest.split_whitespace();
            let (Some(id), Some(uri)) = (it.next(), it.next()) else {
                continue;
            };
            let id = id.split('/').next().unwrap_or("");
            if let Ok(id) = id.parse() {
                m.extmaps.push((id, uri.to_owned()));
            }
        }
    }
    out
}

/// Whether an SDP parses at all as an offer we could answer: a version line and at least one
/// m-line.
pub fn looks_valid(sdp: &str) -> bool {
    sdp.lines().next().is_some_and(|l| l.trim_end() == "v=0") && sdp.contains("\nm=")
}

/// A value of an fmtp parameter (`profile-level-id`, `profile-id`…).
pub fn fmtp_param<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.trim().split_once('=')?;
        (k == key).then_some(v)
    })
}

pub const EXT_AUDIO_LEVEL: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";
pub const EXT_VIDEO_ORIENT: &str = "urn:3gpp:video-orientation";
pub const EXT_PLAYOUT_DELAY: &str = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chrome_like_offer() {
        let sdp = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=mid:0\r\na=sendrecv\r\na=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:0 PCMU/8000\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102\r\na=mid:1\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;profile-level-id=42e01f\r\n\
a=rid:h send\r\na=rid:m send\r\na=rid:l send\r\na=simulcast:send h;m;l\r\n\
m=application 0 UDP/DTLS/SCTP webrtc-datachannel\r\na=mid:2\r\n";
        assert!(looks_valid(sdp));
        let m = parse(sdp);
        assert_eq!(m.len(), 3);
        assert_eq!(m[0].kind, SdpKind::Audio);
        assert_eq!(m[0].mid.as_deref(), Some("0"));
        assert_eq!(m[0].codecs[0].name, "opus");
        assert_eq!(m[0].codecs[1].name, "pcmu");
        assert_eq!(m[0].extmaps, vec![(1, EXT_AUDIO_LEVEL.to_owned())]);
        assert_eq!(m[1].rids, vec!["h", "m", "l"]);
        assert_eq!(
            fmtp_param(&m[1].codecs[1].fmtp, "profile-level-id"),
            Some("42e01f")
        );
        assert!(m[2].disabled);
        assert!(!looks_valid("hello"));
    }
}
