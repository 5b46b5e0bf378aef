//! Talk detection from the `ssrc-audio-level` extension, as Janus's room plugins do it: the
//! levels (-dBov, 0 loudest) of every `packets` packets are averaged, and an average below
//! `average` means talking. VideoRoom and AudioBridge raise `talking`/`stopped-talking` on the
//! changes.

/// The thresholds (a room's `audio_active_packets` and `audio_level_average`, or a
/// participant's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkCfg {
    pub packets: u64,
    pub average: u64,
}

/// One sender's running window.
#[derive(Debug, Default, Clone)]
pub struct TalkDetector {
    packets: u64,
    sum: u64,
    talking: bool,
}

impl TalkDetector {
    pub fn talking(&self) -> bool {
        self.talking
    }

    /// Counts one packet's level; at the end of a window whose verdict differs from the last
    /// one, the new state and the window's average level.
    pub fn feed(&mut self, level: i8, cfg: TalkCfg) -> Option<(bool, f64)> {
        self.packets += 1;
        self.sum += u64::from(level.unsigned_abs());
        if self.packets < cfg.packets.max(1) {
            return None;
        }
        let avg = self.sum as f64 / self.packets as f64;
        self.packets = 0;
        self.sum = 0;
        let talking = avg < cfg.average as f64;
        (talking != self.talking).then(|| {
            self.talking = talking;
            (talking, avg)
        })
    }

    /// Forgets the window and the state (a sender that stopped).
    pub fn reset(&mut self) {
        *self = TalkDetector::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_average_decides() {
        let cfg = TalkCfg {
            packets: 4,
            average: 25,
        };
        let mut t = TalkDetector::default();
        assert_eq!(t.feed(10, cfg), None);
        assert_eq!(t.feed(10, cfg), None);
        assert_eq!(t.feed(10, cfg), None);
        assert_eq!(t.feed(30, cfg), Some((true, 15.0)));
        // Same verdict: no change reported.
        for _ in 0..4 {
            assert_eq!(t.feed(0, cfg), None);
        }
        for _ in 0..3 {
            assert_eq!(t.feed(127, cfg), None);
        }
        assert_eq!(t.feed(127, cfg), Some((false, 127.0)));
        assert!(!t.talking());
    }
}
