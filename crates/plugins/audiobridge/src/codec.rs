//! The codecs a participant can use: Opus (libopus through `audiopus`) at the room's rate, and
//! G.711 µ-law/A-law at 8 kHz, resampled to and from the room's rate.

use audiopus::coder::{Decoder as OpusDecoder, Encoder as OpusEncoder};
use audiopus::{Application, Bitrate, Channels, SampleRate};
use jano_plugin::g711::{alaw_to_linear, linear_to_alaw, linear_to_ulaw, ulaw_to_linear};

/// A participant's codec (`codec` in `join`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    Opus,
    Pcmu,
    Pcma,
}

impl Codec {
    pub fn parse(s: &str) -> Option<Codec> {
        match s {
            "opus" => Some(Codec::Opus),
            "pcmu" => Some(Codec::Pcmu),
            "pcma" => Some(Codec::Pcma),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "pcmu",
            Codec::Pcma => "pcma",
        }
    }

    /// The RTP clock rate (what a 20 ms packet advances the timestamp by, ×50).
    pub fn clock_rate(self) -> u32 {
        match self {
            Codec::Opus => 48000,
            Codec::Pcmu | Codec::Pcma => 8000,
        }
    }
}

/// Why a codec could not be set up or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CodecError(pub String);

fn opus_rate(rate: u32) -> Result<SampleRate, CodecError> {
    match rate {
        8000 => Ok(SampleRate::Hz8000),
        12000 => Ok(SampleRate::Hz12000),
        16000 => Ok(SampleRate::Hz16000),
        24000 => Ok(SampleRate::Hz24000),
        48000 => Ok(SampleRate::Hz48000),
        r => Err(CodecError(format!("unsupported sampling rate {r}"))),
    }
}

fn channels(stereo: bool) -> Channels {
    if stereo {
        Channels::Stereo
    } else {
        Channels::Mono
    }
}

/// Decodes one participant's packets to mono PCM at the room's rate.
pub struct Decoder {
    codec: Codec,
    rate: u32,
    opus: Option<OpusDecoder>,
    /// G.711 samples at 8 kHz before resampling.
    narrow: Vec<i16>,
}

impl Decoder {
    pub fn new(codec: Codec, rate: u32) -> Result<Decoder, CodecError> {
        let opus = match codec {
            Codec::Opus => Some(
                OpusDecoder::new(opus_rate(rate)?, Channels::Mono)
                    .map_err(|e| CodecError(format!("Error creating Opus decoder: {e}")))?,
            ),
            Codec::Pcmu | Codec::Pcma => None,
        };
        Ok(Decoder {
            codec,
            rate,
            opus,
            narrow: Vec::new(),
        })
    }

    /// Decodes a packet (`None`: conceal a lost one; `fec`: recover the packet before this
    /// one from its in-band FEC) into `out` (one 20 ms frame at the room's rate). Returns
    /// whether `out` holds audio; on a codec error it holds silence.
    pub fn decode(&mut self, payload: Option<&[u8]>, fec: bool, out: &mut [i16]) -> bool {
        let ok = match self.codec {
            Codec::Opus => self.decode_opus(payload, fec, out),
            Codec::Pcmu | Codec::Pcma => self.decode_g711(payload, out),
        };
        if !ok {
            out.fill(0);
        }
        ok
    }

    fn decode_opus(&mut self, payload: Option<&[u8]>, fec: bool, out: &mut [i16]) -> bool {
        let Some(dec) = self.opus.as_mut() else {
            return false;
        };
        let packet = match payload {
            Some(p) if !p.is_empty() => match audiopus::packet::Packet::try_from(p) {
                Ok(pk) => Some(pk),
                Err(_) => return false,
            },
            _ => None,
        };
        let Ok(signals) = audiopus::MutSignals::try_from(&mut *out) else {
            return false;
        };
        match dec.decode(packet, signals, fec && payload.is_some()) {
            // Frames shorter than 20 ms leave the rest silent.
            Ok(n) => {
                if let Some(rest) = out.get_mut(n..) {
                    rest.fill(0);
                }
                n > 0
            }
            Err(_) => false,
        }
    }

    fn decode_g711(&mut self, payload: Option<&[u8]>, out: &mut [i16]) -> bool {
        let Some(p) = payload else {
            // No concealment for G.711: a lost packet is silence.
            return false;
        };
        self.narrow.clear();
        self.narrow.extend(p.iter().map(|&b| match self.codec {
            Codec::Pcma => alaw_to_linear(b),
            _ => ulaw_to_linear(b),
        }));
        resample(&self.narrow, 8000, out, self.rate);
        true
    }

