//! The "barebone" SDP of the plain-RTP side: what the plugin writes for the application to
//! give its legacy peer (our address, our RTP ports, the codecs, SDES keys), and what it reads
//! from the peer's (its address and ports, the codecs it chose, its keys).

use std::fmt::Write;
use std::net::IpAddr;

/// One codec of a plain m-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codec {
    pub pt: u8,
    /// `a=rtpmap` encoding as written (`opus/48000/2`).
    pub rtpmap: String,
    pub fmtp: Option<String>,
    /// Janus's name (`opus`, `pcmu`, `vp8`…), when it is a media codec jano knows.
    pub name: Option<&'static str>,
}

/// One audio or video m-line of the plain side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub video: bool,
    pub port: u16,
    pub addr: Option<IpAddr>,
    /// The side that wrote it sends / receives.
    pub sends: bool,
    pub receives: bool,
    pub srtp: bool,
    pub codecs: Vec<Codec>,
    /// `a=crypto`: (tag, suite, inline key).
    pub crypto: Vec<(u32, String, String)>,
    /// `a=rtcp:<port>`, when the RTCP port is not the next one.
    pub rtcp_port: Option<u16>,
}

/// The codecs WebRTC adds around the media (retransmission, FEC) that a plain peer has no use
/// for.
fn plain_worthy(name: &str) -> bool {
    !matches!(
        name.to_ascii_lowercase().as_str(),
        "rtx" | "ulpfec" | "flexfec-03" | "red"
    )
}

/// Checks an SDP from the plain peer as Janus's parser does: `Err` with its wording.
pub fn check(text: &str) -> Result<(), String> {
    if !text.trim_start().starts_with("v=") {
        return Err("Invalid SDP (doesn't start with v=)".into());
    }
    let has = |p: &str| text.lines().any(|l| l.starts_with(p));
    if !has("o=") || !has("s=") || !has("m=") {
        return Err("Missing mandatory lines (o=, s= or m=)".into());
    }
    for l in text.lines().filter(|l| l.starts_with("m=")) {
        let l = l.trim_end();
        let kind = l
            .get(2..)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        if !matches!(kind, "audio" | "video" | "application") {
            return Err(format!("Invalid m= line: {l}"));
        }
    }
    Ok(())
}

/// Reads the audio and video m-lines of an SDP (a WebRTC one, or a plain peer's).
pub fn parse(text: &str) -> Vec<Line> {
    let mut session_addr: Option<IpAddr> = None;
    let mut out: Vec<Line> = Vec::new();
    let mut in_media = false;
    let mut skip = false;
    for raw in text.lines() {
        let line = raw.trim_end();
        if let Some(rest) = line.strip_prefix("m=") {
            in_media = true;
            let mut parts = rest.split_whitespace();
            let kind = parts.next().unwrap_or("");
            let port = parts
                .next()
                .and_then(|p| p.split('/').next()?.parse().ok())
                .unwrap_or(0);
            let proto = parts.next().unwrap_or("");
            skip = kind != "audio" && kind != "video";
            if skip {
                continue;
            }
            out.push(Line {
                video: kind == "video",
                port,
                addr: session_addr,
                sends: true,
                receives: true,
                srtp: proto.contains("SAVP"),
                codecs: parts
                    .filter_map(|p| p.parse().ok())
                    .map(|pt| Codec {
                        pt,
                        rtpmap: String::new(),
                        fmtp: None,
                        name: static_name(pt),
                    })
                    .collect(),
                crypto: Vec::new(),
                rtcp_port: None,
            });
            continue;
        }
        if let Some(c) = line.strip_prefix("c=") {
            let addr = c
                .split_whitespace()
                .nth(2)
                .and_then(|a| a.split('/').next()?.parse().ok());
            if !in_media {
                session_addr = addr;
            } else if let (false, Some(m)) = (skip, out.last_mut()) {
                m.addr = addr;
            }
            continue;
        }
        if !in_media || skip {
            continue;
        }
        let (Some(m), Some(attr)) = (out.last_mut(), line.strip_prefix("a=")) else {
            continue;
        };
        match attr {
            "sendonly" => m.receives = false,
            "recvonly" => m.sends = false,
            "inactive" => {
                m.sends = false;
                m.receives = false;
            }
            _ => {}
        }
        if let Some(rest) = attr.strip_prefix("rtpmap:") {
            let (pt, enc) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(c) = m.codecs.iter_mut().find(|c| pt.parse() == Ok(c.pt)) {
                c.rtpmap = enc.to_owned();
                c.name = name_of(enc);
            }
        } else if let Some(rest) = attr.strip_prefix("fmtp:") {
            let (pt, params) = rest.split_once(' ').unwrap_or((rest, ""));
            if let Some(c) = m.codecs.iter_mut().find(|c| pt.parse() == Ok(c.pt)) {
                c.fmtp = Some(params.to_owned());
            }
        } else if let Some(rest) = attr.strip_prefix("crypto:") {
            let mut it = rest.split_whitespace();
            if let (Some(tag), Some(suite), Some(key)) = (it.next(), it.next(), it.next()) {
                if let (Ok(tag), Some(key)) = (tag.parse(), key.strip_prefix("inline:")) {
                    let key = key.split('|').next().unwrap_or(key);
                    m.crypto.push((tag, suite.to_owned(), key.to_owned()));
                }
            }
        } else if let Some(rest) = attr.strip_prefix("rtcp:") {
            m.rtcp_port = rest.split_whitespace().next().and_then(|p| p.parse().ok());
        }
    }
    out
}

