//! H.264 (RFC 6184, packetization modes 0 and 1): single NAL units, STAP-A and FU-A, rebuilt
//! as an Annex B access unit. The last SPS/PPS seen are put in front of IDR frames that come
//! without them, so that every keyframe can start decoding.

use super::{BitReader, Depacketized, Depacketizer};
use crate::error::DepackError;

const START_CODE: [u8; 4] = [0, 0, 0, 1];
const NAL_IDR: u8 = 5;
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// H.264 depacketizer.
#[derive(Debug, Default)]
pub struct H264 {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

/// Splits a payload into whole NAL units, or FU-A fragments as `(nal_header, start, end, data)`.
fn nal_units(payloads: &[&[u8]]) -> Result<Vec<Vec<u8>>, DepackError> {
    let mut nals = Vec::new();
    let mut fu: Option<Vec<u8>> = None;
    for p in payloads {
        let Some(&hdr) = p.first() else { continue };
        let kind = hdr & 0x1f;
        if fu.is_some() && kind != FU_A {
            return Err(DepackError::Fragmentation("FU-A not finished"));
        }
        match kind {
            1..=23 => nals.push(p.to_vec()),
            STAP_A => {
                let mut rest = p.get(1..).unwrap_or_default();
                while !rest.is_empty() {
                    let (Some(&a), Some(&b)) = (rest.first(), rest.get(1)) else {
                        return Err(DepackError::Truncated("STAP-A size"));
                    };
                    let n = usize::from(u16::from_be_bytes([a, b]));
                    let nal = rest
                        .get(2..2 + n)
                        .ok_or(DepackError::Truncated("STAP-A unit"))?;
                    if n > 0 {
                        nals.push(nal.to_vec());
                    }
                    rest = rest.get(2 + n..).unwrap_or_default();
                }
            }
            FU_A => {
                let fh = *p.get(1).ok_or(DepackError::Truncated("FU-A header"))?;
                let body = p.get(2..).unwrap_or_default();
                let (start, end) = (fh & 0x80 != 0, fh & 0x40 != 0);
                if start {
                    if fu.is_some() {
                        return Err(DepackError::Fragmentation("FU-A restarted"));
                    }
                    let mut nal = vec![(hdr & 0xe0) | (fh & 0x1f)];
                    nal.extend_from_slice(body);
                    fu = Some(nal);
                } else {
                    let Some(nal) = fu.as_mut() else {
                        return Err(DepackError::Fragmentation("FU-A without start"));
                    };
                    nal.extend_from_slice(body);
                }
                if end {
                    if let Some(nal) = fu.take() {
                        nals.push(nal);
                    }
                }
            }
            25 => return Err(DepackError::Unsupported("H.264 STAP-B")),
            26 | 27 => return Err(DepackError::Unsupported("H.264 MTAP")),
            29 => return Err(DepackError::Unsupported("H.264 FU-B")),
            _ => return Err(DepackError::Unsupported("H.264 NAL unit type 0/30/31")),
        }
    }
    if fu.is_some() {
        return Err(DepackError::Fragmentation("FU-A not finished"));
    }
    Ok(nals)
}

impl Depacketizer for H264 {
    fn starts_frame(&self, payload: &[u8]) -> bool {
        match payload.first().map(|h| h & 0x1f) {
            Some(1..=23) | Some(STAP_A) => true,
            Some(FU_A) => payload.get(1).is_some_and(|fh| fh & 0x80 != 0),
            _ => false,
        }
    }

    fn depacketize(&mut self, payloads: &[&[u8]]) -> Result<Option<Depacketized>, DepackError> {
        let nals = nal_units(payloads)?;
        if nals.is_empty() {
            return Ok(None);
        }
        let types: Vec<u8> = nals
            .iter()
            .filter_map(|n| n.first().map(|h| h & 0x1f))
            .collect();
        for n in &nals {
            match n.first().map(|h| h & 0x1f) {
                Some(NAL_SPS) => self.sps = Some(n.clone()),
                Some(NAL_PPS) => self.pps = Some(n.clone()),
                _ => {}
            }
        }
        let keyframe = types.contains(&NAL_IDR);
        let mut data = Vec::new();
        if keyframe {
            if !types.contains(&NAL_SPS) {
                if let Some(sps) = &self.sps {
                    data.extend_from_slice(&START_CODE);
                    data.extend_from_slice(sps);
                }
            }
            if !types.contains(&NAL_PPS) {
                if let Some(pps) = &self.pps {
                    data.extend_from_slice(&START_CODE);
                    data.extend_from_slice(pps);
                }
            }
        }
        for n in &nals {
            data.extend_from_slice(&START_CODE);
            data.extend_from_slice(n);
        }
        Ok(Some(Depacketized { data, keyframe }))
    }

