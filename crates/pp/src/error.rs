//! Every way post-processing can fail. Each message is one line that names the problem (and
//! the file, where there is one), since it is what the command line prints.

use std::path::PathBuf;

/// Why a recording could not be post-processed.
#[derive(Debug, thiserror::Error)]
pub enum PpError {
    /// The recording could not be read: missing, not an `.mjr` file, corrupt or truncated.
    #[error("{}: {source}", path.display())]
    Read {
        /// The recording.
        path: PathBuf,
        /// What the `.mjr` reader found.
        source: jano_mjr::ReadError,
    },
    /// The output file could not be created or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The output file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No output format given, or the output's extension is not one this tool writes.
    #[error("unknown output format {0:?} (expected opus, ogg, wav, webm, mkv or mp4)")]
    UnknownFormat(String),
    /// A conversion needs an output file.
    #[error("no output file given (use --header or --parse to only inspect a recording)")]
    MissingDestination,
    /// The recording's codec cannot go into the chosen container.
    #[error(
        "{kind} codec {codec:?} cannot be converted to .{format} (supported here: {supported})"
    )]
    UnsupportedCodec {
        /// `audio`, `video` or `data`.
        kind: String,
        /// The codec from the info header.
        codec: String,
        /// The output format asked for.
        format: String,
        /// What the codec can be converted to, or "nothing".
        supported: String,
    },
    /// The second input (`--audio`) is not an audio recording that fits the container.
    #[error("{}: --audio needs an Opus audio recording, this is {kind} {codec:?}", path.display())]
    BadAudioInput {
        /// The second input.
        path: PathBuf,
        /// Its medium.
        kind: String,
        /// Its codec.
        codec: String,
    },
    /// End-to-end encrypted media cannot be decoded without the key.
    #[error(
        "the recording is end-to-end encrypted (\"e\": true): its media cannot be post-processed"
    )]
    Encrypted,
    /// Nothing in the recording could be written (no RTP, or no decodable frame).
    #[error("nothing to write: {0}")]
    NothingToWrite(String),
    /// The muxer refused a frame or failed to finish the file.
    #[error("{muxer} muxer error: {message}")]
    Mux {
        /// Which muxer (crate) failed.
        muxer: &'static str,
        /// Its error.
        message: String,
    },
}

impl PpError {
    pub(crate) fn mux(muxer: &'static str, e: impl std::fmt::Display) -> Self {
        PpError::Mux {
            muxer,
            message: e.to_string(),
        }
    }
}

/// Why one RTP payload could not be depacketized. Not fatal: the frame is dropped and the
/// output waits for the next keyframe.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DepackError {
    /// The payload ends inside a header or a length-prefixed unit.
    #[error("truncated {0}")]
    Truncated(&'static str),
    /// A packetization this tool does not handle (e.g. H.264 STAP-B, MTAP, FU-B).
    #[error("unsupported {0}")]
    Unsupported(&'static str),
    /// A fragmented unit was not started, or not finished, within the frame.
    #[error("broken fragmentation: {0}")]
    Fragmentation(&'static str),
}
