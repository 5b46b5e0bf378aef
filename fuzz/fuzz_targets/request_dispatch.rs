//! Scripts of Janus/Admin API requests (raw and structured), clock jumps, transport loss and
//! plugin-event delivery against a gateway with EchoTest; see `jano_fuzz::script`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jano_fuzz::script::run_script(data);
});
