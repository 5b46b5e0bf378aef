//! Playing a recording back: its `.mjr` files read into memory on the blocking pool (packets
//! put back in sequence order, duplicates dropped), then sent to the viewer from a task on the
//! plugins' runtime, paced by the recorded RTP timestamps. Each stream starts when it started
//! in the recording (the headers' first-frame times), so audio and video stay in sync; no
//! thread per viewer as in Janus.

use crate::library::{file_path, Recording};
use jano_plugin::rtp::{codec_name, parse_rtp, SeqExt};
use jano_plugin::{CoreServices, DataMessage, HandleRef, MediaKind, RtpExtensions, RtpPacket};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// One stream of a recording, ready to send.
pub struct Track {
    pub kind: Option<MediaKind>,
    /// (microseconds from the start of the playback, packet); data: the message in `data`.
    pub items: Vec<(u64, Item)>,
}

pub enum Item {
    Rtp(RtpPacket),
    Data(Vec<u8>),
}

/// A file's first-frame time (µs since the epoch, 0 = unknown) and its items with their
/// offsets (µs).
type Timed<T> = (i64, Vec<(u64, T)>);

/// A recording's streams, as loaded for a viewer.
pub struct Loaded {
    pub tracks: Vec<Track>,
    /// Files that could not be read (the `warning` of `preparing`).
    pub warning: Option<&'static str>,
}

/// Reads one RTP file: packets in sequence order, each with its offset from the file's first
/// packet (µs), plus the file's first-frame time.
fn load_rtp(path: &Path, kind: MediaKind, mindex: usize) -> Option<Timed<RtpPacket>> {
    let rec = jano_mjr::read_file(path).ok()?;
    let codec = codec_name(&rec.info.codec)?;
    // RED packets are played as their primary block (viewers are not offered RED).
    let red = rec.info.opusred_pt;
    let rate = u64::from(jano_plugin::rtp::clock_rate(codec));
    let mut ext = SeqExt::default();
    let mut pkts: Vec<(u64, RtpPacket)> = Vec::with_capacity(rec.frames.len());
    for f in &rec.frames {
        let Some(h) = parse_rtp(&f.data) else {
            continue;
        };
        let Some(mut payload) = f.data.get(h.payload_at..h.payload_end) else {
            continue;
        };
        if red == Some(h.pt) {
            match jano_plugin::rtp::red_primary(payload) {
                Some((_, p)) if !p.is_empty() => payload = p,
                _ => continue,
            }
        }
        let seq = ext.extend(h.seq);
        pkts.push((
            seq,
            RtpPacket {
                mindex,
                kind,
                pt: h.pt,
                codec,
                seq,
                timestamp: h.ts,
                marker: h.marker,
                ssrc: h.ssrc,
                substream: None,
                ext: RtpExtensions::default(),
                payload: Arc::from(payload),
                svc: None,
            },
        ));
    }
    pkts.sort_by_key(|(s, _)| *s);
    pkts.dedup_by_key(|(s, _)| *s);
    // Offsets from the RTP timestamps, unwrapped along the sequence.
    let mut out = Vec::with_capacity(pkts.len());
    let mut at: i64 = 0;
    let mut prev: Option<u32> = None;
    for (_, p) in pkts {
        if let Some(pr) = prev {
            // A backwards step (B-frames, a reset) holds the clock rather than rewinding it.
            at += i64::from(p.timestamp.wrapping_sub(pr) as i32).max(0);
        }
        prev = Some(p.timestamp);
        let us = u64::try_from(at).unwrap_or(0) * 1_000_000 / rate;
        out.push((us, p));
    }
    Some((rec.info.first_frame_us, out))
}

fn load_data(path: &Path) -> Option<Timed<Vec<u8>>> {
    let rec = jano_mjr::read_file(path).ok()?;
    let mut first: Option<i64> = None;
    let mut out = Vec::new();
    for f in &rec.frames {
        let Some((when, msg)) = f.data_message() else {
            continue;
        };
        let t0 = *first.get_or_insert(when);
        out.push((u64::try_from(when - t0).unwrap_or(0), msg.to_vec()));
    }
    Some((rec.info.first_frame_us, out))
}

/// Reads a recording's files (blocking: run it on the blocking pool). The m-lines of the
/// viewer's offer are audio, then video, then data, for those the recording has.
pub fn load(dir: &Path, rec: &Recording) -> Loaded {
    let mut found: Vec<(Option<MediaKind>, Timed<Item>)> = Vec::new();
    let mut warning = None;
    let mut mindex = 0;
    if let Some(a) = &rec.audio {
        match load_rtp(&file_path(dir, a), MediaKind::Audio, mindex) {
            Some((t0, p)) => {
                found.push((
                    Some(MediaKind::Audio),
                    (t0, p.into_iter().map(|(t, p)| (t, Item::Rtp(p))).collect()),
                ));
            }
            None => warning = Some("Broken audio file, playing video only"),
        }
        mindex += 1;
    }
    if let Some(v) = &rec.video {
        match load_rtp(&file_path(dir, v), MediaKind::Video, mindex) {
            Some((t0, p)) => {
                found.push((
                    Some(MediaKind::Video),
                    (t0, p.into_iter().map(|(t, p)| (t, Item::Rtp(p))).collect()),
                ));
            }
            None => warning = Some("Broken video file, playing audio only"),
        }
    }
    if let Some(d) = &rec.data {
        match load_data(&file_path(dir, d)) {
            Some((t0, m)) => found.push((
                None,
                (t0, m.into_iter().map(|(t, m)| (t, Item::Data(m))).collect()),
            )),
            None => warning = Some("Broken data file, playing audio/video only"),
        }
    }
    // Streams start as late as they started in the recording (0 = unknown: at once).
    let start = found
        .iter()
        .map(|(_, (t0, _))| *t0)
        .filter(|t| *t > 0)
        .min()
        .unwrap_or(0);
    let tracks = found
        .into_iter()
        .map(|(kind, (t0, items))| {
            let lag = if t0 > 0 && start > 0 {
                u64::try_from(t0 - start).unwrap_or(0)
            } else {
                0
            };
            Track {
                kind,
                items: items.into_iter().map(|(t, i)| (t + lag, i)).collect(),
            }
        })
        .collect();
    Loaded { tracks, warning }
}

impl Loaded {
    pub fn has_media(&self) -> bool {
        self.tracks
            .iter()
            .any(|t| t.kind.is_some() && !t.items.is_empty())
    }
}

/// Sends the recording to the viewer, paced; `stop` ends it early. When it is over the
/// viewer's PeerConnection is closed (the `done` event follows from the hang-up).
pub async fn play(
    loaded: Loaded,
    services: Arc<dyn CoreServices>,
    viewer: HandleRef,
    textdata: bool,
    stop: Arc<AtomicBool>,
) {
    let mut items: Vec<(u64, Item)> = loaded.tracks.into_iter().flat_map(|t| t.items).collect();
    items.sort_by_key(|(t, _)| *t);
    let start = tokio::time::Instant::now();
    for (at, item) in items {
        if stop.load(Ordering::Acquire) {
            return;
        }
        let due = start + Duration::from_micros(at);
        if due > tokio::time::Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        match item {
            Item::Rtp(p) => services.relay_rtp(&viewer, &p),
            Item::Data(d) => services.relay_data(
                &viewer,
                &DataMessage {
                    label: None,
                    protocol: None,
                    binary: !textdata,
                    buffer: &d,
                },
            ),
        }
    }
    if !stop.load(Ordering::Acquire) {
        services.close_pc(&viewer);
    }
}
