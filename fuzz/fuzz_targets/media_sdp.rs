//! A client SDP through jano-media's check, m-line and candidate readers, and str0m answering it as the PeerConnection would; see `jano_fuzz::media`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    jano_fuzz::media::run_sdp(data);
});
