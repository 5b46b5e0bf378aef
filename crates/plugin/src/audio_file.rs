//! Audio files as Janus's plugins play them (Streaming's `live` and `ondemand` mountpoints,
//! AudioBridge's `play_file`): raw G.711 (`.alaw` → PCMA, `.mulaw` → PCMU, 160-byte frames
//! every 20 ms) and Opus in Ogg (`.opus`). A file is read and split into frames once: playback
//! never touches the disk, and every player of the file shares the same frames. Opus packets
//! are paced by their own duration (from the TOC byte), where Janus assumes 20 ms each.

use std::sync::Arc;

/// The largest file a mountpoint loads (its frames stay in memory).
const MAX_FILE: u64 = 256 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Alaw,
    Mulaw,
    Opus,
}

impl FileFormat {
    /// Janus tells the format by the name containing `.opus`, `.alaw` or `.mulaw`.
    pub fn of(filename: &str) -> Option<FileFormat> {
        if filename.contains(".opus") {
            Some(FileFormat::Opus)
        } else if filename.contains(".alaw") {
            Some(FileFormat::Alaw)
        } else if filename.contains(".mulaw") {
            Some(FileFormat::Mulaw)
        } else {
            None
        }
    }

    pub fn codec(self) -> &'static str {
        match self {
            FileFormat::Alaw => "pcma",
            FileFormat::Mulaw => "pcmu",
            FileFormat::Opus => "opus",
        }
    }

    /// G.711's static payload types; Opus takes the configured one.
    pub fn static_pt(self) -> Option<u8> {
        match self {
            FileFormat::Alaw => Some(8),
            FileFormat::Mulaw => Some(0),
            FileFormat::Opus => None,
        }
    }

    pub fn rtpmap(self) -> &'static str {
        match self {
            FileFormat::Alaw => "PCMA/8000",
            FileFormat::Mulaw => "PCMU/8000",
            FileFormat::Opus => "opus/48000/2",
        }
    }
}

/// One frame: where its bytes are in [`Track::data`], and how long it plays (RTP clock ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Frame {
    at: usize,
    len: usize,
    ticks: u32,
}

/// A file's frames, ready to play.
#[derive(Debug)]
pub struct Track {
    pub format: FileFormat,
    data: Vec<u8>,
    frames: Vec<Frame>,
}

impl Track {
    pub fn load(path: &str, format: FileFormat) -> Result<Track, String> {
        let meta = std::fs::metadata(path).map_err(|e| format!("no such file '{path}': {e}"))?;
        if meta.len() > MAX_FILE {
            return Err(format!("'{path}' is larger than {MAX_FILE} bytes"));
        }
        let bytes = std::fs::read(path).map_err(|e| format!("can't read '{path}': {e}"))?;
        Track::parse(bytes, format)
    }

    pub fn parse(bytes: Vec<u8>, format: FileFormat) -> Result<Track, String> {
        let track = match format {
            FileFormat::Alaw | FileFormat::Mulaw => {
                // Janus rewinds when a read comes short: a partial last frame is never sent.
                let frames = (0..bytes.len() / 160)
                    .map(|i| Frame {
                        at: i * 160,
                        len: 160,
                        ticks: 160,
                    })
                    .collect();
                Track {
                    format,
                    data: bytes,
                    frames,
                }
            }
            FileFormat::Opus => {
                let packets = ogg_opus_packets(&bytes)?;
                let mut data = Vec::new();
                let mut frames = Vec::new();
                for p in packets {
                    // A packet whose duration cannot be told plays as 20 ms, as Janus's do.
                    let ticks = opus_samples(&p).unwrap_or(960);
                    frames.push(Frame {
                        at: data.len(),
                        len: p.len(),
                        ticks,
                    });
                    data.extend_from_slice(&p);
                }
                Track {
                    format,
                    data,
                    frames,
                }
            }
        };
        if track.frames.is_empty() {
            return Err("the file has no audio frames".into());
        }
        Ok(track)
    }

    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Frame `i` (modulo the length: playback loops) and its duration in RTP clock ticks.
    pub fn frame(&self, i: usize) -> (&[u8], u32) {
        match self.frames.get(i % self.frames.len().max(1)) {
            Some(f) => (
                self.data.get(f.at..f.at + f.len).unwrap_or_default(),
                f.ticks,
            ),
            None => (&[], 0),
        }
    }

