//! G.711 (ITU-T G.711) μ-law and A-law to 16-bit linear PCM, and L16 (RFC 3551 §4.5.11:
//! big-endian 16-bit samples).

pub use jano_plugin::g711::{alaw_to_linear, ulaw_to_linear};

/// Which PCM flavour a recording holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pcm {
    /// G.711 μ-law (PCMU), 8 kHz.
    Ulaw,
    /// G.711 A-law (PCMA), 8 kHz.
    Alaw,
    /// L16 at the given rate (mono).
    L16(u32),
}

impl Pcm {
    /// For an `.mjr` codec name.
    pub fn for_codec(codec: &str) -> Option<Pcm> {
        match codec.to_ascii_lowercase().as_str() {
            "pcmu" => Some(Pcm::Ulaw),
            "pcma" => Some(Pcm::Alaw),
            "l16" => Some(Pcm::L16(16000)),
            "l16-48" => Some(Pcm::L16(48000)),
            _ => None,
        }
    }

    /// Sample rate.
    pub fn rate(self) -> u32 {
        match self {
            Pcm::Ulaw | Pcm::Alaw => 8000,
            Pcm::L16(r) => r,
        }
    }

    /// Decodes one RTP payload, appending the samples.
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        match self {
            Pcm::Ulaw => out.extend(payload.iter().map(|&b| ulaw_to_linear(b))),
            Pcm::Alaw => out.extend(payload.iter().map(|&b| alaw_to_linear(b))),
            Pcm::L16(_) => out.extend(
                payload
                    .chunks_exact(2)
                    .map(|c| i16::from_be_bytes([c[0], c[1]])),
            ),
        }
    }

    /// Samples one RTP payload holds.
    pub fn samples_in(self, payload: &[u8]) -> usize {
        match self {
            Pcm::L16(_) => payload.len() / 2,
            _ => payload.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_reference_values() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn decode_payloads() {
        let mut out = Vec::new();
        Pcm::L16(16000).decode(&[0x01, 0x02, 0xff, 0xfe, 0x07], &mut out);
        assert_eq!(out, vec![0x0102, -2]);
        assert_eq!(Pcm::L16(16000).samples_in(&[0; 5]), 2);
        out.clear();
        Pcm::Ulaw.decode(&[0xFF, 0x80], &mut out);
        assert_eq!(out, vec![0, 32124]);
        assert_eq!(Pcm::for_codec("PCMA"), Some(Pcm::Alaw));
        assert_eq!(Pcm::for_codec("g722"), None);
    }
}
