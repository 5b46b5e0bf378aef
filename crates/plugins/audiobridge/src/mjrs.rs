//! Per-participant `.mjr` recordings (`mjrs` rooms, or `record` in `join`/`configure`): what
//! a participant sends, as it arrives (before mixing), each to a writer thread of its own, so
//! the packet path only queues (a full queue drops and counts).

use crate::participant::Participant;
use crate::Shared;
use jano_mjr::{RecorderHandle, RecorderWriter};
use jano_plugin::RtpPacket;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

/// A running recording of one participant.
pub struct Mjr {
    pub handle: RecorderHandle,
    writer: Arc<Mutex<Option<RecorderWriter>>>,
    buf: Vec<u8>,
}

impl Mjr {
    /// Queues one packet (from the participant's media worker; never blocks).
    pub fn save(&mut self, p: &RtpPacket) {
        jano_plugin::udp::serialize_rtp(p, None, None, &mut self.buf);
        let _ = self.handle.save_rtp(&self.buf);
    }
}

/// Starts recording `p` (the file is opened on the blocking pool); nothing if it records
/// already.
pub fn start(shared: &Shared, p: &Arc<Participant>) {
    if p.media().mjr.is_some() {
        return;
    }
    let (dir, room) = {
        let st = p.room.state();
        (st.cfg.mjrs_dir.clone(), p.room.id.clone())
    };
    let (codec, base) = {
        let st = p.settings();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let base = st
            .filename
            .clone()
            .unwrap_or_else(|| format!("audiobridge-{room}-user-{}-{now}", p.id));
        (st.codec.name(), base)
    };
    let weak = Arc::downgrade(p);
    shared.services.spawn_blocking(Box::new(move || {
        let name = format!("{base}-audio");
        let dir = dir.as_deref().map(std::path::Path::new);
        let rec =
            match jano_mjr::Recorder::create(dir, &name, jano_mjr::MediaKind::Audio, codec, None) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!("audiobridge: cannot record {name}: {e}");
                    return;
                }
            };
        match rec.spawn(1024) {
            Ok((handle, writer)) => {
                let mjr = Mjr {
                    handle,
                    writer: Arc::new(Mutex::new(Some(writer))),
                    buf: Vec::new(),
                };
                match weak.upgrade().filter(|p| !p.has_left()) {
                    Some(p) => {
                        let mut m = p.media();
                        if m.mjr.is_none() {
                            m.mjr = Some(mjr);
                        } else {
                            finish(mjr);
                        }
                    }
                    // Gone meanwhile: an empty recording, completed.
                    None => finish(mjr),
                }
            }
            Err(e) => tracing::warn!("audiobridge: cannot record {name}: {e}"),
        }
    }));
}

/// Stops recording `p` (the file is completed on the blocking pool).
pub fn stop(shared: &Shared, p: &Participant) {
    let taken = p.media().mjr.take();
    if let Some(mjr) = taken {
        shared
            .services
            .spawn_blocking(Box::new(move || finish(mjr)));
    }
}

fn finish(mjr: Mjr) {
    let writer = mjr.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
    drop(mjr.handle);
    if let Some(w) = writer {
        if let Err(e) = w.finish() {
            tracing::warn!("audiobridge: recording not completed: {e}");
        }
    }
}
