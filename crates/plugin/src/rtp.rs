//! Shared RTP mechanics for plugins that forward media: keyframe detection per codec, the VP8
//! payload-descriptor fields, and [`SourceRewriter`] for packets a plugin drops on purpose.
//!
//! The engine keeps every destination's sequence numbers, timestamps and VP8 picture IDs /
//! TL0PICIDX continuous when the SSRC behind an m-line changes (a simulcast layer or publisher
//! switch); what only the plugin knows is which packets it skipped.

use crate::RtpPacket;

/// The packets a plugin skips on purpose in a stream it sends with `send_rtp` (a temporal
/// layer above the target): later ones move down so the peer sees no loss. Continuity across a
/// change of source (SSRC) is the engine's.
#[derive(Debug, Default)]
pub struct SourceRewriter {
    ssrc: Option<u32>,
    /// Packets of the current source skipped so far: later ones move down by as many.
    skipped: u64,
}

impl SourceRewriter {
    /// A packet of the current source that is deliberately not forwarded (a temporal layer
    /// above the target): later ones move down by one, keeping the sequence gapless.
    pub fn skip(&mut self, p: &RtpPacket) {
        if self.ssrc == Some(p.ssrc) {
            self.skipped += 1;
        }
    }

    pub fn rewrite(&mut self, p: &mut RtpPacket) {
        if self.ssrc != Some(p.ssrc) {
            self.ssrc = Some(p.ssrc);
            self.skipped = 0;
        }
        p.seq = p.seq.saturating_sub(self.skipped);
    }
}

/// Where the VP8 payload descriptor keeps its picture ID and TL0PICIDX (RFC 7741 §4.2):
/// (offset, two-byte picture id) and the TL0PICIDX offset.
fn vp8_id_offsets(payload: &[u8]) -> (Option<(usize, bool)>, Option<usize>) {
    let (Some(&b0), Some(&x)) = (payload.first(), payload.get(1)) else {
        return (None, None);
    };
    if b0 & 0x80 == 0 {
        return (None, None);
    }
    let mut at = 2;
    let mut pid = None;
    if x & 0x80 != 0 {
        let Some(&p) = payload.get(at) else {
            return (None, None);
        };
        let long = p & 0x80 != 0;
        pid = Some((at, long));
        at += if long { 2 } else { 1 };
    }
    let tl0 = (x & 0x40 != 0 && at < payload.len()).then_some(at);
    (pid, tl0)
}

/// The temporal layer index (TID) of a VP8 packet, when its descriptor carries one.
pub fn vp8_tid(payload: &[u8]) -> Option<u8> {
    vp8_temporal(payload).map(|(tid, _)| tid)
}

/// TID and layer-sync bit (Y: the frame refers only to temporal layer 0, so a receiver can
/// start on this layer here) of a VP8 packet, when its descriptor carries them.
pub fn vp8_temporal(payload: &[u8]) -> Option<(u8, bool)> {
    let x = *payload.get(1)?;
    if payload.first()? & 0x80 == 0 || x & 0x30 == 0 {
        return None;
    }
    let (pid, tl0) = vp8_id_offsets(payload);
    let at = match (tl0, pid) {
        (Some(t), _) => t + 1,
        (None, Some((p, long))) => p + if long { 2 } else { 1 },
        (None, None) => 2,
    };
    // TID is only meaningful with the T bit; K alone carries just KEYIDX.
    if x & 0x20 == 0 {
        return None;
    }
    payload.get(at).map(|b| (b >> 6, b & 0x20 != 0))
}

/// The fields of an RTP header a plugin reading plain RTP needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub pt: u8,
    pub marker: bool,
    pub seq: u16,
    pub ts: u32,
    pub ssrc: u32,
    /// The payload is `packet[payload_at..payload_end]` (after CSRCs, extension, before padding).
    pub payload_at: usize,
    pub payload_end: usize,
}

