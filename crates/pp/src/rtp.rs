//! RTP parsing and reordering.
//!
//! `.mjr` files hold RTP packets in arrival order. Before anything is depacketized the packets
//! are put in sequence-number order (sequence numbers extended past their 16-bit wrap),
//! duplicates (retransmissions) are dropped, and RTP timestamps are extended past their
//! 32-bit wrap so that each packet gets a monotonic time relative to the first one.

use jano_mjr::Frame;

/// One RTP packet, parsed, with its sequence number and timestamp extended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Sequence number, extended past wraps (only differences between packets matter).
    pub ext_seq: i64,
    /// RTP timestamp relative to the first packet in sequence order, extended past wraps.
    pub rel_ts: i64,
    /// The raw RTP timestamp.
    pub ts: u32,
    /// The raw sequence number.
    pub seq: u16,
    /// Marker bit.
    pub marker: bool,
    /// Payload type.
    pub pt: u8,
    /// SSRC.
    pub ssrc: u32,
    /// Payload, with CSRCs, header extension and padding removed. Empty for padding-only
    /// packets, which are kept so that they do not look like losses.
    pub payload: Vec<u8>,
    /// Receive time from the `.mjr` frame header (ms since the first frame).
    pub recv_ms: u32,
    /// Position of the frame in the file.
    pub arrival: usize,
}

/// Why a stored frame is not a usable RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpParseError {
    /// Shorter than its header says.
    Truncated,
    /// RTP version is not 2.
    BadVersion,
    /// Padding longer than the payload.
    BadPadding,
}

/// Parses an RTP packet (header fields and the payload bounds). `rel_ts` and `ext_seq` are
/// left for [`order`] to fill.
pub fn parse_rtp(data: &[u8]) -> Result<Packet, RtpParseError> {
    let b = |i: usize| data.get(i).copied().ok_or(RtpParseError::Truncated);
    let b0 = b(0)?;
    if b0 >> 6 != 2 {
        return Err(RtpParseError::BadVersion);
    }
    let b1 = b(1)?;
    let seq = u16::from_be_bytes([b(2)?, b(3)?]);
    let ts = u32::from_be_bytes([b(4)?, b(5)?, b(6)?, b(7)?]);
    let ssrc = u32::from_be_bytes([b(8)?, b(9)?, b(10)?, b(11)?]);
    let csrc_count = usize::from(b0 & 0x0f);
    let mut start = 12 + 4 * csrc_count;
    if b0 & 0x10 != 0 {
        // Header extension: 2 bytes profile, 2 bytes length in 32-bit words.
        let words = usize::from(u16::from_be_bytes([b(start + 2)?, b(start + 3)?]));
        start += 4 + 4 * words;
    }
    if start > data.len() {
        return Err(RtpParseError::Truncated);
    }
    let mut end = data.len();
    if b0 & 0x20 != 0 {
        let pad = usize::from(b(end - 1)?);
        if pad == 0 || pad > end - start {
            return Err(RtpParseError::BadPadding);
        }
        end -= pad;
    }
    Ok(Packet {
        ext_seq: i64::from(seq),
        rel_ts: 0,
        ts,
        seq,
        marker: b1 & 0x80 != 0,
        pt: b1 & 0x7f,
        ssrc,
        payload: data.get(start..end).unwrap_or_default().to_vec(),
        recv_ms: 0,
        arrival: 0,
    })
}

/// Filters applied while ordering (janus-pp-rec's `--ignore-first` and `--payload-type`).
#[derive(Debug, Clone, Copy, Default)]
pub struct OrderOptions {
    /// Skip this many stored frames first.
    pub ignore_first: usize,
    /// Keep only packets of this payload type.
    pub payload_type: Option<u8>,
}

