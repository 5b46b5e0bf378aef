//! The synchronous writer. It does blocking file I/O: call it from a thread that may block, or
//! hand it to [`Recorder::spawn`] so media threads only ever enqueue.

use std::collections::hash_map::RandomState;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::header::HeaderFields;
use crate::{MediaKind, MjrError, FRAME_PREFIX, MAGIC_V2, MAX_FRAME_LEN, RTP_HEADER_LEN};

/// How a recording is created, beyond what [`Recorder::create`] takes.
#[derive(Clone)]
pub struct RecorderOptions {
    /// Time source (the system clocks unless a test injects a [`crate::ManualClock`]).
    pub clock: Arc<dyn Clock>,
    /// Janus's `recordings_tmp_ext`: while recording, the file is `<name>.mjr.<ext>`, and it
    /// is renamed to `<name>.mjr` on close, so that watchers only ever see complete files.
    pub tmp_ext: Option<String>,
}

impl Default for RecorderOptions {
    fn default() -> Self {
        RecorderOptions {
            clock: Arc::new(SystemClock),
            tmp_ext: None,
        }
    }
}

impl std::fmt::Debug for RecorderOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderOptions")
            .field("tmp_ext", &self.tmp_ext)
            .finish_non_exhaustive()
    }
}

/// A point in time on both clocks, taken when a frame arrives. The background writer gets the
/// stamp with the frame so queueing delay does not skew the recorded timing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stamp {
    pub real_us: i64,
    pub mono_us: i64,
}

impl Stamp {
    pub(crate) fn now(clock: &dyn Clock) -> Self {
        Stamp {
            real_us: clock.real_time_us(),
            mono_us: clock.monotonic_us(),
        }
    }
}

