//! AV1 (RTP Payload Format for AV1, AOMedia): aggregation header → OBU elements, rebuilt as
//! the low-overhead bitstream format (every OBU with its size field) that Matroska and MP4
//! carry. Temporal delimiters, tile lists and padding OBUs are dropped, as the RTP spec says.

use super::{read_leb128, write_leb128, BitReader, Depacketized, Depacketizer};
use crate::error::DepackError;

const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_FRAME_HEADER: u8 = 3;
const OBU_FRAME: u8 = 6;
const OBU_TILE_LIST: u8 = 8;
const OBU_PADDING: u8 = 15;

/// AV1 depacketizer.
#[derive(Debug, Default)]
pub struct Av1 {
    /// The last sequence header OBU seen (as written, with its size field).
    pub sequence_header: Option<Vec<u8>>,
}

/// Splits the RTP payloads of one frame into whole OBUs (as carried: maybe without size).
fn obu_elements(payloads: &[&[u8]]) -> Result<Vec<Vec<u8>>, DepackError> {
    let mut obus: Vec<Vec<u8>> = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    for p in payloads {
        let Some(&agg) = p.first() else { continue };
        let (z, y, w) = (
            agg & 0x80 != 0,
            agg & 0x40 != 0,
            usize::from((agg >> 4) & 0x03),
        );
        let mut rest = p.get(1..).unwrap_or_default();
        let mut elements = Vec::new();
        let mut index = 0;
        while !rest.is_empty() {
            index += 1;
            let elem = if w != 0 && index == w {
                std::mem::take(&mut rest)
            } else {
                let (len, n) =
                    read_leb128(rest).ok_or(DepackError::Truncated("AV1 OBU element length"))?;
                let len =
                    usize::try_from(len).map_err(|_| DepackError::Truncated("AV1 OBU element"))?;
                let e = rest
                    .get(n..n + len)
                    .ok_or(DepackError::Truncated("AV1 OBU element"))?;
                rest = rest.get(n + len..).unwrap_or_default();
                e
            };
            elements.push(elem);
        }
        let count = elements.len();
        for (i, e) in elements.into_iter().enumerate() {
            let mut obu = if i == 0 && z {
                pending
                    .take()
                    .ok_or(DepackError::Fragmentation("AV1 continuation without start"))?
            } else {
                if pending.is_some() {
                    return Err(DepackError::Fragmentation("AV1 OBU not finished"));
                }
                Vec::new()
            };
            obu.extend_from_slice(e);
            if i + 1 == count && y {
                pending = Some(obu);
            } else {
                obus.push(obu);
            }
        }
        if count == 0 && z && !y {
            if let Some(obu) = pending.take() {
                obus.push(obu);
            }
        }
    }
    if pending.is_some() {
        return Err(DepackError::Fragmentation("AV1 OBU not finished"));
    }
    Ok(obus)
}

/// One OBU split into header and payload: `(type, header bytes without size flag, payload)`.
fn split_obu(obu: &[u8]) -> Result<(u8, Vec<u8>, &[u8]), DepackError> {
    let t = DepackError::Truncated("AV1 OBU header");
    let h = *obu.first().ok_or(t.clone())?;
    let kind = (h >> 3) & 0x0f;
    let mut header = vec![h & !0x02];
    let mut pos = 1;
    if h & 0x04 != 0 {
        header.push(*obu.get(1).ok_or(t.clone())?);
        pos = 2;
    }
    let rest = obu.get(pos..).ok_or(t)?;
    let payload = if h & 0x02 != 0 {
        let (len, n) = read_leb128(rest).ok_or(DepackError::Truncated("AV1 OBU size"))?;
        let len = usize::try_from(len).map_err(|_| DepackError::Truncated("AV1 OBU"))?;
        rest.get(n..n + len)
            .ok_or(DepackError::Truncated("AV1 OBU"))?
    } else {
        rest
    };
    Ok((kind, header, payload))
}

