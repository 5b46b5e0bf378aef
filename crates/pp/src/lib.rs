//! `jano-pp`: turns Janus `.mjr` recordings into playable files, as `janus-pp-rec` does.
//!
//! The `.mjr` file is read with `jano-mjr`; its RTP packets are put in (extended) sequence
//! order with duplicates dropped ([`rtp`]), video packets are grouped into frames and
//! depacketized, skipping what a loss broke until the next keyframe ([`frames`], [`codec`]),
//! and the result is muxed by maintained crates ([`out`]): `ogg` for Ogg Opus, `hound` for
//! WAV, `webm` (libwebm) for WebM/Matroska, `muxide` for MP4.

pub mod cli;
pub mod codec;
pub mod convert;
pub mod error;
pub mod frames;
pub mod out;
pub mod report;
pub mod rtp;

pub use error::{DepackError, PpError};
