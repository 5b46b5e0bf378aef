//! What the engine rewrites per destination on a relayed packet: sequence numbers and
//! timestamps kept continuous for that peer whatever the source does (a simulcast layer
//! switch, another publisher on the same m-line, a pause), and starting low enough that the
//! peer's SRTP rollover counter starts at 0 however far the source's own sequence numbers
//! have gone; and VP8's picture IDs continuous across such a switch.

use std::time::Instant;

/// One outgoing stream's continuity. Sources are told apart by SSRC and by the epoch the
/// plugin gives a destination ([`jano_plugin::Dest::epoch`]).
#[derive(Debug, Clone)]
pub(crate) struct SeqTs {
    source: Option<(u32, u32)>,
    seq_off: i64,
    ts_off: u32,
    last_seq: u64,
    last_ts: u32,
    last_at: Option<Instant>,
    start: u64,
}

impl SeqTs {
    /// `seed` picks the first outgoing sequence number (kept below 2^15, so even a reordered
    /// first packet cannot go below zero and the rollover counter starts at 0).
    pub fn new(seed: u64) -> SeqTs {
        SeqTs {
            source: None,
            seq_off: 0,
            ts_off: 0,
            last_seq: 0,
            last_ts: 0,
            last_at: None,
            start: 1000 + seed % 0x6000,
        }
    }

    /// A packet of `source` deliberately not sent (a temporal layer above the destination's
    /// cap): the ones after it move down by one, so the receiver sees no loss.
    pub fn skip(&mut self, source: (u32, u32)) {
        if self.source == Some(source) {
            self.seq_off -= 1;
        }
    }

    /// The outgoing (extended sequence number, timestamp) of a packet of `source` (SSRC,
    /// epoch); `clock` is the codec's RTP clock rate, used to advance time across a switch.
    pub fn map(
        &mut self,
        source: (u32, u32),
        seq: u64,
        ts: u32,
        clock: u32,
        now: Instant,
    ) -> (u64, u32) {
        if self.source != Some(source) {
            match self.last_at {
                None => {
                    self.seq_off = self.start as i64 - seq as i64;
                    self.ts_off = 0;
                }
                Some(at) => {
                    self.seq_off = self.last_seq as i64 + 1 - seq as i64;
                    // The new source continues from where the old one stopped, plus the time
                    // that passed, so the receiver's jitter buffer sees neither a jump nor a
                    // step back.
                    let elapsed_us = now.saturating_duration_since(at).as_micros() as u64;
                    let step = (elapsed_us.saturating_mul(u64::from(clock)) / 1_000_000).max(1);
                    self.ts_off = self.last_ts.wrapping_add(step as u32).wrapping_sub(ts);
                }
            }
            self.source = Some(source);
        }
        let out = (seq as i64).saturating_add(self.seq_off).max(0) as u64;
        let out_ts = ts.wrapping_add(self.ts_off);
        if self.last_at.is_none() || out > self.last_seq {
            self.last_seq = out;
            self.last_ts = out_ts;
            self.last_at = Some(now);
        }
        (out, out_ts)
    }
}

/// VP8's picture ID and TL0PICIDX kept continuous per destination across source changes.
/// Each simulcast layer (and each publisher) numbers its pictures itself; a receiver that sees
/// the picture ID jump back after a switch takes the frames after the keyframe for stale ones
/// and freezes until the next keyframe. The bytes are patched as str0m writes the packet, so
/// the shared payload is never copied.
#[derive(Debug, Clone, Default)]
pub(crate) struct Vp8Ids {
    source: Option<(u32, u32)>,
    pid_off: u16,
    tl0_off: u8,
    /// The newest picture ID / TL0PICIDX sent (15-bit space), what a new source continues.
    last_pid: Option<u16>,
    last_tl0: Option<u8>,
}

/// Whether 15-bit picture ID `a` comes after `b`.
fn pid_ahead(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b) & 0x7fff;
    d != 0 && d < 0x4000
}

impl Vp8Ids {
    /// The (picture ID, TL0PICIDX) a packet of `source` goes out with, given its own; `None`
    /// where the packet has no such field. Offsets are set on the first packet of a source.
    pub fn map(
        &mut self,
        source: (u32, u32),
        pid: Option<u16>,
        tl0: Option<u8>,
    ) -> (Option<u16>, Option<u8>) {
        if self.source != Some(source) {
            self.source = Some(source);
            self.pid_off = match (self.last_pid, pid) {
                (Some(last), Some(p)) => last.wrapping_add(1).wrapping_sub(p) & 0x7fff,
                _ => 0,
            };
            self.tl0_off = match (self.last_tl0, tl0) {
                (Some(last), Some(t)) => last.wrapping_add(1).wrapping_sub(t),
                _ => 0,
            };
        }
        let out_pid = pid.map(|p| p.wrapping_add(self.pid_off) & 0x7fff);
        let out_tl0 = tl0.map(|t| t.wrapping_add(self.tl0_off));
        if let Some(p) = out_pid {
            if self.last_pid.is_none_or(|l| pid_ahead(p, l)) {
                self.last_pid = Some(p);
                self.last_tl0 = out_tl0.or(self.last_tl0);
            }
        }
        (out_pid, out_tl0)
    }

