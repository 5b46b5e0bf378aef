//! Write with `Recorder`, read back with `MjrReader`: every medium, the header keys, order,
//! timing, pause/resume, the temporary extension and the background writer.

mod common;

use std::sync::Arc;

use common::{rtp, seq_of, ssrc_of, ts_of, TempDir};
use jano_mjr::{
    read_file, ManualClock, MediaKind, MjrError, MjrReader, MjrVersion, Recorder, RecorderOptions,
};

const T0_REAL: i64 = 1_700_000_000_000_000;
const T0_MONO: i64 = 5_000_000;

fn opts(clock: &ManualClock) -> RecorderOptions {
    RecorderOptions {
        clock: Arc::new(clock.clone()),
        tmp_ext: None,
    }
}

#[test]
fn audio_round_trip_with_header_and_timing() {
    let dir = TempDir::new("audio");
    let clock = ManualClock::new(T0_REAL, T0_MONO);
    let mut rec = Recorder::create_with(
        Some(dir.path()),
        "rec-audio",
        MediaKind::Audio,
        "opus",
        Some("minptime=10;useinbandfec=1"),
        opts(&clock),
    )
    .unwrap();
    assert_eq!(rec.path(), dir.path().join("rec-audio.mjr"));
    rec.set_description("mic").unwrap();
    rec.add_extmap(1, "urn:ietf:params:rtp-hdrext:ssrc-audio-level")
        .unwrap();
    rec.set_opusred_pt(120).unwrap();
    // The header is written with the first packet, so `u` is that packet's time.
    clock.advance_us(250_000);
    let mut sent = Vec::new();
    for i in 0..50u16 {
        let p = rtp(
            111,
            1000 + i,
            48_000 + 960 * u32::from(i),
            0xABCD,
            &[i as u8; 40],
        );
        rec.save_rtp(&p).unwrap();
        sent.push(p);
        clock.advance_us(20_000);
    }
    assert!(matches!(
        rec.set_description("late"),
        Err(MjrError::HeaderAlreadyWritten)
    ));
    assert_eq!(rec.frames_written(), 50);
    let path = rec.close().unwrap();

    let r = read_file(&path).unwrap();
    assert_eq!(r.version, MjrVersion::V2);
    let info = &r.info;
    assert_eq!(info.kind, MediaKind::Audio);
    assert_eq!(info.codec, "opus");
    assert_eq!(info.fmtp.as_deref(), Some("minptime=10;useinbandfec=1"));
    assert_eq!(info.description.as_deref(), Some("mic"));
    assert_eq!(
        info.extmaps.get(&1).map(String::as_str),
        Some("urn:ietf:params:rtp-hdrext:ssrc-audio-level")
    );
    assert_eq!(info.opusred_pt, Some(120));
    assert!(!info.encrypted);
    assert_eq!(info.created_us, T0_REAL);
    assert_eq!(info.first_frame_us, T0_REAL + 250_000);
    assert_eq!(r.frames.len(), 50);
    for (i, (f, p)) in r.frames.iter().zip(&sent).enumerate() {
        // 20 ms apart, relative to the first frame.
        assert_eq!(f.timestamp_ms, 20 * i as u32);
        // Rewritten to a stream starting at seq 1 / ts 0; SSRC, PT and payload untouched.
        assert_eq!(seq_of(&f.data), 1 + i as u16);
        assert_eq!(f.rtp_seq(), Some(1 + i as u16));
        assert_eq!(ts_of(&f.data), 960 * i as u32);
        assert_eq!(f.rtp_timestamp(), Some(960 * i as u32));
        assert_eq!(ssrc_of(&f.data), 0xABCD);
        assert_eq!(f.data[1], 111);
        assert_eq!(&f.data[12..], &p[12..]);
    }
}

