//! The synthetic RTP of the `media` benchmark's peers: what a packet carries (a marker, the
//! sending peer, a counter and a send time behind a real Opus TOC or VP8 header), the send
//! schedule of one m-line, and the counting of what comes back. Apart from the peer's
//! signalling and its str0m loop, so the wire format can be read (and tested) on its own.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use str0m::media::Mid;
use str0m::rtp::{RtpWrite, SeqNo};
use str0m::Rtc;

use crate::peer::{Counts, PeerResult};

/// Marks our payloads, so anything else coming back is counted as foreign, not as an echo.
const MAGIC: [u8; 4] = *b"JLD1";
/// Bytes before our marker: room for a VP8 payload descriptor and a keyframe's payload header
/// (1 + 10 bytes, video) or an Opus TOC (audio).
const PREFIX: usize = 12;
/// A periodic VP8 keyframe this often (besides the first frame and any PLI/FIR).
const KEYFRAME_EVERY: Duration = Duration::from_secs(2);
/// prefix + magic + peer id + kind + measured flag + 2 spare + counter + send time.
pub const MIN_PAYLOAD: usize = PREFIX + 4 + 4 + 1 + 1 + 2 + 8 + 8;
/// Cap on RTT samples kept per peer (memory stays bounded on long runs).
const MAX_RTT_SAMPLES: usize = 20_000;

/// A bitset of counters already seen (duplicate echoes, e.g. NACK retransmissions, count once).
#[derive(Default)]
pub struct Seen(Vec<u64>);

impl Seen {
    /// true if `n` was not seen before.
    fn insert(&mut self, n: u64) -> bool {
        let (w, b) = ((n / 64) as usize, n % 64);
        if w >= self.0.len() {
            self.0.resize(w + 1, 0);
        }
        let fresh = self.0[w] & (1 << b) == 0;
        self.0[w] |= 1 << b;
        fresh
    }
}

pub struct Track {
    pub mid: Mid,
    pub pt: str0m::format::PayloadParams,
    pub interval: Duration,
    pub next: Instant,
    pub counter: u64,
    pub rtp_ts: u32,
    pub ts_step: u32,
    pub bytes: usize,
    pub seen: Seen,
    /// Video: the next frame is a keyframe (first frame, or after a PLI/FIR).
    pub key_due: bool,
    pub next_key: Instant,
    /// Audio of an AudioBridge participant: real Opus frames sent in turn instead of the
    /// synthetic payload (a mixer decodes them).
    pub opus: Option<Arc<Vec<Vec<u8>>>>,
    /// An AudioBridge participant: whether it talks (its packets carry that level, -dBov).
    pub talker: Option<bool>,
    /// A talker notes here when each of its bursts starts (its room's listeners time them).
    pub bursts: Option<Arc<std::sync::Mutex<Vec<Instant>>>>,
}

/// Frames of each second a talker says loudly: the onset of these bursts in a listener's
/// mix times the path through the mixer (mouth to ear).
pub const BURST_FRAMES: u64 = 5;

/// One second of a talker's 440 Hz tone (a loud burst of [`BURST_FRAMES`] frames, then quiet
/// talk: the talker never falls silent) or of a listener's silence, as Opus (48 kHz mono,
/// 20 ms frames), encoded once per run.
pub fn opus_frames(talker: bool) -> Arc<Vec<Vec<u8>>> {
    static TONE: OnceLock<Arc<Vec<Vec<u8>>>> = OnceLock::new();
    static SILENCE: OnceLock<Arc<Vec<Vec<u8>>>> = OnceLock::new();
    let cell = if talker { &TONE } else { &SILENCE };
    cell.get_or_init(|| {
        use audiopus::coder::Encoder;
        use audiopus::{Application, Channels, SampleRate};
        let mut frames = Vec::new();
        if let Ok(enc) = Encoder::new(SampleRate::Hz48000, Channels::Mono, Application::Voip) {
            for k in 0..50usize {
                let amplitude = match (talker, (k as u64) < BURST_FRAMES) {
                    (false, _) => 0.0,
                    (true, true) => 16000.0,
                    (true, false) => 1000.0,
                };
                let pcm: Vec<i16> = (k * 960..(k + 1) * 960)
                    .map(|i| {
                        let t = i as f64 / 48_000.0;
                        (amplitude * (2.0 * std::f64::consts::PI * 440.0 * t).sin()) as i16
                    })
                    .collect();
                let mut out = vec![0u8; 1500];
                if let Ok(n) = enc.encode(&pcm, &mut out) {
                    out.truncate(n);
                    frames.push(out);
                }
            }
        }
        Arc::new(frames)
    })
    .clone()
}

