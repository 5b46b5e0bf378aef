//! The little SDP knowledge jano needs outside str0m: checking a client's SDP before anything
//! is done with it, the m-line order (mid → index), and Janus trickle candidate objects.

use jano_plugin::{MediaKind, Value};
use str0m::change::{SdpAnswer, SdpOffer};

/// Checks a client SDP: it must parse and carry at least one usable m-line (audio, video or a
/// data channel, not rejected with port 0). The error text becomes the reason of a 465.
pub fn check(offer: bool, text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("JSEP error: empty SDP".into());
    }
    let invalid = |e: &dyn std::fmt::Display| format!("JSEP error: invalid SDP ({e})");
    // str0m's parser stops quietly at a line it cannot read, so what it parsed is checked
    // against the text: every m-line must have made it, and be consistent (a=mid, direction,
    // rtpmaps), or the engine refuses the SDP later, after the client was told all is well.
    let (offer_sdp, answer_sdp);
    let parsed_lines = if offer {
        offer_sdp = SdpOffer::from_sdp_string(text).map_err(|e| invalid(&e))?;
        &offer_sdp.media_lines
    } else {
        answer_sdp = SdpAnswer::from_sdp_string(text).map_err(|e| invalid(&e))?;
        &answer_sdp.media_lines
    };
    let lines = m_lines(text);
    if parsed_lines.len() != lines.len() {
        return Err(invalid(&format_args!(
            "{} of {} m-lines could not be read",
            lines.len().saturating_sub(parsed_lines.len()),
            lines.len()
        )));
    }
    if let Some(e) = parsed_lines.iter().find_map(|m| m.check_consistent()) {
        return Err(invalid(&e));
    }
    // A BUNDLE group naming an m-line that is not there (a truncated SDP).
    let mids: Vec<&str> = lines.iter().filter_map(|m| m.mid.as_deref()).collect();
    for group in text
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("a=group:BUNDLE"))
    {
        if let Some(missing) = group.split_whitespace().find(|g| !mids.contains(g)) {
            return Err(invalid(&format_args!(
                "BUNDLE names mid {missing}, which has no m-line"
            )));
        }
    }
    let usable = parsed_lines.iter().any(|m| {
        !m.disabled
            && matches!(
                m.typ.to_string().as_str(),
                "audio" | "video" | "application"
            )
    });
    if !usable {
        return Err("JSEP error: no usable m-line (audio, video or data channel)".into());
    }
    Ok(())
}

/// One `m=` line and its `a=mid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MLine {
    pub media: String,
    pub port: u16,
    pub mid: Option<String>,
    /// `a=ssrc-group:SIM`: the SSRCs of ssrc-based simulcast, lowest layer first.
    pub sim: Vec<u32>,
}

impl MLine {
    pub fn kind(&self) -> Option<MediaKind> {
        match self.media.as_str() {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// The m-lines of an SDP, in order.
pub fn m_lines(text: &str) -> Vec<MLine> {
    let mut out: Vec<MLine> = Vec::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("m=") {
            let mut parts = rest.split(' ');
            let media = parts.next().unwrap_or_default().to_owned();
            let port = parts
                .next()
                .and_then(|p| p.split('/').next())
                .and_then(|p| p.parse().ok())
                .unwrap_or(0);
            out.push(MLine {
                media,
                port,
                mid: None,
                sim: Vec::new(),
            });
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            if let Some(m) = out.last_mut() {
                m.mid = Some(mid.trim().to_owned());
            }
        } else if let Some(group) = line.strip_prefix("a=ssrc-group:SIM ") {
            if let Some(m) = out.last_mut() {
                m.sim = group
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
            }
        }
    }
    out
}

/// What a Janus trickle candidate object says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trickle {
    /// `candidate:...` (with or without the `a=` prefix).
    Candidate(String),
    /// End of candidates.
    Completed,
    /// A candidate for another m-line than the bundle one: ignored, as Janus does.
    Ignored,
}

/// Reads a candidate object the core already validated.
pub fn trickle(c: &Value) -> Trickle {
    let Some(obj) = c.as_object() else {
        return Trickle::Completed;
    };
    if obj.contains_key("completed") {
        return Trickle::Completed;
    }
    if obj
        .get("sdpMLineIndex")
        .and_then(Value::as_u64)
        .is_some_and(|i| i > 0)
    {
        return Trickle::Ignored;
    }
    match obj.get("candidate").and_then(Value::as_str) {
        Some(s) if s.trim().is_empty() => Trickle::Completed,
        Some(s) => Trickle::Candidate(s.trim().trim_start_matches("a=").to_owned()),
        None => Trickle::Ignored,
    }
}

/// What one m-line of a plugin's offer is restricted to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restrict<'a> {
    /// Keep only this codec (Janus's lowercase name) and its retransmission payload type.
    pub codec: Option<&'a str>,
    /// …and of it only this profile: H.264 `profile-level-id` (prefix, e.g. `42e0`) or VP9
    /// `profile-id`.
    pub profile: Option<&'a str>,
    /// Keep only these header extensions (URIs).
    pub extensions: Option<&'a [String]>,
}

