//! The conversion pipeline: read → order → depacketize → mux, per medium and format.

use std::io::Write;
use std::path::Path;

use jano_mjr::{MediaKind, MjrReader, Recording};

use crate::codec::{av1, g711::Pcm, video_depacketizer};
use crate::error::PpError;
use crate::frames::{assemble, FrameStats, VideoFrame};
use crate::out::{self, AudioIn, Format, VideoIn};
use crate::rtp::{order, OrderOptions, Ordered};

/// Size written when no keyframe states one (players take the size from the bitstream).
const DEFAULT_SIZE: (u32, u32) = (640, 480);

/// Options shared by every conversion.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Packet filters.
    pub order: OrderOptions,
    /// Process a truncated or damaged recording up to the damage instead of failing.
    pub salvage: bool,
}

/// Reads a whole recording. A truncated or corrupt one is an error unless `salvage`, in
/// which case what precedes the damage is kept and a warning logged.
pub fn load(path: &Path, salvage: bool, log: &mut dyn Write) -> Result<Recording, PpError> {
    let read_err = |source| PpError::Read {
        path: path.to_path_buf(),
        source,
    };
    let reader = MjrReader::open(path).map_err(read_err)?;
    if !salvage {
        return reader.read_all().map_err(read_err);
    }
    let (rec, err) = reader.read_lossy();
    if let Some(e) = err {
        let _ = writeln!(
            log,
            "warning: {}: {e}; using the {} frames before it",
            path.display(),
            rec.frames.len()
        );
    }
    Ok(rec)
}