    /// Decodes one Opus packet whatever its duration (an announcement's frames may be longer
    /// than 20 ms): the samples written to `out`, `None` on an error or for G.711.
    pub fn decode_packet(&mut self, payload: &[u8], out: &mut [i16]) -> Option<usize> {
        let dec = self.opus.as_mut()?;
        let packet = audiopus::packet::Packet::try_from(payload).ok()?;
        let signals = audiopus::MutSignals::try_from(&mut *out).ok()?;
        dec.decode(Some(packet), signals, false).ok()
    }

    /// Forgets the decoder's state (`resetdecoder`).
    pub fn reset(&mut self) {
        if let Ok(d) = Decoder::new(self.codec, self.rate) {
            *self = d;
        }
    }
}

/// The encoder settings of one output stream: participants whose settings and mix are the
/// same share one encoder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EncoderSettings {
    pub codec: Codec,
    /// Bits per second; 0 = libopus decides.
    pub bitrate: u32,
    /// Opus complexity (`quality`, 1–10).
    pub complexity: u8,
    /// Expected packet loss in percent (in-band FEC is on when above 0).
    pub expected_loss: u8,
    pub stereo: bool,
}

/// Encodes the room's mix (PCM at the room's rate) for one output stream.
pub struct Encoder {
    settings: EncoderSettings,
    rate: u32,
    opus: Option<OpusEncoder>,
    narrow: Vec<i16>,
}

impl Encoder {
    pub fn new(settings: EncoderSettings, rate: u32) -> Result<Encoder, CodecError> {
        let opus = match settings.codec {
            Codec::Opus => {
                let err =
                    |e: audiopus::Error| CodecError(format!("Error creating Opus encoder: {e}"));
                let mut enc = OpusEncoder::new(
                    opus_rate(rate)?,
                    channels(settings.stereo),
                    Application::Voip,
                )
                .map_err(err)?;
                let bitrate = if settings.bitrate > 0 {
                    Bitrate::BitsPerSecond(i32::try_from(settings.bitrate).unwrap_or(i32::MAX))
                } else {
                    Bitrate::Auto
                };
                enc.set_bitrate(bitrate).map_err(err)?;
                enc.set_complexity(settings.complexity.clamp(1, 10))
                    .map_err(err)?;
                if settings.expected_loss > 0 {
                    enc.set_inband_fec(true).map_err(err)?;
                    enc.set_packet_loss_perc(settings.expected_loss.min(20))
                        .map_err(err)?;
                }
                Some(enc)
            }
            Codec::Pcmu | Codec::Pcma => None,
        };
        Ok(Encoder {
            settings,
            rate,
            opus,
            narrow: Vec::new(),
        })
    }

    pub fn settings(&self) -> EncoderSettings {
        self.settings
    }

    /// Encodes one frame into `out`; the payload's length, or `None` on a codec error.
    pub fn encode(&mut self, pcm: &[i16], out: &mut Vec<u8>) -> Option<usize> {
        out.clear();
        match self.settings.codec {
            Codec::Opus => {
                let enc = self.opus.as_ref()?;
                out.resize(1500, 0);
                let n = enc.encode(pcm, out).ok()?;
                out.truncate(n);
                Some(n)
            }
            Codec::Pcmu | Codec::Pcma => {
                self.narrow.resize(160, 0);
                resample(pcm, self.rate, &mut self.narrow, 8000);
                let alaw = self.settings.codec == Codec::Pcma;
                out.extend(self.narrow.iter().map(|&s| {
                    if alaw {
                        linear_to_alaw(s)
                    } else {
                        linear_to_ulaw(s)
                    }
                }));
                Some(out.len())
            }
        }
    }
}

