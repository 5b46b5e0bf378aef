//! WebSocket frames: concatenated JSON values split as the transport does, each fed to the
//! gateway; see `jano_fuzz::script`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jano_fuzz::script::run_frames(data);
});