/// An answer of ours that only receives: every media section that would send gets the
/// direction without sending (`sendrecv` → `recvonly`, `sendonly` → `inactive`) and loses the
/// lines that announce a stream of ours (`msid`, `ssrc`, `ssrc-group`). The engine never has
/// anything to send on such an m-line, so its own state needs no change.
pub fn receive_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_media = false;
    for line in text.split_inclusive("\r\n") {
        let l = line.trim_end();
        if l.starts_with("m=") {
            in_media = !l.starts_with("m=application");
        }
        if in_media {
            match l {
                "a=sendrecv" => {
                    out.push_str("a=recvonly\r\n");
                    continue;
                }
                "a=sendonly" => {
                    out.push_str("a=inactive\r\n");
                    continue;
                }
                _ if l.starts_with("a=msid:")
                    || l.starts_with("a=ssrc:")
                    || l.starts_with("a=ssrc-group:") =>
                {
                    continue
                }
                _ => {}
            }
        }
        out.push_str(line);
    }
    out
}

/// Takes these header extensions (URIs) out of every m-section: the peer then never uses them.
pub fn without_extensions(text: &str, uris: &[&str]) -> String {
    if uris.is_empty() {
        return text.to_owned();
    }
    text.split_inclusive("\r\n")
        .filter(|l| {
            let Some(rest) = l.trim_end().strip_prefix("a=extmap:") else {
                return true;
            };
            let uri = rest.split_whitespace().nth(1).unwrap_or_default();
            !uris.contains(&uri)
        })
        .collect()
}

/// Marks Opus as stereo (`stereo=1; sprop-stereo=1`) in every m-section that has it: the
/// receiver then plays both channels of what is sent (AudioBridge's spatial mix) instead of
/// folding them down, and is told our side sends stereo.
pub fn opus_stereo(text: &str) -> String {
    let mut sections: Vec<String> = text.split("\r\nm=").map(str::to_owned).collect();
    for (i, sec) in sections.iter_mut().enumerate() {
        if i == 0 {
            continue;
        }
        let opus: Vec<String> = sec
            .split("\r\n")
            .filter_map(|l| l.strip_prefix("a=rtpmap:"))
            .filter_map(|rest| {
                let (pt, codec) = rest.split_once(' ')?;
                codec
                    .to_ascii_lowercase()
                    .starts_with("opus/")
                    .then(|| pt.to_owned())
            })
            .collect();
        if opus.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        for l in sec.split("\r\n") {
            let rtpmap_pt = l
                .strip_prefix("a=rtpmap:")
                .and_then(|r| r.split(' ').next())
                .filter(|pt| opus.iter().any(|o| o == pt));
            let fmtp = l.strip_prefix("a=fmtp:").and_then(|r| {
                let (pt, params) = r.split_once(' ')?;
                opus.iter().any(|o| o == pt).then_some((pt, params))
            });
            match fmtp {
                Some((pt, params)) => {
                    let kept: Vec<&str> = params
                        .split(';')
                        .map(str::trim)
                        .filter(|kv| {
                            !kv.is_empty()
                                && !kv.starts_with("stereo=")
                                && !kv.starts_with("sprop-stereo=")
                        })
                        .collect();
                    let mut all = kept.join(";");
                    if !all.is_empty() {
                        all.push(';');
                    }
                    out.push(format!("a=fmtp:{pt} {all}stereo=1;sprop-stereo=1"));
                }
                None => {
                    out.push(l.to_owned());
                    // An Opus payload type without any fmtp line gets one.
                    if let Some(pt) = rtpmap_pt {
                        if !sec.contains(&format!("a=fmtp:{pt} ")) {
                            out.push(format!("a=fmtp:{pt} stereo=1;sprop-stereo=1"));
                        }
                    }
                }
            }
        }
        *sec = out.join("\r\n");
    }
    sections.join("\r\nm=")
}