    /// The RTP clock rate of the track.
    pub fn clock(&self) -> u32 {
        match self.format {
            FileFormat::Opus => 48_000,
            _ => 8_000,
        }
    }
}

/// A playback position in a track: the next frame, with RTP sequence numbers and timestamps
/// continuous across loops.
#[derive(Debug)]
pub struct Cursor {
    pub track: Arc<Track>,
    next: usize,
    pub seq: u64,
    pub ts: u32,
}

impl Cursor {
    pub fn new(track: Arc<Track>) -> Cursor {
        Cursor {
            track,
            next: 0,
            seq: 1,
            ts: 0,
        }
    }

    /// The next frame: (payload, timestamp, sequence number, marker, duration in ticks).
    pub fn advance(&mut self) -> (Arc<[u8]>, u32, u64, bool, u32) {
        let (payload, ticks) = self.track.frame(self.next);
        let out = (Arc::from(payload), self.ts, self.seq, self.seq == 1, ticks);
        self.next = (self.next + 1) % self.track.frames().max(1);
        self.seq += 1;
        self.ts = self.ts.wrapping_add(ticks);
        out
    }
}

/// The packets of the first Opus stream of an Ogg file (RFC 7845), without its two header
/// packets (`OpusHead`, `OpusTags`).
fn ogg_opus_packets(file: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut packets = Vec::new();
    let mut serial: Option<u32> = None;
    // The packet being put together: one may continue over page boundaries.
    let mut cur: Vec<u8> = Vec::new();
    let mut at = 0;
    while at < file.len() {
        let h = file.get(at..at + 27).ok_or("truncated Ogg page header")?;
        if h.get(..4) != Some(b"OggS".as_slice()) {
            return Err("not an Ogg file (no OggS capture pattern)".into());
        }
        let flags = h.get(5).copied().unwrap_or(0);
        let page_serial = h
            .get(14..18)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
            .unwrap_or(0);
        let nseg = usize::from(h.get(26).copied().unwrap_or(0));
        let table = file
            .get(at + 27..at + 27 + nseg)
            .ok_or("truncated Ogg segment table")?;
        let body_at = at + 27 + nseg;
        let body_len: usize = table.iter().map(|s| usize::from(*s)).sum();
        let body = file
            .get(body_at..body_at + body_len)
            .ok_or("truncated Ogg page")?;
        at = body_at + body_len;
        let ours = match serial {
            Some(s) => s == page_serial,
            None if flags & 0x02 != 0 && body.starts_with(b"OpusHead") => {
                serial = Some(page_serial);
                true
            }
            // Another stream's first page: keep looking for the Opus one.
            None if flags & 0x02 != 0 => false,
            None => return Err("no Opus stream in the Ogg file".into()),
        };
        if !ours {
            continue;
        }
        if flags & 0x01 == 0 {
            // Not a continuation: whatever was left unfinished is dropped.
            cur.clear();
        }
        let mut from = 0;
        for &seg in table {
            let to = from + usize::from(seg);
            cur.extend_from_slice(body.get(from..to).unwrap_or_default());
            from = to;
            if seg < 255 {
                packets.push(std::mem::take(&mut cur));
            }
        }
    }
    if serial.is_none() {
        return Err("no Opus stream in the Ogg file".into());
    }
    let mut it = packets.into_iter().peekable();
    if it.peek().is_some_and(|p| p.starts_with(b"OpusHead")) {
        it.next();
    }
    if it.peek().is_some_and(|p| p.starts_with(b"OpusTags")) {
        it.next();
    }
    Ok(it.filter(|p| !p.is_empty()).collect())
}

/// The samples (at 48 kHz) an Opus packet decodes to, from its TOC byte (RFC 6716 §3.1).
fn opus_samples(p: &[u8]) -> Option<u32> {
    let toc = *p.first()?;
    let config = toc >> 3;
    // Frame sizes in 1/400 s (2.5 ms) units.
    let size = match config {
        0..=11 => [4, 8, 16, 24][usize::from(config % 4)],
        12..=15 => [4, 8][usize::from(config % 2)],
        _ => [1, 2, 4, 8][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*p.get(1)? & 0x3f),
    };
    let samples = size * 120 * frames;
    // At most 120 ms in one packet.
    (frames > 0 && samples <= 5760).then_some(samples)
}

