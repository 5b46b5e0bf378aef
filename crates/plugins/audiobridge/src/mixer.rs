//! The mixing pool: a fixed number of threads (one per core by default), each ticking every
//! 20 ms for the rooms it was given — never a thread per room or per participant. A tick
//! takes one packet from each participant's jitter buffer, decodes, sums, and encodes what
//! each listener hears: the mix minus its own voice for those who spoke, the whole mix for
//! everyone else, encoded once per distinct encoder setting and shared.
//!
//! Each thread measures how late its ticks start (the tick jitter the issue asks to report).

use crate::codec::{Codec, Encoder};
use crate::mix;
use crate::participant::Media;
use crate::room::{MixState, Room};
use crate::wav::WavRecorder;
use jano_plugin::{CoreServices, MediaKind, RtpPacket};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

const TICK: Duration = Duration::from_millis(20);
/// Samples below this magnitude are inaudible (-66 dBFS).
const SILENCE: u16 = 16;
/// How often an idle mixing thread looks for a room that got participants.
const IDLE_CHECK: Duration = Duration::from_millis(100);

/// How late ticks started, in buckets (µs upper bounds), and the worst.
#[derive(Debug, Default)]
pub struct TickStats {
    pub ticks: AtomicU64,
    /// < 0.5 ms, < 1 ms, < 2 ms, < 5 ms, < 10 ms, ≥ 10 ms.
    pub late: [AtomicU64; 6],
    pub max_late_us: AtomicU64,
    /// Ticks skipped because the thread fell more than a few ticks behind.
    pub skipped: AtomicU64,
}

