//! VP9 (RTP payload format for VP9, RFC 9628): strip the payload descriptor; spatial layers
//! of one picture are joined into a VP9 superframe.

use super::{BitReader, Depacketized, Depacketizer};
use crate::error::DepackError;

/// The parts of the VP9 payload descriptor that matter here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Descriptor {
    /// Descriptor length: the VP9 data starts here.
    pub len: usize,
    /// B: first packet of a layer frame.
    pub begin: bool,
    /// E: last packet of a layer frame.
    pub end: bool,
    /// Picture size from the scalability structure (first spatial layer), if present.
    pub size: Option<(u32, u32)>,
}

/// Parses the payload descriptor, including the scalability structure.
pub fn parse_descriptor(p: &[u8]) -> Result<Vp9Descriptor, DepackError> {
    let t = DepackError::Truncated("VP9 payload descriptor");
    let at = |i: usize| p.get(i).copied().ok_or(t.clone());
    let b0 = at(0)?;
    let (i_bit, p_bit, l_bit, f_bit) = (
        b0 & 0x80 != 0,
        b0 & 0x40 != 0,
        b0 & 0x20 != 0,
        b0 & 0x10 != 0,
    );
    let v_bit = b0 & 0x02 != 0;
    let mut len = 1;
    if i_bit {
        len += if at(len)? & 0x80 != 0 { 2 } else { 1 };
    }
    if l_bit {
        len += 1; // TID/U/SID/D
        if !f_bit {
            len += 1; // TL0PICIDX
        }
    }
    if f_bit && p_bit {
        // Up to 3 P_DIFF bytes, N bit chains them.
        for _ in 0..3 {
            let d = at(len)?;
            len += 1;
            if d & 0x01 == 0 {
                break;
            }
        }
    }
    let mut size = None;
    if v_bit {
        let ss = at(len)?;
        len += 1;
        let layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            for layer in 0..layers {
                let w = u16::from_be_bytes([at(len)?, at(len + 1)?]);
                let h = u16::from_be_bytes([at(len + 2)?, at(len + 3)?]);
                if layer == 0 && w > 0 && h > 0 {
                    size = Some((u32::from(w), u32::from(h)));
                }
                len += 4;
            }
        }
        if ss & 0x08 != 0 {
            let groups = at(len)?;
            len += 1;
            for _ in 0..groups {
                let refs = usize::from((at(len)? >> 2) & 0x03);
                len += 1 + refs;
            }
        }
    }
    if len > p.len() {
        return Err(t);
    }
    Ok(Vp9Descriptor {
        len,
        begin: b0 & 0x08 != 0,
        end: b0 & 0x04 != 0,
        size,
    })
}

/// What the uncompressed header of a VP9 frame says (VP9 spec §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vp9Header {
    /// frame_type == KEY_FRAME (and not show_existing_frame).
    pub keyframe: bool,
    /// Frame size, for key frames.
    pub size: Option<(u32, u32)>,
}