/// An Ogg Opus file (RFC 7845) of these packets: the `OpusHead` and `OpusTags` headers, then
/// the packets, 50 to a page, with granule positions and page checksums as players expect.
pub fn write_ogg_opus(packets: &[&[u8]], channels: u8, input_rate: u32) -> Vec<u8> {
    let serial: u32 = 0x6a61_6e6f;
    let mut out = Vec::new();
    let mut head = b"OpusHead".to_vec();
    head.push(1);
    head.push(channels.max(1));
    head.extend_from_slice(&312u16.to_le_bytes()); // pre-skip (libopus's encoder delay)
    head.extend_from_slice(&input_rate.to_le_bytes());
    head.extend_from_slice(&0u16.to_le_bytes()); // output gain
    head.push(0); // channel mapping family 0
    let mut tags = b"OpusTags".to_vec();
    let vendor = b"jano";
    tags.extend_from_slice(&(vendor.len() as u32).to_le_bytes());
    tags.extend_from_slice(vendor);
    tags.extend_from_slice(&0u32.to_le_bytes());
    let mut seq = 0u32;
    ogg_page(&mut out, serial, seq, 0x02, 0, &[&head]);
    seq += 1;
    ogg_page(&mut out, serial, seq, 0x00, 0, &[&tags]);
    seq += 1;
    let mut granule: u64 = 0;
    let chunks: Vec<&[&[u8]]> = packets.chunks(50).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        for p in chunk.iter() {
            granule += u64::from(opus_samples(p).unwrap_or(960));
        }
        let flags = if i + 1 == chunks.len() { 0x04 } else { 0x00 };
        ogg_page(&mut out, serial, seq, flags, granule, chunk);
        seq += 1;
    }
    out
}

/// One Ogg page of whole packets (each under 255 × 255 bytes), its CRC filled in.
fn ogg_page(out: &mut Vec<u8>, serial: u32, seq: u32, flags: u8, granule: u64, packets: &[&[u8]]) {
    let start = out.len();
    let mut table = Vec::new();
    for p in packets {
        let mut n = p.len();
        while n >= 255 {
            table.push(255u8);
            n -= 255;
        }
        table.push(n as u8);
    }
    out.extend_from_slice(b"OggS");
    out.push(0);
    out.push(flags);
    out.extend_from_slice(&granule.to_le_bytes());
    out.extend_from_slice(&serial.to_le_bytes());
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.push(table.len().min(255) as u8);
    out.extend_from_slice(table.get(..255.min(table.len())).unwrap_or_default());
    for p in packets {
        out.extend_from_slice(p);
    }
    let crc = ogg_crc(out.get(start..).unwrap_or_default());
    if let Some(dst) = out.get_mut(start + 22..start + 26) {
        dst.copy_from_slice(&crc.to_le_bytes());
    }
}