/// Writes one `.mjr` file, frame by frame, as Janus's recorder does.
///
/// Audio and video packets get their sequence number and RTP timestamp rewritten to one
/// continuous stream (starting at sequence 1, timestamp 0), so an SSRC change or a pause does
/// not leave a jump that players choke on. The SSRC is pinned to the first packet's: Janus
/// itself leaves it alone, but `janus-pp-rec` drops every packet whose SSRC differs from the
/// first one, so after a source switch (simulcast layer, publisher change) keeping it would
/// lose the rest of the recording. Single-source recordings are byte-identical to Janus's.
pub struct Recorder {
    file: Option<BufWriter<File>>,
    path: PathBuf,
    writing_path: PathBuf,
    kind: MediaKind,
    codec: String,
    fmtp: Option<String>,
    description: Option<String>,
    extmaps: BTreeMap<u8, String>,
    opusred_pt: Option<u8>,
    encrypted: bool,
    created_us: i64,
    /// Monotonic time of the first frame; `Some` once the info header is written.
    started_mono_us: Option<i64>,
    clock: Arc<dyn Clock>,
    rewriter: SeqTsRewriter,
    paused: bool,
    frames: u64,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.path)
            .field("kind", &self.kind)
            .field("codec", &self.codec)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Creates `<dir>/<filename>` (`.mjr` is appended unless already there; an empty
    /// `filename` becomes `janus-recording-<random>.mjr`), creating missing folders, and
    /// writes the magic. The info header follows with the first frame, as in Janus, so that
    /// its `u` key is the first frame's time.
    pub fn create(
        dir: Option<&Path>,
        filename: &str,
        kind: MediaKind,
        codec: &str,
        fmtp: Option<&str>,
    ) -> Result<Recorder, MjrError> {
        Self::create_with(dir, filename, kind, codec, fmtp, RecorderOptions::default())
    }

    /// [`Recorder::create`] with an injected clock and/or a temporary extension.
    pub fn create_with(
        dir: Option<&Path>,
        filename: &str,
        kind: MediaKind,
        codec: &str,
        fmtp: Option<&str>,
        options: RecorderOptions,
    ) -> Result<Recorder, MjrError> {
        if !kind
            .known_codecs()
            .iter()
            .any(|c| c.eq_ignore_ascii_case(codec))
        {
            return Err(MjrError::UnsupportedCodec {
                codec: codec.to_string(),
                kind,
            });
        }
        let path = final_path(dir, filename)?;
        let writing_path = match &options.tmp_ext {
            Some(ext) if !ext.is_empty() => {
                let mut p = path.clone().into_os_string();
                p.push(".");
                p.push(ext);
                PathBuf::from(p)
            }
            _ => path.clone(),
        };
        if let Some(parent) = writing_path.parent() {
            if !parent.as_os_str().is_empty() {
                fs::create_dir_all(parent)?;
            }
        }
        let mut file = BufWriter::with_capacity(64 * 1024, File::create(&writing_path)?);
        file.write_all(MAGIC_V2)?;
        let created_us = options.clock.real_time_us();
        Ok(Recorder {
            file: Some(file),
            path,
            writing_path,
            kind,
            codec: codec.to_string(),
            fmtp: fmtp.map(str::to_string),
            description: None,
            extmaps: BTreeMap::new(),
            opusred_pt: None,
            encrypted: false,
            created_us,
            started_mono_us: None,
            clock: options.clock,
            rewriter: SeqTsRewriter::default(),
            paused: false,
            frames: 0,
            scratch: Vec::with_capacity(1600),
        })
    }

    /// Where the recording is once closed (with a temporary extension, it is written to
    /// [`Recorder::writing_path`] until then).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file currently being written.
    pub fn writing_path(&self) -> &Path {
        &self.writing_path
    }

    /// The medium recorded.
    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    /// The codec, as given to [`Recorder::create`].
    pub fn codec(&self) -> &str {
        &self.codec
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }

    /// Whether the info header was written (i.e. a frame arrived).
    pub fn header_written(&self) -> bool {
        self.started_mono_us.is_some()
    }

    /// Sets the `d` header key (stream description). Only before the first frame.
    pub fn set_description(&mut self, description: &str) -> Result<(), MjrError> {
        self.before_header()?;
        self.description = Some(description.to_string());
        Ok(())
    }

    /// Adds an `x` header entry mapping RTP extension `id` (1..=15) to its URI, so
    /// post-processors can find e.g. audio levels or video orientation. Only before the first
    /// frame.
    pub fn add_extmap(&mut self, id: u8, uri: &str) -> Result<(), MjrError> {
        self.before_header()?;
        if !(1..=15).contains(&id) {
            return Err(MjrError::InvalidExtmapId(id));
        }
        self.extmaps.insert(id, uri.to_string());
        Ok(())
    }

    /// Sets the `or` header key: the Opus RED payload type (written for audio only, as Janus
    /// does). Only before the first frame.
    pub fn set_opusred_pt(&mut self, pt: u8) -> Result<(), MjrError> {
        self.before_header()?;
        self.opusred_pt = Some(pt);
        Ok(())
    }

    /// Marks the media as end-to-end encrypted (`"e": true`) so post-processors do not try to
    /// decode it. Only before the first frame.
    pub fn set_encrypted(&mut self) -> Result<(), MjrError> {
        self.before_header()?;
        self.encrypted = true;
        Ok(())
    }

    /// Stops recording frames until [`Recorder::resume`]; frames saved meanwhile are
    /// silently discarded, as in Janus.
    pub fn pause(&mut self) {
        self.paused = true;
    }

    /// Resumes after [`Recorder::pause`]. The next RTP packet continues the sequence numbers
    /// and timestamps, with a timestamp gap for the time since resuming.
    pub fn resume(&mut self) {
        let now = self.clock.monotonic_us();
        self.resume_at(now);
    }

    pub(crate) fn resume_at(&mut self, mono_us: i64) {
        if self.paused {
            self.paused = false;
            self.rewriter.reset_at(mono_us);
        }
    }

    /// Whether the recorder is paused.
    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// Records a complete plaintext RTP packet (header included). The caller's buffer is not
    /// modified; the copy written has its sequence number and timestamp rewritten.
    pub fn save_rtp(&mut self, packet: &[u8]) -> Result<(), MjrError> {
        let stamp = Stamp::now(self.clock.as_ref());
        self.save_rtp_at(packet, stamp)
    }

    /// Records a data channel message, prefixed (as Janus does) with the wall-clock time in µs.
    pub fn save_data(&mut self, data: &[u8]) -> Result<(), MjrError> {
        let stamp = Stamp::now(self.clock.as_ref());
        self.save_data_at(data, stamp)
    }

    pub(crate) fn save_rtp_at(&mut self, packet: &[u8], stamp: Stamp) -> Result<(), MjrError> {
        check_rtp(self.kind, packet)?;
        if self.paused {
            return Ok(());
        }
        self.write_header_if_needed(stamp)?;
        let scratch = self.begin_frame(packet.len(), stamp);
        let start = scratch.len();
        scratch.extend_from_slice(packet);
        let video = self.kind == MediaKind::Video;
        self.rewriter
            .rewrite(&mut self.scratch[start..], video, stamp.mono_us);
        self.flush_frame()
    }

    pub(crate) fn save_data_at(&mut self, data: &[u8], stamp: Stamp) -> Result<(), MjrError> {
        check_data(self.kind, data)?;
        if self.paused {
            return Ok(());
        }
        self.write_header_if_needed(stamp)?;
        let scratch = self.begin_frame(data.len() + 8, stamp);
        scratch.extend_from_slice(&stamp.real_us.to_be_bytes());
        scratch.extend_from_slice(data);
        self.flush_frame()
    }

    /// Flushes buffered frames to the OS (without closing).
    pub fn flush(&mut self) -> Result<(), MjrError> {
        match self.file.as_mut() {
            Some(f) => Ok(f.flush()?),
            None => Err(MjrError::Closed),
        }
    }

    /// Flushes and closes the file, renaming it if a temporary extension was used. Returns
    /// the final path.
    pub fn close(mut self) -> Result<PathBuf, MjrError> {
        self.finish()?;
        Ok(self.path.clone())
    }

    fn finish(&mut self) -> Result<(), MjrError> {
        let Some(mut file) = self.file.take() else {
            return Ok(());
        };
        file.flush()?;
        drop(file);
        if self.writing_path != self.path {
            fs::rename(&self.writing_path, &self.path)?;
        }
        Ok(())
    }

    fn before_header(&self) -> Result<(), MjrError> {
        if self.started_mono_us.is_some() {
            Err(MjrError::HeaderAlreadyWritten)
        } else {
            Ok(())
        }
    }

    fn write_header_if_needed(&mut self, stamp: Stamp) -> Result<(), MjrError> {
        if self.started_mono_us.is_some() {
            return Ok(());
        }
        let json = HeaderFields {
            kind: self.kind,
            codec: &self.codec,
            fmtp: self.fmtp.as_deref(),
            description: self.description.as_deref(),
            extmaps: &self.extmaps,
            created_us: self.created_us,
            first_frame_us: stamp.real_us,
            opusred_pt: self.opusred_pt,
            encrypted: self.encrypted,
        }
        .to_json();
        let len =
            u16::try_from(json.len()).map_err(|_| MjrError::HeaderTooLarge { len: json.len() })?;
        let file = self.file.as_mut().ok_or(MjrError::Closed)?;
        let mut buf = Vec::with_capacity(2 + json.len());
        buf.extend_from_slice(&len.to_be_bytes());
        buf.extend_from_slice(json.as_bytes());
        file.write_all(&buf)?;
        self.started_mono_us = Some(stamp.mono_us);
        Ok(())
    }

    /// Starts a frame in the scratch buffer: prefix, relative ms, payload length (checked by
    /// the callers to fit).
    fn begin_frame(&mut self, payload_len: usize, stamp: Stamp) -> &mut Vec<u8> {
        let started = self.started_mono_us.unwrap_or(stamp.mono_us);
        // Milliseconds since the first frame; truncated to 32 bits like Janus's (uint32_t) cast.
        let rel_ms = if stamp.mono_us > started {
            ((stamp.mono_us - started) / 1000) as u32
        } else {
            0
        };
        self.scratch.clear();
        self.scratch.extend_from_slice(FRAME_PREFIX);
        self.scratch.extend_from_slice(&rel_ms.to_be_bytes());
        self.scratch
            .extend_from_slice(&(payload_len as u16).to_be_bytes());
        &mut self.scratch
    }

    /// Writes the frame in one call, so an I/O error leaves at most one partial frame.
    fn flush_frame(&mut self) -> Result<(), MjrError> {
        let file = self.file.as_mut().ok_or(MjrError::Closed)?;
        file.write_all(&self.scratch)?;
        self.frames += 1;
        Ok(())
    }
}