impl TickStats {
    fn record(&self, late: Duration) {
        let us = u64::try_from(late.as_micros()).unwrap_or(u64::MAX);
        let i = match us {
            0..500 => 0,
            500..1000 => 1,
            1000..2000 => 2,
            2000..5000 => 3,
            5000..10000 => 4,
            _ => 5,
        };
        self.ticks.fetch_add(1, Ordering::Relaxed);
        if let Some(b) = self.late.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.max_late_us.fetch_max(us, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> serde_json::Value {
        let l: Vec<u64> = self
            .late
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        serde_json::json!({
            "ticks": self.ticks.load(Ordering::Relaxed),
            "late_us_buckets": {"<500": l.first(), "<1000": l.get(1), "<2000": l.get(2),
                "<5000": l.get(3), "<10000": l.get(4), ">=10000": l.get(5)},
            "max_late_us": self.max_late_us.load(Ordering::Relaxed),
            "skipped": self.skipped.load(Ordering::Relaxed),
        })
    }
}

struct Lane {
    rooms: Mutex<Vec<Weak<Room>>>,
    wake: Condvar,
    stats: TickStats,
}

pub struct MixerPool {
    lanes: Vec<Arc<Lane>>,
    stop: Arc<AtomicBool>,
}

impl MixerPool {
    /// Starts `threads` mixing threads (at least one).
    pub fn new(threads: usize, services: Arc<dyn CoreServices>) -> MixerPool {
        let stop = Arc::new(AtomicBool::new(false));
        let mut lanes = Vec::new();
        for i in 0..threads.max(1) {
            let lane = Arc::new(Lane {
                rooms: Mutex::new(Vec::new()),
                wake: Condvar::new(),
                stats: TickStats::default(),
            });
            let (l, s, sv) = (lane.clone(), stop.clone(), services.clone());
            let spawned = std::thread::Builder::new()
                .name(format!("ab-mixer-{i}"))
                .spawn(move || run(&l, &s, &*sv));
            if let Err(e) = spawned {
                tracing::error!("audiobridge: cannot start a mixing thread: {e}");
                continue;
            }
            lanes.push(lane);
        }
        MixerPool { lanes, stop }
    }

    /// Gives a room to the thread with the fewest participants to mix.
    pub fn add(&self, room: &Arc<Room>) {
        let load = |l: &Lane| -> usize {
            l.rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter_map(Weak::upgrade)
                .map(|r| r.mixing().len() + 1)
                .sum()
        };
        let Some(lane) = self.lanes.iter().min_by_key(|l| load(l)) else {
            return;
        };
        lane.rooms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(room));
        lane.wake.notify_one();
    }

    /// Wakes the idle threads (a room got something to mix).
    pub fn wake(&self) {
        for l in &self.lanes {
            l.wake.notify_all();
        }
    }

    pub fn stats(&self) -> serde_json::Value {
        serde_json::Value::Array(self.lanes.iter().map(|l| l.stats.to_json()).collect())
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        for l in &self.lanes {
            l.wake.notify_all();
        }
    }
}

impl Drop for MixerPool {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(lane: &Lane, stop: &AtomicBool, services: &dyn CoreServices) {
    let mut next = Instant::now();
    let mut scratch = Scratch::default();
    loop {
        let rooms: Vec<Arc<Room>> = {
            let mut list = lane.rooms.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if stop.load(Ordering::Acquire) {
                    return;
                }
                list.retain(|w| w.upgrade().is_some_and(|r| !r.is_destroyed()));
                let busy = list.iter().filter_map(Weak::upgrade).any(|r| r.busy());
                if busy {
                    break;
                }
                // Nothing to mix: no ticks (rooms without participants cost nothing), a look
                // every 100 ms for a first participant, or a wake-up for a new room.
                list = if list.is_empty() {
                    lane.wake.wait(list).unwrap_or_else(|e| e.into_inner())
                } else {
                    lane.wake
                        .wait_timeout(list, IDLE_CHECK)
                        .map(|(l, _)| l)
                        .unwrap_or_else(|e| e.into_inner().0)
                };
                // Idle until now: the schedule restarts.
                next = Instant::now();
            }
            list.iter().filter_map(Weak::upgrade).collect()
        };
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        let started = Instant::now();
        lane.stats.record(started.saturating_duration_since(next));
        for r in &rooms {
            tick(r, services, &mut scratch);
        }
        next += TICK;
        // Far behind (a stalled machine): skip ahead instead of bursting to catch up.
        let after = Instant::now();
        if after > next + 5 * TICK {
            let behind = after.duration_since(next).as_millis() / TICK.as_millis();
            lane.stats
                .skipped
                .fetch_add(u64::try_from(behind).unwrap_or(u64::MAX), Ordering::Relaxed);
            next = after;
        }
    }
}

/// Buffers a thread reuses across rooms and ticks.
#[derive(Default)]
pub(crate) struct Scratch {
    total: Vec<i32>,
    /// Each group's part of the mix (for the groups' forwarders).
    groups: Vec<Vec<i32>>,
    out: Vec<i16>,
    /// One announcement's frame.
    file: Vec<i16>,
    encoded: Vec<u8>,
    rtp: Vec<u8>,
}

/// One room's 20 ms.
pub(crate) fn tick(room: &Room, services: &dyn CoreServices, scratch: &mut Scratch) {
    let (rate, stereo, record, groups) = {
        let st = room.state();
        (
            st.cfg.sampling_rate,
            st.cfg.spatial_audio,
            st.cfg.record,
            st.cfg.groups.len(),
        )
    };
    let frame = (rate / 50) as usize;
    let channels = if stereo { 2 } else { 1 };
    let parts = room.mixing();
    scratch.total.clear();
    scratch.total.resize(frame * channels, 0);
    scratch.groups.resize_with(groups, Vec::new);
    for g in scratch.groups.iter_mut() {
        g.clear();
        g.resize(frame * channels, 0);
    }
    // Decode and sum.
    for p in parts.iter() {
        let mut m = p.media();
        contribute(&mut m, &mut scratch.total, &mut scratch.groups, stereo);
    }
    let mut mix = room.mix_state();
    mix.ticks += 1;
    let seq = mix.ticks;
    let events = play_files(
        room,
        &mut mix,
        &mut scratch.total,
        &mut scratch.file,
        frame,
        stereo,
    );
    record_mix(
        room,
        &mut mix,
        record,
        &scratch.total,
        &mut scratch.out,
        rate,
        channels,
    );
    {
        let mut mixes: Vec<&[i32]> = vec![&scratch.total];
        mixes.extend(scratch.groups.iter().map(Vec::as_slice));
        // Nobody in the room and no file: only `always_on` forwarders still get the mix.
        let idle = parts.is_empty() && mix.announcements.is_empty();
        crate::forward::send(
            &mut mix,
            &mixes,
            rate,
            stereo,
            idle,
            &mut scratch.out,
            &mut scratch.rtp,
        );
    }
    // The whole mix, encoded once per setting, for the listeners who did not speak.
    let mut shared: HashMap<crate::codec::EncoderSettings, Arc<[u8]>> = HashMap::new();
    for p in parts.iter() {
        let mut m = p.media();
        if !m.params.listening {
            continue;
        }
        let settings = m.params.encoder;
        let payload: Option<Arc<[u8]>> = if m.contributed {
            scratch.out.resize(frame * channels, 0);
            let Media {
                contribution,
                encoder,
                ..
            } = &mut *m;
            mix::listener_mix(&scratch.total, Some(contribution), &mut scratch.out);
            if scratch.out.iter().all(|s| *s == 0) {
                // Nobody else is heard: the speaker gets silence, encoded once for the room.
                silence_packet(&mut mix, settings, rate, scratch.out.len())
            } else {
                if encoder.is_none() {
                    *encoder = Encoder::new(settings, rate).ok();
                }
                encoder
                    .as_mut()
                    .and_then(|e| e.encode(&scratch.out, &mut scratch.encoded))
                    .map(|_| Arc::from(scratch.encoded.as_slice()))
            }
        } else if let Some(p) = shared.get(&settings) {
            Some(p.clone())
        } else if scratch.total.iter().all(|s| *s == 0) {
            // Nobody talks and nothing plays: no encoder needs to run.
            let out = silence_packet(&mut mix, settings, rate, frame * channels);
            if let Some(o) = &out {
                shared.insert(settings, o.clone());
            }
            out
        } else {
            scratch.out.resize(frame * channels, 0);
            mix::listener_mix(&scratch.total, None, &mut scratch.out);
            if let std::collections::hash_map::Entry::Vacant(slot) = mix.shared.entry(settings) {
                if let Ok(e) = Encoder::new(settings, rate) {
                    slot.insert(e);
                }
            }
            let out = mix
                .shared
                .get_mut(&settings)
                .and_then(|e| e.encode(&scratch.out, &mut scratch.encoded))
                .map(|_| Arc::<[u8]>::from(scratch.encoded.as_slice()));
            if let Some(o) = &out {
                shared.insert(settings, o.clone());
            }
            out
        };
        let Some(payload) = payload else {
            continue;
        };
        let codec = settings.codec;
        let packet = RtpPacket {
            mindex: m.mindex,
            kind: MediaKind::Audio,
            pt: match codec {
                Codec::Opus => 111,
                Codec::Pcmu => 0,
                Codec::Pcma => 8,
            },
            codec: codec.name(),
            seq,
            timestamp: (seq.wrapping_mul(u64::from(codec.clock_rate() / 50))) as u32,
            marker: false,
            ssrc: room.ssrc,
            substream: None,
            ext: Default::default(),
            payload,
            svc: None,
        };
        match m.plain.as_mut() {
            // A plain-RTP participant: straight to its address, with its payload type.
            Some(out) => {
                if out.peer.is_some() {
                    jano_plugin::udp::serialize_rtp(&packet, None, Some(out.pt), &mut scratch.rtp);
                    // The socket is connected to the participant's address.
                    match out.socket.send(&scratch.rtp) {
                        Ok(_) => out.sent += 1,
                        Err(_) => out.dropped += 1,
                    }
                }
            }
            None => {
                drop(m);
                services.relay_rtp(&p.href, &packet);
            }
        }
    }
    drop(mix);
    for (what, file_id) in events {
        let mut ev = jano_plugin::Map::new();
        ev.insert("audiobridge".into(), serde_json::json!(what));
        ev.insert("room".into(), room.id_json());
        ev.insert("file_id".into(), serde_json::json!(file_id));
        room.notify(services, None, &ev);
    }
}

/// A frame of digital silence in `settings`, encoded once per room and sent as often as needed
/// (a listener of a silent room, or a speaker nobody answers, costs no encode). Taken from a
/// fresh encoder's third frame, past its start-up.
fn silence_packet(
    mix: &mut MixState,
    settings: crate::codec::EncoderSettings,
    rate: u32,
    samples: usize,
) -> Option<Arc<[u8]>> {
    if let Some(p) = mix.silence.get(&settings) {
        return Some(p.clone());
    }
    let mut enc = Encoder::new(settings, rate).ok()?;
    let zeros = vec![0i16; samples];
    let mut out = Vec::new();
    for _ in 0..3 {
        enc.encode(&zeros, &mut out)?;
    }
    let p: Arc<[u8]> = Arc::from(out);
    mix.silence.insert(settings, p.clone());
    Some(p)
}

/// Mixes this tick's frame of every file playing; the announcements that started or ended.
fn play_files(
    room: &Room,
    mix: &mut MixState,
    total: &mut [i32],
    pcm: &mut Vec<i16>,
    frame: usize,
    stereo: bool,
) -> Vec<(&'static str, String)> {
    let mut events = Vec::new();
    if mix.announcements.is_empty() {
        return events;
    }
    pcm.resize(frame, 0);
    mix.announcements.retain_mut(|a| {
        if !a.next_frame(pcm) {
            if a.started {
                events.push(("announcement-stopped", a.file_id.clone()));
            }
            return false;
        }
        if !a.started {
            a.started = true;
            events.push(("announcement-started", a.file_id.clone()));
        }
        // Files play at full volume, in the middle (no placement), as in Janus.
        if stereo {
            for (pair, s) in total.chunks_exact_mut(2).zip(pcm.iter()) {
                for t in pair {
                    *t += i32::from(*s);
                }
            }
        } else {
            mix::accumulate(total, pcm);
        }
        true
    });
    room.announcing
        .store(mix.announcements.len(), Ordering::Release);
    events
}

/// Hands the whole mix to the room's WAV recorder (started or stopped as `record` says).
fn record_mix(
    room: &Room,
    mix: &mut MixState,
    record: bool,
    total: &[i32],
    out: &mut Vec<i16>,
    rate: u32,
    channels: usize,
) {
    if !record {
        mix.recorder = None;
        return;
    }
    if mix.recorder.is_none() && !mix.record_failed {
        let (dir, file) = {
            let st = room.state();
            (st.cfg.record_dir.clone(), st.cfg.record_file.clone())
        };
        let name = file.unwrap_or_else(|| {
            let us = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0);
            format!("janus-audioroom-{}-{us}.wav", room.id)
        });
        let path = match dir {
            Some(d) => std::path::Path::new(&d).join(name),
            None => std::path::PathBuf::from(name),
        };
        match WavRecorder::start(path.clone(), None, rate, channels as u16) {
            Ok(r) => mix.recorder = Some(r),
            Err(e) => {
                tracing::warn!("audiobridge: cannot record to {}: {e}", path.display());
                mix.record_failed = true;
            }
        }
    }
    if let Some(r) = &mix.recorder {
        out.resize(total.len(), 0);
        mix::listener_mix(total, None, out);
        r.push(out);
    }
}