/// Where an RTP packet's payload starts (after the CSRCs and the header extension); `None`
/// when it is not version 2 or too short. Padding is not looked at (it may be encrypted).
pub fn payload_start(b: &[u8]) -> Option<usize> {
    let b0 = *b.first()?;
    if b0 >> 6 != 2 || b.len() < 12 {
        return None;
    }
    let mut at = 12 + 4 * usize::from(b0 & 0x0f);
    if b0 & 0x10 != 0 {
        let len = u16::from_be_bytes([*b.get(at + 2)?, *b.get(at + 3)?]);
        at += 4 + 4 * usize::from(len);
    }
    (at <= b.len()).then_some(at)
}

/// Codec names as Janus writes them, audio and video, in `'static` form (what
/// [`crate::RtpPacket::codec`] holds).
pub const AUDIO_CODECS: &[&str] = &[
    "opus",
    "multiopus",
    "g722",
    "pcmu",
    "pcma",
    "isac32",
    "isac16",
    "l16-48",
    "l16",
];
pub const VIDEO_CODECS: &[&str] = &["vp8", "vp9", "h264", "av1", "h265"];

/// The `'static` name of a codec (any case), if it is one Janus knows.
pub fn codec_name(name: &str) -> Option<&'static str> {
    AUDIO_CODECS
        .iter()
        .chain(VIDEO_CODECS)
        .copied()
        .find(|c| c.eq_ignore_ascii_case(name))
}

/// The primary (newest) block of an RFC 2198 RED payload, with its payload type: what a
/// receiver without RED plays. `None` when the block headers do not fit the payload.
pub fn red_primary(payload: &[u8]) -> Option<(u8, &[u8])> {
    let mut at = 0;
    let mut redundant = 0usize;
    loop {
        let b = *payload.get(at)?;
        if b & 0x80 == 0 {
            return Some((b & 0x7f, payload.get(at + 1 + redundant..)?));
        }
        let len = u16::from_be_bytes([*payload.get(at + 2)?, *payload.get(at + 3)?]) & 0x03ff;
        redundant += usize::from(len);
        at += 4;
    }
}

/// The RTP clock rate of a codec (Janus's names).
pub fn clock_rate(codec: &str) -> u32 {
    match codec.to_ascii_lowercase().as_str() {
        "pcmu" | "pcma" | "g711" | "g722" => 8000,
        "l16" | "isac16" => 16000,
        "isac32" => 32000,
        "vp8" | "vp9" | "h264" | "av1" | "h265" => 90000,
        _ => 48000,
    }
}

/// Parses an RTP header (version 2, CSRCs, extension, padding); `None` when it is not one.
pub fn parse_rtp(b: &[u8]) -> Option<Header> {
    let (&b0, &b1) = (b.first()?, b.get(1)?);
    let at = payload_start(b)?;
    let mut end = b.len();
    if b0 & 0x20 != 0 {
        end = end.checked_sub(usize::from(*b.last()?))?;
    }
    (at <= end).then_some(Header {
        pt: b1 & 0x7f,
        marker: b1 & 0x80 != 0,
        seq: u16::from_be_bytes([b[2], b[3]]),
        ts: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        ssrc: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        payload_at: at,
        payload_end: end,
    })
}

/// Extends one stream's 16-bit sequence numbers (the first one lands in the second cycle, so
/// a packet reordered before it still has room).
#[derive(Debug, Default)]
pub struct SeqExt {
    last: Option<u64>,
}

impl SeqExt {
    pub fn extend(&mut self, seq: u16) -> u64 {
        let ext = match self.last {
            None => u64::from(seq) + (1 << 16),
            Some(last) => {
                let base = last & !0xffff;
                let cand = base | u64::from(seq);
                // Pick the candidate closest to the last one.
                [cand.wrapping_sub(1 << 16), cand, cand + (1 << 16)]
                    .into_iter()
                    .min_by_key(|c| c.abs_diff(last))
                    .unwrap_or(cand)
            }
        };
        if self.last.is_none_or(|l| ext > l) {
            self.last = Some(ext);
        }
        ext
    }
}