impl Drop for Recorder {
    /// A recorder dropped without [`Recorder::close`] still flushes and renames, best effort,
    /// so a plugin that forgets to close loses nothing.
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

pub(crate) fn check_rtp(kind: MediaKind, packet: &[u8]) -> Result<(), MjrError> {
    if kind == MediaKind::Data {
        return Err(MjrError::WrongKind { kind });
    }
    if packet.len() < RTP_HEADER_LEN {
        return Err(MjrError::PacketTooShort { len: packet.len() });
    }
    if packet.len() > MAX_FRAME_LEN {
        return Err(MjrError::FrameTooLarge { len: packet.len() });
    }
    Ok(())
}

pub(crate) fn check_data(kind: MediaKind, data: &[u8]) -> Result<(), MjrError> {
    if kind != MediaKind::Data {
        return Err(MjrError::WrongKind { kind });
    }
    if data.is_empty() {
        return Err(MjrError::EmptyData);
    }
    if data.len() + 8 > MAX_FRAME_LEN {
        return Err(MjrError::FrameTooLarge {
            len: data.len() + 8,
        });
    }
    Ok(())
}

fn final_path(dir: Option<&Path>, filename: &str) -> Result<PathBuf, MjrError> {
    let name = if filename.is_empty() {
        let r = RandomState::new().build_hasher().finish() as u32;
        format!("janus-recording-{r}.mjr")
    } else if filename.ends_with('/') || filename.ends_with(std::path::MAIN_SEPARATOR) {
        return Err(MjrError::InvalidFilename(filename.to_string()));
    } else if filename.ends_with(".mjr") {
        filename.to_string()
    } else {
        format!("{filename}.mjr")
    };
    Ok(match dir {
        Some(d) => d.join(name),
        None => PathBuf::from(name),
    })
}

/// Janus's RTP "switching context", as used by its recorder: rebases sequence numbers and
/// timestamps whenever the SSRC changes (or after a resume) so the recorded stream is
/// continuous. When rebasing, the timestamp advances by the wall time since the previous
/// packet (90 kHz video; 8 kHz for PCMU/PCMA/G.722 payload types 0/8/9, else 48 kHz).
/// Unlike Janus it also pins the SSRC (see [`Recorder`]).
#[derive(Debug, Default)]
struct SeqTsRewriter {
    out_ssrc: Option<u32>,
    last_ssrc: u32,
    last_ts: u32,
    last_seq: u16,
    base_ts: u32,
    base_ts_prev: u32,
    base_seq: u16,
    base_seq_prev: u16,
    ts_reset: bool,
    seq_reset: bool,
    last_time_us: Option<i64>,
}

impl SeqTsRewriter {
    fn reset_at(&mut self, mono_us: i64) {
        self.ts_reset = true;
        self.seq_reset = true;
        self.last_time_us = Some(mono_us);
    }

