//! Ogg Opus (RFC 7845), muxed with the `ogg` crate.
//!
//! Granule positions count 48 kHz samples. Where packets were lost (or the sender stopped
//! sending, e.g. DTX), one-byte "lost frame" packets are inserted so that time keeps running:
//! decoders conceal them and the file lasts as long as the recording did.

use std::path::Path;

use ogg::writing::{PacketWriteEndInfo, PacketWriter};

use super::{create, io_err, opus_head, OpusPacket};
use crate::codec::opus::lost_frame_packet;
use crate::error::PpError;

/// End a page after this many packets (about one second of 20 ms packets), so players can
/// seek without reading huge pages.
const PACKETS_PER_PAGE: usize = 50;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OggStats {
    /// Opus packets from the recording.
    pub packets: usize,
    /// Lost-frame packets inserted in holes.
    pub filled: usize,
    /// Final granule position (= duration in 48 kHz samples).
    pub granule: u64,
    /// Holes longer than [`MAX_HOLE_SECONDS`], closed instead of filled.
    pub closed_holes: usize,
}

/// Longest hole filled; a longer jump is taken as a timestamp glitch and closed.
pub const MAX_HOLE_SECONDS: u64 = 3600;

/// Lays packets on a gapless timeline: `(data, granule after it)`, holes filled.
pub fn timeline(packets: &[OpusPacket]) -> (Vec<(Vec<u8>, u64)>, OggStats) {
    let mut stats = OggStats::default();
    let mut out = Vec::with_capacity(packets.len());
    let Some(first) = packets.first() else {
        return (out, stats);
    };
    let base = first.rel_ts;
    let mut pos: u64 = 0;
    for p in packets {
        let mut start = u64::try_from(p.rel_ts - base).unwrap_or(0);
        if start.saturating_sub(pos) > MAX_HOLE_SECONDS * 48_000 {
            stats.closed_holes += 1;
            start = pos;
        }
        if start > pos {
            let toc = p.data.first().copied().unwrap_or(0xFC);
            let (filler, dur) = lost_frame_packet(toc);
            let dur = u64::from(dur);
            // Round to the nearest whole filler.
            while start.saturating_sub(pos) * 2 > dur {
                pos += dur;
                stats.filled += 1;
                out.push((filler.to_vec(), pos));
            }
        }
        pos += u64::from(p.samples);
        stats.packets += 1;
        out.push((p.data.clone(), pos));
    }
    stats.granule = pos;
    (out, stats)
}

/// Writes an Ogg Opus file.
pub fn write(
    path: &Path,
    packets: &[OpusPacket],
    multiopus: bool,
    serial: u32,
) -> Result<OggStats, PpError> {
    if packets.is_empty() {
        return Err(PpError::NothingToWrite(
            "no Opus packets in the recording".into(),
        ));
    }
    let (timeline, stats) = timeline(packets);
    let mut w = PacketWriter::new(create(path)?);
    let err = io_err(path);
    let mut tags = b"OpusTags".to_vec();
    let vendor = concat!("jano-pp ", env!("CARGO_PKG_VERSION"));
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor.as_bytes());
    tags.extend_from_slice(&0u32.to_le_bytes());
    let res = (|| {
        w.write_packet(opus_head(multiopus), serial, PacketWriteEndInfo::EndPage, 0)?;
        w.write_packet(tags, serial, PacketWriteEndInfo::EndPage, 0)?;
        let last = timeline.len().saturating_sub(1);
        for (i, (data, granule)) in timeline.into_iter().enumerate() {
            let end = if i == last {
                PacketWriteEndInfo::EndStream
            } else if (i + 1) % PACKETS_PER_PAGE == 0 {
                PacketWriteEndInfo::EndPage
            } else {
                PacketWriteEndInfo::NormalPacket
            };
            w.write_packet(data, serial, end, granule)?;
        }
        std::io::Write::flush(w.inner_mut())
    })();
    res.map_err(err)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(rel_ts: i64) -> OpusPacket {
        OpusPacket {
            rel_ts,
            samples: 960,
            data: vec![0xFC, 0x01],
        }
    }

    #[test]
    fn holes_are_filled_and_granule_counts_samples() {
        // 0, 960, (lost 1920, 2880), 3840
        let (t, s) = timeline(&[pkt(0), pkt(960), pkt(3840)]);
        let granules: Vec<u64> = t.iter().map(|(_, g)| *g).collect();
        assert_eq!(granules, vec![960, 1920, 2880, 3840, 4800]);
        assert_eq!(t[2].0, vec![0xFC]);
        assert_eq!((s.packets, s.filled, s.granule), (3, 2, 4800));
        // Overlapping timestamps do not move time backwards.
        let (t, _) = timeline(&[pkt(0), pkt(0), pkt(960)]);
        let granules: Vec<u64> = t.iter().map(|(_, g)| *g).collect();
        assert_eq!(granules, vec![960, 1920, 2880]);
        // A jump of more than an hour is a glitch, not silence.
        let (t, s) = timeline(&[pkt(0), pkt(48_000 * 4000)]);
        assert_eq!((t.len(), s.closed_holes, s.granule), (2, 1, 1920));
    }

    #[test]
    fn written_file_has_pages_and_headers() {
        let dir = std::env::temp_dir().join(format!("jano-pp-ogg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.opus");
        let pkts: Vec<OpusPacket> = (0..120).map(|i| pkt(i * 960)).collect();
        let s = write(&path, &pkts, false, 7).unwrap();
        assert_eq!(s.granule, 120 * 960);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..4], b"OggS");
        assert_eq!(&bytes[28..36], b"OpusHead");
        // Last page: end-of-stream flag, granule = total samples.
        let last = bytes.windows(4).rposition(|w| w == b"OggS").unwrap();
        assert_eq!(bytes[last + 5] & 0x04, 0x04);
        let g = u64::from_le_bytes(bytes[last + 6..last + 14].try_into().unwrap());
        assert_eq!(g, 120 * 960);
        assert!(write(&path, &[], false, 7).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
