//! Reading `.mjr` files back, for Record&Play and for tests.
//!
//! Input is untrusted (a file on disk may be cut short by a crash or be anything at all), so
//! every length is checked against what is actually there and every failure is a
//! [`ReadError`], never a panic. Frames are returned as stored: RTP packets in arrival order
//! (players reorder by sequence number), data frames with their 8-byte time prefix.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::Path;

use serde_json::{Map, Value};

use crate::{MediaKind, ReadError, FRAME_PREFIX, MAGIC_V1, MAGIC_V2, RTP_HEADER_LEN};

/// Which generation of the format a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MjrVersion {
    /// `MEETECHO` files: a media word instead of JSON, no frame timestamps.
    V1,
    /// `MJR00002` files: JSON info header, frame timestamps.
    V2,
}

/// The info header of a recording.
#[derive(Debug, Clone, PartialEq)]
pub struct MjrInfo {
    /// `t`: the medium.
    pub kind: MediaKind,
    /// `c`: the codec (for V1 files, the codec Janus assumes: opus, vp8 or text).
    pub codec: String,
    /// `f`: codec-specific info (fmtp), if any.
    pub fmtp: Option<String>,
    /// `d`: stream description, if any.
    pub description: Option<String>,
    /// `x`: RTP extension ids to URIs (entries that are not id 1..=15 → string are skipped).
    pub extmaps: BTreeMap<u8, String>,
    /// `s`: creation time, µs since the UNIX epoch (0 for V1 files).
    pub created_us: i64,
    /// `u`: time the first frame was written, µs since the UNIX epoch (0 for V1 files).
    pub first_frame_us: i64,
    /// `or`: Opus RED payload type, if any.
    pub opusred_pt: Option<u8>,
    /// `e`: whether the media is end-to-end encrypted.
    pub encrypted: bool,
    /// The whole header as parsed (empty for V1 files), for keys this struct does not know.
    pub raw: Map<String, Value>,
}

/// One stored frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Milliseconds since the first frame was written (always 0 in V1 files).
    pub timestamp_ms: u32,
    /// The payload as stored: an RTP packet, or for data the 8-byte time prefix and message.
    pub data: Vec<u8>,
}

impl Frame {
    /// The RTP sequence number, if the payload is long enough to be RTP.
    pub fn rtp_seq(&self) -> Option<u16> {
        if self.data.len() < RTP_HEADER_LEN {
            return None;
        }
        let b = self.data.get(2..4)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    }

    /// The RTP timestamp, if the payload is long enough to be RTP.
    pub fn rtp_timestamp(&self) -> Option<u32> {
        if self.data.len() < RTP_HEADER_LEN {
            return None;
        }
        let b = self.data.get(4..8)?;
        Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// For a data frame: the wall-clock time (µs since the epoch) and the message.
    pub fn data_message(&self) -> Option<(i64, &[u8])> {
        let t = self.data.get(..8)?;
        let msg = self.data.get(8..)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(t);
        Some((i64::from_be_bytes(b), msg))
    }
}

/// A whole recording in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct Recording {
    /// Format generation.
    pub version: MjrVersion,
    /// The info header.
    pub info: MjrInfo,
    /// Frames in file order.
    pub frames: Vec<Frame>,
}

/// Reads a recording from a file (whole, into memory).
pub fn read_file(path: impl AsRef<Path>) -> Result<Recording, ReadError> {
    MjrReader::open(path)?.read_all()
}

/// Parses a recording held in memory.
pub fn parse(bytes: &[u8]) -> Result<Recording, ReadError> {
    MjrReader::new(bytes)?.read_all()
}

/// A streaming reader: the header is parsed up front, frames one at a time, so a long
/// recording can be played without loading it whole.
#[derive(Debug)]
pub struct MjrReader<R> {
    src: R,
    version: MjrVersion,
    info: MjrInfo,
    offset: u64,
    done: bool,
}

