//! WAV (16-bit mono PCM) for G.711 and L16, written with `hound`. Holes in the RTP timeline
//! become silence so the file lasts as long as the recording.

use std::path::Path;

use super::create;
use crate::codec::g711::Pcm;
use crate::error::PpError;
use crate::rtp::Ordered;

/// What was written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WavStats {
    /// Samples written (including silence).
    pub samples: u64,
    /// Samples of silence inserted for holes.
    pub silence: u64,
    /// Holes longer than [`MAX_HOLE_SECONDS`], closed instead of filled.
    pub closed_holes: usize,
}

/// Longest hole filled with silence; a longer jump is taken as a timestamp glitch and
/// closed, so a damaged file cannot make us write hours of nothing.
pub const MAX_HOLE_SECONDS: u64 = 3600;

/// Decodes the ordered packets into one sample buffer, holes filled with silence.
pub fn decode(ordered: &Ordered, pcm: Pcm) -> (Vec<i16>, WavStats) {
    let mut out = Vec::new();
    let mut stats = WavStats::default();
    let Some(first) = ordered.packets.first() else {
        return (out, stats);
    };
    let base = first.rel_ts;
    let mut buf = Vec::new();
    for p in &ordered.packets {
        if p.payload.is_empty() {
            continue;
        }
        let mut start = usize::try_from(p.rel_ts - base).unwrap_or(0);
        if (start - start.min(out.len())) as u64 > MAX_HOLE_SECONDS * u64::from(pcm.rate()) {
            stats.closed_holes += 1;
            start = out.len();
        }
        if start > out.len() {
            stats.silence += (start - out.len()) as u64;
            out.resize(start, 0);
        }
        buf.clear();
        pcm.decode(&p.payload, &mut buf);
        // Overlap (a timestamp earlier than where we are): keep only what is new.
        let skip = out.len() - start.min(out.len());
        out.extend(buf.iter().skip(skip));
    }
    stats.samples = out.len() as u64;
    (out, stats)
}

/// Writes a WAV file.
pub fn write(path: &Path, ordered: &Ordered, pcm: Pcm) -> Result<WavStats, PpError> {
    let (samples, stats) = decode(ordered, pcm);
    if samples.is_empty() {
        return Err(PpError::NothingToWrite(
            "no audio samples in the recording".into(),
        ));
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: pcm.rate(),
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mux = |e: hound::Error| PpError::mux("hound (WAV)", e);
    let mut w = hound::WavWriter::new(create(path)?, spec).map_err(mux)?;
    let mut iw = w.get_i16_writer(samples.len() as u32);
    for s in samples {
        iw.write_sample(s);
    }
    iw.flush().map_err(mux)?;
    w.finalize().map_err(mux)?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{order, tests::rtp, OrderOptions};
    use jano_mjr::Frame;

    #[test]
    fn holes_become_silence() {
        let frames: Vec<Frame> = [
            rtp(1, 0, false, &[0x80; 160]),
            rtp(3, 320, false, &[0x80; 160]), // seq 2 (160..320) lost
            rtp(4, 400, false, &[0x80; 160]), // overlaps the previous by 80
        ]
        .into_iter()
        .map(|data| Frame {
            timestamp_ms: 0,
            data,
        })
        .collect();
        let o = order(&frames, OrderOptions::default());
        let (s, st) = decode(&o, Pcm::Ulaw);
        assert_eq!(s.len(), 560);
        assert_eq!(st.silence, 160);
        assert_eq!(s[0], 32124);
        assert_eq!(s[200], 0);
        assert_eq!(s[559], 32124);
        let frames: Vec<Frame> = [
            rtp(1, 0, false, &[0x80; 160]),
            rtp(2, 8000 * 4000, false, &[0x80; 160]),
        ]
        .into_iter()
        .map(|data| Frame {
            timestamp_ms: 0,
            data,
        })
        .collect();
        let (s, st) = decode(&order(&frames, OrderOptions::default()), Pcm::Ulaw);
        assert_eq!((s.len(), st.closed_holes), (320, 1));
    }
}
