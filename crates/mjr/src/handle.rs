//! The non-blocking front of a recorder.
//!
//! Design: one background thread per recording owns the [`Recorder`] (and so the file); media
//! threads hold cheap clone-able [`RecorderHandle`]s that validate the packet, stamp it with
//! the current time and `try_send` a copy over a bounded channel. When the channel is full
//! (the disk is slower than the media) the frame is dropped and counted instead of blocking:
//! a gap in a recording is better than stalling live media. Control operations (pause,
//! resume, finish) come from signalling threads, which may wait, so they use a blocking send
//! and stay ordered with the frames.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::clock::Clock;
use crate::writer::{check_data, check_rtp, Recorder, Stamp};
use crate::{MediaKind, MjrError};

/// How long the writer waits idle before flushing its buffer to the file, so a crash loses at
/// most this much of a quiet stream.
const IDLE_FLUSH: Duration = Duration::from_millis(500);

enum Cmd {
    Rtp(Vec<u8>, Stamp),
    Data(Vec<u8>, Stamp),
    Pause,
    Resume(Stamp),
    Close,
}

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
}

/// A clone-able, non-blocking sender of frames to a background [`Recorder`].
#[derive(Clone)]
pub struct RecorderHandle {
    tx: SyncSender<Cmd>,
    clock: Arc<dyn Clock>,
    kind: MediaKind,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for RecorderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderHandle")
            .field("kind", &self.kind)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

impl RecorderHandle {
    /// Queues an RTP packet. Never blocks: a too-short packet is refused with
    /// [`MjrError::PacketTooShort`], a full queue drops it ([`MjrError::QueueFull`], counted).
    pub fn save_rtp(&self, packet: &[u8]) -> Result<(), MjrError> {
        check_rtp(self.kind, packet)?;
        self.enqueue(Cmd::Rtp(packet.to_vec(), Stamp::now(self.clock.as_ref())))
    }

    /// Queues a data channel message. Never blocks (see [`RecorderHandle::save_rtp`]).
    pub fn save_data(&self, data: &[u8]) -> Result<(), MjrError> {
        check_data(self.kind, data)?;
        self.enqueue(Cmd::Data(data.to_vec(), Stamp::now(self.clock.as_ref())))
    }

    /// Pauses the recording (waits for queue space; call from a signalling thread).
    pub fn pause(&self) -> Result<(), MjrError> {
        self.tx.send(Cmd::Pause).map_err(|_| MjrError::Closed)
    }

    /// Resumes the recording (waits for queue space; call from a signalling thread).
    pub fn resume(&self) -> Result<(), MjrError> {
        let stamp = Stamp::now(self.clock.as_ref());
        self.tx
            .send(Cmd::Resume(stamp))
            .map_err(|_| MjrError::Closed)
    }

    /// Frames dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// The medium recorded.
    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    fn enqueue(&self, cmd: Cmd) -> Result<(), MjrError> {
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                Err(MjrError::QueueFull)
            }
            Err(TrySendError::Disconnected(_)) => Err(MjrError::Closed),
        }
    }
}

/// What a finished background recording did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecorderSummary {
    /// The final path of the recording.
    pub path: PathBuf,
    /// Frames written.
    pub frames: u64,
    /// Frames dropped because the queue was full.
    pub dropped: u64,
}

/// Owner of the background writer thread: hands out handles and finishes the recording.
pub struct RecorderWriter {
    handle: RecorderHandle,
    join: Option<JoinHandle<Result<RecorderSummary, MjrError>>>,
}

