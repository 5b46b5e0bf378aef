//! Recording a room's mix to a WAV file (PCM, 16 bits, the room's rate, mono or stereo for
//! spatial rooms). The mixing thread hands each frame over a bounded channel to a writer
//! thread of the recording's own, which owns the file: the mix never waits for the disk (a
//! full channel drops the frame and counts it). The header's sizes are brought up to date
//! every few seconds, so a crash leaves a playable file, and when the recording ends.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// Frames queued to the writer (10 s of 20 ms frames).
const QUEUE: usize = 500;
/// Frames between header updates (5 s).
const HEADER_EVERY: u64 = 250;

pub struct WavRecorder {
    tx: Option<SyncSender<Vec<i16>>>,
    pub dropped: Arc<AtomicU64>,
    pub path: PathBuf,
}

impl WavRecorder {
    /// Starts a recording into `path` (written as `path` + `.tmp_ext` until it ends, when
    /// `tmp_ext` is set, as Janus's `record_tmp_ext`).
    pub fn start(
        path: PathBuf,
        tmp_ext: Option<String>,
        rate: u32,
        channels: u16,
    ) -> std::io::Result<WavRecorder> {
        let (tx, rx) = sync_channel(QUEUE);
        let writing = match &tmp_ext {
            Some(ext) => PathBuf::from(format!("{}.{ext}", path.display())),
            None => path.clone(),
        };
        let file = File::create(&writing)?;
        let final_path = path.clone();
        std::thread::Builder::new()
            .name("ab-wav".into())
            .spawn(move || {
                if let Err(e) = write_loop(file, rx, rate, channels) {
                    tracing::warn!("audiobridge: recording {} failed: {e}", writing.display());
                }
                if writing != final_path {
                    if let Err(e) = std::fs::rename(&writing, &final_path) {
                        tracing::warn!("audiobridge: cannot rename {}: {e}", writing.display());
                    }
                }
            })?;
        Ok(WavRecorder {
            tx: Some(tx),
            dropped: Arc::new(AtomicU64::new(0)),
            path,
        })
    }

    /// Queues one frame (interleaved when stereo); never blocks.
    pub fn push(&self, frame: &[i16]) {
        if let Some(tx) = &self.tx {
            if let Err(TrySendError::Full(_)) = tx.try_send(frame.to_vec()) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl Drop for WavRecorder {
    fn drop(&mut self) {
        // Closing the channel ends the writer, which completes the header.
        self.tx.take();
    }
}

fn header(rate: u32, channels: u16, data_bytes: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let block = channels * 2;
    let parts: [&[u8]; 13] = [
        b"RIFF",
        &data_bytes.saturating_add(36).to_le_bytes(),
        b"WAVE",
        b"fmt ",
        &16u32.to_le_bytes(),
        &1u16.to_le_bytes(),
        &channels.to_le_bytes(),
        &rate.to_le_bytes(),
        &(rate * u32::from(block)).to_le_bytes(),
        &block.to_le_bytes(),
        &16u16.to_le_bytes(),
        b"data",
        &data_bytes.to_le_bytes(),
    ];
    let mut at = 0;
    for p in parts {
        if let Some(dst) = h.get_mut(at..at + p.len()) {
            dst.copy_from_slice(p);
        }
        at += p.len();
    }
    h
}

fn write_loop(file: File, rx: Receiver<Vec<i16>>, rate: u32, channels: u16) -> std::io::Result<()> {
    let mut w = BufWriter::new(file);
    w.write_all(&header(rate, channels, 0))?;
    let mut bytes: u32 = 0;
    let mut frames: u64 = 0;
    let mut buf = Vec::new();
    while let Ok(frame) = rx.recv() {
        buf.clear();
        for s in &frame {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        w.write_all(&buf)?;
        bytes = bytes.saturating_add(u32::try_from(buf.len()).unwrap_or(u32::MAX));
        frames += 1;
        if frames.is_multiple_of(HEADER_EVERY) {
            update_header(&mut w, rate, channels, bytes)?;
        }
    }
    update_header(&mut w, rate, channels, bytes)?;
    w.flush()
}

fn update_header(
    w: &mut BufWriter<File>,
    rate: u32,
    channels: u16,
    bytes: u32,
) -> std::io::Result<()> {
    w.flush()?;
    let f = w.get_mut();
    f.seek(SeekFrom::Start(0))?;
    f.write_all(&header(rate, channels, bytes))?;
    f.seek(SeekFrom::End(0))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_wav_readable_back() {
        let dir = std::env::temp_dir().join(format!("jano-wav-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("mix.wav");
        let rec = WavRecorder::start(path.clone(), Some("tmp".into()), 16000, 1).unwrap();
        for k in 0..10i16 {
            rec.push(&[k; 320]);
        }
        drop(rec);
        // The writer finishes on its own thread: wait for the rename.
        let t0 = std::time::Instant::now();
        while !path.exists() && t0.elapsed() < std::time::Duration::from_secs(5) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 10 * 320 * 2);
        assert_eq!(&bytes[0..4], b"RIFF");
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!(u32::from_le_bytes(bytes[24..28].try_into().unwrap()), 16000);
        assert_eq!(u32::from_le_bytes(bytes[40..44].try_into().unwrap()), 6400);
        assert_eq!(i16::from_le_bytes([bytes[44 + 640], bytes[45 + 640]]), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