/// Resamples mono PCM between rates: linear interpolation up, the average of each output
/// sample's input span down (a box filter, so downsampling does not fold high frequencies
/// back as loudly as picking samples would). `output`'s length sets the output frame.
pub fn resample(input: &[i16], in_rate: u32, output: &mut [i16], out_rate: u32) {
    if input.is_empty() {
        output.fill(0);
        return;
    }
    if in_rate == out_rate {
        for (o, i) in output
            .iter_mut()
            .zip(input.iter().chain(std::iter::repeat(&0)))
        {
            *o = *i;
        }
        return;
    }
    let n_in = input.len();
    let ratio = in_rate as f64 / out_rate as f64;
    let last = n_in - 1;
    for (k, o) in output.iter_mut().enumerate() {
        let pos = k as f64 * ratio;
        *o = if ratio <= 1.0 {
            let i = (pos.floor() as usize).min(last);
            let frac = pos - pos.floor();
            let a = f64::from(input.get(i).copied().unwrap_or(0));
            let b = f64::from(input.get(i + 1).or(input.get(last)).copied().unwrap_or(0));
            (a + (b - a) * frac).round() as i16
        } else {
            let from = (pos.floor() as usize).min(last);
            let to = (((k + 1) as f64 * ratio).floor() as usize).clamp(from + 1, n_in);
            let span = input.get(from..to).unwrap_or_default();
            let sum: i64 = span.iter().map(|&s| i64::from(s)).sum();
            (sum / span.len().max(1) as i64) as i16
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(freq: f64, rate: u32, n: usize, amp: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                (amp * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as i16
            })
            .collect()
    }

    /// The energy of `freq` in `x` (one DFT bin).
    fn bin(x: &[i16], freq: f64, rate: u32) -> f64 {
        let (mut re, mut im) = (0.0, 0.0);
        for (i, &s) in x.iter().enumerate() {
            let a = 2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64;
            re += f64::from(s) * a.cos();
            im += f64::from(s) * a.sin();
        }
        (re * re + im * im).sqrt() / x.len() as f64
    }

    #[test]
    fn g711_round_trips_within_a_quantisation_step() {
        for s in (-32000i32..32000).step_by(97) {
            let s = s as i16;
            let u = ulaw_to_linear(linear_to_ulaw(s));
            let a = alaw_to_linear(linear_to_alaw(s));
            let tol = (i32::from(s).abs() / 16).max(16);
            assert!(
                (i32::from(u) - i32::from(s)).abs() <= tol,
                "ulaw {s} -> {u}"
            );
            assert!(
                (i32::from(a) - i32::from(s)).abs() <= tol,
                "alaw {s} -> {a}"
            );
        }
        // Known values of the tables.
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(linear_to_ulaw(0), 0xff);
    }

    #[test]
    fn opus_round_trip_keeps_the_tone() {
        let settings = EncoderSettings {
            codec: Codec::Opus,
            bitrate: 32000,
            complexity: 4,
            expected_loss: 0,
            stereo: false,
        };
        let mut enc = Encoder::new(settings, 16000).unwrap();
        let mut dec = Decoder::new(Codec::Opus, 16000).unwrap();
        let input = tone(440.0, 16000, 320 * 50, 8000.0);
        let mut out = Vec::new();
        let mut decoded = Vec::new();
        for frame in input.chunks(320) {
            let mut buf = Vec::new();
            enc.encode(frame, &mut buf).unwrap();
            let mut pcm = vec![0i16; 320];
            assert!(dec.decode(Some(&buf), false, &mut pcm));
            out.push(buf.len());
            decoded.extend_from_slice(&pcm);
        }
        let tail = &decoded[320 * 10..];
        assert!(bin(tail, 440.0, 16000) > 20.0 * bin(tail, 1000.0, 16000));
        // Concealment produces a frame too.
        let mut pcm = vec![0i16; 320];
        dec.decode(None, false, &mut pcm);
    }

    #[test]
    fn g711_through_resampling_keeps_the_tone() {
        let settings = EncoderSettings {
            codec: Codec::Pcmu,
            bitrate: 0,
            complexity: 4,
            expected_loss: 0,
            stereo: false,
        };
        let mut enc = Encoder::new(settings, 16000).unwrap();
        let mut dec = Decoder::new(Codec::Pcmu, 16000).unwrap();
        let input = tone(600.0, 16000, 320 * 10, 8000.0);
        let mut decoded = Vec::new();
        for frame in input.chunks(320) {
            let mut buf = Vec::new();
            assert_eq!(enc.encode(frame, &mut buf), Some(160));
            let mut pcm = vec![0i16; 320];
            assert!(dec.decode(Some(&buf), false, &mut pcm));
            decoded.extend_from_slice(&pcm);
        }
        assert!(bin(&decoded, 600.0, 16000) > 20.0 * bin(&decoded, 2000.0, 16000));
        assert!(bin(&decoded, 600.0, 16000) > 2000.0);
    }
}
