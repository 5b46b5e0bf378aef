//! Recording a peer: its audio, video and data into the recording's `.mjr` files. The files
//! are created on the blocking pool when `record` is answered; the packet path only queues
//! frames to their writer threads (a full queue drops and counts, never waits).
//!
//! A simulcasting sender is recorded from its highest layer, moving up only at a keyframe of
//! the new layer, with sequence numbers and timestamps kept continuous.

use jano_mjr::{MediaKind as MjrKind, Recorder, RecorderHandle, RecorderWriter};
use jano_plugin::rtp::is_keyframe;
use jano_plugin::{CoreServices, MediaKind, RtpPacket};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

const QUEUE: usize = 2048;

/// What a new recording's files are.
#[derive(Debug, Clone)]
pub struct Plan {
    pub dir: PathBuf,
    /// (file name without `.mjr`, codec, fmtp) per kind.
    pub audio: Option<(String, &'static str)>,
    pub video: Option<(String, &'static str, Option<String>)>,
    pub data: Option<(String, bool)>,
    pub opusred_pt: Option<u8>,
}

#[derive(Default)]
struct Files {
    audio: Option<(RecorderHandle, RecorderWriter)>,
    video: Option<(RecorderHandle, RecorderWriter)>,
    data: Option<(RecorderHandle, RecorderWriter)>,
}

/// The packet path's side of a recording.
pub struct Capture {
    files: Mutex<Files>,
    sim: Mutex<Simulcast>,
    /// REMB and keyframe-request cadence.
    fb: Mutex<Feedback>,
}

#[derive(Default)]
struct Simulcast {
    /// The layer recorded (a higher one replaces it at its keyframe).
    layer: Option<u8>,
    /// One stream in the file across layer switches: one SSRC, sequence numbers and
    /// timestamps going on from where the last layer stopped.
    ssrc: Option<u32>,
    first_ssrc: u32,
    seq_off: u64,
    ts_off: u32,
    last_seq: u64,
    last_ts: u32,
}

impl Simulcast {
    fn continuous(&mut self, p: &mut RtpPacket) {
        if self.ssrc != Some(p.ssrc) {
            if self.ssrc.is_some() {
                // About a frame's worth of time after the last packet of the old layer.
                self.seq_off = (self.last_seq + 1).wrapping_sub(p.seq);
                self.ts_off = self.last_ts.wrapping_add(3000).wrapping_sub(p.timestamp);
            } else {
                self.first_ssrc = p.ssrc;
            }
            self.ssrc = Some(p.ssrc);
        }
        p.seq = p.seq.wrapping_add(self.seq_off);
        p.timestamp = p.timestamp.wrapping_add(self.ts_off);
        p.ssrc = self.first_ssrc;
        self.last_seq = p.seq;
        self.last_ts = p.timestamp;
    }
}

struct Feedback {
    /// The first REMBs ramp up (bitrate/4, /3, /2, then the cap), then one every 5 s.
    startup: u64,
    last_remb: Option<Instant>,
    last_pli: Option<Instant>,
}

/// What the packet path should ask of the sender after a video packet.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ask {
    pub remb: Option<u64>,
    pub pli: bool,
}

impl Capture {
    /// Opens the files on the blocking pool; what arrives before they are open is not kept.
    pub fn start(services: &dyn CoreServices, plan: Plan) -> Arc<Capture> {
        let cap = Arc::new(Capture {
            files: Mutex::new(Files::default()),
            sim: Mutex::new(Simulcast::default()),
            fb: Mutex::new(Feedback {
                startup: 4,
                last_remb: None,
                last_pli: None,
            }),
        });
        let c = cap.clone();
        services.spawn_blocking(Box::new(move || {
            let open =
                |name: &str, kind: MjrKind, codec: &str, fmtp: Option<&str>, red: Option<u8>| {
                    let mut r = Recorder::create(Some(&plan.dir), name, kind, codec, fmtp)?;
                    if let Some(pt) = red {
                        r.set_opusred_pt(pt)?;
                    }
                    r.spawn(QUEUE)
                };
            let mut f = Files::default();
            if let Some((name, codec)) = &plan.audio {
                f.audio = open(name, MjrKind::Audio, codec, None, plan.opusred_pt)
                    .map_err(|e| tracing::warn!("recordplay: {name}: {e}"))
                    .ok();
            }
            if let Some((name, codec, fmtp)) = &plan.video {
                f.video = open(name, MjrKind::Video, codec, fmtp.as_deref(), None)
                    .map_err(|e| tracing::warn!("recordplay: {name}: {e}"))
                    .ok();
            }
            if let Some((name, text)) = &plan.data {
                let codec = if *text { "text" } else { "binary" };
                f.data = open(name, MjrKind::Data, codec, None, None)
                    .map_err(|e| tracing::warn!("recordplay: {name}: {e}"))
                    .ok();
            }
            *c.files() = f;
        }));
        cap
    }

