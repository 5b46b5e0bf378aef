//! Opus: one packet per RTP payload (RFC 7587), optionally wrapped in RED (RFC 2198). What
//! the muxers need is each packet's duration, read from its TOC byte (RFC 6716 §3.1).

/// Samples at 48 kHz in one frame of TOC configuration `config` (0..=31).
fn frame_samples(config: u8) -> u32 {
    match config {
        // SILK-only: 10, 20, 40, 60 ms
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        // Hybrid: 10, 20 ms
        12..=15 => [480, 960][usize::from(config % 2)],
        // CELT-only: 2.5, 5, 10, 20 ms
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    }
}

/// Duration of an Opus packet in 48 kHz samples, or `None` if it is not a valid packet.
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let frames = match toc & 0x03 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(packet.get(1)? & 0x3f),
    };
    let total = frame_samples(toc >> 3) * frames;
    // A packet may not last more than 120 ms.
    (frames > 0 && total <= 5760).then_some(total)
}

/// A one-byte packet with the TOC of `like` (code 0: one frame) and no frame data: decoders
/// treat it as a lost frame and conceal it. Used to fill holes so time keeps running.
pub fn lost_frame_packet(like: u8) -> ([u8; 1], u32) {
    let toc = like & !0x03;
    ([toc], frame_samples(toc >> 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toc_durations() {
        assert_eq!(packet_samples(&[0xFC, 1, 2]), Some(960)); // CELT FB 20 ms, code 0
        assert_eq!(packet_samples(&[0x78]), Some(960)); // hybrid FB 20 ms
        assert_eq!(packet_samples(&[0x09]), Some(1920)); // SILK 20 ms, code 1: 2 frames
        assert_eq!(packet_samples(&[0x0B, 0x02]), Some(1920)); // code 3, 2 frames of 20 ms
        assert_eq!(packet_samples(&[0x1B, 0x02]), Some(5760)); // 2 × 60 ms
        assert_eq!(packet_samples(&[0x1B, 0x03]), None); // 180 ms: over the 120 ms limit
        assert_eq!(packet_samples(&[0x0B]), None);
        assert_eq!(packet_samples(&[]), None);
        assert_eq!(lost_frame_packet(0xFD), ([0xFC], 960));
    }
}
