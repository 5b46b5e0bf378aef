//! Replays the `cargo fuzz` corpus (`fuzz/corpus/<target>/*`) through the same script
//! interpreter and invariants as the fuzz targets, on stable Rust, so every input the fuzzer
//! found interesting stays a regression test.
//!
//! Inputs under `fuzz/known-crashes/<target>/` are crashes found by fuzzing and not fixed yet:
//! they must still panic (a known failure). Once one stops panicking, move it into
//! `fuzz/corpus/<target>/` so it keeps guarding the fix.

#[path = "../../../fuzz/src/script.rs"]
mod script;

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::{corpus, known_crashes};

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