/// What ordering found, for `--parse` and for warnings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderStats {
    /// Frames stored in the file.
    pub stored: usize,
    /// Skipped by `--ignore-first`.
    pub ignored: usize,
    /// Not RTP (too short, wrong version, bad padding).
    pub malformed: usize,
    /// Dropped by `--payload-type`.
    pub other_pt: usize,
    /// Dropped because their SSRC differs from the first packet's (as janus-pp-rec does).
    pub other_ssrc: usize,
    /// Same sequence number seen again (retransmissions): dropped.
    pub duplicates: usize,
    /// Packets stored after a packet with a higher sequence number (duplicates not counted).
    pub out_of_order: usize,
    /// Holes in the sequence numbers after ordering.
    pub gaps: usize,
    /// Sequence numbers missing in those holes.
    pub lost: u64,
    /// Packets with no payload (padding only), kept for continuity.
    pub empty: usize,
}

/// Packets in sequence order, duplicates removed, with extended timestamps.
#[derive(Debug, Clone, Default)]
pub struct Ordered {
    /// The packets.
    pub packets: Vec<Packet>,
    /// What was found on the way.
    pub stats: OrderStats,
}

impl Ordered {
    /// Timestamp span from the first to the last packet, in RTP ticks.
    pub fn span_ticks(&self) -> i64 {
        let min = self.packets.iter().map(|p| p.rel_ts).min().unwrap_or(0);
        let max = self.packets.iter().map(|p| p.rel_ts).max().unwrap_or(0);
        max - min
    }
}

/// Extends a 16-bit value against a reference that is already extended.
fn extend16(reference: i64, value: u16) -> i64 {
    reference + i64::from(value.wrapping_sub(reference as u16) as i16)
}

/// Parses, filters and orders the RTP packets of a recording.
pub fn order(frames: &[Frame], opts: OrderOptions) -> Ordered {
    let mut stats = OrderStats {
        stored: frames.len(),
        ..OrderStats::default()
    };
    let mut packets = Vec::with_capacity(frames.len());
    let mut highest: Option<i64> = None;
    let mut first_ssrc = None;
    for (i, frame) in frames.iter().enumerate() {
        if i < opts.ignore_first {
            stats.ignored += 1;
            continue;
        }
        let Ok(mut p) = parse_rtp(&frame.data) else {
            stats.malformed += 1;
            continue;
        };
        if opts.payload_type.is_some_and(|pt| pt != p.pt) {
            stats.other_pt += 1;
            continue;
        }
        if *first_ssrc.get_or_insert(p.ssrc) != p.ssrc {
            stats.other_ssrc += 1;
            continue;
        }
        p.recv_ms = frame.timestamp_ms;
        p.arrival = i;
        p.ext_seq = match highest {
            None => i64::from(p.seq),
            Some(h) => extend16(h, p.seq),
        };
        if highest.is_none_or(|h| p.ext_seq > h) {
            highest = Some(p.ext_seq);
        }
        packets.push(p);
    }
    // Stable: of two copies of one sequence number, the one stored first is kept.
    packets.sort_by_key(|p| p.ext_seq);
    let before = packets.len();
    packets.dedup_by_key(|p| p.ext_seq);
    stats.duplicates = before - packets.len();
    let mut arrivals: Vec<(usize, i64)> = packets.iter().map(|p| (p.arrival, p.ext_seq)).collect();
    arrivals.sort_unstable();
    let mut max = i64::MIN;
    for (_, seq) in arrivals {
        if seq < max {
            stats.out_of_order += 1;
        }
        max = max.max(seq);
    }
    let mut ext_ts = 0i64;
    let mut prev: Option<(i64, u32)> = None;
    for p in &mut packets {
        if let Some((prev_seq, prev_ts)) = prev {
            let d = p.ext_seq - prev_seq;
            if d > 1 {
                stats.gaps += 1;
                stats.lost += (d - 1) as u64;
            }
            ext_ts += i64::from(p.ts.wrapping_sub(prev_ts) as i32);
        }
        p.rel_ts = ext_ts;
        if p.payload.is_empty() {
            stats.empty += 1;
        }
        prev = Some((p.ext_seq, p.ts));
    }
    Ordered { packets, stats }
}