/// The layers of an SVC packet's frame, as a VP9 payload descriptor (RFC 9628) or an AV1
/// dependency descriptor ([`crate::dd`]) tells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvcLayers {
    /// Spatial (SID) and temporal (TID) layer indices.
    pub sid: u8,
    pub tid: u8,
    /// The temporal layers (bit per layer) a receiver of lower ones can move up to at this
    /// frame: VP9's U bit marks the frame's own layer; an AV1 frame, every layer of a decode
    /// target it is a "switch" point of.
    pub switch_to: u8,
    /// The packet begins / ends a layer frame (VP9's B and E; AV1's start/end of frame).
    pub begin: bool,
    pub end: bool,
    /// The frame references no earlier picture (VP9: P = 0; AV1: the N bit of a new coded
    /// video sequence); with SID 0 and `begin`, a keyframe starts here.
    pub intra: bool,
}

impl SvcLayers {
    /// The first packet of a keyframe: where any layer can start.
    pub fn keyframe(&self) -> bool {
        self.intra && self.begin && self.sid == 0
    }

    /// Whether a receiver of temporal layers up to `cap` can move up to `target` here: a
    /// keyframe, or the start of a frame that switches into a layer in between.
    pub fn switches_up(&self, cap: u8, target: u8) -> bool {
        self.keyframe()
            || (self.begin
                && (cap.saturating_add(1)..=target.min(7)).any(|t| self.switch_to & (1 << t) != 0))
    }
}

/// The layer indices of a VP9 packet, when its descriptor carries them (L bit).
pub fn vp9_layers(payload: &[u8]) -> Option<SvcLayers> {
    let b0 = *payload.first()?;
    if b0 & 0x20 == 0 {
        return None;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        at += if payload.get(1)? & 0x80 != 0 { 2 } else { 1 };
    }
    let l = *payload.get(at)?;
    Some(SvcLayers {
        sid: (l >> 1) & 0x07,
        tid: l >> 5,
        switch_to: if l & 0x10 != 0 { 1 << (l >> 5) } else { 0 },
        begin: b0 & 0x08 != 0,
        end: b0 & 0x04 != 0,
        intra: b0 & 0x40 == 0,
    })
}

pub fn vp8_ids(payload: &[u8]) -> (Option<u16>, Option<u8>) {
    let (pid, tl0) = vp8_id_offsets(payload);
    let pid = pid.and_then(|(at, long)| {
        if long {
            let hi = *payload.get(at)?;
            let lo = *payload.get(at + 1)?;
            Some(u16::from_be_bytes([hi & 0x7f, lo]))
        } else {
            payload.get(at).map(|b| u16::from(b & 0x7f))
        }
    });
    (pid, tl0.and_then(|at| payload.get(at).copied()))
}

/// Whether a VP8 RTP payload starts a keyframe (RFC 7741: descriptor, then the frame header's
/// inverse key-frame bit).
pub fn vp8_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let start = b0 & 0x10 != 0 && b0 & 0x07 == 0;
    if !start {
        return false;
    }
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = payload.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: one or two bytes.
            match payload.get(at) {
                Some(p) if p & 0x80 != 0 => at += 2,
                Some(_) => at += 1,
                None => return false,
            }
        }
        if x & 0x40 != 0 {
            at += 1;
        }
        if x & 0x30 != 0 {
            at += 1;
        }
    }
    payload.get(at).is_some_and(|h| h & 0x01 == 0)
}

/// Whether an RTP payload of this codec (Janus's name) starts a keyframe: where a forwarder
/// may switch a receiver to another source (a simulcast layer, another publisher) without
/// the decoder seeing a frame that refers to one it never got.
pub fn is_keyframe(codec: &str, payload: &[u8]) -> bool {
    match codec {
        "vp8" => vp8_keyframe(payload),
        "vp9" => vp9_keyframe(payload),
        "h264" => h264_keyframe(payload),
        "av1" => av1_keyframe(payload),
        "h265" => h265_keyframe(payload),
        _ => false,
    }
}

/// VP9 (RFC 9628 descriptor): the start of a frame (B) that is not inter-predicted (P clear)
/// in the lowest spatial layer.
pub fn vp9_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let (p, b, l) = (b0 & 0x40 != 0, b0 & 0x08 != 0, b0 & 0x20 != 0);
    if p || !b {
        return false;
    }
    if !l {
        return true;
    }
    // Layer indices follow the picture id: the spatial id must be 0.
    let mut at = 1;
    if b0 & 0x80 != 0 {
        match payload.get(at) {
            Some(x) if x & 0x80 != 0 => at += 2,
            Some(_) => at += 1,
            None => return false,
        }
    }
    payload.get(at).is_some_and(|x| (x >> 1) & 0x07 == 0)
}

