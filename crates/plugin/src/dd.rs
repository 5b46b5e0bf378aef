//! The AV1 RTP dependency descriptor header extension (AV1 RTP payload format, appendix A):
//! which spatial and temporal layer each packet's frame belongs to, so that an SFU can pick
//! the layers of an AV1 SVC stream per receiver without looking into the payload.
//!
//! A descriptor names a *template*; the templates (and their layers) arrive in a template
//! dependency structure attached to keyframes, which [`DdReader`] keeps per stream.

use crate::rtp::SvcLayers;

/// The extension's URI in `a=extmap`.
pub const DD_URI: &str =
    "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension";

/// Decode target indication "switch": a receiver may start decoding that target at this frame.
const DTI_SWITCH: u8 = 2;

/// The templates are indexed by a 6-bit id.
const MAX_TEMPLATES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq)]
struct Template {
    sid: u8,
    tid: u8,
    /// Decode target indication per decode target (2 bits each).
    dtis: Vec<u8>,
}

/// A template dependency structure: what a stream's frames can be.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Structure {
    id_offset: u8,
    dt_count: usize,
    templates: Vec<Template>,
    /// The (spatial, temporal) layer each decode target ends at.
    dt_layers: Vec<(u8, u8)>,
}

/// What one packet's descriptor says, resolved against the stream's structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdFrame {
    pub begin: bool,
    pub end: bool,
    pub frame_number: u16,
    pub sid: u8,
    pub tid: u8,
    /// The temporal layers (bit per layer) of the decode targets this frame is a switch
    /// point of: a receiver of lower layers can move up to them here.
    pub switch_to: u8,
    /// The descriptor carried a (new) template dependency structure.
    pub structure: bool,
}

impl DdFrame {
    /// As the generic layer description the SFU switches on; `intra` is the payload's say.
    pub fn layers(&self, intra: bool) -> SvcLayers {
        SvcLayers {
            sid: self.sid,
            tid: self.tid,
            switch_to: self.switch_to,
            begin: self.begin,
            end: self.end,
            intra,
        }
    }
}

/// Reads a stream's descriptors in order, keeping the latest template structure.
#[derive(Debug, Clone, Default)]
pub struct DdReader {
    structure: Option<Structure>,
}

impl DdReader {
    /// The frame a descriptor describes; `None` if it is malformed or names a template of a
    /// structure not seen yet (a receiver cannot interpret it either until the next keyframe).
    pub fn read(&mut self, dd: &[u8]) -> Option<DdFrame> {
        let mut b = Bits::new(dd);
        let begin = b.flag()?;
        let end = b.flag()?;
        let template_id = b.bits(6)? as u8;
        let frame_number = b.bits(16)? as u16;
        let mut fresh = false;
        let mut custom_dtis = false;
        if dd.len() > 3 {
            let has_structure = b.flag()?;
            let has_active_targets = b.flag()?;
            custom_dtis = b.flag()?;
            let _custom_fdiffs = b.flag()?;
            let _custom_chains = b.flag()?;
            if has_structure {
                self.structure = Some(read_structure(&mut b)?);
                fresh = true;
            }
            if has_active_targets {
                let n = self.structure.as_ref()?.dt_count;
                b.bits(n as u32)?;
            }
        }
        let s = self.structure.as_ref()?;
        let index =
            (usize::from(template_id) + MAX_TEMPLATES - usize::from(s.id_offset)) % MAX_TEMPLATES;
        let t = s.templates.get(index)?;
        let custom;
        let dtis: &[u8] = if custom_dtis {
            custom = (0..s.dt_count)
                .map(|_| b.bits(2).map(|v| v as u8))
                .collect::<Option<Vec<u8>>>()?;
            &custom
        } else {
            &t.dtis
        };
        let switch_to = dtis
            .iter()
            .zip(&s.dt_layers)
            .filter(|(dti, _)| **dti == DTI_SWITCH)
            .fold(0u8, |m, (_, (_, tid))| m | 1 << tid);
        Some(DdFrame {
            begin,
            end,
            frame_number,
            sid: t.sid,
            tid: t.tid,
            switch_to,
            structure: fresh,
        })
    }
}