/// The audio level (-dBov) a frame of [`opus_frames`] is sent with, as a browser sets it.
pub fn frame_level(talker: bool, counter: u64) -> i8 {
    match (talker, counter % 50 < BURST_FRAMES) {
        (false, _) => -127,
        (true, true) => -6,
        (true, false) => -30,
    }
}

/// A listener timing the talker's bursts through the mix: it decodes what it gets and takes
/// the first loud frame after quiet ones as the burst's arrival.
pub struct EarProbe {
    decoder: audiopus::coder::Decoder,
    pcm: Vec<i16>,
    loud: bool,
    /// When the talker of the room started each burst.
    pub bursts: Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl EarProbe {
    pub fn new(bursts: Arc<std::sync::Mutex<Vec<Instant>>>) -> Option<EarProbe> {
        let decoder =
            audiopus::coder::Decoder::new(audiopus::SampleRate::Hz48000, audiopus::Channels::Mono)
                .ok()?;
        Some(EarProbe {
            decoder,
            pcm: vec![0; 5760],
            loud: false,
            bursts,
        })
    }

    /// A mixed packet arrived at `now`: the delay since its burst began, at a burst's onset.
    pub fn hear(&mut self, payload: &[u8], now: Instant) -> Option<Duration> {
        let packet = audiopus::packet::Packet::try_from(payload).ok()?;
        let signals = audiopus::MutSignals::try_from(&mut self.pcm[..]).ok()?;
        let n = self.decoder.decode(Some(packet), signals, false).ok()?;
        let frame = self.pcm.get(..n)?;
        let energy: f64 = frame.iter().map(|s| f64::from(*s).powi(2)).sum();
        let rms = (energy / n.max(1) as f64).sqrt();
        // Loud bursts are ~11,000 RMS, the quiet talk ~700: halfway in decibels.
        let loud = rms > 3000.0;
        let onset = loud && !self.loud;
        self.loud = loud;
        if !onset {
            return None;
        }
        let bursts = self.bursts.lock().unwrap_or_else(|e| e.into_inner());
        let sent = bursts.iter().rev().find(|t| **t <= now)?;
        let d = now.duration_since(*sent);
        (d < Duration::from_secs(1)).then_some(d)
    }
}

/// Counts a packet of an AudioBridge participant's mix (one is due every 20 ms): arrivals in
/// the measured window, and how far each gap between two arrivals is from 20 ms (kept in the
/// RTT samples: for a mixer they are the mix's arrival jitter, microseconds).
pub fn count_mix(
    now: Instant,
    sched: Option<crate::peer::Schedule>,
    last: &mut Option<Instant>,
    res: &mut PeerResult,
) {
    let c = &mut res.counts[0];
    c.echoed_total += 1;
    if let Some(s) = sched {
        if now >= s.measure_from && now < s.measure_to {
            c.echoed_measured += 1;
            if let Some(prev) = *last {
                let gap = now.duration_since(prev).as_micros() as i64;
                let dev = (gap - 20_000).unsigned_abs().min(u64::from(u32::MAX));
                if res.rtt_us.len() < MAX_RTT_SAMPLES {
                    res.rtt_us.push(dev as u32);
                }
            }
        }
    }
    *last = Some(now);
}

/// A VP8 keyframe's payload header (RFC 6386 §9.1), after a one-byte payload descriptor with
/// S=1, partition 0: key frame (bit 0 clear), version 0, shown, first partition size; the
/// start code; 640 × 480. Janus and jano both see a keyframe here (S bit, P bit clear).
const VP8_KEYFRAME: [u8; 11] = [
    0x10, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0xe0, 0x01,
];
/// An inter frame: descriptor S=1, partition 0; payload header with bit 0 (P) set.
const VP8_INTERFRAME: [u8; 4] = [0x10, 0x51, 0x02, 0x00];

/// Sends one packet; true if it was a VP8 keyframe.
pub fn send_one(
    rtc: &mut Rtc,
    t: &mut Track,
    kind: usize,
    index: u32,
    measured: bool,
    epoch: Instant,
    c: &mut Counts,
) -> bool {
    let mut p = vec![0u8; t.bytes];
    let mut key = false;
    if kind == 1 {
        // Every video packet is a whole (tiny) frame: a keyframe first, then every
        // KEYFRAME_EVERY and after a PLI/FIR; inter frames otherwise.
        let now = Instant::now();
        key = t.key_due || now >= t.next_key;
        if key {
            p[..VP8_KEYFRAME.len()].copy_from_slice(&VP8_KEYFRAME);
            t.key_due = false;
            t.next_key = now + KEYFRAME_EVERY;
        } else {
            p[..VP8_INTERFRAME.len()].copy_from_slice(&VP8_INTERFRAME);
        }
    } else if let Some(frames) = t.opus.as_ref().filter(|f| !f.is_empty()) {
        // An AudioBridge participant: a real Opus frame, no marker (the mix never echoes it).
        p = frames[(t.counter % frames.len() as u64) as usize].clone();
    } else {
        // Opus TOC: CELT fullband 20 ms, mono, one frame.
        p[0] = 0xF8;
    }
    if t.opus.is_none() || kind == 1 {
        p[PREFIX..PREFIX + 4].copy_from_slice(&MAGIC);
        p[PREFIX + 4..PREFIX + 8].copy_from_slice(&index.to_be_bytes());
        p[PREFIX + 8] = kind as u8;
        p[PREFIX + 9] = u8::from(measured);
        p[PREFIX + 12..PREFIX + 20].copy_from_slice(&t.counter.to_be_bytes());
        let sent_us = Instant::now().duration_since(epoch).as_micros() as u64;
        p[PREFIX + 20..PREFIX + 28].copy_from_slice(&sent_us.to_be_bytes());
    }

    let mut api = rtc.direct_api();
    let Some(stream) = api.stream_tx_by_mid(t.mid, None) else {
        c.send_errors += 1;
        return false;
    };
    let mut w = RtpWrite::new(
        t.pt.pt(),
        SeqNo::from(t.counter),
        t.rtp_ts,
        Instant::now(),
        p,
    )
    // Every video packet is a whole (tiny) frame.
    .marker(kind == 1);
    if let Some(talker) = t.talker {
        // As a browser does: the talker's level, or silence (127) with no voice activity.
        let level = frame_level(talker, t.counter);
        w = w.ext_vals(str0m::rtp::ExtensionValues {
            audio_level: Some(level),
            voice_activity: Some(level > -127),
            ..Default::default()
        });
        if talker && t.counter.is_multiple_of(50) {
            if let Some(b) = &t.bursts {
                let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
                // Only the latest ones are ever looked up.
                if b.len() > 64 {
                    b.drain(..32);
                }
                b.push(Instant::now());
            }
        }
    }
    stream.write_rtp(w);
    t.counter += 1;
    t.rtp_ts = t.rtp_ts.wrapping_add(t.ts_step);
    c.sent += 1;
    if measured {
        c.sent_measured += 1;
    }
    key
}

/// Counts a packet that came back (`forwarded`: a subscriber counting the publisher's packets,
/// whose counters it cannot check against its own).
pub fn count_echo(
    payload: &[u8],
    index: u32,
    forwarded: bool,
    tracks: &mut [Track; 2],
    res: &mut PeerResult,
    epoch: Instant,
) {
    let ok = payload.len() >= MIN_PAYLOAD
        && payload[PREFIX..PREFIX + 4] == MAGIC
        && payload[PREFIX + 4..PREFIX + 8] == index.to_be_bytes();
    let kind = payload.get(PREFIX + 8).copied().unwrap_or(9) as usize;
    if !ok || kind > 1 {
        res.foreign += 1;
        return;
    }
    let num = |r: std::ops::Range<usize>| -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&payload[r]);
        u64::from_be_bytes(b)
    };
    let counter = num(PREFIX + 12..PREFIX + 20);
    let sent_us = num(PREFIX + 20..PREFIX + 28);
    let measured = payload[PREFIX + 9] == 1;
    let t = &mut tracks[kind];
    let c = &mut res.counts[kind];
    if !forwarded && counter >= t.counter {
        // Claims a packet we never sent.
        res.foreign += 1;
        return;
    }
    c.echoed_total += 1;
    if !t.seen.insert(counter) {
        c.duplicates += 1;
        return;
    }
    if measured {
        c.echoed_measured += 1;
        if res.rtt_us.len() < MAX_RTT_SAMPLES {
            let now_us = Instant::now().duration_since(epoch).as_micros() as u64;
            let rtt = now_us.saturating_sub(sent_us).min(u64::from(u32::MAX));
            res.rtt_us.push(rtt as u32);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_frames_are_what_the_servers_see() {
        // What jano (jano_plugin::rtp::vp8_keyframe) and Janus (janus_vp8_is_keyframe) check:
        // descriptor without X, with S and partition 0; then the payload header's P bit.
        let key = |p: &[u8]| p[0] & 0x80 == 0 && p[0] & 0x17 == 0x10 && p[1] & 0x01 == 0;
        assert!(key(&VP8_KEYFRAME));
        assert!(!key(&VP8_INTERFRAME));
        assert!(VP8_INTERFRAME[0] & 0x17 == 0x10);
        assert_eq!(&VP8_KEYFRAME[4..7], &[0x9d, 0x01, 0x2a]);
        assert!(VP8_KEYFRAME.len() <= PREFIX && VP8_INTERFRAME.len() <= PREFIX);
    }

    #[test]
    fn seen_counts_once() {
        let mut s = Seen::default();
        assert!(s.insert(5));
        assert!(!s.insert(5));
        assert!(s.insert(1000));
        assert!(s.insert(0));
    }
}
