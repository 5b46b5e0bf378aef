//! `--header` and `--parse`: what a recording holds, without converting it.

use std::fmt::Write as _;

use jano_mjr::{MediaKind, Recording};
use serde_json::{Map, Value};

use crate::convert::video_frames;
use crate::rtp::{clock_rate, order, OrderOptions};

/// The info header as JSON (for legacy files, the keys janus-pp-rec assumes).
pub fn header_json(rec: &Recording) -> String {
    let mut map = rec.info.raw.clone();
    if map.is_empty() {
        let mut m = Map::new();
        m.insert("t".into(), Value::from(rec.info.kind.as_header_str()));
        m.insert("c".into(), Value::from(rec.info.codec.clone()));
        map = m;
    }
    Value::Object(map).to_string()
}

/// The `--parse` summary: one `key: value` per line.
pub fn summary(rec: &Recording, opts: OrderOptions) -> String {
    let mut s = String::new();
    let info = &rec.info;
    let _ = writeln!(s, "kind: {}", info.kind);
    let _ = writeln!(s, "codec: {}", info.codec);
    if let Some(f) = &info.fmtp {
        let _ = writeln!(s, "fmtp: {f}");
    }
    let _ = writeln!(s, "created: {}", info.created_us);
    let _ = writeln!(s, "first frame written: {}", info.first_frame_us);
    if info.encrypted {
        let _ = writeln!(s, "end-to-end encrypted: yes");
    }
    let _ = writeln!(s, "stored frames: {}", rec.frames.len());
    if info.kind == MediaKind::Data {
        let times: Vec<i64> = rec
            .frames
            .iter()
            .filter_map(|f| f.data_message())
            .map(|(t, _)| t)
            .collect();
        let (first, last) = (times.iter().min().copied(), times.iter().max().copied());
        let _ = writeln!(s, "messages: {}", times.len());
        if let (Some(a), Some(b)) = (first, last) {
            let _ = writeln!(s, "first time: {a}");
            let _ = writeln!(s, "last time: {b}");
            let _ = writeln!(s, "duration: {:.3} s", (b - a) as f64 / 1e6);
        }
        return s;
    }
    let o = order(&rec.frames, opts);
    let st = &o.stats;
    let rate = clock_rate(&info.codec);
    let _ = writeln!(s, "packets: {}", o.packets.len());
    let _ = writeln!(s, "duplicates: {}", st.duplicates);
    let _ = writeln!(s, "out of order: {}", st.out_of_order);
    let _ = writeln!(s, "gaps: {}", st.gaps);
    let _ = writeln!(s, "lost packets: {}", st.lost);
    if st.ignored > 0 {
        let _ = writeln!(s, "ignored (--ignore-first): {}", st.ignored);
    }
    if st.other_pt > 0 {
        let _ = writeln!(s, "other payload type: {}", st.other_pt);
    }
    let _ = writeln!(s, "other ssrc: {}", st.other_ssrc);
    let _ = writeln!(s, "malformed: {}", st.malformed);
    let _ = writeln!(s, "padding only: {}", st.empty);
    if let (Some(a), Some(b)) = (o.packets.first(), o.packets.last()) {
        let _ = writeln!(s, "first timestamp: {} (seq {})", a.ts, a.seq);
        let _ = writeln!(s, "last timestamp: {} (seq {})", b.ts, b.seq);
        let _ = writeln!(s, "clock rate: {rate}");
        let _ = writeln!(
            s,
            "duration: {:.3} s",
            o.span_ticks() as f64 / f64::from(rate)
        );
    }
    if info.kind == MediaKind::Video {
        if let Some((_, fs, (w, h))) = video_frames(rec, &o) {
            let _ = writeln!(s, "frames: {}", fs.frames);
            let _ = writeln!(s, "complete frames kept: {}", fs.written);
            let _ = writeln!(s, "keyframes: {}", fs.keyframes);
            let _ = writeln!(s, "incomplete frames: {}", fs.incomplete);
            let _ = writeln!(s, "undecodable frames: {}", fs.malformed);
            let _ = writeln!(s, "skipped waiting for keyframe: {}", fs.waiting_keyframe);
            let _ = writeln!(s, "size: {w}x{h}");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::tests::rtp;
    use jano_mjr::{parse, Frame};

    #[test]
    fn summary_of_a_small_video_recording() {
        let mut bytes = b"MJR00002".to_vec();
        let json = br#"{"t": "v", "c": "vp8", "s": 1, "u": 2}"#;
        bytes.extend_from_slice(&(json.len() as u16).to_be_bytes());
        bytes.extend_from_slice(json);
        let mut rec = parse(&bytes).unwrap();
        let key = [0x10, 0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
        for (seq, ts) in [(1u16, 0u32), (3, 6000), (2, 3000), (3, 6000), (5, 12000)] {
            let mut p = key.to_vec();
            if seq > 1 {
                p[1] = 0x01; // inter frame
            }
            rec.frames.push(Frame {
                timestamp_ms: 0,
                data: rtp(seq, ts, true, &p),
            });
        }
        let s = summary(&rec, OrderOptions::default());
        for line in [
            "kind: video",
            "codec: vp8",
            "packets: 4",
            "duplicates: 1",
            "out of order: 1",
            "gaps: 1",
            "lost packets: 1",
            "first timestamp: 0 (seq 1)",
            "last timestamp: 12000 (seq 5)",
            "duration: 0.133 s",
            "complete frames kept: 3",
            "skipped waiting for keyframe: 1",
            "size: 320x240",
        ] {
            assert!(s.lines().any(|l| l == line), "missing {line:?} in\n{s}");
        }
        let h: Value = serde_json::from_str(&header_json(&rec)).unwrap();
        assert_eq!(h["c"], "vp8");
    }
}
