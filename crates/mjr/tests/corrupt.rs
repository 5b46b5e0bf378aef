//! The reader on hostile input: every truncation of a valid file, damaged headers and frames,
//! random bytes. Each must give a typed error (or, where the bytes happen to be valid, a
//! result), never a panic.

mod common;

use std::sync::Arc;

use common::{rtp, Rng, TempDir};
use jano_mjr::{
    parse, ManualClock, MediaKind, MjrReader, MjrVersion, ReadError, Recorder, RecorderOptions,
};

/// A small valid recording: audio header and three frames.
fn sample() -> Vec<u8> {
    let dir = TempDir::new("corrupt");
    let clock = ManualClock::new(1_600_000_000_000_000, 1);
    let mut rec = Recorder::create_with(
        Some(dir.path()),
        "s",
        MediaKind::Audio,
        "opus",
        Some("useinbandfec=1"),
        RecorderOptions {
            clock: Arc::new(clock.clone()),
            tmp_ext: None,
        },
    )
    .unwrap();
    for i in 0..3u16 {
        rec.save_rtp(&rtp(111, i, 960 * u32::from(i), 5, &[i as u8; 30]))
            .unwrap();
        clock.advance_us(20_000);
    }
    std::fs::read(rec.close().unwrap()).unwrap()
}

#[test]
fn every_truncation_is_an_error_except_at_frame_boundaries() {
    let full = sample();
    let whole = parse(&full).unwrap();
    assert_eq!(whole.frames.len(), 3);
    let header_end = full.len() - 3 * (10 + 42);
    let boundaries: Vec<usize> = (0..=3).map(|i| header_end + i * 52).collect();
    for cut in 0..full.len() {
        let res = parse(&full[..cut]);
        if let Some(n) = boundaries.iter().position(|&b| b == cut) {
            // Cut exactly between frames: a valid, shorter recording.
            assert_eq!(res.unwrap().frames.len(), n, "cut at {cut}");
        } else if cut == 8 {
            assert!(matches!(res, Err(ReadError::NoInfoHeader)), "cut at {cut}");
        } else {
            assert!(
                matches!(res, Err(ReadError::Truncated { .. })),
                "cut at {cut}: {res:?}"
            );
        }
    }
}

#[test]
fn lossy_read_keeps_frames_before_the_damage() {
    let full = sample();
    let cut = &full[..full.len() - 5];
    let (rec, err) = MjrReader::new(cut).unwrap().read_lossy();
    assert_eq!(rec.frames.len(), 2);
    assert!(matches!(
        err,
        Some(ReadError::Truncated {
            what: "frame payload",
            ..
        })
    ));
}

#[test]
fn damaged_structures_give_typed_errors() {
    let full = sample();
    let json_len = u16::from_be_bytes([full[8], full[9]]) as usize;
    let first_frame = 10 + json_len;

    let mut bad = full.clone();
    bad[0] = b'X';
    assert!(matches!(parse(&bad), Err(ReadError::BadMagic)));

    let mut bad = full.clone();
    bad[first_frame + 1] = b'X'; // "MXET"
    assert!(matches!(
        parse(&bad),
        Err(ReadError::BadFramePrefix { offset }) if offset == first_frame as u64
    ));

    // A frame length pointing past the end of the file.
    let mut bad = full.clone();
    bad[first_frame + 8] = 0xFF;
    assert!(matches!(parse(&bad), Err(ReadError::Truncated { .. })));

    // Header length larger than the file.
    let mut bad = full.clone();
    bad[8] = 0xFF;
    assert!(matches!(parse(&bad), Err(ReadError::Truncated { .. })));

    // A broken JSON byte.
    let mut bad = full.clone();
    bad[10] = b'[';
    assert!(matches!(parse(&bad), Err(ReadError::HeaderJson(_))));

    for json in [
        r#"[]"#,
        r#"{"c": "opus", "s": 1, "u": 1}"#,
        r#"{"t": "z", "c": "opus", "s": 1, "u": 1}"#,
        r#"{"t": "a", "s": 1, "u": 1}"#,
        r#"{"t": "a", "c": "opus", "u": 1}"#,
        r#"{"t": "a", "c": "opus", "s": "1", "u": 1}"#,
        r#"{"t": "a", "c": "opus", "s": 1}"#,
    ] {
        let mut f = b"MJR00002".to_vec();
        f.extend_from_slice(&(json.len() as u16).to_be_bytes());
        f.extend_from_slice(json.as_bytes());
        assert!(
            matches!(parse(&f), Err(ReadError::InvalidHeader(_))),
            "{json}"
        );
    }
    let mut f = b"MJR00002".to_vec();
    f.extend_from_slice(&[0, 0]);
    assert!(matches!(parse(&f), Err(ReadError::InvalidHeader(_))));
}

#[test]
fn legacy_v1_files_are_read() {
    let mut f = b"MEETECHO".to_vec();
    f.extend_from_slice(&[0, 5]);
    f.extend_from_slice(b"video");
    f.extend_from_slice(b"MEETECHO");
    f.extend_from_slice(&[0, 12]);
    f.extend_from_slice(&rtp(100, 7, 7, 7, &[]));
    let r = parse(&f).unwrap();
    assert_eq!(r.version, MjrVersion::V1);
    assert_eq!(r.info.kind, MediaKind::Video);
    assert_eq!(r.info.codec, "vp8");
    assert_eq!(r.frames.len(), 1);
    assert_eq!(r.frames[0].timestamp_ms, 0);
    assert_eq!(r.frames[0].rtp_seq(), Some(7));

    let mut bad = f.clone();
    bad[9] = 6;
    assert!(matches!(parse(&bad), Err(ReadError::InvalidHeader(_))));
    let mut bad = f.clone();
    bad[10] = b'x';
    assert!(matches!(parse(&bad), Err(ReadError::InvalidHeader(_))));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng::new(0x5EED);
    for i in 0..5_000 {
        let len = (rng.next_u64() % 300) as usize;
        let mut bytes = rng.bytes(len);
        // Give some inputs a valid magic so the deeper paths get exercised too.
        match i % 3 {
            0 if len >= 8 => bytes[..8].copy_from_slice(b"MJR00002"),
            1 if len >= 8 => bytes[..8].copy_from_slice(b"MEETECHO"),
            _ => {}
        }
        let _ = parse(&bytes);
    }
}

#[test]
fn random_mutations_of_a_valid_file_never_panic() {
    let full = sample();
    let mut rng = Rng::new(42);
    for _ in 0..5_000 {
        let mut bytes = full.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = (rng.next_u64() as usize) % bytes.len();
            bytes[at] = rng.next_u64() as u8;
        }
        let cut = (rng.next_u64() as usize) % (bytes.len() + 1);
        bytes.truncate(cut);
        if let Ok(r) = parse(&bytes) {
            // Whatever parsed is self-consistent.
            for f in &r.frames {
                assert!(f.data.len() <= bytes.len());
            }
        }
    }
}

#[test]
fn reader_is_fused_after_an_error() {
    let full = sample();
    let mut bad = full.clone();
    let n = bad.len();
    bad[n - 52] = b'X';
    let mut r = MjrReader::new(&bad[..]).unwrap();
    assert!(r.next_frame().unwrap().is_some());
    assert!(r.next_frame().unwrap().is_some());
    assert!(r.next_frame().is_err());
    assert!(r.next_frame().unwrap().is_none());
    assert!(r.next().is_none());
}
