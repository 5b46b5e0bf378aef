//! G.711 (µ-law and A-law) to and from 16-bit linear PCM: AudioBridge's G.711 participants
//! and the `.mjr` post-processor's WAV output.

/// G.711 µ-law byte to 16-bit linear PCM.
pub fn ulaw_to_linear(b: u8) -> i16 {
    let u = !b;
    let t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    let v = if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 };
    v as i16
}

/// 16-bit linear PCM to a G.711 µ-law byte.
pub fn linear_to_ulaw(s: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut v = i32::from(s);
    let sign = if v < 0 {
        v = -v;
        0x80
    } else {
        0
    };
    v = v.min(CLIP) + BIAS;
    // The segment: the highest set bit of v / 128 (v is at least BIAS, so that is >= 1).
    let exp = (31 - ((v >> 7) as u32).max(1).leading_zeros()).min(7) as i32;
    let mantissa = (v >> (exp + 3)) & 0x0f;
    !((sign | (exp << 4) | mantissa) as u8)
}

/// G.711 A-law byte to 16-bit linear PCM.
pub fn alaw_to_linear(b: u8) -> i16 {
    let a = b ^ 0x55;
    let seg = (a & 0x70) >> 4;
    let mut t = i32::from(a & 0x0f) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// 16-bit linear PCM to a G.711 A-law byte.
pub fn linear_to_alaw(s: i16) -> u8 {
    let mut v = i32::from(s);
    let mask = if v >= 0 {
        0xd5
    } else {
        v = -v - 1;
        0x55
    };
    v = v.min(32767);
    let seg = if v < 256 {
        0
    } else {
        (32 - (v as u32).leading_zeros() - 8).min(7)
    };
    let aval = if seg < 1 {
        (v >> 4) & 0x0f
    } else {
        (v >> (seg + 3)) & 0x0f
    };
    ((seg << 4) as i32 | aval) as u8 ^ mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }
}
