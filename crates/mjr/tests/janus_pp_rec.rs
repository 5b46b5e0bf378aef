//! Interop with Janus's own post-processor: recordings written by `Recorder` must be accepted
//! by `janus-pp-rec` (Debian package `janus-tools`). Skipped, with a message, where the tool
//! is not installed.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{rtp, TempDir};
use jano_mjr::{MediaKind, Recorder};

const TOOL: &str = "janus-pp-rec";

fn tool_available() -> bool {
    match Command::new(TOOL).arg("--help").output() {
        Ok(_) => true,
        Err(_) => {
            eprintln!("SKIPPED: {TOOL} not found (install the janus-tools package)");
            false
        }
    }
}

fn run(args: &[&Path]) -> Output {
    let out = Command::new(TOOL)
        .args(["-o", "-d", "4"])
        .args(args)
        .output()
        .unwrap();
    eprintln!(
        "$ {TOOL} {:?} -> {}\n{}{}",
        args,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// An Opus packet carrying one 20 ms CELT fullband silence frame.
const OPUS_SILENCE: [u8; 3] = [0xF8, 0xFF, 0xFE];

fn opus_recording(dir: &Path) -> std::path::PathBuf {
    let mut rec = Recorder::create(Some(dir), "a", MediaKind::Audio, "opus", None).unwrap();
    for i in 0..50u16 {
        rec.save_rtp(&rtp(111, 100 + i, 960 * u32::from(i), 1234, &OPUS_SILENCE))
            .unwrap();
    }
    rec.close().unwrap()
}

#[test]
fn json_header_is_printed_verbatim() {
    if !tool_available() {
        return;
    }
    let dir = TempDir::new("pprec-json");
    let path = opus_recording(dir.path());
    let out = Command::new(TOOL)
        .arg("--json")
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let header: serde_json::Value = serde_json::from_str(printed.trim()).unwrap();
    assert_eq!(header["t"], "a");
    assert_eq!(header["c"], "opus");
    assert!(header["s"].as_i64().unwrap() <= header["u"].as_i64().unwrap());
    // What the tool printed is exactly what is in the file.
    let bytes = std::fs::read(&path).unwrap();
    let len = u16::from_be_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!(printed.trim().as_bytes(), &bytes[10..10 + len]);
}

#[test]
fn header_and_packets_are_parsed() {
    if !tool_available() {
        return;
    }
    let dir = TempDir::new("pprec-parse");
    let path = opus_recording(dir.path());
    let out = run(&[Path::new("--header"), &path]);
    assert!(out.status.success());
    let out = run(&[Path::new("--parse"), &path]);
    assert!(out.status.success());
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Codec:   opus"), "{log}");
    assert!(log.contains("SSRC detected: 1234"), "{log}");
    assert!(log.contains("Counted 50 RTP packets"), "{log}");
    assert!(log.contains("Counted 50 frame packets"), "{log}");
}

#[test]
fn video_with_a_source_switch_is_parsed_as_one_stream() {
    if !tool_available() {
        return;
    }
    let dir = TempDir::new("pprec-video");
    let mut rec = Recorder::create(Some(dir.path()), "v", MediaKind::Video, "vp8", None).unwrap();
    // Two sources with unrelated numbering, each packet its own frame (marker bit set).
    for (ssrc, seq0, ts0) in [(10u32, 30_000u16, 5_000_000u32), (20, 7, 12)] {
        for i in 0..20u16 {
            let mut p = rtp(
                96,
                seq0 + i,
                ts0 + 3000 * u32::from(i),
                ssrc,
                &[0x10, 0, 0, 0],
            );
            p[1] |= 0x80;
            rec.save_rtp(&p).unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let path = rec.close().unwrap();
    let out = run(&[Path::new("--parse"), &path]);
    assert!(out.status.success());
    let log =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("Codec:   vp8"), "{log}");
    assert!(log.contains("Counted 40 RTP packets"), "{log}");
    assert!(log.contains("Counted 40 frame packets"), "{log}");
}

#[test]
fn opus_recording_converts_to_ogg() {
    if !tool_available() {
        return;
    }
    let dir = TempDir::new("pprec-opus");
    let path = opus_recording(dir.path());
    let target = dir.path().join("a.opus");
    let out = run(&[&path, &target]);
    assert!(out.status.success());
    let ogg = std::fs::read(&target).unwrap();
    assert_eq!(&ogg[..4], b"OggS");
}

#[test]
fn text_data_recording_converts_to_srt() {
    if !tool_available() {
        return;
    }
    let dir = TempDir::new("pprec-srt");
    let mut rec = Recorder::create(Some(dir.path()), "d", MediaKind::Data, "text", None).unwrap();
    rec.save_data(b"first line").unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    rec.save_data(b"second line").unwrap();
    let path = rec.close().unwrap();
    let target = dir.path().join("d.srt");
    let out = run(&[&path, &target]);
    assert!(out.status.success());
    let srt = std::fs::read_to_string(&target).unwrap();
    assert!(
        srt.contains("first line") && srt.contains("second line"),
        "{srt}"
    );
}
