//! `recording`: the streams of an RTP-fed mountpoint (`rtp` or `rtsp`) written to `.mjr` files
//! as packets arrive, as Janus's Streaming plugin records them. Each recording has its own
//! writer (jano-mjr's background queue): the source's reader only queues the packet.

use crate::error::{StError, StResult};
use crate::mountpoint::{Mountpoint, Source, StreamKind};
use jano_mjr::{MediaKind, Recorder, RecorderHandle, RecorderWriter};
use jano_plugin::fields::{opt_array, opt_bool, opt_str, Body};
use jano_plugin::{CoreServices, Value};
use std::sync::{Mutex, RwLock};

/// Frames a recording queues before it drops (a disk that cannot keep up).
const QUEUE: usize = 1024;

/// A stream's recording in progress.
pub struct Rec {
    handle: RecorderHandle,
    writer: Mutex<Option<RecorderWriter>>,
}

/// The slot a source keeps its recording in.
pub type RecSlot = RwLock<Option<std::sync::Arc<Rec>>>;

/// A packet (or data message) of the source goes to its recording, if any.
pub fn save(slot: &RecSlot, data: &[u8], is_data: bool) {
    let g = slot.read().unwrap_or_else(|e| e.into_inner());
    if let Some(r) = g.as_ref() {
        let _ = if is_data {
            r.handle.save_data(data)
        } else {
            r.handle.save_rtp(data)
        };
    }
}

fn start(src: &Source, filename: &str) -> StResult<()> {
    let mut slot = src.rec.write().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return Err(StError::BadRequest(
            "Recording for audio, video and/or data already started for this stream".into(),
        ));
    }
    let (kind, codec) = match src.cfg.kind {
        StreamKind::Audio => (MediaKind::Audio, src.cfg.codec),
        StreamKind::Video => (MediaKind::Video, src.cfg.codec),
        StreamKind::Data => (MediaKind::Data, Some("text")),
    };
    let cant = || {
        StError::CantRecord(format!(
            "Error starting recorder for {}",
            src.cfg.kind.as_str()
        ))
    };
    let codec = codec.ok_or_else(cant)?;
    let rec =
        Recorder::create(None, filename, kind, codec, src.cfg.fmtp.as_deref()).map_err(|e| {
            tracing::warn!("streaming: cannot record to {filename}: {e}");
            cant()
        })?;
    let (handle, writer) = rec.spawn(QUEUE).map_err(|_| cant())?;
    *slot = Some(std::sync::Arc::new(Rec {
        handle,
        writer: Mutex::new(Some(writer)),
    }));
    Ok(())
}

/// Ends a source's recording; the file is finished on the blocking pool.
pub fn stop(src: &Source, services: &dyn CoreServices) {
    let taken = src.rec.write().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(r) = taken {
        let writer = r.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(w) = writer {
            services.spawn_blocking(Box::new(move || {
                if let Err(e) = w.finish() {
                    tracing::warn!("streaming: recording not finished cleanly: {e}");
                }
            }));
        }
    }
}

/// Every recording of a mountpoint ends (it is disabled with `stop_recording`, or destroyed).
pub fn stop_all(mp: &Mountpoint, services: &dyn CoreServices) {
    for s in &mp.sources {
        stop(s, services);
    }
}

/// The `recording` request, after the mountpoint was found and its secret checked.
pub fn request(
    mp: &Mountpoint,
    action: &str,
    b: &Body,
    services: &dyn CoreServices,
) -> StResult<()> {
    let media = opt_array(b, "media")?;
    let by_mid = |mid: &str| {
        mp.sources
            .iter()
            .find(|s| s.cfg.mid.eq_ignore_ascii_case(mid))
    };
    // The legacy keys are named after the streams' kinds.
    const LEGACY: [&str; 3] = ["audio", "video", "data"];
    match action {
        "start" => {
            if let Some(list) = media {
                // Entries without a mid or filename are skipped, as Janus does.
                for m in list.iter().filter_map(Value::as_object) {
                    let (Some(mid), Some(file)) = (opt_str(m, "mid")?, opt_str(m, "filename")?)
                    else {
                        continue;
                    };
                    if let Some(s) = by_mid(mid) {
                        start(s, file)?;
                    }
                }
                return Ok(());
            }
            let mut any = false;
            for k in LEGACY {
                any |= opt_str(b, k)?.is_some();
            }
            if !any {
                return Err(StError::BadRequest(
                    "Missing audio, video and/or data".into(),
                ));
            }
            for s in &mp.sources {
                if let Some(f) = opt_str(b, s.cfg.kind.as_str())? {
                    start(s, f)?;
                }
            }
            Ok(())
        }
        _ => {
            if let Some(list) = media {
                for m in list.iter().filter_map(Value::as_object) {
                    if let Some(s) = opt_str(m, "mid")?.and_then(by_mid) {
                        stop(s, services);
                    }
                }
                return Ok(());
            }
            let mut any = false;
            for k in LEGACY {
                any |= opt_bool(b, k)?.unwrap_or(false);
            }
            if !any {
                return Err(StError::BadRequest(
                    "Missing audio, video and/or data".into(),
                ));
            }
            for s in &mp.sources {
                if opt_bool(b, s.cfg.kind.as_str())?.unwrap_or(false) {
                    stop(s, services);
                }
            }
            Ok(())
        }
    }
}
