//! Byte-exact checks of small recordings against the layout in
//! `spec/plugin-recordplay.md`: magic, big-endian header length, JSON header, then frames of
//! "MEET", big-endian u32 ms since the first frame, big-endian u16 length, payload. The
//! expected bytes are assembled by hand here, not by the crate.

mod common;

use std::sync::Arc;

use common::TempDir;
use jano_mjr::{ManualClock, MediaKind, Recorder, RecorderOptions};

fn recorder(
    dir: &TempDir,
    name: &str,
    kind: MediaKind,
    codec: &str,
    clock: &ManualClock,
) -> Recorder {
    Recorder::create_with(
        Some(dir.path()),
        name,
        kind,
        codec,
        None,
        RecorderOptions {
            clock: Arc::new(clock.clone()),
            tmp_ext: None,
        },
    )
    .unwrap()
}

#[test]
fn video_recording_bytes() {
    let dir = TempDir::new("framing-v");
    // Wall clock 1_000_000 µs, monotonic 77 s (its origin must not leak into the file).
    let clock = ManualClock::new(1_000_000, 77_000_000);
    let mut rec = recorder(&dir, "v", MediaKind::Video, "vp8", &clock);
    clock.advance_us(5_000);
    // seq 0x1234, ts 0x01020304, ssrc 0xCAFEBABE, payload 0xAA 0xBB.
    rec.save_rtp(&[
        0x80, 0x60, 0x12, 0x34, 0x01, 0x02, 0x03, 0x04, 0xCA, 0xFE, 0xBA, 0xBE, 0xAA, 0xBB,
    ])
    .unwrap();
    // 40.5 ms later: stored as 40 (whole ms, truncated). Next seq, ts + 3600, marker set.
    clock.advance_us(40_500);
    rec.save_rtp(&[
        0x80, 0xE0, 0x12, 0x35, 0x01, 0x02, 0x11, 0x14, 0xCA, 0xFE, 0xBA, 0xBE, 0xCC,
    ])
    .unwrap();
    let path = rec.close().unwrap();

    let json = br#"{"t": "v", "c": "vp8", "s": 1000000, "u": 1005000}"#;
    let mut want = Vec::new();
    want.extend_from_slice(b"MJR00002");
    want.extend_from_slice(&[0x00, json.len() as u8]);
    want.extend_from_slice(json);
    // Frame 1: t=0 ms, 14 bytes; seq/ts rewritten to 1 / 0.
    want.extend_from_slice(b"MEET");
    want.extend_from_slice(&[0, 0, 0, 0]);
    want.extend_from_slice(&[0x00, 0x0E]);
    want.extend_from_slice(&[
        0x80, 0x60, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0xCA, 0xFE, 0xBA, 0xBE, 0xAA, 0xBB,
    ]);
    // Frame 2: t=40 ms, 13 bytes; seq 2, ts 3600 (0x0E10).
    want.extend_from_slice(b"MEET");
    want.extend_from_slice(&[0, 0, 0, 40]);
    want.extend_from_slice(&[0x00, 0x0D]);
    want.extend_from_slice(&[
        0x80, 0xE0, 0x00, 0x02, 0x00, 0x00, 0x0E, 0x10, 0xCA, 0xFE, 0xBA, 0xBE, 0xCC,
    ]);
    assert_eq!(std::fs::read(path).unwrap(), want);
}

#[test]
fn data_recording_bytes() {
    let dir = TempDir::new("framing-d");
    let clock = ManualClock::new(0x0102_0304_0506, 1);
    let mut rec = recorder(&dir, "d", MediaKind::Data, "text", &clock);
    clock.advance_us(1_000);
    rec.save_data(b"hi").unwrap();
    clock.advance_us(300_000);
    rec.save_data(b"!").unwrap();
    let path = rec.close().unwrap();

    let s = 0x0102_0304_0506i64;
    let json = format!(r#"{{"t": "d", "c": "text", "s": {s}, "u": {}}}"#, s + 1_000);
    let mut want = Vec::new();
    want.extend_from_slice(b"MJR00002");
    want.extend_from_slice(&(json.len() as u16).to_be_bytes());
    want.extend_from_slice(json.as_bytes());
    // Data frame: length = message + 8, payload = u64 BE wall-clock µs, then the message.
    want.extend_from_slice(b"MEET");
    want.extend_from_slice(&[0, 0, 0, 0]);
    want.extend_from_slice(&[0x00, 10]);
    want.extend_from_slice(&[0x00, 0x00, 0x01, 0x02, 0x03, 0x04, 0x08, 0xEE]);
    want.extend_from_slice(b"hi");
    want.extend_from_slice(b"MEET");
    want.extend_from_slice(&[0x00, 0x00, 0x01, 0x2C]); // 300 ms
    want.extend_from_slice(&[0x00, 9]);
    want.extend_from_slice(&[0x00, 0x00, 0x01, 0x02, 0x03, 0x08, 0x9C, 0xCE]);
    want.extend_from_slice(b"!");
    assert_eq!(std::fs::read(path).unwrap(), want);
}

#[test]
fn header_with_every_optional_key_bytes() {
    let dir = TempDir::new("framing-h");
    let clock = ManualClock::new(10, 10);
    let mut rec = Recorder::create_with(
        Some(dir.path()),
        "a",
        MediaKind::Audio,
        "opus",
        Some("useinbandfec=1"),
        RecorderOptions {
            clock: Arc::new(clock.clone()),
            tmp_ext: None,
        },
    )
    .unwrap();
    rec.set_description("Mic").unwrap();
    rec.add_extmap(4, "urn:b").unwrap();
    rec.add_extmap(1, "urn:a").unwrap();
    rec.set_opusred_pt(120).unwrap();
    rec.set_encrypted().unwrap();
    rec.save_rtp(&[0x80, 111, 0, 9, 0, 0, 0, 9, 0, 0, 0, 1])
        .unwrap();
    let path = rec.close().unwrap();
    let json = br#"{"t": "a", "c": "opus", "f": "useinbandfec=1", "d": "Mic", "x": {"1": "urn:a", "4": "urn:b"}, "s": 10, "u": 10, "or": 120, "e": true}"#;
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"MJR00002");
    assert_eq!(&bytes[8..10], &(json.len() as u16).to_be_bytes());
    assert_eq!(&bytes[10..10 + json.len()], json);
    assert_eq!(
        &bytes[10 + json.len()..],
        &[b'M', b'E', b'E', b'T', 0, 0, 0, 0, 0, 12, 0x80, 111, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]
    );
}