impl Depacketizer for Av1 {
    fn starts_frame(&self, payload: &[u8]) -> bool {
        payload.first().is_some_and(|agg| agg & 0x80 == 0)
    }

    fn depacketize(&mut self, payloads: &[&[u8]]) -> Result<Option<Depacketized>, DepackError> {
        let mut data = Vec::new();
        let mut has_seq = false;
        let mut key_frame_header = None;
        for obu in obu_elements(payloads)? {
            let (kind, mut header, payload) = split_obu(&obu)?;
            if matches!(kind, OBU_TEMPORAL_DELIMITER | OBU_TILE_LIST | OBU_PADDING) {
                continue;
            }
            if let Some(h) = header.first_mut() {
                *h |= 0x02; // obu_has_size_field
            }
            let start = data.len();
            data.extend_from_slice(&header);
            write_leb128(&mut data, payload.len() as u64);
            data.extend_from_slice(payload);
            match kind {
                OBU_SEQUENCE_HEADER => {
                    has_seq = true;
                    self.sequence_header = data.get(start..).map(<[u8]>::to_vec);
                }
                OBU_FRAME_HEADER | OBU_FRAME if key_frame_header.is_none() => {
                    // show_existing_frame(1), frame_type(2): KEY_FRAME is 0.
                    let mut r = BitReader::new(payload);
                    key_frame_header = Some(r.bit() == Some(0) && r.bits(2) == Some(0));
                }
                _ => {}
            }
        }
        if data.is_empty() {
            return Ok(None);
        }
        let keyframe = has_seq && key_frame_header.unwrap_or(true);
        Ok(Some(Depacketized { data, keyframe }))
    }

    fn dimensions(&self, frame: &[u8]) -> Option<(u32, u32)> {
        let (_, _, payload) = split_obu(find_sequence_header(frame)?).ok()?;
        let s = parse_sequence_header(payload)?;
        Some((s.width, s.height))
    }
}

/// The sequence header OBU of a frame in low-overhead format (every OBU sized), if any.
pub fn find_sequence_header(frame: &[u8]) -> Option<&[u8]> {
    let mut rest = frame;
    while !rest.is_empty() {
        let (kind, header, _) = split_obu(rest).ok()?;
        let (len, n) = read_leb128(rest.get(header.len()..)?)?;
        let total = header.len() + n + usize::try_from(len).ok()?;
        if kind == OBU_SEQUENCE_HEADER {
            return rest.get(..total);
        }
        rest = rest.get(total..)?;
    }
    None
}

/// What the `av1C` box / Matroska CodecPrivate needs from a sequence header (AV1 §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SequenceHeader {
    pub profile: u8,
    pub level: u8,
    pub tier: u8,
    pub width: u32,
    pub height: u32,
    pub high_bitdepth: bool,
    pub twelve_bit: bool,
    pub monochrome: bool,
    pub subsampling_x: bool,
    pub subsampling_y: bool,
    pub chroma_sample_position: u8,
}

fn uvlc(r: &mut BitReader) -> Option<u32> {
    let mut zeros = 0;
    while r.bit()? == 0 {
        zeros += 1;
        if zeros >= 32 {
            return Some(u32::MAX);
        }
    }
    Some(r.bits(zeros)? + ((1u64 << zeros) - 1) as u32)
}

