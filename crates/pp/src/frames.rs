//! Video frame assembly: ordered RTP packets → whole frames, dropping what a loss broke.
//!
//! Packets sharing an RTP timestamp form one frame. A frame is written only if it is whole:
//! no sequence hole inside it, its first packet starts a frame (codec-specific: VP8's S bit,
//! VP9's B bit, an unfragmented or starting H.264 NAL, AV1 without Z), and, when a hole
//! follows it, its last packet carries the marker bit. After a broken frame, or any hole
//! (which may have swallowed whole frames), every frame is skipped until the next keyframe,
//! since the ones in between reference what was lost.

use crate::codec::Depacketizer;
use crate::rtp::Packet;

/// One video frame as the container wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// RTP timestamp relative to the first packet (90 kHz ticks).
    pub rel_ts: i64,
    /// The frame bitstream.
    pub data: Vec<u8>,
    /// Whether it can be decoded on its own.
    pub keyframe: bool,
}

/// What assembly did, for `--parse` and warnings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameStats {
    /// Distinct RTP timestamps carrying media.
    pub frames: usize,
    /// Frames kept.
    pub written: usize,
    /// Frames with a packet missing.
    pub incomplete: usize,
    /// Frames whose payloads could not be depacketized.
    pub malformed: usize,
    /// Whole frames skipped while waiting for a keyframe.
    pub waiting_keyframe: usize,
    /// Keyframes kept.
    pub keyframes: usize,
}

/// Groups ordered packets into frames and depacketizes the whole ones.
pub fn assemble(
    packets: &[Packet],
    depack: &mut dyn Depacketizer,
) -> (Vec<VideoFrame>, FrameStats) {
    let mut stats = FrameStats::default();
    let mut out = Vec::new();
    let groups: Vec<&[Packet]> = packets.chunk_by(|a, b| a.rel_ts == b.rel_ts).collect();
    let mut need_keyframe = true;
    for (i, group) in groups.iter().enumerate() {
        // Whatever was lost in a hole (maybe whole frames) is referenced by what follows.
        let gap_before = match (
            i.checked_sub(1)
                .and_then(|j| groups.get(j))
                .and_then(|g| g.last()),
            group.first(),
        ) {
            (Some(prev), Some(first)) => first.ext_seq - prev.ext_seq > 1,
            _ => false,
        };
        if gap_before {
            need_keyframe = true;
        }
        let media: Vec<&Packet> = group.iter().filter(|p| !p.payload.is_empty()).collect();
        let (Some(first), Some(last_media)) = (media.first(), media.last()) else {
            continue; // padding only
        };
        stats.frames += 1;
        let contiguous = group.windows(2).all(|w| w[1].ext_seq - w[0].ext_seq == 1);
        let gap_after = match (groups.get(i + 1).and_then(|g| g.first()), group.last()) {
            (Some(next), Some(last)) => next.ext_seq - last.ext_seq > 1,
            _ => false,
        };
        let whole =
            contiguous && depack.starts_frame(&first.payload) && (!gap_after || last_media.marker);
        if !whole {
            stats.incomplete += 1;
            need_keyframe = true;
            continue;
        }
        let payloads: Vec<&[u8]> = media.iter().map(|p| p.payload.as_slice()).collect();
        match depack.depacketize(&payloads) {
            Err(_) => {
                stats.malformed += 1;
                need_keyframe = true;
            }
            Ok(None) => {}
            Ok(Some(f)) => {
                if need_keyframe && !f.keyframe {
                    stats.waiting_keyframe += 1;
                    continue;
                }
                need_keyframe = false;
                stats.written += 1;
                if f.keyframe {
                    stats.keyframes += 1;
                }
                out.push(VideoFrame {
                    rel_ts: first.rel_ts,
                    data: f.data,
                    keyframe: f.keyframe,
                });
            }
        }
    }
    (out, stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::vp8::Vp8;
    use crate::rtp::{order, tests::rtp, OrderOptions};
    use jano_mjr::Frame;

    /// VP8 payload: descriptor (S bit when `start`), then `body`.
    fn vp8(start: bool, body: &[u8]) -> Vec<u8> {
        let mut p = vec![if start { 0x10 } else { 0x00 }];
        p.extend_from_slice(body);
        p
    }

    fn run(pkts: Vec<Vec<u8>>) -> (Vec<VideoFrame>, FrameStats) {
        let frames: Vec<Frame> = pkts
            .into_iter()
            .map(|data| Frame {
                timestamp_ms: 0,
                data,
            })
            .collect();
        let o = order(&frames, OrderOptions::default());
        assemble(&o.packets, &mut Vp8)
    }

    const KEY: &[u8] = &[0x00, 0, 0, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00];
    const INTER: &[u8] = &[0x01, 0x02];

    #[test]
    fn joins_fragments_in_sequence_order() {
        let (f, s) = run(vec![
            rtp(2, 0, true, &vp8(false, b"BB")),
            rtp(1, 0, false, &vp8(true, KEY)),
            rtp(3, 3000, true, &vp8(true, INTER)),
        ]);
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].data, [KEY, b"BB"].concat());
        assert!(f[0].keyframe && !f[1].keyframe);
        assert_eq!((f[0].rel_ts, f[1].rel_ts), (0, 3000));
        assert_eq!(s.written, 2);
    }

    #[test]
    fn loss_skips_until_next_keyframe() {
        let (f, s) = run(vec![
            rtp(1, 0, true, &vp8(true, KEY)),
            // frame at 3000 lost its second packet (seq 3)
            rtp(2, 3000, false, &vp8(true, INTER)),
            rtp(4, 6000, true, &vp8(true, INTER)), // whole, but references the broken one
            rtp(5, 9000, true, &vp8(true, KEY)),
            rtp(6, 12000, true, &vp8(true, INTER)),
        ]);
        let ts: Vec<i64> = f.iter().map(|f| f.rel_ts).collect();
        assert_eq!(ts, vec![0, 9000, 12000]);
        assert_eq!(s.incomplete, 1);
        assert_eq!(s.waiting_keyframe, 1);
    }

    #[test]
    fn whole_frame_lost_waits_for_keyframe() {
        let (f, s) = run(vec![
            rtp(1, 0, true, &vp8(true, KEY)),
            rtp(3, 6000, true, &vp8(true, INTER)), // frame 3000 (seq 2) lost entirely
            rtp(4, 9000, true, &vp8(true, KEY)),
        ]);
        let ts: Vec<i64> = f.iter().map(|f| f.rel_ts).collect();
        assert_eq!(ts, vec![0, 9000]);
        assert_eq!((s.incomplete, s.waiting_keyframe), (0, 1));
    }

    #[test]
    fn frame_missing_its_start_is_incomplete() {
        let (f, s) = run(vec![
            rtp(1, 0, true, &vp8(true, KEY)),
            rtp(3, 3000, true, &vp8(false, b"tail")), // seq 2 (the start) was lost
            rtp(4, 6000, true, &vp8(true, KEY)),
        ]);
        assert_eq!(f.len(), 2);
        assert_eq!(s.incomplete, 1);
    }

    #[test]
    fn recording_starting_with_inter_frames_waits_for_keyframe() {
        let (f, s) = run(vec![
            rtp(1, 0, true, &vp8(true, INTER)),
            rtp(2, 3000, true, &vp8(true, KEY)),
        ]);
        assert_eq!(f.len(), 1);
        assert!(f[0].keyframe);
        assert_eq!(s.waiting_keyframe, 1);
    }
}
