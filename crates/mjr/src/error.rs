//! Typed errors: writing and reading fail for different reasons and callers handle them
//! differently (a writer error is logged, a reader error answers a request).

use crate::MediaKind;

/// Why a recording could not be created or a frame could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MjrError {
    /// The file or its folder could not be created or written.
    #[error("recording I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The codec is not one Janus records for this medium.
    #[error("codec {codec:?} cannot be recorded as {kind}")]
    UnsupportedCodec {
        /// The codec passed in.
        codec: String,
        /// The medium it was meant for.
        kind: MediaKind,
    },
    /// The file name is not usable (e.g. ends in a separator).
    #[error("invalid recording file name {0:?}")]
    InvalidFilename(String),
    /// The packet is shorter than a fixed RTP header.
    #[error("RTP packet too short: {len} bytes, need at least 12")]
    PacketTooShort {
        /// Its length.
        len: usize,
    },
    /// Empty data channel messages are not recorded (Janus refuses them too).
    #[error("empty data message")]
    EmptyData,
    /// The frame does not fit the 16-bit length field of the format.
    #[error("frame of {len} bytes does not fit an .mjr frame (max 65535)")]
    FrameTooLarge {
        /// Frame payload length (for data: message length + 8).
        len: usize,
    },
    /// RTP went to a data recorder, or a data message to an audio/video one.
    #[error("wrong kind of frame for a {kind} recording")]
    WrongKind {
        /// The recorder's medium.
        kind: MediaKind,
    },
    /// Header fields can only be set before the first frame, which writes the header.
    #[error("the info header was already written")]
    HeaderAlreadyWritten,
    /// The JSON info header does not fit the 16-bit length field.
    #[error("info header of {len} bytes is too long (max 65535)")]
    HeaderTooLarge {
        /// Its length.
        len: usize,
    },
    /// RTP extension ids are 1..=15 (one-byte header extensions).
    #[error("invalid RTP extension id {0} (must be 1..=15)")]
    InvalidExtmapId(u8),
    /// The background writer's queue was full; the frame was dropped and counted.
    #[error("recorder queue full, frame dropped")]
    QueueFull,
    /// The background writer has stopped.
    #[error("recorder closed")]
    Closed,
    /// The background writer thread panicked.
    #[error("recorder thread panicked")]
    WriterPanicked,
}

/// Why an `.mjr` file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file could not be read.
    #[error("I/O error reading recording: {0}")]
    Io(#[from] std::io::Error),
    /// The file does not start with `MJR00002` or `MEETECHO`.
    #[error("not an .mjr recording (bad magic)")]
    BadMagic,
    /// The file ended in the middle of a structure.
    #[error("truncated recording: {what} at offset {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Byte offset where it started.
        offset: u64,
    },
    /// Only the magic is there: the recorder never got a packet, so it never wrote its header.
    #[error("recording has no info header (no frame was ever written)")]
    NoInfoHeader,
    /// The info header is not valid JSON.
    #[error("info header is not valid JSON: {0}")]
    HeaderJson(#[from] serde_json::Error),
    /// The info header is JSON but lacks or mistypes a required key.
    #[error("invalid info header: {0}")]
    InvalidHeader(String),
    /// A frame does not start with `MEET`.
    #[error("bad frame prefix at offset {offset}")]
    BadFramePrefix {
        /// Byte offset of the frame.
        offset: u64,
    },
}
