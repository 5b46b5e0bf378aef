//! VP8 (RFC 7741): strip the payload descriptor and join the partitions.

use super::{Depacketized, Depacketizer};
use crate::error::DepackError;

/// The parts of the VP8 payload descriptor that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp8Descriptor {
    /// Descriptor length: the VP8 data starts here.
    pub len: usize,
    /// S: start of a partition.
    pub start: bool,
    /// PID: partition index.
    pub partition: u8,
}

/// Parses the payload descriptor (RFC 7741 §4.2).
pub fn parse_descriptor(p: &[u8]) -> Result<Vp8Descriptor, DepackError> {
    let t = DepackError::Truncated("VP8 payload descriptor");
    let b0 = *p.first().ok_or(t.clone())?;
    let mut len = 1;
    if b0 & 0x80 != 0 {
        let x = *p.get(1).ok_or(t.clone())?;
        len = 2;
        if x & 0x80 != 0 {
            // I: PictureID, 7 or 15 bits (M bit)
            let pid = *p.get(len).ok_or(t.clone())?;
            len += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            len += 1; // L: TL0PICIDX
        }
        if x & 0x30 != 0 {
            len += 1; // T or K: TID/Y/KEYIDX
        }
    }
    if len > p.len() {
        return Err(t);
    }
    Ok(Vp8Descriptor {
        len,
        start: b0 & 0x10 != 0,
        partition: b0 & 0x07,
    })
}

/// VP8 depacketizer.
#[derive(Debug, Default)]
pub struct Vp8;

impl Depacketizer for Vp8 {
    fn starts_frame(&self, payload: &[u8]) -> bool {
        parse_descriptor(payload).is_ok_and(|d| d.start && d.partition == 0)
    }

    fn depacketize(&mut self, payloads: &[&[u8]]) -> Result<Option<Depacketized>, DepackError> {
        let mut data = Vec::with_capacity(payloads.iter().map(|p| p.len()).sum());
        for p in payloads {
            let d = parse_descriptor(p)?;
            data.extend_from_slice(p.get(d.len..).unwrap_or_default());
        }
        let Some(&tag) = data.first() else {
            return Err(DepackError::Truncated("VP8 frame"));
        };
        // Frame tag, bit 0: 0 = key frame (RFC 6386 §9.1).
        Ok(Some(Depacketized {
            keyframe: tag & 0x01 == 0,
            data,
        }))
    }

    fn dimensions(&self, frame: &[u8]) -> Option<(u32, u32)> {
        // Key frames: 3-byte tag, start code 9d 01 2a, then 14-bit width and height.
        if frame.first()? & 1 != 0 || frame.get(3..6)? != [0x9d, 0x01, 0x2a] {
            return None;
        }
        let w = u16::from_le_bytes([*frame.get(6)?, *frame.get(7)?]) & 0x3fff;
        let h = u16::from_le_bytes([*frame.get(8)?, *frame.get(9)?]) & 0x3fff;
        (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_with_all_extensions() {
        // X, S, PID 0; I (15-bit picture id), L, T
        let p = [0x90, 0xE0, 0x81, 0x23, 0x05, 0x40, 0xAB];
        let d = parse_descriptor(&p).unwrap();
        assert_eq!(d.len, 6);
        assert!(d.start);
        assert_eq!(
            parse_descriptor(&p[..3]),
            Err(DepackError::Truncated("VP8 payload descriptor"))
        );
        // 7-bit picture id only
        assert_eq!(parse_descriptor(&[0x80, 0x80, 0x05, 0xAA]).unwrap().len, 3);
        assert_eq!(parse_descriptor(&[0x10, 0xAA]).unwrap().len, 1);
    }

    #[test]
    fn keyframe_and_dimensions() {
        let mut v = Vp8;
        let key = [
            0x10, 0x50, 0x01, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00,
        ];
        let f = v
            .depacketize(&[&key[..], &[0x00, 0xEE][..]])
            .unwrap()
            .unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data.len(), 11);
        assert_eq!(v.dimensions(&f.data), Some((320, 240)));
        assert!(v.starts_frame(&key));
        assert!(!v.starts_frame(&[0x00, 1]));
        assert!(!v.starts_frame(&[0x11, 1])); // S but partition 1
        let inter = v.depacketize(&[&[0x10, 0x51][..]]).unwrap().unwrap();
        assert!(!inter.keyframe);
        assert_eq!(v.dimensions(&inter.data), None);
        assert!(v.depacketize(&[&[0x10][..]]).is_err());
    }
}
