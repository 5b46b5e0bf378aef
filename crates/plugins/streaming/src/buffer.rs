//! What a stream keeps for viewers who arrive late: with `bufferkf`, the packets of the latest
//! complete video keyframe (a new viewer sees a picture at once instead of waiting for the
//! next keyframe); with `buffermsg`, the latest data message.

use jano_plugin::RtpPacket;

/// A keyframe larger than this many packets is not kept (nothing is, rather than part of it).
const MAX_PACKETS: usize = 1024;

#[derive(Debug, Default)]
pub struct KeyframeBuffer {
    /// The keyframe being received (its timestamp and packets so far).
    building: Option<(u32, Vec<RtpPacket>)>,
    /// The latest complete one.
    last: Vec<RtpPacket>,
}

impl KeyframeBuffer {
    /// A packet of the stream: a keyframe starts with a packet the codec says begins one, and
    /// is complete when a packet of another timestamp comes.
    pub fn offer(&mut self, p: &RtpPacket) {
        if jano_plugin::rtp::is_keyframe(p.codec, &p.payload) {
            if self
                .building
                .as_ref()
                .is_some_and(|(ts, _)| *ts != p.timestamp)
            {
                self.complete();
            }
            if self.building.is_none() {
                self.building = Some((p.timestamp, Vec::new()));
            }
        } else if self
            .building
            .as_ref()
            .is_some_and(|(ts, _)| *ts != p.timestamp)
        {
            self.complete();
            return;
        }
        if let Some((_, packets)) = self.building.as_mut() {
            if packets.len() < MAX_PACKETS {
                packets.push(p.clone());
            } else {
                self.building = None;
            }
        }
    }

    fn complete(&mut self) {
        if let Some((_, packets)) = self.building.take() {
            if !packets.is_empty() {
                self.last = packets;
            }
        }
    }

    /// The latest complete keyframe's packets (empty: none yet).
    pub fn last(&self) -> &[RtpPacket] {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jano_plugin::{MediaKind, RtpExtensions};
    use std::sync::Arc;

    fn vp8(ts: u32, key: bool, first: bool, n: u8) -> RtpPacket {
        let desc = if first { 0x10 } else { 0x00 };
        RtpPacket {
            mindex: 0,
            kind: MediaKind::Video,
            pt: 96,
            codec: "vp8",
            seq: u64::from(n),
            timestamp: ts,
            marker: false,
            ssrc: 1,
            substream: None,
            ext: RtpExtensions::default(),
            payload: Arc::from(vec![desc, if key { 0x00 } else { 0x01 }, n]),
            svc: None,
        }
    }

    #[test]
    fn keeps_the_latest_complete_keyframe() {
        let mut b = KeyframeBuffer::default();
        b.offer(&vp8(100, false, true, 1));
        assert!(b.last().is_empty(), "a delta frame is not kept");
        b.offer(&vp8(200, true, true, 2));
        b.offer(&vp8(200, true, false, 3));
        assert!(b.last().is_empty(), "not complete yet");
        b.offer(&vp8(300, false, true, 4));
        let seqs: Vec<u64> = b.last().iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![2, 3]);
        // The next keyframe replaces it once complete.
        b.offer(&vp8(400, true, true, 5));
        assert_eq!(b.last().len(), 2);
        b.offer(&vp8(500, true, true, 6));
        let seqs: Vec<u64> = b.last().iter().map(|p| p.seq).collect();
        assert_eq!(seqs, vec![5]);
    }
}