    fn files(&self) -> MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records an RTP packet from the peer; says what feedback the sender should get.
    pub fn rtp(&self, p: &RtpPacket, bitrate: u64, keyframe_every: Duration) -> Ask {
        let mut buf = Vec::with_capacity(12 + p.payload.len());
        match p.kind {
            MediaKind::Audio => {
                if let Some((h, _)) = &self.files().audio {
                    jano_plugin::udp::serialize_rtp(p, None, None, &mut buf);
                    let _ = h.save_rtp(&buf);
                }
                Ask::default()
            }
            MediaKind::Video => {
                let mut q = p.clone();
                if let Some(layer) = p.substream {
                    let mut sim = self.sim.lock().unwrap_or_else(|e| e.into_inner());
                    let up = sim.layer.is_none_or(|l| layer > l);
                    if up && is_keyframe(p.codec, &p.payload) {
                        sim.layer = Some(layer);
                    }
                    if sim.layer != Some(layer) {
                        return self.feedback(bitrate, keyframe_every, sim.layer.is_none());
                    }
                    sim.continuous(&mut q);
                }
                if let Some((h, _)) = &self.files().video {
                    jano_plugin::udp::serialize_rtp(&q, None, None, &mut buf);
                    let _ = h.save_rtp(&buf);
                }
                self.feedback(bitrate, keyframe_every, false)
            }
        }
    }

    fn feedback(&self, bitrate: u64, every: Duration, want_key: bool) -> Ask {
        let now = Instant::now();
        let mut fb = self.fb.lock().unwrap_or_else(|e| e.into_inner());
        let mut ask = Ask::default();
        let ramping = fb.startup > 0;
        if ramping
            || fb
                .last_remb
                .is_none_or(|t| now - t >= Duration::from_secs(5))
        {
            ask.remb = Some(if ramping {
                bitrate / fb.startup
            } else {
                bitrate
            });
            fb.startup = fb.startup.saturating_sub(1);
            fb.last_remb = Some(now);
        }
        if want_key || fb.last_pli.is_none_or(|t| now - t >= every) {
            ask.pli = true;
            fb.last_pli = Some(now);
        }
        ask
    }

    pub fn data(&self, d: &[u8]) {
        if let Some((h, _)) = &self.files().data {
            let _ = h.save_data(d);
        }
    }

    /// `pause`/`resume` (the writers keep their place, as Janus's recorders do).
    pub fn pause(&self, pause: bool) {
        let f = self.files();
        for (h, _) in [&f.audio, &f.video, &f.data].into_iter().flatten() {
            let _ = if pause { h.pause() } else { h.resume() };
        }
    }

    /// Closes the files (on the blocking pool), then runs `done`.
    pub fn finish(&self, services: &dyn CoreServices, done: Box<dyn FnOnce() + Send>) {
        let f = std::mem::take(&mut *self.files());
        services.spawn_blocking(Box::new(move || {
            for (_, w) in [f.audio, f.video, f.data].into_iter().flatten() {
                if let Err(e) = w.finish() {
                    tracing::warn!("recordplay: closing a recording: {e}");
                }
            }
            done();
        }));
    }
}