#[test]
fn video_round_trip_keeps_arrival_order_and_ssrc_switch_is_continuous() {
    let dir = TempDir::new("video");
    let clock = ManualClock::new(T0_REAL, T0_MONO);
    let mut rec = Recorder::create_with(
        Some(dir.path()),
        "cam-video.mjr",
        MediaKind::Video,
        "vp8",
        None,
        opts(&clock),
    )
    .unwrap();
    assert_eq!(rec.path(), dir.path().join("cam-video.mjr"));
    // Arrival order 1, 3, 2, 4: stored as arrived (readers reorder by sequence number).
    // (Janus rebases a source switch on the last packet handled, not the highest, so the
    // switch comes after an in-order packet here.)
    for (seq, ts) in [
        (101u16, 9000u32),
        (103, 9000 + 6000),
        (102, 9000 + 3000),
        (104, 9000 + 9000),
    ] {
        rec.save_rtp(&rtp(96, seq, ts, 7, &[0x10, 0, 0, seq as u8]))
            .unwrap();
        clock.advance_us(33_000);
    }
    // Simulcast-style switch to another SSRC with unrelated numbering.
    rec.save_rtp(&rtp(96, 40_000, 123_456, 8, &[0x10])).unwrap();
    rec.close().unwrap();

    let r = read_file(dir.path().join("cam-video.mjr")).unwrap();
    assert_eq!(r.info.kind, MediaKind::Video);
    assert_eq!(r.info.codec, "vp8");
    assert_eq!(r.info.fmtp, None);
    let seqs: Vec<u16> = r.frames.iter().map(|f| seq_of(&f.data)).collect();
    assert_eq!(seqs, [1, 3, 2, 4, 5]);
    let tss: Vec<u32> = r.frames.iter().map(|f| ts_of(&f.data)).collect();
    // The new source continues 33 ms (90 kHz: 2970 ticks) after the last packet handled.
    assert_eq!(tss, [0, 6000, 3000, 9000, 9000 + 2970]);
    let times: Vec<u32> = r.frames.iter().map(|f| f.timestamp_ms).collect();
    assert_eq!(times, [0, 33, 66, 99, 132]);
    // The SSRC is pinned to the first source's, so post-processors see one stream.
    assert_eq!(ssrc_of(&r.frames[4].data), 7);
    // The caller's packet is never modified.
    let mut p = rtp(96, 5, 5, 7, &[]);
    let copy = p.clone();
    let mut rec = Recorder::create(Some(dir.path()), "x", MediaKind::Video, "VP8", None).unwrap();
    rec.save_rtp(&p).unwrap();
    p.push(0);
    assert_eq!(&p[..12], &copy[..]);
}

#[test]
fn data_round_trip_as_janus_records_text() {
    let dir = TempDir::new("data");
    let clock = ManualClock::new(T0_REAL, T0_MONO);
    let mut rec = Recorder::create_with(
        Some(dir.path()),
        "chat-data",
        MediaKind::Data,
        "text",
        None,
        opts(&clock),
    )
    .unwrap();
    let msgs: [&[u8]; 3] = [b"hello", "caf\u{e9} \u{1f600}".as_bytes(), b"x"];
    for m in msgs {
        rec.save_data(m).unwrap();
        clock.advance_us(1_500_000);
    }
    rec.close().unwrap();
    let r = read_file(dir.path().join("chat-data.mjr")).unwrap();
    assert_eq!(r.info.kind, MediaKind::Data);
    assert_eq!(r.info.codec, "text");
    assert_eq!(r.frames.len(), 3);
    for (i, (f, m)) in r.frames.iter().zip(msgs).enumerate() {
        assert_eq!(f.timestamp_ms, 1500 * i as u32);
        assert_eq!(f.data.len(), m.len() + 8);
        let (t, msg) = f.data_message().unwrap();
        assert_eq!(t, T0_REAL + 1_500_000 * i as i64);
        assert_eq!(msg, m);
    }
}

