//! The JSON info header, serialized the way Janus's jansson call does (`json_dumps` with
//! preserved key order and no `JSON_COMPACT`): `{"t": "a", "c": "opus", "s": 1, "u": 2}`,
//! i.e. `", "` and `": "` separators, keys in Janus's order. Byte-identical headers make our
//! files indistinguishable from Janus's for any tool that compares or hashes them.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::MediaKind;

/// Everything the info header may carry, in the order Janus writes it.
#[derive(Debug, Clone)]
pub(crate) struct HeaderFields<'a> {
    pub kind: MediaKind,
    pub codec: &'a str,
    pub fmtp: Option<&'a str>,
    pub description: Option<&'a str>,
    pub extmaps: &'a BTreeMap<u8, String>,
    pub created_us: i64,
    pub first_frame_us: i64,
    pub opusred_pt: Option<u8>,
    pub encrypted: bool,
}

impl HeaderFields<'_> {
    pub(crate) fn to_json(&self) -> String {
        let mut out = String::with_capacity(128);
        out.push('{');
        let mut first = true;
        let mut key = |out: &mut String, k: &str| {
            if !first {
                out.push_str(", ");
            }
            first = false;
            push_json_string(out, k);
            out.push_str(": ");
        };
        key(&mut out, "t");
        push_json_string(&mut out, self.kind.as_header_str());
        key(&mut out, "c");
        push_json_string(&mut out, self.codec);
        if let Some(f) = self.fmtp {
            key(&mut out, "f");
            push_json_string(&mut out, f);
        }
        if let Some(d) = self.description {
            key(&mut out, "d");
            push_json_string(&mut out, d);
        }
        if !self.extmaps.is_empty() {
            key(&mut out, "x");
            out.push('{');
            for (i, (id, uri)) in self.extmaps.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                push_json_string(&mut out, &id.to_string());
                out.push_str(": ");
                push_json_string(&mut out, uri);
            }
            out.push('}');
        }
        key(&mut out, "s");
        let _ = write!(out, "{}", self.created_us);
        key(&mut out, "u");
        let _ = write!(out, "{}", self.first_frame_us);
        // Janus only notes the RED payload type for audio.
        if let (MediaKind::Audio, Some(pt)) = (self.kind, self.opusred_pt) {
            if pt > 0 {
                key(&mut out, "or");
                let _ = write!(out, "{pt}");
            }
        }
        if self.encrypted {
            key(&mut out, "e");
            out.push_str("true");
        }
        out.push('}');
        out
    }
}

/// Writes a JSON string literal escaped as jansson does by default: `"` and `\`, the short
/// forms for common control characters, `\u00XX` (upper-case hex) for other control
/// characters, everything else (including non-ASCII and `/`) as is.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(extmaps: &'a BTreeMap<u8, String>) -> HeaderFields<'a> {
        HeaderFields {
            kind: MediaKind::Audio,
            codec: "opus",
            fmtp: None,
            description: None,
            extmaps,
            created_us: 10,
            first_frame_us: 20,
            opusred_pt: None,
            encrypted: false,
        }
    }

    #[test]
    fn minimal_header_uses_jansson_separators() {
        let x = BTreeMap::new();
        assert_eq!(
            fields(&x).to_json(),
            r#"{"t": "a", "c": "opus", "s": 10, "u": 20}"#
        );
    }

    #[test]
    fn every_key_in_janus_order() {
        let mut x = BTreeMap::new();
        x.insert(3, "urn:b".to_string());
        x.insert(1, "urn:a".to_string());
        let mut f = fields(&x);
        f.fmtp = Some("minptime=10;useinbandfec=1");
        f.description = Some("mic \"1\"\n");
        f.opusred_pt = Some(120);
        f.encrypted = true;
        assert_eq!(
            f.to_json(),
            r#"{"t": "a", "c": "opus", "f": "minptime=10;useinbandfec=1", "d": "mic \"1\"\n", "x": {"1": "urn:a", "3": "urn:b"}, "s": 10, "u": 20, "or": 120, "e": true}"#
        );
        let v: serde_json::Value = serde_json::from_str(&f.to_json()).unwrap();
        assert_eq!(v["d"], "mic \"1\"\n");
    }

    #[test]
    fn red_only_for_audio_and_control_chars_escaped() {
        let x = BTreeMap::new();
        let mut f = fields(&x);
        f.kind = MediaKind::Video;
        f.codec = "vp8\u{1}";
        f.opusred_pt = Some(120);
        assert_eq!(
            f.to_json(),
            r#"{"t": "v", "c": "vp8\u0001", "s": 10, "u": 20}"#
        );
    }
}
