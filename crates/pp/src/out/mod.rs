//! Output formats. Each writer takes already ordered, depacketized media.

pub mod mp4;
pub mod ogg;
pub mod srt;
pub mod wav;
pub mod webm;

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use crate::codec::opus;
use crate::error::PpError;
use crate::frames::VideoFrame;
use crate::rtp::Ordered;

/// A container this tool writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Ogg Opus (`.opus`, `.ogg`).
    Ogg,
    /// RIFF WAVE, 16-bit PCM.
    Wav,
    /// WebM (`.webm`): VP8, VP9, AV1, Opus.
    Webm,
    /// Matroska (`.mkv`, `.mka`): written with the same muxer as WebM.
    Mkv,
    /// MP4: H.264 or AV1, plus Opus.
    Mp4,
    /// SubRip subtitles, for text data channel recordings.
    Srt,
}

impl Format {
    /// From a file extension or `--format` value (case-insensitive).
    pub fn from_name(name: &str) -> Option<Format> {
        match name.to_ascii_lowercase().as_str() {
            "opus" | "ogg" => Some(Format::Ogg),
            "wav" => Some(Format::Wav),
            "webm" => Some(Format::Webm),
            "mkv" | "mka" => Some(Format::Mkv),
            "mp4" => Some(Format::Mp4),
            "srt" => Some(Format::Srt),
            _ => None,
        }
    }

    /// Formats a recording's codec converts to (`--file-extensions`).
    pub fn extensions_for(codec: &str) -> &'static [&'static str] {
        match codec.to_ascii_lowercase().as_str() {
            "opus" => &["opus", "ogg", "webm", "mka"],
            "multiopus" => &["opus", "ogg"],
            "pcmu" | "pcma" | "g711" | "l16" | "l16-48" => &["wav"],
            "vp8" | "vp9" => &["webm", "mkv"],
            "av1" => &["webm", "mkv", "mp4"],
            "h264" => &["mp4"],
            "text" => &["srt"],
            _ => &[],
        }
    }
}

/// One Opus packet with its place on the 48 kHz timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusPacket {
    /// RTP timestamp relative to the first packet.
    pub rel_ts: i64,
    /// Duration in 48 kHz samples (from the TOC byte).
    pub samples: u32,
    /// The Opus packet.
    pub data: Vec<u8>,
}

/// The Opus packets of an ordered recording: RED unwrapped (primary block) when the header
/// names a RED payload type, empty and invalid packets skipped (counted in the second value).
pub fn opus_packets(ordered: &Ordered, red_pt: Option<u8>) -> (Vec<OpusPacket>, usize) {
    let mut out = Vec::with_capacity(ordered.packets.len());
    let mut invalid = 0;
    for p in &ordered.packets {
        if p.payload.is_empty() {
            continue;
        }
        let data = match red_pt {
            Some(red) if red == p.pt => match jano_plugin::rtp::red_primary(&p.payload) {
                Some((_, d)) => d,
                None => {
                    invalid += 1;
                    continue;
                }
            },
            _ => p.payload.as_slice(),
        };
        match opus::packet_samples(data) {
            Some(samples) => out.push(OpusPacket {
                rel_ts: p.rel_ts,
                samples,
                data: data.to_vec(),
            }),
            None => invalid += 1,
        }
    }
    (out, invalid)
}

/// The `OpusHead` identification header (RFC 7845 §5.1). Pre-skip 0, as janus-pp-rec
/// writes: the recording starts where the RTP stream started. `multiopus` uses Janus's
/// 5.1 layout (4 streams, 2 coupled).
pub fn opus_head(multiopus: bool) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(if multiopus { 6 } else { 2 });
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&48000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    if multiopus {
        h.extend_from_slice(&[1, 4, 2, 0, 4, 1, 2, 3, 5]);
    } else {
        h.push(0);
    }
    h
}