/// Takes the participant's packet for this tick, decodes it and adds it to the sum.
fn contribute(m: &mut Media, total: &mut [i32], groups: &mut [Vec<i32>], stereo: bool) {
    m.contributed = false;
    let take = m.jitter.take();
    let Media {
        jitter: _,
        decoder,
        pcm,
        contribution,
        params,
        ..
    } = m;
    let audio = match take {
        // Marked as silence by its sender: nothing to mix, so nothing to decode either (the
        // decoder takes the next spoken packet as it takes one after a gap).
        crate::jitter::Take::Frame(_, true) => false,
        crate::jitter::Take::Frame(p, false) => decoder.decode(Some(&p), false, pcm),
        crate::jitter::Take::Fec(p) => decoder.decode(Some(&p), true, pcm),
        crate::jitter::Take::Lost => decoder.decode(None, false, pcm),
        crate::jitter::Take::Nothing => false,
    };
    if !audio || params.silent {
        return;
    }
    // A frame with nothing audible in it (below -66 dBFS) adds nothing to the mix: leaving
    // it out lets its sender share the listeners' encode instead of needing its own.
    if pcm.iter().all(|s| s.unsigned_abs() < SILENCE) {
        return;
    }
    mix::apply_volume(pcm, params.volume);
    contribution.iter_mut().for_each(|c| *c = 0);
    if stereo {
        mix::accumulate_spatial(contribution, pcm, params.spatial_position);
    } else {
        mix::accumulate(contribution, pcm);
    }
    for (t, c) in total.iter_mut().zip(contribution.iter()) {
        *t += *c;
    }
    if let Some(g) = params.group.and_then(|g| groups.get_mut(g)) {
        for (t, c) in g.iter_mut().zip(contribution.iter()) {
            *t += *c;
        }
    }
    m.contributed = true;
}