/// Parses the start of a VP9 frame's uncompressed header.
pub fn parse_frame_header(frame: &[u8]) -> Option<Vp9Header> {
    let mut r = BitReader::new(frame);
    if r.bits(2)? != 2 {
        return None; // frame_marker
    }
    let low = r.bit()?;
    let high = r.bit()?;
    let profile = (high << 1) | low;
    if profile == 3 {
        r.bit()?; // reserved_zero
    }
    if r.flag()? {
        return Some(Vp9Header {
            keyframe: false,
            size: None,
        }); // show_existing_frame
    }
    if r.bit()? != 0 {
        return Some(Vp9Header {
            keyframe: false,
            size: None,
        }); // non-key frame
    }
    r.bit()?; // show_frame
    r.bit()?; // error_resilient_mode
    if r.bits(24)? != 0x49_83_42 {
        return None; // frame_sync_code
    }
    if profile >= 2 {
        r.bit()?; // ten_or_twelve_bit
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?; // color_range
        if profile == 1 || profile == 3 {
            r.bits(3)?; // subsampling_x, subsampling_y, reserved_zero
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?; // reserved_zero
    }
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    Some(Vp9Header {
        keyframe: true,
        size: Some((w, h)),
    })
}

/// Appends a superframe index (VP9 spec Annex B) for `sizes`.
fn superframe(layers: Vec<Vec<u8>>) -> Vec<u8> {
    let max = layers.iter().map(Vec::len).max().unwrap_or(0);
    let mag: usize = match max {
        0..=0xff => 1,
        0x100..=0xffff => 2,
        0x1_0000..=0xff_ffff => 3,
        _ => 4,
    };
    let marker = 0xc0 | (((mag - 1) as u8) << 3) | ((layers.len() - 1) as u8 & 0x07);
    let mut out = Vec::new();
    for l in &layers {
        out.extend_from_slice(l);
    }
    out.push(marker);
    for l in &layers {
        out.extend_from_slice(&(l.len() as u32).to_le_bytes()[..mag]);
    }
    out.push(marker);
    out
}

/// VP9 depacketizer.
#[derive(Debug, Default)]
pub struct Vp9 {
    /// Size from the last scalability structure seen.
    ss_size: Option<(u32, u32)>,
}

impl Depacketizer for Vp9 {
    fn starts_frame(&self, payload: &[u8]) -> bool {
        parse_descriptor(payload).is_ok_and(|d| d.begin)
    }

    fn depacketize(&mut self, payloads: &[&[u8]]) -> Result<Option<Depacketized>, DepackError> {
        let mut layers: Vec<Vec<u8>> = Vec::new();
        for p in payloads {
            let d = parse_descriptor(p)?;
            if d.size.is_some() {
                self.ss_size = d.size;
            }
            let body = p.get(d.len..).unwrap_or_default();
            match layers.last_mut() {
                Some(cur) if !d.begin => cur.extend_from_slice(body),
                None if !d.begin => {
                    return Err(DepackError::Fragmentation("VP9 frame without B bit"))
                }
                _ => layers.push(body.to_vec()),
            }
        }
        let Some(base) = layers.first() else {
            return Ok(None);
        };
        let keyframe = parse_frame_header(base).is_some_and(|h| h.keyframe);
        let data = if layers.len() == 1 {
            layers.swap_remove(0)
        } else if layers.len() <= 8 {
            superframe(layers)
        } else {
            return Err(DepackError::Unsupported(
                "VP9 picture with more than 8 layer frames",
            ));
        };
        Ok(Some(Depacketized { data, keyframe }))
    }

    fn dimensions(&self, frame: &[u8]) -> Option<(u32, u32)> {
        parse_frame_header(frame)
            .and_then(|h| h.size)
            .or(self.ss_size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile 0 key frame header for 320x240 (frame_marker, profile 0, key, show,
    /// sync code, color space BT.601, range, 319, 239).
    fn key_320x240() -> Vec<u8> {
        let mut bits = String::from("10" /* marker */);
        bits += "00"; // profile 0
        bits += "0"; // show_existing_frame
        bits += "0"; // key frame
        bits += "1"; // show_frame
        bits += "0"; // error_resilient
        bits += "010010011000001101000010"; // sync code
        bits += "001"; // color space
        bits += "0"; // color range
        bits += &format!("{:016b}{:016b}", 319, 239);
        while bits.len() & 7 != 0 {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect()
    }

    #[test]
    fn descriptor_flexible_and_scalability_structure() {
        // I (15-bit), P, L, F, B, E, V ; 2 P_DIFFs; SS with 1 layer, Y, G (1 group, 1 ref)
        let p = [
            0xFE, 0x80, 0x01, 0x00, 0x03, 0x04, // header, picture id, layer, 2 p_diff
            0x18, 0x01, 0x40, 0x00, 0xF0, // SS: N_S=0,Y,G ; 320x240
            0x01, 0x04, 0x01, // N_G=1, one group with R=1
            0xAA,
        ];
        let d = parse_descriptor(&p).unwrap();
        assert_eq!(d.len, p.len() - 1);
        assert!(d.begin && d.end);
        assert_eq!(d.size, Some((320, 240)));
        assert!(parse_descriptor(&p[..8]).is_err());
    }

    #[test]
    fn keyframe_header_and_superframe() {
        let key = key_320x240();
        let h = parse_frame_header(&key).unwrap();
        assert_eq!(
            h,
            Vp9Header {
                keyframe: true,
                size: Some((320, 240))
            }
        );
        let mut v = Vp9::default();
        let mut p1 = vec![0x08]; // B
        p1.extend_from_slice(&key);
        let f = v
            .depacketize(&[&p1[..], &[0x04, 0xEE][..]])
            .unwrap()
            .unwrap();
        assert!(f.keyframe);
        assert_eq!(f.data, [key.as_slice(), &[0xEE]].concat());
        assert_eq!(v.dimensions(&f.data), Some((320, 240)));
        // Two spatial layers → superframe with a 2-entry, 1-byte index.
        let f = v
            .depacketize(&[&[0x0C, 0x86, 1][..], &[0x0C, 0x86, 2, 3][..]])
            .unwrap()
            .unwrap();
        assert!(!f.keyframe);
        assert_eq!(f.data, [0x86, 1, 0x86, 2, 3, 0xC1, 2, 3, 0xC1]);
        assert!(v.depacketize(&[&[0x04, 1][..]]).is_err());
        assert!(!v.starts_frame(&[0x04, 1]));
    }
}