/// A video track to mux: frames in order, picture size, and where it starts on the common
/// timeline.
#[derive(Debug, Clone)]
pub struct VideoIn {
    /// Frames (90 kHz `rel_ts`).
    pub frames: Vec<VideoFrame>,
    /// Picture size.
    pub width: u32,
    /// Picture size.
    pub height: u32,
    /// Start of the track (its `rel_ts` 0) on the common timeline, µs.
    pub offset_us: i64,
}

/// An Opus track to mux.
#[derive(Debug, Clone)]
pub struct AudioIn {
    /// Packets (48 kHz `rel_ts`).
    pub packets: Vec<OpusPacket>,
    /// Start of the track on the common timeline, µs.
    pub offset_us: i64,
    /// Janus's 6-channel multiopus.
    pub multiopus: bool,
}

/// One frame or packet on the common timeline.
#[derive(Debug, Clone, Copy)]
pub enum Item<'a> {
    /// A video frame.
    Video(&'a VideoFrame),
    /// An Opus packet.
    Audio(&'a OpusPacket),
}

/// What a muxer wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Video frames written.
    pub video_frames: usize,
    /// Audio packets written.
    pub audio_packets: usize,
    /// Frames/packets the muxer could not take (timestamp going backwards, or audio before
    /// the first video frame in MP4).
    pub skipped: usize,
    /// Time of the last item written, ns.
    pub last_ns: u64,
}

fn to_ns(offset_us: i64, rel_ts: i64, rate: i64) -> Option<u64> {
    let ns = i128::from(offset_us) * 1000 + i128::from(rel_ts) * 1_000_000_000 / i128::from(rate);
    u64::try_from(ns).ok()
}

/// Merges the tracks into one list ordered by time (ns); video first on ties. Items that
/// would land before time 0 are dropped.
pub fn interleave<'a>(
    video: Option<&'a VideoIn>,
    audio: Option<&'a AudioIn>,
) -> Vec<(u64, Item<'a>)> {
    let mut items = Vec::new();
    if let Some(v) = video {
        items.extend(
            v.frames
                .iter()
                .filter_map(|f| Some((to_ns(v.offset_us, f.rel_ts, 90_000)?, Item::Video(f)))),
        );
    }
    if let Some(a) = audio {
        items.extend(
            a.packets
                .iter()
                .filter_map(|p| Some((to_ns(a.offset_us, p.rel_ts, 48_000)?, Item::Audio(p)))),
        );
    }
    items.sort_by_key(|(ns, item)| (*ns, matches!(item, Item::Audio(_))));
    items
}

/// Creates the output file, buffered.
pub(crate) fn create(path: &Path) -> Result<BufWriter<File>, PpError> {
    File::create(path)
        .map(BufWriter::new)
        .map_err(|source| PpError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Converts an I/O error on `path`.
pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PpError + '_ {
    move |source| PpError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtp::{order, tests::rtp, OrderOptions};
    use jano_mjr::Frame;

    #[test]
    fn opus_packets_unwrap_red_and_skip_invalid() {
        let mut red = rtp(2, 960, false, &[0xEF, 0, 0, 1, 0x6F, 0xFC, 0xFC, 0xAA]);
        red[1] = 120;
        let frames: Vec<Frame> = [
            rtp(1, 0, false, &[0xFC, 1]),
            red,
            rtp(3, 1920, false, &[0x0B]),
        ]
        .into_iter()
        .map(|data| Frame {
            timestamp_ms: 0,
            data,
        })
        .collect();
        let o = order(&frames, OrderOptions::default());
        let (p, invalid) = opus_packets(&o, Some(120));
        assert_eq!(invalid, 1);
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].data, vec![0xFC, 0xAA]);
        assert_eq!((p[1].rel_ts, p[1].samples), (960, 960));
        assert_eq!(opus_head(false).len(), 19);
        assert_eq!(opus_head(true).len(), 27);
        assert_eq!(Format::from_name("MKA"), Some(Format::Mkv));
        assert_eq!(Format::from_name("avi"), None);
    }
}