/// Takes the AV1 dependency-descriptor extension out of every m-section whose first codec is
/// not AV1. The engine relays it only with AV1 (whose SVC layers it tells); offered or answered
/// on a VP8 m-line it changes what Chromium puts in its VP8 packets (the temporal layer index
/// no longer comes in the payload descriptor), which simulcast and temporal layer selection
/// read.
pub fn dd_only_for_av1(text: &str) -> String {
    let dd = jano_plugin::dd::DD_URI;
    let mut sections: Vec<String> = text.split("\r\nm=").map(str::to_owned).collect();
    for (i, sec) in sections.iter_mut().enumerate() {
        if i == 0 || !sec.contains(dd) {
            continue;
        }
        let first_pt = sec
            .lines()
            .next()
            .and_then(|m| m.split_whitespace().nth(3))
            .unwrap_or_default()
            .to_owned();
        let rtpmap = format!("a=rtpmap:{first_pt} ");
        let av1 = sec.lines().any(|l| {
            l.strip_prefix(&rtpmap)
                .is_some_and(|c| c.to_ascii_uppercase().starts_with("AV1/"))
        });
        if !av1 {
            *sec = sec
                .split("\r\n")
                .filter(|l| !(l.starts_with("a=extmap:") && l.contains(dd)))
                .collect::<Vec<_>>()
                .join("\r\n");
        }
    }
    sections.join("\r\nm=")
}

/// Restricts the m-line `mid` of an SDP we made: payload types of other codecs (with their
/// `rtpmap`/`fmtp`/`rtcp-fb` lines) and unlisted extensions are taken out. The peer's answer
/// can only use what is left, a subset of what the engine offered, so the engine accepts it.
/// When nothing of the codec would be left the m-line is kept whole (the plugin learns what
/// was agreed from the negotiation).
pub fn restrict(text: &str, mid: &str, r: &Restrict<'_>) -> String {
    let mut sections: Vec<String> = text.split("\r\nm=").map(str::to_owned).collect();
    for (i, sec) in sections.iter_mut().enumerate() {
        if i == 0 || !sec.lines().any(|l| l.trim_end() == format!("a=mid:{mid}")) {
            continue;
        }
        if let Some(out) = restrict_section(sec, r) {
            *sec = out;
        }
    }
    sections.join("\r\nm=")
}

/// One m-section (text after `m=`), restricted; `None` to keep it as it is.
fn restrict_section(sec: &str, r: &Restrict<'_>) -> Option<String> {
    let lines: Vec<&str> = sec.split("\r\n").collect();
    let head = *lines.first()?;
    let mut fields = head.split(' ');
    let prefix: Vec<&str> = fields.by_ref().take(3).collect();
    let pts: Vec<&str> = fields.collect();
    let attr = |name: &str, pt: &str| -> Option<String> {
        lines.iter().find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix(pt))
                .and_then(|rest| rest.strip_prefix(' '))
                .map(str::to_owned)
        })
    };
    let name_of = |pt: &str| {
        attr("a=rtpmap:", pt)
            .and_then(|m| m.split('/').next().map(str::to_ascii_lowercase))
            .unwrap_or_default()
    };
    let mut keep: Vec<&str> = pts.clone();
    if let Some(codec) = r.codec {
        let wanted = |pt: &str| {
            if name_of(pt) != codec {
                return false;
            }
            let Some(profile) = r.profile else {
                return true;
            };
            let fmtp = attr("a=fmtp:", pt).unwrap_or_default();
            fmtp.split(';').any(|kv| {
                let kv = kv.trim();
                kv.strip_prefix("profile-level-id=").is_some_and(|v| {
                    v.to_ascii_lowercase()
                        .starts_with(&profile.to_ascii_lowercase())
                }) || kv.strip_prefix("profile-id=") == Some(profile)
            })
        };
        let main: Vec<&str> = pts.iter().copied().filter(|pt| wanted(pt)).collect();
        if main.is_empty() {
            return None;
        }
        let rtx: Vec<&str> = pts
            .iter()
            .copied()
            .filter(|pt| {
                name_of(pt) == "rtx"
                    && attr("a=fmtp:", pt)
                        .and_then(|f| f.strip_prefix("apt=").map(str::to_owned))
                        .is_some_and(|apt| main.contains(&apt.trim()))
            })
            .collect();
        keep = pts
            .iter()
            .copied()
            .filter(|pt| main.contains(pt) || rtx.contains(pt))
            .collect();
    }
    let dropped = |l: &str| {
        for name in ["a=rtpmap:", "a=fmtp:", "a=rtcp-fb:"] {
            if let Some(rest) = l.strip_prefix(name) {
                let pt = rest.split([' ', ':']).next().unwrap_or_default();
                return !keep.contains(&pt);
            }
        }
        if let (Some(rest), Some(list)) = (l.strip_prefix("a=extmap:"), r.extensions) {
            let uri = rest.split(' ').nth(1).unwrap_or_default();
            return !list.iter().any(|u| u == uri);
        }
        false
    };
    let mut out = vec![[prefix.join(" "), keep.join(" ")].join(" ")];
    out.extend(
        lines
            .iter()
            .skip(1)
            .filter(|l| !dropped(l))
            .map(|l| (*l).to_owned()),
    );
    Some(out.join("\r\n"))
}

