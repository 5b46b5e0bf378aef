//! Announcements (`play_file`): an Opus file mixed into a room for everyone, decoded a
//! packet at a time on the mixing thread (the file was read into memory when the request
//! came, so playback never touches the disk).

use crate::codec::{Codec, CodecError, Decoder};
use jano_plugin::audio_file::Track;
use std::sync::Arc;

/// The longest Opus packet, 120 ms, at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;

pub struct Announcement {
    pub file_id: String,
    pub filename: String,
    pub group: Option<String>,
    pub looping: bool,
    /// The first frame was mixed (`announcement-started` was sent).
    pub started: bool,
    track: Arc<Track>,
    next: usize,
    decoder: Decoder,
    /// Decoded samples not played yet (packets need not be 20 ms long).
    fifo: Vec<i16>,
    packet: Vec<i16>,
}

impl Announcement {
    pub fn new(
        file_id: String,
        filename: String,
        track: Arc<Track>,
        rate: u32,
        looping: bool,
        group: Option<String>,
    ) -> Result<Announcement, CodecError> {
        Ok(Announcement {
            file_id,
            filename,
            group,
            looping,
            started: false,
            track,
            next: 0,
            decoder: Decoder::new(Codec::Opus, rate)?,
            fifo: Vec::new(),
            packet: vec![0; MAX_PACKET_SAMPLES],
        })
    }

    /// The next frame into `out` (mono, the room's rate); `false` once a file that does not
    /// loop is over.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        let frames = self.track.frames();
        while self.fifo.len() < out.len() {
            if self.next >= frames {
                if !self.looping || frames == 0 {
                    break;
                }
                self.next = 0;
            }
            let (payload, _) = self.track.frame(self.next);
            self.next += 1;
            if let Some(n) = self.decoder.decode_packet(payload, &mut self.packet) {
                self.fifo
                    .extend_from_slice(self.packet.get(..n).unwrap_or_default());
            }
        }
        if self.fifo.is_empty() {
            return false;
        }
        let n = out.len().min(self.fifo.len());
        for (o, s) in out.iter_mut().zip(self.fifo.drain(..n)) {
            *o = s;
        }
        if let Some(rest) = out.get_mut(n..) {
            rest.fill(0);
        }
        true
    }
}