pub use jano_plugin::rtp::clock_rate;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn rtp(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x80, if marker { 0x80 | 96 } else { 96 }];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        p.extend_from_slice(payload);
        p
    }

    fn frames(pkts: &[Vec<u8>]) -> Vec<Frame> {
        pkts.iter()
            .map(|d| Frame {
                timestamp_ms: 0,
                data: d.clone(),
            })
            .collect()
    }

    #[test]
    fn parses_csrc_extension_and_padding() {
        let mut p = vec![0xB1, 0x60, 0, 1, 0, 0, 0, 9, 0, 0, 0, 7];
        p.extend_from_slice(&[1, 2, 3, 4]); // one CSRC
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xff, 0, 0]); // extension, 1 word
        p.extend_from_slice(&[0xAA, 0xBB]); // payload
        p.extend_from_slice(&[0, 0, 3]); // 3 bytes of padding
        let r = parse_rtp(&p).unwrap();
        assert_eq!(r.payload, vec![0xAA, 0xBB]);
        assert_eq!((r.seq, r.ts, r.pt, r.marker, r.ssrc), (1, 9, 96, false, 7));
        assert_eq!(parse_rtp(&p[..14]), Err(RtpParseError::Truncated));
        let mut bad = p.clone();
        *bad.last_mut().unwrap() = 40;
        assert_eq!(parse_rtp(&bad), Err(RtpParseError::BadPadding));
        assert_eq!(parse_rtp(&[0x40; 12]), Err(RtpParseError::BadVersion));
    }

    #[test]
    fn reorders_dedups_and_counts_gaps() {
        let f = frames(&[
            rtp(10, 0, false, b"a"),
            rtp(12, 960 * 2, false, b"c"),
            rtp(11, 960, false, b"b"),
            rtp(12, 960 * 2, false, b"X"), // duplicate: the first copy stays
            rtp(15, 960 * 5, false, b"f"),
        ]);
        let o = order(&f, OrderOptions::default());
        let got: Vec<_> = o.packets.iter().map(|p| (p.seq, p.rel_ts)).collect();
        assert_eq!(got, vec![(10, 0), (11, 960), (12, 1920), (15, 4800)]);
        assert_eq!(o.packets[2].payload, b"c");
        assert_eq!(o.stats.duplicates, 1);
        assert_eq!(o.stats.out_of_order, 1);
        assert_eq!((o.stats.gaps, o.stats.lost), (1, 2));
        assert_eq!(o.span_ticks(), 4800);
    }

    #[test]
    fn sequence_and_timestamp_wraps() {
        let f = frames(&[
            rtp(65534, u32::MAX - 959, false, b"a"),
            rtp(0, 960, false, b"c"),
            rtp(65535, 0, false, b"b"),
            rtp(1, 1920, false, b"d"),
        ]);
        let o = order(&f, OrderOptions::default());
        let got: Vec<_> = o.packets.iter().map(|p| (p.seq, p.rel_ts)).collect();
        assert_eq!(got, vec![(65534, 0), (65535, 960), (0, 1920), (1, 2880)]);
        assert_eq!(o.stats.gaps, 0);
    }

    #[test]
    fn filters_ssrc_pt_ignore_first_and_malformed() {
        let mut other = rtp(3, 0, false, b"z");
        other[8] = 0xff;
        let mut other_pt = rtp(4, 0, false, b"y");
        other_pt[1] = 0;
        let f = frames(&[
            rtp(1, 0, false, b"skip"),
            rtp(2, 0, false, b"a"),
            other,
            other_pt,
            vec![0x80, 0],
        ]);
        let o = order(
            &f,
            OrderOptions {
                ignore_first: 1,
                payload_type: Some(96),
            },
        );
        assert_eq!(o.packets.len(), 1);
        assert_eq!(o.stats.ignored, 1);
        assert_eq!(o.stats.other_ssrc, 1);
        assert_eq!(o.stats.other_pt, 1);
        assert_eq!(o.stats.malformed, 1);
        let o = order(&f, OrderOptions::default());
        assert_eq!((o.stats.other_ssrc, o.stats.other_pt), (1, 0));
        assert_eq!(o.packets.len(), 3);
    }
}
