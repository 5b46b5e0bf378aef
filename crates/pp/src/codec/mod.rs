//! RTP depacketizers, one per codec, and the bit-level helpers they share.

pub mod av1;
pub mod g711;
pub mod h264;
pub mod opus;
pub mod vp8;
pub mod vp9;

use crate::error::DepackError;

/// A frame rebuilt from its RTP payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Depacketized {
    /// The bitstream, as the container wants it.
    pub data: Vec<u8>,
    /// Whether it is decodable on its own.
    pub keyframe: bool,
}

/// Turns the RTP payloads of one video frame into the codec's bitstream.
pub trait Depacketizer {
    /// Whether `payload` begins a frame (so nothing in front of it was lost).
    fn starts_frame(&self, payload: &[u8]) -> bool;
    /// Rebuilds one frame from its payloads, in order. `Ok(None)`: nothing to write.
    fn depacketize(&mut self, payloads: &[&[u8]]) -> Result<Option<Depacketized>, DepackError>;
    /// The picture size, if this frame states it (keyframes usually do).
    fn dimensions(&self, frame: &[u8]) -> Option<(u32, u32)>;
}

/// The depacketizer for a video codec name from an `.mjr` header.
pub fn video_depacketizer(codec: &str) -> Option<Box<dyn Depacketizer>> {
    match codec.to_ascii_lowercase().as_str() {
        "vp8" => Some(Box::new(vp8::Vp8)),
        "vp9" => Some(Box::new(vp9::Vp9::default())),
        "h264" => Some(Box::new(h264::H264::default())),
        "av1" => Some(Box::new(av1::Av1::default())),
        _ => None,
    }
}

/// MSB-first bit reader over a byte slice; reading past the end is an error, not a panic.
#[derive(Debug)]
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Option<u32> {
        let byte = self.data.get(self.pos / 8)?;
        let v = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(u32::from(v))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Some(v)
    }

    pub(crate) fn flag(&mut self) -> Option<bool> {
        self.bit().map(|b| b == 1)
    }

    /// Unsigned Exp-Golomb (H.264 `ue(v)`).
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some(((1u64 << zeros) - 1 + u64::from(self.bits(zeros)?)) as u32)
    }

    /// Signed Exp-Golomb (H.264 `se(v)`).
    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        Some(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) } as i32)
    }
}

/// Reads a LEB128 value (AV1); returns it and its length in bytes.
pub(crate) fn read_leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for i in 0..8 {
        let b = *data.get(i)?;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Appends `value` as LEB128 (AV1).
pub(crate) fn write_leb128(out: &mut Vec<u8>, mut value: u64) {
    loop {
        let b = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_and_leb128() {
        // ue: 1 → 0, 010 → 1, 011 → 2, 00100 → 3; se of 2 → -1
        let mut r = BitReader::new(&[0b1010_0110, 0b0100_0110]);
        assert_eq!(r.ue(), Some(0));
        assert_eq!(r.ue(), Some(1));
        assert_eq!(r.ue(), Some(2));
        assert_eq!(r.ue(), Some(3));
        assert_eq!(r.se(), Some(-1));
        assert_eq!(r.bits(8), None);
        let mut v = Vec::new();
        write_leb128(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        assert_eq!(read_leb128(&v), Some((300, 2)));
        assert_eq!(read_leb128(&[0x80]), None);
    }
}