#[test]
fn wrong_input_is_refused_with_typed_errors() {
    let dir = TempDir::new("errors");
    let mut a = Recorder::create(Some(dir.path()), "a", MediaKind::Audio, "opus", None).unwrap();
    for len in 0..12 {
        assert!(matches!(
            a.save_rtp(&vec![0x80; len]),
            Err(MjrError::PacketTooShort { len: l }) if l == len
        ));
    }
    assert!(matches!(
        a.save_rtp(&vec![0x80; 70_000]),
        Err(MjrError::FrameTooLarge { .. })
    ));
    assert!(matches!(a.save_data(b"x"), Err(MjrError::WrongKind { .. })));
    assert!(matches!(
        a.add_extmap(16, "u"),
        Err(MjrError::InvalidExtmapId(16))
    ));
    // Nothing valid was written: the file holds only the magic, and the reader says so.
    a.close().unwrap();
    assert!(matches!(
        read_file(dir.path().join("a.mjr")),
        Err(jano_mjr::ReadError::NoInfoHeader)
    ));

    let mut d = Recorder::create(Some(dir.path()), "d", MediaKind::Data, "binary", None).unwrap();
    assert!(matches!(d.save_data(b""), Err(MjrError::EmptyData)));
    assert!(matches!(
        d.save_data(&vec![0; 65_528]),
        Err(MjrError::FrameTooLarge { len: 65_536 })
    ));
    d.save_data(&vec![0; 65_527]).unwrap();
    assert!(matches!(
        d.save_rtp(&rtp(0, 0, 0, 0, &[])),
        Err(MjrError::WrongKind { .. })
    ));
    d.close().unwrap();
    assert_eq!(
        read_file(dir.path().join("d.mjr")).unwrap().frames[0]
            .data
            .len(),
        65_535
    );

    assert!(matches!(
        Recorder::create(Some(dir.path()), "v", MediaKind::Video, "opus", None),
        Err(MjrError::UnsupportedCodec { .. })
    ));
    assert!(matches!(
        Recorder::create(Some(dir.path()), "v", MediaKind::Audio, "mp3", None),
        Err(MjrError::UnsupportedCodec { .. })
    ));
    // A folder path that is a file cannot be created.
    std::fs::write(dir.path().join("file"), b"").unwrap();
    assert!(matches!(
        Recorder::create(
            Some(&dir.path().join("file")),
            "v",
            MediaKind::Video,
            "vp8",
            None
        ),
        Err(MjrError::Io(_))
    ));
}

#[test]
fn missing_folders_are_created_and_tmp_ext_renamed_on_close() {
    let dir = TempDir::new("tmpext");
    let nested = dir.path().join("a/b");
    let clock = ManualClock::new(T0_REAL, T0_MONO);
    let mut rec = Recorder::create_with(
        Some(&nested),
        "r",
        MediaKind::Audio,
        "pcmu",
        None,
        RecorderOptions {
            clock: Arc::new(clock),
            tmp_ext: Some("tmp".into()),
        },
    )
    .unwrap();
    assert_eq!(rec.writing_path(), nested.join("r.mjr.tmp"));
    assert_eq!(rec.path(), nested.join("r.mjr"));
    rec.save_rtp(&rtp(0, 1, 1, 1, &[0xff; 160])).unwrap();
    assert!(nested.join("r.mjr.tmp").exists());
    assert!(!nested.join("r.mjr").exists());
    let path = rec.close().unwrap();
    assert_eq!(path, nested.join("r.mjr"));
    assert!(!nested.join("r.mjr.tmp").exists());
    assert_eq!(read_file(&path).unwrap().frames.len(), 1);
}

#[test]
fn pause_discards_and_resume_continues_the_stream() {
    let dir = TempDir::new("pause");
    let clock = ManualClock::new(T0_REAL, T0_MONO);
    let mut rec = Recorder::create_with(
        Some(dir.path()),
        "p",
        MediaKind::Audio,
        "opus",
        None,
        opts(&clock),
    )
    .unwrap();
    rec.save_rtp(&rtp(111, 10, 1000, 1, &[1])).unwrap();
    clock.advance_us(20_000);
    rec.pause();
    rec.save_rtp(&rtp(111, 11, 1960, 1, &[2])).unwrap();
    clock.advance_us(5_000_000);
    rec.resume();
    clock.advance_us(20_000);
    rec.save_rtp(&rtp(111, 300, 900_000, 1, &[3])).unwrap();
    rec.close().unwrap();
    let r = read_file(dir.path().join("p.mjr")).unwrap();
    assert_eq!(r.frames.len(), 2);
    assert_eq!(r.frames[1].data[12], 3);
    assert_eq!(seq_of(&r.frames[1].data), 2);
    // 20 ms since resume at 48 kHz.
    assert_eq!(ts_of(&r.frames[1].data), 960);
    assert_eq!(r.frames[1].timestamp_ms, 5040);
}

