//! Replays the `cargo fuzz` corpora of the media-path targets (`fuzz/corpus/media_*/*`) through
//! the same harnesses as the fuzz targets (`fuzz/src/media.rs`, included by path), on stable
//! Rust, so every input the fuzzer found interesting stays a regression test.
//!
//! Inputs under `fuzz/known-crashes/media_*/` are crashes not fixed yet: they must still panic.
//! Once one stops panicking, move it into `fuzz/corpus/<target>/`.

#[path = "../../../fuzz/src/media.rs"]
mod media;

// The STUN ufrag reader is private to the crate: compile its module here, as the fuzz crate
// does.
#[path = "../src/net.rs"]
#[allow(dead_code)]
mod net;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(dir: &Path, run: fn(&[u8])) -> (usize, Vec<String>) {
    let files = inputs(dir);
    let mut failed = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| run(&data))) {
            let text = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_default();
            failed.push(format!("{}: {text}", path.display()));
        }
    }
    (files.len(), failed)
}

fn corpus(target: &str, run: fn(&[u8])) {
    let (n, failed) = replay(&fuzz_dir().join("corpus").join(target), run);
    assert!(n > 0, "empty corpus for {target}");
    assert!(
        failed.is_empty(),
        "{} of {n} {target} corpus inputs broke an invariant:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

fn known_crashes(target: &str, run: fn(&[u8])) {
    let dir = fuzz_dir().join("known-crashes").join(target);
    let files = inputs(&dir);
    let (_, failed) = replay(&dir, run);
    let fixed: Vec<String> = files
        .iter()
        .map(|p| p.display().to_string())
        .filter(|p| !failed.iter().any(|f| f.starts_with(&format!("{p}: "))))
        .collect();
    assert!(
        fixed.is_empty(),
        "known crashes no longer crash; move them to fuzz/corpus/{target}/:\n{}",
        fixed.join("\n")
    );
}

fn stun(data: &[u8]) {
    media::run_stun(data, net::stun_local_ufrag);
}

#[test]
fn media_sdp_corpus() {
    corpus("media_sdp", media::run_sdp);
}

#[test]
fn media_stun_corpus() {
    corpus("media_stun", stun);
}

#[test]
fn media_jsep_corpus() {
    corpus("media_jsep", media::run_jsep);
}

#[test]
fn media_known_crashes_still_fail() {
    known_crashes("media_sdp", media::run_sdp);
    known_crashes("media_stun", stun);
    known_crashes("media_jsep", media::run_jsep);
}

#[test]
fn empty_and_tiny_inputs() {
    for data in [&b""[..], b"\0", b"\xff", b"v=0", b"\x00\x01"] {
        media::run_sdp(data);
        stun(data);
        media::run_jsep(data);
    }
}