    /// `pkt` is at least [`RTP_HEADER_LEN`] bytes (checked by the caller).
    fn rewrite(&mut self, pkt: &mut [u8], video: bool, now_us: i64) {
        let (Some(seq_b), Some(ts_b), Some(ssrc_b), Some(&pt_b)) =
            (pkt.get(2..4), pkt.get(4..8), pkt.get(8..12), pkt.get(1))
        else {
            return;
        };
        let seq = u16::from_be_bytes([seq_b[0], seq_b[1]]);
        let ts = u32::from_be_bytes([ts_b[0], ts_b[1], ts_b[2], ts_b[3]]);
        let ssrc = u32::from_be_bytes([ssrc_b[0], ssrc_b[1], ssrc_b[2], ssrc_b[3]]);
        let pt = pt_b & 0x7f;
        if ssrc != self.last_ssrc {
            self.last_ssrc = ssrc;
            self.ts_reset = true;
            self.seq_reset = true;
        }
        if self.ts_reset {
            self.ts_reset = false;
            self.base_ts_prev = self.last_ts;
            self.base_ts = ts;
            if let Some(last) = self.last_time_us {
                let khz: i64 = if video {
                    90
                } else if matches!(pt, 0 | 8 | 9) {
                    8
                } else {
                    48
                };
                let ticks = ((now_us - last).max(0) * khz / 1000).max(1) as u32;
                self.base_ts_prev = self.base_ts_prev.wrapping_add(ticks);
                self.last_ts = self.last_ts.wrapping_add(ticks);
            }
        }
        if self.seq_reset {
            self.seq_reset = false;
            self.base_seq_prev = self.last_seq;
            self.base_seq = seq;
        }
        self.last_ts = ts
            .wrapping_sub(self.base_ts)
            .wrapping_add(self.base_ts_prev);
        self.last_seq = seq
            .wrapping_sub(self.base_seq)
            .wrapping_add(self.base_seq_prev)
            .wrapping_add(1);
        if let Some(b) = pkt.get_mut(2..4) {
            b.copy_from_slice(&self.last_seq.to_be_bytes());
        }
        if let Some(b) = pkt.get_mut(4..8) {
            b.copy_from_slice(&self.last_ts.to_be_bytes());
        }
        let out_ssrc = *self.out_ssrc.get_or_insert(ssrc);
        if let Some(b) = pkt.get_mut(8..12) {
            b.copy_from_slice(&out_ssrc.to_be_bytes());
        }
        self.last_time_us = Some(now_us);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32) -> Vec<u8> {
        let mut p = vec![0x80, pt];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&ts.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        p.push(0xAB);
        p
    }