/// H.264 (RFC 6184): an IDR slice or an SPS, alone, aggregated (STAP-A) or starting a
/// fragmented unit (FU-A).
pub fn h264_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let key = |t: u8| t == 5 || t == 7;
    match b0 & 0x1f {
        24 => {
            let mut at = 1;
            while let (Some(&hi), Some(&lo)) = (payload.get(at), payload.get(at + 1)) {
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                match payload.get(at + 2) {
                    Some(h) if key(h & 0x1f) => return true,
                    Some(_) => {}
                    None => return false,
                }
                at += 2 + len;
            }
            false
        }
        28 => payload
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x1f)),
        t => key(t),
    }
}

/// H.265 (RFC 7798): an IRAP picture (types 16–21) or a VPS/SPS, alone, aggregated or
/// starting a fragmentation unit.
pub fn h265_keyframe(payload: &[u8]) -> bool {
    let Some(&b0) = payload.first() else {
        return false;
    };
    let key = |t: u8| (16..=21).contains(&t) || t == 32 || t == 33;
    match (b0 >> 1) & 0x3f {
        48 => payload.get(4).is_some_and(|h| key((h >> 1) & 0x3f)),
        49 => payload
            .get(2)
            .is_some_and(|fu| fu & 0x80 != 0 && key(fu & 0x3f)),
        t => key(t),
    }
}