fn read_structure(b: &mut Bits) -> Option<Structure> {
    let id_offset = b.bits(6)? as u8;
    let dt_count = b.bits(5)? as usize + 1;
    // template_layers(): each template's layers follow from the previous one's.
    let mut layers = Vec::new();
    let (mut sid, mut tid) = (0u8, 0u8);
    loop {
        if layers.len() == MAX_TEMPLATES {
            return None;
        }
        layers.push((sid, tid));
        match b.bits(2)? {
            1 => tid = tid.checked_add(1).filter(|t| *t < 8)?,
            2 => {
                tid = 0;
                sid = sid.checked_add(1).filter(|s| *s < 4)?;
            }
            3 => break,
            _ => {}
        }
    }
    let max_sid = sid;
    // template_dtis()
    let mut templates = Vec::with_capacity(layers.len());
    for (sid, tid) in layers {
        let dtis = (0..dt_count)
            .map(|_| b.bits(2).map(|v| v as u8))
            .collect::<Option<Vec<u8>>>()?;
        templates.push(Template { sid, tid, dtis });
    }
    // template_fdiffs(): read past (frame references are not needed to pick layers).
    for _ in 0..templates.len() {
        while b.flag()? {
            b.bits(4)?;
        }
    }
    // template_chains()
    let chains = b.ns(dt_count as u32 + 1)?;
    if chains != 0 {
        for _ in 0..dt_count {
            b.ns(chains)?;
        }
        for _ in 0..templates.len() * chains as usize {
            b.bits(4)?;
        }
    }
    // decode_target_layers(): the highest layers of the templates each target uses.
    let dt_layers = (0..dt_count)
        .map(|dt| {
            templates
                .iter()
                .filter(|t| t.dtis.get(dt).is_some_and(|d| *d != 0))
                .fold((0, 0), |(s, t), x| (s.max(x.sid), t.max(x.tid)))
        })
        .collect();
    // render_resolutions()
    if b.flag()? {
        for _ in 0..=max_sid {
            b.bits(32)?;
        }
    }
    Some(Structure {
        id_offset,
        dt_count,
        templates,
        dt_layers,
    })
}

/// A most-significant-bit-first reader, as the descriptor's syntax is written.
struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Bits<'a> {
    fn new(data: &'a [u8]) -> Bits<'a> {
        Bits { data, at: 0 }
    }

    fn flag(&mut self) -> Option<bool> {
        self.bits(1).map(|v| v == 1)
    }

    /// `f(n)`, n ≤ 32.
    fn bits(&mut self, n: u32) -> Option<u32> {
        let mut v: u64 = 0;
        for _ in 0..n {
            let byte = *self.data.get(self.at / 8)?;
            let bit = (byte >> (7 - self.at % 8)) & 1;
            v = (v << 1) | u64::from(bit);
            self.at += 1;
        }
        u32::try_from(v).ok()
    }

    /// `ns(n)`: a non-symmetric unsigned value below `n`.
    fn ns(&mut self, n: u32) -> Option<u32> {
        if n <= 1 {
            return Some(0);
        }
        let w = 32 - n.leading_zeros();
        let m = (1u32 << w) - n;
        let v = self.bits(w - 1)?;
        if v < m {
            return Some(v);
        }
        let extra = self.bits(1)?;
        Some((v << 1) - m + extra)
    }
}

/// Writes descriptors (tests, and anyone sending AV1 SVC through a plugin).
#[derive(Debug, Default)]
pub struct BitWriter {
    bytes: Vec<u8>,
    len: usize,
}