    fn dimensions(&self, frame: &[u8]) -> Option<(u32, u32)> {
        annexb_nals(frame)
            .find(|n| n.first().is_some_and(|h| h & 0x1f == NAL_SPS))
            .and_then(sps_dimensions)
    }
}

/// The NAL units of an Annex B stream (without start codes).
pub fn annexb_nals(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let ends: Vec<usize> = starts
        .iter()
        .skip(1)
        .map(|&s| {
            // Back over the start code and the zero of a 4-byte one.
            let mut e = s - 3;
            while e > 0 && data.get(e - 1) == Some(&0) {
                e -= 1;
            }
            e
        })
        .chain(std::iter::once(data.len()))
        .collect();
    starts
        .into_iter()
        .zip(ends)
        .filter_map(move |(s, e)| data.get(s..e.max(s)))
}

/// Removes emulation prevention bytes (00 00 03 → 00 00).
fn unescape(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// Picture size from an SPS NAL unit (H.264 §7.3.2.1.1), cropping applied.
pub fn sps_dimensions(nal: &[u8]) -> Option<(u32, u32)> {
    let rbsp = unescape(nal.get(1..)?);
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = r.ue()?;
        if chroma_format == 3 {
            r.bit()?; // separate_colour_plane_flag
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.flag()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue()? + 1;
    let height_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.flag()? {
        cl = r.ue()?;
        cr = r.ue()?;
        ct = r.ue()?;
        cb = r.ue()?;
    }
    let (sub_w, sub_h) = match chroma_format {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let crop_x = if chroma_format == 0 { 1 } else { sub_w };
    let crop_y = (if chroma_format == 0 { 1 } else { sub_h }) * (2 - frame_mbs_only);
    let w = (width_mbs * 16).checked_sub(crop_x * (cl + cr))?;
    let h = (height_units * 16 * (2 - frame_mbs_only)).checked_sub(crop_y * (ct + cb))?;
    (w > 0 && h > 0).then_some((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Baseline SPS for 320x240 (x264): profile 66, level 13.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    // High profile SPS for 318x238 (x264): exercises chroma format and cropping.
    const SPS_HIGH: &[u8] = &[
        0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41, 0x41, 0xfe, 0xab, 0x01, 0x10, 0x00, 0x00, 0x03,
        0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0x99, 0x60,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    #[test]
    fn sps_size() {
        assert_eq!(sps_dimensions(SPS), Some((320, 240)));
        assert_eq!(sps_dimensions(SPS_HIGH), Some((318, 238)));
        assert_eq!(sps_dimensions(&SPS[..4]), None);
    }

    #[test]
    fn stap_a_fu_a_and_single_nal() {
        let mut h = H264::default();
        let mut stap = vec![0x78];
        for n in [SPS, PPS] {
            stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            stap.extend_from_slice(n);
        }
        // IDR (0x65) split in two FU-A fragments.
        let fu1 = [0x7c, 0x85, 0xAA, 0xBB];
        let fu2 = [0x7c, 0x45, 0xCC];
        assert!(h.starts_frame(&stap) && h.starts_frame(&fu1) && !h.starts_frame(&fu2));
        let f = h
            .depacketize(&[&stap[..], &fu1[..], &fu2[..]])
            .unwrap()
            .unwrap();
        assert!(f.keyframe);
        let nals: Vec<&[u8]> = annexb_nals(&f.data).collect();
        assert_eq!(nals, vec![SPS, PPS, &[0x65, 0xAA, 0xBB, 0xCC][..]]);
        assert_eq!(h.dimensions(&f.data), Some((320, 240)));
        // A later IDR without parameter sets gets the cached ones.
        let f = h.depacketize(&[&[0x65, 0x01][..]]).unwrap().unwrap();
        assert_eq!(annexb_nals(&f.data).count(), 3);
        // Non-IDR slices stay as they are.
        let f = h.depacketize(&[&[0x41, 0x02][..]]).unwrap().unwrap();
        assert!(!f.keyframe);
        assert_eq!(f.data, [0, 0, 0, 1, 0x41, 0x02]);
    }

    #[test]
    fn broken_fragmentation_and_unsupported_types() {
        let mut h = H264::default();
        assert!(matches!(
            h.depacketize(&[&[0x7c, 0x05, 1][..]]),
            Err(DepackError::Fragmentation(_))
        ));
        assert!(matches!(
            h.depacketize(&[&[0x7c, 0x85, 1][..]]),
            Err(DepackError::Fragmentation(_))
        ));
        assert!(matches!(
            h.depacketize(&[&[0x78, 0x00, 0x09, 1][..]]),
            Err(DepackError::Truncated(_))
        ));
        assert!(matches!(
            h.depacketize(&[&[0x79, 1][..]]),
            Err(DepackError::Unsupported(_))
        ));
    }
}
