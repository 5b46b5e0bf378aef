//! SRTP (RFC 3711) for the plain RTP plugins exchange with other hosts: the
//! `AES_CM_128_HMAC_SHA1_80`/`_32` suites an SDES key names, as Janus's `srtp_suite` (80 or 32)
//! and `srtp_crypto` (base64 of the 16-byte master key and 14-byte master salt) set them on RTP
//! forwarders, remote publishers and Streaming sources. RTP only: RTCP stays plain there.
//!
//! One [`SrtpSender`] or [`SrtpReceiver`] per direction; each keeps the rollover counter of
//! every SSRC it saw. No blocking and no allocation beyond the output packet.

use aws_lc_rs::cipher::{EncryptingKey, EncryptionContext, UnboundCipherKey, AES_128};
use aws_lc_rs::hmac;
use aws_lc_rs::iv::FixedLength;
use base64::Engine;

/// Why SRTP could not be set up or a packet not be processed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SrtpError {
    #[error("Invalid SRTP suite ({0})")]
    Suite(i64),
    #[error("Invalid SRTP crypto ({0})")]
    Crypto(String),
    #[error("not an RTP packet")]
    NotRtp,
    #[error("SRTP authentication failed")]
    Auth,
    #[error("SRTP cipher failure")]
    Cipher,
}

/// The authentication tag length of the suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrtpSuite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    Sha1_80,
    /// `AES_CM_128_HMAC_SHA1_32`.
    Sha1_32,
}

impl SrtpSuite {
    /// Janus's `srtp_suite` number.
    pub fn from_janus(n: i64) -> Result<SrtpSuite, SrtpError> {
        match n {
            80 => Ok(SrtpSuite::Sha1_80),
            32 => Ok(SrtpSuite::Sha1_32),
            other => Err(SrtpError::Suite(other)),
        }
    }

    fn tag_len(self) -> usize {
        match self {
            SrtpSuite::Sha1_80 => 10,
            SrtpSuite::Sha1_32 => 4,
        }
    }
}

const MASTER_KEY_LEN: usize = 16;
const MASTER_SALT_LEN: usize = 14;

/// The session keys derived from a master key and salt (RFC 3711 §4.3, key derivation rate 0).
struct SessionKeys {
    cipher: EncryptingKey,
    auth: hmac::Key,
    salt: [u8; MASTER_SALT_LEN],
    tag_len: usize,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys")
            .field("tag_len", &self.tag_len)
            .finish_non_exhaustive()
    }
}

/// AES-128 in counter mode over `data` in place, counter block `iv`.
fn aes_cm(key: &EncryptingKey, iv: [u8; 16], data: &mut [u8]) -> Result<(), SrtpError> {
    key.less_safe_encrypt(data, EncryptionContext::Iv128(FixedLength::from(iv)))
        .map(|_| ())
        .map_err(|_| SrtpError::Cipher)
}

fn ctr_key(key: &[u8]) -> Result<EncryptingKey, SrtpError> {
    let k = UnboundCipherKey::new(&AES_128, key).map_err(|_| SrtpError::Cipher)?;
    EncryptingKey::ctr(k).map_err(|_| SrtpError::Cipher)
}

impl SessionKeys {
    fn derive(master: &[u8], suite: SrtpSuite) -> Result<SessionKeys, SrtpError> {
        Self::derive_labels(master, suite.tag_len(), 0)
    }

    /// SRTP's keys come from labels 0–2, SRTCP's from 3–5 (RFC 3711 §4.3.2).
    fn derive_labels(
        master: &[u8],
        tag_len: usize,
        first_label: u8,
    ) -> Result<SessionKeys, SrtpError> {
        let (Some(mkey), Some(msalt)) = (
            master.get(..MASTER_KEY_LEN),
            master.get(MASTER_KEY_LEN..MASTER_KEY_LEN + MASTER_SALT_LEN),
        ) else {
            return Err(SrtpError::Crypto("key and salt must be 30 bytes".into()));
        };
        let prf = ctr_key(mkey)?;
        // x = label at bit 48 of the key id, XORed into the salt; the counter block is x·2^16.
        let kdf = |label: u8, out: &mut [u8]| -> Result<(), SrtpError> {
            let mut iv = [0u8; 16];
            iv[..MASTER_SALT_LEN].copy_from_slice(msalt);
            iv[7] ^= label;
            out.fill(0);
            aes_cm(&prf, iv, out)
        };
        let mut enc = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; MASTER_SALT_LEN];
        kdf(first_label, &mut enc)?;
        kdf(first_label + 1, &mut auth)?;
        kdf(first_label + 2, &mut salt)?;
        Ok(SessionKeys {
            cipher: ctr_key(&enc)?,
            auth: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &auth),
            salt,
            tag_len,
        })
    }

    /// The counter block of packet `index` of `ssrc` (RFC 3711 §4.1.1).
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..MASTER_SALT_LEN].copy_from_slice(&self.salt);
        for (b, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *b ^= s;
        }
        let idx = index.to_be_bytes();
        for (b, s) in iv[8..14].iter_mut().zip(&idx[2..8]) {
            *b ^= s;
        }
        iv
    }

    fn tag(&self, authenticated: &[u8], roc: u32) -> hmac::Tag {
        let mut ctx = hmac::Context::with_key(&self.auth);
        ctx.update(authenticated);
        ctx.update(&roc.to_be_bytes());
        ctx.sign()
    }
}