/// Ogg's page checksum: CRC-32, polynomial 0x04c11db7, not reflected, initial value 0.
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc: u32 = 0;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_ogg_opus_reads_back() {
        let a: &[u8] = &[0xf8, 1, 2, 3];
        let b: &[u8] = &[0xf8, 4, 5];
        let packets: Vec<&[u8]> = std::iter::repeat_n([a, b], 60).flatten().collect();
        let file = write_ogg_opus(&packets, 1, 48000);
        let t = Track::parse(file.clone(), FileFormat::Opus).unwrap();
        assert_eq!(t.frames(), 120);
        assert_eq!(t.frame(1).0, b);
        // The checksum of the first page, as any Ogg reader computes it.
        let len = 27 + 1 + 19;
        let mut page = file[..len].to_vec();
        let stored = u32::from_le_bytes(page[22..26].try_into().unwrap());
        page[22..26].copy_from_slice(&[0; 4]);
        assert_eq!(ogg_crc(&page), stored);
        assert_eq!(ogg_crc(b"OggS"), 0x5fb0a94f);
    }

    /// An Ogg page of `serial` with these packets (each under 255 × 255 bytes).
    fn page(serial: u32, flags: u8, packets: &[&[u8]]) -> Vec<u8> {
        let mut table = Vec::new();
        let mut body = Vec::new();
        for p in packets {
            let mut n = p.len();
            while n >= 255 {
                table.push(255u8);
                n -= 255;
            }
            table.push(n as u8);
            body.extend_from_slice(p);
        }
        let mut v = b"OggS".to_vec();
        v.push(0);
        v.push(flags);
        v.extend_from_slice(&[0; 8]); // granule
        v.extend_from_slice(&serial.to_le_bytes());
        v.extend_from_slice(&[0; 8]); // page number, CRC (not checked)
        v.push(table.len() as u8);
        v.extend_from_slice(&table);
        v.extend_from_slice(&body);
        v
    }

    #[test]
    fn g711_frames_of_160_bytes_looping() {
        let t = Track::parse((0..500u32).map(|i| i as u8).collect(), FileFormat::Alaw).unwrap();
        assert_eq!(t.frames(), 3, "the partial tail is not played");
        let mut c = Cursor::new(Arc::new(t));
        let (p, ts, seq, marker, ticks) = c.advance();
        assert_eq!((p.len(), ts, seq, marker, ticks), (160, 0, 1, true, 160));
        assert_eq!(p[0], 0);
        c.advance();
        c.advance();
        let (p, ts, seq, marker, _) = c.advance();
        assert_eq!(
            (p[0], ts, seq, marker),
            (0, 480, 4, false),
            "looped to the start"
        );
        assert!(Track::parse(vec![0; 100], FileFormat::Mulaw).is_err());
    }

    #[test]
    fn ogg_opus_packets_and_their_durations() {
        let head = b"OpusHead\x01\x02\x38\x01\x80\xbb\0\0\0\0\0";
        // 20 ms CELT (config 31, one frame), 60 ms SILK (config 3), and a 40 ms two-frame
        // CELT packet long enough to span a page boundary.
        let a: &[u8] = &[0xf8, 1, 2, 3];
        let b: &[u8] = &[0x18, 9, 9];
        let mut c = vec![0xf9u8];
        c.extend(std::iter::repeat_n(7u8, 600));
        let mut file = page(5, 0x02, &[head]);
        file.extend(page(9, 0x02, &[b"theora-ish"])); // another stream, ignored
        file.extend(page(5, 0, &[b"OpusTags\0\0\0\0", a, b]));
        // `c` split over two pages: 510 bytes (two full segments) then the rest.
        let mut p3 = page(5, 0, &[]);
        let (first, rest) = c.split_at(510);
        // Hand-made: a page whose table is [255, 255] (packet goes on).
        p3.truncate(26);
        p3.push(2);
        p3.extend_from_slice(&[255, 255]);
        p3.extend_from_slice(first);
        file.extend(p3);
        file.extend(page(5, 0x01, &[rest]));
        let t = Track::parse(file, FileFormat::Opus).unwrap();
        assert_eq!(t.frames(), 3);
        assert_eq!(t.frame(0), (a, 960));
        assert_eq!(t.frame(1), (b, 2880));
        assert_eq!(t.frame(2), (c.as_slice(), 1920));
        assert!(Track::parse(b"RIFF....".to_vec(), FileFormat::Opus).is_err());
        assert!(Track::parse(page(1, 0x02, &[b"vorbis"]), FileFormat::Opus).is_err());
        // Truncated anywhere: an error, never a panic.
        let whole = page(5, 0x02, &[head]);
        for n in 1..whole.len() {
            let _ = Track::parse(whole[..n].to_vec(), FileFormat::Opus);
        }
    }

    #[test]
    fn formats_by_name() {
        assert_eq!(FileFormat::of("/x/radio.alaw"), Some(FileFormat::Alaw));
        assert_eq!(FileFormat::of("music.mulaw"), Some(FileFormat::Mulaw));
        assert_eq!(FileFormat::of("a.opus"), Some(FileFormat::Opus));
        assert_eq!(FileFormat::of("a.wav"), None);
    }
}
