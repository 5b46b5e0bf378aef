//! A datagram on the single media port through the STUN ufrag reader that routes it; see `jano_fuzz::media`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jano_fuzz::media::run_stun(data, jano_fuzz::stun_local_ufrag);
});