/// Decodes Janus's `srtp_crypto` (base64 of key and salt, at least 30 bytes).
fn master_of(crypto: &str) -> Result<Vec<u8>, SrtpError> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(crypto.trim())
        .map_err(|_| SrtpError::Crypto(crypto.to_owned()))?;
    if raw.len() < MASTER_KEY_LEN + MASTER_SALT_LEN {
        return Err(SrtpError::Crypto(crypto.to_owned()));
    }
    Ok(raw)
}

/// Where an RTP packet's payload starts, and its SSRC and sequence number.
fn rtp_layout(p: &[u8]) -> Option<(usize, u32, u16)> {
    let at = crate::rtp::payload_start(p)?;
    let seq = u16::from_be_bytes([*p.get(2)?, *p.get(3)?]);
    let ssrc = u32::from_be_bytes([*p.get(8)?, *p.get(9)?, *p.get(10)?, *p.get(11)?]);
    Some((at, ssrc, seq))
}

/// Per SSRC: the highest sequence number seen and the rollover counter.
#[derive(Debug, Default)]
struct Rollover {
    streams: Vec<(u32, u16, u32)>,
}

impl Rollover {
    fn get(&self, ssrc: u32) -> Option<(u16, u32)> {
        self.streams
            .iter()
            .find(|s| s.0 == ssrc)
            .map(|s| (s.1, s.2))
    }

    fn set(&mut self, ssrc: u32, seq: u16, roc: u32) {
        match self.streams.iter_mut().find(|s| s.0 == ssrc) {
            Some(s) => {
                s.1 = seq;
                s.2 = roc;
            }
            None => {
                // A forwarder sees a handful of SSRCs (simulcast layers, source changes).
                if self.streams.len() >= 16 {
                    self.streams.remove(0);
                }
                self.streams.push((ssrc, seq, roc));
            }
        }
    }

    /// The rollover counter packet `seq` most likely belongs to (RFC 3711 Appendix A).
    fn estimate(&self, ssrc: u32, seq: u16) -> u32 {
        let Some((last, roc)) = self.get(ssrc) else {
            return 0;
        };
        if last < 0x8000 {
            if seq > last && seq - last > 0x8000 {
                roc.wrapping_sub(1)
            } else {
                roc
            }
        } else if last - 0x8000 > seq {
            roc.wrapping_add(1)
        } else {
            roc
        }
    }

    /// Records a packet that was sent or authenticated.
    fn update(&mut self, ssrc: u32, seq: u16, roc: u32) {
        match self.get(ssrc) {
            None => self.set(ssrc, seq, roc),
            Some((last, cur)) => {
                if roc == cur.wrapping_add(1) || (roc == cur && seq > last) {
                    self.set(ssrc, seq, roc);
                }
            }
        }
    }
}

/// Protects outgoing RTP.
#[derive(Debug)]
pub struct SrtpSender {
    keys: SessionKeys,
    roc: Rollover,
}

impl SrtpSender {
    /// From Janus's `srtp_suite` and `srtp_crypto`.
    pub fn new(suite: SrtpSuite, crypto: &str) -> Result<SrtpSender, SrtpError> {
        Ok(SrtpSender {
            keys: SessionKeys::derive(&master_of(crypto)?, suite)?,
            roc: Rollover::default(),
        })
    }

    /// The SRTP packet for a plain RTP packet.
    pub fn protect(&mut self, rtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let (at, ssrc, seq) = rtp_layout(rtp).ok_or(SrtpError::NotRtp)?;
        // The sender counts its own wraps: a sequence number well below the last one wrapped.
        let roc = match self.roc.get(ssrc) {
            None => 0,
            Some((last, roc)) if seq < last && last - seq > 0x8000 => roc.wrapping_add(1),
            Some((_, roc)) => roc,
        };
        self.roc.update(ssrc, seq, roc);
        let index = u64::from(roc) << 16 | u64::from(seq);
        let mut out = Vec::with_capacity(rtp.len() + self.keys.tag_len);
        out.extend_from_slice(rtp);
        if let Some(payload) = out.get_mut(at..) {
            aes_cm(&self.keys.cipher, self.keys.iv(ssrc, index), payload)?;
        }
        let tag = self.keys.tag(&out, roc);
        out.extend_from_slice(tag.as_ref().get(..self.keys.tag_len).unwrap_or_default());
        Ok(out)
    }
}

/// Protects outgoing RTCP (SRTCP, RFC 3711 §3.4): everything after the sender's SSRC
/// encrypted, the E flag and index appended, an 80-bit tag (SRTCP's, whatever the RTP suite).
#[derive(Debug)]
pub struct SrtcpSender {
    keys: SessionKeys,
    index: u32,
}

