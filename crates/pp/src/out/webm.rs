//! WebM / Matroska, muxed with the `webm` crate (Rust bindings to libwebm's muxer): VP8, VP9
//! and AV1 video, Opus audio.

use std::io::Write;
use std::path::Path;

use webm::mux::{AudioCodecId, SegmentBuilder, SegmentMode, VideoCodecId, Writer};

use super::{create, interleave, io_err, opus_head, AudioIn, Item, MuxStats, VideoIn};
use crate::error::PpError;

/// The WebM codec for an `.mjr` video codec, if WebM carries it.
pub fn codec_id(codec: &str) -> Option<VideoCodecId> {
    match codec.to_ascii_lowercase().as_str() {
        "vp8" => Some(VideoCodecId::VP8),
        "vp9" => Some(VideoCodecId::VP9),
        "av1" => Some(VideoCodecId::AV1),
        _ => None,
    }
}

fn mux(e: webm::mux::Error) -> PpError {
    PpError::mux("webm (libwebm)", e)
}

/// Writes a WebM/Matroska file with a video track, an audio track, or both.
/// `video_private` is the video CodecPrivate (AV1's `av1C`), if the codec needs one.
pub fn write(
    path: &Path,
    video: Option<(&VideoIn, VideoCodecId, Option<&[u8]>)>,
    audio: Option<&AudioIn>,
) -> Result<MuxStats, PpError> {
    let items = interleave(video.map(|v| v.0), audio);
    if items.is_empty() {
        return Err(PpError::NothingToWrite(
            "no frame to put in the file".into(),
        ));
    }
    let mut builder = SegmentBuilder::new(Writer::new(create(path)?))
        .and_then(|b| b.set_mode(SegmentMode::File))
        .and_then(|b| b.set_writing_app(concat!("jano-pp ", env!("CARGO_PKG_VERSION"))))
        .map_err(mux)?;
    let mut video_track = None;
    if let Some((v, codec, private)) = video {
        let (b, t) = builder
            .add_video_track(v.width, v.height, codec, None)
            .map_err(mux)?;
        builder = match private {
            Some(p) => b.set_codec_private(t, p).map_err(mux)?,
            None => b,
        };
        video_track = Some(t);
    }
    let mut audio_track = None;
    if let Some(a) = audio {
        let channels = if a.multiopus { 6 } else { 2 };
        let (b, t) = builder
            .add_audio_track(48_000, channels, AudioCodecId::Opus, None)
            .map_err(mux)?;
        builder = b
            .set_codec_private(t, &opus_head(a.multiopus))
            .map_err(mux)?;
        audio_track = Some(t);
    }
    let mut segment = builder.build();
    let mut stats = MuxStats::default();
    let (mut last_video, mut last_audio): (Option<u64>, Option<u64>) = (None, None);
    for (ns, item) in items {
        match (item, video_track, audio_track) {
            (Item::Video(f), Some(t), _) => {
                if last_video.is_some_and(|l| ns <= l) {
                    stats.skipped += 1;
                    continue;
                }
                segment.add_frame(t, &f.data, ns, f.keyframe).map_err(mux)?;
                last_video = Some(ns);
                stats.video_frames += 1;
            }
            (Item::Audio(p), _, Some(t)) => {
                if last_audio.is_some_and(|l| ns <= l) {
                    stats.skipped += 1;
                    continue;
                }
                segment.add_frame(t, &p.data, ns, true).map_err(mux)?;
                last_audio = Some(ns);
                stats.audio_packets += 1;
            }
            _ => continue,
        }
        stats.last_ns = ns;
    }
    let writer = segment
        .finalize(None)
        .map_err(|_| PpError::mux("webm (libwebm)", "could not finalize the segment"))?;
    writer.into_inner().flush().map_err(io_err(path))?;
    Ok(stats)
}
