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

#[path = "../../../fuzz/src/replay.rs"]
mod replay;

use replay::{corpus, known_crashes};

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