/// The `a=candidate:` lines of an SDP (without `a=`).
pub fn candidates(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_owned)
        .collect()
}

/// The SDP with its `o=` session version raised above `last` when it is not already: returns
/// the text and the version it now has.
pub fn next_origin_version(text: &str, last: Option<u64>) -> (String, u64) {
    let mut version = 0;
    let mut out = String::with_capacity(text.len() + 4);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        if !done && line.starts_with("o=") {
            done = true;
            let body = line.trim_end_matches(['\r', '\n']);
            let ending = &line[body.len()..];
            let mut parts: Vec<&str> = body.split(' ').collect();
            if let Some(v) = parts.get(2).and_then(|v| v.parse::<u64>().ok()) {
                version = match last {
                    Some(l) if v <= l => l + 1,
                    _ => v,
                };
                let text_version = version.to_string();
                if let Some(slot) = parts.get_mut(2) {
                    *slot = &text_version;
                    out.push_str(&parts.join(" "));
                    out.push_str(ending);
                    continue;
                }
            }
        }
        out.push_str(line);
    }
    (out, version)
}

#[cfg(test)]
mod tests {
    #[test]
    fn origin_version_goes_up() {
        let sdp = "v=0\r\no=- 42 2 IN IP4 0.0.0.0\r\ns=-\r\n";
        let (t, v) = super::next_origin_version(sdp, None);
        assert_eq!((t.as_str(), v), (sdp, 2));
        let (t, v) = super::next_origin_version(sdp, Some(2));
        assert_eq!(v, 3);
        assert!(t.contains("o=- 42 3 IN IP4 0.0.0.0\r\n"), "{t}");
        assert_eq!(super::next_origin_version(sdp, Some(1)).1, 2);
    }

    #[test]
    fn receive_only_answers() {
        let a =
            "v=0\r\ns=-\r\na=group:BUNDLE 0 1 2\r\nm=audio 9 UDP 111\r\na=mid:0\r\na=sendrecv\r\n\
a=msid:s t\r\na=ssrc:1 cname:x\r\nm=video 9 UDP 96\r\na=mid:1\r\na=sendonly\r\n\
a=ssrc-group:FID 1 2\r\nm=application 9 DTLS 5000\r\na=mid:2\r\na=sendrecv\r\n";
        let r = receive_only(a);
        assert_eq!(
            r,
            "v=0\r\ns=-\r\na=group:BUNDLE 0 1 2\r\nm=audio 9 UDP 111\r\na=mid:0\r\na=recvonly\r\n\
m=video 9 UDP 96\r\na=mid:1\r\na=inactive\r\nm=application 9 DTLS 5000\r\na=mid:2\r\n\
a=sendrecv\r\n"
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn garbage_is_refused() {
        assert!(check(true, "").is_err());
        assert!(check(true, "hello").is_err());
        assert!(check(true, "v=0\r\n").is_err());
        assert!(check(false, "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n").is_err());
        // str0m stops quietly at an m-line it cannot read; the check must not count it.
        let cut = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/T";
        assert!(check(true, cut).is_err());
    }

    #[test]
    fn m_lines_in_order() {
        let s = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:0\r\nm=video 0 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n";
        let m = m_lines(s);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].mid.as_deref(), Some("0"));
        assert_eq!(m[1].port, 0);
        assert_eq!(m[1].kind(), Some(MediaKind::Video));
    }