/// Janus's name of an `a=rtpmap` encoding.
fn name_of(enc: &str) -> Option<&'static str> {
    let name = enc.split('/').next().unwrap_or("");
    jano_plugin::rtp::codec_name(name)
}

/// The static payload types a plain peer may use without `a=rtpmap`.
fn static_name(pt: u8) -> Option<&'static str> {
    match pt {
        0 => Some("pcmu"),
        8 => Some("pcma"),
        9 => Some("g722"),
        _ => None,
    }
}

impl Line {
    /// The first media codec the line lists (what a peer's answer chose).
    pub fn first_codec(&self) -> Option<&Codec> {
        self.codecs.iter().find(|c| c.name.is_some())
    }

    /// The codecs worth offering a plain peer.
    pub fn plain_codecs(&self) -> Vec<Codec> {
        self.codecs
            .iter()
            .filter(|c| {
                let enc = c.rtpmap.split('/').next().unwrap_or("");
                c.name.is_some() || (!enc.is_empty() && plain_worthy(enc))
            })
            .cloned()
            .collect()
    }
}

/// What one m-line of the plugin's barebone SDP says.
pub struct Local<'a> {
    pub video: bool,
    pub port: u16,
    pub codecs: &'a [Codec],
    pub sends: bool,
    pub receives: bool,
    /// `a=crypto` (tag, suite, key) when SDES is offered or accepted.
    pub crypto: Option<(u32, &'a str, &'a str)>,
}

/// Writes the barebone SDP.
pub fn write(session_id: u64, version: u64, ip: IpAddr, srtp: bool, lines: &[Local<'_>]) -> String {
    let fam = if ip.is_ipv6() { "IP6" } else { "IP4" };
    let mut s = String::with_capacity(512);
    let _ = write!(
        s,
        "v=0\r\no=- {session_id} {version} IN {fam} {ip}\r\ns=Janus NoSIP plugin\r\nc=IN {fam} {ip}\r\nt=0 0\r\n"
    );
    let proto = if srtp { "RTP/SAVP" } else { "RTP/AVP" };
    for l in lines {
        let kind = if l.video { "video" } else { "audio" };
        let pts: Vec<String> = l.codecs.iter().map(|c| c.pt.to_string()).collect();
        let _ = write!(s, "m={kind} {} {proto} {}\r\n", l.port, pts.join(" "));
        let _ = write!(s, "c=IN {fam} {ip}\r\n");
        for c in l.codecs {
            if !c.rtpmap.is_empty() {
                let _ = write!(s, "a=rtpmap:{} {}\r\n", c.pt, c.rtpmap);
            }
            if let Some(f) = c.fmtp.as_deref().filter(|f| !f.is_empty()) {
                let _ = write!(s, "a=fmtp:{} {f}\r\n", c.pt);
            }
        }
        let dir = match (l.sends, l.receives) {
            (true, true) => "sendrecv",
            (true, false) => "sendonly",
            (false, true) => "recvonly",
            (false, false) => "inactive",
        };
        let _ = write!(s, "a={dir}\r\n");
        if let Some((tag, suite, key)) = l.crypto {
            let _ = write!(s, "a=crypto:{tag} {suite} inline:{key}\r\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_plain_answer() {
        let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
m=audio 40000 RTP/SAVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n\
a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk|2^20\r\n\
m=video 0 RTP/AVP 96\r\n";
        let l = parse(sdp);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].port, 40000);
        assert_eq!(l[0].addr, "10.0.0.2".parse().ok());
        assert!(l[0].srtp);
        assert_eq!(l[0].first_codec().map(|c| c.pt), Some(0));
        assert_eq!(l[0].crypto[0].2, "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNk");
        assert_eq!(l[1].port, 0);
    }

    #[test]
    fn writes_a_barebone_offer() {
        let codecs = vec![Codec {
            pt: 111,
            rtpmap: "opus/48000/2".into(),
            fmtp: Some("minptime=10;useinbandfec=1".into()),
            name: Some("opus"),
        }];
        let s = write(
            5,
            1,
            "10.0.0.1".parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
            false,
            &[Local {
                video: false,
                port: 20000,
                codecs: &codecs,
                sends: true,
                receives: true,
                crypto: None,
            }],
        );
        assert!(s.contains("m=audio 20000 RTP/AVP 111\r\n"), "{s}");
        assert!(s.contains("a=rtpmap:111 opus/48000/2\r\n"));
        assert!(!s.contains("ice") && !s.contains("fingerprint"));
        let back = parse(&s);
        assert_eq!(back[0].port, 20000);
        assert_eq!(back[0].codecs, codecs);
    }
}
