//! Replays the `cargo fuzz` corpus (`fuzz/corpus/<target>/*`) through the same script
//! interpreter and invariants as the fuzz targets, on stable Rust, so every input the fuzzer
//! found interesting stays a regression test.
//!
//! Inputs under `fuzz/known-crashes/<target>/` are crashes found by fuzzing and not fixed yet:
//! they must still panic (a known failure). Once one stops panicking, move it into
//! `fuzz/corpus/<target>/` so it keeps guarding the fix.

#[path = "../../../fuzz/src/script.rs"]
mod script;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files directly in `dir`, sorted; none if it does not exist.
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

/// Runs `run` on every input in `dir`; returns the inputs that panicked, with the message.
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

#[test]
fn request_dispatch_corpus() {
    corpus("request_dispatch", script::run_script);
}

#[test]
fn json_frame_corpus() {
    corpus("json_frame", script::run_frames);
}

#[test]
fn request_dispatch_known_crashes_still_fail() {
    known_crashes("request_dispatch", script::run_script);
}

#[test]
fn json_frame_known_crashes_still_fail() {
    known_crashes("json_frame", script::run_frames);
}

#[test]
fn empty_and_tiny_inputs() {
    for data in [&b""[..], b"\0", b"\xff", b"\x02", b"\x00\x02\x00"] {
        script::run_script(data);
        script::run_frames(data);
    }
}