    fn seq_ts(p: &[u8]) -> (u16, u32) {
        (
            u16::from_be_bytes([p[2], p[3]]),
            u32::from_be_bytes([p[4], p[5], p[6], p[7]]),
        )
    }

    #[test]
    fn first_packet_becomes_seq_1_ts_0_and_deltas_kept() {
        let mut r = SeqTsRewriter::default();
        let mut a = rtp(111, 5000, 100_000, 42);
        r.rewrite(&mut a, false, 1_000);
        assert_eq!(seq_ts(&a), (1, 0));
        let mut b = rtp(111, 5001, 100_960, 42);
        r.rewrite(&mut b, false, 21_000);
        assert_eq!(seq_ts(&b), (2, 960));
        // Out of order packets keep their relative position.
        let mut c = rtp(111, 4999, 99_040, 42);
        r.rewrite(&mut c, false, 22_000);
        assert_eq!(seq_ts(&c), (0, u32::MAX - 959));
    }

    #[test]
    fn ssrc_switch_continues_with_time_gap() {
        let mut r = SeqTsRewriter::default();
        let mut a = rtp(96, 10, 1000, 1);
        r.rewrite(&mut a, true, 1_000_000);
        let mut b = rtp(96, 11, 4000, 1);
        r.rewrite(&mut b, true, 1_033_000);
        assert_eq!(seq_ts(&b), (2, 3000));
        // New source, 100 ms later: 90 kHz * 100 ms = 9000 ticks after the last timestamp.
        let mut c = rtp(96, 60_000, 7, 2);
        r.rewrite(&mut c, true, 1_133_000);
        assert_eq!(seq_ts(&c), (3, 12_000));
        let mut d = rtp(96, 60_001, 3007, 2);
        r.rewrite(&mut d, true, 1_166_000);
        assert_eq!(seq_ts(&d), (4, 15_000));
        // The first source's SSRC is kept throughout.
        assert_eq!(&c[8..12], &1u32.to_be_bytes());
        assert_eq!(&d[8..12], &1u32.to_be_bytes());
    }

    #[test]
    fn g711_switch_uses_8khz() {
        let mut r = SeqTsRewriter::default();
        let mut a = rtp(0, 1, 0, 1);
        r.rewrite(&mut a, false, 1_000_000);
        let mut b = rtp(0, 9, 9, 2);
        r.rewrite(&mut b, false, 1_020_000);
        assert_eq!(seq_ts(&b), (2, 160));
    }

    #[test]
    fn filenames() {
        assert_eq!(
            final_path(Some(Path::new("/r")), "a-audio").unwrap(),
            PathBuf::from("/r/a-audio.mjr")
        );
        assert_eq!(
            final_path(None, "x/b.mjr").unwrap(),
            PathBuf::from("x/b.mjr")
        );
        let p = final_path(None, "").unwrap();
        let s = p.to_str().unwrap();
        assert!(
            s.starts_with("janus-recording-") && s.ends_with(".mjr"),
            "{s}"
        );
        assert!(final_path(None, "dir/").is_err());
    }
}