    /// Whether the current source's numbers go out unchanged.
    pub fn unchanged(&self) -> bool {
        self.pid_off == 0 && self.tl0_off == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn late_joiner_starts_with_rollover_zero() {
        let mut r = SeqTs::new(7);
        let t0 = Instant::now();
        // The source is far past one rollover (70,000 packets).
        let (s0, _) = r.map((1, 0), 70_000, 1_000, 90_000, t0);
        assert!(s0 < 0x8000, "starts low: {s0}");
        let (s1, _) = r.map((1, 0), 70_001, 4_000, 90_000, t0);
        assert_eq!(s1, s0 + 1);
        // A reordered packet just before the first stays positive and ordered.
        let (s, _) = r.map((1, 0), 69_999, 0, 90_000, t0);
        assert_eq!(s, s0 - 1);
    }

    #[test]
    fn source_switch_is_continuous() {
        let mut r = SeqTs::new(0);
        let t0 = Instant::now();
        let mut last = 0;
        let mut last_ts = 0;
        for i in 0..10u64 {
            let (s, ts) = r.map((1, 0), 500 + i, 3000 * i as u32, 90_000, t0);
            last = s;
            last_ts = ts;
        }
        // Another SSRC with unrelated numbers, 33 ms later.
        let (s, ts) = r.map(
            (2, 0),
            40_000,
            123_456,
            90_000,
            t0 + Duration::from_millis(33),
        );
        assert_eq!(s, last + 1);
        assert_eq!(ts, last_ts + 2970);
        let (s2, ts2) = r.map((2, 0), 40_001, 126_456, 90_000, t0);
        assert_eq!((s2, ts2), (s + 1, ts + 3000));
        // Same SSRC, new epoch (resumed after a pause): continuous too.
        let (s3, _) = r.map((2, 1), 50_000, 0, 90_000, t0 + Duration::from_secs(2));
        assert_eq!(s3, s2 + 1);
    }

    #[test]
    fn sequence_wraps_into_next_rollover() {
        let mut r = SeqTs::new(0x5fff);
        let t0 = Instant::now();
        let (first, _) = r.map((9, 0), 0, 0, 48_000, t0);
        let n = 0x10000 - first + 5;
        let (s, _) = r.map((9, 0), n, 0, 48_000, t0);
        assert_eq!(s, 0x10005, "extended numbers go on past 65535");
    }

    #[test]
    fn vp8_picture_ids_continue_across_a_switch() {
        let mut v = Vp8Ids::default();
        // Layer A: pictures 30000.. (wrapping past 32767), TL0PICIDX 250..
        let mut last = (0, 0);
        for i in 0..5u16 {
            let (p, t) = v.map(
                (1, 0),
                Some((32_765 + i) & 0x7fff),
                Some(250u8.wrapping_add(i as u8)),
            );
            last = (p.expect("pid"), t.expect("tl0"));
        }
        assert!(v.unchanged());
        assert_eq!(last, (1, 254));
        // Layer B numbers from 100: it continues right after A's last.
        let (p, t) = v.map((2, 0), Some(100), Some(7));
        assert_eq!((p, t), (Some(2), Some(255)));
        assert!(!v.unchanged());
        assert_eq!(v.map((2, 0), Some(101), Some(8)), (Some(3), Some(0)));
        // A reordered older packet keeps its place and does not move `last` back.
        assert_eq!(v.map((2, 0), Some(100), Some(7)), (Some(2), Some(255)));
        let (p, _) = v.map((3, 0), Some(9), None);
        assert_eq!(p, Some(4));
        // No picture ID: nothing to continue.
        assert_eq!(v.map((3, 0), None, None), (None, None));
    }

    #[test]
    fn skipped_packets_leave_no_gap() {
        let mut r = SeqTs::new(0);
        let t0 = Instant::now();
        let (s0, _) = r.map((1, 0), 10, 0, 90_000, t0);
        r.skip((1, 0)); // 11 is not sent
        let (s1, _) = r.map((1, 0), 12, 0, 90_000, t0);
        assert_eq!(s1, s0 + 1);
        // A skip before a source's first packet changes nothing.
        r.skip((2, 0));
        let (s2, _) = r.map((2, 0), 500, 0, 90_000, t0);
        assert_eq!(s2, s1 + 1);
    }
}
