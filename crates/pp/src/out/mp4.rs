//! MP4, muxed with the `muxide` crate: H.264 (Annex B in, `avcC` out) or AV1 video, plus
//! Opus audio. The moov box goes first (fast start). MP4 cannot start audio before video,
//! so audio from before the first video frame is dropped.

use std::path::Path;

use muxide::api::{AudioCodec, MuxerBuilder, VideoCodec};

use super::{create, interleave, AudioIn, Item, MuxStats, VideoIn};
use crate::error::PpError;

/// The MP4 codec for an `.mjr` video codec, if this tool writes it to MP4.
pub fn codec_id(codec: &str) -> Option<VideoCodec> {
    match codec.to_ascii_lowercase().as_str() {
        "h264" => Some(VideoCodec::H264),
        "av1" => Some(VideoCodec::Av1),
        _ => None,
    }
}

fn mux(e: muxide::api::MuxerError) -> PpError {
    PpError::mux("muxide (MP4)", e)
}

/// Average frame rate of the frames (for the track header), 30 if it cannot be told.
fn frame_rate(v: &VideoIn) -> f64 {
    match (v.frames.first(), v.frames.last()) {
        (Some(a), Some(b)) if b.rel_ts > a.rel_ts && v.frames.len() > 1 => {
            (v.frames.len() - 1) as f64 * 90_000.0 / (b.rel_ts - a.rel_ts) as f64
        }
        _ => 30.0,
    }
}

/// Writes an MP4 file with a video track and, optionally, an Opus track.
pub fn write(
    path: &Path,
    video: &VideoIn,
    codec: VideoCodec,
    audio: Option<&AudioIn>,
) -> Result<MuxStats, PpError> {
    let items = interleave(Some(video), audio);
    if video.frames.is_empty() {
        return Err(PpError::NothingToWrite(
            "no video frame to put in the file".into(),
        ));
    }
    let mut builder = MuxerBuilder::new(create(path)?)
        .video(codec, video.width, video.height, frame_rate(video))
        .with_fast_start(true);
    if let Some(a) = audio {
        builder = builder.audio(AudioCodec::Opus, 48_000, if a.multiopus { 6 } else { 2 });
    }
    let mut muxer = builder.build().map_err(mux)?;
    let mut stats = MuxStats::default();
    let mut first_video: Option<u64> = None;
    let (mut last_video, mut last_audio): (Option<u64>, Option<u64>) = (None, None);
    for (ns, item) in items {
        let secs = ns as f64 / 1e9;
        match item {
            Item::Video(f) => {
                if last_video.is_some_and(|l| ns <= l) {
                    stats.skipped += 1;
                    continue;
                }
                muxer.write_video(secs, &f.data, f.keyframe).map_err(mux)?;
                first_video.get_or_insert(ns);
                last_video = Some(ns);
                stats.video_frames += 1;
            }
            Item::Audio(p) => {
                if first_video.is_none_or(|v| ns < v) || last_audio.is_some_and(|l| ns < l) {
                    stats.skipped += 1;
                    continue;
                }
                muxer.write_audio(secs, &p.data).map_err(mux)?;
                last_audio = Some(ns);
                stats.audio_packets += 1;
            }
        }
        stats.last_ns = ns;
    }
    muxer.finish_in_place().map_err(mux)?;
    std::io::Write::flush(&mut muxer.into_writer()).map_err(super::io_err(path))?;
    Ok(stats)
}