    const VIDEO: &str = "v=0\r\ns=-\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\na=rtpmap:111 opus/48000/2\r\n\
        m=video 9 UDP/TLS/RTP/SAVPF 96 97 127 121 98 99\r\na=mid:v\r\n\
        a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n\
        a=extmap:13 urn:3gpp:video-orientation\r\n\
        a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
        a=rtpmap:127 H264/90000\r\na=fmtp:127 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
        a=rtpmap:121 rtx/90000\r\na=fmtp:121 apt=127\r\n\
        a=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=0\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n";

    #[test]
    fn restrict_to_one_codec_and_its_rtx() {
        let r = Restrict {
            codec: Some("h264"),
            profile: Some("42e0"),
            ..Default::default()
        };
        let out = restrict(VIDEO, "v", &r);
        assert!(
            out.contains("m=video 9 UDP/TLS/RTP/SAVPF 127 121\r\n"),
            "{out}"
        );
        assert!(
            !out.contains("VP8") && !out.contains("VP9") && !out.contains("apt=96"),
            "{out}"
        );
        assert!(out.contains("a=fmtp:121 apt=127"), "{out}");
        assert!(
            out.contains("m=audio 9 UDP/TLS/RTP/SAVPF 111"),
            "other m-lines untouched"
        );
        // A codec the m-line does not have leaves it whole; so does a profile it lacks.
        assert_eq!(
            restrict(
                VIDEO,
                "v",
                &Restrict {
                    codec: Some("av1"),
                    ..Default::default()
                }
            ),
            VIDEO
        );
        let wrong = Restrict {
            codec: Some("vp9"),
            profile: Some("2"),
            ..Default::default()
        };
        assert_eq!(restrict(VIDEO, "v", &wrong), VIDEO);
        let vp9 = Restrict {
            codec: Some("vp9"),
            profile: Some("0"),
            ..Default::default()
        };
        assert!(restrict(VIDEO, "v", &vp9).contains("SAVPF 98 99\r\n"));
    }

    #[test]
    fn extensions_left_out() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
                   a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n\
                   a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\na=rtpmap:111 opus/48000/2\r\n";
        let out = without_extensions(sdp, &["urn:ietf:params:rtp-hdrext:ssrc-audio-level"]);
        assert!(!out.contains("audio-level"), "{out}");
        assert!(out.contains("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"));
        assert!(out.ends_with("opus/48000/2\r\n"));
        assert_eq!(without_extensions(sdp, &[]), sdp);
    }

    #[test]
    fn dependency_descriptor_only_with_av1() {
        let dd = jano_plugin::dd::DD_URI;
        let sdp = format!(
            "v=0\r\ns=-\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 45\r\na=mid:0\r\n\
             a=extmap:12 {dd}\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:45 AV1/90000\r\n\
             m=video 9 UDP/TLS/RTP/SAVPF 45\r\na=mid:1\r\na=extmap:12 {dd}\r\n\
             a=rtpmap:45 AV1/90000\r\n"
        );
        let out = dd_only_for_av1(&sdp);
        let (vp8, av1) = out.split_once("m=video 9 UDP/TLS/RTP/SAVPF 45").unwrap();
        assert!(!vp8.contains(dd), "{out}");
        assert!(av1.contains(&format!("a=extmap:12 {dd}\r\n")), "{out}");
        assert!(out.ends_with("AV1/90000\r\n"));
    }

    #[test]
    fn restrict_extensions() {
        let keep = vec!["urn:3gpp:video-orientation".to_owned()];
        let r = Restrict {
            extensions: Some(&keep),
            ..Default::default()
        };
        let out = restrict(VIDEO, "v", &r);
        assert!(out.contains("a=extmap:13 urn:3gpp:video-orientation"));
        assert!(!out.contains("abs-send-time"), "{out}");
        assert!(
            out.contains("SAVPF 96 97 127 121 98 99"),
            "codecs untouched"
        );
    }

    #[test]
    fn trickle_objects() {
        assert_eq!(trickle(&json!({"completed": true})), Trickle::Completed);
        assert_eq!(trickle(&Value::Null), Trickle::Completed);
        assert_eq!(
            trickle(
                &json!({"sdpMid":"0","sdpMLineIndex":0,"candidate":"candidate:1 1 udp 1 10.0.0.1 5000 typ host"})
            ),
            Trickle::Candidate("candidate:1 1 udp 1 10.0.0.1 5000 typ host".into())
        );
        assert_eq!(
            trickle(&json!({"sdpMid":"1","sdpMLineIndex":1,"candidate":"candidate:x"})),
            Trickle::Ignored
        );
    }
}