/// AV1 (RTP payload format): the aggregation header's N bit marks the first packet of a coded
/// video sequence, i.e. a keyframe.
pub fn av1_keyframe(payload: &[u8]) -> bool {
    payload
        .first()
        .is_some_and(|h| h & 0x08 != 0 && h & 0x80 == 0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn red_primary_block() {
        // One redundant block of 3 bytes (pt 111, offset 960), then the primary (pt 111).
        let red = [0xEF, 0x0F, 0x00, 0x03, 0x6F, 1, 2, 3, 9, 9];
        assert_eq!(super::red_primary(&red), Some((111, &[9u8, 9][..])));
        assert_eq!(super::red_primary(&[0x6F, 5]), Some((111, &[5u8][..])));
        assert_eq!(super::red_primary(&[0xEF, 0x0F, 0x00, 0x09, 0x6F, 1]), None);
        let red = [0xEF, 0x00, 0x00, 0x03, 0x6F, 1, 2, 3, 9, 8];
        assert_eq!(super::red_primary(&red), Some((111, &[9u8, 8][..])));
        assert_eq!(super::red_primary(&[0x6F, 7]), Some((111, &[7u8][..])));
        assert_eq!(super::red_primary(&[0xEF, 0]), None);
    }

    use super::*;
    use crate::MediaKind;

    #[test]
    fn keyframes_per_codec() {
        // VP8: S, partition 0, no descriptor extension; frame header P bit clear.
        assert!(is_keyframe("vp8", &[0x10, 0x00]));
        assert!(!is_keyframe("vp8", &[0x10, 0x01]));
        // H.264: IDR, SPS in a STAP-A, FU-A start of an IDR; a P slice is not.
        assert!(is_keyframe("h264", &[0x65]));
        assert!(is_keyframe("h264", &[0x78, 0x00, 0x02, 0x67, 0x42]));
        assert!(is_keyframe("h264", &[0x7c, 0x85]));
        assert!(!is_keyframe("h264", &[0x7c, 0x05]), "FU-A continuation");
        assert!(!is_keyframe("h264", &[0x41]));
        assert!(
            !is_keyframe("h264", &[0x78, 0x00, 0x09]),
            "truncated STAP-A"
        );
        // VP9: B set, P clear; with layer indices only spatial layer 0.
        assert!(is_keyframe("vp9", &[0x08]));
        assert!(!is_keyframe("vp9", &[0x48]));
        assert!(is_keyframe("vp9", &[0xa8, 0x01, 0x00]));
        assert!(!is_keyframe("vp9", &[0xa8, 0x01, 0x02]));
        // AV1: N bit.
        assert!(is_keyframe("av1", &[0x08]));
        assert!(!is_keyframe("av1", &[0x10]));
        // H.265: IDR_W_RADL (19) and its FU start.
        assert!(is_keyframe("h265", &[19 << 1, 1]));
        assert!(is_keyframe("h265", &[49 << 1, 1, 0x80 | 19]));
        assert!(!is_keyframe("h265", &[1 << 1, 1]));
        assert!(!is_keyframe("opus", &[0xff]));
        assert!(!is_keyframe("vp8", &[]));
    }

    #[test]
    fn vp8_ids_parse() {
        // X, S; I and L set; 15-bit picture id 0x7ffe; TL0PICIDX 255.
        let p = vec![0x90, 0xC0, 0xFF, 0xFE, 0xFF, 0x00];
        assert_eq!(vp8_ids(&p), (Some(0x7ffe), Some(255)));
        // Short (7-bit) picture id 5, TL0PICIDX 9.
        assert_eq!(vp8_ids(&[0x90, 0xC0, 0x05, 0x09]), (Some(5), Some(9)));
        // Truncated descriptors carry nothing.
        assert_eq!(vp8_ids(&[0x90, 0xC0]), (None, None));
        assert_eq!(vp8_ids(&[]), (None, None));
    }

    #[test]
    fn temporal_layer_index() {
        // X; I (short picture id), L, T: pid 5, tl0 9, TID 2.
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x09, 0x80]), Some(2));
        // X; T only: TID 1.
        assert_eq!(vp8_tid(&[0x90, 0x20, 0x40]), Some(1));
        // No T bit, or no extension, or truncated: none.
        assert_eq!(vp8_tid(&[0x90, 0x80, 0x05]), None);
        assert_eq!(vp8_tid(&[0x10, 0x00]), None);
        assert_eq!(vp8_tid(&[0x90, 0xE0, 0x05, 0x09]), None);
    }

    #[test]
    fn vp9_layer_indices() {
        // I (long picture id 0x1234), L, B, E; TID 2, U, SID 1; TL0PICIDX follows.
        let l = vp9_layers(&[0xAC, 0x92, 0x34, 0x52, 0x07]).expect("layers");
        assert_eq!((l.sid, l.tid, l.switch_to), (1, 2, 0b100));
        assert!(l.begin && l.end && l.intra);
        // No picture id; P set, B only: TID 0, SID 2.
        let l = vp9_layers(&[0x68, 0x04, 0x00]).expect("layers");
        assert_eq!(
            (l.sid, l.tid, l.switch_to != 0, l.begin, l.end, l.intra),
            (2, 0, false, true, false, false)
        );
        // No L bit, or truncated: nothing.
        assert_eq!(vp9_layers(&[0x88, 0x01]), None);
        assert_eq!(vp9_layers(&[0xA0, 0x81]), None);
        assert_eq!(vp9_layers(&[]), None);
    }

    #[test]
    fn skipped_packets_leave_no_gap() {
        let mut r = SourceRewriter::default();
        let pkt = |seq| RtpPacket {
            mindex: 1,
            kind: MediaKind::Video,
            pt: 96,
            codec: "h264",
            seq,
            timestamp: 0,
            marker: false,
            ssrc: 7,
            substream: None,
            ext: Default::default(),
            payload: vec![0u8; 4].into(),
            svc: None,
        };
        let mut out = Vec::new();
        for seq in 100..110u64 {
            let mut p = pkt(seq);
            if seq % 3 == 1 {
                r.skip(&p);
                continue;
            }
            r.rewrite(&mut p);
            out.push(p.seq);
        }
        assert!(out.len() >= 5, "{out:?}");
        assert!(out.windows(2).all(|w| w[1] == w[0] + 1), "gapless: {out:?}");
    }

    #[test]
    fn keyframe_detection() {
        // S=1, PID=0, no extension; frame header P bit 0 = keyframe.
        assert!(vp8_keyframe(&[0x10, 0x00]));
        assert!(!vp8_keyframe(&[0x10, 0x01]));
        assert!(!vp8_keyframe(&[0x00, 0x00]), "not a partition start");
        // With X, I (long picture id) and the frame header after it.
        assert!(vp8_keyframe(&[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!vp8_keyframe(&[0x90, 0x80, 0x81]));
    }
}