impl SrtcpSender {
    pub fn new(crypto: &str) -> Result<SrtcpSender, SrtpError> {
        Ok(SrtcpSender {
            keys: SessionKeys::derive_labels(&master_of(crypto)?, 10, 3)?,
            index: 0,
        })
    }

    pub fn protect(&mut self, rtcp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let ssrc = rtcp
            .get(4..8)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(SrtpError::NotRtp)?;
        let index = self.index;
        self.index = (self.index + 1) & 0x7fff_ffff;
        let mut out = Vec::with_capacity(rtcp.len() + 14);
        out.extend_from_slice(rtcp);
        if let Some(body) = out.get_mut(8..) {
            aes_cm(
                &self.keys.cipher,
                self.keys.iv(ssrc, u64::from(index)),
                body,
            )?;
        }
        out.extend_from_slice(&(0x8000_0000 | index).to_be_bytes());
        let tag = hmac::sign(&self.keys.auth, &out);
        out.extend_from_slice(tag.as_ref().get(..self.keys.tag_len).unwrap_or_default());
        Ok(out)
    }
}

/// Checks and decrypts incoming SRTP.
#[derive(Debug)]
pub struct SrtpReceiver {
    keys: SessionKeys,
    roc: Rollover,
}

impl SrtpReceiver {
    pub fn new(suite: SrtpSuite, crypto: &str) -> Result<SrtpReceiver, SrtpError> {
        Ok(SrtpReceiver {
            keys: SessionKeys::derive(&master_of(crypto)?, suite)?,
            roc: Rollover::default(),
        })
    }

    /// The plain RTP packet of an SRTP packet whose tag is right.
    pub fn unprotect(&mut self, srtp: &[u8]) -> Result<Vec<u8>, SrtpError> {
        let tag_len = self.keys.tag_len;
        let body_len = srtp.len().checked_sub(tag_len).ok_or(SrtpError::NotRtp)?;
        let (body, tag) = srtp.split_at(body_len);
        let (at, ssrc, seq) = rtp_layout(body).ok_or(SrtpError::NotRtp)?;
        let roc = self.roc.estimate(ssrc, seq);
        let want = self.keys.tag(body, roc);
        let want = want.as_ref().get(..tag_len).unwrap_or_default();
        // Constant time: the tag is a secret-dependent value.
        if aws_lc_rs::constant_time::verify_slices_are_equal(want, tag).is_err() {
            return Err(SrtpError::Auth);
        }
        self.roc.update(ssrc, seq, roc);
        let index = u64::from(roc) << 16 | u64::from(seq);
        let mut out = body.to_vec();
        if let Some(payload) = out.get_mut(at..) {
            aes_cm(&self.keys.cipher, self.keys.iv(ssrc, index), payload)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    #[test]
    fn key_derivation_matches_rfc_3711() {
        // RFC 3711 appendix B.3.
        let mut master = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        master.extend(hex("0EC675AD498AFEEBB6960B3AABE6"));
        let k = SessionKeys::derive(&master, SrtpSuite::Sha1_80).expect("keys");
        assert_eq!(k.salt.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
        // The cipher key: encrypting a zero block at counter 0 with it equals doing so with
        // the expected key.
        let want = ctr_key(&hex("C61E7A93744F39EE10734AFE3FF7A087")).expect("key");
        let (mut a, mut b) = ([0u8; 16], [0u8; 16]);
        aes_cm(&k.cipher, [0; 16], &mut a).expect("ctr");
        aes_cm(&want, [0; 16], &mut b).expect("ctr");
        assert_eq!(a, b);
    }

    fn rtp(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut p = vec![0x90, 96];
        p.extend_from_slice(&seq.to_be_bytes());
        p.extend_from_slice(&1234u32.to_be_bytes());
        p.extend_from_slice(&ssrc.to_be_bytes());
        // One-word header extension.
        p.extend_from_slice(&[0xBE, 0xDE, 0, 1, 0x10, 0xAA, 0, 0]);
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn round_trip_across_a_rollover_and_tampering_is_refused() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 30]);
        for suite in [SrtpSuite::Sha1_80, SrtpSuite::Sha1_32] {
            let mut tx = SrtpSender::new(suite, &key).expect("sender");
            let mut rx = SrtpReceiver::new(suite, &key).expect("receiver");
            for i in 0..8u32 {
                let seq = 65532u16.wrapping_add(i as u16);
                let plain = rtp(seq, 42, &[i as u8; 40]);
                let s = tx.protect(&plain).expect("protect");
                assert_eq!(s.len(), plain.len() + suite.tag_len());
                assert_eq!(s[..20], plain[..20], "header and extension stay clear");
                assert_ne!(s[20..60], plain[20..], "payload encrypted");
                assert_eq!(rx.unprotect(&s).expect("unprotect"), plain);
            }
            let mut bad = tx.protect(&rtp(5, 42, &[1; 40])).expect("protect");
            bad[25] ^= 1;
            assert_eq!(rx.unprotect(&bad), Err(SrtpError::Auth));
        }
        assert_eq!(SrtpSuite::from_janus(64), Err(SrtpError::Suite(64)));
        assert!(SrtpSender::new(SrtpSuite::Sha1_80, "c2hvcnQ=").is_err());
    }
}
