//! A participant's jitter buffer: RTP payloads ordered by (extended) sequence number, played
//! out one per mixer tick once more than `prebuffer` packets are queued (as Janus counts). A
//! missing packet is recovered from the next one's in-band FEC when that one is already here,
//! else concealed (PLC); a sender that stops (DTX, network) is concealed for a few ticks, then
//! the buffer goes back to prebuffering, so it rebuilds its cushion when the sender resumes.
//! The queue is bounded as in Janus: at twice `prebuffer` packets the oldest are dropped down
//! to `prebuffer`, so a burst can never build up delay.

use std::collections::BTreeMap;
use std::sync::Arc;

/// Ticks concealed before a silent sender is considered stopped.
const CONCEAL_TICKS: u32 = 5;
/// The most packets a participant may ask to prebuffer (Janus's `MAX_PREBUFFERING`).
const MAX_QUEUE: usize = 50;

/// What a tick gets from the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Take {
    /// The expected packet, and whether its sender marked it as silence (audio level 127).
    Frame(Arc<[u8]>, bool),
    /// The expected packet is missing; the next one is here: decode its FEC data.
    Fec(Arc<[u8]>),
    /// The expected packet is missing: conceal it.
    Lost,
    /// Nothing to play (prebuffering, or the sender stopped).
    Nothing,
}

#[derive(Debug)]
pub struct Jitter {
    queue: BTreeMap<u64, (Arc<[u8]>, bool)>,
    next: Option<u64>,
    prebuffer: usize,
    max: usize,
    misses: u32,
    /// Packets dropped for arriving too late or overflowing the buffer.
    pub dropped: u64,
}

impl Jitter {
    pub fn new(prebuffer: usize) -> Jitter {
        let mut j = Jitter {
            queue: BTreeMap::new(),
            next: None,
            prebuffer: 0,
            max: 0,
            misses: 0,
            dropped: 0,
        };
        j.set_prebuffer(prebuffer);
        j
    }

    /// A larger prebuffer than before starts buffering again; a smaller one trims the queue.
    pub fn set_prebuffer(&mut self, prebuffer: usize) {
        if prebuffer > self.prebuffer {
            self.next = None;
        }
        self.prebuffer = prebuffer;
        // Janus's 2× rule, with room for two packets in flight (it drops everything with a
        // prebuffer of 0).
        self.max = (2 * prebuffer).max(prebuffer + 2);
        self.trim();
    }

    /// While playing, a queue at `max` goes back down to `prebuffer` packets. While
    /// prebuffering the queue only grows to just past `prebuffer` before the next tick plays
    /// it; the hard cap is for a buffer nobody takes from.
    fn trim(&mut self) {
        let limit = if self.next.is_some() {
            self.max
        } else {
            self.max.max(2 * MAX_QUEUE)
        };
        if self.queue.len() < limit {
            return;
        }
        while self.queue.len() > self.prebuffer.max(1) {
            if let Some((s, _)) = self.queue.pop_first() {
                self.dropped += 1;
                if let Some(n) = self.next.as_mut() {
                    *n = (*n).max(s + 1);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Whether packets are being played out (not prebuffering).
    pub fn playing(&self) -> bool {
        self.next.is_some()
    }

    pub fn push(&mut self, seq: u64, payload: Arc<[u8]>) {
        self.push_marked(seq, payload, false);
    }

    /// A packet its sender marked as silence: decoded (the decoder keeps its state) but left
    /// out of the mix, as Janus does.
    pub fn push_marked(&mut self, seq: u64, payload: Arc<[u8]>, silent: bool) {
        if self.next.is_some_and(|n| seq < n) {
            self.dropped += 1;
            return;
        }
        self.queue.insert(seq, (payload, silent));
        self.trim();
    }

    /// Forgets everything (a new stream, a decoder reset).
    pub fn reset(&mut self) {
        self.queue.clear();
        self.next = None;
        self.misses = 0;
    }

    /// The packet for this tick.
    pub fn take(&mut self) -> Take {
        let next = match self.next {
            Some(n) => n,
            None => {
                if self.queue.len() <= self.prebuffer {
                    return Take::Nothing;
                }
                match self.queue.first_key_value() {
                    Some((&s, _)) => s,
                    None => return Take::Nothing,
                }
            }
        };
        if let Some((p, silent)) = self.queue.remove(&next) {
            self.next = Some(next + 1);
            self.misses = 0;
            return Take::Frame(p, silent);
        }
        if self.queue.is_empty() {
            self.misses += 1;
            if self.misses > CONCEAL_TICKS {
                self.next = None;
                self.misses = 0;
                return Take::Nothing;
            }
            self.next = Some(next + 1);
            return Take::Lost;
        }
        self.next = Some(next + 1);
        match self.queue.get(&(next + 1)) {
            Some((p, _)) => Take::Fec(p.clone()),
            None => Take::Lost,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(b: u8) -> Arc<[u8]> {
        Arc::from(vec![b])
    }

    #[test]
    fn prebuffers_then_plays_in_order() {
        let mut j = Jitter::new(2);
        j.push(11, p(11));
        j.push(10, p(10));
        assert_eq!(j.take(), Take::Nothing);
        j.push(12, p(12));
        assert_eq!(j.take(), Take::Frame(p(10), false));
        assert_eq!(j.take(), Take::Frame(p(11), false));
        // Late: already played past it.
        j.push(10, p(10));
        assert_eq!(j.dropped, 1);
        assert_eq!(j.take(), Take::Frame(p(12), false));
    }

    #[test]
    fn gap_uses_fec_of_the_next_packet_then_conceals() {
        let mut j = Jitter::new(1);
        j.push(1, p(1));
        j.push(2, p(2));
        assert_eq!(j.take(), Take::Frame(p(1), false));
        assert_eq!(j.take(), Take::Frame(p(2), false));
        j.push(4, p(4));
        j.push(7, p(7));
        assert_eq!(j.take(), Take::Fec(p(4)));
        assert_eq!(j.take(), Take::Frame(p(4), false));
        assert_eq!(j.take(), Take::Lost);
        assert_eq!(j.take(), Take::Fec(p(7)));
        assert_eq!(j.take(), Take::Frame(p(7), false));
    }

    #[test]
    fn a_stopped_sender_is_concealed_briefly_then_rebuffers() {
        let mut j = Jitter::new(1);
        j.push(1, p(1));
        j.push(2, p(2));
        assert_eq!(j.take(), Take::Frame(p(1), false));
        assert_eq!(j.take(), Take::Frame(p(2), false));
        for _ in 0..CONCEAL_TICKS {
            assert_eq!(j.take(), Take::Lost);
        }
        assert_eq!(j.take(), Take::Nothing);
        assert!(!j.playing());
        // After DTX the stream resumes further on: prebuffering again, from the new packets.
        j.push(40, p(40));
        assert_eq!(j.take(), Take::Nothing);
        j.push(41, p(41));
        assert_eq!(j.take(), Take::Frame(p(40), false));
    }

    #[test]
    fn bounded() {
        let mut j = Jitter::new(6);
        for s in 0..7u64 {
            j.push(s, p(s as u8));
        }
        assert_eq!(j.take(), Take::Frame(p(0), false));
        for s in 7..12u64 {
            j.push(s, p(s as u8));
        }
        assert_eq!(j.len(), 11);
        // At twice the prebuffer, back down to it: the newest kept.
        j.push(12, p(12));
        assert_eq!(j.len(), 6);
        assert_eq!(j.dropped, 6);
        assert_eq!(j.take(), Take::Frame(p(7), false));
    }
}
