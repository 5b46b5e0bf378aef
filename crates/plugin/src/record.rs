//! Recording what one handle's peer sends to `.mjr` files (`<base>-audio.mjr`,
//! `<base>-video.mjr`, `<base>-data.mjr`), as the EchoTest and VideoCall plugins do.
//!
//! A file is opened when the first packet of its kind says which codec it carries, on the
//! plugins' blocking pool (never on the packet path); what arrives while it opens is not
//! recorded. Packets reach the file through the recorder's bounded queue: a full queue drops
//! and counts instead of stalling media. Closing (which waits for the writer) also goes to the
//! blocking pool.

use crate::{CoreServices, MediaKind, RtpPacket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// Frames a recording may have waiting for the disk.
const QUEUE: usize = 1024;

/// What a recorder of a handle records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecKind {
    Audio,
    Video,
    Data,
}

impl RecKind {
    pub fn suffix(self) -> &'static str {
        match self {
            RecKind::Audio => "audio",
            RecKind::Video => "video",
            RecKind::Data => "data",
        }
    }

    fn mjr(self) -> jano_mjr::MediaKind {
        match self {
            RecKind::Audio => jano_mjr::MediaKind::Audio,
            RecKind::Video => jano_mjr::MediaKind::Video,
            RecKind::Data => jano_mjr::MediaKind::Data,
        }
    }

    pub fn of(kind: MediaKind) -> RecKind {
        match kind {
            MediaKind::Audio => RecKind::Audio,
            MediaKind::Video => RecKind::Video,
        }
    }
}

#[derive(Default)]
struct Inner {
    /// The base name while recording.
    base: Option<String>,
    open: Vec<(
        RecKind,
        jano_mjr::RecorderHandle,
        jano_mjr::RecorderWriter,
        PathBuf,
    )>,
    opening: Vec<RecKind>,
}

/// One handle's recording. Cheap to clone (the clones share it).
#[derive(Clone, Default)]
pub struct MediaRecorder {
    inner: Arc<Mutex<Inner>>,
}

impl MediaRecorder {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts recording to files named after `base` (a path without extension); a recording
    /// already running under another name is closed first.
    pub fn start(&self, services: &dyn CoreServices, base: String) {
        let same = self.lock().base.as_deref() == Some(base.as_str());
        if same {
            return;
        }
        self.stop(services);
        self.lock().base = Some(base);
    }

    pub fn is_recording(&self) -> bool {
        self.lock().base.is_some()
    }

    /// The files being written, by kind.
    pub fn files(&self) -> Vec<(RecKind, PathBuf)> {
        self.lock()
            .open
            .iter()
            .map(|(k, _, _, p)| (*k, p.clone()))
            .collect()
    }

    /// Stops recording; the files are closed on the blocking pool.
    pub fn stop(&self, services: &dyn CoreServices) {
        let writers: Vec<_> = {
            let mut g = self.lock();
            g.base = None;
            g.open.drain(..).map(|(_, _, w, _)| w).collect()
        };
        if writers.is_empty() {
            return;
        }
        services.spawn_blocking(Box::new(move || {
            for w in writers {
                match w.finish() {
                    Ok(s) => tracing::info!(path = %s.path.display(), frames = s.frames, dropped = s.dropped, "recording closed"),
                    Err(e) => tracing::warn!("recording: {e}"),
                }
            }
        }));
    }

    /// Records an RTP packet from the peer.
    pub fn rtp(&self, services: &dyn CoreServices, p: &RtpPacket) {
        let mut buf = Vec::with_capacity(12 + p.payload.len());
        let kind = RecKind::of(p.kind);
        self.save(services, kind, p.codec, |h| {
            crate::udp::serialize_rtp(p, None, None, &mut buf);
            h.save_rtp(&buf)
        });
    }

    /// Records a data-channel message from the peer.
    pub fn data(&self, services: &dyn CoreServices, d: &[u8]) {
        self.save(services, RecKind::Data, "text", |h| h.save_data(d));
    }

    fn save(
        &self,
        services: &dyn CoreServices,
        kind: RecKind,
        codec: &'static str,
        write: impl FnOnce(&jano_mjr::RecorderHandle) -> Result<(), jano_mjr::MjrError>,
    ) {
        let mut g = self.lock();
        let Some(base) = g.base.clone() else { return };
        if let Some((_, h, _, _)) = g.open.iter().find(|(k, ..)| *k == kind) {
            // A full queue drops the frame (the recorder counts it).
            let _ = write(h);
            return;
        }
        if g.opening.contains(&kind) {
            return;
        }
        g.opening.push(kind);
        drop(g);
        self.open_file(services, base, kind, codec, None);
    }

    /// Opens the file of a kind now, when the codec is known before the first packet (what
    /// arrives while it opens is then not lost to the wait); `then` runs once it is open (a
    /// keyframe request, so that the video file starts with one).
    pub fn open(
        &self,
        services: &dyn CoreServices,
        kind: RecKind,
        codec: &str,
        then: Option<Box<dyn FnOnce() + Send>>,
    ) {
        let mut g = self.lock();
        let Some(base) = g.base.clone() else { return };
        if g.opening.contains(&kind) || g.open.iter().any(|(k, ..)| *k == kind) {
            return;
        }
        g.opening.push(kind);
        drop(g);
        self.open_file(services, base, kind, codec, then);
    }

    fn open_file(
        &self,
        services: &dyn CoreServices,
        base: String,
        kind: RecKind,
        codec: &str,
        then: Option<Box<dyn FnOnce() + Send>>,
    ) {
        let me = self.clone();
        let codec = codec.to_owned();
        services.spawn_blocking(Box::new(move || {
            let name = format!("{base}-{}", kind.suffix());
            let opened = jano_mjr::Recorder::create(None, &name, kind.mjr(), &codec, None)
                .and_then(|r| {
                    let path = r.path().to_path_buf();
                    r.spawn(QUEUE).map(|(h, w)| (h, w, path))
                });
            let mut g = me.lock();
            g.opening.retain(|k| *k != kind);
            match opened {
                // Still recording to the same files: keep it; else close it again at once.
                Ok((h, w, path)) if g.base.as_deref() == Some(base.as_str()) => {
                    g.open.push((kind, h, w, path));
                    drop(g);
                    if let Some(then) = then {
                        then();
                    }
                }
                Ok((_, w, _)) => {
                    let _ = w.finish();
                }
                Err(err) => {
                    tracing::warn!("can't record {name}: {err}");
                    // Don't try again on every packet.
                    g.base = None;
                }
            }
        }));
    }
}