impl MjrReader<BufReader<File>> {
    /// Opens a file and parses its header.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        Self::new(BufReader::new(File::open(path)?))
    }
}

impl<R: Read> MjrReader<R> {
    /// Parses the magic and info header from `src`.
    pub fn new(mut src: R) -> Result<Self, ReadError> {
        let mut offset = 0u64;
        let mut magic = [0u8; 8];
        read_exact_at(&mut src, &mut magic, &mut offset, "magic")?;
        let (version, info) = if &magic == MAGIC_V2 {
            let mut len = [0u8; 2];
            match read_full(&mut src, &mut len)? {
                0 => return Err(ReadError::NoInfoHeader),
                2 => offset += 2,
                _ => {
                    return Err(ReadError::Truncated {
                        what: "info header length",
                        offset,
                    })
                }
            }
            let len = u16::from_be_bytes(len) as usize;
            if len == 0 {
                return Err(ReadError::InvalidHeader("empty info header".into()));
            }
            let mut json = vec![0u8; len];
            read_exact_at(&mut src, &mut json, &mut offset, "info header")?;
            (MjrVersion::V2, parse_info(&json)?)
        } else if &magic == MAGIC_V1 {
            let mut len = [0u8; 2];
            read_exact_at(&mut src, &mut len, &mut offset, "header length")?;
            let len = u16::from_be_bytes(len);
            if len != 5 {
                return Err(ReadError::InvalidHeader(format!(
                    "legacy header length {len}, expected 5"
                )));
            }
            let mut word = [0u8; 5];
            read_exact_at(&mut src, &mut word, &mut offset, "media word")?;
            let (kind, codec) = match &word {
                b"audio" => (MediaKind::Audio, "opus"),
                b"video" => (MediaKind::Video, "vp8"),
                _ if word.starts_with(b"data") => (MediaKind::Data, "text"),
                _ => {
                    return Err(ReadError::InvalidHeader(
                        "legacy header with unknown media word".into(),
                    ))
                }
            };
            let info = MjrInfo {
                kind,
                codec: codec.to_string(),
                fmtp: None,
                description: None,
                extmaps: BTreeMap::new(),
                created_us: 0,
                first_frame_us: 0,
                opusred_pt: None,
                encrypted: false,
                raw: Map::new(),
            };
            (MjrVersion::V1, info)
        } else {
            return Err(ReadError::BadMagic);
        };
        Ok(MjrReader {
            src,
            version,
            info,
            offset,
            done: false,
        })
    }

    /// The info header.
    pub fn info(&self) -> &MjrInfo {
        &self.info
    }

    /// The format generation.
    pub fn version(&self) -> MjrVersion {
        self.version
    }