#[test]
fn background_writer_records_everything_in_order() {
    let dir = TempDir::new("bg");
    let clock = ManualClock::new(T0_REAL, T0_MONO);
    let rec = Recorder::create_with(
        Some(dir.path()),
        "bg",
        MediaKind::Video,
        "h264",
        Some("profile-level-id=42e01f;packetization-mode=1"),
        opts(&clock),
    )
    .unwrap();
    let (handle, writer) = rec.spawn(4096).unwrap();
    assert!(matches!(
        handle.save_rtp(&[0x80; 11]),
        Err(MjrError::PacketTooShort { len: 11 })
    ));
    let h2 = writer.handle();
    for i in 0..1000u16 {
        let h = if i % 2 == 0 { &handle } else { &h2 };
        h.save_rtp(&rtp(107, i, 3000 * u32::from(i), 99, &[1, 2, 3]))
            .unwrap();
        clock.advance_us(1_000);
    }
    let summary = writer.finish().unwrap();
    assert_eq!(summary.frames, 1000);
    assert_eq!(summary.dropped, 0);
    assert_eq!(summary.path, dir.path().join("bg.mjr"));
    assert!(matches!(
        handle.save_rtp(&rtp(107, 0, 0, 0, &[])),
        Err(MjrError::Closed)
    ));
    let mut reader = MjrReader::open(&summary.path).unwrap();
    assert_eq!(
        reader.info().fmtp.as_deref(),
        Some("profile-level-id=42e01f;packetization-mode=1")
    );
    let mut n = 0u32;
    for f in &mut reader {
        let f = f.unwrap();
        // Stamped when queued, not when written: exactly 1 ms apart.
        assert_eq!(f.timestamp_ms, n);
        assert_eq!(seq_of(&f.data), n as u16 + 1);
        n += 1;
    }
    assert_eq!(n, 1000);
}

#[test]
fn background_pause_resume_are_ordered_with_frames() {
    let dir = TempDir::new("bgpause");
    let rec = Recorder::create(Some(dir.path()), "d", MediaKind::Data, "text", None).unwrap();
    let (h, w) = rec.spawn(16).unwrap();
    h.save_data(b"1").unwrap();
    h.pause().unwrap();
    h.save_data(b"2").unwrap();
    h.resume().unwrap();
    h.save_data(b"3").unwrap();
    drop(h);
    let s = w.finish().unwrap();
    assert_eq!(s.frames, 2);
    let r = read_file(&s.path).unwrap();
    let msgs: Vec<&[u8]> = r
        .frames
        .iter()
        .map(|f| f.data_message().unwrap().1)
        .collect();
    assert_eq!(msgs, [b"1", b"3"]);
}

#[test]
fn dropping_recorder_or_writer_still_completes_the_file() {
    let dir = TempDir::new("drop");
    {
        let mut rec =
            Recorder::create(Some(dir.path()), "a", MediaKind::Audio, "g722", None).unwrap();
        rec.save_rtp(&rtp(9, 1, 1, 1, &[0; 160])).unwrap();
    }
    assert_eq!(read_file(dir.path().join("a.mjr")).unwrap().frames.len(), 1);
    {
        let rec = Recorder::create(Some(dir.path()), "b", MediaKind::Audio, "pcma", None).unwrap();
        let (h, _w) = rec.spawn(8).unwrap();
        h.save_rtp(&rtp(8, 1, 1, 1, &[0; 160])).unwrap();
    }
    assert_eq!(read_file(dir.path().join("b.mjr")).unwrap().frames.len(), 1);
}