impl BitWriter {
    pub fn put(&mut self, n: u32, v: u32) {
        for i in (0..n).rev() {
            if self.len.is_multiple_of(8) {
                self.bytes.push(0);
            }
            if (v >> i) & 1 == 1 {
                if let Some(b) = self.bytes.last_mut() {
                    *b |= 0x80 >> (self.len % 8);
                }
            }
            self.len += 1;
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// The descriptors of a stream of `spatial` × `temporal` layers in the simplest full SVC
/// layout: one template per layer pair (by spatial, then temporal layer), one decode target
/// per pair, served by every template of lower or equal layers and switched into by the
/// frames of its own pair; no chains or resolutions. For tests, and for anyone sending AV1
/// SVC through a plugin.
#[derive(Debug, Clone, Copy)]
pub struct SimpleSvc {
    pub spatial: u8,
    pub temporal: u8,
}

impl SimpleSvc {
    /// The descriptor of a frame's packet of layers (`sid`, `tid`); with `structure` (on a
    /// keyframe) the template structure is attached.
    pub fn descriptor(
        &self,
        sid: u8,
        tid: u8,
        edges: (bool, bool),
        frame: u16,
        structure: bool,
    ) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.put(1, u32::from(edges.0));
        w.put(1, u32::from(edges.1));
        w.put(6, u32::from(sid * self.temporal + tid));
        w.put(16, u32::from(frame));
        if structure {
            let pairs: Vec<(u8, u8)> = (0..self.spatial)
                .flat_map(|s| (0..self.temporal).map(move |t| (s, t)))
                .collect();
            w.put(5, 0b10000); // structure present, nothing else
            w.put(6, 0); // template id offset
            w.put(5, pairs.len() as u32 - 1);
            for (i, (s, _)) in pairs.iter().enumerate() {
                let next = match pairs.get(i + 1) {
                    None => 3,
                    Some((ns, _)) if ns != s => 2,
                    _ => 1,
                };
                w.put(2, next);
            }
            for (s, t) in &pairs {
                for (ds, dt) in &pairs {
                    let dti = if s > ds || t > dt {
                        0
                    } else if *t > 0 && t == dt && s == ds {
                        DTI_SWITCH
                    } else {
                        3
                    };
                    w.put(2, u32::from(dti));
                }
            }
            for _ in &pairs {
                w.put(1, 0); // no frame references
            }
            // No chains: ns(decode targets + 1) = 0.
            let n = pairs.len() as u32 + 1;
            w.put(32 - n.leading_zeros() - 1, 0);
            w.put(1, 0); // no resolutions
        }
        w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_layers_from_the_structure() {
        let mut r = DdReader::default();
        // Without a structure nothing can be told.
        assert_eq!(
            r.read(
                &SimpleSvc {
                    spatial: 3,
                    temporal: 3
                }
                .descriptor(1, 2, (true, false), 7, false)
            ),
            None
        );
        let key = r
            .read(
                &SimpleSvc {
                    spatial: 3,
                    temporal: 3,
                }
                .descriptor(0, 0, (true, false), 8, true),
            )
            .expect("keyframe with structure");
        assert_eq!((key.sid, key.tid, key.structure), (0, 0, true));
        assert!(key.begin && !key.end);
        assert_eq!(key.frame_number, 8);
        for sid in 0..3 {
            for tid in 0..3 {
                let f = r
                    .read(
                        &SimpleSvc {
                            spatial: 3,
                            temporal: 3,
                        }
                        .descriptor(sid, tid, (false, true), 9, false),
                    )
                    .expect("frame");
                assert_eq!((f.sid, f.tid, f.structure), (sid, tid, false));
                assert!(f.end && !f.begin);
                let want = if tid > 0 { 1 << tid } else { 0 };
                assert_eq!(f.switch_to, want, "switch point ({sid}, {tid})");
            }
        }
        // A template id the structure does not have.
        let mut bad = SimpleSvc {
            spatial: 3,
            temporal: 3,
        }
        .descriptor(0, 0, (true, true), 1, false);
        bad[0] = (bad[0] & 0xC0) | 40;
        assert_eq!(r.read(&bad), None);
    }

    #[test]
    fn template_id_offset_and_active_targets() {
        let mut w = BitWriter::default();
        w.put(1, 1);
        w.put(1, 1);
        w.put(6, 5); // template 5 - offset 4 = index 1
        w.put(16, 300);
        w.put(5, 0b11000); // structure and active decode targets
        w.put(6, 4);
        w.put(5, 1); // two decode targets
        w.put(2, 1); // template 0: (0,0); next is (0,1)
        w.put(2, 3); // template 1: (0,1); last
        w.put(2, 3);
        w.put(2, 3); // template 0 serves both targets
        w.put(2, 0);
        w.put(2, 2); // template 1 switches into target 1
        w.put(1, 0);
        w.put(1, 1);
        w.put(4, 0);
        w.put(1, 0); // fdiffs: none, then one of 1
        w.put(2, 0); // ns(3) = 0: no chains
        w.put(1, 0); // no resolutions
        w.put(2, 0b11); // active decode targets
        let f = DdReader::default().read(&w.finish()).expect("frame");
        assert_eq!((f.sid, f.tid, f.frame_number), (0, 1, 300));
        assert!(f.switch_to == 0b10 && f.structure);
    }

    #[test]
    fn truncated_and_hostile_input_is_refused() {
        let full = SimpleSvc {
            spatial: 2,
            temporal: 2,
        }
        .descriptor(1, 1, (true, true), 3, true);
        for n in 0..full.len() {
            let mut r = DdReader::default();
            assert_eq!(r.read(&full[..n]), None, "{n} bytes");
        }
        // Endless template layers: capped, no panic.
        let mut w = BitWriter::default();
        w.put(24, 0);
        w.put(5, 0b10000);
        w.put(6, 0);
        w.put(5, 0);
        for _ in 0..70 {
            w.put(2, 0);
        }
        assert_eq!(DdReader::default().read(&w.finish()), None);
        for b in [0x00u8, 0x55, 0xaa, 0xff] {
            let mut r = DdReader::default();
            let _ = r.read(&[b; 40]);
            let _ = r.read(&[b; 3]);
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        // A fixed linear congruential sequence: the same inputs every run.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut r = DdReader::default();
        for i in 0..20_000usize {
            let len = i % 48;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (x >> 56) as u8
                })
                .collect();
            if let Some(f) = r.read(&bytes) {
                assert!(f.sid < 4 && f.tid < 8);
            }
        }
    }

    #[test]
    fn non_symmetric_values() {
        // ns(5): w = 3, m = 3; 0..3 in two bits, 3 and 4 take a third.
        let mut w = BitWriter::default();
        w.put(2, 2);
        w.put(2, 3);
        w.put(1, 1);
        let bytes = w.finish();
        let mut b = Bits::new(&bytes);
        assert_eq!(b.ns(5), Some(2));
        assert_eq!(b.ns(5), Some(4));
    }
}