    /// Byte offset of the next frame.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next frame; `Ok(None)` at a clean end of file. After an error, always `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let res = self.read_frame();
        if !matches!(res, Ok(Some(_))) {
            self.done = true;
        }
        res
    }

    fn read_frame(&mut self) -> Result<Option<Frame>, ReadError> {
        let start = self.offset;
        let mut head = [0u8; 10];
        match read_full(&mut self.src, &mut head)? {
            0 => return Ok(None),
            10 => {}
            _ => {
                return Err(ReadError::Truncated {
                    what: "frame header",
                    offset: start,
                })
            }
        }
        let timestamp_ms = match self.version {
            MjrVersion::V2 => {
                if &head[..4] != FRAME_PREFIX {
                    return Err(ReadError::BadFramePrefix { offset: start });
                }
                u32::from_be_bytes([head[4], head[5], head[6], head[7]])
            }
            MjrVersion::V1 => {
                if &head[..8] != MAGIC_V1 {
                    return Err(ReadError::BadFramePrefix { offset: start });
                }
                0
            }
        };
        self.offset += 10;
        let len = u16::from_be_bytes([head[8], head[9]]) as usize;
        let mut data = vec![0u8; len];
        read_exact_at(&mut self.src, &mut data, &mut self.offset, "frame payload").map_err(
            |e| match e {
                ReadError::Truncated { what, .. } => ReadError::Truncated {
                    what,
                    offset: start,
                },
                e => e,
            },
        )?;
        Ok(Some(Frame { timestamp_ms, data }))
    }

    /// Reads every remaining frame; fails on the first corrupt or truncated one.
    pub fn read_all(mut self) -> Result<Recording, ReadError> {
        let mut frames = Vec::new();
        while let Some(f) = self.next_frame()? {
            frames.push(f);
        }
        Ok(Recording {
            version: self.version,
            info: self.info,
            frames,
        })
    }

    /// Reads every remaining frame up to the first bad one, returning what could be read and
    /// the error that stopped it, if any. For recordings cut short by a crash, which Janus's
    /// own tools also process up to the damage.
    pub fn read_lossy(mut self) -> (Recording, Option<ReadError>) {
        let mut frames = Vec::new();
        let err = loop {
            match self.next_frame() {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => break None,
                Err(e) => break Some(e),
            }
        };
        let rec = Recording {
            version: self.version,
            info: self.info,
            frames,
        };
        (rec, err)
    }
}

impl<R: Read> Iterator for MjrReader<R> {
    type Item = Result<Frame, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_frame().transpose()
    }
}

/// Reads until `buf` is full or the source ends; returns how much was read.
fn read_full<R: Read>(src: &mut R, buf: &mut [u8]) -> Result<usize, ReadError> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match src.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

fn read_exact_at<R: Read>(
    src: &mut R,
    buf: &mut [u8],
    offset: &mut u64,
    what: &'static str,
) -> Result<(), ReadError> {
    if read_full(src, buf)? != buf.len() {
        return Err(ReadError::Truncated {
            what,
            offset: *offset,
        });
    }
    *offset += buf.len() as u64;
    Ok(())
}

/// Checks the keys `janus-pp-rec` requires (`t`, `c`, `s`, `u`) and reads the optional ones.
fn parse_info(json: &[u8]) -> Result<MjrInfo, ReadError> {
    let value: Value = serde_json::from_slice(json)?;
    let Value::Object(raw) = value else {
        return Err(ReadError::InvalidHeader("not a JSON object".into()));
    };
    let string = |k: &str| raw.get(k).and_then(Value::as_str).map(str::to_string);
    let t = string("t").ok_or_else(|| ReadError::InvalidHeader("missing \"t\"".into()))?;
    let kind = MediaKind::from_header_str(&t)
        .ok_or_else(|| ReadError::InvalidHeader(format!("unknown media type {t:?}")))?;
    let codec = string("c").ok_or_else(|| ReadError::InvalidHeader("missing \"c\"".into()))?;
    let int = |k: &str| {
        raw.get(k)
            .and_then(Value::as_i64)
            .ok_or_else(|| ReadError::InvalidHeader(format!("missing or non-integer {k:?}")))
    };
    let created_us = int("s")?;
    let first_frame_us = int("u")?;
    let mut extmaps = BTreeMap::new();
    if let Some(Value::Object(x)) = raw.get("x") {
        for (id, uri) in x {
            if let (Ok(id), Some(uri)) = (id.parse::<u8>(), uri.as_str()) {
                if (1..=15).contains(&id) {
                    extmaps.insert(id, uri.to_string());
                }
            }
        }
    }
    let opusred_pt = raw
        .get("or")
        .and_then(Value::as_u64)
        .and_then(|v| u8::try_from(v).ok());
    let encrypted = raw.get("e").and_then(Value::as_bool).unwrap_or(false);
    Ok(MjrInfo {
        kind,
        codec,
        fmtp: string("f"),
        description: string("d"),
        extmaps,
        created_us,
        first_frame_us,
        opusred_pt,
        encrypted,
        raw,
    })
}