impl std::fmt::Debug for RecorderWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecorderWriter")
            .field("handle", &self.handle)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Moves the recorder to a background thread with a queue of `capacity` frames (at least
    /// 1). Returns a handle for media threads and the writer to finish the recording with.
    pub fn spawn(self, capacity: usize) -> Result<(RecorderHandle, RecorderWriter), MjrError> {
        let (tx, rx) = mpsc::sync_channel::<Cmd>(capacity.max(1));
        let counters = Arc::new(Counters::default());
        let handle = RecorderHandle {
            tx,
            clock: Arc::clone(self.clock()),
            kind: self.kind(),
            counters: Arc::clone(&counters),
        };
        let name = format!("mjr-{}", self.kind());
        let join = std::thread::Builder::new().name(name).spawn(move || {
            let mut rec = self;
            // The first write error is kept and reported by `finish`; later frames are
            // discarded rather than appended after a possibly partial frame.
            let mut failed: Option<MjrError> = None;
            loop {
                let cmd = match rx.recv_timeout(IDLE_FLUSH) {
                    Ok(cmd) => cmd,
                    Err(RecvTimeoutError::Timeout) => {
                        if failed.is_none() {
                            if let Err(e) = rec.flush() {
                                failed = Some(e);
                            }
                        }
                        continue;
                    }
                    // Every handle and the writer are gone: finish as if closed.
                    Err(RecvTimeoutError::Disconnected) => break,
                };
                let res = match cmd {
                    Cmd::Close => break,
                    Cmd::Pause => {
                        rec.pause();
                        Ok(())
                    }
                    Cmd::Resume(stamp) => {
                        rec.resume_at(stamp.mono_us);
                        Ok(())
                    }
                    _ if failed.is_some() => Ok(()),
                    Cmd::Rtp(p, stamp) => rec.save_rtp_at(&p, stamp),
                    Cmd::Data(d, stamp) => rec.save_data_at(&d, stamp),
                };
                if let Err(e) = res {
                    failed.get_or_insert(e);
                }
            }
            let frames = rec.frames_written();
            let closed = rec.close();
            if let Some(e) = failed {
                return Err(e);
            }
            Ok(RecorderSummary {
                path: closed?,
                frames,
                dropped: counters.dropped.load(Ordering::Relaxed),
            })
        })?;
        let writer = RecorderWriter {
            handle: handle.clone(),
            join: Some(join),
        };
        Ok((handle, writer))
    }
}

impl RecorderWriter {
    /// Another handle to the same recording.
    pub fn handle(&self) -> RecorderHandle {
        self.handle.clone()
    }

    /// Writes everything queued, closes the file and stops the thread. Handles still around
    /// get [`MjrError::Closed`] afterwards. Blocks until done: not for a media thread.
    pub fn finish(mut self) -> Result<RecorderSummary, MjrError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<RecorderSummary, MjrError> {
        let Some(join) = self.join.take() else {
            return Err(MjrError::Closed);
        };
        // If the thread is already gone the send fails; joining tells why.
        let _ = self.handle.tx.send(Cmd::Close);
        let mut summary = join.join().map_err(|_| MjrError::WriterPanicked)??;
        // Frames may have been dropped after the thread read the counter.
        summary.dropped = self.handle.dropped();
        Ok(summary)
    }
}

impl Drop for RecorderWriter {
    /// Dropping the writer finishes the recording (best effort) so the file is complete.
    fn drop(&mut self) {
        if self.join.is_some() {
            let _ = self.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn full_queue_drops_and_counts_without_blocking() {
        // No writer thread drains this channel, so it fills deterministically.
        let (tx, rx) = mpsc::sync_channel(2);
        let h = RecorderHandle {
            tx,
            clock: Arc::new(ManualClock::new(1, 1)),
            kind: MediaKind::Audio,
            counters: Arc::new(Counters::default()),
        };
        let pkt = [0x80u8, 111, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1];
        assert!(h.save_rtp(&pkt).is_ok());
        assert!(h.clone().save_rtp(&pkt).is_ok());
        for _ in 0..3 {
            assert!(matches!(h.save_rtp(&pkt), Err(MjrError::QueueFull)));
        }
        assert_eq!(h.dropped(), 3);
        // Invalid packets are refused before queueing and are not counted as drops.
        assert!(matches!(
            h.save_rtp(&pkt[..11]),
            Err(MjrError::PacketTooShort { len: 11 })
        ));
        assert!(matches!(h.save_data(b"x"), Err(MjrError::WrongKind { .. })));
        assert_eq!(h.dropped(), 3);
        drop(rx);
        assert!(matches!(h.save_rtp(&pkt), Err(MjrError::Closed)));
    }
}