fn unsupported(rec: &Recording, format: &str) -> PpError {
    let exts = Format::extensions_for(&rec.info.codec);
    PpError::UnsupportedCodec {
        kind: rec.info.kind.to_string(),
        codec: rec.info.codec.clone(),
        format: format.to_string(),
        supported: if exts.is_empty() {
            "nothing".into()
        } else {
            exts.iter()
                .map(|e| format!(".{e}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    }
}

/// Wall-clock time (µs) of the first ordered packet: the recording's `u` plus that
/// packet's offset in the file.
fn anchor_us(rec: &Recording, ordered: &Ordered) -> i64 {
    let ms = ordered.packets.first().map_or(0, |p| i64::from(p.recv_ms));
    rec.info.first_frame_us + ms * 1000
}

fn is_opus(codec: &str) -> bool {
    codec.eq_ignore_ascii_case("opus") || codec.eq_ignore_ascii_case("multiopus")
}

/// Video frames of a recording, plus what assembly found.
pub fn video_frames(
    rec: &Recording,
    ordered: &Ordered,
) -> Option<(Vec<VideoFrame>, FrameStats, (u32, u32))> {
    let mut depack = video_depacketizer(&rec.info.codec)?;
    let (frames, stats) = assemble(&ordered.packets, depack.as_mut());
    let size = frames
        .iter()
        .filter(|f| f.keyframe)
        .find_map(|f| depack.dimensions(&f.data))
        .unwrap_or(DEFAULT_SIZE);
    Some((frames, stats, size))
}

fn opus_track(
    rec: &Recording,
    ordered: &Ordered,
    log: &mut dyn Write,
) -> (Vec<out::OpusPacket>, bool) {
    let (packets, invalid) = out::opus_packets(ordered, rec.info.opusred_pt);
    if invalid > 0 {
        let _ = writeln!(
            log,
            "warning: skipped {invalid} packets that are not valid Opus"
        );
    }
    (packets, rec.info.codec.eq_ignore_ascii_case("multiopus"))
}

fn log_order(log: &mut dyn Write, what: &str, o: &Ordered) {
    let s = &o.stats;
    let _ = writeln!(
        log,
        "{what}: {} RTP packets, {} duplicates dropped, {} out of order, {} gaps ({} packets lost)",
        o.packets.len(),
        s.duplicates,
        s.out_of_order,
        s.gaps,
        s.lost
    );
}

/// Converts `src` to `dst` in `format`; `audio` is a second (Opus) recording to mux with a
/// video one.
pub fn convert(
    src: &Path,
    dst: &Path,
    format: Format,
    format_name: &str,
    audio: Option<&Path>,
    opts: Options,
    log: &mut dyn Write,
) -> Result<(), PpError> {
    let rec = load(src, opts.salvage, log)?;
    if rec.info.encrypted {
        return Err(PpError::Encrypted);
    }
    let codec = rec.info.codec.to_ascii_lowercase();
    match rec.info.kind {
        MediaKind::Data => {
            if format != Format::Srt || codec != "text" {
                return Err(unsupported(&rec, format_name));
            }
            let n = out::srt::write(dst, &rec.frames, rec.info.created_us)?;
            let _ = writeln!(log, "wrote {n} messages to {}", dst.display());
            Ok(())
        }
        MediaKind::Audio => {
            // Old recordings say "g711": the payload type tells which.
            let first_pt = rec
                .frames
                .first()
                .and_then(|f| f.data.get(1))
                .map(|b| b & 0x7f);
            let pcm = Pcm::for_codec(&codec).or(match (codec.as_str(), first_pt) {
                ("g711", Some(8)) => Some(Pcm::Alaw),
                ("g711", _) => Some(Pcm::Ulaw),
                _ => None,
            });
            let supported = match format {
                Format::Ogg => is_opus(&codec),
                Format::Webm | Format::Mkv => codec == "opus",
                Format::Wav => pcm.is_some(),
                _ => false,
            };
            if !supported {
                return Err(unsupported(&rec, format_name));
            }
            if audio.is_some() {
                let _ = writeln!(
                    log,
                    "warning: --audio is only used with a video recording; ignored"
                );
            }
            let ordered = order(&rec.frames, opts.order);
            log_order(log, "audio", &ordered);
            if let (Format::Wav, Some(pcm)) = (format, pcm) {
                let s = out::wav::write(dst, &ordered, pcm)?;
                let _ = writeln!(
                    log,
                    "wrote {} samples ({} of silence for holes, {} too long to fill), {:.3} s, to {}",
                    s.samples,
                    s.silence,
                    s.closed_holes,
                    s.samples as f64 / f64::from(pcm.rate()),
                    dst.display()
                );
                return Ok(());
            }
            let (packets, multiopus) = opus_track(&rec, &ordered, log);
            if format == Format::Ogg {
                let serial = ordered.packets.first().map_or(0, |p| p.ssrc);
                let s = out::ogg::write(dst, &packets, multiopus, serial)?;
                let _ = writeln!(
                    log,
                    "wrote {} Opus packets ({} lost frames filled, {} holes too long to fill), {:.3} s, to {}",
                    s.packets,
                    s.filled,
                    s.closed_holes,
                    s.granule as f64 / 48_000.0,
                    dst.display()
                );
            } else {
                let a = AudioIn {
                    packets,
                    offset_us: 0,
                    multiopus,
                };
                let s = out::webm::write(dst, None, Some(&a))?;
                let _ = writeln!(
                    log,
                    "wrote {} Opus packets to {}",
                    s.audio_packets,
                    dst.display()
                );
            }
            Ok(())
        }
        MediaKind::Video => convert_video(&rec, dst, format, format_name, audio, opts, log),
    }
}

fn convert_video(
    rec: &Recording,
    dst: &Path,
    format: Format,
    format_name: &str,
    audio: Option<&Path>,
    opts: Options,
    log: &mut dyn Write,
) -> Result<(), PpError> {
    let codec = rec.info.codec.to_ascii_lowercase();
    let webm_codec = out::webm::codec_id(&codec);
    let mp4_codec = out::mp4::codec_id(&codec);
    match format {
        Format::Webm | Format::Mkv if webm_codec.is_some() => {}
        Format::Mp4 if mp4_codec.is_some() => {}
        _ => return Err(unsupported(rec, format_name)),
    }
    // The second input is checked before any work, so that a mistake fails at once.
    let arec = match audio {
        Some(apath) => {
            let arec = load(apath, opts.salvage, log)?;
            if arec.info.kind != MediaKind::Audio || !is_opus(&arec.info.codec) {
                return Err(PpError::BadAudioInput {
                    path: apath.to_path_buf(),
                    kind: arec.info.kind.to_string(),
                    codec: arec.info.codec.clone(),
                });
            }
            if arec.info.encrypted {
                return Err(PpError::Encrypted);
            }
            Some(arec)
        }
        None => None,
    };
    let ordered = order(&rec.frames, opts.order);
    log_order(log, "video", &ordered);
    let Some((frames, fstats, (width, height))) = video_frames(rec, &ordered) else {
        return Err(unsupported(rec, format_name));
    };
    let _ = writeln!(
        log,
        "video: {} frames, {} kept ({} keyframes), {} incomplete, {} undecodable, {} skipped waiting for a keyframe; {width}x{height}",
        fstats.frames, fstats.written, fstats.keyframes, fstats.incomplete, fstats.malformed, fstats.waiting_keyframe
    );
    if frames.is_empty() {
        return Err(PpError::NothingToWrite(format!(
            "no complete {codec} keyframe in {} packets",
            ordered.packets.len()
        )));
    }
    let video_anchor = anchor_us(rec, &ordered);
    let mut video = VideoIn {
        frames,
        width,
        height,
        offset_us: 0,
    };
    let mut audio_in = None;
    if let Some(arec) = &arec {
        let aordered = order(&arec.frames, opts.order);
        log_order(log, "audio", &aordered);
        let (packets, multiopus) = opus_track(arec, &aordered, log);
        let audio_anchor = anchor_us(arec, &aordered);
        let base = video_anchor.min(audio_anchor);
        video.offset_us = video_anchor - base;
        audio_in = Some(AudioIn {
            packets,
            offset_us: audio_anchor - base,
            multiopus,
        });
    }
    let stats = match (format, webm_codec, mp4_codec) {
        (Format::Mp4, _, Some(c)) => out::mp4::write(dst, &video, c, audio_in.as_ref())?,
        (_, Some(c), _) => {
            let private = if codec == "av1" {
                video
                    .frames
                    .iter()
                    .find_map(|f| av1::find_sequence_header(&f.data))
                    .and_then(av1::av1c)
            } else {
                None
            };
            out::webm::write(
                dst,
                Some((&video, c, private.as_deref())),
                audio_in.as_ref(),
            )?
        }
        _ => return Err(unsupported(rec, format_name)),
    };
    let _ = writeln!(
        log,
        "wrote {} video frames and {} audio packets ({} skipped), {:.3} s, to {}",
        stats.video_frames,
        stats.audio_packets,
        stats.skipped,
        stats.last_ns as f64 / 1e9,
        dst.display()
    );
    Ok(())
}