/// Parses a sequence header OBU payload.
pub fn parse_sequence_header(p: &[u8]) -> Option<SequenceHeader> {
    let mut r = BitReader::new(p);
    let mut s = SequenceHeader {
        profile: r.bits(3)? as u8,
        ..Default::default()
    };
    r.bit()?; // still_picture
    let reduced = r.flag()?;
    if reduced {
        s.level = r.bits(5)? as u8;
    } else {
        let mut decoder_model = false;
        let mut buffer_delay_len = 0;
        if r.flag()? {
            r.bits(32)?;
            r.bits(32)?;
            if r.flag()? {
                uvlc(&mut r)?;
            }
            decoder_model = r.flag()?;
            if decoder_model {
                buffer_delay_len = r.bits(5)? + 1;
                r.bits(32)?;
                r.bits(10)?; // buffer_removal_time_length_minus_1, frame_presentation_time_length_minus_1
            }
        }
        let initial_display_delay = r.flag()?;
        let points = r.bits(5)? + 1;
        for i in 0..points {
            r.bits(12)?; // operating_point_idc
            let level = r.bits(5)? as u8;
            let tier = if level > 7 { r.bits(1)? as u8 } else { 0 };
            if i == 0 {
                (s.level, s.tier) = (level, tier);
            }
            if decoder_model && r.flag()? {
                r.bits(buffer_delay_len)?;
                r.bits(buffer_delay_len)?;
                r.bit()?;
            }
            if initial_display_delay && r.flag()? {
                r.bits(4)?;
            }
        }
    }
    let wbits = r.bits(4)? + 1;
    let hbits = r.bits(4)? + 1;
    s.width = r.bits(wbits)? + 1;
    s.height = r.bits(hbits)? + 1;
    if !reduced && r.flag()? {
        r.bits(7)?; // frame id lengths
    }
    r.bits(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
    if !reduced {
        r.bits(4)?; // interintra, masked compound, warped motion, dual filter
        let order_hint = r.flag()?;
        if order_hint {
            r.bits(2)?; // jnt_comp, ref_frame_mvs
        }
        let force_screen_content = if r.flag()? { 2 } else { r.bits(1)? };
        if force_screen_content > 0 && !r.flag()? {
            r.bit()?; // seq_force_integer_mv
        }
        if order_hint {
            r.bits(3)?;
        }
    }
    r.bits(3)?; // superres, cdef, restoration
    s.high_bitdepth = r.flag()?;
    if s.profile == 2 && s.high_bitdepth {
        s.twelve_bit = r.flag()?;
    }
    s.monochrome = s.profile != 1 && r.flag()?;
    let (mut cp, mut tc, mut mc) = (2, 2, 2);
    if r.flag()? {
        cp = r.bits(8)?;
        tc = r.bits(8)?;
        mc = r.bits(8)?;
    }
    if s.monochrome {
        (s.subsampling_x, s.subsampling_y) = (true, true);
    } else if cp == 1 && tc == 13 && mc == 0 {
        (s.subsampling_x, s.subsampling_y) = (false, false);
    } else {
        r.bit()?; // color_range
        match s.profile {
            0 => (s.subsampling_x, s.subsampling_y) = (true, true),
            1 => {}
            _ if s.twelve_bit => {
                s.subsampling_x = r.flag()?;
                s.subsampling_y = s.subsampling_x && r.flag()?;
            }
            _ => s.subsampling_x = true,
        }
        if s.subsampling_x && s.subsampling_y {
            s.chroma_sample_position = r.bits(2)? as u8;
        }
    }
    Some(s)
}

/// The `av1C` record (AV1-ISOBMFF §2.3, also Matroska's CodecPrivate) for a sequence header
/// OBU as written by [`Av1::depacketize`].
pub fn av1c(sequence_header_obu: &[u8]) -> Option<Vec<u8>> {
    let (_, _, payload) = split_obu(sequence_header_obu).ok()?;
    let s = parse_sequence_header(payload)?;
    let b = |v: bool, shift: u8| u8::from(v) << shift;
    let mut out = vec![
        0x81,
        (s.profile << 5) | (s.level & 0x1f),
        (s.tier << 7)
            | b(s.high_bitdepth, 6)
            | b(s.twelve_bit, 5)
            | b(s.monochrome, 4)
            | b(s.subsampling_x, 3)
            | b(s.subsampling_y, 2)
            | (s.chroma_sample_position & 0x03),
        0,
    ];
    out.extend_from_slice(sequence_header_obu);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reduced-still-picture-free sequence header for 320x240, profile 0, level 4 (8 bits,
    /// BT.709-less: no color description), as libaom writes for small sizes.
    fn seq_header_payload() -> Vec<u8> {
        let mut bits = String::new();
        bits += "000"; // profile 0
        bits += "0"; // still_picture
        bits += "0"; // reduced_still_picture_header
        bits += "0"; // timing_info_present
        bits += "0"; // initial_display_delay_present
        bits += "00000"; // one operating point
        bits += "000000000000"; // idc
        bits += "00100"; // level 4
        bits += "1000"; // frame_width_bits_minus_1 = 8 → 9 bits
        bits += "0111"; // 8 bits
        bits += &format!("{:09b}{:08b}", 319, 239);
        bits += "0"; // frame_id_numbers_present
        bits += "000"; // 128x128, filter intra, intra edge
        bits += "0000"; // compound tools
        bits += "0"; // order hint
        bits += "0"; // seq_choose_screen_content_tools
        bits += "0"; // seq_force_screen_content_tools = 0
        bits += "000"; // superres, cdef, restoration
        bits += "0"; // high_bitdepth
        bits += "0"; // mono_chrome
        bits += "0"; // color_description_present
        bits += "0"; // color_range
        bits += "00"; // chroma_sample_position
        while bits.len() & 7 != 0 {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap())
            .collect()
    }

    #[test]
    fn sequence_header_fields() {
        let s = parse_sequence_header(&seq_header_payload()).unwrap();
        assert_eq!((s.profile, s.level, s.width, s.height), (0, 4, 320, 240));
        assert!(s.subsampling_x && s.subsampling_y && !s.monochrome);
    }

    #[test]
    fn aggregation_fragments_and_size_fields() {
        let seq = seq_header_payload();
        let mut seq_obu = vec![OBU_SEQUENCE_HEADER << 3];
        seq_obu.extend_from_slice(&seq);
        let frame_obu = [OBU_FRAME << 3, 0x10, 0xAA, 0xBB, 0xCC]; // key frame header bits 000
        let td = [OBU_TEMPORAL_DELIMITER << 3];
        // Packet 1: W=0, three length-prefixed elements (TD, sequence header, frame start),
        // Y set: the frame OBU continues. N set.
        let mut p1 = vec![0x48];
        for e in [&td[..], &seq_obu[..], &frame_obu[..3]] {
            write_leb128(&mut p1, e.len() as u64);
            p1.extend_from_slice(e);
        }
        // Packet 2: Z set, W=1: the rest of the frame OBU.
        let mut p2 = vec![0x90];
        p2.extend_from_slice(&frame_obu[3..]);
        let mut d = Av1::default();
        assert!(d.starts_frame(&p1) && !d.starts_frame(&p2));
        let f = d.depacketize(&[&p1, &p2]).unwrap().unwrap();
        assert!(f.keyframe);
        let mut want = vec![(OBU_SEQUENCE_HEADER << 3) | 0x02, seq.len() as u8];
        want.extend_from_slice(&seq);
        want.extend_from_slice(&[(OBU_FRAME << 3) | 0x02, 4, 0x10, 0xAA, 0xBB, 0xCC]);
        assert_eq!(f.data, want);
        assert_eq!(d.dimensions(&f.data), Some((320, 240)));
        let c = av1c(d.sequence_header.as_ref().unwrap()).unwrap();
        assert_eq!(find_sequence_header(&f.data), d.sequence_header.as_deref());
        assert_eq!(&c[..4], &[0x81, 0x04, 0x0c, 0]);
        // A continuation without its start is broken.
        assert!(d.depacketize(&[&p2]).is_err());
        assert!(d.depacketize(&[&p1]).is_err());
        // Inter frame: frame_type bits 01.
        let f = d
            .depacketize(&[&[0x10, OBU_FRAME << 3, 0x30][..]])
            .unwrap()
            .unwrap();
        assert!(!f.keyframe);
    }
}
