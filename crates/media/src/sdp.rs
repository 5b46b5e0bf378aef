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
            });
        } else if let Some(mid) = line.strip_prefix("a=mid:") {
            if let Some(m) = out.last_mut() {
                m.mid = Some(mid.trim().to_owned());
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

/// The `a=candidate:` lines of an SDP (without `a=`).
pub fn candidates(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim_end_matches('\r').strip_prefix("a="))
        .filter(|l| l.starts_with("candidate:"))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
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
