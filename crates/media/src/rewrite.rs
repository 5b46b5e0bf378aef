//! What the engine rewrites per destination on a relayed packet: sequence numbers and
//! timestamps kept continuous for that peer whatever the source does (a simulcast layer
//! switch, another publisher on the same m-line, a pause), and starting low enough that the
//! peer's SRTP rollover counter starts at 0 however far the source's own sequence numbers
//! have gone.

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
}
