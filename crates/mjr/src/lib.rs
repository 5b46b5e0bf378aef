//! Janus `.mjr` recordings ("Meetecho Janus Recording", format version 2).
//!
//! Janus stores every recorded medium (one audio, one video or one data channel stream) in a
//! file of its own: the magic `MJR00002`, a JSON info header, then frames, each being the
//! four bytes `MEET`, a big-endian `u32` of milliseconds since the first frame, a big-endian
//! `u16` length and the payload (a full RTP packet, or for data a big-endian `u64` wall-clock
//! time in µs followed by the message). Tools such as `janus-pp-rec` and the Record&Play
//! plugin read these files, so the writer here reproduces Janus's bytes, not just its layout.
//!
//! * [`Recorder`] writes a recording synchronously; [`Recorder::spawn`] moves it to a
//!   background thread and gives out [`RecorderHandle`]s that never block a media thread.
//! * [`MjrReader`] reads a recording back (streaming, or all at once with [`read_file`] /
//!   [`parse`]) and refuses corrupt or truncated input with a [`ReadError`].

mod clock;
mod error;
mod handle;
mod header;
mod reader;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{MjrError, ReadError};
pub use handle::{RecorderHandle, RecorderSummary, RecorderWriter};
pub use reader::{parse, read_file, Frame, MjrInfo, MjrReader, MjrVersion, Recording};
pub use writer::{Recorder, RecorderOptions};

/// Magic at offset 0 of every file this crate writes.
pub const MAGIC_V2: &[u8; 8] = b"MJR00002";
/// Magic of the legacy (version 1) format, still accepted by the reader.
pub const MAGIC_V1: &[u8; 8] = b"MEETECHO";
/// Prefix of every frame in a version 2 file.
pub const FRAME_PREFIX: &[u8; 4] = b"MEET";
/// Size of a fixed RTP header: anything shorter is not RTP and is refused.
pub const RTP_HEADER_LEN: usize = 12;
/// Largest frame payload the `u16` length field can describe.
pub const MAX_FRAME_LEN: usize = u16::MAX as usize;

/// The medium of a recording; it decides the `t` key and how frames are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// RTP audio; header `t` is `"a"`.
    Audio,
    /// RTP video; header `t` is `"v"`.
    Video,
    /// Data channel messages; header `t` is `"d"`.
    Data,
}

impl MediaKind {
    /// The value of the `t` key in the info header.
    pub fn as_header_str(self) -> &'static str {
        match self {
            MediaKind::Audio => "a",
            MediaKind::Video => "v",
            MediaKind::Data => "d",
        }
    }

    /// Parses the `t` key (case-insensitively, as `janus-pp-rec` does).
    pub fn from_header_str(s: &str) -> Option<Self> {
        match s {
            _ if s.eq_ignore_ascii_case("a") => Some(MediaKind::Audio),
            _ if s.eq_ignore_ascii_case("v") => Some(MediaKind::Video),
            _ if s.eq_ignore_ascii_case("d") => Some(MediaKind::Data),
            _ => None,
        }
    }

    /// Codec names Janus records for this medium (compared case-insensitively).
    pub fn known_codecs(self) -> &'static [&'static str] {
        match self {
            MediaKind::Audio => &[
                "opus",
                "multiopus",
                "pcmu",
                "pcma",
                "g711",
                "g722",
                "l16",
                "l16-48",
                "isac16",
                "isac32",
            ],
            MediaKind::Video => &["vp8", "vp9", "h264", "av1", "h265"],
            MediaKind::Data => &["text", "binary"],
        }
    }
}

impl std::fmt::Display for MediaKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MediaKind::Audio => "audio",
            MediaKind::Video => "video",
            MediaKind::Data => "data",
        })
    }
}
