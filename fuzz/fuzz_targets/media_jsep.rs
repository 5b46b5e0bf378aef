//! `message` jseps and `trickle`s through the gateway's validation and jano-media's SDP check, then the engine's parsers; see `jano_fuzz::media`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jano_fuzz::media::run_jsep(data);
});
